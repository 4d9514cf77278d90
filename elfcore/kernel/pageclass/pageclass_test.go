package pageclass

import (
	"context"
	"encoding/binary"
	"fmt"
	"ldx/elfcore"
	"slices"
	"strings"
	"testing"

	"ldx/vmcoreinfo"
)

// The VMCOREINFO keys of the two kernel generations, as Debian's 6.1 and
// 6.12 cloud kernels export them (struct page layout, flag bits, types).
const (
	common = `PAGESIZE=4096
SYMBOL(mem_section)=ffff888000100000
LENGTH(mem_section)=1
SIZE(mem_section)=16
OFFSET(mem_section.section_mem_map)=0
NUMBER(SECTION_SIZE_BITS)=18
SIZE(page)=64
OFFSET(page.flags)=0
OFFSET(page._refcount)=52
OFFSET(page.mapping)=24
OFFSET(page.lru)=8
OFFSET(page._mapcount)=48
OFFSET(page.private)=40
OFFSET(page.compound_head)=8
LENGTH(zone.free_area)=11
NUMBER(PG_swapcache)=10
`
	info61 = common + `OFFSET(page.compound_dtor)=16
OFFSET(page.compound_order)=17
NUMBER(PG_lru)=4
NUMBER(PG_private)=13
NUMBER(PG_swapbacked)=19
NUMBER(PG_slab)=9
NUMBER(PG_head_mask)=65536
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
NUMBER(HUGETLB_PAGE_DTOR)=2
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257
`
	info612 = common + `NUMBER(PG_lru)=5
NUMBER(PG_private)=14
NUMBER(PG_swapbacked)=17
NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=-184549376
NUMBER(PG_hwpoison)=20
NUMBER(PG_head_mask)=64
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-268435456
NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)=-201326592
NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-251658240
`
)

const (
	rootVA   = 0xffff888000100000
	tableVA  = 0xffff888000200000
	memMapVA = 0xffffea0000000000
	nPages   = 64 // one section of 2^18 bytes
)

// fakeMem is kernel virtual memory made of a few regions.
type fakeMem map[uint64][]byte

func (m fakeMem) ReadAt(p []byte, off int64) (int, error) {
	for base, b := range m {
		if uint64(off) >= base && uint64(off)+uint64(len(p)) <= base+uint64(len(b)) {
			return copy(p, b[uint64(off)-base:]), nil
		}
	}
	return 0, fmt.Errorf("unmapped %#x+%d", off, len(p))
}

// sp is one struct page as test data.
type sp struct {
	flags, mapping, private, head uint64
	mapcount                      int32
	order, dtor                   uint8 // 6.1: bytes 17 and 16 (first tail)
}

// kernel builds the memory of a one-section kernel whose struct pages are
// pages (pfn → fields; the rest zero, _mapcount −1 as the kernel keeps it).
func kernel(pages map[uint64]sp) fakeMem {
	root := make([]byte, 8)
	binary.LittleEndian.PutUint64(root, tableVA)
	table := make([]byte, 4096)
	binary.LittleEndian.PutUint64(table, memMapVA|0x7) // present, has map, online
	mm := make([]byte, nPages*64)
	for pfn := range uint64(nPages) {
		p := pages[pfn]
		b := mm[pfn*64:]
		binary.LittleEndian.PutUint64(b[0:], p.flags)
		binary.LittleEndian.PutUint64(b[8:], p.head)
		if p.order != 0 || p.dtor != 0 {
			b[16], b[17] = p.dtor, p.order
		}
		binary.LittleEndian.PutUint64(b[24:], p.mapping)
		binary.LittleEndian.PutUint64(b[40:], p.private)
		mc := p.mapcount
		if _, ok := pages[pfn]; !ok || mc == 0 {
			mc = -1
		}
		binary.LittleEndian.PutUint32(b[48:], uint32(mc))
	}
	return fakeMem{rootVA: root, tableVA: table, memMapVA: mm}
}

func tail(head uint64) sp { return sp{head: memMapVA + head*64 | 1} }

