package verify

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kallsyms"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/vmlinux"
	"ldx/extract/dump"
	"ldx/vmcoreinfo"
)

// Options configure a verification.
type Options struct {
	// Deep reads every byte of every segment: zero-page statistics,
	// unreadable ranges, complete comparison of overlapping segments, and
	// for a raw livedump device without a capture manifest the search for
	// the complete VMCOREINFO that `ldx extract` would do.
	Deep bool
	// Progress, if set, is called during the deep read.
	Progress func(done, total int64)
	// Vmlinux, if set, is the debug image the dump is said to be of: the
	// V checks compare the two (build-id, release, symbols, layouts).
	Vmlinux *vmlinux.File
}

// UnreadableError reports an input that cannot be read as a dump at all:
// it does not exist, is not a file or block device, or does not start with
// an ELF header. The CLI maps it to its "unusable input" exit code.
type UnreadableError = dump.InputError

// File verifies the vmcore, QEMU dump, /proc/vmcore copy, or raw livedump
// device or image at path. It returns an *UnreadableError when the input
// is not a dump at all; everything wrong with a dump is a failed check in
// the Report instead.
func File(ctx context.Context, path string, opt Options) (*Report, error) {
	start := time.Now()
	src, err := dump.OpenSource(ctx, path, "", nil)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, &UnreadableError{Path: path, Off: -1, What: err.Error()}
	}
	defer src.Close()
	c := newChecker(ctx, path, src, src.Size, opt)
	c.rep.Kind = string(src.Kind)
	c.blockDevice = src.Kind == dump.KindBlockDevice
	c.isPath = true
	if err := c.run(); err != nil {
		return nil, err
	}
	c.rep.Duration = time.Since(start)
	return c.rep, nil
}

// Reader verifies the dump behind r (size bytes). name is used in
// messages. It is File without the opening, for tests and for inputs
// already in memory; the livedump checks that need extract's repaired
// view (K-1's recovery) are skipped.
func Reader(ctx context.Context, name string, r io.ReaderAt, size int64, opt Options) (*Report, error) {
	start := time.Now()
	c := newChecker(ctx, name, r, size, opt)
	c.rep.Kind = "file"
	if err := c.run(); err != nil {
		return nil, err
	}
	c.rep.Duration = time.Since(start)
	return c.rep, nil
}

// checker holds what the checks learn about the file, in the order they
// learn it.
type checker struct {
	ctx         context.Context
	opt         Options
	path        string
	r           io.ReaderAt // the input, through a small page cache
	raw         io.ReaderAt // the input itself
	size        int64
	blockDevice bool
	isPath      bool // path names the input itself (dump.Open can reopen it)
	rep         *Report

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
	// minorRingKeys are the missing printk keys that only cost details.
	minorRingKeys []vmcoreinfo.Requirement
	// walkBroken is set when E2 found the page walk failing.
	walkBroken bool
	cores      []elfcore.Note    // CORE/NT_PRSTATUS notes in order
	synthetic  bool              // K-7: the CPU notes are livedump's synthetic ones
	capture    *dump.CaptureNote // ldx's LDX note: a live capture (capture --kcore)

	first, last *elfcore.PhysMem // physical views: first match (crash, makedumpfile), last match (drgn)

	mkd    *kmem.Mem // makedumpfile's walk (first match, root from NUMBER(phys_base) or the image PT_LOAD)
	mkdErr error
	params kmem.Params
	// physBase is what crash and makedumpfile use: NUMBER(phys_base), else
	// the first kernel-image PT_LOAD; physBaseFrom says which.
	physBase     uint64
	physBaseFrom string
	// truePhysBase is the phys_base a page walk through RAM confirms (E1),
	// else physBase.
	truePhysBase uint64
	pageOffset   uint64 // direct-map base, from the page tables (0: unknown)
	// ksyms is the kernel's kallsyms table from the dump (E6), read on
	// first use.
	ksyms     *kallsyms.Table
	ksymsRead bool
}

func newChecker(ctx context.Context, path string, r io.ReaderAt, size int64, opt Options) *checker {
	return &checker{ctx: ctx, opt: opt, path: path, raw: r, r: newPageCache(r), size: size,
		rep: &Report{File: path, Size: size, Deep: opt.Deep, Checks: []Result{}}}
}

// run performs every check in catalog order (each check function emits
// its results; those that cannot run are emitted as skipped).
func (c *checker) run() error {
	n, err := c.raw.ReadAt(c.hdr[:], 0)
	if n < len(c.hdr) {
		return &UnreadableError{Path: c.path, Off: int64(n), What: fmt.Sprintf("only %d bytes: too short for an ELF header (%v)", c.size, err)}
	}
	if c.isKdump() {
		c.kdump = true
		c.checkKdump()
		c.order()
		c.rep.finish(nil)
		return nil
	}
	if string(c.hdr[:4]) != elf.ELFMAG {
		return c.notELF()
	}
	ok := c.checkHeader()
	if ok {
		ok = c.parseProgs()
	}
	if !ok {
		c.skipRest("the ELF header or program-header table cannot be read (see above)")
		c.rep.finish(nil)
		return nil
	}
	c.classify()
	c.checkSegments()
	c.checkNotes()
	c.checkVMCOREINFO()
	c.checkTranslation()
	c.checkPrintk()
	c.checkKernelSupport()
	c.checkFiltered()
	c.checkVmlinux()
	c.checkLivedump()
	c.checkDeep()
	c.order()
	c.rep.finish(nil)
	return nil
}

