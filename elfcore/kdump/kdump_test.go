package kdump

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

const ps = 4096

// zero is the content of every zero page of the synthetic files.
var zero = make([]byte, ps)

var zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

// synth describes a synthetic kdump file for the test encoder.
type synth struct {
	maxMapnr uint64
	ram      []PFNRange        // RAM bitmap
	pages    map[uint64][]byte // dumpable pages (absent from pages: excluded)
	flags    uint32            // compression for every page (0: raw)
	zeroPage bool              // zero pages share one data page, as makedumpfile -d 1…
	mutate   func(f []byte, l *synthLayout)
}

type synthLayout struct {
	descOff int64
	dataOff int64
	subOff  int64
}

func compress(t testing.TB, flags uint32, p []byte) []byte {
	var buf bytes.Buffer
	switch flags {
	case FlagZlib:
		w := zlib.NewWriter(&buf)
		w.Write(p)
		w.Close()
	case FlagSnappy:
		return snappy.Encode(nil, p)
	case FlagZstd:
		return zenc.EncodeAll(p, nil)
	default:
		t.Fatalf("no encoder for %#x", flags)
	}
	return buf.Bytes()
}

// build encodes s as makedumpfile lays a file out: header, sub-header with
// the VMCOREINFO text and notes, two bitmaps, descriptors, data.
func (s synth) build(t testing.TB) []byte {
	vmci := []byte("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n")
	notes := []byte("NOTESNOTES")
	var h RawHeader
	copy(h.Signature[:], SigKdump)
	h.HeaderVersion = 6
	SetUtsField(&h.Utsname.Release, "6.1.0-test")
	SetUtsField(&h.Utsname.Machine, "x86_64")
	h.BlockSize = ps
	h.Status = s.flags
	h.NrCPUs = 2
	h.SubHdrSize = 1
	h.BitmapBlocks = BitmapBlocksFor(s.maxMapnr, ps)
	h.MaxMapnr = uint32(s.maxMapnr)
	sub := RawSubHeader{PhysBase: 0x2a00000, DumpLevel: 31, MaxMapnr64: s.maxMapnr, EndPFN64: s.maxMapnr}
	sub.OffsetVmcoreinfo = ps + SubHeaderSize
	sub.SizeVmcoreinfo = uint64(len(vmci))
	sub.OffsetNote = sub.OffsetVmcoreinfo + int64(len(vmci))
	sub.SizeNote = uint64(len(notes))
	out := make([]byte, 2*ps)
	copy(out, h.Encode())
	copy(out[ps:], sub.Encode())
	copy(out[sub.OffsetVmcoreinfo:], vmci)
	copy(out[sub.OffsetNote:], notes)
	half := int(h.BitmapBlocks) / 2 * ps
	bm := make([]byte, 2*half)
	for _, r := range s.ram {
		for p := r.Start; p < r.End; p++ {
			bm[p/8] |= 1 << (p % 8)
		}
	}
	var pfns []uint64
	for p := uint64(0); p < s.maxMapnr; p++ {
		if _, ok := s.pages[p]; ok {
			bm[half+int(p/8)] |= 1 << (p % 8)
			pfns = append(pfns, p)
		}
	}
	out = append(out, bm...)
	l := &synthLayout{descOff: int64(len(out)), subOff: ps}
	l.dataOff = l.descOff + int64(len(pfns))*PageDescSize
	var descs, data []byte
	zeroOff := int64(-1)
	if s.zeroPage {
		zeroOff = l.dataOff
		data = make([]byte, ps)
	}
	for _, p := range pfns {
		pg := s.pages[p]
		if s.zeroPage && &pg[0] == &zero[0] {
			descs = AppendPageDesc(descs, RawPageDesc{Offset: zeroOff, Size: ps})
			continue
		}
		d := RawPageDesc{Offset: l.dataOff + int64(len(data)), Size: ps}
		stored := pg
		if s.flags != 0 {
			if c := compress(t, s.flags, pg); len(c) < ps {
				stored, d.Flags = c, s.flags
			}
		}
		d.Size = uint32(len(stored))
		data = append(data, stored...)
		descs = AppendPageDesc(descs, d)
	}
	out = append(append(out, descs...), data...)
	if s.mutate != nil {
		s.mutate(out, l)
	}
	return out
}

func page(seed byte) []byte {
	p := make([]byte, ps)
	for i := range p {
		p[i] = byte(i/7) ^ seed
	}
	copy(p, "page ")
	p[5] = seed
	return p
}

