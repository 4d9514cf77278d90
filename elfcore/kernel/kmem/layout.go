package kmem

import (
	"fmt"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/vmcoreinfo"
)

// The fixed parts of the x86_64 virtual address map
// (Documentation/arch/x86/x86_64/mm.rst). The direct map, vmalloc and
// vmemmap regions are placed at random inside the span starting at the
// default direct-map base (CONFIG_RANDOMIZE_MEMORY, arch/x86/mm/kaslr.c),
// in that order, each on a 1 GiB boundary.
const (
	cpuEntryArea = 0xfffffe0000000000
	modulesEnd   = 0xffffffffff000000
	vsyscallAddr = 0xffffffffff600000
	tb           = 1 << 40
)

// Region is a part of the kernel's virtual address map.
type Region struct {
	Name       string `json:"name"`
	Start      uint64 `json:"start"`
	End        uint64 `json:"end"` // exclusive; 0 means the top of the address space
	Linear     bool   `json:"linear"`
	PhysStart  uint64 `json:"phys_start,omitempty"` // physical address of Start when Linear
	Source     string `json:"source,omitempty"`     // where a randomised base comes from
	Randomised bool   `json:"randomised,omitempty"`
}

// Contains reports whether va is in the region.
func (r Region) Contains(va uint64) bool { return va >= r.Start && (r.End == 0 || va < r.End) }

// LinearPhys returns the physical address a linear region maps va to.
func (r Region) LinearPhys(va uint64) (uint64, bool) {
	if !r.Linear || !r.Contains(va) {
		return 0, false
	}
	return va - r.Start + r.PhysStart, true
}

// Layout is the kernel virtual address map of one dump: which region an
// address belongs to, with the randomised bases found in the dump. It
// answers "what is this address" for vtop and read; translation itself
// always walks the page tables.
type Layout struct {
	L5            bool   `json:"l5"`
	PageOffset    uint64 `json:"page_offset_base"`
	PhysBase      uint64 `json:"phys_base"`
	ImageSize     uint64 `json:"kernel_image_size"`
	VmallocStart  uint64 `json:"vmalloc_start,omitempty"`
	VmallocSource string `json:"vmalloc_source,omitempty"`
	VmemmapStart  uint64 `json:"vmemmap_start,omitempty"`
	VmemmapSource string `json:"vmemmap_source,omitempty"`
	// Regions are sorted by start and do not overlap.
	Regions []Region `json:"regions"`
}

