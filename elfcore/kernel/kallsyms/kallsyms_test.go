package kallsyms

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

// kernelSyms drops the per-CPU offsets, which only the absolute per-CPU
// and absolute encodings can hold.
func kernelSyms() []Symbol {
	return slices.DeleteFunc(testSyms(), func(s Symbol) bool { return s.Addr < 1<<31 })
}

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		enc      Encoding
		syms     []Symbol
		noStext  bool // VMCOREINFO without SYMBOL(_stext): the encoding is guessed
		verified bool
	}{
		{name: "absolute per-CPU", enc: AbsolutePercpu, syms: testSyms(), verified: true},
		{name: "relative", enc: Relative, syms: kernelSyms(), verified: true},
		{name: "absolute", enc: Absolute, syms: testSyms(), verified: true},
		{name: "absolute per-CPU, guessed", enc: AbsolutePercpu, syms: testSyms(), noStext: true},
		{name: "relative, guessed", enc: Relative, syms: kernelSyms(), noStext: true},
		{name: "absolute per-CPU, only kernel symbols", enc: AbsolutePercpu, syms: kernelSyms(), verified: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := encode(tc.enc, tc.syms)
			if tc.noStext {
				k.stext = 0
			}
			tab, err := Read(k.mem(), k.info())
			if err != nil {
				t.Fatal(err)
			}
			if tab.Encoding() != tc.enc || tab.Verified() != tc.verified {
				t.Errorf("encoding %q verified %v, want %q %v", tab.Encoding(), tab.Verified(), tc.enc, tc.verified)
			}
			if tab.Len() != len(k.syms) {
				t.Fatalf("%d symbols, want %d", tab.Len(), len(k.syms))
			}
			got := tab.Symbols()
			if !slices.Equal(got, k.syms) {
				t.Errorf("symbols\n%v\nwant\n%v", got, k.syms)
			}
			for _, s := range k.syms {
				a, ok := tab.Lookup(s.Name)
				if !ok || (a != s.Addr && s.Name != "show_stat") {
					t.Errorf("Lookup(%q) = %#x %v, want %#x", s.Name, a, ok, s.Addr)
				}
			}
			if _, ok := tab.Lookup("no_such_symbol"); ok {
				t.Error("Lookup of a missing name succeeded")
			}
		})
	}
}

func TestLookupDuplicatesAndContaining(t *testing.T) {
	k := encode(AbsolutePercpu, testSyms())
	tab, err := Read(k.mem(), k.info())
	if err != nil {
		t.Fatal(err)
	}
	// Two static show_stat: the lower address, as /proc/kallsyms lists first.
	if a, _ := tab.Lookup("show_stat"); a != 0xffffffffb6002000 {
		t.Errorf("Lookup(show_stat) = %#x, want the first, 0xffffffffb6002000", a)
	}
	if a, _ := tab.Lookup("cpu_tss_rw"); a != 0x6000 {
		t.Errorf("per-CPU cpu_tss_rw = %#x, want its offset 0x6000", a)
	}
	long := "__long_" + strings.Repeat("x", 300)
	if a, ok := tab.Lookup(long); !ok || a != 0xffffffffb6004000 {
		t.Errorf("the big symbol (two-byte length) = %#x %v", a, ok)
	}
	s, off, ok := tab.Containing(0xffffffffb6001010)
	if !ok || s.Name != "do_one_initcall" || off != 0x10 || s.Type != 'T' {
		t.Errorf("Containing = %+v +%#x %v, want do_one_initcall+0x10", s, off, ok)
	}
	if _, _, ok := tab.Containing(0); !ok {
		t.Error("Containing(0) found nothing; __per_cpu_start is at 0")
	}
}

