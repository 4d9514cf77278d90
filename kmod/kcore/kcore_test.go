package kcore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"ldx/elfcore"
	"ldx/elfcore/kdump"
	"ldx/extract"
	"ldx/extract/dump"
	"ldx/kmod/kcore"
	"ldx/kmod/kcore/kcoretest"
	"ldx/kmod/kmodtest"

	"golang.org/x/sys/unix"
)

func TestCaptureFakeKcore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cpus     string
		ncpu     int
		withNote bool // else VMCOREINFO through /sys/kernel/vmcoreinfo
	}{
		{"note 2 CPUs", "0-1", 2, true},
		{"sysfs VMCOREINFO 4 CPUs", "0-3", 4, false},
		{"sparse CPU list", "0,2-3", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 64 << 20, CPUs: tc.ncpu, KASLROffset: 0x1e000000})
			if !tc.withNote && k.VMCOREINFONote == 0 {
				t.Fatal("the synthetic kernel has no vmcoreinfo_note buffer")
			}
			h, err := kcoretest.Host(dir, k, tc.withNote, tc.cpus)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "vmcore")
			res, err := kcore.Capture(context.Background(), kcore.Options{Host: h, Output: out})
			if err != nil {
				t.Fatal(err)
			}
			if res.PagesChecked == 0 {
				t.Errorf("no pages were checked for changes; warnings %q", res.Plan.Warnings)
			}
			if len(res.PagesChanged) != 0 || len(res.Unreadable) != 0 {
				t.Errorf("a still fake changed %d pages, %d unreadable ranges", len(res.PagesChanged), len(res.Unreadable))
			}
			fi, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("output mode %v, want 0600", fi.Mode().Perm())
			}
			d := openSame(t, out, k, res.Plan.RAMBytes)
			defer d.Close()
			if d.PageOffset != k.PageOffsetBase {
				t.Errorf("page offset %#x, want %#x", d.PageOffset, k.PageOffsetBase)
			}
			if d.ImageVirt != k.TextVirt&^4095 || d.Image.Start != k.TextPhys&^4095 {
				t.Errorf("image %#x at %#x, want %#x at %#x", d.Image.Start, d.ImageVirt, k.TextPhys, k.TextVirt)
			}
			var prs []uint32
			for _, n := range d.Notes {
				if n.Is(elfcore.NameCore, elfcore.NT_PRSTATUS) {
					st, _ := elfcore.ParsePRStatus(n.Desc)
					prs = append(prs, st.Pid)
				}
			}
			if len(prs) != tc.ncpu {
				t.Errorf("%d CPU notes (pids %v), want %d", len(prs), prs, tc.ncpu)
			}
			c := d.CaptureNote()
			if c == nil || c.Method != "kcore" || c.PagesChecked != res.PagesChecked || c.End.Before(c.Start) {
				t.Errorf("LDX note %+v, want method kcore with %d pages checked", c, res.PagesChecked)
			}
			if p := d.Producer(); !p.Live || !strings.Contains(p.Name, "kcore") {
				t.Errorf("producer %+v, want a live kcore capture", p)
			}
			if d.VMCOREINFO == nil || !strings.Contains(string(d.VMCOREINFO.Bytes()), "OSRELEASE=") {
				t.Errorf("the output's VMCOREINFO is missing")
			}
		})
	}
}

