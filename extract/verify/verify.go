package verify

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kdump"
	"ldx/elfcore/vmlinux"
	"ldx/extract/dump"
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
	rep, err := run(input{ctx: ctx, opt: opt, path: path, raw: src, size: src.Size, kind: string(src.Kind),
		blockDevice: src.Kind == dump.KindBlockDevice, isPath: true})
	if err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// Reader verifies the dump behind r (size bytes). name is used in
// messages. It is File without the opening, for tests and for inputs
// already in memory; the livedump checks that need extract's repaired
// view (K-1's recovery) are skipped.
func Reader(ctx context.Context, name string, r io.ReaderAt, size int64, opt Options) (*Report, error) {
	start := time.Now()
	rep, err := run(input{ctx: ctx, opt: opt, path: name, raw: r, size: size, kind: "file"})
	if err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// input is what a verification is asked about: the dump and how it was
// opened.
type input struct {
	ctx         context.Context
	opt         Options
	path        string
	raw         io.ReaderAt // the input itself
	size        int64
	kind        string // Report.Kind
	blockDevice bool
	isPath      bool // path names the input itself (dump.Open can reopen it)
}

// run verifies in: first the fact-finding phase (header, program headers,
// segments, notes, VMCOREINFO, each consumer's translation inputs), whose
// result no check changes; then the check groups, each a function of the
// facts (and, where one group's outcome decides another's, of that
// outcome, passed explicitly) returning its results. The report sorts the
// results into catalog order at the end, so a group's place in this list
// is not part of any contract.
func run(in input) (*Report, error) {
	rep := &Report{File: in.path, Size: in.size, Deep: in.opt.Deep, Kind: in.kind, Checks: []Result{}}
	if head := make([]byte, 8); readFull(in.raw, head) && kdump.IsSignature(head) {
		rep.Checks = kdumpChecks(in, rep) // H: the kdump-compressed format
		rep.order()
		rep.finish(nil)
		return rep, nil
	}
	hdr, err := readELFHeader(in)
	if err != nil {
		return nil, err
	}
	f, found, ok := findFacts(in, hdr)
	rep.Checks = append(rep.Checks, found...)
	if !ok {
		rep.Checks = append(rep.Checks, skipRest(f, rep, "the ELF header or program-header table cannot be read (see above)")...)
		rep.finish(nil)
		return rep, nil
	}
	rep.Format, rep.Release = f.format(), f.release()

	add := func(rs []Result) { rep.Checks = append(rep.Checks, rs...) }
	add(segmentChecks(f))     // B: program headers and segments
	add(noteChecks(f))        // C and K-7: notes
	add(vmcoreinfoChecks(f))  // D: VMCOREINFO lines and keys
	add(translationChecks(f)) // E: phys_base, page walks, init_uts_ns, crash's start-up reads
	ring, log := printkChecks(f)
	add(ring) // F: the printk ring, as makedumpfile and vmcore-dmesg read it
	rep.Notes = append(rep.Notes, log.notes...)
	rep.newestRecord = log.newest
	add(kernelSupportChecks(f)) // G1
	add(filteredChecks(f))      // L1: pages a dump level left out
	add(vmlinuxChecks(f))       // V, with Options.Vmlinux
	add(livedumpChecks(f))      // K, on the raw livedump layout
	add(deepChecks(f))          // Z1, with Options.Deep
	rep.order()
	rep.finish(nil)
	return rep, nil
}

// readFull reads len(b) bytes at offset 0.
func readFull(r io.ReaderAt, b []byte) bool {
	n, _ := r.ReadAt(b, 0)
	return n == len(b)
}

// readELFHeader reads the ELF header, or says why the input is no dump.
func readELFHeader(in input) (hdr [elfcore.HeaderSize]byte, err error) {
	n, rerr := in.raw.ReadAt(hdr[:], 0)
	if n < len(hdr) {
		return hdr, &UnreadableError{Path: in.path, Off: int64(n), What: fmt.Sprintf("only %d bytes: too short for an ELF header (%v)", in.size, rerr)}
	}
	if string(hdr[:4]) != elf.ELFMAG {
		return hdr, notELF(in.path, hdr)
	}
	return hdr, nil
}

// notELF explains an input without the ELF magic.
func notELF(path string, hdr [elfcore.HeaderSize]byte) error {
	e := &UnreadableError{Path: path, Off: 0}
	zero := true
	for _, b := range hdr {
		if b != 0 {
			zero = false
			break
		}
	}
	if zero {
		e.What = "no ELF header: the first bytes are zeros"
		e.Hint = "a livedump device whose capture never reached FINISH has no header in page 0 (the kernel writes it last); otherwise this is not a dump"
	} else {
		e.What = fmt.Sprintf("no ELF header (the file starts with % x)", hdr[:8])
		e.Hint = "this is not an ELF vmcore, kdump-compressed file or livedump device"
	}
	return e
}

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
