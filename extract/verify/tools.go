package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"ldx/elfcore/kdump"
	"ldx/elfcore/vmlinux"
	"ldx/extract/dump"
)

// ToolOptions configure RunTools.
type ToolOptions struct {
	// Vmlinux is the debug vmlinux of the dumped kernel. Without it only
	// the runs that need no symbols are made (`crash --osrelease`,
	// `makedumpfile --dump-dmesg`); drgn is skipped.
	Vmlinux string
	// Timeout bounds each tool run (default 3 minutes).
	Timeout time.Duration
	// Crash, Makedumpfile and Drgn are the programs (default: found in
	// PATH). drgn must be the one installed with the system python
	// (/usr/bin/drgn on Debian): it is run as a program, never through
	// a python3 from PATH.
	Crash, Makedumpfile, Drgn string
	// ExpectLog are messages makedumpfile's log must hold, each as the
	// text of a whole line (a log that runs on garbage does not count).
	// By default the newest record verify decoded itself (F1), if any.
	ExpectLog []string
}

// ToolRun is one real consumer's verdict beside verify's prediction.
type ToolRun struct {
	Tool    Consumer `json:"tool"`
	Mode    string   `json:"mode"` // "--osrelease", "sys", "--dump-dmesg", "init_uts_ns"
	Version string   `json:"version,omitempty"`
	Command string   `json:"command,omitempty"`
	// Predicted is the static verdict for this run; PredictedOK means it
	// is below fatal.
	Predicted   Severity `json:"predicted"`
	PredictedOK bool     `json:"predicted_ok"`
	// OK is what the tool really did; Verdict says it in words.
	OK      bool   `json:"ok"`
	Verdict string `json:"verdict"`
	// Agree is PredictedOK == OK.
	Agree    bool          `json:"agree"`
	Output   string        `json:"output,omitempty"` // the end of the tool's output
	Duration time.Duration `json:"duration_ns"`
	// Skipped says why the tool was not run (not installed, no vmlinux).
	Skipped string `json:"skipped,omitempty"`
}

