package kdump

import (
	"encoding/binary"
	"fmt"
)

// Signatures of block 0. makedumpfile writes SigKdump; SigDiskdump is the
// older diskdump facility's, which readers still accept with the same layout.
const (
	SigKdump    = "KDUMP   "
	SigDiskdump = "DISKDUMP"
)

// On-disk sizes of the raw records (x86-64 layout: 8-byte longs and off_t,
// the timeval aligned to 8 after the 390-byte utsname).
const (
	HeaderSize    = 464 // sizeof(struct disk_dump_header) up to nr_cpus
	SubHeaderSize = 104 // sizeof(struct kdump_sub_header), version 6
	PageDescSize  = 24  // sizeof(struct page_desc)
	UtsFieldLen   = 65  // each field of struct new_utsname
	UtsLen        = 6 * UtsFieldLen
)

// Page descriptor and header status flags. The compression bits appear both
// in a page_desc's Flags (how that page is stored) and in the header's Status
// (which method the dump used).
const (
	FlagZlib             = 0x1  // page compressed with zlib (with its 2-byte header and adler32)
	FlagLZO              = 0x2  // page compressed with LZO1X
	FlagSnappy           = 0x4  // page compressed with snappy (raw block, no framing)
	FlagIncomplete       = 0x8  // Status: the dump was cut short (ENOSPC), pages past the end are missing
	FlagExcludedVmemmap  = 0x10 // Status: unused vmemmap pages were excluded
	FlagZstd             = 0x20 // page compressed with zstd (one frame)
	CompressionMask      = FlagZlib | FlagLZO | FlagSnappy | FlagZstd
	KnownPageFlags       = CompressionMask
	KnownStatusFlags     = CompressionMask | FlagIncomplete | FlagExcludedVmemmap
	MaxSubHeaderVersion  = 6
	DefaultHeaderVersion = 6
)

// RawUtsname is struct new_utsname: six NUL-padded 65-byte fields.
type RawUtsname struct {
	Sysname, Nodename, Release, Version, Machine, Domainname [UtsFieldLen]byte
}

// RawHeader is block 0, struct disk_dump_header, as stored.
type RawHeader struct {
	Signature      [8]byte
	HeaderVersion  int32
	Utsname        RawUtsname
	_              [6]byte // alignment of timeval
	TimestampSec   int64
	TimestampUsec  int64
	Status         uint32
	BlockSize      int32
	SubHdrSize     int32  // in blocks
	BitmapBlocks   uint32 // both bitmaps, in blocks
	MaxMapnr       uint32 // obsolete 32-bit copy; version 6 has MaxMapnr64
	TotalRAMBlocks uint32
	DeviceBlocks   uint32
	WrittenBlocks  uint32
	CurrentCPU     uint32
	NrCPUs         int32
}

// RawSubHeader is struct kdump_sub_header at block 1. Fields past
// DumpLevel are only meaningful from the header version noted.
type RawSubHeader struct {
	PhysBase         uint64
	DumpLevel        int32  // v1
	Split            int32  // v2
	StartPFN         uint64 // v2, obsolete 32-bit
	EndPFN           uint64 // v2, obsolete 32-bit
	OffsetVmcoreinfo int64  // v3
	SizeVmcoreinfo   uint64 // v3
	OffsetNote       int64  // v4
	SizeNote         uint64 // v4
	OffsetEraseinfo  int64  // v5
	SizeEraseinfo    uint64 // v5
	StartPFN64       uint64 // v6
	EndPFN64         uint64 // v6
	MaxMapnr64       uint64 // v6
}

// RawPageDesc is struct page_desc, one per dumpable page, in pfn order.
type RawPageDesc struct {
	Offset    int64  // file offset of the page's (compressed) data
	Size      uint32 // stored size in bytes
	Flags     uint32 // compression flag, 0 = stored raw
	PageFlags uint64 // unused by readers
}

var le = binary.LittleEndian

// DecodeHeader decodes block 0's header from b (at least HeaderSize bytes).
func DecodeHeader(b []byte) (RawHeader, error) {
	var h RawHeader
	if len(b) < HeaderSize {
		return h, fmt.Errorf("kdump: header needs %d bytes, have %d", HeaderSize, len(b))
	}
	_, err := binary.Decode(b[:HeaderSize], le, &h)
	return h, err
}

// Encode returns the HeaderSize bytes of h.
func (h *RawHeader) Encode() []byte {
	b, err := binary.Append(make([]byte, 0, HeaderSize), le, h)
	if err != nil {
		panic(err) // fixed-size struct: cannot fail
	}
	return b
}

// DecodeSubHeader decodes the sub-header from b. b may be shorter than
// SubHeaderSize (an old version's smaller record at the end of a file):
// missing bytes read as zero.
func DecodeSubHeader(b []byte) RawSubHeader {
	var full [SubHeaderSize]byte
	copy(full[:], b)
	var s RawSubHeader
	if _, err := binary.Decode(full[:], le, &s); err != nil {
		panic(err) // fixed-size struct: cannot fail
	}
	return s
}

// Encode returns the SubHeaderSize bytes of s.
func (s *RawSubHeader) Encode() []byte {
	b, err := binary.Append(make([]byte, 0, SubHeaderSize), le, s)
	if err != nil {
		panic(err)
	}
	return b
}

// DecodePageDesc decodes one descriptor from b (at least PageDescSize bytes).
func DecodePageDesc(b []byte) RawPageDesc {
	return RawPageDesc{
		Offset:    int64(le.Uint64(b[0:])),
		Size:      le.Uint32(b[8:]),
		Flags:     le.Uint32(b[12:]),
		PageFlags: le.Uint64(b[16:]),
	}
}

// AppendPageDesc appends d's PageDescSize bytes to b.
func AppendPageDesc(b []byte, d RawPageDesc) []byte {
	b = le.AppendUint64(b, uint64(d.Offset))
	b = le.AppendUint32(b, d.Size)
	b = le.AppendUint32(b, d.Flags)
	return le.AppendUint64(b, d.PageFlags)
}

// SetUtsField stores s NUL-padded (and cut) into one utsname field.
func SetUtsField(f *[UtsFieldLen]byte, s string) {
	*f = [UtsFieldLen]byte{}
	copy(f[:UtsFieldLen-1], s)
}

// UtsField returns a utsname field up to its first NUL.
func UtsField(f [UtsFieldLen]byte) string {
	for i, c := range f {
		if c == 0 {
			return string(f[:i])
		}
	}
	return string(f[:])
}

// BitmapHalfBytes is the size of one bitmap: readers take the bitmap area
// (BitmapBlocks*BlockSize bytes) and split it in two equal halves, the first
// the RAM ("valid") bitmap, the second the dumpable bitmap. Bit n of a
// bitmap (byte n/8, bit n%8, least significant first) is pfn n.
func BitmapHalfBytes(bitmapBlocks uint32, blockSize int32) int64 {
	return int64(bitmapBlocks) * int64(blockSize) / 2
}

// BitmapBlocksFor is the BitmapBlocks value makedumpfile writes for
// maxMapnr pfns: each bitmap rounded up to whole blocks, two bitmaps.
func BitmapBlocksFor(maxMapnr uint64, blockSize int32) uint32 {
	bs := uint64(blockSize)
	per := (maxMapnr + 8*bs - 1) / (8 * bs)
	return uint32(2 * per)
}

// IsSignature reports whether b, the first bytes of a file, starts with
// either signature.
func IsSignature(b []byte) bool {
	if len(b) < len(SigKdump) {
		return false
	}
	s := string(b[:len(SigKdump)])
	return s == SigKdump || s == SigDiskdump
}
