package elfcore

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
)

// Writer writes the headers of an ELF64 core whose segment data the caller
// streams in itself. Because the number of PT_LOADs is known only after
// the data has been seen (ldx splits segments where memory is zero), the
// writer reserves room for up to MaxLoads program headers at the front;
// the caller writes segment data at offsets from DataOffset() on, and
// Finish writes the ELF header, the program headers and the notes into the
// reserved room. The unused part of the room is left as a hole.
//
// The layout is the one every consumer accepts (package verify, rows A–C):
// e_phoff 64 (makedumpfile ignores e_phoff), the single merged PT_NOTE as
// phdr[0] (crash treats every later phdr as PT_LOAD), headers and notes
// before the first PT_LOAD's data (crash parses only that prefix), p_align
// 0 on every segment (else crash classifies the file as netdump and skips
// VMCOREINFO-driven KASLR handling), PN_XNUM above 65534 headers.
type Writer struct {
	w        io.WriterAt
	machine  elf.Machine
	maxLoads int
	notes    []byte
	notesOff int64
	dataOff  int64
	loads    []ProgHeader
	done     bool
}

// NewWriter prepares a core written to w with room for maxLoads PT_LOADs
// and the given encoded notes (see EncodeNotes).
func NewWriter(w io.WriterAt, machine elf.Machine, maxLoads int, notes []byte) *Writer {
	nph := int64(1 + maxLoads)
	table := HeaderSize + nph*ProgSize
	if nph >= PN_XNUM {
		table += SectionSize // section header 0 carries the real count
	}
	return &Writer{
		w: w, machine: machine, maxLoads: maxLoads, notes: notes,
		notesOff: table,
		dataOff:  (table + int64(len(notes)) + 4095) &^ 4095,
	}
}

// DataOffset is the first file offset available for segment data. It is
// page-aligned, so segment data can keep p_offset ≡ p_paddr (mod 4096),
// which makedumpfile's mmap path wants.
func (w *Writer) DataOffset() int64 { return w.dataOff }

// AddLoad appends a PT_LOAD program header. Its data must lie at or after
// DataOffset. Type and Align are forced to PT_LOAD and 0.
func (w *Writer) AddLoad(p ProgHeader) error {
	if len(w.loads) >= w.maxLoads {
		return fmt.Errorf("elfcore: writer: more than the %d PT_LOADs reserved", w.maxLoads)
	}
	if p.Filesz > p.Memsz {
		return fmt.Errorf("elfcore: writer: PT_LOAD at paddr %#x has p_filesz %#x > p_memsz %#x", p.Paddr, p.Filesz, p.Memsz)
	}
	if int64(p.Off) < w.dataOff && p.Filesz > 0 {
		return fmt.Errorf("elfcore: writer: PT_LOAD at paddr %#x has data at %#x, inside the header room (ends at %#x)", p.Paddr, p.Off, w.dataOff)
	}
	if p.Filesz == 0 {
		// crash and makedumpfile read offset 0 as "not found"; keep the
		// offset of a data-less segment inside the data area.
		p.Off = max(p.Off, uint64(w.dataOff))
	}
	p.Type, p.Align = elf.PT_LOAD, 0
	w.loads = append(w.loads, p)
	return nil
}

// Finish writes the ELF header, the program headers and the notes.
func (w *Writer) Finish() error {
	if w.done {
		return nil
	}
	if len(w.loads) == 0 {
		return fmt.Errorf("elfcore: writer: no PT_LOAD segments (every consumer rejects such a core)")
	}
	phnum := 1 + len(w.loads)
	buf := make([]byte, 0, w.notesOff+int64(len(w.notes)))
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	ident[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	hdr := elf.Header64{
		Ident: ident, Type: uint16(elf.ET_CORE), Machine: uint16(w.machine),
		Version: uint32(elf.EV_CURRENT), Phoff: HeaderSize,
		Ehsize: HeaderSize, Phentsize: ProgSize, Phnum: uint16(phnum),
	}
	xnum := phnum >= PN_XNUM
	shoff := int64(HeaderSize + phnum*ProgSize)
	if xnum {
		hdr.Phnum = PN_XNUM
		hdr.Shoff = uint64(shoff)
		hdr.Shentsize = SectionSize
		hdr.Shnum = 1
	}
	buf, _ = binary.Append(buf, binary.LittleEndian, &hdr)
	note := elf.Prog64{Type: uint32(elf.PT_NOTE), Off: uint64(w.notesOff), Filesz: uint64(len(w.notes)), Memsz: uint64(len(w.notes))}
	buf, _ = binary.Append(buf, binary.LittleEndian, &note)
	for _, p := range w.loads {
		raw := elf.Prog64{Type: uint32(p.Type), Flags: uint32(p.Flags), Off: p.Off, Vaddr: p.Vaddr, Paddr: p.Paddr, Filesz: p.Filesz, Memsz: p.Memsz}
		buf, _ = binary.Append(buf, binary.LittleEndian, &raw)
	}
	if xnum {
		sh := elf.Section64{Info: uint32(phnum)}
		buf, _ = binary.Append(buf, binary.LittleEndian, &sh)
	}
	buf = append(buf, make([]byte, w.notesOff-int64(len(buf)))...)
	buf = append(buf, w.notes...)
	if _, err := w.w.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("elfcore: writing headers: %w", err)
	}
	w.done = true
	return nil
}
