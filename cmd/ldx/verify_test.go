package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ldx/extract/verify/verifytest"
)

// verifyFixture writes a good vmcore (ldx extract's output of the
// synthetic kernel) and mutants of it.
func verifyFixture(t *testing.T) (dir, good string) {
	t.Helper()
	dir = t.TempDir()
	_, good, err := verifytest.Good(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, good
}

func writeMutant(t *testing.T, dir, good, name string) string {
	t.Helper()
	for _, m := range verifytest.Mutants() {
		if m.Name != name {
			continue
		}
		b, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		g, err := verifytest.ParseCore(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		mu, err := m.Make(g)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := mu.WriteFile(good, path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Fatalf("no mutant %q", name)
	return ""
}

func TestVerifyCommand(t *testing.T) {
	dir, good := verifyFixture(t)
	notELF := filepath.Join(dir, "text")
	os.WriteFile(notELF, []byte(strings.Repeat("not a dump\n", 50)), 0o644)
	fatal := writeMutant(t, dir, good, "e_phoff 0xc0 (QEMU's)")
	degraded := writeMutant(t, dir, good, "p_filesz < p_memsz")
	cosmetic := writeMutant(t, dir, good, "zero padding after the notes")
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string // in stdout
		err  string   // in stderr
	}{
		{"good", []string{"verify", good}, exitOK, []string{"E3 ", "pass", "OK — crash, makedumpfile and drgn will read this dump"}, ""},
		{"good brief", []string{"verify", "--brief", good}, exitOK, []string{"K-7", "makedumpfile  ok"}, ""},
		{"fatal", []string{"verify", fatal}, exitFatal, []string{"A5 program headers at offset 64 — fatal", "e_phoff at byte 0x20", "fix: run `ldx extract"}, "makedumpfile fatal (A5)"},
		{"degraded", []string{"verify", degraded}, exitDegraded, []string{"B10", "libkdumpfile: degraded"}, "libkdumpfile degraded (B10)"},
		{"cosmetic", []string{"verify", cosmetic}, exitOK, []string{"C2", "cosmetic"}, ""},
		{"not a dump", []string{"verify", notELF}, exitBadInput, nil, "no ELF header"},
		{"missing", []string{"verify", filepath.Join(dir, "nope")}, exitBadInput, nil, "no such file"},
		{"no args", []string{"verify"}, exitUsage, nil, "accepts 1 arg"},
		{"bad flag", []string{"verify", "--frob", good}, exitUsage, nil, "unknown flag"},
		{"vmlinux missing", []string{"verify", "--vmlinux", "/nonexistent/vmlinux", good}, exitBadInput, nil, "--vmlinux: open /nonexistent/vmlinux"},
		{"vmlinux not ELF", []string{"verify", "--vmlinux", notELF, good}, exitBadInput, nil, "--vmlinux"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, s := range tc.out {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			if tc.err != "" && !strings.Contains(stderr.String(), tc.err) {
				t.Errorf("stderr lacks %q: %s", tc.err, stderr.String())
			}
		})
	}
}

func TestVerifyJSON(t *testing.T) {
	dir, good := verifyFixture(t)
	fatal := writeMutant(t, dir, good, "no kernel-image PT_LOAD")
	for _, tc := range []struct {
		path string
		code int
	}{{good, exitOK}, {fatal, exitFatal}} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"verify", "--json", tc.path}, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d: %s", tc.path, code, tc.code, stderr.String())
		}
		var rep struct {
			Format   string `json:"format"`
			ExitCode int    `json:"exit_code"`
			Worst    string `json:"worst"`
			Checks   []struct {
				ID, Status, Severity string
				Offset               int64
			} `json:"checks"`
			Consumers []struct {
				Consumer, Verdict string
				Checks            []string
			} `json:"consumers"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("%v\n%s", err, stdout.String())
		}
		if rep.ExitCode != tc.code || len(rep.Checks) < 50 || len(rep.Consumers) != 5 || rep.Format != "ELF vmcore" {
			t.Errorf("%s: %+v", tc.path, rep)
		}
		if tc.code == exitFatal {
			drgn := rep.Consumers[2]
			if drgn.Consumer != "drgn" || drgn.Verdict != "fatal" || drgn.Checks[0] != "B9" {
				t.Errorf("drgn prediction %+v", drgn)
			}
		}
	}
}
