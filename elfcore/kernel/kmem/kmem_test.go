package kmem

import (
	"bytes"
	"encoding/binary"
	"errors"
	"ldx/elfcore/kernel/x86"
	"testing"
)

// physMem is a sparse physical memory for building page tables.
type physMem map[uint64][]byte // page frame address → 4 KiB

func (m physMem) page(pa uint64) []byte {
	pa &^= pageSize - 1
	if m[pa] == nil {
		m[pa] = make([]byte, pageSize)
	}
	return m[pa]
}

func (m physMem) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		pa := uint64(off) + uint64(n)
		pg := m.page(pa)
		n += copy(p[n:], pg[pa%pageSize:])
	}
	return n, nil
}

func (m physMem) set(pa, v uint64) { binary.LittleEndian.PutUint64(m.page(pa)[pa%pageSize:], v) }

// builder maps virtual addresses in a page-table tree.
type builder struct {
	mem  physMem
	next uint64 // next free table page
	root uint64
	l5   bool
	sme  uint64
}

func newBuilder(l5 bool, sme uint64) *builder {
	b := &builder{mem: physMem{}, next: 0x7000000, l5: l5, sme: sme}
	b.root = b.alloc()
	return b
}

func (b *builder) alloc() uint64 { b.next += pageSize; b.mem.page(b.next); return b.next }

// mapPage maps va to pa with a page of the given size.
func (b *builder) mapPage(va, pa, size uint64) {
	shifts := []uint{39, 30, 21, 12}
	if b.l5 {
		shifts = []uint{48, 39, 30, 21, 12}
	}
	table := b.root
	for _, sh := range shifts {
		ea := table + ((va>>sh)&0x1ff)*8
		if uint64(1)<<sh == size {
			e := pa | present | b.sme
			if sh != 12 {
				e |= pse
			}
			b.mem.set(ea, e)
			return
		}
		var raw [8]byte
		b.mem.ReadAt(raw[:], int64(ea))
		e := binary.LittleEndian.Uint64(raw[:])
		if e&present == 0 {
			e = b.alloc() | present | b.sme
			b.mem.set(ea, e)
		}
		table = e & frameMask &^ b.sme
	}
}

func TestTranslate(t *testing.T) {
	const (
		physBase uint64 = 0x3a000000
		text     uint64 = 0xffffffff9c000000 // KASLR-relocated image
		pob4            = 0xffff9a4c00000000 // randomised page_offset_base, 4-level
		pob5            = 0xff3a400000000000
		vmalloc  uint64 = 0xffffb00000123000
	)
	for _, tc := range []struct {
		name string
		l5   bool
		sme  uint64
		pob  uint64
	}{
		{"4-level", false, 0, pob4},
		{"5-level", true, 0, pob5},
		{"4-level SME", false, 1 << 47, pob4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder(tc.l5, tc.sme)
			imgPhys := text - x86.KernelTextBase + physBase
			for i := uint64(0); i < 8; i++ { // 16 MiB image, 2 MiB pages
				if i == 5 {
					continue // the freed .init hole
				}
				b.mapPage(text+i*pmdSize, imgPhys+i*pmdSize, pmdSize)
			}
			b.mapPage(tc.pob, 0, pudSize) // direct map, 1 GiB pages
			b.mapPage(tc.pob+pudSize, pudSize, pudSize)
			b.mapPage(vmalloc, 0x1234000, pageSize)
			root := text + 0x1000 // where init_top_pgt is
			m, err := New(b.mem, Params{PgtRoot: root, PhysBase: physBase, L5: tc.l5, SMEMask: tc.sme})
			if err != nil {
				t.Fatal(err)
			}
			m.root = b.root // the builder chose the table; New computed it from the image
			for _, c := range []struct{ va, pa, size uint64 }{
				{text + 0x1234, imgPhys + 0x1234, pmdSize},
				{tc.pob + 0x5000, 0x5000, pudSize},
				{tc.pob + pudSize + 7, pudSize + 7, pudSize},
				{vmalloc + 0x10, 0x1234010, pageSize},
			} {
				w, err := m.Translate(c.va)
				if err != nil || w.Paddr != c.pa || w.Size != c.size {
					t.Errorf("%#x → %+v, %v; want %#x size %#x", c.va, w, err, c.pa, c.size)
				}
			}
			var nm *NotMappedError
			if _, err := m.VtoP(vmalloc + pageSize); !errors.As(err, &nm) {
				t.Errorf("unmapped vmalloc page: %v", err)
			}
			if _, err := m.VtoP(0x0000900000000000); !errors.Is(err, ErrNonCanonical) && !tc.l5 {
				t.Errorf("non-canonical: %v", err)
			}
			got, err := m.FindPageOffset(pudSize + 0x1000)
			if err != nil || got != tc.pob {
				t.Errorf("FindPageOffset = %#x, %v; want %#x", got, err, tc.pob)
			}
			if end := m.ImageEnd(text, text+64*pmdSize); end != text+8*pmdSize {
				t.Errorf("ImageEnd = %#x, want %#x", end, text+8*pmdSize)
			}
			// ReadAt across a page boundary of the direct map.
			b.mem.set(0x5ff8, 0x1122334455667788)
			b.mem.set(0x6000, 0x99aabbccddeeff00)
			buf := make([]byte, 16)
			if _, err := m.ReadAt(buf, int64(tc.pob+0x5ff8)); err != nil || !bytes.Equal(buf[:2], []byte{0x88, 0x77}) || buf[8] != 0 {
				t.Errorf("ReadAt = % x, %v", buf, err)
			}
		})
	}
}
