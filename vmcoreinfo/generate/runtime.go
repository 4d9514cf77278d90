package generate

import (
	"context"
	"errors"
	"fmt"
	"io"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kmem"
	"ldx/vmcoreinfo"
)

// ImageSymbols looks up in the vmlinux what kmem.Locate needs to find the
// kernel image in physical memory.
func ImageSymbols(v Vmlinux) (kmem.ImageSymbols, error) {
	var s kmem.ImageSymbols
	need := []struct {
		name string
		dst  *uint64
		opt  bool
	}{
		{"linux_banner", &s.BannerAddr, false}, {"init_top_pgt", &s.TopPgt, false},
		{"level3_kernel_pgt", &s.Level3Pgt, false}, {"level2_kernel_pgt", &s.Level2Pgt, true},
		{"level4_kernel_pgt", &s.Level4Pgt, true}, {"__pgtable_l5_enabled", &s.PgtableL5, true},
	}
	for _, n := range need {
		a, err := v.Symbol(n.name)
		if ok, err := has(err); err != nil || (!ok && !n.opt) {
			if err == nil {
				err = fmt.Errorf("the vmlinux has no symbol %s", n.name)
			}
			return s, err
		}
		*n.dst = a
	}
	b, err := v.Banner()
	if err != nil {
		return s, err
	}
	s.Banner = b
	return s, nil
}

// RuntimeSource says where a Runtime's addressing values came from.
type RuntimeSource string

const (
	// FromVMCOREINFO: KERNELOFFSET, NUMBER(phys_base) and the paging keys
	// of the dump's own VMCOREINFO (even a partial one).
	FromVMCOREINFO RuntimeSource = "vmcoreinfo"
	// Located: found in physical memory by kmem.Locate, because the dump's
	// VMCOREINFO is missing or lost its x86 keys.
	Located RuntimeSource = "located"
)

// RuntimeFromDump returns the running kernel's values for a dump:
// KERNELOFFSET, phys_base, 5-level paging and the SME mask from the dump's
// VMCOREINFO when it has KERNELOFFSET and NUMBER(phys_base), else found in
// physical memory (phys, within ram) from the vmlinux's banner and page
// tables. Mem reads the dump's kernel virtual memory.
func RuntimeFromDump(ctx context.Context, v Vmlinux, phys io.ReaderAt, ram []elfcore.Range, info *vmcoreinfo.Info) (*Runtime, RuntimeSource, error) {
	if info != nil {
		ko, ok1 := info.KernelOffset()
		pb, ok2 := info.Number("phys_base")
		if ok1 && ok2 {
			rt := &Runtime{KernelOffset: ko, PhysBase: uint64(pb)}
			if l5, ok := info.Number("pgtable_l5_enabled"); ok {
				rt.PgtableL5 = l5 != 0
			}
			if sme, ok := info.Number("sme_mask"); ok {
				rt.SMEMask = uint64(sme)
			}
			// The page-table root as the dump says it, else the vmlinux's.
			p, err := kmem.ParamsFrom(info, nil)
			if err != nil {
				root, err := v.Symbol("init_top_pgt")
				if err != nil {
					return nil, "", err
				}
				p = kmem.Params{PgtRoot: root + ko, PhysBase: rt.PhysBase, L5: rt.PgtableL5, SMEMask: rt.SMEMask}
			}
			m, err := kmem.New(phys, p)
			if err != nil {
				return nil, "", err
			}
			rt.Mem = m
			return rt, FromVMCOREINFO, nil
		}
	}
	sym, err := ImageSymbols(v)
	if err != nil {
		return nil, "", fmt.Errorf("finding the kernel image in the dump: %w", err)
	}
	loc, err := kmem.Locate(ctx, phys, ram, sym)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("the dump's VMCOREINFO lacks KERNELOFFSET or NUMBER(phys_base), and %w", err)
	}
	m, err := kmem.New(phys, loc.Params(sym))
	if err != nil {
		return nil, "", err
	}
	return &Runtime{KernelOffset: loc.KernelOffset, PhysBase: loc.PhysBase, PgtableL5: loc.L5, SMEMask: loc.SMEMask, Mem: m, Location: loc}, Located, nil
}
