//go:build e2e

// End-to-end tests of ldx verify on real kernel memory (a Debian 6.1 cloud
// kernel under QEMU, kmod/kmodtest/guest), next to the real consumers
// installed on the machine (crash 8.0.2, makedumpfile 1.7.2, drgn 0.0.22 on
// Debian 12). Run with `make verify-agreement` (or `make e2e`'s deps first).
package verify

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ldx/extract"
	"ldx/extract/verify/verifytest"
	"ldx/kmod/kmodtest"
	"ldx/kmod/kmodtest/guest"
	"ldx/kmod/manifest"
)

// e2eKeys are the VMCOREINFO keys whose removal is run past the real tools:
// one or more per checklist row (every key is covered statically by
// TestMutants). LDX_VERIFY_ALL_KEYS=1 runs every key.
var e2eKeys = map[string]bool{
	"OSRELEASE": true, "PAGESIZE": true, "SYMBOL(swapper_pg_dir)": true, "SYMBOL(init_top_pgt)": true,
	"NUMBER(phys_base)": true, "KERNELOFFSET": true, "SYMBOL(_stext)": true, "NUMBER(pgtable_l5_enabled)": true,
	"NUMBER(sme_mask)": true, "NUMBER(KERNEL_IMAGE_SIZE)": true, "SYMBOL(mem_section)": true, "SIZE(page)": true,
	"SYMBOL(init_uts_ns)": true, "OFFSET(page.lru)": true, "NUMBER(PG_lru)": true, "BUILD-ID": true,
	"SYMBOL(prb)": true, "OFFSET(prb_desc_ring.infos)": true, "OFFSET(printk_info.caller_id)": true,
	"SYMBOL(printk_rb_static)": true, "SYMBOL(clear_seq)": true,
}

// agreementGuests are the independent boots the corpus runs on: both
// kernel series, 2 and 4 CPUs, 4- and 5-level paging, KASLR on. Each boot
// draws its own layout (where the kernel, the per-CPU areas and the page
// tables lie, and phys_base), which decides several verdicts. The specs
// are those of `make e2e`, which boots them first.
var agreementGuests = []struct {
	name string
	spec guest.Spec
}{
	{"6.1-2cpu", guest.Spec{Kernel: guest.KernelSpec{Series: "6.1"}, Memory: "512M", CPUs: 2}},
	{"6.1-4cpu-kaslr", guest.Spec{Kernel: guest.KernelSpec{Series: "6.1"}, Memory: "1G", CPUs: 4}},
	{"6.12-4cpu-kaslr", guest.Spec{Kernel: guest.KernelSpec{Series: "6.12"}, Memory: "1G", CPUs: 4}},
	{"6.12-la57-2cpu", guest.Spec{Kernel: guest.KernelSpec{Series: "6.12"}, Memory: "512M", CPUs: 2, LA57: true}},
}

// e2eGuest boots (or takes from the cache) one guest and returns its
// artefacts and ldx's vmcore of its emulated livedump device.
func e2eGuest(t *testing.T, spec guest.Spec) (*guest.Artefacts, string) {
	t.Helper()
	ctx := guest.WithLog(context.Background(), t.Logf)
	art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), spec)
	if err != nil {
		t.Fatalf("preparing the guest: %v", err)
	}
	k, closer, err := kmodtest.FromELFDump(art.Dump)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if err := k.ApplyFacts(art.Facts); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "device.img")
	run := kmodtest.Run{Prepared: manifest.Zeroed, Manifest: &manifest.Manifest{}, Start: time.Now()}
	if _, err := kmodtest.WriteFile(img, k, &run); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.vmcore")
	if _, err := extract.Run(ctx, extract.Options{Input: img, Output: good}); err != nil {
		t.Fatalf("ldx extract: %v", err)
	}
	os.Remove(img)
	return art, good
}

