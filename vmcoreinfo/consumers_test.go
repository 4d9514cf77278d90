package vmcoreinfo

import (
	"math"
	"strings"
	"testing"
)

func TestStrto(t *testing.T) {
	for _, c := range []struct {
		s       string
		base    int
		ul, l   uint64 // Strtoul, Strtol values
		end     int
		ulR, lR bool
	}{
		{"123", 10, 123, 123, 3, false, false},
		{"  -5x", 10, math.MaxUint64 - 4, math.MaxUint64 - 4, 4, false, false},
		{"0x1c00000", 10, 0, 0, 1, false, false},
		{"0x1c00000", 16, 0x1c00000, 0x1c00000, 9, false, false},
		{"-0x1000000", 16, 0xffffffffff000000, 0xffffffffff000000, 10, false, false},
		{"0x", 16, 0, 0, 1, false, false},
		{"0xg", 0, 0, 0, 1, false, false},
		{"010", 0, 8, 8, 3, false, false},
		{"019", 0, 1, 1, 2, false, false},
		{"x", 10, 0, 0, 0, false, false},
		{"", 10, 0, 0, 0, false, false},
		{"-", 10, 0, 0, 0, false, false},
		{"ffffffffff000000", 16, 0xffffffffff000000, math.MaxInt64, 16, false, true},
		{"99999999999999999999", 10, math.MaxUint64, math.MaxInt64, 20, true, true},
		{"-99999999999999999999", 10, math.MaxUint64, 1 << 63, 21, true, true},
		{"-9223372036854775808", 10, 1 << 63, 1 << 63, 20, false, false},
		{"12\r", 0, 12, 12, 2, false, false},
	} {
		ul, l := Strtoul(c.s, c.base), Strtol(c.s, c.base)
		if ul.Value != c.ul || ul.End != c.end || ul.Range != c.ulR {
			t.Errorf("Strtoul(%q, %d) = %+v, want %#x end %d range %v", c.s, c.base, ul, c.ul, c.end, c.ulR)
		}
		if l.Value != c.l || l.End != c.end || l.Range != c.lR {
			t.Errorf("Strtol(%q, %d) = %+v, want %#x end %d range %v", c.s, c.base, l, c.l, c.end, c.lR)
		}
	}
	if Atoi("0x1") != 0 || Atoi(" 1") != 1 || Atoi("4294967297") != 1 || Atol("52abc") != 52 {
		t.Error("atoi/atol")
	}
}

// outcome is a compact expectation: "ok" (reads the kernel's value),
// "misread=V" (reads V, as FormatGot prints it), "reject", "absent", "-"
// (does not read the key).
func outcomeOf(t *testing.T, c Consumer, key, value string) string {
	t.Helper()
	r, ok := ParseAs(c, key, value)
	if !ok {
		return "-"
	}
	want, have := KernelValue(key, value)
	switch o, _ := r.Assess(want, have); o {
	case ReadsRight:
		return "ok"
	case Rejects:
		return "reject"
	case TakesAbsent:
		return "absent"
	default:
		return "misread=" + r.FormatGot()
	}
}

