// Package verify tells, in well under a second and before anyone needs the
// dump, whether crash, makedumpfile, drgn, libkdumpfile and vmcore-dmesg
// will accept a kernel vmcore, and what is missing.
//
// A dump is taken once, on a sick machine, and opened later by someone else
// with a tool that fails with a cryptic message — or silently shows wrong
// data — when one header field is off. Each requirement of those consumers
// is a named [Result]: its row ID in the checklist below (A1–F2), the
// severity its failure has for each consumer (an [Effect]), what was found
// (with the file offset and field) and what to do. [Report.Consumers] turns
// the failed checks into one verdict per consumer, and [RunTools] runs the
// installed consumers themselves so that the prediction can be compared
// with what they really do.
//
// This documentation is the project's reference for what each consumer
// requires of a vmcore: code elsewhere cites it as "package verify, row
// D7" or "verify's requirement B4". It was written from the consumers'
// sources (crash 8.0.x, makedumpfile 1.7.x, drgn 0.2, libkdumpfile after
// 0.5.4, kexec-tools 2.0.32's vmcore-dmesg), function names given so that
// a statement can be checked, and corrected where the installed consumers
// (crash 8.0.2, makedumpfile 1.7.2, drgn 0.0.22) behave otherwise in `make
// verify-agreement`: e.g. makedumpfile --dump-dmesg needs only part of the
// memory-model and printk keys, and crash with a vmlinux needs no
// OSRELEASE.
//
// The file is checked as it is: its own header layout, notes and segments.
// A raw livedump device or image therefore fails the checks its kernel-side
// defects break (notes cut at one page, one RAM range over holes, stale
// device bytes: defects K-1 to K-3 of package livedump, elfcore/livedump),
// and each of those results says that `ldx extract` repairs it. The
// repaired view (package dump) is used only to tell whether a repair is
// possible, never to hide a defect.
//
// By default only headers, notes and a bounded number of small reads are
// done (page-table walks, init_uts_ns, the printk ring's descriptors, a
// sample of overlapping bytes), so any size of dump verifies in well under
// a second. Options.Deep reads every byte of every segment.
//
// # Severity levels
//
//   - fatal: the consumer rejects the file, or a whole mode returns nothing
//     or wrong results (the file does not open, the vmlinux does not match,
//     -d 31 or the log extraction is refused, every translation is wrong).
//   - degraded: the file opens, but a feature or a fallback is lost (no
//     registers for backtraces, a slower path, a feature that works only on
//     some kernels).
//   - cosmetic: warnings, noise or performance only.
//
// ldx adds info: worth knowing, not a defect (a live dump's synthetic CPU
// registers, a QEMU producer).
//
// Terms used below: KTEXT is __START_KERNEL_map, 0xffffffff80000000; a RAM
// segment is a PT_LOAD that maps ordinary RAM through the direct map; the
// kernel-image segment is a PT_LOAD whose p_vaddr lies in [KTEXT, KTEXT +
// KERNEL_IMAGE_SIZE).
//
// # A. ELF header
//
//   - A1 (fatal, all): e_ident is the ELF magic, ELFCLASS64, ELFDATA2LSB and
//     EV_CURRENT. crash checks them all (is_netdump; byte order in
//     endian_mismatch), as do libkdumpfile ("Invalid ELF signature",
//     "Unsupported ELF data format") and vmcore-dmesg ("Missing elf
//     signature", "Bad elf version"); makedumpfile looks only at EI_CLASS.
//   - A2 (fatal): e_type is ET_CORE. crash; drgn ("not an ELF core file");
//     libkdumpfile, which then says "Unsupported ELF class".
//   - A3 (fatal): e_machine is EM_X86_64. crash ("machine type mismatch"),
//     drgn and libkdumpfile take the platform from it.
//   - A4 (fatal): e_version is 1. crash, libkdumpfile, vmcore-dmesg ("Bad Elf
//     header version").
//   - A5 (fatal): e_phoff is 64. makedumpfile ignores e_phoff and reads
//     program header i at 64 + 56·i (get_elf64_phdr); crash accepts at most
//     192, since phdr[1] must lie in its first 304-byte read ("PHdr to far
//     into file!"). The others honour e_phoff.
//   - A6 (fatal): e_phentsize 56 and e_ehsize 64. vmcore-dmesg rejects
//     anything else ("Bad Elf progra header size"); crash and makedumpfile
//     assume 56, libkdumpfile steps by e_phentsize.
//   - A7 (fatal): at least two program headers (a PT_NOTE and a PT_LOAD);
//     crash's is_netdump rejects fewer.
//   - A8 (degraded): e_phnum below 65535. Extended numbering (PN_XNUM, the
//     count in section 0's sh_info) is understood by crash, makedumpfile,
//     drgn and libkdumpfile, not by vmcore-dmesg. Merging adjacent RAM
//     ranges keeps the count low.
//
// # B. Program headers and segments
//
//   - B1 (fatal): phdr[0] is the only PT_NOTE. crash takes phdr[0] as the
//     notes and every later header as a PT_LOAD whatever its p_type
//     (is_netdump, dump_Elf64_Phdr), so a second PT_NOTE becomes a bogus
//     memory segment; makedumpfile keeps only the last PT_NOTE.
//   - B2 (fatal): every header after index 0 is PT_LOAD (no PT_NULL or
//     other types), for the same reason.
//   - B3 (fatal): at least one PT_LOAD with data. makedumpfile ("Can't get
//     the number of PT_LOAD."), libkdumpfile ("No content found").
//   - B4 (fatal): the ELF header, all program headers and all note bytes lie
//     before the first segment data, i.e. end at or before the smallest
//     non-zero PT_LOAD p_offset. crash's resize_elf_header reads only [0,
//     smallest non-zero p_offset) and parses headers and notes from that
//     buffer: a header past it is fatal ("Elf64_Phdr pointer: … ELF header
//     end: …"), a note past it draws a warning and is dropped silently,
//     VMCOREINFO included.
//   - B5 (fatal): the first PT_LOAD, and every PT_LOAD with data, has
//     p_offset > 0. crash seeds its header size with phdr[1]'s p_offset, so
//     0 gives a header of size 0 and the file is rejected; crash's
//     read_netdump and makedumpfile's paddr_to_offset take offset 0 to mean
//     "not found".
//   - B6 (fatal for crash on KASLR kernels): crash must classify the file as
//     a kdump ELF: phdr[1].p_align 0 (what kexec-tools, QEMU and crash's
//     snap.c write) or phdr[1].p_offset not page-aligned. Otherwise
//     is_netdump calls it NETDUMP_ELF64, and then `crash --osrelease` prints
//     "unknown", `crash --log` says "no VMCOREINFO data", the KASLR check
//     driven by KERNELOFFSET is skipped (kaslr_init handles only kdump and
//     diskdump files), the phys_base fallback from the PT_LOADs is skipped
//     and the page size is taken from p_align. ldx writes p_align 0 on every
//     PT_LOAD.
//   - B7 (fatal): p_paddr is the true physical address: not 0 on every
//     segment, not UINT64_MAX on RAM segments. crash and makedumpfile read
//     by p_paddr only; drgn adds a physical segment only if p_paddr is not
//     UINT64_MAX and there is VMCOREINFO or some non-zero p_paddr;
//     libkdumpfile turns physical addressing off when every p_paddr of
//     several segments is 0.
//   - B8 (degraded; fatal for vmcore-dmesg when the log buffers were
//     allocated at run time): RAM segments have p_vaddr = the runtime
//     page_offset_base + p_paddr, the same delta on every one. vmcore-dmesg
//     translates only through p_vaddr ("No program header covering vaddr
//     …", exit 30); makedumpfile takes PAGE_OFFSET from the last PT_LOAD
//     with p_vaddr below KTEXT (get_page_offset_x86_64); drgn and
//     libkdumpfile trust p_vaddr segments before the page tables, so a
//     wrong p_vaddr silently returns wrong bytes. Checked with E4.
//   - B9 (degraded; fatal for vmcore-dmesg and old drgn): one kernel-image
//     PT_LOAD: p_vaddr the runtime _text, p_paddr its physical address,
//     covering _text to _end (so prb, init_top_pgt and init_uts_ns), the
//     first PT_LOAD at or above KTEXT in header order. It duplicates part of
//     a RAM range, as kexec-tools does. crash (x86_64_calc_phys_base) and
//     makedumpfile (get_phys_base_x86_64) compute phys_base from it as
//     p_paddr − (p_vaddr − KTEXT) when NUMBER(phys_base) is missing;
//     vmcore-dmesg needs it to reach every SYMBOL(); drgn up to 0.0.26 needs
//     it to read swapper_pg_dir, 0.0.27–0.0.29 when phys_base is 0
//     ("recursive address translation; page table may be missing from core
//     dump"). crash's snap.c writes a zero-length one just to carry
//     phys_base.
//   - B10 (degraded): p_filesz = p_memsz. The bytes between them mean zero
//     to crash, makedumpfile and drgn, but "excluded" to libkdumpfile
//     ("Page not found") unless its zero_excluded attribute is set.
//   - B11 (fatal for the missing ranges): the file reaches max(p_offset +
//     p_filesz). crash only warns at open ("may be truncated or
//     incomplete", check_dumpfile_size) and fails reads later; drgn "short
//     read from memory file"; makedumpfile "Can't read the dump memory".
//   - B12 (degraded, silently inconsistent): overlapping physical ranges
//     (the kernel image over RAM) hold identical bytes. crash and
//     makedumpfile take the first match in header order, drgn the later
//     segment, libkdumpfile sorts by physical address.
//   - B13 (cosmetic for makedumpfile, degraded for vmcore-dmesg): p_paddr
//     and p_memsz page-aligned, p_offset ≡ p_paddr mod 4096, each kernel
//     buffer contiguous in the file. makedumpfile's mmap path and
//     fractional-page handling; vmcore-dmesg reads each ring buffer with one
//     pread.
//   - B14 (cosmetic): order. crash and makedumpfile take phys_base from the
//     first kernel-image segment, makedumpfile PAGE_OFFSET from the last one
//     below KTEXT. ldx puts the kernel image first and RAM by address, as
//     kexec-tools does.
//
// # C. Notes
//
//   - C1 (fatal for drgn): notes 4-byte aligned and the PT_NOTE's p_align 0
//     or 4, never 8. drgn hands p_align to libelf, which reads 8-byte
//     aligned notes (ELF_T_NHDR8) when it is 8 and garbles kernel notes.
//   - C2 (cosmetic): the PT_NOTE's p_filesz is exactly the sum of its notes:
//     no zero padding, no empty terminator note (the kernel's buffers end
//     with one). crash prints "possibly corrupt Elf64_Nhdr" per zero note; a
//     note overrunning the segment ends the walk.
//   - C3 (fatal, the note is invisible): the VMCOREINFO note has n_namesz 11
//     ("VMCOREINFO" and NUL), n_type 0, n_descsz the text length. drgn
//     requires namesz 11; makedumpfile (get_pt_note_info) and vmcore-dmesg
//     compare 11 name bytes and require type 0; crash matches the name
//     prefix in its default branch, so the type must not be one it
//     recognises (1–4); libkdumpfile accepts namesz 10 or 11 and any type.
//   - C4 (cosmetic): one VMCOREINFO note. crash, makedumpfile and drgn keep
//     the last one, vmcore-dmesg merges them.
//   - C5 (fatal for libkdumpfile, degraded for the others): one NT_PRSTATUS
//     per CPU, named "CORE" (namesz 5), type 1, descsz 336: pr_pid (u32) at
//     +32, pr_reg at +112 as 27 u64 in user_regs_struct order (r15 r14 r13
//     r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags
//     rsp ss fs_base gs_base ds es fs gs), then pr_fpvalid and padding.
//     crash finds the registers at the descriptor's end − 224, so it needs
//     exactly 336; drgn reads pr_reg at +112 and needs at least 328
//     ("NT_PRSTATUS is truncated"); libkdumpfile fails the whole open below
//     328 ("Wrong PRSTATUS size"); makedumpfile counts the CORE/1 notes as
//     its CPU count.
//   - C6 (degraded): one NT_PRSTATUS per online CPU, in CPU order. crash
//     assigns them to CPUs 0, 1, … in file order and ignores them all when
//     their count is not the number of online CPUs; when possible and
//     online CPUs differ it remaps them through the kernel's crash_notes,
//     which are empty on a live system ("cpu N: invalid NT_PRSTATUS note").
//   - C7 (degraded): a live (not crash-time) dump has pr_pid = CPU number + 1
//     in each NT_PRSTATUS and no CRASHTIME line in VMCOREINFO. drgn 0.0.27+
//     (drgn_get_initial_registers_from_kernel_core_dump) takes a CPU's
//     registers from the kernel's crash_notes per-CPU buffer when CRASHTIME
//     is present — empty on a live system: "registers for CPU N were not
//     saved" — and otherwise from the note whose pr_pid is cpu+1, QEMU's
//     convention.
//   - C8 (fatal if misused): no note named "QEMU", and no NT_TASKSTRUCT
//     named "SNAP", unless deliberately imitating those producers. A QEMU
//     note switches crash to its QEMU paths (no PRSTATUS remap; without
//     VMCOREINFO, KASLR and phys_base from the IDT and CR3 in those notes),
//     and drgn fails on a QEMU note without VMCOREINFO. A SNAP NT_TASKSTRUCT
//     marks a crash snap live dump, after which crash's
//     vmcoreinfo_read_string returns only snap's private keys: VMCOREINFO is
//     ignored.
//   - C9 (cosmetic): an NT_TASKSTRUCT named "CORE" whose descriptor starts
//     with a task_struct address is taken by crash as the panic task.
//
// # D. VMCOREINFO text
//
// Package vmcoreinfo describes the text the kernel writes; these rows are
// what the consumers require of it.
//
//   - D1 (fatal): "KEY=VALUE" lines, every one ending in "\n", the last
//     included; no CR, trailing blanks, empty lines or NUL before the end of
//     the descriptor. drgn ignores a last line without "\n" and rejects a
//     number followed by anything ("number in VMCOREINFO is invalid");
//     makedumpfile reads with fgets (a NUL ends the line) and fails on
//     trailing junk ("Invalid data in …"); crash and libkdumpfile are
//     lenient.
//   - D2 (fatal, e.g. a misread phys_base): values in the kernel's formats
//     (package vmcoreinfo, "Text format"). crash reads SYMBOL as hex and
//     NUMBER as decimal (a leading '-' allowed for phys_base); drgn parses
//     NUMBER with base 0, so hex without 0x is misread; makedumpfile tries
//     decimal, then hex.
//   - D3 (fatal): OSRELEASE, exactly the kernel release (under 65 bytes).
//     makedumpfile ("Invalid format in …"); drgn ("VMCOREINFO does not
//     contain valid OSRELEASE", and without BUILD-ID it matches the vmlinux
//     by this string); crash --osrelease and --log ("cannot determine kernel
//     version"); libkdumpfile derives the version code from it.
//   - D4 (fatal): PAGESIZE=4096. makedumpfile (a power of two), drgn, crash
//     --log ("cannot determine page size").
//   - D5 (fatal for drgn): SYMBOL(swapper_pg_dir), equal to init_top_pgt on
//     x86_64: the root of every drgn page walk ("VMCOREINFO does not contain
//     valid swapper_pg_dir").
//   - D6 (fatal for makedumpfile filtering and dmesg): SYMBOL(init_top_pgt)
//     (SYMBOL(init_level4_pgt) before 4.13): every makedumpfile virtual read
//     walks from it ("Can't get the symbol of init_level4_pgt/init_top_pgt.");
//     libkdumpfile takes it as the page-table root.
//   - D7 (fatal when B9 is missing too, else degraded): NUMBER(phys_base),
//     decimal, 4.10+. crash (x86_64_calc_phys_base, preferred to the
//     PT_LOAD fallback), makedumpfile (get_phys_base_x86_64), drgn 0.0.27+
//     (reads the root table physically, avoiding recursive translation),
//     libkdumpfile.
//   - D8 (fatal with a vmlinux on KASLR kernels): KERNELOFFSET (hex) and
//     SYMBOL(_stext), both relocated. For crash, KERNELOFFSET's presence
//     turns the KASLR handling on and the offset is vmlinux _stext −
//     SYMBOL(_stext), which must be page-aligned (kaslr_init,
//     derive_kaslr_offset); without them crash says "… and … do not match!".
//     drgn's vmlinux bias is KERNELOFFSET; makedumpfile -x uses it
//     (get_kaslr_offset_x86_64). Checked: SYMBOL(_stext) − KERNELOFFSET is
//     the link-time _stext (normally 0xffffffff81000000) and KERNELOFFSET is
//     2 MiB-aligned.
//   - D9 (fatal on 5-level hosts, else degraded):
//     NUMBER(pgtable_l5_enabled). crash, makedumpfile (check_5level_paging),
//     drgn; libkdumpfile falls back to CR4, then to 4 levels if _stext is
//     known, else "Cannot determine 5-level paging".
//   - D10 (degraded): NUMBER(sme_mask). makedumpfile and libkdumpfile strip
//     it from page-table entries, crash reads it; drgn ignores it (fixed
//     mask 0xffffffffff000), so it translates wrongly on SME hosts: a
//     non-zero mask is warned about.
//   - D11 (degraded): NUMBER(KERNEL_IMAGE_SIZE), NUMBER(MAX_PHYSMEM_BITS),
//     NUMBER(SECTION_SIZE_BITS), LENGTH(mem_section), NUMBER(VMALLOC_START)
//     (6.9+), SYMBOL(vmemmap). crash, makedumpfile and drgn use them, all
//     with fallbacks.
//   - D12 (fatal for makedumpfile): makedumpfile's memory-model keys. Its
//     initial() builds the mem_map for every mode, --dump-dmesg included,
//     so it needs SIZE(page), OFFSET(page.flags, _refcount, mapping, lru,
//     _mapcount, private, compound_head), SYMBOL(mem_section),
//     LENGTH(mem_section), SIZE(mem_section),
//     OFFSET(mem_section.section_mem_map), SYMBOL(init_uts_ns),
//     OFFSET(uts_namespace.name) and SYMBOL(node_online_map)
//     (get_mem_type: "Can't distinguish the memory type.", get_mem_section:
//     "Could not validate mem_section.", check_release: "Can't get the
//     symbol of system_utsname."). Free-page filtering needs
//     NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE) or NUMBER(PG_buddy) with
//     OFFSET(page.private), else the zone and free_area keys; page-flag
//     filtering the NUMBER(PG_*) keys.
//   - D13 (degraded): BUILD-ID (5.9+). drgn matches the vmlinux by it, else
//     only by OSRELEASE; crash 9 prints it (--build-id).
//   - D14 (degraded): CRASHTIME only in real crash dumps (see C7).
//   - D15 (fatal if wrong): a VMCOREINFO made up rather than copied from the
//     kernel carries runtime values: only kernel-image addresses are
//     relocated by KERNELOFFSET, while SYMBOL(mem_section) (the pointer's
//     value under SPARSEMEM_EXTREME), SYMBOL(swapper_pg_dir) and
//     SYMBOL(vmemmap) are values of pointers or macros that must come from
//     memory or the page tables.
//
// # E. Translation consistency
//
// What verify checks itself, with the page walk of package kmem.
//
//   - E1 (fatal): NUMBER(phys_base) agrees with the kernel-image PT_LOAD
//     (and with the walk): each consumer may take it from another source.
//   - E2 (fatal): a 4- or 5-level walk from SYMBOL(init_top_pgt) (at
//     physical value − KTEXT + phys_base) translates SYMBOL(_stext),
//     SYMBOL(init_uts_ns) and SYMBOL(prb) to what the linear image formula
//     gives, and every page-table page it touches is inside a PT_LOAD.
//     makedumpfile and drgn walk for every virtual read, crash for vmalloc,
//     module and vmemmap addresses.
//   - E3 (fatal): the release field of init_uts_ns (SYMBOL(init_uts_ns) +
//     OFFSET(uts_namespace.name) + 130: new_utsname is six 65-byte fields)
//     is exactly OSRELEASE. This proves phys_base, p_paddr and the file
//     layout at once; makedumpfile's check_release reads the same bytes.
//   - E4 (degraded, fatal for vmcore-dmesg): the RAM segments' p_vaddr −
//     p_paddr equals a page-table translation of one such p_vaddr (B8).
//   - E5 (fatal for makedumpfile): mem_section validates as makedumpfile's
//     validate_mem_section does it: the root array at SYMBOL(mem_section)
//     (LENGTH(mem_section) entries) — tried first as the array, then as a
//     pointer to it — and each present section's section_mem_map (bit 0
//     present; decoded by masking the low flag bits and adding pfn ×
//     SIZE(page)) is a kernel address.
//   - E6 (fatal for crash): what crash reads while it starts is in the dump
//     (see crash.go: the per-CPU TSS IST pointers and each online node's
//     pglist_data); a failed read there ends the session.
//
// # F. The kernel log
//
//   - F1 (fatal for the log): on 5.10+ kernels the lockless ring's keys
//     (package printk) are present and prb, the descriptor array, the info
//     array and the text ring are inside dumped memory. makedumpfile
//     (dump_lockless_dmesg) and vmcore-dmesg (dump_dmesg_lockless). Checked
//     by reading the ring, at least one record.
//   - F2 (fatal for vmcore-dmesg): prb, printk_rb_static or
//     printk_rb_dynamic, and the three buffers are covered by PT_LOAD
//     p_vaddr ranges (kernel image and direct map), each buffer contiguous
//     in the file: vmcore-dmesg has no page walk.
//   - F3 (limitation): `crash --log` is no smoke test on 5.10+ kernels: it
//     knows only the earlier log keys ("VMCOREINFO: no log buffer data"),
//     even on crash's master.
//
// # Checks of ldx's own
//
// G1 says whether each installed consumer version is known to read the
// dumped kernel (kernelver.go). V1–V7 compare the dump with its vmlinux
// (vmlinux.go). K-1, K-2, K-3 and K-7 are the livedump kernel defects of
// the same names in package livedump (elfcore/livedump). Z1 is --deep's
// read of every segment byte.
//
// L1 tells a filtered dump (makedumpfile -d, ldx extract -d) from a full
// one. An ELF vmcore records no dump level, so the pages of the kernel's
// present memory sections that no PT_LOAD holds (p_filesz; a p_memsz tail
// has no data) are classified by package pageclass from the dump's own
// struct pages: free, cache or user pages missing mean a dump level left
// them out. Firmware holes inside sections are reserved pages, never of
// those classes, so a full dump reads as not filtered.
//
// A kdump-compressed file (package kdump) gets the H checks and G1 (whether
// each consumer version knows the kernel). What each consumer does with a
// damaged file was found by running crash 8.0.2, makedumpfile 1.7.2
// (--dump-dmesg) and drgn 0.0.22 (libkdumpfile) on mutants of ldx's and
// makedumpfile's kdump files of real guests (the kdump agreement corpus,
// verifytest.KdumpMutants):
//
//   - H1 (fatal): the header, sub-header and bitmaps as package kdump
//     validates them. Which consumers stop depends on the field: the note
//     blob (offset_note) is where libkdumpfile takes VMCOREINFO from and
//     crash the CPU notes, while makedumpfile reads only the sub-header's
//     own VMCOREINFO, so a bad offset_note stops crash and drgn and leaves
//     makedumpfile reading; a bad offset_vmcoreinfo stops crash and
//     makedumpfile; a bitmap_blocks too small for max_mapnr stops crash
//     (with a vmlinux) and drgn, while makedumpfile sizes its bitmaps by
//     bitmap_blocks alone and crash --osrelease reads no bitmap; anything
//     else stops all three. Some damage makes a tool spin until killed
//     rather than fail (crash on a bitmap cut short or a sub_hdr_size past
//     the end, libkdumpfile on a block_size of 8192): they count as
//     failures. One part of a split dump (makedumpfile --split) fails H1
//     too, whatever its content, for every consumer opens a file as the
//     whole dump: crash --osrelease reads its headers, but crash with a
//     vmlinux needs every part on its command line, makedumpfile cannot
//     translate the kernel's addresses, and drgn reads the other parts'
//     pages as excluded (it opens the part holding init_uts_ns, and stops
//     at the first task elsewhere). The other parts are looked for beside
//     it as ldx's commands do; when they make the whole dump the other H
//     checks read the set, each part's descriptors against its own file
//     (makedumpfile gives each part an array as long as the whole dump's).
//   - H2 (fatal): the sub-header's VMCOREINFO with an OSRELEASE of the
//     release the header names. Without it makedumpfile cannot find the
//     kernel's layout and crash --osrelease prints "unknown"; crash with a
//     vmlinux still starts. drgn reads the VMCOREINFO note of the note blob
//     instead (header version 4 on), so it is stopped only when that note
//     is gone too — ldx's and makedumpfile's offset_vmcoreinfo points into
//     the note blob, so zeroed text stops all three.
//   - H3 (degraded): every page descriptor has its data inside the file,
//     a size of 1 to block_size bytes and a known compression flag. A bad
//     descriptor costs only its page: no consumer reads every page to
//     start (H7 is the page they all read). A makedumpfile re-filter
//     (-c -d N of the kdump file) copies every page it keeps and stops on
//     a descriptor whose size exceeds the block size, whose data it cannot
//     read whole, or a compressed page of no bytes; a page with no known
//     compression bit it reads raw, size bytes, whatever the size or
//     flags: wrong data, no error. It also copies the note blob, so a bad
//     offset_note stops it where --dump-dmesg does not look.
//   - H4 (fatal for makedumpfile): the sub-header's phys_base equals
//     NUMBER(phys_base). makedumpfile translates kernel addresses of a
//     kdump file with the sub-header's value, so its page-table walk fails
//     ("Can't get a valid pgd"); crash and drgn take phys_base from
//     VMCOREINFO. QEMU's kdump-* formats write a guess there under KASLR.
//   - H5 (--deep): every page decompresses to exactly a page.
//   - H6 (fatal): the dumpable bitmap agrees with the page_desc array.
//     Descriptor n belongs to the n-th set bit, and every writer
//     (makedumpfile, QEMU, ldx) puts the page data right after the array,
//     so the lowest data offset of any descriptor must be where the array
//     ends by the bit count; a bit too many or too few shifts every later
//     page onto its neighbour's descriptor. bitmap_blocks one block short
//     turns the two bitmaps into one under the sizing rule below and moves
//     the array: the same finding. A dumpable page missing from the RAM
//     bitmap is only degraded.
//   - H7 (fatal): init_uts_ns, at __START_KERNEL_map + phys_base by
//     VMCOREINFO, reads OSRELEASE from the file. crash with a vmlinux
//     compares it to the vmlinux ("vmlinux and dump do not match"),
//     makedumpfile checks the kernel version from it, drgn reads it first:
//     a damaged descriptor of that page, or data that does not decompress
//     with the method its flags name (zlib data flagged snappy, zstd or lzo,
//     garbled data) stops all three.
//   - H8 (fatal for makedumpfile and drgn): the file is a kdump file, not
//     a flattened stream (makedumpfile -F records; QEMU's kdump-* dumps as
//     the test bed's QEMU writes them). verify and crash reassemble the
//     stream; makedumpfile reads it only to rearrange it (-R), libkdumpfile
//     not at all.
//   - H9 (information): the page compressions used. makedumpfile reads
//     those its build was linked with, as its -v lists (Debian 12's 1.7.2:
//     zlib and lzo; "snappy compression unsupported" otherwise); crash
//     8.0.2 and libkdumpfile on Debian 12 read all four. --with-tools asks
//     makedumpfile and predicts its runs from that.
//
// Not judged: which pages a dump level left out of a kdump file. drgn's
// walk of the task list (for_each_task, run by --with-tools on kdump
// files) meets an excluded page on makedumpfile 1.7.2's -d 31 file of a
// 6.12 kernel, which that release predates, and not on ldx's -d 31 file
// of the same memory; verify does not classify excluded pages of a kdump
// file (L1 does so for ELF vmcores).
//
// The bitmap sizing rule (crash's, which package kdump follows): when
// bitmap_blocks is at least twice the blocks one bitmap of max_mapnr bits
// needs, the area holds two bitmaps of equal size (RAM, then dumpable);
// otherwise it is one bitmap serving as both. The ELF checks do not apply;
// ldx extract turns the file into an ELF vmcore that verify checks in full.
//
// # VMCOREINFO keys each consumer reads
//
// crash (x86_64, 8.0.x): OSRELEASE (--osrelease, --log only); PAGESIZE
// (--log only); KERNELOFFSET (presence only: turns the KASLR check on);
// SYMBOL(_stext) (the KASLR offset); NUMBER(phys_base);
// NUMBER(KERNEL_IMAGE_SIZE), NUMBER(sme_mask), NUMBER(pgtable_l5_enabled),
// NUMBER(MAX_PHYSMEM_BITS); NUMBER(VMALLOC_START) (8.0.5+, for 6.9+
// kernels); the pre-5.10 log keys for --log. It does not read
// SYMBOL(init_top_pgt), SYMBOL(swapper_pg_dir) or SYMBOL(mem_section): with
// a vmlinux it takes them from the symbol table, and page_offset_base,
// vmalloc_base and vmemmap_base from memory.
//
// makedumpfile (1.7.x): OSRELEASE and PAGESIZE are mandatory ("Invalid
// format in …"); SYMBOL values are hex, non-zero, nothing after the number;
// SIZE, OFFSET, LENGTH and NUMBER decimal with a hex fallback; a malformed
// value is fatal, a missing key stays unknown (defaults exist for the PG_*
// bits and PAGE_BUDDY_MAPCOUNT_VALUE). It reads phys_base, init_top_pgt,
// pgtable_l5_enabled, sme_mask, KERNELOFFSET (-x), the memory-model keys
// (D12) and the printk keys (F1).
//
// drgn: BUILD-ID, CRASHTIME (presence only), OSRELEASE (under 128 bytes),
// PAGESIZE (base 0), KERNELOFFSET (hex), SYMBOL(swapper_pg_dir),
// LENGTH(mem_section), NUMBER(SECTION_SIZE_BITS), NUMBER(MAX_PHYSMEM_BITS),
// NUMBER(pgtable_l5_enabled), NUMBER(phys_base) (base 0). Only OSRELEASE, a
// power-of-two PAGESIZE and a non-zero swapper_pg_dir are mandatory;
// numbers must end exactly at the newline; only "\n"-terminated lines
// count.
//
// libkdumpfile: splits lines at "\n" and the first "="; PAGESIZE and
// OSRELEASE; SYMBOL as hex, the other families with base 0; invalid numbers
// are silently ignored; NUMBER(phys_base), SYMBOL(init_top_pgt) (else
// init_level4_pgt, else CR3), NUMBER(sme_mask), NUMBER(pgtable_l5_enabled).
//
// vmcore-dmesg: the printk keys only (package printk), and the symbols'
// addresses through p_vaddr.
//
// # How the checks are organised
//
// A verification runs in two phases. The fact-finding phase (facts.go)
// reads, once, what every check builds on: the ELF header and the
// program-header table (A1–A8 run there, since nothing else can run
// without them, and their findings are results like any other), the
// PT_LOADs and the kernel-image segment, the first-match and last-match
// physical views, every note, the VMCOREINFO text and the keys it lacks,
// and the translation inputs consumers share: the phys_base crash and
// makedumpfile choose and makedumpfile's page walk through it. No check
// changes those facts. Then each check group (B, C and K-7, D, E, F, G1,
// V, K, Z1) is a function of the facts that returns its results. Where a
// check needs what another concluded, that outcome is a parameter: E2
// walks through the phys_base E1 confirms, E4 is skipped when E2 found the
// walk broken, and E6 translates direct-map addresses through the base E4
// confirmed. The report sorts the results into catalog order, so the order
// the groups run in is no contract.
//
// What one consumer reads, and how it translates, is in that consumer's
// file: crash.go (the header prefix it parses, its phys_base choice, the
// linear kernel-image mapping, the start-up reads of E6), makedumpfile.go
// (its page walk, mem_section for E5), drgn.go (p_vaddr segments with the
// last one winning, its page walks before and since 0.0.27) and
// vmcoredmesg.go (p_vaddr only, F2). libkdumpfile has no file of its own:
// it reads through a page walk and linear mappings that the checks model
// with makedumpfile's walk and crash's arithmetic. The checks about the
// dump itself stay in topic files: header.go, segments.go, notes.go,
// vmci.go, translate.go (E1–E4, comparing the consumers' views),
// printk.go, kernelver.go, vmlinux.go, livedump.go and deep.go.
//
// # How each consumer reads virtual memory
//
// Virtual memory is read the way each consumer reads it, because they
// disagree and a dump can satisfy one and not another (package kmem
// describes the walk):
//
//   - makedumpfile walks the page tables from SYMBOL(init_top_pgt) for every
//     virtual address, reads physical memory first-match in program-header
//     order (closest_pt_load), and takes PAGE_OFFSET from the RAM segments'
//     p_vaddr − p_paddr (a wrong one fails "Could not validate
//     mem_section", as the e2e mutation corpus showed);
//   - crash translates kernel-image addresses arithmetically through
//     phys_base, the direct map through PAGE_OFFSET, and walks only for
//     vmalloc, module and vmemmap addresses, first-match;
//   - drgn prefers p_vaddr segments (the later one wins), then walks from
//     swapper_pg_dir without stripping sme_mask; before 0.0.27 it reads the
//     root table through the p_vaddr segments, which is why QEMU dumps
//     without a kernel-image segment fail with "recursive address
//     translation";
//   - libkdumpfile combines a page-table walk, a linear kernel-text mapping
//     (phys_base) and a linear direct map (page_offset_base, or probing);
//   - vmcore-dmesg uses nothing but p_vaddr.
//
// QEMU's dump-guest-memory without paging writes p_vaddr = p_paddr and no
// kernel-image segment: crash and makedumpfile cope (makedumpfile then
// falls back to a stale PAGE_OFFSET constant), drgn only with VMCOREINFO,
// vmcore-dmesg not at all.
package verify
