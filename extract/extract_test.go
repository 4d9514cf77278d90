package extract

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/elfcore/livedump"
	"ldx/extract/dump"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
	"ldx/vmcoreinfo"
)

// fixture is a synthetic livedump device image and what the emulated
// kernel wrote to it.
type fixture struct {
	kernel *kmodtest.Kernel
	run    *kmodtest.Run
	report *kmodtest.Report
	image  string
}

func newFixture(t *testing.T, o kmodtest.SyntheticOptions, run kmodtest.Run) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "device.img")
	k, rep, err := kmodtest.WriteSyntheticImage(path, o, &run)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{kernel: k, run: &run, report: rep, image: path}
}

func (fx *fixture) extract(t *testing.T, opt Options) (*Summary, string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "vmcore")
	opt.Input, opt.Output = fx.image, out
	sum, err := Run(context.Background(), opt)
	return sum, out, err
}

func withManifest(p manifest.Preparation, unwritten ...elfcore.Range) kmodtest.Run {
	return kmodtest.Run{Prepared: p, Manifest: &manifest.Manifest{Time: time.Date(2026, 11, 26, 5, 59, 0, 0, time.UTC)}, Unwritten: unwritten}
}

// checkVMCore opens an extracted vmcore and checks it against what the
// emulated kernel wrote: consumer layout rules, the complete notes, and
// every page of memory.
func (fx *fixture) checkVMCore(t *testing.T, path string, wantRAM []elfcore.Range, exactMemory bool) *elfcore.File {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("vmcore mode %v, want 0600", fi.Mode().Perm())
	}
	f, err := elfcore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if f.Phoff != 64 || f.Progs[0].Type != elf.PT_NOTE {
		t.Fatalf("layout: e_phoff %d, phdr[0] %v", f.Phoff, f.Progs[0].Type)
	}
	minOff := ^uint64(0)
	for i, p := range f.Progs[1:] {
		if p.Type != elf.PT_LOAD || p.Align != 0 {
			t.Errorf("phdr[%d] = %v align %d", i+1, p.Type, p.Align)
		}
		if p.Filesz != p.Memsz {
			// makedumpfile 1.7's mmap path misreads zero-filled tails.
			t.Errorf("phdr[%d] p_filesz %#x != p_memsz %#x", i+1, p.Filesz, p.Memsz)
		}
		if p.Filesz > 0 {
			minOff = min(minOff, p.Off)
		}
	}
	if end := f.Progs[0].Off + f.Progs[0].Filesz; end > minOff {
		t.Errorf("notes end at %#x after the first PT_LOAD data at %#x", end, minOff)
	}
	// Notes: N CORE notes with pr_pid = cpu+1, then the complete VMCOREINFO.
	notes, err := f.Notes()
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != fx.kernel.CPUs+1 {
		t.Fatalf("%d notes, want %d CORE + VMCOREINFO", len(notes), fx.kernel.CPUs)
	}
	for cpu, n := range notes[:fx.kernel.CPUs] {
		ps, err := elfcore.ParsePRStatus(n.Desc)
		if err != nil || !n.Is("CORE", elfcore.NT_PRSTATUS) || ps.Pid != uint32(cpu+1) || ps.Regs[elfcore.RegRIP] != fx.kernel.IP {
			t.Errorf("note %d: %s/%d pid %v err %v", cpu, n.Name, n.Type, ps, err)
		}
	}
	vmci := notes[len(notes)-1]
	want := bytes.ReplaceAll(fx.report.VMCOREINFO, []byte{0}, nil)
	if !vmci.Is("VMCOREINFO", 0) || !bytes.Equal(vmci.Desc, want) {
		t.Errorf("VMCOREINFO note %q (%d bytes) differs from the kernel's (%d bytes)", vmci.Name, len(vmci.Desc), len(want))
	}
	if _, err := vmcoreinfo.Parse(vmci.Desc); err != nil {
		t.Errorf("VMCOREINFO does not parse strictly: %v", err)
	}
	// Memory: RAM exactly as wanted; written pages as on the device,
	// never-written pages zero, no stale bytes anywhere.
	pm := f.Phys()
	var got []elfcore.Range
	for _, r := range pm.Ranges() {
		if r.Start >= x86.KernelTextBase {
			continue
		}
		got = append(got, r)
	}
	if wantRAM != nil && !slices.Equal(got, wantRAM) {
		t.Errorf("memory ranges %x, want %x", got, wantRAM)
	}
	dev, err := os.Open(fx.image)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	a, b := make([]byte, pageSize), make([]byte, pageSize)
	bad := 0
	for _, r := range got {
		for pa := r.Start; pa < r.End && bad < 5; pa += pageSize {
			if _, err := pm.ReadAt(a, int64(pa)); err != nil {
				t.Fatalf("reading vmcore at %#x: %v", pa, err)
			}
			if kmodtest.HasStaleBytes(a) {
				t.Errorf("stale device bytes in the vmcore at %#x", pa)
				bad++
			}
			if !exactMemory {
				continue
			}
			clear(b)
			if fx.report.WasWritten(pa / pageSize) {
				dev.ReadAt(b, int64(pa))
			}
			if !bytes.Equal(a, b) {
				t.Errorf("page %#x differs from what the kernel wrote (written=%v)", pa, fx.report.WasWritten(pa/pageSize))
				bad++
			}
		}
	}
	// The kernel-image PT_LOAD survives with the kernel's virtual address.
	img := false
	for _, p := range f.Loads() {
		if p.Vaddr == fx.kernel.TextVirt && p.Paddr == fx.kernel.TextPhys && p.Memsz >= fx.kernel.TextSize {
			img = true
		}
	}
	if !img {
		t.Error("no kernel-image PT_LOAD")
	}
	return f
}

