// Package verifytest provides what the tests of ldx verify share: a
// synthetic kernel whose memory holds real page tables, init_uts_ns, a
// printk ring and mem_section (so every translation check has something to
// translate), a good vmcore made of it by ldx extract, and the mutation
// corpus — a good vmcore with one consumer requirement broken at a time.
package verifytest

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kallsyms"
	"ldx/elfcore/kernel/kallsyms/kallsymstest"
	"ldx/elfcore/kernel/x86"
	"ldx/extract"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// The synthetic kernel of these tests is kmodtest's (NewSynthetic), with
// the memory verify reads made real: page tables that map the kernel image
// with 2 MiB pages and the direct map with a 1 GiB page, init_uts_ns with
// the release, a lockless printk ring holding one record, and a
// mem_section with one present section. Everything else is kmodtest's
// pattern memory.
const (
	// SyntheticRelease is the synthetic kernel's OSRELEASE.
	SyntheticRelease = "6.1.0-ldx-verify"
	synMem           = 64 << 20
	synKASLR         = 2 << 20  // KERNELOFFSET
	synTextPhys      = 20 << 20 // _text's physical address: phys_base = 2 MiB
	synTextSize      = 36 << 20
	synMemSect       = 8 << 20  // mem_section root array (physical)
	synPerCPU        = 58 << 20 // the per-CPU areas (physical), above the image as in real kernels
	// SyntheticRecord is the text of the one record in its printk ring.
	SyntheticRecord = "ldx verify test record"
)