// openSame opens a capture's output and checks that every RAM byte from
// 1 MiB up equals the fake kernel's and that it covers the plan's RAM.
func openSame(t *testing.T, out string, k *kmodtest.Kernel, planned uint64) *dump.Dump {
	t.Helper()
	d, err := dump.Open(context.Background(), out, dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, got := make([]byte, 1<<20), make([]byte, 1<<20)
	var covered uint64
	for _, r := range d.RAM {
		for pa := r.Start; pa < r.End; pa += uint64(len(got)) {
			n := min(uint64(len(got)), r.End-pa)
			if _, err := d.Phys.ReadAt(got[:n], int64(pa)); err != nil {
				t.Fatal(err)
			}
			k.Mem.ReadAt(want[:n], int64(pa))
			if string(got[:n]) != string(want[:n]) {
				t.Fatalf("memory at %#x differs from the fake kcore's", pa)
			}
			covered += n
		}
	}
	if covered != planned || covered < 40<<20 {
		t.Errorf("output covers %d bytes of RAM, the plan %d", covered, planned)
	}
	return d
}

// TestCaptureStream writes the capture as a flattened stream (-o -): read
// back in place, it holds the fake's memory and the LDX note.
func TestCaptureStream(t *testing.T) {
	dir := t.TempDir()
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 48 << 20, CPUs: 2})
	h, err := kcoretest.Host(dir, k, true, "0-1")
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	res, err := kcore.Capture(context.Background(), kcore.Options{Host: h, Output: "-", Stream: &stream})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(stream.Bytes(), []byte("makedumpfile")) {
		t.Fatalf("the stream does not start with the flattened signature: %q", stream.Bytes()[:16])
	}
	path := filepath.Join(dir, "stream")
	if err := os.WriteFile(path, stream.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	d := openSame(t, path, k, res.Plan.RAMBytes)
	defer d.Close()
	if c := d.CaptureNote(); c == nil || c.PagesChecked != res.PagesChecked {
		t.Errorf("LDX note %+v, want %d pages checked", c, res.PagesChecked)
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 64 << 20})
	base, err := kcoretest.Host(dir, k, true, "0-1")
	if err != nil {
		t.Fatal(err)
	}
	kc := base.Kcore
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	lockdown := filepath.Join(dir, "lockdown-confidentiality")
	os.WriteFile(lockdown, []byte("none integrity [confidentiality]\n"), 0o644)
	eperm := func(p string) func(string) (*os.File, error) {
		return func(path string) (*os.File, error) {
			if path == p {
				return nil, &fs.PathError{Op: "open", Path: path, Err: unix.EPERM}
			}
			return os.Open(path)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(h *kcore.Host)
		force bool
		want  kcore.Reason
	}{
		{"missing", func(h *kcore.Host) { h.Kcore = filepath.Join(dir, "nope") }, false, kcore.NoKcore},
		{"hidden by a container", func(h *kcore.Host) { h.Kcore = empty }, false, kcore.NoKcore},
		{"not permitted", func(h *kcore.Host) { h.Open = eperm(kc) }, false, kcore.NotPermitted},
		{"locked down", func(h *kcore.Host) { h.Open = eperm(kc); h.Lockdown = lockdown }, false, kcore.LockedDown},
		{"tmpfs output", func(h *kcore.Host) {
			h.Statfs = func(string) (kcore.Statfs, error) { return kcore.Statfs{Type: 0x01021994, Avail: 1 << 40}, nil }
		}, false, kcore.RAMBackedOutput},
		{"ramfs output even forced", func(h *kcore.Host) {
			h.Statfs = func(string) (kcore.Statfs, error) { return kcore.Statfs{Type: 0x858458f6, Avail: 1 << 40}, nil }
		}, true, kcore.RAMBackedOutput},
		{"no room", func(h *kcore.Host) {
			h.Statfs = func(string) (kcore.Statfs, error) { return kcore.Statfs{Type: 0xEF53, Avail: 32 << 20}, nil }
		}, false, kcore.NoRoom},
		{"no room, forced", func(h *kcore.Host) {
			h.Statfs = func(string) (kcore.Statfs, error) { return kcore.Statfs{Type: 0xEF53, Avail: 32 << 20}, nil }
		}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := *base
			tc.setup(&h)
			out := filepath.Join(t.TempDir(), "vmcore")
			res, err := kcore.Capture(context.Background(), kcore.Options{Host: &h, Output: out, Force: tc.force, DryRun: tc.want == 0})
			var r *kcore.Refusal
			switch {
			case tc.want == 0:
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if res.Plan.RAMBytes == 0 {
					t.Errorf("dry run planned no RAM")
				}
			case !errors.As(err, &r):
				t.Fatalf("error %v, want a refusal (%v)", err, tc.want)
			case r.Reason != tc.want:
				t.Fatalf("refused as %v (%v), want %v", r.Reason, err, tc.want)
			}
			if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
				t.Errorf("refused or dry run, yet %s holds %d files", filepath.Dir(out), len(entries))
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"200M", 200 << 20}, {"1G", 1 << 30}, {"4096", 4096}, {"1.5K", 1536}, {"10MB/s", 10 << 20}, {"x", -1}, {"0", -1}, {"5Q", -1}} {
		got, err := kcore.ParseRate(tc.in)
		if (err != nil) != (tc.want < 0) || (err == nil && got != tc.want) {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// TestCaptureInterrupted cancels a paced capture midway: the error says
// so and no output, partial or final, is left.
func TestCaptureInterrupted(t *testing.T) {
	dir := t.TempDir()
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 64 << 20})
	h, err := kcoretest.Host(dir, k, true, "0-1")
	if err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	os.Mkdir(outDir, 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	progress := func(p extract.Progress) {
		if p.Phase == "copy" && p.Done > 0 {
			once.Do(cancel)
		}
	}
	_, err = kcore.Capture(ctx, kcore.Options{Host: h, Output: filepath.Join(outDir, "vmcore"), MaxRate: 16 << 20, Progress: progress})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(outDir); len(entries) != 0 {
		t.Errorf("an interrupted capture left %d files, the first %s", len(entries), entries[0].Name())
	}
}

// TestCaptureSmear changes the VMCOREINFO note's page in the fake kcore
// while memory is being copied: the capture says which page changed and
// what it holds, and the LDX note counts it.
func TestCaptureSmear(t *testing.T) {
	dir := t.TempDir()
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 48 << 20})
	h, err := kcoretest.Host(dir, k, false, "0-1")
	if err != nil {
		t.Fatal(err)
	}
	core, err := elfcore.Open(h.Kcore)
	if err != nil {
		t.Fatal(err)
	}
	page := k.VMCOREINFONote &^ 4095
	seg, ok := core.Phys().Lookup(page)
	core.Close()
	if !ok {
		t.Fatalf("the fake kcore does not map the VMCOREINFO page %#x", page)
	}
	var once sync.Once
	touch := func(p extract.Progress) {
		if p.Phase == "copy" && p.Done > 0 {
			once.Do(func() {
				f, err := os.OpenFile(h.Kcore, os.O_WRONLY, 0)
				if err != nil {
					t.Error(err)
					return
				}
				defer f.Close()
				// The page's last bytes: past the note, so it still parses.
				f.WriteAt([]byte("smeared"), int64(seg.Off+page-seg.Paddr+4096-8))
			})
		}
	}
	out := filepath.Join(dir, "vmcore")
	res, err := kcore.Capture(context.Background(), kcore.Options{Host: h, Output: out, Progress: touch})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.PagesChanged) != 1 || res.PagesChanged[0] != page || res.Changed[page] != "VMCOREINFO note" {
		t.Fatalf("changed pages %#x (%v), want only the VMCOREINFO note's page %#x", res.PagesChanged, res.Changed, page)
	}
	found := false
	for _, w := range res.Summary.Warnings {
		found = found || strings.Contains(w, fmt.Sprintf("%#x (VMCOREINFO note)", page))
	}
	if !found {
		t.Errorf("the summary does not name the changed page: %q", res.Summary.Warnings)
	}
	d, err := dump.Open(context.Background(), out, dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if c := d.CaptureNote(); c == nil || c.PagesChanged != 1 || c.PagesChecked != res.PagesChecked {
		t.Errorf("LDX note %+v, want 1 of %d pages changed", c, res.PagesChecked)
	}
}

