package kmodtest

import (
	"fmt"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/kmod/kmodtest/guest"
)

// ApplyFacts fills in what a QEMU dump does not say about the guest's
// kernel, from the facts the guest printed about itself
// (kmod/kmodtest/guest): the E820 RAM map, max_pfn, the VMCOREINFO note's
// and crash_notes' addresses, _text/_end and the randomised direct-map
// base. FromELFDump followed by ApplyFacts describes a real guest kernel
// completely.
func (k *Kernel) ApplyFacts(f *guest.Facts) error {
	var err error
	k.RAM = nil
	for _, r := range f.SystemRAM {
		k.RAM = append(k.RAM, elfcore.Range{Start: uint64(r.Start), End: uint64(r.End) + 1})
	}
	if f.VMCOREINFO.Addr != 0 {
		k.VMCOREINFONote = uint64(f.VMCOREINFO.Addr)
	}
	if f.NumPresent != 0 {
		k.CPUs = f.NumPresent
	}
	k.CrashNotes = nil
	for i, c := range f.CrashNotes {
		if c.CPU != i {
			return fmt.Errorf("kmodtest: guest facts: crash_notes are not for CPUs 0…n-1 in order")
		}
		k.CrashNotes = append(k.CrashNotes, uint64(c.Addr))
	}
	if len(k.CrashNotes) > k.CPUs {
		k.CrashNotes = k.CrashNotes[:k.CPUs]
	}
	sym := func(name string) uint64 { return f.Symbol(name) }
	if t := sym("_text"); t != 0 {
		if t != k.TextVirt {
			// VMCOREINFO's _stext and kallsyms' _text disagree: trust
			// kallsyms, keep phys_base.
			pb := k.PhysBase()
			k.TextVirt = t
			k.TextPhys = x86.ImagePhys(t, pb)
		}
		if e := sym("_end"); e > t {
			k.TextSize = e - t
		}
	}
	if k.TextSize == 0 {
		return fmt.Errorf("kmodtest: guest facts have no _text/_end symbols: the text PT_LOAD's size is unknown")
	}
	if a := sym("max_pfn"); a != 0 {
		if k.MaxPFN, err = k.ReadImageUint64(a); err != nil {
			return fmt.Errorf("max_pfn: %w", err)
		}
	}
	if k.MaxPFN == 0 && len(k.RAM) > 0 {
		// e820__end_of_ram_pfn: the end of the last RAM range.
		k.MaxPFN = k.RAM[len(k.RAM)-1].End / PageSize
	}
	if f.LA57 {
		k.PageOffsetBase = PageOffset5Level
	}
	if a := sym("page_offset_base"); a != 0 {
		if k.PageOffsetBase, err = k.ReadImageUint64(a); err != nil {
			return fmt.Errorf("page_offset_base: %w", err)
		}
	}
	// A randomised direct map is emulated like any other, though a real
	// livedump v1 INIT oopses on such a kernel (package kmod: setups that crash the machine).
	return nil
}