func TestParseAs(t *testing.T) {
	for _, c := range []struct {
		key, value       string
		crash, mdf, drgn string
	}{
		// NUMBER(phys_base): crash dtol (with its own '-'), makedumpfile
		// strtol 10 then 16, drgn 0.0.22 does not read it.
		{KeyPhysBase, "29360128", "ok", "ok", "-"},
		{KeyPhysBase, "-16777216", "ok", "ok", "-"},
		{KeyPhysBase, "0", "ok", "ok", "-"},
		{KeyPhysBase, "0x1c00000", "misread=-1", "ok", "-"},
		{KeyPhysBase, "-0x1000000", "misread=1", "ok", "-"},
		{KeyPhysBase, "0x0", "misread=-1", "ok", "-"},
		{KeyPhysBase, "0xffffffffff000000", "misread=-1", "reject", "-"},
		{KeyPhysBase, "29360128 ", "misread=-1", "reject", "-"},
		{KeyPhysBase, "29360128\r", "misread=-1", "reject", "-"},
		{KeyPhysBase, " 29360128", "ok", "ok", "-"},
		{KeyPhysBase, "010", "ok", "ok", "-"}, // decimal to all three (drgn would read 8 from 0.0.27)
		{KeyPhysBase, "99999999999999999999", "misread=-1", "reject", "-"},
		{KeyPhysBase, "1c00000", "misread=-1", "ok", "-"},
		{KeyPhysBase, "-1", "ok", "ok", "-"}, // NOT_FOUND to makedumpfile, but so is the kernel's -1
		{KeyPhysBase, "-3", "ok", "reject", "-"},
		// SYMBOL(): makedumpfile strtoul 16, crash htol (_stext), drgn
		// strtoull 16 (swapper_pg_dir).
		{KeyStext, "ffffffff81000000", "ok", "ok", "-"},
		{KeyStext, "0xffffffff81000000", "ok", "ok", "-"},
		{KeyStext, "FFFFFFFF81000000", "ok", "ok", "-"},
		{KeyStext, "ffffffff81000000 ", "misread=0xffffffffffffffff", "reject", "-"},
		{KeyStext, "ffffffff81000000h", "misread=0xffffffffffffffff", "reject", "-"}, // 17 characters: too long for htol
		{KeyStext, "ffffffff8100000h", "misread=0xffffffff8100000", "reject", "-"},   // htol skips the h
		{KeyStext, "0", "ok", "reject", "-"},
		{KeySwapperPgDir, "0xffffffff82a0a000", "-", "ok", "ok"},
		{KeySwapperPgDir, "ffffffff82a0a000kB", "-", "reject", "reject"},
		{KeySwapperPgDir, "1ffffffff82a0a000", "-", "reject", "reject"},
		// KERNELOFFSET: crash looks at presence, makedumpfile ignores
		// trailing text, drgn is strict.
		{KeyKernelOffset, "34000000", "ok", "ok", "ok"},
		{KeyKernelOffset, "0x34000000", "ok", "ok", "ok"},
		{KeyKernelOffset, "34000000 ", "ok", "ok", "reject"},
		// PAGESIZE: makedumpfile strtol 10 and a power of two, drgn base 0.
		{KeyPageSize, "4096", "-", "ok", "ok"},
		{KeyPageSize, "0x1000", "-", "reject", "ok"},
		{KeyPageSize, "010000", "-", "reject", "misread=4096"}, // decimal 10000 is no power of two
		{KeyPageSize, "4096\r", "-", "reject", "reject"},
		{KeyPageSize, "4000", "-", "reject", "reject"},
		// NUMBER(pgtable_l5_enabled): crash atoi.
		{KeyPgtableL5, "0x1", "misread=0", "ok", "ok"},
		// OFFSET(): makedumpfile only.
		{"OFFSET(uts_namespace.name)", "4 ", "-", "reject", "-"},
		{"OFFSET(uts_namespace.name)", "0x4", "-", "ok", "-"},
	} {
		for _, cc := range []struct {
			c    Consumer
			want string
		}{{Crash, c.crash}, {Makedumpfile, c.mdf}, {Drgn, c.drgn}} {
			if got := outcomeOf(t, cc.c, c.key, c.value); got != cc.want {
				r, _ := ParseAs(cc.c, c.key, c.value)
				t.Errorf("%s %s=%q: %s, want %s (%s)", cc.c, c.key, c.value, got, cc.want, r.Describe())
			}
		}
	}
}

func TestParseAsVersions(t *testing.T) {
	rs := ParseAll(KeyPhysBase, "-0x1000000")
	var drgn *Reading
	for i := range rs {
		if rs[i].Consumer == Drgn {
			drgn = &rs[i]
		}
	}
	if drgn == nil || drgn.Versions != ">=0.0.27" || drgn.Got != 0xffffffffff000000 || drgn.Err != "" {
		t.Fatalf("drgn reading %+v", drgn)
	}
	if n := NotReadBy(rs); len(n) != 1 || !strings.Contains(n[0], "drgn <0.0.27") {
		t.Errorf("NotReadBy = %v", n)
	}
	r, _ := ParseAs(Crash, KeyPhysBase, "-0x1000000")
	if d := r.Describe(); !strings.Contains(d, "reads 1 ") || !strings.Contains(d, "dtol") {
		t.Errorf("Describe = %q", d)
	}
	r, _ = ParseAs(Makedumpfile, KeyPhysBase, "-0x1000000")
	if d := r.Describe(); !strings.Contains(d, "-16777216 (-0x1000000)") || !strings.Contains(d, "hex fallback") {
		t.Errorf("Describe = %q", d)
	}
	r, _ = ParseAs(Makedumpfile, "SYMBOL(_stext)", "0")
	if r.Err == "" || !strings.Contains(r.Describe(), "Invalid data") {
		t.Errorf("Describe = %q", r.Describe())
	}
}

func TestKernelValue(t *testing.T) {
	for _, c := range []struct {
		key, v string
		want   uint64
		ok     bool
	}{
		{KeyPhysBase, "-0x1000000", 0xffffffffff000000, true},
		{KeyPhysBase, "0xffffffffff000000", 0xffffffffff000000, true},
		{KeyPhysBase, "1c00000", 0x1c00000, true},
		{KeyPhysBase, "010", 10, true},
		{KeyPhysBase, "12 \r", 12, true},
		{KeyPhysBase, "12kB", 0, false},
		{KeyStext, "FFFFFFFF81000000", 0xffffffff81000000, true},
		{KeyStext, "1ffffffff81000000", 0, false},
		{KeyOSRelease, "6.1.0", 0, false},
	} {
		if got, ok := KernelValue(c.key, c.v); got != c.want || ok != c.ok {
			t.Errorf("KernelValue(%s, %q) = %#x, %v", c.key, c.v, got, ok)
		}
	}
}
