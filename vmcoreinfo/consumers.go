package vmcoreinfo

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// How each consumer parses a VMCOREINFO value: the readers of crash 8.0.2,
// makedumpfile 1.7.2 and drgn (0.0.22 as installed, later versions where
// they read more keys), re-expressed on top of the C conversions of
// cparse.go, and the table of which reader each consumer applies to which
// key. A value is given as the consumer sees it: the text after "KEY="
// up to the '\n' (a CR before the '\n' is part of it).

// Reading is what one consumer makes of one value.
type Reading struct {
	Consumer Consumer
	Key      string
	Value    string
	// Reader names the consumer function the rule mirrors.
	Reader string
	// Versions restricts the rule to some versions of the consumer
	// (">=0.0.27"); empty for every version.
	Versions string
	// NoVmlinux: only runs without a vmlinux read the key (crash --log).
	NoVmlinux bool
	// PresenceOnly: the consumer looks only at whether the key is there.
	PresenceOnly bool
	// Got is the value the consumer stores, as a 64-bit pattern; Signed
	// says to show it as a signed number.
	Got    uint64
	Signed bool
	// Err is non-empty when the consumer refuses the value and gives up;
	// it is what the consumer prints.
	Err string
	// Absent: the consumer takes the value for "not in VMCOREINFO"
	// (makedumpfile: a value equal to NOT_FOUND, -1).
	Absent bool
	// How says how Got came about ("dtol rejects 0x: UNUSED").
	How string
	// Misread is the effect of a value read differently from the
	// kernel's meaning.
	Misread Severity
}

// readFunc parses a value; it fills Got, Signed, Err, Absent and How.
type readFunc func(r *Reading, v string)

type readRule struct {
	consumer  Consumer
	reader    string
	fn        readFunc
	versions  string
	noVmlinux bool
	presence  bool
}

const (
	mdfVer   = "makedumpfile 1.7.2 "
	crashVer = "crash 8.0.2 "
	drgnVer  = "drgn "
)

// makedumpfile 1.7.2 read_vmcoreinfo_symbol: strtoul(v, &end, 16); 0,
// ULONG_MAX and trailing text are "Invalid data" and read_vmcoreinfo
// fails.
func mdfSymbol(r *Reading, v string) {
	n := Strtoul(v, 16)
	r.Got, r.How = n.Value, "strtoul base 16"
	switch {
	case n.End != len(v):
		r.Err, r.How = "Invalid data in …: "+r.Key+"="+v, fmt.Sprintf("strtoul base 16 stops at %q", v[n.End:])
	case n.Value == 0 || n.Value == math.MaxUint64:
		r.Err = "Invalid data in …: " + r.Key + "=" + v
		if n.Range {
			r.How = "strtoul base 16 overflows to ULONG_MAX"
		}
	}
}

// makedumpfile 1.7.2 read_vmcoreinfo_long (READ_NUMBER,
// READ_STRUCTURE_SIZE, READ_MEMBER_OFFSET, READ_ARRAY_LENGTH): strtol base
// 10, and when that leaves text, strtol base 16 (which takes a sign and
// 0x); LONG_MAX (also the clamp on overflow) or trailing text is "Invalid
// data". The macros then compare the result with NOT_FOUND (-1: the key
// counts as absent) and INVALID_STRUCTURE_DATA (-3: read_vmcoreinfo fails
// without a message).
func mdfLong(r *Reading, v string) {
	n := Strtol(v, 10)
	r.How = "strtol base 10"
	if n.End != len(v) {
		n = Strtol(v, 16)
		r.How = "hex fallback: strtol base 10 leaves text, base 16"
	}
	r.Got, r.Signed = n.Value, true
	switch {
	case n.End != len(v):
		r.Err, r.How = "Invalid data in …: "+r.Key+"="+v, fmt.Sprintf("strtol base 10 and base 16 both stop at %q", v[n.End:])
	case n.Int() == math.MaxInt64:
		r.Err = "Invalid data in …: " + r.Key + "=" + v
		if n.Range {
			r.How += " overflows to LONG_MAX"
		} else {
			r.How += " gives LONG_MAX"
		}
	case n.Int() == -3:
		r.Err, r.How = "nothing (read_vmcoreinfo fails silently)", r.How+" gives -3, INVALID_STRUCTURE_DATA"
	case n.Int() == -1:
		r.Absent, r.How = true, r.How+" gives -1, NOT_FOUND: the key counts as absent"
	}
}