func TestReadErrors(t *testing.T) {
	setU16 := func(b []byte, i int, v uint16) { binary.LittleEndian.PutUint16(b[i*2:], v) }
	for _, tc := range []struct {
		name   string
		mutate func(k *kernel)
		want   []string // substrings of the error
		is     error
	}{
		{name: "no keys", mutate: func(k *kernel) { k.drop = symOffsets }, want: []string{"SYMBOL(kallsyms_offsets)"}, is: ErrNoKallsyms},
		{name: "no symbols", mutate: func(k *kernel) { k.numSyms = []byte{0, 0, 0, 0} },
			want: []string{"kallsyms_num_syms at 0xffffffff82000000 is 0"}},
		{name: "too many symbols", mutate: func(k *kernel) { k.numSyms = []byte{0, 0, 0, 0x40} },
			want: []string{"kallsyms_num_syms at 0xffffffff82000000 is 1073741824"}},
		{name: "count past the names", mutate: func(k *kernel) {
			binary.LittleEndian.PutUint32(k.numSyms, uint32(len(k.syms)+1))
			k.addrs = append(k.addrs, 0, 0, 0, 0)
		}, want: []string{"kallsyms_names entry 17 at 0xffffffff8220", "truncated"}},
		{name: "names truncated", mutate: func(k *kernel) { k.names = k.names[:len(k.names)-10] },
			want: []string{"kallsyms_names entry 16 at 0xffffffff8220", "truncated at 0xffffffff8220"}},
		{name: "names unmapped", mutate: func(k *kernel) { k.names = nil },
			want: []string{"kallsyms_names entry 0 at 0xffffffff82200000", "not mapped"}},
		{name: "offsets truncated", mutate: func(k *kernel) { k.addrs = k.addrs[:8] },
			want: []string{"kallsyms_offsets", "at 0xffffffff82100008"}},
		{name: "relative base unmapped", mutate: func(k *kernel) { k.relBase = nil },
			want: []string{"kallsyms_relative_base", "0xffffffff82000008"}},
		{name: "token index past the table", mutate: func(k *kernel) { setU16(k.tokIdx, 'o', 0xfff0) },
			want: []string{"uses token 111", "kallsyms_token_index[111] at 0xffffffff823100de is 0xfff0"}},
		{name: "token without NUL", mutate: func(k *kernel) { k.tokTab = k.tokTab[:binary.LittleEndian.Uint16(k.tokIdx['x'*2:])+1] },
			want: []string{"entry 1 at 0xffffffff8220000a uses token 120", "kallsyms_token_index[120]", "has no NUL"}},
		{name: "token index unmapped", mutate: func(k *kernel) { k.tokIdx = k.tokIdx[:100] },
			want: []string{"kallsyms_token_index (512 bytes at 0xffffffff82310000)"}},
		{name: "empty entry", mutate: func(k *kernel) { k.names[0] = 0 },
			want: []string{"kallsyms_names entry 0 at 0xffffffff82200000 is empty"}},
		{name: "entry without a name", mutate: func(k *kernel) { k.names = append([]byte{1, 'A'}, k.names...) },
			want: []string{"entry 0 at 0xffffffff82200000 expands to \"A\""}},
		{name: "name too long", mutate: func(k *kernel) {
			// 127 tokens of "per_cpu" (7 bytes each): 889 bytes; two such
			// entries' worth in one big entry.
			e := append([]byte{0xff, 0x01}, slices.Repeat([]byte{0}, 255)...)
			k.names = append(e, k.names...)
		}, want: []string{"entry 0 at 0xffffffff82200000 expands to more than 1024 bytes"}},
		{name: "_stext elsewhere", mutate: func(k *kernel) { k.stext += 0x200000 },
			want: []string{"kallsyms_offsets entry 6 (_stext)", "neither encoding gives VMCOREINFO's SYMBOL(_stext) 0xffffffffb6200000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := encode(AbsolutePercpu, testSyms())
			tc.mutate(k)
			tab, err := Read(k.mem(), k.info())
			if err == nil {
				t.Fatalf("no error; %d symbols", tab.Len())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

func TestAbsoluteMismatch(t *testing.T) {
	k := encode(Absolute, testSyms())
	k.stext++
	_, err := Read(k.mem(), k.info())
	if err == nil || !strings.Contains(err.Error(), "kallsyms_addresses at 0xffffffff82100000 puts _stext at 0xffffffffb6000000") {
		t.Fatalf("error %v, want the _stext mismatch", err)
	}
}
