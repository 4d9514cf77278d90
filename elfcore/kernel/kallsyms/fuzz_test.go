package kallsyms

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"ldx/elfcore/kernel/kmem/kmemtest"
	"ldx/vmcoreinfo"
)

// The fuzz input is a header and one blob of kernel memory mapped at
// fuzzBase. The header is a mode byte (bit 0: kallsyms_addresses instead
// of kallsyms_offsets and kallsyms_relative_base; bit 1: no
// SYMBOL(_stext)), SYMBOL(_stext) as a u64, and the blob offsets (u32) of
// kallsyms_names, kallsyms_num_syms, kallsyms_token_table,
// kallsyms_token_index, kallsyms_offsets (or kallsyms_addresses) and
// kallsyms_relative_base. Every count, length, token index and offset in
// the blob is the fuzzer's to corrupt.
const (
	fuzzBase = 0xffffffff82000000
	fuzzHdr  = 1 + 8 + 6*4
)

// fuzzInput lays a synthetic kernel's arrays out in one blob.
func fuzzInput(k *kernel) []byte {
	var blob []byte
	place := func(b []byte) uint32 {
		for len(blob)%8 != 0 {
			blob = append(blob, 0)
		}
		at := uint32(len(blob))
		blob = append(blob, b...)
		return at
	}
	offs := []uint32{place(k.names), place(k.numSyms), place(k.tokTab), place(k.tokIdx), place(k.addrs), place(k.relBase)}
	mode := byte(0)
	if k.enc == Absolute {
		mode |= 1
	}
	if k.stext == 0 {
		mode |= 2
	}
	hdr := binary.LittleEndian.AppendUint64([]byte{mode}, k.stext)
	for _, o := range offs {
		hdr = binary.LittleEndian.AppendUint32(hdr, o)
	}
	return append(hdr, blob...)
}

func fuzzInfo(hdr []byte) *vmcoreinfo.Info {
	mode := hdr[0]
	o := func(i int) uint64 { return fuzzBase + uint64(binary.LittleEndian.Uint32(hdr[9+4*i:])) }
	text := fmt.Sprintf("SYMBOL(%s)=%x\nSYMBOL(%s)=%x\nSYMBOL(%s)=%x\nSYMBOL(%s)=%x\n",
		symNames, o(0), symNumSyms, o(1), symTokenTable, o(2), symTokenIndex, o(3))
	if mode&1 != 0 {
		text += fmt.Sprintf("SYMBOL(%s)=%x\n", symAddresses, o(4))
	} else {
		text += fmt.Sprintf("SYMBOL(%s)=%x\nSYMBOL(%s)=%x\n", symOffsets, o(4), symRelativeBase, o(5))
	}
	if mode&2 == 0 {
		text += fmt.Sprintf("SYMBOL(_stext)=%x\n", binary.LittleEndian.Uint64(hdr[1:]))
	}
	info, _ := vmcoreinfo.ParseLenient([]byte(text))
	return info
}

func FuzzRead(f *testing.F) {
	f.Add(fuzzInput(encode(AbsolutePercpu, testSyms())))
	f.Add(fuzzInput(encode(Relative, kernelSyms())))
	f.Add(fuzzInput(encode(Absolute, testSyms())))
	k := encode(AbsolutePercpu, testSyms()[:8])
	k.stext = 0
	f.Add(fuzzInput(k))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < fuzzHdr {
			return
		}
		blob := data[fuzzHdr:]
		tab, err := Read(kmemtest.Mem{{Base: fuzzBase, Data: blob}}, fuzzInfo(data[:fuzzHdr]))
		if err != nil {
			return
		}
		// Every entry takes at least two bytes of kallsyms_names.
		if tab.Len() > len(blob)/2 || tab.Len() > MaxSymbols {
			t.Fatalf("%d symbols from %d bytes", tab.Len(), len(blob))
		}
		syms := tab.Symbols()
		if !slices.IsSortedFunc(syms, func(a, b Symbol) int { return compareAddr(a.Addr, b.Addr) }) {
			t.Fatal("symbols not in address order")
		}
		for i, s := range syms {
			if len(s.Name) == 0 || len(s.Name) >= maxNameLen {
				t.Fatalf("symbol %d: name of %d bytes", i, len(s.Name))
			}
			a, ok := tab.Lookup(s.Name)
			if !ok || a > s.Addr {
				t.Fatalf("Lookup(%q) = %#x %v; the symbol is at %#x", s.Name, a, ok, s.Addr)
			}
			if c, _, ok := tab.Containing(s.Addr); !ok || c.Addr != s.Addr {
				t.Fatalf("Containing(%#x) = %+v %v", s.Addr, c, ok)
			}
		}
	})
}

func compareAddr(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
