package kmodtest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/elfcore/livedump"
	"ldx/kmod/manifest"
	"ldx/vmcoreinfo/vmcoreinfotest"
)

var testStart = time.Unix(1700000000, 0) // CRASHTIME line: 21 bytes, as on real runs

// fakeText returns a VMCOREINFO-like text of exactly n bytes.
func fakeText(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		line := fmt.Sprintf("OFFSET(fake_%04d.field)=%d\n", i, i*8)
		if rest := n - len(b); len(line) > rest {
			line = strings.Repeat("X", rest-1) + "\n"
			if rest == 1 {
				line = "\n"
			}
		}
		b = append(b, line...)
	}
	return b
}

// memDev is an in-memory device: tests write images into memory because
// the disk of a shared test machine is by far the slowest part.
type memDev struct{ b []byte }

func (d *memDev) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(d.b)) {
		return 0, fmt.Errorf("write past the end of the device at %#x", off)
	}
	return copy(d.b[off:], p), nil
}

func (d *memDev) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(d.b).ReadAt(p, off)
}

// image writes the image of run r for k into memory.
func image(t *testing.T, k *Kernel, r *Run) (*memDev, *Report) {
	t.Helper()
	size := r.DeviceSize
	if size == 0 {
		size = int64((k.MaxPFN+1)*PageSize+(1<<20)-1)&^(1<<20-1) + 1<<20
	}
	d := &memDev{b: make([]byte, size)}
	rep, err := WriteImage(d, k, r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(d.b)) != rep.DeviceSize {
		t.Fatalf("device is %d bytes, report says %d", len(d.b), rep.DeviceSize)
	}
	return d, rep
}

func page(t *testing.T, f io.ReaderAt, pfn uint64) []byte {
	t.Helper()
	b := make([]byte, PageSize)
	if _, err := f.ReadAt(b, int64(pfn*PageSize)); err != nil {
		t.Fatalf("reading pfn %#x: %v", pfn, err)
	}
	return b
}

// TestHeaderBytes checks page 0 against the final header table of package livedump's device layout, spelled
// out byte by byte, and reads it back with debug/elf and elfcore.
func TestHeaderBytes(t *testing.T) {
	k := NewSynthetic(SyntheticOptions{})
	k.VMCOREINFO = fakeText(3289) // the sample size of package livedump's notes: S = 3310 with CRASHTIME
	k.MaxPFN = 0x3fe0
	f, rep := image(t, k, &Run{Start: testStart, Prepared: manifest.Zeroed})

	want, _ := hex.DecodeString(strings.Join(strings.Fields(`
		7f454c46 02010100 00000000 00000000  0400 3e00 01000000  0000000000000000
		4000000000000000 0000000000000000 00000000 4000 3800 0300 0000 0000 0000

		04000000 00000000 0010000000000000 0000000000000000 0000000000000000
		d00f000000000000 d00f000000000000 0000000000000000

		01000000 07000000 0000000100000000 00000081ffffffff 0000000100000000
		0000000100000000 0000000100000000 0000000000000000

		01000000 07000000 0000100000000000 0000100080 88ffff 0000100000000000
		0010ee0300000000 0010ee0300000000 0000000000000000
	`), ""))
	if len(want) != ELFHeaderSize {
		t.Fatalf("test table is %d bytes", len(want))
	}
	got := page(t, f, 0)
	if !bytes.Equal(got[:ELFHeaderSize], want) {
		t.Errorf("header:\n got %x\nwant %x", got[:ELFHeaderSize], want)
	}
	if !elfcore.IsZero(got[ELFHeaderSize:]) {
		t.Error("page 0 not zero after the program headers")
	}
	if rep.NotesSize != 4048 || rep.NotesCut { // the notes size for N = 2 (package livedump, "Page 1: the notes")
		t.Errorf("notes size %d cut %v, want 4048 uncut", rep.NotesSize, rep.NotesCut)
	}

	// debug/elf is an independent reader of the same bytes.
	ef, err := elf.NewFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if ef.Type != elf.ET_CORE || ef.Machine != elf.EM_X86_64 || ef.OSABI != elf.ELFOSABI_NONE || len(ef.Progs) != 3 {
		t.Fatalf("debug/elf: %+v", ef.FileHeader)
	}
	ram := ef.Progs[2].ProgHeader
	if ram.Type != elf.PT_LOAD || ram.Off != RAMStart || ram.Paddr != RAMStart || ram.Vaddr != PageOffset4Level+RAMStart ||
		ram.Filesz != 0x3fe1000-RAMStart || ram.Flags != elf.PF_R|elf.PF_W|elf.PF_X || ram.Align != 0 {
		t.Errorf("debug/elf RAM phdr %+v", ram)
	}
	// elfcore reads it the same way.
	cf, err := elfcore.NewFile(f, rep.DeviceSize)
	if err != nil {
		t.Fatal(err)
	}
	if cf.Phoff != 64 || cf.Phnum != 3 || cf.Progs[0].Off != 0x1000 || cf.Progs[0].Filesz != 4048 ||
		cf.Progs[1].Paddr != k.TextPhys || cf.Progs[1].Vaddr != k.TextVirt || cf.Progs[1].Memsz != k.TextSize {
		t.Errorf("elfcore: %+v %+v", cf.FileHeader, cf.Progs)
	}
}

