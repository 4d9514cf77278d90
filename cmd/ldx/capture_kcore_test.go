package main

import (
	"bytes"
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
	for _, want := range []string{"live capture:", "pages checked:", "cpu registers:"} {
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
