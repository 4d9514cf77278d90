// Package extract writes a compact ELF vmcore that crash, makedumpfile
// and drgn open from any input package dump opens: a livedump block
// device (or an image of one), or another ELF vmcore. Opening, analysis
// and repair are package dump's; extract streams the dump's memory into
// the output: PT_LOADs only where RAM is, never-written and all-zero
// pages as holes of a sparse file, the notes first and complete, and the
// Summary of what was read, written and repaired.
package extract

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"ldx/elfcore"
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
}

// Progress reports how far a phase has got.
type Progress struct {
	Phase       string // "decompress", "scan", "copy"
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
	Repairs    []string        `json:"repairs"`
	Warnings   []string        `json:"warnings"`
	Duration   time.Duration   `json:"duration_ns"`
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
	sum = &Summary{Input: opt.Input, Output: opt.Output, Repairs: []string{}, Warnings: []string{}}
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
	if err := write(ctx, out, d, &opt, sum); err != nil {
		return sum, err
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

// write streams memory into the output and writes the headers.
func write(ctx context.Context, out *output, p *dump.Dump, opt *Options, sum *Summary) error {
	notes := elfcore.EncodeNotes(p.Notes)
	// One PT_LOAD per RAM range, two more around the kernel image, and
	// the image's own.
	w := elfcore.NewWriter(out, elf.EM_X86_64, len(p.RAM)+3, notes)
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
				if err := seg.page(pa+off, page); err != nil {
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
	var st unix.Stat_t
	if unix.Stat(out.final, &st) == nil {
		sum.OnDisk = st.Blocks * 512
	}
	return nil
}
