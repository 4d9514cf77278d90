// Package pageclass decides which physical pages a filtered dump may leave
// out, by makedumpfile's dump levels (-d N), from the dump's physical memory
// and VMCOREINFO alone: no vmlinux.
//
// # Dump levels
//
// The level is a bit mask: 1 zero pages, 2 page cache that is not private,
// 4 private page cache too, 8 user data (anonymous and hugetlbfs pages),
// 16 free pages. 31 asks for all. Zero pages are decided by content, by the
// writer that reads them; this package decides the other four from the
// kernel's struct page array. Hardware-poisoned and logically offline pages are left out at every level
// that reads the struct pages (2 and above), as makedumpfile does: their
// contents are unreadable or meaningless.
//
// # Where the struct pages are
//
// x86_64 kernels use SPARSEMEM_EXTREME with a virtual memory map. SYMBOL(
// mem_section) is the value of the kernel's mem_section pointer, an array
// of LENGTH(mem_section) root pointers, each to a page of SIZE(mem_section)
// entries; section number nr covers pfns [nr << (SECTION_SIZE_BITS − 12),
// (nr + 1) << …). OFFSET(mem_section.section_mem_map) holds the section's
// map pointer with flag bits in its low bits (bit 0: present); the kernel
// stores it "encoded", minus the section's first pfn times SIZE(page), so
// that the struct page of any pfn in the section lies at encoded + pfn ×
// SIZE(page). The six low bits are flags and are masked off: 6.1 uses bits
// 0–4 (present, has map, online, early, zone-device taint), later kernels
// add one more; the encoded pointer is a multiple of 64 because the map is
// a page-aligned allocation and the section's first pfn times SIZE(page)
// is a multiple of 64.
//
// # The rules, per page, in order
//
// A page whose compound_head word has bit 0 set is the tail of a compound
// page: it is decided by its head (a head whose class is left out takes its
// whole 1 << order range with it); a tail whose head was kept is kept.
//
// The head of a compound page has the PG_head_mask bits of flags set; its
// order and whether it is a hugetlbfs page are read from the first tail's
// struct page:
//   - 6.9 and later (NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE) exported): order is
//     the low byte of the first tail's flags (folio._flags_1); hugetlb when
//     the head's _mapcount equals the exported value;
//   - 6.6–6.8 (NUMBER(PG_hugetlb)): same order; hugetlb when the first
//     tail's flags have PG_hugetlb;
//   - before (OFFSET(page.compound_order), OFFSET(page.compound_dtor), as on
//     6.1): bytes at those offsets of the first tail; hugetlb when the
//     destructor byte equals NUMBER(HUGETLB_PAGE_DTOR).
//
// An order above 63 or a head not aligned to its order is taken as order
// 0 (makedumpfile's rule); above MaxCompoundOrder it is also counted as an
// anomaly.
//
// Page types live in _mapcount. Up to 6.11 a type was a cleared bit in a
// value near −1 (6.1: buddy −129, offline −257), and before 6.10 slab pages
// had the PG_slab flag; since 6.12 the type is a value in the top byte (0xf0 buddy,
// 0xf4 hugetlb, 0xf5 slab, 0xf1 offline) and VMCOREINFO exports each type
// as that exact 32-bit value (PAGE_BUDDY_MAPCOUNT_VALUE = −268435456). The
// lower 24 bits are unused by these four types, so on every kernel a page
// has a type exactly when its _mapcount equals the exported value.
// makedumpfile 1.7.2 predates the 6.12 encoding and misses the slab type:
// 6.12 slab pages whose word at the mapping offset is odd are taken for
// anonymous memory and left out as user data, though slab pages hold the
// kernel objects (tasks among them) every consumer reads; pageclass
// compares exactly. A page is slab when PG_slab is set (if exported) or its _mapcount equals
// NUMBER(PAGE_SLAB_MAPCOUNT_VALUE) (6.10+).
//
//   - free (16): not slab and _mapcount == PAGE_BUDDY_MAPCOUNT_VALUE; the
//     buddy block is 1 << private pages. An order ≥ LENGTH(zone.free_area)
//     or a block not aligned to its order is an anomaly: the page is kept.
//   - cache (2): PG_lru set, or PG_swapcache with PG_swapbacked (or
//     PG_swapcache alone on kernels without PG_swapbacked); not PG_private,
//     not anonymous.
//   - private cache (4): the same without the PG_private condition; with 4
//     and not 2 the non-private ones go too, counted as cache.
//   - user (8): anonymous (bit 0 of mapping set, not slab) or a hugetlbfs
//     head.
//   - hwpoison: PG_hwpoison set (a kernel that exports no PG_hwpoison has
//     none).
//   - offline: not slab and _mapcount == PAGE_OFFLINE_MAPCOUNT_VALUE.
//
// A key a requested class needs that VMCOREINFO lacks is an error naming
// the key and the level bit: pageclass never guesses a layout.
//
// # Bounds
//
// Only pfns inside the given RAM ranges are decided (the bitmap covers up
// to the last RAM page). A section map that cannot be read is counted as
// an anomaly and its pages are kept. Nothing read from the dump sizes an
// allocation: struct pages are read 8192 at a time, into one buffer per
// core.
//
// # On all cores
//
// The struct page array (1/64 of memory) is read and decided by one
// worker per core, each over runs of consecutive chunks; the result is
// the one a single pass in pfn order gives (see classify).
package pageclass

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sync"

	"ldx/elfcore"

	"ldx/vmcoreinfo"
)

