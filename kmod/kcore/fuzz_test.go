package kcore

import (
	"debug/elf"
	"os"
	"path/filepath"
	"testing"

	"ldx/elfcore"
	"ldx/kmod/kmodtest"
)

// smallKcore is a tiny /proc/kcore: a zeroed NT_PRSTATUS, a VMCOREINFO
// note, a 4 KiB text segment, a vmalloc segment and an 8 KiB RAM segment.
func smallKcore(t testing.TB) []byte {
	path := filepath.Join(t.TempDir(), "kcore")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const textVirt, physBase = 0xffffffff9a000000, 0x1000000
	vmci := kmodtest.SyntheticVMCOREINFO("6.1.0-fuzz", textVirt, physBase, false)
	notes := elfcore.EncodeNotes([]elfcore.Note{(&elfcore.PRStatus{}).Note(), {Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: vmci}})
	w := elfcore.NewWriter(f, elf.EM_X86_64, 3, notes)
	off := uint64(w.DataOffset())
	for _, l := range []elfcore.ProgHeader{
		{Vaddr: textVirt, Paddr: physBase + 0x1000000, Filesz: 4096, Memsz: 4096},
		{Vaddr: 0xffffc90000000000, Paddr: ^uint64(0), Filesz: 4096, Memsz: 4096},
		{Vaddr: 0xffff888000100000, Paddr: 0x100000, Filesz: 8 << 10, Memsz: 8 << 10},
	} {
		l.Off = off
		if err := w.AddLoad(l); err != nil {
			t.Fatal(err)
		}
		off += l.Filesz
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	f.Truncate(int64(off))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzOpen feeds Open damaged kcore files, CPU lists and
// /sys/kernel/vmcoreinfo contents: errors, never a panic or a hang.
func FuzzOpen(f *testing.F) {
	f.Add(smallKcore(f), "0-1", "100000 1000")
	f.Add(smallKcore(f), "0,2-3", "")
	f.Add([]byte{}, "", "x")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, kc []byte, cpus, vmci string) {
		h := &Host{Kcore: filepath.Join(dir, "kcore"), CPUOnline: filepath.Join(dir, "online"), VMCOREINFO: filepath.Join(dir, "vmcoreinfo"), Lockdown: filepath.Join(dir, "lockdown")}
		os.WriteFile(h.Kcore, kc, 0o600)
		os.WriteFile(h.CPUOnline, []byte(cpus), 0o600)
		os.WriteFile(h.VMCOREINFO, []byte(vmci), 0o600)
		s, err := Open(h)
		if err != nil {
			return
		}
		defer s.Close()
		pages, what, _ := s.CriticalPages()
		for _, pa := range pages {
			if what[pa] == "" {
				t.Fatalf("page %#x is checked without saying what it holds", pa)
			}
		}
		if len(s.CPUs) == 0 {
			t.Fatal("opened with no CPUs")
		}
	})
}
