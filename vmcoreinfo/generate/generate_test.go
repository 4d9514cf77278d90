package generate

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kmem/kmemtest"
	"ldx/vmcoreinfo"
)

var kernels = []struct {
	name, path string
	// unknownWithoutDump are the keys only the running kernel knew.
	unknownWithoutDump []string
}{
	{"6.1 4-level", "debian-6.1.192-4level.txt", []string{"SYMBOL(mem_section)", "LENGTH(mem_section)", "NUMBER(MAX_PHYSMEM_BITS)",
		"NUMBER(phys_base)", "NUMBER(pgtable_l5_enabled)", "NUMBER(sme_mask)", "CRASHTIME"}},
	{"6.12 5-level", "debian-6.12.117-5level.txt", []string{"NUMBER(VMALLOC_START)", "SYMBOL(vmemmap)", "SYMBOL(mem_section)", "LENGTH(mem_section)",
		"NUMBER(MAX_PHYSMEM_BITS)", "NUMBER(phys_base)", "NUMBER(pgtable_l5_enabled)", "NUMBER(sme_mask)", "CRASHTIME"}},
}

// The kernel's own text is reproduced byte for byte from the vmlinux facts
// and the runtime values in memory: order, formats, derived values
// (MAX_PHYSMEM_BITS, LENGTH(mem_section), the 6.1 mapcount constants, PGTY
// shifts, node_online_map, KERNEL_IMAGE_SIZE).
func TestGenerateReproducesKernel(t *testing.T) {
	for _, k := range kernels {
		t.Run(k.name, func(t *testing.T) {
			f, rt, info := fakeKernel(t, k.path)
			res, err := Generate(f, rt)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(res.Text()), info.String(); got != want {
				t.Errorf("text differs:\n%s", lineDiff(want, got))
			}
			if len(res.Unknown) != 1 || res.Unknown[0].Key != "CRASHTIME" {
				t.Errorf("unknown = %v, want only CRASHTIME", res.Unknown)
			}
			if len(res.Warnings) != 0 {
				t.Errorf("warnings: %v", res.Warnings)
			}
			for _, l := range res.Lines {
				if l.Source == "" || l.Origin == "" {
					t.Errorf("%s has no source or origin", l.Key)
				}
			}
		})
	}
}

