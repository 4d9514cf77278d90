// Package dump opens kernel memory dumps: it reads an input (a file, a
// block device with O_DIRECT, an xz-compressed image), tells its format
// through a table of openers (livedump.go, kdump.go, elf.go: each a probe that
// returns ErrNotMine for other formats, and an open), and analyses and
// repairs it into a Dump: physical memory, RAM ranges, kernel image,
// notes and VMCOREINFO, with a Report of every repair and warning.
//
// The livedump v1 kernel code writes memory page by page at byte offset =
// physical address, page 0 an ELF header, page 1 the first 4 KiB of the
// notes (the format: package livedump). What it gets wrong (its defects
// K-1 …) is repaired here; QEMU dumps and /proc/vmcore copies are
// normalised. Read-only commands read the Dump in place; package extract
// writes it as a vmcore.
package dump

import (
	"context"
	"errors"
	"fmt"
	"io"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/kernel/x86"
	"ldx/vmcoreinfo"
)

// Dump is an opened input, analysed and repaired, readable in place: a
// raw livedump device or image (with its notes repaired and its
// never-written pages read as zeros), or an ELF vmcore. Commands that
// read dumps (info, dmesg, verify, read) open every input through it, and
// extract writes what it holds, so they see exactly what extract writes.
type Dump struct {
	Source *Source
	// Core is the input's own ELF header and program headers, nil when
	// it has none.
	Core *elfcore.File
	// Format is the format the input was opened as.
	Format Format
	// Phys reads physical memory by physical address, within RAM, as the
	// extracted vmcore presents it: pages the kernel never wrote read as
	// zeros; pages the input excluded (Excluded) are an *ExcludedError.
	Phys io.ReaderAt
	// Memory reads the input's physical memory as it is, by physical
	// address; Raw says it is the Source itself (offset = physical
	// address), whose holes need not be read.
	Memory io.ReaderAt
	Raw    bool
	// Unwritten, if set, tells a page the kernel never wrote (pfn and the
	// page's bytes as Memory reads them).
	Unwritten func(pfn uint64, page []byte) bool
	// Excluded, if set, tells a page of RAM the input does not hold
	// because its producer left it out (a kdump file's dump level): no
	// one knows its bytes. Memory reads it as zeros, which is what a
	// vmcore made from the input holds (extract asks for them through
	// Memory, Walk); Phys reports it as an *ExcludedError naming
	// ExcludedWhy, so that readers say "excluded" instead of showing
	// zeros. Unlike Unwritten pages, which are known to be zeros in
	// effect, excluded pages had content.
	Excluded    func(pfn uint64) bool
	ExcludedWhy string
	// RAM are the physical ranges that hold memory, sorted.
	RAM []elfcore.Range
	// Image is the kernel image's physical range (page-aligned) and
	// ImageVirt its virtual address; PageOffset the direct-map base
	// (page_offset_base).
	Image      elfcore.Range
	ImageVirt  uint64
	PageOffset uint64
	// Notes are the notes extract writes: one NT_PRSTATUS per CPU, the
	// complete VMCOREINFO last.
	Notes []elfcore.Note
	// VMCOREINFO is the parsed complete VMCOREINFO.
	VMCOREINFO *vmcoreinfo.Info
	// Report carries what opening the input repaired and warned about.
	Report *Report
}

// finish fills in what every opener's Dump has in common.
func (d *Dump) finish(in *Input, f Format) {
	d.Source, d.Core, d.Format, d.Report = in.Source, in.Core, f, in.Report
	d.Phys = &ramReader{r: d.Memory, ram: d.RAM, unwritten: d.Unwritten, excluded: d.Excluded, excludedWhy: d.ExcludedWhy}
	for _, n := range d.Notes {
		if n.Is(elfcore.NameVMCOREINFO, elfcore.NT_VMCOREINFO) {
			d.VMCOREINFO, _ = vmcoreinfo.ParseLenient(n.Desc)
		}
	}
}

// RAMBytes is the memory the RAM ranges cover.
func (d *Dump) RAMBytes() uint64 { return elfcore.Covered(d.RAM) }

// Walk reads the physical ranges of Memory in ascending order in chunks
// and calls fn for each: fn(pa, n, chunk) with chunk holding the n bytes
// at physical address pa, or chunk == nil when the n bytes are a hole of
// a sparse input file, which reads as zeros and is not read at all.
func (d *Dump) Walk(ctx context.Context, ranges []elfcore.Range, fn func(pa, n uint64, chunk []byte) error) error {
	return walkMemory(ctx, d.Source, d.Memory, d.Raw, ranges, fn)
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
// vmcore would present it: outside RAM is an *elfcore.UnmappedError,
// pages the kernel never wrote read as zeros, and pages the input
// excluded are an *ExcludedError.
type ramReader struct {
	r           io.ReaderAt
	ram         []elfcore.Range
	unwritten   func(pfn uint64, page []byte) bool
	excluded    func(pfn uint64) bool
	excludedWhy string
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
		if m.excluded != nil {
			for q := pageDown(pa); q < pa+uint64(k); q += pageSize {
				if m.excluded(q / pageSize) {
					at := max(q, pa)
					return n + int(at-pa), &ExcludedError{Paddr: at, Why: m.excludedWhy}
				}
			}
		}
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
