package kmemtest

import (
	"bytes"
	"strings"
	"testing"
)

func TestMem(t *testing.T) {
	m := Mem{{0x1000, []byte("abcdef")}, {0x2000, make([]byte, 16)}}
	m.PutU32(0x2004, 0x64636261)
	for _, tc := range []struct {
		at      uint64
		n       int
		want    string
		wantErr string
	}{
		{0x1000, 6, "abcdef", ""},
		{0x1002, 2, "cd", ""},
		{0x2004, 4, "abcd", ""},
		{0x1004, 4, "ef", "0x1006 is not mapped"},
		{0x1006, 1, "", "0x1006 is not mapped"},
		{0xfff, 1, "", "0xfff is not mapped"},
	} {
		p := make([]byte, tc.n)
		n, err := m.ReadAt(p, int64(tc.at))
		if got := string(p[:n]); got != tc.want {
			t.Errorf("ReadAt(%#x, %d) = %q, want %q", tc.at, tc.n, got, tc.want)
		}
		if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ReadAt(%#x, %d): error %v, want %q", tc.at, tc.n, err, tc.wantErr)
		}
	}
	m.Map(0x1002, []byte("XY"))
	m.Map(0x3000, []byte{7})
	p := make([]byte, 2)
	if n, err := m.ReadAt(p, 0x1002); err != nil || string(p[:n]) != "XY" {
		t.Errorf("after Map: ReadAt(0x1002) = %q, %v; want the new region's \"XY\"", p[:n], err)
	}
	m.Unmap(0x1002)
	if n, err := m.ReadAt(p, 0x1002); err != nil || string(p[:n]) != "cd" {
		t.Errorf("after Unmap: ReadAt(0x1002) = %q, %v; want the old region's \"cd\"", p[:n], err)
	}
	m.Unmap(0x3000)
	if _, err := m.ReadAt(p[:1], 0x3000); err == nil {
		t.Error("ReadAt(0x3000) after Unmap succeeded")
	}
	defer func() {
		if recover() == nil {
			t.Error("Put across a region's end did not panic")
		}
	}()
	m.Put(0x1004, bytes.Repeat([]byte{1}, 4))
}