func verifyWithTools(t *testing.T, path, vmlinux string, markers []string) *Report {
	t.Helper()
	rep, err := File(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := RunTools(context.Background(), rep, ToolOptions{Vmlinux: vmlinux, Timeout: 3 * time.Minute, ExpectLog: markers}); err != nil {
		t.Fatal(err)
	}
	return rep
}

func toolLine(rep *Report) string {
	var s []string
	for _, r := range rep.Tools {
		if r.Skipped != "" {
			continue
		}
		mark := "="
		if !r.Agree {
			mark = "≠"
		}
		s = append(s, fmt.Sprintf("%s %s: predicted %s %s real %s (%s)", r.Tool, r.Mode, okWord(r.PredictedOK), mark, okWord(r.OK), r.Verdict))
	}
	return strings.Join(s, "; ")
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "fails"
}

// agreement counts tool runs over the whole corpus.
type agreement struct {
	agree, runs, mutants int
	perTool              map[string][2]int
	disagreements        []string
}

func (a *agreement) count(rep *Report) {
	for _, r := range rep.Tools {
		if r.Skipped != "" {
			continue
		}
		k := r.Tool.String() + " " + r.Mode
		c := a.perTool[k]
		c[1]++
		a.runs++
		if r.Agree {
			c[0]++
			a.agree++
		}
		a.perTool[k] = c
	}
}

// disagree records and reports every tool run whose verdict differs from
// the prediction: the case, the consumer, both verdicts, the checks that
// gave the prediction and what they found (the addresses involved).
func (a *agreement) disagree(t *testing.T, where string, rep *Report) {
	t.Helper()
	for _, r := range rep.Tools {
		if r.Skipped != "" || r.Agree {
			continue
		}
		p := rep.Prediction(r.Tool)
		var found []string
		for _, id := range rep.Failed() {
			c := rep.Check(ID(id))
			found = append(found, fmt.Sprintf("%s (%s): %s", id, c.Severity, c.Found))
		}
		d := fmt.Sprintf("%s: %s %s predicted %s (%v, checks %v), really %s (%s); failed checks: %s",
			where, r.Tool, r.Mode, okWord(r.PredictedOK), r.Predicted, p.Checks, okWord(r.OK), r.Verdict, strings.Join(found, " | "))
		a.disagreements = append(a.disagreements, d)
		t.Errorf("disagreement: %s\n%s", d, r.Output)
	}
}

// TestVerifyAgreement, on each of several independently booted guests:
// ldx's own output passes and every consumer reads it (but where the
// consumer's version cannot read that kernel at all, as predicted); QEMU's
// dump as it comes gets exactly the failures the tools show; every mutant
// fires its check, and the static verdict agrees with the installed
// consumers. The agreement figure is printed at the end.
func TestVerifyAgreement(t *testing.T) {
	a := &agreement{perTool: map[string][2]int{}}
	var kernels []string
	for _, gs := range agreementGuests {
		t.Run(gs.name, func(t *testing.T) {
			art, good := e2eGuest(t, gs.spec)
			kernels = append(kernels, fmt.Sprintf("%s: %s %s", gs.name, art.Kernel.Package, art.Kernel.Version))
			agreementOn(t, a, gs.name, art, good)
		})
	}
	// The kdump-compressed corpus, counted apart (-run
	// 'TestVerifyAgreement/kdump' runs it alone).
	t.Run("kdump", kdumpAgreement)
	if a.runs == 0 {
		return
	}
	var parts []string
	for _, k := range []string{"crash --osrelease", "crash sys", "makedumpfile --dump-dmesg", "drgn init_uts_ns"} {
		c := a.perTool[k]
		parts = append(parts, fmt.Sprintf("%s %d/%d", k, c[0], c[1]))
	}
	t.Logf("verify agreement: %d of %d tool runs agree (%.1f%%) on %d mutants over %d guests (%s), ldx's outputs and the QEMU dumps; %s",
		a.agree, a.runs, 100*float64(a.agree)/float64(max(a.runs, 1)), a.mutants, len(kernels), strings.Join(kernels, "; "), strings.Join(parts, ", "))
	for _, d := range a.disagreements {
		t.Logf("verify disagreement: %s", d)
	}
}

func agreementOn(t *testing.T, a *agreement, gname string, art *guest.Artefacts, good string) {
	vmlinux := art.Vmlinux
	t.Run("ldx-output", func(t *testing.T) {
		rep := verifyWithTools(t, good, vmlinux, art.Facts.Markers)
		a.count(rep)
		if failed := rep.Failed(); len(failed) > 0 && rep.Worst > Info {
			if c := rep.Check("G1"); c == nil || !c.Failed() || len(failed) > 1 {
				t.Errorf("ldx's output fails checks:\n%s", failedSummary(rep))
			}
		}
		for _, r := range rep.Tools {
			if r.Skipped == "" && !r.OK && r.PredictedOK {
				t.Errorf("%s %s fails on ldx's output: %s\n%s", r.Tool, r.Mode, r.Verdict, r.Output)
			}
		}
		a.disagree(t, gname+" ldx output", rep)
		t.Logf("verify_e2e %s ldx output: %s; %s", gname, rep.Duration, toolLine(rep))
	})

	t.Run("qemu-dump", func(t *testing.T) {
		rep := verifyWithTools(t, art.Dump, vmlinux, art.Facts.Markers)
		a.count(rep)
		if p := rep.Prediction(Makedumpfile); p.Verdict != Fatal || p.Checks[0] != "A5" {
			t.Errorf("makedumpfile: %+v, want fatal because of A5 (program headers not at 64)", p)
		}
		if p := rep.Prediction(Drgn); p.Verdict != Fatal || !strings.Contains(JoinIDs(p.Checks, " "), "B9") {
			t.Errorf("drgn: %+v, want fatal because of B9 (no kernel-virtual segments)", p)
		}
		for _, id := range []string{"A5", "B9"} {
			if c := rep.Check(ID(id)); c == nil || !strings.Contains(c.Fix, "ldx extract") {
				t.Errorf("%s does not name the fix: %+v", id, c)
			}
		}
		a.disagree(t, gname+" QEMU dump", rep)
		t.Logf("verify_e2e %s qemu dump: failed %v; %s", gname, rep.Failed(), toolLine(rep))
	})

	t.Run("ldx-output-of-the-qemu-dump", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "qemu.vmcore")
		if _, err := extract.Run(context.Background(), extract.Options{Input: art.Dump, Output: out}); err != nil {
			t.Fatalf("ldx extract of the QEMU dump: %v", err)
		}
		rep := verifyWithTools(t, out, vmlinux, art.Facts.Markers)
		a.count(rep)
		for _, r := range rep.Tools {
			if r.Skipped == "" && !r.OK && r.PredictedOK {
				t.Errorf("%s %s fails on ldx's output of the QEMU dump: %s", r.Tool, r.Mode, r.Verdict)
			}
		}
		a.disagree(t, gname+" ldx output of the QEMU dump", rep)
		t.Logf("verify_e2e %s ldx output of the QEMU dump: failed %v; %s", gname, rep.Failed(), toolLine(rep))
	})

	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	core, err := verifytest.ParseCore(bytes.NewReader(goodBytes), int64(len(goodBytes)))
	if err != nil {
		t.Fatal(err)
	}
	keys := e2eKeys
	if os.Getenv("LDX_VERIFY_ALL_KEYS") != "" {
		keys = nil
	}
	corpus := append(verifytest.Mutants(), verifytest.KeyMutants(core.Info(), keys)...)
	dir := t.TempDir()
	for _, m := range corpus {
		t.Run(m.Name, func(t *testing.T) {
			g, err := verifytest.ParseCore(bytes.NewReader(goodBytes), int64(len(goodBytes)))
			if err != nil {
				t.Fatal(err)
			}
			mu, err := m.Make(g)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "mutant.vmcore")
			if err := mu.WriteFile(good, path); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(path)
			rep := verifyWithTools(t, path, vmlinux, art.Facts.Markers)
			a.mutants++
			a.count(rep)
			for _, id := range m.Want {
				if c := rep.Check(ID(id)); c == nil || !c.Failed() {
					t.Errorf("check %s did not fire: %+v", id, c)
				}
			}
			a.disagree(t, gname+" mutant "+strconvQuote(m.Name), rep)
			t.Logf("verify_e2e %s mutant %q: failed %v; %s", gname, m.Name, rep.Failed(), toolLine(rep))
		})
	}
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }
