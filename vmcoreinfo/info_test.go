package vmcoreinfo

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSampleAccessors(t *testing.T) {
	in := mustParse(t, sample(t))
	if v, ok := in.OSRelease(); !ok || v != "6.2.15-100.fc36.x86_64" {
		t.Errorf("OSRelease %q %v", v, ok)
	}
	if v, ok := in.BuildID(); !ok || v != "d3d01c80278f8927486b7f01d0ab6be77784dceb" {
		t.Errorf("BuildID %q %v", v, ok)
	}
	if v, ok := in.PageSize(); !ok || v != 4096 {
		t.Errorf("PageSize %d %v", v, ok)
	}
	if v, ok := in.KernelOffset(); !ok || v != 0x34000000 {
		t.Errorf("KernelOffset %x %v", v, ok)
	}
	if v, ok := in.Symbol("swapper_pg_dir"); !ok || v != 0xffffffffb7010000 {
		t.Errorf("swapper_pg_dir %x %v", v, ok)
	}
	if v, ok := in.Number("phys_base"); !ok || v != 31541166080 {
		t.Errorf("phys_base %d %v", v, ok)
	}
	if v, ok := in.Number("PAGE_BUDDY_MAPCOUNT_VALUE"); !ok || v != -129 {
		t.Errorf("PAGE_BUDDY_MAPCOUNT_VALUE %d %v", v, ok)
	}
	if v, ok := in.Offset("pglist_data.node_id"); !ok || v != 172544 {
		t.Errorf("Offset %d %v", v, ok)
	}
	if v, ok := in.Size("pglist_data"); !ok || v != 175168 {
		t.Errorf("Size %d %v", v, ok)
	}
	if v, ok := in.Length("mem_section"); !ok || v != 4096 {
		t.Errorf("Length %d %v", v, ok)
	}
	if _, ok := in.CrashTime(); ok {
		t.Errorf("kcore has no CRASHTIME")
	}
	if v, ok := in.KernelVersion(); !ok || v != (Version{6, 2, 15}) {
		t.Errorf("KernelVersion %v %v", v, ok)
	}
}

func TestAccessors(t *testing.T) {
	type result struct {
		u   uint64
		i   int64
		err error // nil, ErrMissing or ErrMalformed
	}
	cases := []struct {
		line string
		key  string
		uint result // LookupUint
		int  result // LookupInt
	}{
		{"SYMBOL(x)=ffffffff81000000", "SYMBOL(x)", result{u: 0xffffffff81000000}, result{err: ErrMalformed}},
		{"SYMBOL(x)=0xffffffff81000000", "SYMBOL(x)", result{u: 0xffffffff81000000}, result{err: ErrMalformed}},
		{"SYMBOL(x)=FFFF", "SYMBOL(x)", result{u: 0xffff}, result{i: 0xffff}},
		{"SYMBOL(x)=1000 ", "SYMBOL(x)", result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"SYMBOL(x)=g", "SYMBOL(x)", result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"SYMBOL(x)=", "SYMBOL(x)", result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"SYMBOL(x)=10000000000000000", "SYMBOL(x)", result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"SYMBOL(x)=1", "SYMBOL(y)", result{err: ErrMissing}, result{err: ErrMissing}},
		{"NUMBER(phys_base)=31541166080", KeyPhysBase, result{u: 31541166080}, result{i: 31541166080}},
		{"NUMBER(phys_base)=-129", KeyPhysBase, result{err: ErrMalformed}, result{i: -129}},
		{"NUMBER(phys_base)=-9223372036854775808", KeyPhysBase, result{err: ErrMalformed}, result{i: math.MinInt64}},
		{"NUMBER(phys_base)=9223372036854775808", KeyPhysBase, result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"NUMBER(phys_base)=0x10", KeyPhysBase, result{u: 16}, result{i: 16}},
		{"NUMBER(phys_base)=010", KeyPhysBase, result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"NUMBER(phys_base)=1a", KeyPhysBase, result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"NUMBER(phys_base)=12abc", KeyPhysBase, result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"NUMBER(phys_base)=-", KeyPhysBase, result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"NUMBER(VMALLOC_START)=0xffffc90000000000", KeyVmallocStart, result{u: 0xffffc90000000000}, result{i: -0x370000000000}},
		{"OFFSET(a.b)=16", "OFFSET(a.b)", result{u: 16}, result{i: 16}},
		{"OFFSET(a.b)=-16", "OFFSET(a.b)", result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"OFFSET(a.b)=18446744073709551615", "OFFSET(a.b)", result{u: math.MaxUint64}, result{err: ErrMalformed}},
		{"OFFSET(a.b)=18446744073709551616", "OFFSET(a.b)", result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"PAGESIZE=4096", KeyPageSize, result{u: 4096}, result{i: 4096}},
		{"PAGESIZE=4095", KeyPageSize, result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"PAGESIZE=0", KeyPageSize, result{err: ErrMalformed}, result{err: ErrMalformed}},
		{"KERNELOFFSET=34000000", KeyKernelOffset, result{u: 0x34000000}, result{i: 0x34000000}},
		{"KERNELOFFSET=0", KeyKernelOffset, result{u: 0}, result{i: 0}},
		{"CRASHTIME=1700000000", KeyCrashTime, result{u: 1700000000}, result{i: 1700000000}},
		{"UNKNOWN=42", "UNKNOWN", result{u: 42}, result{i: 42}},
		{"UNKNOWN=abc", "UNKNOWN", result{err: ErrMalformed}, result{err: ErrMalformed}},
	}
	check := func(what, line string, r result, got any, err error) {
		t.Helper()
		switch {
		case r.err == nil && err != nil:
			t.Errorf("%s(%q): unexpected %v", what, line, err)
		case r.err != nil && !errors.Is(err, r.err):
			t.Errorf("%s(%q): err = %v, want %v", what, line, err, r.err)
		case r.err == nil && got != any(r.u) && got != any(r.i):
			t.Errorf("%s(%q) = %v, want %d/%d", what, line, got, r.u, r.i)
		}
	}
	for _, c := range cases {
		in := mustParse(t, []byte("A=1\n"+c.line+"\n"))
		u, err := in.LookupUint(c.key)
		check("LookupUint", c.line, c.uint, u, err)
		i, err := in.LookupInt(c.key)
		check("LookupInt", c.line, c.int, i, err)
		var ke *KeyError
		if err != nil && (!errors.As(err, &ke) || ke.Key != c.key || (ke.Err == ErrMalformed) != (ke.Line == 2) || !strings.Contains(err.Error(), c.key)) {
			t.Errorf("%q: bad KeyError %#v", c.line, err)
		}
	}
}

func TestTypedAccessorsBadAndMissing(t *testing.T) {
	bad := mustParse(t, []byte("OSRELEASE="+strings.Repeat("x", 65)+"\nBUILD-ID=abc\nPAGESIZE=4k\nKERNELOFFSET=0x\n"+
		"SYMBOL(s)=xyz\nNUMBER(n)=1.5\nOFFSET(o.f)=-1\nSIZE(s)=0x\nLENGTH(l)= 4\nCRASHTIME=yesterday\n"))
	empty := &Info{}
	for _, in := range []*Info{bad, empty} {
		if _, ok := in.OSRelease(); ok {
			t.Error("OSRelease")
		}
		if _, ok := in.BuildID(); ok {
			t.Error("BuildID")
		}
		if _, ok := in.PageSize(); ok {
			t.Error("PageSize")
		}
		if _, ok := in.KernelOffset(); ok {
			t.Error("KernelOffset")
		}
		if _, ok := in.Symbol("s"); ok {
			t.Error("Symbol")
		}
		if _, ok := in.Number("n"); ok {
			t.Error("Number")
		}
		if _, ok := in.Offset("o.f"); ok {
			t.Error("Offset")
		}
		if _, ok := in.Size("s"); ok {
			t.Error("Size")
		}
		if _, ok := in.Length("l"); ok {
			t.Error("Length")
		}
		if _, ok := in.CrashTime(); ok {
			t.Error("CrashTime")
		}
	}
	for _, k := range bad.Keys() {
		if err := bad.Check(k); !errors.Is(err, ErrMalformed) {
			t.Errorf("Check(%s) = %v", k, err)
		}
		if err := empty.Check(k); !errors.Is(err, ErrMissing) {
			t.Errorf("Check(%s) on empty = %v", k, err)
		}
	}
	err := bad.Check(KeyPageSize)
	if want := `vmcoreinfo: line 3: PAGESIZE="4k": malformed value, want unsigned decimal`; err.Error() != want {
		t.Errorf("error text %q", err)
	}
	if want := `vmcoreinfo: PAGESIZE: key not present`; empty.Check(KeyPageSize).Error() != want {
		t.Errorf("error text %q", empty.Check(KeyPageSize))
	}
	ct, err := mustParse(t, []byte("CRASHTIME=1700000000\n")).LookupCrashTime()
	if err != nil || !ct.Equal(time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)) || ct.Location() != time.UTC {
		t.Errorf("CrashTime %v %v", ct, err)
	}
}

