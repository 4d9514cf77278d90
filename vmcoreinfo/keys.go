package vmcoreinfo

import (
	"fmt"
	"ldx/vmcoreinfo/consumer"
	"strconv"
	"strings"
)

// Keys with their own names, and the family keys the consumers depend on
// most (package verify, rows D1–D15).
const (
	KeyOSRelease    = "OSRELEASE"
	KeyBuildID      = "BUILD-ID"
	KeyPageSize     = "PAGESIZE"
	KeyKernelOffset = "KERNELOFFSET"
	KeyCrashTime    = "CRASHTIME"

	KeySwapperPgDir     = "SYMBOL(swapper_pg_dir)"
	KeyInitTopPgt       = "SYMBOL(init_top_pgt)"
	KeyInitLevel4Pgt    = "SYMBOL(init_level4_pgt)" // before 4.13
	KeyStext            = "SYMBOL(_stext)"
	KeyInitUtsNs        = "SYMBOL(init_uts_ns)"
	KeyUtsNamespaceName = "OFFSET(uts_namespace.name)"
	KeyPhysBase         = "NUMBER(phys_base)"
	KeyPgtableL5        = "NUMBER(pgtable_l5_enabled)"
	KeySmeMask          = "NUMBER(sme_mask)"
	KeyKernelImageSize  = "NUMBER(KERNEL_IMAGE_SIZE)"
	KeyMemSection       = "SYMBOL(mem_section)"
	KeyPrb              = "SYMBOL(prb)"
	KeyVmallocStart     = "NUMBER(VMALLOC_START)"
)

// Severity and Consumer are package consumer's, the one model of
// consumers ldx has; the names are repeated here because the key table
// below is written in them.
type (
	Severity = consumer.Severity
	Consumer = consumer.Consumer
)

const (
	Cosmetic = consumer.Cosmetic
	Degraded = consumer.Degraded
	Fatal    = consumer.Fatal

	Crash        = consumer.Crash
	Makedumpfile = consumer.Makedumpfile
	Drgn         = consumer.Drgn
	Libkdumpfile = consumer.Libkdumpfile
	VmcoreDmesg  = consumer.VmcoreDmesg
	AllConsumers = consumer.All
)

// Version is a kernel version taken from OSRELEASE.
type Version struct{ Major, Minor, Patch int }

// ParseVersion reads the leading "MAJOR.MINOR[.PATCH]" of a kernel release
// such as "6.2.15-100.fc36.x86_64".
func ParseVersion(release string) (Version, bool) {
	var v [3]int
	s := release
	for i := range v {
		n := 0
		for n < len(s) && n < 7 && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 || n == 7 {
			if i == 2 {
				break // no patch level: "6.2-rc1"
			}
			return Version{}, false
		}
		v[i], _ = strconv.Atoi(s[:n])
		s = s[n:]
		if i < 2 {
			if strings.HasPrefix(s, ".") {
				s = s[1:]
				continue
			}
			if i == 0 {
				return Version{}, false
			}
			break
		}
	}
	return Version{v[0], v[1], v[2]}, true
}

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// IsZero reports whether v is the zero Version.
func (v Version) IsZero() bool { return v == Version{} }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// KernelVersion returns the version in OSRELEASE.
func (in *Info) KernelVersion() (Version, bool) {
	rel, ok := in.Get(KeyOSRelease)
	if !ok {
		return Version{}, false
	}
	return ParseVersion(rel)
}

// Requirement says that Consumers need Key (or one of Alt) for Feature.
type Requirement struct {
	Key       string
	Alt       []string // alternatives: any one of Key and Alt satisfies it
	Consumers Consumer
	Severity  Severity // effect of its absence
	Feature   string   // what breaks without it
	Rule      string   // row of package verify's checklist ("D7", "F1")
	Since     Version  // first kernel that emits it; zero: all kernels of interest
}

func (r Requirement) String() string {
	keys := append([]string{r.Key}, r.Alt...)
	return fmt.Sprintf("%s (%s, %s: %s)", strings.Join(keys, " or "), r.Severity, r.Consumers, r.Feature)
}

// present reports whether in has r.Key or one of r.Alt.
func (r Requirement) present(in *Info) bool {
	if in.Has(r.Key) {
		return true
	}
	for _, k := range r.Alt {
		if in.Has(k) {
			return true
		}
	}
	return false
}

func req(sev Severity, c Consumer, rule, feature, key string) Requirement {
	return Requirement{Key: key, Consumers: c, Severity: sev, Feature: feature, Rule: rule}
}

func since(v Version, rs ...Requirement) []Requirement {
	for i := range rs {
		rs[i].Since = v
	}
	return rs
}