// RunTools runs the installed consumers non-interactively on the file
// rep describes and records each verdict beside the static prediction for
// the tool's own version: crash --osrelease (and `sys` with a vmlinux),
// makedumpfile --dump-dmesg, and drgn reading init_uts_ns (with a
// vmlinux). The predictions in rep are recomputed for the versions found.
func RunTools(ctx context.Context, rep *Report, opt ToolOptions) error {
	if opt.Timeout <= 0 {
		opt.Timeout = 3 * time.Minute
	}
	find := func(given, name string) string {
		if given != "" {
			return given
		}
		p, err := exec.LookPath(name)
		if err != nil {
			return ""
		}
		return p
	}
	crash, mkd, drgn := find(opt.Crash, "crash"), find(opt.Makedumpfile, "makedumpfile"), find(opt.Drgn, "drgn")
	work, err := os.MkdirTemp("", "ldx-verify-tools-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	versions := map[Consumer]string{}
	if crash != "" {
		versions[Crash] = toolVersion(ctx, `crash (\d+\.\d+\.\d+)`, crash, "--version")
	}
	var mkdLacks []string // compressions this makedumpfile build lacks
	if mkd != "" {
		out, _, _, _ := runTool(ctx, 30*time.Second, "", mkd, "-v")
		if m := regexp.MustCompile(`version (\d+\.\d+\.\d+)`).FindStringSubmatch(out); m != nil {
			versions[Makedumpfile] = m[1]
		}
		for _, m := range regexp.MustCompile(`(?m)^(lzo|snappy|zstd)\s+disabled`).FindAllStringSubmatch(out, -1) {
			mkdLacks = append(mkdLacks, m[1])
		}
	}
	if drgn != "" {
		versions[Drgn] = toolVersion(ctx, `drgn (\d+\.\d+\.\d+)`, drgn, "--version")
	}
	rep.Repredict(versions)
	// A tool that reads the release through symbols is judged against
	// OSRELEASE; in a dump without it, against the vmlinux's. One that reads
	// another release read wrong memory (drgn on a KASLR dump without
	// VMCOREINFO can print "D"). crash --osrelease, given no vmlinux, is
	// judged against OSRELEASE only.
	release, releaseFrom := rep.Release, "OSRELEASE"
	if release == "" && opt.Vmlinux != "" {
		if v, err := vmlinux.Open(opt.Vmlinux); err == nil {
			if rel, err := v.Release(); err == nil {
				release, releaseFrom = rel, "the vmlinux's release"
			}
			v.Close()
		}
	}
	file := rep.File

	var runs []ToolRun
	add := func(r ToolRun) {
		p := rep.Prediction(r.Tool)
		r.Predicted = p.Verdict
		if r.Mode == "--osrelease" {
			r.Predicted = p.NoVmlinux
		}
		if r.Mode == refilterMode && rep.refilterFails() {
			r.Predicted = Fatal // a re-filter reads every page it keeps
		}
		if r.Mode == taskWalkMode && rep.taskWalkStops {
			r.Predicted = Fatal
		}
		if r.Tool == Makedumpfile && lacksMethod(mkdLacks, rep, r.Mode == refilterMode) {
			r.Predicted = Fatal // H9: "… compression unsupported"
		}
		r.PredictedOK = r.Predicted < Fatal
		r.Version = versions[r.Tool]
		if r.Skipped == "" {
			r.Agree = r.OK == r.PredictedOK
		}
		runs = append(runs, r)
	}

	// crash --osrelease: needs only the headers, the notes and OSRELEASE.
	if crash == "" {
		add(ToolRun{Tool: Crash, Mode: "--osrelease", Skipped: "crash is not installed"})
	} else {
		out, code, d, err := runTool(ctx, opt.Timeout, "", crash, "--osrelease", file)
		got := lastLine(out) // warnings ("possibly corrupt Elf64_Nhdr") come first
		r := ToolRun{Tool: Crash, Mode: "--osrelease", Command: "crash --osrelease " + file, Duration: d, Output: tail(out, 10)}
		switch {
		case err != nil:
			r.Verdict = err.Error()
		case code != 0:
			r.Verdict = fmt.Sprintf("exit %d: %s", code, lastLine(out))
		case rep.Release != "" && got != rep.Release:
			r.Verdict = fmt.Sprintf("printed %q, OSRELEASE is %q", got, rep.Release)
		case got == "" || got == "unknown":
			r.Verdict = fmt.Sprintf("printed %q", got)
		default:
			r.OK, r.Verdict = true, fmt.Sprintf("printed %q", got)
		}
		add(r)
		if opt.Vmlinux == "" {
			add(ToolRun{Tool: Crash, Mode: "sys", Skipped: "needs --vmlinux"})
		} else {
			script := filepath.Join(work, "crash.cmds")
			os.WriteFile(script, []byte("sys\nexit\n"), 0o644)
			out, code, d, err := runTool(ctx, opt.Timeout, "", crash, "-s", "--no_scroll", "-i", script, opt.Vmlinux, file)
			r := ToolRun{Tool: Crash, Mode: "sys", Command: fmt.Sprintf("crash -s --no_scroll -i %s %s %s (sys)", script, opt.Vmlinux, file), Duration: d, Output: tail(out, 15)}
			m := regexp.MustCompile(`RELEASE: (\S+)`).FindStringSubmatch(out)
			switch {
			case err != nil:
				r.Verdict = err.Error()
			case strings.Contains(out, "do not match"):
				r.Verdict = "\"vmlinux and dump do not match\""
			case m == nil:
				r.Verdict = fmt.Sprintf("exit %d, no sys output: %s", code, lastLine(out))
			case release != "" && m[1] != release:
				r.Verdict = fmt.Sprintf("sys shows RELEASE %s, %s is %s", m[1], releaseFrom, release)
			default:
				r.OK, r.Verdict = true, "sys shows RELEASE "+m[1]
			}
			add(r)
		}
	}

	// makedumpfile --dump-dmesg: VMCOREINFO, its page walk, mem_section, the ring.
	if mkd == "" {
		add(ToolRun{Tool: Makedumpfile, Mode: "--dump-dmesg", Skipped: "makedumpfile is not installed"})
	} else {
		log := filepath.Join(work, "dmesg.txt")
		out, code, d, err := runTool(ctx, opt.Timeout, "", mkd, "--dump-dmesg", file, log)
		r := ToolRun{Tool: Makedumpfile, Mode: "--dump-dmesg", Command: "makedumpfile --dump-dmesg " + file + " LOG", Duration: d, Output: tail(out, 10)}
		st, serr := os.Stat(log)
		switch {
		case err != nil:
			r.Verdict = err.Error()
		case code != 0:
			r.Verdict = fmt.Sprintf("exit %d: %s", code, firstError(out))
		case serr != nil || st.Size() == 0:
			r.Verdict = "wrote no log"
		default:
			expect := opt.ExpectLog
			if expect == nil && rep.newestRecord != "" {
				expect = []string{rep.newestRecord}
			}
			text, _ := os.ReadFile(log)
			if miss := missingLines(string(text), expect); len(miss) > 0 {
				r.Verdict = fmt.Sprintf("wrote %d bytes of log, but not the line %q", st.Size(), truncate(miss[0], 60))
			} else {
				r.OK, r.Verdict = true, fmt.Sprintf("wrote %d bytes of log", st.Size())
				if len(expect) > 0 {
					r.Verdict += fmt.Sprintf(" with the %s expected", plural(len(expect), "line", "lines"))
				}
			}
		}
		add(r)
	}

	// makedumpfile re-filtering a kdump file (-c -d 31): it classifies
	// every page through the kernel's struct pages and copies every page
	// it keeps, so it meets every damaged descriptor of a kept page.
	kdumpIn := rep.Format == dump.FormatKdump.String()
	if mkd != "" && kdumpIn {
		outFile := filepath.Join(work, "refiltered.kdump")
		out, code, d, err := runTool(ctx, opt.Timeout, "", mkd, "-c", "-d", "31", file, outFile)
		r := ToolRun{Tool: Makedumpfile, Mode: refilterMode, Command: "makedumpfile -c -d 31 " + file + " OUT", Duration: d, Output: tail(out, 10)}
		switch {
		case err != nil:
			r.Verdict = err.Error()
		case code != 0:
			r.Verdict = fmt.Sprintf("exit %d: %s", code, firstError(out))
		default:
			r.Verdict = refiltered(outFile)
			r.OK = strings.HasPrefix(r.Verdict, "wrote ")
		}
		add(r)
		os.Remove(outFile)
	}

	// drgn reading init_uts_ns through its own translation.
	switch {
	case drgn == "":
		add(ToolRun{Tool: Drgn, Mode: "init_uts_ns", Skipped: "drgn is not installed"})
	case opt.Vmlinux == "":
		add(ToolRun{Tool: Drgn, Mode: "init_uts_ns", Skipped: "needs --vmlinux"})
	default:
		script := filepath.Join(work, "uts.py")
		py := "print('RELEASE', prog['init_uts_ns'].name.release.string_().decode())\n"
		if kdumpIn {
			py += "from drgn.helpers.linux.pid import for_each_task\nprint('TASKS', sum(1 for _ in for_each_task(prog)))\n"
		}
		os.WriteFile(script, []byte(py), 0o644)
		out, code, d, err := runTool(ctx, opt.Timeout, "", drgn, "-q", "-c", file, "-s", opt.Vmlinux, script)
		r := ToolRun{Tool: Drgn, Mode: "init_uts_ns", Command: fmt.Sprintf("drgn -q -c %s -s %s uts.py", file, opt.Vmlinux), Duration: d, Output: tail(out, 10)}
		m := regexp.MustCompile(`(?m)^RELEASE (\S+)`).FindStringSubmatch(out)
		switch {
		case err != nil:
			r.Verdict = err.Error()
		case m == nil:
			r.Verdict = fmt.Sprintf("exit %d: %s", code, lastLine(out))
		case release != "" && m[1] != release:
			r.Verdict = fmt.Sprintf("read release %q, %s is %q", m[1], releaseFrom, release)
		default:
			r.OK, r.Verdict = true, "read release "+m[1]
		}
		add(r)
		if kdumpIn {
			r := ToolRun{Tool: Drgn, Mode: taskWalkMode, Command: r.Command + " (for_each_task)", Duration: d, Output: r.Output}
			t := regexp.MustCompile(`(?m)^TASKS (\d+)`).FindStringSubmatch(out)
			switch {
			case err != nil:
				r.Verdict = err.Error()
			case t == nil || t[1] == "0":
				r.Verdict = fmt.Sprintf("exit %d: %s", code, lastLine(out))
			default:
				r.OK, r.Verdict = true, "walked "+t[1]+" tasks"
			}
			add(r)
		}
	}
	rep.Tools = runs
	return nil
}

// Agreement counts the tool runs made and those whose verdict matched the
// prediction.
func (r *Report) Agreement() (agree, runs int) {
	for _, t := range r.Tools {
		if t.Skipped == "" {
			runs++
			if t.Agree {
				agree++
			}
		}
	}
	return agree, runs
}

// runTool runs a program with no stdin, in its own process group (killed
// as a group on timeout: crash forks gdb), and returns its combined output
// and exit code; err is set only when it could not run or timed out.
func runTool(ctx context.Context, timeout time.Duration, dir, name string, args ...string) (string, int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "TERM=dumb", "PAGER=cat")
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if ctx.Err() == context.DeadlineExceeded {
		return out.String(), -1, d, fmt.Errorf("timed out after %s", timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), d, nil
	}
	if err != nil {
		return out.String(), -1, d, err
	}
	return out.String(), 0, d, nil
}

