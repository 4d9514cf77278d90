package verify

import (
	"bytes"
	"debug/elf"
	"fmt"
	"math"
	"slices"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/vmcoreinfo"
)

const (
	kernelHalf  = 0xff00000000000000 // lowest kernel-half address with 4 or 5 levels
	pageSize    = 4096
	phdrTypeOff = 0
	phdrOffOff  = 8
	phdrVaddr   = 16
	phdrPaddr   = 24
	phdrFilesz  = 32
	phdrAlign   = 48
)

// phLoc locates field fieldOff of program header i.
func (c *facts) phLoc(i int, name string, fieldOff int64) location {
	return at(fmt.Sprintf("phdr[%d].%s", i, name), c.f.ProgOffset(i)+fieldOff)
}

// segmentChecks is group B: the program headers and segments as each
// consumer reads them.
func segmentChecks(f *facts) []Result {
	c := f.newGroup()
	c.checkSegments()
	return c.out
}

func (c *group) checkSegments() {
	progs := c.f.Progs
	var noteIdx []int
	for i, p := range progs {
		if p.Type == elf.PT_NOTE {
			noteIdx = append(noteIdx, i)
		}
	}

	// B1: crash takes phdr[0] as the notes and every later phdr as memory.
	switch {
	case len(noteIdx) == 0:
		c.fail(B1, "no PT_NOTE: there are no notes, so no VMCOREINFO and no CPU registers", fixExtract, c.phLoc(0, "p_type", phdrTypeOff),
			eff(Crash, Fatal, "parses phdr[0]'s bytes as notes anyway and finds no VMCOREINFO").novm(),
			eff(Makedumpfile, Fatal, "\"Can't find PT_NOTE Phdr.\""),
			eff(Drgn, Fatal, "without VMCOREINFO it is not a kernel dump"))
	case noteIdx[0] != 0:
		c.fail(B1, fmt.Sprintf("phdr[0] is %v; the PT_NOTE is phdr[%d]", progs[0].Type, noteIdx[0]),
			"run `ldx extract FILE -o VMCORE`: it puts the single merged PT_NOTE first", c.phLoc(0, "p_type", phdrTypeOff),
			eff(Crash, Fatal, "always parses phdr[0] as the note segment (is_netdump, dump_Elf64_Phdr): it finds no VMCOREINFO, and the real PT_NOTE becomes a memory segment; `crash --osrelease` prints \"unknown\"").novm())
	case len(noteIdx) > 1:
		e := []Effect{eff(Crash, Degraded, fmt.Sprintf("stores phdr[%d] (PT_NOTE) as a memory segment at p_paddr %#x", noteIdx[1], progs[noteIdx[1]].Paddr))}
		if c.vmciSeg() != 0 {
			e[0] = eff(Crash, Fatal, "reads notes from phdr[0] only, which has no VMCOREINFO: `crash --osrelease` prints \"unknown\" and KASLR relocation is skipped").novm()
		}
		if c.vmciSeg() != noteIdx[len(noteIdx)-1] {
			e = append(e, eff(Makedumpfile, Fatal, "keeps only the last PT_NOTE (get_elf_info), which has no VMCOREINFO"))
		}
		c.fail(B1, fmt.Sprintf("%d PT_NOTE segments (phdr %v)", len(noteIdx), noteIdx), "run `ldx extract FILE -o VMCORE`: it merges the notes into one PT_NOTE", c.phLoc(noteIdx[1], "p_type", phdrTypeOff), e...)
	default:
		c.pass(B1, "phdr[0] is the only PT_NOTE")
	}

	// B2: any other type after phdr[0] becomes a crash memory segment;
	// read first-match, it shadows the real memory of its range.
	var odd []string
	shadow := false
	oddAt := -1
	for i, p := range progs[1:] {
		if p.Type == elf.PT_LOAD || p.Type == elf.PT_NOTE {
			continue
		}
		odd = append(odd, fmt.Sprintf("phdr[%d] %v [%#x, %#x)", i+1, p.Type, p.Paddr, p.Paddr+p.Memsz))
		if oddAt < 0 {
			oddAt = i + 1
		}
		for _, q := range progs[i+2:] {
			if q.Type == elf.PT_LOAD && p.Memsz > 0 && p.Paddr < q.End() && q.Paddr < p.Paddr+p.Memsz {
				shadow = true
			}
		}
	}
	switch {
	case len(odd) == 0:
		c.pass(B2, "all PT_LOAD")
	case shadow:
		c.fail(B2, strings.Join(odd, ", ")+": crash takes them for memory, ahead of the PT_LOADs that hold those addresses", fixExtract, c.phLoc(oddAt, "p_type", phdrTypeOff),
			eff(Crash, Fatal, "stores every phdr after phdr[0] as a memory segment whatever its p_type and reads first-match: the real memory of that range is shadowed by other bytes"))
	default:
		c.fail(B2, strings.Join(odd, ", ")+": crash takes them for memory, but they cover none of the PT_LOADs' addresses", fixExtract, c.phLoc(oddAt, "p_type", phdrTypeOff),
			eff(Crash, Cosmetic, "stores every phdr after phdr[0] as a memory segment whatever its p_type"))
	}

	// B3
	withData := 0
	for _, p := range c.loads {
		if p.Filesz > 0 {
			withData++
		}
	}
	if withData == 0 {
		var e []Effect
		for _, k := range all {
			e = append(e, eff(k, Fatal, "finds no memory (makedumpfile \"Can't get the number of PT_LOAD.\"; libkdumpfile \"No content found\")").novm())
		}
		c.fail(B3, fmt.Sprintf("%d PT_LOADs, none with file data", len(c.loads)), "the dump holds no memory; take it again", nowhere, e...)
	} else {
		c.pass(B3, fmt.Sprintf("%d PT_LOADs, %d with data", len(c.loads), withData))
	}

	c.checkHeaderPrefix()

	// B5: offset 0 means "not found" to crash (header size) and makedumpfile.
	var zeroOff []int
	for i, p := range progs {
		if i > 0 && p.Type == elf.PT_LOAD && p.Filesz > 0 && p.Off == 0 {
			zeroOff = append(zeroOff, i)
		}
	}
	switch {
	case progs[1].Off == 0:
		c.fail(B5, "phdr[1].p_offset is 0", fixExtract, c.phLoc(1, "p_offset", phdrOffOff),
			eff(Crash, Fatal, "seeds its header size with phdr[1].p_offset (resize_elf_header): 0 means a header of 0 bytes and the file is rejected").novm(),
			eff(Makedumpfile, Fatal, "paddr_to_offset returns 0 for \"not found\""))
	case len(zeroOff) > 0:
		c.fail(B5, fmt.Sprintf("PT_LOADs with data at p_offset 0: phdr %v", zeroOff), fixExtract, c.phLoc(zeroOff[0], "p_offset", phdrOffOff),
			eff(Crash, Degraded, "read_netdump takes offset 0 for \"not found\""),
			eff(Makedumpfile, Degraded, "paddr_to_offset returns 0 for \"not found\""))
	default:
		c.pass(B5, fmt.Sprintf("phdr[1].p_offset %#x", progs[1].Off))
	}

	// B6: crash's kdump/netdump classification looks at phdr[1] only.
	p1 := progs[1]
	var aligned []int
	for i, p := range progs[1:] {
		if p.Type == elf.PT_LOAD && p.Align != 0 {
			aligned = append(aligned, i+1)
		}
	}
	switch {
	case p1.Align != 0 && p1.Off%pageSize == 0:
		c.fail(B6, fmt.Sprintf("phdr[1] has p_align %#x and a page-aligned p_offset %#x: crash classifies the file as NETDUMP_ELF64, not KDUMP_ELF64", p1.Align, p1.Off),
			"set p_align to 0 on every PT_LOAD (kexec-tools, QEMU and `ldx extract` do)", c.phLoc(1, "p_align", phdrAlign),
			eff(Crash, Fatal, "classifies it as a netdump file: `crash --osrelease` prints \"unknown\", `--log` finds \"no VMCOREINFO data\", KERNELOFFSET-driven KASLR detection and the PT_LOAD phys_base fallback are skipped").novm())
	case len(aligned) > 0:
		c.failSev(B6, Cosmetic, fmt.Sprintf("crash classifies the file as kdump (phdr[1] decides), but PT_LOADs %v have p_align != 0", aligned),
			"set p_align to 0 on every PT_LOAD", c.phLoc(aligned[0], "p_align", phdrAlign))
	default:
		c.pass(B6, "p_align 0 on every PT_LOAD")
	}

	c.checkPaddr()
	c.checkDirectMapVaddr()
	c.checkImageSegment()
	c.checkFileSizes()
	c.checkOverlaps()
	c.checkAlignment()
	c.checkOrder()
}

