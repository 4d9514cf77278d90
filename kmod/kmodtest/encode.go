package kmodtest

import (
	"encoding/binary"
	"strconv"

	"ldx/elfcore/livedump"
)

// Kernel constants the emulator reproduces. The format's own facts (where
// the notes and RAM start, how large a CORE note is, the note-size
// formula) come from package livedump, their one home in ldx. The bytes,
// though, are encoded here one field at a time and not with elfcore's
// writer: the emulator is the reference that elfcore's reader and ldx's
// converter are tested against, so a bug shared by reader and writer must
// not be able to cancel out, and livedump's own test checks its formula
// and classification against what this package writes.
const (
	// VMCOREINFOBytes is VMCOREINFO_BYTES: the text never exceeds a page.
	VMCOREINFOBytes = 4096
	// VMCOREINFONoteSize is VMCOREINFO_NOTE_SIZE = 2·12 + 12 + 4096: the
	// size /sys/kernel/vmcoreinfo prints and the PT_NOTE before the merge
	// claims (package livedump, "Page 0: the header").
	VMCOREINFONoteSize = 4132
	// CoreNoteSize is one CPU's "CORE"/NT_PRSTATUS note in the merged
	// segment: 12 + 8 + 336 (note_buf_t's 12-byte terminator is not
	// copied by the merge).
	CoreNoteSize = livedump.CoreNoteSize
	// PRStatusSize is sizeof(struct elf_prstatus) on x86_64.
	PRStatusSize = livedump.PRStatusSize
	// NoteBufSize is sizeof(note_buf_t): one CPU's crash_notes buffer,
	// the note plus final_note's empty header.
	NoteBufSize = CoreNoteSize + 12
	// ELFHeaderSize is what page 0 holds before its zero padding: the
	// 64-byte file header and three 56-byte program headers (package
	// livedump, "Page 0: the header").
	ELFHeaderSize = 64 + 3*56
	// RAMStart is SZ_1M, the start of the single cmem range.
	RAMStart = livedump.RAMStart

	prPidOff = 32         // pr_pid in elf_prstatus (after pr_info, pr_cursig, pr_sigpend, pr_sighold)
	prIPOff  = 112 + 16*8 // pr_reg[16] = ip (ELF_CORE_COPY_REGS order)
)

func roundup4(n int) int { return (n + 3) &^ 3 }

// appendNote is the kernel's append_elf_note (kernel/crash_core.c): the
// header, the name with its NUL, the descriptor, each padded to 4 bytes.
// The kernel's padding bytes are whatever the buffer held; every buffer
// involved (crash_notes, vmcoreinfo_note, the merge's vmalloc_user) starts
// zeroed and only ever grows, so they are zero.
func appendNote(b []byte, name string, typ uint32, desc []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(name)+1))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = append(b, name...)
	b = append(b, make([]byte, roundup4(len(name)+1)-len(name))...)
	b = append(b, desc...)
	return append(b, make([]byte, roundup4(len(desc))-len(desc))...)
}

// coreNote is what crash_save_cpu writes for one CPU with livedump's
// synthetic pt_regs: a zeroed elf_prstatus with pr_pid = the stop_machine
// thread's pid and only pr_reg ip set (package livedump, "Page 1: the
// notes"; real runs confirmed that nothing else is set, so the leader's
// segment/fs_base registers are left 0 here).
func coreNote(pid uint32, ip uint64) []byte {
	desc := make([]byte, PRStatusSize)
	binary.LittleEndian.PutUint32(desc[prPidOff:], pid)
	binary.LittleEndian.PutUint64(desc[prIPOff:], ip)
	return appendNote(nil, "CORE", 1, desc)
}

// vmcoreinfoNote is update_vmcoreinfo_note's note: "VMCOREINFO", type 0,
// n_descsz = the text length without NUL.
func vmcoreinfoNote(text []byte) []byte { return appendNote(nil, "VMCOREINFO", 0, text) }

// crashTimeLine is what crash_save_vmcoreinfo appends.
func crashTimeLine(sec int64) []byte {
	return []byte("CRASHTIME=" + strconv.FormatInt(sec, 10) + "\n")
}

