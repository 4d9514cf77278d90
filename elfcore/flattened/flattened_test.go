package flattened

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

type write struct {
	off  int64
	data string
}

// stream builds a flattened stream of the writes through Writer; end
// says whether it gets its end record.
func stream(t testing.TB, writes []write, end bool) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, wr := range writes {
		if _, err := w.WriteAt([]byte(wr.data), wr.off); err != nil {
			t.Fatal(err)
		}
	}
	if end {
		w.Close()
	}
	return buf.Bytes()
}

// rearrange is what makedumpfile -R would make of the writes.
func rearrange(writes []write) []byte {
	var out []byte
	for _, w := range writes {
		if e := int(w.off) + len(w.data); e > len(out) {
			out = append(out, make([]byte, e-len(out))...)
		}
		copy(out[w.off:], w.data)
	}
	return out
}

func readAll(t *testing.T, f *File) []byte {
	t.Helper()
	got := make([]byte, f.Size())
	if n, err := f.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(0, %d) = %d, %v", len(got), n, err)
	}
	return got
}

func TestOpen(t *testing.T) {
	for _, c := range []struct {
		name      string
		writes    []write
		overlaps  bool
		truncated bool
		cut       int // bytes cut off the end of the stream
	}{
		{name: "in order", writes: []write{{0, "head"}, {4, "tail"}}},
		{name: "out of order with holes", writes: []write{{100, "later"}, {0, "first"}, {50, "mid"}}},
		{name: "header rewritten last", writes: []write{{0, "xxxxxxxx"}, {8, "data"}, {0, "HEAD"}}, overlaps: true},
		{name: "later write inside an earlier one", writes: []write{{0, "aaaaaaaaaa"}, {3, "bb"}, {2, "c"}, {9, "dddd"}}, overlaps: true},
		{name: "earlier write inside a later one", writes: []write{{3, "bb"}, {0, "aaaaaaaaaa"}}, overlaps: true},
		{name: "no end record", writes: []write{{0, "abc"}, {10, "def"}}, truncated: true},
		{name: "cut inside a record", writes: []write{{0, "abc"}, {10, "defghi"}}, truncated: true, cut: 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := stream(t, c.writes, !c.truncated)
			s = s[:len(s)-c.cut]
			f, err := Open(bytes.NewReader(s), int64(len(s)), nil)
			if err != nil {
				t.Fatal(err)
			}
			writes := c.writes
			if c.cut > 0 {
				writes = writes[:len(writes)-1]
			}
			want := rearrange(writes)
			if got := readAll(t, f); !bytes.Equal(got, want) {
				t.Errorf("rearranged %q, want %q", got, want)
			}
			if f.Overlaps != c.overlaps || f.Truncated != c.truncated || f.Records != len(writes) {
				t.Errorf("overlaps %v truncated %v records %d, want %v %v %d", f.Overlaps, f.Truncated, f.Records, c.overlaps, c.truncated, len(writes))
			}
			if !Is(s) {
				t.Error("Is = false")
			}
		})
	}
}

// TestZeroTail: a stream on a device it did not fill, without its end
// record, is followed by zeros; they end it rather than being read as
// millions of empty records.
func TestZeroTail(t *testing.T) {
	s := stream(t, []write{{0, "abc"}}, false)
	s = append(s, make([]byte, 1<<20)...)
	f, err := Open(bytes.NewReader(s), int64(len(s)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Truncated || f.Size() != 3 || f.Records != 1 {
		t.Errorf("truncated %v size %d records %d", f.Truncated, f.Size(), f.Records)
	}
}

// TestTrailingBytes: a complete stream written onto a raw disk is
// followed by whatever the disk held; the end record ends it, and what
// follows (zeros, an older stream, garbage that would be a bad record) is
// never read as records.
func TestTrailingBytes(t *testing.T) {
	writes := []write{{8, "data"}, {0, "HEAD"}}
	for _, tail := range []struct {
		name string
		b    []byte
	}{
		{"zeros", make([]byte, 1<<20)},
		{"garbage", bytes.Repeat([]byte{0xff, 0x12, 0x80}, 4096)},
		{"an older stream", stream(t, []write{{0, "older, longer file"}}, true)},
	} {
		t.Run(tail.name, func(t *testing.T) {
			s := append(stream(t, writes, true), tail.b...)
			f, err := Open(bytes.NewReader(s), int64(len(s)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if f.Truncated || f.Records != len(writes) {
				t.Errorf("truncated %v, %d records; want a complete stream of %d", f.Truncated, f.Records, len(writes))
			}
			if got, want := readAll(t, f), rearrange(writes); !bytes.Equal(got, want) {
				t.Errorf("rearranged %q, want %q", got, want)
			}
		})
	}
}

func TestBadStreams(t *testing.T) {
	good := stream(t, []write{{0, "abc"}}, true)
	rec := func(off, size int64) []byte {
		b := bytes.Clone(good[:HeaderSize])
		b = binary.BigEndian.AppendUint64(b, uint64(off))
		return binary.BigEndian.AppendUint64(b, uint64(size))
	}
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"short", "shorter than its 4096-byte header", good[:100]},
		{"signature", "(signature)", append([]byte("makedumpfilX"), good[12:]...)},
		{"type", "(type)", append(append(bytes.Clone(good[:16]), 0, 0, 0, 0, 0, 0, 0, 2), good[24:]...)},
		{"version", "(version)", append(append(bytes.Clone(good[:24]), 0, 0, 0, 0, 0, 0, 0, 9), good[32:]...)},
		{"negative offset", "offset 0x1000 (record offset)", rec(-5, 3)},
		{"negative size", "offset 0x1008 (record size)", rec(0, -3)},
		{"offset past any file", "(record offset)", rec(1<<62, 4096)},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(c.data), int64(len(c.data)), nil)
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open = %v, want a FormatError containing %q", err, c.want)
			}
		})
	}
}

