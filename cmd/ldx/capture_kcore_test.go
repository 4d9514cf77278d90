package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ldx/kmod/kcore"
	"ldx/kmod/kcore/kcoretest"
	"ldx/kmod/kmodtest"
)

// TestCaptureKcoreCLI runs capture --kcore against a fake /proc/kcore:
// the exit code of each refusal with nothing written, then a capture that
// info reports as a live, non-atomic capture.
func TestCaptureKcoreCLI(t *testing.T) {
	dir := t.TempDir()
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 64 << 20, CPUs: 4, KASLROffset: 0x2c000000})
	h, err := kcoretest.Host(dir, k, true, "0-3")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { kcoreHost = nil }()
	outDir := filepath.Join(dir, "out")
	os.Mkdir(outDir, 0o755)
	vmcore := filepath.Join(outDir, "vmcore")
	tmpfs := *h
	tmpfs.Statfs = func(string) (kcore.Statfs, error) { return kcore.Statfs{Type: 0x01021994, Avail: 1 << 40}, nil }
	full := *h
	full.Statfs = func(string) (kcore.Statfs, error) { return kcore.Statfs{Type: 0xEF53, Avail: 1 << 20}, nil }
	missing := *h
	missing.Kcore = filepath.Join(dir, "absent")
	for _, tc := range []struct {
		name string
		host *kcore.Host
		args []string
		code int
		want string
	}{
		{"no kcore", &missing, nil, exitNoKcore, "does not exist"},
		{"tmpfs", &tmpfs, nil, exitRAMBacked, "tmpfs"},
		{"no room", &full, nil, exitNoRoom, "free"},
		{"no output", h, []string{"capture", "--kcore"}, exitUsage, "-o"},
		{"bad rate", h, []string{"capture", "--kcore", "-o", vmcore, "--max-rate", "fast"}, exitUsage, "rate"},
		{"dry run", h, []string{"capture", "--kcore", "-o", vmcore, "--dry-run"}, exitOK, "dry run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kcoreHost = tc.host
			args := tc.args
			if args == nil {
				args = []string{"capture", "--kcore", "-o", vmcore}
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String()+stderr.String(), tc.want) {
				t.Errorf("output lacks %q:\n%s%s", tc.want, stdout.String(), stderr.String())
			}
			if entries, _ := os.ReadDir(outDir); len(entries) != 0 {
				t.Errorf("%d files written", len(entries))
			}
		})
	}

	kcoreHost = h
	var stdout, stderr bytes.Buffer
	if code := run([]string{"capture", "--kcore", "-o", vmcore, "--max-rate", "1G"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("capture exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"live capture:", "smear:", "cpu notes:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}
	if code := run([]string{"capture", "--kcore", "-o", vmcore}, &stdout, &stderr); code != exitOutputExist {
		t.Errorf("second capture onto the same output: exit %d, want %d", code, exitOutputExist)
	}
	stdout.Reset()
	if code := run([]string{"info", vmcore}, &stdout, &stderr); code != exitOK {
		t.Fatalf("info exit %d: %s", code, stderr.String())
	}
	if s := stdout.String(); !strings.Contains(s, "kcore") || !strings.Contains(s, "non-atomic") {
		t.Errorf("info does not report a live kcore capture:\n%s", s)
	}
	// verify names the live capture in K-7 (the synthetic kernel fails
	// other checks: it has no page tables, so only K-7 is looked at).
	stdout.Reset()
	run([]string{"verify", vmcore}, &stdout, &stderr)
	if s := stdout.String(); !strings.Contains(s, "a live capture (ldx capture --kcore") {
		t.Errorf("verify's K-7 does not report the live capture:\n%s", s)
	}
}

// TestCaptureKcoreStream: -o - writes a flattened stream to stdout and
// nothing else; ldx extract turns it into a vmcore that info reports as a
// live capture.
func TestCaptureKcoreStream(t *testing.T) {
	dir := t.TempDir()
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 48 << 20, CPUs: 2})
	h, err := kcoretest.Host(dir, k, true, "0-1")
	if err != nil {
		t.Fatal(err)
	}
	kcoreHost = h
	defer func() { kcoreHost = nil }()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"capture", "--kcore", "-o", "-"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "live capture:") {
		t.Errorf("the summary is not on stderr:\n%s", stderr.String())
	}
	stream := filepath.Join(dir, "stream")
	if err := os.WriteFile(stream, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	vmcore := filepath.Join(dir, "vmcore")
	if out, errs, code := ldx("extract", "-q", stream, "-o", vmcore); code != exitOK {
		t.Fatalf("extract of the stream: exit %d\n%s%s", code, out, errs)
	}
	out, _, code := ldx("info", vmcore)
	if code != exitOK || !strings.Contains(out, "non-atomic") {
		t.Errorf("info (exit %d) does not report the live capture:\n%s", code, out)
	}
}

