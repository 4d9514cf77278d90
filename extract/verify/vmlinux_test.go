package verify

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"ldx/elfcore"
	"ldx/elfcore/vmlinux"
	"ldx/vmcoreinfo"
)

// TestVmlinuxChecks runs V1–V7 against the DWARF fixture of
// elfcore/vmlinux (fixture.c): a VMCOREINFO that tells the truth about it
// passes, and each lie is named by its check.
func TestVmlinuxChecks(t *testing.T) {
	v, err := vmlinux.Open("../../elfcore/vmlinux/testdata/fixture-dwarf5.elf")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	const ko = 0x1e000000
	uts, _ := v.Symbol("init_uts_ns")
	task, _ := v.Symbol("init_task")
	stext, _ := v.Symbol("_stext")
	good := []string{
		"OSRELEASE=6.1.0-fixture",
		"BUILD-ID=" + hex.EncodeToString(v.BuildID()),
		"PAGESIZE=4096",
		fmt.Sprintf("SYMBOL(init_uts_ns)=%x", uts+ko),
		"OFFSET(uts_namespace.name)=4",
		fmt.Sprintf("SYMBOL(init_task)=%x", task+ko),
		fmt.Sprintf("SYMBOL(_stext)=%x", stext+ko),
		"SIZE(page)=40",
		"SIZE(atomic_long_t)=8",
		"OFFSET(page.compound_dtor)=16",
		"OFFSET(printk_info.caller_id)=12",
		"OFFSET(atomic_long_t.counter)=0",
		"LENGTH(zone.free_area)=11",
		"LENGTH(free_area.free_list)=5",
		"LENGTH(node_data)=64",
		"LENGTH(mem_section)=2048",
		"NUMBER(PG_lru)=4",
		"NUMBER(PG_head_mask)=65536",
		"NUMBER(phys_base)=0",
		fmt.Sprintf("KERNELOFFSET=%x", ko),
	}
	cases := []struct {
		name    string
		replace map[string]string // key → new line ("" deletes)
		fail    string            // the check that must fail ("" none)
		in      string            // and a part of what it says
	}{
		{"truthful", nil, "", ""},
		{"other build", map[string]string{"BUILD-ID": "BUILD-ID=0123456789abcdef0123456789abcdef01234567"}, "V1", "0123456789abcdef"},
		{"other release", map[string]string{"OSRELEASE": "OSRELEASE=6.12.117-cloud-amd64"}, "V2", "6.12.117"},
		{"symbol not relocated", map[string]string{"SYMBOL(init_task)": fmt.Sprintf("SYMBOL(init_task)=%x", task)}, "V3", "SYMBOL(init_task)"},
		{"no KERNELOFFSET", map[string]string{"KERNELOFFSET": "", "SYMBOL(init_task)": fmt.Sprintf("SYMBOL(init_task)=%x", task+ko+0x200000)}, "V3", "no KERNELOFFSET"},
		{"offset", map[string]string{"OFFSET(page.compound_dtor)": "OFFSET(page.compound_dtor)=24"}, "V4", "DWARF says 16"},
		{"member the build lacks", map[string]string{"OFFSET(atomic_long_t.counter)": "OFFSET(page.compound_order)=17"}, "V4", "page.compound_order"},
		{"size", map[string]string{"SIZE(page)": "SIZE(page)=64"}, "V5", "SIZE(page)=64, DWARF says 40"},
		{"member array length", map[string]string{"LENGTH(zone.free_area)": "LENGTH(zone.free_area)=10"}, "V6", "DWARF says 11"},
		{"variable array length", map[string]string{"LENGTH(node_data)": "LENGTH(node_data)=1024"}, "V6", "DWARF says 64"},
		{"enumerator", map[string]string{"NUMBER(PG_lru)": "NUMBER(PG_lru)=5"}, "V7", "DWARF says 4"},
		{"head mask", map[string]string{"NUMBER(PG_head_mask)": "NUMBER(PG_head_mask)=32768"}, "V7", "DWARF says 65536"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			for _, l := range good {
				key, _, _ := strings.Cut(l, "=")
				if r, ok := tc.replace[key]; ok {
					if r != "" {
						lines = append(lines, r)
					}
					continue
				}
				lines = append(lines, l)
			}
			text := []byte(strings.Join(lines, "\n") + "\n")
			info, err := vmcoreinfo.Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			f := &facts{input: input{ctx: context.Background(), path: "test", opt: Options{Vmlinux: v}}, info: info,
				vmci: &elfcore.Note{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: text, Off: 0x1000}}
			rep := &Report{Checks: vmlinuxChecks(f)}
			for _, id := range []string{"V1", "V2", "V3", "V4", "V5", "V6", "V7"} {
				r := rep.Check(ID(id))
				if r == nil {
					t.Fatalf("%s not reported", id)
				}
				if id == tc.fail {
					if r.Status != Fail || !strings.Contains(r.Found, tc.in) {
						t.Errorf("%s: %s %q, want a failure saying %q", id, r.Status, r.Found, tc.in)
					}
					if r.Offset < 0x1000 {
						t.Errorf("%s: offset %d does not locate the line in the note", id, r.Offset)
					}
				} else if r.Status != Pass {
					t.Errorf("%s: %s: %s", id, r.Status, r.Found)
				}
			}
			if tc.fail == "" {
				if r := rep.Check("V6"); !strings.Contains(r.Found, "mem_section") {
					t.Errorf("V6 does not list LENGTH(mem_section) (a macro) as unchecked: %s", r.Found)
				}
			}
		})
	}
}
