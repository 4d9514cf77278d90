package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"ldx/extract"
	"ldx/kmod"
	"ldx/kmod/kcore"
)

// kcoreCaptureJSON is `ldx capture --kcore --json`: what the text summary
// says, as one object. Addresses are "0x…" strings, as in every --json.
type kcoreCaptureJSON struct {
	Method string `json:"method"` // "kcore"
	DryRun bool   `json:"dry_run"`
	// Output is the vmcore's path, or "-" for a stream to stdout.
	Output string      `json:"output"`
	Stream bool        `json:"stream"`
	Plan   *kcore.Plan `json:"plan"`
	// The read window: nothing was frozen between Start and End.
	Start    *time.Time    `json:"start,omitempty"`
	End      *time.Time    `json:"end,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Smear    *smearJSON    `json:"smear,omitempty"`
	// Unreadable are physical ranges stored as zeros.
	Unreadable      []rangeJSON      `json:"unreadable"`
	UnreadableBytes uint64           `json:"unreadable_bytes"`
	CPUNotes        cpuNotesJSON     `json:"cpu_notes"`
	Summary         *extract.Summary `json:"summary,omitempty"`
}

// smearJSON is the check of the pages readers depend on most, read first
// and again at the end.
type smearJSON struct {
	PagesChecked int               `json:"pages_checked"`
	PagesChanged int               `json:"pages_changed"`
	Changed      []changedPageJSON `json:"changed"`
}

type changedPageJSON struct {
	Phys  hexU64 `json:"phys"`
	Holds string `json:"holds"`
}

// cpuNotesJSON says the CPU notes are there for the tools but carry no
// registers: /proc/kcore has none.
type cpuNotesJSON struct {
	Count     int  `json:"count"`
	Synthetic bool `json:"synthetic"`
	Registers bool `json:"registers"`
}

func newKcoreCaptureJSON(res *kcore.Result, output string, stream, dryRun bool) *kcoreCaptureJSON {
	j := &kcoreCaptureJSON{Method: "kcore", DryRun: dryRun, Output: output, Stream: stream, Plan: res.Plan, Unreadable: []rangeJSON{}}
	if res.Plan != nil {
		j.CPUNotes = cpuNotesJSON{Count: len(res.Plan.CPUs), Synthetic: true}
	}
	if dryRun {
		return j
	}
	j.Start, j.End, j.Duration = &res.Start, &res.End, res.End.Sub(res.Start)
	j.Smear = &smearJSON{PagesChecked: res.PagesChecked, PagesChanged: len(res.PagesChanged), Changed: []changedPageJSON{}}
	for _, pa := range res.PagesChanged {
		j.Smear.Changed = append(j.Smear.Changed, changedPageJSON{hexU64(pa), res.Changed[pa]})
	}
	for _, r := range res.Unreadable {
		j.Unreadable = append(j.Unreadable, rangeJSON{hexU64(r.Start), hexU64(r.End)})
		j.UnreadableBytes += r.End - r.Start
	}
	j.Summary = res.Summary
	return j
}

// livedumpCaptureJSON is `ldx capture DEVICE --json`: the capture's
// result (device, manifest, phases, read-back, the kernel's failed
// counter, kernel log lines, warnings; a dry run's plan), the preflight
// checks, and with --extract the extract summary.
type livedumpCaptureJSON struct {
	Method string `json:"method"` // "livedump"
	DryRun bool   `json:"dry_run"`
	*kmod.Result
	Checks  []checkJSON      `json:"checks,omitempty"`
	Extract *extract.Summary `json:"extract,omitempty"`
}

type checkJSON struct {
	ID       kmod.CheckID `json:"id"`
	Status   string       `json:"status"`
	Found    string       `json:"found"`
	Forcible bool         `json:"forcible,omitempty"`
	Forced   bool         `json:"forced,omitempty"`
}

func newLivedumpCaptureJSON(res *kmod.Result, dryRun bool) *livedumpCaptureJSON {
	j := &livedumpCaptureJSON{Method: "livedump", DryRun: dryRun, Result: res}
	if res.Preflight != nil {
		for _, r := range res.Preflight.Results {
			j.Checks = append(j.Checks, checkJSON{ID: r.ID, Status: r.Status.String(), Found: r.Found, Forcible: r.Forcible, Forced: r.Forced})
		}
	}
	return j
}

// warnTo repeats a --json summary's warnings on stderr, where a person
// running the command sees them without reading the object.
func warnTo(w io.Writer, warnings []string) {
	for _, m := range warnings {
		fmt.Fprintf(w, "warning: %s\n", strings.TrimSpace(m))
	}
}