// TestNotesCut checks K-1: one page of notes, a PT_NOTE claiming all of
// them, and the surviving text length (package vmcoreinfo, "What a cut note keeps").
func TestNotesCut(t *testing.T) {
	fedora := vmcoreinfotest.Text(t, "fedora-6.2.15-kcore.txt")
	tests := []struct {
		name     string
		cpus     int
		text     []byte
		kept     int    // "text kept" of package vmcoreinfo's cut-note table; -1 = all
		lastLine string // last complete line kept (follows from the text kept)
	}{
		{"synthetic 1 CPU", 1, nil, -1, ""},
		{"synthetic 3 CPUs", 3, nil, 0, ""},
		{"synthetic 4 CPUs", 4, nil, 0, ""},
		{"synthetic 8 CPUs", 8, nil, 0, ""},
		{"fedora 2 CPUs", 2, fedora, -1, "NUMBER(sme_mask)=0"},
		{"fedora 3 CPUs", 3, fedora, 3004, "SYMBOL(kallsyms_token_index)="},
		{"fedora 4 CPUs", 4, fedora, 2648, "NUMBER(PG_slab)="},
		{"fedora 8 CPUs", 8, fedora, 1224, "OFFSET(vmap_area.va_start)="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := NewSynthetic(SyntheticOptions{CPUs: tc.cpus})
			if strings.HasPrefix(tc.name, "fedora") {
				k.VMCOREINFO = tc.text
			}
			f, rep := image(t, k, &Run{Start: testStart, Prepared: manifest.Zeroed})
			s := len(k.VMCOREINFO) + 21
			wantSize := 356*tc.cpus + 24 + (s+3)&^3
			if rep.NotesSize != wantSize || len(rep.Notes) != wantSize {
				t.Fatalf("notes size %d (%d bytes), want %d", rep.NotesSize, len(rep.Notes), wantSize)
			}
			cf, err := elfcore.NewFile(f, rep.DeviceSize)
			if err != nil {
				t.Fatal(err)
			}
			if cf.Progs[0].Filesz != uint64(wantSize) {
				t.Errorf("PT_NOTE p_filesz %d, want the full %d", cf.Progs[0].Filesz, wantSize)
			}
			p1 := page(t, f, 1)
			if !bytes.Equal(p1[:min(wantSize, PageSize)], rep.Notes[:min(wantSize, PageSize)]) || !elfcore.IsZero(p1[min(wantSize, PageSize):]) {
				t.Error("page 1 is not the first page of the notes, zero-padded")
			}
			for c := range tc.cpus {
				n := p1[356*c:]
				if binary.LittleEndian.Uint32(n[0:]) != 5 || binary.LittleEndian.Uint32(n[4:]) != 336 ||
					binary.LittleEndian.Uint32(n[8:]) != 1 || string(n[12:17]) != "CORE\x00" {
					t.Fatalf("CORE note %d header % x", c, n[:20])
				}
				desc := n[20 : 20+336]
				if binary.LittleEndian.Uint32(desc[32:]) != k.LeaderPid || binary.LittleEndian.Uint64(desc[240:]) != k.IP {
					t.Errorf("CORE note %d: pid/ip wrong", c)
				}
				desc[32], desc[33], desc[34], desc[35] = 0, 0, 0, 0
				clear(desc[240:248])
				if !elfcore.IsZero(desc) {
					t.Errorf("CORE note %d: more than pid and ip set", c)
				}
			}
			vh := p1[356*tc.cpus:]
			if binary.LittleEndian.Uint32(vh[0:]) != 11 || binary.LittleEndian.Uint32(vh[4:]) != uint32(s) ||
				binary.LittleEndian.Uint32(vh[8:]) != 0 || string(vh[12:24]) != "VMCOREINFO\x00\x00" {
				t.Fatalf("VMCOREINFO header % x", vh[:24])
			}
			kept := min(s, PageSize-356*tc.cpus-24)
			if rep.TextKept != kept {
				t.Errorf("TextKept %d, want %d", rep.TextKept, kept)
			}
			if tc.kept > 0 && kept != tc.kept {
				t.Errorf("kept %d, want %d", kept, tc.kept)
			}
			if (kept < s) != rep.NotesCut {
				t.Errorf("NotesCut %v with %d of %d text bytes kept", rep.NotesCut, kept, s)
			}
			text := vh[24 : 24+kept]
			if !bytes.Equal(text, rep.VMCOREINFO[:kept]) {
				t.Error("kept text differs from the run's text")
			}
			if kept == s && !bytes.HasSuffix(text, []byte("CRASHTIME=1700000000\n")) {
				t.Error("complete text does not end in CRASHTIME")
			}
			if tc.lastLine != "" {
				lines := strings.Split(string(text[:bytes.LastIndexByte(text, '\n')]), "\n")
				last := lines[len(lines)-1]
				if kept == s {
					last = lines[len(lines)-2] // before CRASHTIME
				}
				if !strings.HasPrefix(last, tc.lastLine) {
					t.Errorf("last complete line kept %q, want %q", last, tc.lastLine)
				}
			}
			// Past the page, the "notes" are pfn 2's real memory (package livedump, "Page 1: the notes").
			if kept < s && !isSyntheticPage(page(t, f, 2), 0, 2) {
				t.Error("pfn 2 does not hold memory")
			}
		})
	}
}

