package pageclass

import (
	"context"
	"ldx/elfcore"
	"testing"
)

// FuzzClassify runs the classification over random struct page memory
// (the whole section's map is the fuzz input) under both kernel
// generations' VMCOREINFO: it must never panic, hang or exclude a page
// outside RAM, and its counts must match the bitmap.
func FuzzClassify(f *testing.F) {
	for _, pages := range []map[uint64]sp{pages61, pages612} {
		f.Add(kernel(pages)[memMapVA], uint8(31), false)
	}
	f.Fuzz(func(t *testing.T, mm []byte, level uint8, is612 bool) {
		m := kernel(nil)
		copy(m[memMapVA], mm)
		text := info61
		if is612 {
			text = info612
		}
		ramPages := uint64(len(mm)%nPages) + 1
		res, err := Classify(context.Background(), m, info(t, text), Level(level), []elfcore.Range{{Start: 0, End: ramPages * 4096}})
		if err != nil {
			if Level(level) <= All {
				t.Fatalf("level %d: %v", level, err)
			}
			return
		}
		var n uint64
		for pfn := range uint64(nPages) {
			if res.Excluded(pfn) {
				if pfn >= ramPages {
					t.Fatalf("pfn %d excluded outside RAM (%d pages)", pfn, ramPages)
				}
				n++
			}
		}
		if n != res.Counts.Total() {
			t.Fatalf("%d pages excluded, counts say %d", n, res.Counts.Total())
		}
	})
}
