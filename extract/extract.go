// Package extract writes a compact ELF vmcore that crash, makedumpfile
// and drgn open from any input package dump opens: a livedump block
// device (or an image of one), or another ELF vmcore. Opening, analysis
// and repair are package dump's; extract streams the dump's memory into
// the output: PT_LOADs only where RAM is, never-written and all-zero
// pages as holes of a sparse file, the notes first and complete, and the
// Summary of what was read, written and repaired. With OutputFormat
// FormatKdump it writes the same dump as a kdump-compressed file through
// package kdump's writer (kdump.go).
//
// With a dump level (Options.DumpLevel, makedumpfile's -d) the pages
// package pageclass excludes, and with bit 1 the zero pages, are left out.
// In a kdump file they are clear in the dumpable bitmap (zero pages point at
// the one shared zero page, as makedumpfile does). In an ELF vmcore they
// are left out the way makedumpfile -E leaves them out: a run of 256 or
// more excluded pages ends the PT_LOAD before it and lies in no PT_LOAD; a
// shorter run is written as it is. Excluded pages are never covered by a
// p_memsz larger than p_filesz (makedumpfile -E's own form): makedumpfile
// 1.7 reads such a tail from the file bytes after the segment, so a
// filtered ldx vmcore could not be filtered again or have its log dumped;
// an address in no PT_LOAD is what every consumer reports as not in the
// dump. The program header room is reserved for one extra PT_LOAD per 256
// pages of RAM.
package extract

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kdump"
	"ldx/elfcore/kernel/pageclass"
	"ldx/elfcore/vmlinux"
	"ldx/extract/dump"
)

// Options configure an extraction.
type Options struct {
	Input  string // block device, raw image, xz-compressed raw image, or ELF vmcore
	Output string
	Force  bool // replace an existing output

	// TempDir receives the decompressed copy of an xz input (default: the
	// output's directory).
	TempDir string

	// Progress, if set, is called as work advances.
	Progress func(Progress)

	// Vmlinux, if set, is the dumped kernel's debug vmlinux: when the
	// dump's VMCOREINFO cannot be recovered from the dumped memory, it is
	// rebuilt from the vmlinux and the memory (and the summary says so).
	Vmlinux *vmlinux.File

	// OutputFormat is FormatELF (the default) or FormatKdump; Compression
	// applies to kdump output only.
	OutputFormat string
	Compression  kdump.Compression
	// DumpLevel leaves pages out by makedumpfile's dump levels (-d):
	// 1 zero pages, 2 page cache, 4 private cache, 8 user data, 16 free
	// pages. 0 keeps every page of RAM.
	DumpLevel pageclass.Level

	// exclude, set by tests, replaces the page classes of the dump level
	// in the kdump output (the synthetic kernels have no struct pages).
	exclude func(pfn uint64) bool

	// Stream, if set, receives the vmcore as a flattened stream
	// (makedumpfile's -F format, which ldx and makedumpfile -R read back)
	// instead of a file named Output: every write becomes a record, the
	// headers last, so it can go down a pipe. Only Write takes it.
	Stream io.Writer

	// FinalNotes, if set, is called once the memory is copied and before
	// the headers are written, and its notes replace the Dump's: a live
	// capture records in a note what it found at the end (how much memory
	// changed while it was read). They must encode to the same size as
	// the Dump's notes, whose room was laid out before the copy.
	FinalNotes func() ([]elfcore.Note, error)
}

// Progress reports how far a phase has got.
type Progress struct {
	Phase       string // "decompress", "scan", "classify", "copy"
	Done, Total int64  // bytes
}