// Layout describes the address map of the dump m reads. pageOffset is the
// direct-map base (page_offset_base), which VMCOREINFO does not carry:
// callers find it in the program headers or with FindPageOffset. The
// vmalloc base comes from NUMBER(VMALLOC_START) (6.9+), else the lowest
// vmap_area (vmap_area_list) rounded down to its 1 GiB boundary; the
// vmemmap base from SYMBOL(vmemmap) (6.x), else from a present memory
// section, whose encoded mem_map is vmemmap itself under
// SPARSEMEM_VMEMMAP. Without KASLR both have their default values.
func (m *Mem) Layout(info *vmcoreinfo.Info, pageOffset uint64) *Layout {
	l := &Layout{L5: m.p.L5, PageOffset: pageOffset, PhysBase: m.p.PhysBase, ImageSize: 1 << 30}
	if sz, ok := info.Number("KERNEL_IMAGE_SIZE"); ok && sz > 0 && sz <= 1<<31 {
		l.ImageSize = uint64(sz)
	}
	spanStart, defPO, defVmalloc, defVmemmap := uint64(x86.PageOffset4Level), uint64(x86.PageOffset4Level), uint64(x86.VmallocBase4Level), uint64(x86.VmemmapBase4Level)
	if l.L5 {
		spanStart, defPO, defVmalloc, defVmemmap = x86.PageOffset5Level, x86.PageOffset5Level, x86.VmallocBase5Level, x86.VmemmapBase5Level
	}
	inSpan := func(va uint64) bool { return va >= spanStart && va < cpuEntryArea }

	if v, ok := info.Number("VMALLOC_START"); ok && inSpan(uint64(v)) {
		l.VmallocStart, l.VmallocSource = uint64(v), "VMCOREINFO NUMBER(VMALLOC_START)"
	} else if va, err := m.firstVmapArea(info); err == nil && inSpan(va) && va > pageOffset {
		l.VmallocStart, l.VmallocSource = va&^(pudSize-1), "the lowest vmap_area rounded down to 1 GiB"
	} else if pageOffset == defPO {
		l.VmallocStart, l.VmallocSource = defVmalloc, "the default (the direct map is not randomised)"
	}
	if v, ok := info.Symbol("vmemmap"); ok && inSpan(v) {
		l.VmemmapStart, l.VmemmapSource = v, "VMCOREINFO SYMBOL(vmemmap)"
	} else if v, err := m.vmemmapFromSections(info); err == nil && inSpan(v) {
		l.VmemmapStart, l.VmemmapSource = v, "a present memory section's mem_map"
	} else if pageOffset == defPO {
		l.VmemmapStart, l.VmemmapSource = defVmemmap, "the default (the direct map is not randomised)"
	}

	var rs []Region
	add := func(r Region) { rs = append(rs, r) }
	if l.L5 {
		add(Region{Name: "user", Start: 0, End: 1 << 56})
		add(Region{Name: "non-canonical", Start: 1 << 56, End: 0xff00000000000000})
		add(Region{Name: "guard hole (hypervisor)", Start: 0xff00000000000000, End: 0xff10000000000000})
		add(Region{Name: "LDT remap (PTI)", Start: 0xff10000000000000, End: x86.PageOffset5Level})
	} else {
		add(Region{Name: "user", Start: 0, End: 1 << 47})
		add(Region{Name: "non-canonical", Start: 1 << 47, End: 0xffff800000000000})
		add(Region{Name: "guard hole (hypervisor)", Start: 0xffff800000000000, End: 0xffff880000000000})
		add(Region{Name: "LDT remap (PTI)", Start: 0xffff880000000000, End: x86.PageOffset4Level})
	}
	// The randomised regions, each up to the next one's base.
	type base struct {
		name, src        string
		start, size, def uint64
		linear           bool
	}
	maxDirect, vmallocSize, vmemmapSize := uint64(64*tb), uint64(32*tb), uint64(1*tb)
	if l.L5 {
		maxDirect, vmallocSize, vmemmapSize = 1<<55, 12800*tb, 1<<49
	}
	var bases []base
	if pageOffset != 0 {
		bases = append(bases, base{"direct map", "", pageOffset, maxDirect, defPO, true})
	}
	if l.VmallocStart != 0 {
		bases = append(bases, base{"vmalloc/ioremap", l.VmallocSource, l.VmallocStart, vmallocSize, defVmalloc, false})
	}
	if l.VmemmapStart != 0 {
		bases = append(bases, base{"vmemmap (struct page array)", l.VmemmapSource, l.VmemmapStart, vmemmapSize, defVmemmap, false})
	}
	for i, b := range bases {
		// A region's largest size can reach past the top of the address
		// space from a high random base (5-level vmemmap): saturate.
		end := uint64(cpuEntryArea)
		if b.size < cpuEntryArea-b.start {
			end = b.start + b.size
		}
		if i+1 < len(bases) && bases[i+1].start > b.start {
			end = min(end, bases[i+1].start)
		}
		if !inSpan(b.start) || end <= b.start {
			continue
		}
		r := Region{Name: b.name, Start: b.start, End: end, Linear: b.linear, Source: b.src, Randomised: b.start != b.def}
		add(r)
	}
	add(Region{Name: "cpu_entry_area", Start: cpuEntryArea, End: 0xfffffe8000000000})
	add(Region{Name: "%esp fixup stacks", Start: 0xffffff0000000000, End: 0xffffff8000000000})
	add(Region{Name: "EFI runtime services", Start: 0xffffffef00000000, End: 0xffffffff00000000})
	add(Region{Name: "kernel image", Start: x86.KernelTextBase, End: x86.KernelTextBase + l.ImageSize, Linear: true, PhysStart: l.PhysBase})
	add(Region{Name: "modules", Start: x86.KernelTextBase + l.ImageSize, End: modulesEnd})
	add(Region{Name: "fixmap", Start: modulesEnd, End: vsyscallAddr})
	add(Region{Name: "vsyscall page", Start: vsyscallAddr, End: vsyscallAddr + pageSize})
	l.Regions = rs
	return l
}

