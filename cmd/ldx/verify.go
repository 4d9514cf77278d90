package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ldx/extract/verify"
)

func newVerifyCmd() *cobra.Command {
	var opt verify.Options
	var topt verify.ToolOptions
	var asJSON, withTools, brief bool
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Tell whether crash, makedumpfile and drgn will accept a dump, and what is missing",
		Long: `verify checks a kernel dump against what its consumers require
(crash, makedumpfile, drgn, libkdumpfile, vmcore-dmesg): the ELF header and
program-header layout, the segments, the notes, the VMCOREINFO keys, and
address translation read from the dump itself (phys_base three ways, the
page tables, init_uts_ns, the printk ring). Each check has the ID of its
requirement, a severity, the consumers it affects, what was found (with the
file offset and field) and what to do.

FILE is an ELF vmcore (ldx's output, a QEMU dump-guest-memory file, a copy of
/proc/vmcore) or a raw livedump device or image: that is checked as it is,
so the kernel-side defects ldx extract repairs show up as failures.

By default only headers, notes and a bounded number of small reads are done
(well under a second for any size); --deep reads every byte. --with-tools
runs the installed crash, makedumpfile and drgn on the file and shows their
real verdict beside the prediction (drgn and crash's sys need --vmlinux).

--vmlinux names the debug vmlinux of the dumped kernel (from its -dbg
package). It adds the checks V1-V7, which prove the pair belongs together:
BUILD-ID and the release and linux_banner equal the vmlinux's; every
SYMBOL() is the vmlinux's symbol plus KERNELOFFSET; OFFSET(), SIZE(),
LENGTH() and NUMBER() (enumerators) equal its DWARF. Only the types the
dump's VMCOREINFO names are read from the DWARF.

Exit codes: 0 every consumer will read the dump (cosmetic findings and
information aside), 5 degraded (a consumer loses a feature), 6 fatal (a
consumer rejects the dump or reads wrong data; also when a tool run by
--with-tools fails), 3 not a dump at all, 2 usage, 1 other failures.`,
		Example: `  ldx verify vmcore
  ldx verify /dev/sdb --json
  ldx verify vmcore --vmlinux /usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64
  ldx verify vmcore --with-tools --vmlinux /usr/lib/debug/boot/vmlinux-$(uname -r)`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if topt.Vmlinux != "" {
				v, err := openVmlinux("verify", topt.Vmlinux)
				if err != nil {
					return err
				}
				defer v.Close()
				opt.Vmlinux = v
			}
			rep, err := verify.File(cmd.Context(), args[0], opt)
			if err != nil {
				var ue *verify.UnreadableError
				if errors.As(err, &ue) {
					return &exitError{exitBadInput, err}
				}
				return err
			}
			if withTools {
				if err := verify.RunTools(cmd.Context(), rep, topt); err != nil {
					return err
				}
			}
			code := verifyExitCode(rep)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					*verify.Report
					ExitCode int `json:"exit_code"`
				}{rep, code}); err != nil {
					return err
				}
			} else if err := printVerify(out, rep, brief); err != nil {
				return err
			}
			if code != exitOK {
				return &exitError{code, fmt.Errorf("verify: %s", verdictLine(rep))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&opt.Deep, "deep", false, "read every byte: zero-page statistics, unreadable ranges, full comparison of overlapping segments")
	f.BoolVar(&withTools, "with-tools", false, "run the installed crash, makedumpfile and drgn on the file and compare")
	f.StringVar(&topt.Vmlinux, "vmlinux", "", "debug vmlinux of the dumped kernel: adds checks V1-V7 (the pair matches), and is given to crash and drgn by --with-tools")
	f.DurationVar(&topt.Timeout, "tool-timeout", 3*time.Minute, "time limit for each tool run")
	f.BoolVar(&brief, "brief", false, "list only the checks that did not pass")
	return cmd
}

// verifyExitCode maps the worst finding to the exit-code table: a failed
// real tool run counts as fatal, whatever the prediction said.
func verifyExitCode(rep *verify.Report) int {
	worst := rep.Worst
	for _, t := range rep.Tools {
		if t.Skipped == "" && !t.OK {
			worst = verify.Fatal
		}
	}
	switch worst {
	case verify.Fatal:
		return exitFatal
	case verify.Degraded:
		return exitDegraded
	}
	return exitOK
}

// verdictLine summarises the report in one line for the error message.
func verdictLine(rep *verify.Report) string {
	var parts []string
	for _, p := range rep.Consumers {
		if p.Verdict >= verify.Degraded {
			parts = append(parts, fmt.Sprintf("%s %s (%s)", p.Consumer, p.Verdict, verify.JoinIDs(p.Checks, ",")))
		}
	}
	for _, t := range rep.Tools {
		if t.Skipped == "" && !t.OK && t.PredictedOK {
			parts = append(parts, fmt.Sprintf("%s %s failed: %s", t.Tool, t.Mode, t.Verdict))
		}
	}
	if len(parts) == 0 {
		return "failed"
	}
	return strings.Join(parts, "; ")
}

func consumerList(cs []verify.Consumer) string {
	if len(cs) == len(verify.Consumers) {
		return "all"
	}
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ",")
}

