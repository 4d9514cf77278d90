package livedump

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"ldx/elfcore/kernel/x86"

	"ldx/elfcore"
)

// Where things are on the device (byte offset = physical address).
const (
	// PageSize is the unit of every write: one 4 KiB page per bio.
	PageSize = 4096
	// HeaderOffset is pfn 0: the ELF header, written only at FINISH.
	HeaderOffset = 0
	// NotesOffset is pfn 1: the first page of the merged notes, the
	// PT_NOTE's p_offset. It is the only page of notes ever written (K-1).
	NotesOffset = 0x1000
	// NotesEnd is the end of that page: bytes of the PT_NOTE at or past
	// it are low memory or stale data, not notes.
	NotesEnd = NotesOffset + PageSize
	// BIOSHoleStart and BIOSHoleEnd bound [640 KiB, 1 MiB), which
	// trim_bios_range removes from E820 RAM: the kernel never writes
	// there (ldx capture keeps its manifest at BIOSHoleStart).
	BIOSHoleStart = 0xA0000
	BIOSHoleEnd   = 0x100000
	// RAMStart is SZ_1M, where the kernel's single RAM PT_LOAD starts;
	// nothing below it is covered by the header.
	RAMStart = 0x100000
)

// The notes the kernel merges into page 1.
const (
	// PRStatusSize is sizeof(struct elf_prstatus) on x86_64: the
	// descriptor of a CORE note.
	PRStatusSize = 336
	// CoreNoteSize is one CPU's "CORE"/NT_PRSTATUS note in the merged
	// notes: 12 bytes of header, "CORE\0" padded to 8, the descriptor.
	// note_buf_t's 12-byte empty terminator is not copied by the merge.
	CoreNoteSize = 12 + 8 + PRStatusSize
	// VMCOREINFOHeaderSize is the VMCOREINFO note's header and name:
	// 12 bytes, then "VMCOREINFO\0" padded to 12. The text follows.
	VMCOREINFOHeaderSize = 12 + 12
	// MaxCoreNotesWritten is how many whole CORE notes fit in the one
	// page written (11): from 12 present CPUs on, CORE notes are cut too
	// and the VMCOREINFO note header is lost (K-1).
	MaxCoreNotesWritten = PageSize / CoreNoteSize
	// MaxVMCOREINFOSize bounds the n_descsz accepted from a VMCOREINFO
	// note header (the kernel's text is at most one page).
	MaxVMCOREINFOSize = 1 << 16
)

// NotesSize is the size the merged PT_NOTE claims (its p_filesz):
// 356·N + 24 + roundup4(S) for N present CPUs and a VMCOREINFO text of S
// bytes (CRASHTIME and any K-6 NULs included).
func NotesSize(cpus, textLen int) int {
	return CoreNoteSize*cpus + VMCOREINFOHeaderSize + roundup4(textLen)
}

// CPUs inverts NotesSize: the number of CPU notes a PT_NOTE of notesSize
// bytes holds beside a VMCOREINFO text of textLen bytes. ok is false when
// textLen is negative (not known) or no whole number of CPU notes fits.
func CPUs(notesSize, textLen int) (cpus int, ok bool) {
	rest := notesSize - VMCOREINFOHeaderSize - roundup4(textLen)
	if textLen < 0 || rest < 0 || rest%CoreNoteSize != 0 {
		return 0, false
	}
	return rest / CoreNoteSize, true
}

// VMCOREINFOOffset is where the VMCOREINFO note starts in the merged
// notes, after the CORE notes of cpus CPUs.
func VMCOREINFOOffset(cpus int) int { return CoreNoteSize * cpus }

// TextKept is how many bytes of a VMCOREINFO text of textLen bytes lie in
// the one page of notes written (K-1): text byte e survives iff
// 356·N + 24 + e < 4096. It is negative when the note header itself is cut
// (N ≥ 12).
func TextKept(cpus, textLen int) int {
	return min(textLen, PageSize-VMCOREINFOOffset(cpus)-VMCOREINFOHeaderSize)
}

// MergedHeaderSize is the size of the ELF header buffer after the notes
// are merged, for the possible and present CPU counts; FINISH copies it
// into pfn 0's single page, so anything larger than PageSize overflows
// (K-10). The buffer is sized for the possible CPUs (one PT_NOTE each, the
// VMCOREINFO PT_NOTE and two PT_LOADs) and the merge removes one program
// header per present CPU.
func MergedHeaderSize(possible, present int) uint64 {
	buf := roundPage(64 + 56*uint64(possible+3))
	return roundPage(buf - min(buf, 56*uint64(present)))
}

