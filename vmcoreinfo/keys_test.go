package vmcoreinfo

import (
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	cases := map[string]Version{
		"6.2.15-100.fc36.x86_64": {6, 2, 15},
		"6.1.0-13-amd64":         {6, 1, 0},
		"5.10":                   {5, 10, 0},
		"6.9-rc1":                {6, 9, 0},
		"4.19.0+":                {4, 19, 0},
	}
	for s, want := range cases {
		if v, ok := ParseVersion(s); !ok || v != want {
			t.Errorf("ParseVersion(%q) = %v %v, want %v", s, v, ok, want)
		}
	}
	for _, s := range []string{"", "6", "x.1", "6.x", "99999999.1"} {
		if v, ok := ParseVersion(s); ok {
			t.Errorf("ParseVersion(%q) = %v, want failure", s, v)
		}
	}
	if !(Version{5, 9, 0}).Less(Version{5, 10, 0}) || (Version{6, 2, 15}).Less(Version{6, 2, 1}) {
		t.Error("Less")
	}
}

func TestRequirements(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Requirements() {
		if seen[r.Key] {
			t.Errorf("duplicate requirement %s", r.Key)
		}
		seen[r.Key] = true
		if r.Consumers == 0 || r.Severity == 0 || r.Feature == "" || r.Rule == "" {
			t.Errorf("incomplete requirement %+v", r)
		}
		if err := ValidLine(r.Key, "0"); err != nil {
			t.Errorf("requirement key %s: %v", r.Key, err)
		}
	}
	// The keys package verify's checklist names explicitly.
	for _, k := range []string{KeyOSRelease, KeyPageSize, KeyBuildID, KeyKernelOffset, KeySwapperPgDir, KeyInitTopPgt,
		KeyPhysBase, KeyPgtableL5, KeyStext, KeyInitUtsNs, KeyUtsNamespaceName, KeyMemSection, "LENGTH(mem_section)",
		"OFFSET(page.compound_head)", KeyPrb, "OFFSET(prb_desc_ring.infos)", "OFFSET(atomic_long_t.counter)"} {
		if !seen[k] {
			t.Errorf("no requirement for %s", k)
		}
	}
	drgn := RequiredBy(Drgn)
	if len(drgn) == 0 || drgn[0].Key != KeyOSRelease {
		t.Errorf("RequiredBy(Drgn) = %v", drgn)
	}
	for _, r := range drgn {
		if r.Consumers&Drgn == 0 {
			t.Errorf("RequiredBy(Drgn) includes %v", r)
		}
	}
	if s := (Makedumpfile | VmcoreDmesg).String(); s != "makedumpfile,vmcore-dmesg" {
		t.Errorf("Consumer.String = %q", s)
	}
	r := Requirements()[0]
	r.Key = "changed"
	if Requirements()[0].Key == "changed" {
		t.Error("Requirements exposes the table")
	}
}

func TestMissing(t *testing.T) {
	in := mustParse(t, sample(t))
	if m := in.Missing(AllConsumers); len(m) != 0 {
		t.Errorf("the real 6.2 text misses %v", m)
	}
	// A 5.4 kernel is not expected to have BUILD-ID or the lockless printk keys.
	old := mustParse(t, []byte("OSRELEASE=5.4.0\nPAGESIZE=4096\n"))
	for _, r := range old.Missing(AllConsumers) {
		if r.Key == KeyBuildID || r.Key == KeyPrb {
			t.Errorf("5.4 kernel: %s reported missing", r.Key)
		}
	}
	// Without OSRELEASE every requirement counts; alternatives satisfy.
	none := mustParse(t, []byte("SYMBOL(init_level4_pgt)=ffffffff82000000\nNUMBER(PG_buddy)=7\n"))
	var keys []string
	for _, r := range none.Missing(Makedumpfile) {
		keys = append(keys, r.Key)
	}
	joined := " " + strings.Join(keys, " ") + " "
	for _, k := range []string{KeyOSRelease, KeyPrb, "SIZE(latched_seq)"} {
		if !strings.Contains(joined, " "+k+" ") {
			t.Errorf("missing %s not reported: %v", k, keys)
		}
	}
	for _, k := range []string{KeyInitTopPgt, "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", KeySwapperPgDir} {
		if strings.Contains(joined, " "+k+" ") {
			t.Errorf("%s reported missing: %v", k, keys)
		}
	}
}

func TestStrings(t *testing.T) {
	_, err := Parse([]byte("A=1\nB"))
	if err.Error() != "vmcoreinfo: line 2 (offset 5): text ends inside a line (no final newline)" {
		t.Errorf("FormatError: %q", err)
	}
	if s := ErrNUL.String() + "|" + ErrKind(99).String(); s != "NUL byte|ErrKind(99)" {
		t.Errorf("ErrKind: %q", s)
	}
	r := Requirements()[4]
	if s := r.String(); s != "SYMBOL(init_top_pgt) or SYMBOL(init_level4_pgt) (fatal, makedumpfile,libkdumpfile: page-table walks (makedumpfile vtop4_x86_64, libkdumpfile root table))" {
		t.Errorf("Requirement: %q", s)
	}
	if s := (Version{6, 2, 15}).String(); s != "6.2.15" {
		t.Errorf("Version: %q", s)
	}
	_, d := ParseLenient([]byte("A=1\n"))
	if d.String() != "no damage" || d.Truncated() {
		t.Errorf("clean damage: %v", d)
	}
}

// TestSlabPageType: 6.10 replaced NUMBER(PG_slab) by a page type; a kernel
// that emits NUMBER(PAGE_SLAB_MAPCOUNT_VALUE) instead is not missing it.
func TestSlabPageType(t *testing.T) {
	in := mustParse(t, sample(t))
	in.Delete("NUMBER(PG_slab)")
	isMissing := func() bool {
		for _, r := range in.Missing(Makedumpfile) {
			if r.Key == "NUMBER(PG_slab)" {
				return true
			}
		}
		return false
	}
	if !isMissing() {
		t.Fatal("PG_slab removed but not reported missing")
	}
	in.Append("NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)", "-1000")
	if isMissing() {
		t.Error("PAGE_SLAB_MAPCOUNT_VALUE does not stand in for PG_slab")
	}
}
