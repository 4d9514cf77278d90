package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"ldx/elfcore/kdump"
	"ldx/extract"
	"ldx/extract/dump"
)

func newExtractCmd() *cobra.Command {
	var opt extract.Options
	var asJSON, quiet bool
	var vmlinuxPath, compress string
	cmd := &cobra.Command{
		Use:   "extract DEVICE|IMAGE -o VMCORE",
		Short: "Turn a livedump device or image into a compact ELF vmcore (or a kdump-compressed file)",
		Long: `extract reads a livedump block device (or a raw image of one, plain or
xz-compressed) and writes an ELF vmcore that crash, makedumpfile and drgn
open: notes first and complete (VMCOREINFO recovered from the dumped memory
when the kernel cut it off), PT_LOADs only where RAM is, pages the kernel
never wrote presented as zeros. The vmcore is a sparse file: zero pages take
no disk space (copy it with cp, rsync -S or tar -S to keep it so).

--vmlinux names the dumped kernel's debug vmlinux (from its -dbg package).
It is used only when the dump's VMCOREINFO cannot be recovered from the
dumped memory: the kernel image is then found in the memory by the
vmlinux's linux_banner (KASLR offset, phys_base, paging depth) and the
VMCOREINFO the kernel would have written is rebuilt from the vmlinux and
the variables it prints, read from the memory. The summary says so, and
lists the keys it could not rebuild (CRASHTIME).

--format kdump writes the same dump as a kdump-compressed file instead, the
format makedumpfile -c writes: pages compressed one by one (--compress zlib,
the default, which every reader takes; zstd and snappy, which crash and drgn
read but makedumpfile 1.7.2 as Debian 12 ships it does not; none), on all
cores. -d 1 leaves zero pages out as makedumpfile does: their descriptors
share one page of zeros.

The input is only read. The output is created with mode 0600 under a
temporary name and renamed into place when complete; an existing file is
replaced only with --force.

Exit codes: 0 written, 1 failure, 2 usage, 3 unusable input, 4 output
exists, 130 interrupted.`,
		Example: `  ldx extract /dev/sdb -o vmcore
  ldx extract /dev/sdb -o vmcore.kdump --format kdump -d 1
  ldx extract livedump.img.xz -o vmcore --json
  ldx extract /dev/sdb -o vmcore --vmlinux /usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Input = args[0]
			if opt.Output == "" {
				return &exitError{exitUsage, errors.New("extract: -o VMCORE is required")}
			}
			if cmd.Flags().Changed("compress") && opt.OutputFormat != extract.FormatKdump {
				return &exitError{exitUsage, errors.New("extract: --compress needs --format kdump")}
			}
			c, err := kdump.ParseCompression(compress)
			if err != nil {
				return &exitError{exitUsage, fmt.Errorf("extract: --compress: %w", err)}
			}
			opt.Compression = c
			if vmlinuxPath != "" {
				v, err := openVmlinux("extract", vmlinuxPath)
				if err != nil {
					return err
				}
				defer v.Close()
				opt.Vmlinux = v
			}
			stderr := cmd.ErrOrStderr()
			if !quiet {
				opt.Progress = newProgress(stderr)
			}
			sum, err := extract.Run(cmd.Context(), opt)
			if p, ok := opt.Progress, opt.Progress != nil; ok {
				p(extract.Progress{Phase: "done"})
			}
			if err != nil {
				return classifyExtractError(err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(sum)
			}
			printSummary(cmd.OutOrStdout(), sum)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opt.Output, "output", "o", "", "the vmcore to write")
	f.BoolVar(&opt.Force, "force", false, "replace the output if it exists")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	f.StringVar(&opt.OutputFormat, "format", extract.FormatELF, "output format: elf (a sparse ELF vmcore) or kdump (kdump-compressed, as makedumpfile -c writes)")
	f.StringVar(&compress, "compress", "zlib", "kdump page compression: zlib, zstd, snappy or none")
	f.Uint8VarP((*uint8)(&opt.DumpLevel), "dump-level", "d", 0, "leave pages out by makedumpfile's dump level: sum of 1 zero, 2 cache, 4 private cache, 8 user data, 16 free pages (31: all)")
	f.StringVar(&vmlinuxPath, "vmlinux", "", "debug vmlinux of the dumped kernel: rebuild VMCOREINFO from it when the dump's is lost")
	return cmd
}

func classifyExtractError(err error) error {
	var ie *dump.InputError
	switch {
	case errors.As(err, &ie):
		return &exitError{exitBadInput, err}
	case errors.Is(err, extract.ErrOptions):
		return &exitError{exitUsage, err}
	case errors.Is(err, extract.ErrOutputExists):
		return &exitError{exitOutputExist, err}
	case errors.Is(err, context.Canceled):
		return &exitError{exitInterrupted, errors.New("interrupted; the partial output was removed")}
	}
	return err
}

// newProgress renders progress on w: a bar on a terminal, and a plain line
// every few seconds otherwise (serial consoles, logs, CI).
func newProgress(w io.Writer) func(extract.Progress) {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	var bar *progressbar.ProgressBar
	var phase string
	var lastLine time.Time
	return func(p extract.Progress) {
		if p.Phase == "done" {
			if bar != nil {
				bar.Finish()
				fmt.Fprintln(w)
			}
			return
		}
		if p.Phase != phase {
			if bar != nil {
				bar.Finish()
				fmt.Fprintln(w)
			}
			phase, bar = p.Phase, nil
			if tty {
				bar = progressbar.NewOptions64(p.Total, progressbar.OptionSetWriter(w),
					progressbar.OptionSetDescription(p.Phase), progressbar.OptionShowBytes(true),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetWidth(30),
					progressbar.OptionShowCount())
			}
			lastLine = time.Time{}
		}
		if bar != nil {
			bar.Set64(p.Done)
			return
		}
		if now := time.Now(); now.Sub(lastLine) >= 5*time.Second || (p.Done == p.Total && p.Total > 0) {
			pct := 0.0
			if p.Total > 0 {
				pct = 100 * float64(p.Done) / float64(p.Total)
			}
			fmt.Fprintf(w, "%s: %s of %s (%.0f%%)\n", p.Phase, mib(p.Done), mib(p.Total), pct)
			lastLine = now
		}
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func printSummary(w io.Writer, s *extract.Summary) {
	fmt.Fprintf(w, "wrote %s\n", s.Output)
	row := func(k, v string) { fmt.Fprintf(w, "  %-18s %s\n", k+":", v) }
	row("input", fmt.Sprintf("%s (%s, %s)", s.Input, s.InputKind, mib(s.InputSize)))
	row("format", s.Format.String())
	if s.Release != "" {
		row("kernel", s.Release)
	}
	if s.CrashTime != nil {
		row("captured", s.CrashTime.Format(time.RFC3339))
	}
	row("cpus", fmt.Sprintf("%d (%d notes kept, %d rebuilt)", s.CPUs, s.CPUNotes.Kept, s.CPUNotes.Rebuilt))
	row("vmcoreinfo", "from "+s.VMCOREINFO)
	if s.Manifest {
		row("capture manifest", "yes, device "+s.Prepared)
	} else if s.Format == dump.FormatLivedump {
		// Only a livedump device ldx capture prepared has one.
		row("capture manifest", "none")
	}
	if k := s.Kdump; k != nil {
		row("output format", fmt.Sprintf("kdump-compressed, %s, dump level %d", k.Compression, k.DumpLevel))
		row("memory", fmt.Sprintf("%s in %d RAM ranges", mib(int64(s.Memory)), s.RAMRanges))
		row("read", mib(int64(s.Read)))
		row("pages", fmt.Sprintf("%d written (%d stored uncompressed), %d zero (one shared zero page), %d excluded", k.Pages, k.Raw, k.ZeroPages, k.Excluded))
		row("written", fmt.Sprintf("%s of page data; file size %s", mib(int64(s.Written)), mib(s.OutputSize)))
	} else {
		row("output format", "ELF")
		row("memory", fmt.Sprintf("%s in %d RAM ranges, %d PT_LOADs", mib(int64(s.Memory)), s.RAMRanges, s.Segments))
		row("read", mib(int64(s.Read)))
		row("written", fmt.Sprintf("%s of data; file size %s, %s on disk (zero pages are holes)", mib(int64(s.Written)), mib(s.OutputSize), mib(s.OnDisk)))
		row("zero pages", fmt.Sprintf("%d not stored", s.ZeroPages))
	}
	if f := s.Filter; f != nil {
		e := f.Excluded
		how := fmt.Sprintf("%d pages left out of the PT_LOADs (runs shorter than 256 pages are kept)", f.LeftOut)
		if s.Kdump != nil {
			how = "clear in the dumpable bitmap"
		}
		row("dump level", fmt.Sprintf("%d: excluded %d cache, %d private cache, %d user, %d free, %d hwpoison, %d offline, %d zero pages; %s",
			f.Level, e.Cache, e.CachePrivate, e.User, e.Free, e.HWPoison, e.Offline, f.ZeroExcluded, how))
		if f.Anomalies > 0 {
			row("struct page anomalies", fmt.Sprintf("%d (those pages kept)", f.Anomalies))
		}
	}
	if s.Unwritten > 0 {
		row("never written", fmt.Sprintf("%d pages the kernel did not write, presented as zeros", s.Unwritten))
	}
	secs := s.Duration.Seconds()
	if secs > 0 {
		row("time", fmt.Sprintf("%.2f s (%.0f MiB/s of memory)", secs, float64(s.Memory)/(1<<20)/secs))
	}
	for _, r := range s.Repairs {
		fmt.Fprintf(w, "repaired: %s\n", r)
	}
	for _, m := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", strings.TrimSpace(m))
	}
}
