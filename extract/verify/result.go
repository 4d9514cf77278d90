package verify

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"ldx/vmcoreinfo/consumer"
)

// Severity grades what a failed check does to a consumer: package
// consumer's, shared with the VMCOREINFO key table.
type Severity = consumer.Severity

const (
	None     = consumer.None
	Info     = consumer.Info
	Cosmetic = consumer.Cosmetic
	Degraded = consumer.Degraded
	Fatal    = consumer.Fatal
)

// Status is the outcome of one check.
type Status string

const (
	Pass    Status = "pass"
	Fail    Status = "fail"
	Inform  Status = "info"    // a fact, not a defect
	Skipped Status = "skipped" // could not be evaluated (Found says why)
)

// Consumer is package consumer's: one program that reads vmcores.
type Consumer = consumer.Consumer

const (
	Crash        = consumer.Crash
	Makedumpfile = consumer.Makedumpfile
	Drgn         = consumer.Drgn
	Libkdumpfile = consumer.Libkdumpfile
	VmcoreDmesg  = consumer.VmcoreDmesg
)

// Consumers lists every consumer, in report order.
var Consumers = consumer.Each

// Effect is what a failed check does to one consumer.
type Effect struct {
	Consumer Consumer `json:"consumer"`
	Severity Severity `json:"severity"`
	// What the consumer does, in its own words where it prints any.
	What string `json:"what"`
	// Scope says which runs of the consumer the effect hits: "" for its
	// normal runs (for crash: with a vmlinux), ScopeAll for those without
	// a vmlinux too (`crash --osrelease`: the file is refused before any
	// symbol is looked at), ScopeNoVmlinux for those only (`crash
	// --osrelease` needs OSRELEASE, crash with a vmlinux reads the banner).
	Scope string `json:"scope,omitempty"`
	// Versions restricts the effect to some versions of the consumer,
	// e.g. "<0.0.27" for drgn; empty means every version.
	Versions string `json:"versions,omitempty"`
	// IfVersionKnown restricts the effect to runs whose consumer version
	// is known (RunTools): it is about the consumer, not the dump, so it
	// neither worsens the dump's static verdict nor its exit code.
	IfVersionKnown bool `json:"if_version_known,omitempty"`
}

// Effect scopes (Effect.Scope).
const (
	ScopeAll       = "all runs"
	ScopeNoVmlinux = "without a vmlinux only"
)

// Result is one named check.
type Result struct {
	// ID is the checklist row of the package documentation ("B4"), a
	// livedump defect of package livedump ("K-1"), or "Z1" for --deep's
	// full read.
	ID     ID     `json:"id"`
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Severity is the worst effect when the check fails, and otherwise
	// the severity the requirement has in the checklist.
	Severity Severity `json:"severity"`
	// Consumers are those the requirement matters to.
	Consumers []Consumer `json:"consumers"`
	// Effects say, when the check fails, what each consumer does.
	Effects []Effect `json:"effects,omitempty"`
	// Found is what the file holds; Field and Offset locate it.
	Found  string `json:"found"`
	Field  string `json:"field,omitempty"`
	Offset int64  `json:"offset"` // file offset of Field, -1 when none
	// Fix says what to do about a failure.
	Fix string `json:"fix,omitempty"`
}

// Failed reports whether the check found a defect.
func (r *Result) Failed() bool { return r.Status == Fail }

// Prediction is the verdict of the static checks for one consumer.
type Prediction struct {
	Consumer Consumer `json:"consumer"`
	// Verdict is the worst severity of the failed checks' effects on it
	// (None: it will read the dump fully).
	Verdict Severity `json:"verdict"`
	// NoVmlinux is the verdict for runs without a vmlinux (only crash
	// distinguishes: `crash --osrelease`).
	NoVmlinux Severity `json:"verdict_without_vmlinux"`
	// Checks are the IDs of the failed checks that give the verdict
	// (those at its severity).
	Checks []ID `json:"checks,omitempty"`
}

