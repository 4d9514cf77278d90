package dump

import (
	"context"
	"fmt"
	"io"

	"ldx/elfcore"
)

// chunkSize is how much memory extract reads at once: large enough for
// sequential device throughput, small enough to keep memory flat.
const chunkSize = 4 << 20

// walkMemory reads the physical ranges in ascending order in chunks and
// calls fn for each: fn(pa, n, chunk) with chunk holding the n bytes at
// physical address pa, or chunk == nil when the n bytes are a hole of a
// sparse input file, which reads as zeros and is not read at all.
func walkMemory(ctx context.Context, src *Source, phys io.ReaderAt, raw bool, ranges []elfcore.Range, fn func(pa, n uint64, chunk []byte) error) error {
	buf := alignedBuffer(chunkSize)
	for _, r := range ranges {
		for pa := r.Start; pa < r.End; {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(uint64(chunkSize), r.End-pa)
			if raw {
				// Offset = physical address: holes of a sparse image
				// need not be read.
				start, end := src.nextData(int64(pa))
				if uint64(start) > pa {
					hole := min(uint64(start), r.End) - pa
					if err := fn(pa, hole, nil); err != nil {
						return err
					}
					pa += hole
					continue
				}
				if uint64(end) > pa {
					n = min(n, uint64(end)-pa)
				}
			}
			chunk := buf[:n]
			got, err := phys.ReadAt(chunk, int64(pa))
			if uint64(got) < n {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return &ReadError{Paddr: pa + uint64(got), Err: err}
			}
			if err := fn(pa, n, chunk); err != nil {
				return err
			}
			pa += n
		}
	}
	return nil
}

// ReadError reports memory that could not be read from the input.
type ReadError struct {
	Paddr uint64
	Err   error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("reading memory at physical address %#x: %v", e.Paddr, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }
