//go:build e2e

// End-to-end tests of what ldx does with a debug vmlinux, on real Debian
// 6.1 and 6.12 guests and their -dbg vmlinux: verify --vmlinux passes on
// matching pairs, in every input form, and names the mismatch when the
// vmlinux is another kernel's.
//
//	go test -tags e2e -run TestVmlinuxE2E -v ./cmd/ldx/
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"ldx/elfcore"

	"ldx/elfcore/vmlinux"
	"ldx/kmod/kmodtest/guest"
)

// vmlinuxScenarios are analysisScenarios' four main guests (their dumps
// are cached already): 6.1 and 6.12, 4- and 5-level paging, KASLR.
var vmlinuxScenarios = analysisScenarios[:4]

type verifyJSON struct {
	Checks []struct {
		ID, Status, Found string
	}
	ExitCode int `json:"exit_code"`
}

func verifyV(t *testing.T, args ...string) (verifyJSON, int) {
	t.Helper()
	out, errs, code := ldx(append([]string{"verify", "--json"}, args...)...)
	var r verifyJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("ldx verify %v: exit %d, %v\nstderr: %s", args, code, err, errs)
	}
	return r, code
}

func TestVmlinuxE2E(t *testing.T) {
	ctx := guest.WithLog(context.Background(), t.Logf)
	arts := map[string]*guest.Artefacts{}
	for _, sc := range vmlinuxScenarios {
		art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), sc.spec)
		if err != nil {
			t.Fatalf("preparing %s: %v", sc.name, err)
		}
		arts[sc.name] = art
	}
	other := map[string]string{} // a vmlinux of the other series, for the mismatch
	for _, sc := range vmlinuxScenarios {
		for _, sc2 := range vmlinuxScenarios {
			if sc2.spec.Kernel.Series != sc.spec.Kernel.Series {
				other[sc.name] = arts[sc2.name].Vmlinux
			}
		}
	}
	for _, sc := range vmlinuxScenarios {
		t.Run(sc.name, func(t *testing.T) {
			art := arts[sc.name]
			names, inputs := analysisInputs(t, art)
			for _, name := range names {
				if name == "livedump-device" {
					continue // verify reads the raw device as it is: its cut notes are K-1, not a vmlinux question
				}
				r, _ := verifyV(t, "--vmlinux", art.Vmlinux, inputs[name])
				got := 0
				for _, c := range r.Checks {
					if !strings.HasPrefix(c.ID, "V") {
						continue
					}
					got++
					if c.Status != "pass" {
						t.Errorf("%s: %s %s: %s", name, c.ID, c.Status, c.Found)
					} else {
						t.Logf("e2e_vmlinux %s %s: %s %s", sc.name, name, c.ID, c.Found)
					}
				}
				if got != 7 {
					t.Errorf("%s: %d V checks, want 7", name, got)
				}
			}
			t.Run("extract-rebuild", func(t *testing.T) { checkRebuild(t, sc, art, inputs) })
			// Another kernel's vmlinux: fatal, and the mismatch named.
			wrong := other[sc.name]
			wv, err := vmlinux.Open(wrong)
			if err != nil {
				t.Fatal(err)
			}
			defer wv.Close()
			wrel, _ := wv.Release()
			r, code := verifyV(t, "--vmlinux", wrong, inputs["ldx-vmcore-of-livedump-device"])
			if code != exitFatal {
				t.Errorf("wrong vmlinux: exit %d, want %d", code, exitFatal)
			}
			want := map[string]string{"V1": "BUILD-ID=", "V2": wrel, "V3": "differ", "V4": "differ", "V5": "differ"}
			for _, c := range r.Checks {
				if w, ok := want[c.ID]; ok {
					if c.Status != "fail" || !strings.Contains(c.Found, w) {
						t.Errorf("wrong vmlinux: %s %s %q, want a failure naming %q", c.ID, c.Status, c.Found, w)
					}
					t.Logf("e2e_vmlinux_mismatch %s: %s %s", sc.name, c.ID, c.Found)
					delete(want, c.ID)
				}
			}
			if len(want) > 0 {
				t.Errorf("wrong vmlinux: checks not reported: %v", want)
			}
		})
	}
}

