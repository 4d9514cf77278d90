package dump

import (
	"slices"

	"ldx/kmod/manifest"
)

// clipRanges returns the page-aligned parts of ranges inside [lo, hi):
// starts rounded down and ends rounded up, since the kernel dumps every
// page a RAM range overlaps (e820__mapped_any).
func clipRanges(ranges []manifest.Range, lo, hi uint64) []manifest.Range {
	var out []manifest.Range
	sorted := slices.Clone(ranges)
	slices.SortFunc(sorted, func(a, b manifest.Range) int { return cmpU64(a.Start, b.Start) })
	for _, r := range sorted {
		s, e := max(pageDown(r.Start), lo), min(pageUp(r.End), hi)
		if s >= e {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End >= s {
			out[n-1].End = max(out[n-1].End, e)
			continue
		}
		out = append(out, manifest.Range{Start: s, End: e})
	}
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func covered(ranges []manifest.Range) uint64 {
	var n uint64
	for _, r := range ranges {
		n += r.End - r.Start
	}
	return n
}

// intersectRanges returns the parts of a that lie in b (both sorted).
func intersectRanges(a, b []manifest.Range) []manifest.Range {
	var out []manifest.Range
	for _, x := range a {
		for _, y := range b {
			s, e := max(x.Start, y.Start), min(x.End, y.End)
			if s < e {
				out = append(out, manifest.Range{Start: s, End: e})
			}
		}
	}
	return out
}
