package generate

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"ldx/elfcore/kernel/x86"
)

// emission is one line the kernel appends to its VMCOREINFO.
type emission struct {
	key string
	// source is the kernel code the line mirrors.
	source string
	// when decides whether this kernel emits the line at all; nil means
	// every kernel of the versions covered does.
	when func(*gen) (bool, error)
	// value computes the value as the kernel prints it.
	value func(*gen) (string, Origin, error)
}

// Kernel sources the table mirrors, in Debian's linux-source-6.1
// (6.1.192) and linux-source-6.12 (6.12.117): crash_save_vmcoreinfo_init
// at kernel/crash_core.c:401 (6.1) and kernel/vmcore_info.c:121 (6.12),
// log_buf_vmcoreinfo_setup at kernel/printk/printk.c:913 (6.1) and :974
// (6.12), arch_crash_save_vmcoreinfo at arch/x86/kernel/crash_core_64.c:8
// (6.1) and vmcore_info_64.c:8 (6.12). The VMCOREINFO_* macros are in
// include/linux/crash_core.h (6.1) and vmcore_info.h (6.12): SYMBOL "%lx",
// SIZE/OFFSET/LENGTH "%lu", NUMBER "%ld".
const (
	src61     = "kernel/crash_core.c (6.1) "
	src612    = "kernel/vmcore_info.c (6.12) "
	srcBoth   = "kernel/crash_core.c:crash_save_vmcoreinfo_init (6.1), kernel/vmcore_info.c (6.12): "
	srcPrintk = "kernel/printk/printk.c:log_buf_vmcoreinfo_setup: "
	srcX86    = "arch/x86/kernel/crash_core_64.c (6.1), vmcore_info_64.c (6.12) arch_crash_save_vmcoreinfo: "
)

