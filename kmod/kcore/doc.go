// Package kcore captures a running stock kernel's memory through
// /proc/kcore, which every distribution kernel has: no patches, no reboot
// (ldx capture --kcore). It presents the live memory as a dump.Dump, and
// package extract writes it with the same layout and output safety as
// any other dump.
//
// # What /proc/kcore is
//
// /proc/kcore is an ELF core the kernel generates as it is read. Its
// PT_LOADs map kernel virtual ranges: the kernel text (_text to _end), the
// vmalloc and module areas, the direct map of each System RAM range, and
// the vmemmap. Since 4.11 a direct-map segment carries the physical address
// it maps in p_paddr (so p_vaddr − p_paddr is page_offset_base), the text
// segment carries the image's physical address, and every other segment
// has p_paddr = −1. File offsets are derived from virtual addresses, so the
// file's apparent size is enormous (st_size is the end of the highest
// segment); only pread at segment offsets is meaningful. Since 4.19 its
// notes include the kernel's VMCOREINFO; before that the note's physical
// address and size are in /sys/kernel/vmcoreinfo ("%lx %x"), and it is
// read through the direct map. Its NT_PRSTATUS is zeroed: there are no
// saved registers, because nothing crashed.
//
// Reading it needs CAP_SYS_RAWIO (the file is mode 0400 root); the
// kernel's lockdown in "confidentiality" mode refuses the open with EPERM
// (/sys/kernel/security/lockdown shows "[confidentiality]"). Kernels
// without CONFIG_PROC_KCORE have none, and container runtimes commonly
// hide it (bind-mounting /dev/null over it). Pages of RAM that are
// offline or not mapped read as zeros; a read that faults is an error for
// that range only, and ldx stores zeros there and reports the addresses.
//
// # Not a snapshot
//
// Nothing is frozen: memory changes while it is read, so a structure that
// spans pages read seconds apart can be inconsistent (a "smeared" dump).
// ldx reads first, hashes, and reads again at the end the pages readers
// depend on most — the VMCOREINFO note, the kernel image's page-table
// pages (every table on the walk of the image, from the top-level table
// down), the printk ring's descriptor array, and init_task's pages (the
// head of the task list) — and records in the dump's LDX note (package
// dump) when the read started and ended and how many of those pages
// changed. The CPU notes are one NT_PRSTATUS per online CPU with pr_pid =
// CPU number + 1 (the live-dump convention) and no registers; ldx info
// reports such a dump as a live, non-atomic capture.
//
// # Safety
//
// The output must not be on a RAM-backed file system (tmpfs, ramfs):
// writing a dump of memory into memory takes the memory being dumped, up to
// the OOM killer. The file system must have room for the estimate (all of
// RAM: zero pages become holes, but which pages are zero is known only
// once read; --force accepts less). Refusals happen before anything is
// written. Reads are large and sequential (4 MiB), can be paced
// (MaxRate), and ldx writes nothing but its output. The output can also be
// a stream (Options.Stream, `-o -`): the vmcore in makedumpfile's flattened
// format, every write a record and the headers last, so it can leave the
// machine through a pipe without touching its file systems, or go onto a
// raw disk (its reader stops at the stream's end record, whatever the disk
// holds after it). Only a stream into a regular file on a RAM-backed file
// system is refused, judged by the open file itself (fstat, fstatfs): a
// block device's node lives on devtmpfs, which statfs reports as tmpfs,
// yet what is written to the device takes no RAM.
package kcore
