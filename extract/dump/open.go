package dump

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"ldx/elfcore"
	"ldx/elfcore/vmlinux"
	"ldx/kmod/manifest"
)

// Format names the format of an input: which opener read it. Each
// format's file declares its constant; the text is what info, extract's
// summary and verify print.
type Format string

func (f Format) String() string { return string(f) }

// ErrNotMine is what an opener's Probe returns for an input in another
// format; Open then tries the next opener.
var ErrNotMine = errors.New("not an input of this format")

// Opener reads one input format. Adding a format is one file that
// declares its Format and registers its Opener from init.
type Opener struct {
	Format Format
	// Rank orders the openers, lowest first. A format that is a special
	// case of another ranks before it: a livedump device is also an ELF
	// core, so livedump ranks before the generic ELF vmcore.
	Rank int
	// Probe looks at the input (page 0, the ELF headers) and returns nil
	// when the input is in this format, ErrNotMine when it is not. It
	// reports nothing.
	Probe func(in *Input) error
	// Open analyses an input Probe accepted: it returns the dump's
	// memory, RAM, kernel image and notes, and says what it repaired and
	// warns about in in.Report. Analyse fills in the rest of the Dump
	// (Source, Core, Format, Report, Phys, VMCOREINFO).
	Open func(ctx context.Context, in *Input) (*Dump, error)
}

// openers are tried in order of Rank; the first whose Probe accepts the
// input opens it.
var openers []Opener

// register adds an opener to the table, after those of the same or a
// lower rank.
func register(o Opener) {
	i := len(openers)
	for i > 0 && openers[i-1].Rank > o.Rank {
		i--
	}
	openers = slices.Insert(openers, i, o)
}

// Formats lists the formats the openers read, in the order they are
// tried.
func Formats() []Format {
	var fs []Format
	for _, o := range openers {
		fs = append(fs, o.Format)
	}
	return fs
}

// Options configure opening an input.
type Options struct {
	// TempDir receives the decompressed copy of an xz input (default: the
	// system's temporary directory).
	TempDir string

	// Progress, if set, is called as work advances, with phase
	// "decompress" (an xz input) or "scan" (a search of the memory).
	Progress func(phase string, done, total int64)

	// Vmlinux, if set, is the dumped kernel's debug vmlinux: when the
	// dump's VMCOREINFO cannot be recovered from the dumped memory, it is
	// rebuilt from the vmlinux and the memory (and the report says so).
	Vmlinux *vmlinux.File

	// ZeroExcluded makes Phys read the pages the input's producer left
	// out (a filtered kdump file's excluded pages) as zeros instead of
	// failing with an *ExcludedError, as crash's --zero_excluded does:
	// for looking past a filtered dump's holes when the reader knows the
	// bytes there are not needed (a walk that touches one freed page).
	ZeroExcluded bool
}

func (o *Options) progress(phase string, done, total int64) {
	if o.Progress != nil {
		o.Progress(phase, done, total)
	}
}

// Input is what an opener gets: the opened input and what every format
// is checked for first.
type Input struct {
	Source *Source
	// Page0 is the input's first page.
	Page0 []byte
	// Core is the input's ELF header and program headers, nil when it
	// has none; CoreErr says why.
	Core    *elfcore.File
	CoreErr error
	// Manifest is ldx capture's manifest on the input, or nil.
	Manifest *manifest.Manifest
	Options  *Options
	// Report receives the repairs and warnings.
	Report *Report
}

// Open opens the input at path read-only and analyses it (Analyse),
// without writing anything. Inputs that are not dumps are an
// *InputError.
func Open(ctx context.Context, path string, opt Options) (*Dump, error) {
	src, err := OpenSource(ctx, path, opt.TempDir, func(done, total int64) { opt.progress("decompress", done, total) })
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, &InputError{Path: path, Off: -1, What: err.Error()}
	}
	d, err := Analyse(ctx, src, opt)
	if err != nil {
		src.Close()
		return nil, err
	}
	return d, nil
}