// vmciSeg returns the index of the PT_NOTE holding the VMCOREINFO note
// consumers use, or -1.
func (c *facts) vmciSeg() int {
	if c.vmci == nil {
		return -1
	}
	for _, s := range c.segs {
		for _, n := range s.notes {
			if n.Off == c.vmci.Off {
				return s.idx
			}
		}
	}
	return -1
}

// checkHeaderPrefix is B4: crash parses program headers and notes only
// from [0, smallest non-zero p_offset).
func (c *group) checkHeaderPrefix() {
	end := c.crashHeaderEnd()
	if end == 0 {
		c.skip(B4, "phdr[1].p_offset is 0 (B5): crash computes no header at all")
		return
	}
	phEnd := uint64(max(c.f.Phoff, elfcore.HeaderSize)) + uint64(c.f.Phnum)*elfcore.ProgSize
	if phEnd > end {
		c.fail(B4, fmt.Sprintf("the program headers end at %#x, after the first segment data at %#x", phEnd, end), fixExtract, at("e_phoff", offPhoff),
			eff(Crash, Fatal, fmt.Sprintf("parses program headers only inside its header buffer [0, %#x): \"Elf64_Phdr pointer: … ELF header end: …\"", end)).novm())
		return
	}
	if c.f.Progs[0].Type != elf.PT_NOTE || len(c.segs) == 0 || c.segs[0].idx != 0 {
		c.pass(B4, fmt.Sprintf("program headers end at %#x, before the first segment data at %#x (phdr[0] is no PT_NOTE: see B1)", phEnd, end))
		return
	}
	var lost []string
	vmciLost := false
	for _, n := range c.segs[0].notes {
		if uint64(n.Off)+uint64(n.Size()) > end {
			lost = append(lost, fmt.Sprintf("%s type %d at %#x", n.Name, n.Type, n.Off))
			if c.vmci != nil && n.Off == c.vmci.Off {
				vmciLost = true
			}
		}
	}
	note := c.f.Progs[0]
	switch {
	case len(lost) == 0 && note.Off+note.Filesz > end:
		c.failSev(B4, Cosmetic, fmt.Sprintf("the PT_NOTE [%#x, %#x) runs past the first segment data at %#x, but only padding does", note.Off, note.Off+note.Filesz, end),
			fixExtract, c.phLoc(0, "p_filesz", phdrFilesz))
	case len(lost) == 0:
		c.pass(B4, fmt.Sprintf("program headers end at %#x and notes at %#x, before the first segment data at %#x", phEnd, note.Off+note.Filesz, end))
	case vmciLost:
		c.fail(B4, fmt.Sprintf("notes end at %#x, after the first segment data at %#x; past it: %s", note.Off+note.Filesz, end, strings.Join(lost, ", ")),
			"run `ldx extract FILE -o VMCORE`: it writes the notes right after the program headers", c.phLoc(0, "p_offset", phdrOffOff),
			eff(Crash, Fatal, "reads notes only from its header buffer: \"Elf64_Nhdr pointer …\" WARNING, and the VMCOREINFO note is dropped, so `crash --osrelease` prints \"unknown\" and KASLR relocation is skipped").novm())
	default:
		c.fail(B4, fmt.Sprintf("notes end at %#x, after the first segment data at %#x; past it: %s", note.Off+note.Filesz, end, strings.Join(lost, ", ")),
			"run `ldx extract FILE -o VMCORE`: it writes the notes right after the program headers", c.phLoc(0, "p_offset", phdrOffOff),
			eff(Crash, Degraded, "drops the notes past its header buffer with an \"Elf64_Nhdr pointer\" WARNING: those CPUs have no registers"))
	}
}

