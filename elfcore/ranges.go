package elfcore

import (
	"cmp"
	"slices"
)

// Range is a physical address range [Start, End): the one range type of
// the project, for RAM maps, PT_LOAD extents, SPARSEMEM sections and the
// capture manifest alike (its JSON field names are part of the manifest
// format).
type Range struct {
	Start uint64 `json:"start"`
	End   uint64 `json:"end"`
}

// Len is the number of bytes in r (0 for an empty or inverted range).
func (r Range) Len() uint64 {
	if r.End <= r.Start {
		return 0
	}
	return r.End - r.Start
}

// Contains reports whether pa lies in r.
func (r Range) Contains(pa uint64) bool { return pa >= r.Start && pa < r.End }

// Covered is the total length of ranges (which must not overlap).
func Covered(ranges []Range) uint64 {
	var n uint64
	for _, r := range ranges {
		n += r.Len()
	}
	return n
}

// SortRanges sorts ranges by start address in place.
func SortRanges(ranges []Range) {
	slices.SortFunc(ranges, func(a, b Range) int { return cmp.Compare(a.Start, b.Start) })
}

// IntersectRanges returns the parts of a that lie in b.
func IntersectRanges(a, b []Range) []Range {
	var out []Range
	for _, x := range a {
		for _, y := range b {
			s, e := max(x.Start, y.Start), min(x.End, y.End)
			if s < e {
				out = append(out, Range{Start: s, End: e})
			}
		}
	}
	return out
}
