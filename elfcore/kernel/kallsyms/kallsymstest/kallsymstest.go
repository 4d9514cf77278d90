// Package kallsymstest builds the kernel's kallsyms arrays for synthetic
// kernels in tests, in the encoding x86_64 kernels of the 6.x series use:
// 32-bit offsets from kallsyms_relative_base with per-CPU symbols stored as
// their own (absolute) values, and names compressed through a token table
// in which every token is the one byte of its index (the simplest table
// scripts/kallsyms could emit).
package kallsymstest

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"ldx/elfcore/kernel/kallsyms"
)

// Arrays are the kallsyms arrays and where each is placed.
type Arrays struct {
	NumSyms, RelBase, Offsets, Names, TokenTable, TokenIndex []byte
	// Addr holds each array's kernel virtual address, by VMCOREINFO
	// symbol name (kallsyms_names, …).
	Addr map[string]uint64
}

// Encode lays out the arrays for syms from kernel virtual address base on:
// each array in its own 4 KiB-aligned block. Per-CPU symbols are those
// below 2 GiB; every other address must lie within 2 GiB above the lowest
// of them.
func Encode(syms []kallsyms.Symbol, base uint64) (*Arrays, error) {
	syms = slices.Clone(syms)
	slices.SortStableFunc(syms, func(a, b kallsyms.Symbol) int {
		switch {
		case a.Addr < b.Addr:
			return -1
		case a.Addr > b.Addr:
			return 1
		}
		return 0
	})
	a := &Arrays{Addr: map[string]uint64{}}
	for i := range 256 {
		a.TokenIndex = binary.LittleEndian.AppendUint16(a.TokenIndex, uint16(len(a.TokenTable)))
		a.TokenTable = append(a.TokenTable, byte(i), 0)
	}
	rel := uint64(0)
	for _, s := range syms {
		if s.Addr >= 1<<31 {
			rel = s.Addr
			break
		}
	}
	a.RelBase = binary.LittleEndian.AppendUint64(nil, rel)
	for _, s := range syms {
		text := string(s.Type) + s.Name
		if len(text) >= 0x80 || strings.IndexByte(text, 0) >= 0 {
			return nil, fmt.Errorf("kallsymstest: name %q too long or holds a NUL", s.Name)
		}
		a.Names = append(append(a.Names, byte(len(text))), text...)
		var off int64
		if s.Addr < 1<<31 {
			off = int64(s.Addr)
		} else {
			if s.Addr-rel >= 1<<31 {
				return nil, fmt.Errorf("kallsymstest: %s at %#x is more than 2 GiB above %#x", s.Name, s.Addr, rel)
			}
			off = -1 - int64(s.Addr-rel)
		}
		a.Offsets = binary.LittleEndian.AppendUint32(a.Offsets, uint32(int32(off)))
	}
	a.NumSyms = binary.LittleEndian.AppendUint32(nil, uint32(len(syms)))
	next := base
	for _, x := range []struct {
		name string
		b    []byte
	}{{"kallsyms_num_syms", a.NumSyms}, {"kallsyms_relative_base", a.RelBase}, {"kallsyms_offsets", a.Offsets},
		{"kallsyms_names", a.Names}, {"kallsyms_token_table", a.TokenTable}, {"kallsyms_token_index", a.TokenIndex}} {
		a.Addr[x.name] = next
		next += (uint64(len(x.b)) + 4095) &^ 4095
	}
	return a, nil
}

// Blocks returns each array with its address, for writing into memory.
func (a *Arrays) Blocks() map[uint64][]byte {
	return map[uint64][]byte{
		a.Addr["kallsyms_num_syms"]: a.NumSyms, a.Addr["kallsyms_relative_base"]: a.RelBase,
		a.Addr["kallsyms_offsets"]: a.Offsets, a.Addr["kallsyms_names"]: a.Names,
		a.Addr["kallsyms_token_table"]: a.TokenTable, a.Addr["kallsyms_token_index"]: a.TokenIndex,
	}
}