// checkPaddr is B7.
func (c *group) checkPaddr() {
	var nonZero int
	var allOnes []int
	for i, p := range c.loads {
		if p.Paddr != 0 {
			nonZero++
		}
		if p.Paddr == math.MaxUint64 && !x86.IsImageAddr(p.Vaddr) {
			allOnes = append(allOnes, c.loadIdx[i])
		}
	}
	switch {
	case len(c.loads) > 1 && nonZero == 0:
		var e []Effect
		for _, k := range all {
			e = append(e, eff(k, Fatal, "reads memory by p_paddr, which is 0 everywhere (libkdumpfile disables the physical address space)"))
		}
		c.fail(B7, fmt.Sprintf("p_paddr is 0 on all %d PT_LOADs", len(c.loads)), "this is not a physical-memory dump (a /proc/kcore copy?); take a vmcore", c.phLoc(c.loadIdx[0], "p_paddr", phdrPaddr), e...)
	case len(allOnes) > 0:
		c.fail(B7, fmt.Sprintf("RAM PT_LOADs with p_paddr UINT64_MAX: phdr %v", allOnes), fixExtract, c.phLoc(allOnes[0], "p_paddr", phdrPaddr),
			eff(Crash, Fatal, "reads physical memory by p_paddr only"), eff(Makedumpfile, Fatal, "reads physical memory by p_paddr only"),
			eff(Drgn, Degraded, "treats them as virtual-only segments"))
	default:
		c.pass(B7, "physical addresses present")
	}
}