// stripVMCOREINFO makes a copy of a dump whose VMCOREINFO is lost: the
// note is renamed and its text zeroed (ELF vmcores), or the text in the
// notes page is cut after cut bytes (livedump devices), and every copy of
// the text in the dumped memory (the kernel's vmcoreinfo_data and
// vmcoreinfo_note pages) is zeroed, so that extract's recovery from
// memory has nothing to find.
func stripVMCOREINFO(t *testing.T, in, out, release string, device bool) {
	t.Helper()
	if b, err := exec.Command("cp", "--sparse=always", in, out).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, b)
	}
	f, err := os.OpenFile(out, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if !device {
		core, err := elfcore.NewFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		notes, _ := core.Notes()
		found := false
		for _, n := range notes {
			if n.Name == elfcore.NameVMCOREINFO {
				// Off is the note header's file offset; the name is at +12.
				f.WriteAt([]byte("LDXREMOVED\x00"), n.Off+12)
				f.WriteAt(make([]byte, len(n.Desc)), n.Off+24)
				found = true
			}
		}
		if !found {
			t.Fatal("no VMCOREINFO note to remove")
		}
	}
	needle := []byte("OSRELEASE=" + release)
	const chunk = 4 << 20
	buf := make([]byte, chunk+len(needle))
	wiped := 0
	for off := int64(0); off < st.Size(); off += chunk {
		n, err := f.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		for b := buf[:n]; ; {
			i := bytes.Index(b, needle)
			if i < 0 {
				break
			}
			at := off + int64(n-len(b)+i)
			page := at &^ 0xfff
			b = b[i+1:]
			if device && page == 0x1000 {
				continue // the notes page: what survived of the kernel's own text stays
			}
			f.WriteAt(make([]byte, 0x2000), page)
			wiped++
		}
	}
	if wiped == 0 {
		t.Fatal("no copy of the VMCOREINFO text in the dumped memory")
	}
	t.Logf("e2e_rebuild_input %s: wiped %d copies of the VMCOREINFO text in memory", filepath.Base(out), wiped)
}