// TestRandomWrites compares random reads of a stream of random
// overlapping writes with the rearranged file.
func TestRandomWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for round := 0; round < 50; round++ {
		var writes []write
		for i := 0; i < 1+rng.IntN(40); i++ {
			b := make([]byte, 1+rng.IntN(300))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			writes = append(writes, write{int64(rng.IntN(2000)), string(b)})
		}
		s := stream(t, writes, true)
		f, err := Open(bytes.NewReader(s), int64(len(s)), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := rearrange(writes)
		if f.Size() != int64(len(want)) {
			t.Fatalf("size %d, want %d", f.Size(), len(want))
		}
		for i := 0; i < 50; i++ {
			off := rng.IntN(len(want) + 10)
			n := rng.IntN(500)
			got := make([]byte, n)
			m, err := f.ReadAt(got, int64(off))
			exp := want[min(off, len(want)):min(off+n, len(want))]
			if m != len(exp) || !bytes.Equal(got[:m], exp) || (m < n) != (err == io.EOF) {
				t.Fatalf("round %d ReadAt(%d, %d) = %d, %v", round, off, n, m, err)
			}
		}
		// NextData covers exactly the written bytes.
		covered := make([]bool, len(want))
		for _, w := range writes {
			for i := range len(w.data) {
				covered[int(w.off)+i] = true
			}
		}
		var seen []bool
		for off := int64(0); off < f.Size(); {
			s, e := f.NextData(off)
			for ; off < s; off++ {
				seen = append(seen, false)
			}
			for ; off < e; off++ {
				seen = append(seen, true)
			}
		}
		if !slicesEqual(seen, covered) {
			t.Fatalf("round %d: NextData does not cover the written bytes", round)
		}
	}
}

func slicesEqual(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSetSize(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	w.WriteAt([]byte("ab"), 0)
	w.SetSize(4096)
	w.Close()
	f, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), nil)
	if err != nil || f.Size() != 4096 {
		t.Fatalf("size %d, %v", f.Size(), err)
	}
}

// FuzzOpen: any stream opens or fails with an error, and reads of what
// it indexes stay within the stream.
func FuzzOpen(f *testing.F) {
	f.Add(stream(f, []write{{0, "abc"}, {2, "zz"}}, true)[HeaderSize:])
	f.Add(stream(f, []write{{5000, "x"}}, false)[HeaderSize:])
	hdr := stream(f, nil, false)
	f.Fuzz(func(t *testing.T, recs []byte) {
		s := append(bytes.Clone(hdr), recs...)
		fl, err := Open(bytes.NewReader(s), int64(len(s)), nil)
		if err != nil {
			return
		}
		buf := make([]byte, 512)
		for off := int64(0); off < fl.Size(); {
			start, end := fl.NextData(off)
			if start >= fl.Size() {
				break
			}
			if end <= start {
				t.Fatalf("NextData(%d) = %d, %d", off, start, end)
			}
			if _, err := fl.ReadAt(buf[:min(int64(len(buf)), end-start)], start); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			off = end
		}
	})
}
