package dump

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"ldx/elfcore"
	"ldx/elfcore/kdump"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/kernel/x86"
	"ldx/vmcoreinfo"
)

// FormatKdump is makedumpfile's kdump-compressed format (package kdump),
// also what QEMU's dump-guest-memory writes for its kdump-* formats.
const FormatKdump Format = "kdump-compressed"

func init() { register(kdumpOpener) }

// kdumpOpener reads kdump-compressed files. It is not an ELF format, so its
// rank only has to come before the ELF opener's fallback error.
var kdumpOpener = Opener{
	Format: FormatKdump,
	Rank:   20,
	Probe: func(in *Input) error {
		if !kdump.IsSignature(in.Page0) {
			return ErrNotMine
		}
		return nil
	},
	Open: openKdump,
}

// openKdump reads a kdump-compressed file: memory through its page
// descriptors, RAM from its RAM bitmap (clipped to the kernel's present
// memory sections, as for an ELF vmcore), notes from the sub-header's note
// blob, the kernel image from VMCOREINFO and the page tables. The
// sub-header's phys_base is checked against the page tables: QEMU writes a
// guess there that is wrong under KASLR.
func openKdump(ctx context.Context, in *Input) (*Dump, error) {
	src, sum := in.Source, in.Report
	f, err := kdump.Open(src, src.Size)
	if errors.Is(err, kdump.ErrSplit) {
		f, err = openSplit(src, sum)
	}
	if err != nil {
		var fe *kdump.FormatError
		if errors.As(err, &fe) {
			return nil, &InputError{Path: src.Path, Off: fe.Off, What: err.Error()}
		}
		return nil, &InputError{Path: src.Path, Off: -1, What: err.Error()}
	}
	if f.Incomplete() {
		sum.warn("the kdump header marks the dump incomplete (makedumpfile ran out of space): pages whose descriptors are missing cannot be read")
	}
	var kept []elfcore.Note
	var vmciText []byte
	if blob := f.Notes(); len(blob) > 0 {
		notes, err := elfcore.ParseNotes(blob, f.Sub.OffsetNote)
		if err != nil {
			sum.warn("the sub-header's note blob is damaged (%v); kept the %d notes before the damage", err, len(notes))
		}
		for _, n := range notes {
			switch {
			case n.Is(elfcore.NameVMCOREINFO, elfcore.NT_VMCOREINFO) || n.Name == elfcore.NameVMCOREINFO:
				vmciText = n.Desc
			case n.Is(elfcore.NameCore, elfcore.NT_PRSTATUS):
				sum.CPUs++
				sum.CPUNotes.Kept++
				kept = append(kept, n)
			default:
				kept = append(kept, n)
			}
		}
	}
	sum.VMCOREINFO = "the kdump sub-header's VMCOREINFO note"
	if vmciText == nil && f.VMCOREINFO() != nil {
		vmciText = f.VMCOREINFO()
		sum.VMCOREINFO = "the kdump sub-header's VMCOREINFO text"
	}
	if vmciText == nil {
		return nil, &InputError{Path: src.Path, Off: int64(f.Header.BlockSize), What: fmt.Sprintf("the kdump sub-header (version %d) has no VMCOREINFO, so the dump cannot be read as a kernel's", f.Header.HeaderVersion)}
	}
	info, dmg := vmcoreinfo.ParseLenient(vmciText)
	if !dmg.Clean() {
		sum.repair("cleaned the VMCOREINFO text: %s", dmg)
	}
	if rel, ok := info.OSRelease(); ok {
		sum.Release = rel
	}
	if t, ok := info.CrashTime(); ok {
		sum.CrashTime = &t
	}
	kept = append(kept, elfcore.Note{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: info.Bytes()})

	d := &Dump{Memory: &kdumpMemory{f: f}, Notes: kept}
	d.Excluded = func(pfn uint64) bool { return !f.Dumpable(pfn) }
	d.ExcludedWhy = fmt.Sprintf("dump level %d", f.DumpLevel())
	for _, r := range f.RAMRanges() {
		d.RAM = append(d.RAM, elfcore.Range{Start: r.Start * pageSize, End: r.End * pageSize})
	}

	// phys_base: the kernel's own NUMBER(phys_base) when VMCOREINFO has
	// it, else the sub-header's; whichever it is must put _stext where the
	// page tables map it.
	subPB := f.PhysBase()
	pb := subPB
	if n, ok := info.Number("phys_base"); ok {
		pb = uint64(n)
	}
	params, err := kmem.ParamsFrom(info, &pb)
	if err != nil {
		return nil, &InputError{Path: src.Path, Off: -1, What: err.Error()}
	}
	phys := &ramReader{r: d.Memory, ram: d.RAM}
	mem, err := kmem.New(phys, params)
	if err != nil {
		return nil, &InputError{Path: src.Path, Off: -1, What: err.Error()}
	}
	// _stext must translate to where phys_base puts it before anything
	// else is read through the page tables: it is the check that they and
	// VMCOREINFO describe this memory (a search of garbage tables for the
	// direct map can take hours).
	stext, ok := info.Symbol("_stext")
	if !ok {
		return nil, &InputError{Path: src.Path, Off: f.Sub.OffsetVmcoreinfo, What: "VMCOREINFO has no SYMBOL(_stext): the kernel image cannot be placed or the page tables checked"}
	}
	pa, err := mem.VtoP(stext)
	switch {
	case err != nil:
		return nil, &InputError{Path: src.Path, Off: -1, What: fmt.Sprintf("the page tables (root %#x with phys_base %#x) do not translate _stext %#x: %v", params.PgtRoot, params.PhysBase, stext, err)}
	case pa != x86.ImagePhys(stext, params.PhysBase):
		return nil, &InputError{Path: src.Path, Off: -1, What: fmt.Sprintf("_stext %#x maps to physical %#x, phys_base %#x puts it at %#x: VMCOREINFO does not describe this memory", stext, pa, params.PhysBase, x86.ImagePhys(stext, params.PhysBase))}
	}
	if subPB != params.PhysBase {
		sum.repair("the kdump sub-header's phys_base %#x is wrong (QEMU writes a guess there when the kernel is relocated); used %#x, which VMCOREINFO gives and the page tables confirm (they map _stext to it)", subPB, params.PhysBase)
	}

	pob, err := mem.FindPageOffset(pageDown(x86.ImagePhys(stext, params.PhysBase)))
	if err != nil {
		return nil, &InputError{Path: src.Path, Off: -1, What: err.Error()}
	}
	d.PageOffset = pob
	d.RAM = clipToKernelRAM(d.RAM, mem, info, sum, "the RAM bitmap")
	sum.RAMRanges = len(d.RAM)
	d.Image, d.ImageVirt = mem.ImageExtent(stext, info)
	var excluded uint64
	for _, r := range d.RAM {
		for pfn := r.Start / pageSize; pfn < r.End/pageSize; pfn++ {
			if !f.Dumpable(pfn) {
				excluded++
			}
		}
	}
	if excluded > 0 {
		sum.warn("%d pages of RAM (%d MiB) are not in the dump (excluded at dump level %d): readers report them as excluded, extract writes them as zeros", excluded, excluded*pageSize>>20, f.DumpLevel())
	}
	return d, nil
}

