package verify

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kallsyms"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/kernel/x86"
	"ldx/vmcoreinfo"
)

// crash's read model. crash parses only the file prefix before the first
// segment data (crashHeaderEnd), takes phys_base from NUMBER(phys_base),
// else from the first kernel-image PT_LOAD (crashPhysBase), reads physical
// memory first-match in program-header order (facts.first), and translates
// kernel-image addresses arithmetically through phys_base (linearImage),
// direct-map addresses through PAGE_OFFSET and only the rest through the
// page tables (crashView). E3 reads init_uts_ns this way, E6 the
// structures crash reads while it starts.

// crashHeaderEnd is the "header size" crash's resize_elf_header computes:
// the smallest non-zero p_offset of phdr[1..], seeded with phdr[1]'s (it
// looks at every later phdr whatever its type). Only that prefix of the
// file is parsed for program headers and notes.
func (c *facts) crashHeaderEnd() uint64 {
	end := c.f.Progs[1].Off
	for _, p := range c.f.Progs[1:] {
		if p.Off != 0 && (end == 0 || p.Off < end) {
			end = p.Off
		}
	}
	return end
}

// linearImage reads kernel-image addresses the way crash translates them:
// physical = virtual − __START_KERNEL_map + phys_base, first match.
type linearImage struct {
	phys     io.ReaderAt
	physBase uint64
}

func (l *linearImage) ReadAt(p []byte, off int64) (int, error) {
	va := uint64(off)
	if !x86.IsImageAddr(va) {
		return 0, fmt.Errorf("%#x is not a kernel-image address", va)
	}
	return l.phys.ReadAt(p, int64(x86.ImagePhys(va, l.physBase)))
}

// imagePhysBase is phys_base as the kernel-image PT_LOAD implies it.
func (f *facts) imagePhysBase() (uint64, bool) { return imagePhysBase(f.image) }

func imagePhysBase(image *elfcore.ProgHeader) (uint64, bool) {
	if image == nil {
		return 0, false
	}
	return x86.PhysBase(image.Paddr, image.Vaddr), true
}

// crashPhysBase is the phys_base crash (x86_64_calc_phys_base) and
// makedumpfile take: NUMBER(phys_base) first, else the one the
// kernel-image PT_LOAD implies; from names the source ("" when there is
// none).
func crashPhysBase(info *vmcoreinfo.Info, image *elfcore.ProgHeader) (pb uint64, from string) {
	pbV, haveV := vmciNumber(info, "phys_base")
	pbI, haveI := imagePhysBase(image)
	switch {
	case haveV:
		return pbV, "NUMBER(phys_base)"
	case haveI:
		return pbI, "the kernel-image PT_LOAD"
	}
	return 0, ""
}

// What crash reads while it starts, before its prompt: a read that fails
// there with FAULT_ON_ERROR ends the session ("read error: kernel virtual
// address: … type: …"). On a dump with memory missing (a file cut short, a
// segment left out) whether crash opens depends on *where* the missing
// memory is, which changes with every boot's layout. So E6 reads exactly
// those structures, at the addresses this boot put them, through the
// translation crash uses (kernel image through phys_base, direct map
// through PAGE_OFFSET, anything else through the page tables), and names
// the address that decides.
//
// crash 8.0.2 on x86_64 reads, in x86_64_ist_init, for every CPU whose
// __per_cpu_offset is set, the seven IST pointers of its TSS
// (cpu_tss_rw + __per_cpu_offset[cpu] + the offset of x86_hw_tss.ist,
// "tss_struct ist array"), and in node_table_init each online node's
// pglist_data (node_data[n]: node_start_pfn, node_spanned_pages,
// node_zones …). Other start-up reads (cpu_number, current_task) are made
// with RETURN_ON_ERROR and only lose details.

const (
	// tssISTOffset is offsetof(struct tss_struct, x86_tss.ist) on x86_64:
	// x86_hw_tss starts the struct and holds reserved1 (u32), sp0, sp1,
	// sp2 and reserved2 (u64 each) before ist[7]. The layout is fixed by
	// the hardware (the TSS format), so it is the same in every kernel.
	tssISTOffset = 36
	// tssISTBytes is ist[7]: crash reads MAX_EXCEPTION_STACKS pointers.
	tssISTBytes = 7 * 8
	// maxCPUs bounds the walk of __per_cpu_offset (NR_CPUS is at most
	// 8192 on x86_64).
	maxCPUs = 8192
)

// startupRead is one structure a consumer must read to open the dump.
type startupRead struct {
	what string // crash's name for the read, and whose it is
	va   uint64
	size uint64
}