// notELF explains an input without the ELF magic.
func (c *checker) notELF() error {
	e := &UnreadableError{Path: c.path, Off: 0}
	zero := true
	for _, b := range c.hdr {
		if b != 0 {
			zero = false
			break
		}
	}
	if zero {
		e.What = "no ELF header: the first bytes are zeros"
		e.Hint = "a livedump device whose capture never reached FINISH has no header in page 0 (the kernel writes it last); otherwise this is not a dump"
	} else {
		e.What = fmt.Sprintf("no ELF header (the file starts with % x)", c.hdr[:8])
		e.Hint = "this is not an ELF vmcore, kdump-compressed file or livedump device"
	}
	return e
}

// emit adds a result, filling name and consumers from the catalog and
// the severity from the effects of a failure.
func (c *checker) emit(r Result) {
	e := lookup(r.ID)
	r.Name = e.Name
	if r.Consumers == nil {
		r.Consumers = e.Consumers
	}
	if r.Field == "" && r.Offset == 0 {
		r.Offset = -1
	}
	if r.Status == Fail {
		sev := r.Severity
		for _, ef := range r.Effects {
			if !ef.IfVersionKnown {
				sev = max(sev, ef.Severity)
			}
		}
		if sev == None {
			sev = e.Severity
		}
		r.Severity = sev
	} else if r.Severity == None {
		r.Severity = e.Severity
	}
	c.rep.Checks = append(c.rep.Checks, r)
}

func (c *checker) pass(id ID, found string) { c.emit(Result{ID: id, Status: Pass, Found: found}) }
func (c *checker) inform(id ID, found string) {
	c.emit(Result{ID: id, Status: Inform, Found: found, Severity: Info})
}
func (c *checker) skip(id ID, why string) { c.emit(Result{ID: id, Status: Skipped, Found: why}) }

// fail adds a failed result; loc is the field and its file offset.
func (c *checker) fail(id ID, found, fix string, loc location, effects ...Effect) {
	c.emit(Result{ID: id, Status: Fail, Found: found, Fix: fix, Field: loc.field, Offset: loc.off, Effects: effects})
}

// failSev adds a failed result with an explicit severity (for defects no
// consumer notices in a way an Effect describes).
func (c *checker) failSev(id ID, sev Severity, found, fix string, loc location, effects ...Effect) {
	c.emit(Result{ID: id, Status: Fail, Severity: sev, Found: found, Fix: fix, Field: loc.field, Offset: loc.off, Effects: effects})
}

type location struct {
	field string
	off   int64
}

var nowhere = location{off: -1}

func at(field string, off int64) location { return location{field, off} }

// eff builds an Effect.
func eff(c Consumer, sev Severity, what string) Effect {
	return Effect{Consumer: c, Severity: sev, What: what}
}

// novm marks an effect that hits runs without a vmlinux as well.
func (e Effect) novm() Effect { e.Scope = ScopeAll; return e }

// onlyNovm marks an effect that hits only runs without a vmlinux.
func (e Effect) onlyNovm() Effect { e.Scope = ScopeNoVmlinux; return e }

// ver restricts an effect to some versions of its consumer.
func (e Effect) ver(v string) Effect { e.Versions = v; return e }

// skipRest emits every catalog check not emitted yet as skipped.
func (c *checker) skipRest(why string) {
	for _, e := range catalog {
		if c.rep.Check(e.ID) == nil && c.applies(e.ID) {
			c.skip(e.ID, why)
		}
	}
}

// applies reports whether a check belongs in this report: the livedump
// defects only for raw livedump devices, the full read only with Deep.
func (c *checker) applies(id ID) bool {
	switch {
	case strings.HasPrefix(string(id), "H"):
		return c.kdump && (id != H5 || c.opt.Deep)
	case c.kdump:
		return false
	case strings.HasPrefix(string(id), "K-") && id != K7:
		return c.livedump
	case id == Z1:
		return c.opt.Deep
	case strings.HasPrefix(string(id), "V"):
		return c.opt.Vmlinux != nil
	}
	return true
}

// order sorts the results into catalog order.
func (c *checker) order() {
	rank := map[ID]int{}
	for i, e := range catalog {
		rank[e.ID] = i
	}
	slices.SortStableFunc(c.rep.Checks, func(a, b Result) int { return rank[a.ID] - rank[b.ID] })
}

func (c *checker) note(format string, a ...any) {
	c.rep.Notes = append(c.rep.Notes, fmt.Sprintf(format, a...))
}

// u16, u32, u64 read little-endian fields of the ELF header.
func (c *checker) u16(off int) uint16 { return binary.LittleEndian.Uint16(c.hdr[off:]) }
func (c *checker) u32(off int) uint32 { return binary.LittleEndian.Uint32(c.hdr[off:]) }
func (c *checker) u64(off int) uint64 { return binary.LittleEndian.Uint64(c.hdr[off:]) }

// fixExtract is the advice for every layout defect ldx's writer avoids.
const fixExtract = "run `ldx extract FILE -o VMCORE`: it writes the layout every consumer accepts"

func mib(n uint64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 10<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