// checkRebuild: a dump whose VMCOREINFO is lost is refused without the
// vmlinux, and with it extract rebuilds a VMCOREINFO equal to the kernel's
// own (beyond the keys it lists), which crash and drgn open.
func checkRebuild(t *testing.T, sc analysisScenario, art *guest.Artefacts, inputs map[string]string) {
	dir := t.TempDir()
	want, _, code := ldx("vmcoreinfo", inputs["ldx-vmcore-of-qemu-dump"])
	if code != 0 {
		t.Fatal("no reference VMCOREINFO")
	}
	for _, form := range []struct {
		name, src string
		device    bool
	}{{"elf", "ldx-vmcore-of-qemu-dump", false}, {"device", "livedump-device", true}} {
		t.Run(form.name, func(t *testing.T) {
			lost := filepath.Join(dir, form.name+".lost")
			stripVMCOREINFO(t, inputs[form.src], lost, art.Facts.Release, form.device)
			plain := filepath.Join(dir, form.name+".plain.vmcore")
			_, errs, code := ldx("extract", "-q", lost, "-o", plain)
			if code == 0 {
				t.Skipf("the kernel's notes page kept the whole VMCOREINFO (%d CPUs): nothing to rebuild", art.Facts.NumPresent)
			}
			if code != exitBadInput || !strings.Contains(errs, "--vmlinux") {
				t.Errorf("without --vmlinux: exit %d, want %d and a hint naming --vmlinux: %s", code, exitBadInput, errs)
			}
			out := filepath.Join(dir, form.name+".vmcore")
			t0 := time.Now()
			sumJSON, errs, code := ldx("extract", "-q", "--json", "--vmlinux", art.Vmlinux, lost, "-o", out)
			if code != 0 {
				t.Fatalf("extract --vmlinux: exit %d: %s", code, errs)
			}
			var sum struct {
				VMCOREINFO string `json:"vmcoreinfo_source"`
				Repairs    []string
				Warnings   []string
			}
			json.Unmarshal([]byte(sumJSON), &sum)
			if !strings.Contains(sum.VMCOREINFO, "rebuild from the vmlinux") || !strings.Contains(strings.Join(sum.Repairs, "\n"), "rebuilt VMCOREINFO") {
				t.Errorf("the summary does not say VMCOREINFO was rebuilt: %s", sumJSON)
			}
			t.Logf("e2e_rebuild %s/%s: %.2fs; %s", sc.name, form.name, time.Since(t0).Seconds(), strings.Join(sum.Repairs, "; "))
			got, _, _ := ldx("vmcoreinfo", out)
			compareRebuilt(t, want, got, strings.Join(sum.Warnings, "\n"))
			// The consumers open it.
			rel := art.Facts.Release
			if sc.crash {
				script := filepath.Join(dir, "crash.in")
				// crash 8.0.2 builds its task table from the pid hash and misses
				// the guest's processes on Debian 6.1 (extract/e2e_test.go): the
				// task list is walked instead.
				os.WriteFile(script, []byte("sys\nlog\nlist task_struct.tasks -s task_struct.comm -h init_task\nquit\n"), 0o644)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				cout, _ := exec.CommandContext(ctx, "crash", "-s", "--no_scroll", "-i", script, art.Vmlinux, out).CombinedOutput()
				cancel()
				for _, w := range append([]string{"RELEASE: " + rel}, append(art.Facts.Markers, "ldx-sleeper-a", "ldx-worker")...) {
					if !bytes.Contains(cout, []byte(w)) {
						t.Errorf("crash on the rebuilt vmcore: no %q in\n%s", w, lastLines(string(cout), 30))
					}
				}
				t.Logf("e2e_rebuild_crash %s/%s: sys, log and the task list read (release, markers, named tasks)", sc.name, form.name)
			}
			py := fmt.Sprintf(`import drgn
from drgn.helpers.linux.pid import for_each_task
p = drgn.Program(); p.set_core_dump(%q); p.load_debug_info([%q])
print("REL", p["init_uts_ns"].name.release.string_().decode())
print("TASKS", " ".join(sorted(t.comm.string_().decode() for t in for_each_task(p))))
`, out, art.Vmlinux)
			dout, err := exec.Command("/usr/bin/python3", "-c", py).CombinedOutput()
			if err != nil || !bytes.Contains(dout, []byte("REL "+rel)) || !bytes.Contains(dout, []byte("ldx-sleeper-b")) || !bytes.Contains(dout, []byte("ldx-worker")) {
				t.Errorf("drgn on the rebuilt vmcore: %v\n%s", err, lastLines(string(dout), 20))
			} else {
				t.Logf("e2e_rebuild_drgn %s/%s: release %s and the named tasks read", sc.name, form.name, rel)
			}
		})
	}
}

