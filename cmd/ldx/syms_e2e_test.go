//go:build e2e

// End-to-end test of ldx syms on real kernel memory: the kallsyms table of
// the Debian 6.1 and 6.12 guests of the analysis e2e (KASLR, 4- and
// 5-level paging), decoded from the QEMU dump alone, against the symbol
// table of the guest's -dbg vmlinux moved by the dump's KASLR offset; and
// ldx read of a symbol VMCOREINFO does not export.
//
//	go test -tags e2e -run TestSymsE2E -v ./cmd/ldx/
package main

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ldx/elfcore/kernel/kallsyms"
	"ldx/elfcore/vmlinux"
	"ldx/extract/dump"
	"ldx/kmod/kmodtest/guest"
)

type symsJSON struct {
	Encoding string
	Verified bool
	Total    int
	Symbols  []struct {
		Addr string
		Type string
		Name string
	}
}

func TestSymsE2E(t *testing.T) {
	ctx := guest.WithLog(context.Background(), t.Logf)
	for _, sc := range analysisScenarios[:4] { // 6.1 and 6.12, 4- and 5-level paging
		t.Run(sc.name, func(t *testing.T) {
			art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), sc.spec)
			if err != nil {
				t.Fatalf("preparing the guest: %v", err)
			}
			// The reference: the vmlinux's symbols, kernel-image ones moved
			// by the KASLR offset; per-CPU symbols (zero-based, below the
			// kernel map) are stored by kallsyms as themselves.
			d, err := dump.Open(ctx, art.Dump, dump.Options{})
			if err != nil {
				t.Fatal(err)
			}
			vm, err := vmlinux.Open(art.Vmlinux)
			if err != nil {
				t.Fatal(err)
			}
			off, how, err := vm.KASLROffset(d.VMCOREINFO)
			vm.Close()
			d.Close()
			if err != nil {
				t.Fatal(err)
			}
			ref := vmlinuxSymbols(t, art.Vmlinux, off)

			t0 := time.Now()
			out, errs, code := ldx("syms", art.Dump, "--json")
			took := time.Since(t0)
			if code != 0 {
				t.Fatalf("ldx syms: exit %d: %s", code, errs)
			}
			var got symsJSON
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if got.Encoding != string(kallsyms.AbsolutePercpu) || !got.Verified {
				t.Errorf("encoding %q verified %v, want %q confirmed by _stext (CONFIG_KALLSYMS_ABSOLUTE_PERCPU)", got.Encoding, got.Verified, kallsyms.AbsolutePercpu)
			}
			if got.Total != len(got.Symbols) || got.Total < 50000 {
				t.Fatalf("%d symbols listed of %d", len(got.Symbols), got.Total)
			}
			byName := map[string]uint64{}
			types := map[string]string{}
			matched, wrong := 0, 0
			for _, s := range got.Symbols {
				a, err := strconv.ParseUint(strings.TrimPrefix(s.Addr, "0x"), 16, 64)
				if err != nil {
					t.Fatalf("%s: address %q", s.Name, s.Addr)
				}
				if _, ok := byName[s.Name]; !ok {
					byName[s.Name], types[s.Name] = a, s.Type
				}
				if ref[s.Name][a] {
					matched++
				} else if wrong++; wrong <= 10 {
					t.Errorf("%s %s at %#x: not in the vmlinux's symbol table at that address (+%#x)", s.Type, s.Name, a, off)
				}
			}
			for _, w := range []struct {
				name, typ string
				percpu    bool
			}{
				{"jiffies", "D", false}, {"init_task", "D", false}, {"__per_cpu_offset", "D", false}, {"node_data", "", false},
				{"_stext", "T", false}, {"cpu_tss_rw", "A", true}, {"__per_cpu_start", "A", true}, {"__per_cpu_end", "A", true},
			} {
				a, ok := byName[w.name]
				want := firstAddr(ref[w.name])
				if !ok || !ref[w.name][a] || (w.typ != "" && types[w.name] != w.typ) || (w.percpu != (a < 1<<32)) {
					t.Errorf("%s = %#x type %s, the vmlinux + %#x says %#x (type %s, per-CPU %v)", w.name, a, types[w.name], off, want, w.typ, w.percpu)
				}
			}
			// ldx read resolves jiffies, which VMCOREINFO does not
			// export, through kallsyms.
			rd, errs, code := ldx("read", art.Dump, "jiffies", "8")
			if code != 0 || !strings.HasPrefix(rd, fmt.Sprintf("%016x  ", byName["jiffies"])) {
				t.Errorf("ldx read jiffies 8: exit %d, %q %s; jiffies is at %#x", code, rd, errs, byName["jiffies"])
			}
			// drgn (with the vmlinux) reads jiffies at the same address
			// and sees the same bytes, in ldx's vmcore of the dump (drgn
			// 0.0.22 cannot open the QEMU dump itself). jiffies is a
			// linker-script alias of jiffies_64 that DWARF does not name,
			// so drgn is asked for jiffies_64.
			vmcore := filepath.Join(t.TempDir(), "syms.vmcore")
			if _, errs, code := ldx("extract", "-q", art.Dump, "-o", vmcore); code != 0 {
				t.Fatalf("ldx extract: exit %d: %s", code, errs)
			}
			script := filepath.Join(t.TempDir(), "jiffies.py")
			os.WriteFile(script, []byte("a = prog['jiffies_64'].address_\nprint('LDXJIFFIES %x %s' % (a, prog.read(a, 8).hex()))\n"), 0o644)
			dout, err := exec.Command("/usr/bin/drgn", "-q", "-c", vmcore, "-s", art.Vmlinux, script).CombinedOutput()
			var dAddr uint64
			var dBytes string
			if i := strings.Index(string(dout), "LDXJIFFIES "); err != nil || i < 0 {
				t.Errorf("drgn: %v\n%s", err, dout)
			} else if _, err := fmt.Sscanf(string(dout[i:]), "LDXJIFFIES %x %s", &dAddr, &dBytes); err != nil {
				t.Errorf("drgn printed %q: %v", dout[i:], err)
			}
			rd, _, code = ldx("read", vmcore, "jiffies", "8")
			fields := strings.Fields(rd)
			ldxBytes := ""
			if len(fields) >= 9 {
				ldxBytes = strings.Join(fields[1:9], "")
			}
			if code != 0 || dAddr != byName["jiffies"] || ldxBytes != dBytes {
				t.Errorf("jiffies: ldx syms %#x, ldx read %q (exit %d); drgn prog['jiffies_64'] at %#x holds %s", byName["jiffies"], rd, code, dAddr, dBytes)
			}
			if _, errs, code := ldx("read", art.Dump, "cpu_tss_rw"); code != exitUsage || !strings.Contains(errs, "per-CPU symbol") {
				t.Errorf("ldx read cpu_tss_rw: exit %d, %s; want the per-CPU offset explained", code, errs)
			}
			t.Logf("e2e_syms %s: jiffies at %#x = %s for ldx and drgn alike", sc.name, dAddr, dBytes)
			t.Logf("e2e_syms %s: %d kallsyms symbols (%s, %s): %d at the vmlinux's address + KASLR offset (%s), %d not; vmlinux has %d names; %.0f ms in-process",
				sc.name, got.Total, got.Encoding, map[bool]string{true: "confirmed by _stext", false: "guessed"}[got.Verified], matched, how, wrong, len(ref), took.Seconds()*1000)
		})
	}
}

// vmlinuxSymbols returns the vmlinux's symbol addresses by name, kernel
// addresses moved by off.
func vmlinuxSymbols(t *testing.T, path string, off uint64) map[string]map[uint64]bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	ref := map[string]map[uint64]bool{}
	for _, s := range syms {
		a := s.Value
		if a >= 1<<63 {
			a += off
		}
		if ref[s.Name] == nil {
			ref[s.Name] = map[uint64]bool{}
		}
		ref[s.Name][a] = true
	}
	return ref
}

func firstAddr(m map[uint64]bool) uint64 {
	for a := range m {
		return a
	}
	return 0
}
