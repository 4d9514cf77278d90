//go:build e2e

// End-to-end test of kdump-compressed input: the real makedumpfile turns
// ldx's vmcore of each cached guest dump into kdump files (zlib, LZO, no
// exclusion, flattened), and every ldx command must give on them what it
// gives on the vmcore they were made from; ldx extract of a kdump file
// must be a vmcore the consumers read; an excluded page must be reported
// as excluded.
package extract

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ldx/elfcore/kdump"
	"ldx/kmod/kmodtest/guest"
)

var (
	ldxBinOnce sync.Once
	ldxBinPath string
	ldxBinErr  error
)

// ldxBin builds the ldx command once for the test binary's life.
func ldxBin(t *testing.T) string {
	ldxBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ldx-kdump-e2e-")
		if err != nil {
			ldxBinErr = err
			return
		}
		ldxBinPath = filepath.Join(dir, "ldx")
		out, err := exec.Command("go", "build", "-o", ldxBinPath, "ldx/cmd/ldx").CombinedOutput()
		if err != nil {
			ldxBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if ldxBinErr != nil {
		t.Fatal(ldxBinErr)
	}
	return ldxBinPath
}

// ldxRun runs the ldx command and returns stdout, stderr and the exit code.
func ldxRun(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ldxBin(t), args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return o.String(), e.String(), code
}

type kdumpE2EScenario struct {
	name      string
	spec      guest.Spec
	crash     bool
	level     string   // makedumpfile -d for the excluding variants
	variants  []string // makedumpfile variants: "zlib", "lzo", "zlib-d0", "flat"
	consumers bool     // extract the zlib file and run the consumers on the vmcore
}

// makedumpfile 1.7.2 misclassifies slab pages of 6.12 as user or cache
// pages at -d 31 (the drgn task walk then reads holes), so 6.12 keeps
// user pages: -d 23. The 5-level guests check the ldx answers only (the
// consumers' runs cost a minute each and are the same code path).
var kdumpE2EScenarios = []kdumpE2EScenario{
	{"6.1-4cpu-kaslr", guest.Spec{Kernel: guest.KernelSpec{Series: "6.1"}, Memory: "1G", CPUs: 4}, true, "31", []string{"zlib", "lzo", "zlib-d0", "flat"}, true},
	{"6.1-la57-4cpu", guest.Spec{Kernel: guest.KernelSpec{Series: "6.1"}, Memory: "1G", CPUs: 4, LA57: true}, true, "31", []string{"zlib"}, false},
	{"6.12-4cpu-kaslr", guest.Spec{Kernel: guest.KernelSpec{Series: "6.12"}, Memory: "1G", CPUs: 4}, false, "23", []string{"zlib", "lzo", "flat"}, true},
	{"6.12-la57-2cpu", guest.Spec{Kernel: guest.KernelSpec{Series: "6.12"}, Memory: "512M", CPUs: 2, LA57: true}, false, "23", []string{"lzo"}, false},
}

func TestKdumpE2E(t *testing.T) {
	ctx := guest.WithLog(context.Background(), t.Logf)
	for _, sc := range kdumpE2EScenarios {
		t.Run(sc.name, func(t *testing.T) {
			art, dir, ref := guestVmcore(ctx, t, sc.spec)
			want := kdumpAnswers(t, ref, art)
			for _, v := range sc.variants {
				in := filepath.Join(dir, v+".kdump")
				makeKdump(t, v, sc.level, ref, in)
				t.Run(v, func(t *testing.T) {
					st, _ := os.Stat(in)
					got := kdumpAnswers(t, in, art)
					for _, k := range sortedKeys(want) {
						if got[k] != want[k] {
							t.Errorf("ldx %s differs on the %s kdump file from the vmcore it was made from:\n%s\nwant\n%s", k, v, tail(got[k], 15), tail(want[k], 15))
						}
					}
					excluded := checkExcluded(t, in, v)
					t.Logf("e2e_kdump %s %s: %.1f MiB, %d ldx answers identical to the vmcore's (%s); %s",
						sc.name, v, float64(st.Size())/(1<<20), len(want), strings.Join(sortedKeys(want), ", "), excluded)
				})
			}
			// extract of the zlib file: the consumers read the vmcore.
			if !sc.consumers {
				return
			}
			t.Run("extract", func(t *testing.T) {
				out := filepath.Join(dir, "of-kdump.vmcore")
				if _, errs, code := ldxRun(t, "extract", "-q", filepath.Join(dir, "zlib.kdump"), "-o", out); code != 0 {
					t.Fatalf("ldx extract of the kdump file: exit %d: %s", code, errs)
				}
				if sc.crash {
					checkCrash(t, out, art)
				}
				checkMakedumpfile(t, out, art)
				checkDrgn(t, out, art)
				t.Logf("e2e_kdump %s: ldx extract of the kdump file read by makedumpfile, drgn%s", sc.name, map[bool]string{true: " and crash", false: " (crash 8.0.2 cannot open 6.12)"}[sc.crash])
			})
		})
	}
	// A split dump (makedumpfile --split) of the 4 GiB guest. 1.7.2 cuts
	// the pfns at whole splitblocks by a count of dumpable pages that
	// comes out short with its default 1 GiB blocks (on some boots every
	// page goes to the first part); with 4 MiB blocks the parts share
	// the pages.
	t.Run("split", func(t *testing.T) {
		i := slices.IndexFunc(e2eScenarios, func(sc e2eScenario) bool { return sc.name == "6.1-8cpu-4G-pcihole" })
		art, dir, ref := guestVmcore(ctx, t, e2eScenarios[i].spec)
		whole := filepath.Join(dir, "whole.kdump")
		makeKdump(t, "zlib", "31", ref, whole)
		want := kdumpAnswers(t, whole, art)
		pdir := filepath.Join(dir, "parts")
		os.Mkdir(pdir, 0o700)
		parts := []string{filepath.Join(pdir, "vmcore-1"), filepath.Join(pdir, "vmcore-2"), filepath.Join(pdir, "vmcore-3")}
		if out, err := exec.Command("makedumpfile", append([]string{"--splitblock-size", "4096", "--split", "-c", "-d", "31", ref}, parts...)...).CombinedOutput(); err != nil {
			t.Fatalf("makedumpfile --split: %v\n%s", err, tail(string(out), 20))
		}
		// The dump split again, into 2 parts, into the same directory: the
		// two sets share makedumpfile's header (checked below, once the
		// first set has been read with the second beside it).
		again := []string{filepath.Join(pdir, "again-1"), filepath.Join(pdir, "again-2")}
		if out, err := exec.Command("makedumpfile", append([]string{"--splitblock-size", "4096", "--split", "-c", "-d", "31", ref}, again...)...).CombinedOutput(); err != nil {
			t.Fatalf("makedumpfile --split again: %v\n%s", err, tail(string(out), 20))
		}
		os.Remove(ref)
		info, errs, code := ldxRun(t, "info", parts[1])
		if code != 0 || !strings.Contains(info, "3 parts (makedumpfile --split)") {
			t.Fatalf("ldx info on a part: exit %d: %s\n%s", code, errs, info)
		}
		// The pages each part holds, from its own header.
		pages := make([]uint64, len(parts))
		holding := 0
		for i, p := range parts {
			fh, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := fh.Stat()
			kf, err := kdump.OpenPart(fh, st.Size())
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(p), err)
			}
			pages[i] = kf.DumpablePages()
			kf.Close()
			fh.Close()
			if pages[i] > 0 {
				holding++
			}
		}
		if holding < 2 {
			t.Errorf("makedumpfile put the pages in %d of the 3 parts (%v): the split is not exercised", holding, pages)
		}
		for _, p := range []string{parts[0], parts[2]} {
			got := kdumpAnswers(t, p, art)
			for _, k := range sortedKeys(want) {
				if got[k] != want[k] {
					t.Errorf("ldx %s differs on split part %s from the whole kdump file:\n%s\nwant\n%s", k, filepath.Base(p), tail(got[k], 15), tail(want[k], 15))
				}
			}
		}
		// verify on a part: fatal for every consumer given it alone (the
		// real tools agree), the other checks read the whole set.
		runs := 0
		for _, p := range parts {
			js, errs, code := ldxRun(t, "verify", "--json", "--with-tools", "--vmlinux", art.Vmlinux, p)
			var rep struct {
				Checks []struct{ ID, Status string }
				Tools  []struct {
					Tool, Mode, Verdict string
					Agree               bool
					Skipped             string
				}
			}
			if err := json.Unmarshal([]byte(js), &rep); err != nil || code != 6 {
				t.Fatalf("ldx verify --with-tools %s: exit %d, want 6: %v: %s", filepath.Base(p), code, err, errs)
			}
			for _, c := range rep.Checks {
				if want := map[bool]string{true: "fail", false: "pass"}[c.ID == "H1"]; c.ID != "H8" && c.ID != "G1" && c.Status != want {
					t.Errorf("verify %s: %s %s, want %s", filepath.Base(p), c.ID, c.Status, want)
				}
			}
			for _, r := range rep.Tools {
				if r.Skipped == "" && !r.Agree {
					t.Errorf("verify %s: %s %s disagrees: %s", filepath.Base(p), r.Tool, r.Mode, r.Verdict)
				}
				if r.Skipped == "" {
					runs++
				}
			}
		}
		if runs < 12 {
			t.Errorf("only %d tool runs on the parts", runs)
		}
		out := filepath.Join(dir, "of-split.vmcore")
		if _, errs, code := ldxRun(t, "extract", "-q", parts[2], "-o", out); code != 0 {
			t.Fatalf("ldx extract of a split part: exit %d: %s", code, errs)
		}
		checkCrash(t, out, art)
		checkMakedumpfile(t, out, art)
		checkDrgn(t, out, art)
		// The second split beside the first: each part reads through its
		// own set, and the other set's parts are named as not needed.
		for p, other := range map[string][]string{parts[1]: again, again[1]: parts} {
			n := 5 - len(other)
			info, errs, code := ldxRun(t, "info", p)
			if code != 0 || !strings.Contains(info, fmt.Sprintf("%d parts (makedumpfile --split)", n)) {
				t.Errorf("ldx info on %s beside a second split: exit %d, want %d parts: %s\n%s", filepath.Base(p), code, n, errs, info)
			}
			if unused := strings.Join(baseNames(other), ", "); !strings.Contains(info+errs, "not needed: "+unused) {
				t.Errorf("ldx info on %s beside a second split does not say that %s are not needed:\n%s%s", filepath.Base(p), unused, info, errs)
			}
		}
		if got, errs, code := ldxRun(t, "dmesg", again[0]); code != 0 || got != want["dmesg"] {
			t.Errorf("ldx dmesg on %s beside a second split: exit %d, equal to the whole file's %v: %s", filepath.Base(again[0]), code, got == want["dmesg"], errs)
		}
		for _, p := range again {
			os.Remove(p)
		}
		// Without a part that holds pages (one of the last two, for the
		// first is asked) the dump is refused.
		gone := 1
		if pages[2] > pages[1] {
			gone = 2
		}
		os.Remove(parts[gone])
		if _, errs, code := ldxRun(t, "dmesg", parts[0]); code != 3 || !strings.Contains(errs, "a part is missing") {
			t.Errorf("ldx dmesg with %s (%d pages) missing: exit %d: %s; want 3 and the missing range", filepath.Base(parts[gone]), pages[gone], code, errs)
		}
		t.Logf("e2e_kdump split: %d answers of ldx on two parts of makedumpfile's 3-part split identical to the whole file's; verify on each part agrees with %d real tool runs; extract of a part read by crash, makedumpfile and drgn; pages per part %v; a second split into the same directory read set by set; a missing part refused", len(want), runs, pages)
	})
	// QEMU's own kdump-zlib (flattened, with a guessed phys_base).
	t.Run("qemu-kdump-zlib", func(t *testing.T) {
		art, _, ref := guestVmcore(ctx, t, guest.Spec{Kernel: guest.KernelSpec{Series: "6.1"}, Memory: "512M", CPUs: 2, KdumpFormat: "kdump-zlib"})
		info, errs, code := ldxRun(t, "info", art.Kdump)
		if code != 0 || !strings.Contains(info, "kdump-compressed") || !strings.Contains(info, "flattened") {
			t.Fatalf("ldx info on QEMU's kdump-zlib: exit %d: %s\n%s", code, errs, info)
		}
		// The guest ran on between the two dumps: compare what stays.
		for _, args := range [][]string{{"dmesg"}, {"read", "linux_banner", "128"}, {"vmcoreinfo"}} {
			a, _, c1 := ldxRun(t, append(args[:1:1], append([]string{art.Kdump}, args[1:]...)...)...)
			b, _, c2 := ldxRun(t, append(args[:1:1], append([]string{ref}, args[1:]...)...)...)
			if c1 != 0 || c2 != 0 || a != b {
				t.Errorf("ldx %v differs between QEMU's kdump-zlib and its ELF dump (exit %d, %d)", args, c1, c2)
			}
		}
		out := filepath.Join(t.TempDir(), "of-qemu-kdump.vmcore")
		_, errs, code = ldxRun(t, "extract", art.Kdump, "-o", out)
		if code != 0 {
			t.Fatalf("ldx extract of QEMU's kdump-zlib: exit %d: %s", code, errs)
		}
		checkE2ELayout(t, out, art, false)
		checkMakedumpfile(t, out, art)
		checkDrgn(t, out, art)
		t.Logf("e2e_kdump qemu-kdump-zlib: dmesg, linux_banner and VMCOREINFO identical to the ELF dump's; its vmcore read by makedumpfile and drgn")
	})
}

