package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/spf13/cobra"

	"ldx/elfcore/kdump"
	"ldx/elfcore/kernel/pageclass"
	"ldx/extract"
	"ldx/kmod/kcore"
)

// kcoreHost lets tests run capture --kcore against a fake /proc/kcore.
var kcoreHost *kcore.Host

type kcoreFlags struct {
	output, maxRate      string
	force, dryRun, quiet bool
	json                 bool
	format, compress     string
	dumpLevel            uint8
}

// captureKcore is `ldx capture --kcore -o VMCORE`.
func captureKcore(cmd *cobra.Command, fl kcoreFlags) error {
	out := cmd.OutOrStdout()
	if fl.output == "" {
		return &exitError{exitUsage, errors.New("capture --kcore: give the output vmcore with -o")}
	}
	opt := kcore.Options{Host: kcoreHost, Output: fl.output, Force: fl.force, DryRun: fl.dryRun,
		OutputFormat: fl.format, DumpLevel: pageclass.Level(fl.dumpLevel)}
	if fl.compress != "" {
		c, err := kdump.ParseCompression(fl.compress)
		if err != nil {
			return &exitError{exitUsage, fmt.Errorf("capture --compress: %w", err)}
		}
		opt.Compression = c
	}
	var stream *bufio.Writer
	if fl.output == "-" {
		// The vmcore goes to stdout as a flattened stream; everything
		// else goes to stderr.
		if f, ok := out.(*os.File); ok {
			if term.IsTerminal(int(f.Fd())) {
				return &exitError{exitUsage, errors.New("capture --kcore -o -: stdout is a terminal; redirect it to a file or a pipe")}
			}
			opt.StreamFile = f
		}
		stream = bufio.NewWriterSize(out, 4<<20)
		opt.Stream = stream
		out = cmd.ErrOrStderr()
	}
	if fl.maxRate != "" {
		r, err := kcore.ParseRate(fl.maxRate)
		if err != nil {
			return &exitError{exitUsage, fmt.Errorf("capture --max-rate: %w", err)}
		}
		opt.MaxRate = r
	}
	if !fl.quiet {
		opt.Progress = newProgress(cmd.ErrOrStderr())
	}
	res, err := kcore.Capture(cmd.Context(), opt)
	if opt.Progress != nil {
		opt.Progress(extract.Progress{Phase: "done"})
	}
	if res != nil && err != nil {
		// A refusal's plan shows what was found; with --json it goes
		// to stderr beside the error.
		if fl.json {
			printKcorePlan(cmd.ErrOrStderr(), res.Plan)
		} else {
			printKcorePlan(out, res.Plan)
		}
	}
	if err == nil && stream != nil && !fl.dryRun {
		err = stream.Flush()
	}
	if err != nil {
		return classifyKcoreError(err)
	}
	if fl.json {
		// With -o - stdout carries the stream: the object goes to stderr,
		// where the text summary would.
		j := newKcoreCaptureJSON(res, fl.output, stream != nil, fl.dryRun)
		switch {
		case stream != nil:
			// stderr carries the object itself.
		case res.Summary != nil:
			warnTo(cmd.ErrOrStderr(), res.Summary.Warnings)
		case res.Plan != nil:
			warnTo(cmd.ErrOrStderr(), res.Plan.Warnings)
		}
		return writeJSON(out, j)
	}
	if fl.dryRun {
		printKcorePlan(out, res.Plan)
		fmt.Fprintln(out, "dry run: every check passed; nothing was written")
		return nil
	}
	printKcoreSummary(out, res)
	if stream != nil {
		fmt.Fprintln(out, "next: ldx extract STREAM -o vmcore (or makedumpfile -R vmcore < STREAM) on the receiving side")
		return nil
	}
	fmt.Fprintf(out, "next: ldx verify %s\n", fl.output)
	return nil
}

