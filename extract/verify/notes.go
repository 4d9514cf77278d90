package verify

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/livedump"
)

// noteSeg is one PT_NOTE segment as parsed with 4-byte alignment.
type noteSeg struct {
	idx   int // program-header index
	notes []elfcore.Note
	err   error // read or walk error; notes holds those before it
}

const (
	nameSNAP    = "SNAP"
	prstatusMin = 328 // libkdumpfile and drgn need pr_reg complete: 112 + 27·8 = 328
)

// noteChecks is group C and K-7: the notes as each consumer walks them.
func noteChecks(f *facts) []Result {
	c := f.newGroup()
	c.checkNotes()
	return c.out
}

func (c *group) checkNotes() {
	// C1: drgn chooses the note layout by the PT_NOTE's p_align.
	var bad8, odd []int
	for _, s := range c.segs {
		switch a := c.f.Progs[s.idx].Align; a {
		case 0, 4:
		case 8:
			bad8 = append(bad8, s.idx)
		default:
			odd = append(odd, s.idx)
		}
	}
	switch {
	case len(c.segs) == 0:
		c.skip(C1, "no PT_NOTE (B1)")
	case len(bad8) > 0:
		c.fail(C1, fmt.Sprintf("PT_NOTE phdr[%d] has p_align 8", bad8[0]), "set the PT_NOTE's p_align to 0 or 4 (`ldx extract` writes 0)", c.phLoc(bad8[0], "p_align", phdrAlign),
			eff(Drgn, Fatal, "passes p_align to libelf, which then parses 8-byte-aligned notes (ELF_T_NHDR8): the kernel's 4-byte-aligned notes come out garbled and VMCOREINFO is not found"))
	case len(odd) > 0:
		c.failSev(C1, Cosmetic, fmt.Sprintf("PT_NOTE phdr[%d] has p_align %d (drgn treats anything but 8 as 4)", odd[0], c.f.Progs[odd[0]].Align), "set it to 0 or 4", c.phLoc(odd[0], "p_align", phdrAlign))
	default:
		c.pass(C1, "p_align 0 or 4")
	}

	// C2: the walk must end exactly at p_filesz.
	c.checkNoteWalk()

	// C3: the VMCOREINFO note as each consumer matches it.
	c.checkVMCOREINFONote()

	// C4
	switch {
	case c.vmciCount > 1:
		c.failSev(C4, Cosmetic, fmt.Sprintf("%d VMCOREINFO notes; crash, makedumpfile and drgn use the last, vmcore-dmesg merges all", c.vmciCount),
			"`ldx extract` keeps one", at("note", c.vmci.Off))
	case c.vmciCount == 1:
		c.pass(C4, "one")
	default:
		c.skip(C4, "no VMCOREINFO note (C3)")
	}

	c.checkPRStatus()
	c.checkSpecialNotes()

	switch {
	case c.capture != nil:
		cn := c.capture
		c.inform(K7, fmt.Sprintf("a live capture (ldx capture --%s, its LDX note): memory read while the kernel ran, %s to %s, not a snapshot; %d of the %d pages read twice changed, %d bytes were unreadable (zeros); the %s carry no registers, so no tool can unwind the tasks that were running on the CPUs",
			cn.Method, cn.Start.Format(time.RFC3339), cn.End.Format(time.RFC3339), cn.PagesChanged, cn.PagesChecked, cn.UnreadableBytes, plural(len(c.cores), "CPU note", "CPU notes")))
	case c.synthetic:
		c.inform(K7, fmt.Sprintf("a live dump: the %s carry livedump's synthetic registers (only ip %#x, sp 0), not the CPUs' state at capture time; nothing can repair that, and no tool can unwind the tasks that were running on the CPUs (sleeping tasks unwind normally)",
			plural(len(c.cores), "CPU note", "CPU notes"), c.firstRIP()))
	case len(c.cores) > 0:
		c.pass(K7, "CPU registers saved (non-zero stack pointers or differing instruction pointers)")
	default:
		c.skip(K7, "no CPU notes")
	}
}

func (c *facts) firstRIP() uint64 {
	if st, err := elfcore.ParsePRStatus(c.cores[0].Desc); err == nil {
		return st.Regs[elfcore.RegRIP]
	}
	return 0
}

