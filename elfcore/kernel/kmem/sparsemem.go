package kmem

import (
	"encoding/binary"
	"fmt"

	"ldx/elfcore"
	"ldx/vmcoreinfo"
)

// PresentSections returns the physical ranges of the SPARSEMEM sections
// the kernel marks present: its own view of where memory is, read through
// VMCOREINFO alone as makedumpfile's get_mem_section does. Sections are
// 2^SECTION_SIZE_BITS bytes (128 MiB on x86_64), so holes smaller than a
// section are not seen.
//
// With SPARSEMEM_EXTREME, SYMBOL(mem_section) is the value of the kernel's
// mem_section pointer: the address of an array of LENGTH(mem_section)
// root pointers, each to a page of struct mem_section; bit 0 of
// section_mem_map is SECTION_MARKED_PRESENT.
func (m *Mem) PresentSections(info *vmcoreinfo.Info) ([]elfcore.Range, error) {
	root, ok1 := info.Symbol("mem_section")
	roots, ok2 := info.Length("mem_section")
	size, ok3 := info.Size("mem_section")
	off, ok4 := info.Offset("mem_section.section_mem_map")
	bits, ok5 := info.Number("SECTION_SIZE_BITS")
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return nil, fmt.Errorf("kmem: VMCOREINFO lacks the SPARSEMEM keys (SYMBOL/LENGTH/SIZE(mem_section), OFFSET(mem_section.section_mem_map), NUMBER(SECTION_SIZE_BITS))")
	}
	if size == 0 || size > pageSize || off+8 > size || bits < 12 || bits > 40 || roots == 0 || roots > 1<<20 {
		return nil, fmt.Errorf("kmem: implausible SPARSEMEM layout in VMCOREINFO (mem_section size %d, section_mem_map at %d, %d roots, section bits %d)", size, off, roots, bits)
	}
	perRoot := pageSize / size
	rootTab := make([]byte, roots*8)
	if _, err := m.ReadAt(rootTab, int64(root)); err != nil {
		return nil, fmt.Errorf("kmem: reading the %d mem_section roots at %#x: %w", roots, root, err)
	}
	var out []elfcore.Range
	page := make([]byte, perRoot*size)
	for r := range roots {
		p := binary.LittleEndian.Uint64(rootTab[r*8:])
		if p == 0 {
			continue
		}
		if _, err := m.ReadAt(page, int64(p)); err != nil {
			return nil, fmt.Errorf("kmem: reading mem_section root %d at %#x: %w", r, p, err)
		}
		for i := range perRoot {
			smm := binary.LittleEndian.Uint64(page[i*size+off:])
			if smm&1 == 0 {
				continue
			}
			nr := r*perRoot + i
			start := nr << bits
			end := start + 1<<bits
			if n := len(out); n > 0 && out[n-1].End == start {
				out[n-1].End = end
				continue
			}
			out = append(out, elfcore.Range{Start: start, End: end})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("kmem: no present SPARSEMEM section")
	}
	return out, nil
}
