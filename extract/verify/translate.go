package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/kernel/x86"
)

// utsReleaseOff is the offset of new_utsname.release in struct
// uts_namespace.name: sysname and nodename come first, 65 bytes each.
const utsReleaseOff = 2 * 65

// translation inputs shared by the E and F checks.
type xlat struct {
	root     uint64 // SYMBOL(init_top_pgt) (makedumpfile's root)
	swapper  uint64 // SYMBOL(swapper_pg_dir) (drgn's root)
	haveRoot bool
	l5       bool
	sme      uint64
}

func (c *facts) xlat() (x xlat) {
	if c.info == nil {
		return
	}
	var ok bool
	if x.root, ok = c.info.Symbol("init_top_pgt"); !ok {
		x.root, ok = c.info.Symbol("init_level4_pgt")
	}
	x.haveRoot = ok
	x.swapper, _ = c.info.Symbol("swapper_pg_dir")
	if l5, ok := c.info.Number("pgtable_l5_enabled"); ok && l5 != 0 {
		x.l5 = true
	}
	if sme, ok := c.info.Number("sme_mask"); ok {
		x.sme = uint64(sme)
	}
	return
}

// translationChecks is group E: phys_base, the page walks, init_uts_ns
// read each consumer's way, the direct map, mem_section and crash's
// start-up reads. Each step takes what an earlier one concluded as a
// parameter: E2 walks through the phys_base E1 confirms, E4 is skipped when
// E2 found the walk broken, and E6 translates direct-map addresses through
// the base E4 confirms.
func translationChecks(f *facts) []Result {
	c := f.newGroup()
	if c.info == nil {
		for _, id := range []ID{E1, E2, E3, E4, E5, E6} {
			c.skip(id, "no VMCOREINFO note (C3)")
		}
		return c.out
	}
	physBase := c.checkPhysBase()
	walkBroken := c.checkWalk(physBase)
	c.checkRelease()
	pageOffset := c.checkDirectMapWalk(walkBroken)
	c.checkMemSection()
	c.checkCrashStartup(pageOffset)
	return c.out
}

// confirm walks the page tables rooted through phys_base pb and reports
// the phys_base the walk of _stext implies. It reads RAM only, without the
// kernel-image PT_LOAD: that segment is one of the sources under test, and
// first-match reads would let a wrong one shadow the tables it claims.
func (c *facts) confirm(pb uint64) (uint64, error) {
	x := c.xlat()
	phys := io.ReaderAt(c.first)
	if ram, _ := c.ramLoads(); len(ram) > 0 {
		phys = elfcore.NewPhysMem(c.r, ram)
	}
	m, err := kmem.New(phys, kmem.Params{PgtRoot: x.root, PhysBase: pb, L5: x.l5, SMEMask: x.sme})
	if err != nil {
		return 0, err
	}
	va, ok := c.info.Symbol("_stext")
	if !ok {
		va = c.xlat().root
	}
	pa, err := m.VtoP(va)
	if err != nil {
		return 0, err
	}
	return x86.PhysBase(pa, va), nil
}

