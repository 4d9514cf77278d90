package kmodtest

import (
	"fmt"
	"io"
	"slices"

	"ldx/elfcore"
)

// FreeRun returns the highest size bytes of RAM (whole MiB, MiB-aligned)
// that are all zero in Mem: free memory, which is where the livedump
// module's buffers and bitmaps come from, so declaring them never written
// (Run.Unwritten) is realistic and loses nothing. The choice depends only
// on Mem and RAM, so the same dump always gives the same range.
func (k *Kernel) FreeRun(size uint64) (elfcore.Range, error) {
	const mib = 1 << 20
	if size == 0 || size%mib != 0 {
		return elfcore.Range{}, fmt.Errorf("kmodtest: FreeRun(%#x): want a positive whole number of MiB", size)
	}
	buf := make([]byte, mib)
	for i := len(k.RAM) - 1; i >= 0; i-- {
		r := k.RAM[i]
		top := r.End &^ (mib - 1)
		if top < mib {
			continue
		}
		var run uint64
		// Walk down from the top so that the range is the highest one.
		for pa := top - mib; pa >= r.Start; pa -= mib {
			if _, err := k.Mem.ReadAt(buf, int64(pa)); err != nil || !elfcore.IsZero(buf) {
				run = 0
			} else if run += mib; run >= size {
				return elfcore.Range{Start: pa, End: pa + size}, nil
			}
			if pa < mib {
				break
			}
		}
	}
	return elfcore.Range{}, fmt.Errorf("kmodtest: no %d MiB of all-zero RAM", size>>20)
}

// ZeroMem returns a view of mem in which the physical ranges zero read as
// zeros: memory left out of a sample on purpose (kernel text, which the
// debug vmlinux holds anyway), not memory the kernel lost.
func ZeroMem(mem io.ReaderAt, zero []elfcore.Range) io.ReaderAt {
	return &zeroedMem{mem, slices.Clone(zero)}
}

type zeroedMem struct {
	mem  io.ReaderAt
	zero []elfcore.Range
}

func (z *zeroedMem) ReadAt(p []byte, off int64) (int, error) {
	n, err := z.mem.ReadAt(p, off)
	lo, hi := uint64(off), uint64(off)+uint64(n)
	for _, r := range z.zero {
		a, b := max(lo, r.Start), min(hi, r.End)
		if a < b {
			clear(p[a-lo : b-lo])
		}
	}
	return n, err
}