// Level is makedumpfile's dump level: a mask of the classes left out.
type Level uint8

// The dump level bits.
const (
	Zero         Level = 1
	Cache        Level = 2
	CachePrivate Level = 4
	User         Level = 8
	Free         Level = 16
	All          Level = 31
)

// Class is what a left-out page is.
type Class uint8

// Classes of left-out pages; Kept is a page that stays.
const (
	Kept Class = iota
	ClassCache
	ClassCachePrivate
	ClassUser
	ClassFree
	ClassHWPoison
	ClassOffline
	numClasses
)

var classNames = [numClasses]string{"kept", "cache", "cache_private", "user", "free", "hwpoison", "offline"}

func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Counts are pages left out per class.
type Counts struct {
	Cache        uint64 `json:"cache"`
	CachePrivate uint64 `json:"cache_private"`
	User         uint64 `json:"user"`
	Free         uint64 `json:"free"`
	HWPoison     uint64 `json:"hwpoison"`
	Offline      uint64 `json:"offline"`
}

// Total is the number of pages left out.
func (c Counts) Total() uint64 {
	return c.Cache + c.CachePrivate + c.User + c.Free + c.HWPoison + c.Offline
}

func (c *Counts) add(cl Class, n uint64) {
	switch cl {
	case ClassCache:
		c.Cache += n
	case ClassCachePrivate:
		c.CachePrivate += n
	case ClassUser:
		c.User += n
	case ClassFree:
		c.Free += n
	case ClassHWPoison:
		c.HWPoison += n
	case ClassOffline:
		c.Offline += n
	}
}

// MaxCompoundOrder is the largest compound order believed: 1 GiB hugetlb
// pages are order 18.
const MaxCompoundOrder = 20

// maxAnomalyNotes bounds how many anomalies are described in Result.Notes.
const maxAnomalyNotes = 8

// Result is the set of pages a dump level leaves out.
type Result struct {
	Level Level
	// MaxPFN is one past the last pfn decided.
	MaxPFN uint64
	Counts Counts
	// Anomalies counts struct pages that made no sense (orders out of
	// range, unreadable section maps); such pages are kept. Notes
	// describe the first few.
	Anomalies uint64
	Notes     []string
	bits      []uint64
}

// Excluded reports whether the page at pfn is left out.
func (r *Result) Excluded(pfn uint64) bool {
	if r == nil || pfn >= r.MaxPFN {
		return false
	}
	return r.bits[pfn/64]&(1<<(pfn%64)) != 0
}