// kernelSymbol resolves a kernel symbol for checks that need more than
// VMCOREINFO's SYMBOL() keys: VMCOREINFO first, then the kernel's own
// symbol table in the dumped memory (kallsyms), then the --vmlinux. perCPU
// says the symbol is a per-CPU variable: its value is an offset into each
// CPU's area, which KASLR does not move.
func (f *facts) kernelSymbol(name string, perCPU bool) (uint64, string, bool) {
	if f.info != nil {
		if v, ok := f.info.Symbol(name); ok {
			return v, "VMCOREINFO", true
		}
	}
	if t := f.ksyms(); t != nil {
		if v, ok := t.Lookup(name); ok {
			return v, "kallsyms", true
		}
	}
	if f.opt.Vmlinux != nil {
		v, err := f.opt.Vmlinux.Symbol(name)
		if err != nil {
			return 0, "", false
		}
		if !perCPU {
			off, _, err := f.opt.Vmlinux.KASLROffset(f.info)
			if err != nil {
				return 0, "", false
			}
			v += off
		}
		return v, "the vmlinux", true
	}
	return 0, "", false
}

// crashView reads kernel memory as crash does at start-up. pageOffset is
// the direct-map base E4 confirmed in the page tables (0: unknown, and
// direct-map addresses go through the page tables then).
type crashView struct {
	*facts
	pageOffset uint64
}

// crashVtoP translates as crash does for the reads of E6: kernel-image
// addresses through phys_base, direct-map addresses by subtracting
// PAGE_OFFSET, anything else through the page tables.
func (c crashView) crashVtoP(va uint64) (uint64, error) {
	switch {
	case x86.IsImageAddr(va):
		return x86.ImagePhys(va, c.physBase), nil
	case c.pageOffset != 0 && va >= c.pageOffset && va-c.pageOffset < 1<<46:
		return va - c.pageOffset, nil
	case c.mkd != nil:
		return c.mkd.VtoP(va)
	}
	return 0, errors.New("no page tables to translate it")
}

// crashRead reads what crash would read at va, through the first-match
// physical view (crash's).
func (c crashView) crashRead(va uint64, p []byte) error {
	for done := 0; done < len(p); {
		n := min(len(p)-done, int(pageSize-(va+uint64(done))%pageSize))
		pa, err := c.crashVtoP(va + uint64(done))
		if err != nil {
			return err
		}
		if _, err := c.first.ReadAt(p[done:done+n], int64(pa)); err != nil {
			return fmt.Errorf("physical %#x: %w", pa, err)
		}
		done += n
	}
	return nil
}

// crashStartupReads lists E6's reads for this dump; skip says why there
// are none.
func (c crashView) crashStartupReads() (reads []startupRead, sources []string, skip string) {
	src := map[string]bool{}
	use := func(s string) {
		if !src[s] {
			src[s] = true
			sources = append(sources, s)
		}
	}
	offs, tss, why := c.perCPUOffsets()
	if why != "" {
		return nil, nil, why
	}
	use(tss.from)
	for cpu, off := range offs {
		reads = append(reads, startupRead{fmt.Sprintf("CPU %d's \"tss_struct ist array\"", cpu), tss.va + off + tssISTOffset, tssISTBytes})
	}
	nodes, from := c.nodeData()
	if from != "" {
		use(from)
	}
	reads = append(reads, nodes...)
	return reads, sources, ""
}

type symAt struct {
	va   uint64
	from string
}

// perCPUOffsets reads __per_cpu_offset as crash does: entries up to the
// first one still at its boot value (__per_cpu_load) or zero.
func (c crashView) perCPUOffsets() (offs []uint64, tss symAt, why string) {
	arr, from, ok := c.kernelSymbol("__per_cpu_offset", false)
	if !ok {
		return nil, tss, "the per-CPU offsets are unknown: VMCOREINFO has no kallsyms tables and no --vmlinux was given"
	}
	tss.va, tss.from, ok = c.kernelSymbol("cpu_tss_rw", true)
	if !ok {
		return nil, tss, fmt.Sprintf("cpu_tss_rw is not in %s", from)
	}
	load, _, _ := c.kernelSymbol("__per_cpu_load", false)
	buf := make([]byte, 8*64)
	for base := 0; base < maxCPUs; base += 64 {
		if err := c.crashRead(arr+uint64(base)*8, buf); err != nil {
			if base == 0 {
				return nil, tss, fmt.Sprintf("__per_cpu_offset at %#x cannot be read: %v", arr, err)
			}
			return offs, tss, ""
		}
		for i := range 64 {
			v := binary.LittleEndian.Uint64(buf[8*i:])
			if v == 0 || (load != 0 && v == load) {
				return offs, tss, ""
			}
			offs = append(offs, v)
		}
	}
	return offs, tss, ""
}

