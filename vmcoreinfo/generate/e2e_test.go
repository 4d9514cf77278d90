//go:build e2e

// End-to-end: on kern Debian 6.1 and 6.12 guests (QEMU dumps from
// kmod/kmodtest/guest, with their -dbg vmlinux), the generated VMCOREINFO
// must equal the kernel's own key for key, value for value and in order,
// but for CRASHTIME (QEMU dumps have none) — with the runtime values taken
// from the dump's VMCOREINFO and, separately, found by kmem.Locate in
// physical memory alone. Run with `make e2e`.
package generate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ldx/elfcore/vmlinux"
	"ldx/extract/dump"
	"ldx/kmod/kmodtest/guest"
	"ldx/vmcoreinfo"
	. "ldx/vmcoreinfo/generate"
)

var e2eGuests = []struct {
	name string
	spec guest.Spec
}{
	{"6.1-4cpu", guest.Spec{Kernel: guest.KernelSpec{Series: "6.1"}, Memory: "1G", CPUs: 4}},
	{"6.12-4cpu", guest.Spec{Kernel: guest.KernelSpec{Series: "6.12"}, Memory: "1G", CPUs: 4}},
	{"6.1-la57-4cpu", guest.Spec{Kernel: guest.KernelSpec{Series: "6.1"}, Memory: "1G", CPUs: 4, LA57: true}},
	{"6.12-la57-2cpu", guest.Spec{Kernel: guest.KernelSpec{Series: "6.12"}, Memory: "512M", CPUs: 2, LA57: true}},
}

func TestGenerateE2E(t *testing.T) {
	ctx := guest.WithLog(context.Background(), t.Logf)
	for _, g := range e2eGuests {
		t.Run(g.name, func(t *testing.T) {
			art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), g.spec)
			if err != nil {
				t.Fatalf("preparing the guest: %v", err)
			}
			v, err := vmlinux.Open(art.Vmlinux)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			d, err := dump.Open(ctx, art.Dump, dump.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			kern := d.VMCOREINFO
			if kern == nil {
				t.Fatal("the guest's dump has no VMCOREINFO")
			}
			ram := d.RAM

			t.Run("runtime-from-vmcoreinfo", func(t *testing.T) {
				start := time.Now()
				rt, src, err := RuntimeFromDump(ctx, v, d.Phys, ram, kern)
				if err != nil || src != FromVMCOREINFO {
					t.Fatalf("runtime: %v (%s)", err, src)
				}
				res, err := Generate(v, rt)
				if err != nil {
					t.Fatal(err)
				}
				n := compareExact(t, kern, res)
				t.Logf("e2e_generate %s: %d keys equal to the kernel's, in order (%.1fs), unknown: %s", g.name, n, time.Since(start).Seconds(), unknownKeys(res))
			})

			t.Run("runtime-located", func(t *testing.T) {
				start := time.Now()
				rt, src, err := RuntimeFromDump(ctx, v, d.Phys, ram, nil)
				if err != nil || src != Located {
					t.Fatalf("runtime: %v (%s)", err, src)
				}
				ko, _ := kern.KernelOffset()
				pb, _ := kern.Number("phys_base")
				l5, _ := kern.Number("pgtable_l5_enabled")
				if rt.KernelOffset != ko || rt.PhysBase != uint64(pb) || rt.PgtableL5 != (l5 != 0) || rt.SMEMask != 0 {
					t.Fatalf("located KERNELOFFSET %#x phys_base %#x l5 %v sme %#x; the dump's VMCOREINFO says %#x %#x %v 0",
						rt.KernelOffset, rt.PhysBase, rt.PgtableL5, rt.SMEMask, ko, uint64(pb), l5 != 0)
				}
				res, err := Generate(v, rt)
				if err != nil {
					t.Fatal(err)
				}
				n := compareExact(t, kern, res)
				t.Logf("e2e_locate %s: KERNELOFFSET %#x phys_base %#x %d-level found in %.2fs; generated %d keys equal to the kernel's",
					g.name, rt.KernelOffset, rt.PhysBase, map[bool]int{false: 4, true: 5}[rt.PgtableL5], time.Since(start).Seconds(), n)
			})

			t.Run("no-dump", func(t *testing.T) {
				res, err := Generate(v, nil)
				if err != nil {
					t.Fatal(err)
				}
				ko, _ := kern.KernelOffset()
				unk := map[string]bool{}
				for _, u := range res.Unknown {
					unk[u.Key] = true
				}
				// Every kernel key is either generated or listed unknown,
				// in the kernel's order.
				var gi int
				for _, l := range kern.Lines() {
					if unk[l.Key] {
						continue
					}
					if gi >= len(res.Lines) || res.Lines[gi].Key != l.Key {
						t.Fatalf("kernel key %s is neither next in the link-time output nor listed unknown", l.Key)
					}
					got := res.Lines[gi]
					gi++
					want := l.Value
					switch {
					case l.Key == "KERNELOFFSET":
						want = "0"
					case strings.HasPrefix(l.Key, "SYMBOL(") && got.Origin == FromVmlinux:
						a, _ := kern.Symbol(strings.TrimSuffix(strings.TrimPrefix(l.Key, "SYMBOL("), ")"))
						want = fmt.Sprintf("%x", a-ko)
					}
					if got.Value != want {
						t.Errorf("%s: link-time %s, want %s", l.Key, got.Value, want)
					}
				}
				if gi != len(res.Lines) {
					t.Errorf("generated keys the kernel did not emit: %v", res.Lines[gi:])
				}
				t.Logf("e2e_nodump %s: %d keys at link time, unknown without a dump: %s", g.name, len(res.Lines), unknownKeys(res))
			})
		})
	}
}

// compareExact fails on any difference between the kernel's VMCOREINFO
// and the generated one beyond CRASHTIME, and requires that nothing but
// CRASHTIME is unknown. It returns the number of equal keys.
func compareExact(t *testing.T, kern *vmcoreinfo.Info, res *Result) int {
	t.Helper()
	for _, u := range res.Unknown {
		if u.Key != "CRASHTIME" {
			t.Errorf("unknown with a dump: %s (%s)", u.Key, u.Reason)
		}
	}
	for _, w := range res.Warnings {
		t.Errorf("warning: %s", w)
	}
	var want []vmcoreinfo.Line
	for _, l := range kern.Lines() {
		if l.Key != "CRASHTIME" {
			want = append(want, l)
		}
	}
	n := 0
	for i := 0; i < max(len(want), len(res.Lines)); i++ {
		var w, g string
		if i < len(want) {
			w = want[i].Key + "=" + want[i].Value
		}
		if i < len(res.Lines) {
			g = res.Lines[i].Key + "=" + res.Lines[i].Value
		}
		if w != g {
			t.Errorf("line %d: kernel %q, generated %q", i+1, w, g)
			continue
		}
		n++
	}
	wantText := kern.Bytes()
	if i := strings.Index(string(wantText), "CRASHTIME="); i >= 0 {
		wantText = wantText[:i]
	}
	if got := res.Text(); string(got) != string(wantText) && !t.Failed() {
		t.Errorf("text differs from the kernel's (%d vs %d bytes) though every line matched", len(got), len(wantText))
	}
	return n
}

func unknownKeys(r *Result) string {
	var k []string
	for _, u := range r.Unknown {
		k = append(k, u.Key)
	}
	return strings.Join(k, ", ")
}
