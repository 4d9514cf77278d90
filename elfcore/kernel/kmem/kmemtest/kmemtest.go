// Package kmemtest is the test double of dumped memory shared by the kernel
// readers' tests (kallsyms, printk, tasks, vmcoreinfo/generate): a sparse
// memory of byte regions at addresses, virtual or physical alike. Reads outside every region fail,
// naming the address, as a page-table walk or a hole in the dump would, so
// tests can cut or drop a region to exercise the readers' bounds.
package kmemtest

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Region is Data mapped at Base.
type Region struct {
	Base uint64
	Data []byte
}

// Mem is memory made of regions; the first region holding an address
// serves it. It is a plain slice so that tests can drop, reorder or
// replace regions.
type Mem []Region

// ReadAt reads from the region holding off. A read running past the end
// of its region returns what it got and an error naming the first
// unmapped address.
func (m Mem) ReadAt(p []byte, off int64) (int, error) {
	va := uint64(off)
	for _, r := range m {
		if va >= r.Base && va-r.Base < uint64(len(r.Data)) {
			n := copy(p, r.Data[va-r.Base:])
			if n < len(p) {
				return n, fmt.Errorf("address %#x is not mapped", va+uint64(n))
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("address %#x is not mapped", va)
}

// Put writes b at addr, inside one region; writing outside memory is a
// mistake in the test and panics.
func (m Mem) Put(addr uint64, b []byte) {
	for _, r := range m {
		if addr >= r.Base && addr-r.Base+uint64(len(b)) <= uint64(len(r.Data)) {
			copy(r.Data[addr-r.Base:], b)
			return
		}
	}
	panic(fmt.Sprintf("memtest: test writes %d bytes outside memory at %#x", len(b), addr))
}

// Map maps data at base in front of the regions already there, so that it
// shadows what they held at the same addresses.
func (m *Mem) Map(base uint64, data []byte) {
	*m = append(Mem{{Base: base, Data: data}}, *m...)
}

// Unmap removes the regions starting at base: reads there fail again.
func (m *Mem) Unmap(base uint64) {
	*m = slices.DeleteFunc(*m, func(r Region) bool { return r.Base == base })
}

// PutU64 writes v little-endian at addr.
func (m Mem) PutU64(addr, v uint64) { m.Put(addr, binary.LittleEndian.AppendUint64(nil, v)) }

// PutU32 writes v little-endian at addr.
func (m Mem) PutU32(addr uint64, v uint32) { m.Put(addr, binary.LittleEndian.AppendUint32(nil, v)) }
