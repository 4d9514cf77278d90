package dump

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/kernel/x86"
	"ldx/elfcore/livedump"
	"ldx/vmcoreinfo"
)

// FormatELF is an ELF vmcore: ldx's output, a QEMU dump-guest-memory
// file, a copy of /proc/vmcore.
const FormatELF Format = "ELF vmcore"

func init() { register(elfOpener) }

// elfOpener reads any ELF core no more specific opener took: it ranks
// last.
var elfOpener = Opener{
	Format: FormatELF,
	Rank:   100,
	Probe: func(in *Input) error {
		if in.Core == nil {
			return ErrNotMine
		}
		return nil
	},
	Open: openELF,
}

// openELF normalises an ELF vmcore that is not a livedump device: a QEMU
// dump-guest-memory file or a copy of /proc/vmcore. Their memory is read
// through their PT_LOADs; what they lack is added: QEMU 7.2 puts the
// program headers after its section headers (makedumpfile reads them at
// 64 regardless) and writes p_vaddr = p_paddr with no kernel-image
// segment (drgn then fails with "recursive address translation",
// vmcore-dmesg cannot map any kernel address). The direct-map base and
// the image extent come from the dump's own page tables.
func openELF(ctx context.Context, in *Input) (*Dump, error) {
	src, core, opt, sum := in.Source, in.Core, in.Options, in.Report
	if core.Type != elf.ET_CORE || core.Machine != elf.EM_X86_64 {
		return nil, &InputError{Path: src.Path, Off: 0x10, What: fmt.Sprintf("an ELF %v for %v, not an x86_64 core", core.Type, core.Machine)}
	}
	notes, err := core.Notes()
	if err != nil {
		sum.warn("the note segment is damaged (%v); kept the %d notes before the damage", err, len(notes))
	}
	var vmci *elfcore.Note
	var kept []elfcore.Note
	for i := range notes {
		n := notes[i]
		switch {
		case n.Is(elfcore.NameVMCOREINFO, elfcore.NT_VMCOREINFO) || n.Name == elfcore.NameVMCOREINFO:
			vmci = &notes[i] // the last one wins, as in crash, makedumpfile and drgn
		case n.Is(elfcore.NameCore, elfcore.NT_PRSTATUS):
			sum.CPUs++
			sum.CPUNotes.Kept++
			kept = append(kept, n)
		default:
			kept = append(kept, n)
		}
	}
	sum.VMCOREINFO = "the input's VMCOREINFO note"
	var lostWhy error
	if vmci == nil {
		// QEMU without -device vmcoreinfo, other hypervisors and hand-made
		// cores have no note, but the kernel's own note page is in the
		// dumped memory.
		pa, text, err := findVMCOREINFO(ctx, src, core, opt)
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		if err == nil {
			vmci = &elfcore.Note{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: text, Off: -1}
			sum.VMCOREINFO = fmt.Sprintf("the kernel's vmcoreinfo_note page in the dumped memory at %#x", pa)
			sum.repair("the core has no VMCOREINFO note: took the kernel's own (%d bytes) from its vmcoreinfo_note page at physical %#x, checked against the dumped memory (its page tables translate init_uts_ns, whose release is its OSRELEASE, and _stext where phys_base puts it)", len(text), pa)
		}
		lostWhy = err
	}
	if vmci == nil {
		if opt.Vmlinux == nil {
			return nil, &InputError{Path: src.Path, Off: int64(core.Phoff), What: "the core has no VMCOREINFO note, so no consumer can make sense of it as a kernel dump, and " + lostWhy.Error(),
				Hint: "with the kernel's debug vmlinux, `ldx extract --vmlinux VMLINUX` rebuilds VMCOREINFO from it and the dumped memory; for QEMU dumps, run QEMU with -device vmcoreinfo and load the guest's qemu_fw_cfg module before dumping"}
		}
		sum.warn("%v", lostWhy)
		rb, err := rebuildVMCOREINFO(ctx, core.Phys(), core.Phys().Ranges(), opt.Vmlinux, nil)
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		if err != nil {
			return nil, &InputError{Path: src.Path, Off: int64(core.Phoff), What: "the core has no VMCOREINFO note, and rebuilding it from the vmlinux failed: " + err.Error()}
		}
		vmci = &elfcore.Note{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: rb.text, Off: -1}
		sum.VMCOREINFO = rb.source
		sum.repair("%s", rb.repair)
		for _, w := range rb.warnings {
			sum.warn("%s", w)
		}
	}
	info, dmg := vmcoreinfo.ParseLenient(vmci.Desc)
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

	pm := core.Phys()
	p := &Dump{Memory: pm, Notes: kept}
	p.RAM = clipRanges(pm.Ranges(), 0, ^uint64(0)&^(pageSize-1))
	sum.RAMRanges = len(p.RAM)

	// Existing virtual addresses: a /proc/vmcore copy has them right.
	var imageSeg *elfcore.ProgHeader
	var delta uint64
	haveDelta := false
	for i, l := range core.Loads() {
		switch {
		case l.Vaddr >= x86.KernelTextBase:
			if imageSeg == nil {
				imageSeg = &core.Loads()[i]
			}
		case l.Vaddr != l.Paddr && l.Vaddr > l.Paddr:
			delta, haveDelta = l.Vaddr-l.Paddr, true
		}
	}
	var fallback *uint64
	if imageSeg != nil {
		pb := x86.PhysBase(imageSeg.Paddr, imageSeg.Vaddr)
		fallback = &pb
	}
	params, err := kmem.ParamsFrom(info, fallback)
	if err != nil {
		return nil, &InputError{Path: src.Path, Off: vmci.Off, What: err.Error()}
	}
	mem, err := kmem.New(pm, params)
	if err != nil {
		return nil, &InputError{Path: src.Path, Off: vmci.Off, What: err.Error()}
	}
	if haveDelta {
		p.PageOffset = delta
	} else {
		// A second probe, to tell the direct map from a stray mapping of
		// page 0: the kernel image's own physical pages, which the direct
		// map always covers (the end of QEMU's RAM blocks may be reserved
		// and unmapped).
		check := uint64(livedump.RAMStart)
		if stext, ok := info.Symbol("_stext"); ok {
			check = pageDown(x86.ImagePhys(stext, params.PhysBase))
		}
		pob, err := mem.FindPageOffset(check)
		if err != nil {
			return nil, &InputError{Path: src.Path, Off: -1, What: "the program headers carry no kernel virtual addresses and " + err.Error()}
		}
		p.PageOffset = pob
		sum.repair("gave the RAM segments their kernel virtual addresses (direct map at %#x, found in the page tables); the input had p_vaddr = p_paddr", pob)
	}
	// QEMU's RAM blocks include firmware (the BIOS ROM at 0xfffc0000) and
	// reserved ranges that are not kernel memory and that the direct map
	// does not cover: keep only what the kernel counts as RAM.
	p.RAM = clipToKernelRAM(p.RAM, mem, info, sum, "the input's segments")
	sum.RAMRanges = len(p.RAM)
	if imageSeg != nil {
		p.Image = elfcore.Range{Start: pageDown(imageSeg.Paddr), End: pageUp(imageSeg.Paddr + imageSeg.Memsz)}
		p.ImageVirt = imageSeg.Vaddr - (imageSeg.Paddr - p.Image.Start)
	} else {
		stext, ok := info.Symbol("_stext")
		if !ok {
			sum.warn("VMCOREINFO has no SYMBOL(_stext): no kernel-image PT_LOAD")
		} else {
			p.Image, p.ImageVirt = mem.ImageExtent(stext, info)
			sum.repair("added the kernel-image PT_LOAD [%#x, %#x) at %#x that the input lacks (drgn and vmcore-dmesg read kernel symbols through it)", p.Image.Start, p.Image.End, p.ImageVirt)
		}
	}
	if core.Phoff != elfcore.HeaderSize {
		sum.repair("moved the program headers to offset 64 (they were at %#x; makedumpfile reads them at 64 whatever e_phoff says)", core.Phoff)
	}
	return p, nil
}

