package verify

import "strings"

// entry describes a check: its name, the severity the requirement carries
// in the checklist (the package documentation, row ID), and the consumers
// it matters to.
type entry struct {
	ID        ID
	Name      string
	Severity  Severity
	Consumers []Consumer
}

// ID names a check: a row of the consumers' requirements (package
// documentation), a livedump defect (package livedump), or one of ldx's
// own checks. Every check is a constant, so a misspelt ID does not compile.
type ID string

// The checks, in report order.
const (
	A1  ID = "A1"
	A2  ID = "A2"
	A3  ID = "A3"
	A4  ID = "A4"
	A5  ID = "A5"
	A6  ID = "A6"
	A7  ID = "A7"
	A8  ID = "A8"
	B1  ID = "B1"
	B2  ID = "B2"
	B3  ID = "B3"
	B4  ID = "B4"
	B5  ID = "B5"
	B6  ID = "B6"
	B7  ID = "B7"
	B8  ID = "B8"
	B9  ID = "B9"
	B10 ID = "B10"
	B11 ID = "B11"
	B12 ID = "B12"
	B13 ID = "B13"
	B14 ID = "B14"
	C1  ID = "C1"
	C2  ID = "C2"
	C3  ID = "C3"
	C4  ID = "C4"
	C5  ID = "C5"
	C6  ID = "C6"
	C7  ID = "C7"
	C8  ID = "C8"
	D1  ID = "D1"
	D2  ID = "D2"
	D3  ID = "D3"
	D4  ID = "D4"
	D5  ID = "D5"
	D6  ID = "D6"
	D7  ID = "D7"
	D8  ID = "D8"
	D9  ID = "D9"
	D10 ID = "D10"
	D11 ID = "D11"
	D12 ID = "D12"
	D13 ID = "D13"
	E1  ID = "E1"
	E2  ID = "E2"
	E3  ID = "E3"
	E4  ID = "E4"
	E5  ID = "E5"
	E6  ID = "E6"
	F1  ID = "F1"
	F2  ID = "F2"
	G1  ID = "G1"
	L1  ID = "L1"
	V1  ID = "V1"
	V2  ID = "V2"
	V3  ID = "V3"
	V4  ID = "V4"
	V5  ID = "V5"
	V6  ID = "V6"
	V7  ID = "V7"
	K1  ID = "K-1"
	K2  ID = "K-2"
	K3  ID = "K-3"
	K7  ID = "K-7"
	Z1  ID = "Z1"
	H1  ID = "H1"
	H2  ID = "H2"
	H3  ID = "H3"
	H4  ID = "H4"
	H5  ID = "H5"
	H6  ID = "H6"
	H7  ID = "H7"
	H8  ID = "H8"
	H9  ID = "H9"
)

var (
	all     = []Consumer{Crash, Makedumpfile, Drgn, Libkdumpfile, VmcoreDmesg}
	tools3  = []Consumer{Crash, Makedumpfile, Drgn}
	mkdDrgn = []Consumer{Makedumpfile, Drgn}
)

