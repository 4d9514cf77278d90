// Package kmem reads x86_64 kernel virtual memory from a dump's physical
// memory, the way makedumpfile does it: every virtual address is walked
// through the kernel's page tables, rooted at init_top_pgt (whose physical
// address follows from phys_base), 4 or 5 levels, honouring 1 GiB and
// 2 MiB pages and stripping the SME bit.
//
// It needs only what VMCOREINFO gives, no vmlinux. ldx uses it to find
// what VMCOREINFO does not say but consumers need in program headers: the
// randomised direct-map base (page_offset_base) and the extent of the
// kernel image mapping. How each consumer translates, and what it requires
// of the dump for that, is in package verify (rows B8, B9, D5–D11, E1–E5).
//
// # The x86_64 translation
//
// The kernel image is mapped at __START_KERNEL_map (0xffffffff80000000)
// over KERNEL_IMAGE_SIZE (NUMBER(KERNEL_IMAGE_SIZE): 1 GiB with KASLR, else
// 512 MiB); for an image address, physical = virtual − 0xffffffff80000000
// + phys_base. phys_base is NUMBER(phys_base) (4.10+, decimal), else
// p_paddr − (p_vaddr − 0xffffffff80000000) of the kernel-image PT_LOAD.
//
// KASLR: KERNELOFFSET (hex) is runtime − link-time _text (link-time normally
// 0xffffffff81000000). Every SYMBOL() the kernel writes is already a
// runtime address; only link-time addresses from a vmlinux need
// KERNELOFFSET added, and only those in the image range. The physical load
// address is randomised separately, and phys_base absorbs both.
//
// The page-table root is SYMBOL(init_top_pgt) (init_level4_pgt before
// 4.13), equal to SYMBOL(swapper_pg_dir): an image address, so its
// physical address follows from phys_base. NUMBER(pgtable_l5_enabled) = 1
// means 5 levels (PML5 index bits 56–48, then P4D 47–39), else 4 (PGD
// 47–39); then PUD 38–30, PMD 29–21, PTE 20–12. An entry is present with
// bit 0; bit 7 (PSE) makes it a 1 GiB page at PUD level, a 2 MiB page at
// PMD level; the frame is bits 12–51 (0x000ffffffffff000) with
// NUMBER(sme_mask) cleared; bit 63 (NX) is ignored.
//
// The direct map starts at page_offset_base: 0xffff888000000000 (4-level)
// or 0xff11000000000000 (5-level) unless CONFIG_RANDOMIZE_MEMORY
// randomises it, and physical = virtual − base. It is not in VMCOREINFO:
// crash and drgn read the page_offset_base variable through the vmlinux,
// makedumpfile takes p_vaddr − p_paddr of the RAM PT_LOADs (else a stale
// constant), vmcore-dmesg uses p_vaddr directly, libkdumpfile the symbol
// or probing. ldx finds it by walking the page tables (the first large
// present region above the user half that maps physical 0), or by reading
// page_offset_base once its address is known, and writes it into every
// RAM segment's p_vaddr. vmalloc_base and vmemmap_base are randomised too;
// VMCOREINFO carries them only on recent kernels (NUMBER(VMALLOC_START)
// since 6.9, SYMBOL(vmemmap)), else the defaults are 0xffffc90000000000
// and 0xffffea0000000000 (4-level).
//
// makedumpfile (__vtop4_x86_64) walks every virtual address this way and
// never uses p_vaddr; crash walks only vmalloc, module and vmemmap
// addresses; drgn walks from swapper_pg_dir but does not strip sme_mask.
// verify follows the strictest (makedumpfile) and requires every
// page-table page on the walk of _stext, init_uts_ns, prb and the printk
// arrays to be inside the PT_LOADs.
package kmem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"ldx/elfcore/kernel/x86"
)

const (
	pageSize  = 1 << 12
	pmdSize   = 1 << 21
	pudSize   = 1 << 30
	present   = 1 << 0
	pse       = 1 << 7
	frameMask = 0x000ffffffffff000
)

// Params are the translation inputs, all available from VMCOREINFO.
type Params struct {
	PgtRoot  uint64 // SYMBOL(init_top_pgt) or SYMBOL(swapper_pg_dir): virtual, in the image
	PhysBase uint64 // NUMBER(phys_base)
	L5       bool   // NUMBER(pgtable_l5_enabled)
	SMEMask  uint64 // NUMBER(sme_mask)
}

// Mem reads kernel virtual memory.
type Mem struct {
	phys io.ReaderAt
	p    Params
	root uint64 // physical address of the top-level table
}