// findVMCOREINFO looks in the dumped memory for the kernel's
// vmcoreinfo_note page and accepts a note only when the dump agrees with
// it (consistentVMCOREINFO): a stale copy, another kernel's note or bytes
// that merely look like one are passed over.
func findVMCOREINFO(ctx context.Context, src *Source, core *elfcore.File, opt *Options) (uint64, []byte, error) {
	phys := core.Phys()
	ram := phys.Ranges()
	var found uint64
	var text []byte
	var rejected []string
	err := scanNotePages(ctx, src, phys, false, ram, opt, func(pa uint64, t []byte) bool {
		if err := consistentVMCOREINFO(phys, t); err != nil {
			rejected = append(rejected, fmt.Sprintf("the note at %#x (%v)", pa, err))
			return false
		}
		found, text = pa, t
		return true
	})
	if err != nil {
		return 0, nil, err
	}
	if text == nil {
		if len(rejected) == 0 {
			return 0, nil, errors.New("no VMCOREINFO note page was found in the dumped memory either")
		}
		return 0, nil, fmt.Errorf("the VMCOREINFO notes found in the dumped memory do not describe it: %s", strings.Join(rejected, "; "))
	}
	return found, text, nil
}

// consistentVMCOREINFO says why text cannot be the VMCOREINFO of the
// kernel whose memory phys holds, or nil: its page-table root must
// translate its own init_uts_ns, whose release must be its OSRELEASE (the
// banner the kernel prints), and _stext must map to where phys_base puts
// the image (which KERNELOFFSET's virtual placement and the physical one
// then agree on).
func consistentVMCOREINFO(phys io.ReaderAt, text []byte) error {
	info, _ := vmcoreinfo.ParseLenient(text)
	if info == nil {
		return errors.New("no VMCOREINFO lines")
	}
	rel, ok := info.OSRelease()
	uts, ok1 := info.Symbol("init_uts_ns")
	name, ok2 := info.Offset("uts_namespace.name")
	stext, ok3 := info.Symbol("_stext")
	if !ok || !ok1 || !ok2 || !ok3 {
		return errors.New("it lacks OSRELEASE, SYMBOL(init_uts_ns), OFFSET(uts_namespace.name) or SYMBOL(_stext)")
	}
	params, err := kmem.ParamsFrom(info, nil)
	if err != nil {
		return err
	}
	mem, err := kmem.New(phys, params)
	if err != nil {
		return err
	}
	buf := make([]byte, 65)
	if _, err := mem.ReadAt(buf, int64(uts+name+2*65)); err != nil {
		return fmt.Errorf("its init_uts_ns does not translate: %w", err)
	}
	if got := string(bytes.TrimRight(buf, "\x00")); got != rel {
		return fmt.Errorf("init_uts_ns says release %q, its OSRELEASE %q", got, rel)
	}
	pa, err := mem.VtoP(stext)
	if err != nil {
		return fmt.Errorf("its _stext does not translate: %w", err)
	}
	if want := x86.ImagePhys(stext, params.PhysBase); pa != want {
		return fmt.Errorf("_stext %#x maps to physical %#x, phys_base puts it at %#x", stext, pa, want)
	}
	return nil
}