// catalog lists every check in report order.
var catalog = []entry{
	{A1, "ELF identification (magic, 64-bit, little-endian, version)", Fatal, all},
	{A2, "e_type is ET_CORE", Fatal, []Consumer{Crash, Drgn, Libkdumpfile}},
	{A3, "e_machine is EM_X86_64", Fatal, all},
	{A4, "e_version is 1", Fatal, []Consumer{Crash, Libkdumpfile, VmcoreDmesg}},
	{A5, "program headers at offset 64", Fatal, []Consumer{Makedumpfile, Crash}},
	{A6, "e_phentsize 56 and e_ehsize 64", Fatal, all},
	{A7, "at least two program headers", Fatal, []Consumer{Crash}},
	{A8, "no extended program-header numbering", Degraded, []Consumer{VmcoreDmesg}},

	{B1, "phdr[0] is the only PT_NOTE", Fatal, []Consumer{Crash, Makedumpfile}},
	{B2, "every later program header is PT_LOAD", Fatal, []Consumer{Crash}},
	{B3, "PT_LOAD segments with data", Fatal, []Consumer{Makedumpfile, Libkdumpfile}},
	{B4, "headers and notes before the first segment data", Fatal, []Consumer{Crash}},
	{B5, "first PT_LOAD has a non-zero p_offset", Fatal, []Consumer{Crash, Makedumpfile}},
	{B6, "crash classifies the file as kdump (p_align 0)", Fatal, []Consumer{Crash}},
	{B7, "p_paddr are physical addresses", Fatal, all},
	{B8, "RAM segments carry direct-map virtual addresses", Degraded, []Consumer{VmcoreDmesg, Drgn, Libkdumpfile, Makedumpfile}},
	{B9, "kernel-image PT_LOAD", Degraded, []Consumer{Drgn, VmcoreDmesg, Crash, Makedumpfile}},
	{B10, "p_filesz equals p_memsz", Degraded, []Consumer{Libkdumpfile}},
	{B11, "segments inside the file", Fatal, all},
	{B12, "overlapping segments hold identical bytes", Degraded, all},
	{B13, "page-aligned segments", Cosmetic, []Consumer{Makedumpfile, VmcoreDmesg}},
	{B14, "segment order (kernel image first, RAM by address)", Cosmetic, []Consumer{Crash, Makedumpfile}},

	{C1, "PT_NOTE alignment 0 or 4", Fatal, []Consumer{Drgn}},
	{C2, "note segment holds exactly its notes", Cosmetic, []Consumer{Crash}},
	{C3, "VMCOREINFO note", Fatal, all},
	{C4, "one VMCOREINFO note", Cosmetic, tools3},
	{C5, "NT_PRSTATUS notes of 336 bytes", Degraded, []Consumer{Libkdumpfile, Crash, Drgn}},
	{C6, "one NT_PRSTATUS per CPU", Degraded, []Consumer{Crash}},
	{C7, "live-dump CPU mapping (pr_pid = cpu+1 without CRASHTIME)", Degraded, []Consumer{Drgn}},
	{C8, "no QEMU or SNAP notes by accident", Fatal, []Consumer{Crash, Drgn}},

	{D1, "VMCOREINFO lines well-formed", Fatal, mkdDrgn},
	{D2, "VMCOREINFO values in the kernel's formats", Fatal, tools3},
	{D3, "OSRELEASE", Fatal, []Consumer{Crash, Makedumpfile, Drgn, Libkdumpfile}},
	{D4, "PAGESIZE", Fatal, mkdDrgn},
	{D5, "SYMBOL(swapper_pg_dir)", Fatal, []Consumer{Drgn}},
	{D6, "SYMBOL(init_top_pgt)", Fatal, []Consumer{Makedumpfile, Libkdumpfile}},
	{D7, "NUMBER(phys_base)", Fatal, all},
	{D8, "KASLR: KERNELOFFSET and SYMBOL(_stext)", Fatal, []Consumer{Crash, Drgn}},
	{D9, "NUMBER(pgtable_l5_enabled)", Degraded, all},
	{D10, "NUMBER(sme_mask)", Degraded, []Consumer{Crash, Makedumpfile, Libkdumpfile}},
	{D11, "layout keys (KERNEL_IMAGE_SIZE, MAX_PHYSMEM_BITS, SECTION_SIZE_BITS, VMALLOC_START)", Degraded, tools3},
	{D12, "makedumpfile memory-model keys", Fatal, []Consumer{Makedumpfile}},
	{D13, "BUILD-ID", Degraded, []Consumer{Drgn}},

	{E1, "phys_base agrees three ways", Fatal, all},
	{E2, "page-table walk reaches the kernel", Fatal, []Consumer{Makedumpfile, Drgn, Crash}},
	{E3, "init_uts_ns release equals OSRELEASE", Fatal, tools3},
	{E4, "direct-map p_vaddr agrees with the page tables", Degraded, []Consumer{Drgn, Libkdumpfile, VmcoreDmesg}},
	{E5, "mem_section validates", Fatal, []Consumer{Makedumpfile}},
	{E6, "what crash reads at start-up is in the dump (per-CPU TSS, node data)", Fatal, []Consumer{Crash}},

	{F1, "printk ring (lockless) readable", Fatal, []Consumer{Makedumpfile, VmcoreDmesg}},
	{F2, "printk buffers reachable through p_vaddr", Fatal, []Consumer{VmcoreDmesg}},

	{G1, "each consumer version knows this kernel", Info, tools3},
	{L1, "pages left out by a dump level (-d)", Info, all},

	{V1, "BUILD-ID equals the vmlinux's build-id (--vmlinux)", Fatal, []Consumer{Crash, Drgn}},
	{V2, "OSRELEASE and linux_banner equal the vmlinux's (--vmlinux)", Fatal, []Consumer{Crash, Drgn}},
	{V3, "SYMBOL() entries equal vmlinux symbols plus KERNELOFFSET (--vmlinux)", Fatal, tools3},
	{V4, "OFFSET() entries equal the vmlinux's DWARF (--vmlinux)", Fatal, tools3},
	{V5, "SIZE() entries equal the vmlinux's DWARF (--vmlinux)", Fatal, tools3},
	{V6, "LENGTH() entries equal the vmlinux's DWARF (--vmlinux)", Fatal, tools3},
	{V7, "NUMBER() enumerators equal the vmlinux's DWARF (--vmlinux)", Degraded, tools3},

	{K1, "livedump notes cut at one page", Fatal, all},
	{K2, "livedump device cleared or marked before the capture", Degraded, all},
	{K3, "livedump RAM range over holes and past RAM", Degraded, all},
	{K7, "CPU registers of a live dump", Info, []Consumer{Crash, Drgn}},

	{Z1, "every segment byte readable (--deep)", Fatal, all},

	{H1, "kdump header, sub-header and bitmaps", Fatal, []Consumer{Crash, Makedumpfile}},
	{H2, "VMCOREINFO in the kdump sub-header", Fatal, []Consumer{Crash, Makedumpfile}},
	{H3, "kdump page descriptors inside the file", Degraded, []Consumer{Crash, Makedumpfile}},
	{H4, "kdump sub-header phys_base equals NUMBER(phys_base)", Fatal, []Consumer{Makedumpfile}},
	{H5, "every kdump page decompresses (--deep)", Degraded, []Consumer{Crash, Makedumpfile}},
	{H6, "kdump bitmaps agree with the page_desc array", Fatal, tools3},
	{H7, "init_uts_ns reads from the kdump file", Fatal, tools3},
	{H8, "kdump file as written, not a flattened stream", Fatal, []Consumer{Makedumpfile, Drgn}},
	{H9, "kdump page compressions each consumer build reads", Info, []Consumer{Makedumpfile}},
}

func lookup(id ID) entry {
	for _, e := range catalog {
		if e.ID == id {
			return e
		}
	}
	panic("verify: no catalog entry " + string(id))
}

// JoinIDs writes check IDs separated by sep, for messages and tables.
func JoinIDs(ids []ID, sep string) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, sep)
}
