package kmodtest

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"

	"ldx/kmod/manifest"
)

// SyntheticOptions shapes a synthetic kernel (NewSynthetic).
type SyntheticOptions struct {
	// MemSize is the guest's memory size; default 64 MiB, minimum 48 MiB.
	// Above 3 GiB the RAM is split around a PCI hole like QEMU's pc.
	MemSize uint64
	// CPUs is the number of present CPUs; default 2.
	CPUs int
	// KASLROffset is the kernel text's virtual KASLR offset (KERNELOFFSET).
	KASLROffset uint64
	// Release is OSRELEASE; default "6.1.0-ldx-synthetic".
	Release string
	// Seed varies the memory pattern (SyntheticPage).
	Seed uint64
}

// NewSynthetic returns a Kernel with synthetic memory laid out like a small
// QEMU pc guest: System RAM [0x1000, 0x9fc00) and [1 MiB, MemSize-128 KiB)
// (hole and high RAM above 3 GiB), kernel text at 16 MiB (16 MiB long),
// the boot-time VMCOREINFO note in a zeroed page at 3/4 of memory, the
// per-CPU crash_notes in zeroed pages from 1/2 of memory, and every other
// page holding SyntheticPage (every fourth page zero, as real memory has
// plenty). The VMCOREINFO text has the key order and value formats of a
// real 6.2 kernel (3.1–3.2 KB), with _stext, phys_base and KERNELOFFSET
// consistent with the layout, so truncation (K-1) loses the same keys as
// on real kernels.
func NewSynthetic(o SyntheticOptions) *Kernel {
	if o.MemSize == 0 {
		o.MemSize = 64 << 20
	}
	o.MemSize = max(o.MemSize, 48<<20) &^ (PageSize - 1)
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.Release == "" {
		o.Release = "6.1.0-ldx-synthetic"
	}
	ram := []manifest.Range{{Start: 0x1000, End: 0x9fc00}}
	if o.MemSize <= 3<<30 {
		ram = append(ram, manifest.Range{Start: RAMStart, End: o.MemSize - 0x20000})
	} else {
		ram = append(ram, manifest.Range{Start: RAMStart, End: 0xbffe0000},
			manifest.Range{Start: 1 << 32, End: 1<<32 + o.MemSize - 3<<30})
	}
	k := &Kernel{
		RAM:            ram,
		MaxPFN:         ram[len(ram)-1].End / PageSize,
		TextPhys:       16 << 20,
		TextVirt:       0xffffffff81000000 + o.KASLROffset,
		TextSize:       16 << 20,
		PageOffsetBase: PageOffset4Level,
		CPUs:           o.CPUs,
		LeaderPid:      15,
	}
	k.IP = k.TextVirt + 0x1a2b30
	k.VMCOREINFO = SyntheticVMCOREINFO(o.Release, k.TextVirt, k.PhysBase(), false)
	k.VMCOREINFONote = (o.MemSize * 3 / 4) &^ (PageSize - 1)
	mem := &SyntheticMem{Seed: o.Seed}
	mem.Patches = append(mem.Patches, Patch{k.VMCOREINFONote, append(vmcoreinfoNote(k.VMCOREINFO), make([]byte, 12)...)})
	pcpu := (o.MemSize / 2) &^ (2<<20 - 1)
	for cpu := range o.CPUs {
		// alloc_percpu zeroes crash_notes; nothing writes them before a
		// crash or a livedump START.
		a := pcpu + uint64(cpu)*0x40000 + 0x12340
		k.CrashNotes = append(k.CrashNotes, a)
		mem.Patches = append(mem.Patches, Patch{a, make([]byte, NoteBufSize)})
	}
	k.Mem = mem
	return k
}

// Patch is data at a physical address of SyntheticMem; the pages it
// touches read as zeros apart from it.
type Patch struct {
	Addr uint64
	Data []byte
}

// SyntheticMem is physical memory made up on the fly: every page holds
// SyntheticPage(Seed, pfn), except the pages Patches touch. It is endless,
// so it costs nothing however large the guest.
type SyntheticMem struct {
	Seed    uint64
	Patches []Patch
}

// SyntheticPage fills dst (one page) with the synthetic memory of pfn:
// zeros when pfn%4 == 3, else a pattern naming the pfn in every 32 bytes.
func SyntheticPage(dst []byte, seed, pfn uint64) {
	if pfn%4 == 3 {
		clear(dst)
		return
	}
	stamp(dst, memTag, seed, pfn)
}

