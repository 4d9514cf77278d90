package verifytest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kallsyms"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/kernel/x86"
	"ldx/vmcoreinfo"
)

// Offsets and constants, spelled out here rather than taken from the
// package under test.
const (
	offType    = 0x10
	offMachine = 0x12
	offPhoff   = 0x20
	offPhnum   = 0x38
	pageSize   = 4096
)

// The mutation corpus: a good vmcore (ldx extract's output) with one
// requirement broken at a time. Each mutant names the checks that must
// fail. The same mutants run on the synthetic kernel in the unit tests
// and on real kernel memory, next to the real consumers, in the e2e test.

// Patch is bytes written over the good file at Off.
type Patch struct {
	Off  int64
	Data []byte
}

// Mutation is a set of patches and the mutant's size (-1: unchanged).
// Before the patches, the good file's bytes from Shift.From on may move
// Shift.By bytes further (room for larger headers or notes; the bytes
// left behind read as zeros).
type Mutation struct {
	Patches []Patch
	Size    int64
	Shift   Shift
}

// Shift moves the tail of the good file: the bytes from From on go to
// From+By.
type Shift struct{ From, By int64 }

// at maps a good-file offset to the mutant's.
func (s Shift) at(off int64) int64 {
	if s.By > 0 && off >= s.From {
		return off + s.By
	}
	return off
}

// Mutant is one broken requirement.
type Mutant struct {
	Name string
	Want []string // IDs of the verify checks that must fail
	Make func(g *Core) (*Mutation, error)
}

// Core is the parsed good vmcore mutants start from.
type Core struct {
	r     io.ReaderAt
	size  int64
	f     *elfcore.File
	notes []elfcore.Note
	info  *vmcoreinfo.Info
	vmci  int // index of the VMCOREINFO note
	// dataStart is the first segment data offset: headers and notes must
	// stay below it.
	dataStart int64
}

func ParseCore(r io.ReaderAt, size int64) (*Core, error) {
	f, err := elfcore.NewFile(r, size)
	if err != nil {
		return nil, err
	}
	g := &Core{r: r, size: size, f: f, vmci: -1, dataStart: size}
	if g.notes, err = f.Notes(); err != nil {
		return nil, err
	}
	for i, n := range g.notes {
		if n.Is("VMCOREINFO", 0) {
			g.vmci = i
			g.info, _ = vmcoreinfo.ParseLenient(n.Desc)
		}
	}
	if g.vmci < 0 {
		return nil, fmt.Errorf("the good vmcore has no VMCOREINFO")
	}
	for _, p := range f.Progs[1:] {
		if p.Filesz > 0 {
			g.dataStart = min(g.dataStart, int64(p.Off))
		}
	}
	return g, nil
}

// apply returns the mutant's bytes (for in-memory verification).
func (m *Mutation) apply(good []byte) []byte {
	size := m.Shift.at(int64(len(good)))
	if m.Size >= 0 {
		size = m.Size
	}
	for _, p := range m.Patches {
		size = max(size, p.Off+int64(len(p.Data)))
	}
	out := make([]byte, size)
	if m.Shift.By > 0 {
		copy(out, good[:m.Shift.From])
		copy(out[m.Shift.at(m.Shift.From):], good[m.Shift.From:])
	} else {
		copy(out, good)
	}
	for _, p := range m.Patches {
		copy(out[p.Off:], p.Data)
	}
	if m.Size >= 0 && m.Size < int64(len(good)) {
		out = out[:m.Size]
	}
	return out
}

func encodePhdr(p elfcore.ProgHeader) []byte {
	raw := elf.Prog64{Type: uint32(p.Type), Flags: uint32(p.Flags), Off: p.Off, Vaddr: p.Vaddr, Paddr: p.Paddr, Filesz: p.Filesz, Memsz: p.Memsz, Align: p.Align}
	b, _ := binary.Append(nil, binary.LittleEndian, &raw)
	return b
}

