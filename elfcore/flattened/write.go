package flattened

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Writer writes a flattened stream to w: each WriteAt becomes a record,
// so a writer that needs to seek (it writes a header last, or data at
// offsets it computes) can write to a pipe. Close ends the stream.
type Writer struct {
	w   io.Writer
	err error
	// end is the furthest offset written so far.
	end int64
}

// NewWriter writes the header block to w and returns the Writer.
func NewWriter(w io.Writer) (*Writer, error) {
	hdr := make([]byte, HeaderSize)
	copy(hdr, Signature)
	binary.BigEndian.PutUint64(hdr[16:], TypeFlattened)
	binary.BigEndian.PutUint64(hdr[24:], Version)
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("writing the flattened header: %w", err)
	}
	return &Writer{w: w}, nil
}

// WriteAt writes p as one record at offset off of the rearranged file.
// An empty p writes nothing (an empty record at offset 0 would read as
// the end of the stream).
func (fw *Writer) WriteAt(p []byte, off int64) (int, error) {
	if fw.err != nil {
		return 0, fw.err
	}
	if off < 0 {
		return 0, fmt.Errorf("flattened: negative offset %d", off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	var h [recordHeaderSize]byte
	binary.BigEndian.PutUint64(h[:], uint64(off))
	binary.BigEndian.PutUint64(h[8:], uint64(len(p)))
	if _, err := fw.w.Write(h[:]); err != nil {
		fw.err = err
		return 0, err
	}
	n, err := fw.w.Write(p)
	if err != nil {
		fw.err = err
		return n, err
	}
	fw.end = max(fw.end, off+int64(n))
	return n, nil
}

// Size is the size of the rearranged file written so far.
func (fw *Writer) Size() int64 { return fw.end }

// Close writes the end record. It does not close the underlying writer.
func (fw *Writer) Close() error {
	if fw.err != nil {
		return fw.err
	}
	var h [recordHeaderSize]byte
	binary.BigEndian.PutUint64(h[:], ^uint64(0))
	binary.BigEndian.PutUint64(h[8:], ^uint64(0))
	_, err := fw.w.Write(h[:])
	fw.err = fmt.Errorf("flattened: the stream is closed")
	return err
}

// SetSize makes the rearranged file at least size bytes long, as a file
// whose trailing bytes are a hole would be: it writes the last byte as a
// zero when nothing has been written that far.
func (fw *Writer) SetSize(size int64) error {
	if size <= fw.end {
		return nil
	}
	_, err := fw.WriteAt([]byte{0}, size-1)
	return err
}
