package kdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// memFile is an io.WriterAt in memory.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// synthPage is the content of pfn in the synthetic memory: every 3rd page
// zero, every 5th random (incompressible), every 11th the same 0xcc fill
// (pages the writer's memo has seen), the rest text.
func synthPage(pfn uint64) []byte {
	p := make([]byte, pageSize)
	switch {
	case pfn%3 == 0:
	case pfn%5 == 0:
		r := rand.New(rand.NewPCG(pfn, 7))
		for i := range p {
			p[i] = byte(r.Uint32())
		}
	case pfn%11 == 0:
		copy(p, bytes.Repeat([]byte{0xcc}, pageSize))
	default:
		copy(p, strings.Repeat(fmt.Sprintf("page %#x of synthetic memory; ", pfn), 200))
	}
	return p
}

// readBack is the test's own reader of the layout the writer documents:
// it returns each pfn's page (nil: not in bitmap 2) and the parsed fields.
type readBack struct {
	version, blockSize, subHdr, bitmapBlocks int
	status                                   uint32
	maxMapnr32, nrCPUs                       uint32
	release, machine                         string
	ts                                       int64
	physBase, maxMapnr, vmciOff, vmciSize    uint64
	noteOff, noteSize                        uint64
	dumpLevel                                int
	bitmap1, bitmap2                         []byte
	pages                                    map[uint64][]byte
	zeroShared                               int
}

func readKdump(t *testing.T, f []byte) *readBack {
	t.Helper()
	le := binary.LittleEndian
	if string(f[:8]) != "KDUMP   " {
		t.Fatalf("signature %q", f[:8])
	}
	r := &readBack{pages: map[uint64][]byte{}}
	r.version = int(le.Uint32(f[8:]))
	r.release = string(bytes.TrimRight(f[12+2*65:12+3*65], "\x00"))
	r.machine = string(bytes.TrimRight(f[12+4*65:12+5*65], "\x00"))
	r.ts = int64(le.Uint64(f[408:]))
	r.status = le.Uint32(f[424:])
	r.blockSize = int(le.Uint32(f[428:]))
	r.subHdr = int(le.Uint32(f[432:]))
	r.bitmapBlocks = int(le.Uint32(f[436:]))
	r.maxMapnr32 = le.Uint32(f[440:])
	r.nrCPUs = le.Uint32(f[460:])
	sh := f[r.blockSize:]
	r.physBase = le.Uint64(sh[0:])
	r.dumpLevel = int(le.Uint32(sh[8:]))
	r.vmciOff, r.vmciSize = le.Uint64(sh[32:]), le.Uint64(sh[40:])
	r.noteOff, r.noteSize = le.Uint64(sh[48:]), le.Uint64(sh[56:])
	r.maxMapnr = le.Uint64(sh[96:])
	bm := (1 + r.subHdr) * r.blockSize
	half := r.bitmapBlocks * r.blockSize / 2
	r.bitmap1, r.bitmap2 = f[bm:bm+half], f[bm+half:bm+2*half]
	desc := (1 + r.subHdr + r.bitmapBlocks) * r.blockSize
	seen := map[int64]bool{}
	for pfn := uint64(0); pfn < r.maxMapnr; pfn++ {
		if !hasBit(r.bitmap2, pfn) {
			continue
		}
		if !hasBit(r.bitmap1, pfn) {
			t.Fatalf("pfn %#x in bitmap 2, not in bitmap 1", pfn)
		}
		d := f[desc : desc+24]
		desc += 24
		off, size, flags := int64(le.Uint64(d)), le.Uint32(d[8:]), le.Uint32(d[12:])
		if off+int64(size) > int64(len(f)) || size > pageSize {
			t.Fatalf("pfn %#x: descriptor [%#x, +%d) past EOF %#x", pfn, off, size, len(f))
		}
		if seen[off] {
			r.zeroShared++
		}
		seen[off] = true
		data := f[off : off+int64(size)]
		var page []byte
		var err error
		switch flags {
		case 0:
			page = data
		case FlagZlib:
			var zr io.ReadCloser
			if zr, err = zlib.NewReader(bytes.NewReader(data)); err == nil {
				page, err = io.ReadAll(zr)
			}
		case FlagZstd:
			var d *zstd.Decoder
			if d, err = zstd.NewReader(nil); err == nil {
				page, err = d.DecodeAll(data, nil)
				d.Close()
			}
		case FlagSnappy:
			page, err = snappy.Decode(nil, data)
		default:
			t.Fatalf("pfn %#x: flags %#x", pfn, flags)
		}
		if err != nil || len(page) != pageSize {
			t.Fatalf("pfn %#x: flags %#x: %d bytes, %v", pfn, flags, len(page), err)
		}
		if flags != 0 && size >= pageSize {
			t.Errorf("pfn %#x stored compressed at %d bytes, not smaller than a page", pfn, size)
		}
		r.pages[pfn] = page
	}
	if first := (1 + r.subHdr + r.bitmapBlocks) * r.blockSize; desc > first && len(r.pages) > 0 {
		// The data area starts right after the descriptors.
		lowest := int64(len(f))
		for d := first; d < desc; d += 24 {
			lowest = min(lowest, int64(le.Uint64(f[d:])))
		}
		if lowest != int64(desc) {
			t.Errorf("page data starts at %#x, the descriptors end at %#x", lowest, desc)
		}
	}
	return r
}

