package elfcore

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// FileHeader is the parsed ELF file header of a core. Phnum is the real
// number of program headers, with extended numbering resolved.
type FileHeader struct {
	OSABI     elf.OSABI
	Type      elf.Type
	Machine   elf.Machine
	Version   uint32
	Phoff     uint64
	Shoff     uint64
	Ehsize    uint16
	Phentsize uint16
	Phnum     int
	RawPhnum  uint16 // e_phnum as stored: PN_XNUM when extended numbering is used
	Shnum     uint16
}

// ProgHeader is a parsed program header.
type ProgHeader struct {
	Type   elf.ProgType
	Flags  elf.ProgFlag
	Off    uint64
	Vaddr  uint64
	Paddr  uint64
	Filesz uint64
	Memsz  uint64
	Align  uint64
}

// End returns the physical end address of the segment (Paddr + Memsz).
func (p ProgHeader) End() uint64 { return p.Paddr + p.Memsz }

// Contains reports whether physical address pa lies in [Paddr, Paddr+Memsz).
func (p ProgHeader) Contains(pa uint64) bool { return pa >= p.Paddr && pa-p.Paddr < p.Memsz }

// File is an ELF64 little-endian core read from an io.ReaderAt.
type File struct {
	FileHeader
	Progs []ProgHeader
	// Size is the size of the underlying file or device in bytes, or -1
	// when unknown.
	Size int64

	r      io.ReaderAt
	closer io.Closer
}

// MaxProgs bounds the number of program headers accepted from a file of
// unknown size, so that a corrupt e_phnum/sh_info cannot make the reader
// allocate without limit. Real cores stay far below it (QEMU's paging
// dumps reach about 66 000 for 512 MiB).
const MaxProgs = 1 << 22

// Open opens the named file or block device and reads its ELF core headers.
func Open(name string) (*File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekEnd) // works for block devices too
	if err != nil {
		size = -1
	}
	ef, err := NewFile(f, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ef.closer = f
	return ef, nil
}

// Close closes the file if it was opened by Open.
func (f *File) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

// ErrNotELF is returned (wrapped in a *FormatError) when the data does not
// start with the ELF magic, so callers can tell "not a core at all" from
// "a damaged core".
var ErrNotELF = errors.New("not an ELF file")