// runText returns the VMCOREINFO text of a livedump run: the boot text,
// then one NUL for every byte the earlier runs' CRASHTIME lines grew
// vmcoreinfo_size by (K-6: P1 restores vmcoreinfo_data but not
// vmcoreinfo_size, and the boot data page is zero past the text), then this
// run's CRASHTIME line. vmcoreinfo_append_str caps the text at
// VMCOREINFO_BYTES, cutting the appended line short, so the growth stops
// there. The earlier runs' lines are taken to be as long as this one's (21
// bytes for any time between 2001 and 2286, package livedump, "Seen on real
// runs").
func runText(boot []byte, previousRuns int, sec int64) []byte {
	line := crashTimeLine(sec)
	size := len(boot)
	for range previousRuns {
		size = min(size+len(line), VMCOREINFOBytes)
	}
	text := make([]byte, size, VMCOREINFOBytes)
	copy(text, boot)
	return append(text, line[:min(len(line), VMCOREINFOBytes-size)]...)
}

// mergedNotes is the buffer merge_note_headers_elf64 builds (package
// livedump, "Page 1: the notes"): every present CPU's CORE note in order,
// then the VMCOREINFO note, back to back, in a zeroed buffer of
// roundup(size, 4096) bytes. It returns the buffer and the size the PT_NOTE
// claims.
func mergedNotes(cpus int, pid uint32, ip uint64, text []byte) ([]byte, int) {
	core := coreNote(pid, ip)
	var b []byte
	for range cpus {
		b = append(b, core...)
	}
	b = append(b, vmcoreinfoNote(text)...)
	size := len(b)
	return append(b, make([]byte, (size+PageSize-1)&^(PageSize-1)-size)...), size
}

// headerPage encodes page 0 as crash_prepare_elf64_headers and
// merge_note_headers_elf64 leave it (package livedump, "Page 0: the
// header"): the ELF header, the merged PT_NOTE at 0x1000, the kernel-text
// PT_LOAD and the RAM PT_LOAD, then zeros (the buffer comes from vzalloc
// and the merge zeroes the dropped program headers). The fields are written
// one by one at their offsets in Elf64_Ehdr/Elf64_Phdr instead of through
// debug/elf's structs, so that the layout is stated here, independently of
// every other encoder in ldx.
func headerPage(k *Kernel, notesSize int) []byte {
	p := make([]byte, PageSize)
	le := binary.LittleEndian
	copy(p, "\x7fELF")
	p[4] = 2                 // EI_CLASS = ELFCLASS64
	p[5] = 1                 // EI_DATA = ELFDATA2LSB
	p[6] = 1                 // EI_VERSION = EV_CURRENT
	p[7] = 0                 // EI_OSABI = ELF_OSABI = ELFOSABI_NONE on x86_64
	le.PutUint16(p[16:], 4)  // e_type = ET_CORE
	le.PutUint16(p[18:], 62) // e_machine = EM_X86_64
	le.PutUint32(p[20:], 1)  // e_version = EV_CURRENT
	// e_entry (24) = 0
	le.PutUint64(p[32:], 64) // e_phoff
	// e_shoff (40), e_flags (48) = 0
	le.PutUint16(p[52:], 64) // e_ehsize
	le.PutUint16(p[54:], 56) // e_phentsize
	le.PutUint16(p[56:], 3)  // e_phnum after the merge
	// e_shentsize, e_shnum, e_shstrndx (58..63) = 0

	phdr := func(i int, typ, flags uint32, off, vaddr, paddr, size uint64) {
		h := p[64+56*i:]
		le.PutUint32(h[0:], typ)
		le.PutUint32(h[4:], flags)
		le.PutUint64(h[8:], off)
		le.PutUint64(h[16:], vaddr)
		le.PutUint64(h[24:], paddr)
		le.PutUint64(h[32:], size) // p_filesz
		le.PutUint64(h[40:], size) // p_memsz
		// p_align (48) = 0 for all three
	}
	const ptNote, ptLoad, rwx = 4, 1, 7
	// The merged PT_NOTE: p_offset = roundup(64 + 4·56, 4096), p_filesz
	// = the full merged size even though only one page is ever written
	// (K-1).
	phdr(0, ptNote, 0, PageSize, 0, 0, uint64(notesSize))
	// need_kernel_map: p_offset = p_paddr = __pa_symbol(_text).
	phdr(1, ptLoad, rwx, k.TextPhys, k.TextVirt, k.TextPhys, k.TextSize)
	// cmem = [SZ_1M, ((max_pfn+1) << PAGE_SHIFT) - 1]: one page past
	// RAM and every hole (K-3).
	phdr(2, ptLoad, rwx, RAMStart, k.PageOffsetBase+RAMStart, RAMStart, (k.MaxPFN+1)*PageSize-RAMStart)
	return p
}
