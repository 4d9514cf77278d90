package kmodtest

import (
	"bytes"
	"encoding/binary"
	"slices"

	"ldx/elfcore"
)

// PageSize is the only page size livedump v1 knows: it is x86_64-only and
// every bio is one 4 KiB page (package livedump, "Placement").
const PageSize = 4096

// pfnRange is a half-open range of page frame numbers [lo, hi).
type pfnRange struct{ lo, hi uint64 }

// pfnSet is a sorted list of disjoint, non-adjacent pfn ranges. The
// emulator works in pages because the kernel does: a byte range the caller
// gives (E820 RAM, request buffers, lost pages) selects every page it
// overlaps, exactly as e820__mapped_any does for the bitmap (package livedump, "Placement").
type pfnSet []pfnRange

// pagesOf returns the pages overlapping the byte ranges rs.
func pagesOf(rs []elfcore.Range) pfnSet {
	var s pfnSet
	for _, r := range rs {
		if r.End <= r.Start {
			continue
		}
		s = append(s, pfnRange{r.Start / PageSize, (r.End + PageSize - 1) / PageSize})
	}
	return s.normalize()
}

// span returns the set [lo, hi).
func span(lo, hi uint64) pfnSet {
	if hi <= lo {
		return nil
	}
	return pfnSet{{lo, hi}}
}

func (s pfnSet) normalize() pfnSet {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b pfnRange) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	var out pfnSet
	for _, r := range s {
		if r.hi <= r.lo {
			continue
		}
		if n := len(out); n > 0 && r.lo <= out[n-1].hi {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// combine sweeps the boundaries of two normalized sets and keeps the pfns
// for which keep(inA, inB) holds.
func combine(a, b pfnSet, keep func(inA, inB bool) bool) pfnSet {
	var pts []uint64
	for _, r := range a {
		pts = append(pts, r.lo, r.hi)
	}
	for _, r := range b {
		pts = append(pts, r.lo, r.hi)
	}
	slices.Sort(pts)
	pts = slices.Compact(pts)
	var out pfnSet
	for i := 0; i+1 < len(pts); i++ {
		lo, hi := pts[i], pts[i+1]
		if keep(a.has(lo), b.has(lo)) {
			if n := len(out); n > 0 && out[n-1].hi == lo {
				out[n-1].hi = hi
			} else {
				out = append(out, pfnRange{lo, hi})
			}
		}
	}
	return out
}

func (s pfnSet) union(t pfnSet) pfnSet {
	return combine(s, t, func(a, b bool) bool { return a || b })
}
func (s pfnSet) minus(t pfnSet) pfnSet {
	return combine(s, t, func(a, b bool) bool { return a && !b })
}
func (s pfnSet) intersect(t pfnSet) pfnSet {
	return combine(s, t, func(a, b bool) bool { return a && b })
}

// has reports whether pfn is in the set.
func (s pfnSet) has(pfn uint64) bool {
	_, found := slices.BinarySearchFunc(s, pfn, func(r pfnRange, p uint64) int {
		switch {
		case r.hi <= p:
			return -1
		case r.lo > p:
			return 1
		}
		return 0
	})
	return found
}

// count returns the number of pages in the set.
func (s pfnSet) count() uint64 {
	var n uint64
	for _, r := range s {
		n += r.hi - r.lo
	}
	return n
}

// byteRanges converts the set to physical byte ranges.
func (s pfnSet) byteRanges() []elfcore.Range {
	out := make([]elfcore.Range, 0, len(s))
	for _, r := range s {
		out = append(out, elfcore.Range{Start: r.lo * PageSize, End: r.hi * PageSize})
	}
	return out
}

// cursor answers "is pfn in the set?" for ascending pfns in O(1) amortised,
// which the streaming loop needs for multi-GiB devices.
type cursor struct {
	s pfnSet
	i int
}

func (c *cursor) has(pfn uint64) bool {
	for c.i < len(c.s) && c.s[c.i].hi <= pfn {
		c.i++
	}
	return c.i < len(c.s) && c.s[c.i].lo <= pfn
}

// Page patterns. Both are stamped in 32-byte blocks so that any 32-byte
// aligned window of a page says what it is and where it came from: a test
// that finds one in a converted vmcore can name the device page the byte
// leaked from.
var (
	staleTag = [8]byte{'L', 'D', 'X', 'S', 'T', 'A', 'L', 'E'}
	memTag   = [8]byte{'L', 'D', 'X', 'M', 'E', 'M', 'P', 'G'}
)

func stamp(dst []byte, tag [8]byte, seed, pfn uint64) {
	for off := 0; off+32 <= len(dst); off += 32 {
		b := dst[off : off+32]
		copy(b, tag[:])
		binary.LittleEndian.PutUint64(b[8:], pfn)
		binary.LittleEndian.PutUint64(b[16:], seed)
		binary.LittleEndian.PutUint64(b[24:], uint64(off/32))
	}
}

func isStamp(page []byte, tag [8]byte, seed, pfn uint64) bool {
	if len(page) != PageSize {
		return false
	}
	var want [PageSize]byte
	stamp(want[:], tag, seed, pfn)
	return bytes.Equal(page, want[:])
}

// stalePage fills dst (one page) with the stale bytes the emulator leaves
// at device page pfn when nothing prepared the device: what an earlier use
// of the disk left there (package livedump, "Placement", and
// defect K-2). The bytes are non-zero
// everywhere, so a reader cannot mistake them for a never-written zero page.
func stalePage(dst []byte, seed, pfn uint64) { stamp(dst, staleTag, seed, pfn) }

// isStalePage reports whether page is exactly stalePage(seed, pfn).
func isStalePage(page []byte, seed, pfn uint64) bool { return isStamp(page, staleTag, seed, pfn) }

// HasStaleBytes reports whether b contains a fragment of any stale page
// (the 8-byte stale tag), e.g. in a note segment that ran into stale data.
func HasStaleBytes(b []byte) bool { return bytes.Contains(b, staleTag[:]) }

// splitAt cuts s after its first n pages.
func (s pfnSet) splitAt(n uint64) (head, tail pfnSet) {
	for i, r := range s {
		if n == 0 {
			return head, append(tail, s[i:]...)
		}
		if k := r.hi - r.lo; k <= n {
			head, n = append(head, r), n-k
			continue
		}
		head = append(head, pfnRange{r.lo, r.lo + n})
		tail = append(tail, pfnRange{r.lo + n, r.hi})
		return head, append(tail, s[i+1:]...)
	}
	return head, tail
}
