package dump

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"ldx/elfcore"
	"ldx/elfcore/flattened"
)

// SourceKind says what the input is.
type SourceKind string

const (
	KindBlockDevice SourceKind = "block device"
	KindFile        SourceKind = "file"
	KindXZ          SourceKind = "xz-compressed image"
	// KindFlattened is makedumpfile's flattened stream (makedumpfile -F,
	// QEMU's kdump-* dumps, ldx capture -o -), in a file or on a device:
	// the Source reads the file the stream describes.
	KindFlattened SourceKind = "flattened stream"
)

// Source is the input: a raw livedump device or image, or an ELF vmcore,
// read through io.ReaderAt. ldx never writes to it: it is opened read-only.
type Source struct {
	Path string
	Kind SourceKind
	Size int64

	r    io.ReaderAt
	file *os.File
	tmp  string // decompressed copy of an xz input, removed by Close
	// sparse is true when the data behind r is a regular file whose holes
	// can be found with SEEK_DATA/SEEK_HOLE.
	sparse bool
	// flat is the index of a flattened stream, which r then reads.
	flat *flattened.File
	// others are further files the input is read with (the other parts
	// of a split dump), closed with it.
	others []*os.File
}

// ReadAt reads from the input.
func (s *Source) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off) }

// Close closes the input and removes any temporary decompressed copy.
func (s *Source) Close() error {
	for _, f := range s.others {
		f.Close()
	}
	err := s.file.Close()
	if s.tmp != "" {
		os.Remove(s.tmp)
	}
	return err
}

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// OpenSource opens path read-only. A block device is read with O_DIRECT:
// the livedump kernel code writes with bios straight to the device, so
// pages the block layer cached before or during the capture may be stale.
// An xz-compressed image (`dd | xz`, how users copy devices off a machine)
// is decompressed first into a sparse temporary file in tmpDir, because
// extract needs random access and xz streams have none.
func OpenSource(ctx context.Context, path, tmpDir string, progress func(done, total int64)) (*Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	s := &Source{Path: path}
	switch {
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		s.Kind = KindBlockDevice
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
		if err != nil {
			return nil, err
		}
		s.file = f
		size, err := blockDeviceSize(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: reading the device size: %w", path, err)
		}
		s.Size = size
		s.r = &directReader{f: f}
		return s.unflatten(progress)
	case fi.Mode().IsRegular():
	default:
		return nil, fmt.Errorf("%s: not a block device or regular file (mode %v)", path, fi.Mode())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	magic := make([]byte, len(xzMagic))
	n, _ := f.ReadAt(magic, 0)
	if n == len(xzMagic) && bytes.Equal(magic, xzMagic) {
		defer f.Close()
		s, err := openXZ(ctx, s, f, fi.Size(), tmpDir, progress)
		if err != nil {
			return nil, err
		}
		return s.unflatten(progress)
	}
	s.Kind, s.file, s.r, s.Size, s.sparse = KindFile, f, f, fi.Size(), true
	return s.unflatten(progress)
}

// unflatten makes a Source holding a flattened stream read the file the
// stream describes, through an index of its records built in one pass
// (memory for the index, none for the data); other Sources are returned
// as they are. A stream cut before its end record still opens: Truncated
// says so.
func (s *Source) unflatten(progress func(done, total int64)) (*Source, error) {
	head := make([]byte, flattened.HeaderSize)
	if n, _ := s.r.ReadAt(head, 0); n < len(head) || !flattened.Is(head) {
		return s, nil
	}
	fl, err := flattened.Open(s.r, s.Size, progress)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	s.Kind, s.flat, s.r, s.Size, s.sparse = KindFlattened, fl, fl, fl.Size(), false
	return s, nil
}

// Flattened is the index of a flattened input, nil for other inputs.
func (s *Source) Flattened() *flattened.File { return s.flat }

func blockDeviceSize(f *os.File) (int64, error) {
	size, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	if err != nil {
		end, serr := f.Seek(0, io.SeekEnd)
		if serr != nil {
			return 0, err
		}
		return end, nil
	}
	return int64(size), nil
}

// openXZ decompresses an xz image into a sparse temporary file: all-zero
// pages are skipped with a seek, so the copy takes the space of the
// non-zero data only.
func openXZ(ctx context.Context, s *Source, f *os.File, compressed int64, tmpDir string, progress func(done, total int64)) (*Source, error) {
	s.Kind = KindXZ
	tmp, err := os.CreateTemp(tmpDir, ".ldx-xz-*.img")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file for the decompressed image: %w", err)
	}
	fail := func(err error) (*Source, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	cr := &countingReader{r: bufio.NewReaderSize(f, 1<<20)}
	zr, err := xz.NewReader(cr)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", s.Path, err))
	}
	buf := make([]byte, 1<<20)
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n, rerr := io.ReadFull(zr, buf)
		for p := 0; p < n; p += pageSize {
			page := buf[p:min(n, p+pageSize)]
			if !elfcore.IsZero(page) {
				if _, err := tmp.WriteAt(page, off+int64(p)); err != nil {
					return fail(fmt.Errorf("writing the decompressed image to %s: %w", tmp.Name(), err))
				}
			}
		}
		off += int64(n)
		if progress != nil {
			progress(cr.n, compressed)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fail(fmt.Errorf("%s: decompressing at output byte %#x: %w", s.Path, off, rerr))
		}
	}
	if err := tmp.Truncate(off); err != nil {
		return fail(err)
	}
	s.file, s.r, s.Size, s.tmp, s.sparse = tmp, tmp, off, tmp.Name(), true
	return s, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// nextData returns the start of the next data region at or after off, and
