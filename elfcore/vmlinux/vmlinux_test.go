package vmlinux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ldx/vmcoreinfo"
)

// The fixtures are fixture.c built as DWARF 5 and DWARF 4; its
// _Static_asserts pin the layouts below to what GCC laid out.
var fixtures = []string{"testdata/fixture-dwarf5.elf", "testdata/fixture-dwarf4.elf"}

func open(t *testing.T, path string) *File {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestImage(t *testing.T) {
	for _, path := range fixtures {
		f := open(t, path)
		if id := f.BuildID(); len(id) != 20 {
			t.Errorf("%s: build-id %x, want 20 bytes", path, id)
		}
		if b, err := f.Banner(); err != nil || string(b) != "Linux version 6.1.0-fixture (ldx@fixture) #1 SMP\n" {
			t.Errorf("%s: Banner() = %q, %v", path, b, err)
		}
		rel, err := f.Release()
		if err != nil || rel != "6.1.0-fixture" {
			t.Errorf("%s: Release() = %q, %v", path, rel, err)
		}
		a, err := f.Symbol("init_uts_ns")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if err := f.ReadData(a+4+65, buf); err != nil || string(buf) != "6.1.0" {
			t.Errorf("%s: ReadData(init_uts_ns.name.release) = %q, %v", path, buf, err)
		}
		if err := f.ReadData(a, make([]byte, 1<<20)); err == nil {
			t.Errorf("%s: a read past the section's end succeeded", path)
		}
		if _, err := f.Symbol("no_such_symbol"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: missing symbol: %v, want ErrNotFound", path, err)
		}
		// DWARF's location and the symbol table agree.
		for _, v := range []string{"init_uts_ns", "init_task", "node_data", "counter_var"} {
			sym, err1 := f.Symbol(v)
			loc, err2 := f.VarAddr(v)
			if err1 != nil || err2 != nil || sym != loc {
				t.Errorf("%s: %s: symbol %#x (%v), DWARF location %#x (%v)", path, v, sym, err1, loc, err2)
			}
		}
	}
}

func TestLayout(t *testing.T) {
	sizes := []struct {
		name string
		want int64
	}{
		{"page", 40},
		{"struct page", 40},
		{"printk_info", 16},
		{"task_struct", 64},
		{"atomic_long_t", 8}, // typedef of a typedef of a struct
		{"zone", 24 + 11*88},
		{"list_head", 16},
	}
	members := []struct {
		typ, member string
		want        Member
	}{
		{"page", "flags", Member{Offset: 0, Size: 8, ArrayLen: -1}},
		{"page", "compound_dtor", Member{Offset: 16, Size: 1, ArrayLen: -1}}, // in an anonymous struct in an anonymous union
		{"page", "mapping", Member{Offset: 24, Size: 8, ArrayLen: -1}},
		{"page", "lru.prev", Member{Offset: 16, Size: 8, ArrayLen: -1}},
		{"page", "_refcount", Member{Offset: 32, Size: 4, ArrayLen: -1}},
		{"printk_info", "flags", Member{Offset: 11, BitOffset: 88, BitSize: 5, Size: 1, ArrayLen: -1}},
		{"printk_info", "level", Member{Offset: 11, BitOffset: 93, BitSize: 3, Size: 1, ArrayLen: -1}},
		{"printk_info", "caller_id", Member{Offset: 12, Size: 4, ArrayLen: -1}},
		{"uts_namespace", "name", Member{Offset: 4, Size: 130, ArrayLen: -1}},
		{"uts_namespace", "name.release", Member{Offset: 69, Size: 65, ArrayLen: 65}},
		{"atomic_long_t", "counter", Member{Offset: 0, Size: 8, ArrayLen: -1}},
		{"zone", "free_area", Member{Offset: 24, Size: 968, ArrayLen: 11}},
		{"free_area", "free_list", Member{Offset: 0, Size: 80, ArrayLen: 5}},
		{"task_struct", "comm", Member{Offset: 16, Size: 16, ArrayLen: 16}}, // const char[16]: qualifier on the element
		{"task_struct", "thread_info.cpu", Member{Offset: 4, Size: 4, ArrayLen: -1}},
		{"task_struct", "__state", Member{Offset: 8, Size: 8, ArrayLen: -1}},
		{"task_struct", "sched_reset_on_fork", Member{Offset: 56, BitOffset: 448, BitSize: 1, Size: 4, ArrayLen: -1}},
		{"task_struct", "sched_contributes_to_load", Member{Offset: 56, BitOffset: 449, BitSize: 1, Size: 4, ArrayLen: -1}},
		{"task_struct", "flex", Member{Offset: 60, Size: 0, ArrayLen: 0}},
	}
	enums := []struct {
		name string
		want int64
	}{{"PG_lru", 4}, {"PG_head", 16}, {"PG_locked", 0}, {"NR_FREE_PAGES", 0}, {"NR_ZONE_LRU_BASE", 1}}
	for _, path := range fixtures {
		f := open(t, path)
		for _, c := range sizes {
			if got, err := f.StructSize(c.name); err != nil || got != c.want {
				t.Errorf("%s: StructSize(%s) = %d, %v; want %d", path, c.name, got, err, c.want)
			}
		}
		for _, c := range members {
			got, err := f.Member(c.typ, c.member)
			got.typ, got.die = 0, 0
			if err != nil || got != c.want {
				t.Errorf("%s: Member(%s, %s) = %+v, %v; want %+v", path, c.typ, c.member, got, err, c.want)
			}
		}
		for _, c := range enums {
			if got, err := f.Enum(c.name); err != nil || got != c.want {
				t.Errorf("%s: Enum(%s) = %d, %v; want %d", path, c.name, got, err, c.want)
			}
		}
		if n, err := f.VarArrayLen("node_data"); err != nil || n != 64 {
			t.Errorf("%s: VarArrayLen(node_data) = %d, %v; want 64 (from the definition, not the header's [])", path, n, err)
		}
		if s, err := f.VarTypeName("init_task"); err != nil || s != "struct task_struct" {
			t.Errorf("%s: VarTypeName(init_task) = %q, %v", path, s, err)
		}
	}
}

func TestNotFound(t *testing.T) {
	f := open(t, fixtures[0])
	cases := []struct {
		name string
		err  error
	}{
		{"struct", func() error { _, err := f.StructSize("no_such_struct"); return err }()},
		{"member", func() error { _, err := f.Member("page", "no_such_member"); return err }()},
		{"member of a scalar", func() error { _, err := f.Member("page", "flags.x"); return err }()},
		{"enumerator", func() error { _, err := f.Enum("PGTY_buddy"); return err }()},
		{"variable", func() error { _, err := f.VarArrayLen("no_such_var"); return err }()},
	}
	for _, c := range cases {
		var le *LookupError
		if !errors.As(c.err, &le) {
			t.Errorf("%s: %v, want a *LookupError", c.name, c.err)
		}
	}
	for _, c := range cases[:2] {
		if !errors.Is(c.err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", c.name, c.err)
		}
	}
	// A type only ever declared is reported, not followed forever.
	if _, err := f.Member("task_struct", "op.x"); err == nil {
		t.Error("member of a pointer: no error")
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	elf5, err := os.ReadFile(fixtures[0])
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
	}{
		{"empty", write("empty", nil)},
		{"text", write("text", []byte("this is not an ELF file at all, not even close to one"))},
		{"truncated", write("trunc", elf5[:100])},
		{"directory", dir},
	}
	for _, c := range cases {
		if f, err := Open(c.path); err == nil {
			f.Close()
			t.Errorf("%s: Open succeeded", c.name)
		}
	}
	// An ELF without DWARF answers symbol questions and says what is
	// missing for type questions.
	f := open(t, "testdata/fixture-nodwarf.elf")
	if _, err := f.Symbol("init_task"); err != nil {
		t.Error(err)
	}
	if _, err := f.StructSize("page"); err == nil || !strings.Contains(err.Error(), "no .debug_info") {
		t.Errorf("StructSize without DWARF: %v", err)
	}
}

func TestClosed(t *testing.T) {
	f, err := Open(fixtures[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.StructSize("page"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f.Close() // twice is fine
	if _, err := f.StructSize("task_struct"); !errors.Is(err, ErrClosed) {
		t.Errorf("StructSize after Close: %v", err)
	}
	if _, err := f.Symbol("init_task"); !errors.Is(err, ErrClosed) {
		t.Errorf("Symbol after Close: %v", err)
	}
	if err := f.ReadData(0x402000, make([]byte, 4)); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadData after Close: %v", err)
	}
	if f.BuildID() != nil {
		t.Error("BuildID after Close")
	}
}

func TestMatchesBuildID(t *testing.T) {
	f := open(t, fixtures[0])
	id := fmt.Sprintf("%x", f.BuildID())
	for _, c := range []struct {
		hex  string
		want bool
	}{
		{id, true},
		{strings.ToUpper(id), true},
		{id + "000000", true}, // the kernel's %20phN pads a shorter id
		{id[:len(id)-2], false},
		{id[:len(id)-1] + "0", id[len(id)-1] == '0'},
		{id + "01", false},
		{"", false},
	} {
		if got := f.MatchesBuildID(c.hex); got != c.want {
			t.Errorf("MatchesBuildID(%q) = %v", c.hex, got)
		}
	}
}

// Lookups index compilation units only as they need them.
func TestLazy(t *testing.T) {
	f := open(t, fixtures[0])
	if _, err := f.Symbol("init_task"); err != nil {
		t.Fatal(err)
	}
	if f.dw != nil {
		t.Error("a symbol lookup loaded DWARF")
	}
	if _, err := f.StructSize("page"); err != nil {
		t.Fatal(err)
	}
	if n := f.UnitsIndexed(); n != 1 {
		t.Errorf("%d units indexed after one found type, want 1", n)
	}
}

func TestKASLROffset(t *testing.T) {
	f := open(t, fixtures[0])
	stext, _ := f.Symbol("_stext")
	for _, c := range []struct {
		text string
		want uint64
		ok   bool
	}{
		{"KERNELOFFSET=1e000000\n", 0x1e000000, true},
		{fmt.Sprintf("SYMBOL(_stext)=%x\n", stext+0x200000), 0x200000, true},
		{fmt.Sprintf("KERNELOFFSET=400000\nSYMBOL(_stext)=%x\n", stext+0x200000), 0x400000, true}, // the key wins
		{"OSRELEASE=6.1.0-fixture\n", 0, false},
	} {
		info, err := vmcoreinfo.Parse([]byte(c.text))
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := f.KASLROffset(info)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%q: %#x, %v; want %#x", c.text, got, err, c.want)
		}
	}
}