// A kdump-compressed capture carries the final LDX note (written after
// the copy) and the memory.
func TestCaptureKdump(t *testing.T) {
	dir := t.TempDir()
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 48 << 20, CPUs: 2})
	h, err := kcoretest.Host(dir, k, true, "0-1")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "vmcore.kdump")
	res, err := kcore.Capture(context.Background(), kcore.Options{Host: h, Output: out, OutputFormat: extract.FormatKdump, DumpLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	kf, err := kdump.Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	notes, err := elfcore.ParseNotes(kf.Notes(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var note *dump.CaptureNote
	for _, n := range notes {
		if n.Name == dump.NameLDX {
			note, err = dump.ParseCaptureNote(n.Desc)
		}
	}
	if note == nil || err != nil || note.PagesChecked != res.PagesChecked || res.PagesChecked == 0 {
		t.Fatalf("LDX note %+v (%v), want %d pages checked", note, err, res.PagesChecked)
	}
	page, want := make([]byte, 4096), make([]byte, 4096)
	for _, pfn := range []uint64{0x100, 0x1234, 0x2000} {
		if err := kf.ReadPage(pfn, page); err != nil {
			t.Fatalf("pfn %#x: %v", pfn, err)
		}
		kmodtest.SyntheticPage(want, 0, pfn)
		if !bytes.Equal(page, want) {
			t.Errorf("pfn %#x differs from the kernel's memory", pfn)
		}
	}
}

// TestCheckStream: only a regular file on a RAM-backed file system is
// refused as a stream's destination; a pipe or a device passes whatever
// its node's file system (a raw disk's node is on devtmpfs, which statfs
// calls tmpfs).
func TestCheckStream(t *testing.T) {
	dir := t.TempDir()
	tmpfs := &kcore.Host{Statfs: func(string) (kcore.Statfs, error) { return kcore.Statfs{Type: 0x01021994}, nil }}
	disk := &kcore.Host{Statfs: func(string) (kcore.Statfs, error) { return kcore.Statfs{Type: 0xEF53}, nil }}
	file, err := os.Create(filepath.Join(dir, "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	for _, tc := range []struct {
		name    string
		h       *kcore.Host
		f       *os.File
		refused bool
	}{
		{"file on tmpfs", tmpfs, file, true},
		{"file on a disk", disk, file, false},
		{"pipe", tmpfs, pw, false},
		{"device node on devtmpfs", tmpfs, devNull, false},
		{"not a file", tmpfs, nil, false},
	} {
		err := kcore.CheckStream(tc.h, tc.f)
		var r *kcore.Refusal
		if got := errors.As(err, &r) && r.Reason == kcore.RAMBackedOutput; got != tc.refused {
			t.Errorf("%s: CheckStream = %v, want refused %v", tc.name, err, tc.refused)
		}
	}
}