// ramLoads returns the PT_LOADs below the kernel-image range (RAM
// segments) and their program-header indexes.
func (c *facts) ramLoads() (ram []elfcore.ProgHeader, idx []int) {
	for i, p := range c.loads {
		if !x86.IsImageAddr(p.Vaddr) && p.Memsz > 0 {
			ram = append(ram, p)
			idx = append(idx, c.loadIdx[i])
		}
	}
	return ram, idx
}

// checkDirectMapVaddr is B8: the shape of RAM p_vaddr (E4 checks the
// value against the page tables).
func (c *group) checkDirectMapVaddr() {
	ram, idx := c.ramLoads()
	if len(ram) == 0 {
		c.skip(B8, "no RAM PT_LOADs")
		return
	}
	deltas := map[uint64]int{}
	kernel := 0
	for _, p := range ram {
		if p.Vaddr >= kernelHalf {
			kernel++
			deltas[p.Vaddr-p.Paddr]++
		}
	}
	switch {
	case kernel == 0:
		c.fail(B8, fmt.Sprintf("none of the %d RAM PT_LOADs has a kernel virtual address (p_vaddr %#x for p_paddr %#x …)", len(ram), ram[0].Vaddr, ram[0].Paddr),
			"run `ldx extract FILE -o VMCORE`: it gives RAM segments their direct-map addresses (page_offset_base + p_paddr), found in the page tables",
			c.phLoc(idx[0], "p_vaddr", phdrVaddr),
			eff(VmcoreDmesg, Fatal, "translates only through p_vaddr: \"No program header covering vaddr …\""),
			eff(Makedumpfile, Cosmetic, "takes PAGE_OFFSET from p_vaddr − p_paddr of the last RAM PT_LOAD, which comes out wrong (used by -e and is_kvaddr only)"))
	case kernel < len(ram) || len(deltas) > 1:
		c.fail(B8, fmt.Sprintf("RAM PT_LOADs disagree: %d of %d have kernel virtual addresses, with %d different p_vaddr − p_paddr", kernel, len(ram), len(deltas)),
			fixExtract, c.phLoc(idx[0], "p_vaddr", phdrVaddr),
			eff(Drgn, Degraded, "trusts p_vaddr segments before the page tables: some direct-map reads return the wrong bytes"),
			eff(Libkdumpfile, Degraded, "trusts p_vaddr segments: some direct-map reads return the wrong bytes"),
			eff(VmcoreDmesg, Fatal, "translates only through p_vaddr"),
			eff(Makedumpfile, Cosmetic, "takes PAGE_OFFSET from the last RAM PT_LOAD only"))
	default:
		var d uint64
		for k := range deltas {
			d = k
		}
		if d%(1<<30) != 0 {
			c.fail(B8, fmt.Sprintf("p_vaddr − p_paddr is %#x on every RAM PT_LOAD, not a multiple of 1 GiB as page_offset_base always is", d), fixExtract,
				c.phLoc(idx[0], "p_vaddr", phdrVaddr),
				eff(Drgn, Degraded, "trusts p_vaddr: direct-map reads return the wrong bytes"),
				eff(VmcoreDmesg, Fatal, "reads the printk buffers at the wrong file offsets"))
			return
		}
		c.pass(B8, fmt.Sprintf("%d RAM PT_LOADs at page_offset_base %#x + p_paddr", len(ram), d))
	}
}