// IsSyntheticPage reports whether page is exactly SyntheticPage(seed, pfn).
func IsSyntheticPage(page []byte, seed, pfn uint64) bool {
	var want [PageSize]byte
	SyntheticPage(want[:], seed, pfn)
	return string(page) == string(want[:])
}

// ReadAt implements io.ReaderAt.
func (m *SyntheticMem) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("kmodtest: negative offset %d", off)
	}
	var page [PageSize]byte
	lo, hi := uint64(off), uint64(off)+uint64(len(p))
	for a := lo; a < hi; {
		pfn := a / PageSize
		pstart := pfn * PageSize
		if m.patched(pstart) {
			clear(page[:])
		} else {
			SyntheticPage(page[:], m.Seed, pfn)
		}
		end := min(pstart+PageSize, hi)
		copy(p[a-lo:end-lo], page[a-pstart:end-pstart])
		a = end
	}
	for _, pt := range m.Patches {
		plo, phi := pt.Addr, pt.Addr+uint64(len(pt.Data))
		if s, e := max(lo, plo), min(hi, phi); s < e {
			copy(p[s-lo:e-lo], pt.Data[s-plo:e-plo])
		}
	}
	return len(p), nil
}

var _ io.ReaderAt = (*SyntheticMem)(nil)

func (m *SyntheticMem) patched(page uint64) bool {
	for _, pt := range m.Patches {
		if pt.Addr < page+PageSize && pt.Addr+uint64(len(pt.Data)) > page {
			return true
		}
	}
	return false
}

// SyntheticVMCOREINFO returns a boot-time VMCOREINFO text (no CRASHTIME)
// with the keys, order and value formats of an x86_64 6.2 kernel (package livedump, "Page 1: the notes"),
// taken from a real one and rebased: image symbols follow textVirt
// (= _stext = _text), the direct-map one follows the default
// page_offset_base, NUMBER(phys_base) is physBase printed as %ld,
// KERNELOFFSET is textVirt - 0xffffffff81000000.
func SyntheticVMCOREINFO(release string, textVirt, physBase uint64, la57 bool) []byte {
	l5 := "0"
	if la57 {
		l5 = "1"
	}
	var id [20]byte
	binary.LittleEndian.PutUint64(id[:], textVirt^0x6c6478)
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(vmcoreinfoTemplate), "\n") {
		key, v, _ := strings.Cut(line, "=")
		switch {
		case v == "$release":
			v = release
		case v == "$buildid":
			v = fmt.Sprintf("%x", id)
		case v == "$physbase":
			v = strconv.FormatInt(int64(physBase), 10)
		case v == "$kerneloffset":
			v = strconv.FormatUint(textVirt-0xffffffff81000000, 16)
		case v == "$l5":
			v = l5
		case v[0] == '@':
			off, _ := strconv.ParseUint(v[1:], 16, 64)
			v = strconv.FormatUint(textVirt+off, 16)
		case v[0] == '#':
			off, _ := strconv.ParseUint(v[1:], 16, 64)
			v = strconv.FormatUint(PageOffset4Level+off, 16)
		}
		b.WriteString(key + "=" + v + "\n")
	}
	return []byte(b.String())
}

