// Package kcoretest builds fake /proc/kcore files and hosts for tests of
// capture --kcore: an ELF core laid out as the kernel generates
// /proc/kcore (package kcore's documentation), from a kmodtest kernel.
package kcoretest

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"ldx/elfcore"
	"ldx/kmod/kcore"
	"ldx/kmod/kmodtest"
)

// WriteKcore writes k as /proc/kcore lays it out to path: a zeroed
// NT_PRSTATUS and (withNote, as since 4.19) the VMCOREINFO note, the
// kernel text segment, a vmalloc segment without a physical address, and
// one direct-map segment per RAM range.
func WriteKcore(path string, k *kmodtest.Kernel, withNote bool) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	notes := []elfcore.Note{(&elfcore.PRStatus{}).Note()}
	if withNote {
		notes = append(notes, elfcore.Note{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: k.VMCOREINFO})
	}
	w := elfcore.NewWriter(f, elf.EM_X86_64, len(k.RAM)+2, elfcore.EncodeNotes(notes))
	off := uint64(w.DataOffset())
	seg := func(vaddr, paddr uint64, src io.ReaderAt, srcOff, size uint64) error {
		if _, err := io.Copy(io.NewOffsetWriter(f, int64(off)), io.NewSectionReader(src, int64(srcOff), int64(size))); err != nil {
			return err
		}
		if err := w.AddLoad(elfcore.ProgHeader{Off: off, Vaddr: vaddr, Paddr: paddr, Filesz: size, Memsz: size}); err != nil {
			return err
		}
		off += size
		return nil
	}
	if err := seg(k.TextVirt, k.TextPhys, k.Mem, k.TextPhys, (k.TextSize+4095)&^4095); err != nil {
		return err
	}
	if err := seg(0xffffc90000000000, ^uint64(0), strings.NewReader(strings.Repeat("v", 8192)), 0, 8192); err != nil {
		return err
	}
	for _, r := range k.RAM {
		if err := seg(k.PageOffsetBase+r.Start, r.Start, k.Mem, r.Start, r.End-r.Start); err != nil {
			return err
		}
	}
	return w.Finish()
}

// Host returns a fake machine in dir: k's kcore (its VMCOREINFO in the
// kcore note, or else only through a /sys/kernel/vmcoreinfo file), the
// online CPU list cpus, no lockdown, and a disk-backed output file system
// with 1 TiB free.
func Host(dir string, k *kmodtest.Kernel, withNote bool, cpus string) (*kcore.Host, error) {
	h := &kcore.Host{
		Kcore: filepath.Join(dir, "kcore"), CPUOnline: filepath.Join(dir, "online"),
		VMCOREINFO: filepath.Join(dir, "vmcoreinfo"), Lockdown: filepath.Join(dir, "lockdown"),
		Statfs: func(string) (kcore.Statfs, error) { return kcore.Statfs{Type: 0xEF53, Avail: 1 << 40}, nil },
	}
	if err := WriteKcore(h.Kcore, k, withNote); err != nil {
		return nil, err
	}
	if err := os.WriteFile(h.CPUOnline, []byte(cpus+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(h.Lockdown, []byte("[none] integrity confidentiality\n"), 0o644); err != nil {
		return nil, err
	}
	if !withNote && k.VMCOREINFONote != 0 {
		if err := os.WriteFile(h.VMCOREINFO, fmt.Appendf(nil, "%x %x\n", k.VMCOREINFONote, kmodtest.VMCOREINFOBytes), 0o644); err != nil {
			return nil, err
		}
	}
	return h, nil
}
