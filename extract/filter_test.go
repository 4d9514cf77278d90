package extract

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"ldx/elfcore"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// memWriter is an output file in memory.
type memWriter struct{ b []byte }

func (m *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// TestSegmentFilter: runs of 256 or more left-out pages end a segment and
// stay out of every PT_LOAD; shorter runs are written with their bytes;
// left-out pages that end a range stay out; kernel-image pages are never
// left out; every kept page reads back its own bytes.
func TestSegmentFilter(t *testing.T) {
	const P = pageSize
	for _, tc := range []struct {
		name     string
		ram      []elfcore.Range
		image    elfcore.Range
		excluded [][2]uint64 // pfn ranges
		segs     [][2]uint64 // [paddr, end) of the PT_LOADs, pfns
		leftOut  uint64
	}{
		{"nothing excluded", []elfcore.Range{{Start: 0x100 * P, End: 0x1000 * P}}, elfcore.Range{Start: 0x200 * P, End: 0x300 * P}, nil,
			[][2]uint64{{0x100, 0x200}, {0x200, 0x300}, {0x300, 0x1000}}, 0},
		{"short run kept", []elfcore.Range{{Start: 0x100 * P, End: 0x1000 * P}}, elfcore.Range{}, [][2]uint64{{0x400, 0x4ff}},
			[][2]uint64{{0x100, 0x1000}}, 0},
		{"long run cut", []elfcore.Range{{Start: 0x100 * P, End: 0x1000 * P}}, elfcore.Range{}, [][2]uint64{{0x400, 0x500}},
			[][2]uint64{{0x100, 0x400}, {0x500, 0x1000}}, 0x100},
		{"range starts and ends excluded", []elfcore.Range{{Start: 0x100 * P, End: 0x1000 * P}, {Start: 0x2000 * P, End: 0x2100 * P}}, elfcore.Range{},
			[][2]uint64{{0x100, 0x300}, {0xff0, 0x1000}, {0x2000, 0x2100}},
			[][2]uint64{{0x300, 0xff0}}, 0x200 + 0x10 + 0x100},
		{"image never excluded", []elfcore.Range{{Start: 0x100 * P, End: 0x1000 * P}}, elfcore.Range{Start: 0x400 * P, End: 0x600 * P}, [][2]uint64{{0x200, 0x800}},
			[][2]uint64{{0x100, 0x200}, {0x400, 0x600}, {0x800, 0x1000}}, 0x400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &memWriter{}
			const dataOff = 0x1000
			s := newSegmenter(out, dataOff, 0xffff888000000000, tc.image)
			content := func(pfn uint64) []byte {
				if pfn%7 == 0 {
					return nil // a zero page
				}
				return bytes.Repeat([]byte(fmt.Sprintf("%07x\n", pfn)), P/8)
			}
			isExcluded := func(pfn uint64) bool {
				return slices.ContainsFunc(tc.excluded, func(r [2]uint64) bool { return r[0] <= pfn && pfn < r[1] })
			}
			for _, r := range tc.ram {
				s.beginRange(r)
				for pa := r.Start; pa < r.End; pa += P {
					if err := s.page(pa, content(pa/P), isExcluded(pa/P)); err != nil {
						t.Fatal(err)
					}
				}
				s.endRange(r)
			}
			segs, _ := s.finish()
			var got [][2]uint64
			for _, sg := range segs {
				if sg.Filesz != sg.Memsz || sg.Vaddr != 0xffff888000000000+sg.Paddr {
					t.Errorf("segment %+v", sg)
				}
				got = append(got, [2]uint64{sg.Paddr / P, (sg.Paddr + sg.Memsz) / P})
				for pa := sg.Paddr; pa < sg.Paddr+sg.Memsz; pa += P {
					off := sg.Off + pa - sg.Paddr
					want := content(pa / P)
					if want == nil {
						want = make([]byte, P)
					}
					var have []byte
					if off+P <= uint64(len(out.b)) {
						have = out.b[off : off+P]
					} else {
						have = make([]byte, P)
						if off < uint64(len(out.b)) {
							copy(have, out.b[off:])
						}
					}
					if !bytes.Equal(have, want) {
						t.Fatalf("page %#x at file offset %#x does not read back", pa, off)
					}
				}
			}
			if !slices.Equal(got, tc.segs) {
				t.Errorf("segments %x, want %x", got, tc.segs)
			}
			if s.leftOut != tc.leftOut {
				t.Errorf("%#x pages left out, want %#x", s.leftOut, tc.leftOut)
			}
			if len(segs) > len(tc.ram)+3+int(0x2000/cutPages) {
				t.Errorf("%d segments", len(segs))
			}
			if tc.image.End > 0 {
				if _, ok := s.imageSegment(0xffffffff81000000); !ok {
					t.Error("no image segment")
				}
			}
		})
	}
}

// TestExtractDumpLevel: level 1 leaves the synthetic kernel's zero runs
// out and keeps every non-zero page; a level whose keys the dump's
// VMCOREINFO lacks (the synthetic kernel has no struct page array) is
// refused with the key named, and no output is left behind.
func TestExtractDumpLevel(t *testing.T) {
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 2}, withManifest(manifest.Zeroed))
	full, fullOut, err := fx.extract(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(fullOut)
	sum, out, err := fx.extract(t, Options{DumpLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := sum.Filter
	if f == nil || f.ZeroExcluded != full.ZeroPages || f.LeftOut == 0 || f.LeftOut > f.ZeroExcluded || sum.Written != full.Written {
		t.Errorf("level 1: filter %+v, zero pages %d; written %d, unfiltered %d", f, full.ZeroPages, sum.Written, full.Written)
	}
	if sum.OutputSize >= full.OutputSize || sum.Segments < full.Segments {
		t.Errorf("level 1: %d bytes in %d segments, unfiltered %d bytes in %d", sum.OutputSize, sum.Segments, full.OutputSize, full.Segments)
	}
	os.Remove(out)
	_, out, err = fx.extract(t, Options{DumpLevel: 31})
	if err == nil || !strings.Contains(err.Error(), "dump level 31: pageclass:") {
		t.Errorf("level 31 without struct page keys: %v", err)
	}
	if _, serr := os.Stat(out); !os.IsNotExist(serr) {
		t.Errorf("output exists after a refused extraction")
	}
}
