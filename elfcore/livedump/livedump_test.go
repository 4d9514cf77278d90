package livedump_test

import (
	"bytes"
	"ldx/elfcore/kernel/x86"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/livedump"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// TestAgainstEmulator checks the format package against the bytes
// kmodtest's emulator of the v1 module writes, encoded there field by
// field: for 1 to 16 CPUs, the note-size formula and its inverse, where the
// VMCOREINFO note starts and how much of its text reaches the device, and
// the classification of the header page actually on the device.
func TestAgainstEmulator(t *testing.T) {
	dir := t.TempDir()
	for cpus := 1; cpus <= 16; cpus++ {
		k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{CPUs: cpus})
		path := filepath.Join(dir, "dev")
		rep, err := kmodtest.WriteFile(path, k, &kmodtest.Run{Start: time.Unix(1700000000, 0), Prepared: manifest.Zeroed})
		if err != nil {
			t.Fatal(err)
		}
		s := len(rep.VMCOREINFO)

		// The formula against the merged notes as encoded.
		if got := livedump.NotesSize(cpus, s); got != len(rep.Notes) || got != rep.NotesSize {
			t.Errorf("%d CPUs: NotesSize %d, the emulator's notes are %d bytes (claimed %d)", cpus, got, len(rep.Notes), rep.NotesSize)
		}
		if n, ok := livedump.CPUs(len(rep.Notes), s); !ok || n != cpus {
			t.Errorf("%d CPUs: CPUs(%d, %d) = %d, %v", cpus, len(rep.Notes), s, n, ok)
		}
		if _, ok := livedump.CPUs(len(rep.Notes)+4, s); ok {
			t.Errorf("%d CPUs: CPUs accepts a note size that is no whole number of CPU notes", cpus)
		}
		notes, _ := elfcore.ParseNotes(rep.Notes, livedump.NotesOffset)
		if len(notes) != cpus+1 {
			t.Fatalf("%d CPUs: %d notes in the emulator's merged notes", cpus, len(notes))
		}
		for i, n := range notes[:cpus] {
			if !n.Is(elfcore.NameCore, elfcore.NT_PRSTATUS) || n.Size() != livedump.CoreNoteSize || len(n.Desc) != livedump.PRStatusSize ||
				n.Off != int64(livedump.NotesOffset+i*livedump.CoreNoteSize) {
				t.Errorf("%d CPUs: CPU note %d is %d bytes at %#x", cpus, i, n.Size(), n.Off)
			}
		}
		off := livedump.VMCOREINFOOffset(cpus)
		if notes[cpus].Off != int64(livedump.NotesOffset+off) {
			t.Errorf("%d CPUs: VMCOREINFO note at %#x, VMCOREINFOOffset says %#x", cpus, notes[cpus].Off, livedump.NotesOffset+off)
		}
		if d, ok := livedump.VMCOREINFOHeader(rep.Notes[off:]); !ok || int(d) != s {
			t.Errorf("%d CPUs: VMCOREINFOHeader = %d, %v; want %d", cpus, d, ok, s)
		}

		// What reaches the device: page 1 holds the first page of the notes.
		dev, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		page1 := dev[livedump.NotesOffset:livedump.NotesEnd]
		kept := livedump.TextKept(cpus, s)
		text := off + livedump.VMCOREINFOHeaderSize
		switch {
		case kept >= 0:
			if !bytes.Equal(page1[text:text+kept], rep.VMCOREINFO[:kept]) || (kept < s && text+kept != livedump.PageSize) {
				t.Errorf("%d CPUs: TextKept %d does not match the text in page 1", cpus, kept)
			}
		case text <= livedump.PageSize:
			t.Errorf("%d CPUs: TextKept %d < 0, but the text starts inside page 1", cpus, kept)
		}
		if whole := cpus <= livedump.MaxCoreNotesWritten; whole != (off <= livedump.PageSize) {
			t.Errorf("%d CPUs: MaxCoreNotesWritten %d disagrees with the CPU notes' end %d", cpus, livedump.MaxCoreNotesWritten, off)
		}

		// The header on the device.
		f, err := elfcore.NewFile(bytes.NewReader(dev), int64(len(dev)))
		if err != nil {
			t.Fatal(err)
		}
		if !livedump.HasMergedNote(f) || !livedump.IsLayout(f) {
			t.Fatalf("%d CPUs: the emulator's header is not classified as the livedump layout", cpus)
		}
		h := livedump.SplitHeader(f)
		if h.Notes.Filesz != uint64(livedump.NotesSize(cpus, s)) || h.NotesCut() != rep.NotesCut || h.NotesCut() != (kept < s) {
			t.Errorf("%d CPUs: PT_NOTE %d bytes, cut %v; emulator cut %v", cpus, h.Notes.Filesz, h.NotesCut(), rep.NotesCut)
		}
		if h.RAM.Paddr != livedump.RAMStart || h.RAM.End() != livedump.RAMEnd(k.MaxPFN) || h.RAM.End() != rep.DumpEnd ||
			h.MaxPFN() != k.MaxPFN || h.PageOffset() != k.PageOffsetBase {
			t.Errorf("%d CPUs: RAM PT_LOAD [%#x, %#x) max_pfn %#x page_offset %#x; kernel max_pfn %#x page_offset %#x",
				cpus, h.RAM.Paddr, h.RAM.End(), h.MaxPFN(), h.PageOffset(), k.MaxPFN, k.PageOffsetBase)
		}
		if h.Text.Paddr != k.TextPhys || h.Text.Vaddr != k.TextVirt || h.PhysBase() != k.TextPhys-(k.TextVirt-x86.KernelTextBase) {
			t.Errorf("%d CPUs: image PT_LOAD %#x/%#x, kernel %#x/%#x", cpus, h.Text.Paddr, h.Text.Vaddr, k.TextPhys, k.TextVirt)
		}
		if got := livedump.MergedHeaderSize(cpus, cpus); got != livedump.PageSize {
			t.Errorf("%d CPUs: MergedHeaderSize %d, want one page", cpus, got)
		}
		for _, w := range rep.Written {
			if w.Start < livedump.BIOSHoleEnd && w.End > livedump.BIOSHoleStart {
				t.Errorf("%d CPUs: the emulator wrote [%#x, %#x), inside [BIOSHoleStart, BIOSHoleEnd)", cpus, w.Start, w.End)
			}
		}
	}
	// K-10: from 70 possible CPUs the buffer is two pages, and for up to
	// 142 possible it stays so after the merge unless at least 74 are
	// present.
	if livedump.MergedHeaderSize(69, 1) != livedump.PageSize || livedump.MergedHeaderSize(70, 70) <= livedump.PageSize ||
		livedump.MergedHeaderSize(142, 73) <= livedump.PageSize || livedump.MergedHeaderSize(142, 74) != livedump.PageSize {
		t.Error("MergedHeaderSize disagrees with the K-10 thresholds")
	}
}
