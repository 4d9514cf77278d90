package kcore

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kdump"
	"ldx/elfcore/kernel/pageclass"
	"ldx/extract"
	"ldx/extract/dump"
)

// Options configure a capture through /proc/kcore.
type Options struct {
	Host   *Host // default DefaultHost()
	Output string
	Force  bool // replace an existing output; go ahead without room for the estimate
	DryRun bool // check and plan, write nothing
	// MaxRate caps the read rate in bytes per second (0: no cap).
	MaxRate  int64
	Progress func(extract.Progress)
	// Stream, if set, receives the vmcore as a flattened stream instead
	// of the file Output names (ldx capture --kcore -o -); StreamFile,
	// if set, is the file under it (stdout), whose file system is
	// checked (see CheckStream).
	Stream     io.Writer
	StreamFile *os.File
	// OutputFormat, Compression and DumpLevel are extract's: a kdump-
	// compressed output, its page compression, makedumpfile's dump level.
	OutputFormat string
	Compression  kdump.Compression
	DumpLevel    pageclass.Level
}

// Plan is what a capture will read and write.
type Plan struct {
	Kcore          string          `json:"kcore"`
	Release        string          `json:"release"`
	CPUs           []int           `json:"online_cpus"`
	RAM            []elfcore.Range `json:"ram"`
	RAMBytes       uint64          `json:"ram_bytes"`
	Image          elfcore.Range   `json:"image"`
	ImageVirt      uint64          `json:"image_virt"`
	PageOffset     uint64          `json:"page_offset"`
	VMCOREINFOFrom string          `json:"vmcoreinfo_source"`
	Output         string          `json:"output"`
	OutputDir      string          `json:"output_dir,omitempty"`
	Avail          uint64          `json:"output_avail_bytes"`
	Estimate       uint64          `json:"estimate_bytes"` // upper bound: all of RAM
	Warnings       []string        `json:"warnings"`
}

// Result is what a capture did.
type Result struct {
	Plan         *Plan            `json:"plan"`
	Summary      *extract.Summary `json:"summary,omitempty"`
	Start        time.Time        `json:"start"`
	End          time.Time        `json:"end"`
	PagesChecked int              `json:"pages_checked"`
	PagesChanged []uint64         `json:"pages_changed"`
	// Changed says what each changed page holds, by physical address.
	Changed    map[uint64]string `json:"-"`
	Unreadable []elfcore.Range   `json:"unreadable"`
}

// InputKind is the summary's input kind for a capture through /proc/kcore.
const InputKind dump.SourceKind = "live kernel memory"

// headerRoom is what the estimate adds to RAM for headers and notes.
const headerRoom = 1 << 20

