package verify

import (
	"errors"
	"fmt"
	"io"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/kernel/x86"
)

// drgn's read model. drgn reads kernel virtual memory through the PT_LOADs'
// p_vaddr first, the last segment winning (lastVaddrSeg), and walks the page
// tables from SYMBOL(swapper_pg_dir) only for addresses no segment covers,
// reading physical memory last-match (facts.last) without stripping
// sme_mask. Before 0.0.27 it reads the root table itself through the
// p_vaddr segments (rootOverlay), since then physically through
// NUMBER(phys_base). drgnView builds either reader; E1, E2 and E3 use them.

// drgnPhysRootSince is the first drgn version that reads the root page
// table physically through NUMBER(phys_base) instead of through the
// p_vaddr segments.
const drgnPhysRootSince = "0.0.27"

// coveredByVaddr reports whether a p_vaddr segment covers va (drgn and
// vmcore-dmesg read it without a walk then).
func (c *facts) coveredByVaddr(va uint64) bool {
	_, ok := lastVaddrSeg(c.loads, va)
	return ok
}

// lastVaddrSeg returns the last PT_LOAD whose [p_vaddr, p_vaddr+p_memsz)
// holds va: drgn registers segments in order and the later one wins.
func lastVaddrSeg(loads []elfcore.ProgHeader, va uint64) (elfcore.ProgHeader, bool) {
	for i := len(loads) - 1; i >= 0; i-- {
		p := loads[i]
		if va >= p.Vaddr && va-p.Vaddr < p.Memsz {
			return p, true
		}
	}
	return elfcore.ProgHeader{}, false
}

// drgnMem reads kernel virtual memory as drgn does: through the p_vaddr
// segments (the last one wins), else through its page walk (last-match
// physical reads, no SME stripping).
type drgnMem struct {
	r     io.ReaderAt
	loads []elfcore.ProgHeader
	walk  *kmem.Mem
	err   error // why the walk is impossible
	// rootPhysBase is the phys_base that locates drgn's root table.
	rootPhysBase uint64
}

// drgnView builds drgn's reader. modern is drgn 0.0.27 and later, which
// read the root table physically through NUMBER(phys_base); older ones
// read it through the p_vaddr segments, which fails without a
// kernel-image segment ("recursive address translation").
func (c *facts) drgnView(modern bool) (*drgnMem, error) {
	x := c.xlat()
	d := &drgnMem{r: c.r, loads: c.loads}
	if x.swapper == 0 {
		d.err = errors.New("\"VMCOREINFO does not contain valid swapper_pg_dir\"")
		return d, nil
	}
	var pb uint64
	pbV, haveV := vmciNumber(c.info, "phys_base")
	switch {
	case modern && haveV:
		pb = pbV
	default:
		// The root table's bytes come through the p_vaddr segment (its
		// file bytes, whatever its p_paddr says); the lower tables are
		// read physically.
		seg, ok := lastVaddrSeg(c.loads, x.swapper)
		if !ok {
			d.err = errors.New("\"recursive address translation; page table may be missing from core dump\"")
			return d, nil
		}
		pb = x86.PhysBase(seg.Paddr, seg.Vaddr)
		root := x86.ImagePhys(x.swapper, pb)
		d.rootPhysBase = pb
		d.walk, d.err = kmem.New(&rootOverlay{phys: c.last, r: c.r, seg: seg, root: root &^ (pageSize - 1), va: x.swapper &^ (pageSize - 1)},
			kmem.Params{PgtRoot: x.swapper, PhysBase: pb, L5: x.l5})
		return d, nil
	}
	d.rootPhysBase = pb
	d.walk, d.err = kmem.New(c.last, kmem.Params{PgtRoot: x.swapper, PhysBase: pb, L5: x.l5})
	return d, nil
}

func (d *drgnMem) ReadAt(p []byte, off int64) (int, error) {
	va := uint64(off)
	n := 0
	for n < len(p) {
		if seg, ok := lastVaddrSeg(d.loads, va); ok {
			k := int(min(uint64(len(p)-n), seg.Memsz-(va-seg.Vaddr)))
			if err := readSegV(d.r, seg, va, p[n:n+k]); err != nil {
				return n, fmt.Errorf("\"short read from memory file\" at %#x: %w", va, err)
			}
			n += k
			va += uint64(k)
			continue
		}
		if d.err != nil {
			return n, d.err
		}
		k := min(len(p)-n, int(pageSize-va%pageSize))
		if _, err := d.walk.ReadAt(p[n:n+k], int64(va)); err != nil {
			return n, err
		}
		n += k
		va += uint64(k)
	}
	return n, nil
}

// readSegV reads segment p's bytes for virtual address va (zero-filled
// past p_filesz).
func readSegV(r io.ReaderAt, p elfcore.ProgHeader, va uint64, buf []byte) error {
	return readSeg(r, p, p.Paddr+(va-p.Vaddr), buf)
}

// drgnModernEffect is what a wrong NUMBER(phys_base) does to drgn 0.0.27
// and later: its root table is read through it, but the kernel image and
// the direct map are read through p_vaddr segments when they cover them.
func (c *facts) drgnModernEffect() Effect {
	_, haveKernelVaddr := c.directMapDelta()
	if c.image != nil && haveKernelVaddr {
		return eff(Drgn, Degraded, "reads the root table physically through NUMBER(phys_base): walks of vmalloc, module and per-CPU addresses fail (the image and direct map are read through p_vaddr)").ver(">=" + drgnPhysRootSince)
	}
	return eff(Drgn, Fatal, "reads the root table physically through NUMBER(phys_base): wrong or no translations").ver(">=" + drgnPhysRootSince)
}

// rootOverlay is a physical view in which the root table's page reads the
// file bytes of the p_vaddr segment drgn (before 0.0.27) reads it through.
type rootOverlay struct {
	phys     io.ReaderAt
	r        io.ReaderAt
	seg      elfcore.ProgHeader
	root, va uint64 // the page's physical address as computed, its virtual address
}

func (o *rootOverlay) ReadAt(p []byte, off int64) (int, error) {
	pa := uint64(off)
	if pa >= o.root && pa+uint64(len(p)) <= o.root+pageSize {
		if err := readSegV(o.r, o.seg, o.va+(pa-o.root), p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return o.phys.ReadAt(p, off)
}
