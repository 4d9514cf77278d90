package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ldx/extract/verify/verifytest"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
	"ldx/vmcoreinfo"
)

// fixture is built once per test binary: the synthetic kernel's device
// image (zeroed by ldx capture) and the vmcore ldx extract makes of it.
type fixture struct {
	dir, image, vmcore string
	good               []byte
}

var (
	fxOnce sync.Once
	fx     *fixture
	fxErr  error
)

func getFixture(t testing.TB) *fixture {
	fxOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ldx-verify-test-")
		if err != nil {
			fxErr = err
			return
		}
		f := &fixture{dir: dir}
		if f.image, f.vmcore, fxErr = verifytest.Good(context.Background(), dir); fxErr != nil {
			return
		}
		f.good, fxErr = os.ReadFile(f.vmcore)
		fx = f
	})
	if fxErr != nil {
		t.Fatal(fxErr)
	}
	return fx
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fx != nil {
		os.RemoveAll(fx.dir)
	}
	os.Exit(code)
}

func verifyBytes(t testing.TB, name string, b []byte, opt Options) *Report {
	t.Helper()
	rep, err := Reader(context.Background(), name, bytes.NewReader(b), int64(len(b)), opt)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rep
}

func failedSummary(rep *Report) string {
	var s []string
	for _, c := range rep.Checks {
		if c.Failed() {
			s = append(s, string(c.ID)+" ("+c.Severity.String()+"): "+c.Found)
		}
	}
	return strings.Join(s, "\n")
}

// TestGoodVmcore: ldx extract's output passes every check, in the default
// and the deep mode, and every consumer is predicted to read it.
func TestGoodVmcore(t *testing.T) {
	f := getFixture(t)
	for _, deep := range []bool{false, true} {
		rep, err := File(context.Background(), f.vmcore, Options{Deep: deep})
		if err != nil {
			t.Fatal(err)
		}
		if failed := rep.Failed(); len(failed) > 0 {
			t.Errorf("deep=%v: failed checks on ldx's own output:\n%s", deep, failedSummary(rep))
		}
		if rep.Worst > Info {
			t.Errorf("deep=%v: worst %v", deep, rep.Worst)
		}
		for _, p := range rep.Consumers {
			if p.Verdict != None {
				t.Errorf("deep=%v: %s predicted %v", deep, p.Consumer, p.Verdict)
			}
		}
		for _, e := range catalog {
			if c := rep.Check(e.ID); c == nil && !strings.HasPrefix(string(e.ID), "K-") && !strings.HasPrefix(string(e.ID), "V") && !strings.HasPrefix(string(e.ID), "H") && (e.ID != "Z1" || deep) {
				t.Errorf("deep=%v: check %s missing from the report", deep, e.ID)
			} else if c != nil && c.Status == Skipped {
				t.Errorf("deep=%v: check %s skipped: %s", deep, e.ID, c.Found)
			}
		}
		if c := rep.Check("K-7"); c == nil || c.Status != Inform {
			t.Errorf("deep=%v: a live dump's synthetic CPU notes are information: %+v", deep, c)
		}
		if c := rep.Check("F1"); c == nil || !strings.Contains(c.Found, verifytest.SyntheticRecord) {
			t.Errorf("F1 does not name the newest record: %+v", c)
		}
		if rep.Release != verifytest.SyntheticRelease || rep.Format != "ELF vmcore" {
			t.Errorf("release %q, format %q", rep.Release, rep.Format)
		}
		if !deep && rep.Duration > time.Second {
			t.Errorf("the default mode took %s; it must stay well under a second", rep.Duration)
		}
	}
}

// TestMutants is the mutation corpus: every requirement broken one at a
// time in the good vmcore; the check that guards it must fail.
func TestMutants(t *testing.T) {
	f := getFixture(t)
	info := goodInfo(t, f.good)
	all := append(verifytest.Mutants(), verifytest.KeyMutants(info, nil)...)
	if len(all) < 40 {
		t.Fatalf("only %d mutants", len(all))
	}
	for _, m := range all {
		t.Run(m.Name, func(t *testing.T) {
			b, err := m.Build(f.good)
			if err != nil {
				t.Fatal(err)
			}
			rep := verifyBytes(t, m.Name, b, Options{})
			for _, id := range m.Want {
				if c := rep.Check(ID(id)); c == nil || !c.Failed() {
					t.Errorf("check %s did not fire: %+v\nfailed: %s", id, c, failedSummary(rep))
				}
			}
			if rep.Worst < Cosmetic {
				t.Errorf("worst severity %v", rep.Worst)
			}
			t.Logf("failed: %v", rep.Failed())
		})
	}
}