// makeKdump runs makedumpfile 1.7.2 on ref.
func makeKdump(t *testing.T, variant, level, ref, out string) {
	var args []string
	switch variant {
	case "zlib":
		args = []string{"-c", "-d", level}
	case "lzo":
		args = []string{"-l", "-d", level}
	case "zlib-d0":
		args = []string{"-c", "-d", "0"}
	case "flat":
		args = []string{"-F", "-c", "-d", level}
	}
	cmd := exec.Command("makedumpfile", append(args, ref)...)
	if variant == "flat" {
		f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdout = f
	} else {
		cmd.Args = append(cmd.Args, out)
	}
	var e strings.Builder
	cmd.Stderr = &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("makedumpfile %s: %v\n%s", strings.Join(args, " "), err, tail(e.String(), 20))
	}
}

// kdumpAnswers runs the read-only commands on one input and returns their
// outputs by command, with the lines that name the input itself (its
// name, size, format, own headers) left out of info.
func kdumpAnswers(t *testing.T, in string, art *guest.Artefacts) map[string]string {
	t.Helper()
	cmds := map[string][]string{
		"dmesg":                 {"dmesg", in},
		"ps":                    {"ps", in, "--vmlinux", art.Vmlinux},
		"syms":                  {"syms", in},
		"vmcoreinfo":            {"vmcoreinfo", in},
		"vmcoreinfo generate":   {"vmcoreinfo", "generate", "--vmlinux", art.Vmlinux, "--dump", in},
		"read linux_banner":     {"read", in, "linux_banner", "256"},
		"read init_task":        {"read", in, "init_task", "1024"},
		"read init_uts_ns":      {"read", in, "init_uts_ns", "512"},
		"vtop linux_banner":     {"vtop", in, "linux_banner"},
		"vtop init_task":        {"vtop", in, "init_task"},
		"info (kernel, layout)": {"info", in},
	}
	out := map[string]string{}
	for k, args := range cmds {
		o, e, code := ldxRun(t, args...)
		if code != 0 {
			t.Errorf("ldx %s on %s: exit %d: %s", strings.Join(args, " "), filepath.Base(in), code, tail(e, 10))
		}
		if strings.HasPrefix(k, "info") {
			o = infoKernelLines(o)
		}
		out[k] = o
	}
	return out
}

