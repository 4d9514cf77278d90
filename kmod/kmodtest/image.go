package kmodtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/livedump"
	"ldx/kmod/manifest"
)

// Phase names the livedump state a run stops before. The zero value,
// Complete, is a run that went through FINISH.
type Phase int

const (
	// Complete: INIT, START, SWEEP and FINISH all ran.
	Complete Phase = iota
	// Finish: the run was abandoned after SWEEP (UNINIT from state 3), or
	// FINISH's two requests never reached the disk (K-4). Every selected
	// page was written during SWEEP, pfn 1 included (with the notes,
	// package livedump, "Seen on real runs"); pfn 0 was not.
	Finish
	// Sweep: the run was abandoned after START (package livedump, "Seen
	// on real runs": abandoning works): only the pages START dumped
	// (sensitive pages) and write faults saved are on the device, given
	// by Run.Early. pfn 0 and 1 keep what the device held.
	Sweep
)

func (p Phase) String() string {
	switch p {
	case Complete:
		return "complete"
	case Finish:
		return "before FINISH"
	case Sweep:
		return "before SWEEP"
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// OldRun describes the earlier livedump run whose header and notes pages 0
// and 1 of the device still hold (Run.OldHeader).
type OldRun struct {
	// Start is that run's START time (its CRASHTIME). Zero means one hour
	// before this run.
	Start time.Time
	// CPUs is the number of present CPUs then. Zero means Kernel.CPUs.
	CPUs int
}

// Run is one livedump run and the device it writes to.
type Run struct {
	// DeviceSize is the device's size in bytes. Zero means
	// (MaxPFN+1)·4096 rounded up to 1 MiB, plus 1 MiB. A smaller device
	// than the RAM PT_LOAD is allowed: the kernel's writes past the end
	// fail silently (package livedump, "Placement", K-8) and the Report
	// lists them as PastEnd.
	DeviceSize int64
	// Prepared is what ldx capture did to the device before INIT. The
	// empty value means no ldx capture at all (the kernel's livedump.sh):
	// stale bytes everywhere, headers of earlier runs included.
	// Unprepared ("none") is ldx capture --no-clear: stale bytes, except
	// that capture always clears pages 0 and 1 so that a run that never
	// reached FINISH is recognisable.
	Prepared manifest.Preparation
	// Nonce is the run nonce for Marked pages and the manifest. Zero
	// means the manifest's, else a random one (reported).
	Nonce manifest.Nonce
	// Manifest, if non-nil, is written at manifest.Offset, as ldx capture
	// does before INIT. Zero fields are filled from the Kernel and the Run
	// (a copy is written; the caller's value is not changed).
	Manifest *manifest.Manifest
	// Start is the START time: CRASHTIME. Zero means now.
	Start time.Time
	// PreviousRuns is the number of earlier livedumps in the same boot;
	// each left its CRASHTIME line's length of NULs before CRASHTIME
	// (K-6, package livedump, "Seen on real runs").
	PreviousRuns int
	// Unwritten are RAM ranges the module unselects and so never dumps:
	// its 2×131072 request-buffer pages (1 GiB in real runs), its
	// static state and the wrprotect bitmaps (package livedump,
	// "Placement", "Seen on real runs"). Tests choose them.
	Unwritten []elfcore.Range
	// Lost are pages whose queued copy was never submitted because
	// UNINIT came right after FINISH (package livedump, "Seen on real
	// runs"). Pages 0 and 1 may be listed to emulate K-4's header loss;
	// a lost pfn 1 is not written at all.
	Lost []elfcore.Range
	// Early are the pages START dumped (task structs, stacks, page tables,
	// .data, CPU 0's per-CPU area) and write faults saved before SWEEP.
	// They matter only with StopBefore == Sweep: in any later phase SWEEP
	// writes every selected page anyway.
	Early []elfcore.Range
	// StopBefore is the phase the run never reached; Complete (zero) for
	// a run that went through FINISH.
	StopBefore Phase
	// StaleSeed selects the stale bytes (stalePage) of never-written
	// pages when the device was not cleared.
	StaleSeed uint64
	// OldHeader, if non-nil, means pages 0 and 1 already hold an earlier
	// run's header and notes (K-2: within a boot they look valid). Only
	// possible without ldx capture (Prepared ""), which clears them.
	OldHeader *OldRun
	// Dense makes WriteImage write every byte, zeros included. It is
	// needed when dst may hold data already (a block device, a reused
	// buffer); WriteImage turns it on by itself for an *os.File that is
	// not a regular file.
	Dense bool
}

// Report says what a run wrote, for tests to check a converter against.
type Report struct {
	DeviceSize int64
	// DumpEnd is (MaxPFN+1)·4096, the end of the RAM PT_LOAD.
	DumpEnd uint64
	// Selected are the pages the kernel's bitmap selects at INIT: every
	// pfn below max_pfn that overlaps E820 RAM after trim_bios_range.
	Selected []elfcore.Range
	// Written are the pages this run put on the device, pages 0 and 1
	// included when written. Everything else holds what the device held
	// before (stale bytes, markers or zeros, per Run.Prepared).
	Written []elfcore.Range
	// Unwritten are the selected pages this run did not write (Unwritten,
	// Lost, or never reached because the run stopped early).
	Unwritten []elfcore.Range
	// PastEnd are pages the kernel wrote past the end of the device.
	PastEnd []elfcore.Range
	// HeaderWritten and NotesWritten say whether pages 0 and 1 hold this
	// run's header and notes.
	HeaderWritten, NotesWritten bool
	// Header is this run's page 0 and Notes its complete merged note
	// segment (NotesSize bytes), whether or not they reached the device.
	Header, Notes []byte
	// NotesSize is the PT_NOTE's p_filesz: 356·N + 24 + roundup4(S).
	NotesSize int
	// NotesCut says that the notes do not fit in the one page written (K-1).
	NotesCut bool
	// VMCOREINFO is the run's text: boot text, K-6 NULs, CRASHTIME.
	VMCOREINFO []byte
	// TextKept is how many bytes of VMCOREINFO lie inside page 1
	// (negative when even the note header is cut).
	TextKept int
	// CrashTime is the START time recorded in CRASHTIME.
	CrashTime time.Time
	// Nonce is the run nonce used for markers and the manifest.
	Nonce manifest.Nonce
	// Manifest is the manifest as written, or nil.
	Manifest *manifest.Manifest
}

// WasWritten reports whether this run wrote page pfn.
func (r *Report) WasWritten(pfn uint64) bool { return pagesOf(r.Written).has(pfn) }

// WriteFile creates (or truncates) the file path and writes the image of
// run r into it, sparse.
func WriteFile(path string, k *Kernel, r *Run) (*Report, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	rep, err := WriteImage(f, k, r)
	if cerr := f.Close(); err == nil && cerr != nil {
		return nil, cerr
	}
	return rep, err
}

// chunkPages bounds WriteImage's buffer: 1 MiB, whatever the device size.
const chunkPages = 256

// biosWindow is [0xA0000, 0x100000), the range trim_bios_range removes
// from E820 RAM; pfn 0 is turned into "reserved" by the same function.
var biosWindow = span(livedump.BIOSHoleStart/PageSize, livedump.BIOSHoleEnd/PageSize)

// WriteImage writes the device image that run r of the livedump v1 module
// leaves behind on a device written to by dst, for kernel k.
//
// The image is streamed page by page through a 1 MiB buffer and written
// sparse: runs of zero pages are skipped, not written. dst must therefore
// read as zeros where nothing is written; an *os.File that is a regular
// file is emptied and sized to DeviceSize first, any other *os.File is
// written densely (see Run.Dense).
func WriteImage(dst io.WriterAt, k *Kernel, r *Run) (*Report, error) {
	if r == nil {
		r = &Run{}
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	p, err := newPlan(k, r)
	if err != nil {
		return nil, err
	}
	dense := r.Dense
	if f, ok := dst.(*os.File); ok {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if st.Mode().IsRegular() {
			if err := f.Truncate(0); err != nil {
				return nil, err
			}
			if err := f.Truncate(p.rep.DeviceSize); err != nil {
				return nil, err
			}
		} else {
			dense = true
		}
	}
	if err := p.stream(dst, k, dense); err != nil {
		return nil, err
	}
	return p.rep, nil
}

// A plan is everything decided before the first byte is written.
type plan struct {
	rep       *Report
	r         *Run
	prepared  manifest.Preparation
	devPages  uint64 // pages of the device, the last one possibly partial
	dumpPages uint64 // max_pfn + 1: the pages the RAM PT_LOAD spans from 0
	written   pfnSet // pages this run writes, from Mem or pfn 0/1, within the device
	header    []byte // page 0 of this run, or nil if not written
	notesPage []byte // page 1 of this run, or nil if not written
	oldPages  [2][]byte
	manifest  []byte
	overlays  []overlay // bytes START rewrote in memory before the walk
}

// overlay is memory START changed before the protection walk, so the
// dumped copy of every page it touches has it.
type overlay struct {
	addr uint64
	data []byte
}

func newPlan(k *Kernel, r *Run) (*plan, error) {
	p := &plan{r: r, rep: &Report{}}
	rep := p.rep

	p.prepared = r.Prepared
	if r.Manifest != nil && p.prepared == "" {
		if p.prepared = r.Manifest.Prepared; p.prepared == "" {
			return nil, errors.New("kmodtest: a manifest means ldx capture prepared the device: set Run.Prepared")
		}
	}
	switch p.prepared {
	case "", manifest.Unprepared, manifest.Zeroed, manifest.Marked:
	default:
		return nil, fmt.Errorf("kmodtest: unknown preparation %q", p.prepared)
	}
	if r.OldHeader != nil && p.prepared != "" {
		return nil, fmt.Errorf("kmodtest: Run.OldHeader with Prepared %q: ldx capture clears pages 0 and 1", p.prepared)
	}
	if r.StopBefore < Complete || r.StopBefore > Sweep {
		return nil, fmt.Errorf("kmodtest: bad Run.StopBefore %d", r.StopBefore)
	}
	if r.PreviousRuns < 0 {
		return nil, errors.New("kmodtest: negative Run.PreviousRuns")
	}

	rep.Nonce = r.Nonce
	if rep.Nonce == (manifest.Nonce{}) && r.Manifest != nil {
		rep.Nonce = r.Manifest.Nonce
	}
	if rep.Nonce == (manifest.Nonce{}) {
		rep.Nonce = manifest.NewNonce()
	}

	p.dumpPages = k.MaxPFN + 1
	rep.DumpEnd = p.dumpPages * PageSize
	rep.DeviceSize = r.DeviceSize
	if rep.DeviceSize == 0 {
		rep.DeviceSize = int64((rep.DumpEnd+(1<<20)-1)&^((1<<20)-1)) + 1<<20
	}
	if rep.DeviceSize < 2*PageSize {
		return nil, fmt.Errorf("kmodtest: device of %d bytes cannot hold the header and notes pages", rep.DeviceSize)
	}
	p.devPages = uint64(rep.DeviceSize+PageSize-1) / PageSize

	// Notes and header (package livedump, "Page 0: the header", "Page
	// 1: the notes"), built at START.
	start := r.Start
	if start.IsZero() {
		start = time.Now()
	}
	rep.CrashTime = time.Unix(start.Unix(), 0)
	rep.VMCOREINFO = runText(k.VMCOREINFO, r.PreviousRuns, start.Unix())
	notes, size := mergedNotes(k.CPUs, k.LeaderPid, k.IP, rep.VMCOREINFO)
	rep.Notes, rep.NotesSize = notes[:size], size
	rep.NotesCut = size > PageSize
	rep.TextKept = livedump.TextKept(k.CPUs, len(rep.VMCOREINFO))
	rep.Header = headerPage(k, size)

	// START rewrites the global vmcoreinfo_note
	// (update_vmcoreinfo_note: the note, then final_note's empty
	// header) and every present CPU's crash_notes (the CORE note and
	// its terminator) before the walk, so SWEEP dumps the new contents
	// (package livedump, "Page 1: the notes").
	if k.VMCOREINFONote != 0 {
		d := append(vmcoreinfoNote(rep.VMCOREINFO), make([]byte, 12)...)
		p.overlays = append(p.overlays, overlay{k.VMCOREINFONote, d})
	}
	for cpu, a := range k.CrashNotes {
		if cpu == 0 && r.PreviousRuns == 0 {
			// CPU 0's buffer lies in the first 2 MiB of its
			// per-CPU area, which START dumps as sensitive
			// before crash_save_cpu runs (package livedump,
			// "Page 1: the notes"): its copy is what the buffer
			// held before, i.e. Mem, unless an earlier run of
			// this boot left the same CORE note there.
			continue
		}
		p.overlays = append(p.overlays, overlay{a, append(coreNote(k.LeaderPid, k.IP), make([]byte, 12)...)})
	}

	// Selection at INIT (package livedump, "When pages are written"):
	// pfn < max_pfn overlapping E820 RAM after trim_bios_range (pfn 0
	// reserved, 0xA0-0xFF removed).
	selected := pagesOf(k.RAM).intersect(span(0, k.MaxPFN)).minus(span(0, 1)).minus(biosWindow)
	rep.Selected = selected.byteRanges()
	unselected := pagesOf(r.Unwritten)
	lost := pagesOf(r.Lost)

	var written pfnSet
	switch r.StopBefore {
	case Complete, Finish:
		// SWEEP reached every selected page still set in the
		// bitmap; the pfn 1 request got the note page (package
		// livedump, "Seen on real runs").
		written = selected.minus(unselected)
	case Sweep:
		written = selected.minus(unselected).intersect(pagesOf(r.Early))
	}
	if r.StopBefore == Complete {
		// FINISH queues pfn 0 and pfn 1 whatever the bitmap says.
		written = written.union(span(0, 2))
	}
	written = written.minus(lost)
	rep.Unwritten = selected.minus(written).byteRanges()
	// A bio that does not fit on the device fails as a whole, silently
	// (K-8), so a partial last page is not written either.
	fits := span(0, uint64(rep.DeviceSize)/PageSize)
	rep.PastEnd = written.minus(fits).byteRanges()
	p.written = written.intersect(fits)
	rep.Written = p.written.byteRanges()
	rep.HeaderWritten, rep.NotesWritten = p.written.has(0), p.written.has(1)
	if rep.HeaderWritten {
		p.header = rep.Header
	}
	if rep.NotesWritten {
		p.notesPage = notes[:PageSize]
	}

	if r.OldHeader != nil {
		old := *r.OldHeader
		if old.Start.IsZero() {
			old.Start = start.Add(-time.Hour)
		}
		if old.CPUs == 0 {
			old.CPUs = k.CPUs
		}
		oldText := runText(k.VMCOREINFO, max(r.PreviousRuns-1, 0), old.Start.Unix())
		oldNotes, oldSize := mergedNotes(old.CPUs, k.LeaderPid, k.IP, oldText)
		p.oldPages = [2][]byte{headerPage(k, oldSize), oldNotes[:PageSize]}
	}

	if r.Manifest != nil {
		m := *r.Manifest
		fillManifest(&m, k, p, start)
		enc, err := m.Encode()
		if err != nil {
			return nil, err
		}
		if manifest.Offset+int64(len(enc)) > rep.DeviceSize {
			return nil, fmt.Errorf("kmodtest: device of %d bytes cannot hold the manifest at %#x", rep.DeviceSize, manifest.Offset)
		}
		p.manifest = enc
		rep.Manifest = &m
	}
	return p, nil
}

// fillManifest fills the zero fields of m the way ldx capture would have
// recorded them before INIT.
func fillManifest(m *manifest.Manifest, k *Kernel, p *plan, start time.Time) {
	if m.Version == 0 {
		m.Version = manifest.Version
	}
	if m.Nonce == (manifest.Nonce{}) {
		m.Nonce = p.rep.Nonce
	}
	if m.Time.IsZero() {
		m.Time = start
	}
	if m.PresentCPUs == 0 {
		m.PresentCPUs = k.CPUs
	}
	if m.RAM == nil {
		m.RAM = append([]elfcore.Range(nil), k.RAM...)
	}
	if m.MaxPFN == 0 {
		m.MaxPFN = k.MaxPFN
	}
	if m.VMCOREINFONote == (elfcore.Range{}) && k.VMCOREINFONote != 0 {
		// /sys/kernel/vmcoreinfo prints VMCOREINFO_NOTE_SIZE, not the
		// note's current length.
		m.VMCOREINFONote = elfcore.Range{Start: k.VMCOREINFONote, End: k.VMCOREINFONote + VMCOREINFONoteSize}
	}
	if m.CrashNotes == nil && k.CrashNotes != nil {
		m.CrashNotes = append([]uint64(nil), k.CrashNotes...)
	}
	if m.Prepared == "" {
		m.Prepared = p.prepared
	}
	if m.Device.Size == 0 {
		m.Device.Size = uint64(p.rep.DeviceSize)
	}
}

// preRun fills page with what device page pfn held before the kernel's
// first write: the preparation, then the manifest capture wrote on top.
func (p *plan) preRun(page []byte, pfn uint64) {
	clear(page)
	switch {
	case pfn < 2 && p.r.OldHeader != nil:
		copy(page, p.oldPages[pfn])
	case pfn < 2 && p.prepared != "":
		// ldx capture clears pages 0 and 1 whatever else it does.
	case p.prepared == "" || p.prepared == manifest.Unprepared:
		stalePage(page, p.r.StaleSeed, pfn)
	case p.prepared == manifest.Marked && pfn < p.dumpPages:
		m := manifest.Marker(p.rep.Nonce, pfn)
		copy(page, m[:])
	}
	if p.manifest != nil {
		lo := pfn * PageSize
		mlo := uint64(manifest.Offset)
		if mhi := mlo + uint64(len(p.manifest)); lo < mhi && lo+PageSize > mlo {
			copy(page, p.manifest[lo-mlo:])
		}
	}
}

type pageKind uint8

const (
	kindPre pageKind = iota
	kindMem
	kindHeader
	kindNotes
)

// stream generates the device chunk by chunk and writes it.
func (p *plan) stream(dst io.WriterAt, k *Kernel, dense bool) error {
	buf := make([]byte, chunkPages*PageSize)
	var kinds [chunkPages]pageKind
	wc := cursor{s: p.written}
	size := uint64(p.rep.DeviceSize)
	for base := uint64(0); base < p.devPages; base += chunkPages {
		n := min(uint64(chunkPages), p.devPages-base)
		for i := range n {
			pfn := base + i
			switch {
			case !wc.has(pfn):
				kinds[i] = kindPre
			case pfn == 0:
				kinds[i] = kindHeader
			case pfn == 1:
				kinds[i] = kindNotes
			default:
				kinds[i] = kindMem
			}
		}
		// Memory, one read per run of consecutive dumped pages.
		for i := uint64(0); i < n; {
			if kinds[i] != kindMem {
				i++
				continue
			}
			j := i
			for j < n && kinds[j] == kindMem {
				j++
			}
			at := (base + i) * PageSize
			b := buf[i*PageSize : j*PageSize]
			if got, err := k.Mem.ReadAt(b, int64(at)); got < len(b) {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("kmodtest: reading memory for pfns %#x-%#x: %w", base+i, base+j-1, err)
			}
			i = j
		}
		for _, o := range p.overlays {
			p.applyOverlay(buf, &kinds, base, n, o)
		}
		for i := range n {
			page := buf[i*PageSize : (i+1)*PageSize]
			switch kinds[i] {
			case kindPre:
				p.preRun(page, base+i)
			case kindHeader:
				copy(page, p.header)
			case kindNotes:
				copy(page, p.notesPage)
			}
		}
		if err := writeChunk(dst, buf[:n*PageSize], base*PageSize, size, dense); err != nil {
			return err
		}
	}
	return nil
}

// applyOverlay copies the part of o that falls into dumped memory pages of
// this chunk.
func (p *plan) applyOverlay(buf []byte, kinds *[chunkPages]pageKind, base, n uint64, o overlay) {
	lo, hi := base*PageSize, (base+n)*PageSize
	olo, ohi := o.addr, o.addr+uint64(len(o.data))
	for a := max(lo, olo); a < min(hi, ohi); {
		i := a/PageSize - base
		end := min((a/PageSize+1)*PageSize, ohi)
		if kinds[i] == kindMem {
			copy(buf[a-lo:end-lo], o.data[a-olo:end-olo])
		}
		a = end
	}
}

// writeChunk writes b (device bytes from off), skipping whole zero pages
// unless dense, and never past size.
func writeChunk(dst io.WriterAt, b []byte, off, size uint64, dense bool) error {
	if off+uint64(len(b)) > size {
		b = b[:size-off]
	}
	write := func(lo, hi int) error {
		if _, err := dst.WriteAt(b[lo:hi], int64(off)+int64(lo)); err != nil {
			return fmt.Errorf("kmodtest: writing the image at %#x: %w", off+uint64(lo), err)
		}
		return nil
	}
	if dense {
		return write(0, len(b))
	}
	for i := 0; i < len(b); {
		if elfcore.IsZero(b[i:min(i+PageSize, len(b))]) {
			i += PageSize
			continue
		}
		j := i
		for j < len(b) && !elfcore.IsZero(b[j:min(j+PageSize, len(b))]) {
			j += PageSize
		}
		if err := write(i, min(j, len(b))); err != nil {
			return err
		}
		i = j
	}
	return nil
}
