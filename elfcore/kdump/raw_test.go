package kdump

import (
	"encoding/binary"
	"testing"
)

// The raw structs must have exactly the on-disk sizes of the C structs.
func TestRawSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want int
	}{
		{"disk_dump_header", RawHeader{}, HeaderSize},
		{"kdump_sub_header", RawSubHeader{}, SubHeaderSize},
		{"page_desc", RawPageDesc{}, PageDescSize},
	} {
		if got := binary.Size(c.v); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, got, c.want)
		}
	}
}

func TestRawRoundTrip(t *testing.T) {
	var h RawHeader
	copy(h.Signature[:], SigKdump)
	h.HeaderVersion = 6
	SetUtsField(&h.Utsname.Release, "6.1.0-test")
	h.TimestampSec = 1234
	h.NrCPUs = 4
	h.BlockSize = 4096
	b := h.Encode()
	if len(b) != HeaderSize || string(b[:8]) != SigKdump || b[12+2*UtsFieldLen] != '6' {
		t.Fatalf("encoding wrong: %x", b[:32])
	}
	if int32(binary.LittleEndian.Uint32(b[428:])) != 4096 || int64(binary.LittleEndian.Uint64(b[408:])) != 1234 {
		t.Fatalf("block_size/timestamp not at their C offsets")
	}
	g, err := DecodeHeader(b)
	if err != nil || g != h || UtsField(g.Utsname.Release) != "6.1.0-test" {
		t.Fatalf("round trip: %+v %v", g, err)
	}
	s := RawSubHeader{PhysBase: 0x1000000, DumpLevel: 31, MaxMapnr64: 1 << 40}
	if got := DecodeSubHeader(s.Encode()); got != s {
		t.Fatalf("sub header round trip: %+v", got)
	}
	if got := DecodeSubHeader(s.Encode()[:16]); got.PhysBase != s.PhysBase || got.MaxMapnr64 != 0 {
		t.Fatalf("short sub header: %+v", got)
	}
	d := RawPageDesc{Offset: 0x5000, Size: 100, Flags: FlagZstd, PageFlags: 7}
	if got := DecodePageDesc(AppendPageDesc(nil, d)); got != d {
		t.Fatalf("page_desc round trip: %+v", got)
	}
	if BitmapBlocksFor(0x40000, 4096) != 16 || BitmapHalfBytes(16, 4096) != 0x8000 {
		t.Fatal("bitmap sizing")
	}
}
