package kdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// ErrExcluded is the error (wrapped in an *ExcludedError) for a page the
// dump does not hold.
var ErrExcluded = errors.New("page excluded from the dump")

// ExcludedError is a page the dump does not hold: not RAM (InRAM false),
// or RAM the dump level left out.
type ExcludedError struct {
	PFN       uint64
	InRAM     bool
	DumpLevel int
}

func (e *ExcludedError) Error() string {
	if !e.InRAM {
		return fmt.Sprintf("pfn %#x is not in the dump's RAM bitmap", e.PFN)
	}
	return fmt.Sprintf("pfn %#x: page excluded from the dump (dump level %d)", e.PFN, e.DumpLevel)
}

func (e *ExcludedError) Unwrap() error { return ErrExcluded }

// FormatError reports malformed kdump data: the field, its byte offset in
// the file, what was expected and what was found.
type FormatError struct {
	Off   int64
	Field string
	Msg   string
	Val   any
	err   error
}

// Unwrap makes errors.Is(err, ErrSplit) hold for a split part.
func (e *FormatError) Unwrap() error { return e.err }

func (e *FormatError) Error() string {
	s := fmt.Sprintf("kdump: %s at byte %#x: %s", e.Field, e.Off, e.Msg)
	if e.Val != nil {
		s += fmt.Sprintf(" (found %v)", e.Val)
	}
	return s
}

func ferr(off int64, field, msg string, val any) error {
	return &FormatError{Off: off, Field: field, Msg: msg, Val: val}
}

// Offsets of the header fields, for errors.
const (
	offHeaderVersion = 8
	offStatus        = 424
	offBlockSize     = 428
	offSubHdrSize    = 432
	offBitmapBlocks  = 436
	offMaxMapnr      = 440
	offNrCPUs        = 460
)

// Sub-header field offsets, relative to the sub-header.
const (
	subDumpLevel   = 8
	subSplit       = 12
	subVmcoreinfo  = 32
	subNote        = 48
	subEraseinfo   = 64
	subStartPFN64  = 80
	subEndPFN64    = 88
	subMaxMapnr64  = 96
	maxPageSize    = 1 << 16
	minPageSize    = 1 << 12
	maxPFNs        = 1 << 52 // 64-bit physical addresses of 4 KiB pages
	pfnsPerSection = 1 << 16 // pfns per entry of the cumulative count
)

// File is an opened kdump-compressed dump: one file, one part of a split
// dump (OpenPart), or a split dump's parts joined (Join).
type File struct {
	r    io.ReaderAt
	size int64

	// A part of a split dump holds the pages of the pfns [start, end)
	// only; its descriptors count from start (descBase is the number of
	// dumpable pages below it). A joined set reads through its parts,
	// sorted by start.
	split      bool
	start, end uint64
	descBase   uint64
	parts      []*File

	Header    RawHeader
	Sub       RawSubHeader
	Signature string
	PageSize  int
	MaxMapnr  uint64 // pfns the bitmaps describe: 0 … MaxMapnr-1

	ram, dumpable []uint64 // bitmaps as words, MaxMapnr bits rounded up
	cum           []uint64 // dumpable pages below pfn i*pfnsPerSection
	descOff       int64    // file offset of the page_desc array
	nDesc         uint64   // dumpable pages: descriptors in the array

	notes, vmcoreinfo []byte

	zstdOnce sync.Once
	zstdDec  *zstd.Decoder
	zstdErr  error
}

// ErrSplit is wrapped by Open's error for one part of a split dump.
var ErrSplit = errors.New("a part of a split dump")

// Open reads and validates the headers and the bitmaps of a kdump file of
// size bytes. Every error is a *FormatError naming the field and offset;
// one part of a split dump is refused with an error wrapping ErrSplit
// (OpenPart opens it, Join joins the parts).
func Open(r io.ReaderAt, size int64) (*File, error) {
	f, err := open(r, size)
	if err == nil && f.split {
		return nil, &FormatError{Off: int64(f.Header.BlockSize) + subSplit, Field: "split", Msg: "a split dump (one of several files, makedumpfile --split) is read only with all its parts; join the files with makedumpfile --reassemble, or keep them in one directory for ldx", Val: f.Sub.Split, err: ErrSplit}
	}
	return f, err
}

// OpenPart opens a kdump file that may be one part of a split dump: a
// part serves only its own pfn range (Part) until it is joined with the
// others (Join).
func OpenPart(r io.ReaderAt, size int64) (*File, error) { return open(r, size) }

