package flattened

import (
	"bytes"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

const (
	// HeaderSize is the size of the header block before the first record.
	HeaderSize = 4096
	// Signature starts the header, NUL-padded to 16 bytes.
	Signature = "makedumpfile"
	// TypeFlattened and Version are the only type and version defined.
	TypeFlattened = 1
	Version       = 1

	recordHeaderSize = 16
	endMarker        = -1
)

// rawHeader is the header block's leading fields as stored (big-endian).
type rawHeader struct {
	Signature [16]byte
	Type      int64
	Version   int64
}

// rawRecord is a record's header as stored (big-endian); Size bytes of
// data follow it.
type rawRecord struct {
	Offset int64
	Size   int64
}

// Is reports whether page0, the first bytes of a file, is the header of
// a flattened file: the signature and type 1.
func Is(page0 []byte) bool {
	var h rawHeader
	if len(page0) < binary.Size(h) {
		return false
	}
	binary.Read(bytes.NewReader(page0), binary.BigEndian, &h)
	return bytes.Equal(h.Signature[:], sig16()) && h.Type == TypeFlattened
}

func sig16() []byte {
	var s [16]byte
	copy(s[:], Signature)
	return s[:]
}

// FormatError is a flattened stream that breaks the format, at stream
// offset Off.
type FormatError struct {
	Off   int64
	Field string
	What  string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("flattened stream offset %#x (%s): %s", e.Off, e.Field, e.What)
}

// extent says that the rearranged file's bytes [dst, dst+n) are the
// stream's bytes [src, src+n).
type extent struct {
	dst, src, n int64
}

func (e extent) end() int64 { return e.dst + e.n }

// File is a flattened stream opened for random access: ReadAt reads the
// rearranged file.
type File struct {
	r    io.ReaderAt
	size int64
	ext  []extent // sorted by dst, not overlapping

	// Records is the number of data records in the stream.
	Records int
	// Truncated says the stream has no end record: it stops at
	// TruncatedAt, after the last whole record.
	Truncated   bool
	TruncatedAt int64
	// Overlaps says some records rewrote bytes an earlier record wrote
	// (the later write wins, as in a file).
	Overlaps bool
}

// Open indexes the flattened stream of streamSize bytes read through r.
// progress, if set, is called as the scan advances (stream bytes done,
// streamSize).
func Open(r io.ReaderAt, streamSize int64, progress func(done, total int64)) (*File, error) {
	hdr := make([]byte, HeaderSize)
	if n, _ := r.ReadAt(hdr, 0); n < HeaderSize {
		return nil, &FormatError{Off: int64(n), Field: "header", What: fmt.Sprintf("the stream is %d bytes, shorter than its %d-byte header", streamSize, HeaderSize)}
	}
	var h rawHeader
	binary.Read(bytes.NewReader(hdr), binary.BigEndian, &h)
	switch {
	case !bytes.Equal(h.Signature[:], sig16()):
		return nil, &FormatError{Off: 0, Field: "signature", What: fmt.Sprintf("%q, want %q", bytes.TrimRight(h.Signature[:], "\x00"), Signature)}
	case h.Type != TypeFlattened:
		return nil, &FormatError{Off: 16, Field: "type", What: fmt.Sprintf("%d, want %d (flattened)", h.Type, TypeFlattened)}
	case h.Version != Version:
		return nil, &FormatError{Off: 24, Field: "version", What: fmt.Sprintf("%d, want %d", h.Version, Version)}
	}
	f := &File{r: r}
	sc := scanner{r: r, size: streamSize}
	off := int64(HeaderSize)
	var recs []extent
	for {
		if progress != nil && f.Records%65536 == 0 {
			progress(off, streamSize)
		}
		b, err := sc.at(off, recordHeaderSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				f.Truncated, f.TruncatedAt = true, off
				break
			}
			return nil, fmt.Errorf("reading the record header at stream offset %#x: %w", off, err)
		}
		rec := rawRecord{Offset: int64(binary.BigEndian.Uint64(b)), Size: int64(binary.BigEndian.Uint64(b[8:]))}
		if rec.Offset == endMarker && rec.Size == endMarker {
			break
		}
		if rec.Offset == 0 && rec.Size == 0 {
			// No producer writes nothing at offset 0; zeros here are
			// what follows a stream on a device it did not fill, a
			// stream cut before its end record.
			f.Truncated, f.TruncatedAt = true, off
			break
		}
		switch {
		case rec.Offset < 0:
			return nil, &FormatError{Off: off, Field: "record offset", What: fmt.Sprintf("%d, want ≥ 0 (or -1 with size -1 to end the stream)", rec.Offset)}
		case rec.Size < 0:
			return nil, &FormatError{Off: off + 8, Field: "record size", What: fmt.Sprintf("%d, want ≥ 0", rec.Size)}
		case rec.Offset > (1<<62)-rec.Size:
			return nil, &FormatError{Off: off, Field: "record offset", What: fmt.Sprintf("%#x + size %#x is past any file", rec.Offset, rec.Size)}
		}
		data := off + recordHeaderSize
		if rec.Size > streamSize-data {
			// The stream was cut inside this record's data.
			f.Truncated, f.TruncatedAt = true, off
			break
		}
		if rec.Size > 0 {
			recs = append(recs, extent{dst: rec.Offset, src: data, n: rec.Size})
		}
		f.Records++
		off = data + rec.Size
	}
	if progress != nil {
		progress(streamSize, streamSize)
	}
	f.ext, f.Overlaps = resolve(recs)
	if len(f.ext) > 0 {
		f.size = f.ext[len(f.ext)-1].end()
	}
	return f, nil
}