// kdumpMemory reads physical memory through a kdump file's page
// descriptors. Pages the file does not hold read as zeros here (what a
// vmcore made from it must hold); Dump.Excluded tells them apart for
// readers. Large reads decompress their pages on all cores.
type kdumpMemory struct {
	f *kdump.File

	// The last page a small read decompressed: page-table walks and
	// structure reads make many small reads of one page.
	mu       sync.Mutex
	lastPFN  uint64
	lastPage []byte
}

func (m *kdumpMemory) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &elfcore.UnmappedError{Paddr: uint64(off)}
	}
	pa := uint64(off)
	first := pa / pageSize
	last := (pa + uint64(len(p)) + pageSize - 1) / pageSize
	if last > m.f.MaxMapnr || last < first {
		return 0, &elfcore.UnmappedError{Paddr: max(pa, m.f.MaxMapnr*pageSize)}
	}
	if last == first+1 && len(p) < pageSize {
		return m.readSmall(p, first, pa)
	}
	workers := min(runtime.GOMAXPROCS(0), int(last-first)/64+1)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	per := (last - first + uint64(workers) - 1) / uint64(workers)
	for w := range workers {
		lo, hi := first+uint64(w)*per, min(first+uint64(w+1)*per, last)
		wg.Go(func() {
			page := make([]byte, pageSize)
			for pfn := lo; pfn < hi; pfn++ {
				pstart := pfn * pageSize
				s, e := max(pstart, pa), min(pstart+pageSize, pa+uint64(len(p)))
				dst := p[s-pa : e-pa]
				buf := page
				if len(dst) == pageSize {
					buf = dst
				}
				err := m.f.ReadPage(pfn, buf)
				if errors.Is(err, kdump.ErrExcluded) {
					clear(dst)
					continue
				}
				if err != nil {
					errs[w] = err
					return
				}
				if len(dst) != pageSize {
					copy(dst, page[s-pstart:])
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// readSmall reads p (inside page pfn) through the one-page cache.
func (m *kdumpMemory) readSmall(p []byte, pfn, pa uint64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastPage == nil || m.lastPFN != pfn {
		if m.lastPage == nil {
			m.lastPage = make([]byte, pageSize)
		}
		err := m.f.ReadPage(pfn, m.lastPage)
		if errors.Is(err, kdump.ErrExcluded) {
			clear(m.lastPage)
		} else if err != nil {
			m.lastPage = nil
			return 0, err
		}
		m.lastPFN = pfn
	}
	return copy(p, m.lastPage[pa-pfn*pageSize:]), nil
}

// ExcludedError is a read of a page that the dump does not hold: its
// producer left it out (a kdump file's dump level). Readers say so rather
// than show zeros that were never in memory.
type ExcludedError struct {
	Paddr uint64
	Why   string // e.g. "dump level 31"
}

func (e *ExcludedError) Error() string {
	return fmt.Sprintf("physical %#x (pfn %#x): page excluded from the dump (%s)", e.Paddr, e.Paddr/pageSize, e.Why)
}

// Unwrap makes errors.Is(err, kdump.ErrExcluded) hold.
func (e *ExcludedError) Unwrap() error { return kdump.ErrExcluded }