// Region returns the region va lies in, or one named "unused hole".
func (l *Layout) Region(va uint64) Region {
	for _, r := range l.Regions {
		if r.Contains(va) {
			return r
		}
	}
	return Region{Name: "unused hole"}
}

// firstVmapArea returns the start of the lowest vmap_area on
// vmap_area_list (kept sorted by address): the first vmalloc mapping,
// which the allocator places at VMALLOC_START.
func (m *Mem) firstVmapArea(info *vmcoreinfo.Info) (uint64, error) {
	list, ok1 := info.Symbol("vmap_area_list")
	listOff, ok2 := info.Offset("vmap_area.list")
	startOff, ok3 := info.Offset("vmap_area.va_start")
	if !(ok1 && ok2 && ok3) {
		return 0, fmt.Errorf("kmem: no vmap_area_list keys")
	}
	next, err := m.Uint64(list)
	if err != nil {
		return 0, err
	}
	if next == list {
		return 0, fmt.Errorf("kmem: vmap_area_list is empty")
	}
	return m.Uint64(next - listOff + startOff)
}

// vmemmapFromSections decodes the first present memory section's
// section_mem_map: sparse_encode_mem_map stores mem_map − section's first
// pfn, which with SPARSEMEM_VMEMMAP is vmemmap itself, plus flag bits
// below the 1 GiB alignment of vmemmap_base.
func (m *Mem) vmemmapFromSections(info *vmcoreinfo.Info) (uint64, error) {
	root, ok1 := info.Symbol("mem_section")
	size, ok2 := info.Size("mem_section")
	off, ok3 := info.Offset("mem_section.section_mem_map")
	if !(ok1 && ok2 && ok3) || size == 0 || size > pageSize || off+8 > size {
		return 0, fmt.Errorf("kmem: no SPARSEMEM keys")
	}
	// SPARSEMEM_EXTREME: an array of pointers to pages of sections.
	first, err := m.Uint64(root)
	if err != nil || first == 0 {
		return 0, fmt.Errorf("kmem: no first mem_section root: %v", err)
	}
	for i := uint64(0); i < pageSize/size; i++ {
		smm, err := m.Uint64(first + i*size + off)
		if err != nil {
			return 0, err
		}
		if smm&1 != 0 { // SECTION_MARKED_PRESENT
			return smm &^ (pudSize - 1), nil
		}
	}
	return 0, fmt.Errorf("kmem: no present section in the first root")
}

// EntryFlags names the bits set in a page-table entry, as crash's vtop
// does. Bit 7 is PSE (a large page) above the last level, PAT in a PTE.
func EntryFlags(e uint64, leafPTE bool) string {
	names := []struct {
		bit  uint
		name string
	}{{0, "PRESENT"}, {1, "RW"}, {2, "USER"}, {3, "PWT"}, {4, "PCD"}, {5, "ACCESSED"}, {6, "DIRTY"}, {7, "PSE"}, {8, "GLOBAL"}, {63, "NX"}}
	var out []string
	for _, n := range names {
		if e&(1<<n.bit) == 0 {
			continue
		}
		name := n.name
		if n.bit == 7 && leafPTE {
			name = "PAT"
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return "(none)"
	}
	return strings.Join(out, "|")
}

// ImageExtent is the kernel-image segment a dump without one gets, placed
// from _stext (text): physically from text's page to the end of the linear
// image mapping (ImageEnd) below KERNEL_IMAGE_SIZE (1 GiB when VMCOREINFO
// does not say), page-aligned, and the virtual address of its start.
func (m *Mem) ImageExtent(text uint64, info *vmcoreinfo.Info) (phys elfcore.Range, virt uint64) {
	limit := uint64(x86.KernelTextBase + 1<<30)
	if sz, ok := info.Number("KERNEL_IMAGE_SIZE"); ok && sz > 0 {
		limit = x86.KernelTextBase + uint64(sz)
	}
	pb := m.p.PhysBase
	start := x86.ImagePhys(text, pb)
	phys = elfcore.Range{Start: start &^ (pageSize - 1), End: (x86.ImagePhys(m.ImageEnd(text, limit), pb) + pageSize - 1) &^ (pageSize - 1)}
	return phys, text - (start - phys.Start)
}