// infoKernelLines keeps what info says about the kernel, not the file.
func infoKernelLines(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range []string{"release:", "build-id:", "cpus:", "memory:", "kaslr:", "phys_base:", "page_offset_base:", "paging:", "kernel image:", "direct map:", "vmalloc:", "vmemmap:"} {
			if strings.HasPrefix(l, p) {
				keep = append(keep, l)
			}
		}
	}
	return strings.Join(keep, "\n")
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// checkExcluded reads a page of RAM the file excludes (found through its
// own bitmaps) and wants ldx read to say it is excluded, naming the pfn.
func checkExcluded(t *testing.T, in, variant string) string {
	fh, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if variant == "flat" {
		return "flattened (excluded pages checked on the plain files)"
	}
	st, _ := fh.Stat()
	f, err := kdump.Open(fh, st.Size())
	if err != nil {
		t.Fatalf("kdump.Open: %v", err)
	}
	defer f.Close()
	var n uint64
	pfn := uint64(0)
	for p := uint64(0x100); p < f.MaxMapnr; p++ {
		if f.InRAM(p) && !f.Dumpable(p) {
			if n == 0 || p%7 == 0 && pfn < 0x1000 {
				pfn = p
			}
			n++
		}
	}
	if variant == "zlib-d0" {
		if n != 0 {
			t.Errorf("-d 0 excluded %d pages", n)
		}
		return "no page excluded at -d 0"
	}
	if n == 0 {
		t.Fatalf("no excluded page of RAM in a -d file")
	}
	_, e, code := ldxRun(t, "read", "--phys", in, fmt.Sprintf("%#x", pfn*4096), "16")
	re := regexp.MustCompile(fmt.Sprintf(`pfn %#x\): page excluded from the dump \(dump level \d+\)`, pfn))
	if code == 0 || !re.MatchString(e) {
		t.Errorf("ldx read of excluded pfn %#x: exit %d, stderr %q; want it reported as excluded", pfn, code, e)
	}
	return fmt.Sprintf("%d pages excluded, reading pfn %#x says so", n, pfn)
}

// guestVmcore prepares the guest of spec and extracts its QEMU dump with
// ldx into a fresh directory: the vmcore the kdump files are made from.
func guestVmcore(ctx context.Context, t *testing.T, spec guest.Spec) (art *guest.Artefacts, dir, vmcore string) {
	t.Helper()
	art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), spec)
	if err != nil {
		t.Fatalf("preparing the guest: %v", err)
	}
	dir = t.TempDir()
	vmcore = filepath.Join(dir, "ref.vmcore")
	if _, errs, code := ldxRun(t, "extract", "-q", art.Dump, "-o", vmcore); code != 0 {
		t.Fatalf("ldx extract of the QEMU dump: exit %d: %s", code, errs)
	}
	return art, dir, vmcore
}

// baseNames returns the paths' file names.
func baseNames(paths []string) []string {
	var ns []string
	for _, p := range paths {
		ns = append(ns, filepath.Base(p))
	}
	return ns
}
