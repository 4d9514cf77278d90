package dump

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/livedump"
	"ldx/kmod/manifest"
	"ldx/vmcoreinfo"
)

// livedumpHeader is the kernel's page-0 header as parsed and checked.
type livedumpHeader struct {
	core *elfcore.File
	livedump.Header
}

// checkLivedumpHeader validates page 0 against what the kernel writes and
// against the device size.
func checkLivedumpHeader(src *Source, f *elfcore.File) (*livedumpHeader, error) {
	bad := func(off int64, what, hint string) error {
		return &InputError{Path: src.Path, Off: off, What: what, Hint: hint}
	}
	if f.Type != elf.ET_CORE {
		return nil, bad(0x10, fmt.Sprintf("e_type is %v, want ET_CORE", f.Type), "")
	}
	if f.Machine != elf.EM_X86_64 {
		return nil, bad(0x12, fmt.Sprintf("e_machine is %v; livedump v1 exists only for x86_64", f.Machine), "")
	}
	// The image PT_LOAD comes before the RAM one; either order is
	// accepted, told apart by address.
	h := &livedumpHeader{core: f, Header: livedump.SplitHeader(f)}
	if h.RAM.Paddr != livedump.RAMStart || h.RAM.Memsz < pageSize || h.RAM.End()%pageSize != 0 {
		return nil, bad(f.ProgOffset(2), fmt.Sprintf("RAM PT_LOAD [%#x, %#x) is not the kernel's [1 MiB, (max_pfn+1)·4096)", h.RAM.Paddr, h.RAM.End()), "")
	}
	if h.RAM.Vaddr < h.RAM.Paddr {
		return nil, bad(f.ProgOffset(2)+16, fmt.Sprintf("RAM PT_LOAD p_vaddr %#x below its p_paddr", h.RAM.Vaddr), "")
	}
	if !h.RAM.Contains(h.Text.Paddr) || h.Text.End() > h.RAM.End() {
		return nil, bad(f.ProgOffset(1), fmt.Sprintf("kernel image PT_LOAD [%#x, %#x) is not inside RAM", h.Text.Paddr, h.Text.End()), "")
	}
	if end := int64(h.RAM.End()); src.Size < end-pageSize {
		return nil, bad(src.Size, fmt.Sprintf("the input is %d bytes but the header describes memory up to %#x (%d bytes): %d MiB of memory are missing",
			src.Size, end, end, (end-pageSize-src.Size)>>20),
			"the device is smaller than the dumped machine's top of RAM (the kernel does not check and drops the writes), or the image was cut short while copying; copy the whole device")
	}
	return h, nil
}

// noHeaderError explains an input whose page 0 holds no ELF header.
func noHeaderError(src *Source, page0 []byte, man *manifest.Manifest) error {
	e := &InputError{Path: src.Path, Off: 0}
	switch {
	case elfcore.IsZero(page0) && man != nil:
		e.What = "no ELF header in page 0: ldx capture cleared it before the run and the kernel never wrote it, so the capture did not reach FINISH"
		e.Hint = "the memory on the device is incomplete; run the capture again (ldx capture reports which step failed)"
	case elfcore.IsZero(page0):
		e.What = "no ELF header in page 0 (the page is all zeros): the livedump kernel writes the header only at FINISH"
		e.Hint = "either the capture did not reach FINISH, or this is not a livedump device; check the capture's output, and that you named the right device"
	default:
		e.What = fmt.Sprintf("no dump header in page 0: not an ELF core, a kdump-compressed or flattened file (it starts with % x)", page0[:8])
		e.Hint = "ldx reads ELF vmcores (QEMU, /proc/vmcore, kcore captures), kdump-compressed and flattened files and livedump devices; a livedump device whose capture never reached FINISH holds in page 0 what the device held before"
	}
	return e
}

