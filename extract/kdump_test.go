package extract

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"ldx/elfcore"
	"ldx/elfcore/kdump"
	"ldx/elfcore/kernel/pageclass"
	"ldx/extract/dump"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// kdumpFile is the test's reading of a kdump-compressed file, by the
// layout makedumpfile writes (offsets of disk_dump_header and
// kdump_sub_header fields as the C structs place them on x86_64).
type kdumpFile struct {
	b                  []byte
	release, machine   string
	nrCPUs, status     uint32
	physBase, maxMapnr uint64
	notes, vmcoreinfo  []byte
	dumpLevel          uint32
	bitmap1, bitmap2   []byte
	descOff            int
}

func openKdumpFile(t *testing.T, path string) *kdumpFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if string(b[:8]) != "KDUMP   " || le.Uint32(b[8:]) != 6 || le.Uint32(b[428:]) != pageSize {
		t.Fatalf("%s: signature %q, version %d, block size %d", path, b[:8], le.Uint32(b[8:]), le.Uint32(b[428:]))
	}
	f := &kdumpFile{b: b}
	str := func(i int) string { return string(bytes.TrimRight(b[12+65*i:12+65*(i+1)], "\x00")) }
	f.release, f.machine = str(2), str(4)
	f.status, f.nrCPUs = le.Uint32(b[424:]), le.Uint32(b[460:])
	subHdr, bitmapBlocks := int(le.Uint32(b[432:])), int(le.Uint32(b[436:]))
	sh := b[pageSize:]
	f.physBase, f.dumpLevel, f.maxMapnr = le.Uint64(sh), le.Uint32(sh[8:]), le.Uint64(sh[96:])
	f.vmcoreinfo = b[le.Uint64(sh[32:]):][:le.Uint64(sh[40:])]
	f.notes = b[le.Uint64(sh[48:]):][:le.Uint64(sh[56:])]
	bm, half := (1+subHdr)*pageSize, bitmapBlocks*pageSize/2
	f.bitmap1, f.bitmap2 = b[bm:bm+half], b[bm+half:bm+2*half]
	f.descOff = (1 + subHdr + bitmapBlocks) * pageSize
	return f
}

func testBit(b []byte, pfn uint64) bool { return pfn/8 < uint64(len(b)) && b[pfn/8]&(1<<(pfn%8)) != 0 }

// pages calls fn with every bitmap-2 page in pfn order, decompressed.
func (f *kdumpFile) pages(t *testing.T, fn func(pfn uint64, page []byte, shared bool)) {
	t.Helper()
	le := binary.LittleEndian
	d := f.descOff
	seen := map[uint64]bool{}
	zd, _ := zstd.NewReader(nil)
	defer zd.Close()
	for pfn := uint64(0); pfn < f.maxMapnr; pfn++ {
		if !testBit(f.bitmap2, pfn) {
			continue
		}
		off, size, flags := le.Uint64(f.b[d:]), le.Uint32(f.b[d+8:]), le.Uint32(f.b[d+12:])
		d += 24
		data := f.b[off : off+uint64(size)]
		var page []byte
		var err error
		switch flags {
		case 0:
			page = data
		case 0x1:
			var r io.Reader
			if r, err = zlib.NewReader(bytes.NewReader(data)); err == nil {
				page, err = io.ReadAll(r)
			}
		case 0x4:
			page, err = snappy.Decode(nil, data)
		case 0x20:
			page, err = zd.DecodeAll(data, nil)
		default:
			t.Fatalf("pfn %#x: page flags %#x", pfn, flags)
		}
		if err != nil || len(page) != pageSize {
			t.Fatalf("pfn %#x: flags %#x: %d bytes: %v", pfn, flags, len(page), err)
		}
		fn(pfn, page, seen[off])
		seen[off] = true
	}
}

