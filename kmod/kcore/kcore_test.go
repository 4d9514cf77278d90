package kcore_test

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ldx/elfcore"
	"ldx/extract/dump"
	"ldx/kmod/kcore"
	"ldx/kmod/kmodtest"

	"golang.org/x/sys/unix"
)

// fakeKcore writes k as /proc/kcore lays it out: a zeroed NT_PRSTATUS and
// the VMCOREINFO note, the kernel text segment, a vmalloc segment without
// a physical address, and one direct-map segment per RAM range.
func fakeKcore(t *testing.T, dir string, k *kmodtest.Kernel, withNote bool) string {
	t.Helper()
	path := filepath.Join(dir, "kcore")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	notes := []elfcore.Note{(&elfcore.PRStatus{}).Note()}
	if withNote {
		notes = append(notes, elfcore.Note{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: k.VMCOREINFO})
	}
	w := elfcore.NewWriter(f, elf.EM_X86_64, len(k.RAM)+2, elfcore.EncodeNotes(notes))
	off := uint64(w.DataOffset())
	seg := func(vaddr, paddr uint64, src io.ReaderAt, srcOff, size uint64) {
		if _, err := io.Copy(io.NewOffsetWriter(f, int64(off)), io.NewSectionReader(src, int64(srcOff), int64(size))); err != nil {
			t.Fatal(err)
		}
		if err := w.AddLoad(elfcore.ProgHeader{Off: off, Vaddr: vaddr, Paddr: paddr, Filesz: size, Memsz: size}); err != nil {
			t.Fatal(err)
		}
		off += size
	}
	seg(k.TextVirt, k.TextPhys, k.Mem, k.TextPhys, (k.TextSize+4095)&^4095)
	seg(0xffffc90000000000, ^uint64(0), strings.NewReader(strings.Repeat("v", 8192)), 0, 8192)
	for _, r := range k.RAM {
		seg(k.PageOffsetBase+r.Start, r.Start, k.Mem, r.Start, r.End-r.Start)
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	return path
}

// host is a fake machine: kcore, CPU list, no lockdown, a disk-backed
// output file system with room.
func host(t *testing.T, dir, kcorePath, cpus string) *kcore.Host {
	t.Helper()
	online := filepath.Join(dir, "online")
	os.WriteFile(online, []byte(cpus+"\n"), 0o644)
	return &kcore.Host{Kcore: kcorePath, CPUOnline: online, VMCOREINFO: filepath.Join(dir, "no-vmcoreinfo"), Lockdown: filepath.Join(dir, "no-lockdown"),
		Statfs: func(string) (kcore.Statfs, error) { return kcore.Statfs{Type: 0xEF53, Avail: 1 << 40}, nil }}
}

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
			h := host(t, dir, fakeKcore(t, dir, k, tc.withNote), tc.cpus)
			if !tc.withNote {
				if k.VMCOREINFONote == 0 {
					t.Skip("the synthetic kernel has no vmcoreinfo_note buffer")
				}
				os.WriteFile(h.VMCOREINFO, []byte(fmt.Sprintf("%x %x\n", k.VMCOREINFONote, kmodtest.VMCOREINFOBytes)), 0o644)
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
			d, err := dump.Open(context.Background(), out, dump.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			// Every RAM byte from 1 MiB up equals the fake's.
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
			if covered != res.Plan.RAMBytes || covered < 60<<20 {
				t.Errorf("output covers %d bytes of RAM, the plan %d", covered, res.Plan.RAMBytes)
			}
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

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: 64 << 20})
	kc := fakeKcore(t, dir, k, true)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	lockdown := filepath.Join(dir, "lockdown")
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
			h := host(t, dir, kc, "0-1")
			tc.setup(h)
			out := filepath.Join(t.TempDir(), "vmcore")
			res, err := kcore.Capture(context.Background(), kcore.Options{Host: h, Output: out, Force: tc.force, DryRun: tc.want == 0})
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