// checkNoteWalk is C2.
func (c *group) checkNoteWalk() {
	if len(c.segs) == 0 {
		c.skip(C2, "no PT_NOTE (B1)")
		return
	}
	for _, s := range c.segs {
		if s.err == nil {
			continue
		}
		var fe *elfcore.FormatError
		loc := c.phLoc(s.idx, "p_filesz", phdrFilesz)
		if errors.As(s.err, &fe) {
			loc = at(fe.Field, fe.Off)
		}
		if strings.Contains(s.err.Error(), "empty note") {
			c.fail(C2, fmt.Sprintf("the PT_NOTE phdr[%d] ends in zero padding or an empty terminator note after %s: %v", s.idx, plural(len(s.notes), "note", "notes"), s.err),
				"`ldx extract` writes p_filesz = the notes' exact size", loc,
				eff(Crash, Cosmetic, "prints \"possibly corrupt Elf64_Nhdr: n_namesz: 0 …\" for each zero note"))
			continue
		}
		var e []Effect
		for _, k := range all {
			e = append(e, eff(k, Degraded, "stops the note walk there: notes after it are invisible"))
		}
		c.fail(C2, fmt.Sprintf("the note walk of phdr[%d] stops after %s: %v", s.idx, plural(len(s.notes), "note", "notes"), s.err),
			"the notes are damaged; `ldx extract` rebuilds them (and recovers VMCOREINFO from memory on livedump devices)", loc, e...)
		return
	}
	if c.result(C2) == nil {
		c.pass(C2, fmt.Sprintf("%s, ending exactly at p_filesz", plural(len(c.segs[0].notes), "note", "notes")))
	}
}

// checkVMCOREINFONote is C3.
func (c *group) checkVMCOREINFONote() {
	if c.vmci != nil {
		c.pass(C3, fmt.Sprintf("\"VMCOREINFO\" (n_namesz 11), n_type 0, %d bytes of text at %#x", len(c.vmci.Desc), c.vmci.Off+24))
		return
	}
	// Near misses: the right name with another type.
	for _, s := range c.segs {
		for _, n := range s.notes {
			if n.Name == elfcore.NameVMCOREINFO {
				e := []Effect{
					eff(Makedumpfile, Fatal, "takes the note only with n_type 0 (get_pt_note_info)"),
					eff(VmcoreDmesg, Fatal, "takes the note only with n_type 0 (scan_notes)"),
				}
				if n.Type >= 1 && n.Type <= 4 {
					e = append(e, eff(Crash, Fatal, fmt.Sprintf("handles n_type %d as another note type and never sees VMCOREINFO", n.Type)).novm())
				}
				c.fail(C3, fmt.Sprintf("a note named VMCOREINFO has n_type %d, want 0", n.Type), "`ldx extract` rewrites it with n_type 0", at("note.n_type", n.Off+8), e...)
				return
			}
		}
	}
	e := []Effect{
		eff(Crash, Fatal, "has no OSRELEASE (`crash --osrelease` prints \"unknown\") and no KERNELOFFSET, so with a KASLR kernel \"vmlinux and DUMP do not match!\"").novm(),
		eff(Makedumpfile, Fatal, "\"doesn't contain vmcoreinfo\": -d 31 and --dump-dmesg are refused"),
		eff(Libkdumpfile, Fatal, "cannot identify the kernel or translate addresses"),
		eff(VmcoreDmesg, Fatal, "finds no printk symbols"),
	}
	if c.qemu {
		e = append(e, eff(Drgn, Fatal, "\"unrecognized QEMU memory dump; for Linux guests, run QEMU with '-device vmcoreinfo' …\""))
	} else {
		e = append(e, eff(Drgn, Fatal, "opens the file as a userspace core: it is not recognised as a kernel dump"))
	}
	fix := "nothing in the file can replace it; for QEMU dumps run QEMU with -device vmcoreinfo and load the guest's qemu_fw_cfg module before dumping"
	if c.livedump {
		fix = "`ldx extract` recovers VMCOREINFO from the kernel's vmcoreinfo_note page in the dumped memory"
	}
	c.fail(C3, fmt.Sprintf("no VMCOREINFO note among %s", plural(c.noteCount(), "note", "notes")), fix, c.phLoc(0, "p_filesz", phdrFilesz), e...)
}

func (c *facts) noteCount() int {
	n := 0
	for _, s := range c.segs {
		n += len(s.notes)
	}
	return n
}

