package extract

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"ldx/elfcore"
	"ldx/kmod/manifest"
)

// Livedump layout constants (package livedump: the device layout).
const (
	notesOffset  = 0x1000   // pfn 1: the first page of the merged notes
	ramStart     = 0x100000 // the kernel's single RAM PT_LOAD starts at 1 MiB
	coreNoteSize = 356      // 12 + 8 ("CORE\0" padded) + 336
)

// InputError reports an input that cannot be turned into a vmcore. It
// names what is wrong and what the user can do; the CLI maps it to its own
// exit code.
type InputError struct {
	Path string
	Off  int64 // byte offset the problem was found at, or -1
	What string
	Hint string
}

func (e *InputError) Error() string {
	s := e.Path + ": "
	if e.Off >= 0 {
		s += fmt.Sprintf("at byte %#x: ", e.Off)
	}
	s += e.What
	if e.Hint != "" {
		s += "\n  " + e.Hint
	}
	return s
}

// livedumpHeader is the kernel's page-0 header as parsed and checked.
type livedumpHeader struct {
	core       *elfcore.File
	note       elfcore.ProgHeader
	text       elfcore.ProgHeader // kernel image PT_LOAD
	ram        elfcore.ProgHeader // the single RAM PT_LOAD [1 MiB, (max_pfn+1)·4096)
	pageOffset uint64             // page_offset_base: p_vaddr − p_paddr of the RAM PT_LOAD
	maxPFN     uint64
}

// isLivedumpLayout reports whether an ELF core has the shape the livedump
// kernel code writes: three program headers, the merged PT_NOTE at 4096,
// PT_LOADs whose file offset is their physical address. Other ELF cores
// (QEMU dumps, /proc/vmcore copies) are normalised instead.
func isLivedumpLayout(f *elfcore.File) bool {
	if f.Phnum != 3 || f.Progs[0].Type != elf.PT_NOTE || f.Progs[0].Off != notesOffset {
		return false
	}
	for _, p := range f.Progs[1:] {
		if p.Type != elf.PT_LOAD || p.Off != p.Paddr {
			return false
		}
	}
	return true
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
	h := &livedumpHeader{core: f, note: f.Progs[0], text: f.Progs[1], ram: f.Progs[2]}
	// The kernel emits the image PT_LOAD before the RAM one; accept either
	// order but tell them apart by address.
	if h.text.Vaddr < elfcore.KernelTextBase && h.ram.Vaddr >= elfcore.KernelTextBase {
		h.text, h.ram = h.ram, h.text
	}
	if h.ram.Paddr != ramStart || h.ram.Memsz < pageSize || h.ram.End()%pageSize != 0 {
		return nil, bad(f.ProgOffset(2), fmt.Sprintf("RAM PT_LOAD [%#x, %#x) is not the kernel's [1 MiB, (max_pfn+1)·4096)", h.ram.Paddr, h.ram.End()), "")
	}
	if h.ram.Vaddr < h.ram.Paddr {
		return nil, bad(f.ProgOffset(2)+16, fmt.Sprintf("RAM PT_LOAD p_vaddr %#x below its p_paddr", h.ram.Vaddr), "")
	}
	h.pageOffset = h.ram.Vaddr - h.ram.Paddr
	h.maxPFN = h.ram.End()/pageSize - 1 // the kernel's range ends one page past max_pfn (package livedump: the device layout)
	if !h.ram.Contains(h.text.Paddr) || h.text.End() > h.ram.End() {
		return nil, bad(f.ProgOffset(1), fmt.Sprintf("kernel image PT_LOAD [%#x, %#x) is not inside RAM", h.text.Paddr, h.text.End()), "")
	}
	if end := int64(h.ram.End()); src.Size < end-pageSize {
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
	case isZero(page0) && man != nil:
		e.What = "no ELF header in page 0: ldx capture cleared it before the run and the kernel never wrote it, so the capture did not reach FINISH"
		e.Hint = "the memory on the device is incomplete; run the capture again (ldx capture reports which step failed)"
	case isZero(page0):
		e.What = "no ELF header in page 0 (the page is all zeros): the livedump kernel writes the header only at FINISH"
		e.Hint = "either the capture did not reach FINISH, or this is not a livedump device; check the capture's output, and that you named the right device"
	default:
		e.What = fmt.Sprintf("no ELF header in page 0 (it starts with % x)", page0[:8])
		e.Hint = "this is not a livedump device or image, or the capture never reached FINISH and page 0 holds what the device held before"
	}
	return e
}

// vmcoreinfoHeader is the note header the kernel writes before the
// VMCOREINFO text: n_namesz 11, n_descsz, n_type 0, "VMCOREINFO\0\0".
func vmcoreinfoNoteHeader(b []byte) (descsz uint32, ok bool) {
	if len(b) < 24 {
		return 0, false
	}
	if binary.LittleEndian.Uint32(b) != 11 || binary.LittleEndian.Uint32(b[8:]) != elfcore.NT_VMCOREINFO {
		return 0, false
	}
	if !bytes.Equal(b[12:24], []byte("VMCOREINFO\x00\x00")) {
		return 0, false
	}
	descsz = binary.LittleEndian.Uint32(b[4:])
	return descsz, descsz > 0 && descsz <= 1<<16
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
	crashTimeP1 string         // CRASHTIME seen in page 1, if it survived
	descsz      int            // n_descsz of the kernel's VMCOREINFO note, -1 if its header was cut
	rebuilt     *rebuilt       // the text was rebuilt from the vmlinux
}