// checkPhysBase is E1: NUMBER(phys_base), the kernel-image PT_LOAD and the
// page-table walk must agree, because crash and makedumpfile take
// NUMBER(phys_base) first and the PT_LOAD otherwise, drgn before 0.0.27
// reaches the tables through the PT_LOAD's p_vaddr, and the walk decides
// where every other address is.
func (c *group) checkPhysBase() (truePhysBase uint64) {
	pbV, haveV := vmciNumber(c.info, "phys_base")
	pbI, haveI := c.imagePhysBase()
	truePhysBase = c.physBase // unless the walk confirms one
	if !haveV && !haveI {
		c.skip(E1, "neither NUMBER(phys_base) nor a kernel-image PT_LOAD (D7, B9)")
		return truePhysBase
	}
	if !c.xlat().haveRoot {
		c.skip(E1, "no page-table root in VMCOREINFO (D6)")
		return truePhysBase
	}
	wV, errV := uint64(0), error(nil)
	if haveV {
		wV, errV = c.confirm(pbV)
	}
	wI, errI := uint64(0), error(nil)
	if haveI {
		wI, errI = c.confirm(pbI)
	}
	okV := haveV && errV == nil && wV == pbV
	okI := haveI && errI == nil && wI == pbI
	switch {
	case okV:
		truePhysBase = pbV
	case okI:
		truePhysBase = pbI
	}
	loc := at("VMCOREINFO NUMBER(phys_base)", c.vmci.Off+24)
	switch {
	case haveV && haveI && pbV == pbI && okV:
		c.pass(E1, fmt.Sprintf("NUMBER(phys_base), the kernel-image PT_LOAD and the page-table walk all give %#x", pbV))
	case haveV && haveI && pbV == pbI:
		c.pass(E1, fmt.Sprintf("NUMBER(phys_base) and the kernel-image PT_LOAD give %#x; the walk cannot confirm it (E2: %v)", pbV, errV))
	case haveV && haveI && okI && !okV:
		c.fail(E1, fmt.Sprintf("NUMBER(phys_base) is %#x, but the kernel-image PT_LOAD and the page-table walk give %#x", pbV, pbI),
			"NUMBER(phys_base) does not belong to this memory: the VMCOREINFO was edited or comes from another boot; use the kernel's own text", loc,
			eff(Crash, Fatal, "takes NUMBER(phys_base) first (x86_64_calc_phys_base): every kernel-image address is read from the wrong place (\"vmlinux and DUMP do not match!\")"),
			eff(Makedumpfile, Fatal, "roots its page walk at init_top_pgt − KTEXT + NUMBER(phys_base): \"Can't get a valid pgd\" or wrong data"),
			c.drgnModernEffect(),
			eff(Libkdumpfile, Fatal, "maps the kernel text through NUMBER(phys_base)"))
	case haveV && haveI && okV && !okI:
		c.fail(E1, fmt.Sprintf("the kernel-image PT_LOAD phdr[%d] implies phys_base %#x, but NUMBER(phys_base) and the page-table walk give %#x", c.imageIdx, pbI, pbV),
			"the kernel-image PT_LOAD is wrong (p_paddr or p_vaddr); `ldx extract` rebuilds it from VMCOREINFO", c.phLoc(c.imageIdx, "p_paddr", phdrPaddr),
			eff(Crash, Degraded, "reads physical addresses first-match: the image PT_LOAD shadows RAM it does not hold"),
			eff(Makedumpfile, Degraded, "reads physical addresses first-match: the image PT_LOAD shadows RAM it does not hold"),
			eff(Libkdumpfile, Degraded, "sorts segments by p_paddr: the image PT_LOAD's bytes land at the wrong physical addresses"))
		// drgn and vmcore-dmesg read the image through its p_vaddr and
		// p_offset, which are right; drgn's physical reads take the
		// later (RAM) segment.
	case haveV && haveI:
		var e []Effect
		for _, k := range all {
			e = append(e, eff(k, Fatal, "no phys_base source leads to the page tables"))
		}
		c.fail(E1, fmt.Sprintf("NUMBER(phys_base) is %#x, the kernel-image PT_LOAD implies %#x, and a page-table walk confirms neither (%v; %v)", pbV, pbI, errV, errI),
			"the VMCOREINFO or the headers do not belong to this memory", loc, e...)
	case okV || okI:
		src := "NUMBER(phys_base)"
		pb := pbV
		if !haveV {
			src, pb = fmt.Sprintf("the kernel-image PT_LOAD phdr[%d]", c.imageIdx), pbI
		}
		c.pass(E1, fmt.Sprintf("%s gives %#x and the page-table walk agrees (the third source is missing: D7/B9)", src, pb))
	default:
		pb, err := pbV, errV
		if !haveV {
			pb, err = pbI, errI
		}
		if err != nil && isWalkError(err) {
			c.pass(E1, fmt.Sprintf("only one source, phys_base %#x; the walk cannot confirm it (E2: %v)", pb, err))
			return truePhysBase
		}
		var e []Effect
		for _, k := range all {
			e = append(e, eff(k, Fatal, "the only phys_base leads to the wrong page tables"))
		}
		c.fail(E1, fmt.Sprintf("phys_base %#x (the only source), but the walk of _stext through it implies %#x", pb, wV|wI), "the VMCOREINFO or the headers do not belong to this memory", loc, e...)
	}
	return truePhysBase
}