// maxVMCOREINFO bounds the VMCOREINFO text the kernel can produce
// (VMCOREINFO_BYTES is one page; a few runs' K-6 NULs may add a little).
const maxVMCOREINFO = 2 * pageSize

// noteInfo is what the notes of a livedump device say after repair.
type noteInfo struct {
	cpus        int
	coreNotes   []elfcore.Note // complete CORE notes found in page 1, in CPU order
	vmcoreinfo  []byte         // the complete VMCOREINFO text, NULs included
	vmciSource  string         // where the complete text came from
	truncated   bool           // the note segment ran past the written page (K-1)
	survived    int            // bytes of VMCOREINFO text that reached page 1
	prefix      []byte         // that text
	damage      error          // the notes page is damaged, not just cut
	crashTimeP1 time.Time      // CRASHTIME seen in page 1, zero if it did not survive
	descsz      int            // n_descsz of the kernel's VMCOREINFO note, -1 if its header was cut
	rebuilt     *rebuilt       // the text was rebuilt from the vmlinux
}

// readNotes parses the written page of notes (pfn 1) and recovers what the
// one-page limit of the kernel cut off (K-1): the complete VMCOREINFO note
// lives in the dumped memory at the kernel's vmcoreinfo_note page (see
// package livedump, "Page 1: the notes"), found through the manifest or by
// scanning page starts.
//
// When the complete text is nowhere in the memory either and rebuild is
// set (extract --vmlinux), the text is rebuilt from the vmlinux.
func readNotes(src *Source, h *livedumpHeader, man *manifest.Manifest, scan func(prefix []byte) (uint64, []byte, error), rebuild func(prefix []byte) (*rebuilt, error)) (*noteInfo, error) {
	page := make([]byte, pageSize)
	if _, err := src.ReadAt(page, livedump.NotesOffset); err != nil {
		return nil, fmt.Errorf("%s: reading the notes page at %#x: %w", src.Path, livedump.NotesOffset, err)
	}
	ni := &noteInfo{descsz: -1}
	claimed := int(h.Notes.Filesz)
	if h.Notes.Filesz > 1<<24 {
		return nil, &InputError{Path: src.Path, Off: h.core.ProgOffset(0) + 32, What: fmt.Sprintf("PT_NOTE p_filesz %#x is absurd", h.Notes.Filesz)}
	}
	ni.truncated = claimed > pageSize
	written := page[:min(claimed, pageSize)]
	notes, perr := elfcore.ParseNotes(written, livedump.NotesOffset)
	for _, n := range notes {
		if !n.Is(elfcore.NameCore, elfcore.NT_PRSTATUS) {
			break // the CORE notes come first; the VMCOREINFO note is handled below
		}
		ni.coreNotes = append(ni.coreNotes, n)
	}
	// A walk that stops inside the page, other than in the VMCOREINFO
	// note the one-page limit cuts, means the page itself is damaged.
	if fe, ok := perr.(*elfcore.FormatError); ok && len(notes) == len(ni.coreNotes) {
		if _, isV := livedump.VMCOREINFOHeader(written[min(livedump.VMCOREINFOOffset(len(ni.coreNotes)), len(written)):]); !isV {
			ni.damage = fe
		}
	}
	// Where does the VMCOREINFO note start? After the complete CORE notes.
	vOff := livedump.VMCOREINFOOffset(len(ni.coreNotes))
	var prefix []byte
	descsz, haveHdr := livedump.VMCOREINFOHeader(written[min(vOff, len(written)):])
	if haveHdr {
		ni.descsz = int(descsz)
		text := written[vOff+24:]
		if int(descsz) <= len(text) {
			text = text[:descsz]
		}
		prefix = text
		ni.survived = len(text)
		ni.prefix = text
		ni.crashTimeP1, _ = crashTime(text)
		if int(descsz) <= len(written)-vOff-24 {
			ni.vmcoreinfo = bytes.Clone(text)
			ni.vmciSource = "the notes page (complete)"
		}
		// Page 0 is written only at FINISH, page 1 also during SWEEP: a
		// run stopped before FINISH leaves an earlier run's header next
		// to this run's notes (see package livedump, "Telling runs and
		// boots apart"). The header's note size must be the kernel's
		// formula for the notes page 1 actually holds.
		if want := livedump.NotesSize(len(ni.coreNotes), int(descsz)); want != claimed {
			return nil, &InputError{Path: src.Path, Off: h.core.ProgOffset(0) + 32,
				What: fmt.Sprintf("the header's PT_NOTE size %d does not match the notes page (%d CPU notes and %d bytes of VMCOREINFO make %d): page 0 holds a header from another run than page 1",
					claimed, len(ni.coreNotes), descsz, want),
				Hint: "the livedump kernel writes page 0 only at FINISH: this capture most likely stopped before FINISH and its memory may be incomplete; capture again"}
		}
	}
	// CPU count: the manifest knows it; otherwise the claimed note size
	// does (livedump.NotesSize, inverted by livedump.CPUs) once S is known.
	if ni.vmcoreinfo == nil {
		paddr, text, err := recoverVMCOREINFO(src, man, prefix, scan)
		switch {
		case err == nil:
			ni.vmcoreinfo = text
			ni.vmciSource = fmt.Sprintf("the kernel's vmcoreinfo_note page in the dumped memory at %#x", paddr)
		case errors.Is(err, context.Canceled):
			return nil, err
		case rebuild != nil:
			rb, rerr := rebuild(prefix)
			if errors.Is(rerr, context.Canceled) {
				return nil, rerr
			}
			if rerr != nil {
				return nil, &InputError{Path: src.Path, Off: -1, What: fmt.Sprintf("%v; and rebuilding it from the vmlinux failed: %v", err, rerr)}
			}
			// Why the kernel's own text was not usable stays worth
			// knowing (a manifest that points at the wrong page says the
			// device is not from this capture).
			rb.warnings = append([]string{"the kernel's own VMCOREINFO could not be recovered: " + err.Error()}, rb.warnings...)
			ni.rebuilt, ni.vmcoreinfo, ni.vmciSource = rb, rb.text, rb.source
		default:
			var ie *InputError
			if errors.As(err, &ie) {
				if ie.Hint != "" {
					ie.Hint += "\n  "
				}
				ie.Hint += "with the kernel's debug vmlinux, `ldx extract --vmlinux VMLINUX` rebuilds VMCOREINFO from it and the dumped memory"
			}
			return nil, err
		}
	}
	// The note-size formula needs the kernel's text length, which a
	// rebuilt text need not have.
	s := len(ni.vmcoreinfo)
	if ni.rebuilt != nil {
		s = ni.descsz
	}
	if n, ok := livedump.CPUs(claimed, s); ok {
		ni.cpus = n
	}
	if man != nil && man.PresentCPUs > 0 {
		if ni.cpus != 0 && ni.cpus != man.PresentCPUs {
			return nil, &InputError{Path: src.Path, Off: h.core.ProgOffset(0) + 32,
				What: fmt.Sprintf("the PT_NOTE size %d says %d CPUs, the capture manifest %d: the header is not from this capture", claimed, ni.cpus, man.PresentCPUs)}
		}
		ni.cpus = man.PresentCPUs
	}
	if ni.cpus == 0 {
		ni.cpus = max(1, len(ni.coreNotes))
	}
	if len(ni.coreNotes) > ni.cpus {
		ni.coreNotes = ni.coreNotes[:ni.cpus]
	}
	return ni, nil
}

