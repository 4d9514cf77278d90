package kmem

import (
	"fmt"
	"testing"

	"ldx/elfcore/kernel/x86"
	"ldx/vmcoreinfo"
)

func emptyInfo() *vmcoreinfo.Info {
	info, _ := vmcoreinfo.ParseLenient([]byte("OSRELEASE=test\n"))
	return info
}

func TestLayout(t *testing.T) {
	const (
		physBase uint64 = 0x3a000000
		text     uint64 = 0xffffffff9c000000
		pob             = 0xffff9a4c00000000
		vmalloc         = 0xffffb4e3c0000000
		vmemmap         = 0xffffe5f440000000
	)
	b := newBuilder(false, 0)
	imgPhys := text - x86.KernelTextBase + physBase
	b.mapPage(text, imgPhys, pmdSize)
	b.mapPage(pob, 0, pudSize)
	// vmap_area_list (in the image) → a vmap_area (in the direct map)
	// whose va_start is the first vmalloc page.
	const listVA, areaPA = text + 0x2000, 0x5000
	b.mem.set(imgPhys+0x2000, pob+areaPA+40)
	b.mem.set(areaPA, vmalloc+0x3000)
	// mem_section: root array → a page of sections, the first present
	// with section_mem_map = vmemmap | SECTION_MARKED_PRESENT | HAS_MEM_MAP.
	const rootPA, secPA = 0x6000, 0x7000
	b.mem.set(rootPA, pob+secPA)
	b.mem.set(secPA, vmemmap|3)
	m, err := New(b.mem, Params{PgtRoot: text, PhysBase: physBase})
	if err != nil {
		t.Fatal(err)
	}
	m.root = b.root

	kaslr, _ := vmcoreinfo.ParseLenient(fmt.Appendf(nil, "SYMBOL(vmap_area_list)=%x\nOFFSET(vmap_area.list)=40\nOFFSET(vmap_area.va_start)=0\n"+
		"SYMBOL(mem_section)=%x\nSIZE(mem_section)=16\nOFFSET(mem_section.section_mem_map)=0\nNUMBER(KERNEL_IMAGE_SIZE)=1073741824\n", uint64(listVA), uint64(pob+rootPA)))
	l := m.Layout(kaslr, pob)
	if l.VmallocStart != vmalloc || l.VmemmapStart != vmemmap {
		t.Errorf("vmalloc %#x (%s), vmemmap %#x (%s)", l.VmallocStart, l.VmallocSource, l.VmemmapStart, l.VmemmapSource)
	}
	for _, c := range []struct {
		va     uint64
		region string
		phys   int64 // -1: not linear
	}{
		{0x00007fffdead0000, "user", -1},
		{0x0000900000000000, "non-canonical", -1},
		{0xffff800000001000, "guard hole (hypervisor)", -1},
		{pob + 0x1234, "direct map", 0x1234},
		{vmalloc + 0x3000, "vmalloc/ioremap", -1},
		{vmemmap + 0x40, "vmemmap (struct page array)", -1},
		{0xfffffe0000001000, "cpu_entry_area", -1},
		{text + 0x10, "kernel image", int64(imgPhys + 0x10)},
		{0xffffffffc0002000, "modules", -1},
		{0xffffffffff5ff000, "fixmap", -1},
		{0xffffffffff600000, "vsyscall page", -1},
		{0xffffff9000000000, "unused hole", -1},
	} {
		r := l.Region(c.va)
		pa, lin := r.LinearPhys(c.va)
		if r.Name != c.region || lin != (c.phys >= 0) || (lin && pa != uint64(c.phys)) {
			t.Errorf("Region(%#x) = %q linear %v %#x; want %q %#x", c.va, r.Name, lin, pa, c.region, c.phys)
		}
	}
	if r := l.Region(pob); !r.Randomised || r.End != vmalloc {
		t.Errorf("direct map region %+v", r)
	}

	// 6.9+ kernels say where vmalloc and vmemmap are.
	v69, _ := vmcoreinfo.ParseLenient(fmt.Appendf(nil, "NUMBER(VMALLOC_START)=%#x\nSYMBOL(vmemmap)=%x\n", uint64(0xffffc10000000000), uint64(0xffffd00000000000)))
	l = m.Layout(v69, pob)
	if l.VmallocStart != 0xffffc10000000000 || l.VmemmapStart != 0xffffd00000000000 {
		t.Errorf("6.9+: %#x %#x", l.VmallocStart, l.VmemmapStart)
	}
	// Without KASLR the defaults apply.
	l = m.Layout(emptyInfo(), x86.PageOffset4Level)
	if l.VmallocStart != x86.VmallocBase4Level || l.VmemmapStart != x86.VmemmapBase4Level || l.Region(x86.PageOffset4Level).Randomised {
		t.Errorf("defaults: %+v", l)
	}
	// 5-level.
	m5, _ := New(b.mem, Params{PgtRoot: text, PhysBase: physBase, L5: true})
	l = m5.Layout(emptyInfo(), x86.PageOffset5Level)
	for va, want := range map[uint64]string{
		0x00ff000000000000: "user",
		0x0100000000000000: "non-canonical",
		0xff11000000001000: "direct map",
		0xffa0000000001000: "vmalloc/ioremap",
		0xffd4000000000040: "vmemmap (struct page array)",
		text:               "kernel image",
	} {
		if got := l.Region(va).Name; got != want {
			t.Errorf("5-level Region(%#x) = %q, want %q", va, got, want)
		}
	}
	// 5-level KASLR can put vmemmap so high that base + its largest size
	// (2^49) passes the top of the address space (a real boot drew
	// 0xfffe087b40000000): the region still ends at cpu_entry_area.
	high, _ := vmcoreinfo.ParseLenient(fmt.Appendf(nil, "NUMBER(VMALLOC_START)=%#x\nSYMBOL(vmemmap)=%x\n", uint64(0xff9e000000000000), uint64(0xfffe087b40000000)))
	l = m5.Layout(high, 0xff2f75aa80000000)
	if r := l.Region(0xfffe087b40040000); r.Name != "vmemmap (struct page array)" || r.End != cpuEntryArea {
		t.Errorf("high 5-level vmemmap: Region = %+v", r)
	}
}

