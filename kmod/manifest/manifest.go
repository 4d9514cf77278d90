// Package manifest defines the capture manifest: the record `ldx capture`
// writes on the dump device before the kernel starts, and `ldx extract`
// reads back.
//
// The livedump v1 kernel code writes nothing but pages (byte offset =
// physical address, page 0 = ELF header, page 1 = notes): no run id, no
// memory map, no completion marker, and it never clears the device (see
// package livedump, defects K-2, K-3). The manifest supplies what extract
// needs and the kernel does not say: the System RAM map at capture time
// (to lay out PT_LOADs exactly, without MMIO holes or the page past
// max_pfn), where the complete VMCOREINFO note lives in memory (the
// kernel's note page is cut at 4 KiB), how the device was prepared (so
// that never-written pages can be told from real ones) and a run nonce.
//
// It lives in the window 640 KiB–1 MiB (pfns 0xA0–0xFF): the kernel's
// trim_bios_range removes it from E820 RAM, so livedump never writes
// there — confirmed on real runs (see package livedump, "Placement").
package manifest

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/livedump"
)

// Where the manifest lives on the device and how large it may be.
const (
	Offset  = livedump.BIOSHoleStart
	MaxSize = livedump.BIOSHoleEnd - Offset // up to the start of the RAM the kernel dumps
)

// Magic starts the manifest's 32-byte binary header.
var Magic = [8]byte{'L', 'D', 'X', 'M', 'A', 'N', 'I', '1'}

// Version is the manifest format version this package writes.
const Version = 1

// Preparation says what the device held before the kernel started
// writing, which decides how extract recognises never-written pages.
type Preparation string

const (
	// Zeroed: the dump range was cleared (BLKZEROOUT, or a discard that
	// zeroes). Never-written pages read as zeros.
	Zeroed Preparation = "zeroed"
	// Marked: every page of the dump range carries a marker (see
	// Marker). A page still holding its marker was never written.
	Marked Preparation = "marked"
	// Unprepared: nothing was done (--no-clear). Never-written pages hold
	// stale bytes that cannot be told from memory.
	Unprepared Preparation = "none"
)

// Manifest is the capture-time record. Fields that capture could not
// determine are left zero.
type Manifest struct {
	Version  int       `json:"version"`
	Nonce    Nonce     `json:"nonce"`
	Time     time.Time `json:"time"`
	Tool     string    `json:"tool,omitempty"`
	Hostname string    `json:"hostname,omitempty"`

	Release string `json:"release,omitempty"`  // uname -r
	BuildID string `json:"build_id,omitempty"` // VMCOREINFO BUILD-ID

	PresentCPUs  int `json:"present_cpus,omitempty"`
	PossibleCPUs int `json:"possible_cpus,omitempty"`
	OnlineCPUs   int `json:"online_cpus,omitempty"`

	// RAM is the System RAM map (from /proc/iomem), sorted, in bytes.
	RAM []elfcore.Range `json:"ram"`
	// MaxPFN is one past the last RAM page frame (the kernel's max_pfn).
	MaxPFN uint64 `json:"max_pfn,omitempty"`
	// VMCOREINFONote is the physical address and size of the kernel's
	// VMCOREINFO note buffer (/sys/kernel/vmcoreinfo).
	VMCOREINFONote elfcore.Range `json:"vmcoreinfo_note"`
	// CrashNotes holds the physical address of each CPU's crash_notes.
	CrashNotes []uint64 `json:"crash_notes,omitempty"`

	Device   Device      `json:"device"`
	Prepared Preparation `json:"prepared"`

	// Status is how the capture ended: ldx capture writes the manifest
	// with StatusRunning before INIT and rewrites it after UNINIT, because
	// the kernel itself leaves no completion marker (see package
	// livedump, defect K-2). Empty in manifests of earlier ldx versions.
	Status Status `json:"status,omitempty"`
	// StatusDetail says, for an incomplete capture, which step failed.
	StatusDetail string `json:"status_detail,omitempty"`
	// Finished is when ldx capture declared the dump complete or gave up.
	Finished *time.Time `json:"finished,omitempty"`
	// FailedPages is the kernel's count of pages it could not save, on
	// kernels whose interface exposes a `failed` attribute (later trees,
	// package kmod: the kernel interface); nil when the kernel does not say.
	FailedPages *int `json:"failed_pages,omitempty"`
}

// Status is the outcome of a capture as recorded in its manifest.
type Status string

const (
	// StatusRunning: the device is prepared and the kernel run was about
	// to start. A manifest still saying this after the run means ldx
	// capture itself was killed.
	StatusRunning Status = "running"
	// StatusComplete: the kernel went through FINISH, the device went
	// quiet before UNINIT and the header and notes read back matched.
	StatusComplete Status = "complete"
	// StatusIncomplete: the run failed or was interrupted; ldx capture
	// also cleared the header page so that readers refuse the dump.
	StatusIncomplete Status = "incomplete"
)