// recoverVMCOREINFO finds the complete VMCOREINFO note in the dumped
// memory. The kernel rewrites its global vmcoreinfo_note page at START,
// CRASHTIME included, before write-protecting memory, so the page's dumped
// copy is complete (see package livedump, "Page 1: the notes"; confirmed
// on real runs). The candidate must begin with the text that survived in
// page 1, so a stale copy cannot be taken for it.
func recoverVMCOREINFO(src *Source, man *manifest.Manifest, prefix []byte, scan func(prefix []byte) (uint64, []byte, error)) (uint64, []byte, error) {
	if man != nil && man.VMCOREINFONote.Start != 0 {
		pa := man.VMCOREINFONote.Start
		text, err := readVMCOREINFONote(src, pa)
		switch {
		case err != nil:
			return 0, nil, &InputError{Path: src.Path, Off: int64(pa), What: "the capture manifest points at the kernel's VMCOREINFO note, but " + err.Error(),
				Hint: "the page was not dumped or holds other data; the dump has no usable VMCOREINFO"}
		case !bytes.HasPrefix(text, prefix):
			return 0, nil, &InputError{Path: src.Path, Off: int64(pa), What: "the VMCOREINFO note at the address the capture manifest gives does not match the text in the notes page",
				Hint: "the header and notes pages are not from this capture"}
		}
		return pa, text, nil
	}
	pa, text, err := scan(prefix)
	if err != nil {
		return 0, nil, err
	}
	return pa, text, nil
}

