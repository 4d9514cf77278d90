// Package x86 holds the facts of the x86_64 kernel's memory map that every
// part of ldx relies on: where the kernel image is mapped, where the direct
// map starts when nothing randomises it, and how phys_base follows from a
// segment that maps the image. They are fixed by the architecture and the
// kernel's linker script (arch/x86/include/asm/page_64_types.h,
// Documentation/arch/x86/x86_64/mm.rst), the same for every kernel ldx
// reads, so they live here once; the page-table walk and the region layout
// built on them are package kmem's.
package x86

const (
	// PageSize is the base page size.
	PageSize = 4096

	// KernelTextBase is __START_KERNEL_map: a kernel-image virtual address
	// va is at physical address va - KernelTextBase + phys_base.
	KernelTextBase = 0xffffffff80000000
	// DefaultText is _text (and _stext) of a kernel linked with the
	// default CONFIG_PHYSICAL_START (16 MiB) before KASLR moves it:
	// KERNELOFFSET is the distance from here.
	DefaultText = 0xffffffff81000000

	// PageOffset4Level and PageOffset5Level are page_offset_base, the
	// direct map's base, with 4- and 5-level paging when the memory
	// layout is not randomised (CONFIG_RANDOMIZE_MEMORY off, or nokaslr).
	PageOffset4Level = 0xffff888000000000
	PageOffset5Level = 0xff11000000000000

	// VmallocBase4Level, VmemmapBase4Level and their 5-level twins are
	// vmalloc_base and vmemmap_base when the memory layout is not
	// randomised: the vmalloc and struct page regions' fixed starts.
	VmallocBase4Level = 0xffffc90000000000
	VmallocBase5Level = 0xffa0000000000000
	VmemmapBase4Level = 0xffffea0000000000
	VmemmapBase5Level = 0xffd4000000000000
)

// IsImageAddr reports whether va is in the kernel-image mapping (and the
// modules above it): the range that translates through phys_base.
func IsImageAddr(va uint64) bool { return va >= KernelTextBase }

// PhysBase is phys_base as a segment mapping the kernel image implies it:
// the physical address the image's virtual address maps to, minus the
// image's offset from KernelTextBase.
func PhysBase(paddr, vaddr uint64) uint64 { return paddr - (vaddr - KernelTextBase) }

// ImagePhys is the physical address of kernel-image virtual address va
// with phys_base physBase.
func ImagePhys(va, physBase uint64) uint64 { return va - KernelTextBase + physBase }

// IsDefaultPageOffset reports whether page_offset_base is one of the two
// values it has when the memory layout is not randomised.
func IsDefaultPageOffset(v uint64) bool { return v == PageOffset4Level || v == PageOffset5Level }
