// Package kallsyms reads the kernel's own symbol table (kallsyms) out of a
// dump, so that every kernel symbol resolves from the dump alone, without
// the kernel's vmlinux: since Linux 6.0 VMCOREINFO exports the addresses of
// the kallsyms arrays (SYMBOL(kallsyms_names), kallsyms_num_syms,
// kallsyms_token_table, kallsyms_token_index and kallsyms_offsets with
// kallsyms_relative_base, or kallsyms_addresses), which is all a reader
// needs to decode the table the way kernel/kallsyms.c does.
//
// The table is read in large chunks of kernel virtual memory and never
// trusted: the symbol count, name lengths, token indexes and the bytes
// copied are bounded before anything is allocated, and anything that does
// not decode is an error naming the array, entry and address, not a panic.
//
// How addresses are stored depends on the kernel's configuration, which
// the dump does not carry. The encoding is decided from the data: the one
// that puts the table's _stext at VMCOREINFO's SYMBOL(_stext) wins.
package kallsyms

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"ldx/elfcore/kernel/kmem"
	"slices"
	"sort"
	"strings"

	"ldx/vmcoreinfo"
)

// Encoding names how the kernel stores symbol addresses.
type Encoding string

const (
	// AbsolutePercpu is CONFIG_KALLSYMS_BASE_RELATIVE with
	// CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86_64 SMP, the Debian 6.1 and 6.12
	// default): kallsyms_offsets[i] ≥ 0 is the address itself (the
	// zero-based per-CPU symbols), < 0 is relative_base − 1 − offset.
	AbsolutePercpu Encoding = "base-relative, absolute per-CPU"
	// Relative is CONFIG_KALLSYMS_BASE_RELATIVE alone: relative_base +
	// (u32)kallsyms_offsets[i].
	Relative Encoding = "base-relative"
	// Absolute is kallsyms_addresses, an array of full addresses (kernels
	// without CONFIG_KALLSYMS_BASE_RELATIVE).
	Absolute Encoding = "absolute"
)

// Symbol is one kallsyms entry.
type Symbol struct {
	Name string
	Addr uint64
	// Type is the nm-style type letter the kernel stores with the name
	// ('T' global text, 't' local text, 'D', 'd', 'B', 'b', 'R', 'r',
	// 'A', 'V', 'W', ...).
	Type byte
}

// Table is the kernel's symbol table, in address order.
type Table struct {
	syms     []Symbol
	byName   map[string]int32 // first symbol of each name, in address order
	encoding Encoding
	verified bool
}

// Limits on what Read accepts. The largest real tables (allyesconfig) are
// around 300k symbols and 10 MiB of names; KSYM_NAME_LEN is 512 since 6.1.
const (
	// MaxSymbols bounds kallsyms_num_syms.
	MaxSymbols = 1 << 21
	// maxNamesBytes bounds the compressed kallsyms_names array.
	maxNamesBytes = 64 << 20
	// maxNameLen bounds one expanded name (type letter included).
	maxNameLen = 1024
	// maxEntryTokens is the largest length the big-symbol encoding can
	// carry (two ULEB128 bytes: 14 bits).
	maxEntryTokens = 1<<14 - 1
	// maxTokenTable bounds the token table: 256 tokens, each a few bytes.
	maxTokenTable = 64 << 10
	// maxTokenLen bounds one token.
	maxTokenLen = 1024
	// chunk is how much kernel virtual memory is read at a time.
	chunk = 1 << 20
)

// ErrNoKallsyms means VMCOREINFO does not locate the kallsyms arrays:
// kernels before 6.0, or a VMCOREINFO that lost the keys.
var ErrNoKallsyms = errors.New("VMCOREINFO does not locate the kallsyms table")

// Key names, without SYMBOL().
const (
	symNames        = "kallsyms_names"
	symNumSyms      = "kallsyms_num_syms"
	symTokenTable   = "kallsyms_token_table"
	symTokenIndex   = "kallsyms_token_index"
	symOffsets      = "kallsyms_offsets"
	symRelativeBase = "kallsyms_relative_base"
	symAddresses    = "kallsyms_addresses"
)

