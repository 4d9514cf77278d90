package extract

import (
	"context"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ldx/elfcore"
	"ldx/elfcore/vmlinux"
	"ldx/extract/dump"
	"ldx/kmod/kmodtest"
)

// TestRebuildRefusals: an ELF core without VMCOREINFO is refused with a
// hint naming --vmlinux; with a vmlinux that is not this kernel's, the
// rebuild fails saying why, and nothing is written. (The rebuild itself is
// proven on real kernels: cmd/ldx's TestVmlinuxE2E.)
func TestRebuildRefusals(t *testing.T) {
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{CPUs: 2, MemSize: 64 << 20})
	dir := t.TempDir()
	in := filepath.Join(dir, "novmci.core")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	notes := []elfcore.Note{(&elfcore.PRStatus{Pid: 1}).Note(), (&elfcore.PRStatus{Pid: 2}).Note()}
	w := elfcore.NewWriter(f, elf.EM_X86_64, len(k.RAM), elfcore.EncodeNotes(notes))
	off := uint64(w.DataOffset())
	for _, r := range k.RAM {
		n := r.Len()
		buf := make([]byte, n)
		k.Mem.ReadAt(buf, int64(r.Start))
		f.WriteAt(buf, int64(off))
		w.AddLoad(elfcore.ProgHeader{Paddr: r.Start, Vaddr: k.PageOffsetBase + r.Start, Off: off, Memsz: n, Filesz: n})
		off += n
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	fixture, err := vmlinux.Open("../elfcore/vmlinux/testdata/fixture-dwarf5.elf")
	if err != nil {
		t.Fatal(err)
	}
	defer fixture.Close()
	for _, tc := range []struct {
		name string
		v    *vmlinux.File
		want []string
	}{
		{"no vmlinux", nil, []string{"no VMCOREINFO note", "--vmlinux"}},
		{"another kernel's vmlinux", fixture, []string{"rebuilding it from the vmlinux failed", "init_top_pgt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".vmcore")
			_, err := Run(context.Background(), Options{Input: in, Output: out, Vmlinux: tc.v})
			var ie *dump.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an *dump.InputError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output written: %v", err)
			}
		})
	}
}