// isWalkError reports errors that mean "the tables are not all there"
// rather than "the tables say something else".
func isWalkError(err error) bool {
	var um *elfcore.UnmappedError
	return errors.As(err, &um) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// target is a kernel address the checks translate.
type target struct {
	name string
	va   uint64
}

// targets are the addresses E2 walks: the text, the root table itself,
// init_uts_ns and the printk ring pointer — what makedumpfile reads first.
func (c *facts) targets() []target {
	var ts []target
	for _, s := range []string{"_stext", "init_top_pgt", "init_uts_ns", "prb"} {
		if v, ok := c.info.Symbol(s); ok {
			ts = append(ts, target{s, v})
		}
	}
	return ts
}

// checkWalk is E2: the page walk as makedumpfile does it (every virtual
// address), and as drgn does it (for addresses no p_vaddr segment covers),
// must reach the kernel's targets through tables that are in the dump.
func (c *group) checkWalk(truePhysBase uint64) (walkBroken bool) {
	if c.mkd == nil {
		c.skip(E2, c.mkdErr.Error())
		return false
	}
	var bad []string
	var effects []Effect
	tables := map[uint64]bool{}
	walk := func(m *kmem.Mem, pb uint64, who string) (fails []string, uncovered bool) {
		for _, t := range c.targets() {
			w, err := m.Translate(t.va)
			if w != nil && err == nil {
				for _, l := range w.Levels {
					tables[l.TableAddr] = true
				}
			}
			var um *elfcore.UnmappedError
			switch {
			case errors.As(err, &um):
				fails = append(fails, fmt.Sprintf("%s%s %#x: the page-table page at physical %#x (level %d of the walk) is not in any PT_LOAD (missing from the dump)", who, t.name, t.va, um.Paddr&^(pageSize-1), len(w.Levels)+1))
			case err != nil:
				fails = append(fails, fmt.Sprintf("%s%s %#x: %v", who, t.name, t.va, err))
			case x86.IsImageAddr(t.va) && w.Paddr != x86.ImagePhys(t.va, pb):
				fails = append(fails, fmt.Sprintf("%s%s %#x: the walk gives physical %#x, the linear kernel-image mapping %#x", who, t.name, t.va, w.Paddr, x86.ImagePhys(t.va, pb)))
			default:
				continue
			}
			uncovered = uncovered || !c.coveredByVaddr(t.va)
		}
		return fails, uncovered
	}
	if fails, _ := walk(c.mkd, truePhysBase, ""); len(fails) > 0 {
		walkBroken = true
		bad = append(bad, fails...)
		effects = append(effects,
			eff(Makedumpfile, Fatal, "translates every virtual address by this walk: \"Can't convert a virtual address(…) to physical address.\""),
			eff(Crash, Degraded, "translates kernel-image and direct-map addresses arithmetically, but walks these tables for vmalloc, module and vmemmap addresses"),
			eff(Libkdumpfile, Fatal, "walks these tables for kernel virtual addresses"))
	}
	// drgn's walks: the root read through the p_vaddr segments before
	// 0.0.27, through NUMBER(phys_base) since. A root drgn cannot reach at
	// all is B9's finding.
	_, haveV := vmciNumber(c.info, "phys_base")
	for _, modern := range []bool{false, true} {
		if modern && !haveV {
			continue
		}
		d, _ := c.drgnView(modern)
		if d.walk == nil {
			continue
		}
		ver := "<" + drgnPhysRootSince
		if modern {
			ver = ">=" + drgnPhysRootSince
		} else if !haveV {
			ver = ""
		}
		fails, uncovered := walk(d.walk, truePhysBase, "drgn"+map[bool]string{true: " " + ver, false: ""}[ver != ""]+": ")
		if len(fails) == 0 {
			continue
		}
		if walkBroken {
			fails = nil // same tables: said once above
		}
		bad = append(bad, fails...)
		if uncovered {
			effects = append(effects, eff(Drgn, Fatal, "walks the page tables for addresses no p_vaddr segment covers: \"address is not mapped\" or wrong data").ver(ver))
		} else {
			effects = append(effects, eff(Drgn, Degraded, "reads the kernel image and direct map through p_vaddr segments, but every other address (vmalloc, modules, per-CPU) walks these tables").ver(ver))
		}
	}
	if len(bad) == 0 && len(effects) == 0 {
		c.pass(E2, fmt.Sprintf("%d-level walk from init_top_pgt (%s) translates _stext, init_top_pgt, init_uts_ns and prb as the linear mapping does; %s, all in PT_LOADs",
			map[bool]int{false: 4, true: 5}[c.xlat().l5], c.physBaseFrom, plural(len(tables), "table page", "table pages")))
		return
	}
	c.fail(E2, strings.Join(bad, "; "),
		"the dump lacks page-table pages or they are wrong: the memory of a livedump is taken while the kernel runs; take it again, and check that no segment was dropped",
		at("VMCOREINFO SYMBOL(init_top_pgt)", c.vmci.Off+24), effects...)
	return walkBroken
}

// readCString reads a NUL-terminated string of at most n bytes.
func readCString(r io.ReaderAt, va uint64, n int) (string, error) {
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, int64(va)); err != nil {
		return "", err
	}
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	return string(buf), nil
}

