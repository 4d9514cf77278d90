package elfcore

import "debug/elf"

// On-disk sizes of the records of an ELF64 little-endian core.
const (
	HeaderSize  = 64 // sizeof(Elf64_Ehdr)
	ProgSize    = 56 // sizeof(Elf64_Phdr)
	SectionSize = 64 // sizeof(Elf64_Shdr)
	NoteHdrSize = 12 // sizeof(Elf64_Nhdr)
)

// PN_XNUM in e_phnum means that the real number of program headers is in
// the sh_info field of section header 0 (extended numbering, used by
// kernels and QEMU for cores with more than 65534 segments).
const PN_XNUM = 0xffff

// rawNote is the on-disk note header (Elf64_Nhdr). debug/elf has no type
// for it.
type rawNote struct {
	Namesz uint32
	Descsz uint32
	Type   uint32
}

// Note types and names used in Linux kernel cores.
const (
	NT_PRSTATUS   = uint32(elf.NT_PRSTATUS) // "CORE": one per CPU
	NT_TASKSTRUCT = 4                       // "CORE": panic task hint; "SNAP": crash's snap.so live dumps
	NT_VMCOREINFO = 0                       // "VMCOREINFO": the kernel's VMCOREINFO text

	NameCore       = "CORE"
	NameVMCOREINFO = "VMCOREINFO"
	NameQEMU       = "QEMU"
)