func TestTwelveCPUsCutCoreNotes(t *testing.T) {
	k := NewSynthetic(SyntheticOptions{CPUs: 12})
	f, rep := image(t, k, &Run{Start: testStart, Prepared: manifest.Zeroed})
	if rep.TextKept >= 0 {
		t.Errorf("TextKept %d: with 12 CPUs the VMCOREINFO header is past the page", rep.TextKept)
	}
	if p1 := page(t, f, 1); !bytes.Equal(p1, rep.Notes[:PageSize]) {
		t.Error("page 1 is not the first 4096 bytes of the notes")
	}
}

// TestNeverWritten checks every kind of never-written page for each
// preparation, and that written pages hold memory.
func TestNeverWritten(t *testing.T) {
	const mib = 1 << 20
	nonce := manifest.Nonce{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	newKernel := func() *Kernel {
		k := NewSynthetic(SyntheticOptions{Seed: 7})
		// A 8 MiB hole (reserved/MMIO) inside the RAM PT_LOAD.
		k.RAM = []elfcore.Range{{Start: 0x1000, End: 0x9fc00}, {Start: RAMStart, End: 32 * mib}, {Start: 40 * mib, End: 62 * mib}}
		k.MaxPFN = 62 * mib / PageSize
		return k
	}
	bufs := elfcore.Range{Start: 20 * mib, End: 21 * mib} // the module's own pages
	lost := elfcore.Range{Start: 50 * mib, End: 50*mib + 3*PageSize}
	never := map[string]uint64{
		"BIOS window":  0xA5,
		"hole":         36 * mib / PageSize,
		"max_pfn page": 62 * mib / PageSize,
		"past dump":    62*mib/PageSize + 5,
		"unselected":   20*mib/PageSize + 1,
		"lost":         50*mib/PageSize + 2,
	}
	for _, prep := range []manifest.Preparation{"", manifest.Unprepared, manifest.Zeroed, manifest.Marked} {
		t.Run(string(prep)+"_", func(t *testing.T) {
			k := newKernel()
			r := &Run{Start: testStart, Prepared: prep, Nonce: nonce, StaleSeed: 99,
				Unwritten: []elfcore.Range{bufs}, Lost: []elfcore.Range{lost}}
			f, rep := image(t, k, r)
			for what, pfn := range never {
				p := page(t, f, pfn)
				var ok bool
				switch {
				case prep == "" || prep == manifest.Unprepared:
					ok = isStalePage(p, 99, pfn)
				case prep == manifest.Marked && pfn <= k.MaxPFN:
					ok = manifest.IsMarker(p, nonce, pfn)
				default:
					ok = elfcore.IsZero(p)
				}
				if !ok {
					t.Errorf("%s (pfn %#x) holds % x…", what, pfn, p[:32])
				}
				if rep.WasWritten(pfn) {
					t.Errorf("report says %s (pfn %#x) was written", what, pfn)
				}
			}
			for _, pfn := range []uint64{2, 0x9f, 0x100, 0x1234, 40 * mib / PageSize, k.MaxPFN - 1} {
				if !isSyntheticPage(page(t, f, pfn), 7, pfn) || !rep.WasWritten(pfn) {
					t.Errorf("pfn %#x does not hold memory", pfn)
				}
			}
			if got := pagesOf(rep.Unwritten); got.count() != 256+3 {
				t.Errorf("report: %d unwritten RAM pages, want 259: %v", got.count(), rep.Unwritten)
			}
			// Pages 0 and 1 are this run's.
			if !bytes.Equal(page(t, f, 0), rep.Header) || !bytes.Equal(page(t, f, 1), rep.Notes[:PageSize]) {
				t.Error("pages 0/1 are not this run's header and notes")
			}
		})
	}
}

// TestVMCOREINFONotePage checks what package livedump says of the notes: the kernel's note page holds the
// complete note with CRASHTIME, readable through the image's RAM PT_LOAD.
func TestVMCOREINFONotePage(t *testing.T) {
	for _, prev := range []int{0, 1, 3} {
		t.Run(fmt.Sprint("previous runs ", prev), func(t *testing.T) {
			k := NewSynthetic(SyntheticOptions{CPUs: 4})
			f, rep := image(t, k, &Run{Start: testStart, PreviousRuns: prev})
			cf, err := elfcore.NewFile(f, rep.DeviceSize)
			if err != nil {
				t.Fatal(err)
			}
			mem := cf.Phys()
			hdr := make([]byte, 24)
			if _, err := mem.ReadAt(hdr, int64(k.VMCOREINFONote)); err != nil {
				t.Fatal(err)
			}
			descsz := binary.LittleEndian.Uint32(hdr[4:])
			raw := make([]byte, 24+descsz+12)
			if _, err := mem.ReadAt(raw, int64(k.VMCOREINFONote)); err != nil {
				t.Fatal(err)
			}
			notes, err := elfcore.ParseNotes(raw, int64(k.VMCOREINFONote))
			if len(notes) != 1 || !notes[0].Is("VMCOREINFO", 0) {
				t.Fatalf("notes %v, err %v", notes, err)
			}
			want := string(k.VMCOREINFO) + strings.Repeat("\x00", 21*prev) + "CRASHTIME=1700000000\n"
			if string(notes[0].Desc) != want {
				t.Errorf("note text ends %q, want …%q", notes[0].Desc[max(0, len(notes[0].Desc)-80):], want[len(want)-80:])
			}
			if !bytes.Equal(notes[0].Desc, rep.VMCOREINFO) {
				t.Error("report's text differs from the note page")
			}
			if rep.NotesSize != livedump.NotesSize(4, len(want)) {
				t.Errorf("notes size %d, want %d", rep.NotesSize, livedump.NotesSize(4, len(want)))
			}
			// The crash_notes buffers were rewritten by START too.
			for cpu, a := range k.CrashNotes {
				b := make([]byte, NoteBufSize)
				mem.ReadAt(b, int64(a))
				want := append(bytes.Clone(rep.Notes[356*cpu:356*(cpu+1)]), make([]byte, 12)...)
				if cpu == 0 && prev == 0 {
					want = make([]byte, NoteBufSize) // dumped before crash_save_cpu
				}
				if !bytes.Equal(b, want) {
					t.Errorf("crash_notes of CPU %d: % x…", cpu, b[:24])
				}
			}
		})
	}
}

func TestCrashTimeCapped(t *testing.T) {
	got := runText(fakeText(4080), 2, testStart.Unix())
	if len(got) != VMCOREINFOBytes {
		t.Fatalf("text %d bytes, the kernel caps at %d", len(got), VMCOREINFOBytes)
	}
	if !bytes.Equal(got[4080:], make([]byte, 16)) {
		t.Errorf("tail %q: the earlier runs grew the size to the cap, leaving only NULs", got[4080:])
	}
}

// TestStopBefore checks runs that never reached FINISH or SWEEP (package livedump, "Seen on real runs";
// package kmod: the kernel interface, on abandoning a run), and an earlier run's header left on the
// device (K-2).
func TestStopBefore(t *testing.T) {
	early := elfcore.Range{Start: 0x200000, End: 0x204000}
	tests := []struct {
		name     string
		run      Run
		page0    string // "stale", "zero", "old", "new"
		page1    string
		written  uint64 // a RAM pfn outside Early
		wantMem  bool
		oldCPUs  int
		earlyPfn uint64
	}{
		{"finish unprepared", Run{StopBefore: Finish}, "stale", "new", 0x300, true, 0, 0x200},
		{"finish zeroed", Run{StopBefore: Finish, Prepared: manifest.Zeroed}, "zero", "new", 0x300, true, 0, 0x200},
		{"finish old header", Run{StopBefore: Finish, OldHeader: &OldRun{CPUs: 1}}, "old", "new", 0x300, true, 1, 0x200},
		{"sweep unprepared", Run{StopBefore: Sweep, Early: []elfcore.Range{early}}, "stale", "stale", 0x300, false, 0, 0x200},
		{"sweep old header", Run{StopBefore: Sweep, Early: []elfcore.Range{early}, OldHeader: &OldRun{Start: testStart.Add(-time.Minute)}}, "old", "old", 0x300, false, 0, 0x202},
		{"finish marked", Run{StopBefore: Finish, Prepared: manifest.Marked}, "zero", "new", 0x300, true, 0, 0x200},
		{"complete, header lost (K-4)", Run{Lost: []elfcore.Range{{Start: 0, End: PageSize}}, OldHeader: &OldRun{}}, "old", "new", 0x300, true, 0, 0x200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := NewSynthetic(SyntheticOptions{CPUs: 3})
			r := tc.run
			r.Start, r.StaleSeed = testStart, 5
			f, rep := image(t, k, &r)
			old := &Report{}
			if r.OldHeader != nil {
				// What the earlier run wrote: the same emulator, one run before.
				oc := tc.oldCPUs
				if oc == 0 {
					oc = k.CPUs
				}
				ok := *k
				ok.CPUs, ok.CrashNotes = oc, nil
				os := r.OldHeader.Start
				if os.IsZero() {
					os = testStart.Add(-time.Hour)
				}
				_, old = image(t, &ok, &Run{Start: os, Prepared: manifest.Zeroed})
			}
			check := func(pfn uint64, want string) {
				p := page(t, f, pfn)
				var ok bool
				switch want {
				case "stale":
					ok = isStalePage(p, 5, pfn)
				case "zero":
					ok = elfcore.IsZero(p)
				case "new":
					ok = bytes.Equal(p, [][]byte{rep.Header, rep.Notes[:PageSize]}[pfn])
				case "old":
					ok = bytes.Equal(p, [][]byte{old.Header, old.Notes[:PageSize]}[pfn])
				}
				if !ok {
					t.Errorf("page %d is not %s: % x…", pfn, want, p[:64])
				}
			}
			check(0, tc.page0)
			check(1, tc.page1)
			if rep.HeaderWritten != (tc.page0 == "new") || rep.NotesWritten != (tc.page1 == "new") {
				t.Errorf("report: header %v notes %v", rep.HeaderWritten, rep.NotesWritten)
			}
			if got := isSyntheticPage(page(t, f, tc.written), 0, tc.written); got != tc.wantMem {
				t.Errorf("pfn %#x holds memory: %v, want %v", tc.written, got, tc.wantMem)
			}
			if !tc.wantMem && !isStalePage(page(t, f, tc.written), 5, tc.written) {
				t.Errorf("pfn %#x is not stale", tc.written)
			}
			if !isSyntheticPage(page(t, f, tc.earlyPfn), 0, tc.earlyPfn) {
				t.Errorf("START page %#x does not hold memory", tc.earlyPfn)
			}
			if tc.oldCPUs == 1 {
				hdr, _ := elfcore.NewFile(f, rep.DeviceSize)
				if hdr.Progs[0].Filesz != uint64(livedump.NotesSize(1, len(k.VMCOREINFO)+21)) {
					t.Errorf("old header's PT_NOTE %d: not the 1-CPU run's", hdr.Progs[0].Filesz)
				}
			}
		})
	}
}