// checkImageSegment is B9.
func (c *group) checkImageSegment() {
	pb, havePB := vmciNumber(c.info, "phys_base")
	if c.image == nil {
		e := []Effect{eff(VmcoreDmesg, Fatal, "reaches kernel symbols only through p_vaddr: \"No program header covering vaddr …\"")}
		what := "reads swapper_pg_dir through the p_vaddr segments: \"recursive address translation; page table may be missing from core dump\""
		switch {
		case !havePB:
			e = append(e, eff(Drgn, Fatal, what),
				eff(Crash, Fatal, "without NUMBER(phys_base) it has no other source for phys_base: \"cannot determine physical base address: defaulting to 0\""),
				eff(Makedumpfile, Fatal, "without NUMBER(phys_base) get_phys_base_x86_64 has no source"))
		case pb == 0:
			e = append(e, eff(Drgn, Fatal, what).ver("<0.0.30"))
		default:
			e = append(e, eff(Drgn, Fatal, what+" (0.0.27 and later read it physically through NUMBER(phys_base))").ver("<0.0.27"))
		}
		c.fail(B9, fmt.Sprintf("no PT_LOAD with a kernel-image virtual address (p_vaddr >= %#x)", uint64(x86.KernelTextBase)),
			"run `ldx extract FILE -o VMCORE`: it adds the kernel-image PT_LOAD (_text to _end) that kexec-tools writes", nowhere, e...)
		return
	}
	img := *c.image
	type want struct {
		name string
		va   uint64
	}
	var wants []want
	for _, s := range []string{"_stext", "swapper_pg_dir", "init_uts_ns", "prb"} {
		if c.info == nil {
			break
		}
		if v, ok := c.info.Symbol(s); ok {
			wants = append(wants, want{s, v})
		}
	}
	var outside []string
	var e []Effect
	for _, w := range wants {
		if c.coveredByVaddr(w.va) {
			continue // drgn and vmcore-dmesg take any p_vaddr segment
		}
		outside = append(outside, fmt.Sprintf("%s %#x", w.name, w.va))
		switch w.name {
		case "swapper_pg_dir":
			what := "reads the root page table through the p_vaddr segments: \"recursive address translation\""
			if havePB && pb != 0 {
				e = append(e, eff(Drgn, Fatal, what).ver("<0.0.27"))
			} else {
				e = append(e, eff(Drgn, Fatal, what))
			}
		case "init_uts_ns", "prb":
			e = append(e, eff(VmcoreDmesg, Fatal, "reaches "+w.name+" only through p_vaddr"))
		}
	}
	if len(outside) > 0 {
		c.fail(B9, fmt.Sprintf("no PT_LOAD's p_vaddr covers %s (the kernel-image PT_LOAD phdr[%d] maps [%#x, %#x))", strings.Join(outside, ", "), c.imageIdx, img.Vaddr, img.Vaddr+img.Memsz),
			"run `ldx extract FILE -o VMCORE`: its kernel-image PT_LOAD covers _text to _end", c.phLoc(c.imageIdx, "p_memsz", 40), e...)
		return
	}
	c.pass(B9, fmt.Sprintf("phdr[%d] maps %#x–%#x (%s) at p_paddr %#x", c.imageIdx, img.Vaddr, img.Vaddr+img.Memsz, mib(img.Memsz), img.Paddr))
}