// makedumpfile 1.7.2 read_vmcoreinfo_basic_info, PAGESIZE: strtol base 10
// (no hex fallback); 0, LONG_MAX or trailing text is "Invalid data", and
// set_page_size wants a power of two.
func mdfPageSize(r *Reading, v string) {
	n := Strtol(v, 10)
	r.Got, r.Signed, r.How = n.Value, true, "strtol base 10"
	switch {
	case n.End != len(v):
		r.Err, r.How = "Invalid data in …: PAGESIZE="+v, fmt.Sprintf("strtol base 10 stops at %q", v[n.End:])
	case n.Int() == 0 || n.Int() == math.MaxInt64:
		r.Err = "Invalid data in …: PAGESIZE=" + v
	case n.Int() < 0 || bits.OnesCount64(n.Value) != 1:
		r.Err = "Invalid page_size: " + strconv.FormatInt(n.Int(), 10)
	}
}

// makedumpfile 1.7.2 read_vmcoreinfo_basic_info, CRASHTIME: strtol base
// 10; 0, LONG_MAX or trailing text is "Invalid data".
func mdfCrashTime(r *Reading, v string) {
	n := Strtol(v, 10)
	r.Got, r.Signed, r.How = n.Value, true, "strtol base 10"
	switch {
	case n.End != len(v):
		r.Err, r.How = "Invalid data in …: CRASHTIME="+v, fmt.Sprintf("strtol base 10 stops at %q", v[n.End:])
	case n.Int() == 0 || n.Int() == math.MaxInt64:
		r.Err = "Invalid data in …: CRASHTIME=" + v
	}
}

// makedumpfile 1.7.2 get_kaslr_offset_x86_64 (and
// get_kaslr_offset_general): strtoul(v, &end, 16), end unchecked; the last
// KERNELOFFSET line wins.
func mdfKernelOffset(r *Reading, v string) {
	n := Strtoul(v, 16)
	r.Got, r.How = n.Value, "strtoul base 16, trailing text ignored"
}

// crash 8.0.2 dtol (tools.c), called QUIET or RETURN_ON_ERROR: leading
// blanks skipped, then only decimal digits, else UNUSED (-1 as ulong);
// sscanf("%lu") clamps an overflow to ULONG_MAX.
func crashDtol(v string) (uint64, string) {
	if v == "" {
		return math.MaxUint64, "dtol: empty: UNUSED"
	}
	s := strings.TrimLeft(v, " ")
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return math.MaxUint64, fmt.Sprintf("dtol: %q is not a digit: UNUSED", s[i])
		}
	}
	if s == "" {
		return math.MaxUint64, "dtol: no digits: UNUSED"
	}
	n := Strtoul(s, 10)
	if n.Range {
		return n.Value, "dtol: overflows to ULONG_MAX"
	}
	return n.Value, "dtol"
}

func crashDtolRule(r *Reading, v string) { r.Got, r.How = crashDtol(v) }

// crash 8.0.2 x86_64_calc_phys_base, NUMBER(phys_base): a leading '-'
// negates dtol of the rest, else dtol.
func crashPhysBase(r *Reading, v string) {
	r.Signed = true
	if strings.HasPrefix(v, "-") {
		n, how := crashDtol(v[1:])
		r.Got, r.How = -n, "'-' then "+how+", negated"
		return
	}
	r.Got, r.How = crashDtol(v)
}

// crash 8.0.2 htol (tools.c), RETURN_ON_ERROR or QUIET: one leading 0x
// skipped; more than 16 characters, or any character but a hex digit,
// 'x', 'X' and 'h' (skipped wherever they are), gives BADADDR (-1).
func crashHtol(r *Reading, v string) {
	s := v
	if hasHexPrefix(s) {
		s = s[2:]
	}
	if len(s) > 16 {
		r.Got, r.How = math.MaxUint64, "htol: longer than 16 characters: BADADDR"
		return
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 'x' || c == 'X' || c == 'h':
			continue
		case isHexDigit(c):
			n = n*16 + uint64(digitVal(c))
		default:
			r.Got, r.How = math.MaxUint64, fmt.Sprintf("htol: %q is not a hex digit: BADADDR", c)
			return
		}
	}
	r.Got, r.How = n, "htol"
}

// crash 8.0.2 x86_64_init, NUMBER(pgtable_l5_enabled): atoi.
func crashAtoi(r *Reading, v string) {
	r.Got, r.Signed, r.How = uint64(int64(Atoi(v))), true, "atoi: stops at the first non-digit"
}