func shorten(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// printVerify prints the report for people: the checks as a table, then
// each failure in full, the verdict per consumer and the tool runs.
func printVerify(w io.Writer, rep *verify.Report, brief bool) error {
	desc := rep.Format
	if rep.Release != "" {
		desc += ", " + rep.Release
	}
	fmt.Fprintf(w, "%s: %s, %s (%d bytes); checked in %s%s\n\n", rep.File, desc, rep.Kind, rep.Size,
		rep.Duration.Round(time.Millisecond), map[bool]string{true: " (--deep)", false: ""}[rep.Deep])
	var rows [][]string
	for _, c := range rep.Checks {
		if brief && c.Status == verify.Pass {
			continue
		}
		sev := c.Severity.String()
		if c.Status == verify.Pass || c.Status == verify.Skipped {
			sev = "(" + sev + ")"
		}
		rows = append(rows, []string{string(c.ID), shorten(c.Name, 44), string(c.Status), sev, consumerList(c.Consumers), shorten(c.Found, 70)})
	}
	if err := printTable(w, []string{"ID", "check", "status", "severity", "consumers", "found"}, rows); err != nil {
		return err
	}
	var failed []verify.Result
	for _, c := range rep.Checks {
		if c.Failed() {
			failed = append(failed, c)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "\nFailed checks:\n")
		for _, c := range failed {
			fmt.Fprintf(w, "\n  %s %s — %s\n", c.ID, c.Name, c.Severity)
			where := ""
			if c.Field != "" {
				where = fmt.Sprintf(" [%s at byte %#x]", c.Field, c.Offset)
			}
			fmt.Fprintf(w, "    found: %s%s\n", c.Found, where)
			// Consumers with the same effect share a line.
			type key struct{ sev, what string }
			var order []key
			who := map[key][]string{}
			for _, e := range c.Effects {
				name := e.Consumer.String()
				if e.Versions != "" {
					name += " " + e.Versions
				}
				k := key{e.Severity.String(), e.What}
				if who[k] == nil {
					order = append(order, k)
				}
				who[k] = append(who[k], name)
			}
			for _, k := range order {
				fmt.Fprintf(w, "    %s: %s — %s\n", strings.Join(who[k], ", "), k.sev, k.what)
			}
			if c.Fix != "" {
				fmt.Fprintf(w, "    fix: %s\n", c.Fix)
			}
		}
	}
	fmt.Fprintf(w, "\nConsumers (prediction from the checks):\n")
	rows = rows[:0]
	for _, p := range rep.Consumers {
		v := p.Verdict.String()
		if p.Verdict == verify.None {
			v = "ok"
		}
		nv := ""
		if p.Consumer == verify.Crash && p.NoVmlinux != p.Verdict {
			nv = "without vmlinux (--osrelease): " + p.NoVmlinux.String()
		}
		rows = append(rows, []string{p.Consumer.String(), v, verify.JoinIDs(p.Checks, " "), nv})
	}
	if err := printTable(w, []string{"consumer", "verdict", "because of", "note"}, rows); err != nil {
		return err
	}
	if len(rep.Tools) > 0 {
		fmt.Fprintf(w, "\nTools (--with-tools):\n")
		rows = rows[:0]
		for _, t := range rep.Tools {
			if t.Skipped != "" {
				rows = append(rows, []string{t.Tool.String(), t.Mode, t.Version, "", "", "", "skipped: " + t.Skipped})
				continue
			}
			pred := "ok"
			if !t.PredictedOK {
				pred = "fails"
			}
			real := "ok"
			if !t.OK {
				real = "fails"
			}
			agree := "yes"
			if !t.Agree {
				agree = "NO"
			}
			rows = append(rows, []string{t.Tool.String(), t.Mode, t.Version, pred, real, agree,
				shorten(t.Verdict, 70) + fmt.Sprintf(" (%.1fs)", t.Duration.Seconds())})
		}
		if err := printTable(w, []string{"tool", "run", "version", "predicted", "real", "agree", "verdict"}, rows); err != nil {
			return err
		}
		agree, runs := rep.Agreement()
		fmt.Fprintf(w, "agreement: %d of %d tool runs\n", agree, runs)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "\nverdict: %s\n", overall(rep))
	return nil
}

func overall(rep *verify.Report) string {
	switch rep.Worst {
	case verify.Fatal:
		return "FATAL — at least one consumer will reject this dump or read wrong data (exit 6)"
	case verify.Degraded:
		return "DEGRADED — every consumer opens it, some lose features (exit 5)"
	}
	for _, t := range rep.Tools {
		if t.Skipped == "" && !t.OK {
			if t.Agree {
				// Only a version-bound effect (G1) predicted it: the
				// consumer, not the dump, is at fault.
				return fmt.Sprintf("FATAL — %s %s cannot read this kernel, as predicted (%s); the dump itself passes every check (exit 6)",
					t.Tool, t.Version, verify.JoinIDs(rep.Prediction(t.Tool).Checks, ", "))
			}
			return "FATAL — a consumer failed on it although the checks found nothing (exit 6)"
		}
	}
	return "OK — crash, makedumpfile and drgn will read this dump (exit 0)"
}