func toolVersion(ctx context.Context, pattern, name string, args ...string) string {
	out, _, _, _ := runTool(ctx, 30*time.Second, "", name, args...)
	if m := regexp.MustCompile(pattern).FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// missingLines returns the expected messages that are not the text of a
// line of log ("[    1.234567] TEXT", or TEXT alone).
func missingLines(log string, expect []string) []string {
	have := map[string]bool{}
	for _, l := range strings.Split(log, "\n") {
		l = strings.TrimRight(l, "\r")
		have[l] = true
		if i := strings.Index(l, "] "); i >= 0 && strings.HasPrefix(l, "[") {
			have[l[i+2:]] = true
		}
	}
	var miss []string
	for _, e := range expect {
		if !have[e] {
			miss = append(miss, e)
		}
	}
	return miss
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return truncate(l, 160)
		}
	}
	return "(no output)"
}

// firstError returns makedumpfile's first error line (its messages end in
// a long generic usage hint).
func firstError(s string) string {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "The kernel version is not supported") && !strings.HasPrefix(l, "The makedumpfile operation may be incomplete") {
			return truncate(l, 160)
		}
	}
	return "(no output)"
}

// refilterMode is the ToolRun mode of makedumpfile re-filtering a kdump
// file.
const refilterMode = "-c -d 31"

