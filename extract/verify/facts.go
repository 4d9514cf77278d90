package verify

import (
	"debug/elf"
	"errors"
	"io"
	"slices"
	"sync"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kallsyms"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/kernel/x86"
	"ldx/elfcore/livedump"
	"ldx/extract/dump"
	"ldx/vmcoreinfo"
)

// facts is what the fact-finding phase learns about the dump, once, before
// any check group runs: the parsed headers and notes, the physical views
// and each consumer's translation inputs. No check writes to it; the
// checks that need what another check concluded take it as a parameter.
type facts struct {
	input
	r io.ReaderAt // the input, through a small page cache

	hdr  [elfcore.HeaderSize]byte
	f    *elfcore.File
	segs []noteSeg // every PT_NOTE, parsed

	loads    []elfcore.ProgHeader // PT_LOADs in program-header order
	loadIdx  []int                // their program-header indexes
	image    *elfcore.ProgHeader  // first PT_LOAD with p_vaddr >= KTEXT (crash, makedumpfile)
	imageIdx int

	livedump bool // the raw livedump device layout
	kdump    bool // a kdump-compressed file: only the H checks apply
	qemu     bool // QEMU notes present

	vmci      *elfcore.Note // the VMCOREINFO note consumers use (the last one)
	vmciCount int
	info      *vmcoreinfo.Info                    // the lines consumers can read
	lines     *lineReport                         // D1 findings
	missing   map[string][]vmcoreinfo.Requirement // missing keys by checklist row
	cores     []elfcore.Note                      // CORE/NT_PRSTATUS notes in order
	synthetic bool                                // K-7: the CPU notes are livedump's synthetic ones
	capture   *dump.CaptureNote                   // ldx's LDX note: a live capture (capture --kcore)

	first, last *elfcore.PhysMem // physical views: first match (crash, makedumpfile), last match (drgn)

	// physBase is what crash and makedumpfile use: NUMBER(phys_base), else
	// the first kernel-image PT_LOAD; physBaseFrom says which ("": none).
	// Set only with VMCOREINFO.
	physBase     uint64
	physBaseFrom string
	// mkd is makedumpfile's walk (first match, root through physBase);
	// mkdErr says why there is none.
	mkd    *kmem.Mem
	mkdErr error
	// ksyms is the kernel's kallsyms table from the dump (E6), read on
	// first use: most dumps never need it.
	ksyms func() *kallsyms.Table
}

// findFacts is the fact-finding phase. The ELF header and program-header
// checks (A1–A8) run here because everything else depends on them: ok is
// false when the program headers cannot be located, and results holds
// their findings either way.
func findFacts(in input, hdr [elfcore.HeaderSize]byte) (f *facts, results []Result, ok bool) {
	f = &facts{input: in, r: newPageCache(in.raw), hdr: hdr}
	g := f.newGroup()
	if !g.checkHeader() {
		return f, g.out, false
	}
	file, ok := g.parseProgs()
	if !ok {
		return f, g.out, false
	}
	f.f = file
	f.loads, f.loadIdx, f.image, f.imageIdx = loadSegments(file)
	f.first = elfcore.NewPhysMem(f.r, f.loads)
	rev := slices.Clone(f.loads)
	slices.Reverse(rev)
	f.last = elfcore.NewPhysMem(f.r, rev)
	f.livedump = livedump.IsLayout(file)

	n := readNotes(file)
	f.segs, f.vmci, f.vmciCount, f.cores, f.qemu, f.capture = n.segs, n.vmci, n.vmciCount, n.cores, n.qemu, n.capture
	if f.vmci != nil {
		f.lines = scanLines(f.vmci.Desc)
		f.info = f.lines.info
	}
	f.synthetic = livedump.SyntheticRegisters(f.cores)

	if f.info != nil {
		f.missing = missingKeys(f.info)
		f.physBase, f.physBaseFrom = crashPhysBase(f.info, f.image)
		if f.physBaseFrom == "" {
			f.mkdErr = errors.New("no phys_base: neither NUMBER(phys_base) nor a kernel-image PT_LOAD (D7, B9)")
		} else {
			f.mkd, f.mkdErr = f.walker(f.physBase)
		}
	}
	f.ksyms = sync.OnceValue(func() *kallsyms.Table { return readKallsyms(f.mkd, f.info) })
	return f, g.out, true
}

// loadSegments lists the PT_LOADs and finds the kernel-image segment (the
// first PT_LOAD at or above KTEXT, as crash and makedumpfile pick it).
func loadSegments(file *elfcore.File) (loads []elfcore.ProgHeader, idx []int, image *elfcore.ProgHeader, imageIdx int) {
	for i, p := range file.Progs {
		if p.Type == elf.PT_LOAD {
			loads = append(loads, p)
			idx = append(idx, i)
			if image == nil && x86.IsImageAddr(p.Vaddr) {
				image, imageIdx = &file.Progs[i], i
			}
		}
	}
	return loads, idx, image, imageIdx
}

// noteFacts is what readNotes picks out of the PT_NOTEs.
type noteFacts struct {
	segs      []noteSeg
	vmci      *elfcore.Note
	vmciCount int
	cores     []elfcore.Note
	qemu      bool
	capture   *dump.CaptureNote
}

// readNotes reads every PT_NOTE and picks out what the checks use. A
// segment that cannot be read or walked keeps its error (C2 reports it).
func readNotes(file *elfcore.File) (n noteFacts) {
	for i, p := range file.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		s := noteSeg{idx: i}
		data, err := file.NoteSegment(i)
		if err != nil {
			s.err = err
		} else {
			s.notes, s.err = elfcore.ParseNotes(data, int64(p.Off))
		}
		n.segs = append(n.segs, s)
		for j := range s.notes {
			note := &s.notes[j]
			switch {
			case note.Name == elfcore.NameVMCOREINFO && note.Type == elfcore.NT_VMCOREINFO:
				n.vmci = note // the last one wins in crash, makedumpfile and drgn
				n.vmciCount++
			case note.Is(elfcore.NameCore, elfcore.NT_PRSTATUS):
				n.cores = append(n.cores, *note)
			case note.Name == elfcore.NameQEMU:
				n.qemu = true
			case note.Is(dump.NameLDX, dump.NT_LDX_CAPTURE):
				n.capture, _ = dump.ParseCaptureNote(note.Desc)
			}
		}
	}
	return n
}

// missingKeys groups the keys some consumer needs that info lacks by
// checklist row.
func missingKeys(info *vmcoreinfo.Info) map[string][]vmcoreinfo.Requirement {
	missing := map[string][]vmcoreinfo.Requirement{}
	for _, r := range info.Missing(vmcoreinfo.AllConsumers) {
		missing[r.Rule] = append(missing[r.Rule], r)
	}
	return missing
}

// format names what produced the file, for the report.
func (f *facts) format() string {
	switch {
	case f.livedump:
		return dump.FormatLivedump.String()
	case f.qemu && f.image == nil:
		return "QEMU dump-guest-memory"
	case f.qemu:
		return "ELF vmcore (QEMU notes)"
	}
	return dump.FormatELF.String()
}

// release is OSRELEASE, if VMCOREINFO has it.
func (f *facts) release() string {
	if f.info == nil {
		return ""
	}
	rel, _ := f.info.OSRelease()
	return rel
}
