package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ldx/extract"
	"ldx/kmod"
	"ldx/kmod/manifest"
)

// captureHooks let tests run the command against kmod/kmodtest's emulated
// machine, with a shorter wait after FINISH than users may choose.
var captureHooks struct {
	host    *kmod.Host
	quiesce *kmod.QuiesceOptions
}

// The shortest waits after FINISH a user may ask for: UNINIT straight
// after FINISH loses pages (package kmod, "Setups that crash the machine").
const (
	minSettle = 2 * time.Second
	minQuiet  = time.Second
)

func newCaptureCmd() *cobra.Command {
	var (
		mark, noClear, force, reset, dryRun, doExtract, quiet bool
		asJSON                                                bool
		output                                                string
		useKcore                                              bool
		maxRate, kfmt, kcompress                              string
		klevel                                                uint8
		q                                                     kmod.QuiesceOptions
	)
	cmd := &cobra.Command{
		Use:   "capture DEVICE | --reset | --kcore -o VMCORE",
		Short: "Take a livedump of the running kernel to a block device, safely",
		Long: `capture drives the kernel's livedump interface (/sys/kernel/livedump) to dump
the running kernel's memory to DEVICE without stopping the machine. It runs
without prompting, like dd: DEVICE is overwritten from byte 0.

Before anything is written, it checks every known way the livedump v1 code
takes the machine down or leaves an untrustworthy dump, and refuses with
the risk and the way out: no livedump support, interface busy, not root,
a randomised memory layout (INIT oopses: boot with nokaslr), too little
available memory (INIT's 1 GiB of buffers set off the OOM killer and a
panic), more CPUs than the 2 MiB per-CPU protection covers (START
double-faults), a device that is not a usable block device (START oopses),
is in use, or is smaller than the top of RAM. --force overrides only the
checks ldx cannot be sure of (marked so).

Then it clears the device's header pages, zeroes the dump range (BLKZEROOUT
or a discard that zeroes; --mark stamps every page with a per-run marker
instead, --no-clear skips this) so that pages the kernel never writes are
recognisable, and writes a capture manifest at 0xA0000 (RAM map, VMCOREINFO
address, CPUs, device, run id) for ldx extract. It writes INIT, START,
SWEEP and FINISH, waits until the device has gone quiet (UNINIT right after
FINISH loses pages), writes UNINIT, and reads the header and notes back
around the page cache to check them.

Whatever goes wrong — a refused write (the kernel log lines that explain
it are shown), SIGINT, SIGTERM — the kernel side is reset (UNINIT) and the
device is marked incomplete (header cleared, manifest status) before ldx
exits; it says which step failed. Interrupting is therefore safe; a kernel
step that is running (SWEEP takes seconds to minutes) is waited for.

Exit codes: 0 captured, 2 usage, 10 no livedump support, 11 interface busy
or another capture running (see --reset), 12 not root, 13 randomised memory
layout, 14 too little memory, 15 CPU configuration, 16 not a usable block
device, 17 device in use, 18 device too small, 19 capture failed (kernel
side reset, device marked incomplete), 20 capture failed and the kernel
side could NOT be reset, 130 interrupted (reset and marked); with
--extract, extract's codes (1, 3, 4).

--kcore -o VMCORE needs no livedump patches: it reads the running kernel's
memory through /proc/kcore, which stock kernels have, into an ELF vmcore
(written like ldx extract's: mode 0600, sparse, renamed into place when
complete). Nothing is frozen, so the dump is not a snapshot: the pages
readers depend on most (VMCOREINFO, the image's page tables, the printk
descriptors, init_task) are read first and again at the end, and the dump's
LDX note and the summary say how many changed; the CPU notes carry no
registers. Unreadable ranges are stored as zeros and listed. --max-rate
(bytes/s, e.g. 200M) paces the reads; --dry-run prints the plan. -o -
writes the vmcore to stdout as a flattened stream (makedumpfile -F's
format, for a pipe off the machine; ldx extract and makedumpfile -R turn
it back into a vmcore) and the summary to stderr. The summary says
what matters for a live capture: the method, the read window, the smear
check (the pages read twice and how many changed), the unreadable ranges
and the register-less CPU notes; --json prints it as one object (on
stderr with -o -, like the text). Exit
codes: 0 written, 4 output exists (use --force), 21 no /proc/kcore (kernel
without CONFIG_PROC_KCORE, or hidden in a container), 22 the kernel is
locked down (lockdown=confidentiality), 23 not permitted (needs root with
CAP_SYS_RAWIO), 24 the output is on a RAM-backed file system (tmpfs,
ramfs), 25 too little free space for all of RAM (--force goes ahead),
130 interrupted (the partial output is removed).`,
		Example: `  ldx capture --dry-run /dev/sdb        # the checks and the plan, nothing written
  ldx capture /dev/sdb --extract -o vmcore
  ldx capture --reset                    # bring a stuck interface back to idle
  ldx capture --kcore --dry-run -o /var/crash/vmcore
  ldx capture --kcore -o /var/crash/vmcore --max-rate 200M
  ldx capture --kcore -o - | ssh host 'cat > vmcore.flat'
  ldx capture --kcore -o /var/crash/vmcore.kdump --format kdump -d 31`,
		Args: func(cmd *cobra.Command, args []string) error {
			if useKcore {
				if len(args) > 0 || reset {
					return &exitError{exitUsage, errors.New("capture: --kcore takes no DEVICE and no --reset")}
				}
				return nil
			}
			if len(args) > 1 || (len(args) == 0 && !reset) {
				return &exitError{exitUsage, errors.New("capture: give one DEVICE (or --reset alone)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if asJSON && reset {
				return &exitError{exitUsage, errors.New("capture: --json is for captures, not --reset")}
			}
			if useKcore {
				if mark || noClear || doExtract {
					return &exitError{exitUsage, errors.New("capture: --mark, --no-clear and --extract are for livedump devices, not --kcore")}
				}
				return captureKcore(cmd, kcoreFlags{output: output, force: force, dryRun: dryRun, quiet: quiet, maxRate: maxRate,
					format: kfmt, compress: kcompress, dumpLevel: klevel, json: asJSON})
			}
			if kfmt != extract.FormatELF || kcompress != "" || klevel != 0 {
				return &exitError{exitUsage, errors.New("capture: --format, --compress and --dump-level are for --kcore; for a livedump device, give them to ldx extract")}
			}
			host := captureHooks.host
			if len(args) == 0 {
				return captureReset(out, host)
			}
			if mark && noClear {
				return &exitError{exitUsage, errors.New("capture: --mark and --no-clear exclude each other")}
			}
			if doExtract != (output != "") {
				return &exitError{exitUsage, errors.New("capture: --extract and -o VMCORE go together")}
			}
			if q.MinWait < minSettle || q.QuietFor < minQuiet {
				return &exitError{exitUsage, fmt.Errorf("capture: --settle must be at least %s and --quiet-for at least %s: UNINIT right after FINISH loses pages", minSettle, minQuiet)}
			}
			if captureHooks.quiesce != nil {
				q = *captureHooks.quiesce
			}
			if output != "" && !dryRun {
				if _, err := os.Lstat(output); err == nil {
					return &exitError{exitOutputExist, fmt.Errorf("capture: %s exists; remove it or choose another -o (checked before capturing)", output)}
				}
			}
			opt := kmod.Options{Device: args[0], Host: host, Force: force, Reset: reset, DryRun: dryRun, Quiesce: q, Tool: "ldx capture " + version}
			switch {
			case mark:
				opt.Prepare = manifest.Marked
			case noClear:
				opt.Prepare = manifest.Unprepared
			}
			// With --json stdout holds only the object: the phase lines
			// and kernel log lines of a failure go to stderr.
			text := out
			if asJSON {
				text = cmd.ErrOrStderr()
			}
			opt.Events = captureEvents(text, cmd.ErrOrStderr(), quiet)
			res, err := kmod.Capture(cmd.Context(), opt)
			if dryRun && res != nil && res.Preflight != nil && (!asJSON || err != nil) {
				printPreflight(text, res)
			}
			if err != nil {
				var we *kmod.WriteError
				if res != nil && !errors.As(err, &we) {
					for _, l := range res.KernelLog {
						fmt.Fprintf(text, "kernel log: %s\n", l)
					}
				}
				return classifyCaptureError(err)
			}
			if asJSON && (dryRun || !doExtract) {
				warnTo(cmd.ErrOrStderr(), res.Warnings)
				return writeJSON(out, newLivedumpCaptureJSON(res, dryRun))
			}
			if dryRun {
				fmt.Fprintln(out, "dry run: every check passed; nothing was written")
				return nil
			}
			if !asJSON {
				printCaptured(out, res)
			}
			if !doExtract {
				fmt.Fprintf(out, "next: ldx extract %s -o vmcore\n", res.Device)
				return nil
			}
			xopt := extract.Options{Input: res.Device, Output: output}
			if !quiet {
				xopt.Progress = newProgress(cmd.ErrOrStderr())
			}
			sum, err := extract.Run(cmd.Context(), xopt)
			if xopt.Progress != nil {
				xopt.Progress(extract.Progress{Phase: "done"})
			}
			if err != nil {
				return classifyExtractError(err)
			}
			if asJSON {
				j := newLivedumpCaptureJSON(res, false)
				j.Extract = sum
				warnTo(cmd.ErrOrStderr(), res.Warnings)
				warnTo(cmd.ErrOrStderr(), sum.Warnings)
				return writeJSON(out, j)
			}
			printSummary(out, sum)
			fmt.Fprintf(out, "next: ldx verify %s\n", output)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&mark, "mark", false, "stamp every page of the dump range with a per-run marker instead of zeroing it (exact, writes the whole range)")
	f.BoolVar(&noClear, "no-clear", false, "do not zero the dump range (pages the kernel does not write keep stale bytes); the header pages are cleared anyway")
	f.BoolVar(&force, "force", false, "override the refusals marked as overridable (where ldx cannot be sure)")
	f.BoolVar(&reset, "reset", false, "reset a busy livedump interface (UNINIT); alone, only that")
	f.BoolVar(&dryRun, "dry-run", false, "print the checks and the plan; write nothing")
	f.BoolVar(&doExtract, "extract", false, "run ldx extract on the device afterwards (needs -o)")
	f.StringVarP(&output, "output", "o", "", "the vmcore --extract writes")
	f.DurationVar(&q.MinWait, "settle", 5*time.Second, "wait at least this long after FINISH before UNINIT")
	f.DurationVar(&q.QuietFor, "quiet-for", 2*time.Second, "and until the device has written nothing for this long")
	f.DurationVar(&q.MaxWait, "max-wait", 2*time.Minute, "fail if the device is still being written this long after FINISH")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	f.BoolVar(&asJSON, "json", false, "print the summary as one JSON object on stdout (with --kcore -o -, on stderr: stdout is the stream); progress and warnings (also in the object) go to stderr")
	f.BoolVar(&useKcore, "kcore", false, "capture the running kernel through /proc/kcore (no livedump patches) into the vmcore -o names")
	f.StringVar(&maxRate, "max-rate", "", "with --kcore: read at most this many bytes per second (e.g. 200M)")
	f.StringVar(&kfmt, "format", extract.FormatELF, "with --kcore: output format, elf or kdump (kdump-compressed, as makedumpfile -c writes)")
	f.StringVar(&kcompress, "compress", "", "with --kcore --format kdump: page compression, zlib (default), zstd, snappy or none")
	f.Uint8VarP(&klevel, "dump-level", "d", 0, "with --kcore: leave pages out by makedumpfile's dump level (1 zero, 2 cache, 4 private cache, 8 user, 16 free; 31 all)")
	return cmd
}

// captureEvents prints phases as they end, notes at once, and progress.
func captureEvents(out, errOut io.Writer, quiet bool) func(kmod.Event) {
	var progress func(extract.Progress)
	if !quiet {
		progress = newProgress(errOut)
	}
	return func(e kmod.Event) {
		switch e.Kind {
		case kmod.Progress:
			if progress != nil {
				name := map[kmod.Phase]string{kmod.PhasePrepare: "prepare", kmod.PhaseSweep: "SWEEP (approx.)"}[e.Phase]
				progress(extract.Progress{Phase: name, Done: e.Done, Total: e.Total})
			}
		case kmod.PhaseEnd:
			if progress != nil {
				progress(extract.Progress{Phase: "done"})
			}
			if e.Phase == kmod.PhasePreflight && e.Text == "" {
				return
			}
			fmt.Fprintf(out, "%-10s %7.2f s  %s\n", e.Phase, e.Elapsed.Seconds(), e.Text)
		case kmod.Note:
			fmt.Fprintf(out, "%-10s %s\n", "", e.Text)
		}
	}
}

// printPreflight prints every check and the plan of a dry run (a
// refusal's risk and way out follow in the error message).
func printPreflight(w io.Writer, res *kmod.Result) {
	fmt.Fprintln(w, "\nchecks (REFUSED* = --force may override):")
	for _, r := range res.Preflight.Results {
		st := r.Status.String()
		if r.Forced {
			st = "forced"
		} else if r.Status == kmod.Refuse && r.Forcible {
			st = "REFUSED*"
		}
		fmt.Fprintf(w, "  %-14s %-9s %s\n", r.ID, st, r.Found)
	}
	if len(res.Plan) > 0 {
		fmt.Fprintln(w, "\nplan:")
		for i, p := range res.Plan {
			fmt.Fprintf(w, "  %2d. %s\n", i+1, p)
		}
	}
}

// printCaptured summarises a complete capture.
func printCaptured(w io.Writer, res *kmod.Result) {
	m := res.Manifest
	s := fmt.Sprintf("captured: %s holds a complete dump", res.Device)
	if m != nil {
		s += fmt.Sprintf(" of %s (%d CPUs, run %s, device %s)", m.Release, m.PresentCPUs, m.Nonce, m.Prepared)
	}
	fmt.Fprintln(w, s)
	if res.FailedPages != nil {
		fmt.Fprintf(w, "  kernel's failed counter: %d\n", *res.FailedPages)
	} else {
		fmt.Fprintln(w, "  kernel's failed counter: not exposed by this kernel (v1)")
	}
	for _, l := range res.KernelLog {
		fmt.Fprintf(w, "  kernel log: %s\n", l)
	}
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// captureCheckExit maps each refusal to its exit code.
var captureCheckExit = map[kmod.CheckID]int{
	kmod.CheckInterface: exitNoLivedump,
	kmod.CheckRoot:      exitNotRoot,
	kmod.CheckIdle:      exitBusy,
	kmod.CheckDevice:    exitBadDevice,
	kmod.CheckInUse:     exitDeviceInUse,
	kmod.CheckSize:      exitDeviceSmall,
	kmod.CheckLayout:    exitRandomLayout,
	kmod.CheckMemory:    exitLowMemory,
	kmod.CheckCPUs:      exitCPUs,
}

func classifyCaptureError(err error) error {
	var re *kmod.RefusedError
	var ce *kmod.Error
	switch {
	case errors.As(err, &re):
		return &exitError{captureCheckExit[re.Result.ID], err}
	case errors.As(err, &ce) && !ce.KernelReset:
		return &exitError{exitNotReset, err}
	case errors.Is(err, context.Canceled):
		return &exitError{exitInterrupted, err}
	case errors.As(err, &ce):
		return &exitError{exitCaptureFailed, err}
	}
	return err
}

// captureReset is `ldx capture --reset`.
func captureReset(w io.Writer, host *kmod.Host) error {
	st, err := kmod.Reset(host)
	switch {
	case errors.Is(err, kmod.ErrNoInterface):
		return &exitError{exitNoLivedump, err}
	case err != nil && strings.Contains(err.Error(), "needs root"):
		return &exitError{exitNotRoot, err}
	case err != nil:
		return &exitError{exitBusy, fmt.Errorf("reset: %w", err)}
	case st.Idle():
		fmt.Fprintf(w, "the livedump interface is idle (%s); nothing to reset\n", st)
	default:
		fmt.Fprintf(w, "the livedump interface was in %s; UNINIT brought it back to idle\n", st)
	}
	return nil
}
