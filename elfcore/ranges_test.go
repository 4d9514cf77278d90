package elfcore

import (
	"slices"
	"testing"
)

func TestRange(t *testing.T) {
	for _, tc := range []struct {
		r       Range
		len     uint64
		in, out []uint64
	}{
		{Range{0x1000, 0x3000}, 0x2000, []uint64{0x1000, 0x2fff}, []uint64{0xfff, 0x3000}},
		{Range{0x1000, 0x1000}, 0, nil, []uint64{0x1000}},
		{Range{0x3000, 0x1000}, 0, nil, []uint64{0x1000, 0x2000, 0x3000}},
	} {
		if got := tc.r.Len(); got != tc.len {
			t.Errorf("%x.Len() = %#x, want %#x", tc.r, got, tc.len)
		}
		for _, pa := range tc.in {
			if !tc.r.Contains(pa) {
				t.Errorf("%x.Contains(%#x) = false", tc.r, pa)
			}
		}
		for _, pa := range tc.out {
			if tc.r.Contains(pa) {
				t.Errorf("%x.Contains(%#x) = true", tc.r, pa)
			}
		}
	}
}

func TestRangeSets(t *testing.T) {
	a := []Range{{0x5000, 0x9000}, {0x1000, 0x3000}}
	SortRanges(a)
	if want := []Range{{0x1000, 0x3000}, {0x5000, 0x9000}}; !slices.Equal(a, want) {
		t.Errorf("SortRanges = %x, want %x", a, want)
	}
	if got := Covered(a); got != 0x6000 {
		t.Errorf("Covered = %#x, want 0x6000", got)
	}
	b := []Range{{0x2000, 0x6000}, {0x8000, 0xa000}}
	if got, want := IntersectRanges(a, b), []Range{{0x2000, 0x3000}, {0x5000, 0x6000}, {0x8000, 0x9000}}; !slices.Equal(got, want) {
		t.Errorf("IntersectRanges = %x, want %x", got, want)
	}
	if got := IntersectRanges(a, nil); got != nil {
		t.Errorf("IntersectRanges with nothing = %x, want none", got)
	}
}

func TestIsZero(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 3*4096 + 5} {
		b := make([]byte, n)
		if !IsZero(b) {
			t.Errorf("IsZero(%d zero bytes) = false", n)
		}
		for _, at := range []int{0, n / 2, n - 1} {
			if n == 0 {
				continue
			}
			b[at] = 1
			if IsZero(b) {
				t.Errorf("IsZero(%d bytes, byte %d set) = true", n, at)
			}
			b[at] = 0
		}
	}
}
