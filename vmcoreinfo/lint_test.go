package vmcoreinfo

import (
	"strings"
	"testing"
)

func TestLintSample(t *testing.T) {
	if ps := mustParse(t, sample(t)).Lint(); len(ps) != 0 {
		t.Errorf("real kernel text has problems: %v", ps)
	}
	if ps := mustParse(t, livedumpText(t, 0)).Lint(); len(ps) != 0 {
		t.Errorf("with CRASHTIME: %v", ps)
	}
}

func TestLint(t *testing.T) {
	type want struct {
		line int
		rule string
		sev  Severity
		msg  string // substring
	}
	cases := []struct {
		text string
		want []want
	}{
		// D1: trailing junk, duplicates.
		{"SYMBOL(a)=ff \n", []want{{1, "D2", Fatal, "blanks"}}},
		{"OFFSET(a.b)=8 \n", []want{{1, "D2", Fatal, "trailing junk"}}},
		{"NUMBER(a)=8kB\n", []want{{1, "D2", Fatal, "not a decimal"}}},
		{"A=1\nA=1\n", []want{{2, "D1", Cosmetic, "same value"}}},
		{"A=1\nA=2\n", []want{{2, "D1", Degraded, "drgn the last"}}},
		{"FOO= bar\n", []want{{1, "D1", Cosmetic, "blanks"}}},
		{"FOO=\n", []want{{1, "D1", Cosmetic, "empty"}}},
		// D2: number bases per key family.
		{"SYMBOL(a)=0xff\n", []want{{1, "D2", Cosmetic, "0x prefix"}}},
		{"SYMBOL(a)=FF\n", []want{{1, "D2", Cosmetic, "uppercase"}}},
		{"SYMBOL(a)=0\n", []want{{1, "D2", Degraded, "ULONG_MAX"}}},
		{"SYMBOL(a)=ffffffffffffffff\n", []want{{1, "D2", Degraded, "ULONG_MAX"}}},
		{"SYMBOL(a)=1ffffffffffffffff\n", []want{{1, "D2", Fatal, "16 hex digits"}}},
		{"SYMBOL(a)=xyz\n", []want{{1, "D2", Fatal, "not a hex number"}}},
		// crash's dtol reads UNUSED (-1) for phys_base; makedumpfile's hex
		// fallback and drgn 0.0.27+ read it right.
		{"NUMBER(phys_base)=0x1000\n", []want{{1, "D2", Fatal, "crash 8.0.2 reads -1"}}},
		{"NUMBER(phys_base)=-0x1000000\n", []want{{1, "D2", Fatal, "crash 8.0.2 reads 1 "}}},
		{"NUMBER(KERNELPACMASK)=ffff\n", []want{{1, "D2", Cosmetic, "every consumer that reads it gets the kernel's value"}}}, // drgn reads it base 16
		{"NUMBER(phys_base)=1f000000\n", []want{{1, "D2", Fatal, "hex digits without 0x"}}},
		{"NUMBER(phys_base)=010\n", []want{{1, "D2", Fatal, "octal"}}},
		{"NUMBER(a)=-5\n", nil},
		{"NUMBER(a)=99999999999999999999\n", []want{{1, "D2", Fatal, "out of range"}}},
		{"OFFSET(a.b)=-5\n", []want{{1, "D2", Fatal, "negative"}}},
		{"SIZE(a)=\n", []want{{1, "D2", Fatal, "empty"}}},
		{"NUMBER(VMALLOC_START)=0xffffc90000000000\n", nil},
		{"NUMBER(VMALLOC_START)=123\n", []want{{1, "D2", Cosmetic, "0x%lx"}}},
		// Keys with their own formats.
		{"OSRELEASE=" + strings.Repeat("6", 65) + "\n", []want{{1, "D3", Fatal, "longer than the 64"}}},
		{"OSRELEASE=\n", []want{{1, "D3", Fatal, "empty"}}},
		{"PAGESIZE=4000\n", []want{{1, "D4", Fatal, "power of two"}}},
		{"PAGESIZE=0x1000\n", []want{{1, "D4", Fatal, "makedumpfile 1.7.2 rejects it"}}}, // no hex fallback for PAGESIZE
		{"BUILD-ID=xyz\n", []want{{1, "D13", Degraded, "hex digits"}}},
		{"BUILD-ID=D3D0\n", []want{{1, "D13", Cosmetic, "uppercase"}, {1, "D13", Cosmetic, "40 digits"}}},
		{"KERNELOFFSET=123\n", []want{{1, "D8", Degraded, "4 KiB"}}},
		{"CRASHTIME=soon\n", []want{{1, "D14", Cosmetic, "not a decimal"}}},
		// Key shapes.
		{"SYMBOL(a=1\n", []want{{1, "D1", Degraded, "malformed key"}}},
		{"SYMBOL()=1\n", []want{{1, "D1", Degraded, "malformed key"}}},
		{"SYMBOL(a)(b)=1\n", []want{{1, "D1", Degraded, "malformed key"}}},
		{"A)=1\n", []want{{1, "D1", Degraded, "unbalanced"}}},
		{"WHATEVER(a)=1\n", []want{{1, "D1", Cosmetic, "unknown key family"}}},
		// Kernel limits.
		{"SYMBOL(" + strings.Repeat("a", 60) + ")=ffffffff81000000\n", []want{{1, "kernel", Cosmetic, "0x50-byte buffer"}}},
		// x86_64 cross-key checks.
		{"PAGESIZE=8192\nSYMBOL(init_top_pgt)=ffffffff82000000\n", []want{{1, "D4", Fatal, "want 4096"}}},
		{"SYMBOL(swapper_pg_dir)=ffffffff82000000\nSYMBOL(init_top_pgt)=ffffffff83000000\n", []want{{2, "D5", Fatal, "drgn walks from the first"}}},
		{"SYMBOL(_stext)=ffffffffb5000000\nSYMBOL(init_top_pgt)=ffffffffb7010000\nKERNELOFFSET=34000000\n", nil},
		{"SYMBOL(_stext)=ffffffffb5000000\nSYMBOL(init_top_pgt)=ffffffffb7010000\nKERNELOFFSET=34001000\n",
			[]want{{3, "D8", Degraded, "2 MiB"}, {3, "D8", Cosmetic, "CONFIG_PHYSICAL_START"}}},
		{"SYMBOL(_stext)=ffffffff81000000\nSYMBOL(init_top_pgt)=ffffffffb7010000\nKERNELOFFSET=34000000\n", []want{{3, "D8", Fatal, "below __START_KERNEL_map"}}},
	}
	for _, c := range cases {
		ps := mustParse(t, []byte(c.text)).Lint()
		ok := len(ps) == len(c.want)
		for i := 0; ok && i < len(ps); i++ {
			w, p := c.want[i], ps[i]
			ok = p.Line == w.line && p.Rule == w.rule && p.Severity == w.sev && strings.Contains(p.Msg, w.msg)
		}
		if !ok {
			t.Errorf("%q:\n got %v\nwant %v", c.text, ps, c.want)
		}
	}
	long := mustParse(t, []byte(strings.Repeat("SYMBOL(abcdef)=ffffffff81000000\n", 130)))
	ps := long.Lint()
	if last := ps[len(ps)-1]; ps[0].Line != 0 || !strings.Contains(ps[0].Msg, "VMCOREINFO_BYTES") || last.Line != 130 {
		t.Errorf("long text: first %v, last %v", ps[0], last)
	}
	if s := ps[0].String(); s != "text: cosmetic (kernel): text is 4160 bytes, more than VMCOREINFO_BYTES (4096): the kernel would have cut it" {
		t.Errorf("String() = %q", s)
	}
}