// Analyse reads an opened input through the first opener that accepts
// it: the capture manifest and page 0 are checked first, for every
// format. The Dump owns src: closing it closes src.
func Analyse(ctx context.Context, src *Source, opt Options) (*Dump, error) {
	in, err := newInput(src, opt)
	if err != nil {
		return nil, err
	}
	for _, o := range openers {
		err := o.Probe(in)
		if errors.Is(err, ErrNotMine) {
			continue
		}
		if err != nil {
			return nil, err
		}
		in.Report.Format = o.Format
		d, err := o.Open(ctx, in)
		if err != nil {
			return nil, err
		}
		d.finish(in, o.Format)
		if opt.ZeroExcluded && d.Excluded != nil {
			d.Phys = &ramReader{r: d.Memory, ram: d.RAM, unwritten: d.Unwritten}
			d.Report.warn("pages excluded at %s are read as zeros (asked for): bytes read from them are not the kernel's", d.ExcludedWhy)
		}
		return d, nil
	}
	switch {
	case in.Core != nil:
		return nil, &InputError{Path: src.Path, Off: 0, What: "an ELF file in no format ldx reads"}
	case errors.Is(in.CoreErr, elfcore.ErrNotELF):
		return nil, noHeaderError(src, in.Page0, in.Manifest)
	}
	return nil, &InputError{Path: src.Path, Off: -1, What: in.CoreErr.Error()}
}

// newInput reads what every format is checked for first: the capture
// manifest (refusing a capture it says is incomplete), page 0 and the
// ELF headers.
func newInput(src *Source, opt Options) (*Input, error) {
	rep := &Report{Input: src.Path, InputKind: src.Kind, InputSize: src.Size, Repairs: []string{}, Warnings: []string{}}
	in := &Input{Source: src, Options: &opt, Report: rep}
	if fl := src.Flattened(); fl != nil && fl.Truncated {
		rep.warn("the flattened stream has no end record: it stops at stream offset %#x after %d records (a copy or pipe cut short?); what it holds is read, the rest reads as missing", fl.TruncatedAt, fl.Records)
	}
	man, err := manifest.Read(src)
	switch {
	case errors.Is(err, manifest.ErrNone):
		man = nil
	case err != nil:
		rep.warn("ignoring the capture manifest: %v", err)
		man = nil
	}
	if man != nil {
		rep.Manifest, rep.Prepared = true, string(man.Prepared)
		if err := checkCaptureStatus(src, man, rep); err != nil {
			return nil, err
		}
	}
	in.Manifest = man
	in.Page0 = make([]byte, pageSize)
	if n, err := src.ReadAt(in.Page0, 0); n < pageSize {
		return nil, &InputError{Path: src.Path, Off: int64(n), What: fmt.Sprintf("the input is only %d bytes: too short for any dump, which holds at least a header page and its notes (%v)", src.Size, err)}
	}
	in.Core, in.CoreErr = elfcore.NewFile(src, src.Size)
	if in.CoreErr != nil {
		in.Core = nil
	}
	return in, nil
}

// checkCaptureStatus applies what ldx capture recorded about how the run
// ended: the kernel leaves no completion marker (K-2), so the manifest is
// the only witness.
func checkCaptureStatus(src *Source, man *manifest.Manifest, sum *Report) error {
	switch man.Status {
	case manifest.StatusIncomplete:
		detail := man.StatusDetail
		if detail == "" {
			detail = "no detail recorded"
		}
		return &InputError{Path: src.Path, Off: manifest.Offset,
			What: "the capture manifest says this capture is incomplete: " + detail,
			Hint: "the memory on the device is not a whole dump; capture again"}
	case manifest.StatusRunning:
		sum.warn("the capture manifest still says the capture was running: ldx capture was stopped before it could confirm the dump (pages written after FINISH may be missing)")
	}
	if man.FailedPages != nil && *man.FailedPages > 0 {
		sum.warn("the kernel reported %d pages it could not save (its failed counter); they hold whatever the device held before, as prepared (%s)", *man.FailedPages, man.Prepared)
	}
	return nil
}

// InputError reports an input that cannot be turned into a vmcore. It
// names what is wrong and what the user can do; the CLI maps it to its own
// exit code.
type InputError struct {
	Path string
	Off  int64 // byte offset the problem was found at, or -1
	What string
	Hint string
}

func (e *InputError) Error() string {
	s := e.Path + ": "
	if e.Off >= 0 {
		s += fmt.Sprintf("at byte %#x: ", e.Off)
	}
	s += e.What
	if e.Hint != "" {
		s += "\n  " + e.Hint
	}
	return s
}
