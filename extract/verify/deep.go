package verify

import (
	"fmt"
	"slices"
	"strings"

	"ldx/elfcore"
)

// deepChecks is Z1: with Options.Deep, every byte of segment data is read
// once (segments sharing file bytes, like ldx's kernel-image PT_LOAD and
// its zero segments, are read once): how much of it is zero pages, and
// which ranges cannot be read at all (I/O errors, a file cut short).
func deepChecks(f *facts) []Result {
	c := f.newGroup()
	c.checkDeep()
	return c.out
}

func (c *group) checkDeep() {
	if !c.opt.Deep {
		return
	}
	type span struct{ start, end uint64 }
	var spans []span
	for _, p := range c.loads {
		if p.Filesz > 0 {
			spans = append(spans, span{p.Off, p.Off + p.Filesz})
		}
	}
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	var merged []span
	for _, s := range spans {
		if n := len(merged); n > 0 && s.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	var total uint64
	for _, s := range merged {
		total += s.end - s.start
	}
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	var done, zeroPages, pages uint64
	var bad []string
	for _, s := range merged {
		for off := s.start; off < s.end; off += chunk {
			if err := c.ctx.Err(); err != nil {
				c.skip(Z1, "interrupted")
				return
			}
			n := min(uint64(chunk), s.end-off)
			got, err := c.raw.ReadAt(buf[:n], int64(off))
			if uint64(got) < n {
				bad = append(bad, fmt.Sprintf("file [%#x, %#x): %v", off+uint64(got), s.end, err))
				done += s.end - off
				break
			}
			for p := uint64(0); p < n; p += pageSize {
				pages++
				if elfcore.IsZero(buf[p:min(n, p+pageSize)]) {
					zeroPages++
				}
			}
			done += n
			if c.opt.Progress != nil {
				c.opt.Progress(int64(done), int64(total))
			}
		}
	}
	pct := 0.0
	if pages > 0 {
		pct = 100 * float64(zeroPages) / float64(pages)
	}
	found := fmt.Sprintf("%s of segment data read: %d of %d pages are zero (%.1f%%)", mib(total), zeroPages, pages, pct)
	if len(bad) == 0 {
		c.inform(Z1, found)
		return
	}
	if len(bad) > 3 {
		bad = append(bad[:3], fmt.Sprintf("… (%d ranges)", len(bad)))
	}
	var e []Effect
	for _, k := range all {
		e = append(e, eff(k, Degraded, "read errors for the memory in these ranges"))
	}
	c.fail(Z1, found+"; unreadable: "+strings.Join(bad, ", "), "copy the dump again from a healthy medium", nowhere, e...)
}