func TestExtract(t *testing.T) {
	// RAM of the synthetic 64 MiB guest as ldx should present it: [1 MiB,
	// end of RAM), without low memory (see dump.openLivedump) and the page past
	// RAM.
	const mem = 64 << 20
	lowAndHigh := []elfcore.Range{{Start: 0x100000, End: mem - 0x20000}}
	unwritten := elfcore.Range{Start: 40 << 20, End: 44 << 20}
	tests := []struct {
		name      string
		opts      kmodtest.SyntheticOptions
		run       kmodtest.Run
		wantRAM   []elfcore.Range
		exact     bool
		repairs   []string // substrings each expected in some repair
		warnings  []string
		unwritten uint64
		vmciFrom  string
	}{
		{"1 cpu, zeroed, notes whole", kmodtest.SyntheticOptions{CPUs: 1}, withManifest(manifest.Zeroed, unwritten),
			lowAndHigh, true, nil, []string{"synthetic"}, 0, "notes page (complete)"},
		{"2 cpus, zeroed, notes whole", kmodtest.SyntheticOptions{CPUs: 2, KASLROffset: 0x1c000000}, withManifest(manifest.Zeroed),
			lowAndHigh, true, nil, nil, 0, "notes page"},
		{"4 cpus, marked, notes cut", kmodtest.SyntheticOptions{CPUs: 4}, withManifest(manifest.Marked, unwritten),
			lowAndHigh, true, []string{"K-1", "page past the end"}, nil, 1024, "vmcoreinfo_note page"},
		{"16 cpus, zeroed, CORE notes cut", kmodtest.SyntheticOptions{CPUs: 16}, withManifest(manifest.Zeroed),
			lowAndHigh, true, []string{"rebuilt 5 of 16 CPU notes"}, nil, 0, "vmcoreinfo_note page"},
		{"8 cpus, livedump.sh, stale device", kmodtest.SyntheticOptions{CPUs: 8}, kmodtest.Run{StaleSeed: 7},
			[]elfcore.Range{{Start: 0x100000, End: mem - 0x20000 + 0x0}}, false, []string{"K-1"}, []string{"no ldx capture manifest", "not cleared"}, 0, "vmcoreinfo_note page"},
		{"3 cpus, third run in the boot", kmodtest.SyntheticOptions{CPUs: 3}, func() kmodtest.Run { r := withManifest(manifest.Zeroed); r.PreviousRuns = 2; return r }(),
			lowAndHigh, true, []string{"NUL bytes", "K-6"}, nil, 0, "vmcoreinfo_note page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, tt.opts, tt.run)
			sum, out, err := fx.extract(t, Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := tt.wantRAM
			if tt.run.Manifest == nil {
				// Without a map the kernel's range stays, minus the page
				// past max_pfn: the synthetic RAM ends at max_pfn.
				want = []elfcore.Range{{Start: 0x100000, End: fx.kernel.MaxPFN * pageSize}}
			}
			fx.checkVMCore(t, out, want, tt.exact)
			if sum.CPUs != tt.opts.CPUs || !strings.Contains(sum.VMCOREINFO, tt.vmciFrom) {
				t.Errorf("summary cpus %d vmcoreinfo from %q", sum.CPUs, sum.VMCOREINFO)
			}
			if sum.Unwritten != tt.unwritten {
				t.Errorf("unwritten pages %d, want %d", sum.Unwritten, tt.unwritten)
			}
			for _, r := range tt.repairs {
				if !containsAny(sum.Repairs, r) {
					t.Errorf("no repair mentions %q: %q", r, sum.Repairs)
				}
			}
			for _, w := range tt.warnings {
				if !containsAny(sum.Warnings, w) {
					t.Errorf("no warning mentions %q: %q", w, sum.Warnings)
				}
			}
			// Compact: the output's blocks hold about the non-zero memory.
			var st syscall.Stat_t
			syscall.Stat(out, &st)
			if used := st.Blocks * 512; used > int64(sum.Written)+2<<20 {
				t.Errorf("output uses %d bytes on disk for %d bytes of data", used, sum.Written)
			}
			if sum.OutputSize > int64(sum.Memory)+1<<20 {
				t.Errorf("output size %d larger than the memory it holds (%d)", sum.OutputSize, sum.Memory)
			}
		})
	}
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestExtractRefuses(t *testing.T) {
	tests := []struct {
		name string
		opts kmodtest.SyntheticOptions
		run  kmodtest.Run
		want string
	}{
		{"stopped before FINISH, cleared header", kmodtest.SyntheticOptions{CPUs: 2},
			func() kmodtest.Run { r := withManifest(manifest.Zeroed); r.StopBefore = kmodtest.Finish; return r }(), "did not reach FINISH"},
		{"device shorter than the header claims", kmodtest.SyntheticOptions{CPUs: 2},
			func() kmodtest.Run { r := withManifest(manifest.Zeroed); r.DeviceSize = 32 << 20; return r }(), "MiB of memory are missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, tt.opts, tt.run)
			_, out, err := fx.extract(t, Options{})
			var ie *dump.InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want an InputError saying %q", err, tt.want)
			}
			if _, serr := os.Stat(out); !os.IsNotExist(serr) {
				t.Errorf("output exists after a refused extraction")
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*partial*")); len(left) > 0 {
				t.Errorf("partial files left: %v", left)
			}
		})
	}
}

