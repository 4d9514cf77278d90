package kmodtest

import (
	_ "embed"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"ldx/elfcore"
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
	// Seed varies the memory pattern (syntheticPage).
	Seed uint64
}

// NewSynthetic returns a Kernel with synthetic memory laid out like a small
// QEMU pc guest: System RAM [0x1000, 0x9fc00) and [1 MiB, MemSize-128 KiB)
// (hole and high RAM above 3 GiB), kernel text at 16 MiB (16 MiB long),
// the boot-time VMCOREINFO note in a zeroed page at 3/4 of memory, the
// per-CPU crash_notes in zeroed pages from 1/2 of memory, and every other
// page holding syntheticPage (every fourth page zero, as real memory has
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
	ram := []elfcore.Range{{Start: 0x1000, End: 0x9fc00}}
	if o.MemSize <= 3<<30 {
		ram = append(ram, elfcore.Range{Start: RAMStart, End: o.MemSize - 0x20000})
	} else {
		ram = append(ram, elfcore.Range{Start: RAMStart, End: 0xbffe0000},
			elfcore.Range{Start: 1 << 32, End: 1<<32 + o.MemSize - 3<<30})
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

// isSyntheticPage reports whether page is exactly SyntheticPage(seed, pfn).
func isSyntheticPage(page []byte, seed, pfn uint64) bool {
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
// as $names. Tests that need a real kernel's key block (the printk ring's,
// say) take it from here through TemplateLines.
//
//go:embed testdata/vmcoreinfo-fedora-6.2.15.txt
var vmcoreinfoTemplate string

// TemplateLines returns the lines of the synthetic kernels' VMCOREINFO
// template from the line with key first to the line with key last, both
// included, with image symbols (@offset) placed at _stext = stext. It is
// the one copy of a real kernel's key blocks the tests share.
func TemplateLines(first, last string, stext uint64) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(strings.TrimSpace(vmcoreinfoTemplate), "\n") {
		key, v, _ := strings.Cut(line, "=")
		if key == first {
			in = true
		}
		if !in {
			continue
		}
		if strings.HasPrefix(v, "@") {
			off, _ := strconv.ParseUint(v[1:], 16, 64)
			v = strconv.FormatUint(stext+off, 16)
		}
		b.WriteString(key + "=" + v + "\n")
		if key == last {
			break
		}
	}
	return b.String()
}

// WriteSyntheticImage writes the device image of a synthetic kernel shaped
// by o for run to path (the tests' usual fixture); a run without a start
// time starts at a fixed one, so that images are reproducible.
func WriteSyntheticImage(path string, o SyntheticOptions, run *Run) (*Kernel, *Report, error) {
	k := NewSynthetic(o)
	if run.Start.IsZero() {
		run.Start = time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	}
	rep, err := WriteFile(path, k, run)
	return k, rep, err
}