// NewFile reads the ELF header and program headers of a core from r.
// size is the size of the data behind r, or -1 if unknown; when known, it
// bounds the program-header table.
func NewFile(r io.ReaderAt, size int64) (*File, error) {
	var raw elf.Header64
	buf := make([]byte, HeaderSize)
	if n, err := r.ReadAt(buf, 0); n < HeaderSize {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("elfcore: reading the ELF header: %w", err)
	}
	if _, err := binary.Decode(buf, binary.LittleEndian, &raw); err != nil {
		return nil, err
	}
	if !bytes.Equal(raw.Ident[:4], []byte(elf.ELFMAG)) {
		return nil, &NotELFError{Magic: [4]byte(raw.Ident[:4])}
	}
	switch {
	case elf.Class(raw.Ident[elf.EI_CLASS]) != elf.ELFCLASS64:
		return nil, formatErr(elf.EI_CLASS, "e_ident[EI_CLASS]", "want ELFCLASS64 (2)", raw.Ident[elf.EI_CLASS])
	case elf.Data(raw.Ident[elf.EI_DATA]) != elf.ELFDATA2LSB:
		return nil, formatErr(elf.EI_DATA, "e_ident[EI_DATA]", "want little-endian ELFDATA2LSB (1)", raw.Ident[elf.EI_DATA])
	case elf.Version(raw.Ident[elf.EI_VERSION]) != elf.EV_CURRENT:
		return nil, formatErr(elf.EI_VERSION, "e_ident[EI_VERSION]", "want EV_CURRENT (1)", raw.Ident[elf.EI_VERSION])
	}
	f := &File{r: r, Size: size}
	f.FileHeader = FileHeader{
		OSABI:     elf.OSABI(raw.Ident[elf.EI_OSABI]),
		Type:      elf.Type(raw.Type),
		Machine:   elf.Machine(raw.Machine),
		Version:   raw.Version,
		Phoff:     raw.Phoff,
		Shoff:     raw.Shoff,
		Ehsize:    raw.Ehsize,
		Phentsize: raw.Phentsize,
		RawPhnum:  raw.Phnum,
		Shnum:     raw.Shnum,
		Phnum:     int(raw.Phnum),
	}
	if f.Phnum == 0 {
		return f, nil
	}
	if raw.Phentsize != ProgSize {
		return nil, formatErr(0x36, "e_phentsize", "want 56", raw.Phentsize)
	}
	if raw.Phnum == PN_XNUM {
		n, err := f.extendedPhnum()
		if err != nil {
			return nil, err
		}
		f.Phnum = n
	}
	limit := int64(MaxProgs)
	if size >= 0 {
		if raw.Phoff > uint64(size) {
			return nil, formatErr(0x20, "e_phoff", fmt.Sprintf("program headers start past the end of the data (%d bytes)", size), raw.Phoff)
		}
		limit = min(limit, (size-int64(raw.Phoff))/ProgSize)
	}
	if int64(f.Phnum) > limit {
		return nil, formatErr(0x38, "e_phnum", fmt.Sprintf("%d program headers do not fit in the data (at most %d)", f.Phnum, limit), f.Phnum)
	}
	table := make([]byte, f.Phnum*ProgSize)
	if n, err := r.ReadAt(table, int64(raw.Phoff)); n < len(table) {
		return nil, formatErr(int64(raw.Phoff)+int64(n), "program header table", fmt.Sprintf("short read of %d program headers: %v", f.Phnum, err), nil)
	}
	f.Progs = make([]ProgHeader, f.Phnum)
	for i := range f.Progs {
		var p elf.Prog64
		binary.Decode(table[i*ProgSize:], binary.LittleEndian, &p)
		f.Progs[i] = ProgHeader{
			Type: elf.ProgType(p.Type), Flags: elf.ProgFlag(p.Flags),
			Off: p.Off, Vaddr: p.Vaddr, Paddr: p.Paddr,
			Filesz: p.Filesz, Memsz: p.Memsz, Align: p.Align,
		}
	}
	return f, nil
}

// NotELFError reports data that does not start with the ELF magic.
type NotELFError struct{ Magic [4]byte }

func (e *NotELFError) Error() string {
	return fmt.Sprintf("elfcore: e_ident at byte 0: no ELF magic (found % x)", e.Magic[:])
}

func (e *NotELFError) Unwrap() error { return ErrNotELF }

// extendedPhnum reads the real program-header count from sh_info of
// section header 0, as the ELF gABI prescribes for e_phnum == PN_XNUM.
func (f *File) extendedPhnum() (int, error) {
	if f.Shoff == 0 {
		return 0, formatErr(0x28, "e_shoff", "e_phnum is PN_XNUM but there is no section header 0 to hold the real count", nil)
	}
	buf := make([]byte, SectionSize)
	if n, err := f.r.ReadAt(buf, int64(f.Shoff)); n < SectionSize {
		return 0, formatErr(int64(f.Shoff), "section header 0", fmt.Sprintf("short read: %v", err), nil)
	}
	var sh elf.Section64
	binary.Decode(buf, binary.LittleEndian, &sh)
	if sh.Info < PN_XNUM {
		return 0, formatErr(int64(f.Shoff)+44, "shdr[0].sh_info", "extended program-header count must be >= 65535", sh.Info)
	}
	return int(sh.Info), nil
}

// ProgOffset returns the file offset of program header i, for error messages.
func (f *File) ProgOffset(i int) int64 { return int64(f.Phoff) + int64(i)*ProgSize }

// Loads returns the PT_LOAD program headers in file order.
func (f *File) Loads() []ProgHeader {
	var out []ProgHeader
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			out = append(out, p)
		}
	}
	return out
}