// Summary says what extract read, wrote, repaired and could not repair.
type Summary struct {
	Input      string          `json:"input"`
	InputKind  dump.SourceKind `json:"input_kind"`
	InputSize  int64           `json:"input_size"`
	Format     dump.Format     `json:"format"`
	Output     string          `json:"output"`
	Release    string          `json:"release,omitempty"`
	CPUs       int             `json:"cpus"`
	CrashTime  *time.Time      `json:"crash_time,omitempty"`
	Manifest   bool            `json:"manifest"`
	Prepared   string          `json:"device_prepared,omitempty"`
	VMCOREINFO string          `json:"vmcoreinfo_source"`
	CPUNotes   dump.NoteCounts `json:"cpu_notes"`
	Segments   int             `json:"segments"`
	RAMRanges  int             `json:"ram_ranges"`
	Memory     uint64          `json:"memory_bytes"`      // memory the PT_LOADs cover
	Read       uint64          `json:"read_bytes"`        // bytes read from the input
	Written    uint64          `json:"written_bytes"`     // data bytes written
	OutputSize int64           `json:"output_size"`       // apparent size of the vmcore
	OnDisk     int64           `json:"output_disk_bytes"` // blocks it takes: zero pages are holes
	ZeroPages  uint64          `json:"zero_pages"`        // not stored
	Unwritten  uint64          `json:"unwritten_pages"`
	Filter     *Filter         `json:"filter,omitempty"` // set with a dump level above 0
	Repairs    []string        `json:"repairs"`
	Warnings   []string        `json:"warnings"`
	Duration   time.Duration   `json:"duration_ns"`
	// OutputFormat is FormatELF or FormatKdump; Kdump says what the
	// kdump-compressed output holds.
	OutputFormat string        `json:"output_format"`
	Kdump        *KdumpSummary `json:"kdump,omitempty"`
}

// Filter says what a dump level left out.
type Filter struct {
	Level pageclass.Level `json:"dump_level"`
	// Excluded are the RAM pages the level excludes, per class, as
	// decided from the kernel's struct pages; ZeroExcluded the zero pages
	// (bit 1) not already in a class. Runs of fewer than 256 excluded
	// pages between kept ones are still written (as makedumpfile -E
	// does); LeftOut are the pages in no PT_LOAD.
	Excluded     pageclass.Counts `json:"excluded"`
	ZeroExcluded uint64           `json:"zero_excluded"`
	LeftOut      uint64           `json:"left_out_pages"`
	Anomalies    uint64           `json:"anomalies"`
}

// report copies what opening the input found into the summary.
func (s *Summary) report(r *dump.Report) {
	s.Format, s.Release, s.CPUs, s.CrashTime = r.Format, r.Release, r.CPUs, r.CrashTime
	s.Manifest, s.Prepared, s.VMCOREINFO, s.CPUNotes, s.RAMRanges = r.Manifest, r.Prepared, r.VMCOREINFO, r.CPUNotes, r.RAMRanges
	s.Repairs = append(s.Repairs, r.Repairs...)
	s.Warnings = append(s.Warnings, r.Warnings...)
}

func (s *Summary) warn(format string, a ...any) {
	s.Warnings = append(s.Warnings, fmt.Sprintf(format, a...))
}

func (o *Options) defaults() {
	if o.TempDir == "" {
		o.TempDir = tempDirFor(o.Output)
	}
	if o.OutputFormat == "" {
		o.OutputFormat = FormatELF
	}
}

// ErrOptions is returned for options that do not go together.
var ErrOptions = errors.New("bad options")

// check refuses options the chosen output format cannot honour.
func (o *Options) check() error {
	if err := o.checkFormat(); err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	return nil
}

func (o *Options) checkFormat() error {
	if o.DumpLevel > pageclass.All {
		return fmt.Errorf("dump level %d: want 0-%d", o.DumpLevel, pageclass.All)
	}
	switch o.OutputFormat {
	case FormatELF:
		if o.Compression != kdump.CompressZlib {
			return errors.New("compression applies to --format kdump only")
		}
	case FormatKdump:
	default:
		return fmt.Errorf("unknown output format %q (want %s or %s)", o.OutputFormat, FormatELF, FormatKdump)
	}
	return nil
}