// standard is RAM pfns 1…199 and 256…99999 (a hole, max_mapnr past a
// 64Ki-pfn section), with every 3rd page excluded and some zero pages.
func standard(flags uint32) synth {
	s := synth{maxMapnr: 100000, ram: []PFNRange{{1, 200}, {256, 100000}}, pages: map[uint64][]byte{}, flags: flags, zeroPage: true}
	for _, r := range s.ram {
		for p := r.Start; p < r.End; p++ {
			switch {
			case p%3 == 0:
			case p%5 == 0:
				s.pages[p] = zero
			case p < 300 || p%997 == 1 || p > 99990:
				s.pages[p] = page(byte(p))
			default:
				s.pages[p] = zero
			}
		}
	}
	return s
}

type readerAt []byte

func (b readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, errors.New("EOF")
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, errors.New("EOF")
	}
	return n, nil
}

func TestReadPages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags uint32
	}{{"raw", 0}, {"zlib", FlagZlib}, {"snappy", FlagSnappy}, {"zstd", FlagZstd}} {
		t.Run(tc.name, func(t *testing.T) {
			s := standard(tc.flags)
			img := s.build(t)
			f, err := Open(readerAt(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.MaxMapnr != 100000 || f.DumpLevel() != 31 || f.PhysBase() != 0x2a00000 || f.NrCPUs() != 2 ||
				f.DumpablePages() != uint64(len(s.pages)) || string(f.Notes()) != "NOTESNOTES" ||
				!strings.HasPrefix(string(f.VMCOREINFO()), "OSRELEASE=6.1.0-test\n") {
				t.Fatalf("header: mapnr %d level %d phys_base %#x cpus %d pages %d notes %q", f.MaxMapnr, f.DumpLevel(), f.PhysBase(), f.NrCPUs(), f.DumpablePages(), f.Notes())
			}
			if _, _, rel, _, mach := f.Utsname(); rel != "6.1.0-test" || mach != "x86_64" {
				t.Errorf("utsname %q %q", rel, mach)
			}
			if got := f.RAMRanges(); len(got) != 2 || got[0] != (PFNRange{1, 200}) || got[1] != (PFNRange{256, 100000}) {
				t.Errorf("RAM ranges %v", got)
			}
			buf := make([]byte, ps)
			for pfn := uint64(0); pfn < 100010; pfn++ {
				err := f.ReadPage(pfn, buf)
				want, ok := s.pages[pfn]
				if !ok {
					var ee *ExcludedError
					if !errors.As(err, &ee) || !errors.Is(err, ErrExcluded) || ee.PFN != pfn || ee.InRAM != f.InRAM(pfn) {
						t.Fatalf("pfn %#x: %v, want excluded", pfn, err)
					}
					continue
				}
				if err != nil || &want[0] != &zero[0] && !bytes.Equal(buf, want) || &want[0] == &zero[0] && !bytes.Equal(buf, zero) {
					t.Fatalf("pfn %#x: %v, equal %v", pfn, err, bytes.Equal(buf, want))
				}
			}
			var n uint64
			for _, r := range f.DumpableRanges() {
				n += r.End - r.Start
			}
			if n != uint64(len(s.pages)) {
				t.Errorf("dumpable ranges cover %d pfns, want %d", n, len(s.pages))
			}
		})
	}
}

// TestBad: every malformed field is an error naming it; a descriptor's
// error names its pfn.
func TestBad(t *testing.T) {
	small := func() synth {
		s := synth{maxMapnr: 64, ram: []PFNRange{{0, 64}}, pages: map[uint64][]byte{}, flags: FlagZlib}
		for p := uint64(0); p < 10; p++ {
			s.pages[p] = page(byte(p))
		}
		return s
	}
	put32 := func(off int, v uint32) func([]byte, *synthLayout) {
		return func(b []byte, _ *synthLayout) { le.PutUint32(b[off:], v) }
	}
	desc := func(i int, fn func(d *RawPageDesc)) func([]byte, *synthLayout) {
		return func(b []byte, l *synthLayout) {
			o := l.descOff + int64(i)*PageDescSize
			d := DecodePageDesc(b[o:])
			fn(&d)
			copy(b[o:], AppendPageDesc(nil, d))
		}
	}
	for _, tc := range []struct {
		name    string
		mutate  func([]byte, *synthLayout)
		cut     int // bytes cut off the end
		openErr string
		pageErr string // for pfn 3
	}{
		{name: "signature", mutate: func(b []byte, _ *synthLayout) { copy(b, "ELF\x7fxxxx") }, openErr: "signature at byte 0x0"},
		{name: "block size", mutate: put32(offBlockSize, 1000), openErr: "block_size at byte 0x1ac"},
		{name: "status", mutate: put32(offStatus, 0x100), openErr: "status"},
		{name: "bitmap blocks", mutate: put32(offBitmapBlocks, 1<<30), openErr: "bitmap_blocks"},
		{name: "sub header size", mutate: put32(offSubHdrSize, 0), openErr: "sub_hdr_size"},
		{name: "max_mapnr too big for bitmap", mutate: func(b []byte, l *synthLayout) { le.PutUint64(b[l.subOff+subMaxMapnr64:], 1<<20) }, openErr: "cannot describe max_mapnr"},
		{name: "max_mapnr zero", mutate: func(b []byte, l *synthLayout) { le.PutUint64(b[l.subOff+subMaxMapnr64:], 0) }, openErr: "max_mapnr at byte 0x1060"},
		{name: "split", mutate: func(b []byte, l *synthLayout) { le.PutUint32(b[l.subOff+subSplit:], 1) }, openErr: "split"},
		{name: "vmcoreinfo past EOF", mutate: func(b []byte, l *synthLayout) { le.PutUint64(b[l.subOff+subVmcoreinfo+8:], 1<<40) }, openErr: "offset_vmcoreinfo"},
		{name: "truncated descriptors", cut: -1, openErr: "page_desc array"},
		{name: "truncated data", cut: 100, pageErr: ""},
		{name: "size over a page", mutate: desc(3, func(d *RawPageDesc) { d.Size = ps + 1 }), pageErr: "page_desc of pfn 0x3 at byte"},
		{name: "offset past EOF", mutate: desc(3, func(d *RawPageDesc) { d.Offset = 1 << 40 }), pageErr: "past the end of the file"},
		{name: "two compressions", mutate: desc(3, func(d *RawPageDesc) { d.Flags = FlagZlib | FlagZstd }), pageErr: "at most one known compression"},
		{name: "raw page short", mutate: desc(3, func(d *RawPageDesc) { d.Flags = 0 }), pageErr: "stored whole"},
		{name: "wrong compression", mutate: desc(3, func(d *RawPageDesc) { d.Flags = FlagSnappy }), pageErr: "snappy data"},
		{name: "lzo garbage", mutate: desc(3, func(d *RawPageDesc) { d.Flags = FlagLZO }), pageErr: "LZO data"},
		{name: "decompressed size", mutate: desc(3, func(d *RawPageDesc) { d.Size = 20 }), pageErr: "zlib data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := small()
			s.mutate = tc.mutate
			img := s.build(t)
			switch {
			case tc.cut == -1:
				img = img[:ps*4+10]
			case tc.cut > 0:
				img = img[:len(img)-tc.cut]
			}
			f, err := Open(readerAt(img), int64(len(img)))
			if tc.openErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.openErr) {
					t.Fatalf("open: %v, want %q", err, tc.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pfn := uint64(3)
			if tc.cut > 0 {
				pfn = 9
			}
			err = f.ReadPage(pfn, make([]byte, ps))
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.pageErr) || !strings.Contains(err.Error(), fmt.Sprintf("pfn %#x", pfn)) {
				t.Fatalf("page: %v, want a FormatError with %q", err, tc.pageErr)
			}
		})
	}
}