func reqs(sev Severity, c Consumer, rule, feature string, keys ...string) []Requirement {
	rs := make([]Requirement, len(keys))
	for i, k := range keys {
		rs[i] = req(sev, c, rule, feature, k)
	}
	return rs
}

func alt(r Requirement, keys ...string) Requirement { r.Alt = keys; return r }

var (
	v4_10 = Version{4, 10, 0}
	v5_9  = Version{5, 9, 0}
	v5_10 = Version{5, 10, 0}
	v5_13 = Version{5, 13, 0}
	v6_9  = Version{6, 9, 0}
)

// requirements is the key table. Order: identification, translation,
// makedumpfile memory model, printk.
var requirements = concat(
	// D3, D4: every consumer identifies the kernel and its page size.
	reqs(Fatal, Crash|Makedumpfile|Drgn|Libkdumpfile, "D3", "identify the kernel (makedumpfile: \"Invalid format\"; drgn: no valid OSRELEASE; crash --osrelease prints unknown)", KeyOSRelease),
	reqs(Fatal, Crash|Makedumpfile|Drgn, "D4", "page size (makedumpfile and drgn refuse to open; crash --log)", KeyPageSize),
	// D13: drgn matches the vmlinux by build ID.
	since(v5_9, reqs(Degraded, Drgn|Crash, "D13", "match the vmlinux by build ID (drgn falls back to OSRELEASE; crash 9 --build-id)", KeyBuildID)...),
	// D5–D9: KASLR and page-table translation.
	reqs(Fatal, Drgn, "D5", "page-table walks (drgn: \"VMCOREINFO does not contain valid swapper_pg_dir\")", KeySwapperPgDir),
	[]Requirement{alt(req(Fatal, Makedumpfile|Libkdumpfile, "D6", "page-table walks (makedumpfile vtop4_x86_64, libkdumpfile root table)", KeyInitTopPgt), KeyInitLevel4Pgt)},
	reqs(Fatal, Crash|Drgn|Makedumpfile, "D8", "KASLR relocation of the vmlinux (crash: \"vmlinux and DUMP do not match!\"; drgn bias)", KeyKernelOffset, KeyStext),
	since(v4_10, reqs(Fatal, Crash|Makedumpfile|Drgn|Libkdumpfile, "D7", "kernel-text translation (phys_base; fatal unless a kernel-image PT_LOAD lets tools derive it)", KeyPhysBase)...),
	reqs(Degraded, Crash|Makedumpfile|Drgn|Libkdumpfile, "D9", "4- or 5-level paging (fatal on LA57 hosts)", KeyPgtableL5),
	reqs(Degraded, Crash|Makedumpfile|Libkdumpfile, "D10", "SME bit stripped from PTEs", KeySmeMask),
	reqs(Degraded, Crash|Makedumpfile|Drgn, "D11", "kernel layout and sparsemem helpers (consumers fall back to defaults)",
		KeyKernelImageSize, "NUMBER(MAX_PHYSMEM_BITS)", "NUMBER(SECTION_SIZE_BITS)"),
	since(v6_9, reqs(Degraded, Crash|Makedumpfile, "D11", "first vmalloc address on 6.9+ kernels", KeyVmallocStart)...),
	// D12: makedumpfile builds the mem_map in initial() for -d N>1 and for
	// --dump-dmesg alike.
	reqs(Fatal, Makedumpfile, "D12", "makedumpfile -d and --dump-dmesg (check_release: \"Can't get the symbol of system_utsname.\")",
		KeyInitUtsNs, KeyUtsNamespaceName),
	reqs(Fatal, Makedumpfile, "D12", "makedumpfile -d and --dump-dmesg (get_mem_type, get_mem_section: \"Can't distinguish the memory type.\")",
		KeyMemSection, "LENGTH(mem_section)", "SIZE(mem_section)", "OFFSET(mem_section.section_mem_map)", "SYMBOL(node_online_map)",
		"SIZE(page)", "OFFSET(page.flags)", "OFFSET(page._refcount)", "OFFSET(page.mapping)", "OFFSET(page.lru)",
		"OFFSET(page._mapcount)", "OFFSET(page.private)", "OFFSET(page.compound_head)"),
	[]Requirement{alt(req(Degraded, Makedumpfile, "D12", "makedumpfile free-page filtering (-d 16)", "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)"), "NUMBER(PG_buddy)")},
	reqs(Degraded, Makedumpfile, "D12", "makedumpfile page-flag filtering (-d 2/4/8)",
		"NUMBER(PG_lru)", "NUMBER(PG_private)", "NUMBER(PG_swapcache)", "NUMBER(PG_swapbacked)", "NUMBER(PG_head_mask)"),
	// 6.10 made slab a page type: the kernel emits
	// NUMBER(PAGE_SLAB_MAPCOUNT_VALUE) instead of NUMBER(PG_slab), and
	// makedumpfile 1.7.6+ reads it.
	[]Requirement{alt(req(Degraded, Makedumpfile, "D12", "makedumpfile page-flag filtering (-d 2/4/8)", "NUMBER(PG_slab)"), "NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)")},
	// The lockless printk ring (5.10+, package printk). The core set is what makedumpfile
	// dump_lockless_dmesg and vmcore-dmesg dump_dmesg_lockless really read.
	since(v5_10, reqs(Fatal, Makedumpfile|VmcoreDmesg, "F1", "dmesg extraction (lockless ring)",
		KeyPrb, "SIZE(printk_ringbuffer)", "OFFSET(printk_ringbuffer.desc_ring)", "OFFSET(printk_ringbuffer.text_data_ring)",
		"SIZE(prb_desc_ring)", "OFFSET(prb_desc_ring.count_bits)", "OFFSET(prb_desc_ring.descs)", "OFFSET(prb_desc_ring.infos)",
		"OFFSET(prb_desc_ring.head_id)", "OFFSET(prb_desc_ring.tail_id)",
		"SIZE(prb_desc)", "OFFSET(prb_desc.state_var)", "OFFSET(prb_desc.text_blk_lpos)",
		"OFFSET(prb_data_blk_lpos.begin)", "OFFSET(prb_data_blk_lpos.next)",
		"SIZE(printk_info)", "OFFSET(printk_info.ts_nsec)", "OFFSET(printk_info.text_len)",
		"OFFSET(prb_data_ring.size_bits)", "OFFSET(prb_data_ring.data)", "OFFSET(atomic_long_t.counter)")...),
	since(v5_10, reqs(Degraded, VmcoreDmesg, "F2", "vmcore-dmesg locating the static ring", "SYMBOL(printk_rb_static)")...),
	since(v5_10, reqs(Cosmetic, Makedumpfile|VmcoreDmesg, "F1", "dmesg details (sequence numbers, caller ids, device info)",
		"OFFSET(printk_ringbuffer.fail)", "SIZE(prb_data_blk_lpos)", "OFFSET(printk_info.seq)", "OFFSET(printk_info.caller_id)",
		"OFFSET(printk_info.dev_info)", "SIZE(dev_printk_info)", "OFFSET(dev_printk_info.subsystem)", "OFFSET(dev_printk_info.device)",
		"LENGTH(printk_info_subsystem)", "LENGTH(printk_info_device)", "SIZE(prb_data_ring)",
		"OFFSET(prb_data_ring.head_lpos)", "OFFSET(prb_data_ring.tail_lpos)", "SIZE(atomic_long_t)")...),
	since(v5_10, reqs(Cosmetic, Makedumpfile, "F1", "makedumpfile --partial-dmesg", "SYMBOL(clear_seq)")...),
	since(v5_13, reqs(Cosmetic, Makedumpfile, "F1", "makedumpfile --partial-dmesg", "SIZE(latched_seq)", "OFFSET(latched_seq.val)")...),
)