func info(t testing.TB, text string) *vmcoreinfo.Info {
	in, err := vmcoreinfo.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

var ram = []elfcore.Range{{Start: 0, End: nPages * 4096}}

// excluded lists the excluded pfns of a result.
func excluded(r *Result) []uint64 {
	var out []uint64
	for pfn := range uint64(nPages) {
		if r.Excluded(pfn) {
			out = append(out, pfn)
		}
	}
	return out
}

func pfns(ranges ...[2]uint64) []uint64 {
	var out []uint64
	for _, r := range ranges {
		for p := r[0]; p < r[1]; p++ {
			out = append(out, p)
		}
	}
	return out
}

// A 6.1 kernel: page types are cleared bits near −1, slab is a flag,
// compound order and destructor are bytes of the first tail.
var pages61 = map[uint64]sp{
	1:  {flags: 1 << 4},                            // LRU: cache
	2:  {flags: 1<<4 | 1<<13},                      // LRU, private: private cache
	3:  {flags: 1 << 4, mapping: 0xffff888001001},  // anonymous on the LRU: user
	4:  {mapcount: -129, private: 2},               // buddy of order 2: 4–7 free
	8:  {flags: 1<<16 | 1<<4, mapping: 0xffff8880}, // head of an order-3 cache folio
	9:  {head: memMapVA + 8*64 | 1, order: 3},
	10: tail(8), 11: tail(8), 12: tail(8), 13: tail(8), 14: tail(8), 15: tail(8),
	16: {flags: 1 << 16}, // hugetlb head, order 2
	17: {head: memMapVA + 16*64 | 1, order: 2, dtor: 2},
	18: tail(16), 19: tail(16),
	20: {flags: 1 << 9, mapping: 0xffff888002001}, // slab: kept
	21: {flags: 1 << 9, mapcount: -129},           // slab: not buddy
	22: {mapcount: -257},                          // offline
	24: {mapcount: -129, private: 11},             // order beyond free_area: anomaly
	25: {mapcount: -129, private: 1},              // unaligned block: anomaly
	26: {flags: 1<<10 | 1<<19},                    // swap cache: cache
	27: {flags: 1 << 10},                          // swapcache bit without swapbacked: kept
	28: {flags: 1 << 16},                          // compound head with a kept class: tails kept
	29: tail(28),
	32: {mapcount: -129, private: 5}, // 32–63 free
}

// A 6.12 kernel: page types are exact values in _mapcount's top byte,
// slab is a type, hugetlb a type of the head with the order in the first
// tail's flags.
var pages612 = map[uint64]sp{
	1:  {flags: 1 << 5},                                  // LRU: cache
	2:  {flags: 1<<5 | 1<<14},                            // private cache
	3:  {flags: 1 << 5, mapping: 0xffff888001001},        // user
	4:  {mapcount: -268435456, private: 2},               // buddy 4–7
	8:  {mapcount: -184549376, mapping: 0xffff888003001}, // slab with an odd word where mapping is: kept
	9:  {mapcount: -268435456 + 1, private: 0},           // not exactly buddy: kept
	10: {flags: 1 << 20},                                 // hwpoison
	11: {mapcount: -251658240},                           // offline
	12: {flags: 1 << 6, mapcount: -201326592},            // hugetlb head
	13: {head: memMapVA + 12*64 | 1, flags: 2},           // order 2 in _flags_1
	14: tail(12), 15: tail(12),
	16: {flags: 1<<6 | 1<<5}, // cache folio, order 3
	17: {head: memMapVA + 16*64 | 1, flags: 3},
	18: tail(16), 19: tail(16), 20: tail(16), 21: tail(16), 22: tail(16), 23: tail(16),
	24: {flags: 1<<6 | 1<<5}, // order 40 head: anomaly, order 0
	25: {head: memMapVA + 24*64 | 1, flags: 40},
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		info  string
		pages map[uint64]sp
		level Level
		want  []uint64
		count Counts
		anom  uint64
	}{
		{"6.1 level 31", info61, pages61, 31,
			pfns([2]uint64{1, 20}, [2]uint64{22, 23}, [2]uint64{26, 27}, [2]uint64{32, 64}),
			Counts{Cache: 1 + 8 + 1, CachePrivate: 1, User: 1 + 4, Free: 4 + 32, Offline: 1}, 2},
		{"6.1 level 2", info61, pages61, 2,
			pfns([2]uint64{1, 2}, [2]uint64{8, 16}, [2]uint64{22, 23}, [2]uint64{26, 27}),
			Counts{Cache: 1 + 8 + 1, Offline: 1}, 0},
		{"6.1 level 4 takes non-private cache too", info61, pages61, 4,
			pfns([2]uint64{1, 3}, [2]uint64{8, 16}, [2]uint64{22, 23}, [2]uint64{26, 27}),
			Counts{Cache: 1 + 8 + 1, CachePrivate: 1, Offline: 1}, 0},
		{"6.1 level 8", info61, pages61, 8,
			pfns([2]uint64{3, 4}, [2]uint64{16, 20}, [2]uint64{22, 23}),
			Counts{User: 5, Offline: 1}, 0},
		{"6.1 level 16", info61, pages61, 16,
			pfns([2]uint64{4, 8}, [2]uint64{22, 23}, [2]uint64{32, 64}),
			Counts{Free: 36, Offline: 1}, 2},
		{"6.12 level 31", info612, pages612, 31,
			pfns([2]uint64{1, 8}, [2]uint64{10, 25}),
			Counts{Cache: 1 + 8 + 1, CachePrivate: 1, User: 1 + 4, Free: 4, HWPoison: 1, Offline: 1}, 1},
		{"6.12 level 16", info612, pages612, 16,
			pfns([2]uint64{4, 8}, [2]uint64{10, 12}),
			Counts{Free: 4, HWPoison: 1, Offline: 1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Classify(context.Background(), kernel(tc.pages), info(t, tc.info), tc.level, ram)
			if err != nil {
				t.Fatal(err)
			}
			if got := excluded(res); !slices.Equal(got, tc.want) {
				t.Errorf("excluded %v\nwant     %v", got, tc.want)
			}
			if res.Counts != tc.count {
				t.Errorf("counts %+v, want %+v", res.Counts, tc.count)
			}
			if res.Anomalies != tc.anom {
				t.Errorf("%d anomalies (%q), want %d", res.Anomalies, res.Notes, tc.anom)
			}
		})
	}
}