func open(r io.ReaderAt, size int64) (*File, error) {
	f := &File{r: r, size: size}
	hb := make([]byte, HeaderSize)
	if n, _ := r.ReadAt(hb, 0); n < HeaderSize {
		return nil, ferr(0, "disk_dump_header", fmt.Sprintf("the file is %d bytes, the header needs %d", size, HeaderSize), nil)
	}
	h, _ := DecodeHeader(hb)
	f.Header = h
	f.Signature = string(h.Signature[:])
	if f.Signature != SigKdump && f.Signature != SigDiskdump {
		return nil, ferr(0, "signature", fmt.Sprintf("want %q or %q", SigKdump, SigDiskdump), fmt.Sprintf("%q", h.Signature[:]))
	}
	if h.HeaderVersion < 0 || h.HeaderVersion > 1000 {
		return nil, ferr(offHeaderVersion, "header_version", "want a small non-negative version (makedumpfile writes 6)", h.HeaderVersion)
	}
	bs := h.BlockSize
	if bs < minPageSize || bs > maxPageSize || bs&(bs-1) != 0 {
		return nil, ferr(offBlockSize, "block_size", fmt.Sprintf("want the page size, a power of two from %d to %d", minPageSize, maxPageSize), bs)
	}
	f.PageSize = int(bs)
	if h.Status&^KnownStatusFlags != 0 {
		return nil, ferr(offStatus, "status", fmt.Sprintf("unknown flags (known %#x)", KnownStatusFlags), fmt.Sprintf("%#x", h.Status))
	}
	if h.NrCPUs < 0 || h.NrCPUs > 1<<16 {
		return nil, ferr(offNrCPUs, "nr_cpus", "want 0…65536", h.NrCPUs)
	}
	blocks := size / int64(bs)
	if h.SubHdrSize < 0 || int64(h.SubHdrSize) > blocks {
		return nil, ferr(offSubHdrSize, "sub_hdr_size", fmt.Sprintf("want a block count within the file (%d blocks)", blocks), h.SubHdrSize)
	}
	if int64(h.BitmapBlocks) > blocks || 1+int64(h.SubHdrSize)+int64(h.BitmapBlocks) > blocks {
		return nil, ferr(offBitmapBlocks, "bitmap_blocks", fmt.Sprintf("the bitmaps (after %d sub-header blocks) must lie within the file (%d blocks)", h.SubHdrSize, blocks), h.BitmapBlocks)
	}
	if f.Signature == SigKdump {
		if err := f.readSubHeader(); err != nil {
			return nil, err
		}
	}
	f.MaxMapnr = uint64(h.MaxMapnr)
	if h.HeaderVersion >= 6 && f.Signature == SigKdump {
		f.MaxMapnr = f.Sub.MaxMapnr64
	}
	mmOff := int64(offMaxMapnr)
	if h.HeaderVersion >= 6 {
		mmOff = int64(bs) + subMaxMapnr64
	}
	if f.MaxMapnr == 0 || f.MaxMapnr > maxPFNs {
		return nil, ferr(mmOff, "max_mapnr", fmt.Sprintf("want 1…%#x pfns", uint64(maxPFNs)), f.MaxMapnr)
	}
	bmOff := int64(1+h.SubHdrSize) * int64(bs)
	bmLen := int64(h.BitmapBlocks) * int64(bs)
	need := (f.MaxMapnr + 7) / 8
	half := bmLen
	two := uint64(h.BitmapBlocks) >= 2*((need+uint64(bs)-1)/uint64(bs))
	if two {
		half = bmLen / 2
	}
	if uint64(half) < need {
		return nil, ferr(offBitmapBlocks, "bitmap_blocks", fmt.Sprintf("a bitmap of %d bytes cannot describe max_mapnr %#x pfns (%d bytes)", half, f.MaxMapnr, need), h.BitmapBlocks)
	}
	words := (f.MaxMapnr + 63) / 64
	var err error
	if f.ram, err = f.readBitmap(bmOff, need, words, "RAM bitmap"); err != nil {
		return nil, err
	}
	f.dumpable = f.ram
	if two {
		if f.dumpable, err = f.readBitmap(bmOff+half, need, words, "dumpable bitmap"); err != nil {
			return nil, err
		}
	}
	f.descOff = bmOff + bmLen
	f.cum = make([]uint64, (f.MaxMapnr+pfnsPerSection-1)/pfnsPerSection+1)
	var n uint64
	for i, w := range f.dumpable {
		if i%(pfnsPerSection/64) == 0 {
			f.cum[i/(pfnsPerSection/64)] = n
		}
		n += uint64(bits.OnesCount64(w))
	}
	f.cum[len(f.cum)-1] = n
	f.nDesc = n
	f.end = f.MaxMapnr
	if f.split {
		s := &f.Sub
		f.start, f.end = s.StartPFN, s.EndPFN
		if h.HeaderVersion >= 6 {
			f.start, f.end = s.StartPFN64, s.EndPFN64
		}
		if f.start > f.end || f.end > f.MaxMapnr {
			return nil, ferr(int64(bs)+subSplit, "start_pfn/end_pfn", fmt.Sprintf("a split part's pfn range must lie within max_mapnr %#x", f.MaxMapnr), fmt.Sprintf("[%#x, %#x)", f.start, f.end))
		}
		f.descBase = f.descIndex(f.start)
		f.nDesc = f.descIndex(f.end) - f.descBase
	}
	if end := uint64(f.descOff) + n*PageDescSize; end > uint64(size) && h.Status&FlagIncomplete == 0 {
		return nil, ferr(f.descOff, "page_desc array", fmt.Sprintf("%d descriptors (one per dumpable page) end at byte %#x, past the end of the file (%#x) and the header does not say the dump is incomplete", n, end, size), nil)
	}
	return f, nil
}

