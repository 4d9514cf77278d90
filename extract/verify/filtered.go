package verify

import (
	"cmp"
	"fmt"
	"slices"

	"ldx/elfcore/kernel/pageclass"
)

// filteredChecks is L1: whether a dump level left pages out (doc.go,
// "Checks of ldx's own"). Pages of the kernel's present memory sections
// in no PT_LOAD's file data are counted, and those that the dump's own
// struct pages say are free, cache or user pages (level 30's classes).
func filteredChecks(f *facts) []Result {
	c := f.newGroup()
	c.checkFiltered()
	return c.out
}

func (c *group) checkFiltered() {
	if c.mkd == nil || c.info == nil {
		c.inform(L1, "cannot tell whether pages were left out: no page walk through VMCOREINFO")
		return
	}
	secs, err := c.mkd.PresentSections(c.info)
	if err != nil {
		c.inform(L1, "cannot tell whether pages were left out: "+err.Error())
		return
	}
	type span struct{ start, end uint64 }
	var held []span
	for _, p := range c.loads {
		if p.Filesz > 0 {
			held = append(held, span{p.Paddr / pageSize, (p.Paddr + p.Filesz) / pageSize})
		}
	}
	slices.SortFunc(held, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	// Merge overlaps (the kernel-image PT_LOAD lies over RAM segments).
	var merged []span
	for _, s := range held {
		if n := len(merged); n > 0 && s.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	res, cerr := pageclass.Classify(c.ctx, c.mkd, c.info, pageclass.All&^pageclass.Zero, secs)
	var missing, classed uint64
	h := 0
	for _, s := range secs {
		for pfn := s.Start / pageSize; pfn < s.End/pageSize; pfn++ {
			for h < len(merged) && merged[h].end <= pfn {
				h++
			}
			if h < len(merged) && merged[h].start <= pfn {
				continue
			}
			missing++
			if cerr == nil && res.Excluded(pfn) {
				classed++
			}
		}
	}
	switch {
	case cerr != nil:
		c.inform(L1, fmt.Sprintf("%d pages of the kernel's memory sections are in no PT_LOAD; what they are cannot be told: %v", missing, cerr))
	case classed == 0:
		c.pass(L1, fmt.Sprintf("not filtered: no free, cache or user page is missing (%d pages of the kernel's memory sections are in no PT_LOAD: firmware holes)", missing))
	default:
		c.inform(L1, fmt.Sprintf("filtered: a dump level left pages out; %d pages of the kernel's memory sections are in no PT_LOAD, %d of them free, cache or user pages by the dump's struct pages (of all such pages in the dump: %d free, %d cache, %d private cache, %d user)",
			missing, classed, res.Counts.Free, res.Counts.Cache, res.Counts.CachePrivate, res.Counts.User))
	}
}
