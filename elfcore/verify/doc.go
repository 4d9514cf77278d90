// Package verify tells, in well under a second and before anyone needs the
// dump, whether crash, makedumpfile, drgn, libkdumpfile and vmcore-dmesg
// will accept a kernel vmcore, and what is missing.
//
// A dump is taken once, on a sick machine, and opened later by someone else
// with a tool that fails with a cryptic message — or silently shows wrong
// data — when one header field is off. Each requirement of those consumers
// (docs/consumer-compat.md §1, rows A1–F2) is a named [Result]: its
// checklist ID, the severity its failure has for each consumer (an
// [Effect]), what was found (with the file offset and field) and what to do.
// [Report.Consumers] turns the failed checks into one verdict per consumer,
// and [RunTools] runs the installed consumers themselves so that the
// prediction can be compared with what they really do.
//
// The file is checked as it is: its own header layout, notes and segments.
// A raw livedump device or image therefore fails the checks its kernel-side
// defects break (notes cut at one page, one RAM range over holes, stale
// device bytes; docs/livedump-format.md §7), and each of those results says
// that `ldx extract` repairs it. The repaired view (package dump) is
// used only to tell whether a repair is possible, never to hide a defect.
//
// Virtual memory is read the way each consumer reads it, because they
// disagree and a dump can satisfy one and not another:
//
//   - makedumpfile walks the page tables from SYMBOL(init_top_pgt), reads
//     physical memory first-match in program-header order
//     (closest_pt_load), and takes PAGE_OFFSET from the RAM segments'
//     p_vaddr − p_paddr (a wrong one fails "Could not validate
//     mem_section", as the e2e mutation corpus showed);
//   - crash translates kernel-image addresses arithmetically through
//     phys_base and walks only for vmalloc-type addresses, first-match;
//   - drgn prefers p_vaddr segments (the later one wins), then walks; before
//     0.0.27 it reads the root table through the p_vaddr segments, which is
//     why QEMU dumps without a kernel-image segment fail with "recursive
//     address translation";
//   - vmcore-dmesg uses nothing but p_vaddr.
//
// The per-consumer effects follow docs/consumer-compat.md, corrected where
// the installed consumers (crash 8.0.2, makedumpfile 1.7.2, drgn 0.0.22)
// behave otherwise in `make verify-agreement`: e.g. makedumpfile
// --dump-dmesg needs only part of the memory-model and printk keys, and
// crash with a vmlinux needs no OSRELEASE.
//
// By default only headers, notes and a bounded number of small reads are
// done (page-table walks, init_uts_ns, the printk ring's descriptors, a
// sample of overlapping bytes), so any size of dump verifies in well under
// a second. Options.Deep reads every byte of every segment.
package verify
