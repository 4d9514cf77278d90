// Package vmlinux reads a kernel's debug image (the vmlinux of a -dbg
// package): its ELF symbol table, build-id, release string and initialised
// data, and type layouts from its DWARF.
//
// A distro vmlinux is large (Debian 6.1: 590 MB, 165 MB of .debug_info,
// 3.6 million top-level DIEs), and every question ldx asks of it needs only
// a few dozen types. So nothing is loaded up front: the file is mapped, not
// read; the symbol table is decoded on the first symbol lookup; and DWARF
// is indexed one compilation unit at a time, only as far as the lookups
// need. The core kernel types (task_struct, page, list_head …) are defined
// in the first units (init/main.c includes most headers), so most
// questions are answered after a small part of .debug_info; only a name
// that does not exist costs a walk of all of it.
//
// Which DWARF reader does what, and why:
//
//   - Type layouts (sizes, member offsets, bitfields, array lengths) are
//     read DIE by DIE with the standard library's debug/dwarf Reader.
//     delve's godwarf.ReadType is wrong on DWARF 5 kernels: it ignores
//     DW_AT_data_bit_offset, so bitfields come out at offset 0, and it
//     leaves C arrays without DW_AT_byte_size at size -1
//     (measured with delve v1.27.2 on a Debian 6.1 vmlinux: 19 bitfield
//     members of task_struct at offset 0, task_struct.comm[16] and
//     new_utsname.release[65] at size -1; the standard library gets all
//     of them right).
//     Reading only the DIEs asked for also keeps memory flat: the standard
//     library's Data.Type would pull in every type reachable from
//     task_struct.
//   - Global variables are read with delve: godwarf's
//     LoadAbstractOriginAndSpecification merges GCC's nameless definition
//     DIE (DW_AT_specification, DW_AT_location) with its declaration, and
//     op.ExecuteStackProgram evaluates the location expression, as delve
//     does for Go programs.
//   - Compressed debug sections (.zdebug_*, SHF_COMPRESSED) are read with
//     godwarf.GetDebugSectionElf, which handles both; uncompressed ones
//     are slices of the mapping.
//
// Only x86_64 little-endian vmlinux files are expected, but nothing here is
// specific to them beyond the byte order read from the ELF header.
package vmlinux
