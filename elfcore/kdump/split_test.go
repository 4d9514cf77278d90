package kdump

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// splitParts cuts a kdump file into the parts makedumpfile --split would
// write for the pfn ranges given by cuts: each part is the whole file
// with split = 1, its range in the sub-header, and only its own
// descriptors, moved to the front of the page_desc array (the data stays
// where the descriptors point).
func splitParts(t *testing.T, img []byte, cuts []uint64) [][]byte {
	f, err := Open(readerAt(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	var parts [][]byte
	for i := 0; i+1 < len(cuts); i++ {
		start, end := cuts[i], cuts[i+1]
		p := bytes.Clone(img)
		le.PutUint32(p[ps+subSplit:], 1)
		le.PutUint64(p[ps+subStartPFN64:], start)
		le.PutUint64(p[ps+subEndPFN64:], end)
		lo, hi := f.descIndex(start), f.descIndex(end)
		arr := p[f.descOff : f.descOff+int64(f.nDesc)*PageDescSize]
		copy(arr, img[f.descOff+int64(lo)*PageDescSize:f.descOff+int64(hi)*PageDescSize])
		clear(arr[(hi-lo)*PageDescSize:])
		parts = append(parts, p)
	}
	return parts
}

func openParts(t *testing.T, parts [][]byte) []*File {
	var fs []*File
	for i, p := range parts {
		f, err := OpenPart(readerAt(p), int64(len(p)))
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		fs = append(fs, f)
	}
	return fs
}

// TestSplit: the parts of a split dump are refused one by one by Open,
// each serves its own range through OpenPart, and joined in any order
// they read every page as the whole file does; a missing, doubled or
// foreign part is refused.
func TestSplit(t *testing.T) {
	s := standard(FlagZlib)
	img := s.build(t)
	whole, err := Open(readerAt(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	cuts := []uint64{0, 250, 250, 70001, 100000}
	parts := splitParts(t, img, cuts)
	if _, err := Open(readerAt(parts[1]), int64(len(parts[1]))); !errors.Is(err, ErrSplit) || !strings.Contains(err.Error(), "split") {
		t.Errorf("Open of a split part: %v, want ErrSplit", err)
	}
	fs := openParts(t, parts)
	if start, end, ok := fs[2].Part(); !ok || start != 250 || end != 70001 {
		t.Errorf("part 2: [%#x, %#x) %v", start, end, ok)
	}
	buf := make([]byte, ps)
	if err := fs[2].ReadPage(101, buf); err == nil || !strings.Contains(err.Error(), "another part") {
		t.Errorf("part 2 reading pfn 101 of part 0: %v", err)
	}
	// Any order; the empty part is kept.
	j, err := Join([]*File{fs[3], fs[1], fs[0], fs[2]})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if j.DumpablePages() != whole.DumpablePages() {
		t.Errorf("joined: %d dumpable pages, want %d", j.DumpablePages(), whole.DumpablePages())
	}
	want := make([]byte, ps)
	for pfn := uint64(0); pfn < s.maxMapnr; pfn++ {
		e1, e2 := whole.ReadPage(pfn, want), j.ReadPage(pfn, buf)
		if (e1 == nil) != (e2 == nil) || e1 == nil && !bytes.Equal(buf, want) || e1 != nil && errors.Is(e1, ErrExcluded) != errors.Is(e2, ErrExcluded) {
			t.Fatalf("pfn %#x: joined %v, whole %v, equal %v", pfn, e2, e1, bytes.Equal(buf, want))
		}
	}

	other := standard(FlagZlib)
	other.maxMapnr = 99999
	foreign := splitParts(t, other.build(t), []uint64{0, 250, 99999})
	for _, tc := range []struct {
		name  string
		parts []*File
		want  string
	}{
		{"missing middle", []*File{fs[0], fs[3]}, "gap"},
		{"missing last", fs[:3], "above: a part is missing"},
		{"doubled", []*File{fs[0], fs[2], fs[2], fs[3]}, "overlap"},
		{"foreign", []*File{fs[0], openParts(t, foreign)[1]}, "different dumps"},
		{"not split", []*File{whole}, "not a split dump"},
	} {
		if _, err := Join(tc.parts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