func goodInfo(t *testing.T, good []byte) *vmcoreinfo.Info {
	g, err := verifytest.ParseCore(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	return g.Info()
}

// TestMutantPredictions pins the per-consumer verdicts of a few mutants
// whose effects the consumers' sources make plain (the checklist in the
// package documentation).
func TestMutantPredictions(t *testing.T) {
	f := getFixture(t)
	byName := map[string]verifytest.Mutant{}
	for _, m := range verifytest.Mutants() {
		byName[m.Name] = m
	}
	for _, tc := range []struct {
		mutant   string
		versions map[Consumer]string
		want     map[Consumer]Severity
		noVm     Severity // crash --osrelease
	}{
		{"e_phoff 0xc0 (QEMU's)", nil, map[Consumer]Severity{Crash: None, Makedumpfile: Fatal, Drgn: None}, None},
		{"e_phoff 0x200", nil, map[Consumer]Severity{Crash: Fatal, Makedumpfile: Fatal}, Fatal},
		{"p_align 4096 on phdr[1]", nil, map[Consumer]Severity{Crash: Fatal, Makedumpfile: None, Drgn: None}, Fatal},
		{"notes after the first PT_LOAD", nil, map[Consumer]Severity{Crash: Fatal, Makedumpfile: None, Drgn: None}, Fatal},
		{"PT_NOTE p_align 8", nil, map[Consumer]Severity{Crash: None, Makedumpfile: None, Drgn: Fatal}, None},
		{"no kernel-image PT_LOAD", map[Consumer]string{Drgn: "0.0.22"}, map[Consumer]Severity{Crash: None, Makedumpfile: None, Drgn: Fatal, VmcoreDmesg: Fatal}, None},
		{"no kernel-image PT_LOAD", map[Consumer]string{Drgn: "0.0.30"}, map[Consumer]Severity{Drgn: None}, None},
		{"wrong NUMBER(phys_base) (+2 MiB)", map[Consumer]string{Drgn: "0.0.22"}, map[Consumer]Severity{Crash: Fatal, Makedumpfile: Fatal, Drgn: None}, None},
		{"wrong NUMBER(phys_base) (+2 MiB)", map[Consumer]string{Drgn: "0.0.27"}, map[Consumer]Severity{Drgn: Degraded}, None},
		{"missing page-table page (kernel-image PMD)", nil, map[Consumer]Severity{Makedumpfile: Fatal, Drgn: Degraded, Crash: Degraded}, None},
		{"short NT_PRSTATUS (300 bytes)", nil, map[Consumer]Severity{Libkdumpfile: Fatal, Crash: Degraded, Makedumpfile: None}, None},
		{"overlapping PT_LOAD with other bytes over init_uts_ns", nil, map[Consumer]Severity{Crash: Degraded, Makedumpfile: Degraded, Drgn: Fatal}, None},
		// The kernel's phys_base (2 MiB on the synthetic kernel) in 0x
		// hex: crash's dtol gives UNUSED (-1), makedumpfile's hex
		// fallback reads it right, drgn 0.0.22 does not read the key
		// (0.0.27+ read it with base 0, right).
		{"NUMBER(phys_base) in hex (0x…)", map[Consumer]string{Drgn: "0.0.22"}, map[Consumer]Severity{Crash: Fatal, Makedumpfile: None, Drgn: None}, None},
		{"NUMBER(phys_base) in hex (0x…)", map[Consumer]string{Drgn: "0.0.30"}, map[Consumer]Severity{Drgn: None}, None},
		{"OFFSET(uts_namespace.name) with a trailing blank", nil, map[Consumer]Severity{Crash: None, Makedumpfile: Fatal, Drgn: None}, None},
		{"PAGESIZE line with CRLF", nil, map[Consumer]Severity{Makedumpfile: Fatal, Drgn: Fatal}, None},
		{"zero padding after the notes", nil, map[Consumer]Severity{Crash: Cosmetic, Makedumpfile: None, Drgn: None}, None},
	} {
		t.Run(tc.mutant+" "+tc.versions[Drgn], func(t *testing.T) {
			m, ok := byName[tc.mutant]
			if !ok {
				t.Fatalf("no mutant %q", tc.mutant)
			}
			b, err := m.Build(f.good)
			if err != nil {
				t.Fatal(err)
			}
			rep := verifyBytes(t, m.Name, b, Options{})
			rep.Repredict(tc.versions)
			for c, want := range tc.want {
				if got := rep.Prediction(c).Verdict; got != want {
					t.Errorf("%s: predicted %v, want %v (checks %v)\n%s", c, got, want, rep.Prediction(c).Checks, failedSummary(rep))
				}
			}
			if got := rep.Prediction(Crash).NoVmlinux; got != tc.noVm {
				t.Errorf("crash --osrelease: predicted %v, want %v", got, tc.noVm)
			}
		})
	}
}

// TestRawDevice: the raw livedump image is checked as it is; its defects
// fail, and each says that ldx extract repairs it.
func TestRawDevice(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.img")
	if _, err := verifytest.WriteImage(stale, 2, kmodtest.Run{StaleSeed: 3}); err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.img")
	rep4, err := verifytest.WriteImage(cut, 4, kmodtest.Run{Prepared: manifest.Zeroed, Manifest: &manifest.Manifest{}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep4.NotesCut {
		t.Fatal("4 CPUs should cut the notes (K-1)")
	}
	for _, tc := range []struct {
		path       string
		fail, pass []string
		deep       bool
		found      map[string]string
	}{
		{f.image, []string{"K-3"}, []string{"K-1", "K-2", "E1", "E2", "E3", "F1", "B4"}, false, nil},
		{stale, []string{"K-2", "K-3"}, []string{"K-1"}, false, map[string]string{"K-2": "no ldx capture manifest"}},
		{cut, []string{"K-1", "D1", "D7"}, []string{"K-2"}, false, map[string]string{"K-1": "the cut lost"}},
		{cut, []string{"K-1"}, nil, true, map[string]string{"Z1": "pages are zero"}},
	} {
		rep, err := File(context.Background(), tc.path, Options{Deep: tc.deep})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Format != "livedump raw device" {
			t.Errorf("%s: format %q", tc.path, rep.Format)
		}
		for _, id := range tc.fail {
			c := rep.Check(ID(id))
			if c == nil || !c.Failed() {
				t.Errorf("%s: %s should fail: %+v", filepath.Base(tc.path), id, c)
			} else if !strings.Contains(c.Fix, "ldx extract") && !strings.Contains(c.Fix, "ldx capture") {
				t.Errorf("%s: %s's fix does not name ldx extract: %q", filepath.Base(tc.path), id, c.Fix)
			}
		}
		for _, id := range tc.pass {
			if c := rep.Check(ID(id)); c == nil || c.Status != Pass {
				t.Errorf("%s: %s should pass: %+v", filepath.Base(tc.path), id, c)
			}
		}
		for id, s := range tc.found {
			if c := rep.Check(ID(id)); c == nil || !strings.Contains(c.Found, s) {
				t.Errorf("%s: %s should say %q: %+v", filepath.Base(tc.path), id, s, c)
			}
		}
	}
}

// TestUnreadable: inputs that are not dumps at all are errors, not reports.
// (A damaged kdump-compressed file is a dump: its report fails H1,
// TestKdumpChecks.)
func TestUnreadable(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"empty":  nil,
		"short":  []byte("\x7fELF"),
		"zeros":  make([]byte, 8192),
		"text":   []byte(strings.Repeat("hello world\n", 100)),
		"nofile": nil,
	} {
		path := filepath.Join(dir, name)
		if name != "nofile" {
			os.WriteFile(path, data, 0o644)
		}
		_, err := File(context.Background(), path, Options{})
		var ue *UnreadableError
		if !errors.As(err, &ue) {
			t.Errorf("%s: %v, want an UnreadableError", name, err)
		}
	}
}

// TestHeaderOnlyDefects: a damaged ELF header is a report, with the rest
// skipped, not an error.
func TestHeaderOnlyDefects(t *testing.T) {
	f := getFixture(t)
	b := bytes.Clone(f.good)
	b[4] = 1 // ELFCLASS32
	rep := verifyBytes(t, "class32", b, Options{})
	if c := rep.Check("A1"); c == nil || !c.Failed() || c.Offset != 4 {
		t.Errorf("A1: %+v", c)
	}
	if c := rep.Check("E3"); c == nil || c.Status != Skipped {
		t.Errorf("E3 should be skipped: %+v", c)
	}
	b = bytes.Clone(f.good)
	b[offPhentsize] = 32
	rep = verifyBytes(t, "phentsize", b, Options{})
	if c := rep.Check("A6"); c == nil || !c.Failed() || c.Severity != Fatal {
		t.Errorf("A6: %+v", c)
	}
}

func TestScanLines(t *testing.T) {
	for _, tc := range []struct {
		text  string
		kinds []string
		keys  int
	}{
		{"OSRELEASE=6.1\nPAGESIZE=4096\n", nil, 2},
		{"OSRELEASE=6.1\nPAGESIZE=4096", []string{"no-newline"}, 2},
		{"OSRELEASE=6.1\r\nPAGESIZE=4096\n", []string{"cr"}, 2},
		{"OSRELEASE=6.1\n\x00\x00\x00CRASHTIME=1\n", []string{"nul"}, 2},
		{"OSRELEASE=6.1\nPAGES\xff\x01garbage", []string{"garbage"}, 1},
		{"OSRELEASE=6.1\n\nPAGESIZE=4096\n", []string{"empty"}, 2},
		{"OSRELEASE=6.1\nnot a line\nPAGESIZE=4096\n", []string{"malformed"}, 2},
		{"OSRELEASE=6.1\n\x00\x00\x00\x00", []string{"garbage"}, 1},
	} {
		lr := scanLines([]byte(tc.text))
		var kinds []string
		for _, p := range lr.problems {
			kinds = append(kinds, p.kind)
		}
		if !slices.Equal(kinds, tc.kinds) || lr.info.Len() != tc.keys {
			t.Errorf("%q: problems %v, %d keys; want %v, %d", tc.text, kinds, lr.info.Len(), tc.kinds, tc.keys)
		}
	}
}

func TestVersionMatches(t *testing.T) {
	for _, tc := range []struct {
		v, c string
		want bool
	}{
		{"0.0.22", "<0.0.27", true},
		{"0.0.27", "<0.0.27", false},
		{"0.0.27", ">=0.0.27", true},
		{"0.1.0", ">=0.0.27", true},
		{"", "<0.0.27", true},
		{"0.0.22", "", true},
		{"0.0.28", ">=0.0.27,<0.0.30", true},
		{"0.0.30", ">=0.0.27,<0.0.30", false},
	} {
		if got := versionMatches(tc.v, tc.c); got != tc.want {
			t.Errorf("versionMatches(%q, %q) = %v", tc.v, tc.c, got)
		}
	}
}

func TestReportJSON(t *testing.T) {
	f := getFixture(t)
	rep := verifyBytes(t, "good", f.good, Options{})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Checks) != len(rep.Checks) || back.Checks[0].Severity != rep.Checks[0].Severity || back.Worst != rep.Worst {
		t.Errorf("JSON round trip lost data")
	}
	if !bytes.Contains(b, []byte(`"severity":"fatal"`)) || !bytes.Contains(b, []byte(`"status":"pass"`)) {
		t.Errorf("severities and statuses are not names: %s", b[:300])
	}
}

// TestCatalog: IDs are unique and every emitted check is in the catalog.
func TestCatalog(t *testing.T) {
	seen := map[ID]bool{}
	for _, e := range catalog {
		if seen[e.ID] {
			t.Errorf("duplicate %s", e.ID)
		}
		seen[e.ID] = true
		if e.Name == "" || len(e.Consumers) == 0 {
			t.Errorf("%s: incomplete entry", e.ID)
		}
	}
}