// VMCOREINFOHeader recognises the note header the kernel writes before the
// VMCOREINFO text (n_namesz 11, n_type 0, "VMCOREINFO\0\0") at the start
// of b, and returns its n_descsz, the text length. ok is false when b does
// not start with that header or n_descsz is 0 or absurd.
func VMCOREINFOHeader(b []byte) (descsz uint32, ok bool) {
	if len(b) < VMCOREINFOHeaderSize {
		return 0, false
	}
	if binary.LittleEndian.Uint32(b) != 11 || binary.LittleEndian.Uint32(b[8:]) != elfcore.NT_VMCOREINFO {
		return 0, false
	}
	if !bytes.Equal(b[12:24], []byte("VMCOREINFO\x00\x00")) {
		return 0, false
	}
	descsz = binary.LittleEndian.Uint32(b[4:])
	return descsz, descsz > 0 && descsz <= MaxVMCOREINFOSize
}

// HasMergedNote reports whether an ELF header has the kernel's three
// program headers with the merged PT_NOTE first, at NotesOffset.
func HasMergedNote(f *elfcore.File) bool {
	return f.Phnum == 3 && f.Progs[0].Type == elf.PT_NOTE && f.Progs[0].Off == NotesOffset
}

// IsLayout reports whether an ELF core has the shape the livedump kernel
// code writes: HasMergedNote, and PT_LOADs whose file offset is their
// physical address. Other ELF cores (QEMU dumps, /proc/vmcore copies,
// ldx's own output) do not.
func IsLayout(f *elfcore.File) bool {
	if !HasMergedNote(f) {
		return false
	}
	for _, p := range f.Progs[1:] {
		if p.Type != elf.PT_LOAD || p.Off != p.Paddr {
			return false
		}
	}
	return true
}

// Header is page 0 as the kernel writes it: the merged PT_NOTE, the
// kernel-image PT_LOAD and the single RAM PT_LOAD.
type Header struct {
	Notes elfcore.ProgHeader
	Text  elfcore.ProgHeader // the kernel image: [_text, _end)
	RAM   elfcore.ProgHeader // [RAMStart, (max_pfn+1)·4096), holes included (K-3)
}

// SplitHeader returns the program headers of an ELF core for which
// IsLayout holds. The kernel emits the image PT_LOAD before the RAM one;
// the other order is accepted, the two told apart by address.
func SplitHeader(f *elfcore.File) Header {
	h := Header{Notes: f.Progs[0], Text: f.Progs[1], RAM: f.Progs[2]}
	if h.Text.Vaddr < x86.KernelTextBase && h.RAM.Vaddr >= x86.KernelTextBase {
		h.Text, h.RAM = h.RAM, h.Text
	}
	return h
}

// PageOffset is page_offset_base, the direct-map base: the RAM PT_LOAD's
// p_vaddr − p_paddr.
func (h Header) PageOffset() uint64 { return h.RAM.Vaddr - h.RAM.Paddr }

// MaxPFN is the kernel's max_pfn: the RAM PT_LOAD ends one page past it.
func (h Header) MaxPFN() uint64 { return h.RAM.End()/PageSize - 1 }

// PhysBase is the phys_base the kernel-image PT_LOAD implies; it must be
// VMCOREINFO's NUMBER(phys_base) when header and memory come from the
// same boot.
func (h Header) PhysBase() uint64 {
	return x86.PhysBase(h.Text.Paddr, h.Text.Vaddr)
}

// NotesCut reports whether the PT_NOTE claims more than the one page of
// notes written (K-1).
func (h Header) NotesCut() bool { return h.Notes.Filesz > PageSize }

// RAMEnd is where the kernel's RAM PT_LOAD ends for a machine's max_pfn:
// (max_pfn+1)·4096, one page past RAM. The device must be at least this
// large, less the never-written last page.
func RAMEnd(maxPFN uint64) uint64 { return (maxPFN + 1) * PageSize }

func roundup4(n int) int { return (n + 3) &^ 3 }

func roundPage(n uint64) uint64 { return (n + PageSize - 1) &^ (PageSize - 1) }

// SyntheticRegisters reports whether the CPU notes (NT_PRSTATUS
// descriptors) hold the registers the v1 module invents for a live dump
// (defect K-7): only the instruction pointer is set, to the same address
// on every CPU, and every other register, the stack pointer included, is
// zero. No crash or hypervisor writes such notes.
func SyntheticRegisters(cores []elfcore.Note) bool {
	if len(cores) == 0 {
		return false
	}
	var rip uint64
	for i, n := range cores {
		st, err := elfcore.ParsePRStatus(n.Desc)
		if err != nil || (i > 0 && st.Regs[elfcore.RegRIP] != rip) {
			return false
		}
		rip = st.Regs[elfcore.RegRIP]
		for j, v := range st.Regs {
			if j != elfcore.RegRIP && v != 0 {
				return false
			}
		}
	}
	return true
}