// readVMCOREINFONote reads a kernel VMCOREINFO note at physical address pa
// of a raw livedump device (offset = physical address).
func readVMCOREINFONote(r io.ReaderAt, pa uint64) ([]byte, error) {
	buf := make([]byte, 24+maxVMCOREINFO)
	n, err := r.ReadAt(buf, int64(pa))
	if n < 24 {
		return nil, fmt.Errorf("reading it failed: %v", err)
	}
	descsz, ok := livedump.VMCOREINFOHeader(buf[:n])
	if !ok {
		return nil, errors.New("no VMCOREINFO note header is there")
	}
	if int(descsz) > n-24 || descsz > maxVMCOREINFO {
		return nil, fmt.Errorf("its n_descsz %d is larger than a VMCOREINFO text can be", descsz)
	}
	text := buf[24 : 24+descsz]
	if !bytes.HasPrefix(text, []byte("OSRELEASE=")) {
		return nil, errors.New("its text does not start with OSRELEASE=")
	}
	return bytes.Clone(text), nil
}

// crashTime extracts CRASHTIME from VMCOREINFO text, if present, with
// the one VMCOREINFO parser (which skips NUL runs and, like drgn, a last
// line the text cut off before its newline: a cut number is no time).
func crashTime(text []byte) (time.Time, bool) {
	in, _ := vmcoreinfo.ParseLenient(text)
	if in == nil {
		return time.Time{}, false
	}
	return in.CrashTime()
}

// FormatLivedump is a livedump block device or an image of one: byte
// offset = physical address, page 0 the kernel's ELF header, page 1 its
// notes.
const FormatLivedump Format = "livedump raw device"

func init() { register(livedumpOpener) }

// livedumpOpener reads a livedump block device or an image of one. It
// ranks before the generic ELF vmcore: the device is an ELF core too.
var livedumpOpener = Opener{
	Format: FormatLivedump,
	Rank:   10,
	Probe: func(in *Input) error {
		if in.Core == nil || !livedump.IsLayout(in.Core) {
			return ErrNotMine
		}
		return nil
	},
	Open: openLivedump,
}