// TestSingleBitmap: a bitmap area too small for two bitmaps is one bitmap
// that serves as both, as crash reads old diskdump files.
func TestSingleBitmap(t *testing.T) {
	s := synth{maxMapnr: 64, ram: []PFNRange{{0, 64}}, pages: map[uint64][]byte{5: page(5)}}
	s.mutate = func(b []byte, l *synthLayout) {
		le.PutUint32(b[offBitmapBlocks:], 1)
	}
	img := s.build(t)
	f, err := Open(readerAt(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Dumpable(0) || f.DumpablePages() != 64 {
		t.Errorf("single bitmap: dumpable(0) %v, %d pages", f.Dumpable(0), f.DumpablePages())
	}
}

func FuzzOpen(f *testing.F) {
	for _, flags := range []uint32{0, FlagZlib, FlagSnappy, FlagZstd} {
		s := synth{maxMapnr: 80, ram: []PFNRange{{1, 70}}, pages: map[uint64][]byte{1: page(1), 2: zero, 65: page(9)}, flags: flags, zeroPage: true}
		f.Add(s.build(f))
		// One part of a split dump (pfns 0-66 of 80).
		s.mutate = func(b []byte, l *synthLayout) {
			le.PutUint32(b[l.subOff+subSplit:], 1)
			le.PutUint64(b[l.subOff+subEndPFN64:], 66)
		}
		f.Add(s.build(f))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Split parts too, alone and joined (with themselves: a gap or
		// an overlap unless the part covers every dumpable page).
		kf, err := OpenPart(readerAt(b), int64(len(b)))
		if err != nil {
			return
		}
		if _, _, ok := kf.Part(); ok {
			if j, err := Join([]*File{kf}); err == nil {
				kf = j
			}
		}
		defer kf.Close()
		buf := make([]byte, kf.PageSize)
		n := 0
		for _, r := range kf.DumpableRanges() {
			for p := r.Start; p < r.End && n < 64; p++ {
				n++
				kf.ReadPage(p, buf)
			}
		}
		kf.ReadPage(kf.MaxMapnr, buf)
	})
}