func TestExtractKdump(t *testing.T) {
	unwritten := elfcore.Range{Start: 40 << 20, End: 44 << 20}
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 4, KASLROffset: 0x1c000000}, withManifest(manifest.Marked, unwritten))
	// The reference: the ELF vmcore of the same input.
	refSum, refPath, err := fx.extract(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := dump.Open(context.Background(), refPath, dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	mem, err := ref.Kmem()
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := ref.VMCOREINFO.OSRelease()
	for _, c := range []kdump.Compression{kdump.CompressZlib, kdump.CompressZstd, kdump.CompressSnappy, kdump.CompressNone} {
		for _, level := range []pageclass.Level{0, 1} {
			t.Run(c.String()+"/d"+string(rune('0'+level)), func(t *testing.T) {
				sum, out, err := fx.extract(t, Options{OutputFormat: FormatKdump, Compression: c, DumpLevel: level})
				if err != nil {
					t.Fatal(err)
				}
				if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != sum.OutputSize {
					t.Fatalf("output: %v %v, summary size %d", fi, err, sum.OutputSize)
				}
				f := openKdumpFile(t, out)
				if f.release != rel || f.machine != "x86_64" || f.nrCPUs != 4 || f.physBase != mem.Params().PhysBase || f.dumpLevel != uint32(level) {
					t.Errorf("header: release %q machine %q cpus %d phys_base %#x level %d", f.release, f.machine, f.nrCPUs, f.physBase, f.dumpLevel)
				}
				if !bytes.Equal(f.notes, elfcore.EncodeNotes(ref.Notes)) || !bytes.Equal(f.vmcoreinfo, ref.VMCOREINFO.Bytes()) {
					t.Errorf("notes (%d bytes) or VMCOREINFO (%q…) differ from the ELF output's", len(f.notes), f.vmcoreinfo[:min(40, len(f.vmcoreinfo))])
				}
				var zeros, pages uint64
				want := make([]byte, pageSize)
				next := uint64(0)
				f.pages(t, func(pfn uint64, page []byte, shared bool) {
					for ; next < pfn; next++ {
						if inRAM(ref.RAM, next) {
							t.Fatalf("RAM pfn %#x is not in bitmap 2", next)
						}
					}
					next = pfn + 1
					if !inRAM(ref.RAM, pfn) || !testBit(f.bitmap1, pfn) {
						t.Fatalf("pfn %#x is in bitmap 2, RAM %v, bitmap 1 %v", pfn, inRAM(ref.RAM, pfn), testBit(f.bitmap1, pfn))
					}
					if _, err := ref.Phys.ReadAt(want, int64(pfn*pageSize)); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(page, want) {
						t.Fatalf("pfn %#x differs from the ELF output", pfn)
					}
					if elfcore.IsZero(page) && level == 1 {
						zeros++
						if zeros > 1 && !shared {
							t.Fatalf("zero pfn %#x does not share the zero page", pfn)
						}
					} else {
						pages++
					}
				})
				if next*pageSize < ref.RAM[len(ref.RAM)-1].End {
					t.Fatalf("bitmap 2 stops at pfn %#x", next)
				}
				k := sum.Kdump
				if k == nil || k.Pages != pages || k.ZeroPages != zeros || k.Excluded != 0 || k.Compression != c.String() || sum.OutputFormat != FormatKdump {
					t.Errorf("summary %+v %+v, want %d pages, %d zero", sum, k, pages, zeros)
				}
				if level == 1 && zeros == 0 {
					t.Error("no zero pages shared at dump level 1")
				}
				if sum.Unwritten != refSum.Unwritten || sum.Unwritten == 0 {
					t.Errorf("unwritten %d, the ELF output %d", sum.Unwritten, refSum.Unwritten)
				}
				if c == kdump.CompressZstd || c == kdump.CompressSnappy {
					if !containsAny(sum.Warnings, "makedumpfile 1.7.2") {
						t.Errorf("no warning for %s: %q", c, sum.Warnings)
					}
				}
			})
		}
	}
}

func inRAM(ram []elfcore.Range, pfn uint64) bool {
	for _, r := range ram {
		if pfn*pageSize >= r.Start && pfn*pageSize < r.End {
			return true
		}
	}
	return false
}

// Excluded pages (the dump level's page classes) are left out of bitmap
// 2 and the file; options that do not apply are refused before any output.
func TestExtractKdumpOptions(t *testing.T) {
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 2}, withManifest(manifest.Zeroed))
	sum, out, err := fx.extract(t, Options{OutputFormat: FormatKdump, DumpLevel: 17, exclude: func(pfn uint64) bool { return pfn%2 == 1 }})
	if err != nil {
		t.Fatal(err)
	}
	f := openKdumpFile(t, out)
	var n uint64
	f.pages(t, func(pfn uint64, _ []byte, _ bool) {
		if pfn%2 == 1 {
			t.Fatalf("excluded pfn %#x written", pfn)
		}
		n++
	})
	if sum.Kdump.Excluded == 0 || n != sum.Kdump.Pages+sum.Kdump.ZeroPages || n+sum.Kdump.Excluded != sum.Memory/pageSize {
		t.Errorf("%d pages read back; summary %+v of %d pages", n, sum.Kdump, sum.Memory/pageSize)
	}
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{Compression: kdump.CompressZstd}, "--format kdump only"},
		{Options{OutputFormat: "xml"}, "unknown output format"},
		{Options{OutputFormat: FormatKdump, DumpLevel: 31}, "dump level 31: pageclass:"},
		{Options{OutputFormat: FormatKdump, DumpLevel: 32}, "want 0-31"},
	} {
		dir := t.TempDir()
		tc.opt.Input, tc.opt.Output = fx.image, filepath.Join(dir, "out")
		if _, err := Run(context.Background(), tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.opt, err, tc.want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%+v left %v", tc.opt, ents)
		}
	}
}

