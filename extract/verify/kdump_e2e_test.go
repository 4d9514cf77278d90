//go:build e2e

package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ldx/elfcore/kdump"
	"ldx/elfcore/kernel/pageclass"
	"ldx/extract"
	"ldx/extract/verify/verifytest"
	"ldx/kmod/kmodtest/guest"
)

// kdumpGuests are the boots the kdump corpus runs on: one of each kernel
// series (crash 8.0.2 reads only the 6.1 one, as G1 says). Each mutant
// runs on one guest only, alternating, to keep the corpus short.
var kdumpGuests = []int{0, 2} // indexes into agreementGuests

// kdumpToolTimeout bounds each tool run: a good run takes under a minute
// on a loaded 2-core machine.
const kdumpToolTimeout = 2 * time.Minute

// qemuKdump checks QEMU's own kdump-zlib dump of the guest as it comes: a
// flattened stream whose sub-header phys_base is QEMU's guess (H8, H4).
// crash reads it; makedumpfile and drgn do not.
func qemuKdump(t *testing.T, a *agreement, gname string, spec guest.Spec) {
	t.Run("qemu kdump-zlib", func(t *testing.T) {
		spec.KdumpFormat = "kdump-zlib"
		art, err := guest.Prepare(guest.WithLog(context.Background(), t.Logf), guest.DefaultCacheDir(), spec)
		if err != nil {
			t.Fatalf("preparing the guest: %v", err)
		}
		rep, err := File(context.Background(), art.Kdump, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := RunTools(context.Background(), rep, ToolOptions{Vmlinux: art.Vmlinux, ExpectLog: art.Facts.Markers, Timeout: kdumpToolTimeout}); err != nil {
			t.Fatal(err)
		}
		a.count(rep)
		if c := rep.Check(H8); c == nil || !c.Failed() {
			t.Errorf("H8 does not see the flattened stream: %+v", c)
		}
		a.disagree(t, gname+" QEMU kdump-zlib", rep)
		t.Logf("verify_e2e %s QEMU kdump-zlib: failed %v; %s", gname, rep.Failed(), toolLine(rep))
	})
}

// otherCompression checks ldx's kdump file of the guest in a compression
// other than zlib (H9): crash and drgn read it; makedumpfile reads it only
// if its build has the method, as its -v says.
func otherCompression(t *testing.T, a *agreement, gname string, art *guest.Artefacts, comp kdump.Compression) {
	t.Run("ldx "+comp.String()+" -d 31", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.kdump")
		if _, err := extract.Run(context.Background(), extract.Options{Input: art.Dump, Output: path, OutputFormat: extract.FormatKdump, Compression: comp, DumpLevel: 31}); err != nil {
			t.Fatal(err)
		}
		rep := verifyWithTools(t, path, art.Vmlinux, art.Facts.Markers)
		a.count(rep)
		if c := rep.Check(H9); c == nil || !c.Failed() {
			t.Errorf("H9 does not name %s: %+v", comp, c)
		}
		a.disagree(t, gname+" ldx "+comp.String(), rep)
		t.Logf("verify_e2e %s ldx %s -d 31: failed %v; %s", gname, comp, rep.Failed(), toolLine(rep))
	})
}

// kdumpBase is a good kdump file a mutant starts from.
type kdumpBase struct{ name, path string }

// kdumpBases writes the good kdump files of a guest's QEMU dump: ldx's
// zlib output of all pages and at dump level 31, and makedumpfile's
// `-c -d 31` of ldx's ELF vmcore.
//
// makedumpfile 1.7.2 predates 6.12's page types: its -d 31 file of the
// 6.12 guest leaves out pages of live tasks (drgn's for_each_task meets
// an excluded page; ldx's -d 31 file keeps them). verify does not
// classify the pages a kdump file left out, so on 6.12 makedumpfile
// writes -d 1 (zero pages only, no page classes).
func kdumpBases(t *testing.T, art *guest.Artefacts) []kdumpBase {
	mkdLevel := "31"
	if art.Kernel.Spec.Series != "6.1" {
		mkdLevel = "1"
	}
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	elfOut := filepath.Join(dir, "good.vmcore")
	if _, err := extract.Run(ctx, extract.Options{Input: art.Dump, Output: elfOut}); err != nil {
		t.Fatalf("ldx extract: %v", err)
	}
	bases := []kdumpBase{{"ldx zlib", filepath.Join(dir, "zlib.kdump")}, {"ldx zlib -d 31", filepath.Join(dir, "d31.kdump")}, {"makedumpfile -c -d " + mkdLevel, filepath.Join(dir, "mkd.kdump")}}
	for i, level := range []int{0, 31} {
		if _, err := extract.Run(ctx, extract.Options{Input: art.Dump, Output: bases[i].path, OutputFormat: extract.FormatKdump, Compression: kdump.CompressZlib, DumpLevel: pageclass.Level(level)}); err != nil {
			t.Fatalf("ldx extract --format kdump -d %d: %v", level, err)
		}
	}
	if out, err := exec.Command("makedumpfile", "-c", "-d", mkdLevel, elfOut, bases[2].path).CombinedOutput(); err != nil {
		t.Fatalf("makedumpfile -c -d %s: %v\n%s", mkdLevel, err, out)
	}
	os.Remove(elfOut)
	return bases
}

// unreadableReport stands for verify's refusal of a file that is no dump
// (exit 3): every consumer is predicted to fail.
func unreadableReport(path string) *Report {
	var effects []Effect
	for _, c := range Consumers {
		effects = append(effects, eff(c, Fatal, "not a dump").novm())
	}
	rep := &Report{File: path, Checks: []Result{{ID: H1, Status: Fail, Severity: Fatal, Effects: effects}}}
	rep.finish(nil)
	return rep
}

