package kdump

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// A split dump is what makedumpfile --split writes to spread one dump
// over several files (and disks, and processes): every part is a complete
// kdump file header (the same header, sub-header, notes and both bitmaps
// of the whole dump) followed by the page descriptors and data of the
// pfns [start_pfn, end_pfn) only, counted from start_pfn. The sub-header
// says split = 1 and gives the range (start_pfn_64/end_pfn_64 from
// version 6). crash reads a set given all its files; makedumpfile
// --reassemble joins one back into a single file.

// Part reports whether f is one part of a split dump, and its pfn range.
func (f *File) Part() (start, end uint64, ok bool) { return f.start, f.end, f.split && f.parts == nil }

// Join makes the parts of one split dump (OpenPart, any order) one File
// that reads every page through the part holding it. The parts must be of
// one dump (the same header, sub-header fields and bitmaps) and their
// ranges must follow each other without a gap or an overlap, covering
// every dumpable page. The joined File closes the parts with it.
func Join(parts []*File) (*File, error) {
	if len(parts) == 0 {
		return nil, errors.New("kdump: no parts to join")
	}
	ps := slices.Clone(parts)
	slices.SortFunc(ps, func(a, b *File) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end)) })
	first := ps[0]
	for i, p := range ps {
		if !p.split {
			return nil, fmt.Errorf("kdump: part %d is not a split dump", i)
		}
		if err := samePartOf(first, p); err != nil {
			return nil, err
		}
		if i > 0 && p.start != ps[i-1].end {
			what := "a gap"
			if p.start < ps[i-1].end {
				what = "an overlap"
			}
			return nil, fmt.Errorf("kdump: the parts' pfn ranges [%#x, %#x) and [%#x, %#x) leave %s: a part is missing or given twice", ps[i-1].start, ps[i-1].end, p.start, p.end, what)
		}
	}
	lo, hi := first.start, ps[len(ps)-1].end
	if below, above := first.descIndex(lo), first.cum[len(first.cum)-1]-first.descIndex(hi); below > 0 || above > 0 {
		return nil, fmt.Errorf("kdump: the parts hold the pfns [%#x, %#x), but %d dumpable pages lie below and %d above: a part is missing", lo, hi, below, above)
	}
	return &File{r: first.r, size: first.size, Header: first.Header, Sub: first.Sub, Signature: first.Signature, PageSize: first.PageSize, MaxMapnr: first.MaxMapnr,
		ram: first.ram, dumpable: first.dumpable, cum: first.cum, descOff: first.descOff, nDesc: first.cum[len(first.cum)-1],
		notes: first.notes, vmcoreinfo: first.vmcoreinfo, split: true, end: first.MaxMapnr, parts: ps}, nil
}

// samePartOf checks that p is a part of the same dump as f.
func samePartOf(f, p *File) error {
	switch {
	case p.Header.TimestampSec != f.Header.TimestampSec || p.Header.TimestampUsec != f.Header.TimestampUsec || p.Header.Utsname != f.Header.Utsname:
		return fmt.Errorf("kdump: the parts are of different dumps (header time or utsname differ)")
	case p.MaxMapnr != f.MaxMapnr || p.PageSize != f.PageSize || p.Sub.PhysBase != f.Sub.PhysBase || p.Sub.DumpLevel != f.Sub.DumpLevel:
		return fmt.Errorf("kdump: the parts are of different dumps (max_mapnr, block_size, phys_base or dump_level differ)")
	case !slices.Equal(p.ram, f.ram) || !slices.Equal(p.dumpable, f.dumpable):
		return fmt.Errorf("kdump: the parts are of different dumps (their bitmaps differ)")
	case !bytes.Equal(p.vmcoreinfo, f.vmcoreinfo):
		return fmt.Errorf("kdump: the parts are of different dumps (their VMCOREINFO differs)")
	}
	return nil
}

// part returns the part of a joined set holding pfn (a dumpable pfn, so
// one does).
func (f *File) part(pfn uint64) *File {
	i, _ := slices.BinarySearchFunc(f.parts, pfn, func(p *File, pfn uint64) int {
		switch {
		case pfn < p.start:
			return 1
		case pfn >= p.end:
			return -1
		}
		return 0
	})
	return f.parts[min(i, len(f.parts)-1)]
}

// Parts returns the parts of a joined split dump, in pfn order.
func (f *File) Parts() []*File { return f.parts }