// checkFileSizes is B10 and B11.
func (c *group) checkFileSizes() {
	var over, under []int
	var underBytes uint64
	for i, p := range c.loads {
		switch {
		case p.Filesz > p.Memsz:
			over = append(over, c.loadIdx[i])
		case p.Filesz < p.Memsz:
			under = append(under, c.loadIdx[i])
			underBytes += p.Memsz - p.Filesz
		}
	}
	switch {
	case len(over) > 0:
		c.fail(B10, fmt.Sprintf("p_filesz > p_memsz on phdr %v", over), fixExtract, c.phLoc(over[0], "p_filesz", phdrFilesz),
			eff(Crash, Degraded, "takes the physical end from p_filesz, past p_memsz"),
			eff(Makedumpfile, Degraded, "disagrees with crash about where the segment ends"))
	case len(under) > 0:
		c.fail(B10, fmt.Sprintf("p_filesz < p_memsz on %s: %s read as zeros", plural(len(under), "PT_LOAD", "PT_LOADs"), mib(underBytes)),
			"harmless for crash, makedumpfile and drgn (they zero-fill); `ldx extract` writes p_filesz = p_memsz", c.phLoc(under[0], "p_filesz", phdrFilesz),
			eff(Libkdumpfile, Degraded, "treats the bytes between p_filesz and p_memsz as excluded (\"Page not found\") unless zero_excluded is set"))
	default:
		c.pass(B10, "p_filesz = p_memsz everywhere")
	}

	if c.size < 0 {
		c.skip(B11, "the input's size is unknown")
		return
	}
	var missing uint64
	var cut []int
	var maxEnd uint64
	for i, p := range c.loads {
		end := p.Off + p.Filesz
		maxEnd = max(maxEnd, end)
		if p.Filesz > 0 && end > uint64(c.size) {
			cut = append(cut, c.loadIdx[i])
			missing += end - max(p.Off, uint64(c.size))
		}
	}
	if len(cut) == 0 {
		c.pass(B11, fmt.Sprintf("every segment ends by %#x; the file is %d bytes", maxEnd, c.size))
		return
	}
	crashWhat := "warns once at open (\"may be truncated or incomplete\"), then every read of the missing ranges fails"
	if c.blockDevice {
		crashWhat = "skips its size check for block devices; every read of the missing ranges fails"
	}
	c.fail(B11, fmt.Sprintf("the file is %d bytes, the segments need %d: %s of %s are missing (truncated)", c.size, maxEnd, mib(missing), plural(len(cut), "segment", "segments")),
		"copy the file again completely; a dump cut short cannot be repaired (the E and F checks say whether the kernel structures survived)",
		c.phLoc(cut[0], "p_offset", phdrOffOff),
		eff(Crash, Degraded, crashWhat),
		eff(Makedumpfile, Degraded, "\"Can't read the dump memory\" when it reaches the missing ranges (-d 31 fails)"),
		eff(Drgn, Degraded, "\"short read from memory file\" for the missing ranges"),
		eff(Libkdumpfile, Degraded, "read errors for the missing ranges"),
		eff(VmcoreDmesg, Degraded, "short reads for the missing ranges"))
}

// overlap is a physical range two PT_LOADs both cover.
type overlap struct {
	a, b       int // indexes into c.loads, a < b (program-header order)
	start, end uint64
}