// Report is everything verify found about one file.
type Report struct {
	File string `json:"file"`
	// Kind is "file", "block device" or "xz-compressed image".
	Kind string `json:"kind"`
	Size int64  `json:"size"`
	// Format is "livedump raw device", "QEMU dump-guest-memory" or "ELF vmcore".
	Format  string `json:"format"`
	Release string `json:"release,omitempty"`
	Deep    bool   `json:"deep"`

	Checks []Result `json:"checks"`
	// Consumers is the static verdict per consumer.
	Consumers []Prediction `json:"consumers"`
	// Tools are the real consumers' verdicts (RunTools), if run.
	Tools []ToolRun `json:"tools,omitempty"`
	// Worst is the worst severity of any failed check.
	Worst    Severity      `json:"worst"`
	Duration time.Duration `json:"duration_ns"`
	// Notes are remarks about the verification itself (what was not
	// checked and why).
	Notes []string `json:"notes,omitempty"`
	// newestRecord is the newest printk message F1 decoded, which
	// RunTools expects in makedumpfile's log.
	newestRecord string
	// kdumpMethods are the compressions a kdump file's pages use (by
	// name: "zlib", "lzo", "snappy", "zstd"), utsMethod the one of
	// init_uts_ns's page: RunTools sets them against the makedumpfile
	// build it finds (H9).
	kdumpMethods []string
	utsMethod    string
	// refilterStops: a page descriptor makedumpfile rejects, or a bad
	// offset_note, stops a re-filter, which copies every kept page and the
	// note blob.
	refilterStops bool
	// taskWalkStops: drgn reads the file's first pages but not every
	// task (one part of a split dump holding the kernel image).
	taskWalkStops bool
}

// Check returns the result with the given ID, or nil.
func (r *Report) Check(id ID) *Result {
	for i := range r.Checks {
		if r.Checks[i].ID == id {
			return &r.Checks[i]
		}
	}
	return nil
}

// Failed returns the IDs of the failed checks, in report order.
func (r *Report) Failed() []ID {
	var ids []ID
	for _, c := range r.Checks {
		if c.Failed() {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// Prediction returns the static verdict for consumer c.
func (r *Report) Prediction(c Consumer) Prediction {
	for _, p := range r.Consumers {
		if p.Consumer == c {
			return p
		}
	}
	return Prediction{Consumer: c}
}

// finish computes Worst and the per-consumer predictions; versions gives
// known consumer versions (for Effect.Versions), may be nil.
func (r *Report) finish(versions map[Consumer]string) {
	r.Worst = None
	preds := map[Consumer]*Prediction{}
	// worst[consumer][check] is the worst effect of a check on a consumer.
	worst := map[Consumer]map[ID]Severity{}
	for _, c := range Consumers {
		preds[c] = &Prediction{Consumer: c}
		worst[c] = map[ID]Severity{}
	}
	var order []ID
	for _, c := range r.Checks {
		if !c.Failed() {
			continue
		}
		r.Worst = max(r.Worst, c.Severity)
		order = append(order, c.ID)
		for _, e := range c.Effects {
			p := preds[e.Consumer]
			if p == nil || !versionMatches(versions[e.Consumer], e.Versions) || (e.IfVersionKnown && versions[e.Consumer] == "") {
				continue
			}
			if e.Scope != ScopeNoVmlinux {
				worst[e.Consumer][c.ID] = max(worst[e.Consumer][c.ID], e.Severity)
			}
			if e.Scope != ScopeNoVmlinux {
				p.Verdict = max(p.Verdict, e.Severity)
			}
			if e.Scope == ScopeAll || e.Scope == ScopeNoVmlinux {
				p.NoVmlinux = max(p.NoVmlinux, e.Severity)
			}
		}
	}
	// A verdict's reasons are the checks that produce it.
	for _, c := range Consumers {
		p := preds[c]
		for _, id := range order {
			if s := worst[c][id]; s == p.Verdict && s >= Degraded && !slices.Contains(p.Checks, id) {
				p.Checks = append(p.Checks, id)
			}
		}
	}
	r.Consumers = r.Consumers[:0]
	for _, c := range Consumers {
		r.Consumers = append(r.Consumers, *preds[c])
	}
}

// Repredict recomputes the per-consumer verdicts for the given consumer
// versions (as RunTools learns them): an effect restricted to some
// versions counts only for those.
func (r *Report) Repredict(versions map[Consumer]string) { r.finish(versions) }

// versionMatches reports whether version v satisfies constraint c ("<0.0.27",
// ">=0.0.27", "" for any). An unknown version matches every constraint: the
// static verdict is the worst case over versions.
func versionMatches(v, c string) bool {
	if c == "" || v == "" {
		return true
	}
	for _, part := range strings.Split(c, ",") {
		part = strings.TrimSpace(part)
		op := strings.TrimRight(part, "0123456789.")
		want := part[len(op):]
		cmp := compareVersions(v, want)
		ok := false
		switch op {
		case "<":
			ok = cmp < 0
		case "<=":
			ok = cmp <= 0
		case ">":
			ok = cmp > 0
		case ">=":
			ok = cmp >= 0
		case "=", "==":
			ok = cmp == 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// compareVersions compares dotted numeric versions ("0.0.22" < "0.0.27").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			fmt.Sscanf(as[i], "%d", &x)
		}
		if i < len(bs) {
			fmt.Sscanf(bs[i], "%d", &y)
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
