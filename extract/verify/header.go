package verify

import (
	"debug/elf"
	"errors"
	"fmt"

	"ldx/elfcore"
)

// Offsets of the Elf64_Ehdr fields checked here.
const (
	offType      = 0x10
	offMachine   = 0x12
	offVersion   = 0x14
	offPhoff     = 0x20
	offEhsize    = 0x34
	offPhentsize = 0x36
	offPhnum     = 0x38
)

// crashMaxPhoff is the largest e_phoff crash accepts: is_netdump reads the
// first 304 bytes (SAFE_NETDUMP_ELF_HEADER_SIZE = 64 + 2·56 + 128) and
// needs phdr[0] and phdr[1] inside them ("PHdr to far into file!").
const crashMaxPhoff = 304 - 2*elfcore.ProgSize

// checkHeader runs A1–A6 and A8 on the raw ELF header. It returns false
// when the program headers cannot be located, so nothing else can run.
func (c *group) checkHeader() bool {
	class, data, ver := c.hdr[elf.EI_CLASS], c.hdr[elf.EI_DATA], c.hdr[elf.EI_VERSION]
	if class != byte(elf.ELFCLASS64) || data != byte(elf.ELFDATA2LSB) || ver != byte(elf.EV_CURRENT) {
		var e []Effect
		for _, k := range all {
			e = append(e, eff(k, Fatal, "rejects the file (crash is_netdump and endian_mismatch; libkdumpfile \"Unsupported ELF data format\"; vmcore-dmesg \"Bad elf version\")").novm())
		}
		c.fail(A1, fmt.Sprintf("e_ident: EI_CLASS %d, EI_DATA %d, EI_VERSION %d; want 2 (ELFCLASS64), 1 (little-endian), 1", class, data, ver),
			"this is not an x86_64 kernel core; check that the right file was named", at("e_ident", 4), e...)
		return false
	}
	c.pass(A1, "ELFCLASS64, little-endian, EV_CURRENT")

	if t := elf.Type(c.u16(offType)); t != elf.ET_CORE {
		c.fail(A2, fmt.Sprintf("e_type is %v (%d), want ET_CORE (4)", t, uint16(t)), fixExtract+" (it writes ET_CORE)", at("e_type", offType),
			eff(Crash, Fatal, "\"not a supported file format\" (is_netdump requires ET_CORE)").novm(),
			eff(Drgn, Fatal, "\"not an ELF core file\""),
			eff(Libkdumpfile, Fatal, "\"Unsupported ELF class\""))
	} else {
		c.pass(A2, "ET_CORE")
	}

	if m := elf.Machine(c.u16(offMachine)); m != elf.EM_X86_64 {
		c.fail(A3, fmt.Sprintf("e_machine is %v (%d), want EM_X86_64 (62)", m, uint16(m)), "only x86_64 dumps are supported; check the file, or rewrite e_machine", at("e_machine", offMachine),
			eff(Crash, Fatal, "\"machine type mismatch\" (machine_type_mismatch)").novm(),
			eff(Drgn, Degraded, fmt.Sprintf("takes its platform from e_machine: %v page-table walks and registers for everything the p_vaddr segments do not cover", m)),
			eff(Libkdumpfile, Fatal, "sets the architecture from e_machine (set_arch_machine)"))
		// makedumpfile (check_elf_format looks at EI_CLASS only) and
		// vmcore-dmesg do not read e_machine.
	} else {
		c.pass(A3, "EM_X86_64")
	}

	if v := c.u32(offVersion); v != 1 {
		c.fail(A4, fmt.Sprintf("e_version is %d, want 1", v), fixExtract, at("e_version", offVersion),
			eff(Crash, Fatal, "rejects the file (is_netdump requires EV_CURRENT)").novm(),
			eff(Libkdumpfile, Fatal, "\"Unsupported ELF class\""),
			eff(VmcoreDmesg, Fatal, "\"Bad Elf header version\""))
	} else {
		c.pass(A4, "EV_CURRENT")
	}

	phoff := c.u64(offPhoff)
	if phoff != elfcore.HeaderSize {
		e := []Effect{eff(Makedumpfile, Fatal, fmt.Sprintf("reads the program headers at 64 + 56·i whatever e_phoff says (get_elf64_phdr), so it parses other bytes as program headers: \"Can't get the number of PT_LOAD\"")).novm()}
		if phoff > crashMaxPhoff {
			e = append(e, eff(Crash, Fatal, fmt.Sprintf("reads only the first 304 bytes to classify the file and needs phdr[1] in them: \"PHdr to far into file!\" (e_phoff at most %d)", crashMaxPhoff)).novm())
		}
		c.fail(A5, fmt.Sprintf("e_phoff is %#x (%d), want 64 (right after the ELF header)", phoff, phoff),
			"run `ldx extract FILE -o VMCORE`: it moves the program headers to offset 64 (QEMU 7.2 puts them after its section headers, at 0xc0)",
			at("e_phoff", offPhoff), e...)
	} else {
		c.pass(A5, "64")
	}

	phent, ehsize := c.u16(offPhentsize), c.u16(offEhsize)
	phnum := c.u16(offPhnum)
	switch {
	case phent != elfcore.ProgSize && phnum != 0:
		var e []Effect
		for _, k := range all {
			e = append(e, eff(k, Fatal, "reads program headers of 56 bytes (crash, makedumpfile hard-code it; vmcore-dmesg \"Bad Elf progra header size\"; drgn and libkdumpfile step by e_phentsize through a table they then misread)").novm())
		}
		c.fail(A6, fmt.Sprintf("e_phentsize is %d, want 56 (sizeof(Elf64_Phdr))", phent), "the program-header table is not ELF64's; check the file", at("e_phentsize", offPhentsize), e...)
		return false
	case ehsize != elfcore.HeaderSize:
		c.failSev(A6, Cosmetic, fmt.Sprintf("e_phentsize 56, but e_ehsize is %d (want 64); no consumer reads e_ehsize (QEMU 7.2 writes 8)", ehsize),
			"harmless; `ldx extract` writes 64", at("e_ehsize", offEhsize))
	default:
		c.pass(A6, "e_phentsize 56, e_ehsize 64")
	}

	if phnum == elfcore.PN_XNUM {
		c.fail(A8, "e_phnum is PN_XNUM (0xffff): the count is in section header 0's sh_info", "keep fewer than 65535 segments: `ldx extract` merges zero runs and bounds the segment count",
			at("e_phnum", offPhnum), eff(VmcoreDmesg, Degraded, "reads e_phnum literally (no PN_XNUM support) and misses the segments"))
	} else {
		c.pass(A8, fmt.Sprintf("e_phnum %d", phnum))
	}
	return true
}