func u16le(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func u64le(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// phdrs writes a whole program-header table at phoff (and e_phoff,
// e_phnum), clearing the old table.
func (g *Core) phdrs(progs []elfcore.ProgHeader, phoff int64) ([]Patch, error) {
	progs = slices.Clone(progs)
	oldEnd := int64(g.f.Phoff) + int64(g.f.Phnum)*elfcore.ProgSize
	tableEnd := phoff + int64(len(progs))*elfcore.ProgSize
	ps := []Patch{{int64(g.f.Phoff), make([]byte, oldEnd-int64(g.f.Phoff))}}
	// Notes the new table would overwrite move to right after it (ldx
	// writes them right after the program headers).
	next := (tableEnd + 3) &^ 3
	for i, p := range progs {
		if p.Type != elf.PT_NOTE || int64(p.Off) >= tableEnd || int64(p.Off+p.Filesz) <= phoff {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := g.r.ReadAt(data, int64(p.Off)); err != nil {
			return nil, err
		}
		if next+int64(len(data)) > g.dataStart {
			return nil, fmt.Errorf("no room for %d program headers and the notes before the data at %#x", len(progs), g.dataStart)
		}
		progs[i].Off = uint64(next)
		ps = append(ps, Patch{next, data})
		next = (next + int64(len(data)) + 3) &^ 3
	}
	var table []byte
	for _, p := range progs {
		table = append(table, encodePhdr(p)...)
	}
	ps = append(ps, Patch{phoff, table}, Patch{offPhoff, u64le(uint64(phoff))}, Patch{offPhnum, u16le(uint16(len(progs)))})
	return ps, nil
}

// withPhdrs is a mutation that rewrites the program-header table.
func (g *Core) withPhdrs(progs []elfcore.ProgHeader, phoff int64) (*Mutation, error) {
	ps, err := g.phdrs(progs, phoff)
	if err != nil {
		return nil, err
	}
	return &Mutation{Size: -1, Patches: ps}, nil
}

// withNotes writes notes in place of the old ones (they must fit before
// the segment data) and sets the PT_NOTE's size; extra are more phdr
// changes applied on top.
func (g *Core) withNotes(notes []elfcore.Note, pad int) (*Mutation, error) {
	enc := elfcore.EncodeNotes(notes)
	enc = append(enc, make([]byte, pad)...)
	note := g.f.Progs[0]
	m := &Mutation{Size: -1}
	if need := int64(note.Off) + int64(len(enc)); need > g.dataStart {
		// Make room: the segment data moves by whole pages, as a writer
		// laying out larger notes would place it.
		m.Shift = Shift{From: g.dataStart, By: (need - g.dataStart + pageSize - 1) &^ (pageSize - 1)}
		for i, p := range g.f.Progs[1:] {
			if p.Filesz > 0 {
				p.Off = uint64(m.Shift.at(int64(p.Off)))
				m.Patches = append(m.Patches, Patch{g.f.ProgOffset(i + 1), encodePhdr(p)})
			}
		}
	}
	old := make([]byte, note.Filesz)
	note.Filesz, note.Memsz = uint64(len(enc)), uint64(len(enc))
	m.Patches = append(m.Patches, Patch{int64(note.Off), old}, Patch{int64(note.Off), enc}, Patch{g.f.ProgOffset(0), encodePhdr(note)})
	return m, nil
}

// withVMCOREINFO replaces the VMCOREINFO text.
func (g *Core) withVMCOREINFO(text []byte) (*Mutation, error) {
	notes := slices.Clone(g.notes)
	notes[g.vmci].Desc = text
	return g.withNotes(notes, 0)
}

// editVMCOREINFO rewrites the text line by line: edit returns the new
// line, or "" to drop it.
func (g *Core) editVMCOREINFO(edit func(key, line string) string) (*Mutation, error) {
	var b strings.Builder
	for _, l := range g.info.Lines() {
		if s := edit(l.Key, l.String()); s != "" {
			b.WriteString(s + "\n")
		}
	}
	return g.withVMCOREINFO([]byte(b.String()))
}

func (g *Core) withoutKey(key string) (*Mutation, error) {
	if !g.info.Has(key) {
		return nil, fmt.Errorf("the good VMCOREINFO has no %s", key)
	}
	return g.editVMCOREINFO(func(k, line string) string {
		if k == key {
			return ""
		}
		return line
	})
}

// setPhdr rewrites program header i.
func (g *Core) setPhdr(i int, edit func(p *elfcore.ProgHeader)) *Mutation {
	p := g.f.Progs[i]
	edit(&p)
	return &Mutation{Size: -1, Patches: []Patch{{g.f.ProgOffset(i), encodePhdr(p)}}}
}

// imageIdx is the kernel-image PT_LOAD.
func (g *Core) imageIdx() int {
	for i, p := range g.f.Progs {
		if p.Type == elf.PT_LOAD && p.Vaddr >= x86.KernelTextBase {
			return i
		}
	}
	return -1
}

// mem reads kernel memory of the good core through its page tables.
func (g *Core) mem() (*kmem.Mem, error) {
	params, err := kmem.ParamsFrom(g.info, nil)
	if err != nil {
		return nil, err
	}
	return kmem.New(g.f.Phys(), params)
}

// punch removes physical page pa from every PT_LOAD (splitting those that
// cover it), as if the page had never been dumped.
func (g *Core) punch(pa uint64) (*Mutation, error) {
	pa &^= pageSize - 1
	var progs []elfcore.ProgHeader
	hit := false
	for _, p := range g.f.Progs {
		if p.Type != elf.PT_LOAD || !p.Contains(pa) {
			progs = append(progs, p)
			continue
		}
		hit = true
		rel := pa - p.Paddr
		if rel > 0 {
			a := p
			a.Memsz, a.Filesz = rel, min(p.Filesz, rel)
			progs = append(progs, a)
		}
		if rel+pageSize < p.Memsz {
			b := p
			b.Paddr, b.Vaddr, b.Off = p.Paddr+rel+pageSize, p.Vaddr+rel+pageSize, p.Off+rel+pageSize
			b.Memsz = p.Memsz - rel - pageSize
			b.Filesz = p.Filesz - min(p.Filesz, rel+pageSize)
			progs = append(progs, b)
		}
	}
	if !hit {
		return nil, fmt.Errorf("no PT_LOAD covers %#x", pa)
	}
	return g.withPhdrs(progs, int64(g.f.Phoff))
}

// KeyMutants removes, one at a time, each key a consumer needs that the
// good VMCOREINFO has, expecting the check of its checklist row to fail.
func KeyMutants(info *vmcoreinfo.Info, only map[string]bool) []Mutant {
	var ms []Mutant
	seen := map[string]bool{}
	for _, r := range vmcoreinfo.Requirements() {
		if seen[r.Key] || !info.Has(r.Key) || (only != nil && !only[r.Key]) {
			continue
		}
		seen[r.Key] = true
		key := r.Key
		want := r.Rule
		ms = append(ms, Mutant{Name: "VMCOREINFO without " + key, Want: []string{want}, Make: func(g *Core) (*Mutation, error) { return g.withoutKey(key) }})
	}
	return ms
}

// Mutants is the corpus of layout, note and translation defects.
func Mutants() []Mutant {
	return []Mutant{
		{"e_phoff 0xc0 (QEMU's)", []string{"A5"}, func(g *Core) (*Mutation, error) {
			return g.withPhdrs(g.f.Progs, 0xc0)
		}},
		{"e_phoff 0x200", []string{"A5"}, func(g *Core) (*Mutation, error) {
			return g.withPhdrs(g.f.Progs, 0x200)
		}},
		{"e_type ET_EXEC", []string{"A2"}, func(g *Core) (*Mutation, error) {
			return &Mutation{Size: -1, Patches: []Patch{{offType, u16le(uint16(elf.ET_EXEC))}}}, nil
		}},
		{"e_machine EM_AARCH64", []string{"A3"}, func(g *Core) (*Mutation, error) {
			return &Mutation{Size: -1, Patches: []Patch{{offMachine, u16le(uint16(elf.EM_AARCH64))}}}, nil
		}},
		{"PT_NOTE not first", []string{"B1"}, func(g *Core) (*Mutation, error) {
			progs := slices.Clone(g.f.Progs)
			progs[0], progs[1] = progs[1], progs[0]
			return g.withPhdrs(progs, int64(g.f.Phoff))
		}},
		{"p_align 4096 on phdr[1]", []string{"B6"}, func(g *Core) (*Mutation, error) {
			return g.setPhdr(1, func(p *elfcore.ProgHeader) { p.Align = 4096 }), nil
		}},
		{"notes after the first PT_LOAD", []string{"B4"}, func(g *Core) (*Mutation, error) {
			enc := elfcore.EncodeNotes(g.notes)
			off := (g.size + 4095) &^ 4095
			m := g.setPhdr(0, func(p *elfcore.ProgHeader) { p.Off = uint64(off) })
			m.Patches = append(m.Patches, Patch{off, enc})
			return m, nil
		}},
		{"phdr[1].p_offset 0", []string{"B5"}, func(g *Core) (*Mutation, error) {
			return g.setPhdr(1, func(p *elfcore.ProgHeader) { p.Off = 0 }), nil
		}},
		{"PT_NULL segment over init_uts_ns ahead of the PT_LOADs", []string{"B2"}, func(g *Core) (*Mutation, error) {
			uts, _ := g.info.Symbol("init_uts_ns")
			img := g.f.Progs[g.imageIdx()]
			pa := (img.Paddr + (uts - img.Vaddr)) &^ (pageSize - 1)
			null := elfcore.ProgHeader{Type: elf.PT_NULL, Off: uint64(g.dataStart), Paddr: pa, Filesz: pageSize, Memsz: pageSize}
			return g.withPhdrs(slices.Insert(slices.Clone(g.f.Progs), 1, null), int64(g.f.Phoff))
		}},
		{"PT_NOTE p_align 8", []string{"C1"}, func(g *Core) (*Mutation, error) {
			return g.setPhdr(0, func(p *elfcore.ProgHeader) { p.Align = 8 }), nil
		}},
		{"zero padding after the notes", []string{"C2"}, func(g *Core) (*Mutation, error) {
			return g.withNotes(g.notes, 12)
		}},
		{"no VMCOREINFO note", []string{"C3"}, func(g *Core) (*Mutation, error) {
			return g.withNotes(slices.Delete(slices.Clone(g.notes), g.vmci, g.vmci+1), 0)
		}},
		{"two VMCOREINFO notes", []string{"C4"}, func(g *Core) (*Mutation, error) {
			return g.withNotes(append(slices.Clone(g.notes), g.notes[g.vmci]), 0)
		}},
		{"short NT_PRSTATUS (300 bytes)", []string{"C5"}, func(g *Core) (*Mutation, error) {
			notes := slices.Clone(g.notes)
			for i, n := range notes {
				if n.Is("CORE", elfcore.NT_PRSTATUS) {
					notes[i].Desc = n.Desc[:300]
					break
				}
			}
			return g.withNotes(notes, 0)
		}},
		{"live dump without CRASHTIME, pr_pid not cpu+1", []string{"C7"}, func(g *Core) (*Mutation, error) {
			notes := slices.Clone(g.notes)
			for i, n := range notes {
				if n.Is("CORE", elfcore.NT_PRSTATUS) {
					d := slices.Clone(n.Desc)
					binary.LittleEndian.PutUint32(d[32:], 15)
					notes[i].Desc = d
				}
			}
			var b strings.Builder
			for _, l := range g.info.Lines() {
				if l.Key != "CRASHTIME" {
					b.WriteString(l.String() + "\n")
				}
			}
			notes[g.vmci].Desc = []byte(b.String())
			return g.withNotes(notes, 0)
		}},
		{"SNAP NT_TASKSTRUCT note", []string{"C8"}, func(g *Core) (*Mutation, error) {
			return g.withNotes(append([]elfcore.Note{{Name: "SNAP", Type: 4, Desc: make([]byte, 8)}}, g.notes...), 0)
		}},
		{"notes split into two PT_NOTEs (VMCOREINFO in the second)", []string{"B1"}, func(g *Core) (*Mutation, error) {
			// The first PT_NOTE keeps the CPU notes, a second one after
			// it holds VMCOREINFO.
			var cpu, rest []elfcore.Note
			for i, n := range g.notes {
				if i == g.vmci {
					rest = append(rest, n)
				} else {
					cpu = append(cpu, n)
				}
			}
			a, b := elfcore.EncodeNotes(cpu), elfcore.EncodeNotes(rest)
			progs := slices.Clone(g.f.Progs)
			n0 := progs[0]
			n0.Filesz, n0.Memsz = uint64(len(a)), uint64(len(a))
			n1 := n0
			n1.Off, n1.Filesz, n1.Memsz = n0.Off+uint64(len(a)), uint64(len(b)), uint64(len(b))
			tableEnd := int64(g.f.Phoff) + int64(len(progs)+1)*elfcore.ProgSize
			n0.Off = uint64((tableEnd + 3) &^ 3)
			n1.Off = n0.Off + uint64(len(a))
			if int64(n1.Off)+int64(len(b)) > g.dataStart {
				return nil, fmt.Errorf("no room for the split notes")
			}
			progs[0] = n0
			progs = slices.Insert(progs, 1, n1)
			m, err := g.withPhdrs(progs, int64(g.f.Phoff))
			if err != nil {
				return nil, err
			}
			// Clear the old notes first: the grown table covers their start.
			m.Patches = append([]Patch{{int64(g.f.Progs[0].Off), make([]byte, g.f.Progs[0].Filesz)}}, m.Patches...)
			m.Patches = append(m.Patches, Patch{int64(n0.Off), append(a, b...)})
			return m, nil
		}},
		{"VMCOREINFO cut mid-text, followed by other bytes (K-1)", []string{"D1", "D7"}, func(g *Core) (*Mutation, error) {
			text := g.notes[g.vmci].Desc
			cut := len(text) * 4 / 5
			garbage := bytes.Repeat([]byte{0x00, 0x5a, 0xa5, 0xff}, (len(text)-cut)/4+1)[:len(text)-cut]
			return g.withVMCOREINFO(append(slices.Clone(text[:cut]), garbage...))
		}},
		{"NUL run before CRASHTIME (K-6)", []string{"D1"}, func(g *Core) (*Mutation, error) {
			return g.editVMCOREINFO(func(k, line string) string {
				if k == "CRASHTIME" {
					return strings.Repeat("\x00", 21) + line
				}
				return line
			})
		}},
		{"NUMBER(phys_base) in hex (0x…)", []string{"D2"}, func(g *Core) (*Mutation, error) {
			pb, ok := g.info.Number("phys_base")
			if !ok {
				return nil, fmt.Errorf("no NUMBER(phys_base)")
			}
			return g.editVMCOREINFO(func(k, line string) string {
				if k == "NUMBER(phys_base)" {
					return fmt.Sprintf("NUMBER(phys_base)=%#x", pb)
				}
				return line
			})
		}},
		{"PAGESIZE line with CRLF", []string{"D1"}, func(g *Core) (*Mutation, error) {
			return g.editVMCOREINFO(func(k, line string) string {
				if k == "PAGESIZE" {
					return line + "\r"
				}
				return line
			})
		}},
		{"OFFSET(uts_namespace.name) with a trailing blank", []string{"D2"}, func(g *Core) (*Mutation, error) {
			return g.editVMCOREINFO(func(k, line string) string {
				if k == "OFFSET(uts_namespace.name)" {
					return line + " "
				}
				return line
			})
		}},
		{"wrong NUMBER(phys_base) (+2 MiB)", []string{"E1"}, func(g *Core) (*Mutation, error) {
			pb, ok := g.info.Number("phys_base")
			if !ok {
				return nil, fmt.Errorf("no NUMBER(phys_base)")
			}
			return g.editVMCOREINFO(func(k, line string) string {
				if k == "NUMBER(phys_base)" {
					return fmt.Sprintf("NUMBER(phys_base)=%d", pb+2<<20)
				}
				return line
			})
		}},
		{"kernel-image PT_LOAD with the wrong p_paddr", []string{"E1"}, func(g *Core) (*Mutation, error) {
			i := g.imageIdx()
			if i < 0 {
				return nil, fmt.Errorf("no kernel-image PT_LOAD")
			}
			return g.setPhdr(i, func(p *elfcore.ProgHeader) { p.Paddr += 2 << 20 }), nil
		}},
		{"no kernel-image PT_LOAD", []string{"B9"}, func(g *Core) (*Mutation, error) {
			i := g.imageIdx()
			if i < 0 {
				return nil, fmt.Errorf("no kernel-image PT_LOAD")
			}
			return g.withPhdrs(slices.Delete(slices.Clone(g.f.Progs), i, i+1), int64(g.f.Phoff))
		}},
		{"RAM p_vaddr = p_paddr (no direct-map addresses)", []string{"B8"}, func(g *Core) (*Mutation, error) {
			progs := slices.Clone(g.f.Progs)
			for i, p := range progs {
				if p.Type == elf.PT_LOAD && p.Vaddr < x86.KernelTextBase {
					progs[i].Vaddr = p.Paddr
				}
			}
			return g.withPhdrs(progs, int64(g.f.Phoff))
		}},
		{"RAM p_vaddr off by 1 GiB", []string{"E4"}, func(g *Core) (*Mutation, error) {
			progs := slices.Clone(g.f.Progs)
			for i, p := range progs {
				if p.Type == elf.PT_LOAD && p.Vaddr < x86.KernelTextBase {
					progs[i].Vaddr += 1 << 30
				}
			}
			return g.withPhdrs(progs, int64(g.f.Phoff))
		}},
		{"missing page-table page (kernel-image PMD)", []string{"E2"}, func(g *Core) (*Mutation, error) {
			m, err := g.mem()
			if err != nil {
				return nil, err
			}
			uts, _ := g.info.Symbol("init_uts_ns")
			w, err := m.Translate(uts)
			if err != nil {
				return nil, err
			}
			for _, l := range w.Levels {
				if l.Name == "pmd" {
					return g.punch(l.TableAddr)
				}
			}
			return nil, fmt.Errorf("init_uts_ns has no PMD level (1 GiB page?)")
		}},
		{"overlapping PT_LOAD with other bytes over init_uts_ns", []string{"B12"}, func(g *Core) (*Mutation, error) {
			uts, _ := g.info.Symbol("init_uts_ns")
			img := g.f.Progs[g.imageIdx()]
			pa := img.Paddr + (uts - img.Vaddr)
			// Point at the first page of the file's segment data: other
			// bytes than init_uts_ns's.
			extra := elfcore.ProgHeader{Type: elf.PT_LOAD, Flags: elf.PF_R, Off: uint64(g.dataStart), Vaddr: uts &^ (pageSize - 1), Paddr: pa &^ (pageSize - 1), Filesz: pageSize, Memsz: pageSize}
			progs := append(slices.Clone(g.f.Progs), extra)
			return g.withPhdrs(progs, int64(g.f.Phoff))
		}},
		{"p_filesz < p_memsz", []string{"B10"}, func(g *Core) (*Mutation, error) {
			last := len(g.f.Progs) - 1
			return g.setPhdr(last, func(p *elfcore.ProgHeader) { p.Filesz -= min(p.Filesz, pageSize) }), nil
		}},
		// Where the cut falls decides which kernel structures survive (the
		// per-CPU areas, node data, mem_section, the printk ring), and
		// each boot puts them elsewhere: three cuts, each page-aligned.
		{"truncated after a quarter of the data", []string{"B11"}, func(g *Core) (*Mutation, error) {
			return &Mutation{Size: g.dataStart + (g.dataEnd()-g.dataStart)/4&^(pageSize-1)}, nil
		}},
		{"truncated after half the data", []string{"B11"}, func(g *Core) (*Mutation, error) {
			return &Mutation{Size: g.dataStart + (g.dataEnd()-g.dataStart)/2}, nil
		}},
		{"truncated after three quarters of the data", []string{"B11"}, func(g *Core) (*Mutation, error) {
			return &Mutation{Size: g.dataStart + (g.dataEnd()-g.dataStart)*3/4&^(pageSize-1)}, nil
		}},
		{"truncated just before the last CPU's TSS", []string{"B11", "E6"}, func(g *Core) (*Mutation, error) {
			off, err := g.lastTSSOffset()
			if err != nil {
				return nil, err
			}
			return &Mutation{Size: off &^ (pageSize - 1)}, nil
		}},
		{"truncated inside the kernel image", []string{"B11", "E3"}, func(g *Core) (*Mutation, error) {
			img := g.f.Progs[g.imageIdx()]
			return &Mutation{Size: int64(img.Off) + int64(img.Filesz)/2}, nil
		}},
	}
}

// dataEnd is the end of the last file-backed segment data.
func (g *Core) dataEnd() int64 {
	var end int64
	for _, p := range g.f.Progs[1:] {
		end = max(end, int64(p.Off+p.Filesz))
	}
	return end
}

// WriteFile writes the mutant of the good file at goodPath to path: a
// sparse copy (holes stay holes), the patches, then the new size.
func (m *Mutation) WriteFile(goodPath, path string) error {
	src, err := os.Open(goodPath)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	st, err := src.Stat()
	if err != nil {
		dst.Close()
		return err
	}
	size := m.Shift.at(st.Size())
	if err := sparseCopy(dst, src, st.Size(), m.Shift); err != nil {
		dst.Close()
		return err
	}
	for _, p := range m.Patches {
		if _, err := dst.WriteAt(p.Data, p.Off); err != nil {
			dst.Close()
			return err
		}
		size = max(size, p.Off+int64(len(p.Data)))
	}
	if m.Size >= 0 {
		size = m.Size
	}
	if err := dst.Truncate(size); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// sparseCopy copies the data extents of src (found with SEEK_DATA and
// SEEK_HOLE) to the same offsets of dst, or moved by shift.
func sparseCopy(dst, src *os.File, size int64, shift Shift) error {
	if err := dst.Truncate(shift.at(size)); err != nil {
		return err
	}
	const seekData, seekHole = 3, 4
	for off := int64(0); off < size; {
		start, err := src.Seek(off, seekData)
		if err != nil {
			break // no more data (ENXIO)
		}
		end, err := src.Seek(start, seekHole)
		if err != nil {
			end = size
		}
		if shift.By > 0 && start < shift.From && end > shift.From {
			end = shift.From // the two sides of the shift are copied apart
		}
		if _, err := src.Seek(start, io.SeekStart); err != nil {
			return err
		}
		if _, err := dst.Seek(shift.at(start), io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(dst, src, end-start); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// Build parses the good vmcore in good and builds the mutant's bytes.
func (m Mutant) Build(good []byte) ([]byte, error) {
	g, err := ParseCore(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		return nil, err
	}
	mu, err := m.Make(g)
	if err != nil {
		return nil, err
	}
	return mu.apply(good), nil
}

// Info returns the good vmcore's VMCOREINFO.
func (g *Core) Info() *vmcoreinfo.Info { return g.info }

// lastTSSOffset is the file offset of the last CPU's TSS IST array (what
// crash reads first for each CPU), found through the kernel's own symbol
// table in the dump.
func (g *Core) lastTSSOffset() (int64, error) {
	m, err := g.mem()
	if err != nil {
		return 0, err
	}
	t, err := kallsyms.Read(m, g.info)
	if err != nil {
		return 0, err
	}
	arr, ok1 := t.Lookup("__per_cpu_offset")
	tss, ok2 := t.Lookup("cpu_tss_rw")
	load, _ := t.Lookup("__per_cpu_load")
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("kallsyms has no __per_cpu_offset or cpu_tss_rw")
	}
	var last uint64
	for i := range 8192 {
		v, err := m.Uint64(arr + uint64(i)*8)
		if err != nil || v == 0 || v == load {
			break
		}
		last = v
	}
	if last == 0 {
		return 0, fmt.Errorf("__per_cpu_offset[0] is unset")
	}
	pa, err := m.VtoP(last + tss + 36)
	if err != nil {
		return 0, err
	}
	for _, p := range g.f.Progs {
		if p.Type == elf.PT_LOAD && p.Contains(pa) && p.Vaddr < x86.KernelTextBase && pa-p.Paddr < p.Filesz {
			return int64(p.Off + pa - p.Paddr), nil
		}
	}
	return 0, fmt.Errorf("no RAM PT_LOAD holds physical %#x", pa)
}
