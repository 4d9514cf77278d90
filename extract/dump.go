package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"ldx/elfcore/x86"

	"ldx/elfcore"
	"ldx/elfcore/kmem"
	"ldx/kmod/manifest"
	"ldx/vmcoreinfo"
)

// Dump is an input analysed the way extract analyses it, readable in
// place: a raw livedump device or image (with its notes repaired and its
// never-written pages read as zeros), or an ELF vmcore. Commands that
// read dumps (info, dmesg, verify, read) open every input through it, so
// they see exactly what extract would write.
type Dump struct {
	Source *Source
	// Core is the input's own ELF header and program headers.
	Core *elfcore.File
	// Format is "livedump raw device" or "ELF vmcore".
	Format string
	// Phys reads physical memory by physical address, within RAM.
	Phys io.ReaderAt
	// RAM are the physical ranges that hold memory, sorted.
	RAM []manifest.Range
	// Image is the kernel image's physical range and ImageVirt its
	// virtual address; PageOffset the direct-map base (page_offset_base).
	Image      manifest.Range
	ImageVirt  uint64
	PageOffset uint64
	// Notes are the notes extract would write: one NT_PRSTATUS per CPU,
	// the complete VMCOREINFO last.
	Notes []elfcore.Note
	// VMCOREINFO is the parsed complete VMCOREINFO.
	VMCOREINFO *vmcoreinfo.Info
	// Summary carries what analysis repaired and warned about.
	Summary *Summary
}

// Open analyses an input without writing anything.
func Open(ctx context.Context, path string) (*Dump, error) {
	opt := Options{Input: path, TempDir: ""}
	opt.defaults()
	opt.TempDir = "" // decompress xz inputs into the system temp dir
	sum := &Summary{Input: path, Repairs: []string{}, Warnings: []string{}}
	src, err := OpenSource(ctx, path, "", nil)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, &InputError{Path: path, Off: -1, What: err.Error()}
	}
	sum.InputKind, sum.InputSize = src.Kind, src.Size
	p, err := analyse(ctx, src, &opt, sum)
	if err != nil {
		src.Close()
		return nil, err
	}
	var core *elfcore.File
	if c, err := elfcore.NewFile(src, src.Size); err == nil {
		core = c
	}
	d := &Dump{Source: src, Core: core, Format: sum.Format, RAM: p.ram, Image: p.image, ImageVirt: p.imageVirt,
		PageOffset: p.pageOffset, Notes: p.notes, Summary: sum}
	d.Phys = &ramReader{r: p.phys, ram: p.ram, unwritten: p.unwritten}
	for _, n := range p.notes {
		if n.Is(elfcore.NameVMCOREINFO, elfcore.NT_VMCOREINFO) {
			d.VMCOREINFO, _ = vmcoreinfo.ParseLenient(n.Desc)
		}
	}
	return d, nil
}

// Close releases the input.
func (d *Dump) Close() error { return d.Source.Close() }

// Kmem returns a reader of kernel virtual memory, translating through the
// dump's page tables from VMCOREINFO.
func (d *Dump) Kmem() (*kmem.Mem, error) {
	if d.VMCOREINFO == nil {
		return nil, errors.New("the dump has no VMCOREINFO")
	}
	var fallback *uint64
	if d.ImageVirt >= x86.KernelTextBase {
		pb := x86.PhysBase(d.Image.Start, d.ImageVirt)
		fallback = &pb
	}
	params, err := kmem.ParamsFrom(d.VMCOREINFO, fallback)
	if err != nil {
		return nil, err
	}
	return kmem.New(d.Phys, params)
}

// ramReader reads physical memory only inside RAM, as the extracted
// vmcore would present it: outside RAM is an *elfcore.UnmappedError, and
// pages the kernel never wrote read as zeros.
type ramReader struct {
	r         io.ReaderAt
	ram       []manifest.Range
	unwritten func(pfn uint64, page []byte) bool
}

func (m *ramReader) ReadAt(p []byte, off int64) (int, error) {
	pa := uint64(off)
	n := 0
	for n < len(p) {
		end, ok := m.rangeEnd(pa)
		if !ok {
			return n, &elfcore.UnmappedError{Paddr: pa}
		}
		k := int(min(uint64(len(p)-n), end-pa))
		got, err := m.r.ReadAt(p[n:n+k], int64(pa))
		if got < k {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return n + got, fmt.Errorf("reading physical %#x: %w", pa+uint64(got), err)
		}
		if m.unwritten != nil {
			m.zeroUnwritten(p[n:n+k], pa)
		}
		n += k
		pa += uint64(k)
	}
	return n, nil
}

func (m *ramReader) rangeEnd(pa uint64) (uint64, bool) {
	for _, r := range m.ram {
		if pa >= r.Start && pa < r.End {
			return r.End, true
		}
	}
	return 0, false
}

// zeroUnwritten clears the parts of b (physical pa…) that lie in pages the
// kernel never wrote. A partial page is checked by reading it whole.
func (m *ramReader) zeroUnwritten(b []byte, pa uint64) {
	page := make([]byte, pageSize)
	for off := 0; off < len(b); {
		base := pageDown(pa + uint64(off))
		k := int(min(uint64(len(b)-off), base+pageSize-(pa+uint64(off))))
		if _, err := m.r.ReadAt(page, int64(base)); err == nil && m.unwritten(base/pageSize, page) {
			clear(b[off : off+k])
		}
		off += k
	}
}