// readNotes parses the written page of notes (pfn 1) and recovers what the
// one-page limit of the kernel cut off (K-1): the complete VMCOREINFO note
// lives in the dumped memory at the kernel's vmcoreinfo_note page (package livedump: the notes),
// found through the manifest or by scanning page starts.
//
// When the complete text is nowhere in the memory either and rebuild is
// set (extract --vmlinux), the text is rebuilt from the vmlinux.
func readNotes(src *Source, h *livedumpHeader, man *manifest.Manifest, scan func(prefix []byte) (uint64, []byte, error), rebuild func(prefix []byte) (*rebuilt, error)) (*noteInfo, error) {
	page := make([]byte, pageSize)
	if _, err := src.ReadAt(page, notesOffset); err != nil {
		return nil, fmt.Errorf("%s: reading the notes page at %#x: %w", src.Path, notesOffset, err)
	}
	ni := &noteInfo{descsz: -1}
	claimed := int(h.note.Filesz)
	if h.note.Filesz > 1<<24 {
		return nil, &InputError{Path: src.Path, Off: h.core.ProgOffset(0) + 32, What: fmt.Sprintf("PT_NOTE p_filesz %#x is absurd", h.note.Filesz)}
	}
	ni.truncated = claimed > pageSize
	written := page[:min(claimed, pageSize)]
	notes, perr := elfcore.ParseNotes(written, notesOffset)
	for _, n := range notes {
		if !n.Is(elfcore.NameCore, elfcore.NT_PRSTATUS) {
			break // the CORE notes come first; the VMCOREINFO note is handled below
		}
		ni.coreNotes = append(ni.coreNotes, n)
	}
	// A walk that stops inside the page, other than in the VMCOREINFO
	// note the one-page limit cuts, means the page itself is damaged.
	if fe, ok := perr.(*elfcore.FormatError); ok && len(notes) == len(ni.coreNotes) {
		if _, isV := vmcoreinfoNoteHeader(written[min(len(ni.coreNotes)*coreNoteSize, len(written)):]); !isV {
			ni.damage = fe
		}
	}
	// Where does the VMCOREINFO note start? After the complete CORE notes.
	vOff := len(ni.coreNotes) * coreNoteSize
	var prefix []byte
	descsz, haveHdr := vmcoreinfoNoteHeader(written[min(vOff, len(written)):])
	if haveHdr {
		ni.descsz = int(descsz)
		text := written[vOff+24:]
		if int(descsz) <= len(text) {
			text = text[:descsz]
		}
		prefix = text
		ni.survived = len(text)
		ni.prefix = text
		if i := bytes.Index(text, []byte("\nCRASHTIME=")); i >= 0 {
			if j := bytes.IndexByte(text[i+1:], '\n'); j >= 0 {
				ni.crashTimeP1 = string(text[i+11 : i+1+j])
			}
		}
		if int(descsz) <= len(written)-vOff-24 {
			ni.vmcoreinfo = bytes.Clone(text)
			ni.vmciSource = "the notes page (complete)"
		}
		// Page 0 is written only at FINISH, page 1 also during SWEEP: a
		// run stopped before FINISH leaves an earlier run's header next
		// to this run's notes (package livedump: what real runs showed). The header's note size must be the
		// kernel's formula for the notes page 1 actually holds.
		if want := len(ni.coreNotes)*coreNoteSize + 24 + (int(descsz)+3)&^3; want != claimed {
			return nil, &InputError{Path: src.Path, Off: h.core.ProgOffset(0) + 32,
				What: fmt.Sprintf("the header's PT_NOTE size %d does not match the notes page (%d CPU notes and %d bytes of VMCOREINFO make %d): page 0 holds a header from another run than page 1",
					claimed, len(ni.coreNotes), descsz, want),
				Hint: "the livedump kernel writes page 0 only at FINISH: this capture most likely stopped before FINISH and its memory may be incomplete; capture again"}
		}
	}
	// CPU count: the manifest knows it; otherwise the claimed note size
	// does (356·N + 24 + roundup4(S); package livedump: the notes) once S is known.
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
	if rest := claimed - 24 - (s+3)&^3; s >= 0 && rest >= 0 && rest%coreNoteSize == 0 {
		ni.cpus = rest / coreNoteSize
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
// copy is complete (package livedump: the notes, and what real runs showed). The candidate must begin
// with the text that survived in page 1, so a stale copy cannot be taken
// for it.
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
	descsz, ok := vmcoreinfoNoteHeader(buf[:n])
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

// crashTime extracts CRASHTIME from VMCOREINFO text, if present.
func crashTime(text []byte) (time.Time, bool) {
	i := bytes.Index(text, []byte("CRASHTIME="))
	if i < 0 || (i > 0 && text[i-1] != '\n' && text[i-1] != 0) {
		return time.Time{}, false
	}
	v := text[i+10:]
	if j := bytes.IndexByte(v, '\n'); j >= 0 {
		v = v[:j]
	}
	sec, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, 0).UTC(), true
}