// readSubHeader reads and checks the kdump sub-header and the blobs it
// points to.
func (f *File) readSubHeader() error {
	h := &f.Header
	base := int64(h.BlockSize)
	if h.SubHdrSize < 1 {
		return ferr(offSubHdrSize, "sub_hdr_size", "a KDUMP file needs at least one sub-header block", h.SubHdrSize)
	}
	b := make([]byte, SubHeaderSize)
	n, _ := f.r.ReadAt(b, base)
	f.Sub = DecodeSubHeader(b[:n])
	s := &f.Sub
	f.split = h.HeaderVersion >= 2 && s.Split != 0
	if s.DumpLevel < 0 || s.DumpLevel > 31 {
		return ferr(base+subDumpLevel, "dump_level", "want 0…31", s.DumpLevel)
	}
	blob := func(ver int32, fieldOff int64, name string, off int64, sz uint64) ([]byte, error) {
		if h.HeaderVersion < ver || sz == 0 {
			return nil, nil
		}
		if off <= 0 || sz > 64<<20 || uint64(off)+sz > uint64(f.size) {
			return nil, ferr(base+fieldOff, name, fmt.Sprintf("want a range of at most 64 MiB within the file (%#x bytes)", f.size), fmt.Sprintf("offset %#x size %#x", off, sz))
		}
		out := make([]byte, sz)
		if _, err := f.r.ReadAt(out, off); err != nil {
			return nil, ferr(off, name, "unreadable", err)
		}
		return out, nil
	}
	var err error
	if f.vmcoreinfo, err = blob(3, subVmcoreinfo, "offset_vmcoreinfo/size_vmcoreinfo", s.OffsetVmcoreinfo, s.SizeVmcoreinfo); err != nil {
		return err
	}
	if f.notes, err = blob(4, subNote, "offset_note/size_note", s.OffsetNote, s.SizeNote); err != nil {
		return err
	}
	if h.HeaderVersion >= 5 && s.SizeEraseinfo != 0 && (s.OffsetEraseinfo <= 0 || uint64(s.OffsetEraseinfo)+s.SizeEraseinfo > uint64(f.size)) {
		return ferr(base+subEraseinfo, "offset_eraseinfo/size_eraseinfo", "want a range within the file", fmt.Sprintf("offset %#x size %#x", s.OffsetEraseinfo, s.SizeEraseinfo))
	}
	return nil
}

func (f *File) readBitmap(off int64, need, words uint64, name string) ([]uint64, error) {
	b := make([]byte, words*8)
	if n, err := f.r.ReadAt(b[:need], off); uint64(n) < need {
		return nil, ferr(off+int64(n), name, fmt.Sprintf("%d bytes unreadable", need-uint64(n)), err)
	}
	w := make([]uint64, words)
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	if r := f.MaxMapnr % 64; r != 0 { // bits past max_mapnr do not count
		w[len(w)-1] &= 1<<r - 1
	}
	return w, nil
}

// Notes returns the ELF notes blob of the sub-header (version 4 on): the
// kernel's notes as a sequence of Elf64_Nhdr records, or nil.
func (f *File) Notes() []byte { return f.notes }

// VMCOREINFO returns the VMCOREINFO text of the sub-header (version 3
// on), or nil.
func (f *File) VMCOREINFO() []byte { return f.vmcoreinfo }