func TestExtractCaptureStatus(t *testing.T) {
	failed := 7
	tests := []struct {
		name    string
		man     manifest.Manifest
		err     string
		warning string
	}{
		{"incomplete", manifest.Manifest{Status: manifest.StatusIncomplete, StatusDetail: "SWEEP failed: EINVAL"}, "incomplete: SWEEP failed", ""},
		{"running", manifest.Manifest{Status: manifest.StatusRunning}, "", "still says the capture was running"},
		{"complete with failed pages", manifest.Manifest{Status: manifest.StatusComplete, FailedPages: &failed}, "", "7 pages it could not save"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			man := tt.man
			man.Time = time.Date(2026, 11, 26, 5, 59, 0, 0, time.UTC)
			fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 2}, kmodtest.Run{Prepared: manifest.Zeroed, Manifest: &man})
			sum, _, err := fx.extract(t, Options{})
			if tt.err != "" {
				var ie *dump.InputError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !containsAny(sum.Warnings, tt.warning) {
				t.Fatalf("err %v, warnings %q", err, sum.Warnings)
			}
		})
	}
}

func TestExtractOldHeader(t *testing.T) {
	// The second capture of a boot stopped before FINISH: page 0 still
	// holds the first capture's header, page 1 this capture's notes.
	run := kmodtest.Run{StaleSeed: 3, StopBefore: kmodtest.Finish, OldHeader: &kmodtest.OldRun{CPUs: 2}, PreviousRuns: 1}
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 2}, run)
	_, _, err := fx.extract(t, Options{})
	var ie *dump.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "another run") {
		t.Fatalf("err = %v, want an InputError about a header from another run", err)
	}
}

