package kdump

// TEMPORARY: stand-ins for raw.go (branch kdump-read) so the writer
// builds before it lands; removed on merge.

import "encoding/binary"

const (
	DUMP_DH_COMPRESSED_ZLIB   = 0x1
	DUMP_DH_COMPRESSED_SNAPPY = 0x4
	DUMP_DH_COMPRESSED_ZSTD   = 0x20
	KdumpSignature            = "KDUMP   "
	subHeaderSize             = 104
)

type DiskDumpHeader struct {
	Signature                   [8]byte
	HeaderVersion               int32
	Utsname                     [6][65]byte
	TimestampSec, TimestampUsec int64
	Status                      uint32
	BlockSize, SubHdrSize       int32
	BitmapBlocks, MaxMapnr      uint32
	NrCPUs                      int32
}

func (h DiskDumpHeader) encode(b []byte) {
	le := binary.LittleEndian
	copy(b, h.Signature[:])
	le.PutUint32(b[8:], uint32(h.HeaderVersion))
	for i := range h.Utsname {
		copy(b[12+65*i:], h.Utsname[i][:])
	}
	le.PutUint64(b[408:], uint64(h.TimestampSec))
	le.PutUint64(b[416:], uint64(h.TimestampUsec))
	le.PutUint32(b[424:], h.Status)
	le.PutUint32(b[428:], uint32(h.BlockSize))
	le.PutUint32(b[432:], uint32(h.SubHdrSize))
	le.PutUint32(b[436:], h.BitmapBlocks)
	le.PutUint32(b[440:], h.MaxMapnr)
	le.PutUint32(b[460:], uint32(h.NrCPUs))
}

type KdumpSubHeader struct {
	PhysBase         uint64
	DumpLevel        int32
	OffsetVmcoreinfo int64
	SizeVmcoreinfo   uint64
	OffsetNote       int64
	SizeNote         uint64
	MaxMapnr64       uint64
}

func (s KdumpSubHeader) encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], s.PhysBase)
	le.PutUint32(b[8:], uint32(s.DumpLevel))
	le.PutUint64(b[32:], uint64(s.OffsetVmcoreinfo))
	le.PutUint64(b[40:], s.SizeVmcoreinfo)
	le.PutUint64(b[48:], uint64(s.OffsetNote))
	le.PutUint64(b[56:], s.SizeNote)
	le.PutUint64(b[96:], s.MaxMapnr64)
}

type PageDesc struct {
	Offset      int64
	Size, Flags uint32
}

func (d PageDesc) encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(d.Offset))
	le.PutUint32(b[8:], d.Size)
	le.PutUint32(b[12:], d.Flags)
}