func TestWriterRoundTrip(t *testing.T) {
	ram := []PFNRange{{1, 159}, {256, 2000}, {4096, 4100}}
	notes := []byte("....NOTE-BLOB....OSRELEASE=6.1.0-test\n....")
	ts := time.Unix(1700000000, 250000)
	for _, c := range []Compression{CompressZlib, CompressZstd, CompressSnappy, CompressNone} {
		for _, tc := range []struct {
			name    string
			level   int
			exclude func(uint64) bool
		}{
			{"d0", 0, nil},
			{"d1", DumpLevelZero, nil},
			{"d17-odd-excluded", DumpLevelZero | 16, func(pfn uint64) bool { return pfn%7 == 1 }},
			// Runs of excluded pages, long and short, starting inside
			// and at the edges of chunks and RAM ranges.
			{"d31-runs", 31, func(pfn uint64) bool { return pfn%300 >= 100 && pfn%300 < 250 || pfn%29 < 3 || pfn >= 4098 }},
		} {
			t.Run(c.String()+"/"+tc.name, func(t *testing.T) {
				f := &memFile{}
				w, err := NewWriter(f, WriterConfig{
					Utsname:   Utsname{Sysname: "Linux", Release: "6.1.0-test", Machine: "x86_64"},
					Timestamp: ts, NrCPUs: 3, PhysBase: 0x2c000000,
					Notes: notes, VMCOREINFOOff: 17, VMCOREINFOSize: 22,
					RAM: ram, Compression: c, DumpLevel: tc.level, Exclude: tc.exclude, Workers: 3,
				})
				if err != nil {
					t.Fatal(err)
				}
				// Feed in uneven pieces, some as holes of zeros.
				for _, r := range ram {
					for pfn := r.Start; pfn < r.End; {
						n := min(r.End-pfn, 1+pfn%37)
						if pfn%3 == 0 && n == 1 {
							err = w.WriteZeros(pfn, 1)
						} else {
							var buf []byte
							for p := pfn; p < pfn+n; p++ {
								buf = append(buf, synthPage(p)...)
							}
							err = w.Write(pfn, buf)
						}
						if err != nil {
							t.Fatal(err)
						}
						pfn += n
					}
				}
				st, err := w.Close()
				if err != nil {
					t.Fatal(err)
				}
				if st.Size != int64(len(f.b)) {
					t.Errorf("Stats.Size %d, file %d", st.Size, len(f.b))
				}
				rb := readKdump(t, f.b)
				if rb.version != 6 || rb.blockSize != pageSize || rb.maxMapnr != 4100 || rb.maxMapnr32 != 4100 || rb.nrCPUs != 3 ||
					rb.physBase != 0x2c000000 || rb.release != "6.1.0-test" || rb.machine != "x86_64" || rb.ts != ts.Unix() || rb.dumpLevel != tc.level {
					t.Errorf("header: %+v", rb)
				}
				if want := uint32(c.flag()); rb.status != want {
					t.Errorf("status %#x, want %#x", rb.status, want)
				}
				if rb.noteOff != pageSize+SubHeaderSize || rb.noteSize != uint64(len(notes)) || rb.vmciOff != rb.noteOff+17 || rb.vmciSize != 22 {
					t.Errorf("notes at %#x+%d, VMCOREINFO at %#x+%d", rb.noteOff, rb.noteSize, rb.vmciOff, rb.vmciSize)
				}
				if got := f.b[rb.noteOff : rb.noteOff+rb.noteSize]; !bytes.Equal(got, notes) {
					t.Errorf("note blob %q", got)
				}
				if want := 2 * divUp(divUp(4100, 8), pageSize); uint64(rb.bitmapBlocks) != want {
					t.Errorf("bitmap_blocks %d, want %d", rb.bitmapBlocks, want)
				}
				var pages, zeros, excl uint64
				for pfn := uint64(0); pfn < 4100+100; pfn++ {
					inRAM := false
					for _, r := range ram {
						inRAM = inRAM || (pfn >= r.Start && pfn < r.End)
					}
					if pfn < rb.maxMapnr && hasBit(rb.bitmap1, pfn) != inRAM {
						t.Fatalf("pfn %#x: bitmap 1 %v, RAM %v", pfn, hasBit(rb.bitmap1, pfn), inRAM)
					}
					got, ok := rb.pages[pfn]
					switch {
					case !inRAM:
						if ok {
							t.Fatalf("pfn %#x outside RAM is in the file", pfn)
						}
					case tc.exclude != nil && tc.exclude(pfn):
						excl++
						if ok {
							t.Fatalf("excluded pfn %#x is in the file", pfn)
						}
					case !ok:
						t.Fatalf("pfn %#x missing", pfn)
					case !bytes.Equal(got, synthPage(pfn)):
						t.Fatalf("pfn %#x reads back different", pfn)
					case pfn%3 == 0:
						zeros++
					default:
						pages++
					}
				}
				if tc.level&DumpLevelZero != 0 {
					if st.ZeroPages != zeros || st.Pages != pages || rb.zeroShared != int(zeros)-1 {
						t.Errorf("stats %+v, want %d zero (shared %d) and %d data pages", st, zeros, rb.zeroShared, pages)
					}
				} else if st.ZeroPages != 0 || st.Pages != pages+zeros {
					t.Errorf("stats %+v, want %d data pages", st, pages+zeros)
				}
				if st.Excluded != excl {
					t.Errorf("excluded %d, want %d", st.Excluded, excl)
				}
				checkWithReader(t, f.b, ram, tc.exclude, rb)
				if c == CompressNone && st.Raw != st.Pages {
					t.Errorf("none: %d of %d pages raw", st.Raw, st.Pages)
				}
				if c != CompressNone && (st.Raw == 0 || st.Raw == st.Pages) {
					t.Errorf("%s: %d of %d pages raw: random pages must be stored raw, text compressed", c, st.Raw, st.Pages)
				}
			})
		}
	}
}