func TestOutputSafety(t *testing.T) {
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 2}, withManifest(manifest.Zeroed))
	out := filepath.Join(t.TempDir(), "vmcore")
	os.WriteFile(out, []byte("precious"), 0o644)
	_, err := Run(context.Background(), Options{Input: fx.image, Output: out})
	if !errors.Is(err, ErrOutputExists) {
		t.Fatalf("err = %v, want ErrOutputExists", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatal("existing output was changed")
	}
	if _, err := Run(context.Background(), Options{Input: fx.image, Output: out, Force: true}); err != nil {
		t.Fatal(err)
	}
	fx.checkVMCore(t, out, nil, true)
	// The input is never written: extracting onto it is refused.
	if _, err := Run(context.Background(), Options{Input: fx.image, Output: fx.image, Force: true}); err == nil || !strings.Contains(err.Error(), "input") {
		t.Fatalf("extracting onto the input: %v", err)
	}
	// Cancellation removes the partial output.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out2 := filepath.Join(t.TempDir(), "vmcore")
	if _, err := Run(ctx, Options{Input: fx.image, Output: out2}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out2)); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

func TestExtractXZ(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz not installed")
	}
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 4}, withManifest(manifest.Zeroed))
	if err := exec.Command("xz", "-T2", "-1", "-k", fx.image).Run(); err != nil {
		t.Fatal(err)
	}
	plain := fx.image
	fx.image += ".xz"
	sum, out, err := fx.extract(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.InputKind != dump.KindXZ {
		t.Errorf("input kind %q", sum.InputKind)
	}
	fx.image = plain
	fx.checkVMCore(t, out, nil, true)
}

func TestSegmentLayout(t *testing.T) {
	// One PT_LOAD per RAM range, split around the kernel image; zero pages
	// are holes, never segments of their own (makedumpfile's mmap path
	// misreads shared or zero-filled file extents).
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 2}, withManifest(manifest.Zeroed))
	sum, out, err := fx.extract(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := fx.checkVMCore(t, out, nil, true)
	offs := map[uint64]int{}
	for _, p := range f.Loads() {
		if p.Vaddr < x86.KernelTextBase {
			offs[p.Off]++
		}
	}
	if len(offs) != sum.Segments || sum.Segments != 3 {
		t.Errorf("%d RAM segments at %d distinct offsets, want 3 (before, the image, after)", sum.Segments, len(offs))
	}
	if sum.OnDisk > int64(sum.Written)+1<<20 || sum.OnDisk == 0 {
		t.Errorf("%d bytes on disk for %d bytes of data", sum.OnDisk, sum.Written)
	}
}

func TestExtractCorruptNoteSizes(t *testing.T) {
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 4}, withManifest(manifest.Zeroed))
	// Corrupt the second CORE note's n_descsz in the notes page.
	f, err := os.OpenFile(fx.image, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff, 0xff, 0xff, 0x7f}, livedump.NotesOffset+livedump.CoreNoteSize+4)
	f.Close()
	sum, out, err := fx.extract(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !containsAny(sum.Warnings, "notes page is damaged after 1 CPU notes") || sum.CPUNotes.Kept != 1 || sum.CPUNotes.Rebuilt != 3 {
		t.Errorf("cpu notes %+v, warnings %q", sum.CPUNotes, sum.Warnings)
	}
	fx.checkVMCore(t, out, nil, true)
}