// crash 8.0.2 x86_64_init, NUMBER(MAX_PHYSMEM_BITS): atol.
func crashAtol(r *Reading, v string) {
	r.Got, r.Signed, r.How = uint64(Atol(v)), true, "atol: stops at the first non-digit"
}

// drgn parse_vmcoreinfo_u64 (drgn_program_parse_vmcoreinfo):
// strtoull(value, &end, base); ERANGE is "number in VMCOREINFO is too
// large"; no digits, or end short of the newline, "number in VMCOREINFO
// is invalid". A '-' wraps modulo 2^64 without error.
func drgnU64(base int, check func(r *Reading)) readFunc {
	return func(r *Reading, v string) {
		n := Strtoul(v, base)
		r.Got, r.How = n.Value, fmt.Sprintf("strtoull base %d", base)
		switch {
		case n.Range:
			r.Err = "number in VMCOREINFO is too large"
		case n.End == 0 || n.End != len(v):
			r.Err = "number in VMCOREINFO is invalid"
			if n.End != 0 {
				r.How = fmt.Sprintf("strtoull base %d stops at %q", base, v[n.End:])
			}
		case check != nil:
			check(r)
		}
	}
}

// The checks drgn_program_parse_vmcoreinfo makes after the loop, and per
// key in later versions.
func drgnPageSize(r *Reading) {
	if r.Got == 0 || bits.OnesCount64(r.Got) != 1 {
		r.Err = "VMCOREINFO does not contain valid PAGESIZE"
	}
}

func drgnSwapper(r *Reading) {
	if r.Got == 0 {
		r.Err = "VMCOREINFO does not contain valid swapper_pg_dir"
	}
}

func drgnBits(name string) func(r *Reading) {
	return func(r *Reading) {
		if r.Got == 0 || r.Got > 64 {
			r.Err = name + " in VMCOREINFO is invalid"
		}
	}
}

func presence(r *Reading, v string) { r.How = "only its presence matters" }

// makedumpfile 1.7.2 read_vmcoreinfo: the keys it reads on x86_64 (the
// aarch64-only NUMBER()s are left out).
var (
	mdfSymbols = []string{"mem_map", "vmem_map", "mem_section", "pkmap_count", "pkmap_count_next",
		"system_utsname", "init_uts_ns", "_stext", "swapper_pg_dir", "init_level4_pgt", "level4_kernel_pgt",
		"init_top_pgt", "vmlist", "vmap_area_list", "node_online_map", "node_states", "node_data", "pgdat_list",
		"contig_page_data", "prb", "clear_seq", "log_buf", "log_buf_len", "log_end", "log_first_idx", "clear_idx",
		"log_next_idx", "max_pfn", "high_memory", "node_remap_start_vaddr", "node_remap_end_vaddr",
		"node_remap_start_pfn", "vmemmap_list", "mmu_psize_defs", "mmu_vmemmap_psize", "cpu_pgd",
		"demote_segment_4k", "cur_cpu_spec", "free_huge_page"}
	mdfSizes = []string{"page", "mem_section", "pglist_data", "zone", "free_area", "list_head", "node_memblk_s",
		"nodemask_t", "pageflags", "vmemmap_backing", "mmu_psize_def", "printk_log", "printk_ringbuffer",
		"prb_desc", "printk_info", "latched_seq", "log"}
	mdfOffsets = []string{"page.flags", "page._refcount", "page._count", "page.mapping", "page.lru", "page._mapcount",
		"page.private", "page.compound_dtor", "page.compound_order", "page.compound_head",
		"mem_section.section_mem_map", "pglist_data.node_zones", "pglist_data.nr_zones", "pglist_data.node_mem_map",
		"pglist_data.node_start_pfn", "pglist_data.node_spanned_pages", "pglist_data.pgdat_next",
		"zone.free_pages", "zone.free_area", "zone.vm_stat", "zone.spanned_pages", "free_area.free_list",
		"list_head.next", "list_head.prev", "node_memblk_s.start_paddr", "node_memblk_s.size", "node_memblk_s.nid",
		"vm_struct.addr", "vmap_area.va_start", "vmap_area.list", "vmemmap_backing.phys",
		"vmemmap_backing.virt_addr", "vmemmap_backing.list", "mmu_psize_def.shift", "cpu_spec.mmu_features",
		"uts_namespace.name",
		"printk_ringbuffer.desc_ring", "printk_ringbuffer.text_data_ring", "prb_desc_ring.count_bits",
		"prb_desc_ring.descs", "prb_desc_ring.infos", "prb_desc_ring.head_id", "prb_desc_ring.tail_id",
		"prb_desc.state_var", "prb_desc.text_blk_lpos", "prb_data_blk_lpos.begin", "prb_data_blk_lpos.next",
		"prb_data_ring.size_bits", "prb_data_ring.data", "printk_info.ts_nsec", "printk_info.text_len",
		"atomic_long_t.counter", "latched_seq.val",
		"printk_log.ts_nsec", "printk_log.len", "printk_log.text_len", "log.ts_nsec", "log.len", "log.text_len"}
	mdfLengths = []string{"node_data", "pgdat_list", "mem_section", "node_memblk", "zone.free_area",
		"free_area.free_list", "node_remap_start_pfn"}
	mdfNumbers = []string{"NR_FREE_PAGES", "N_ONLINE", "pgtable_l5_enabled", "sme_mask", "PG_lru", "PG_private",
		"PG_head_mask", "PG_swapcache", "PG_swapbacked", "PG_slab", "PG_buddy", "PG_hwpoison",
		"SECTION_SIZE_BITS", "MAX_PHYSMEM_BITS", "PAGE_BUDDY_MAPCOUNT_VALUE", "PAGE_OFFLINE_MAPCOUNT_VALUE",
		"phys_base", "KERNEL_IMAGE_SIZE", "HUGETLB_PAGE_DTOR"}
)

