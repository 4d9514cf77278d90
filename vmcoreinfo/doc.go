// Package vmcoreinfo parses, edits, formats and lints the kernel's
// VMCOREINFO text: the descriptor of the ELF note named "VMCOREINFO" that
// crash, makedumpfile, drgn, libkdumpfile and vmcore-dmesg read to learn the
// kernel release, page size, symbol addresses, structure layouts and KASLR
// offset of a vmcore.
//
// # Text format
//
// The kernel (kernel/crash_core.c vmcoreinfo_append_str) writes one
// "KEY=VALUE\n" line per fact, in a fixed order, at most VMCOREINFO_BYTES
// (4096) bytes in total, each line formatted in a 0x50-byte buffer. Value
// formats depend on the key family (include/linux/crash_core.h):
//
//	SYMBOL(x)                hex without 0x (%lx)
//	OFFSET(s.f) SIZE(x) LENGTH(x)   unsigned decimal (%lu)
//	NUMBER(x)                signed decimal (%ld); NUMBER(VMALLOC_START) is 0x%lx
//	KERNELOFFSET             hex without 0x
//	PAGESIZE CRASHTIME       decimal
//	BUILD-ID                 40 hex digits
//	OSRELEASE                the utsname release (< 65 bytes)
//
// NUMBER(VMALLOC_START) exists from 6.9 on.
//
// # What the kernel emits
//
// The text is built once at boot (crash_save_vmcoreinfo_init) into
// vmcoreinfo_data, and the note that carries it, vmcoreinfo_note, is an
// ordinary page whose physical address and size /sys/kernel/vmcoreinfo
// prints (hex). An x86_64 kernel of the 6.x era emits, in this order
// (order decides what a cut note keeps):
//
//   - OSRELEASE, BUILD-ID (5.9+), PAGESIZE;
//   - SYMBOL(init_uts_ns), OFFSET(uts_namespace.name),
//     SYMBOL(node_online_map), SYMBOL(swapper_pg_dir), SYMBOL(_stext),
//     SYMBOL(vmap_area_list); without NUMA SYMBOL(mem_map) and
//     SYMBOL(contig_page_data);
//   - the SPARSEMEM keys: SYMBOL(mem_section), LENGTH(mem_section),
//     SIZE(mem_section), OFFSET(mem_section.section_mem_map),
//     NUMBER(SECTION_SIZE_BITS), NUMBER(MAX_PHYSMEM_BITS);
//   - the memory-model sizes and offsets (page, pglist_data, zone,
//     free_area, list_head, vmap_area);
//   - the printk block (kernel/printk/printk.c log_buf_vmcoreinfo_setup;
//     the keys of each ring format are listed in package printk);
//   - LENGTH(free_area.free_list), NUMBER(NR_FREE_PAGES), the NUMBER(PG_*)
//     flags and NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE); with hugetlb
//     NUMBER(HUGETLB_PAGE_DTOR) and NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE);
//     with kallsyms (6.0+) the SYMBOL(kallsyms_*) keys;
//   - the x86_64 part (arch_crash_save_vmcoreinfo): NUMBER(phys_base),
//     SYMBOL(init_top_pgt) (the value of swapper_pg_dir),
//     NUMBER(pgtable_l5_enabled), with NUMA SYMBOL(node_data) and
//     LENGTH(node_data), then KERNELOFFSET, NUMBER(KERNEL_IMAGE_SIZE),
//     NUMBER(sme_mask);
//   - CRASHTIME, appended last when a dump is taken. A running kernel's
//     text (/proc/kcore, QEMU's copy) has none; a livedump's has the time
//     of START.
//
// Package vmcoreinfo/generate holds the exact key table per kernel.
//
// # What a cut note keeps
//
// The livedump v1 kernel writes only the first page of its merged notes:
// 356 bytes per present CPU's NT_PRSTATUS note, then the VMCOREINFO note's
// 24-byte header and its text (defect K-1 of package livedump,
// elfcore/livedump). With N present CPUs a line ending at text offset e
// survives iff 356·N + 24 + e ≤ 4096; the bytes after the page are
// unrelated (low memory or stale device data) while n_descsz still claims
// the whole text. The x86_64 keys and CRASHTIME come last, so they go
// first. For a 6.2 text of S = 3310 bytes (3289 plus CRASHTIME):
//
//	N   text kept  first key lost                     lines lost
//	1-2 all        -                                  0
//	3   3004       SYMBOL(kallsyms_offsets)           11 (phys_base, init_top_pgt, KERNELOFFSET, CRASHTIME …)
//	4   2648       NUMBER(PG_hwpoison)                20
//	5   2292       OFFSET(prb_data_ring.data)         34
//	6   1936       OFFSET(printk_info.ts_nsec)        45
//	7   1580       OFFSET(prb_desc_ring.count_bits)   58
//	8   1224       OFFSET(vmap_area.list)             68 (the whole printk block)
//	9   868        OFFSET(pglist_data.node_zones)     80
//	10  512        SIZE(pglist_data)                  94 (_stext, mem_section kept)
//	11  156        OFFSET(uts_namespace.name)         106 (OSRELEASE, BUILD-ID, PAGESIZE, SYMBOL(init_uts_ns) kept)
//	12+ 0          the note header itself is past the page, and CPU notes from the 12th on
//
// The complete text is still in the dumped copy of vmcoreinfo_note (see
// [Lost]).
//
// Repeated livedump runs in one boot damage the text too (defect K-6): the
// kernel's vmcoreinfo_size keeps the bytes of each earlier CRASHTIME line
// while the text goes back to the boot-time one, so from the second run on
// a run of NUL bytes (21 per earlier run, in memory too) sits just before
// CRASHTIME, and the cut comes earlier.
//
// # Why two parsers
//
// [Parse] is strict: it accepts exactly what a healthy kernel emits (every
// line "KEY=VALUE\n" with printable ASCII, the last one newline-terminated,
// no NUL, no CR) and reports the first deviation as a [*FormatError].
//
// [ParseLenient] never fails. It exists because livedump output is damaged
// in two known ways (defects K-1 and K-6 of package livedump,
// elfcore/livedump; see "What a cut note keeps" above):
//
//   - K-1: only the first page of notes is written, so the VMCOREINFO text is
//     cut mid-line and followed by unrelated bytes (low-memory pages, stale
//     data) while n_descsz still claims the full length.
//   - K-6: from the second livedump in a boot on, the text carries a run of
//     NUL bytes (about 21 per earlier run) just before CRASHTIME.
//
// ParseLenient strips NUL runs that sit at a line start and are followed by
// a well-formed line, normalises CRLF endings, and stops at the first line
// that is not a complete, well-formed "KEY=VALUE\n". What it repaired or
// dropped is described by a [*Damage]. For any input x,
// ParseLenient(x).Bytes() is accepted by Parse and round-trips byte for byte.
//
// # Reading values
//
// Typed accessors ([Info.Symbol], [Info.Number], [Info.PageSize], …) return
// ok=false for a key that is missing or malformed. The Lookup variants
// ([Info.LookupUint], [Info.LookupInt], …) return a [*KeyError] that
// tells the two apart (errors.Is(err, [ErrMissing]) or [ErrMalformed]), so
// that "ldx verify" can say which key is wrong and what was expected.
//
// # Consumer rules
//
// [Info.Lint] checks the text against the consumers' rules (checklist items
// D1–D15 of package verify, extract/verify, which says which consumer
// reads what) and [Requirements] lists the keys
// each consumer needs, so that verify and extract can say which keys a
// truncated note lost and what that breaks.
package vmcoreinfo