// openLivedump repairs what the livedump kernel gets wrong (its defects
// K-1 …): VMCOREINFO cut at one page is recovered from the dumped memory;
// CPU notes lost with it are rebuilt; the single RAM range over MMIO
// holes and one page past RAM is replaced by the capture-time RAM map;
// pages the kernel never wrote are told apart. Everything repaired is
// said in the Report.
func openLivedump(ctx context.Context, in *Input) (*Dump, error) {
	src, core, man, opt, sum := in.Source, in.Core, in.Manifest, in.Options, in.Report
	h, err := checkLivedumpHeader(src, core)
	if err != nil {
		return nil, err
	}
	p := &Dump{Memory: src, Raw: true, PageOffset: h.PageOffset()}
	p.Image = elfcore.Range{Start: pageDown(h.Text.Paddr), End: pageUp(h.Text.End())}
	p.ImageVirt = h.Text.Vaddr - (h.Text.Paddr - p.Image.Start)

	// Where memory is: the capture-time RAM map, or the kernel's range.
	kernelEnd := h.MaxPFN() * pageSize // the kernel's range covers one page more (K-3)
	sum.repair("left out the page past the end of RAM (pfn %#x) that the kernel's RAM PT_LOAD covers but never writes", h.MaxPFN())
	if man != nil {
		if man.MaxPFN != 0 && man.MaxPFN != h.MaxPFN() {
			return nil, &InputError{Path: src.Path, Off: core.ProgOffset(2), What: fmt.Sprintf("the header's RAM ends at max_pfn %#x, the capture manifest says %#x: the header is not from this capture", h.MaxPFN(), man.MaxPFN)}
		}
		// RAM below 1 MiB (pfns 2–0x9F, real-mode trampoline and BIOS
		// data; pfn 0 and 1 hold the header and notes) is dumped by the
		// kernel but left out, as the kernel's own header does: with RAM
		// starting at 0x2000, makedumpfile 1.7.2 -E overflows a page
		// buffer in readmem and crashes.
		p.RAM = clipRanges(man.RAM, livedump.RAMStart, kernelEnd)
		if len(p.RAM) == 0 {
			return nil, &InputError{Path: src.Path, Off: manifest.Offset, What: "the capture manifest's RAM map has no RAM inside the dumped range"}
		}
		holes := (kernelEnd - livedump.RAMStart) - elfcore.Covered(clipRanges(p.RAM, livedump.RAMStart, kernelEnd))
		if holes > 0 {
			sum.repair("split the kernel's single RAM range into %d RAM ranges from the capture-time memory map; %d MiB of holes and reserved ranges are not presented as memory", len(p.RAM), holes>>20)
		}
	} else {
		p.RAM = []elfcore.Range{{Start: livedump.RAMStart, End: kernelEnd}}
	}
	sum.RAMRanges = len(p.RAM)

	// Pages the kernel never wrote.
	switch {
	case man != nil && man.Prepared == manifest.Marked:
		nonce := man.Nonce
		p.Unwritten = func(pfn uint64, page []byte) bool { return manifest.IsMarker(page, nonce, pfn) }
	case man != nil && man.Prepared == manifest.Zeroed:
		// Never-written pages read as zeros and are not stored.
	default:
		sum.warn("the device was not cleared or marked before the capture: pages the kernel did not write (its own 1 GiB of buffers, holes, dropped pages) hold whatever the device held before and cannot be told from memory")
	}

	// Notes.
	scan := func(prefix []byte) (uint64, []byte, error) {
		return scanVMCOREINFO(ctx, src, p.RAM, prefix, opt)
	}
	var rebuild func(prefix []byte) (*rebuilt, error)
	if opt.Vmlinux != nil {
		rebuild = func(prefix []byte) (*rebuilt, error) {
			return rebuildVMCOREINFO(ctx, src, p.RAM, opt.Vmlinux, prefix)
		}
	}
	ni, err := readNotes(src, h, man, scan, rebuild)
	if err != nil {
		return nil, err
	}
	if ni.rebuilt != nil {
		sum.repair("%s", ni.rebuilt.repair)
		for _, w := range ni.rebuilt.warnings {
			sum.warn("%s", w)
		}
	}
	sum.CPUs = ni.cpus
	sum.VMCOREINFO = ni.vmciSource
	if ni.damage != nil {
		sum.warn("the notes page is damaged after %d CPU notes (%v); the CPU notes after it were rebuilt", len(ni.coreNotes), ni.damage)
	}
	if ni.truncated && ni.rebuilt == nil {
		sum.repair("the kernel wrote only the first 4096 bytes of its %d-byte notes (K-1): %d of %d bytes of VMCOREINFO text survived; took the complete text from %s, recovering %s",
			h.Notes.Filesz, ni.survived, len(ni.vmcoreinfo), ni.vmciSource, lostKeys(ni.prefix, ni.vmcoreinfo))
	}
	vmci := ni.vmcoreinfo
	if n := bytes.Count(vmci, []byte{0}); n > 0 {
		vmci = bytes.ReplaceAll(vmci, []byte{0}, nil)
		sum.repair("removed %d NUL bytes from VMCOREINFO that an earlier livedump in the same boot left before CRASHTIME (K-6)", n)
	}
	if t, ok := crashTime(vmci); ok {
		sum.CrashTime = &t
		if t1 := ni.crashTimeP1; !t1.IsZero() && !t1.Equal(t) {
			sum.warn("the notes page says CRASHTIME %s but the kernel's note in memory %s: the header and notes pages are from another run than the memory", t1.Format(time.RFC3339), t.Format(time.RFC3339))
		}
		if man != nil && t.Before(man.Time.Add(-time.Minute)) {
			return nil, &InputError{Path: src.Path, Off: -1, What: fmt.Sprintf("the dump's CRASHTIME %s is before the capture was prepared (%s): the memory is from an older run", t.Format(time.RFC3339), man.Time.Format(time.RFC3339))}
		}
	}
	info, dmg := vmcoreinfo.ParseLenient(vmci)
	if dmg.Truncated() {
		sum.warn("VMCOREINFO text is damaged: %s", dmg)
	}
	if rel, ok := info.OSRelease(); ok {
		sum.Release = rel
	}
	if err := headerMatchesKernel(src, h, info); err != nil {
		return nil, err
	}
	if man == nil {
		p.RAM = kernelMemoryModel(src, h, info, p.RAM, sum)
		sum.RAMRanges = len(p.RAM)
	}
	p.Notes, sum.CPUNotes = buildCoreNotes(ni, sum)
	p.Notes = append(p.Notes, elfcore.Note{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: vmci})
	return p, nil
}