func TestWriterErrors(t *testing.T) {
	cfg := WriterConfig{RAM: []PFNRange{{0, 10}}, Workers: 2}
	for _, tc := range []struct {
		name string
		run  func(w *Writer) error
		want string
	}{
		{"out of order", func(w *Writer) error { return w.WriteZeros(1, 1) }, "expected 0"},
		{"not whole pages", func(w *Writer) error { return w.Write(0, make([]byte, 100)) }, "not whole pages"},
		{"past RAM", func(w *Writer) error { return w.WriteZeros(0, 11) }, "past the last RAM range"},
		{"short", func(w *Writer) error {
			if err := w.WriteZeros(0, 5); err != nil {
				return err
			}
			_, err := w.Close()
			return err
		}, "stopped at pfn 0x5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWriter(&memFile{}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			if err := tc.run(w); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	for _, bad := range []WriterConfig{
		{},
		{RAM: []PFNRange{{5, 5}}},
		{RAM: []PFNRange{{5, 9}, {7, 12}}},
		{RAM: []PFNRange{{0, 1}}, Notes: []byte("ab"), VMCOREINFOOff: 1, VMCOREINFOSize: 5},
		{RAM: []PFNRange{{0, 1}}, Compression: 9},
	} {
		if _, err := NewWriter(&memFile{}, bad); err == nil {
			t.Errorf("NewWriter(%+v) accepted", bad)
		}
	}
}

// The writer writes to a file through WriteAt only: a file written in
// parallel chunks is the same as the one in memory.
func TestWriterFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dump")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := WriterConfig{RAM: []PFNRange{{0, 3000}}, DumpLevel: 1, Workers: 4}
	mf := &memFile{}
	for _, out := range []io.WriterAt{f, mf} {
		w, err := NewWriter(out, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for pfn := uint64(0); pfn < 3000; pfn++ {
			if err := w.Write(pfn, synthPage(pfn)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, mf.b) {
		t.Error("the file differs from the in-memory copy")
	}
}

func TestParseCompression(t *testing.T) {
	for _, c := range []Compression{CompressZlib, CompressZstd, CompressSnappy, CompressNone} {
		if got, err := ParseCompression(c.String()); err != nil || got != c {
			t.Errorf("ParseCompression(%q) = %v, %v", c, got, err)
		}
	}
	if _, err := ParseCompression("lzo"); err == nil {
		t.Error("lzo accepted")
	}
}

// checkWithReader reads the file back through the package's reader:
// every RAM page equal to what was written, excluded pages ErrExcluded,
// the header fields as given.
func checkWithReader(t *testing.T, b []byte, ram []PFNRange, exclude func(uint64) bool, rb *readBack) {
	t.Helper()
	f, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("the reader rejects the file: %v", err)
	}
	defer f.Close()
	_, _, release, _, machine := f.Utsname()
	if release != rb.release || machine != "x86_64" || f.PhysBase() != rb.physBase || f.NrCPUs() != 3 || f.DumpLevel() != rb.dumpLevel || f.MaxMapnr != rb.maxMapnr ||
		!bytes.Equal(f.VMCOREINFO(), b[rb.vmciOff:rb.vmciOff+rb.vmciSize]) || !bytes.Equal(f.Notes(), b[rb.noteOff:rb.noteOff+rb.noteSize]) {
		t.Errorf("the reader sees release %q machine %q phys_base %#x cpus %d level %d max_mapnr %d", release, machine, f.PhysBase(), f.NrCPUs(), f.DumpLevel(), f.MaxMapnr)
	}
	if got := f.RAMRanges(); fmt.Sprint(got) != fmt.Sprint(ram) {
		t.Errorf("the reader's RAM %v, written %v", got, ram)
	}
	page := make([]byte, pageSize)
	for _, r := range ram {
		for pfn := r.Start; pfn < r.End; pfn++ {
			err := f.ReadPage(pfn, page)
			switch {
			case exclude != nil && exclude(pfn):
				if !errors.Is(err, ErrExcluded) {
					t.Fatalf("excluded pfn %#x: %v", pfn, err)
				}
			case err != nil:
				t.Fatalf("pfn %#x: %v", pfn, err)
			case !bytes.Equal(page, synthPage(pfn)):
				t.Fatalf("pfn %#x: the reader reads different bytes", pfn)
			}
		}
	}
}