// TestCaptureKcoreJSON: --json prints one object with the summary fields
// on stdout (the stream's case: on stderr), and the text summary names
// the method instead of a capture manifest a live capture cannot have.
func TestCaptureKcoreJSON(t *testing.T) {
	dir := t.TempDir()
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 48 << 20, CPUs: 3})
	h, err := kcoretest.Host(dir, k, true, "0-2")
	if err != nil {
		t.Fatal(err)
	}
	kcoreHost = h
	defer func() { kcoreHost = nil }()
	type object struct {
		Method   string `json:"method"`
		DryRun   bool   `json:"dry_run"`
		Output   string `json:"output"`
		Stream   bool   `json:"stream"`
		Duration int64  `json:"duration_ns"`
		Plan     *struct {
			RAMBytes uint64 `json:"ram_bytes"`
			CPUs     []int  `json:"online_cpus"`
		} `json:"plan"`
		Smear *struct {
			Checked int               `json:"pages_checked"`
			Changed int               `json:"pages_changed"`
			Pages   []json.RawMessage `json:"changed"`
		} `json:"smear"`
		Unreadable []json.RawMessage `json:"unreadable"`
		CPUNotes   struct {
			Count     int  `json:"count"`
			Synthetic bool `json:"synthetic"`
			Registers bool `json:"registers"`
		} `json:"cpu_notes"`
		Summary *struct {
			Output    string `json:"output"`
			InputKind string `json:"input_kind"`
			Memory    uint64 `json:"memory_bytes"`
		} `json:"summary"`
	}
	decode := func(t *testing.T, b []byte) object {
		t.Helper()
		var o object
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("not one JSON object: %v\n%s", err, b)
		}
		return o
	}
	vmcore := filepath.Join(dir, "vmcore")
	for _, tc := range []struct {
		name   string
		args   []string
		dryRun bool
		stream bool
	}{
		{"file", []string{"capture", "--kcore", "-q", "--json", "-o", vmcore}, false, false},
		{"dry run", []string{"capture", "--kcore", "-q", "--json", "--dry-run", "-o", vmcore + ".dry"}, true, false},
		{"stream", []string{"capture", "--kcore", "-q", "--json", "-o", "-"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d\n%s", code, stderr.String())
			}
			js := stdout.Bytes()
			if tc.stream {
				if !bytes.HasPrefix(js, []byte("makedumpfile")) {
					t.Errorf("stdout is not the flattened stream: %q", js[:min(len(js), 16)])
				}
				js = stderr.Bytes()
			} else if strings.Contains(stdout.String(), "warning:") {
				t.Errorf("warnings on stdout:\n%s", stdout.String())
			}
			o := decode(t, js)
			if o.Method != "kcore" || o.DryRun != tc.dryRun || o.Stream != tc.stream || o.Plan == nil || o.Plan.RAMBytes == 0 || len(o.Plan.CPUs) != 3 {
				t.Errorf("method %q dry run %v stream %v plan %+v", o.Method, o.DryRun, o.Stream, o.Plan)
			}
			if o.CPUNotes.Count != 3 || !o.CPUNotes.Synthetic || o.CPUNotes.Registers {
				t.Errorf("cpu notes %+v, want 3 synthetic without registers", o.CPUNotes)
			}
			if o.Unreadable == nil {
				t.Error("unreadable is null, want a list")
			}
			if tc.dryRun {
				if o.Summary != nil || o.Smear != nil {
					t.Errorf("a dry run reports a capture: summary %+v smear %+v", o.Summary, o.Smear)
				}
				if _, err := os.Stat(vmcore + ".dry"); err == nil {
					t.Error("the dry run wrote its output")
				}
				return
			}
			if o.Summary == nil || o.Summary.InputKind != string(kcore.InputKind) || o.Summary.Memory == 0 {
				t.Errorf("summary %+v", o.Summary)
			}
			if o.Smear == nil || o.Smear.Checked == 0 || o.Smear.Changed != len(o.Smear.Pages) {
				t.Errorf("smear %+v", o.Smear)
			}
			if o.Duration <= 0 {
				t.Errorf("duration %d", o.Duration)
			}
			if !tc.stream {
				if o.Summary.Output != vmcore {
					t.Errorf("summary output %q, want %q", o.Summary.Output, vmcore)
				}
				if !strings.Contains(stderr.String(), "warning: live capture") {
					t.Errorf("the warnings are not repeated on stderr:\n%s", stderr.String())
				}
			}
		})
	}

	// The text summary: the method and the live rows, no capture manifest.
	os.Remove(vmcore)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"capture", "--kcore", "-q", "-o", vmcore}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	s := stdout.String()
	for _, want := range []string{"method:            kcore", "live capture:", "smear:", "unreadable:        0 ranges", "cpu notes:         3 synthetic, without registers"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "capture manifest") {
		t.Errorf("the summary of a live capture speaks of a capture manifest:\n%s", s)
	}
	if i, j := strings.Index(s, "cpu notes:"), strings.Index(s, "warning:"); j >= 0 && j < i {
		t.Errorf("warnings come before the live rows:\n%s", s)
	}
}
