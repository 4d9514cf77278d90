package elfcore

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
)

// Note is one parsed ELF note.
type Note struct {
	Name string // without the terminating NUL
	Type uint32
	Desc []byte
	// Off is the byte offset of the note header in the file (or in the
	// buffer given to ParseNotes, plus its base offset).
	Off int64
}

// Size returns the encoded size of the note: header, name and descriptor,
// each padded to 4 bytes (the kernel's and every consumer's alignment;
// drgn would read 8-byte-aligned notes only if the PT_NOTE had p_align 8).
func (n Note) Size() int { return NoteHdrSize + align4(len(n.Name)+1) + align4(len(n.Desc)) }

// Is reports whether the note has the given name and type.
func (n Note) Is(name string, typ uint32) bool { return n.Name == name && n.Type == typ }

func align4(n int) int { return (n + 3) &^ 3 }

// AppendNote appends n to b in the kernel's encoding (append_elf_note in
// kernel/crash_core.c): n_namesz counts the NUL, name and descriptor are
// zero-padded to 4 bytes.
func AppendNote(b []byte, n Note) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(n.Name)+1))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(n.Desc)))
	b = binary.LittleEndian.AppendUint32(b, n.Type)
	b = append(b, n.Name...)
	b = append(b, make([]byte, align4(len(n.Name)+1)-len(n.Name))...)
	b = append(b, n.Desc...)
	return append(b, make([]byte, align4(len(n.Desc))-len(n.Desc))...)
}

// EncodeNotes returns the notes back to back, as one merged PT_NOTE
// segment holds them (no terminating empty note: crash warns about it).
func EncodeNotes(notes []Note) []byte {
	var b []byte
	for _, n := range notes {
		b = AppendNote(b, n)
	}
	return b
}

// ParseNotes walks the notes in data, whose first byte is at file offset
// base. It returns every note that lies completely inside data; if the
// walk cannot continue (a header or a body runs past the end, an empty
// note, a name without NUL), it returns those notes together with a
// *FormatError that says where and why it stopped. Callers that repair
// damaged cores use both: the complete notes, and the place of the damage.
func ParseNotes(data []byte, base int64) ([]Note, error) {
	var notes []Note
	for off := 0; off < len(data); {
		idx := len(notes)
		at := base + int64(off)
		if len(data)-off < NoteHdrSize {
			return notes, formatErr(at, fmt.Sprintf("note[%d]", idx), fmt.Sprintf("%d bytes left, too few for a 12-byte note header", len(data)-off), nil)
		}
		var h rawNote
		binary.Decode(data[off:], binary.LittleEndian, &h)
		if h.Namesz == 0 && h.Descsz == 0 && h.Type == 0 {
			return notes, formatErr(at, fmt.Sprintf("note[%d]", idx), "empty note (all-zero header) inside the note segment", nil)
		}
		descOff := uint64(off) + NoteHdrSize + uint64(align4(int(min(h.Namesz, 1<<30))))
		descEnd := descOff + uint64(align4(int(min(h.Descsz, 1<<30))))
		if descOff > uint64(len(data)) || h.Namesz > 1<<30 {
			return notes, formatErr(at, fmt.Sprintf("note[%d].n_namesz", idx), fmt.Sprintf("name runs past the end of the note data (%d bytes left)", len(data)-off-NoteHdrSize), h.Namesz)
		}
		if descEnd > uint64(len(data)) || h.Descsz > 1<<30 {
			return notes, formatErr(at+4, fmt.Sprintf("note[%d].n_descsz", idx), fmt.Sprintf("descriptor runs past the end of the note data (%d bytes left)", uint64(len(data))-descOff), h.Descsz)
		}
		name := data[off+NoteHdrSize : off+NoteHdrSize+int(h.Namesz)]
		if h.Namesz > 0 {
			if name[len(name)-1] != 0 {
				return notes, formatErr(at+NoteHdrSize, fmt.Sprintf("note[%d] name", idx), "name is not NUL-terminated", string(name))
			}
			name = name[:len(name)-1]
		}
		desc := data[descOff : descOff+uint64(h.Descsz)]
		notes = append(notes, Note{Name: string(name), Type: h.Type, Desc: append([]byte(nil), desc...), Off: at})
		off = int(descEnd)
	}
	return notes, nil
}

// FindNote returns the descriptor of the first note called name with type
// typ in data (a note segment or a .notes section), walking the notes as
// ParseNotes does: a damaged tail ends the search but does not hide the
// notes before it.
func FindNote(data []byte, name string, typ uint32) ([]byte, bool) {
	notes, _ := ParseNotes(data, 0)
	for _, n := range notes {
		if n.Is(name, typ) {
			return n.Desc, true
		}
	}
	return nil, false
}

// NT_GNU_BUILD_ID is the type of the "GNU" note that carries a build-id.
const NT_GNU_BUILD_ID = 3

// MaxNoteSegment bounds how much of a PT_NOTE the reader loads. The
// kernel's merged notes are 356 bytes per CPU plus VMCOREINFO (at most
// 4 KiB), so 64 MiB is thousands of CPUs beyond any real machine.
const MaxNoteSegment = 64 << 20

// NoteSegment returns the bytes of PT_NOTE program header i.
func (f *File) NoteSegment(i int) ([]byte, error) {
	p := f.Progs[i]
	if p.Type != elf.PT_NOTE {
		return nil, fmt.Errorf("elfcore: phdr[%d] is %v, not PT_NOTE", i, p.Type)
	}
	if p.Filesz > MaxNoteSegment {
		return nil, formatErr(f.ProgOffset(i)+32, fmt.Sprintf("phdr[%d].p_filesz", i), fmt.Sprintf("note segment larger than %d bytes", MaxNoteSegment), p.Filesz)
	}
	if f.Size >= 0 && p.Off+p.Filesz > uint64(f.Size) {
		return nil, formatErr(f.ProgOffset(i)+8, fmt.Sprintf("phdr[%d].p_offset", i), fmt.Sprintf("note segment ends at %#x, past the end of the data (%#x)", p.Off+p.Filesz, f.Size), p.Off)
	}
	buf := make([]byte, p.Filesz)
	if n, err := f.r.ReadAt(buf, int64(p.Off)); n < len(buf) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, formatErr(int64(p.Off)+int64(n), fmt.Sprintf("phdr[%d] note data", i), err.Error(), nil)
	}
	return buf, nil
}

// Notes parses the notes of every PT_NOTE segment. On a damaged segment
// it returns the notes parsed so far and the error.
func (f *File) Notes() ([]Note, error) {
	var all []Note
	for i, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data, err := f.NoteSegment(i)
		if err != nil {
			return all, err
		}
		notes, err := ParseNotes(data, int64(p.Off))
		all = append(all, notes...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}