// New returns a reader of kernel virtual memory over physical memory.
func New(phys io.ReaderAt, p Params) (*Mem, error) {
	if p.PgtRoot < x86.KernelTextBase {
		return nil, fmt.Errorf("kmem: page-table root %#x is not a kernel image address", p.PgtRoot)
	}
	return &Mem{phys: phys, p: p, root: x86.ImagePhys(p.PgtRoot, p.PhysBase)}, nil
}

// Level is one step of a page-table walk.
type Level struct {
	Name      string // "pml5", "pgd", "pud", "pmd", "pte"
	TableAddr uint64 // physical address of the table
	Index     uint64
	EntryAddr uint64 // physical address of the entry
	Entry     uint64
}

// Walk is a complete translation, level by level.
type Walk struct {
	Vaddr  uint64
	Levels []Level
	Paddr  uint64
	Size   uint64 // page size of the final mapping: 4 KiB, 2 MiB or 1 GiB
}

// NotMappedError reports a virtual address the page tables do not map.
type NotMappedError struct {
	Vaddr uint64
	Level string
	Entry uint64
}

func (e *NotMappedError) Error() string {
	return fmt.Sprintf("virtual address %#x is not mapped (%s entry %#x not present)", e.Vaddr, e.Level, e.Entry)
}

// ErrNonCanonical reports an address in the x86_64 non-canonical hole.
var ErrNonCanonical = errors.New("non-canonical virtual address")

func (m *Mem) canonical(va uint64) bool {
	bits := uint(48)
	if m.p.L5 {
		bits = 57
	}
	top := int64(va) >> (bits - 1)
	return top == 0 || top == -1
}

// Translate walks the page tables for va.
func (m *Mem) Translate(va uint64) (*Walk, error) {
	if !m.canonical(va) {
		return nil, fmt.Errorf("kmem: %#x: %w", va, ErrNonCanonical)
	}
	w := &Walk{Vaddr: va}
	names := []string{"pgd", "pud", "pmd", "pte"}
	shifts := []uint{39, 30, 21, 12}
	if m.p.L5 {
		names = []string{"pml5", "p4d", "pud", "pmd", "pte"}
		shifts = []uint{48, 39, 30, 21, 12}
	}
	mask := uint64(frameMask) &^ m.p.SMEMask
	table := m.root
	var b [8]byte
	for i, sh := range shifts {
		idx := (va >> sh) & 0x1ff
		ea := table + idx*8
		if _, err := m.phys.ReadAt(b[:], int64(ea)); err != nil {
			return w, fmt.Errorf("kmem: reading %s entry of %#x at physical %#x: %w", names[i], va, ea, err)
		}
		e := binary.LittleEndian.Uint64(b[:])
		w.Levels = append(w.Levels, Level{Name: names[i], TableAddr: table, Index: idx, EntryAddr: ea, Entry: e})
		if e&present == 0 {
			return w, &NotMappedError{Vaddr: va, Level: names[i], Entry: e}
		}
		size := uint64(1) << sh
		if sh == 12 || ((sh == 30 || sh == 21) && e&pse != 0) {
			w.Size = size
			w.Paddr = (e & mask &^ (size - 1)) | (va & (size - 1))
			return w, nil
		}
		table = e & mask
	}
	panic("unreachable")
}

// VtoP translates a virtual address to a physical address.
func (m *Mem) VtoP(va uint64) (uint64, error) {
	w, err := m.Translate(va)
	if err != nil {
		return 0, err
	}
	return w.Paddr, nil
}

// ReadAt reads kernel virtual memory at virtual address off, one mapping
// (4 KiB, 2 MiB or 1 GiB page) at a time.
func (m *Mem) ReadAt(p []byte, off int64) (int, error) {
	va := uint64(off)
	n := 0
	for n < len(p) {
		w, err := m.Translate(va)
		if err != nil {
			return n, err
		}
		pa := w.Paddr
		// A large page (the struct page array's 2 MiB mappings) is read
		// in one piece; should that fail, page by page, so that what
		// can be read is.
		k := min(len(p)-n, int(w.Size-va%w.Size))
		got, err := m.phys.ReadAt(p[n:n+k], int64(pa))
		if got < k && k > int(pageSize-va%pageSize) {
			k = int(pageSize - va%pageSize)
			got, err = m.phys.ReadAt(p[n:n+k], int64(pa))
		}
		n += got
		if got < k {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("kmem: reading %#x (physical %#x): %w", va, pa, err)
		}
		va += uint64(k)
	}
	return n, nil
}