func TestEditing(t *testing.T) {
	in := mustParse(t, []byte("A=1\nB=2\nA=3\nC=4\nA=5\n"))
	if v, _ := in.Get("A"); v != "1" {
		t.Errorf("Get returns %q, want the first", v)
	}
	if err := in.Set("A", "9"); err != nil || in.String() != "A=9\nB=2\nC=4\n" {
		t.Errorf("Set: %q %v", in, err)
	}
	if err := in.Set("D", "x"); err != nil || in.String() != "A=9\nB=2\nC=4\nD=x\n" {
		t.Errorf("Set append: %q", in)
	}
	if err := in.Append("B", "7"); err != nil || in.Index("B") != 1 || in.Len() != 5 {
		t.Errorf("Append: %q", in)
	}
	if n := in.Delete("B"); n != 2 || in.String() != "A=9\nC=4\nD=x\n" {
		t.Errorf("Delete: %d %q", n, in)
	}
	if n := in.Delete("nope"); n != 0 {
		t.Errorf("Delete missing: %d", n)
	}
	for _, kv := range [][2]string{{"", "1"}, {"A=B", "1"}, {"A B", "1"}, {"A", "1\n"}, {"A", "\x00"}, {"A", "é"}, {"A", "1\r"}} {
		if err := in.Set(kv[0], kv[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", kv[0], kv[1])
		}
		if _, err := New(Line{kv[0], kv[1]}); err == nil {
			t.Errorf("New(%q, %q) accepted", kv[0], kv[1])
		}
	}
	if in.String() != "A=9\nC=4\nD=x\n" {
		t.Errorf("failed Set changed the text: %q", in)
	}

	var b Info // the zero value is usable
	steps := []error{
		b.Set(KeyOSRelease, "6.1.0-13-amd64"),
		b.SetUint(KeyPageSize, 4096),
		b.SetSymbol("swapper_pg_dir", 0xffffffff8e60a000),
		b.SetUint(OffsetKey("uts_namespace.name"), 0),
		b.SetNumber("phys_base", 0x1f000000),
		b.SetNumber("PAGE_BUDDY_MAPCOUNT_VALUE", -129),
		b.SetUint(KeyVmallocStart, 0xffffc90000000000),
		b.SetUint(KeyKernelOffset, 0xc000000),
		b.SetCrashTime(time.Unix(1700000000, 0)),
	}
	for i, err := range steps {
		if err != nil {
			t.Errorf("step %d: %v", i, err)
		}
	}
	want := "OSRELEASE=6.1.0-13-amd64\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff8e60a000\nOFFSET(uts_namespace.name)=0\n" +
		"NUMBER(phys_base)=520093696\nNUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129\nNUMBER(VMALLOC_START)=0xffffc90000000000\n" +
		"KERNELOFFSET=c000000\nCRASHTIME=1700000000\n"
	if b.String() != want {
		t.Errorf("built:\n%s\nwant:\n%s", b.String(), want)
	}
	if len(b.Lint()) != 0 {
		t.Errorf("built text has problems: %v", b.Lint())
	}
	if b.SetInt(OffsetKey("x.y"), -1) == nil || b.SetUint(KeyPhysBase, math.MaxUint64) == nil || b.SetUint(KeyOSRelease, 1) == nil {
		t.Error("bad typed Set accepted")
	}
	if FormatBuildID([]byte{0xd3, 0xd0, 0x1c, 0x0f}) != "d3d01c0f" || FormatSymbol(0xff) != "ff" || FormatDecimal(10) != "10" || FormatSigned(-1) != "-1" {
		t.Error("Format helpers")
	}
	c := b.Clone()
	c.Delete(KeyCrashTime)
	if !b.Has(KeyCrashTime) || c.Equal(&b) {
		t.Error("Clone shares lines")
	}
}

func TestKindOf(t *testing.T) {
	cases := map[string]ValueKind{
		"SYMBOL(_stext)": HexValue, "KERNELOFFSET": HexValue, "OFFSET(a.b)": UnsignedValue, "SIZE(page)": UnsignedValue,
		"LENGTH(x)": UnsignedValue, "PAGESIZE": UnsignedValue, "NUMBER(x)": SignedValue, "CRASHTIME": SignedValue,
		"BUILD-ID": BuildIDValue, "OSRELEASE": ReleaseValue, "SYMBOL()": TextValue, "SYMBOL(x": TextValue, "FOO": TextValue,
		"NUMBER(VMALLOC_START)": SignedValue,
	}
	for k, want := range cases {
		if got := KindOf(k); got != want {
			t.Errorf("KindOf(%s) = %v, want %v", k, got, want)
		}
	}
}