// the end of that region, in a sparse regular file or a flattened stream;
// for other inputs it returns [off, Size). Holes read as zeros, so extract need not read them.
func (s *Source) nextData(off int64) (start, end int64) {
	if s.flat != nil {
		return s.flat.NextData(off)
	}
	if !s.sparse {
		return off, s.Size
	}
	fd := int(s.file.Fd())
	start, err := unix.Seek(fd, off, unix.SEEK_DATA)
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			return s.Size, s.Size // no data after off
		}
		return off, s.Size
	}
	end, err = unix.Seek(fd, start, unix.SEEK_HOLE)
	if err != nil {
		end = s.Size
	}
	return start, end
}

// directReader reads a block device opened with O_DIRECT. O_DIRECT needs
// the buffer, offset and length aligned to the logical block size; 4096
// covers every block size in use, so reads are widened to 4 KiB
// boundaries and go through an aligned bounce buffer.
type directReader struct {
	f      *os.File
	mu     sync.Mutex // guards bounce
	bounce []byte
}

const directAlign = 4096

func alignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	skew := int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
	pad := 0
	if skew != 0 {
		pad = directAlign - skew
	}
	return b[pad : pad+n]
}

func (d *directReader) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	start := off &^ (directAlign - 1)
	end := (off + int64(len(p)) + directAlign - 1) &^ (directAlign - 1)
	need := int(end - start)
	if len(d.bounce) < need {
		d.bounce = alignedBuffer(max(need, 1<<20))
	}
	buf := d.bounce[:need]
	n, err := d.f.ReadAt(buf, start)
	got := max(0, min(n-int(off-start), len(p)))
	copy(p, buf[off-start:int(off-start)+got])
	if got < len(p) {
		if err == nil {
			err = io.EOF
		}
		return got, err
	}
	return got, nil
}

// SameFile reports whether fi describes the file the input is read from
// (for an xz input, its decompressed copy).
func (s *Source) SameFile(fi os.FileInfo) bool {
	if s == nil || s.file == nil {
		return false
	}
	sfi, err := s.file.Stat()
	return err == nil && os.SameFile(fi, sfi)
}