// checkPRStatus is C5, C6 and C7.
func (c *group) checkPRStatus() {
	if len(c.cores) == 0 {
		c.fail(C5, "no CORE/NT_PRSTATUS notes", "`ldx extract` writes one per CPU", nowhere,
			eff(Crash, Degraded, "has no registers for the active tasks (falls back to stack search)"),
			eff(Drgn, Degraded, "\"registers for CPU N were not saved\" for the active tasks"))
		c.skip(C6, "no NT_PRSTATUS notes (C5)")
		c.skip(C7, "no NT_PRSTATUS notes (C5)")
		return
	}
	var short, odd []string
	var loc location
	for i, n := range c.cores {
		switch {
		case len(n.Desc) < prstatusMin:
			short = append(short, fmt.Sprintf("CPU %d: %d bytes", i, len(n.Desc)))
		case len(n.Desc) != elfcore.PRStatusSize:
			odd = append(odd, fmt.Sprintf("CPU %d: %d bytes", i, len(n.Desc)))
		default:
			continue
		}
		if loc.field == "" {
			loc = at(fmt.Sprintf("note[CORE %d].n_descsz", i), n.Off+4)
		}
	}
	switch {
	case len(short) > 0:
		c.fail(C5, fmt.Sprintf("NT_PRSTATUS descriptors shorter than 328 bytes (want 336): %s", strings.Join(short, ", ")),
			"`ldx extract` writes 336-byte descriptors", loc,
			eff(Libkdumpfile, Fatal, "fails the whole open: \"Wrong PRSTATUS size\""),
			eff(Drgn, Degraded, "\"NT_PRSTATUS is truncated\" when unwinding the active tasks"),
			eff(Crash, Degraded, "reads the registers relative to the descriptor's end: wrong registers for the active tasks"))
	case len(odd) > 0:
		c.fail(C5, fmt.Sprintf("NT_PRSTATUS descriptors not 336 bytes: %s", strings.Join(odd, ", ")), "`ldx extract` writes 336-byte descriptors", loc,
			eff(Crash, Degraded, "reads the registers relative to the descriptor's end (get_netdump_regs_x86_64): wrong registers"))
	default:
		c.pass(C5, fmt.Sprintf("%s of 336 bytes", plural(len(c.cores), "NT_PRSTATUS", "NT_PRSTATUS")))
	}

	// C6: the CPU count is not in VMCOREINFO; a livedump's PT_NOTE size
	// formula (livedump.NotesSize: 356·N + 24 + roundup4(S)) is the only
	// cross-check.
	c.checkCPUCount()

	// C7: without CRASHTIME drgn maps CPU c to the note with pr_pid c+1.
	crashTime := c.info != nil && c.info.Has("CRASHTIME")
	var wrong []string
	for i, n := range c.cores {
		if st, err := elfcore.ParsePRStatus(n.Desc); err == nil && st.Pid != uint32(i+1) {
			wrong = append(wrong, fmt.Sprintf("CPU %d has pr_pid %d", i, st.Pid))
		}
	}
	switch {
	case crashTime && c.synthetic:
		c.inform(C7, "CRASHTIME is present: drgn 0.0.27 and later take CPU registers from the kernel's crash_notes, which livedump's START filled with the same synthetic registers (K-7); nothing is lost")
	case crashTime:
		c.pass(C7, "CRASHTIME present: a crash dump, registers come from crash_notes")
	case len(wrong) > 0:
		if len(wrong) > 3 {
			wrong = append(wrong[:3], "…")
		}
		c.fail(C7, "no CRASHTIME (a live dump) and pr_pid is not cpu+1: "+strings.Join(wrong, ", "),
			"`ldx extract` sets pr_pid = cpu+1 (QEMU's convention)", at("note[CORE 0].pr_pid", c.cores[0].Off+20+32),
			eff(Drgn, Degraded, "looks up each CPU's registers by pr_pid == cpu+1 on live dumps: \"registers for CPU N were not saved\""))
	default:
		c.pass(C7, "no CRASHTIME, pr_pid = cpu+1")
	}
}

// checkCPUCount is C6.
func (c *group) checkCPUCount() {
	if c.livedump && c.vmci != nil {
		claimed := int(c.f.Progs[0].Filesz)
		if n, ok := livedump.CPUs(claimed, len(c.vmci.Desc)); ok && n != len(c.cores) {
			c.fail(C6, fmt.Sprintf("%d CPU notes, but the PT_NOTE size %d says %d CPUs", len(c.cores), claimed, n),
				"`ldx extract` rebuilds the missing CPU notes", c.phLoc(0, "p_filesz", phdrFilesz),
				eff(Crash, Degraded, "ignores all the NT_PRSTATUS notes when their count is not the number of online CPUs"))
			return
		}
	}
	c.inform(C6, fmt.Sprintf("%s (the online CPU count is not in VMCOREINFO, so this is not cross-checked)", plural(len(c.cores), "CPU note", "CPU notes")))
}

// checkSpecialNotes is C8.
func (c *group) checkSpecialNotes() {
	for _, s := range c.segs {
		for _, n := range s.notes {
			if n.Name == nameSNAP && n.Type == elfcore.NT_TASKSTRUCT {
				c.fail(C8, "a SNAP/NT_TASKSTRUCT note (crash's snap.so marker)", "remove it: `ldx extract` writes only CORE and VMCOREINFO notes", at("note", n.Off),
					eff(Crash, Fatal, "marks the dump LIVE_DUMP, after which vmcoreinfo_read_string returns nothing but snap's own keys: VMCOREINFO is ignored (`crash --osrelease` prints \"unknown\")").novm())
				return
			}
		}
	}
	if c.qemu {
		c.inform(C8, "QEMU notes (one per vCPU, from dump-guest-memory): crash takes its QEMU code paths (no prstatus remap; without VMCOREINFO it derives KASLR from the IDT and CR3)")
		return
	}
	c.pass(C8, "no QEMU or SNAP notes")
}