// readRules maps each key to the consumers' readers.
var readRules = buildReadRules()

func buildReadRules() map[string][]readRule {
	m := map[string][]readRule{}
	add := func(key string, r readRule) { m[key] = append(m[key], r) }
	mdf := func(reader string, fn readFunc) readRule {
		return readRule{consumer: Makedumpfile, reader: mdfVer + reader, fn: fn}
	}
	for _, s := range mdfSymbols {
		add(SymbolKey(s), mdf("read_vmcoreinfo_symbol", mdfSymbol))
	}
	for _, s := range mdfSizes {
		add(SizeKey(s), mdf("read_vmcoreinfo_long (READ_STRUCTURE_SIZE)", mdfLong))
	}
	for _, s := range mdfOffsets {
		add(OffsetKey(s), mdf("read_vmcoreinfo_long (READ_MEMBER_OFFSET)", mdfLong))
	}
	for _, s := range mdfLengths {
		add(LengthKey(s), mdf("read_vmcoreinfo_long (READ_ARRAY_LENGTH)", mdfLong))
	}
	for _, s := range mdfNumbers {
		add(NumberKey(s), mdf("read_vmcoreinfo_long (READ_NUMBER)", mdfLong))
	}
	add(KeyPageSize, mdf("read_vmcoreinfo_basic_info", mdfPageSize))
	add(KeyCrashTime, mdf("read_vmcoreinfo_basic_info", mdfCrashTime))
	add(KeyKernelOffset, mdf("get_kaslr_offset_x86_64", mdfKernelOffset))

	crash := func(reader string, fn readFunc) readRule {
		return readRule{consumer: Crash, reader: crashVer + reader, fn: fn}
	}
	add(KeyPhysBase, crash("x86_64_calc_phys_base (dtol)", crashPhysBase))
	add(KeyKernelImageSize, crash("x86_64_init (dtol)", crashDtolRule))
	add(KeySmeMask, crash("x86_64_init (dtol)", crashDtolRule))
	add(KeyPgtableL5, crash("x86_64_init (atoi)", crashAtoi))
	add("NUMBER(MAX_PHYSMEM_BITS)", crash("x86_64_init (atol)", crashAtol))
	add(KeyStext, crash("kaslr_init (htol)", crashHtol))
	r := crash("kaslr_init", presence)
	r.presence = true
	add(KeyKernelOffset, r)
	// crash 8.0.5 and later: first_vmalloc_address.
	r = readRule{consumer: Crash, reader: "crash first_vmalloc_address (htol)", fn: crashHtol, versions: ">=8.0.5"}
	add(KeyVmallocStart, r)
	// crash --log without a vmlinux: get_log_from_vmcoreinfo.
	logRule := func(fn readFunc, how string) readRule {
		return readRule{consumer: Crash, reader: crashVer + "get_log_from_vmcoreinfo (" + how + ")", fn: fn, noVmlinux: true}
	}
	add(KeyPageSize, logRule(crashAtoi, "atoi"))
	for _, s := range []string{"log_buf", "log_end", "log_buf_len", "logged_chars", "log_first_idx", "log_next_idx", "phys_base"} {
		add(SymbolKey(s), logRule(crashHtol, "htol"))
	}
	for _, s := range []string{"log.ts_nsec", "printk_log.ts_nsec", "log.len", "printk_log.len", "log.text_len",
		"printk_log.text_len", "log.dict_len", "printk_log.dict_len"} {
		add(OffsetKey(s), logRule(crashDtolRule, "dtol"))
	}
	add(SizeKey("log"), logRule(crashDtolRule, "dtol"))
	add(SizeKey("printk_log"), logRule(crashDtolRule, "dtol"))

	drgn := func(versions string, fn readFunc) readRule {
		return readRule{consumer: Drgn, reader: drgnVer + "drgn_program_parse_vmcoreinfo (parse_vmcoreinfo_u64)", fn: fn, versions: versions}
	}
	add(KeyPageSize, drgn("", drgnU64(0, drgnPageSize)))
	add(KeyKernelOffset, drgn("", drgnU64(16, nil)))
	add(KeySwapperPgDir, drgn("", drgnU64(16, drgnSwapper)))
	add("LENGTH(mem_section)", drgn("", drgnU64(0, nil)))
	add(KeyPgtableL5, drgn("", drgnU64(0, nil)))
	add("NUMBER(KERNELPACMASK)", drgn("", drgnU64(16, nil)))
	add("NUMBER(VA_BITS)", drgn("", drgnU64(0, nil)))
	add(KeyPhysBase, drgn(">=0.0.27", drgnU64(0, nil)))
	add("NUMBER(SECTION_SIZE_BITS)", drgn(">=0.0.33", drgnU64(0, drgnBits("SECTION_SIZE_BITS"))))
	add("NUMBER(MAX_PHYSMEM_BITS)", drgn(">=0.0.33", drgnU64(0, drgnBits("MAX_PHYSMEM_BITS"))))
	r = drgn(">=0.0.27", presence)
	r.reader, r.presence = drgnVer+"drgn_program_parse_vmcoreinfo", true
	add(KeyCrashTime, r)
	return m
}