// overlaps returns the overlapping pairs of PT_LOADs.
func (c *facts) overlaps() []overlap {
	order := make([]int, len(c.loads))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int {
		switch px, py := c.loads[x].Paddr, c.loads[y].Paddr; {
		case px < py:
			return -1
		case px > py:
			return 1
		}
		return x - y
	})
	var out []overlap
	var active []int
	for _, i := range order {
		p := c.loads[i]
		if p.Memsz == 0 {
			continue
		}
		active = slices.DeleteFunc(active, func(j int) bool { return c.loads[j].End() <= p.Paddr })
		for _, j := range active {
			s, e := max(p.Paddr, c.loads[j].Paddr), min(p.End(), c.loads[j].End())
			if s < e {
				out = append(out, overlap{a: min(i, j), b: max(i, j), start: s, end: e})
			}
		}
		active = append(active, i)
		if len(out) > 100000 {
			break
		}
	}
	return out
}

// checkOverlaps is B12: where PT_LOADs overlap, crash and makedumpfile
// read the first in program-header order, drgn the last, libkdumpfile the
// one sorted first by address; the bytes must be the same.
func (c *group) checkOverlaps() {
	ovs := c.overlaps()
	if len(ovs) == 0 {
		c.pass(B12, "no overlapping PT_LOADs")
		return
	}
	budget := 64 // pages compared in the default mode
	if c.opt.Deep {
		budget = math.MaxInt
	}
	var differ []string
	var differAt location
	compared, same, unreadable := 0, 0, 0
	var total uint64
	for _, o := range ovs {
		total += o.end - o.start
		a, b := c.loads[o.a], c.loads[o.b]
		if sameFileBytes(a, b, o.start, o.end) {
			same++
			continue
		}
		pages := sampleSpan(o.start, o.end, budget, c.opt.Deep)
		budget -= len(pages)
		bufA, bufB := make([]byte, pageSize), make([]byte, pageSize)
		for _, pa := range pages {
			n := int(min(pageSize, o.end-pa))
			errA := readSeg(c.raw, a, pa, bufA[:n])
			errB := readSeg(c.raw, b, pa, bufB[:n])
			compared++
			if errA != nil || errB != nil {
				unreadable++
				continue
			}
			if !bytes.Equal(bufA[:n], bufB[:n]) {
				differ = append(differ, fmt.Sprintf("phdr[%d] and phdr[%d] at %#x", c.loadIdx[o.a], c.loadIdx[o.b], pa))
				if differAt.field == "" {
					differAt = c.phLoc(c.loadIdx[o.b], "p_offset", phdrOffOff)
				}
				break
			}
		}
	}
	found := fmt.Sprintf("%s over %s", plural(len(ovs), "overlap", "overlaps"), mib(total))
	if same > 0 {
		found += fmt.Sprintf("; %d point at the same file bytes", same)
	}
	if compared > 0 {
		found += fmt.Sprintf("; %s compared", plural(compared, "page", "pages"))
		if !c.opt.Deep {
			found += " (a sample: --deep compares all)"
		}
	}
	if len(differ) > 0 {
		if len(differ) > 3 {
			differ = append(differ[:3], fmt.Sprintf("… (%d in all)", len(differ)))
		}
		c.fail(B12, found+"; the bytes differ: "+strings.Join(differ, ", "),
			"run `ldx extract FILE -o VMCORE`: its kernel-image PT_LOAD points at the same bytes as RAM", differAt,
			eff(Crash, Degraded, "reads the first segment in program-header order (read_netdump)"),
			eff(Makedumpfile, Degraded, "reads the first segment (closest_pt_load)"),
			eff(Drgn, Degraded, "reads the later segment (add_memory_segment): it sees other bytes than crash"),
			eff(Libkdumpfile, Degraded, "reads the segment sorted first by address"))
		return
	}
	c.pass(B12, found+", identical")
}

// sameFileBytes reports whether two segments map [start, end) to the same
// file bytes (ldx's kernel-image PT_LOAD points into its RAM data).
func sameFileBytes(a, b elfcore.ProgHeader, start, end uint64) bool {
	return a.Off-a.Paddr == b.Off-b.Paddr &&
		end-a.Paddr <= a.Filesz && end-b.Paddr <= b.Filesz
}