// table is the kernel's emission sequence: crash_save_vmcoreinfo_init,
// with log_buf_vmcoreinfo_setup and arch_crash_save_vmcoreinfo where it
// calls them. Lines that differ between versions or configurations carry
// their condition.
func table() []emission {
	return []emission{
		{key: "OSRELEASE", source: srcBoth + "VMCOREINFO_OSRELEASE(init_uts_ns.name.release)", value: osRelease},
		{key: "BUILD-ID", source: srcBoth + "VMCOREINFO_BUILD_ID(): \"%20phN\" of vmlinux_build_id", value: buildID},
		{key: "PAGESIZE", source: srcBoth + "VMCOREINFO_PAGESIZE(PAGE_SIZE)", value: constant(pageSize)},
		sym("init_uts_ns", srcBoth+"VMCOREINFO_SYMBOL(init_uts_ns)"),
		offset("uts_namespace", "name", srcBoth+"VMCOREINFO_OFFSET(uts_namespace, name)"),
		// include/linux/nodemask.h: #define node_online_map node_states[N_ONLINE].
		{key: "SYMBOL(node_online_map)", source: srcBoth + "VMCOREINFO_SYMBOL(node_online_map): &node_states[N_ONLINE]", value: nodeOnlineMap},
		// x86_64 #defines swapper_pg_dir as init_top_pgt; the macro
		// stringifies the name before expansion.
		{key: "SYMBOL(swapper_pg_dir)", source: srcBoth + "VMCOREINFO_SYMBOL_ARRAY(swapper_pg_dir) (CONFIG_MMU); swapper_pg_dir is init_top_pgt on x86_64",
			value: symValue("swapper_pg_dir", "init_top_pgt")},
		sym("_stext", srcBoth+"VMCOREINFO_SYMBOL(_stext)"),
		// Until 6.8 the vmalloc base was found through vmap_area_list;
		// 6.9 removed the list and prints VMALLOC_START in its place
		// (commit "mm/vmalloc: remove vmap_area_list").
		withWhen(sym("vmap_area_list", src61+"VMCOREINFO_SYMBOL(vmap_area_list), up to 6.8"), ifSymbol("vmap_area_list")),
		{key: "NUMBER(VMALLOC_START)", source: src612 + "vmcoreinfo_append_str(\"NUMBER(VMALLOC_START)=0x%lx\\n\", VMALLOC_START), 6.9+",
			when: not(ifSymbol("vmap_area_list")), value: vmallocStart},
		// !CONFIG_NUMA: contig_page_data exists only then.
		withWhen(sym("mem_map", srcBoth+"VMCOREINFO_SYMBOL(mem_map) (!CONFIG_NUMA)"), ifSymbol("contig_page_data")),
		withWhen(sym("contig_page_data", srcBoth+"VMCOREINFO_SYMBOL(contig_page_data) (!CONFIG_NUMA)"), ifSymbol("contig_page_data")),
		// Added after the 6.9 split into vmcore_info.c, in 6.10 as far as
		// checked (Huang Shijie, "crash: export vmemmap when
		// CONFIG_SPARSEMEM_VMEMMAP is enabled"); vmemmap_populate exists
		// only with CONFIG_SPARSEMEM_VMEMMAP.
		{key: "SYMBOL(vmemmap)", source: src612 + "VMCOREINFO_SYMBOL_ARRAY(vmemmap) (CONFIG_SPARSEMEM_VMEMMAP), 6.10+",
			when: allOf(ifRelease(6, 10), ifSymbol("vmemmap_populate")), value: vmemmap},
		// CONFIG_SPARSEMEM block.
		{key: "SYMBOL(mem_section)", source: srcBoth + "VMCOREINFO_SYMBOL_ARRAY(mem_section) (CONFIG_SPARSEMEM): the pointer's value with SPARSEMEM_EXTREME",
			when: ifSymbol("mem_section"), value: memSection},
		{key: "LENGTH(mem_section)", source: srcBoth + "VMCOREINFO_LENGTH(mem_section, NR_SECTION_ROOTS) (CONFIG_SPARSEMEM)",
			when: ifSymbol("mem_section"), value: nrSectionRoots},
		withWhen(size("mem_section", srcBoth+"VMCOREINFO_STRUCT_SIZE(mem_section) (CONFIG_SPARSEMEM)"), ifSymbol("mem_section")),
		withWhen(offset("mem_section", "section_mem_map", srcBoth+"VMCOREINFO_OFFSET(mem_section, section_mem_map) (CONFIG_SPARSEMEM)"), ifSymbol("mem_section")),
		{key: "NUMBER(SECTION_SIZE_BITS)", source: srcBoth + "VMCOREINFO_NUMBER(SECTION_SIZE_BITS); 27 in arch/x86/include/asm/sparsemem.h",
			when: ifSymbol("mem_section"), value: constant(sectionSizeBits)},
		{key: "NUMBER(MAX_PHYSMEM_BITS)", source: srcBoth + "VMCOREINFO_NUMBER(MAX_PHYSMEM_BITS); (pgtable_l5_enabled() ? 52 : 46) in arch/x86/include/asm/sparsemem.h",
			when: ifSymbol("mem_section"), value: func(g *gen) (string, Origin, error) {
				n, o, err := g.maxPhysmemBits()
				return strconv.FormatInt(n, 10), o, err
			}},
		size("page", srcBoth+"VMCOREINFO_STRUCT_SIZE(page)"),
		size("pglist_data", srcBoth+"VMCOREINFO_STRUCT_SIZE(pglist_data)"),
		size("zone", srcBoth+"VMCOREINFO_STRUCT_SIZE(zone)"),
		size("free_area", srcBoth+"VMCOREINFO_STRUCT_SIZE(free_area)"),
		size("list_head", srcBoth+"VMCOREINFO_STRUCT_SIZE(list_head)"),
		size("nodemask_t", srcBoth+"VMCOREINFO_SIZE(nodemask_t)"),
		offset("page", "flags", srcBoth+"VMCOREINFO_OFFSET(page, flags)"),
		offset("page", "_refcount", srcBoth+"VMCOREINFO_OFFSET(page, _refcount)"),
		offset("page", "mapping", srcBoth+"VMCOREINFO_OFFSET(page, mapping)"),
		offset("page", "lru", srcBoth+"VMCOREINFO_OFFSET(page, lru)"),
		offset("page", "_mapcount", srcBoth+"VMCOREINFO_OFFSET(page, _mapcount)"),
		offset("page", "private", srcBoth+"VMCOREINFO_OFFSET(page, private)"),
		// The compound page destructor and order left struct page for
		// the folio between 6.1 and 6.12; the lines went with the members.
		withWhen(offset("page", "compound_dtor", src61+"VMCOREINFO_OFFSET(page, compound_dtor), while struct page has it"), ifMember("page", "compound_dtor")),
		withWhen(offset("page", "compound_order", src61+"VMCOREINFO_OFFSET(page, compound_order), while struct page has it"), ifMember("page", "compound_order")),
		offset("page", "compound_head", srcBoth+"VMCOREINFO_OFFSET(page, compound_head)"),
		offset("pglist_data", "node_zones", srcBoth+"VMCOREINFO_OFFSET(pglist_data, node_zones)"),
		offset("pglist_data", "nr_zones", srcBoth+"VMCOREINFO_OFFSET(pglist_data, nr_zones)"),
		// The member exists only with CONFIG_FLATMEM, the line's condition.
		withWhen(offset("pglist_data", "node_mem_map", srcBoth+"VMCOREINFO_OFFSET(pglist_data, node_mem_map) (CONFIG_FLATMEM)"), ifMember("pglist_data", "node_mem_map")),
		offset("pglist_data", "node_start_pfn", srcBoth+"VMCOREINFO_OFFSET(pglist_data, node_start_pfn)"),
		offset("pglist_data", "node_spanned_pages", srcBoth+"VMCOREINFO_OFFSET(pglist_data, node_spanned_pages)"),
		offset("pglist_data", "node_id", srcBoth+"VMCOREINFO_OFFSET(pglist_data, node_id)"),
		offset("zone", "free_area", srcBoth+"VMCOREINFO_OFFSET(zone, free_area)"),
		offset("zone", "vm_stat", srcBoth+"VMCOREINFO_OFFSET(zone, vm_stat)"),
		offset("zone", "spanned_pages", srcBoth+"VMCOREINFO_OFFSET(zone, spanned_pages)"),
		offset("free_area", "free_list", srcBoth+"VMCOREINFO_OFFSET(free_area, free_list)"),
		offset("list_head", "next", srcBoth+"VMCOREINFO_OFFSET(list_head, next)"),
		offset("list_head", "prev", srcBoth+"VMCOREINFO_OFFSET(list_head, prev)"),
		withWhen(offset("vmap_area", "va_start", src61+"VMCOREINFO_OFFSET(vmap_area, va_start), up to 6.8"), ifSymbol("vmap_area_list")),
		withWhen(offset("vmap_area", "list", src61+"VMCOREINFO_OFFSET(vmap_area, list), up to 6.8"), ifSymbol("vmap_area_list")),
		// MAX_ORDER (6.1), MAX_ORDER + 1 (6.4 on), NR_PAGE_ORDERS (6.12):
		// always the length of zone.free_area.
		length("zone", "free_area", srcBoth+"VMCOREINFO_LENGTH(zone.free_area, MAX_ORDER / NR_PAGE_ORDERS)"),

		// log_buf_vmcoreinfo_setup(), the lockless ring buffer (5.10+).
		withWhen(sym("prb", srcPrintk+"VMCOREINFO_SYMBOL(prb)"), ifSymbol("prb")),
		withWhen(sym("printk_rb_static", srcPrintk+"VMCOREINFO_SYMBOL(printk_rb_static)"), ifSymbol("prb")),
		withWhen(sym("clear_seq", srcPrintk+"VMCOREINFO_SYMBOL(clear_seq)"), ifSymbol("prb")),
		printkSize("printk_ringbuffer"),
		printkOffset("printk_ringbuffer", "desc_ring"),
		printkOffset("printk_ringbuffer", "text_data_ring"),
		printkOffset("printk_ringbuffer", "fail"),
		printkSize("prb_desc_ring"),
		printkOffset("prb_desc_ring", "count_bits"),
		printkOffset("prb_desc_ring", "descs"),
		printkOffset("prb_desc_ring", "infos"),
		printkOffset("prb_desc_ring", "head_id"),
		printkOffset("prb_desc_ring", "tail_id"),
		printkSize("prb_desc"),
		printkOffset("prb_desc", "state_var"),
		printkOffset("prb_desc", "text_blk_lpos"),
		printkSize("prb_data_blk_lpos"),
		printkOffset("prb_data_blk_lpos", "begin"),
		printkOffset("prb_data_blk_lpos", "next"),
		printkSize("printk_info"),
		printkOffset("printk_info", "seq"),
		printkOffset("printk_info", "ts_nsec"),
		printkOffset("printk_info", "text_len"),
		printkOffset("printk_info", "caller_id"),
		printkOffset("printk_info", "dev_info"),
		printkSize("dev_printk_info"),
		printkOffset("dev_printk_info", "subsystem"),
		withWhen(memberSize("printk_info_subsystem", "dev_printk_info", "subsystem", srcPrintk+"VMCOREINFO_LENGTH(printk_info_subsystem, sizeof(dev_info->subsystem))"), ifSymbol("prb")),
		printkOffset("dev_printk_info", "device"),
		withWhen(memberSize("printk_info_device", "dev_printk_info", "device", srcPrintk+"VMCOREINFO_LENGTH(printk_info_device, sizeof(dev_info->device))"), ifSymbol("prb")),
		printkSize("prb_data_ring"),
		printkOffset("prb_data_ring", "size_bits"),
		printkOffset("prb_data_ring", "data"),
		printkOffset("prb_data_ring", "head_lpos"),
		printkOffset("prb_data_ring", "tail_lpos"),
		withWhen(size("atomic_long_t", srcPrintk+"VMCOREINFO_SIZE(atomic_long_t)"), ifSymbol("prb")),
		withWhen(offset("atomic_long_t", "counter", srcPrintk+"VMCOREINFO_TYPE_OFFSET(atomic_long_t, counter)"), ifSymbol("prb")),
		// latched_seq came with 5.13's clear_seq/console_seq rework.
		withWhen(size("latched_seq", srcPrintk+"VMCOREINFO_STRUCT_SIZE(latched_seq), 5.13+"), allOf(ifSymbol("prb"), ifStruct("latched_seq"))),
		withWhen(offset("latched_seq", "val", srcPrintk+"VMCOREINFO_OFFSET(latched_seq, val), 5.13+"), allOf(ifSymbol("prb"), ifStruct("latched_seq"))),
		{key: "SYMBOL(log_buf)", source: srcPrintk + "the log_buf keys of kernels before 5.10",
			when: not(ifSymbol("prb")), value: func(*gen) (string, Origin, error) {
				return "", "", unknown(Unsupported, "this kernel predates the 5.10 printk ring buffer; its log_buf keys are not generated")
			}},

		length("free_area", "free_list", srcBoth+"VMCOREINFO_LENGTH(free_area.free_list, MIGRATE_TYPES)"),
		enum("NR_FREE_PAGES", srcBoth+"VMCOREINFO_NUMBER(NR_FREE_PAGES)"),
		enum("PG_lru", srcBoth+"VMCOREINFO_NUMBER(PG_lru)"),
		enum("PG_private", srcBoth+"VMCOREINFO_NUMBER(PG_private)"),
		enum("PG_swapcache", srcBoth+"VMCOREINFO_NUMBER(PG_swapcache)"),
		enum("PG_swapbacked", srcBoth+"VMCOREINFO_NUMBER(PG_swapbacked)"),
		// Slab pages became a page type between 6.1 and 6.12 (6.10):
		// NUMBER(PG_slab) while
		// PG_slab is a page flag (enum pageflags, a bit number below 64),
		// PAGE_SLAB_MAPCOUNT_VALUE after.
		withWhen(enum("PG_slab", src61+"VMCOREINFO_NUMBER(PG_slab), while PG_slab is a page flag"), pageFlag("PG_slab")),
		{key: "NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)", source: src612 + "#define PAGE_SLAB_MAPCOUNT_VALUE (PGTY_slab << 24) (6.10: ~PG_slab)",
			when: pageType("slab"), value: mapcount("slab")},
		withWhen(enum("PG_hwpoison", srcBoth+"VMCOREINFO_NUMBER(PG_hwpoison) (CONFIG_MEMORY_FAILURE, which alone defines the flag)"), ifEnum("PG_hwpoison")),
		{key: "NUMBER(PG_head_mask)", source: srcBoth + "VMCOREINFO_NUMBER(PG_head_mask): 1UL << PG_head", value: func(g *gen) (string, Origin, error) {
			v, err := g.v.Enum("PG_head")
			if err != nil {
				return "", "", err
			}
			return strconv.FormatInt(int64(uint64(1)<<uint(v&63)), 10), FromVmlinux, nil
		}},
		{key: "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", source: srcBoth + "#define PAGE_BUDDY_MAPCOUNT_VALUE (~PG_buddy) (6.1: PG_buddy 0x80 in include/linux/page-flags.h), (PGTY_buddy << 24) (6.12)",
			value: mapcount("buddy")},
		// CONFIG_HUGETLB_PAGE alone defines HUGETLB_PAGE_DTOR in enum
		// compound_dtor_id (include/linux/mm.h, 6.1).
		withWhen(enum("HUGETLB_PAGE_DTOR", src61+"VMCOREINFO_NUMBER(HUGETLB_PAGE_DTOR) (CONFIG_HUGETLB_PAGE)"), ifEnum("HUGETLB_PAGE_DTOR")),
		{key: "NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)", source: src612 + "#define PAGE_HUGETLB_MAPCOUNT_VALUE (PGTY_hugetlb << 24)",
			when: pageType("hugetlb"), value: mapcount("hugetlb")},
		// 6.1 prints it inside #ifdef CONFIG_HUGETLB_PAGE; 6.12 always.
		{key: "NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)", source: srcBoth + "#define PAGE_OFFLINE_MAPCOUNT_VALUE (~PG_offline) (6.1, under CONFIG_HUGETLB_PAGE: PG_offline 0x100), (PGTY_offline << 24) (6.12)",
			when: anyOf(pageType("offline"), ifEnum("HUGETLB_PAGE_DTOR")), value: mapcount("offline")},

		// CONFIG_KALLSYMS; CONFIG_KALLSYMS_BASE_RELATIVE (no longer optional in 6.12)
		// chooses kallsyms_offsets/relative_base over kallsyms_addresses.
		withWhen(sym("kallsyms_names", srcBoth+"VMCOREINFO_SYMBOL(kallsyms_names) (CONFIG_KALLSYMS)"), ifSymbol("kallsyms_names")),
		withWhen(sym("kallsyms_num_syms", srcBoth+"VMCOREINFO_SYMBOL(kallsyms_num_syms) (CONFIG_KALLSYMS)"), ifSymbol("kallsyms_names")),
		withWhen(sym("kallsyms_token_table", srcBoth+"VMCOREINFO_SYMBOL(kallsyms_token_table) (CONFIG_KALLSYMS)"), ifSymbol("kallsyms_names")),
		withWhen(sym("kallsyms_token_index", srcBoth+"VMCOREINFO_SYMBOL(kallsyms_token_index) (CONFIG_KALLSYMS)"), ifSymbol("kallsyms_names")),
		withWhen(sym("kallsyms_offsets", srcBoth+"VMCOREINFO_SYMBOL(kallsyms_offsets) (CONFIG_KALLSYMS_BASE_RELATIVE)"), allOf(ifSymbol("kallsyms_names"), ifSymbol("kallsyms_offsets"))),
		withWhen(sym("kallsyms_relative_base", srcBoth+"VMCOREINFO_SYMBOL(kallsyms_relative_base) (CONFIG_KALLSYMS_BASE_RELATIVE)"), allOf(ifSymbol("kallsyms_names"), ifSymbol("kallsyms_offsets"))),
		withWhen(sym("kallsyms_addresses", src61+"VMCOREINFO_SYMBOL(kallsyms_addresses) (!CONFIG_KALLSYMS_BASE_RELATIVE)"), allOf(ifSymbol("kallsyms_names"), not(ifSymbol("kallsyms_offsets")))),

		// arch_crash_save_vmcoreinfo(), x86_64.
		{key: "NUMBER(phys_base)", source: srcX86 + "VMCOREINFO_NUMBER(phys_base)", value: physBase},
		sym("init_top_pgt", srcX86+"VMCOREINFO_SYMBOL(init_top_pgt)"),
		{key: "NUMBER(pgtable_l5_enabled)", source: srcX86 + "\"NUMBER(pgtable_l5_enabled)=%d\", pgtable_l5_enabled()", value: func(g *gen) (string, Origin, error) {
			l5, o, err := g.pgtableL5()
			if l5 {
				return "1", o, err
			}
			return "0", o, err
		}},
		// CONFIG_NUMA: node_data exists only then.
		withWhen(sym("node_data", srcX86+"VMCOREINFO_SYMBOL(node_data) (CONFIG_NUMA)"), ifSymbol("node_data")),
		{key: "LENGTH(node_data)", source: srcX86 + "VMCOREINFO_LENGTH(node_data, MAX_NUMNODES) (CONFIG_NUMA)", when: ifSymbol("node_data"),
			value: func(g *gen) (string, Origin, error) {
				n, err := g.v.VarArrayLen("node_data")
				return strconv.FormatInt(n, 10), FromVmlinux, err
			}},
		{key: "KERNELOFFSET", source: srcX86 + "\"KERNELOFFSET=%lx\", kaslr_offset()", value: func(g *gen) (string, Origin, error) {
			if g.rt == nil {
				return "0", Assumed, nil
			}
			return strconv.FormatUint(g.rt.KernelOffset, 16), FromDump, nil
		}},
		{key: "NUMBER(KERNEL_IMAGE_SIZE)", source: srcX86 + "VMCOREINFO_NUMBER(KERNEL_IMAGE_SIZE): 1 GiB with CONFIG_RANDOMIZE_BASE, else 512 MiB (asm/page_64_types.h)",
			value: kernelImageSize},
		{key: "NUMBER(sme_mask)", source: srcX86 + "VMCOREINFO_NUMBER(sme_mask), sme_me_mask", value: smeMask},
	}
}