// Capture checks the host and the output, then reads the running kernel's
// memory through /proc/kcore into an ELF vmcore. A refusal is a *Refusal,
// returned before anything is written; with DryRun it returns the plan.
func Capture(ctx context.Context, opt Options) (*Result, error) {
	h := opt.Host
	if h == nil {
		h = DefaultHost()
	}
	s, err := Open(h)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	plan := &Plan{Kcore: s.Path, CPUs: s.CPUs, RAM: s.RAM, RAMBytes: s.RAMBytes(), Image: s.Image, ImageVirt: s.ImageVirt,
		PageOffset: s.PageOffset, VMCOREINFOFrom: s.VMCOREINFOFrom, Output: opt.Output,
		Estimate: s.RAMBytes() + headerRoom, Warnings: append([]string{}, s.Warnings...)}
	plan.Release, _ = s.Info.OSRelease()
	res := &Result{Plan: plan}
	if opt.Stream != nil {
		plan.Output = "- (flattened stream)"
		if err := CheckStream(h, opt.StreamFile); err != nil {
			return res, err
		}
	} else {
		oc, err := CheckOutput(h, opt.Output, plan.Estimate, opt.Force)
		if oc != nil {
			plan.OutputDir, plan.Avail = oc.Dir, oc.Avail
		}
		if err != nil {
			return res, err
		}
	}
	if opt.DryRun {
		return res, nil
	}

	pages, what, warns := s.CriticalPages()
	plan.Warnings = append(plan.Warnings, warns...)
	res.Start = time.Now()
	before := s.hashPages(pages)
	res.PagesChecked = len(pages)
	live := newLiveReader(ctx, s.Phys, opt.MaxRate)
	note := &dump.CaptureNote{Method: "kcore", Start: res.Start, End: res.Start}
	d := s.dump(live, note.Note())
	final := func() ([]elfcore.Note, error) {
		res.PagesChanged = s.changed(before)
		res.Changed = map[uint64]string{}
		for _, pa := range res.PagesChanged {
			res.Changed[pa] = what[pa]
		}
		res.End = time.Now()
		res.Unreadable = live.Unreadable()
		note.End, note.PagesChecked, note.PagesChanged = res.End, res.PagesChecked, len(res.PagesChanged)
		for _, r := range res.Unreadable {
			note.UnreadableBytes += r.End - r.Start
		}
		notes := append([]elfcore.Note(nil), d.Notes...)
		for i := range notes {
			if notes[i].Is(dump.NameLDX, dump.NT_LDX_CAPTURE) {
				notes[i] = note.Note()
			}
		}
		return notes, nil
	}
	sum, err := extract.Write(ctx, d, extract.Options{Input: s.Path, Output: opt.Output, Force: opt.Force, Progress: opt.Progress, FinalNotes: final, Stream: opt.Stream,
		OutputFormat: opt.OutputFormat, Compression: opt.Compression, DumpLevel: opt.DumpLevel})
	res.Summary = sum
	if sum != nil {
		sum.InputKind, sum.InputSize = InputKind, int64(plan.RAMBytes)
	}
	if err != nil {
		return res, err
	}
	if n := len(res.PagesChanged); n > 0 {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("live capture: %d of the %d pages read first and again at the end changed while memory was read (%s): %s; structures in them may not match the rest of the dump", n, res.PagesChecked, res.End.Sub(res.Start).Round(time.Millisecond), describePages(res.PagesChanged, res.Changed)))
	}
	for _, r := range res.Unreadable {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("physical [%#x, %#x) could not be read and is stored as zeros", r.Start, r.End))
	}
	return res, nil
}

// dump presents the source as a dump.Dump whose memory is read through
// live, with one register-less NT_PRSTATUS per online CPU, the LDX note
// and VMCOREINFO last.
func (s *Source) dump(live *liveReader, ldx elfcore.Note) *dump.Dump {
	var notes []elfcore.Note
	for _, cpu := range s.CPUs {
		st := elfcore.PRStatus{Pid: uint32(cpu + 1)}
		notes = append(notes, st.Note())
	}
	notes = append(notes, ldx, elfcore.Note{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: s.VMCOREINFO})
	rep := &dump.Report{Input: s.Path, Format: Format, CPUs: len(s.CPUs), VMCOREINFO: s.VMCOREINFOFrom,
		CPUNotes: dump.NoteCounts{Rebuilt: len(s.CPUs)}, RAMRanges: len(s.RAM), Repairs: []string{},
		Warnings: append([]string{fmt.Sprintf("live capture: memory was read while the kernel ran (not a snapshot); the %d CPU notes are synthetic, without registers (/proc/kcore has none): no tool can unwind the tasks that were running", len(s.CPUs))}, s.Warnings...)}
	rep.Release, _ = s.Info.OSRelease()
	return &dump.Dump{Format: Format, Phys: s.Phys, Memory: live, RAM: s.RAM, Image: s.Image, ImageVirt: s.ImageVirt,
		PageOffset: s.PageOffset, Notes: notes, VMCOREINFO: s.Info, Report: rep}
}

// DescribeChanged names the pages that changed, with what they hold.
func (r *Result) DescribeChanged() string { return describePages(r.PagesChanged, r.Changed) }

// describePages names pages by role, at most 8 of them: "0x1234000
// (printk descs)".
func describePages(pages []uint64, what map[uint64]string) string {
	var parts []string
	for i, pa := range pages {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("and %d more", len(pages)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%#x (%s)", pa, what[pa]))
	}
	return strings.Join(parts, ", ")
}