// misreadSeverity is the effect of a consumer using a wrong value of key:
// fatal for the keys that steer address translation, else the effect of
// the key's absence (at least Degraded).
func misreadSeverity(key string) Severity {
	switch key {
	case KeyPhysBase, KeyPgtableL5, KeySmeMask, KeyKernelOffset, KeyPageSize, KeyStext,
		KeySwapperPgDir, KeyInitTopPgt, KeyInitLevel4Pgt, KeyMemSection:
		return Fatal
	}
	sev := Degraded
	for _, r := range requirements {
		if r.Key == key || slices.Contains(r.Alt, key) {
			sev = max(sev, r.Severity)
		}
	}
	return sev
}

// Readers returns the consumers (of crash, makedumpfile and drgn) that
// read key, with the versions that do ("" for all).
func Readers(key string) []Reading {
	var out []Reading
	for _, rr := range readRules[key] {
		out = append(out, Reading{Consumer: rr.consumer, Key: key, Reader: rr.reader, Versions: rr.versions,
			NoVmlinux: rr.noVmlinux, PresenceOnly: rr.presence})
	}
	return out
}

// ParseAll applies every consumer's reader for key to value.
func ParseAll(key, value string) []Reading {
	var out []Reading
	for _, rr := range readRules[key] {
		r := Reading{Consumer: rr.consumer, Key: key, Value: value, Reader: rr.reader, Versions: rr.versions,
			NoVmlinux: rr.noVmlinux, PresenceOnly: rr.presence, Misread: misreadSeverity(key)}
		rr.fn(&r, value)
		out = append(out, r)
	}
	return out
}

// ParseAs applies the reader of consumer c, in the version Debian 12
// ships (crash 8.0.2, makedumpfile 1.7.2, drgn 0.0.22), for key to value:
// the rule of runs with a vmlinux when there are several. ok is false when
// that version of c does not read key.
func ParseAs(c Consumer, key, value string) (r Reading, ok bool) {
	for _, r := range ParseAll(key, value) {
		// Rules with a version constraint are for later versions.
		if r.Consumer == c && !r.NoVmlinux && r.Versions == "" {
			return r, true
		}
	}
	return Reading{}, false
}