// compareRebuilt checks the rebuilt VMCOREINFO key for key against the
// kernel's own: every key equal, except those the summary's warnings list
// as not rebuilt (CRASHTIME at least).
func compareRebuilt(t *testing.T, want, got, warnings string) {
	t.Helper()
	parse := func(s string) ([]string, map[string]string) {
		var keys []string
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			k, v, _ := strings.Cut(l, "=")
			keys = append(keys, k)
			m[k] = v
		}
		return keys, m
	}
	wk, wm := parse(want)
	gk, gm := parse(got)
	same, listed := 0, []string{}
	for _, k := range wk {
		g, ok := gm[k]
		switch {
		case ok && g == wm[k]:
			same++
		case !ok && strings.Contains(warnings, k):
			listed = append(listed, k)
		case !ok:
			t.Errorf("rebuilt VMCOREINFO lacks %s=%s and does not list it", k, wm[k])
		default:
			t.Errorf("rebuilt %s=%s, the kernel's %s", k, g, wm[k])
		}
	}
	for _, k := range gk {
		if _, ok := wm[k]; !ok {
			t.Errorf("rebuilt VMCOREINFO has %s, the kernel's has not", k)
		}
	}
	t.Logf("e2e_rebuild_keys: %d of %d keys equal the kernel's; listed as not rebuilt: %s", same, len(wk), strings.Join(listed, ", "))
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestBenchVmlinux prints the time and peak memory (max RSS, which counts
// the mapped vmlinux pages read) of the commands that read a distro
// vmlinux, on a 1 GiB 6.1 and 6.12 guest's ldx vmcore: the median of 5
// runs with the vmlinux in the page cache, and one run with the caches
// dropped first (when /proc/sys/vm/drop_caches is writable). Targets
// (issue 6): verify --vmlinux and ps under 3 s and 1 GiB. Figures, not
// assertions: `make bench-vmlinux`.
func TestBenchVmlinux(t *testing.T) {
	if os.Getenv("LDX_BENCH") == "" {
		t.Skip("set LDX_BENCH=1 (make bench-vmlinux)")
	}
	bin, err := filepath.Abs("../../bin/ldx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v (make build first)", err)
	}
	ctx := guest.WithLog(context.Background(), t.Logf)
	type figure struct {
		wall time.Duration
		rss  int64 // KiB
	}
	runOnce := func(args ...string) figure {
		cmd := exec.Command(bin, args...)
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(t0)
		if code := cmd.ProcessState.ExitCode(); err != nil && code != 0 {
			t.Fatalf("ldx %s: exit %d: %s", strings.Join(args, " "), code, lastLines(string(out), 10))
		}
		ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		return figure{wall, ru.Maxrss}
	}
	dropCaches := func() bool {
		exec.Command("sync").Run()
		return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0) == nil
	}
	fmt.Printf("%-8s %-36s %10s %10s %10s %10s\n", "kernel", "command", "warm s", "warm MiB", "cold s", "cold MiB")
	for _, sc := range []analysisScenario{analysisScenarios[0], analysisScenarios[2]} {
		art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), sc.spec)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		vmcore := filepath.Join(dir, "vmcore")
		if _, errs, code := ldx("extract", "-q", art.Dump, "-o", vmcore); code != 0 {
			t.Fatalf("extract: %s", errs)
		}
		lost := filepath.Join(dir, "lost")
		stripVMCOREINFO(t, vmcore, lost, art.Facts.Release, false)
		for _, c := range []struct {
			name string
			args []string
		}{
			{"verify --vmlinux", []string{"verify", "--vmlinux", art.Vmlinux, vmcore}},
			{"ps --vmlinux", []string{"ps", "--vmlinux", art.Vmlinux, vmcore}},
			{"vmcoreinfo generate --dump", []string{"vmcoreinfo", "generate", "--vmlinux", art.Vmlinux, "--dump", vmcore}},
			{"extract --vmlinux (VMCOREINFO lost)", []string{"extract", "-q", "--force", "--vmlinux", art.Vmlinux, lost, "-o", filepath.Join(dir, "rebuilt")}},
		} {
			var warm []figure
			for range 5 {
				warm = append(warm, runOnce(c.args...))
			}
			slices.SortFunc(warm, func(a, b figure) int { return int(a.wall - b.wall) })
			cold := "n/a"
			coldRSS := "n/a"
			if dropCaches() {
				f := runOnce(c.args...)
				cold, coldRSS = fmt.Sprintf("%.2f", f.wall.Seconds()), fmt.Sprint(f.rss>>10)
			}
			med := warm[len(warm)/2]
			fmt.Printf("%-8s %-36s %10.2f %10d %10s %10s\n", sc.spec.Kernel.Series, c.name, med.wall.Seconds(), med.rss>>10, cold, coldRSS)
		}
	}
}