// TestExtractNormaliseXNUM feeds extract an ELF vmcore in the /proc/vmcore
// shape (image segment first, direct-map virtual addresses) with one
// PT_LOAD per page: more than 65534 program headers, so PN_XNUM. The
// output must hold the same memory in a bounded number of segments.
func TestExtractNormaliseXNUM(t *testing.T) {
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{CPUs: 2, MemSize: 300 << 20})
	var loads []elfcore.ProgHeader
	for _, r := range k.RAM {
		for pa := pageUp(r.Start); pa+pageSize <= r.End; pa += pageSize {
			loads = append(loads, elfcore.ProgHeader{Paddr: pa, Vaddr: k.PageOffsetBase + pa, Memsz: pageSize, Filesz: pageSize})
		}
	}
	img := elfcore.ProgHeader{Paddr: k.TextPhys, Vaddr: k.TextVirt, Memsz: k.TextSize, Filesz: k.TextSize}
	loads = append([]elfcore.ProgHeader{img}, loads...)
	if len(loads) < elfcore.PN_XNUM {
		t.Fatalf("only %d segments", len(loads))
	}
	in := filepath.Join(t.TempDir(), "vmcore.in")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	notes := []elfcore.Note{(&elfcore.PRStatus{Pid: 1}).Note(), (&elfcore.PRStatus{Pid: 2}).Note(),
		{Name: "VMCOREINFO", Type: 0, Desc: k.VMCOREINFO}}
	w := elfcore.NewWriter(f, elf.EM_X86_64, len(loads), elfcore.EncodeNotes(notes))
	off := uint64(w.DataOffset())
	buf := make([]byte, 0, 16<<20)
	for _, l := range loads {
		l.Off = off
		page := make([]byte, l.Filesz)
		k.Mem.ReadAt(page, int64(l.Paddr))
		buf = append(buf, page...)
		if len(buf) >= 16<<20 {
			f.WriteAt(buf, int64(off)+int64(l.Filesz)-int64(len(buf)))
			buf = buf[:0]
		}
		off += l.Filesz
		w.AddLoad(l)
	}
	f.WriteAt(buf, int64(off)-int64(len(buf)))
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out := filepath.Join(t.TempDir(), "vmcore")
	sum, err := Run(context.Background(), Options{Input: in, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Format != "ELF vmcore" || sum.Segments > 8 || sum.CPUs != 2 {
		t.Errorf("summary: format %q, %d segments, %d cpus", sum.Format, sum.Segments, sum.CPUs)
	}
	src, err := elfcore.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.RawPhnum != elfcore.PN_XNUM {
		t.Fatalf("input e_phnum %#x, want PN_XNUM", src.RawPhnum)
	}
	dst, err := elfcore.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	a, b := make([]byte, 1<<20), make([]byte, 1<<20)
	sp, dp := src.Phys(), dst.Phys()
	for _, r := range sp.Ranges() {
		for pa := r.Start; pa < r.End; pa += uint64(len(a)) {
			n := min(uint64(len(a)), r.End-pa)
			sp.ReadAt(a[:n], int64(pa))
			if _, err := dp.ReadAt(b[:n], int64(pa)); err != nil || !bytes.Equal(a[:n], b[:n]) {
				t.Fatalf("memory at %#x differs (%v)", pa, err)
			}
		}
	}
	for _, p := range dst.Loads() {
		if p.Vaddr < x86.KernelTextBase && p.Vaddr-p.Paddr != k.PageOffsetBase {
			t.Fatalf("RAM segment at %#x has p_vaddr %#x", p.Paddr, p.Vaddr)
		}
	}
}
