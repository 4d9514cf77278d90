package kmem

import (
	"errors"
	"fmt"

	"ldx/vmcoreinfo"
)

// ParamsFrom takes the translation inputs from VMCOREINFO, as makedumpfile
// does: the root from SYMBOL(init_top_pgt) (swapper_pg_dir, its alias on
// x86_64, as drgn reads it), NUMBER(phys_base), NUMBER(pgtable_l5_enabled)
// and NUMBER(sme_mask). A missing phys_base is an error: callers that can
// derive it from a kernel-image PT_LOAD pass it in fallbackPhysBase.
func ParamsFrom(info *vmcoreinfo.Info, fallbackPhysBase *uint64) (Params, error) {
	var p Params
	root, ok := info.Symbol("init_top_pgt")
	if !ok {
		root, ok = info.Symbol("swapper_pg_dir")
	}
	if !ok {
		return p, errors.New("VMCOREINFO has neither SYMBOL(init_top_pgt) nor SYMBOL(swapper_pg_dir): no page-table root")
	}
	p.PgtRoot = root
	if pb, ok := info.Number("phys_base"); ok {
		p.PhysBase = uint64(pb)
	} else if fallbackPhysBase != nil {
		p.PhysBase = *fallbackPhysBase
	} else {
		return p, fmt.Errorf("VMCOREINFO has no NUMBER(phys_base) and there is no kernel-image PT_LOAD to derive it from")
	}
	if l5, ok := info.Number("pgtable_l5_enabled"); ok && l5 != 0 {
		p.L5 = true
	}
	if sme, ok := info.Number("sme_mask"); ok {
		p.SMEMask = uint64(sme)
	}
	return p, nil
}