// sampleSpan returns the page addresses of [start, end) to compare: all
// of them in deep mode, else at most budget spread evenly.
func sampleSpan(start, end uint64, budget int, deep bool) []uint64 {
	n := (end - start + pageSize - 1) / pageSize
	if budget <= 0 {
		return nil
	}
	if deep || n <= uint64(budget) {
		out := make([]uint64, 0, n)
		for pa := start; pa < end; pa += pageSize {
			out = append(out, pa)
		}
		return out
	}
	k := uint64(min(budget, 8))
	out := make([]uint64, 0, k)
	for i := range k {
		out = append(out, start+((n-1)*i/max(k-1, 1))*pageSize)
	}
	return out
}

// readSeg reads physical bytes of pa from segment p only (zero-filled
// past p_filesz, as every consumer but libkdumpfile does).
func readSeg(r interface {
	ReadAt([]byte, int64) (int, error)
}, p elfcore.ProgHeader, pa uint64, buf []byte) error {
	rel := pa - p.Paddr
	if rel >= p.Filesz {
		clear(buf)
		return nil
	}
	k := min(uint64(len(buf)), p.Filesz-rel)
	n, err := r.ReadAt(buf[:k], int64(p.Off+rel))
	if uint64(n) < k {
		if err == nil {
			err = fmt.Errorf("short read")
		}
		return err
	}
	clear(buf[k:])
	return nil
}

// checkAlignment is B13.
func (c *group) checkAlignment() {
	var bad []int
	for i, p := range c.loads {
		if p.Memsz == 0 {
			continue
		}
		if p.Paddr%pageSize != 0 || p.Memsz%pageSize != 0 || (p.Filesz > 0 && p.Off%pageSize != p.Paddr%pageSize) {
			bad = append(bad, c.loadIdx[i])
		}
	}
	if len(bad) == 0 {
		c.pass(B13, "p_paddr, p_memsz page-aligned, p_offset ≡ p_paddr (mod 4096)")
		return
	}
	p := c.f.Progs[bad[0]]
	c.fail(B13, fmt.Sprintf("%s not page-aligned or with p_offset ≢ p_paddr (mod 4096); first phdr[%d]: p_offset %#x, p_paddr %#x, p_memsz %#x",
		plural(len(bad), "PT_LOAD", "PT_LOADs"), bad[0], p.Off, p.Paddr, p.Memsz),
		"harmless; `ldx extract` writes page-aligned segments", c.phLoc(bad[0], "p_offset", phdrOffOff),
		eff(Makedumpfile, Cosmetic, "loses its mmap fast path and handles fractional pages (page_is_fractional)"))
}

// checkOrder is B14.
func (c *group) checkOrder() {
	var problems []string
	if c.image != nil && c.imageIdx != c.loadIdx[0] {
		problems = append(problems, fmt.Sprintf("the kernel-image PT_LOAD is phdr[%d], not the first PT_LOAD", c.imageIdx))
	}
	ram, idx := c.ramLoads()
	for i := 1; i < len(ram); i++ {
		if ram[i].Paddr < ram[i-1].Paddr {
			problems = append(problems, fmt.Sprintf("RAM PT_LOAD phdr[%d] at %#x comes after phdr[%d] at %#x", idx[i], ram[i].Paddr, idx[i-1], ram[i-1].Paddr))
			break
		}
	}
	if len(problems) == 0 {
		c.pass(B14, "kernel image first, RAM by address")
		return
	}
	c.fail(B14, strings.Join(problems, "; "), "`ldx extract` writes kexec-tools' order", nowhere,
		eff(Crash, Cosmetic, "uses the first kernel-image segment for phys_base"),
		eff(Makedumpfile, Cosmetic, "uses the last RAM segment for PAGE_OFFSET"))
}

// vmciNumber reads NUMBER(name) from info (nil-safe).
func vmciNumber(info *vmcoreinfo.Info, name string) (uint64, bool) {
	if info == nil {
		return 0, false
	}
	v, ok := info.Number(name)
	return uint64(v), ok
}