// vmcoreinfoTemplate is the VMCOREINFO of a Fedora 6.2.15 kernel (the
// sample the livedump notes' size table uses, S = 3289 bytes without
// CRASHTIME), with image symbols as @offset from _stext,
// direct-map symbols as #offset from page_offset_base and per-boot values
// as $names.
const vmcoreinfoTemplate = `
OSRELEASE=$release
BUILD-ID=$buildid
PAGESIZE=4096
SYMBOL(init_uts_ns)=@22b8160
OFFSET(uts_namespace.name)=0
SYMBOL(node_online_map)=@231a760
SYMBOL(swapper_pg_dir)=@2010000
SYMBOL(_stext)=@0
SYMBOL(vmap_area_list)=@21cab10
SYMBOL(mem_section)=#5f7cd000
LENGTH(mem_section)=4096
SIZE(mem_section)=32
OFFSET(mem_section.section_mem_map)=0
NUMBER(SECTION_SIZE_BITS)=27
NUMBER(MAX_PHYSMEM_BITS)=46
SIZE(page)=64
SIZE(pglist_data)=175168
SIZE(zone)=1728
SIZE(free_area)=104
SIZE(list_head)=16
SIZE(nodemask_t)=128
OFFSET(page.flags)=0
OFFSET(page._refcount)=52
OFFSET(page.mapping)=24
OFFSET(page.lru)=8
OFFSET(page._mapcount)=48
OFFSET(page.private)=40
OFFSET(page.compound_dtor)=16
OFFSET(page.compound_order)=17
OFFSET(page.compound_head)=8
OFFSET(pglist_data.node_zones)=0
OFFSET(pglist_data.nr_zones)=172512
OFFSET(pglist_data.node_start_pfn)=172520
OFFSET(pglist_data.node_spanned_pages)=172536
OFFSET(pglist_data.node_id)=172544
OFFSET(zone.free_area)=256
OFFSET(zone.vm_stat)=1536
OFFSET(zone.spanned_pages)=144
OFFSET(free_area.free_list)=0
OFFSET(list_head.next)=0
OFFSET(list_head.prev)=8
OFFSET(vmap_area.va_start)=0
OFFSET(vmap_area.list)=40
LENGTH(zone.free_area)=11
SYMBOL(prb)=@2064760
SYMBOL(printk_rb_static)=@2064780
SYMBOL(clear_seq)=@3990300
SIZE(printk_ringbuffer)=88
OFFSET(printk_ringbuffer.desc_ring)=0
OFFSET(printk_ringbuffer.text_data_ring)=48
OFFSET(printk_ringbuffer.fail)=80
SIZE(prb_desc_ring)=48
OFFSET(prb_desc_ring.count_bits)=0
OFFSET(prb_desc_ring.descs)=8
OFFSET(prb_desc_ring.infos)=16
OFFSET(prb_desc_ring.head_id)=24
OFFSET(prb_desc_ring.tail_id)=32
SIZE(prb_desc)=24
OFFSET(prb_desc.state_var)=0
OFFSET(prb_desc.text_blk_lpos)=8
SIZE(prb_data_blk_lpos)=16
OFFSET(prb_data_blk_lpos.begin)=0
OFFSET(prb_data_blk_lpos.next)=8
SIZE(printk_info)=88
OFFSET(printk_info.seq)=0
OFFSET(printk_info.ts_nsec)=8
OFFSET(printk_info.text_len)=16
OFFSET(printk_info.caller_id)=20
OFFSET(printk_info.dev_info)=24
SIZE(dev_printk_info)=64
OFFSET(dev_printk_info.subsystem)=0
LENGTH(printk_info_subsystem)=16
OFFSET(dev_printk_info.device)=16
LENGTH(printk_info_device)=48
SIZE(prb_data_ring)=32
OFFSET(prb_data_ring.size_bits)=0
OFFSET(prb_data_ring.data)=8
OFFSET(prb_data_ring.head_lpos)=16
OFFSET(prb_data_ring.tail_lpos)=24
SIZE(atomic_long_t)=8
OFFSET(atomic_long_t.counter)=0
SIZE(latched_seq)=24
OFFSET(latched_seq.val)=8
LENGTH(free_area.free_list)=6
NUMBER(NR_FREE_PAGES)=0
NUMBER(PG_lru)=4
NUMBER(PG_private)=13
NUMBER(PG_swapcache)=10
NUMBER(PG_swapbacked)=19
NUMBER(PG_slab)=9
NUMBER(PG_hwpoison)=23
NUMBER(PG_head_mask)=65536
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
NUMBER(HUGETLB_PAGE_DTOR)=2
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257
SYMBOL(kallsyms_names)=@154a988
SYMBOL(kallsyms_num_syms)=@154a980
SYMBOL(kallsyms_token_table)=@1839ed0
SYMBOL(kallsyms_token_index)=@183a298
SYMBOL(kallsyms_offsets)=@14847b8
SYMBOL(kallsyms_relative_base)=@154a978
NUMBER(phys_base)=$physbase
SYMBOL(init_top_pgt)=@2010000
NUMBER(pgtable_l5_enabled)=$l5
SYMBOL(node_data)=@2315820
LENGTH(node_data)=1024
KERNELOFFSET=$kerneloffset
NUMBER(KERNEL_IMAGE_SIZE)=1073741824
NUMBER(sme_mask)=0
`