// Read decodes the kernel's symbol table. mem reads kernel virtual memory
// (a *kmem.Mem). The error wraps ErrNoKallsyms when VMCOREINFO lacks the
// keys; otherwise it names the array, entry and address that did not
// decode.
func Read(mem io.ReaderAt, info *vmcoreinfo.Info) (*Table, error) {
	if info == nil {
		return nil, fmt.Errorf("%w: no VMCOREINFO", ErrNoKallsyms)
	}
	var missing []string
	need := func(name string) uint64 {
		v, ok := info.Symbol(name)
		if !ok {
			missing = append(missing, vmcoreinfo.SymbolKey(name))
		}
		return v
	}
	names := need(symNames)
	numSyms := need(symNumSyms)
	tokTable := need(symTokenTable)
	tokIndex := need(symTokenIndex)
	addresses, absolute := info.Symbol(symAddresses)
	var offsets, relBase uint64
	if !absolute {
		offsets = need(symOffsets)
		relBase = need(symRelativeBase)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s missing or malformed", ErrNoKallsyms, strings.Join(missing, ", "))
	}

	b, err := readFull(mem, numSyms, 4, symNumSyms)
	if err != nil {
		return nil, err
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n == 0 || n > MaxSymbols {
		return nil, fmt.Errorf("kallsyms: %s at %#x is %d, want 1 to %d", symNumSyms, numSyms, n, MaxSymbols)
	}
	tokens, err := readTokens(mem, tokTable, tokIndex)
	if err != nil {
		return nil, err
	}
	syms, err := readNames(mem, names, int(n), tokens)
	if err != nil {
		return nil, err
	}

	t := &Table{syms: syms}
	stext, haveStext := info.Symbol("_stext")
	if absolute {
		b, err := readFull(mem, addresses, n*8, symAddresses)
		if err != nil {
			return nil, err
		}
		for i := range syms {
			syms[i].Addr = binary.LittleEndian.Uint64(b[i*8:])
		}
		t.encoding = Absolute
		if i := indexOf(syms, "_stext"); i >= 0 && haveStext {
			if syms[i].Addr != stext {
				return nil, fmt.Errorf("kallsyms: %s at %#x puts _stext at %#x, VMCOREINFO's SYMBOL(_stext) is %#x: not this kernel's table", symAddresses, addresses, syms[i].Addr, stext)
			}
			t.verified = true
		}
	} else {
		rb, err := readFull(mem, relBase, 8, symRelativeBase)
		if err != nil {
			return nil, err
		}
		base := binary.LittleEndian.Uint64(rb)
		b, err := readFull(mem, offsets, n*4, symOffsets)
		if err != nil {
			return nil, err
		}
		off := func(i int) int32 { return int32(binary.LittleEndian.Uint32(b[i*4:])) }
		enc := guessEncoding(off, len(syms))
		if i := indexOf(syms, "_stext"); i >= 0 && haveStext {
			ap, rel := decodePercpu(base, off(i)), decodeRelative(base, off(i))
			switch stext {
			case ap:
				enc = AbsolutePercpu
			case rel:
				enc = Relative
			default:
				return nil, fmt.Errorf("kallsyms: %s entry %d (_stext) at %#x is %#x: with %s %#x neither encoding gives VMCOREINFO's SYMBOL(_stext) %#x (absolute per-CPU %#x, relative %#x)",
					symOffsets, i, offsets+uint64(i)*4, uint32(off(i)), symRelativeBase, base, stext, ap, rel)
			}
			t.verified = true
		}
		decode := decodeRelative
		if enc == AbsolutePercpu {
			decode = decodePercpu
		}
		for i := range syms {
			syms[i].Addr = decode(base, off(i))
		}
		t.encoding = enc
	}

	// The kernel sorts the table by address; sorting again costs little
	// and keeps Containing correct on a table that is not.
	slices.SortStableFunc(t.syms, func(a, b Symbol) int { return cmp.Compare(a.Addr, b.Addr) })
	t.byName = make(map[string]int32, len(t.syms))
	for i := range t.syms {
		if _, dup := t.byName[t.syms[i].Name]; !dup {
			t.byName[t.syms[i].Name] = int32(i)
		}
	}
	return t, nil
}

func decodePercpu(base uint64, off int32) uint64 {
	if off >= 0 {
		return uint64(off)
	}
	return base - 1 - uint64(int64(off))
}

func decodeRelative(base uint64, off int32) uint64 { return base + uint64(uint32(off)) }

// guessEncoding decides without _stext: with absolute per-CPU addresses
// every kernel-image symbol is a negative offset and only the per-CPU ones
// are not; relative offsets from the lowest address are small and
// non-negative.
func guessEncoding(off func(int) int32, n int) Encoding {
	neg := 0
	for i := range n {
		if off(i) < 0 {
			neg++
		}
	}
	if neg > n/2 {
		return AbsolutePercpu
	}
	return Relative
}

func indexOf(syms []Symbol, name string) int {
	for i := range syms {
		if syms[i].Name == name {
			return i
		}
	}
	return -1
}

// readTokens reads the 256 tokens: kallsyms_token_index holds 256 u16
// offsets into kallsyms_token_table, each a NUL-terminated string. A token
// that does not decode is kept as an error, reported only if a name uses
// it.
func readTokens(mem io.ReaderAt, table, index uint64) (*[256]token, error) {
	ib, err := readFull(mem, index, 512, symTokenIndex)
	if err != nil {
		return nil, err
	}
	var maxOff uint64
	for i := range 256 {
		maxOff = max(maxOff, uint64(binary.LittleEndian.Uint16(ib[i*2:])))
	}
	// u16 offsets bound the table at 64 KiB plus the last token; the end
	// of the last token is not known, so read what is there up to that.
	want := min(maxOff+maxTokenLen, maxTokenTable+maxTokenLen)
	tb, rerr := readSome(mem, table, want)
	why := ""
	if rerr != nil && uint64(len(tb)) < want {
		why = " (" + rerr.Error() + ")"
	}
	var toks [256]token
	for i := range 256 {
		o := uint64(binary.LittleEndian.Uint16(ib[i*2:]))
		if o >= uint64(len(tb)) {
			toks[i].err = fmt.Errorf("%s[%d] at %#x is %#x, past the %d bytes of %s readable at %#x%s",
				symTokenIndex, i, index+uint64(i)*2, o, len(tb), symTokenTable, table, why)
			continue
		}
		rest := tb[o:min(uint64(len(tb)), o+maxTokenLen)]
		end := strings.IndexByte(string(rest), 0)
		if end < 0 {
			toks[i].err = fmt.Errorf("%s[%d] at %#x is %#x: the token at %#x has no NUL within %d bytes",
				symTokenIndex, i, index+uint64(i)*2, o, table+o, len(rest))
			continue
		}
		toks[i].s = string(rest[:end])
	}
	return &toks, nil
}

type token struct {
	s   string
	err error
}

// readNames expands the n entries of kallsyms_names. Each entry is a
// length (one byte; from 6.1 a length ≥ 0x80 is two ULEB128 bytes, the
// "big symbol" encoding, which older kernels never produce) and that many
// token indexes; the expanded text is the type letter, then the name.
func readNames(mem io.ReaderAt, addr uint64, n int, toks *[256]token) ([]Symbol, error) {
	s := &stream{mem: mem, addr: addr, limit: maxNamesBytes}
	syms := make([]Symbol, 0, min(n, 1<<16))
	var all strings.Builder // one allocation for all names, sliced below
	var starts []int
	var buf []byte
	for i := range n {
		at := s.addr + s.pos
		hdr, err := s.next(1, i)
		if err != nil {
			return nil, err
		}
		length := uint64(hdr[0])
		if length&0x80 != 0 {
			b, err := s.next(1, i)
			if err != nil {
				return nil, err
			}
			length = length&0x7f | uint64(b[0])<<7
		}
		if length == 0 {
			return nil, fmt.Errorf("kallsyms: %s entry %d at %#x is empty", symNames, i, at)
		}
		data, err := s.next(length, i)
		if err != nil {
			return nil, err
		}
		buf = buf[:0]
		for _, c := range data {
			tk := &toks[c]
			if tk.err != nil {
				return nil, fmt.Errorf("kallsyms: %s entry %d at %#x uses token %d: %w", symNames, i, at, c, tk.err)
			}
			buf = append(buf, tk.s...)
			if len(buf) > maxNameLen {
				return nil, fmt.Errorf("kallsyms: %s entry %d at %#x expands to more than %d bytes", symNames, i, at, maxNameLen)
			}
		}
		if len(buf) < 2 {
			return nil, fmt.Errorf("kallsyms: %s entry %d at %#x expands to %q: no type letter and name", symNames, i, at, buf)
		}
		starts = append(starts, all.Len())
		all.Write(buf[1:])
		syms = append(syms, Symbol{Type: buf[0]})
	}
	text := all.String()
	for i := range syms {
		end := len(text)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		syms[i].Name = text[starts[i]:end]
	}
	return syms, nil
}

// stream reads an array of unknown length in chunks.
type stream struct {
	mem   io.ReaderAt
	addr  uint64 // address of the array
	buf   []byte // bytes [base, base+len(buf)) of the array
	base  uint64
	pos   uint64 // next byte, from addr
	limit uint64
	step  uint64 // bytes read at a time: 64 KiB, doubling up to chunk
}

// next returns the next k bytes of entry i.
func (s *stream) next(k uint64, entry int) ([]byte, error) {
	if s.pos+k > s.base+uint64(len(s.buf)) {
		if s.pos+k > s.limit {
			return nil, fmt.Errorf("kallsyms: %s entry %d at %#x: the array would exceed %d bytes", symNames, entry, s.addr+s.pos, s.limit)
		}
		// Keep the unread tail, read a chunk after it.
		tail := s.buf[s.pos-s.base:]
		s.step = min(max(2*s.step, 64<<10), chunk)
		want := max(s.step, k)
		nb := make([]byte, len(tail), uint64(len(tail))+want)
		copy(nb, tail)
		from := s.pos + uint64(len(tail))
		got, err := s.mem.ReadAt(nb[len(tail):cap(nb)], int64(s.addr+from))
		nb = nb[:len(tail)+max(got, 0)]
		s.buf, s.base = nb, s.pos
		if uint64(len(s.buf)) < k {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("kallsyms: %s entry %d at %#x: truncated at %#x: %w", symNames, entry, s.addr+s.pos, s.addr+from+uint64(max(got, 0)), err)
		}
	}
	b := s.buf[s.pos-s.base : s.pos-s.base+k]
	s.pos += k
	return b, nil
}

// readFull is kmem.ReadFull (bounded copies of kernel memory), its error
// named for this package.
func readFull(mem io.ReaderAt, va, n uint64, what string) ([]byte, error) {
	b, err := kmem.ReadFull(mem, va, n, what)
	if err != nil {
		return nil, fmt.Errorf("kallsyms: %w", err)
	}
	return b, nil
}

// readSome reads up to n bytes at va and returns what could be read, with
// the error that stopped it.
func readSome(mem io.ReaderAt, va, n uint64) ([]byte, error) {
	if va+n < va {
		n = -va
	}
	buf := make([]byte, n)
	got, err := mem.ReadAt(buf, int64(va))
	return buf[:max(got, 0)], err
}

// Len returns the number of symbols.
func (t *Table) Len() int { return len(t.syms) }

// At returns the i-th symbol in address order.
func (t *Table) At(i int) Symbol { return t.syms[i] }

// Symbols returns the symbols in address order (a copy).
func (t *Table) Symbols() []Symbol { return slices.Clone(t.syms) }

// Lookup returns the address of the symbol called name; of several with
// that name (static symbols of different files), the lowest address, as
// /proc/kallsyms lists it first.
func (t *Table) Lookup(name string) (uint64, bool) {
	i, ok := t.byName[name]
	if !ok {
		return 0, false
	}
	return t.syms[i].Addr, true
}

// Containing returns the symbol at or below addr (the last one, in
// address order, of those with the highest address not above it), and
// addr's offset from it. It does not know symbol sizes: an address past
// the end of the last function still resolves to it.
func (t *Table) Containing(addr uint64) (Symbol, uint64, bool) {
	i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].Addr > addr })
	if i == 0 {
		return Symbol{}, 0, false
	}
	s := t.syms[i-1]
	return s, addr - s.Addr, true
}

// Encoding returns how the kernel stored the addresses.
func (t *Table) Encoding() Encoding { return t.encoding }

// Verified says the encoding was confirmed: the table's _stext is
// VMCOREINFO's SYMBOL(_stext). When false (no SYMBOL(_stext), or no _stext
// in the table), the encoding was guessed from the offsets' signs.
func (t *Table) Verified() bool { return t.verified }
