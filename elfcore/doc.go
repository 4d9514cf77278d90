// Package elfcore reads and writes ELF64 core files the way Linux kernel
// dump consumers (crash, makedumpfile, drgn, libkdumpfile, vmcore-dmesg)
// expect them.
//
// It follows the split of the standard library's debug/elf: the on-disk
// records are debug/elf's own raw types (elf.Header64, elf.Prog64,
// elf.Section64) plus the note header that debug/elf lacks (raw.go), and the
// parsed model (File, ProgHeader, Note) is separate from them (file.go,
// note.go). Unlike debug/elf it reads from any io.ReaderAt whose size may be
// unknown (a block device), understands extended program-header numbering
// (PN_XNUM), bounds every allocation by what the file can hold, and reports
// malformed input as a *FormatError that names the byte offset and the field.
//
// The writer (writer.go) lays a core out in the only shape every consumer
// accepts: program headers at offset 64, the single merged PT_NOTE first,
// all headers and notes before the first PT_LOAD's data, p_align 0.
package elfcore