// Row constructors.

func sym(name, source string) emission {
	return emission{key: "SYMBOL(" + name + ")", source: source, value: symValue(name)}
}

func offset(typ, member, source string) emission {
	return emission{key: "OFFSET(" + typ + "." + member + ")", source: source, value: func(g *gen) (string, Origin, error) {
		m, err := g.v.Member(typ, member)
		return strconv.FormatInt(m.Offset, 10), FromVmlinux, err
	}}
}

func size(name, source string) emission {
	return emission{key: "SIZE(" + name + ")", source: source, value: func(g *gen) (string, Origin, error) {
		n, err := g.v.StructSize(name)
		return strconv.FormatInt(n, 10), FromVmlinux, err
	}}
}

// length is LENGTH(typ.member): an array member's element count.
func length(typ, member, source string) emission {
	return emission{key: "LENGTH(" + typ + "." + member + ")", source: source, value: func(g *gen) (string, Origin, error) {
		m, err := g.v.Member(typ, member)
		if err == nil && m.ArrayLen < 0 {
			err = fmt.Errorf("%s.%s is not an array", typ, member)
		}
		return strconv.FormatInt(m.ArrayLen, 10), FromVmlinux, err
	}}
}

// memberSize is a LENGTH key holding sizeof a member.
func memberSize(key, typ, member, source string) emission {
	return emission{key: "LENGTH(" + key + ")", source: source, value: func(g *gen) (string, Origin, error) {
		m, err := g.v.Member(typ, member)
		return strconv.FormatInt(m.Size, 10), FromVmlinux, err
	}}
}

