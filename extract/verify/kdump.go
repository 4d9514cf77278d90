package verify

import (
	"errors"
	"fmt"

	"ldx/elfcore/kdump"
	"ldx/extract/dump"
	"ldx/vmcoreinfo"
)

// checkKdump verifies a kdump-compressed file (makedumpfile's default
// output, QEMU's kdump-* formats): its header, sub-header and bitmaps
// (H1), its VMCOREINFO (H2), every page descriptor (H3), the sub-header's
// phys_base (H4) and, with --deep, every page's data (H5). The ELF checks
// (A–G) do not apply to it: ldx extract turns it into an ELF vmcore, which
// verify then checks in full.
func kdumpChecks(in input, rep *Report) []Result {
	c := (&facts{input: in, kdump: true}).newGroup()
	rep.Format = dump.FormatKdump.String()
	rep.Notes = append(rep.Notes,
		"kdump-compressed input: header, bitmap and page-descriptor checks only (H1–H5); `ldx extract` makes an ELF vmcore of it that verify checks in full",
		"vmcore-dmesg reads ELF vmcores only, and drgn reads kdump files only when built with libkdumpfile (Debian's is); their rows below do not judge the format")
	f, err := kdump.Open(c.raw, c.size)
	if err != nil {
		loc := nowhere
		var fe *kdump.FormatError
		if errors.As(err, &fe) {
			loc = at(fe.Field, fe.Off)
		}
		c.fail(H1, err.Error(), "the file is damaged or cut short: dump again, or copy it whole", loc,
			eff(Crash, Fatal, "crash: not a supported file format / read error").novm(), eff(Makedumpfile, Fatal, "makedumpfile: the dump file cannot be read"))
		for _, id := range []ID{H2, H3, H4, H5} {
			if c.applies(id) {
				c.skip(id, "the kdump headers cannot be read (H1)")
			}
		}
		return c.out
	}
	defer f.Close()
	_, _, rel, _, _ := f.Utsname()
	rep.Release = rel
	c.pass(H1, fmt.Sprintf("%q header version %d, block size %d, %d CPUs, max_mapnr %#x, %d dumpable pages, dump level %d", f.Signature, f.Header.HeaderVersion, f.PageSize, f.NrCPUs(), f.MaxMapnr, f.DumpablePages(), f.DumpLevel()))

	text := f.VMCOREINFO()
	var info *vmcoreinfo.Info
	if text != nil {
		info, _ = vmcoreinfo.ParseLenient(text)
	}
	if info == nil {
		c.fail(H2, "the sub-header has no VMCOREINFO (header version below 3, or size 0)", "make the dump with a VMCOREINFO (makedumpfile with -x VMLINUX or from a vmcore that has one)", at("offset_vmcoreinfo", int64(f.PageSize)+32),
			eff(Crash, Fatal, "crash: cannot find the KASLR offset / phys_base"), eff(Makedumpfile, Fatal, "makedumpfile: cannot read the kernel's layout"))
	} else if r, ok := info.OSRelease(); !ok || (rel != "" && r != rel) {
		c.fail(H2, fmt.Sprintf("VMCOREINFO OSRELEASE %q, the header's utsname release %q", r, rel), "the VMCOREINFO is another kernel's: make the dump again", at("offset_vmcoreinfo", f.Sub.OffsetVmcoreinfo),
			eff(Crash, Fatal, "crash: the release does not match"), eff(Makedumpfile, Fatal, "makedumpfile: wrong kernel layout"))
	} else {
		c.pass(H2, fmt.Sprintf("%d bytes at %#x, OSRELEASE %s", len(text), f.Sub.OffsetVmcoreinfo, r))
	}

	// Every descriptor, in file order: one sequential read of the array.
	var bad error
	var n uint64
	for _, r := range f.DumpableRanges() {
		for pfn := r.Start; pfn < r.End && bad == nil; pfn++ {
			if err := c.ctx.Err(); err != nil {
				return c.out
			}
			d, off, err := f.PageDesc(pfn)
			switch {
			case err != nil:
				bad = err
			case d.Size == 0 || d.Size > uint32(f.PageSize):
				bad = &kdump.FormatError{Off: off, Field: fmt.Sprintf("page_desc of pfn %#x", pfn), Msg: "size must be 1…page size", Val: d.Size}
			case d.Offset < 0 || d.Offset+int64(d.Size) > c.size:
				bad = &kdump.FormatError{Off: off, Field: fmt.Sprintf("page_desc of pfn %#x", pfn), Msg: "data past the end of the file", Val: fmt.Sprintf("offset %#x size %#x", d.Offset, d.Size)}
			case d.Flags&^kdump.KnownPageFlags != 0:
				bad = &kdump.FormatError{Off: off, Field: fmt.Sprintf("page_desc of pfn %#x", pfn), Msg: "unknown compression flags", Val: fmt.Sprintf("%#x", d.Flags)}
			}
			n++
		}
	}
	if bad != nil {
		loc := nowhere
		var fe *kdump.FormatError
		if errors.As(bad, &fe) {
			loc = at(fe.Field, fe.Off)
		}
		c.fail(H3, bad.Error(), "the file is damaged or cut short: dump again", loc,
			eff(Crash, Degraded, "crash: read error on the page"), eff(Makedumpfile, Degraded, "makedumpfile: read error on the page"))
	} else {
		c.pass(H3, fmt.Sprintf("%d descriptors inside the file, sizes within a page, known compressions", n))
	}

	if info == nil {
		c.skip(H4, "no VMCOREINFO (H2)")
	} else if pb, ok := info.Number("phys_base"); !ok {
		c.skip(H4, "VMCOREINFO has no NUMBER(phys_base)")
	} else if uint64(pb) != f.PhysBase() {
		c.failSev(H4, Degraded, fmt.Sprintf("the sub-header's phys_base is %#x, VMCOREINFO's NUMBER(phys_base) %#x (QEMU writes a guess under KASLR)", f.PhysBase(), uint64(pb)),
			"`ldx extract` writes an ELF vmcore with the right phys_base; ldx's commands read the file as it is", at("phys_base", int64(f.PageSize)),
			eff(Crash, Degraded, "crash may take the sub-header's phys_base and translate kernel addresses wrongly"))
	} else {
		c.pass(H4, fmt.Sprintf("%#x, as VMCOREINFO says", f.PhysBase()))
	}

	if c.applies(H5) {
		page := make([]byte, f.PageSize)
		var read uint64
		var first error
		for _, r := range f.DumpableRanges() {
			for pfn := r.Start; pfn < r.End && first == nil; pfn++ {
				if err := c.ctx.Err(); err != nil {
					return c.out
				}
				first = f.ReadPage(pfn, page)
				read++
			}
		}
		if first != nil {
			c.fail(H5, first.Error(), "the file is damaged: dump again", nowhere, eff(Crash, Degraded, "crash: read error on the page"), eff(Makedumpfile, Degraded, "makedumpfile: read error on the page"))
		} else {
			c.pass(H5, fmt.Sprintf("all %d dumpable pages decompress to a page", read))
		}
	}
	return c.out
}
