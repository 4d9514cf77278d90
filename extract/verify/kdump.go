package verify

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kdump"
	"ldx/extract/dump"
	"ldx/vmcoreinfo"
)

// kdumpChecks verifies a kdump-compressed file (makedumpfile's default
// output, QEMU's kdump-* formats): the container (H8), its header,
// sub-header and bitmaps (H1), its VMCOREINFO (H2), every page descriptor
// (H3), the sub-header's phys_base (H4), with --deep every page's data
// (H5), the bitmaps against the descriptor array (H6), init_uts_ns read
// from the file (H7), and G1. The ELF checks (A–G) do not apply: ldx
// extract turns it into an ELF vmcore, which verify then checks in full.
func kdumpChecks(in input, rep *Report) []Result {
	c := (&facts{input: in, kdump: true}).newGroup()
	rep.Format = dump.FormatKdump.String()
	rep.Notes = append(rep.Notes,
		"kdump-compressed input: header, bitmap, page-descriptor and init_uts_ns checks only (H1–H8); `ldx extract` makes an ELF vmcore of it that verify checks in full",
		"vmcore-dmesg reads ELF vmcores only; drgn reads kdump files through libkdumpfile (Debian's drgn is built with it)")
	c.checkFlattened()
	f, err := kdump.Open(c.raw, c.size)
	var names []string   // a split dump's parts, in pfn order
	whole := false       // a split part that holds every dumpable page
	var self *kdump.File // the part itself, when the input is one
	if errors.Is(err, kdump.ErrSplit) {
		if p, perr := kdump.OpenPart(c.raw, c.size); perr == nil {
			self = p
			if holdsEverything(p) {
				f, err, whole = p, nil, true
			} else {
				defer p.Close()
			}
		}
	}
	if errors.Is(err, kdump.ErrSplit) {
		set := c.checkSplitPart(in, err, self, rep)
		if set == nil {
			for _, id := range []ID{H2, H3, H4, H5, H6, H7, H9} {
				if c.applies(id) {
					c.skip(id, "one part of a split dump whose other parts were not found (H1)")
				}
			}
			return c.out
		}
		defer set.Close()
		f, names = set.File, set.Names
		rep.Notes = append(rep.Notes, fmt.Sprintf("split dump of %d parts (%s): H2–H9 read the whole set", len(names), strings.Join(names, ", ")))
	} else if err != nil {
		loc := nowhere
		var fe *kdump.FormatError
		if errors.As(err, &fe) {
			loc = at(fe.Field, fe.Off)
		}
		c.fail(H1, err.Error(), "the file is damaged or cut short: dump again, or copy it whole", loc, h1Effects(fe)...)
		// --dump-dmesg never reads the note blob, a re-filter copies it.
		rep.refilterStops = fe != nil && fe.Field == "offset_note/size_note"
		for _, id := range []ID{H2, H3, H4, H5, H6, H7, H9} {
			if c.applies(id) {
				c.skip(id, "the kdump headers cannot be read (H1)")
			}
		}
		return c.out
	} else {
		defer f.Close()
	}
	_, _, rel, _, _ := f.Utsname()
	rep.Release = rel
	if whole {
		start, end, _ := f.Part()
		c.pass(H1, fmt.Sprintf("one part (pfns [%#x, %#x)) of a split dump that holds all its %d dumpable pages (the other parts hold none): every consumer reads it as a whole dump; %q header version %d, block size %d, %d CPUs, max_mapnr %#x, dump level %d", start, end, f.DumpablePages(), f.Signature, f.Header.HeaderVersion, f.PageSize, f.NrCPUs(), f.MaxMapnr, f.DumpLevel()))
	} else if names == nil {
		c.pass(H1, fmt.Sprintf("%q header version %d, block size %d, %d CPUs, max_mapnr %#x, %d dumpable pages, dump level %d", f.Signature, f.Header.HeaderVersion, f.PageSize, f.NrCPUs(), f.MaxMapnr, f.DumpablePages(), f.DumpLevel()))
	}

	text := f.VMCOREINFO()
	var info *vmcoreinfo.Info
	if text != nil {
		info, _ = vmcoreinfo.ParseLenient(text)
	}
	if info == nil || !info.Has("OSRELEASE") {
		effects := []Effect{eff(Crash, Fatal, "crash --osrelease prints \"unknown\" (with a vmlinux crash finds the layout without it)").onlyNovm(),
			eff(Makedumpfile, Fatal, "makedumpfile: cannot read the kernel's layout")}
		noteSays := "the note blob has no VMCOREINFO note either"
		if noteHasVMCOREINFO(f.Notes()) {
			noteSays = "the note blob's VMCOREINFO note, which drgn (libkdumpfile) reads, is intact"
		} else {
			effects = append(effects, eff(Drgn, Fatal, "drgn (libkdumpfile): no VMCOREINFO"))
		}
		c.fail(H2, fmt.Sprintf("the sub-header has no VMCOREINFO with an OSRELEASE (header version %d, %d bytes at %#x); %s", f.Header.HeaderVersion, f.Sub.SizeVmcoreinfo, f.Sub.OffsetVmcoreinfo, noteSays),
			"make the dump with a VMCOREINFO (makedumpfile with -x VMLINUX or from a vmcore that has one)", at("offset_vmcoreinfo", int64(f.PageSize)+32), effects...)
		info = nil
	} else if r, ok := info.OSRelease(); !ok || (rel != "" && r != rel) {
		c.fail(H2, fmt.Sprintf("VMCOREINFO OSRELEASE %q, the header's utsname release %q", r, rel), "the VMCOREINFO is another kernel's: make the dump again", at("offset_vmcoreinfo", f.Sub.OffsetVmcoreinfo),
			eff(Crash, Fatal, "crash: the release does not match"), eff(Makedumpfile, Fatal, "makedumpfile: wrong kernel layout"))
	} else {
		c.pass(H2, fmt.Sprintf("%d bytes at %#x, OSRELEASE %s", len(text), f.Sub.OffsetVmcoreinfo, r))
	}

	// G1 needs only the release: the header's when VMCOREINFO is gone.
	c.info = info
	if info == nil && rel != "" {
		c.info, _ = vmcoreinfo.ParseLenient([]byte("OSRELEASE=" + rel + "\n"))
	}
	c.checkKernelSupport()
	c.info = info

	// Every descriptor, in file order: one sequential read of each file's
	// array (a split dump's parts each hold the descriptors of their own
	// pfn range).
	units := []*kdump.File{f}
	if ps := f.Parts(); ps != nil {
		units = ps
	}
	var bad error
	var n uint64
	minData := make([]int64, len(units))   // each file's lowest data offset of any descriptor
	var methods [kdump.FlagZstd + 1]uint64 // pages by compression flag
	for i, u := range units {
		lo, hi := uint64(0), u.MaxMapnr
		if s, e, ok := u.Part(); ok {
			lo, hi = s, e
		}
		minData[i] = -1
		for _, r := range f.DumpableRanges() {
			for pfn := max(r.Start, lo); pfn < min(r.End, hi); pfn++ {
				if err := c.ctx.Err(); err != nil {
					return c.out
				}
				d, off, err := u.PageDesc(pfn)
				if err != nil {
					rep.refilterStops = true // the descriptor itself is unreadable
				} else {
					if minData[i] < 0 || d.Offset < minData[i] {
						minData[i] = d.Offset
					}
					if int(d.Flags) < len(methods) {
						methods[d.Flags]++
					}
					if makedumpfileRejects(d, u.Size(), f.PageSize) {
						rep.refilterStops = true
					}
					err = descError(d, off, pfn, u.Size(), f.PageSize)
				}
				if bad == nil {
					bad = err
					if err != nil && names != nil {
						bad = fmt.Errorf("%s: %w", names[i], err)
					}
				}
				n++
			}
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

	c.checkKdumpArray(f, units, names, minData)
	c.checkKdumpUts(f, info)
	c.checkMethods(f, info, methods[:], rep)

	if info == nil {
		c.skip(H4, "no VMCOREINFO (H2)")
	} else if pb, ok := info.Number("phys_base"); !ok {
		c.skip(H4, "VMCOREINFO has no NUMBER(phys_base)")
	} else if uint64(pb) != f.PhysBase() {
		c.fail(H4, fmt.Sprintf("the sub-header's phys_base is %#x, VMCOREINFO's NUMBER(phys_base) %#x (QEMU writes a guess under KASLR)", f.PhysBase(), uint64(pb)),
			"`ldx extract` writes an ELF vmcore with the right phys_base; ldx's commands read the file as it is", at("phys_base", int64(f.PageSize)),
			eff(Makedumpfile, Fatal, "makedumpfile translates kernel addresses with the sub-header's phys_base: its page-table walk fails"))
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

// descError checks one page descriptor: its data inside the file, at most
// a page, a compression this format knows.
func descError(d kdump.RawPageDesc, off int64, pfn uint64, size int64, pageSize int) error {
	field := fmt.Sprintf("page_desc of pfn %#x", pfn)
	switch {
	case d.Size == 0 || d.Size > uint32(pageSize):
		return &kdump.FormatError{Off: off, Field: field, Msg: "size must be 1…page size", Val: d.Size}
	case d.Offset < 0 || d.Offset+int64(d.Size) > size:
		return &kdump.FormatError{Off: off, Field: field, Msg: "data past the end of the file", Val: fmt.Sprintf("offset %#x size %#x", d.Offset, d.Size)}
	case d.Flags&^kdump.KnownPageFlags != 0:
		return &kdump.FormatError{Off: off, Field: field, Msg: "unknown compression flags", Val: fmt.Sprintf("%#x", d.Flags)}
	}
	return nil
}

// checkKdumpArray is H6: the dumpable bitmap's bit count must be the
// number of descriptors the file holds. Every writer (makedumpfile, QEMU,
// ldx) puts the page data right after the page_desc array, so the lowest
// data offset of any descriptor is where the array ends; a bit too few or
// too many moves that end by a descriptor, and every reader then gives
// each page after the bit its neighbour's descriptor. The RAM bitmap must
// also hold every dumpable page.
func (c *group) checkKdumpArray(f *kdump.File, units []*kdump.File, names []string, minData []int64) {
	h := f.Header
	descOff := (1 + int64(h.SubHdrSize) + int64(h.BitmapBlocks)) * int64(f.PageSize)
	effects := []Effect{eff(Crash, Fatal, "crash: pages read with other pages' descriptors (wrong data)"), eff(Makedumpfile, Fatal, "makedumpfile: pages read with other pages' descriptors"), eff(Drgn, Fatal, "drgn (libkdumpfile): pages read with other pages' descriptors")}
	if f.Incomplete() {
		c.skip(H6, "the dump is marked incomplete: its page data may stop anywhere")
		return
	}
	end := descOff + int64(f.DumpablePages())*kdump.PageDescSize
	for i, u := range units {
		// makedumpfile 1.7.2 gives each part of a split dump an array
		// as long as the whole dump's (the part's own descriptors
		// first, the rest unused); one as long as the part's own
		// pages would do as well, for every reader seeks by pfn.
		if minData[i] < 0 || minData[i] == end || (names != nil && minData[i] == descOff+int64(u.DumpablePages())*kdump.PageDescSize) {
			continue
		}
		found := fmt.Sprintf("the dumpable bitmap has %d bits set, so the page_desc array at %#x ends at %#x, but the page data starts at %#x: ", f.DumpablePages(), descOff, end, minData[i])
		switch {
		case names != nil:
			found = fmt.Sprintf("%s, a part holding %d of the pages: %sneither the whole dump's array nor one of the part's own pages ends there", names[i], u.DumpablePages(), found)
		case minData[i] < end:
			found += "the bitmap has more bits than the file has pages"
		default:
			found += "the bitmap has fewer bits than the file has pages"
		}
		c.fail(H6, found,
			"the file is damaged: dump again", at("bitmap_blocks", 436), effects...)
		return
	}
	for _, r := range f.DumpableRanges() {
		for pfn := r.Start; pfn < r.End; pfn++ {
			if !f.InRAM(pfn) {
				c.failSev(H6, Degraded, fmt.Sprintf("pfn %#x is dumpable but not in the RAM bitmap", pfn), "the file is damaged: dump again", at("RAM bitmap", descOff),
					eff(Crash, Degraded, "crash may take the page for a hole"))
				return
			}
		}
	}
	if names != nil {
		c.pass(H6, fmt.Sprintf("%d dumpable pages in %d parts, each part's page_desc array at %#x ending where its page data starts (at %#x: room for every page's descriptor, as makedumpfile lays a part out); every dumpable page is in the RAM bitmap", f.DumpablePages(), len(units), descOff, end))
		return
	}
	c.pass(H6, fmt.Sprintf("%d dumpable pages, %d descriptors before the page data at %#x; every dumpable page is in the RAM bitmap", f.DumpablePages(), f.DumpablePages(), end))
}

// checkKdumpUts is H7: init_uts_ns, the first kernel variable crash (with
// a vmlinux) and drgn read, is read from the file through VMCOREINFO's
// phys_base (x86-64: the kernel image is mapped at __START_KERNEL_map +
// phys_base) and must hold OSRELEASE. A descriptor of its page that is
// damaged, or data that does not decompress with the method its flags
// name, stops both tools.
func (c *group) checkKdumpUts(f *kdump.File, info *vmcoreinfo.Info) {
	if info == nil {
		c.skip(H7, "no VMCOREINFO (H2)")
		return
	}
	rel, _ := info.OSRelease()
	pa, ok := utsReleasePA(info)
	if !ok {
		c.skip(H7, "VMCOREINFO lacks SYMBOL(init_uts_ns), NUMBER(phys_base), OFFSET(uts_namespace.name) or OSRELEASE")
		return
	}
	ps := uint64(f.PageSize)
	page := make([]byte, 2*ps) // the release may cross into the next page
	err := f.ReadPage(pa/ps, page[:ps])
	if err == nil && pa%ps+65 > ps {
		err = f.ReadPage(pa/ps+1, page[ps:])
	}
	effects := []Effect{eff(Crash, Fatal, "crash: \"vmlinux and dump do not match\" (with a vmlinux)"), eff(Makedumpfile, Fatal, "makedumpfile: cannot get the kernel version"), eff(Drgn, Fatal, "drgn: cannot read init_uts_ns")}
	if err != nil {
		loc := nowhere
		var fe *kdump.FormatError
		if errors.As(err, &fe) {
			loc = at(fe.Field, fe.Off)
		}
		c.fail(H7, fmt.Sprintf("init_uts_ns's release at physical %#x: %v", pa, err), "the file is damaged: dump again", loc, effects...)
		return
	}
	got := page[pa%ps : pa%ps+65]
	if i := bytes.IndexByte(got, 0); i >= 0 {
		got = got[:i]
	}
	if string(got) != rel {
		c.fail(H7, fmt.Sprintf("init_uts_ns's release at physical %#x reads %q, OSRELEASE is %q", pa, got, rel), "the file's pages or its VMCOREINFO are not this kernel's: dump again", nowhere, effects...)
		return
	}
	c.pass(H7, fmt.Sprintf("%q at physical %#x", rel, pa))
}

// utsReleasePA is the physical address of init_uts_ns's release string,
// from VMCOREINFO alone.
func utsReleasePA(info *vmcoreinfo.Info) (uint64, bool) {
	if info == nil {
		return 0, false
	}
	uts, ok1 := info.Symbol("init_uts_ns")
	pb, ok2 := info.Number("phys_base")
	name, ok3 := info.Offset("uts_namespace.name")
	_, ok4 := info.OSRelease()
	if !ok1 || !ok2 || !ok3 || !ok4 || uts < startKernelMap {
		return 0, false
	}
	return uts + uint64(name) + utsReleaseOff - startKernelMap + uint64(pb), true
}

// startKernelMap is x86-64's __START_KERNEL_map: the kernel image's
// virtual base, phys_base bytes below its physical load address.
const startKernelMap = 0xffffffff80000000

// checkSplitPart is H1 for one part of a split dump (makedumpfile
// --split): every consumer opens a file as the whole dump, so the part
// alone fails them all, whatever its content. crash reads a set given
// every part on its command line; makedumpfile reads the part's headers
// but not the pages of the other parts it needs for the kernel's page
// tables; drgn (libkdumpfile) reads the other parts' pages as excluded.
// The other parts are looked for beside it (as ldx's openers do): when
// they make the whole dump, the set is returned for H2–H9 to read.
func (c *group) checkSplitPart(in input, openErr error, self *kdump.File, rep *Report) *dump.SplitSet {
	loc := nowhere
	var fe *kdump.FormatError
	if errors.As(openErr, &fe) {
		loc = at(fe.Field, fe.Off)
	}
	var start, end uint64
	if self != nil {
		start, end, _ = self.Part()
	}
	// drgn opens the part that holds init_uts_ns (with the kernel image
	// and its page tables, low in memory) but stops on the first task in
	// another part; any other part it cannot open at all.
	drgn := eff(Drgn, Fatal, "drgn (libkdumpfile) reads one part as the whole dump: init_uts_ns is in another part, read as \"Excluded page\"")
	if self != nil {
		info, _ := vmcoreinfo.ParseLenient(self.VMCOREINFO())
		if pa, ok := utsReleasePA(info); ok && pa/uint64(self.PageSize) >= start && pa/uint64(self.PageSize) < end {
			drgn = eff(Drgn, Degraded, "drgn (libkdumpfile) reads one part as the whole dump: init_uts_ns reads, the tasks in the other parts are \"Excluded page\"")
			rep.taskWalkStops = true
		}
	}
	effects := []Effect{eff(Crash, Fatal, "crash reads a split dump only given every part on its command line (crash VMLINUX PART1 PART2 …)"),
		eff(Makedumpfile, Fatal, "makedumpfile reads one part as the whole dump and misses the kernel's pages in the others (makedumpfile --reassemble joins the parts)"),
		drgn}
	if !in.isPath {
		c.fail(H1, openErr.Error(), "verify the part as a file beside the dump's other parts", loc, effects...)
		return nil
	}
	set, err := dump.JoinSplit(in.path, c.raw, c.size)
	if err != nil {
		c.fail(H1, err.Error(), "put every part of the dump in one directory; crash reads the set given every part, makedumpfile --reassemble joins it into one file", loc, effects...)
		return nil
	}
	var parts []string
	for _, p := range set.Parts() {
		s, e, _ := p.Part()
		parts = append(parts, fmt.Sprintf("[%#x, %#x)", s, e))
	}
	c.fail(H1, fmt.Sprintf("one part (pfns [%#x, %#x)) of a split dump of %d parts, all found beside it (%s); the headers, sub-header and bitmaps of every part agree", start, end, len(set.Names), strings.Join(parts, ", ")),
		"`ldx extract` of any part, or makedumpfile --reassemble of all of them, makes one file every consumer opens; crash reads the set given every part", loc, effects...)
	return set
}

// holdsEverything says a part of a split dump holds every dumpable page
// of the dump: makedumpfile 1.7.2 cuts the pfns at whole splitblocks (1
// GiB by default) by a count of the pages that runs short, and on a
// machine with few GiB it often gives all pages to one part and none to
// the others. crash, makedumpfile and drgn read such a part alone.
func holdsEverything(p *kdump.File) bool {
	var n uint64
	for _, r := range p.DumpableRanges() {
		n += r.End - r.Start
	}
	return p.DumpablePages() == n
}

// h1Effects are the consumers a header, sub-header or bitmap defect
// stops, by the field at fault. The note blob is where drgn's
// libkdumpfile takes VMCOREINFO from and crash the CPU notes, while
// makedumpfile reads only the sub-header's own VMCOREINFO: a bad
// offset_note stops crash and drgn, not makedumpfile; a bad
// offset_vmcoreinfo stops crash and makedumpfile, not drgn. Everything
// else stops all three (libkdumpfile was seen to spin on a block_size of
// 8192 rather than fail).
func h1Effects(fe *kdump.FormatError) []Effect {
	crash := eff(Crash, Fatal, "crash: not a supported file format / read error").novm()
	mkd := eff(Makedumpfile, Fatal, "makedumpfile: the dump file cannot be read")
	drgn := eff(Drgn, Fatal, "drgn (libkdumpfile): the file cannot be read")
	switch {
	case fe != nil && fe.Field == "offset_note/size_note":
		return []Effect{crash, drgn}
	case fe != nil && fe.Field == "bitmap_blocks" && strings.Contains(fe.Msg, "cannot describe max_mapnr"):
		// makedumpfile sizes its bitmaps by bitmap_blocks alone, and
		// crash --osrelease reads no bitmap.
		return []Effect{eff(Crash, Fatal, "crash: the bitmaps do not cover max_mapnr"), drgn}
	case fe != nil && fe.Field == "offset_vmcoreinfo/size_vmcoreinfo":
		return []Effect{crash, mkd}
	}
	return []Effect{crash, mkd, drgn}
}

// noteHasVMCOREINFO says the sub-header's note blob holds a VMCOREINFO
// note with an OSRELEASE.
func noteHasVMCOREINFO(blob []byte) bool {
	desc, ok := elfcore.FindNote(blob, "VMCOREINFO", 0)
	if !ok {
		return false
	}
	info, _ := vmcoreinfo.ParseLenient(desc)
	return info != nil && info.Has("OSRELEASE")
}

// checkFlattened is H8: a flattened stream (makedumpfile -F, QEMU's
// kdump-* formats written to a pipe or by older QEMU) is a sequence of
// records verify reassembles, but of the consumers only crash does so;
// makedumpfile reads it only to rearrange it (-R), and libkdumpfile (drgn)
// not at all ("not an ELF core file").
func (c *group) checkFlattened() {
	if c.kind != string(dump.KindFlattened) {
		c.pass(H8, "a seekable kdump file")
		return
	}
	c.fail(H8, "the file is a flattened stream (makedumpfile -F records); the checks below are of the file it stands for",
		"rearrange it: `makedumpfile -R FILE.kdump < FILE`, or `ldx extract FILE -o VMCORE`", at("signature", 0),
		eff(Makedumpfile, Fatal, "makedumpfile: reads a flattened stream only with -R (\"Can't get valid ehdr\")"),
		eff(Drgn, Fatal, "drgn (libkdumpfile): \"not an ELF core file\""))
}

// methodNames are the page compressions by descriptor flag.
var methodNames = map[uint32]string{0: "raw", kdump.FlagZlib: "zlib", kdump.FlagLZO: "lzo", kdump.FlagSnappy: "snappy", kdump.FlagZstd: "zstd"}

// checkMethods is H9: which compressions the pages use. The format has
// four, and each consumer reads those its build was linked with:
// makedumpfile's `-v` lists them (Debian 12's 1.7.2: zlib and lzo, not
// snappy or zstd; it then stops with "snappy compression unsupported"),
// crash 8.0.2 and libkdumpfile on Debian 12 read all four. Without the
// build at hand a method outside zlib is information only; RunTools,
// which asks makedumpfile, predicts its runs from it (a page it needs,
// init_uts_ns's, or for a re-filter any page, in a method it lacks).
func (c *group) checkMethods(f *kdump.File, info *vmcoreinfo.Info, methods []uint64, rep *Report) {
	var used []string
	var parts []string
	for _, fl := range []uint32{kdump.FlagZlib, kdump.FlagLZO, kdump.FlagSnappy, kdump.FlagZstd, 0} {
		if n := methods[fl]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", methodNames[fl], n))
			if fl != 0 {
				used = append(used, methodNames[fl])
			}
		}
	}
	rep.kdumpMethods = used
	if info != nil {
		uts, ok1 := info.Symbol("init_uts_ns")
		pb, ok2 := info.Number("phys_base")
		if ok1 && ok2 && uts >= startKernelMap {
			if d, _, err := f.PageDesc((uts - startKernelMap + uint64(pb)) / uint64(f.PageSize)); err == nil {
				rep.utsMethod = methodNames[d.Flags]
			}
		}
	}
	var rare []string
	for _, m := range used {
		if m == "snappy" || m == "zstd" {
			rare = append(rare, m)
		}
	}
	if len(rare) == 0 {
		c.pass(H9, "pages: "+strings.Join(parts, ", "))
		return
	}
	c.failSev(H9, Info, fmt.Sprintf("pages: %s; makedumpfile reads %s only when built with it (`makedumpfile -v` lists its methods; Debian 12's 1.7.2 has neither snappy nor zstd)", strings.Join(parts, ", "), strings.Join(rare, " and ")),
		"for makedumpfile without them, write the file with zlib (`ldx extract --format kdump`, the default) or use crash or drgn", nowhere)
}

// makedumpfileRejects says makedumpfile 1.7.2 stops on reading the page of
// descriptor d: a size above the block size, data it cannot read whole,
// or a compressed page of no bytes. A page without a known compression
// bit is read raw, size bytes into the page buffer, and taken whatever
// its size or flags (wrong data, no error).
func makedumpfileRejects(d kdump.RawPageDesc, size int64, pageSize int) bool {
	const compressed = kdump.FlagZlib | kdump.FlagLZO | kdump.FlagSnappy | kdump.FlagZstd
	return d.Size > uint32(pageSize) || d.Offset < 0 || d.Offset+int64(d.Size) > size || d.Flags&compressed != 0 && d.Size == 0
}
