// Package kmod drives the livedump kernel interface safely: it is what
// `ldx capture` is made of.
//
// The livedump v1 code is driven through /sys/kernel/livedump (`state`,
// `output`; later trees add `type`, `buffer_size`, `failed`, …) and
// answers only EINVAL or error 515, with the reason, if any, in the
// kernel log ("The kernel interface" below). Real runs of that code showed
// that in ordinary setups it takes the machine down ("Setups that crash
// the machine"): INIT oopses on a randomised memory layout and panics via
// the OOM killer when memory is short, START double-faults with more CPUs
// than its per-CPU protection covers and oopses on a bad output path, and
// UNINIT straight after FINISH silently loses pages. The kernel also
// leaves the device as it was (stale bytes, no completion marker: defect
// K-2 of package livedump, elfcore/livedump, which describes what the
// kernel writes to the device and its defects K-1 to K-10).
//
// So this package:
//
//   - checks every known way the run can crash the machine or give an
//     untrustworthy dump before anything is written (Preflight, a table of
//     Checks, each naming its risk and the way out);
//   - prepares the device so that never-written pages are recognisable
//     (zeroed or marked) and an aborted run is detectable (header pages
//     cleared), and writes the capture manifest (kmod/manifest) where the
//     kernel never writes;
//   - knows the kernel's state machine and checks each transition before
//     writing it (CheckTransition), writes `output` the way the kernel
//     parses it (the last character is dropped) and reads it back, and
//     shows the kernel log lines behind a failed write (/dev/kmsg);
//   - waits after FINISH until the device has gone quiet before UNINIT,
//     reads the header and notes back bypassing the page cache and checks
//     them against the manifest;
//   - on any error or interruption, resets the kernel side (UNINIT) and
//     leaves the device marked incomplete.
//
// Every host path is a parameter (Paths) and the interface, the device
// probes and the clock are behind Host, so that the tests run the whole
// capture against kmod/kmodtest's emulated machine.
//
// # The kernel interface
//
// /sys/kernel/livedump has two attributes in v1, `state` and `output`, both
// read-write. Reading `state` gives the current number, an empty line and
// six legend lines ("LIVEDUMP_STATE_UNDEFINED = 0" … "LIVEDUMP_STATE_UNINIT
// = 5"). Writing a number asks for a transition:
//
//	0 UNDEFINED  never accepted (EINVAL); the state after boot
//	1 INIT       from 0 or 5: split the direct map, allocate the buffers, open the device
//	2 START      from 1: dump the sensitive pages, build header and notes, write-protect memory
//	3 SWEEP      from 2: queue every page not yet saved (blocks while its pool is empty)
//	4 FINISH     from 3: queue the header (pfn 0) and notes (pfn 1); returns at once
//	5 UNINIT     from any state from 1 on: stop, free, release the device
//
// The state changes only when the action succeeds. A number outside 0–5
// gives ENOIOCTLCMD, which user space sees as "Unknown error 515"; text that
// is not a number, 0, a wrong predecessor, or any state but 5 while
// `output` is empty give EINVAL, the wrong predecessor with a pr_warn line
// in the kernel log; INIT may also fail with ENOMEM or EBUSY. START and
// SWEEP in a state they do not expect return success having done nothing,
// and the number still advances. Nothing serialises the writes: v1 has no
// lock, so a second writer in the middle of a run can crash the kernel.
// UNINIT from START is allowed: a run can be abandoned, the page tables are
// restored and the system carries on (the device then holds only START's
// and faulted pages, pfns 0 and 1 stale). A reboot runs UNINIT too.
//
// `output` is accepted only in states 0 and 5 (else EINVAL), empty or
// longer than PATH_MAX gives EINVAL, and the kernel drops the last
// character written whatever it is, taking it for the newline echo adds:
// `echo -n /dev/vda` stores /dev/vd. Reading it back gives the stored
// path. INIT opens that path with blkdev_get_by_path and FMODE_EXCL (not
// FMODE_WRITE) and does not check the result: a path that is not an
// openable block device is accepted and START oopses at its first write. A
// successful run writes nothing to the kernel log.
//
// Later trees add attributes: `type` (memdump or filedump), `buffer_size`
// (v1's queues are fixed at 131072 pages each), `consistent`, `failed` (a
// count of pages not saved), `use_interrupt` and `kfifo_debug`.
//
// # What INIT takes
//
// INIT allocates two request queues of 131072 pages each (1 GiB of
// ordinary RAM, page by page, scattered over memory; these pages are never
// dumped), two bitmaps of max_pfn bits, and splits every large page of the
// direct map into 4 KiB pages (8 bytes of page table per page, never
// merged back). The device must hold (max_pfn+1)·4096 bytes — the top
// physical address of RAM, holes included, not the amount of RAM — and the
// kernel does not check: writes past its end fail without a message
// (defect K-8).
//
// # Setups that crash the machine
//
// Seen on real runs of v1 (a Debian 6.1 kernel with the four patches under
// QEMU):
//
//   - A randomised memory layout (CONFIG_RANDOMIZE_MEMORY, the default with
//     KASLR and Debian's setting): INIT oopses in wrprotect_unselect_pages,
//     which takes a vmalloc address for a direct-mapped one, every time.
//     `nokaslr`, or a kernel without RANDOMIZE_MEMORY, works; text KASLR
//     alone is fine. Visible from user space: page_offset_base is not
//     0xffff888000000000 (4-level) or 0xff11000000000000 (5-level).
//   - Not enough free memory: INIT's 1 GiB of page-by-page allocations set
//     off the OOM killer and then a panic ("System is deadlocked on
//     memory"), not ENOMEM; a 512 MiB machine dies. The machine needs well
//     over 1 GiB available beyond its working set.
//   - More CPUs than 2 MiB of per-CPU area holds: START treats only the
//     first 2 MiB of CPU 0's per-CPU area as sensitive, and a CPU whose area
//     lies beyond it double-faults (12 CPUs of 256 KiB units: CPU 8 at
//     syscall entry; 8 such CPUs, or 4 of 512 KiB, worked). Many possible
//     CPUs also overflow the header page at FINISH (defect K-10).
//   - A bad `output` path: accepted at INIT, START oopses the livedump
//     thread, SWEEP hangs for ever.
//   - UNINIT right after FINISH loses pages: 0 to 122 pages in five runs of
//     the kernel's livedump.sh (pages changed after SWEEP whose copies were
//     queued and never written), none in seven runs that waited 5 s, with
//     no message (defect K-4).
//
// # Timing
//
// On a 2 GiB guest under TCG: INIT 0.1–0.6 s (free memory drops by about
// 1.1 GB), START 0.05–0.4 s, SWEEP 1.3–4.7 s (8 s at 4 GiB; longer after
// abandoned runs in the same boot), FINISH at once. SWEEP returns with
// about a third of the pages still queued; they land within 1–2.5 s, after
// FINISH, and an UNINIT sent straight after FINISH blocks until they are
// written.
package kmod