func (r *Result) set(pfn uint64) bool {
	w, b := pfn/64, uint64(1)<<(pfn%64)
	if r.bits[w]&b != 0 {
		return false
	}
	r.bits[w] |= b
	return true
}

func (r *Result) anomaly(format string, a ...any) {
	r.Anomalies++
	if len(r.Notes) < maxAnomalyNotes {
		r.Notes = append(r.Notes, fmt.Sprintf(format, a...))
	}
}

const pageShift = 12

// layout is what VMCOREINFO says about struct page, resolved once.
type layout struct {
	size                               uint64
	flags, mapcount, private, mapping  uint64
	compoundHead                       uint64
	hasMapcount, hasPrivate, hasHead   bool
	headMask                           uint64
	lru, privateBit, swapcache, swapbk int64 // bit numbers, -1 absent
	slabBit, hwpoison, hugetlbBit      int64
	buddy, offline, slabType, hugeType int64 // exact _mapcount values; hasX says present
	hasBuddy, hasOffline, hasSlabType  bool
	hasHugeType                        bool
	orderOff, dtorOff                  uint64
	hasOrderOff, hasDtorOff            bool
	hugetlbDtor                        int64
	hasHugetlbDtor                     bool
	freeOrders                         uint64
}

// missing is the error for a key a requested class needs.
func missing(key string, bit Level, class string) error {
	return fmt.Errorf("pageclass: VMCOREINFO lacks %s, needed to leave out %s (dump level bit %d); choose a level without it", key, class, bit)
}

