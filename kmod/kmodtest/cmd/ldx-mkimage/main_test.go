package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/kmod/kmodtest"
	"ldx/kmod/kmodtest/guest"
	"ldx/kmod/manifest"
)

// TestRun makes a QEMU-like dump of a synthetic guest and its facts, runs
// the tool and checks the image against kmodtest's own rendering.
func TestRun(t *testing.T) {
	src := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 48 << 20, CPUs: 2, KASLROffset: 0x1e000000})
	dir := t.TempDir()
	const size = 48 << 20

	// Kernel variables the tool reads from the dump.
	maxPFNVar, pobVar := src.TextVirt+0x345678, src.TextVirt+0x345680
	vars := map[uint64]uint64{maxPFNVar: src.MaxPFN, pobVar: kmodtest.PageOffset4Level}

	var notes []elfcore.Note
	for cpu := range 2 {
		s := elfcore.PRStatus{Pid: uint32(cpu + 1)}
		notes = append(notes, s.Note())
	}
	notes = append(notes, elfcore.Note{Name: "VMCOREINFO", Desc: src.VMCOREINFO})
	dump := filepath.Join(dir, "guest.elf")
	f, err := os.Create(dump)
	if err != nil {
		t.Fatal(err)
	}
	w := elfcore.NewWriter(f, elf.EM_X86_64, 1, elfcore.EncodeNotes(notes))
	off := uint64(w.DataOffset())
	w.AddLoad(elfcore.ProgHeader{Flags: elf.PF_R | elf.PF_W | elf.PF_X, Off: off, Filesz: size, Memsz: size})
	buf := make([]byte, 1<<20)
	for a := uint64(0); a < size; a += uint64(len(buf)) {
		src.Mem.ReadAt(buf, int64(a))
		f.WriteAt(buf, int64(off+a))
	}
	for va, v := range vars {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		f.WriteAt(b[:], int64(off+x86.ImagePhys(va, src.PhysBase())))
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	facts := guest.Facts{
		Release:    "6.1.0-ldx-synthetic",
		SystemRAM:  []guest.Range{{Start: guest.Hex(src.RAM[0].Start), End: guest.Hex(src.RAM[0].End - 1)}, {Start: guest.Hex(src.RAM[1].Start), End: guest.Hex(src.RAM[1].End - 1)}},
		VMCOREINFO: guest.NoteAddr{Addr: guest.Hex(src.VMCOREINFONote), Size: kmodtest.VMCOREINFONoteSize},
		NumPresent: 2,
		CrashNotes: []guest.CrashNote{{CPU: 0, Addr: guest.Hex(src.CrashNotes[0])}, {CPU: 1, Addr: guest.Hex(src.CrashNotes[1])}},
		Symbols: map[string]guest.Hex{"_text": guest.Hex(src.TextVirt), "_end": guest.Hex(src.TextVirt + src.TextSize),
			"max_pfn": guest.Hex(maxPFNVar), "page_offset_base": guest.Hex(pobVar)},
	}
	fj, _ := json.Marshal(facts)
	factsPath := filepath.Join(dir, "facts.json")
	os.WriteFile(factsPath, fj, 0o644)

	out := filepath.Join(dir, "dev.img")
	var stdout bytes.Buffer
	err = run([]string{"-dump", dump, "-facts", factsPath, "-o", out, "-prepared", "marked", "-manifest",
		"-start", "1700000000", "-pid", "15", "-ip", strconv.FormatUint(src.IP, 16),
		"-unwritten", "1000000-1100000", "-stop", "finish", "-stale-seed", "3"}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(stdout.String())

	img, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	m, err := manifest.Read(img)
	if err != nil || m.Prepared != manifest.Marked || m.MaxPFN != src.MaxPFN || m.Tool != "ldx-mkimage" {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	// The same run rendered directly from the synthetic kernel.
	want := filepath.Join(dir, "want.img")
	if _, err := kmodtest.WriteFile(want, src, &kmodtest.Run{Prepared: manifest.Marked, Nonce: m.Nonce,
		Manifest: &manifest.Manifest{Tool: "ldx-mkimage"}, Start: m.Time, StopBefore: kmodtest.Finish, StaleSeed: 3,
		Unwritten: []elfcore.Range{{Start: 0x1000000, End: 0x1100000}}}); err != nil {
		t.Fatal(err)
	}
	wb, _ := os.ReadFile(want)
	gb, _ := os.ReadFile(out)
	if len(wb) != len(gb) {
		t.Fatalf("image %d bytes, want %d", len(gb), len(wb))
	}
	varPage := func(va uint64) uint64 { return x86.ImagePhys(va, src.PhysBase()) / kmodtest.PageSize }
	for pfn := 0; pfn < len(wb)/kmodtest.PageSize; pfn++ {
		a, b := wb[pfn*kmodtest.PageSize:][:kmodtest.PageSize], gb[pfn*kmodtest.PageSize:][:kmodtest.PageSize]
		if uint64(pfn) == varPage(maxPFNVar) {
			continue // the planted variables are only in the dump
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("pfn %#x differs", pfn)
		}
	}

	// -zero-text hides _stext.._etext, page-aligned.
	facts.Symbols["_stext"], facts.Symbols["_etext"] = guest.Hex(src.TextVirt), guest.Hex(src.TextVirt+0x1345)
	fj, _ = json.Marshal(facts)
	os.WriteFile(factsPath, fj, 0o644)
	out2 := filepath.Join(dir, "dev2.img")
	if err := run([]string{"-dump", dump, "-facts", factsPath, "-o", out2, "-prepared", "zeroed", "-manifest",
		"-start", "1700000000", "-zero-text"}, &stdout); err != nil {
		t.Fatal(err)
	}
	gb2, _ := os.ReadFile(out2)
	text := gb2[src.TextPhys:][:0x2000]
	if !bytes.Equal(text, make([]byte, len(text))) || bytes.Equal(gb2[src.TextPhys+0x2000:][:kmodtest.PageSize], make([]byte, kmodtest.PageSize)) {
		t.Fatal("-zero-text: want the two text pages zero and the page after them not")
	}
	if err := run([]string{"-dump", dump, "-o", out2, "-zero-text"}, &stdout); err == nil {
		t.Fatal("-zero-text without -facts accepted")
	}
}