// checkRelease is E3: init_uts_ns's release, read as each consumer reads
// virtual memory, must be OSRELEASE. It proves phys_base, p_paddr,
// p_vaddr and the file layout at once (makedumpfile check_release reads
// the same bytes).
func (c *group) checkRelease() {
	uts, ok1 := c.info.Symbol("init_uts_ns")
	off, ok2 := c.info.Offset("uts_namespace.name")
	want, ok3 := c.info.OSRelease()
	if !ok1 || !ok2 || !ok3 {
		c.skip(E3, "VMCOREINFO lacks SYMBOL(init_uts_ns), OFFSET(uts_namespace.name) or OSRELEASE (D3, D12)")
		return
	}
	va := uts + off + utsReleaseOff
	type view struct {
		who  Consumer
		ver  string
		r    io.ReaderAt
		err  error
		what string
	}
	var views []view
	if c.mkd != nil {
		views = append(views, view{who: Makedumpfile, r: c.mkd, what: "page walk"})
	} else {
		views = append(views, view{who: Makedumpfile, err: c.mkdErr})
	}
	if c.physBaseFrom != "" {
		views = append(views, view{who: Crash, r: &linearImage{c.first, c.physBase}, what: "phys_base " + c.physBaseFrom})
	} else {
		views = append(views, view{who: Crash, err: c.mkdErr})
	}
	old, errOld := c.drgnView(false)
	views = append(views, view{who: Drgn, ver: "<" + drgnPhysRootSince, r: old, err: errOld, what: "p_vaddr segments, else walk"})
	if _, ok := c.info.Number("phys_base"); ok {
		modern, errModern := c.drgnView(true)
		views = append(views, view{who: Drgn, ver: ">=" + drgnPhysRootSince, r: modern, err: errModern, what: "p_vaddr segments, else walk"})
	}
	var good, bad []string
	var effects []Effect
	for _, v := range views {
		name := v.who.String()
		if v.ver != "" {
			name += " " + v.ver
		}
		got, err := "", v.err
		if err == nil {
			got, err = readCString(v.r, va, 65)
		}
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", name, err))
			effects = append(effects, eff(v.who, Fatal, fmt.Sprintf("cannot read init_uts_ns (%v)", err)).ver(v.ver))
		case got != want:
			bad = append(bad, fmt.Sprintf("%s reads %q", name, got))
			effects = append(effects, eff(v.who, Fatal, fmt.Sprintf("reads %q where the release should be: its translation reads the wrong memory", got)).ver(v.ver))
		default:
			good = append(good, name)
		}
	}
	if len(bad) == 0 {
		c.pass(E3, fmt.Sprintf("%q at %#x, read as %s read it", want, va, strings.Join(good, ", ")))
		return
	}
	found := fmt.Sprintf("OSRELEASE is %q; at init_uts_ns.name.release %#x %s", want, va, strings.Join(bad, "; "))
	if len(good) > 0 {
		found += "; " + strings.Join(good, ", ") + " read it right"
	}
	fix := "the translation inputs (phys_base, the page tables, p_paddr/p_vaddr) do not lead to the kernel's memory; see E1, E2, B9 and B12"
	if len(good) > 0 && strings.Contains(found, "recursive address translation") {
		fix = "run `ldx extract FILE -o VMCORE`: it adds the kernel-image PT_LOAD old drgn reads the root page table through (B9)"
	}
	c.fail(E3, found, fix, at("VMCOREINFO SYMBOL(init_uts_ns)", c.vmci.Off+24), effects...)
}