// Interrupted while pages are being compressed: the pipeline stops and
// the partial output is removed.
func TestExtractKdumpCancel(t *testing.T) {
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 2}, withManifest(manifest.Zeroed))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	var copied int64
	_, err := Run(ctx, Options{Input: fx.image, Output: filepath.Join(dir, "vmcore"), OutputFormat: FormatKdump,
		Progress: func(p Progress) {
			if p.Phase == "copy" && p.Done > 0 {
				copied = p.Done
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) || copied == 0 {
		t.Fatalf("err %v after %d bytes, want context.Canceled mid-copy", err, copied)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// readSpans skips only runs of at least minSkip excluded pages, and the
// spans cover RAM exactly, in order.
func TestReadSpans(t *testing.T) {
	P := uint64(pageSize)
	ex := func(runs ...[2]uint64) func(uint64) bool {
		return func(pfn uint64) bool {
			for _, r := range runs {
				if pfn >= r[0] && pfn < r[1] {
					return true
				}
			}
			return false
		}
	}
	rng := func(a, b uint64) elfcore.Range { return elfcore.Range{Start: a, End: b} }
	for _, c := range []struct {
		name string
		ram  []elfcore.Range
		ex   func(uint64) bool
		want []span
	}{
		{"no filter", []elfcore.Range{rng(0, 100*P)}, nil, []span{{rng(0, 100*P), true}}},
		{"short run read", []elfcore.Range{rng(0, 200*P)}, ex([2]uint64{10, 10 + minSkip - 1}), []span{{rng(0, 200*P), true}}},
		{"long run skipped", []elfcore.Range{rng(0, 200*P)}, ex([2]uint64{10, 10 + minSkip}), []span{{rng(0, 10*P), true}, {rng(10*P, (10+minSkip)*P), false}, {rng((10+minSkip)*P, 200*P), true}}},
		{"run to the end, two ranges", []elfcore.Range{rng(P/2, 100*P), rng(300*P, 400*P)}, ex([2]uint64{20, 100}, [2]uint64{300, 400}), []span{{rng(P/2, 20*P), true}, {rng(20*P, 100*P), false}, {rng(300*P, 400*P), false}}},
	} {
		if got := readSpans(c.ram, c.ex); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
