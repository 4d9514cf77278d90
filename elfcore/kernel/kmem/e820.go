package kmem

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The kernel's own RAM map on x86_64 is e820_table (arch/x86/kernel/e820.c):
// a pointer to struct e820_table { u32 nr_entries; struct e820_entry
// entries[E820_MAX_ENTRIES]; }, each entry packed as { u64 addr; u64 size;
// u32 type; } (20 bytes). It is the table the kernel keeps after its own
// changes (reservations, the memmap= options, kexec ranges), the one
// /proc/iomem's "System RAM" comes from.
const (
	e820EntrySize = 20
	// e820MaxEntries bounds nr_entries: E820_MAX_ENTRIES is 128 plus 3 per
	// possible NUMA node (1024 nodes at most).
	e820MaxEntries = 128 + 3*1024
	// E820 types that are RAM to the kernel: E820_TYPE_RAM, and
	// E820_TYPE_RESERVED_KERN (RAM the kernel set aside for itself, still
	// "System RAM"; gone since 6.13).
	e820RAM         = 1
	e820ReservedKer = 128
)

// E820Entry is one range of the kernel's RAM map.
type E820Entry struct {
	Addr, Size uint64
	Type       uint32
}

// IsRAM reports whether the kernel counts the range as memory.
func (e E820Entry) IsRAM() bool { return e.Type == e820RAM || e.Type == e820ReservedKer }

// ReadE820 reads the kernel's e820 table through the pointer at
// tableVar (the address of the e820_table variable, from kallsyms). The
// table is checked the way the kernel keeps it (at least one RAM entry,
// entries sorted and not overlapping, none empty or of type 0), so bytes that are not
// the table are refused rather than taken for a map.
func ReadE820(mem io.ReaderAt, tableVar uint64) ([]E820Entry, error) {
	var b [8]byte
	if _, err := mem.ReadAt(b[:], int64(tableVar)); err != nil {
		return nil, fmt.Errorf("kmem: reading the e820_table pointer at %#x: %w", tableVar, err)
	}
	table := binary.LittleEndian.Uint64(b[:])
	if _, err := mem.ReadAt(b[:4], int64(table)); err != nil {
		return nil, fmt.Errorf("kmem: reading e820_table->nr_entries at %#x: %w", table, err)
	}
	n := binary.LittleEndian.Uint32(b[:4])
	if n == 0 || n > e820MaxEntries {
		return nil, fmt.Errorf("kmem: e820_table at %#x has %d entries (want 1 to %d)", table, n, e820MaxEntries)
	}
	raw, err := ReadFull(mem, table+4, uint64(n)*e820EntrySize, "the e820 entries")
	if err != nil {
		return nil, fmt.Errorf("kmem: %w", err)
	}
	out := make([]E820Entry, n)
	ram := false
	for i := range out {
		e := raw[i*e820EntrySize:]
		out[i] = E820Entry{Addr: binary.LittleEndian.Uint64(e), Size: binary.LittleEndian.Uint64(e[8:]), Type: binary.LittleEndian.Uint32(e[16:])}
		switch t := out[i].Type; {
		case out[i].Size == 0 || out[i].Addr+out[i].Size < out[i].Addr:
			return nil, fmt.Errorf("kmem: e820 entry %d at %#x: range [%#x, +%#x) is empty or wraps", i, table+4+uint64(i)*e820EntrySize, out[i].Addr, out[i].Size)
		case t == 0:
			return nil, fmt.Errorf("kmem: e820 entry %d at %#x: type 0 (no such e820 type)", i, table+4+uint64(i)*e820EntrySize)
		case i > 0 && out[i].Addr < out[i-1].Addr+out[i-1].Size:
			return nil, fmt.Errorf("kmem: e820 entry %d at %#x: [%#x, %#x) is not after the one before it", i, table+4+uint64(i)*e820EntrySize, out[i].Addr, out[i].Addr+out[i].Size)
		}
		ram = ram || out[i].IsRAM()
	}
	if !ram {
		return nil, fmt.Errorf("kmem: e820_table at %#x has no RAM entry", table)
	}
	return out, nil
}
