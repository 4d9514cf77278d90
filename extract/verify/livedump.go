package verify

import (
	"errors"
	"fmt"
	"strings"

	"ldx/elfcore/kernel/x86"
	"ldx/elfcore/livedump"
	"ldx/extract/dump"
	"ldx/kmod/manifest"
	"ldx/vmcoreinfo"
)

// livedumpChecks runs the checks for the defects of the livedump v1 kernel
// code that reach a raw device (see package livedump, "Defects"). They
// apply only to the raw layout; `ldx extract` repairs all of them.
func livedumpChecks(f *facts) []Result {
	c := f.newGroup()
	c.checkLivedump()
	return c.out
}

func (c *group) checkLivedump() {
	if !c.livedump {
		return
	}
	man, merr := manifest.Read(c.raw)
	if merr != nil {
		man = nil
	}
	c.checkNotesCut(man)

	// K-2: the kernel never clears the device and writes no completion
	// marker, so never-written pages hold old bytes.
	switch {
	case man != nil && (man.Prepared == manifest.Zeroed || man.Prepared == manifest.Marked):
		c.pass(K2, fmt.Sprintf("ldx capture %s the device before the capture (%s): never-written pages are told apart", man.Prepared, man.Time.Format("2006-01-02 15:04:05 MST")))
	default:
		why := "no ldx capture manifest: the device was not cleared or marked before the capture"
		switch {
		case man != nil:
			why = "the ldx capture manifest says the device was not cleared (--no-clear)"
		case merr != nil && !errors.Is(merr, manifest.ErrNone):
			why = "the ldx capture manifest is damaged (" + merr.Error() + ")"
		}
		var e []Effect
		for _, k := range all {
			e = append(e, eff(k, Degraded, "reads pages the kernel never wrote (its own ~1 GiB of buffers, holes, dropped pages) as memory: they hold whatever the device held before"))
		}
		c.fail(K2, why+"; pages the kernel did not write hold stale bytes that cannot be told from memory",
			"capture with `ldx capture`, which zeroes or marks the device first; `ldx extract` then presents never-written pages as zeros", at("manifest", manifest.Offset), e...)
	}

	// K-3: one RAM PT_LOAD [1 MiB, (max_pfn+1)·4096).
	var ramIdx = -1
	for i, p := range c.f.Progs[1:] {
		if !x86.IsImageAddr(p.Vaddr) {
			ramIdx = i + 1
		}
	}
	if ramIdx < 0 {
		c.skip(K3, "no RAM PT_LOAD")
		return
	}
	ram := c.f.Progs[ramIdx]
	found := fmt.Sprintf("one RAM PT_LOAD [%#x, %#x) includes the page past max_pfn (%#x), which the kernel never writes", ram.Paddr, ram.End(), ram.End()-pageSize)
	if man != nil && len(man.RAM) > 0 {
		var inRAM uint64
		for _, r := range man.RAM {
			s, e := max(r.Start, ram.Paddr), min(r.End, ram.End())
			if s < e {
				inRAM += e - s
			}
		}
		if holes := ram.Memsz - min(ram.Memsz, inRAM); holes > pageSize {
			found += fmt.Sprintf(", and %s of holes and reserved ranges that the capture-time RAM map (%d ranges) does not list", mib(holes), len(man.RAM))
		}
	} else {
		found += ", and any MMIO holes and reserved ranges below it (no capture-time RAM map to tell them)"
	}
	var e []Effect
	for _, k := range all {
		e = append(e, eff(k, Degraded, "takes the holes and the page past RAM for memory: reads there return stale device bytes"))
	}
	c.fail(K3, found, "`ldx extract` lays PT_LOADs over the capture-time RAM map (or the kernel's present memory sections) and drops the page past RAM",
		c.phLoc(ramIdx, "p_memsz", 40), e...)
}

// checkNotesCut is K-1: the kernel writes only pfn 1 of the merged notes
// while the PT_NOTE claims them all; VMCOREINFO comes last and loses its
// tail first (phys_base, KERNELOFFSET, pgtable_l5_enabled, CRASHTIME).
func (c *group) checkNotesCut(man *manifest.Manifest) {
	note := c.f.Progs[0]
	end := note.Off + note.Filesz
	if end <= livedump.NotesEnd {
		c.pass(K1, fmt.Sprintf("the notes (%d bytes) fit in the one page the kernel writes", note.Filesz))
		return
	}
	found := fmt.Sprintf("the PT_NOTE claims %d bytes at %#x, but the kernel writes only the first 4096 (pfn 1); bytes from %#x on are other memory", note.Filesz, note.Off, livedump.NotesEnd)
	if c.vmci != nil {
		text := int64(c.vmci.Off) + 24
		if kept := int64(livedump.NotesEnd) - text; kept >= 0 && kept < int64(len(c.vmci.Desc)) {
			found += fmt.Sprintf("; %d of VMCOREINFO's %d bytes survive", kept, len(c.vmci.Desc))
		}
	}
	fix := "`ldx extract` recovers the complete VMCOREINFO from the kernel's vmcoreinfo_note page in the dumped memory and rebuilds the CPU notes"
	switch {
	case !c.isPath:
		found += "; whether ldx extract can recover the complete note is not checked here"
	case c.opt.Deep || man != nil:
		if d, err := dump.Open(c.ctx, c.path, dump.Options{}); err != nil {
			found += "; ldx extract cannot recover it: " + err.Error()
			fix = "the complete VMCOREINFO is not in the dumped memory either; the dump cannot be used without it"
		} else {
			if d.VMCOREINFO != nil && c.info != nil {
				lost := vmcoreinfo.Lost(d.VMCOREINFO, c.info)
				var names []string
				for _, l := range lost {
					names = append(names, l.Key)
				}
				if len(names) > 8 {
					names = append(names[:8], fmt.Sprintf("… (%d lines)", len(lost)))
				}
				if len(names) > 0 {
					found += "; the complete text is in the dumped memory (" + d.Report.VMCOREINFO + "), and the cut lost " + strings.Join(names, ", ")
				}
			}
			d.Close()
		}
	default:
		found += "; without a capture manifest ldx extract searches the dumped memory for the complete note (`ldx verify --deep` confirms it is there)"
	}
	var e []Effect
	for _, k := range all {
		e = append(e, eff(k, Fatal, "reads a VMCOREINFO cut mid-text and followed by unrelated bytes: the keys after the cut are missing (see D3–D13)").novm())
	}
	c.fail(K1, found, fix, c.phLoc(0, "p_filesz", phdrFilesz), e...)
}