func readLayout(info *vmcoreinfo.Info, level Level) (*layout, error) {
	l := &layout{lru: -1, privateBit: -1, swapcache: -1, swapbk: -1, slabBit: -1, hwpoison: -1, hugetlbBit: -1}
	var ok bool
	if l.size, ok = info.Size("page"); !ok {
		return nil, fmt.Errorf("pageclass: VMCOREINFO lacks SIZE(page), needed for any dump level above 1")
	}
	if l.size < 16 || l.size > 256 {
		return nil, fmt.Errorf("pageclass: VMCOREINFO SIZE(page) = %d, expected 16..256", l.size)
	}
	if l.flags, ok = info.Offset("page.flags"); !ok {
		return nil, fmt.Errorf("pageclass: VMCOREINFO lacks OFFSET(page.flags), needed for any dump level above 1")
	}
	l.mapcount, l.hasMapcount = info.Offset("page._mapcount")
	l.private, l.hasPrivate = info.Offset("page.private")
	l.compoundHead, l.hasHead = info.Offset("page.compound_head")
	mapping, hasMapping := info.Offset("page.mapping")
	l.mapping = mapping
	num := func(name string) int64 {
		if v, ok := info.Number(name); ok && v >= 0 && v < 64 {
			return v
		}
		return -1
	}
	l.lru, l.privateBit, l.swapcache, l.swapbk = num("PG_lru"), num("PG_private"), num("PG_swapcache"), num("PG_swapbacked")
	l.slabBit, l.hwpoison, l.hugetlbBit = num("PG_slab"), num("PG_hwpoison"), num("PG_hugetlb")
	if v, ok := info.Number("PG_head_mask"); ok {
		l.headMask = uint64(v)
	}
	l.buddy, l.hasBuddy = info.Number("PAGE_BUDDY_MAPCOUNT_VALUE")
	l.offline, l.hasOffline = info.Number("PAGE_OFFLINE_MAPCOUNT_VALUE")
	l.slabType, l.hasSlabType = info.Number("PAGE_SLAB_MAPCOUNT_VALUE")
	l.hugeType, l.hasHugeType = info.Number("PAGE_HUGETLB_MAPCOUNT_VALUE")
	l.orderOff, l.hasOrderOff = info.Offset("page.compound_order")
	l.dtorOff, l.hasDtorOff = info.Offset("page.compound_dtor")
	l.hugetlbDtor, l.hasHugetlbDtor = info.Number("HUGETLB_PAGE_DTOR")
	l.freeOrders, _ = info.Length("zone.free_area")

	for _, off := range []struct {
		v   uint64
		ok  bool
		key string
	}{{l.flags, true, "page.flags"}, {l.mapcount, l.hasMapcount, "page._mapcount"}, {l.private, l.hasPrivate, "page.private"},
		{l.compoundHead, l.hasHead, "page.compound_head"}, {mapping, hasMapping, "page.mapping"}} {
		if off.ok && off.v+8 > l.size && !(off.key == "page._mapcount" && off.v+4 <= l.size) {
			return nil, fmt.Errorf("pageclass: VMCOREINFO OFFSET(%s) = %d lies outside SIZE(page) = %d", off.key, off.v, l.size)
		}
	}
	if l.hasOrderOff && l.orderOff >= l.size || l.hasDtorOff && l.dtorOff >= l.size {
		return nil, fmt.Errorf("pageclass: VMCOREINFO OFFSET(page.compound_order/compound_dtor) lies outside SIZE(page) = %d", l.size)
	}
	slab := l.slabBit >= 0 || l.hasSlabType
	const slabKeys = "NUMBER(PG_slab) or NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)"
	compound := func(bit Level, class string) error {
		if l.headMask == 0 {
			return missing("NUMBER(PG_head_mask)", bit, class)
		}
		if !l.hasHead {
			return missing("OFFSET(page.compound_head)", bit, class)
		}
		return nil
	}
	if level&Free != 0 {
		switch {
		case !l.hasMapcount:
			return nil, missing("OFFSET(page._mapcount)", Free, "free pages")
		case !l.hasPrivate:
			return nil, missing("OFFSET(page.private)", Free, "free pages")
		case !l.hasBuddy:
			return nil, missing("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", Free, "free pages")
		case !slab:
			return nil, missing(slabKeys, Free, "free pages")
		case l.freeOrders == 0 || l.freeOrders > 64:
			return nil, missing("LENGTH(zone.free_area)", Free, "free pages")
		}
		if err := compound(Free, "free pages"); err != nil {
			return nil, err
		}
	}
	for _, c := range []struct {
		bit  Level
		name string
	}{{Cache, "page cache"}, {CachePrivate, "private page cache"}} {
		if level&c.bit == 0 {
			continue
		}
		switch {
		case l.lru < 0:
			return nil, missing("NUMBER(PG_lru)", c.bit, c.name)
		case l.privateBit < 0:
			return nil, missing("NUMBER(PG_private)", c.bit, c.name)
		case l.swapcache < 0:
			return nil, missing("NUMBER(PG_swapcache)", c.bit, c.name)
		case !hasMapping:
			return nil, missing("OFFSET(page.mapping)", c.bit, c.name)
		case !slab:
			return nil, missing(slabKeys, c.bit, c.name)
		}
		if err := compound(c.bit, c.name); err != nil {
			return nil, err
		}
	}
	if level&User != 0 {
		switch {
		case !hasMapping:
			return nil, missing("OFFSET(page.mapping)", User, "user data")
		case !slab:
			return nil, missing(slabKeys, User, "user data")
		case !l.hasMapcount && l.hasHugeType:
			return nil, missing("OFFSET(page._mapcount)", User, "user data")
		case !l.hasHugeType && l.hugetlbBit < 0 && !(l.hasOrderOff && l.hasDtorOff && l.hasHugetlbDtor):
			return nil, missing("NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE), NUMBER(PG_hugetlb) or OFFSET(page.compound_order)+OFFSET(page.compound_dtor)+NUMBER(HUGETLB_PAGE_DTOR)", User, "user data (hugetlbfs pages)")
		}
		if err := compound(User, "user data"); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *layout) isSlab(flags uint64, mapcount int32) bool {
	if l.hasSlabType && int64(mapcount) == l.slabType {
		return true
	}
	return l.slabBit >= 0 && flags&(1<<l.slabBit) != 0
}

func bit(flags uint64, n int64) bool { return n >= 0 && flags&(1<<n) != 0 }

// page is the fields of one struct page.
type page struct {
	flags, mapping, private, head uint64
	mapcount                      int32
}

func (l *layout) decode(b []byte) page {
	p := page{flags: le64(b, l.flags)}
	p.mapping = le64(b, l.mapping)
	if l.hasPrivate {
		p.private = le64(b, l.private)
	}
	if l.hasHead {
		p.head = le64(b, l.compoundHead)
	}
	if l.hasMapcount {
		p.mapcount = int32(binary.LittleEndian.Uint32(b[l.mapcount:]))
	}
	return p
}

func le64(b []byte, off uint64) uint64 {
	if off+8 > uint64(len(b)) {
		return 0
	}
	return binary.LittleEndian.Uint64(b[off:])
}

// compound returns a head's order and whether it is a hugetlbfs page;
// next is the first tail's struct page, nil when not read.
func (l *layout) compound(p page, next []byte) (order uint64, hugetlb bool) {
	if next == nil {
		return 0, false
	}
	switch {
	case l.hasHugeType:
		return le64(next, l.flags) & 0xff, l.hasMapcount && int64(p.mapcount) == l.hugeType
	case l.hugetlbBit >= 0:
		f1 := le64(next, l.flags)
		return f1 & 0xff, f1&(1<<l.hugetlbBit) != 0
	}
	if l.hasOrderOff {
		order = uint64(next[l.orderOff])
	}
	if l.hasDtorOff && l.hasHugetlbDtor {
		hugetlb = int64(next[l.dtorOff]) == l.hugetlbDtor
	}
	return order, hugetlb
}

// classify decides one page that is not a compound tail: its class under
// level and how many pages (1 << order) the decision covers.
func (l *layout) classify(level Level, p page, order uint64, hugetlb bool) (Class, uint64, string) {
	slab := l.isSlab(p.flags, p.mapcount)
	anon := p.mapping&1 != 0 && !slab
	cache := bit(p.flags, l.lru) || bit(p.flags, l.swapcache) && (l.swapbk < 0 || bit(p.flags, l.swapbk))
	switch {
	case level&Free != 0 && !slab && int64(p.mapcount) == l.buddy:
		if p.private >= l.freeOrders {
			return Kept, 1, fmt.Sprintf("free page order %d, the kernel has %d orders", p.private, l.freeOrders)
		}
		return ClassFree, p.private, ""
	case level&Cache != 0 && cache && !bit(p.flags, l.privateBit) && !anon:
		return ClassCache, order, ""
	case level&CachePrivate != 0 && cache && !anon:
		if bit(p.flags, l.privateBit) {
			return ClassCachePrivate, order, ""
		}
		return ClassCache, order, ""
	case level&User != 0 && (anon || hugetlb):
		return ClassUser, order, ""
	case bit(p.flags, l.hwpoison):
		return ClassHWPoison, order, ""
	case l.hasOffline && l.hasMapcount && !slab && int64(p.mapcount) == l.offline:
		return ClassOffline, order, ""
	}
	return Kept, 0, ""
}

// chunkPages is how many struct pages are read at once.
const chunkPages = 8192

// Classify decides which pages of ram (physical ranges, sorted) level
// leaves out, reading the kernel's struct page array through mem (kernel
// virtual memory, e.g. a *kmem.Mem). The Zero bit is ignored here: zero
// pages are decided by content by whoever reads the pages. Level 0 or 1
// returns an empty Result without reading anything.
func Classify(ctx context.Context, mem io.ReaderAt, info *vmcoreinfo.Info, level Level, ram []elfcore.Range) (*Result, error) {
	return ClassifyProgress(ctx, mem, info, level, ram, nil)
}

// ClassifyProgress is Classify reporting, after each chunk of struct
// pages, how many bytes of memory (pfns × page size, up to the last RAM
// page) have been decided out of the total: on a TiB machine the struct
// page array is some 16 GiB to read. progress is called from one
// goroutine at a time.
func ClassifyProgress(ctx context.Context, mem io.ReaderAt, info *vmcoreinfo.Info, level Level, ram []elfcore.Range, progress func(done, total int64)) (*Result, error) {
	return classify(ctx, mem, info, level, ram, progress, tuning{workers: runtime.GOMAXPROCS(0), chunk: chunkPages})
}

// tuning is how the work is cut: tests use small chunks and many
// workers to put block boundaries everywhere.
type tuning struct {
	workers int
	chunk   uint64 // struct pages read at once
	group   int    // chunks per unit of work (0: chosen from the size)
}

// chunk is one read of struct pages: pfns [first, first+n) of section s.
type chunk struct {
	s        section
	first, n uint64
}

// part is what one run over consecutive chunks decided: its bits go
// straight into Result's bitmap (a part's pfns are whole bitmap words),
// the bits of blocks reaching past its last pfn are kept as spills.
type part struct {
	counts    Counts
	anomalies uint64
	notes     []string
	skipUntil uint64 // where the run's skipping ended
	spills    []spill
}

type spill struct {
	start, end uint64
	cl         Class
}

func (p *part) anomaly(format string, a ...any) {
	p.anomalies++
	if len(p.notes) < maxAnomalyNotes {
		p.notes = append(p.notes, fmt.Sprintf(format, a...))
	}
}

// The struct pages are read and decided on all cores. The work is cut
// into runs of whole chunks; each run starts as if no block of an
// earlier run reached into it. A head or buddy decides a naturally
// aligned block of 1 << order pages and the pages it covers are skipped,
// so that is what a run starting in the middle of such a block would get
// wrong: when the runs are put together in order and an earlier run's
// last block reaches into the next run, that run is done again from
// where the block ends (rare: only blocks larger than a chunk, 32 MiB,
// cross). The result, anomalies and notes included, is the one a single
// pass in pfn order gives.
func classify(ctx context.Context, mem io.ReaderAt, info *vmcoreinfo.Info, level Level, ram []elfcore.Range, progress func(done, total int64), tn tuning) (*Result, error) {
	res := &Result{Level: level}
	for _, r := range ram {
		res.MaxPFN = max(res.MaxPFN, (r.End+(1<<pageShift)-1)>>pageShift)
	}
	if level&^Zero == 0 || len(ram) == 0 {
		res.MaxPFN = 0
		return res, nil
	}
	if level > All {
		return nil, fmt.Errorf("pageclass: dump level %d out of range 0..31", level)
	}
	l, err := readLayout(info, level)
	if err != nil {
		return nil, err
	}
	secs, err := sections(mem, info, res)
	if err != nil {
		return nil, err
	}
	res.bits = make([]uint64, (res.MaxPFN+63)/64)
	var chunks []chunk
	for _, s := range secs {
		start, end := s.first, min(s.first+s.pages, res.MaxPFN)
		for c := start; c < end; c += tn.chunk {
			chunks = append(chunks, chunk{s: s, first: c, n: min(tn.chunk, end-c)})
		}
	}
	workers := max(tn.workers, 1)
	group := tn.group
	if group <= 0 {
		// Four runs per worker balance the load; at most 64 chunks
		// (2 GiB of memory) a run keep the results small.
		group = min(max(len(chunks)/(4*workers), 1), 64)
	}
	// A run starts only on a bitmap word (a multiple of 64 pfns, as every
	// chunk of a real kernel's 32768-page sections does), so that no two
	// runs set bits in the same word.
	var runs [][]chunk
	from := 0
	for i := range chunks {
		if i-from >= group && chunks[i].first%64 == 0 {
			runs = append(runs, chunks[from:i])
			from = i
		}
	}
	if from < len(chunks) {
		runs = append(runs, chunks[from:])
	}
	parts := make([]*part, len(runs))
	total := int64(res.MaxPFN << pageShift)
	var mu sync.Mutex // progress
	var done uint64
	report := func(n uint64) {
		if progress == nil {
			return
		}
		mu.Lock()
		done += n
		progress(min(int64(done<<pageShift), total), total)
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range min(workers, len(runs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, (tn.chunk+1)*l.size)
			for i := range next {
				p, err := l.run(ctx, mem, level, res, ram, runs[i], 0, buf, report)
				if err != nil {
					errs <- err
					cancel()
					return
				}
				parts[i] = p
			}
		}()
	}
feed:
	for i := range runs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var carry uint64
	var spills []spill
	buf := make([]byte, (tn.chunk+1)*l.size)
	for i, rc := range runs {
		p := parts[i]
		if first := rc[0].first; carry > first {
			// An earlier block reaches into this run: do it again,
			// skipping what that block decided.
			last := rc[len(rc)-1]
			clear(res.bits[first/64 : (last.first+last.n+63)/64])
			if p, err = l.run(ctx, mem, level, res, ram, rc, carry, buf, nil); err != nil {
				return nil, err
			}
		}
		res.Counts.addAll(p.counts)
		res.Anomalies += p.anomalies
		for _, n := range p.notes {
			if len(res.Notes) < maxAnomalyNotes {
				res.Notes = append(res.Notes, n)
			}
		}
		spills = append(spills, p.spills...)
		carry = p.skipUntil
	}
	inRAM := ramIndex(ram)
	for _, sp := range spills {
		for q := sp.start; q < sp.end; q++ {
			if inRAM(q) && res.set(q) {
				res.Counts.add(sp.cl, 1)
			}
		}
	}
	if progress != nil {
		progress(total, total)
	}
	return res, nil
}

func (c *Counts) addAll(o Counts) {
	c.Cache += o.Cache
	c.CachePrivate += o.CachePrivate
	c.User += o.User
	c.Free += o.Free
	c.HWPoison += o.HWPoison
	c.Offline += o.Offline
}

// run decides the pages of consecutive chunks in pfn order, skipping
// pfns below skipUntil. It sets res's bits for its own pfns only (no
// other run shares their bitmap words); a block reaching past its last
// chunk leaves the rest as a spill.
func (l *layout) run(ctx context.Context, mem io.ReaderAt, level Level, res *Result, ram []elfcore.Range, chunks []chunk, skipUntil uint64, buf []byte, report func(uint64)) (*part, error) {
	p := &part{}
	end := chunks[len(chunks)-1].first + chunks[len(chunks)-1].n
	inRAM := ramIndex(ram)
	for _, ch := range chunks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s, c, n := ch.s, ch.first, ch.n
		want := n
		if c+n < s.first+s.pages {
			want++ // the first tail of a head at the chunk's end
		}
		b := buf[:want*l.size]
		_, err := mem.ReadAt(b, int64(s.memMap+c*l.size))
		if err != nil && want > n {
			// The next section's first struct page may be what failed.
			want, b = n, b[:n*l.size]
			_, err = mem.ReadAt(b, int64(s.memMap+c*l.size))
		}
		if err != nil {
			p.anomaly("struct pages of pfns %#x–%#x unreadable at %#x: %v", c, c+n-1, s.memMap+c*l.size, err)
			if report != nil {
				report(n)
			}
			continue
		}
		for i := range n {
			pfn := c + i
			if pfn < skipUntil || !inRAM(pfn) {
				continue
			}
			sp := b[i*l.size : (i+1)*l.size]
			pg := l.decode(sp)
			if l.hasHead && pg.head&1 != 0 {
				continue // a tail whose head kept it
			}
			var order uint64
			var hugetlb bool
			if l.headMask != 0 && pg.flags&l.headMask != 0 && i+1 < want {
				order, hugetlb = l.compound(pg, b[(i+1)*l.size:(i+2)*l.size])
				if order > MaxCompoundOrder && order < 64 {
					p.anomaly("pfn %#x: compound order %d", pfn, order)
				}
				if order > MaxCompoundOrder || pfn&(1<<order-1) != 0 {
					order = 0
				}
			}
			cl, ord, bad := l.classify(level, pg, order, hugetlb)
			if bad != "" {
				p.anomaly("pfn %#x: %s", pfn, bad)
			}
			if cl == Kept {
				continue
			}
			if cl == ClassFree && pfn&(1<<ord-1) != 0 {
				p.anomaly("pfn %#x: free block of order %d not aligned", pfn, ord)
				continue
			}
			last := min(pfn+1<<ord, res.MaxPFN)
			for q := pfn; q < min(last, end); q++ {
				if inRAM(q) && res.set(q) {
					p.counts.add(cl, 1)
				}
			}
			if last > end {
				p.spills = append(p.spills, spill{end, last, cl})
			}
			skipUntil = last
		}
		if report != nil {
			report(n)
		}
	}
	p.skipUntil = skipUntil
	return p, nil
}