// refiltered says what makedumpfile's re-filtered output holds: a kdump
// file that opens, with its page count.
func refiltered(path string) string {
	fh, err := os.Open(path)
	if err != nil {
		return "wrote no output"
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err.Error()
	}
	kf, err := kdump.Open(fh, st.Size())
	if err != nil {
		return "the output does not open: " + err.Error()
	}
	defer kf.Close()
	if kf.DumpablePages() == 0 {
		return "the output holds no pages"
	}
	return fmt.Sprintf("wrote %d pages", kf.DumpablePages())
}

// taskWalkMode is the drgn run that walks every task of a kdump file.
const taskWalkMode = "for_each_task"

// refilterFails says a makedumpfile re-filter stops on the file where
// --dump-dmesg does not: it copies the note blob and every page it keeps,
// so a bad offset_note, a descriptor makedumpfile rejects, or page data
// that does not decompress (H5, with --deep) stops it.
func (r *Report) refilterFails() bool {
	c := r.Check(H5)
	return r.refilterStops || c != nil && c.Failed()
}

// lacksMethod says the makedumpfile build cannot decompress pages it will
// read: init_uts_ns's (every run reads it), or for a re-filter any page.
func lacksMethod(lacks []string, rep *Report, everyPage bool) bool {
	for _, m := range lacks {
		if m == rep.utsMethod || everyPage && slices.Contains(rep.kdumpMethods, m) {
			return true
		}
	}
	return false
}
