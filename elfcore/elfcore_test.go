package elfcore

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// memFile is an in-memory io.WriterAt/io.ReaderAt that grows on write.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}

func vmcoreinfoNote(text string) Note {
	return Note{Name: NameVMCOREINFO, Type: NT_VMCOREINFO, Desc: []byte(text)}
}

func prstatusNote(pid uint32, ip uint64) Note {
	var s PRStatus
	s.Pid = pid
	s.Regs[RegRIP] = ip
	return s.Note()
}

// writeCore writes a core with the given notes and loads; each load's data
// is filled with a byte derived from its index.
func writeCore(t *testing.T, maxLoads int, notes []Note, loads []ProgHeader) *memFile {
	t.Helper()
	m := &memFile{}
	w := NewWriter(m, elf.EM_X86_64, maxLoads, EncodeNotes(notes))
	off := uint64(w.DataOffset())
	for i, p := range loads {
		p.Off = off
		if p.Filesz > 0 {
			m.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, int(p.Filesz)), int64(off))
		}
		off += p.Filesz
		if err := w.AddLoad(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriterLayout(t *testing.T) {
	notes := []Note{prstatusNote(1, 0xffffffff81000000), prstatusNote(2, 0x1234), vmcoreinfoNote("OSRELEASE=6.1.0\nPAGESIZE=4096\n")}
	loads := []ProgHeader{
		{Paddr: 0x1000000, Vaddr: 0xffffffff81000000, Filesz: 0x2000, Memsz: 0x2000, Flags: elf.PF_R | elf.PF_W | elf.PF_X, Align: 4096},
		{Paddr: 0x100000, Vaddr: 0xffff888000100000, Filesz: 0x1000, Memsz: 0x3000},
	}
	m := writeCore(t, 8, notes, loads)
	f, err := NewFile(m, int64(len(m.b)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Phoff != 64 || f.Type != elf.ET_CORE || f.Machine != elf.EM_X86_64 || f.Phnum != 3 {
		t.Fatalf("header = %+v", f.FileHeader)
	}
	if f.Progs[0].Type != elf.PT_NOTE {
		t.Fatalf("phdr[0] = %v, want PT_NOTE", f.Progs[0].Type)
	}
	firstData := f.Progs[1].Off
	if end := f.Progs[0].Off + f.Progs[0].Filesz; end > firstData {
		t.Errorf("notes end at %#x, after the first PT_LOAD data at %#x", end, firstData)
	}
	for i, p := range f.Progs[1:] {
		if p.Align != 0 || p.Type != elf.PT_LOAD {
			t.Errorf("phdr[%d] = %+v, want PT_LOAD with p_align 0", i+1, p)
		}
		if p.Off%4096 != 0 && i == 0 {
			t.Errorf("first data not page aligned: %#x", p.Off)
		}
	}
	got, err := f.Notes()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[2].Is(NameVMCOREINFO, 0) || string(got[2].Desc) != "OSRELEASE=6.1.0\nPAGESIZE=4096\n" {
		t.Fatalf("notes = %+v", got)
	}
	if got[0].Off != int64(f.Progs[0].Off) || len(got[0].Desc) != PRStatusSize {
		t.Errorf("note 0 at %#x size %d", got[0].Off, len(got[0].Desc))
	}
	ps, err := ParsePRStatus(got[1].Desc)
	if err != nil || ps.Pid != 2 || ps.Regs[RegRIP] != 0x1234 {
		t.Errorf("prstatus = %+v, %v", ps, err)
	}
	// The kernel's encoding: a CORE note is 12 + 8 + 336 = 356 bytes.
	if n := notes[0].Size(); n != 356 {
		t.Errorf("CORE note size = %d, want 356", n)
	}
	if n := vmcoreinfoNote("ab").Size(); n != 24+4 {
		t.Errorf("VMCOREINFO note size = %d, want 28", n)
	}
}

func TestPhysMemFirstMatchAndZeroFill(t *testing.T) {
	// The image segment (index 0) overlaps the RAM segment (index 1):
	// the image wins where both cover, as in crash and makedumpfile.
	loads := []ProgHeader{
		{Paddr: 0x3000, Filesz: 0x1000, Memsz: 0x1000},
		{Paddr: 0x1000, Filesz: 0x2000, Memsz: 0x5000},
	}
	m := writeCore(t, 4, []Note{vmcoreinfoNote("X=1\n")}, loads)
	f, err := NewFile(m, int64(len(m.b)))
	if err != nil {
		t.Fatal(err)
	}
	pm := f.Phys()
	tests := []struct {
		pa   uint64
		want byte
	}{
		{0x1000, 2}, {0x2fff, 2}, {0x3000, 1}, {0x3fff, 1}, {0x4000, 0}, {0x5fff, 0},
	}
	for _, tt := range tests {
		b := []byte{0xee}
		if _, err := pm.ReadAt(b, int64(tt.pa)); err != nil || b[0] != tt.want {
			t.Errorf("phys %#x = %d, %v; want %d", tt.pa, b[0], err, tt.want)
		}
	}
	var ue *UnmappedError
	if _, err := pm.ReadAt(make([]byte, 2), 0xfff); !errors.As(err, &ue) || ue.Paddr != 0xfff {
		t.Errorf("read below segments: %v", err)
	}
	if _, err := pm.ReadAt(make([]byte, 0x10), 0x5ff8); !errors.As(err, &ue) || ue.Paddr != 0x6000 {
		t.Errorf("read across end: %v", err)
	}
	if r := pm.Ranges(); len(r) != 1 || r[0] != (Range{Start: 0x1000, End: 0x6000}) {
		t.Errorf("ranges = %x", r)
	}
}

func TestExtendedNumbering(t *testing.T) {
	const n = PN_XNUM + 10
	loads := make([]ProgHeader, n)
	for i := range loads {
		loads[i] = ProgHeader{Paddr: uint64(i) * 4096, Memsz: 4096}
	}
	m := writeCore(t, n, []Note{vmcoreinfoNote("A=1\n")}, loads)
	f, err := NewFile(m, int64(len(m.b)))
	if err != nil {
		t.Fatal(err)
	}
	if f.RawPhnum != PN_XNUM || f.Phnum != n+1 {
		t.Fatalf("phnum raw %#x real %d, want PN_XNUM and %d", f.RawPhnum, f.Phnum, n+1)
	}
	if f.Progs[n].Paddr != uint64(n-1)*4096 {
		t.Errorf("last phdr paddr %#x", f.Progs[n].Paddr)
	}
}

func TestMalformedHeaders(t *testing.T) {
	good := writeCore(t, 2, []Note{vmcoreinfoNote("A=1\n")}, []ProgHeader{{Paddr: 0x100000, Filesz: 16, Memsz: 16}}).b
	mut := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	tests := []struct {
		name  string
		data  []byte
		size  int64
		field string
	}{
		{"class32", mut(func(b []byte) { b[elf.EI_CLASS] = 1 }), -1, "EI_CLASS"},
		{"bigendian", mut(func(b []byte) { b[elf.EI_DATA] = 2 }), -1, "EI_DATA"},
		{"phentsize", mut(func(b []byte) { b[0x36] = 32 }), -1, "e_phentsize"},
		{"phoff past end", mut(func(b []byte) { binary.LittleEndian.PutUint64(b[0x20:], 1<<40) }), int64(len(good)), "e_phoff"},
		{"phnum too big", mut(func(b []byte) { binary.LittleEndian.PutUint16(b[0x38:], 0xfff0) }), int64(len(good)), "e_phnum"},
		{"xnum without shdr", mut(func(b []byte) { binary.LittleEndian.PutUint16(b[0x38:], PN_XNUM) }), -1, "e_shoff"},
		{"short", good[:40], -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFile(bytes.NewReader(tt.data), tt.size)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.field != "" {
				var fe *FormatError
				if !errors.As(err, &fe) || !strings.Contains(fe.Field, tt.field) {
					t.Fatalf("err = %v, want a FormatError about %s", err, tt.field)
				}
			}
		})
	}
	_, err := NewFile(bytes.NewReader(make([]byte, 64)), -1)
	if !errors.Is(err, ErrNotELF) {
		t.Errorf("zero page: %v, want ErrNotELF", err)
	}
}

func TestParseNotesDamage(t *testing.T) {
	vmci := vmcoreinfoNote(strings.Repeat("KEY=VALUE\n", 40))
	full := EncodeNotes([]Note{prstatusNote(1, 1), prstatusNote(2, 2), vmci})
	tests := []struct {
		name      string
		data      []byte
		wantNotes int
		field     string
	}{
		{"complete", full, 3, ""},
		{"cut in vmcoreinfo desc", full[:2*356+100], 2, "n_descsz"},
		{"cut in second header", full[:356+6], 1, "note[1]"},
		{"zero tail", append(bytes.Clone(full[:356]), make([]byte, 64)...), 1, "note[1]"},
		{"name not terminated", func() []byte {
			b := bytes.Clone(full[:356])
			b[12+4] = 'X'
			return b
		}(), 0, "name"},
		{"huge namesz", func() []byte {
			b := bytes.Clone(full[:356])
			binary.LittleEndian.PutUint32(b, 0xffffffff)
			return b
		}(), 0, "n_namesz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notes, err := ParseNotes(tt.data, 4096)
			if len(notes) != tt.wantNotes {
				t.Errorf("got %d notes, want %d", len(notes), tt.wantNotes)
			}
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(fe.Field, tt.field) || fe.Off < 4096 {
				t.Fatalf("err = %v, want FormatError on %s with a file offset", err, tt.field)
			}
		})
	}
}

func FuzzNewFile(f *testing.F) {
	m := &memFile{}
	w := NewWriter(m, elf.EM_X86_64, 2, EncodeNotes([]Note{prstatusNote(1, 1), vmcoreinfoNote("A=1\n")}))
	w.AddLoad(ProgHeader{Paddr: 0x100000, Off: uint64(w.DataOffset()), Filesz: 32, Memsz: 64})
	w.Finish()
	f.Add(m.b)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, size := range []int64{int64(len(data)), -1} {
			ef, err := NewFile(bytes.NewReader(data), size)
			if err != nil {
				continue
			}
			ef.Notes()
			pm := ef.Phys()
			buf := make([]byte, 64)
			for _, r := range pm.Ranges() {
				pm.ReadAt(buf, int64(r.Start))
			}
		}
	})
}

func FuzzParseNotes(f *testing.F) {
	f.Add(EncodeNotes([]Note{prstatusNote(1, 1), vmcoreinfoNote("OSRELEASE=6.1\n")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		notes, err := ParseNotes(data, 0x1000)
		// Notes come in file order, inside the data, each at least a header.
		prev := int64(0x1000 - NoteHdrSize)
		for _, n := range notes {
			if n.Off < prev+NoteHdrSize || n.Off+NoteHdrSize+int64(len(n.Desc)) > 0x1000+int64(len(data)) {
				t.Fatalf("note at %#x after %#x outside the data", n.Off, prev)
			}
			prev = n.Off
		}
		if err == nil && len(data) > 0 && len(notes) == 0 {
			t.Fatal("non-empty data, no notes, no error")
		}
		var fe *FormatError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("error is not a FormatError: %v", err)
		}
	})
}