// Uint64 reads a 64-bit little-endian value at va.
func (m *Mem) Uint64(va uint64) (uint64, error) {
	var b [8]byte
	if _, err := m.ReadAt(b[:], int64(va)); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// FindPageOffset finds the base of the direct mapping of all physical
// memory (page_offset_base), which KASLR randomises in 1 GiB steps
// (arch/x86/mm/kaslr.c) and VMCOREINFO does not export. The direct map is
// the lowest kernel-half region, so the first 1 GiB-aligned kernel address
// that maps physical 0 is its base; a second address is checked against
// the same offset so that a stray mapping of page 0 is not mistaken for it.
func (m *Mem) FindPageOffset(check uint64) (uint64, error) {
	var b [8]byte
	readEntry := func(pa uint64) uint64 {
		if _, err := m.phys.ReadAt(b[:], int64(pa)); err != nil {
			return 0
		}
		return binary.LittleEndian.Uint64(b[:])
	}
	mask := uint64(frameMask) &^ m.p.SMEMask
	// Enumerate present top-level (and, with 5 levels, P4D) entries of
	// the kernel half, then every 1 GiB step under them.
	var bases []uint64 // virtual bases of 512 GiB regions with a present table
	var tables []uint64
	if m.p.L5 {
		for i := uint64(256); i < 512; i++ {
			e := readEntry(m.root + i*8)
			if e&present == 0 {
				continue
			}
			for j := uint64(0); j < 512; j++ {
				e2 := readEntry(e&mask + j*8)
				if e2&present == 0 || e2&pse != 0 {
					continue
				}
				bases = append(bases, 0xfe00000000000000|i<<48|j<<39)
				tables = append(tables, e2&mask)
			}
		}
	} else {
		for i := uint64(256); i < 512; i++ {
			e := readEntry(m.root + i*8)
			if e&present == 0 || e&pse != 0 {
				continue
			}
			bases = append(bases, 0xffff000000000000|i<<39)
			tables = append(tables, e&mask)
		}
	}
	for k, base := range bases {
		for j := uint64(0); j < 512; j++ {
			e := readEntry(tables[k] + j*8)
			if e&present == 0 {
				continue
			}
			va := base | j<<30
			pa, err := m.VtoP(va)
			if err != nil || pa != 0 {
				continue
			}
			if check != 0 {
				if pc, err := m.VtoP(va + check); err != nil || pc != check {
					continue
				}
			}
			return va, nil
		}
	}
	return 0, errors.New("kmem: no kernel mapping of physical address 0 found in the page tables (direct map base)")
}

// ImageEnd returns the end of the kernel image mapping that starts at the
// image address text: the end of the last 2 MiB step below limit that is
// mapped linearly (physical = virtual − __START_KERNEL_map + phys_base).
// The kernel maps the image with 2 MiB pages up to the 2 MiB boundary after
// _end (cleanup_highmap unmaps the rest), but unmaps the freed .init
// sections inside it, so holes are stepped over, not taken as the end.
// The result is _end rounded up to 2 MiB: a safe, slightly generous extent
// for the kernel-image PT_LOAD when _end itself is unknown.
func (m *Mem) ImageEnd(text, limit uint64) uint64 {
	end := text
	for va := text; va < limit && va >= text; va = (va + pmdSize) &^ (pmdSize - 1) {
		if pa, err := m.VtoP(va); err == nil && pa == x86.ImagePhys(va, m.p.PhysBase) {
			end = min((va+pmdSize)&^(pmdSize-1), limit)
		}
	}
	return end
}

// Params returns the translation inputs.
func (m *Mem) Params() Params { return m.p }

// Root returns the physical address of the top-level page table.
func (m *Mem) Root() uint64 { return m.root }

// WithRoot returns a reader that walks the page tables rooted at the
// physical address root instead of init_top_pgt: a process's page global
// directory (mm->pgd), whose kernel half is shared with init_top_pgt and
// whose user half maps that process's memory.
func (m *Mem) WithRoot(root uint64) *Mem {
	c := *m
	c.root = root &^ (pageSize - 1)
	return &c
}

// ReadFull copies n bytes of kernel virtual memory at va from mem (a Mem,
// or any view of kernel memory) in 1 MiB pieces, growing the buffer only as
// reads succeed, so that a corrupt length or pointer in a dump costs one
// failed read, never an allocation of its size. what names the data in
// the error.
func ReadFull(mem io.ReaderAt, va, n uint64, what string) ([]byte, error) {
	const chunk = 1 << 20
	if va+n < va {
		return nil, fmt.Errorf("reading %s: %d bytes at %#x wrap around the address space", what, n, va)
	}
	buf := make([]byte, 0, min(n, chunk))
	for uint64(len(buf)) < n {
		k := min(n-uint64(len(buf)), chunk)
		off := len(buf)
		buf = append(buf, make([]byte, k)...)
		if got, err := mem.ReadAt(buf[off:], int64(va)+int64(off)); uint64(got) < k {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading %s (%d bytes at %#x): at %#x: %w", what, n, va, va+uint64(off)+uint64(max(got, 0)), err)
		}
	}
	return buf, nil
}