// PhysBase is the sub-header's phys_base (as the dumping tool saw it:
// QEMU writes a guess).
func (f *File) PhysBase() uint64 { return f.Sub.PhysBase }

// DumpLevel is makedumpfile's -d value: which kinds of pages were excluded.
func (f *File) DumpLevel() int { return int(f.Sub.DumpLevel) }

// NrCPUs is the header's CPU count.
func (f *File) NrCPUs() int { return int(f.Header.NrCPUs) }

// Utsname returns the header's release, version and machine fields etc.
func (f *File) Utsname() (sysname, nodename, release, version, machine string) {
	u := &f.Header.Utsname
	return UtsField(u.Sysname), UtsField(u.Nodename), UtsField(u.Release), UtsField(u.Version), UtsField(u.Machine)
}

// Incomplete says the header marks the dump as cut short.
func (f *File) Incomplete() bool { return f.Header.Status&FlagIncomplete != 0 }

// DumpablePages is the number of pages the file holds (a part of a split
// dump: the pages of its own range).
func (f *File) DumpablePages() uint64 { return f.nDesc }

// Size is the size of the file in bytes (a joined split dump: its first
// part's).
func (f *File) Size() int64 { return f.size }

func bit(w []uint64, pfn uint64) bool { return w[pfn/64]&(1<<(pfn%64)) != 0 }

// InRAM says the RAM bitmap has pfn.
func (f *File) InRAM(pfn uint64) bool { return pfn < f.MaxMapnr && bit(f.ram, pfn) }

// Dumpable says the file holds pfn's page.
func (f *File) Dumpable(pfn uint64) bool { return pfn < f.MaxMapnr && bit(f.dumpable, pfn) }

// PFNRange is the pfns Start … End-1.
type PFNRange struct{ Start, End uint64 }

// RAMRanges returns the runs of set bits of the RAM bitmap.
func (f *File) RAMRanges() []PFNRange { return runs(f.ram, f.MaxMapnr) }

// DumpableRanges returns the runs of pfns the file holds.
func (f *File) DumpableRanges() []PFNRange { return runs(f.dumpable, f.MaxMapnr) }

func runs(w []uint64, n uint64) []PFNRange {
	var out []PFNRange
	in := false
	var start uint64
	for pfn := uint64(0); pfn < n; {
		word := w[pfn/64]
		if pfn%64 == 0 && (word == 0 && !in || word == ^uint64(0) && in) {
			pfn += 64
			continue
		}
		b := word&(1<<(pfn%64)) != 0
		if b && !in {
			start, in = pfn, true
		} else if !b && in {
			out = append(out, PFNRange{start, pfn})
			in = false
		}
		pfn++
	}
	if in {
		out = append(out, PFNRange{start, n})
	}
	return out
}

// descIndex is the number of dumpable pages below pfn.
func (f *File) descIndex(pfn uint64) uint64 {
	if pfn >= f.MaxMapnr {
		return f.cum[len(f.cum)-1]
	}
	sec := pfn / pfnsPerSection
	n := f.cum[sec]
	w := pfn / 64
	for i := sec * (pfnsPerSection / 64); i < w; i++ {
		n += uint64(bits.OnesCount64(f.dumpable[i]))
	}
	return n + uint64(bits.OnesCount64(f.dumpable[w]&(1<<(pfn%64)-1)))
}

// PageDesc returns pfn's descriptor and its file offset, or an
// *ExcludedError when the file does not hold the page.
func (f *File) PageDesc(pfn uint64) (RawPageDesc, int64, error) {
	if !f.Dumpable(pfn) {
		return RawPageDesc{}, 0, &ExcludedError{PFN: pfn, InRAM: f.InRAM(pfn), DumpLevel: f.DumpLevel()}
	}
	if f.parts != nil {
		return f.part(pfn).PageDesc(pfn)
	}
	if pfn < f.start || pfn >= f.end {
		return RawPageDesc{}, 0, fmt.Errorf("kdump: pfn %#x is in another part of the split dump (this part holds [%#x, %#x))", pfn, f.start, f.end)
	}
	off := f.descOff + int64(f.descIndex(pfn)-f.descBase)*PageDescSize
	var b [PageDescSize]byte
	if n, err := f.r.ReadAt(b[:], off); n < PageDescSize {
		what := "unreadable"
		if off+PageDescSize > f.size {
			what = "past the end of the file"
			if f.Incomplete() {
				what += " (the dump is marked incomplete)"
			}
		}
		return RawPageDesc{}, off, ferr(off, fmt.Sprintf("page_desc of pfn %#x", pfn), what, err)
	}
	return DecodePageDesc(b[:]), off, nil
}