// checkDirectMapWalk is E4: drgn and libkdumpfile trust RAM p_vaddr over
// the page tables and vmcore-dmesg uses nothing else, so a wrong
// page_offset_base in p_vaddr silently returns wrong bytes.
func (c *group) checkDirectMapWalk(walkBroken bool) (pageOffset uint64) {
	ram, idx := c.ramLoads()
	var kern []int
	for i, p := range ram {
		if p.Vaddr >= kernelHalf {
			kern = append(kern, i)
		}
	}
	switch {
	case len(kern) == 0:
		c.skip(E4, "no RAM PT_LOAD has a direct-map p_vaddr (B8)")
		return pageOffset
	case c.mkd == nil:
		c.skip(E4, c.mkdErr.Error())
		return pageOffset
	case walkBroken:
		c.skip(E4, "the page walk does not reach the kernel (E2)")
		return pageOffset
	}
	sample := kern
	if len(sample) > 8 {
		sample = nil
		for i := range 8 {
			sample = append(sample, kern[i*(len(kern)-1)/7])
		}
	}
	var bad, unmapped []string
	var badIdx, unmappedIdx int
	walked := 0
	for _, i := range sample {
		p := ram[i]
		pa, err := c.mkd.VtoP(p.Vaddr)
		if err != nil {
			var nm *kmem.NotMappedError
			if errors.As(err, &nm) {
				unmapped = append(unmapped, fmt.Sprintf("phdr[%d] [%#x, %#x)", idx[i], p.Paddr, p.End()))
				unmappedIdx = idx[i]
			}
			continue
		}
		walked++
		if pa != p.Paddr {
			bad = append(bad, fmt.Sprintf("phdr[%d] p_vaddr %#x maps to physical %#x, not its p_paddr %#x", idx[i], p.Vaddr, pa, p.Paddr))
			badIdx = idx[i]
		}
	}
	switch {
	case len(bad) > 0 || (len(unmapped) > 0 && walked == 0):
		bad = append(bad, unmapped...)
		if len(bad) == len(unmapped) {
			badIdx = unmappedIdx
			bad[0] = "the page tables map no sampled p_vaddr: " + bad[0]
		}
		c.fail(E4, strings.Join(bad, "; "), "`ldx extract` sets p_vaddr from the direct-map base the page tables give", c.phLoc(badIdx, "p_vaddr", phdrVaddr),
			eff(Drgn, Degraded, "trusts p_vaddr segments before the page tables: direct-map reads return the wrong bytes"),
			eff(Libkdumpfile, Degraded, "trusts p_vaddr segments: direct-map reads return the wrong bytes"),
			eff(VmcoreDmesg, Fatal, "reads dynamically allocated printk buffers at the wrong offsets"),
			eff(Makedumpfile, Fatal, "takes PAGE_OFFSET from p_vaddr − p_paddr of the last RAM PT_LOAD (get_page_offset_x86_64); with it wrong, direct-map addresses fail its checks: \"Could not validate mem_section.\""))
		return pageOffset
	case len(unmapped) > 0:
		pageOffset = ram[kern[0]].Vaddr - ram[kern[0]].Paddr
		c.failSev(E4, Cosmetic, fmt.Sprintf("the direct-map base %#x is right (%s confirmed), but the kernel maps nothing at the p_vaddr of %s: memory outside its direct map (firmware, reserved ranges) presented as RAM",
			pageOffset, plural(walked, "segment", "segments"), strings.Join(unmapped, ", ")),
			"harmless: no consumer reads kernel data there; segments over non-RAM ranges could be left out", c.phLoc(unmappedIdx, "p_vaddr", phdrVaddr))
		return pageOffset
	}
	if walked == 0 {
		c.skip(E4, "the page walk of the RAM segments' p_vaddr failed (E2)")
		return pageOffset
	}
	pageOffset = ram[kern[0]].Vaddr - ram[kern[0]].Paddr
	c.pass(E4, fmt.Sprintf("the page tables map %s of RAM PT_LOADs at their p_vaddr (direct map at %#x)", plural(walked, "sample", "samples"), pageOffset))
	return pageOffset
}

// directMapDelta returns p_vaddr − p_paddr of the RAM segments when they
// carry kernel virtual addresses.
func (c *facts) directMapDelta() (uint64, bool) {
	ram, _ := c.ramLoads()
	for _, p := range ram {
		if p.Vaddr >= kernelHalf {
			return p.Vaddr - p.Paddr, true
		}
	}
	return 0, false
}
