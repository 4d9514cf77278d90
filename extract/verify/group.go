package verify

import (
	"encoding/binary"
	"slices"
	"strings"
)

// group collects the results of one check group. Its checks read the
// facts (embedded; no check writes to them) and append to the group's own
// results only, so nothing one check concludes reaches another except as
// a return value passed on explicitly.
type group struct {
	*facts
	out []Result
}

func (f *facts) newGroup() *group { return &group{facts: f} }

// result returns the group's result for id, if it emitted one.
func (c *group) result(id ID) *Result {
	for i := range c.out {
		if c.out[i].ID == id {
			return &c.out[i]
		}
	}
	return nil
}

// emit adds a result, filling name and consumers from the catalog and
// the severity from the effects of a failure.
func (c *group) emit(r Result) {
	e := lookup(r.ID)
	r.Name = e.Name
	if r.Consumers == nil {
		r.Consumers = e.Consumers
	}
	if r.Field == "" && r.Offset == 0 {
		r.Offset = -1
	}
	if r.Status == Fail {
		sev := r.Severity
		for _, ef := range r.Effects {
			if !ef.IfVersionKnown {
				sev = max(sev, ef.Severity)
			}
		}
		if sev == None {
			sev = e.Severity
		}
		r.Severity = sev
	} else if r.Severity == None {
		r.Severity = e.Severity
	}
	c.out = append(c.out, r)
}

func (c *group) pass(id ID, found string) { c.emit(Result{ID: id, Status: Pass, Found: found}) }
func (c *group) inform(id ID, found string) {
	c.emit(Result{ID: id, Status: Inform, Found: found, Severity: Info})
}
func (c *group) skip(id ID, why string) { c.emit(Result{ID: id, Status: Skipped, Found: why}) }

// fail adds a failed result; loc is the field and its file offset.
func (c *group) fail(id ID, found, fix string, loc location, effects ...Effect) {
	c.emit(Result{ID: id, Status: Fail, Found: found, Fix: fix, Field: loc.field, Offset: loc.off, Effects: effects})
}

// failSev adds a failed result with an explicit severity (for defects no
// consumer notices in a way an Effect describes).
func (c *group) failSev(id ID, sev Severity, found, fix string, loc location, effects ...Effect) {
	c.emit(Result{ID: id, Status: Fail, Severity: sev, Found: found, Fix: fix, Field: loc.field, Offset: loc.off, Effects: effects})
}

type location struct {
	field string
	off   int64
}

var nowhere = location{off: -1}

func at(field string, off int64) location { return location{field, off} }

// eff builds an Effect.
func eff(c Consumer, sev Severity, what string) Effect {
	return Effect{Consumer: c, Severity: sev, What: what}
}

// novm marks an effect that hits runs without a vmlinux as well.
func (e Effect) novm() Effect { e.Scope = ScopeAll; return e }

// onlyNovm marks an effect that hits only runs without a vmlinux.
func (e Effect) onlyNovm() Effect { e.Scope = ScopeNoVmlinux; return e }

// ver restricts an effect to some versions of its consumer.
func (e Effect) ver(v string) Effect { e.Versions = v; return e }

// skipRest returns a skipped result for every catalog check that applies
// and that rep does not hold yet.
func skipRest(f *facts, rep *Report, why string) []Result {
	c := f.newGroup()
	for _, e := range catalog {
		if rep.Check(e.ID) == nil && f.applies(e.ID) {
			c.skip(e.ID, why)
		}
	}
	return c.out
}

// applies reports whether a check belongs in this report: the kdump
// checks only (and only they) for kdump-compressed files, the livedump
// defects only for raw livedump devices, the full reads only with Deep.
func (f *facts) applies(id ID) bool {
	switch {
	case strings.HasPrefix(string(id), "H"):
		return f.kdump && (id != H5 || f.opt.Deep)
	case f.kdump:
		return id == G1 // whether each consumer knows the kernel holds for any format
	case strings.HasPrefix(string(id), "K-") && id != K7:
		return f.livedump
	case id == Z1:
		return f.opt.Deep
	case strings.HasPrefix(string(id), "V"):
		return f.opt.Vmlinux != nil
	}
	return true
}

// order sorts the results into catalog order.
func (r *Report) order() {
	rank := map[ID]int{}
	for i, e := range catalog {
		rank[e.ID] = i
	}
	slices.SortStableFunc(r.Checks, func(a, b Result) int { return rank[a.ID] - rank[b.ID] })
}

// u16, u32, u64 read little-endian fields of the ELF header.
func (f *facts) u16(off int) uint16 { return binary.LittleEndian.Uint16(f.hdr[off:]) }
func (f *facts) u32(off int) uint32 { return binary.LittleEndian.Uint32(f.hdr[off:]) }
func (f *facts) u64(off int) uint64 { return binary.LittleEndian.Uint64(f.hdr[off:]) }