// ReadPage reads pfn's page into buf (PageSize bytes), decompressing it.
// A page the file does not hold is an *ExcludedError (errors.Is
// ErrExcluded); a bad descriptor or data a *FormatError naming the pfn and
// the descriptor's offset.
func (f *File) ReadPage(pfn uint64, buf []byte) error {
	if len(buf) != f.PageSize {
		return fmt.Errorf("kdump: ReadPage needs a %d-byte buffer, got %d", f.PageSize, len(buf))
	}
	if f.parts != nil && f.Dumpable(pfn) {
		return f.part(pfn).ReadPage(pfn, buf)
	}
	d, doff, err := f.PageDesc(pfn)
	if err != nil {
		return err
	}
	field := fmt.Sprintf("page_desc of pfn %#x", pfn)
	if d.Size == 0 || d.Size > uint32(f.PageSize) {
		return ferr(doff, field, fmt.Sprintf("size must be 1…%d (a page)", f.PageSize), d.Size)
	}
	if d.Offset < 0 || d.Offset+int64(d.Size) > f.size {
		return ferr(doff, field, fmt.Sprintf("data at offset %#x size %#x lies past the end of the file (%#x)", d.Offset, d.Size, f.size), nil)
	}
	if d.Flags&^KnownPageFlags != 0 || bits.OnesCount32(d.Flags&CompressionMask) > 1 {
		return ferr(doff, field, "flags must name at most one known compression", fmt.Sprintf("%#x", d.Flags))
	}
	if d.Flags == 0 {
		if d.Size != uint32(f.PageSize) {
			return ferr(doff, field, "an uncompressed page must be stored whole", d.Size)
		}
		if _, err := f.r.ReadAt(buf, d.Offset); err != nil {
			return ferr(d.Offset, fmt.Sprintf("data of pfn %#x", pfn), "unreadable", err)
		}
		return nil
	}
	src := make([]byte, d.Size)
	if _, err := f.r.ReadAt(src, d.Offset); err != nil {
		return ferr(d.Offset, fmt.Sprintf("data of pfn %#x", pfn), "unreadable", err)
	}
	n, err := f.decompress(d.Flags, src, buf)
	if err == nil && n != f.PageSize {
		err = fmt.Errorf("decompressed to %d bytes, want %d", n, f.PageSize)
	}
	if err != nil {
		return ferr(doff, field, fmt.Sprintf("%s data at %#x (%d bytes) is bad", compressionName(d.Flags), d.Offset, d.Size), err)
	}
	return nil
}

func compressionName(flags uint32) string {
	switch flags & CompressionMask {
	case FlagZlib:
		return "zlib"
	case FlagLZO:
		return "LZO"
	case FlagSnappy:
		return "snappy"
	case FlagZstd:
		return "zstd"
	}
	return "raw"
}

// decompress inflates src into dst and returns the length it produced;
// more than len(dst) is an error, never an allocation.
func (f *File) decompress(flags uint32, src, dst []byte) (int, error) {
	switch flags & CompressionMask {
	case FlagZlib:
		zr, err := zlib.NewReader(bytes.NewReader(src))
		if err != nil {
			return 0, err
		}
		n, err := io.ReadFull(zr, dst)
		if err != nil {
			return n, err
		}
		var one [1]byte
		if k, _ := zr.Read(one[:]); k > 0 {
			return n + 1, errors.New("inflates to more than a page")
		}
		return n, zr.Close()
	case FlagSnappy:
		l, err := snappy.DecodedLen(src)
		if err != nil {
			return 0, err
		}
		if l != len(dst) {
			return l, nil
		}
		out, err := snappy.Decode(dst, src)
		return len(out), err
	case FlagZstd:
		f.zstdOnce.Do(func() {
			f.zstdDec, f.zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxPageSize*2), zstd.WithDecoderMaxWindow(1<<20))
		})
		if f.zstdErr != nil {
			return 0, f.zstdErr
		}
		out, err := f.zstdDec.DecodeAll(src, dst[:0:len(dst)])
		if err != nil {
			return 0, err
		}
		if len(out) > 0 && &out[0] != &dst[0] {
			if len(out) > len(dst) {
				return len(out), nil
			}
			copy(dst, out)
		}
		return len(out), nil
	case FlagLZO:
		return lzo1xDecompress(src, dst)
	}
	return 0, errors.New("unknown compression")
}

// Close releases the zstd decoders, if any were made.
func (f *File) Close() error {
	if f.zstdDec != nil {
		f.zstdDec.Close()
	}
	for _, p := range f.parts {
		p.Close()
	}
	return nil
}
