// Package kmod drives the livedump kernel interface safely: it is what
// `ldx capture` is made of.
//
// The livedump v1 code is driven through /sys/kernel/livedump (`state`,
// `output`; later trees add `type`, `buffer_size`, `failed`, …) and
// answers only EINVAL or error 515, with the reason, if any, in the
// kernel log (livedump-format.md §6.1). Real runs of that code showed that
// in ordinary setups it takes the machine down (§11.2): INIT oopses on a
// randomised memory layout and panics via the OOM killer when memory is
// short, START double-faults with more CPUs than its per-CPU protection
// covers and oopses on a bad output path, and UNINIT straight after FINISH
// silently loses pages. The kernel also leaves the device as it was
// (stale bytes, no completion marker, K-2).
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
package kmod
