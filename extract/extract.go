// Package extract turns a livedump block device (or an image of one, or
// another ELF vmcore) into a compact ELF vmcore that crash, makedumpfile
// and drgn open.
//
// The livedump v1 kernel code writes memory page by page at byte offset =
// physical address, page 0 an ELF header, page 1 the first 4 KiB of the
// notes (the format: package livedump). What it gets wrong (its defects
// K-1 …) is repaired here: VMCOREINFO cut at one page is recovered from
// the dumped memory; CPU notes lost with it are rebuilt; the single RAM
// range over MMIO holes and one page past RAM is replaced by the
// capture-time RAM map; pages the kernel never wrote are presented as
// zeros, never as the stale bytes the device held; all-zero memory is not
// stored. Everything repaired is said in the Summary.
package extract

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kmem"
	"ldx/elfcore/livedump"
	"ldx/elfcore/vmlinux"
	"ldx/kmod/manifest"
	"ldx/vmcoreinfo"

	"golang.org/x/sys/unix"
)

// Options configure an extraction.
type Options struct {
	Input  string // block device, raw image, xz-compressed raw image, or ELF vmcore
	Output string
	Force  bool // replace an existing output

	// TempDir receives the decompressed copy of an xz input (default: the
	// output's directory).
	TempDir string

	// Progress, if set, is called as work advances.
	Progress func(Progress)

	// Vmlinux, if set, is the dumped kernel's debug vmlinux: when the
	// dump's VMCOREINFO cannot be recovered from the dumped memory, it is
	// rebuilt from the vmlinux and the memory (and the summary says so).
	Vmlinux *vmlinux.File
}

// Progress reports how far a phase has got.
type Progress struct {
	Phase       string // "decompress", "scan", "copy"
	Done, Total int64  // bytes
}

// Summary says what extract read, wrote, repaired and could not repair.
type Summary struct {
	Input      string        `json:"input"`
	InputKind  SourceKind    `json:"input_kind"`
	InputSize  int64         `json:"input_size"`
	Format     string        `json:"format"`
	Output     string        `json:"output"`
	Release    string        `json:"release,omitempty"`
	CPUs       int           `json:"cpus"`
	CrashTime  *time.Time    `json:"crash_time,omitempty"`
	Manifest   bool          `json:"manifest"`
	Prepared   string        `json:"device_prepared,omitempty"`
	VMCOREINFO string        `json:"vmcoreinfo_source"`
	CPUNotes   NoteCounts    `json:"cpu_notes"`
	Segments   int           `json:"segments"`
	RAMRanges  int           `json:"ram_ranges"`
	Memory     uint64        `json:"memory_bytes"`      // memory the PT_LOADs cover
	Read       uint64        `json:"read_bytes"`        // bytes read from the input
	Written    uint64        `json:"written_bytes"`     // data bytes written
	OutputSize int64         `json:"output_size"`       // apparent size of the vmcore
	OnDisk     int64         `json:"output_disk_bytes"` // blocks it takes: zero pages are holes
	ZeroPages  uint64        `json:"zero_pages"`        // not stored
	Unwritten  uint64        `json:"unwritten_pages"`
	Repairs    []string      `json:"repairs"`
	Warnings   []string      `json:"warnings"`
	Duration   time.Duration `json:"duration_ns"`
}

// NoteCounts counts CPU notes.
type NoteCounts struct {
	Kept    int `json:"kept"`
	Rebuilt int `json:"rebuilt"`
}

func (s *Summary) repair(format string, a ...any) {
	s.Repairs = append(s.Repairs, fmt.Sprintf(format, a...))
}
func (s *Summary) warn(format string, a ...any) {
	s.Warnings = append(s.Warnings, fmt.Sprintf(format, a...))
}

func (o *Options) defaults() {
	if o.TempDir == "" {
		o.TempDir = tempDirFor(o.Output)
	}
}