func enum(name, source string) emission {
	return emission{key: "NUMBER(" + name + ")", source: source, value: func(g *gen) (string, Origin, error) {
		v, err := g.v.Enum(name)
		return strconv.FormatInt(v, 10), FromVmlinux, err
	}}
}

func printkSize(name string) emission {
	return withWhen(size(name, srcPrintk+"VMCOREINFO_STRUCT_SIZE("+name+")"), ifSymbol("prb"))
}

func printkOffset(typ, member string) emission {
	return withWhen(offset(typ, member, srcPrintk+"VMCOREINFO_OFFSET("+typ+", "+member+")"), ifSymbol("prb"))
}

func withWhen(e emission, when func(*gen) (bool, error)) emission { e.when = when; return e }

func constant(v int64) func(*gen) (string, Origin, error) {
	return func(*gen) (string, Origin, error) { return strconv.FormatInt(v, 10), FromConstant, nil }
}

// Conditions.

func ifSymbol(name string) func(*gen) (bool, error) {
	return func(g *gen) (bool, error) { return g.hasSymbol(name) }
}

func ifEnum(name string) func(*gen) (bool, error) {
	return func(g *gen) (bool, error) { return g.hasEnum(name) }
}

func ifMember(typ, member string) func(*gen) (bool, error) {
	return func(g *gen) (bool, error) { return g.hasMember(typ, member) }
}

