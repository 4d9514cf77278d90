package dump

import (
	"errors"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kallsyms"
	"ldx/elfcore/kernel/kmem"
	"ldx/vmcoreinfo"
)

// clipToKernelRAM keeps of ram what the kernel itself counts as RAM, and
// says what it left out (what, e.g. "the input's segments"). Producers
// that dump the machine rather than the kernel (QEMU's dump-guest-memory
// writes whole RAM blocks) present firmware and reserved ranges as memory:
// the BIOS ROM at 0xfffc0000, the EBDA below 640 KiB, the ACPI tables at
// the top of RAM. The kernel's direct map does not cover them, so a
// segment starting there has a p_vaddr the page tables do not map (which
// readers that check it report), and no consumer reads kernel data there.
//
// The kernel's RAM map is its e820 table, found through kallsyms, to the
// page; without it, its present memory sections (a section, 128 MiB, at a
// time). Without either, or when nothing would be left, ram stays as it is.
func clipToKernelRAM(ram []elfcore.Range, mem *kmem.Mem, info *vmcoreinfo.Info, sum *Report, what string) []elfcore.Range {
	kept, err := e820RAM(mem, info, ram)
	source := "the kernel's own RAM map (e820_table, found through kallsyms)"
	if err != nil {
		present, perr := mem.PresentSections(info)
		if perr != nil {
			return ram
		}
		kept = elfcore.IntersectRanges(ram, present)
		source = "the kernel's present memory sections (its e820 table could not be read: " + err.Error() + ")"
	}
	if len(kept) == 0 {
		return ram
	}
	if gone := elfcore.Covered(ram) - elfcore.Covered(kept); gone > 0 {
		sum.repair("left out %d KiB of %s that are not RAM to the kernel (firmware and reserved ranges), by %s", gone>>10, what, source)
	}
	return kept
}

// e820RAM narrows ram to the RAM ranges of the kernel's e820 table, each
// rounded inwards to whole pages.
func e820RAM(mem *kmem.Mem, info *vmcoreinfo.Info, ram []elfcore.Range) ([]elfcore.Range, error) {
	syms, err := kallsyms.Read(mem, info)
	if err != nil {
		return nil, err
	}
	v, ok := syms.Lookup("e820_table")
	if !ok {
		return nil, errors.New("the kernel's symbol table has no e820_table")
	}
	entries, err := kmem.ReadE820(mem, v)
	if err != nil {
		return nil, err
	}
	var e820 []elfcore.Range
	for _, e := range entries {
		if start, end := pageUp(e.Addr), pageDown(e.Addr+e.Size); e.IsRAM() && start < end {
			e820 = append(e820, elfcore.Range{Start: start, End: end})
		}
	}
	out := elfcore.IntersectRanges(ram, e820)
	if len(out) == 0 {
		return nil, errors.New("the e820 table's RAM does not overlap the kernel's RAM range")
	}
	return out, nil
}