// Without a dump: link-time symbols, KERNELOFFSET=0 marked assumed, and
// the runtime keys listed, never written with placeholders.
func TestGenerateWithoutDump(t *testing.T) {
	for _, k := range kernels {
		t.Run(k.name, func(t *testing.T) {
			f, _, info := fakeKernel(t, k.path)
			res, err := Generate(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			var unk []string
			for _, u := range res.Unknown {
				unk = append(unk, u.Key)
				if u.Reason == "" || !u.Expected() {
					t.Errorf("%s: kind %s, reason %q: want an expected omission with a reason", u.Key, u.Kind, u.Reason)
				}
			}
			if !slices.Equal(unk, k.unknownWithoutDump) {
				t.Errorf("unknown = %v, want %v", unk, k.unknownWithoutDump)
			}
			ko, _ := info.KernelOffset()
			for _, l := range res.Lines {
				want, _ := info.Get(l.Key)
				switch {
				case l.Key == "KERNELOFFSET":
					want = "0"
					if l.Origin != Assumed {
						t.Errorf("KERNELOFFSET origin %s, want assumed", l.Origin)
					}
				case strings.HasPrefix(l.Key, "SYMBOL("):
					v, _ := info.Symbol(strings.TrimSuffix(strings.TrimPrefix(l.Key, "SYMBOL("), ")"))
					want = vmcoreinfo.FormatSymbol(v - ko)
				}
				if l.Value != want {
					t.Errorf("%s = %s, want %s", l.Key, l.Value, want)
				}
				if l.Origin == FromDump {
					t.Errorf("%s: origin dump without a dump", l.Key)
				}
			}
		})
	}
}

// Configuration and version conditions decide the key set from the
// vmlinux alone.
func TestGenerateConditions(t *testing.T) {
	const k61, k612 = "debian-6.1.192-4level.txt", "debian-6.12.117-5level.txt"
	tests := []struct {
		name    string
		kernel  string
		noDump  bool
		mutate  func(*fakeVmlinux, *Runtime)
		want    map[string]string // key → value ("" only: present)
		absent  []string
		unknown []string
		kind    OmitKind  // of every unknown key but CRASHTIME, when set
		after   [2]string // want[after[1]] follows after[0] directly
	}{
		{name: "!CONFIG_NUMA", kernel: k61, mutate: func(f *fakeVmlinux, _ *Runtime) {
			delete(f.symbols, "node_data")
			f.symbols["mem_map"] = 0xffffffff83000000
			f.symbols["contig_page_data"] = 0xffffffff83000100
		}, want: map[string]string{"SYMBOL(mem_map)": "ffffffffb6e00000", "SYMBOL(contig_page_data)": "ffffffffb6e00100"},
			absent: []string{"SYMBOL(node_data)", "LENGTH(node_data)"}, after: [2]string{"SYMBOL(vmap_area_list)", "SYMBOL(mem_map)"}},
		{name: "CONFIG_FLATMEM", kernel: k61, mutate: func(f *fakeVmlinux, _ *Runtime) {
			f.members["pglist_data.node_mem_map"] = f.member("x")
			m := f.members["pglist_data.node_mem_map"]
			m.Offset = 171568
			f.members["pglist_data.node_mem_map"] = m
		}, want: map[string]string{"OFFSET(pglist_data.node_mem_map)": "171568"}, after: [2]string{"OFFSET(pglist_data.nr_zones)", "OFFSET(pglist_data.node_mem_map)"}},
		{name: "absolute kallsyms", kernel: k61, mutate: func(f *fakeVmlinux, _ *Runtime) {
			delete(f.symbols, "kallsyms_offsets")
			f.symbols["kallsyms_addresses"] = 0xffffffff82100000
		}, want: map[string]string{"SYMBOL(kallsyms_addresses)": "ffffffffb5f00000"},
			absent: []string{"SYMBOL(kallsyms_offsets)", "SYMBOL(kallsyms_relative_base)"}},
		{name: "CONFIG_MEMORY_FAILURE on 6.1", kernel: k61, mutate: func(f *fakeVmlinux, _ *Runtime) { f.enums["PG_hwpoison"] = 22 },
			want: map[string]string{"NUMBER(PG_hwpoison)": "22"}, after: [2]string{"NUMBER(PG_slab)", "NUMBER(PG_hwpoison)"}},
		{name: "!CONFIG_HUGETLB_PAGE on 6.1", kernel: k61, mutate: func(f *fakeVmlinux, _ *Runtime) { delete(f.enums, "HUGETLB_PAGE_DTOR") },
			absent: []string{"NUMBER(HUGETLB_PAGE_DTOR)", "NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)"}},
		{name: "!CONFIG_X86_5LEVEL: 46 bits without a dump", kernel: k61, noDump: true, mutate: func(f *fakeVmlinux, _ *Runtime) { delete(f.symbols, "__pgtable_l5_enabled") },
			want:    map[string]string{"NUMBER(MAX_PHYSMEM_BITS)": "46", "NUMBER(pgtable_l5_enabled)": "0", "LENGTH(mem_section)": "2048"},
			unknown: []string{"SYMBOL(mem_section)", "NUMBER(phys_base)", "NUMBER(sme_mask)", "CRASHTIME"}},
		{name: "!CONFIG_AMD_MEM_ENCRYPT", kernel: k61, noDump: true, mutate: func(f *fakeVmlinux, _ *Runtime) { delete(f.symbols, "sme_me_mask") },
			want: map[string]string{"NUMBER(sme_mask)": "0"}},
		{name: "!CONFIG_DYNAMIC_MEMORY_LAYOUT: fixed bases", kernel: k612, noDump: true, mutate: func(f *fakeVmlinux, _ *Runtime) {
			delete(f.symbols, "vmalloc_base")
			delete(f.symbols, "vmemmap_base")
		}, want: map[string]string{"NUMBER(VMALLOC_START)": "0xffffc90000000000", "SYMBOL(vmemmap)": "ffffea0000000000"}},
		{name: "!SPARSEMEM_EXTREME: the array", kernel: k61, noDump: true, mutate: func(f *fakeVmlinux, _ *Runtime) {
			f.varTypes["mem_section"] = "array"
			f.arrays["mem_section"] = 524288
		}, want: map[string]string{"SYMBOL(mem_section)": "ffffffff83a00000", "LENGTH(mem_section)": "524288"}},
		{name: "5-level from memory", kernel: k61, mutate: func(f *fakeVmlinux, rt *Runtime) {
			rt.Mem.(*kmemtest.Mem).Map(f.symbols["__pgtable_l5_enabled"]+rt.KernelOffset, []byte{1, 0, 0, 0})
			rt.PgtableL5 = true
		}, want: map[string]string{"NUMBER(pgtable_l5_enabled)": "1", "NUMBER(MAX_PHYSMEM_BITS)": "52", "LENGTH(mem_section)": "131072"}},
		{name: "6.9: no vmemmap line", kernel: k612, mutate: func(f *fakeVmlinux, _ *Runtime) { f.release = "6.9.12-amd64" },
			absent: []string{"SYMBOL(vmemmap)"}},
		{name: "6.10 enum pagetype", kernel: k612, mutate: func(f *fakeVmlinux, _ *Runtime) {
			f.release = "6.10.11-amd64"
			for _, t := range []string{"buddy", "offline", "hugetlb", "slab"} {
				delete(f.enums, "PGTY_"+t)
			}
			f.enums["PG_buddy"], f.enums["PG_offline"], f.enums["PG_hugetlb"], f.enums["PG_slab"] = 0x40000000, 0x20000000, 0x04000000, 0x02000000
		}, want: map[string]string{"NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)": "-1073741825", "NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)": "-536870913",
			"NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)": "-67108865", "NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)": "-33554433"},
			absent: []string{"NUMBER(PG_slab)"}},
		{name: "before 5.10: printk keys not generated", kernel: k61, mutate: func(f *fakeVmlinux, _ *Runtime) { delete(f.symbols, "prb") },
			absent: []string{"SYMBOL(prb)", "SIZE(printk_ringbuffer)", "SIZE(atomic_long_t)"}, unknown: []string{"SYMBOL(log_buf)", "CRASHTIME"}, kind: Unsupported},
		{name: "a damaged vmlinux: the key is listed, the rest written", kernel: k61, mutate: func(f *fakeVmlinux, _ *Runtime) {
			f.fail["page.compound_dtor"] = errors.New("DWARF at .debug_info+0x1234: truncated")
			f.fail["zone"] = errors.New("DWARF at .debug_info+0x5678: truncated")
		}, want: map[string]string{"SIZE(page)": "64"}, absent: []string{"OFFSET(page.compound_dtor)", "SIZE(zone)"},
			unknown: []string{"SIZE(zone)", "OFFSET(page.compound_dtor)", "CRASHTIME"}, kind: NotInVmlinux},
		{name: "mem_section pointer unreadable", kernel: k61, mutate: func(f *fakeVmlinux, rt *Runtime) {
			rt.Mem.(*kmemtest.Mem).Unmap(f.symbols["mem_section"] + rt.KernelOffset)
		}, unknown: []string{"SYMBOL(mem_section)", "CRASHTIME"}, kind: DumpUnreadable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, rt, _ := fakeKernel(t, tc.kernel)
			tc.mutate(f, rt)
			if tc.noDump {
				rt = nil
			}
			res, err := Generate(f, rt)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				got, ok := res.Get(k)
				if !ok || got != v {
					t.Errorf("%s = %q (present %v), want %q", k, got, ok, v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := res.Get(k); ok {
					t.Errorf("%s generated, want absent", k)
				}
			}
			if tc.unknown != nil {
				var got []string
				for _, u := range res.Unknown {
					got = append(got, u.Key)
				}
				slices.Sort(got)
				want := slices.Sorted(slices.Values(tc.unknown))
				if !slices.Equal(got, want) {
					t.Errorf("unknown = %v, want %v (%v)", got, want, res.Unknown)
				}
			}
			for _, u := range res.Unknown {
				if tc.kind != "" && u.Key != "CRASHTIME" && u.Kind != tc.kind {
					t.Errorf("%s: kind %s, want %s (%s)", u.Key, u.Kind, tc.kind, u.Reason)
				}
			}
			if tc.after[0] != "" {
				i := slices.IndexFunc(res.Lines, func(l Line) bool { return l.Key == tc.after[0] })
				if i < 0 || i+1 >= len(res.Lines) || res.Lines[i+1].Key != tc.after[1] {
					t.Errorf("%s does not directly follow %s", tc.after[1], tc.after[0])
				}
			}
		})
	}
}

// Values the running kernel printed are read from its memory; when the
// addressing values given disagree, the memory wins and it is said.
func TestGenerateRuntimeDisagreement(t *testing.T) {
	f, rt, _ := fakeKernel(t, "debian-6.1.192-4level.txt")
	given := rt.PhysBase
	rt.PhysBase += 0x200000
	res, err := Generate(f, rt)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res.Get("NUMBER(phys_base)"); v != vmcoreinfo.FormatSigned(int64(given)) {
		t.Errorf("phys_base = %s, want the memory's %d", v, int64(given))
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "phys_base in the dump's memory") {
		t.Errorf("warnings = %v", res.Warnings)
	}
	// phys_base unreadable in the dump: the addressing value, said.
	rt.Mem.(*kmemtest.Mem).Unmap(f.symbols["phys_base"] + rt.KernelOffset)
	res, err = Generate(f, rt)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res.Get("NUMBER(phys_base)"); v != vmcoreinfo.FormatSigned(int64(given+0x200000)) {
		t.Errorf("phys_base unreadable = %s", v)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "reading phys_base at") {
		t.Errorf("warnings = %v", res.Warnings)
	}
	// Without memory, the given values are written.
	rt.Mem = nil
	res, err = Generate(f, rt)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res.Get("NUMBER(phys_base)"); v != vmcoreinfo.FormatSigned(int64(given+0x200000)) {
		t.Errorf("phys_base without memory = %s", v)
	}
	for _, k := range []string{"SYMBOL(mem_section)", "CRASHTIME"} {
		if !slices.ContainsFunc(res.Unknown, func(u Omitted) bool { return u.Key == k }) {
			t.Errorf("%s not unknown without memory: %v", k, res.Unknown)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	f, rt, _ := fakeKernel(t, "debian-6.1.192-4level.txt")
	f.buildID = nil
	if _, err := Generate(f, rt); err == nil || !strings.Contains(err.Error(), "build-id") {
		t.Errorf("no build-id: err = %v", err)
	}
	f, rt, _ = fakeKernel(t, "debian-6.1.192-4level.txt")
	f.release = ""
	if _, err := Generate(f, rt); err == nil || !strings.Contains(err.Error(), "release") {
		t.Errorf("no release: err = %v", err)
	}
	f, rt, _ = fakeKernel(t, "debian-6.1.192-4level.txt")
	f.release = "5.15.0-91-generic"
	res, err := Generate(f, rt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "5.15.0-91-generic may differ") {
		t.Errorf("unverified release: warnings = %v", res.Warnings)
	}
}

// Text cuts lines where vmcoreinfo_append_str's 80-byte buffer does and
// the whole at VMCOREINFO_BYTES.
func TestText(t *testing.T) {
	long := strings.Repeat("x", 100)
	r := &Result{Lines: []Line{{Key: "OSRELEASE", Value: long}, {Key: "PAGESIZE", Value: "4096"}}}
	want := ("OSRELEASE=" + long)[:79] + "PAGESIZE=4096\n"
	if got := string(r.Text()); got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	r = &Result{}
	for range 200 {
		r.Lines = append(r.Lines, Line{Key: "SYMBOL(a_symbol_name)", Value: "ffffffff81000000"})
	}
	if n := len(r.Text()); n != 4096 {
		t.Errorf("Text is %d bytes, want the kernel's 4096", n)
	}
}

func TestRuntimeFromDump(t *testing.T) {
	f, _, info := fakeKernel(t, "debian-6.12.117-5level.txt")
	rt, src, err := RuntimeFromDump(context.Background(), f, kmemtest.Mem{}, nil, info)
	if err != nil || src != FromVMCOREINFO {
		t.Fatalf("src %s err %v", src, err)
	}
	if ko, _ := info.KernelOffset(); rt.KernelOffset != ko || !rt.PgtableL5 || int64(rt.PhysBase) != -387973120 || rt.Mem == nil {
		t.Errorf("runtime = %+v", rt)
	}
	// Without KERNELOFFSET and phys_base the image is searched for, and
	// the vmlinux must say where its banner and tables are.
	partial, _ := vmcoreinfo.New(info.Lines()[:20]...)
	_, _, err = RuntimeFromDump(context.Background(), f, kmemtest.Mem{}, []elfcore.Range{{Start: 0, End: 1 << 20}}, partial)
	if err == nil || !strings.Contains(err.Error(), "linux_banner") {
		t.Errorf("partial VMCOREINFO, no banner symbol: err = %v", err)
	}
	f.symbols["linux_banner"] = 0xffffffff82000000
	f.symbols["level3_kernel_pgt"] = 0xffffffff82a15000
	f.data[0xffffffff82000000] = append([]byte("Linux version 6.12.117+deb12-cloud-amd64 (debian-kernel@lists.debian.org)\n"), make([]byte, 64)...) // .rodata goes on
	_, _, err = RuntimeFromDump(context.Background(), f, kmemtest.Mem{}, []elfcore.Range{{Start: 0, End: 1 << 20}}, partial)
	if err == nil || !strings.Contains(err.Error(), "lacks KERNELOFFSET") || !strings.Contains(err.Error(), "nowhere in the dump's RAM") {
		t.Errorf("banner not in RAM: err = %v", err)
	}
}

// lineDiff names the first lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)) && b.Len() < 2000; i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			b.WriteString("kernel:    " + a + "\ngenerated: " + c + "\n")
		}
	}
	return b.String()
}