func TestManifest(t *testing.T) {
	k := NewSynthetic(SyntheticOptions{CPUs: 4})
	nonce := manifest.NewNonce()
	m := &manifest.Manifest{Release: "6.1.0-ldx-synthetic", Nonce: nonce}
	f, rep := image(t, k, &Run{Start: testStart, Prepared: manifest.Marked, Manifest: m})
	got, err := manifest.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.Nonce != nonce || rep.Nonce != nonce || got.Prepared != manifest.Marked || got.MaxPFN != k.MaxPFN ||
		len(got.RAM) != len(k.RAM) || got.PresentCPUs != 4 || got.Release != m.Release ||
		got.VMCOREINFONote != (elfcore.Range{Start: k.VMCOREINFONote, End: k.VMCOREINFONote + 0x1024}) ||
		len(got.CrashNotes) != 4 || !got.Time.Equal(testStart) || got.Device.Size != uint64(rep.DeviceSize) {
		t.Errorf("manifest %+v", got)
	}
	if m.MaxPFN != 0 {
		t.Error("the caller's manifest was changed")
	}
	// The rest of the window keeps the markers, pages 0-1 are cleared.
	if p := page(t, f, 0xFF); !manifest.IsMarker(p, nonce, 0xFF) {
		t.Error("pfn 0xFF lost its marker")
	}
	// Without a manifest there is nothing at 0xA0000.
	f2, _ := image(t, k, &Run{Start: testStart, Prepared: manifest.Zeroed})
	if _, err := manifest.Read(f2); !errors.Is(err, manifest.ErrNone) {
		t.Errorf("manifest.Read without manifest: %v", err)
	}
}

