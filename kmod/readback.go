package kmod

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/elfcore/livedump"
	"ldx/kmod/manifest"
	"ldx/vmcoreinfo"
)

// Readback is what the header and notes pages held after the run.
type Readback struct {
	// CPUNotes is the number of CORE notes in the notes page.
	CPUNotes int
	// NotesSize is the PT_NOTE's size; NotesCut says it is larger than
	// the one page the kernel writes (K-1: extract recovers the rest).
	NotesSize uint64
	NotesCut  bool
	// Release is OSRELEASE from the notes page, when it survived.
	Release string
	// CrashTime is CRASHTIME (the START time), when it survived the cut.
	CrashTime *time.Time
	// PageOffset is the RAM PT_LOAD's p_vaddr − p_paddr.
	PageOffset uint64
}

// ErrNoHeader means page 0 still holds what ldx put there: the kernel's
// header, queued at FINISH, never reached the device.
var ErrNoHeader = errors.New("page 0 holds no ELF header: the header FINISH queues never reached the device")

// checkReadback reads pages 0 and 1 and the manifest of the device around
// the page cache and checks them against the manifest: the header must
// be this kernel's livedump header for this machine's top of RAM (see
// package livedump, "Telling runs and boots apart"),
// the notes this run's (CPU notes, OSRELEASE, a CRASHTIME not before the
// capture began), and the manifest intact.
func checkReadback(path string, m *manifest.Manifest, pageOffset uint64) (*Readback, error) {
	pages, err := readDirect(path, 0, 2*pageSize)
	if err != nil {
		return nil, err
	}
	if elfcore.IsZero(pages[:pageSize]) {
		return nil, ErrNoHeader
	}
	f, err := elfcore.NewFile(bytes.NewReader(pages), int64(len(pages)))
	if err != nil {
		return nil, fmt.Errorf("page 0: %w", err)
	}
	rb := &Readback{}
	if f.Type != elf.ET_CORE || f.Machine != elf.EM_X86_64 || !livedump.HasMergedNote(f) {
		return nil, fmt.Errorf("page 0 is not a livedump header: %v %v with %d program headers", f.Type, f.Machine, f.Phnum)
	}
	var ram, text *elfcore.ProgHeader
	for i := 1; i < 3; i++ {
		p := &f.Progs[i]
		switch {
		case p.Type != elf.PT_LOAD:
		case p.Paddr == livedump.RAMStart && p.Vaddr < x86.KernelTextBase:
			ram = p
		case p.Vaddr >= x86.KernelTextBase:
			text = p
		}
	}
	if ram == nil || text == nil {
		return nil, errors.New("page 0: the header lacks the kernel-image or the RAM PT_LOAD")
	}
	if want := livedump.RAMEnd(m.MaxPFN); ram.End() != want {
		return nil, fmt.Errorf("page 0: the header's RAM ends at %#x, this machine's at %#x (max_pfn %#x): the header is not this run's", ram.End(), want, m.MaxPFN)
	}
	rb.PageOffset = ram.Vaddr - ram.Paddr
	if pageOffset != 0 && rb.PageOffset != pageOffset {
		return nil, fmt.Errorf("page 0: the direct map in the header starts at %#x, the kernel's at %#x", rb.PageOffset, pageOffset)
	}
	rb.NotesSize = f.Progs[0].Filesz
	rb.NotesCut = rb.NotesSize > pageSize
	notes, _ := elfcore.ParseNotes(pages[livedump.NotesOffset:livedump.NotesOffset+min(rb.NotesSize, livedump.PageSize)], livedump.NotesOffset)
	var vmci []byte
	for _, n := range notes {
		switch {
		case n.Is("CORE", elfcore.NT_PRSTATUS):
			rb.CPUNotes++
		case n.Is("VMCOREINFO", 0):
			vmci = n.Desc
		}
	}
	if rb.CPUNotes == 0 {
		return nil, errors.New("page 1 holds no CPU notes: the notes are not this run's")
	}
	if want := min(m.PresentCPUs, livedump.MaxCoreNotesWritten); m.PresentCPUs > 0 && rb.CPUNotes < want {
		return nil, fmt.Errorf("page 1 holds %d CPU notes, want %d (present CPUs)", rb.CPUNotes, want)
	}
	if vmci == nil {
		// The VMCOREINFO header lies in the page up to 11 CPUs (K-1);
		// ParseNotes stops at it when its text is cut, so look for it.
		if i := bytes.Index(pages[pageSize:], []byte("VMCOREINFO\x00\x00OSRELEASE=")); i >= 0 {
			vmci = pages[pageSize+i+12:]
		}
	}
	if vmci != nil {
		info, _ := vmcoreinfo.ParseLenient(vmci)
		rb.Release, _ = info.OSRelease()
		if m.Release != "" && rb.Release != "" && rb.Release != m.Release {
			return nil, fmt.Errorf("page 1: the notes say OSRELEASE=%s, the running kernel is %s", rb.Release, m.Release)
		}
		if t, ok := info.CrashTime(); ok {
			rb.CrashTime = &t
			if t.Before(m.Time.Add(-time.Minute)) {
				return nil, fmt.Errorf("page 1: CRASHTIME %s is before this capture began (%s): the notes are an older run's", t.Format(time.RFC3339), m.Time.Format(time.RFC3339))
			}
		}
	}
	back, err := manifest.Read(&directReaderAt{path})
	if err != nil {
		return nil, fmt.Errorf("the capture manifest: %w", err)
	}
	if back.Nonce != m.Nonce {
		return nil, fmt.Errorf("the capture manifest on the device is run %s, not this run (%s)", back.Nonce, m.Nonce)
	}
	return rb, nil
}

// directReaderAt reads a path around the page cache.
type directReaderAt struct{ path string }

func (r *directReaderAt) ReadAt(p []byte, off int64) (int, error) {
	b, err := readDirect(r.path, off, len(p))
	if err != nil {
		return 0, err
	}
	return copy(p, b), nil
}
