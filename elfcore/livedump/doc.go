// Package livedump is the home of the livedump device format: what the
// livedump v1 kernel code (RFC, November 2023: "crash/vmcore: VMCOREINFO
// creation from non-kdump kernel", "livedump: Add write protection
// management", "livedump: Add memory dumping functionality", on a 6.2
// base) writes to a raw block device, and what it gets wrong. This comment
// is the specification; the constants, the header classification and the
// note-size formula below are the only copies of it in ldx. A change of
// format (a v2) starts here.
//
// Statements come from reading the patches and the kernel code they build
// on; those marked [inferred] were reasoned from the code and not seen.
// Real runs of the v1 code (four patches on a Debian 6.1 kernel, under
// QEMU, on disks pre-filled with a per-block pattern) confirmed the rest;
// see "Seen on real runs" at the end.
//
// # Placement
//
// Every write is one bio holding one 4 KiB page at sector pfn·8, so the
// byte offset on the device is the page's physical address (relative to
// the node named as output: a partition counts from its start). The page
// is copied to a private buffer first; pfn 0 and pfn 1 are replaced by the
// header and the notes. Nothing else is ever written: no superblock,
// footer, checksum, bitmap or run id. The device is never cleared, and
// offsets not written keep whatever they held (K-2).
//
//	offset                              content                            written
//	0x0000–0x0FFF    (pfn 0)            ELF header, 3 phdrs, zeros         only at FINISH
//	0x1000–0x1FFF    (pfn 1)            first 4096 bytes of merged notes   at FINISH, and during SWEEP
//	0x2000–~0x9FFFF  (pfns 2–~0x9F)     real low memory (E820 RAM)         SWEEP or fault
//	0xA0000–0xFFFFF                     never (trim_bios_range)            —
//	0x100000 … max_pfn·4096−1           RAM, page by page                  START, faults, SWEEP
//	max_pfn·4096 … +4095                inside the RAM PT_LOAD             never
//
// Inside the RAM PT_LOAD these are never written either: E820 ranges that
// are not RAM (ACPI, reserved, the PCI hole below 4 GiB), the module's
// own buffers (2 × 131072 request pages = 1 GiB, the two write-protect
// bitmaps, about 10 MiB of its static state), pages dropped at run time
// (K-5, K-8), and RAM without a present 4 KiB direct-map PTE [inferred].
// The device must hold (max_pfn+1)·4096 bytes, the top physical address of
// RAM (not its size); nobody checks (K-8).
//
// # Page 0: the header
//
// crash_prepare_elf64_headers builds it at START (one range: cmem =
// [SZ_1M, (max_pfn+1)·4096 − 1]) and merge_note_headers_elf64 merges its
// notes. ELF64, little-endian, ET_CORE, EM_X86_64, OSABI 0, e_phoff 64,
// e_ehsize 64, e_phentsize 56, e_phnum 3 (232 bytes), then zeros:
//
//	phdr  type     p_offset = p_paddr   p_vaddr                  p_filesz = p_memsz
//	0     PT_NOTE  0x1000 (paddr 0)     0                        NotesSize(N, S)
//	1     PT_LOAD  __pa_symbol(_text)   _text (KASLR-relocated)  _end − _text
//	2     PT_LOAD  0x100000             page_offset_base+1 MiB   (max_pfn+1)·4096 − 1 MiB
//
// PT_LOADs have p_flags RWX and p_align 0. p_offset is the physical
// address (the kexec elfcorehdr convention, never rewritten here), which
// is why the raw device read as a file is an ELF core. The image segment
// overlaps the RAM one. The RAM segment covers every hole below the top of
// RAM and one page past it (K-3); nothing below 1 MiB is covered. IsLayout
// recognises this shape, SplitHeader takes it apart.
//
// Before the merge the buffer holds one PT_NOTE per present CPU, one for
// VMCOREINFO and the two PT_LOADs, but is sized for the possible CPUs:
// roundup(64 + 56·(possible+3), 4096). That is one page up to 69 possible
// CPUs; MergedHeaderSize is what remains after the merge (K-10).
//
// # Page 1: the notes
//
// The merge copies, back to back into a zeroed buffer, every present CPU's
// CORE note (for_each_present_cpu order), then the VMCOREINFO note:
//
//	CORE note k        at 4096 + 356·k
//	VMCOREINFO header  at 4096 + 356·N
//	VMCOREINFO text    at 4096 + 356·N + 24
//
// A CORE note (crash_save_cpu, at START, for every present CPU with the
// same synthetic pt_regs) is 12 + 8 ("CORE\0" padded) + 336
// (elf_prstatus) = 356 bytes, NT_PRSTATUS: pr_pid (descriptor offset 32)
// is the stop_machine thread's, the same in every note; of pr_reg (offset
// 112) only ip (offset 240) is set, to memdump_thread_func; sp is 0;
// fs_base, gs_base and the segment registers come from the leader CPU
// (K-7).
//
// The VMCOREINFO note has n_namesz 11 ("VMCOREINFO\0" padded to 12),
// n_type 0 and n_descsz S, the text length without NUL; it takes
// 24 + roundup4(S) bytes. The text is the boot text plus a CRASHTIME line
// appended at START (so CRASHTIME is the START time, K-11), at most 4096
// bytes, KEY=value lines in the kernel's emission order, the arch keys
// (phys_base, init_top_pgt, pgtable_l5_enabled, KERNELOFFSET, …) and
// CRASHTIME last. S is about 3.3 KB on distro 6.x kernels.
//
// The PT_NOTE claims all of it — NotesSize: 356·N + 24 + roundup4(S) —
// but only the first page is written (K-1). So:
//
//   - all notes are written iff 356·N + 24 + roundup4(S) ≤ 4096: with a
//     typical S that is N ≤ 2;
//   - text byte e survives iff 356·N + 24 + e < 4096 (TextKept);
//   - the CORE notes and the VMCOREINFO note header fit iff N ≤ 11
//     (MaxCoreNotesWritten); from N = 12 CORE notes are cut too;
//   - what a reader finds in the claimed notes past 0x2000 is pfn 2's low
//     memory or stale bytes, under an n_descsz that still claims the full
//     text.
//
// The complete notes still exist in the dumped memory: START rewrites the
// kernel's global vmcoreinfo_note page (CRASHTIME included) before it
// write-protects memory, so its copy on the device, at the physical
// address /sys/kernel/vmcoreinfo gives (or found by scanning page starts
// for the note header and "OSRELEASE="), is complete (VMCOREINFOHeader
// recognises it). The CORE notes can be rebuilt from the first one, which
// always survives: all are the same.
//
// # When pages are written
//
// INIT selects every pfn below max_pfn that overlaps E820 RAM after
// trim_bios_range (so never pfn 0 or 0xA0–0xFF), splits the direct map into
// 4 KiB pages, allocates the buffers and unselects the module's own data.
// START, inside stop_machine, dumps the sensitive pages at once (every
// task_struct and kernel stack, the kernel half's page tables, the first
// 2 MiB of CPU 0's per-CPU area, kernel .data), writes the CPU notes,
// VMCOREINFO, the header and the merged notes into memory, and
// write-protects the direct map; a kernel write to a protected page
// copies it first. SWEEP dumps every page not yet saved. FINISH queues
// pfn 0 and pfn 1 and returns at once; UNINIT frees everything. Only
// direct-map writes fault: memory changed through other mappings (vmalloc,
// user mappings, the kernel image's globals outside .data) is captured as
// of SWEEP, not START.
//
// # Telling runs and boots apart
//
// The kernel writes no run id, so ldx checks consistency:
//
//   - pfn 0 is written only at FINISH, pfn 1 also during SWEEP: a run that
//     stopped before FINISH leaves an older run's header beside its own
//     notes. The header's NotesSize must be the formula for the CORE notes
//     and VMCOREINFO text page 1 actually holds (CPUs inverts it), or the
//     header is another run's.
//   - The header's image segment must match the memory's VMCOREINFO
//     (Header.PhysBase against phys_base, _text against _stext and
//     KERNELOFFSET), or the header is another boot's.
//   - With ldx capture's manifest: RAMEnd(max_pfn) must be the header's RAM
//     end, the present CPUs the count the note size gives, and CRASHTIME
//     not earlier than the capture.
//
// Within one boot the header of every run is byte for byte the same, so
// only the notes and memory can tell runs of one boot apart.
//
// # Defects
//
// The IDs are the ones ldx's code and `ldx verify` use.
//
//   - K-1 Notes cut at one page. Only pfn 1 of the notes is written while
//     p_filesz claims them all: from 3 CPUs (typical S) the tail of
//     VMCOREINFO — the arch keys, KERNELOFFSET, CRASHTIME — is lost, from
//     12 the VMCOREINFO header and CORE notes too. Repair: VMCOREINFO from
//     the dumped vmcoreinfo_note page, CORE notes copied from the first.
//   - K-2 The device is never cleared and there is no completion marker:
//     every offset not written returns stale bytes, and an old header
//     looks valid. Detectable only with help: clear or mark every page
//     before INIT (ldx capture does, and records it in its manifest).
//   - K-3 One RAM PT_LOAD [1 MiB, (max_pfn+1)·4096): it covers MMIO and
//     reserved holes and one page past RAM. Repair: PT_LOADs over the
//     capture-time RAM map (or the kernel's present memory sections).
//   - K-4 Race between FINISH and UNINIT [inferred]: the thread stops
//     without draining, so pages queued last (the header, notes, late
//     pages) can be lost and in-flight bios point at freed pages. Seen on
//     real runs as lost late pages (header and notes never lost): wait
//     after FINISH before UNINIT.
//   - K-5 Pages dropped without notice: when the fault pool (512 MiB) is
//     empty, or bio_alloc fails, the page is skipped and its bit already
//     cleared; START alone can overflow the pool on very large machines
//     [inferred]. Not seen.
//   - K-6 vmcoreinfo_size grows on every run: from the second livedump in
//     a boot the text has NULs (21 per earlier run) before CRASHTIME, in
//     memory too, and K-1 starts earlier. Repair: strip them.
//   - K-7 Synthetic CPU notes: ip = memdump_thread_func, sp = 0, one pid
//     for all. No CPU's real state is saved; nothing can unwind the tasks
//     that were running. Nothing to repair; said plainly.
//   - K-8 I/O results ignored, no flush: failed writes and writes past
//     the device's end leave holes without a message. Detectable when the
//     device is smaller than the RAM PT_LOAD's end.
//   - K-9 Wrong pfn unselected for large-page kernel-image addresses
//     [inferred]. Refuted on real runs (.data/.bss were 4 KiB-mapped).
//   - K-10 Header overflow at FINISH with many possible CPUs [inferred]:
//     from 70 possible CPUs the header buffer is 8192 bytes and may stay so
//     after the merge (MergedHeaderSize > PageSize); FINISH copies it into
//     one page: an oops or memory corruption, and no header. Not tested;
//     ldx capture refuses such machines.
//   - K-11 CRASHTIME and the header reflect START, not the end of a dump
//     that can take minutes.
//
// Kernel-side faults that do not show in the format but decide whether a
// capture is safe: a bad output path is accepted at INIT and START then
// oopses (the open error is tested with < 0); START and SWEEP in the wrong
// state return success; "unprotect" makes every direct-map page writable,
// read-only ones included.
//
// # Seen on real runs
//
// Confirmed: the placement and map above, including pfns 2–0x9F written,
// 0xA0–0xFF and the page at max_pfn never written, holes inside the RAM
// PT_LOAD never written (a 4 GiB guest needs a 5 GiB + 4 KiB device);
// exactly the module's buffers (262144 pages), its static state and its
// bitmaps left unwritten in a complete run; the header fields and the
// note-size formula; the CORE notes as described; S ≈ 3.25 KB on 6.1, cut
// after 2648 text bytes with 4 CPUs and 1224 with 8; the K-6 NULs; the
// complete VMCOREINFO note always in memory; a run stopped before FINISH
// leaving a stale pfn 0 beside its own pfn 1.
//
// Dangerous, so a capture front end must refuse or guard (ldx capture's
// preflight):
//
//   - a randomised memory layout (CONFIG_RANDOMIZE_MEMORY, KASLR's default:
//     page_offset_base not 0xffff888000000000 / 0xff11000000000000) makes
//     INIT oops, every time; nokaslr works;
//   - too little free memory makes INIT's 1 GiB of single-page allocations
//     set off the OOM killer and then a panic, not ENOMEM;
//   - more CPUs than fit in the 2 MiB of CPU 0's per-CPU area START treats
//     as sensitive double-fault at START (12 CPUs with 256 KiB units);
//   - a bad output path: START oopses the dump thread, SWEEP hangs;
//   - UNINIT straight after FINISH loses 0–122 late pages, silently;
//     waiting 5 s lost none;
//   - abandoning works: UNINIT from START restores the page tables, and
//     pfn 0 and 1 stay stale.
//
// The sysfs interface: state reads the number, an empty line and six
// legend lines; the last character written to output is dropped (taken
// as the newline); 7 and −1 give error 515, other bad writes and
// transitions from the wrong state EINVAL. Timings on a 2 GiB guest under
// TCG: INIT 0.1–0.6 s, START 0.05–0.3 s, SWEEP 1.3–3.1 s, FINISH instant.
//
// Read as a file, the raw device opened in crash, makedumpfile and drgn
// with 2 CPUs (crash's bt -a failing on sp = 0); with 4 or 8 CPUs and
// KASLR the cut VMCOREINFO made makedumpfile and drgn fail and crash need
// --kaslr=auto — what ldx extract is for.
package livedump