func TestSparseAndPastEnd(t *testing.T) {
	k := NewSynthetic(SyntheticOptions{})
	t.Run("sparse file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "dev.img")
		// Old content must go: WriteImage empties a regular file.
		if err := os.WriteFile(path, bytes.Repeat([]byte{0xee}, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := WriteFile(path, k, &Run{Start: testStart, Prepared: manifest.Zeroed, DeviceSize: 4 << 30})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if st, _ := f.Stat(); st.Size() != 4<<30 {
			t.Errorf("file is %d bytes", st.Size())
		}
		if !elfcore.IsZero(page(t, f, 0xA0)) || !isSyntheticPage(page(t, f, 0x1000), 0, 0x1000) {
			t.Error("file content wrong")
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		if used := st.Blocks * 512; used > 100<<20 {
			t.Errorf("a 4 GiB image of 64 MiB of memory uses %d bytes of disk", used)
		}
		if p := page(t, f, (4<<30)/PageSize-1); !elfcore.IsZero(p) || rep.DeviceSize != 4<<30 {
			t.Error("tail of the device not zero")
		}
	})
	t.Run("device too small (K-8)", func(t *testing.T) {
		size := int64(k.MaxPFN-16)*PageSize + 100 // ends inside a page
		f, rep := image(t, k, &Run{Start: testStart, Prepared: manifest.Zeroed, DeviceSize: size})
		if n := pagesOf(rep.PastEnd).count(); n != 16 {
			t.Errorf("%d pages past the end, want 16 (%v)", n, rep.PastEnd)
		}
		// A bio crossing the end of the device fails as a whole.
		last := make([]byte, 100)
		f.ReadAt(last, size-100)
		if !elfcore.IsZero(last) || rep.WasWritten(k.MaxPFN-16) {
			t.Error("the partial last page was written")
		}
		if !rep.WasWritten(k.MaxPFN-17) || !isSyntheticPage(page(t, f, k.MaxPFN-17), 0, k.MaxPFN-17) {
			t.Error("the last whole page was not written")
		}
	})
}

func TestErrors(t *testing.T) {
	k := NewSynthetic(SyntheticOptions{})
	tests := []struct {
		name string
		k    func(*Kernel)
		r    Run
		want string
	}{
		{"old header with capture", nil, Run{Prepared: manifest.Zeroed, OldHeader: &OldRun{}}, "clears pages 0 and 1"},
		{"manifest without preparation", nil, Run{Manifest: &manifest.Manifest{}}, "set Run.Prepared"},
		{"bad preparation", nil, Run{Prepared: "wiped"}, "unknown preparation"},
		{"no memory", func(k *Kernel) { k.Mem = nil }, Run{}, "Mem is nil"},
		{"text too long", func(k *Kernel) { k.VMCOREINFO = fakeText(4097) }, Run{}, "at most 4096"},
		{"tiny device", nil, Run{DeviceSize: 4096}, "header and notes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kk := *k
			if tc.k != nil {
				tc.k(&kk)
			}
			_, err := WriteFile(filepath.Join(t.TempDir(), "img"), &kk, &tc.r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestFromELFDump builds a QEMU-like ELF dump (PT_LOADs with p_vaddr =
// p_paddr, CORE notes per vCPU, the guest's VMCOREINFO note) and reads the
// kernel facts back from it.
func TestFromELFDump(t *testing.T) {
	src := NewSynthetic(SyntheticOptions{CPUs: 3, KASLROffset: 0x2a000000})
	const size = 64 << 20
	path := filepath.Join(t.TempDir(), "qemu.elf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var notes []elfcore.Note
	for cpu := range 3 {
		s := elfcore.PRStatus{Pid: uint32(cpu + 1)}
		notes = append(notes, s.Note(), elfcore.Note{Name: "QEMU", Type: 0, Desc: make([]byte, 0x1b8)})
	}
	// QEMU copies the guest's note; a dump taken after one livedump
	// carries CRASHTIME, which FromELFDump must strip.
	notes = append(notes, elfcore.Note{Name: "VMCOREINFO", Desc: append(bytes.Clone(src.VMCOREINFO), "CRASHTIME=1700000000\n"...)})
	w := elfcore.NewWriter(f, elf.EM_X86_64, 1, elfcore.EncodeNotes(notes))
	off := uint64(w.DataOffset())
	if err := w.AddLoad(elfcore.ProgHeader{Flags: elf.PF_R | elf.PF_W | elf.PF_X, Off: off, Filesz: size, Memsz: size}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for a := uint64(0); a < size; a += uint64(len(buf)) {
		src.Mem.ReadAt(buf, int64(a))
		f.WriteAt(buf, int64(off+a))
	}
	var pob [8]byte
	binary.LittleEndian.PutUint64(pob[:], x86.PageOffset4Level)
	pobVirt := src.TextVirt + 0x123450
	f.WriteAt(pob[:], int64(off+x86.ImagePhys(pobVirt, src.PhysBase())))
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	k, closer, err := FromELFDump(path)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if k.CPUs != 3 || k.TextVirt != src.TextVirt || k.TextPhys != src.TextPhys || k.VMCOREINFONote != src.VMCOREINFONote ||
		!bytes.Equal(k.VMCOREINFO, src.VMCOREINFO) || k.PageOffsetBase != PageOffset4Level {
		t.Errorf("got %+v", k)
	}
	if v, err := k.ReadImageUint64(pobVirt); err != nil || v != x86.PageOffset4Level {
		t.Errorf("ReadImageUint64: %#x, %v", v, err)
	}
	// The kernel made from the dump yields the same image as the source.
	k.RAM, k.MaxPFN, k.TextSize, k.CrashNotes, k.LeaderPid, k.IP = src.RAM, src.MaxPFN, src.TextSize, src.CrashNotes, src.LeaderPid, src.IP
	a, _ := image(t, src, &Run{Start: testStart, Prepared: manifest.Zeroed})
	b, _ := image(t, k, &Run{Start: testStart, Prepared: manifest.Zeroed})
	pobPfn := x86.ImagePhys(pobVirt, src.PhysBase()) / PageSize // the only page changed in the dump
	for pfn := uint64(0); pfn < src.MaxPFN+1; pfn++ {
		if pfn != pobPfn && !bytes.Equal(page(t, a, pfn), page(t, b, pfn)) {
			t.Fatalf("pfn %#x differs", pfn)
		}
	}
}

func TestPfnSet(t *testing.T) {
	a := pagesOf([]elfcore.Range{{Start: 0x1000, End: 0x9fc00}, {Start: 0x100000, End: 0x200001}})
	if fmt.Sprint(a) != "[{1 160} {256 513}]" {
		t.Errorf("pagesOf: %v", a)
	}
	b := a.minus(biosWindow).minus(span(0x180, 0x190)).union(span(0, 2))
	if fmt.Sprint(b) != "[{0 160} {256 384} {400 513}]" || !b.has(0x18f+1) || b.has(0x185) {
		t.Errorf("set ops: %v", b)
	}
	if c := b.intersect(span(100, 300)); c.count() != 60+44 {
		t.Errorf("intersect: %v", c)
	}
}

func TestPfnSetSplitAt(t *testing.T) {
	s := pfnSet{{0, 10}, {20, 30}}
	for _, c := range []struct {
		n          uint64
		head, tail string
	}{{0, "[]", "[{0 10} {20 30}]"}, {4, "[{0 4}]", "[{4 10} {20 30}]"}, {10, "[{0 10}]", "[{20 30}]"}, {15, "[{0 10} {20 25}]", "[{25 30}]"}, {20, "[{0 10} {20 30}]", "[]"}, {99, "[{0 10} {20 30}]", "[]"}} {
		h, tl := s.splitAt(c.n)
		if fmt.Sprint([]pfnRange(h)) != c.head || fmt.Sprint([]pfnRange(tl)) != c.tail {
			t.Errorf("splitAt(%d) = %v, %v; want %s, %s", c.n, h, tl, c.head, c.tail)
		}
	}
}

// TestSweepQueued: as on the real v1 kernel, SWEEP returns with a share
// of its pages still queued; they reach the device afterwards (after
// FINISH), and UNINIT waits for them instead of losing them.
func TestSweepQueued(t *testing.T) {
	m, err := NewMachine(t.TempDir(), MachineConfig{SweepTime: 10 * time.Millisecond, DrainTime: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Livedump.Close()
	written := func() uint64 {
		b, err := os.ReadFile(filepath.Join(m.SysDir(), "stat"))
		if err != nil {
			t.Fatal(err)
		}
		var v uint64
		fmt.Sscan(strings.Fields(string(b))[6], &v)
		return v / 8
	}
	l := m.Livedump
	if err := l.WriteAttr("output", []byte(m.Device+"\n")); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"1\n", "2\n", "3\n"} {
		if err := l.WriteAttr("state", []byte(st)); err != nil {
			t.Fatalf("state %q: %v", st, err)
		}
	}
	afterSweep := written()
	if err := l.WriteAttr("state", []byte("4\n")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := l.WriteAttr("state", []byte("5\n")); err != nil {
		t.Fatal(err)
	}
	waited := time.Since(t0)
	afterUninit := written()
	queued := afterUninit - afterSweep
	t.Logf("pages written by SWEEP's return %d, after it %d; UNINIT took %s", afterSweep, queued, waited.Round(time.Millisecond))
	if share := float64(queued) / float64(afterUninit); share < 0.2 || share > 0.4 {
		t.Errorf("%.2f of the pages were written after SWEEP returned, want about 0.3", share)
	}
	if waited < 100*time.Millisecond {
		t.Errorf("UNINIT returned after %s: it did not wait for the queued pages", waited)
	}
	if lost := l.Lost(); lost > 2 {
		t.Errorf("%d pages lost; UNINIT drains SWEEP's queue", lost)
	}
}

// TestFreeRunZeroMem: FreeRun finds the highest all-zero MiBs, ZeroMem
// hides ranges.
func TestFreeRunZeroMem(t *testing.T) {
	mem := make([]byte, 8<<20)
	for i := range mem {
		mem[i] = 1
	}
	clear(mem[2<<20 : 5<<20]) // zero MiBs 2, 3, 4
	clear(mem[6<<20 : 7<<20]) // and 6: too short a run for 2 MiB
	k := &Kernel{Mem: bytes.NewReader(mem), RAM: []elfcore.Range{{Start: 0x1000, End: 8 << 20}}}
	r, err := k.FreeRun(2 << 20)
	if err != nil || r != (elfcore.Range{Start: 3 << 20, End: 5 << 20}) {
		t.Fatalf("FreeRun(2M) = %#x, %v; want [3M, 5M)", r, err)
	}
	if r, err := k.FreeRun(1 << 20); err != nil || r.Start != 6<<20 {
		t.Fatalf("FreeRun(1M) = %#x, %v; want [6M, 7M)", r, err)
	}
	if _, err := k.FreeRun(4 << 20); err == nil {
		t.Fatal("FreeRun(4M) found a run that is not there")
	}
	z := ZeroMem(bytes.NewReader(mem), []elfcore.Range{{Start: 0x10, End: 0x20}})
	b := make([]byte, 0x30)
	if _, err := z.ReadAt(b, 8); err != nil {
		t.Fatal(err)
	}
	for i, c := range b {
		if want := byte(1); (uint64(i)+8 >= 0x10 && uint64(i)+8 < 0x20) != (c == 0) || (c != 0 && c != want) {
			t.Fatalf("byte %#x = %d", i+8, c)
		}
	}
}