// kernelMemoryModel narrows the kernel's single RAM range when there is no
// capture manifest, using the kernel's own view of memory in the dump: the
// SPARSEMEM sections it marks present. That removes holes of a section
// (128 MiB) or more, like the PCI hole below 4 GiB; smaller holes and
// reserved ranges inside a present section stay, and are warned about.
func kernelMemoryModel(src *Source, h *livedumpHeader, info *vmcoreinfo.Info, ram []elfcore.Range, sum *Report) []elfcore.Range {
	const noMap = "no ldx capture manifest on the input: "
	params, err := kmem.ParamsFrom(info, nil)
	var mem *kmem.Mem
	if err == nil {
		mem, err = kmem.New(src, params)
	}
	if err != nil {
		sum.warn(noMap+"the RAM range is the kernel's single range [1 MiB, %#x), MMIO holes and reserved ranges included (livedump K-3); the kernel's memory model could not be read either: %v", ram[len(ram)-1].End, err)
		return ram
	}
	// The kernel's own RAM map, down to the page, when its symbol table
	// says where it is.
	out, e820Err := e820RAM(mem, info, ram)
	if e820Err == nil {
		if gone := elfcore.Covered(ram) - elfcore.Covered(out); gone > 0 {
			sum.repair("laid the RAM PT_LOADs over the kernel's own RAM map (e820_table, found through kallsyms): left out %d KiB of holes and reserved ranges inside the kernel's single RAM range", gone>>10)
		} else {
			sum.repair("checked the RAM range against the kernel's own RAM map (e820_table, found through kallsyms): no holes")
		}
		return out
	}
	present, err := mem.PresentSections(info)
	if err != nil {
		sum.warn(noMap+"the RAM range is the kernel's single range [1 MiB, %#x), MMIO holes and reserved ranges included (livedump K-3); neither the kernel's RAM map (%v) nor its memory model could be read: %v", ram[len(ram)-1].End, e820Err, err)
		return ram
	}
	out = elfcore.IntersectRanges(ram, present)
	if len(out) == 0 {
		sum.warn(noMap + "the kernel's present memory sections do not overlap its RAM range; kept the kernel's range")
		return ram
	}
	if gone := elfcore.Covered(ram) - elfcore.Covered(out); gone > 0 {
		sum.repair("left out %d MiB of the kernel's RAM range that no present memory section covers (holes such as the PCI hole), from the kernel's SPARSEMEM sections", gone>>20)
	}
	bits, _ := info.Number("SECTION_SIZE_BITS") // PresentSections needs it, so it is there
	sum.warn(noMap+"RAM ranges come from the kernel's memory sections (%d MiB each), since its RAM map could not be read (%v): smaller holes and reserved ranges inside them are presented as memory and hold whatever the device held", int64(1)<<bits>>20, e820Err)
	return out
}

