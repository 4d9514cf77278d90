package dump

import (
	"slices"

	"ldx/elfcore"
)

// clipRanges returns the page-aligned parts of ranges inside [lo, hi):
// starts rounded down and ends rounded up, since the kernel dumps every
// page a RAM range overlaps (e820__mapped_any).
func clipRanges(ranges []elfcore.Range, lo, hi uint64) []elfcore.Range {
	var out []elfcore.Range
	sorted := slices.Clone(ranges)
	elfcore.SortRanges(sorted)
	for _, r := range sorted {
		s, e := max(pageDown(r.Start), lo), min(pageUp(r.End), hi)
		if s >= e {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End >= s {
			out[n-1].End = max(out[n-1].End, e)
			continue
		}
		out = append(out, elfcore.Range{Start: s, End: e})
	}
	return out
}
