// Package kmodtest emulates what the livedump v1 kernel module writes to
// its block device, in the spirit of net/http/httptest: tests all over ldx
// use it to make raw livedump device images from kernel memory (a QEMU
// dump of a real kernel via FromELFDump, or NewSynthetic's made-up memory)
// without a patched kernel, with each of the kernel's known defects
// switchable.
//
// The rules it follows are those package livedump (elfcore/livedump)
// describes: the device layout (what the kernel writes), its defects K-1
// to K-10, and, where real runs showed something the source reading had
// only inferred, what real runs showed:
//
//   - byte offset = pfn·4096 = physical address; nothing else is written
//     (the device layout);
//   - the pages written are the pfns below max_pfn that overlap E820 RAM
//     after trim_bios_range (so never pfn 0, 0xA0–0xFF, holes or the page
//     at max_pfn), minus what the module unselects (Run.Unwritten) or loses
//     (Run.Lost), with memory as SWEEP saw it;
//   - pfn 0 is the ELF header, written only at FINISH; pfn 1 is the first
//     page of the merged notes, written during SWEEP too; only that
//     one page of notes exists on the device while the PT_NOTE claims them
//     all (K-1);
//   - START rewrites the global vmcoreinfo_note (with CRASHTIME, and the
//     K-6 NULs from earlier runs) and the CPUs' crash_notes before the
//     walk, so their dumped copies are complete (the notes);
//   - never-written offsets keep what the device held: stale bytes, or
//     ldx capture's zeros or markers (K-2), and the capture manifest.
//
// The header and notes are encoded here byte by byte, as
// crash_prepare_elf64_headers and merge_note_headers_elf64 produce them,
// and deliberately not with elfcore's writer: this package is the
// reference elfcore's reader and ldx's converter are tested against, and a
// bug shared by reader and writer must not cancel out.
//
// Images are streamed through a 1 MiB buffer and written sparse, so a
// multi-GiB device image of a small guest costs little time or disk.
package kmodtest