// Device identifies the dump device, so that extract can warn when it is
// given another device than the one captured to.
type Device struct {
	Path   string `json:"path,omitempty"`
	Size   uint64 `json:"size,omitempty"`
	Major  uint32 `json:"major,omitempty"`
	Minor  uint32 `json:"minor,omitempty"`
	Serial string `json:"serial,omitempty"`
	WWID   string `json:"wwid,omitempty"`
}

// Nonce identifies one capture run.
type Nonce [16]byte

// NewNonce returns a random nonce.
func NewNonce() Nonce {
	var n Nonce
	rand.Read(n[:])
	return n
}

func (n Nonce) String() string { return hex.EncodeToString(n[:]) }

// MarshalText encodes the nonce as hex.
func (n Nonce) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText decodes a hex nonce.
func (n *Nonce) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(n) {
		return fmt.Errorf("manifest: nonce %q is not %d hex bytes", b, len(n))
	}
	_, err := hex.Decode(n[:], b)
	return err
}

// header is the on-device binary header that precedes the JSON body.
type header struct {
	Magic   [8]byte
	Version uint32
	Length  uint32 // JSON body length
	CRC     uint32 // CRC-32C of the body
	_       [12]byte
}

const headerSize = 32

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns the manifest as written on the device: the binary header,
// the JSON body, zero padding to a whole number of pages.
func (m *Manifest) Encode() ([]byte, error) {
	if m.Version == 0 {
		m.Version = Version
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if headerSize+len(body) > MaxSize {
		return nil, fmt.Errorf("manifest: %d bytes do not fit in the %d-byte window at %#x", headerSize+len(body), MaxSize, Offset)
	}
	h := header{Magic: Magic, Version: uint32(m.Version), Length: uint32(len(body)), CRC: crc32.Checksum(body, castagnoli)}
	out, _ := binary.Append(nil, binary.LittleEndian, &h)
	out = append(out, body...)
	return append(out, make([]byte, (len(out)+4095)&^4095-len(out))...), nil
}

// ErrNone means there is no manifest on the device: it was not prepared by
// ldx capture (e.g. the kernel's livedump.sh was used).
var ErrNone = errors.New("no ldx capture manifest")

// Read reads the manifest from a device or image.
func Read(r io.ReaderAt) (*Manifest, error) {
	hb := make([]byte, headerSize)
	if n, err := r.ReadAt(hb, Offset); n < headerSize {
		if err == io.EOF || err == nil {
			return nil, ErrNone
		}
		return nil, fmt.Errorf("manifest: reading %d bytes at %#x: %w", headerSize, Offset, err)
	}
	var h header
	binary.Decode(hb, binary.LittleEndian, &h)
	if h.Magic != Magic {
		return nil, ErrNone
	}
	if h.Version != Version {
		return nil, fmt.Errorf("manifest at %#x: version %d, this ldx reads version %d", Offset, h.Version, Version)
	}
	if h.Length > MaxSize-headerSize {
		return nil, fmt.Errorf("manifest at %#x: body length %d exceeds the %d-byte window", Offset, h.Length, MaxSize-headerSize)
	}
	body := make([]byte, h.Length)
	if n, err := r.ReadAt(body, Offset+headerSize); n < len(body) {
		return nil, fmt.Errorf("manifest at %#x: short body (%d of %d bytes): %v", Offset, n, h.Length, err)
	}
	if c := crc32.Checksum(body, castagnoli); c != h.CRC {
		return nil, fmt.Errorf("manifest at %#x: CRC-32C %08x, header says %08x: the manifest was overwritten or damaged", Offset, c, h.CRC)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest at %#x: %w", Offset, err)
	}
	return &m, nil
}

// MarkerSize is the length of the marker stamped at the start of a page.
const MarkerSize = 32

var markerMagic = [8]byte{'L', 'D', 'X', 'U', 'N', 'W', 'R', '1'}

// Marker returns the marker `ldx capture --mark` stamps at the start of
// page pfn (the rest of the page is zero): a magic, the run nonce and the
// pfn. A page still holding exactly this after the run was never written
// by the kernel in this run. The pfn makes a page copied elsewhere by the
// kernel (e.g. a marker page that was itself memory) unmistakable.
func Marker(n Nonce, pfn uint64) [MarkerSize]byte {
	var m [MarkerSize]byte
	copy(m[:8], markerMagic[:])
	copy(m[8:24], n[:])
	binary.LittleEndian.PutUint64(m[24:], pfn)
	return m
}

// IsMarker reports whether page (one whole page of the device) is the
// untouched marker page of pfn for this run.
func IsMarker(page []byte, n Nonce, pfn uint64) bool {
	if len(page) < MarkerSize || !bytes.Equal(page[:8], markerMagic[:]) {
		return false
	}
	m := Marker(n, pfn)
	if !bytes.Equal(page[:MarkerSize], m[:]) {
		return false
	}
	for _, b := range page[MarkerSize:] {
		if b != 0 {
			return false
		}
	}
	return true
}

// IsRAM reports whether [start, end) lies entirely in the RAM map.
func (m *Manifest) IsRAM(start, end uint64) bool {
	for _, r := range m.RAM {
		if start >= r.Start && end <= r.End {
			return true
		}
	}
	return false
}