// parseProgs reads the program-header table (at e_phoff, as every consumer
// but makedumpfile does) and runs A7.
func (c *group) parseProgs() (*elfcore.File, bool) {
	f, err := elfcore.NewFile(c.r, c.size)
	if err != nil {
		var fe *elfcore.FormatError
		loc := nowhere
		if errors.As(err, &fe) {
			loc = at(fe.Field, fe.Off)
		}
		var e []Effect
		for _, k := range all {
			e = append(e, eff(k, Fatal, "cannot read the program headers").novm())
		}
		c.fail(A7, "the program-header table cannot be read: "+err.Error(), "the file is cut short or its header is damaged; copy it again from the source", loc, e...)
		return nil, false
	}
	if f.Phnum < 2 {
		c.fail(A7, fmt.Sprintf("%d program headers; a core needs a PT_NOTE and at least one PT_LOAD", f.Phnum), fixExtract, at("e_phnum", offPhnum),
			eff(Crash, Fatal, "rejects cores with fewer than two program headers (is_netdump)").novm(),
			eff(Makedumpfile, Fatal, "\"Can't get the number of PT_LOAD.\""),
			eff(Drgn, Fatal, "finds no memory"))
		return nil, false
	}
	c.pass(A7, fmt.Sprintf("%d program headers", f.Phnum))
	return f, true
}