// A key a requested class needs is refused by name and level bit; a level
// that does not need it works.
func TestClassifyMissingKey(t *testing.T) {
	for _, tc := range []struct {
		drop  string
		level Level
		want  string // "" for success
	}{
		{"NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", 16, "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE), needed to leave out free pages (dump level bit 16)"},
		{"NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)", 2, ""},
		{"NUMBER(PG_lru)", 4, "NUMBER(PG_lru), needed to leave out private page cache (dump level bit 4)"},
		{"NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)", 8, "needed to leave out user data (hugetlbfs pages) (dump level bit 8)"},
		{"NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)", 16, "NUMBER(PG_slab) or NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)"},
		{"SIZE(page)", 2, "SIZE(page)"},
		{"SYMBOL(mem_section)", 16, "SPARSEMEM keys"},
		{"NUMBER(PG_head_mask)", 8, "NUMBER(PG_head_mask)"},
	} {
		in := info(t, info612)
		if in.Delete(tc.drop) != 1 {
			t.Fatalf("no %s to drop", tc.drop)
		}
		_, err := Classify(context.Background(), kernel(pages612), in, tc.level, ram)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("without %s, level %d: %v", tc.drop, tc.level, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("without %s, level %d: error %v, want one naming %q", tc.drop, tc.level, err, tc.want)
		}
	}
}

// Levels 0 and 1 read nothing; pages outside RAM are never decided; an
// unreadable section map is an anomaly with its pages kept.
func TestClassifyBounds(t *testing.T) {
	res, err := Classify(context.Background(), fakeMem{}, &vmcoreinfo.Info{}, Zero, ram)
	if err != nil || res.Excluded(4) || res.Counts.Total() != 0 {
		t.Errorf("level 1: %v, %+v", err, res)
	}
	res, err = Classify(context.Background(), kernel(pages612), info(t, info612), 16, []elfcore.Range{{Start: 0, End: 6 * 4096}})
	if err != nil {
		t.Fatal(err)
	}
	if got := excluded(res); !slices.Equal(got, []uint64{4, 5}) {
		t.Errorf("with RAM up to pfn 6, excluded %v", got)
	}
	m := kernel(pages612)
	delete(m, uint64(memMapVA))
	res, err = Classify(context.Background(), m, info(t, info612), 31, ram)
	if err != nil {
		t.Fatal(err)
	}
	if res.Anomalies != 1 || len(excluded(res)) != 0 {
		t.Errorf("unreadable map: %d anomalies %q, excluded %v", res.Anomalies, res.Notes, excluded(res))
	}
	if _, err := Classify(context.Background(), m, info(t, info612), 32, ram); err == nil {
		t.Error("level 32 accepted")
	}
}

// Progress rises to the total, which is the memory up to the last RAM page.
func TestClassifyProgress(t *testing.T) {
	var last, total int64 = -1, 0
	_, err := ClassifyProgress(context.Background(), kernel(pages61), info(t, info61), 31, ram, func(d, tot int64) {
		if d < last || d > tot {
			t.Errorf("progress %d of %d after %d", d, tot, last)
		}
		last, total = d, tot
	})
	if err != nil || last != total || total != nPages*4096 {
		t.Errorf("progress ended at %d of %d: %v", last, total, err)
	}
}