func (o *Options) progress(phase string, done, total int64) {
	if o.Progress != nil {
		o.Progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

// Run performs an extraction.
func Run(ctx context.Context, opt Options) (sum *Summary, err error) {
	start := time.Now()
	opt.defaults()
	sum = &Summary{Input: opt.Input, Output: opt.Output, Repairs: []string{}, Warnings: []string{}, OutputFormat: opt.OutputFormat}
	if err := opt.check(); err != nil {
		return sum, err
	}
	src, err := dump.OpenSource(ctx, opt.Input, opt.TempDir, func(d, t int64) { opt.progress("decompress", d, t) })
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return sum, err
		}
		return sum, &dump.InputError{Path: opt.Input, Off: -1, What: err.Error()}
	}
	defer src.Close()
	sum.InputKind, sum.InputSize = src.Kind, src.Size

	out, err := createOutput(opt.Output, opt.Force, src)
	if err != nil {
		return sum, err
	}
	defer func() {
		if err != nil {
			out.abort()
		}
	}()

	d, err := dump.Analyse(ctx, src, dump.Options{TempDir: opt.TempDir, Progress: opt.progress, Vmlinux: opt.Vmlinux})
	if err != nil {
		return sum, err
	}
	sum.report(d.Report)
	if err := writeAs(ctx, out, d, &opt, sum); err != nil {
		return sum, err
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

// Write writes an already opened Dump (a live source such as /proc/kcore
// presents itself as one) to opt.Output with the same layout and output
// safety as Run; opt.Input is only named in the summary.
func Write(ctx context.Context, d *dump.Dump, opt Options) (sum *Summary, err error) {
	start := time.Now()
	opt.defaults()
	sum = &Summary{Input: opt.Input, Output: opt.Output, Repairs: []string{}, Warnings: []string{}, OutputFormat: opt.OutputFormat}
	if err := opt.check(); err != nil {
		return sum, err
	}
	if d.Source != nil {
		sum.InputKind, sum.InputSize = d.Source.Kind, d.Source.Size
	}
	var out sink
	if opt.Stream != nil {
		out, err = newStreamOutput(opt.Stream)
	} else {
		out, err = createOutput(opt.Output, opt.Force, d.Source)
	}
	if err != nil {
		return sum, err
	}
	defer func() {
		if err != nil {
			out.abort()
		}
	}()
	sum.report(d.Report)
	if err := writeAs(ctx, out, d, &opt, sum); err != nil {
		return sum, err
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

// writeAs writes the dump in the output format opt asks for.
func writeAs(ctx context.Context, out sink, d *dump.Dump, opt *Options, sum *Summary) error {
	if opt.OutputFormat != FormatKdump {
		return write(ctx, out, d, opt, sum)
	}
	switch opt.Compression {
	case kdump.CompressZstd, kdump.CompressSnappy:
		sum.warn("%s-compressed pages: makedumpfile 1.7.2 as Debian 12 ships it reads neither zstd nor snappy (crash and drgn do); use zlib for it", opt.Compression)
	}
	return writeKdump(ctx, out, d, opt, sum)
}

// write streams memory into the output and writes the headers.
func write(ctx context.Context, out sink, p *dump.Dump, opt *Options, sum *Summary) error {
	notes := elfcore.EncodeNotes(p.Notes)
	// One PT_LOAD per RAM range, two more around the kernel image, and
	// the image's own.
	maxLoads := len(p.RAM) + 3
	var classes *pageclass.Result
	if lvl := opt.DumpLevel; lvl != 0 {
		var err error
		if classes, err = classify(ctx, p, lvl, opt.progress); err != nil {
			return err
		}
		sum.Filter = &Filter{Level: lvl, Excluded: classes.Counts, Anomalies: classes.Anomalies}
		for _, n := range classes.Notes {
			sum.warn("dump level %d: struct page anomaly (page kept): %s", lvl, n)
		}
		// Each cut needs cutPages left-out pages and adds one segment.
		for _, r := range p.RAM {
			maxLoads += int((r.End-r.Start)/pageSize/cutPages) + 1
		}
	}
	w := elfcore.NewWriter(out, elf.EM_X86_64, maxLoads, notes)
	seg := newSegmenter(out, uint64(w.DataOffset()), p.PageOffset, p.Image)
	total := int64(p.RAMBytes())
	var done int64
	var last time.Time
	for _, r := range p.RAM {
		seg.beginRange(r)
		err := p.Walk(ctx, []elfcore.Range{r}, func(pa, n uint64, chunk []byte) error {
			if chunk != nil {
				sum.Read += n
			}
			for off := uint64(0); off < n; off += pageSize {
				var page []byte
				if chunk != nil {
					page = chunk[off:min(n, off+pageSize)]
					if elfcore.IsZero(page) {
						page = nil
					} else if p.Unwritten != nil && p.Unwritten((pa+off)/pageSize, page) {
						sum.Unwritten++
						page = nil
					}
				}
				excluded := false
				if classes != nil {
					excluded = classes.Excluded((pa + off) / pageSize)
					if !excluded && page == nil && opt.DumpLevel&pageclass.Zero != 0 {
						excluded = true
						sum.Filter.ZeroExcluded++
					}
				}
				if err := seg.page(pa+off, page, excluded); err != nil {
					return err
				}
			}
			done += int64(n)
			if now := time.Now(); now.Sub(last) > 100*time.Millisecond {
				opt.progress("copy", done, total)
				last = now
			}
			return nil
		})
		if err != nil {
			return err
		}
		seg.endRange(r)
	}
	opt.progress("copy", total, total)
	segs, end := seg.finish()
	if opt.FinalNotes != nil {
		final, err := opt.FinalNotes()
		if err != nil {
			return err
		}
		enc := elfcore.EncodeNotes(final)
		if len(enc) != len(notes) {
			return fmt.Errorf("extract: the final notes take %d bytes, the room laid out for them %d", len(enc), len(notes))
		}
		w = elfcore.NewWriter(out, elf.EM_X86_64, maxLoads, enc)
	}
	if img, ok := seg.imageSegment(p.ImageVirt); ok {
		img.Flags = elf.PF_R | elf.PF_W | elf.PF_X
		if err := w.AddLoad(img); err != nil {
			return err
		}
	} else {
		sum.warn("the kernel image [%#x, %#x) is not in the RAM map: no kernel-image PT_LOAD (crash and makedumpfile then need NUMBER(phys_base))", p.Image.Start, p.Image.End)
	}
	for _, s := range segs {
		s.Flags = elf.PF_R | elf.PF_W | elf.PF_X
		if err := w.AddLoad(s); err != nil {
			return err
		}
	}
	if err := w.Finish(); err != nil {
		return err
	}
	size := int64(max(end, uint64(w.DataOffset())))
	if err := out.commit(size); err != nil {
		return err
	}
	sum.Segments = len(segs)
	sum.Memory = p.RAMBytes()
	sum.Written = seg.written
	sum.ZeroPages = seg.zeroPages - sum.Unwritten
	sum.OutputSize = size
	if sum.Filter != nil {
		sum.Filter.LeftOut = seg.leftOut
	}
	sum.OnDisk = out.onDisk()
	return nil
}

// classify decides which pages of the dump's RAM lvl leaves out, from its
// VMCOREINFO and struct pages; a level whose keys the dump lacks is
// refused with the key named.
func classify(ctx context.Context, p *dump.Dump, lvl pageclass.Level, progress func(phase string, done, total int64)) (*pageclass.Result, error) {
	if lvl > pageclass.All {
		return nil, fmt.Errorf("dump level %d out of range 0..31", lvl)
	}
	if lvl&^pageclass.Zero == 0 {
		return &pageclass.Result{Level: lvl}, nil
	}
	mem, err := p.Kmem()
	if err != nil {
		return nil, fmt.Errorf("dump level %d: %w", lvl, err)
	}
	res, err := pageclass.ClassifyProgress(ctx, mem, p.VMCOREINFO, lvl, p.RAM, func(done, total int64) { progress("classify", done, total) })
	if err != nil {
		return nil, fmt.Errorf("dump level %d: %w", lvl, err)
	}
	return res, nil
}