// Size is the size of the rearranged file: the end of the furthest write.
func (f *File) Size() int64 { return f.size }

// ReadAt reads the rearranged file; bytes no record wrote read as zeros.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("flattened: negative offset %d", off)
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > f.size-off {
		p = p[:f.size-off]
	}
	i, _ := slices.BinarySearchFunc(f.ext, off, func(e extent, off int64) int {
		if e.end() <= off {
			return -1
		}
		if e.dst > off {
			return 1
		}
		return 0
	})
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		if i >= len(f.ext) {
			clear(p[done:])
			done = len(p)
			break
		}
		e := f.ext[i]
		if pos < e.dst {
			gap := min(int64(len(p)-done), e.dst-pos)
			clear(p[done : done+int(gap)])
			done += int(gap)
			continue
		}
		n := min(int64(len(p)-done), e.end()-pos)
		m, err := f.r.ReadAt(p[done:done+int(n)], e.src+(pos-e.dst))
		done += m
		if m < int(n) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return done, fmt.Errorf("reading the record data at stream offset %#x: %w", e.src+(pos-e.dst)+int64(m), err)
		}
		i++
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// NextData returns the next range at or after off that some record
// wrote, [start, end); start = Size() when there is none. Callers skip
// the holes between, which read as zeros.
func (f *File) NextData(off int64) (start, end int64) {
	i, _ := slices.BinarySearchFunc(f.ext, off, func(e extent, off int64) int {
		if e.end() <= off {
			return -1
		}
		return 1
	})
	if i >= len(f.ext) {
		return f.size, f.size
	}
	start = max(off, f.ext[i].dst)
	end = f.ext[i].end()
	for i+1 < len(f.ext) && f.ext[i+1].dst == end {
		i++
		end = f.ext[i].end()
	}
	return start, end
}

// resolve turns the writes, in stream order, into the extents of the
// rearranged file sorted by offset, where a later write replaces what an
// earlier one wrote; it reports whether any writes overlapped.
func resolve(recs []extent) ([]extent, bool) {
	type seqExt struct {
		extent
		seq int
	}
	order := make([]seqExt, len(recs))
	for i, e := range recs {
		order[i] = seqExt{e, i}
	}
	slices.SortStableFunc(order, func(a, b seqExt) int { return cmp.Compare(a.dst, b.dst) })
	overlaps := false
	for i := 1; i < len(order); i++ {
		if order[i].dst < order[i-1].end() {
			overlaps = true
			break
		}
	}
	if !overlaps {
		out := make([]extent, len(order))
		for i, e := range order {
			out[i] = e.extent
		}
		return out, false
	}
	// Sweep the boundaries in order; between two boundaries the latest
	// write covering the span wins.
	var bounds []int64
	for _, e := range order {
		bounds = append(bounds, e.dst, e.end())
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	active := &latest{}
	var out []extent
	next := 0
	for k := 0; k+1 < len(bounds); k++ {
		lo, hi := bounds[k], bounds[k+1]
		for next < len(order) && order[next].dst <= lo {
			heap.Push(active, activeExt{order[next].extent, order[next].seq})
			next++
		}
		for active.Len() > 0 && (*active)[0].end() <= lo {
			heap.Pop(active)
		}
		if active.Len() == 0 {
			continue
		}
		w := (*active)[0]
		piece := extent{dst: lo, src: w.src + (lo - w.dst), n: hi - lo}
		if k := len(out) - 1; k >= 0 && out[k].end() == piece.dst && out[k].src+out[k].n == piece.src {
			out[k].n += piece.n
			continue
		}
		out = append(out, piece)
	}
	return out, true
}

type activeExt struct {
	extent
	seq int
}

// latest is a heap of the writes covering a point, the latest on top.
// Writes that ended before the point are dropped lazily when on top.
type latest []activeExt

func (h latest) Len() int           { return len(h) }
func (h latest) Less(i, j int) bool { return h[i].seq > h[j].seq }
func (h latest) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *latest) Push(x any)        { *h = append(*h, x.(activeExt)) }
func (h *latest) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// scanner reads record headers through a window of the stream, so that
// a stream of small records costs one read per window, not one per
// record, while a large record's data is skipped, not read.
type scanner struct {
	r     io.ReaderAt
	size  int64
	buf   []byte
	start int64 // stream offset of buf[0]
}

const scanWindow = 1 << 20

// at returns the n bytes at off, or io.EOF when the stream ends first.
func (s *scanner) at(off int64, n int) ([]byte, error) {
	if off+int64(n) > s.size {
		return nil, io.EOF
	}
	if off >= s.start && off+int64(n) <= s.start+int64(len(s.buf)) {
		return s.buf[off-s.start : off-s.start+int64(n)], nil
	}
	if s.buf == nil {
		// A window, or the whole stream when it is smaller.
		s.buf = make([]byte, min(scanWindow, s.size))
	}
	s.buf = s.buf[:cap(s.buf)]
	m, err := s.r.ReadAt(s.buf[:min(int64(len(s.buf)), s.size-off)], off)
	s.buf, s.start = s.buf[:m], off
	if m < n {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, err
	}
	return s.buf[:n], nil
}