func concat(parts ...[]Requirement) []Requirement {
	var all []Requirement
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// Requirements returns the table of keys the consumers need, most
// important first. Callers may modify the returned slice.
func Requirements() []Requirement {
	out := make([]Requirement, len(requirements))
	for i, r := range requirements {
		r.Alt = append([]string(nil), r.Alt...)
		out[i] = r
	}
	return out
}

// RequiredBy returns the requirements of any consumer in c.
func RequiredBy(c Consumer) []Requirement {
	var out []Requirement
	for _, r := range Requirements() {
		if r.Consumers&c != 0 {
			out = append(out, r)
		}
	}
	return out
}

// Missing returns the requirements of the consumers in c that in does not
// satisfy (neither Key nor any Alt is present). Requirements for keys a
// kernel older than their Since does not emit are skipped when OSRELEASE
// gives the version. Presence only: Lint reports malformed values.
func (in *Info) Missing(c Consumer) []Requirement {
	ver, haveVer := in.KernelVersion()
	var out []Requirement
	for _, r := range RequiredBy(c) {
		if haveVer && !r.Since.IsZero() && ver.Less(r.Since) {
			continue
		}
		if !r.present(in) {
			out = append(out, r)
		}
	}
	return out
}

// Lost returns the lines of full whose key does not occur in cut, in
// full's order: what a truncated note (K-1) lost compared with a complete
// copy of the text, such as the in-memory vmcoreinfo_note (see "What a
// cut note keeps" in the package documentation).
func Lost(full, cut *Info) []Line {
	have := make(map[string]bool, cut.Len())
	for _, l := range cut.lines {
		have[l.Key] = true
	}
	var out []Line
	for _, l := range full.lines {
		if !have[l.Key] {
			out = append(out, l)
		}
	}
	return out
}