// kdumpAgreement runs the kdump corpus: the good files pass and every
// consumer reads them; each mutant fires its checks and the prediction
// agrees with the installed consumers.
func kdumpAgreement(t *testing.T) {
	a := &agreement{perTool: map[string][2]int{}}
	mutants := verifytest.KdumpMutants()
	var kernels []string
	for gi, idx := range kdumpGuests {
		gs := agreementGuests[idx]
		t.Run(gs.name, func(t *testing.T) {
			ctx := guest.WithLog(context.Background(), t.Logf)
			art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), gs.spec)
			if err != nil {
				t.Fatalf("preparing the guest: %v", err)
			}
			kernels = append(kernels, fmt.Sprintf("%s: %s %s", gs.name, art.Kernel.Package, art.Kernel.Version))
			if gi == 0 {
				qemuKdump(t, a, gs.name, gs.spec)
			}
			bases := kdumpBases(t, art)
			otherCompression(t, a, gs.name, art, []kdump.Compression{kdump.CompressSnappy, kdump.CompressZstd}[gi%2])
			for bi, b := range bases {
				if gi == 0 && bi < 2 {
					// ldx's own kdump files meet the tools in extract's
					// e2e tests; here only as mutant bases, to keep the
					// crash-reading guest's share short.
					continue
				}
				t.Run("good "+b.name, func(t *testing.T) {
					rep := verifyWithTools(t, b.path, art.Vmlinux, art.Facts.Markers)
					a.count(rep)
					for _, c := range rep.Checks {
						if c.Failed() && c.ID != G1 {
							t.Errorf("%s fails on a good file: %s", c.ID, c.Found)
						}
					}
					a.disagree(t, gs.name+" good "+b.name, rep)
					t.Logf("verify_e2e %s good %s: failed %v; %s", gs.name, b.name, rep.Failed(), toolLine(rep))
				})
			}
			dir := t.TempDir()
			for mi, m := range mutants {
				if mi%len(kdumpGuests) != gi {
					continue
				}
				first := (mi / len(kdumpGuests)) % len(bases)
				t.Run(m.Name, func(t *testing.T) {
					if m.Hangs != "" && os.Getenv("LDX_VERIFY_KDUMP_HANGS") == "" {
						t.Skipf("%s spins on it until killed (a whole tool timeout); LDX_VERIFY_KDUMP_HANGS=1 runs it", m.Hangs)
					}
					// The mutant's base, or the next one it applies to (a
					// file that dumps every pfn has no excluded page).
					var b kdumpBase
					var mu *verifytest.Mutation
					var why []string
					for i := range bases {
						b = bases[(first+i)%len(bases)]
						var err error
						if mu, err = makeKdumpMutant(b.path, m); err == nil {
							break
						}
						why = append(why, b.name+": "+err.Error())
					}
					if mu == nil {
						t.Fatalf("the mutant applies to no base: %s", strings.Join(why, "; "))
					}
					path := filepath.Join(dir, "mutant.kdump")
					if err := mu.WriteFile(b.path, path); err != nil {
						t.Fatal(err)
					}
					defer os.Remove(path)
					rep, err := File(context.Background(), path, Options{})
					var ue *UnreadableError
					switch {
					case m.Unreadable && errors.As(err, &ue):
						rep = unreadableReport(path)
					case m.Unreadable:
						t.Fatalf("verify read the file (%v), want it refused as no dump", err)
					case err != nil:
						t.Fatal(err)
					}
					if err := RunTools(context.Background(), rep, ToolOptions{Vmlinux: art.Vmlinux, ExpectLog: art.Facts.Markers, Timeout: kdumpToolTimeout}); err != nil {
						t.Fatal(err)
					}
					a.mutants++
					a.count(rep)
					for _, id := range m.Want {
						if !firedAny(rep, id) {
							t.Errorf("check %s did not fire (failed: %v)", id, rep.Failed())
						}
					}
					where := fmt.Sprintf("%s %s mutant %q", gs.name, b.name, m.Name)
					a.disagree(t, where, rep)
					t.Logf("verify_e2e %s: failed %v; %s", where, rep.Failed(), toolLine(rep))
				})
			}
		})
	}
	var parts []string
	for _, k := range []string{"crash --osrelease", "crash sys", "makedumpfile --dump-dmesg", "makedumpfile -c -d 31", "drgn init_uts_ns", "drgn for_each_task"} {
		c := a.perTool[k]
		parts = append(parts, fmt.Sprintf("%s %d/%d", k, c[0], c[1]))
	}
	t.Logf("verify agreement on kdump files: %d of %d tool runs agree (%.1f%%) on %d mutants over %d guests (%s), ldx's and makedumpfile's kdump files; %s",
		a.agree, a.runs, 100*float64(a.agree)/float64(max(a.runs, 1)), a.mutants, len(kernels), strings.Join(kernels, "; "), strings.Join(parts, ", "))
	for _, d := range a.disagreements {
		t.Logf("verify disagreement (kdump): %s", d)
	}
}

// makeKdumpMutant builds mutant m of the good kdump file at path.
func makeKdumpMutant(path string, m verifytest.KdumpMutant) (*verifytest.Mutation, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	k, err := verifytest.ParseKdump(fh, st.Size())
	if err != nil {
		return nil, err
	}
	defer k.Close()
	return m.Make(k)
}