// lostKeys names the VMCOREINFO lines that did not survive in the notes
// page: the first few, those consumers need most, and how many in all.
func lostKeys(cut, full []byte) string {
	fi, _ := vmcoreinfo.ParseLenient(full)
	ci, _ := vmcoreinfo.ParseLenient(cut)
	lost := vmcoreinfo.Lost(fi, ci)
	if len(lost) == 0 {
		return "no lines (only the tail of the last line was cut)"
	}
	important := map[string]bool{"NUMBER(phys_base)": true, "SYMBOL(init_top_pgt)": true, "KERNELOFFSET": true,
		"NUMBER(pgtable_l5_enabled)": true, "SYMBOL(prb)": true, "CRASHTIME": true, "SYMBOL(swapper_pg_dir)": true, "SYMBOL(mem_section)": true}
	var names []string
	for _, l := range lost {
		if important[l.Key] {
			names = append(names, l.Key)
		}
	}
	s := fmt.Sprintf("%d lost lines", len(lost))
	if len(names) > 0 {
		s += " including " + strings.Join(names, ", ")
	}
	return s
}

// headerMatchesKernel checks page 0 against the kernel the memory is from:
// the kernel-image PT_LOAD must agree with NUMBER(phys_base) and
// KERNELOFFSET. KASLR randomises both at every boot, so a header left on
// the device by a capture in an earlier boot does not match.
func headerMatchesKernel(src *Source, h *livedumpHeader, info *vmcoreinfo.Info) error {
	mismatch := func(what string) error {
		return &InputError{Path: src.Path, Off: h.core.ProgOffset(1),
			What: "page 0 holds a header from another boot than the dumped memory: " + what,
			Hint: "the livedump kernel writes page 0 only at FINISH: this capture did not reach FINISH and the header is an earlier capture's; capture again"}
	}
	if pb, ok := info.Number("phys_base"); ok {
		if got := h.PhysBase(); got != uint64(pb) {
			return mismatch(fmt.Sprintf("its kernel-image PT_LOAD implies phys_base %#x, VMCOREINFO says %#x", got, uint64(pb)))
		}
	}
	if off, ok := info.KernelOffset(); ok {
		if stext, ok := info.Symbol("_stext"); ok && (h.Text.Vaddr > stext || stext-h.Text.Vaddr >= 2<<20) {
			return mismatch(fmt.Sprintf("its kernel image starts at %#x, VMCOREINFO puts _stext at %#x (KERNELOFFSET %#x)", h.Text.Vaddr, stext, off))
		}
	}
	return nil
}