func TestWithRoot(t *testing.T) {
	b := newBuilder(false, 0)
	b.mapPage(x86.PageOffset4Level, 0, pudSize)
	kernelRoot := b.root
	// A process's PGD: a copy of the kernel half plus a user mapping.
	b.root = b.alloc()
	for i := uint64(256); i < 512; i++ {
		var w [8]byte
		b.mem.ReadAt(w[:], int64(kernelRoot+i*8))
		copy(b.mem.page(b.root)[i*8:], w[:])
	}
	b.mapPage(0x55d0c0de1000, 0x2345000, pageSize)
	m, _ := New(b.mem, Params{PgtRoot: x86.KernelTextBase})
	m.root = kernelRoot
	if _, err := m.VtoP(0x55d0c0de1000); err == nil {
		t.Error("user address mapped through init_top_pgt")
	}
	u := m.WithRoot(b.root | 0x7) // low bits (a CR3's PCID) are ignored
	if pa, err := u.VtoP(0x55d0c0de1008); err != nil || pa != 0x2345008 {
		t.Errorf("user: %#x, %v", pa, err)
	}
	if pa, err := u.VtoP(0xffff888000001000); err != nil || pa != 0x1000 {
		t.Errorf("kernel half through the process PGD: %#x, %v", pa, err)
	}
	if u.Root() != b.root || m.Root() != kernelRoot {
		t.Error("Root")
	}
}

func TestEntryFlags(t *testing.T) {
	if got := EntryFlags(0x80000000000001e3, false); got != "PRESENT|RW|ACCESSED|DIRTY|PSE|GLOBAL|NX" {
		t.Error(got)
	}
	if got := EntryFlags(0x80|1, true); got != "PRESENT|PAT" {
		t.Error(got)
	}
	if got := EntryFlags(0, false); got != "(none)" {
		t.Error(got)
	}
}