// printKcoreSummary is the summary of a capture through /proc/kcore:
// extract's rows for what was written, then what matters for a live
// capture — the method and its read window, the smear check, the
// unreadable ranges and the register-less CPU notes.
func printKcoreSummary(w io.Writer, res *kcore.Result) {
	// extract's rows without its warnings, which come after the rows
	// below, as in every summary.
	sum := *res.Summary
	sum.Repairs, sum.Warnings = nil, nil
	printSummary(w, &sum)
	row := func(k, v string) { fmt.Fprintf(w, "  %-18s %s\n", k+":", v) }
	row("method", "kcore: the running kernel's memory read through /proc/kcore")
	row("live capture", fmt.Sprintf("not a snapshot: memory read from %s to %s (%s) while the kernel ran",
		res.Start.UTC().Format(time.RFC3339), res.End.UTC().Format(time.RFC3339), res.End.Sub(res.Start).Round(time.Millisecond)))
	changed := fmt.Sprintf("%d pages readers depend on most read first and again at the end, %d changed", res.PagesChecked, len(res.PagesChanged))
	if len(res.PagesChanged) > 0 {
		changed += ": " + res.DescribeChanged()
	}
	row("smear", changed)
	var bad uint64
	for _, r := range res.Unreadable {
		bad += r.End - r.Start
	}
	row("unreadable", fmt.Sprintf("%d ranges, %s stored as zeros (each is a warning below)", len(res.Unreadable), mib(int64(bad))))
	cpus := 0
	if res.Plan != nil {
		cpus = len(res.Plan.CPUs)
	}
	row("cpu notes", fmt.Sprintf("%d synthetic, without registers (/proc/kcore has none)", cpus))
	for _, r := range res.Summary.Repairs {
		fmt.Fprintf(w, "repaired: %s\n", r)
	}
	for _, m := range res.Summary.Warnings {
		fmt.Fprintf(w, "warning: %s\n", strings.TrimSpace(m))
	}
}

func printKcorePlan(w io.Writer, p *kcore.Plan) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "plan: read %s of %s into %s\n", p.Kcore, p.Release, p.Output)
	row := func(k, v string) { fmt.Fprintf(w, "  %-18s %s\n", k+":", v) }
	row("online cpus", fmt.Sprintf("%d %v", len(p.CPUs), p.CPUs))
	row("kernel image", fmt.Sprintf("[%#x, %#x) at %#x", p.Image.Start, p.Image.End, p.ImageVirt))
	row("direct map", fmt.Sprintf("%#x", p.PageOffset))
	row("vmcoreinfo", "from "+p.VMCOREINFOFrom)
	row("ram", fmt.Sprintf("%s in %d ranges", mib(int64(p.RAMBytes)), len(p.RAM)))
	for _, r := range p.RAM {
		fmt.Fprintf(w, "    [%#x, %#x)\n", r.Start, r.End)
	}
	if p.OutputDir != "" {
		row("estimate", fmt.Sprintf("at most %s (zero pages become holes); %s free in %s", mib(int64(p.Estimate)), mib(int64(p.Avail)), p.OutputDir))
	}
	for _, m := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", m)
	}
}

var kcoreRefusalExit = map[kcore.Reason]int{
	kcore.NoKcore:         exitNoKcore,
	kcore.LockedDown:      exitLockedDown,
	kcore.NotPermitted:    exitNotPermitted,
	kcore.RAMBackedOutput: exitRAMBacked,
	kcore.NoRoom:          exitNoRoom,
}

func classifyKcoreError(err error) error {
	var r *kcore.Refusal
	switch {
	case errors.As(err, &r):
		return &exitError{kcoreRefusalExit[r.Reason], err}
	case errors.Is(err, kcore.ErrOutputExists), errors.Is(err, extract.ErrOutputExists):
		return &exitError{exitOutputExist, err}
	case errors.Is(err, context.Canceled):
		return &exitError{exitInterrupted, errors.New("interrupted; the partial output was removed")}
	}
	return err
}