// buildCoreNotes returns one NT_PRSTATUS per CPU: those that survived in
// page 1, and copies of the first for those the one-page limit cut off
// (the v1 module writes the same synthetic registers for every CPU, K-7,
// so the copy loses nothing). pr_pid becomes cpu+1: the kernel puts the
// stop_machine thread's pid in every note, which identifies nothing, and
// drgn maps live-dump CPUs to notes by pr_pid == cpu+1 (QEMU's
// convention; package verify, row C7).
func buildCoreNotes(ni *noteInfo, sum *Report) ([]elfcore.Note, NoteCounts) {
	var counts NoteCounts
	var tmpl *elfcore.PRStatus
	if len(ni.coreNotes) > 0 {
		tmpl, _ = elfcore.ParsePRStatus(ni.coreNotes[0].Desc)
	}
	if tmpl == nil {
		tmpl = &elfcore.PRStatus{}
	}
	notes := make([]elfcore.Note, 0, ni.cpus+1)
	for cpu := range ni.cpus {
		st := tmpl
		if cpu < len(ni.coreNotes) {
			if s, err := elfcore.ParsePRStatus(ni.coreNotes[cpu].Desc); err == nil {
				st = s
				counts.Kept++
			}
		} else {
			counts.Rebuilt++
		}
		c := *st
		c.Pid = uint32(cpu + 1)
		notes = append(notes, c.Note())
	}
	if counts.Rebuilt > 0 {
		sum.repair("rebuilt %d of %d CPU notes cut off by the one-page limit from the first CPU's (the kernel writes identical synthetic registers for all)", counts.Rebuilt, ni.cpus)
	}
	sum.warn("the CPU notes of a live dump are synthetic: only ip (memdump_thread_func) is set and sp is 0, so no tool can unwind the tasks running on the CPUs at capture time; sleeping tasks unwind normally")
	return notes, counts
}

// scanVMCOREINFO looks for the kernel's vmcoreinfo_note page in the dumped
// memory: a page that starts with a VMCOREINFO note header whose text
// begins with what survived in the notes page. It reads all of RAM, so it
// runs only when the manifest does not give the address.
func scanVMCOREINFO(ctx context.Context, src *Source, ram []elfcore.Range, prefix []byte, opt *Options) (uint64, []byte, error) {
	var found uint64
	var text []byte
	err := scanNotePages(ctx, src, src, true, ram, opt, func(pa uint64, t []byte) bool {
		if !bytes.HasPrefix(t, prefix) {
			return false
		}
		found, text = pa, t
		_, complete := crashTime(t)
		return complete
	})
	if err != nil {
		return 0, nil, err
	}
	if text == nil {
		return 0, nil, &InputError{Path: src.Path, Off: -1,
			What: "the VMCOREINFO note was cut off in the notes page and no complete copy was found in the dumped memory",
			Hint: "without VMCOREINFO crash, makedumpfile and drgn cannot use the dump"}
	}
	return found, text, nil
}

// scanNotePages reads all of ram (physical addresses, through phys) and
// calls visit for each page that starts with a VMCOREINFO note, with the
// note's text, until visit returns true. The kernel keeps its note in a
// page of its own (vmcoreinfo_note), so only page starts are looked at.
func scanNotePages(ctx context.Context, src *Source, phys io.ReaderAt, raw bool, ram []elfcore.Range, opt *Options, visit func(pa uint64, text []byte) bool) error {
	total := int64(elfcore.Covered(ram))
	var done int64
	errFound := errors.New("found")
	err := walkMemory(ctx, src, phys, raw, ram, func(pa, n uint64, chunk []byte) error {
		done += int64(n)
		opt.progress("scan", done, total)
		for off := uint64(0); chunk != nil && off+24 <= n; off += pageSize {
			if _, ok := livedump.VMCOREINFOHeader(chunk[off:]); !ok {
				continue
			}
			if t, err := readVMCOREINFONote(phys, pa+off); err == nil && visit(pa+off, t) {
				return errFound
			}
		}
		return nil
	})
	if err == errFound {
		return nil
	}
	return err
}
