package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ldx/elfcore/kdump"
	"ldx/elfcore/vmlinux"
	"ldx/extract/verify/verifytest"
)

// fakeTool writes a shell script standing in for a consumer.
func fakeTool(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunToolsVerdicts: the real tools' output is read into verdicts the
// way they really print them, and compared with the prediction for the
// version they report.
func TestRunToolsVerdicts(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	rel := verifytest.SyntheticRelease
	crash := fakeTool(t, dir, "crash", `
case "$1" in
--version) echo "crash 8.0.2"; exit 0;;
--osrelease) echo "WARNING: possibly corrupt Elf64_Nhdr: n_namesz: 0 n_descsz: 0 n_type: 0"; echo "`+rel+`"; exit 0;;
esac
echo "      RELEASE: `+rel+`"`)
	mkd := fakeTool(t, dir, "makedumpfile", `
[ "$1" = -v ] && { echo "makedumpfile: version 1.7.2 (released on 20 Oct 2022)"; exit 0; }
echo "get_elf_info: Can't get the number of PT_LOAD." >&2; exit 1`)
	drgn := fakeTool(t, dir, "drgn", `
[ "$1" = --version ] && { echo "drgn 0.0.22 (using Python 3.11.2, elfutils 0.188, with libkdumpfile)"; exit 0; }
echo "_drgn.FaultError: recursive address translation; page table may be missing from core dump: 0xffffffff90610ff8" >&2; exit 1`)

	for _, tc := range []struct {
		mutant string
		agree  map[string]bool // tool run → agrees
	}{
		// makedumpfile fails and is predicted to (A5); drgn 0.0.22 fails
		// but is predicted to read it: a disagreement, reported as such.
		{"e_phoff 0xc0 (QEMU's)", map[string]bool{"crash --osrelease": true, "crash sys": true, "makedumpfile --dump-dmesg": true, "drgn init_uts_ns": false}},
		// drgn 0.0.22 cannot reach the root table without the image
		// segment: predicted for that version, and it fails.
		{"no kernel-image PT_LOAD", map[string]bool{"crash --osrelease": true, "crash sys": true, "makedumpfile --dump-dmesg": false, "drgn init_uts_ns": true}},
	} {
		t.Run(tc.mutant, func(t *testing.T) {
			var m verifytest.Mutant
			for _, x := range verifytest.Mutants() {
				if x.Name == tc.mutant {
					m = x
				}
			}
			b, err := m.Build(f.good)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "mutant")
			os.WriteFile(path, b, 0o600)
			rep, err := File(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := RunTools(context.Background(), rep, ToolOptions{Vmlinux: "vmlinux", Crash: crash, Makedumpfile: mkd, Drgn: drgn, Timeout: 10 * time.Second}); err != nil {
				t.Fatal(err)
			}
			if len(rep.Tools) != 4 {
				t.Fatalf("%d tool runs: %+v", len(rep.Tools), rep.Tools)
			}
			for _, r := range rep.Tools {
				k := r.Tool.String() + " " + r.Mode
				if r.Agree != tc.agree[k] {
					t.Errorf("%s: agree %v, want %v (predicted ok %v, ok %v: %s)", k, r.Agree, tc.agree[k], r.PredictedOK, r.OK, r.Verdict)
				}
				if r.Version == "" {
					t.Errorf("%s: no version", k)
				}
			}
			if rep.Tools[0].Verdict != `printed "`+rel+`"` {
				t.Errorf("crash --osrelease verdict %q: the release is the last line, after warnings", rep.Tools[0].Verdict)
			}
			if !strings.Contains(rep.Tools[2].Verdict, "Can't get the number of PT_LOAD") {
				t.Errorf("makedumpfile verdict %q", rep.Tools[2].Verdict)
			}
			agree, runs := rep.Agreement()
			if runs != 4 || agree != 3 {
				t.Errorf("agreement %d/%d", agree, runs)
			}
		})
	}
}

// TestRunToolsTimeoutAndMissing: a hanging tool is stopped, a missing one
// is skipped, and drgn without a vmlinux is skipped.
func TestRunToolsTimeoutAndMissing(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	hang := fakeTool(t, dir, "crash", `[ "$1" = --version ] && exit 0; sleep 30`)
	rep, err := File(context.Background(), f.vmcore, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = RunTools(context.Background(), rep, ToolOptions{Crash: hang, Makedumpfile: filepath.Join(dir, "none"), Drgn: filepath.Join(dir, "none"), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 15*time.Second {
		t.Errorf("the timeout did not stop the tool")
	}
	for _, r := range rep.Tools {
		switch {
		case r.Tool == Crash && r.Mode == "--osrelease":
			if r.OK || !strings.Contains(r.Verdict, "timed out") {
				t.Errorf("crash: %+v", r)
			}
		case r.Tool == Drgn:
			if r.Skipped == "" {
				t.Errorf("drgn without a vmlinux should be skipped: %+v", r)
			}
		}
	}
}

// TestRunToolsKdump: on a kdump file, makedumpfile also re-filters it
// (predicted to fail when a page descriptor is damaged: it copies every
// page it keeps) and drgn also walks the task list.
func TestRunToolsKdump(t *testing.T) {
	good := synthKdump(t, 64)
	dir := t.TempDir()
	crash := fakeTool(t, dir, "crash", `
case "$1" in
--version) echo "crash 8.0.2"; exit 0;;
--osrelease) echo "6.1.0-synth"; exit 0;;
esac
echo "      RELEASE: 6.1.0-synth"`)
	// --dump-dmesg FILE LOG writes a log; -c -d 31 IN OUT copies IN
	// unless it is the damaged mutant.
	mkd := fakeTool(t, dir, "makedumpfile", `
case "$1" in
-v) echo "makedumpfile: version 1.7.2 (released on 20 Oct 2022)"; exit 0;;
--dump-dmesg) echo "[    0.000000] Linux version 6.1.0-synth" > "$3"; exit 0;;
-c) case "$4" in *bad*) echo "readpage_kdump_compressed: Can't read page_desc" >&2; exit 1;; esac; cp "$4" "$5"; exit 0;;
esac
exit 2`)
	drgn := fakeTool(t, dir, "drgn", `
[ "$1" = --version ] && { echo "drgn 0.0.22 (using Python 3.11.2, elfutils 0.188, with libkdumpfile)"; exit 0; }
echo "RELEASE 6.1.0-synth"; echo "TASKS 42"`)
	var m verifytest.KdumpMutant
	for _, x := range verifytest.KdumpMutants() {
		if x.Name == "last page's descriptor size 0" {
			m = x
		}
	}
	bad, err := m.Build(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		file     []byte
		refilter bool // makedumpfile -c -d 31 predicted and real ok
	}{{"good.kdump", good, true}, {"bad.kdump", bad, false}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			os.WriteFile(path, tc.file, 0o600)
			rep, err := File(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := RunTools(context.Background(), rep, ToolOptions{Vmlinux: "vmlinux", Crash: crash, Makedumpfile: mkd, Drgn: drgn, Timeout: 10 * time.Second, ExpectLog: []string{"Linux version 6.1.0-synth"}}); err != nil {
				t.Fatal(err)
			}
			modes := map[string]ToolRun{}
			for _, r := range rep.Tools {
				modes[r.Tool.String()+" "+r.Mode] = r
				if !r.Agree {
					t.Errorf("%s %s: predicted ok %v, real %v (%s)", r.Tool, r.Mode, r.PredictedOK, r.OK, r.Verdict)
				}
			}
			if len(modes) != 6 {
				t.Fatalf("tool runs %v, want crash ×2, makedumpfile ×2, drgn ×2", modes)
			}
			if r := modes["makedumpfile -c -d 31"]; r.OK != tc.refilter || r.PredictedOK != tc.refilter {
				t.Errorf("re-filter: %+v", r)
			}
			if r := modes["drgn for_each_task"]; !r.OK || r.Verdict != "walked 42 tasks" {
				t.Errorf("for_each_task: %+v", r)
			}
		})
	}
}

// TestRunToolsKdumpMethods: a snappy kdump file is information only
// statically (H9); RunTools predicts makedumpfile's failure from a build
// whose -v says snappy is disabled, and not from one that has it.
func TestRunToolsKdumpMethods(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "snappy.kdump")
	os.WriteFile(path, synthKdumpAs(t, 64, kdump.CompressSnappy), 0o600)
	for _, tc := range []struct {
		build string
		ok    bool
	}{{"snappy\tdisabled", false}, {"snappy\tenabled", true}} {
		mkd := fakeTool(t, dir, "makedumpfile", `
case "$1" in
-v) printf "makedumpfile: version 1.7.2 (released on 20 Oct 2022)\nlzo\tenabled\n`+tc.build+`\nzstd\tdisabled\n"; exit 0;;
esac
case "`+tc.build+`" in *disabled) echo "readpage_kdump_compressed: snappy compression unsupported" >&2; exit 1;; esac
case "$1" in --dump-dmesg) echo "x" > "$3";; -c) cp "$4" "$5";; esac`)
		rep, err := File(context.Background(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if c := rep.Check(H9); c == nil || c.Status != Fail || c.Severity != Info {
			t.Fatalf("H9: %+v", c)
		}
		if err := RunTools(context.Background(), rep, ToolOptions{Makedumpfile: mkd, Crash: "/nonexistent", Drgn: "/nonexistent", Timeout: 10 * time.Second, ExpectLog: []string{}}); err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Tools {
			if r.Tool == Makedumpfile && (r.PredictedOK != tc.ok || r.OK != tc.ok || !r.Agree) {
				t.Errorf("%s: %s %s predicted ok %v, real %v (%s)", tc.build, r.Tool, r.Mode, r.PredictedOK, r.OK, r.Verdict)
			}
		}
	}
}

// TestRunToolsReleaseWithoutOSRELEASE: in a dump without VMCOREINFO the
// release a tool reads is judged against the vmlinux's: drgn printing
// another one (as drgn 0.0.22 did, "D", on a 6.12 KASLR dump whose note
// was removed) read wrong memory, and agrees with a fatal prediction.
func TestRunToolsReleaseWithoutOSRELEASE(t *testing.T) {
	const vml = "../../elfcore/vmlinux/testdata/fixture-dwarf5.elf"
	v, err := vmlinux.Open(vml)
	if err != nil {
		t.Fatal(err)
	}
	want, err := v.Release()
	v.Close()
	if err != nil {
		t.Fatal(err)
	}
	f := getFixture(t)
	var m verifytest.Mutant
	for _, x := range verifytest.Mutants() {
		if x.Name == "no VMCOREINFO note" {
			m = x
		}
	}
	b, err := m.Build(f.good)
	if err != nil {
		t.Fatalf("mutant %q: %v", m.Name, err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "no-vmcoreinfo")
	os.WriteFile(path, b, 0o600)
	for _, tc := range []struct {
		printed string
		ok      bool
	}{{"D", false}, {want, true}} {
		drgn := fakeTool(t, dir, "drgn", `
[ "$1" = --version ] && { echo "drgn 0.0.22 (using Python 3.11.2, elfutils 0.188, with libkdumpfile)"; exit 0; }
echo "RELEASE `+tc.printed+`"`)
		rep, err := File(context.Background(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := RunTools(context.Background(), rep, ToolOptions{Vmlinux: vml, Crash: "/nonexistent", Makedumpfile: "/nonexistent", Drgn: drgn, Timeout: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
		var got *ToolRun
		for i, r := range rep.Tools {
			if r.Tool == Drgn && r.Skipped == "" {
				got = &rep.Tools[i]
			}
		}
		if got == nil {
			t.Fatalf("drgn printing %q: no drgn run in %+v", tc.printed, rep.Tools)
		}
		if got.OK != tc.ok {
			t.Errorf("drgn printing %q: ok %v, want %v (%s)", tc.printed, got.OK, tc.ok, got.Verdict)
		}
		if !tc.ok && !strings.Contains(got.Verdict, "the vmlinux's release is \""+want+"\"") {
			t.Errorf("drgn printing %q: verdict %q does not name the vmlinux's release", tc.printed, got.Verdict)
		}
		if !tc.ok && !got.Agree {
			t.Errorf("drgn printing %q: predicted ok %v, real ok %v: disagree", tc.printed, got.PredictedOK, got.OK)
		}
	}
}