// ramIndex returns a membership test for sorted ranges, fast for the
// ascending queries Classify makes.
func ramIndex(ram []elfcore.Range) func(pfn uint64) bool {
	i := 0
	return func(pfn uint64) bool {
		pa := pfn << pageShift
		if i < len(ram) && pa < ram[i].Start {
			i = 0
		}
		for i < len(ram) && ram[i].End <= pa {
			i++
		}
		return i < len(ram) && ram[i].Start <= pa
	}
}

// section is one present memory section: its first pfn, its page count
// and the decoded address of the struct page of pfn 0 relative to it
// (struct page of pfn = memMap + pfn × SIZE(page)).
type section struct {
	first, pages, memMap uint64
}

// sectionFlagMask covers the flag bits of section_mem_map.
const sectionFlagMask = 1<<6 - 1

func sections(mem io.ReaderAt, info *vmcoreinfo.Info, res *Result) ([]section, error) {
	root, ok1 := info.Symbol("mem_section")
	roots, ok2 := info.Length("mem_section")
	size, ok3 := info.Size("mem_section")
	off, ok4 := info.Offset("mem_section.section_mem_map")
	sbits, ok5 := info.Number("SECTION_SIZE_BITS")
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return nil, fmt.Errorf("pageclass: VMCOREINFO lacks the SPARSEMEM keys (SYMBOL/LENGTH/SIZE(mem_section), OFFSET(mem_section.section_mem_map), NUMBER(SECTION_SIZE_BITS)), needed for any dump level above 1")
	}
	const pageSize = 1 << pageShift
	if size == 0 || size > pageSize || off+8 > size || sbits < pageShift || sbits > 40 || roots == 0 || roots > 1<<20 {
		return nil, fmt.Errorf("pageclass: implausible SPARSEMEM layout in VMCOREINFO (mem_section size %d, section_mem_map at %d, %d roots, section bits %d)", size, off, roots, sbits)
	}
	perRoot := pageSize / size
	pagesPer := uint64(1) << (uint64(sbits) - pageShift)
	rootTab := make([]byte, roots*8)
	if _, err := mem.ReadAt(rootTab, int64(root)); err != nil {
		return nil, fmt.Errorf("pageclass: reading the %d mem_section roots at %#x: %w", roots, root, err)
	}
	var out []section
	tab := make([]byte, perRoot*size)
	for r := range roots {
		if (r*perRoot)*pagesPer >= res.MaxPFN {
			break
		}
		p := binary.LittleEndian.Uint64(rootTab[r*8:])
		if p == 0 {
			continue
		}
		if _, err := mem.ReadAt(tab, int64(p)); err != nil {
			res.anomaly("mem_section root %d at %#x unreadable: %v", r, p, err)
			continue
		}
		for i := range perRoot {
			smm := binary.LittleEndian.Uint64(tab[i*size+off:])
			if smm&1 == 0 {
				continue
			}
			first := (r*perRoot + i) * pagesPer
			if first >= res.MaxPFN {
				break
			}
			out = append(out, section{first: first, pages: pagesPer, memMap: smm &^ sectionFlagMask})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pageclass: no present SPARSEMEM section below pfn %#x", res.MaxPFN)
	}
	return out, nil
}