// nodeData lists the pglist_data fields crash's node_table_init reads for
// each node in node_data[] (NUMA kernels; VMCOREINFO names the array and
// the fields).
func (c crashView) nodeData() ([]startupRead, string) {
	if c.info == nil {
		return nil, ""
	}
	arr, ok := c.info.Symbol("node_data")
	if !ok {
		return nil, ""
	}
	n, ok := c.info.Length("node_data")
	if !ok || n == 0 || n > 1<<10 {
		n = 1
	}
	var fields []uint64
	for _, l := range c.info.Lines() {
		if name, ok := strings.CutPrefix(l.Key, "OFFSET(pglist_data."); ok && strings.HasSuffix(name, ")") {
			if off, ok := c.info.Offset("pglist_data." + strings.TrimSuffix(name, ")")); ok {
				fields = append(fields, off)
			}
		}
	}
	if len(fields) == 0 {
		fields = []uint64{0}
	}
	buf := make([]byte, 8*n)
	if err := c.crashRead(arr, buf); err != nil {
		return []startupRead{{"node_data[] (pglist_data pointers)", arr, 8 * n}}, "VMCOREINFO"
	}
	// Only online nodes are read (node_online_map, a bitmap); without it
	// every set pointer.
	online := func(uint64) bool { return true }
	if m, ok := c.info.Symbol("node_online_map"); ok {
		bits := make([]byte, (n+7)/8)
		if c.crashRead(m, bits) == nil {
			online = func(i uint64) bool { return bits[i/8]&(1<<(i%8)) != 0 }
		}
	}
	var out []startupRead
	for i := range n {
		pg := binary.LittleEndian.Uint64(buf[8*i:])
		if pg == 0 || !online(i) {
			continue
		}
		for _, f := range fields {
			out = append(out, startupRead{fmt.Sprintf("node %d's pglist_data", i), pg + f, 8})
		}
	}
	return out, "VMCOREINFO"
}

// checkCrashStartup is E6; pageOffset is E4's direct-map base.
func (c *group) checkCrashStartup(pageOffset uint64) {
	if c.info == nil {
		c.skip(E6, "no VMCOREINFO note (C3)")
		return
	}
	if c.physBaseFrom == "" {
		c.skip(E6, "no phys_base (D7, B9)")
		return
	}
	v := crashView{c.facts, pageOffset}
	reads, sources, why := v.crashStartupReads()
	if why != "" {
		c.skip(E6, why)
		return
	}
	var bad, good []string
	for _, r := range reads {
		buf := make([]byte, r.size)
		if err := v.crashRead(r.va, buf); err != nil {
			bad = append(bad, fmt.Sprintf("%s at %#x: %v", r.what, r.va, err))
		} else if pa, err := v.crashVtoP(r.va); err == nil && (len(good) == 0 || !strings.HasPrefix(good[len(good)-1], r.what)) {
			good = append(good, fmt.Sprintf("%s at %#x (physical %#x)", r.what, r.va, pa))
		}
	}
	if len(bad) == 0 {
		c.pass(E6, fmt.Sprintf("%s readable (addresses from %s): %s", plural(len(reads), "start-up read", "start-up reads"), strings.Join(sources, " and "), strings.Join(good, ", ")))
		return
	}
	n := len(bad)
	if n > 3 {
		bad = append(bad[:3], fmt.Sprintf("… (%d unreadable)", n))
	}
	c.fail(E6, "crash cannot read what it reads at start-up: "+strings.Join(bad, "; "),
		"the dump lacks this memory; copy the dump again completely (B11) or capture it again", nowhere,
		eff(Crash, Fatal, "stops while starting: \"read error: kernel virtual address: … type: \\\"tss_struct ist array\\\"\" (or pglist_data)"))
}

// readKallsyms reads the kernel's own symbol table from the dumped memory
// through makedumpfile's page walk, or returns nil when there is no walk,
// VMCOREINFO does not locate the table or it cannot be read.
func readKallsyms(mkd *kmem.Mem, info *vmcoreinfo.Info) *kallsyms.Table {
	if mkd == nil || info == nil {
		return nil
	}
	t, _ := kallsyms.Read(mkd, info)
	return t
}
