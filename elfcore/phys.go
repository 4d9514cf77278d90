package elfcore

import (
	"fmt"
	"io"
	"slices"
)

// PhysMem reads a core's memory by physical address through its PT_LOAD
// segments. Where segments overlap (the kernel-image PT_LOAD duplicates
// part of a RAM range), the first in program-header order wins, as in
// crash (read_netdump) and makedumpfile (closest_pt_load). Bytes between
// p_filesz and p_memsz read as zeros.
type PhysMem struct {
	r      io.ReaderAt
	pieces []physPiece // sorted, non-overlapping
}

type physPiece struct {
	start, end uint64 // physical [start, end)
	seg        ProgHeader
}

// UnmappedError reports a physical address that no PT_LOAD covers.
type UnmappedError struct{ Paddr uint64 }

func (e *UnmappedError) Error() string {
	return fmt.Sprintf("physical address %#x is not in any PT_LOAD segment", e.Paddr)
}

// Phys returns a physical-memory view of the core.
func (f *File) Phys() *PhysMem { return NewPhysMem(f.r, f.Loads()) }

// NewPhysMem builds a physical-memory view of r from the given PT_LOADs.
func NewPhysMem(r io.ReaderAt, loads []ProgHeader) *PhysMem {
	// Sweep over the segment boundaries; between two boundaries the
	// segment with the lowest program-header index wins. The set of
	// segments active at once is tiny in real cores (at most the image
	// segment over a RAM segment), so a linear minimum is enough.
	type event struct {
		at    uint64
		idx   int
		start bool
	}
	var evs []event
	for i, p := range loads {
		if p.Memsz == 0 || p.Paddr+p.Memsz < p.Paddr {
			continue
		}
		evs = append(evs, event{p.Paddr, i, true}, event{p.Paddr + p.Memsz, i, false})
	}
	slices.SortFunc(evs, func(a, b event) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	m := &PhysMem{r: r}
	var active []int
	for k := 0; k < len(evs); {
		at := evs[k].at
		for ; k < len(evs) && evs[k].at == at; k++ {
			if evs[k].start {
				active = append(active, evs[k].idx)
			} else {
				active = slices.DeleteFunc(active, func(i int) bool { return i == evs[k].idx })
			}
		}
		if len(active) == 0 || k == len(evs) {
			continue
		}
		win := slices.Min(active)
		next := evs[k].at
		if n := len(m.pieces); n > 0 && m.pieces[n-1].end == at && m.pieces[n-1].seg == loads[win] {
			m.pieces[n-1].end = next
			continue
		}
		m.pieces = append(m.pieces, physPiece{start: at, end: next, seg: loads[win]})
	}
	return m
}

// Ranges returns the physical ranges the core covers, merged where adjacent.
func (m *PhysMem) Ranges() []Range {
	var out []Range
	for _, p := range m.pieces {
		if n := len(out); n > 0 && out[n-1].End == p.start {
			out[n-1].End = p.end
			continue
		}
		out = append(out, Range{Start: p.start, End: p.end})
	}
	return out
}

// Lookup returns the segment that serves physical address pa.
func (m *PhysMem) Lookup(pa uint64) (ProgHeader, bool) {
	i, ok := m.find(pa)
	if !ok {
		return ProgHeader{}, false
	}
	return m.pieces[i].seg, true
}

func (m *PhysMem) find(pa uint64) (int, bool) {
	i, _ := slices.BinarySearchFunc(m.pieces, pa, func(p physPiece, pa uint64) int {
		switch {
		case p.end <= pa:
			return -1
		case p.start > pa:
			return 1
		}
		return 0
	})
	return i, i < len(m.pieces) && m.pieces[i].start <= pa && pa < m.pieces[i].end
}

// ReadAt reads len(p) bytes of physical memory at physical address off.
// It fails with *UnmappedError at the first byte no segment covers.
func (m *PhysMem) ReadAt(p []byte, off int64) (int, error) {
	pa := uint64(off)
	n := 0
	for n < len(p) {
		i, ok := m.find(pa)
		if !ok {
			return n, &UnmappedError{Paddr: pa}
		}
		pc := m.pieces[i]
		chunk := p[n:min(uint64(len(p)), uint64(n)+pc.end-pa)]
		rel := pa - pc.seg.Paddr
		// File-backed part, then the zero-filled tail past p_filesz.
		var filled int
		if rel < pc.seg.Filesz {
			k := int(min(uint64(len(chunk)), pc.seg.Filesz-rel))
			got, err := m.r.ReadAt(chunk[:k], int64(pc.seg.Off+rel))
			if got < k {
				if err == nil || err == io.EOF {
					err = fmt.Errorf("segment at paddr %#x (file offset %#x) is cut short by the end of the file: %w", pc.seg.Paddr, pc.seg.Off+rel+uint64(got), io.ErrUnexpectedEOF)
				}
				return n + got, err
			}
			filled = k
		}
		clear(chunk[filled:])
		n += len(chunk)
		pa += uint64(len(chunk))
	}
	return n, nil
}