// KernelValue is what the kernel meant by a numeric value: the value read
// leniently (blanks and a CR trimmed, a leading '-' negating, 0x hex, hex
// digits for SYMBOL() and KERNELOFFSET, decimal otherwise — or hex when
// the digits can only be hex), as a 64-bit pattern. ok is false for a key
// whose value is not a number, or text that is no number at all.
func KernelValue(key, value string) (v uint64, ok bool) {
	kind := KindOf(key)
	if kind != HexValue && kind != UnsignedValue && kind != SignedValue {
		return 0, false
	}
	s := strings.TrimSpace(value)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	switch {
	case hasHexPrefix(s) || kind == HexValue:
		if hasHexPrefix(s) {
			s = s[2:]
		}
		if !allHex(s) || len(strings.TrimLeft(s, "0")) > 16 {
			return 0, false
		}
		v, _ = strconv.ParseUint(s, 16, 64)
	case s != "" && strings.Trim(s, "0123456789") == "":
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, false
		}
		v = u
	case allHex(s) && len(strings.TrimLeft(s, "0")) <= 16:
		v, _ = strconv.ParseUint(s, 16, 64)
	default:
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// Outcome classifies a Reading against the kernel's value.
type Outcome uint8

const (
	// ReadsRight: the consumer gets the kernel's value (or looks only at
	// presence).
	ReadsRight Outcome = iota
	// Misreads: the consumer goes on with another value.
	Misreads
	// TakesAbsent: the consumer treats the key as missing.
	TakesAbsent
	// Rejects: the consumer refuses the value and gives up.
	Rejects
)

// Assess compares r with the kernel's value of its key (want; haveWant
// false when the text has no kernel meaning) and returns the outcome and
// its severity (0 for ReadsRight).
func (r Reading) Assess(want uint64, haveWant bool) (Outcome, Severity) {
	switch {
	case r.PresenceOnly:
		return ReadsRight, 0
	case r.Err != "":
		return Rejects, Fatal
	case r.Absent:
		if haveWant && want == math.MaxUint64 {
			return ReadsRight, 0 // the kernel's own -1 is read the same way
		}
		return TakesAbsent, Degraded
	case !haveWant || r.Got != want:
		return Misreads, r.Misread
	}
	return ReadsRight, 0
}

// FormatGot shows the value a consumer got: signed or unsigned decimal,
// with hex beside it when that reads better; hex for hex keys.
func (r Reading) FormatGot() string {
	if KindOf(r.Key) == HexValue && !r.Signed {
		return fmt.Sprintf("%#x", r.Got)
	}
	if r.Signed {
		v := int64(r.Got)
		if v <= -0x10000 || v >= 0x10000 {
			if v < 0 {
				return fmt.Sprintf("%d (-%#x)", v, uint64(-v))
			}
			return fmt.Sprintf("%d (%#x)", v, v)
		}
		return strconv.FormatInt(v, 10)
	}
	if r.Got >= 0x10000 {
		return fmt.Sprintf("%d (%#x)", r.Got, r.Got)
	}
	return strconv.FormatUint(r.Got, 10)
}

// consumerLabel names the consumer with its versions.
func (r Reading) consumerLabel() string {
	s := r.Consumer.String()
	switch {
	case r.Versions != "":
		s += " " + r.Versions
	case r.Consumer == Drgn:
		s += " 0.0.22"
	case r.Consumer == Crash:
		s += " 8.0.2"
	case r.Consumer == Makedumpfile:
		s += " 1.7.2"
	}
	if r.NoVmlinux {
		s += " (--log, without a vmlinux)"
	}
	return s
}

// Describe says what the consumer makes of the value, e.g. "crash 8.0.2
// reads 1 (dtol: 'x' is not a digit: UNUSED, negated)".
func (r Reading) Describe() string {
	switch {
	case r.PresenceOnly:
		return r.consumerLabel() + " looks only at its presence"
	case r.Err != "":
		return fmt.Sprintf("%s rejects it (%s): prints %q", r.consumerLabel(), r.How, r.Err)
	case r.Absent:
		return fmt.Sprintf("%s treats it as absent (%s)", r.consumerLabel(), r.How)
	}
	return fmt.Sprintf("%s reads %s (%s)", r.consumerLabel(), r.FormatGot(), r.How)
}

// NotReadBy names the consumer versions that do not read a key some
// versions of them read (drgn before 0.0.27 and NUMBER(phys_base)).
func NotReadBy(rs []Reading) []string {
	var out []string
	for _, r := range rs {
		if strings.HasPrefix(r.Versions, ">=") {
			out = append(out, fmt.Sprintf("%s <%s does not read it", r.Consumer, r.Versions[2:]))
		}
	}
	return out
}
