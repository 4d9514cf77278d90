package kmem

import (
	"encoding/binary"
	"errors"
	"testing"

	"ldx/elfcore/kernel/x86"
)

// wordMem is physical memory given as 8-byte words at chosen addresses;
// everything else reads as zero. It keeps fuzz inputs small: a page-table
// walk touches one word per level.
type wordMem map[uint64]uint64

func (m wordMem) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		pa := uint64(off) + uint64(i)
		p[i] = byte(m[pa&^7] >> (8 * (pa & 7)))
	}
	return len(p), nil
}

// The fuzz input: the virtual address (8 bytes), a flags byte (bit 0:
// 5-level paging, bit 1: an SME mask of bit 47), the physical address of
// the top-level table (8 bytes), then (physical address, value) pairs of
// 8-byte words of page tables. Seeds in testdata/fuzz/FuzzTranslate are
// the words real Debian 6.1 walks read (4- and 5-level, KASLR) for
// addresses in the direct map, the kernel image, vmalloc, vmemmap and a
// user process (TestWriteFuzzSeeds, build tag e2e).
func decodeWalkInput(data []byte) (va uint64, p Params, root uint64, mem wordMem, ok bool) {
	if len(data) < 17 {
		return 0, p, 0, nil, false
	}
	va = binary.LittleEndian.Uint64(data)
	p.L5 = data[8]&1 != 0
	if data[8]&2 != 0 {
		p.SMEMask = 1 << 47
	}
	root = binary.LittleEndian.Uint64(data[9:])
	mem = wordMem{}
	for rest := data[17:]; len(rest) >= 16; rest = rest[16:] {
		mem[binary.LittleEndian.Uint64(rest)&^7] = binary.LittleEndian.Uint64(rest[8:])
	}
	return va, p, root, mem, true
}

func encodeWalkInput(va uint64, l5 bool, root uint64, words map[uint64]uint64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, va)
	flags := byte(0)
	if l5 {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint64(b, root)
	for pa, v := range words {
		b = binary.LittleEndian.AppendUint64(b, pa)
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// recorder records the words a walk reads.
type recorder struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	words map[uint64]uint64
}

func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	if len(p) == 8 && n == 8 {
		r.words[uint64(off)] = binary.LittleEndian.Uint64(p)
	}
	return n, err
}

func FuzzTranslate(f *testing.F) {
	// Seeds from the synthetic tree of TestTranslate.
	b := newBuilder(false, 0)
	b.mapPage(0xffff9a4c00000000, 0, pudSize)
	b.mapPage(0xffffffff9c000000, 0x3a000000, pmdSize)
	b.mapPage(0xffffb00000123000, 0x1234000, pageSize)
	for _, va := range []uint64{0xffff9a4c00001000, 0xffffffff9c001234, 0xffffb00000123010} {
		rec := &recorder{r: b.mem, words: map[uint64]uint64{}}
		m := &Mem{phys: rec, root: b.root}
		m.Translate(va)
		f.Add(encodeWalkInput(va, false, b.root, rec.words))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		va, p, root, mem, ok := decodeWalkInput(data)
		if !ok {
			return
		}
		p.PgtRoot = x86.KernelTextBase
		m, err := New(mem, p)
		if err != nil {
			t.Fatal(err)
		}
		m = m.WithRoot(root)
		w, err := m.Translate(va)
		if w != nil && len(w.Levels) > 5 {
			t.Fatalf("%d levels", len(w.Levels))
		}
		if err != nil {
			var nm *NotMappedError
			if !errors.As(err, &nm) && !errors.Is(err, ErrNonCanonical) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		switch w.Size {
		case pageSize, pmdSize, pudSize:
		default:
			t.Fatalf("page size %#x", w.Size)
		}
		if w.Paddr%w.Size != va%w.Size {
			t.Fatalf("%#x → %#x is not at the same offset in its %#x page", va, w.Paddr, w.Size)
		}
		for _, l := range w.Levels {
			if l.EntryAddr != l.TableAddr+l.Index*8 || l.Index > 511 {
				t.Fatalf("level %+v", l)
			}
		}
		if last := w.Levels[len(w.Levels)-1]; last.Entry&present == 0 {
			t.Fatalf("mapped through a non-present entry %#x", last.Entry)
		}
		lay := m.Layout(emptyInfo(), x86.PageOffset4Level)
		_ = lay.Region(va)
		_ = EntryFlags(w.Levels[0].Entry, false)
	})
}