// SyntheticKernel returns kmodtest's synthetic kernel (64 MiB, KASLR
// offset 2 MiB, phys_base 2 MiB, release SyntheticRelease) with that
// memory added.
func SyntheticKernel(cpus int) (*kmodtest.Kernel, error) {
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: synMem, CPUs: cpus, KASLROffset: synKASLR, Release: SyntheticRelease, Seed: 7})
	k.TextPhys, k.TextSize = synTextPhys, synTextSize
	physBase := k.PhysBase()
	pa := func(va uint64) uint64 { return x86.ImagePhys(va, physBase) }
	text := string(kmodtest.SyntheticVMCOREINFO(SyntheticRelease, k.TextVirt, physBase, false))
	// The template's mem_section lies at 1.5 GiB; move it into this memory.
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "SYMBOL(mem_section)=") {
			lines[i] = "SYMBOL(mem_section)=" + strconv.FormatUint(kmodtest.PageOffset4Level+synMemSect, 16)
		}
	}
	sym := func(name string) uint64 {
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "SYMBOL("+name+")="); ok {
				n, _ := strconv.ParseUint(v, 16, 64)
				return n
			}
		}
		return 0
	}
	// The kernel's own symbol table (kallsyms), which VMCOREINFO locates:
	// verify finds the per-CPU areas through it. Each CPU's area is 256
	// KiB in the direct map from 58 MiB; __per_cpu_offset ends with the
	// boot value (__per_cpu_load) as on real kernels.
	perCPUOffsets := k.TextVirt + 0x2080000
	perCPULoad := k.TextVirt + 0x2090000
	ksyms := []kallsyms.Symbol{
		{Name: "_stext", Addr: sym("_stext"), Type: 'T'},
		{Name: "__per_cpu_offset", Addr: perCPUOffsets, Type: 'D'},
		{Name: "__per_cpu_load", Addr: perCPULoad, Type: 'D'},
		{Name: "cpu_tss_rw", Addr: 0x6000, Type: 'A'},
		{Name: "init_uts_ns", Addr: sym("init_uts_ns"), Type: 'D'},
	}
	ka, err := kallsymstest.Encode(ksyms, k.TextVirt+0x2100000)
	if err != nil {
		return nil, err
	}
	// The template's kallsyms and node_data lines point into pattern
	// memory; point them at the real arrays.
	nodeData := k.TextVirt + 0x20a0000
	for i, l := range lines {
		key, _, _ := strings.Cut(l, "=")
		if name, ok := strings.CutPrefix(key, "SYMBOL("); ok {
			name = strings.TrimSuffix(name, ")")
			if a, ok := ka.Addr[name]; ok {
				lines[i] = fmt.Sprintf("SYMBOL(%s)=%x", name, a)
			} else if name == "node_data" {
				lines[i] = fmt.Sprintf("SYMBOL(node_data)=%x", nodeData)
			}
		}
	}
	k.VMCOREINFO = []byte(strings.Join(lines, "\n"))
	mem := k.Mem.(*kmodtest.SyntheticMem)
	// The boot-time VMCOREINFO note, rebuilt with the edited text.
	note := elfcore.AppendNote(nil, elfcore.Note{Name: "VMCOREINFO", Type: 0, Desc: k.VMCOREINFO})
	mem.Patches[0] = kmodtest.Patch{Addr: k.VMCOREINFONote, Data: append(note, make([]byte, 12)...)}
	put := func(addr uint64, data []byte) {
		mem.Patches = append(mem.Patches, kmodtest.Patch{Addr: addr, Data: data})
	}
	u64 := func(vals ...uint64) []byte {
		b := make([]byte, 8*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint64(b[8*i:], v)
		}
		return b
	}

	// Page tables: init_top_pgt in the image, as in real kernels, and
	// level3/level2 pages after it.
	root := pa(sym("init_top_pgt"))
	pudImg, pmdImg, pudDirect := root+0x1000, root+0x2000, root+0x3000
	const present, rw, pse = 1, 2, 0x80
	pml4 := make([]byte, 4096)
	binary.LittleEndian.PutUint64(pml4[511*8:], pudImg|present|rw)
	binary.LittleEndian.PutUint64(pml4[((kmodtest.PageOffset4Level>>39)&0x1ff)*8:], pudDirect|present|rw)
	put(root, pml4)
	pud := make([]byte, 4096)
	binary.LittleEndian.PutUint64(pud[((k.TextVirt>>30)&0x1ff)*8:], pmdImg|present|rw)
	put(pudImg, pud)
	pmd := make([]byte, 4096)
	for va := k.TextVirt; va < k.TextVirt+k.TextSize; va += 2 << 20 {
		binary.LittleEndian.PutUint64(pmd[((va>>21)&0x1ff)*8:], pa(va)|present|rw|pse)
	}
	put(pmdImg, pmd)
	put(pudDirect, u64(0|present|rw|pse)) // 1 GiB at physical 0

	// init_uts_ns: sysname, nodename, release (65 bytes each).
	uts := make([]byte, 6*65)
	copy(uts, "Linux")
	copy(uts[65:], "synthetic")
	copy(uts[130:], SyntheticRelease)
	put(pa(sym("init_uts_ns")), uts)

	// The printk ring: prb points at printk_rb_static; 16 descriptors, a
	// 4 KiB text ring, one finalized record.
	static := sym("printk_rb_static")
	put(pa(sym("prb")), u64(static))
	descs, infos, data := k.TextVirt+0x2070000, k.TextVirt+0x2071000, k.TextVirt+0x2072000
	const id = 0x130
	rb := make([]byte, 88)
	binary.LittleEndian.PutUint32(rb[0:], 4) // count_bits
	binary.LittleEndian.PutUint64(rb[8:], descs)
	binary.LittleEndian.PutUint64(rb[16:], infos)
	binary.LittleEndian.PutUint64(rb[24:], id) // head_id
	binary.LittleEndian.PutUint64(rb[32:], id) // tail_id
	binary.LittleEndian.PutUint32(rb[48:], 12) // size_bits
	binary.LittleEndian.PutUint64(rb[56:], data)
	put(pa(static), rb)
	slot := uint64(id % 16)
	desc := make([]byte, 24)
	binary.LittleEndian.PutUint64(desc[0:], 2<<62|id)                             // finalized
	binary.LittleEndian.PutUint64(desc[8:], 0)                                    // text_blk_lpos.begin
	binary.LittleEndian.PutUint64(desc[16:], uint64(8+len(SyntheticRecord)+7)&^7) // blocks are long-aligned
	put(pa(descs)+slot*24, desc)
	info := make([]byte, 88)
	binary.LittleEndian.PutUint64(info[8:], 1234567)
	binary.LittleEndian.PutUint16(info[16:], uint16(len(SyntheticRecord)))
	put(pa(infos)+slot*88, info)
	put(pa(data), append(u64(id), SyntheticRecord...))

	// mem_section: root array (LENGTH 4096) in the direct map, root 0 a
	// page of struct mem_section (32 bytes) with section 0 present.
	roots := make([]byte, 4096*8)
	copy(roots, u64(kmodtest.PageOffset4Level+synMemSect+0x8000))
	put(synMemSect, roots)
	put(synMemSect+0x8000, u64(0xffffea0000000000|1))
	for va, b := range ka.Blocks() {
		put(pa(va), b)
	}
	var offs []uint64
	for cpu := range cpus {
		offs = append(offs, kmodtest.PageOffset4Level+synPerCPU+uint64(cpu)*0x40000)
	}
	put(pa(perCPUOffsets), u64(append(offs, perCPULoad)...))
	// node_data[0] points at node 0's pglist_data (zeros: crash only
	// needs to read it), the other nodes are offline.
	put(pa(nodeData), append(u64(kmodtest.PageOffset4Level+synPerCPU+0x100000), make([]byte, 1023*8)...))
	put(synPerCPU+0x100000, make([]byte, 4096))
	if sym("init_top_pgt") == 0 || sym("init_uts_ns") == 0 || sym("prb") == 0 {
		return nil, fmt.Errorf("verifytest: the synthetic VMCOREINFO lacks a symbol")
	}
	return k, nil
}

// WriteImage writes the raw livedump device image of the synthetic kernel
// with cpus CPUs for run to path.
func WriteImage(path string, cpus int, run kmodtest.Run) (*kmodtest.Report, error) {
	k, err := SyntheticKernel(cpus)
	if err != nil {
		return nil, err
	}
	if run.Start.IsZero() {
		run.Start = time.Unix(1700000000, 0)
	}
	return kmodtest.WriteFile(path, k, &run)
}

// Good writes into dir a device image of the 2-CPU synthetic kernel as
// ldx capture leaves it (zeroed, with a manifest) and the vmcore ldx
// extract makes of it, and returns both paths.
func Good(ctx context.Context, dir string) (image, vmcore string, err error) {
	image, vmcore = filepath.Join(dir, "device.img"), filepath.Join(dir, "good.vmcore")
	if _, err := WriteImage(image, 2, kmodtest.Run{Prepared: manifest.Zeroed, Manifest: &manifest.Manifest{}}); err != nil {
		return "", "", err
	}
	if _, err := extract.Run(ctx, extract.Options{Input: image, Output: vmcore}); err != nil {
		return "", "", err
	}
	return image, vmcore, nil
}