func ifStruct(name string) func(*gen) (bool, error) {
	return func(g *gen) (bool, error) { return g.hasStruct(name) }
}

// ifRelease holds for kernels of release major.minor or later.
func ifRelease(major, minor int) func(*gen) (bool, error) {
	return func(g *gen) (bool, error) {
		ma, mi, err := parseRelease(g.res.Release)
		if err != nil {
			return false, err
		}
		return ma > major || (ma == major && mi >= minor), nil
	}
}

func not(c func(*gen) (bool, error)) func(*gen) (bool, error) {
	return func(g *gen) (bool, error) { ok, err := c(g); return !ok, err }
}

func allOf(cs ...func(*gen) (bool, error)) func(*gen) (bool, error) {
	return func(g *gen) (bool, error) {
		for _, c := range cs {
			if ok, err := c(g); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	}
}

func anyOf(cs ...func(*gen) (bool, error)) func(*gen) (bool, error) {
	return func(g *gen) (bool, error) {
		for _, c := range cs {
			if ok, err := c(g); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
}

// pageFlag holds when name is an enum pageflags bit (below 64), not a
// page type (the enum pagetype between 6.1 and 6.12 reused PG_slab for a
// type bit).
func pageFlag(name string) func(*gen) (bool, error) {
	return func(g *gen) (bool, error) {
		v, err := g.v.Enum(name)
		if ok, err := has(err); !ok {
			return false, err
		}
		return v >= 0 && v < 64, nil
	}
}

// pageType holds when the kernel has the page type (slab and hugetlb
// became page types between 6.1 and 6.12): PGTY_<t> (as in 6.12) or a
// PG_<t> enumerator above the page-flag range (the enum pagetype of the
// releases in between).
func pageType(t string) func(*gen) (bool, error) {
	return func(g *gen) (bool, error) {
		if ok, err := g.hasEnum("PGTY_" + t); ok || err != nil {
			return ok, err
		}
		v, err := g.v.Enum("PG_" + t)
		if ok, err := has(err); !ok {
			return false, err
		}
		return v >= 0x80, nil
	}
}

// Values.

// symValue is "%lx" of the first of names the symbol table has, plus
// the KASLR offset.
func symValue(names ...string) func(*gen) (string, Origin, error) {
	return func(g *gen) (string, Origin, error) {
		var all error
		for _, n := range names {
			a, err := g.v.Symbol(n)
			if err == nil {
				return strconv.FormatUint(a+g.ko(), 16), g.symOrigin(), nil
			}
			if all == nil {
				all = err
			} else {
				all = fmt.Errorf("%w; %w", all, err)
			}
		}
		return "", "", all
	}
}

// nodeOnlineMap is &node_states[N_ONLINE] (node_online_map is a macro
// since 2.6.23), or the symbol of an older kernel.
func nodeOnlineMap(g *gen) (string, Origin, error) {
	if a, err := g.v.Symbol("node_online_map"); err == nil {
		return strconv.FormatUint(a+g.ko(), 16), g.symOrigin(), nil
	}
	a, err := g.v.Symbol("node_states")
	if err != nil {
		return "", "", err
	}
	i, err := g.v.Enum("N_ONLINE")
	if err != nil {
		return "", "", err
	}
	sz, err := g.v.StructSize("nodemask_t")
	if err != nil {
		return "", "", err
	}
	return strconv.FormatUint(a+uint64(i*sz)+g.ko(), 16), g.symOrigin(), nil
}

// osRelease is init_uts_ns.name.release as initialised in the image
// (UTS_RELEASE); the banner's release if the layout is not in DWARF.
func osRelease(g *gen) (string, Origin, error) {
	if a, err := g.v.Symbol("init_uts_ns"); err == nil {
		name, err1 := g.v.Member("uts_namespace", "name")
		rel, err2 := g.v.Member("new_utsname", "release")
		if err1 == nil && err2 == nil && rel.Size > 0 && rel.Size <= 1024 {
			b := make([]byte, rel.Size)
			if err := g.v.ReadData(a+uint64(name.Offset+rel.Offset), b); err == nil {
				if i := bytes.IndexByte(b, 0); i > 0 {
					return string(b[:i]), FromVmlinux, nil
				}
			}
		}
	}
	return g.res.Release, FromVmlinux, nil
}

// buildID is "%20phN": the 20 bytes of the GNU build-id, lowercase hex.
func buildID(g *gen) (string, Origin, error) {
	id := g.v.BuildID()
	if len(id) != 20 {
		return "", "", fmt.Errorf("the build-id is %d bytes, the kernel prints exactly 20 (static_assert in VMCOREINFO_BUILD_ID)", len(id))
	}
	return hex.EncodeToString(id), FromVmlinux, nil
}

// layoutBase is VMALLOC_START or VMEMMAP_START: the variable vmalloc_base
// or vmemmap_base with CONFIG_DYNAMIC_MEMORY_LAYOUT, else the 4-level
// constant (arch/x86/include/asm/pgtable_64_types.h).
func (g *gen) layoutBase(variable string, fixedL4 uint64) (uint64, Origin, error) {
	ok, err := g.hasSymbol(variable)
	if err != nil {
		return 0, "", err
	}
	if !ok {
		return fixedL4, FromConstant, nil
	}
	v, err := g.readVar(variable, 8)
	if err != nil {
		return 0, "", because(err, "%s is randomised at boot (CONFIG_RANDOMIZE_MEMORY)", variable)
	}
	return v, FromDump, nil
}

func vmallocStart(g *gen) (string, Origin, error) {
	v, o, err := g.layoutBase("vmalloc_base", x86.VmallocBase4Level)
	return "0x" + strconv.FormatUint(v, 16), o, err
}

func vmemmap(g *gen) (string, Origin, error) {
	v, o, err := g.layoutBase("vmemmap_base", x86.VmemmapBase4Level)
	return strconv.FormatUint(v, 16), o, err
}

// memSection is SYMBOL_ARRAY(mem_section): with SPARSEMEM_EXTREME the
// variable is a pointer (struct mem_section **) allocated at boot and its
// value is printed; otherwise the array's address.
func memSection(g *gen) (string, Origin, error) {
	kind, err := g.v.VarTypeName("mem_section")
	if err != nil {
		return "", "", err
	}
	if kind == "array" {
		return symValue("mem_section")(g)
	}
	v, err := g.readVar("mem_section", 8)
	if err != nil {
		return "", "", because(err, "the SPARSEMEM_EXTREME root table is allocated at boot")
	}
	return strconv.FormatUint(v, 16), FromDump, nil
}

// nrSectionRoots is NR_SECTION_ROOTS (include/linux/mmzone.h):
// DIV_ROUND_UP(NR_MEM_SECTIONS, SECTIONS_PER_ROOT) with NR_MEM_SECTIONS =
// 1 << (MAX_PHYSMEM_BITS − SECTION_SIZE_BITS) and SECTIONS_PER_ROOT =
// PAGE_SIZE / sizeof(struct mem_section) with SPARSEMEM_EXTREME, 1
// without — when mem_section is an array, its length is NR_SECTION_ROOTS.
func nrSectionRoots(g *gen) (string, Origin, error) {
	kind, err := g.v.VarTypeName("mem_section")
	if err != nil {
		return "", "", err
	}
	if kind == "array" {
		n, err := g.v.VarArrayLen("mem_section")
		return strconv.FormatInt(n, 10), FromVmlinux, err
	}
	bits, o, err := g.maxPhysmemBits()
	if err != nil {
		return "", "", because(err, "NR_SECTION_ROOTS follows MAX_PHYSMEM_BITS")
	}
	sz, err := g.v.StructSize("mem_section")
	if err != nil {
		return "", "", err
	}
	if sz <= 0 || sz > pageSize {
		return "", "", fmt.Errorf("sizeof(struct mem_section) is %d", sz)
	}
	perRoot := int64(pageSize) / sz
	sections := int64(1) << (bits - sectionSizeBits)
	return strconv.FormatInt((sections+perRoot-1)/perRoot, 10), o, nil
}

// mapcount is PAGE_<T>_MAPCOUNT_VALUE, printed "%ld" of an int: (PGTY_t
// << 24) as in 6.12, ~PG_t while PG_t was an enum pagetype bit (releases
// between), and ~PG_t of the #defines of include/linux/page-flags.h as in
// 6.1 (PG_buddy 0x80, PG_offline 0x100). Only the 6.1 and 6.12 forms are
// checked against source and real dumps.
func mapcount(t string) func(*gen) (string, Origin, error) {
	return func(g *gen) (string, Origin, error) {
		v, err := g.v.Enum("PGTY_" + t)
		if err == nil {
			return strconv.FormatInt(int64(int32(uint32(v)<<24)), 10), FromVmlinux, nil
		}
		if ok, err := has(err); err != nil || ok {
			return "", "", err
		}
		v, err = g.v.Enum("PG_" + t)
		if err == nil && v >= 0x80 {
			return strconv.FormatInt(int64(^int32(v)), 10), FromVmlinux, nil
		}
		if ok, err := has(err); err != nil {
			return "", "", err
		} else if ok && v < 0x80 {
			return "", "", fmt.Errorf("PG_%s is %d, a page flag, not a page type", t, v)
		}
		fixed := map[string]int32{"buddy": 0x80, "offline": 0x100}
		if f, ok := fixed[t]; ok {
			return strconv.FormatInt(int64(^f), 10), FromConstant, nil
		}
		return "", "", fmt.Errorf("no PGTY_%s or PG_%s page type in DWARF", t, t)
	}
}

func physBase(g *gen) (string, Origin, error) {
	v, err := g.runtimeValue("phys_base", 8, func(r *Runtime) uint64 { return r.PhysBase })
	return strconv.FormatInt(int64(v), 10), FromDump, err
}

// smeMask is sme_me_mask, a constant 0 without CONFIG_AMD_MEM_ENCRYPT.
func smeMask(g *gen) (string, Origin, error) {
	ok, err := g.hasSymbol("sme_me_mask")
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "0", FromConstant, nil
	}
	v, err := g.runtimeValue("sme_me_mask", 8, func(r *Runtime) uint64 { return r.SMEMask })
	return strconv.FormatInt(int64(v), 10), FromDump, err
}

// kernelImageSize is KERNEL_IMAGE_SIZE, a macro chosen by
// CONFIG_RANDOMIZE_BASE. head_64.S fills the first KERNEL_IMAGE_SIZE /
// PMD_SIZE entries of level2_kernel_pgt (PMDS(0, …, KERNEL_IMAGE_SIZE /
// PMD_SIZE)), so the image's initialised table tells it.
func kernelImageSize(g *gen) (string, Origin, error) {
	a, err := g.v.Symbol("level2_kernel_pgt")
	if err != nil {
		return "", "", err
	}
	b := make([]byte, pageSize)
	if err := g.v.ReadData(a, b); err != nil {
		return "", "", err
	}
	n := 0
	for n < 512 && binary.LittleEndian.Uint64(b[n*8:])&1 != 0 {
		n++
	}
	size := int64(n) << 21
	if size != 1<<30 && size != 512<<20 {
		return "", "", fmt.Errorf("level2_kernel_pgt in the image maps %d MiB, neither 512 MiB nor 1 GiB", size>>20)
	}
	return strconv.FormatInt(size, 10), FromVmlinux, nil
}

// parseRelease reads "6.12.117+deb12-cloud-amd64" as 6, 12.
func parseRelease(rel string) (int, int, error) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("release %q is not major.minor…", rel)
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi := parts[1]
	if i := strings.IndexFunc(mi, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		mi = mi[:i]
	}
	mn, err2 := strconv.Atoi(mi)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("release %q is not major.minor…", rel)
	}
	return ma, mn, nil
}
