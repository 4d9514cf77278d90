package kdump

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Compression is how the writer stores pages.
type Compression int

// The compressions the writer produces. Zlib is what `makedumpfile -c`
// writes and every reader supports; makedumpfile 1.7.2 as Debian 12 ships
// it is built with neither snappy nor zstd and cannot read them.
const (
	CompressZlib Compression = iota
	CompressZstd
	CompressSnappy
	CompressNone
)

var compressionNames = []string{"zlib", "zstd", "snappy", "none"}

func (c Compression) String() string {
	if int(c) < len(compressionNames) {
		return compressionNames[c]
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// ParseCompression returns the compression named s (zlib, zstd, snappy,
// none).
func ParseCompression(s string) (Compression, error) {
	for i, n := range compressionNames {
		if s == n {
			return Compression(i), nil
		}
	}
	return 0, fmt.Errorf("unknown compression %q (want %s)", s, strings.Join(compressionNames, ", "))
}

// flag is the page_desc flag (and status bit) of the compression.
func (c Compression) flag() uint32 {
	switch c {
	case CompressZlib:
		return FlagZlib
	case CompressZstd:
		return FlagZstd
	case CompressSnappy:
		return FlagSnappy
	}
	return 0
}

// DumpLevelZero is dump level bit 1: all-zero pages are not stored, their
// descriptors share one page of zeros.
const DumpLevelZero = 1

// Utsname is the kernel's new_utsname as the header carries it; crash
// compares Machine with its own architecture and Release with the vmlinux.
type Utsname struct {
	Sysname, Nodename, Release, Version, Machine, Domainname string
}

// WriterConfig is what the writer needs to know before the first page.
type WriterConfig struct {
	Utsname   Utsname
	Timestamp time.Time // the crash time (zero: none)
	NrCPUs    int
	PhysBase  uint64
	// Notes is the ELF note blob (as a PT_NOTE holds it); VMCOREINFOOff
	// and VMCOREINFOSize locate the VMCOREINFO note's descriptor in it
	// (size 0: there is none).
	Notes                         []byte
	VMCOREINFOOff, VMCOREINFOSize int
	// RAM are the pfn ranges of memory, sorted and disjoint: bitmap 1.
	RAM         []PFNRange
	Compression Compression
	// DumpLevel is recorded in the sub-header; its bit 1 (DumpLevelZero)
	// is applied by the writer from the pages' content.
	DumpLevel int
	// Exclude, if set, says a RAM page is left out of the file (its
	// bitmap-2 bit is clear): the page classes of the other dump level
	// bits. It is called once per RAM pfn, in order, from NewWriter.
	Exclude func(pfn uint64) bool
	// Workers compress pages in parallel (default: GOMAXPROCS).
	Workers int
}

// Stats count what the writer wrote.
type Stats struct {
	Pages     uint64 `json:"pages"`      // pages stored with data of their own
	Raw       uint64 `json:"raw_pages"`  // of those, stored uncompressed
	ZeroPages uint64 `json:"zero_pages"` // pointing at the shared zero page
	Excluded  uint64 `json:"excluded_pages"`
	DataBytes uint64 `json:"data_bytes"` // page data written
	Size      int64  `json:"size"`       // file size
}

const (
	pageSize   = 4096
	chunkPages = 256 // pages per unit of work (1 MiB)
)

// Writer writes a kdump-compressed file. Feed it every RAM page once in
// ascending pfn order with Write and WriteZeros, then Close.
//
// It lays the file out exactly as makedumpfile 1.7.2 lays out the output
// of `makedumpfile -c -d N`, so that every reader of the format (crash,
// makedumpfile, libkdumpfile and so drgn) picks the same blocks:
//
//	block 0                 disk_dump_header, header_version 6,
//	                        block_size = page size (4096)
//	block 1                 kdump_sub_header, then the ELF note blob right
//	                        after it (offset_note = block_size + sizeof
//	                        sub-header); sub_hdr_size counts the blocks of
//	                        both, rounded up
//	1+sub_hdr_size          bitmap 1, then bitmap 2; each is
//	                        divideup(divideup(max_mapnr, 8), block_size)
//	                        blocks, so that the second starts on a block
//	                        boundary (crash requires it) and readers find it
//	                        at bitmap_blocks*block_size/2
//	1+sub_hdr_size+bitmap   one page_desc (24 bytes) per bitmap-2 pfn in pfn
//	                        order, then the page data
//
// Bitmap 1 has a bit per pfn of RAM, bitmap 2 a bit per pfn whose page is
// in the file (RAM not excluded by the dump level's page classes). When
// dump level bit 1 (zero pages) is set, the data area starts with one
// page of zeros and every all-zero page's descriptor points at it: the
// page keeps its bit in bitmap 2 (makedumpfile clears it only for ELF
// output), so readers return zeros for it rather than "excluded".
// max_mapnr is the pfn just past the highest RAM page; the 32-bit header
// field is clamped to 2^32-1 and the sub-header's max_mapnr_64 holds it
// in full. offset_vmcoreinfo points at the VMCOREINFO note's descriptor
// inside the note blob, size_vmcoreinfo is its length. The status word
// and each compressed page's flags name the compression (zlib 0x1,
// snappy 0x4, zstd 0x20); a page compression does not make smaller is
// stored as it is, with flags 0 and size = page size.
//
// Since a page's file offset depends on the compressed sizes of all pages
// before it, the descriptor area is sized up front from bitmap 2 (known
// before any page is read: zero pages keep their bit) and descriptors are
// written as the data is appended after it: one pass over the input.
// Pages are compressed by a pool of workers, one reused encoder each, on
// chunks of consecutive pages taken from a bounded queue, and written in
// pfn order by one goroutine; memory is the bitmaps (1 bit per page each)
// plus the queue. Compression is nearly all of the CPU time of a filtered
// dump, so what can be spared is: excluded pages never enter a chunk, and
// each encoder remembers the compressed form of the last pages it saw by
// content, as repeated pages are common (fill patterns).
type Writer struct {
	out io.WriterAt
	cfg WriterConfig

	maxMapnr                  uint64
	bitmap1, bitmap2          []byte // len(bitmap) = lenBitmap/2 each
	subHdrBlocks, bitmapBlock uint64
	numDumpable               uint64
	descOff, dataOff          int64 // next descriptor, next data byte
	zeroOff                   int64 // the shared zero page, or -1

	next    uint64 // next pfn expected
	ramIdx  int
	cur     *job
	free    chan *job
	work    chan *job
	order   chan *job
	wg      sync.WaitGroup // workers
	writerD chan struct{}  // closed when the ordered writer is done

	mu    sync.Mutex
	err   error
	stats Stats
}

type pageRec struct {
	size, flags uint32
	kind        uint8
}

const (
	kindData = iota
	kindZero
	kindExcluded
)

type job struct {
	pfn  uint64
	n    int // pages
	in   []byte
	out  []byte
	recs []pageRec
	done chan struct{}
}

// NewWriter prepares a kdump-compressed file on out: it builds both
// bitmaps (calling cfg.Exclude for every RAM pfn) and starts the workers.
func NewWriter(out io.WriterAt, cfg WriterConfig) (*Writer, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if int(cfg.Compression) < 0 || int(cfg.Compression) >= len(compressionNames) {
		return nil, fmt.Errorf("kdump: unknown compression %d", cfg.Compression)
	}
	if cfg.VMCOREINFOSize > 0 && (cfg.VMCOREINFOOff < 0 || cfg.VMCOREINFOOff+cfg.VMCOREINFOSize > len(cfg.Notes)) {
		return nil, fmt.Errorf("kdump: VMCOREINFO [%d, +%d) is outside the %d-byte note blob", cfg.VMCOREINFOOff, cfg.VMCOREINFOSize, len(cfg.Notes))
	}
	w := &Writer{out: out, cfg: cfg, zeroOff: -1}
	var prev uint64
	for i, r := range cfg.RAM {
		if r.Start >= r.End || (i > 0 && r.Start < prev) {
			return nil, fmt.Errorf("kdump: RAM range %d [%#x, %#x) is empty or not sorted and disjoint", i, r.Start, r.End)
		}
		prev = r.End
	}
	if len(cfg.RAM) == 0 {
		return nil, errors.New("kdump: no RAM")
	}
	w.maxMapnr = cfg.RAM[len(cfg.RAM)-1].End
	half := divUp(divUp(w.maxMapnr, 8), pageSize) * pageSize
	w.bitmap1, w.bitmap2 = make([]byte, half), make([]byte, half)
	for _, r := range cfg.RAM {
		for pfn := r.Start; pfn < r.End; pfn++ {
			setBit(w.bitmap1, pfn)
			if cfg.Exclude != nil && cfg.Exclude(pfn) {
				w.stats.Excluded++
				continue
			}
			setBit(w.bitmap2, pfn)
			w.numDumpable++
		}
	}
	w.subHdrBlocks = divUp(uint64(SubHeaderSize+len(cfg.Notes)), pageSize)
	w.bitmapBlock = 2 * half / pageSize
	w.descOff = int64((1 + w.subHdrBlocks + w.bitmapBlock) * pageSize)
	w.dataOff = w.descOff + int64(w.numDumpable*PageDescSize)
	if cfg.DumpLevel&DumpLevelZero != 0 {
		w.zeroOff = w.dataOff
		if _, err := out.WriteAt(make([]byte, pageSize), w.zeroOff); err != nil {
			return nil, fmt.Errorf("writing the zero page at %#x: %w", w.zeroOff, err)
		}
		w.dataOff += pageSize
		w.stats.DataBytes += pageSize
	}
	if len(cfg.RAM) > 0 {
		w.next = cfg.RAM[0].Start
	}

	// Two chunks per worker keep every worker busy while the writer
	// waits on the oldest; at most 64 (2 MiB each at worst) keep memory
	// flat on large machines.
	q := min(2*cfg.Workers+2, 64)
	w.free = make(chan *job, q)
	w.work = make(chan *job, q)
	w.order = make(chan *job, q)
	w.writerD = make(chan struct{})
	for range q {
		w.free <- &job{in: make([]byte, chunkPages*pageSize), out: make([]byte, 0, chunkPages*pageSize), recs: make([]pageRec, chunkPages), done: make(chan struct{}, 1)}
	}
	for range cfg.Workers {
		w.wg.Add(1)
		go w.worker()
	}
	go w.writer()
	return w, nil
}

func divUp(a, b uint64) uint64 { return (a + b - 1) / b }

func setBit(b []byte, pfn uint64) { b[pfn/8] |= 1 << (pfn % 8) }
func hasBit(b []byte, pfn uint64) bool {
	return b[pfn/8]&(1<<(pfn%8)) != 0
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *Writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Write hands the writer the pages at pfn: len(data) is a whole number
// of pages, which must continue the previous ones (every RAM page once, in
// order). data is copied; the caller may reuse it.
func (w *Writer) Write(pfn uint64, data []byte) error {
	if len(data)%pageSize != 0 {
		return fmt.Errorf("kdump: %d bytes at pfn %#x are not whole pages", len(data), pfn)
	}
	return w.feed(pfn, uint64(len(data)/pageSize), data)
}

// WriteZeros hands the writer n pages of zeros at pfn.
func (w *Writer) WriteZeros(pfn, n uint64) error { return w.feed(pfn, n, nil) }

func (w *Writer) feed(pfn, n uint64, data []byte) error {
	for n > 0 {
		if err := w.failed(); err != nil {
			return err
		}
		if w.ramIdx >= len(w.cfg.RAM) {
			return fmt.Errorf("kdump: pfn %#x is past the last RAM range", pfn)
		}
		if w.next == w.cfg.RAM[w.ramIdx].End {
			w.ramIdx++
			w.flush()
			if w.ramIdx >= len(w.cfg.RAM) {
				continue
			}
			w.next = w.cfg.RAM[w.ramIdx].Start
		}
		if pfn != w.next {
			return fmt.Errorf("kdump: got pfn %#x, expected %#x (pages must come in order, each RAM page once)", pfn, w.next)
		}
		// Excluded pages leave no trace in the file: a run of them is
		// stepped over rather than copied (or cleared) into a chunk. At
		// -d 31 that is most of an idle machine's memory. A short run
		// inside a chunk being filled is kept in it, as splitting the
		// chunk would cost more than the copy.
		if skip := w.excludedRun(pfn, min(n, w.cfg.RAM[w.ramIdx].End-pfn)); skip > 0 && (w.cur == nil || skip >= minSkipPages) {
			w.flush()
			if data != nil {
				data = data[skip*pageSize:]
			}
			pfn += skip
			n -= skip
			w.next = pfn
			continue
		}
		if w.cur == nil {
			w.cur = <-w.free
			w.cur.pfn, w.cur.n = pfn, 0
		}
		k := min(n, uint64(chunkPages-w.cur.n), w.cfg.RAM[w.ramIdx].End-pfn)
		dst := w.cur.in[w.cur.n*pageSize : (w.cur.n+int(k))*pageSize]
		if data == nil {
			clear(dst)
		} else {
			copy(dst, data[:k*pageSize])
			data = data[k*pageSize:]
		}
		w.cur.n += int(k)
		pfn += k
		n -= k
		w.next = pfn
		if w.cur.n == chunkPages || w.next == w.cfg.RAM[w.ramIdx].End {
			w.flush()
		}
	}
	return nil
}

// minSkipPages is the shortest run of excluded pages that ends the chunk
// being filled.
const minSkipPages = 16

// excludedRun is how many of the max pages from pfn on are excluded (their
// bitmap-2 bit is clear).
func (w *Writer) excludedRun(pfn, max uint64) uint64 {
	var k uint64
	for k < max {
		p := pfn + k
		if p%8 == 0 && max-k >= 8 && w.bitmap2[p/8] == 0 {
			k += 8
			continue
		}
		if hasBit(w.bitmap2, p) {
			break
		}
		k++
	}
	return k
}

// flush dispatches the chunk being filled.
func (w *Writer) flush() {
	if w.cur == nil || w.cur.n == 0 {
		return
	}
	j := w.cur
	w.cur = nil
	w.order <- j
	w.work <- j
}

// zlibLevel is the deflate level of zlib pages (see newEncoder).
const zlibLevel = 6

// encoder compresses one page into dst; one per worker, reused.
type encoder struct {
	c    Compression
	buf  bytes.Buffer
	zw   *zlib.Writer
	zstd *zstd.Encoder
	// zero is the compressed zero page (nil: stored raw), computed once:
	// the output is the same for the same input, and zero pages are most
	// of an idle machine's memory.
	zero     []byte
	zeroDone bool
	// memo holds recently compressed pages, so that a page seen again
	// (the 0xcc fill of the kernel image's padding, poisoned or
	// pattern-filled buffers: 13 % of the kept pages of an idle 4 GiB
	// guest at -d 31) is not compressed again. The encoders are
	// deterministic, so the file is the same as without it.
	memo     [memoSlots]memoEntry
	memoSeed maphash.Seed
}

// memoSlots is the size of the direct-mapped memo (a slot takes a page
// and its compressed form: 512 KiB per worker at most).
const memoSlots = 64

type memoEntry struct {
	hash uint64
	page []byte
	out  []byte // nil: stored raw
}

// compressMemo is compress, remembering the result for the page's content.
func (e *encoder) compressMemo(page, dst []byte) []byte {
	h := maphash.Bytes(e.memoSeed, page)
	m := &e.memo[h%memoSlots]
	if m.page != nil && m.hash == h && bytes.Equal(m.page, page) {
		return m.out
	}
	out := e.compress(page, dst)
	if m.page == nil {
		m.page = make([]byte, pageSize)
	}
	m.hash = h
	copy(m.page, page)
	if out == nil {
		m.out = nil
	} else {
		m.out = append(m.out[:0:cap(m.out)], out...)
		if m.out == nil {
			m.out = []byte{}
		}
	}
	return out
}

func newEncoder(c Compression) (*encoder, error) {
	e := &encoder{c: c, memoSeed: maphash.MakeSeed()}
	var err error
	switch c {
	case CompressZlib:
		// A zlib stream, which readers inflate with uncompress().
		// makedumpfile -c uses C zlib's Z_BEST_SPEED. Measured on the
		// 33798 non-zero pages an idle 4 GiB Debian 6.1 guest keeps at
		// -d 31, one page per stream as here: C zlib level 1 makes 23.32
		// MB; klauspost's levels 1–7 make 25.00, 24.65, 24.03, 23.40,
		// 23.79, 22.12 and 20.64 MB. Per page, level 6 and C zlib's
		// level 1 both took 22–42 µs of CPU (the spread is the shared
		// machine's), levels 1–4 up to a quarter less, level 7 half as
		// much again: most of a page's time is building its Huffman
		// tables, whatever the level. Level 6 is the fastest that is no
		// larger than makedumpfile's (level 4 is 0.3 % larger); the
		// pages compress on all cores.
		e.zw, err = zlib.NewWriterLevel(&e.buf, zlibLevel)
	case CompressZstd:
		e.zstd, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	}
	return e, err
}

// compress returns page compressed, or nil when that is no smaller.
func (e *encoder) compress(page, dst []byte) []byte {
	var out []byte
	switch e.c {
	case CompressZlib:
		e.buf.Reset()
		e.zw.Reset(&e.buf)
		if _, err := e.zw.Write(page); err != nil {
			return nil
		}
		if err := e.zw.Close(); err != nil {
			return nil
		}
		out = e.buf.Bytes()
	case CompressZstd:
		out = e.zstd.EncodeAll(page, dst[:0])
	case CompressSnappy:
		out = snappy.Encode(dst[:cap(dst)], page)
	default:
		return nil
	}
	if len(out) >= len(page) {
		return nil
	}
	return out
}

func (w *Writer) worker() {
	defer w.wg.Done()
	enc, err := newEncoder(w.cfg.Compression)
	if err != nil {
		w.fail(err)
	}
	scratch := make([]byte, 0, snappy.MaxEncodedLen(pageSize)+pageSize)
	for j := range w.work {
		if enc != nil && err == nil {
			w.compressJob(enc, j, scratch)
		}
		j.done <- struct{}{}
	}
	if enc != nil && enc.zstd != nil {
		enc.zstd.Close()
	}
}

func (w *Writer) compressJob(enc *encoder, j *job, scratch []byte) {
	j.out = j.out[:0]
	zeroExcl := w.cfg.DumpLevel&DumpLevelZero != 0
	for i := 0; i < j.n; i++ {
		pfn := j.pfn + uint64(i)
		page := j.in[i*pageSize : (i+1)*pageSize]
		r := &j.recs[i]
		switch {
		case !hasBit(w.bitmap2, pfn):
			*r = pageRec{kind: kindExcluded}
		case isZero(page):
			if zeroExcl {
				*r = pageRec{kind: kindZero}
				break
			}
			if !enc.zeroDone {
				enc.zero = bytes.Clone(enc.compress(page, scratch))
				enc.zeroDone = true
			}
			w.store(j, r, page, enc.zero)
		default:
			w.store(j, r, page, enc.compressMemo(page, scratch))
		}
	}
}

// store appends the page compressed, or as it is when c is nil.
func (w *Writer) store(j *job, r *pageRec, page, c []byte) {
	if c == nil {
		*r = pageRec{size: pageSize, kind: kindData}
		j.out = append(j.out, page...)
		return
	}
	*r = pageRec{size: uint32(len(c)), flags: w.cfg.Compression.flag(), kind: kindData}
	j.out = append(j.out, c...)
}

var zeroPage = make([]byte, pageSize)

func isZero(p []byte) bool { return bytes.Equal(p, zeroPage) }

// writer writes the chunks' descriptors and data in pfn order.
func (w *Writer) writer() {
	defer close(w.writerD)
	var descs []byte
	for j := range w.order {
		<-j.done
		if w.failed() == nil {
			descs = descs[:0]
			dataOff := w.dataOff
			for i := 0; i < j.n; i++ {
				r := j.recs[i]
				switch r.kind {
				case kindExcluded:
					continue
				case kindZero:
					descs = appendDesc(descs, w.zeroOff, pageSize, 0)
					w.stats.ZeroPages++
				default:
					descs = appendDesc(descs, dataOff, r.size, r.flags)
					dataOff += int64(r.size)
					w.stats.Pages++
					if r.flags == 0 {
						w.stats.Raw++
					}
				}
			}
			if err := w.writeAt(descs, w.descOff, "page descriptors"); err != nil {
				w.fail(err)
			} else if err := w.writeAt(j.out, w.dataOff, "page data"); err != nil {
				w.fail(err)
			}
			w.descOff += int64(len(descs))
			w.stats.DataBytes += uint64(len(j.out))
			w.dataOff = dataOff
		}
		w.free <- j
	}
}

func appendDesc(b []byte, off int64, size, flags uint32) []byte {
	return AppendPageDesc(b, RawPageDesc{Offset: off, Size: size, Flags: flags})
}

func (w *Writer) writeAt(b []byte, off int64, what string) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := w.out.WriteAt(b, off); err != nil {
		return fmt.Errorf("writing the %s at byte %#x: %w", what, off, err)
	}
	return nil
}

// stop drains the pipeline.
func (w *Writer) stop() {
	if w.work == nil {
		return
	}
	w.flush()
	close(w.work)
	close(w.order)
	w.wg.Wait()
	<-w.writerD
	w.work = nil
}

// Abort stops the workers without finishing the file.
func (w *Writer) Abort() {
	w.fail(errors.New("kdump: writer aborted"))
	w.stop()
}

// ReplaceNotes replaces the note blob before Close writes it: a live
// capture records in a note what it found at the end. The new blob must
// have the old one's size and VMCOREINFO place, whose room is laid out.
func (w *Writer) ReplaceNotes(notes []byte) error {
	if len(notes) != len(w.cfg.Notes) {
		return fmt.Errorf("kdump: the final notes take %d bytes, the room laid out for them %d", len(notes), len(w.cfg.Notes))
	}
	w.cfg.Notes = notes
	return nil
}

// Close waits for every page to be written, then writes the headers and
// bitmaps. Every RAM page must have been given.
func (w *Writer) Close() (Stats, error) {
	w.stop()
	if err := w.failed(); err != nil {
		return w.stats, err
	}
	if w.ramIdx < len(w.cfg.RAM) && !(w.ramIdx == len(w.cfg.RAM)-1 && w.next == w.cfg.RAM[w.ramIdx].End) {
		return w.stats, fmt.Errorf("kdump: the pages stopped at pfn %#x, before the end of RAM", w.next)
	}
	if err := w.writeHeaders(); err != nil {
		return w.stats, err
	}
	w.stats.Size = w.dataOff
	return w.stats, nil
}

// writeHeaders writes block 0, the sub-header and notes, and the bitmaps.
func (w *Writer) writeHeaders() error {
	var status uint32
	if w.cfg.Compression != CompressNone {
		status = w.cfg.Compression.flag()
	}
	h := RawHeader{
		HeaderVersion: DefaultHeaderVersion,
		BlockSize:     pageSize,
		SubHdrSize:    int32(w.subHdrBlocks),
		BitmapBlocks:  BitmapBlocksFor(w.maxMapnr, pageSize),
		MaxMapnr:      uint32(min(w.maxMapnr, 1<<32-1)),
		NrCPUs:        int32(w.cfg.NrCPUs),
		Status:        status,
	}
	copy(h.Signature[:], SigKdump)
	u, ru := w.cfg.Utsname, &h.Utsname
	SetUtsField(&ru.Sysname, u.Sysname)
	SetUtsField(&ru.Nodename, u.Nodename)
	SetUtsField(&ru.Release, u.Release)
	SetUtsField(&ru.Version, u.Version)
	SetUtsField(&ru.Machine, u.Machine)
	SetUtsField(&ru.Domainname, u.Domainname)
	if !w.cfg.Timestamp.IsZero() {
		h.TimestampSec = w.cfg.Timestamp.Unix()
		h.TimestampUsec = int64(w.cfg.Timestamp.Nanosecond() / 1000)
	}
	sh := RawSubHeader{
		PhysBase:   w.cfg.PhysBase,
		DumpLevel:  int32(w.cfg.DumpLevel),
		MaxMapnr64: w.maxMapnr,
	}
	noteOff := int64(pageSize + SubHeaderSize)
	if len(w.cfg.Notes) > 0 {
		sh.OffsetNote, sh.SizeNote = noteOff, uint64(len(w.cfg.Notes))
		if w.cfg.VMCOREINFOSize > 0 {
			sh.OffsetVmcoreinfo = noteOff + int64(w.cfg.VMCOREINFOOff)
			sh.SizeVmcoreinfo = uint64(w.cfg.VMCOREINFOSize)
		}
	}
	blk := make([]byte, pageSize)
	copy(blk, h.Encode())
	if err := w.writeAt(blk, 0, "disk_dump_header"); err != nil {
		return err
	}
	sub := make([]byte, w.subHdrBlocks*pageSize)
	copy(sub, sh.Encode())
	copy(sub[SubHeaderSize:], w.cfg.Notes)
	if err := w.writeAt(sub, pageSize, "kdump_sub_header and notes"); err != nil {
		return err
	}
	off := int64((1 + w.subHdrBlocks) * pageSize)
	if err := w.writeAt(w.bitmap1, off, "bitmap 1"); err != nil {
		return err
	}
	return w.writeAt(w.bitmap2, off+int64(len(w.bitmap1)), "bitmap 2")
}