func (o *Options) progress(phase string, done, total int64) {
	if o.Progress != nil {
		o.Progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

// plan is what analysis decided: where memory is, what the notes are.
type plan struct {
	phys       io.ReaderAt // physical memory, by physical address
	raw        bool        // phys is the input itself (offset = physical address)
	ram        []manifest.Range
	image      manifest.Range // kernel image, page-aligned
	imageVirt  uint64
	pageOffset uint64
	notes      []elfcore.Note
	unwritten  func(pfn uint64, page []byte) bool // a page the kernel never wrote
}

// Run performs an extraction.
func Run(ctx context.Context, opt Options) (sum *Summary, err error) {
	start := time.Now()
	opt.defaults()
	sum = &Summary{Input: opt.Input, Output: opt.Output, Repairs: []string{}, Warnings: []string{}}
	src, err := OpenSource(ctx, opt.Input, opt.TempDir, func(d, t int64) { opt.progress("decompress", d, t) })
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return sum, err
		}
		return sum, &InputError{Path: opt.Input, Off: -1, What: err.Error()}
	}
	defer src.Close()
	sum.InputKind, sum.InputSize = src.Kind, src.Size

	out, err := createOutput(opt.Output, opt.Force, src)
	if err != nil {
		return sum, err
	}
	defer func() {
		if err != nil {
			out.abort()
		}
	}()

	p, err := analyse(ctx, src, &opt, sum)
	if err != nil {
		return sum, err
	}
	if err := write(ctx, src, out, p, &opt, sum); err != nil {
		return sum, err
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

// analyse reads the headers, the manifest and the notes, and decides the
// layout of the output.
func analyse(ctx context.Context, src *Source, opt *Options, sum *Summary) (*plan, error) {
	man, err := manifest.Read(src)
	switch {
	case errors.Is(err, manifest.ErrNone):
		man = nil
	case err != nil:
		sum.warn("ignoring the capture manifest: %v", err)
		man = nil
	}
	if man != nil {
		sum.Manifest, sum.Prepared = true, string(man.Prepared)
		if err := checkCaptureStatus(src, man, sum); err != nil {
			return nil, err
		}
	}
	page0 := make([]byte, pageSize)
	if n, err := src.ReadAt(page0, 0); n < pageSize {
		return nil, &InputError{Path: src.Path, Off: int64(n), What: fmt.Sprintf("the input is only %d bytes; a livedump device holds at least the header and notes pages (%v)", src.Size, err)}
	}
	core, err := elfcore.NewFile(src, src.Size)
	if errors.Is(err, elfcore.ErrNotELF) {
		return nil, noHeaderError(src, page0, man)
	}
	if err != nil {
		return nil, &InputError{Path: src.Path, Off: -1, What: err.Error()}
	}
	if !livedump.IsLayout(core) {
		sum.Format = "ELF vmcore"
		return planELF(ctx, src, core, opt, sum)
	}
	sum.Format = "livedump raw device"
	return planLivedump(ctx, src, core, man, opt, sum)
}

func planLivedump(ctx context.Context, src *Source, core *elfcore.File, man *manifest.Manifest, opt *Options, sum *Summary) (*plan, error) {
	h, err := checkLivedumpHeader(src, core)
	if err != nil {
		return nil, err
	}
	p := &plan{phys: src, raw: true, pageOffset: h.PageOffset()}
	p.image = manifest.Range{Start: pageDown(h.Text.Paddr), End: pageUp(h.Text.End())}
	p.imageVirt = h.Text.Vaddr - (h.Text.Paddr - p.image.Start)

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
		p.ram = clipRanges(man.RAM, livedump.RAMStart, kernelEnd)
		if len(p.ram) == 0 {
			return nil, &InputError{Path: src.Path, Off: manifest.Offset, What: "the capture manifest's RAM map has no RAM inside the dumped range"}
		}
		holes := (kernelEnd - livedump.RAMStart) - covered(clipRanges(p.ram, livedump.RAMStart, kernelEnd))
		if holes > 0 {
			sum.repair("split the kernel's single RAM range into %d RAM ranges from the capture-time memory map; %d MiB of holes and reserved ranges are not presented as memory", len(p.ram), holes>>20)
		}
	} else {
		p.ram = []manifest.Range{{Start: livedump.RAMStart, End: kernelEnd}}
	}
	sum.RAMRanges = len(p.ram)

	// Pages the kernel never wrote.
	switch {
	case man != nil && man.Prepared == manifest.Marked:
		nonce := man.Nonce
		p.unwritten = func(pfn uint64, page []byte) bool { return manifest.IsMarker(page, nonce, pfn) }
	case man != nil && man.Prepared == manifest.Zeroed:
		// Never-written pages read as zeros and are not stored.
	default:
		sum.warn("the device was not cleared or marked before the capture: pages the kernel did not write (its own 1 GiB of buffers, holes, dropped pages) hold whatever the device held before and cannot be told from memory")
	}

	// Notes.
	scan := func(prefix []byte) (uint64, []byte, error) {
		return scanVMCOREINFO(ctx, src, p.ram, prefix, opt)
	}
	var rebuild func(prefix []byte) (*rebuilt, error)
	if opt.Vmlinux != nil {
		rebuild = func(prefix []byte) (*rebuilt, error) {
			return rebuildVMCOREINFO(ctx, src, p.ram, opt.Vmlinux, prefix)
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
		if ni.crashTimeP1 != "" {
			if t1, _ := crashTime([]byte("CRASHTIME=" + ni.crashTimeP1 + "\n")); !t1.Equal(t) {
				sum.warn("the notes page says CRASHTIME %s but the kernel's note in memory %s: the header and notes pages are from another run than the memory", t1.Format(time.RFC3339), t.Format(time.RFC3339))
			}
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
		p.ram = kernelMemoryModel(src, h, info, p.ram, sum)
		sum.RAMRanges = len(p.ram)
	}
	p.notes, sum.CPUNotes = buildCoreNotes(ni, sum)
	p.notes = append(p.notes, elfcore.Note{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: vmci})
	return p, nil
}

// checkCaptureStatus applies what ldx capture recorded about how the run
// ended: the kernel leaves no completion marker (K-2), so the manifest is
// the only witness.
func checkCaptureStatus(src *Source, man *manifest.Manifest, sum *Summary) error {
	switch man.Status {
	case manifest.StatusIncomplete:
		detail := man.StatusDetail
		if detail == "" {
			detail = "no detail recorded"
		}
		return &InputError{Path: src.Path, Off: manifest.Offset,
			What: "the capture manifest says this capture is incomplete: " + detail,
			Hint: "the memory on the device is not a whole dump; capture again"}
	case manifest.StatusRunning:
		sum.warn("the capture manifest still says the capture was running: ldx capture was stopped before it could confirm the dump (pages written after FINISH may be missing)")
	}
	if man.FailedPages != nil && *man.FailedPages > 0 {
		sum.warn("the kernel reported %d pages it could not save (its failed counter); they hold whatever the device held before, as prepared (%s)", *man.FailedPages, man.Prepared)
	}
	return nil
}

// kernelMemoryModel narrows the kernel's single RAM range when there is no
// capture manifest, using the kernel's own view of memory in the dump: the
// SPARSEMEM sections it marks present. That removes holes of a section
// (128 MiB) or more, like the PCI hole below 4 GiB; smaller holes and
// reserved ranges inside a present section stay, and are warned about.
func kernelMemoryModel(src *Source, h *livedumpHeader, info *vmcoreinfo.Info, ram []manifest.Range, sum *Summary) []manifest.Range {
	const noMap = "no ldx capture manifest on the input: "
	params, err := kmem.ParamsFrom(info, nil)
	var sections [][2]uint64
	if err == nil {
		var mem *kmem.Mem
		if mem, err = kmem.New(src, params); err == nil {
			sections, err = mem.PresentSections(info)
		}
	}
	if err != nil {
		sum.warn(noMap+"the RAM range is the kernel's single range [1 MiB, %#x), MMIO holes and reserved ranges included (livedump K-3); the kernel's memory model could not be read either: %v", ram[len(ram)-1].End, err)
		return ram
	}
	var present []manifest.Range
	for _, s := range sections {
		present = append(present, manifest.Range{Start: s[0], End: s[1]})
	}
	out := intersectRanges(ram, present)
	if len(out) == 0 {
		sum.warn(noMap + "the kernel's present memory sections do not overlap its RAM range; kept the kernel's range")
		return ram
	}
	if gone := covered(ram) - covered(out); gone > 0 {
		sum.repair("left out %d MiB of the kernel's RAM range that no present memory section covers (holes such as the PCI hole), from the kernel's SPARSEMEM sections", gone>>20)
	}
	bits, _ := info.Number("SECTION_SIZE_BITS") // PresentSections needs it, so it is there
	sum.warn(noMap+"RAM ranges come from the kernel's memory sections (%d MiB each): smaller holes and reserved ranges inside them are presented as memory and hold whatever the device held", int64(1)<<bits>>20)
	return out
}

// intersectRanges returns the parts of a that lie in b (both sorted).
func intersectRanges(a, b []manifest.Range) []manifest.Range {
	var out []manifest.Range
	for _, x := range a {
		for _, y := range b {
			s, e := max(x.Start, y.Start), min(x.End, y.End)
			if s < e {
				out = append(out, manifest.Range{Start: s, End: e})
			}
		}
	}
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
// convention, package verify, row C7).
func buildCoreNotes(ni *noteInfo, sum *Summary) ([]elfcore.Note, NoteCounts) {
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
func scanVMCOREINFO(ctx context.Context, src *Source, ram []manifest.Range, prefix []byte, opt *Options) (uint64, []byte, error) {
	total := int64(covered(ram))
	var done int64
	var found uint64
	var text []byte
	errFound := errors.New("found")
	err := walkMemory(ctx, src, src, true, ram, func(pa, n uint64, chunk []byte) error {
		done += int64(n)
		opt.progress("scan", done, total)
		for off := uint64(0); chunk != nil && off+24 <= n; off += pageSize {
			if _, ok := livedump.VMCOREINFOHeader(chunk[off:]); !ok {
				continue
			}
			t, err := readVMCOREINFONote(src, pa+off)
			if err != nil || !bytes.HasPrefix(t, prefix) {
				continue
			}
			found, text = pa+off, t
			if _, ok := crashTime(t); ok {
				return errFound
			}
		}
		return nil
	})
	if err != nil && err != errFound {
		return 0, nil, err
	}
	if text == nil {
		return 0, nil, &InputError{Path: src.Path, Off: -1,
			What: "the VMCOREINFO note was cut off in the notes page and no complete copy was found in the dumped memory",
			Hint: "without VMCOREINFO crash, makedumpfile and drgn cannot use the dump"}
	}
	return found, text, nil
}

// write streams memory into the output and writes the headers.
func write(ctx context.Context, src *Source, out *output, p *plan, opt *Options, sum *Summary) error {
	notes := elfcore.EncodeNotes(p.notes)
	// One PT_LOAD per RAM range, two more around the kernel image, and
	// the image's own.
	w := elfcore.NewWriter(out, elf.EM_X86_64, len(p.ram)+3, notes)
	seg := newSegmenter(out, uint64(w.DataOffset()), p.pageOffset, p.image)
	total := int64(covered(p.ram))
	var done int64
	var last time.Time
	for _, r := range p.ram {
		seg.beginRange(r)
		err := walkMemory(ctx, src, p.phys, p.raw, []manifest.Range{r}, func(pa, n uint64, chunk []byte) error {
			if chunk != nil {
				sum.Read += n
			}
			for off := uint64(0); off < n; off += pageSize {
				var page []byte
				if chunk != nil {
					page = chunk[off:min(n, off+pageSize)]
					if isZero(page) {
						page = nil
					} else if p.unwritten != nil && p.unwritten((pa+off)/pageSize, page) {
						sum.Unwritten++
						page = nil
					}
				}
				if err := seg.page(pa+off, page); err != nil {
					return err
				}
			}
			done += int64(n)
			if now := time.Now(); now.Sub(last) > 100*time.Millisecond {
				opt.progress("copy", done, total)
				last = now
			}
			return nil
		})
		if err != nil {
			return err
		}
		seg.endRange(r)
	}
	opt.progress("copy", total, total)
	segs, end := seg.finish()
	if img, ok := seg.imageSegment(p.imageVirt); ok {
		img.Flags = elf.PF_R | elf.PF_W | elf.PF_X
		if err := w.AddLoad(img); err != nil {
			return err
		}
	} else {
		sum.warn("the kernel image [%#x, %#x) is not in the RAM map: no kernel-image PT_LOAD (crash and makedumpfile then need NUMBER(phys_base))", p.image.Start, p.image.End)
	}
	for _, s := range segs {
		s.Flags = elf.PF_R | elf.PF_W | elf.PF_X
		if err := w.AddLoad(s); err != nil {
			return err
		}
	}
	if err := w.Finish(); err != nil {
		return err
	}
	size := int64(max(end, uint64(w.DataOffset())))
	if err := out.commit(size); err != nil {
		return err
	}
	sum.Segments = len(segs)
	sum.Memory = covered(p.ram)
	sum.Written = seg.written
	sum.ZeroPages = seg.zeroPages - sum.Unwritten
	sum.OutputSize = size
	var st unix.Stat_t
	if unix.Stat(out.final, &st) == nil {
		sum.OnDisk = st.Blocks * 512
	}
	return nil
}

// clipRanges returns the page-aligned parts of ranges inside [lo, hi):
// starts rounded down and ends rounded up, since the kernel dumps every
// page a RAM range overlaps (e820__mapped_any).
func clipRanges(ranges []manifest.Range, lo, hi uint64) []manifest.Range {
	var out []manifest.Range
	sorted := slices.Clone(ranges)
	slices.SortFunc(sorted, func(a, b manifest.Range) int { return cmpU64(a.Start, b.Start) })
	for _, r := range sorted {
		s, e := max(pageDown(r.Start), lo), min(pageUp(r.End), hi)
		if s >= e {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End >= s {
			out[n-1].End = max(out[n-1].End, e)
			continue
		}
		out = append(out, manifest.Range{Start: s, End: e})
	}
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func covered(ranges []manifest.Range) uint64 {
	var n uint64
	for _, r := range ranges {
		n += r.End - r.Start
	}
	return n
}
