package kallsyms

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"ldx/elfcore/kernel/kmem/kmemtest"
	"ldx/vmcoreinfo"
)

// kernel is a synthetic kallsyms table as scripts/kallsyms lays it out:
// the symbols' addresses (offsets and relative base, or absolute
// addresses), the compressed names, the token table and its index, each
// array in its own region so that tests can cut or corrupt one.
type kernel struct {
	enc     Encoding
	syms    []Symbol // in address order
	numSyms []byte   // u32
	relBase []byte   // u64
	addrs   []byte   // kallsyms_offsets (int32) or kallsyms_addresses (u64)
	names   []byte
	tokTab  []byte
	tokIdx  []byte // 256 × u16
	stext   uint64 // SYMBOL(_stext), 0 for none
	drop    string // a key info leaves out
}

// Where the arrays are mapped.
const (
	addrNumSyms = 0xffffffff82000000
	addrRelBase = 0xffffffff82000008
	addrAddrs   = 0xffffffff82100000
	addrNames   = 0xffffffff82200000
	addrTokTab  = 0xffffffff82300000
	addrTokIdx  = 0xffffffff82310000
)

// multiTokens are the tokens longer than one byte, at token indexes that
// no name uses as a character (0 and control characters), so that both
// the expansion of several bytes per token and the single-character
// tokens are exercised.
var multiTokens = []string{"per_cpu", "init_", "_stext", "jiff", "ta", "sk", "T_", "t__"}

// encode builds the kernel's arrays for syms (which it sorts by address).
func encode(enc Encoding, syms []Symbol) *kernel {
	syms = append([]Symbol(nil), syms...)
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].Addr < syms[j].Addr })
	k := &kernel{enc: enc, syms: syms}
	// Tokens: multiTokens at 0..len-1, every other index the byte itself.
	var toks [256]string
	for i := range toks {
		toks[i] = string(rune(i))
		if i >= 0x80 {
			toks[i] = string([]byte{byte(i)})
		}
	}
	for i, t := range multiTokens {
		toks[i] = t
	}
	k.tokIdx = make([]byte, 512)
	for i, t := range toks {
		binary.LittleEndian.PutUint16(k.tokIdx[i*2:], uint16(len(k.tokTab)))
		k.tokTab = append(append(k.tokTab, t...), 0)
	}
	for _, s := range syms {
		text := string(s.Type) + s.Name
		var idx []byte
		for len(text) > 0 {
			best := -1
			for i, t := range multiTokens {
				if strings.HasPrefix(text, t) && (best < 0 || len(t) > len(multiTokens[best])) {
					best = i
				}
			}
			if best >= 0 {
				idx = append(idx, byte(best))
				text = text[len(multiTokens[best]):]
				continue
			}
			idx = append(idx, text[0])
			text = text[1:]
		}
		if len(idx) >= 0x80 {
			k.names = append(k.names, byte(len(idx)&0x7f|0x80), byte(len(idx)>>7))
		} else {
			k.names = append(k.names, byte(len(idx)))
		}
		k.names = append(k.names, idx...)
		if s.Name == "_stext" {
			k.stext = s.Addr
		}
	}
	k.numSyms = binary.LittleEndian.AppendUint32(nil, uint32(len(syms)))
	switch enc {
	case Absolute:
		for _, s := range syms {
			k.addrs = binary.LittleEndian.AppendUint64(k.addrs, s.Addr)
		}
	case Relative:
		base := syms[0].Addr
		k.relBase = binary.LittleEndian.AppendUint64(nil, base)
		for _, s := range syms {
			k.addrs = binary.LittleEndian.AppendUint32(k.addrs, uint32(s.Addr-base))
		}
	case AbsolutePercpu:
		// The relative base is the lowest address that is not a per-CPU
		// offset; those are stored as themselves.
		base := uint64(0)
		for _, s := range syms {
			if s.Addr >= 1<<31 {
				base = s.Addr
				break
			}
		}
		k.relBase = binary.LittleEndian.AppendUint64(nil, base)
		for _, s := range syms {
			off := int32(s.Addr)
			if s.Addr >= 1<<31 {
				off = int32(int64(base - 1 - s.Addr))
			}
			k.addrs = binary.LittleEndian.AppendUint32(k.addrs, uint32(off))
		}
	}
	return k
}

func (k *kernel) mem() kmemtest.Mem {
	m := kmemtest.Mem{{Base: addrNumSyms, Data: k.numSyms}, {Base: addrAddrs, Data: k.addrs}, {Base: addrNames, Data: k.names}, {Base: addrTokTab, Data: k.tokTab}, {Base: addrTokIdx, Data: k.tokIdx}}
	if k.relBase != nil {
		m = append(m, kmemtest.Region{Base: addrRelBase, Data: k.relBase})
	}
	return m
}

func (k *kernel) info() *vmcoreinfo.Info {
	var b strings.Builder
	fmt.Fprintf(&b, "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n")
	sym := func(name string, v uint64) {
		if name != k.drop {
			fmt.Fprintf(&b, "SYMBOL(%s)=%x\n", name, v)
		}
	}
	if k.stext != 0 {
		sym("_stext", k.stext)
	}
	sym(symNames, addrNames)
	sym(symNumSyms, addrNumSyms)
	sym(symTokenTable, addrTokTab)
	sym(symTokenIndex, addrTokIdx)
	if k.enc == Absolute {
		sym(symAddresses, addrAddrs)
	} else {
		sym(symOffsets, addrAddrs)
		sym(symRelativeBase, addrRelBase)
	}
	info, err := vmcoreinfo.Parse([]byte(b.String()))
	if err != nil {
		panic(err)
	}
	return info
}

// testSyms is a small kernel: per-CPU offsets, text, data, a static name
// in two files, and a name long enough for the big-symbol length.
func testSyms() []Symbol {
	const text = 0xffffffffb6000000
	s := []Symbol{
		{"__per_cpu_start", 0, 'A'},
		{"fixed_percpu_data", 0, 'A'},
		{"cpu_tss_rw", 0x6000, 'A'},
		{"runqueues", 0x2f6c0, 'A'},
		{"__per_cpu_end", 0x34000, 'A'},
		{"_text", text, 'T'},
		{"_stext", text, 'T'},
		{"startup_64", text + 0x40, 'T'},
		{"do_one_initcall", text + 0x1000, 'T'},
		{"show_stat", text + 0x2000, 't'},
		{"show_stat", text + 0x3000, 't'},
		{"init_task", text + 0x1a1aa40, 'D'},
		{"jiffies", text + 0x1a079c0, 'D'},
		{"__per_cpu_offset", text + 0x139eb60, 'D'},
		{"node_data", text + 0x1c368e0, 'D'},
		{"__bss_stop", text + 0x2000000, 'B'},
		{"__long_" + strings.Repeat("x", 300), text + 0x4000, 't'},
	}
	return s
}
