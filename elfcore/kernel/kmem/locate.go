package kmem

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
)

// ImageSymbols are the facts about a kernel image that Locate needs, all
// taken from its vmlinux at link time (no KASLR offset applied). kmem does
// not read vmlinux files itself: callers look these up.
type ImageSymbols struct {
	// Banner is the content of linux_banner ("Linux version …\n"),
	// with or without its NUL; BannerAddr its link-time address.
	Banner     []byte
	BannerAddr uint64
	// TopPgt is init_top_pgt, the root of the kernel's page tables.
	TopPgt uint64
	// Level4Pgt is level4_kernel_pgt, the P4D table of the kernel-image
	// mapping under 5-level paging; 0 when the kernel has none.
	Level4Pgt uint64
	// Level3Pgt is level3_kernel_pgt, the PUD table of the kernel image.
	Level3Pgt uint64
	// Level2Pgt is level2_kernel_pgt; 0 skips the check that
	// level3_kernel_pgt points at it.
	Level2Pgt uint64
	// PgtableL5 is __pgtable_l5_enabled (an unsigned int); 0 when the
	// kernel has no such variable (no 5-level support).
	PgtableL5 uint64
}

// Location is where a kernel image sits in a dump's physical memory and
// how it is mapped: the runtime values VMCOREINFO would carry as
// KERNELOFFSET, NUMBER(phys_base), NUMBER(pgtable_l5_enabled) and
// NUMBER(sme_mask).
type Location struct {
	KernelOffset uint64 // KASLR offset of the virtual image: runtime _text − link _text
	PhysBase     uint64 // phys_base: physical = virtual − __START_KERNEL_map + PhysBase (may wrap)
	L5           bool
	SMEMask      uint64 // the encryption bit seen in the page-table entries, 0 if none
	BannerPhys   uint64 // physical address of linux_banner, where the search found it
}

// Params returns the translation inputs for this location.
func (l *Location) Params(sym ImageSymbols) Params {
	return Params{PgtRoot: sym.TopPgt + l.KernelOffset, PhysBase: l.PhysBase, L5: l.L5, SMEMask: l.SMEMask}
}

const (
	// locateAlign is the step of the banner probe. The kernel image is
	// loaded at a physical address aligned to CONFIG_PHYSICAL_ALIGN and
	// its virtual address randomised in the same steps; on x86_64 that
	// alignment must be a multiple of 2 MiB (arch/x86/Kconfig), so the
	// banner's physical address is congruent to its link address modulo
	// 2 MiB.
	locateAlign = pmdSize
	// maxKernelOffset bounds a plausible KASLR offset: the image must fit
	// in the 1 GiB KERNEL_IMAGE_SIZE window above __START_KERNEL_map.
	maxKernelOffset = 1 << 30
	// scanChunk is the read size of the fallback streaming search.
	scanChunk = 4 << 20
	// maxCandidates bounds how many banner copies are tried.
	maxCandidates = 64
)

// Locate finds the KASLR offset, phys_base, paging depth and SME mask of
// a kernel from its physical memory alone, for dumps whose VMCOREINFO is
// lost. ram are the physical ranges [start, end) that may be read.
//
// The vmlinux's linux_banner bytes are looked for in RAM; a copy at
// physical address P fixes the sum KERNELOFFSET + phys_base, since every
// image address maps linearly (P = link + KERNELOFFSET −
// __START_KERNEL_map + phys_base). That sum places init_top_pgt and the
// kernel-image page tables in physical memory; the level2_kernel_pgt
// entry that maps P gives the banner's virtual address, hence
// KERNELOFFSET, and the split. init_top_pgt[511] pointing at
// level4_kernel_pgt rather than level3_kernel_pgt means 5-level paging.
// Every candidate is proven by translating the banner's virtual address
// through the page tables it implies and reading the banner back.
//
// The probe reads len(Banner) bytes every 2 MiB of RAM; only when that
// finds nothing does a streaming search read RAM in 4 MiB chunks for page-
// aligned copies. Two different proven locations are an error: a stale
// image of the same kernel (after kexec) cannot be told from the live one.
func Locate(ctx context.Context, phys io.ReaderAt, ram []elfcore.Range, sym ImageSymbols) (*Location, error) {
	banner := bytes.TrimRight(sym.Banner, "\x00")
	if len(banner) < 16 || !bytes.HasPrefix(banner, []byte("Linux version ")) {
		return nil, fmt.Errorf("kmem: locate: the banner %q is not a linux_banner (\"Linux version …\")", truncate(banner, 40))
	}
	for _, a := range []struct {
		name string
		v    uint64
		opt  bool
	}{{"linux_banner", sym.BannerAddr, false}, {"init_top_pgt", sym.TopPgt, false}, {"level3_kernel_pgt", sym.Level3Pgt, false},
		{"level4_kernel_pgt", sym.Level4Pgt, true}, {"level2_kernel_pgt", sym.Level2Pgt, true}, {"__pgtable_l5_enabled", sym.PgtableL5, true}} {
		if (a.v != 0 || !a.opt) && a.v < x86.KernelTextBase {
			return nil, fmt.Errorf("kmem: locate: link address %#x of %s is not a kernel image address", a.v, a.name)
		}
	}
	hits, err := probeBanner(ctx, phys, ram, banner, sym.BannerAddr%locateAlign, locateAlign)
	if err != nil {
		return nil, err
	}
	if len(hits) == 0 {
		if hits, err = scanBanner(ctx, phys, ram, banner, sym.BannerAddr%pageSize, pageSize); err != nil {
			return nil, err
		}
	}
	if len(hits) == 0 {
		return nil, fmt.Errorf("kmem: locate: the vmlinux's linux_banner (%q) is nowhere in the dump's RAM: the dump is not of this kernel", truncate(banner, 60))
	}
	var found []*Location
	var why []string
	for _, pa := range hits {
		l, err := locateAt(phys, sym, banner, pa)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		dup := false
		for _, f := range found {
			dup = dup || (f.KernelOffset == l.KernelOffset && f.PhysBase == l.PhysBase)
		}
		if !dup {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("kmem: locate: the banner is in RAM at %d place(s) but no kernel image page tables fit: %s", len(hits), strings.Join(why, "; "))
	case 1:
		return found[0], nil
	}
	var s []string
	for _, f := range found {
		s = append(s, fmt.Sprintf("KERNELOFFSET %#x phys_base %#x (banner at physical %#x)", f.KernelOffset, f.PhysBase, f.BannerPhys))
	}
	return nil, fmt.Errorf("kmem: locate: %d kernel images of this vmlinux are mapped consistently, cannot tell the live one: %s", len(found), strings.Join(s, "; "))
}

// probeBanner reads the banner's length at every address ≡ rem (mod step)
// in RAM and returns those holding the banner.
func probeBanner(ctx context.Context, phys io.ReaderAt, ram []elfcore.Range, banner []byte, rem, step uint64) ([]uint64, error) {
	var hits []uint64
	buf := make([]byte, len(banner))
	n := 0
	for _, r := range ram {
		if r.End <= r.Start {
			continue
		}
		pa := r.Start - r.Start%step + rem
		if pa < r.Start {
			pa += step
		}
		for ; pa+uint64(len(banner)) <= r.End && pa >= r.Start; pa += step {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if _, err := phys.ReadAt(buf, int64(pa)); err != nil {
				continue // a hole or unreadable page inside a RAM range is not a hit
			}
			if bytes.Equal(buf, banner) {
				hits = append(hits, pa)
				if len(hits) == maxCandidates {
					return hits, nil
				}
			}
		}
	}
	return hits, nil
}

// scanBanner streams RAM in chunks and returns the addresses ≡ rem (mod
// align) where the banner starts. Memory use is one chunk.
func scanBanner(ctx context.Context, phys io.ReaderAt, ram []elfcore.Range, banner []byte, rem, align uint64) ([]uint64, error) {
	var hits []uint64
	overlap := uint64(len(banner) - 1)
	buf := make([]byte, scanChunk+overlap)
	for _, r := range ram {
		for start := r.Start; start < r.End; {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			end := min(start+scanChunk+overlap, r.End)
			b := buf[:end-start]
			if n, err := phys.ReadAt(b, int64(start)); err != nil {
				b = b[:n] // search what was read; the rest of the chunk is not RAM
			}
			for i := 0; ; {
				k := bytes.Index(b[i:], banner)
				if k < 0 {
					break
				}
				pa := start + uint64(i+k)
				if pa%align == rem {
					hits = append(hits, pa)
					if len(hits) == maxCandidates {
						return hits, nil
					}
				}
				i += k + 1
			}
			if end == r.End {
				break
			}
			start = end - overlap
		}
	}
	return hits, nil
}

// locateAt proves or refutes a banner copy at physical address pa.
func locateAt(phys io.ReaderAt, sym ImageSymbols, banner []byte, pa uint64) (*Location, error) {
	// sum = KERNELOFFSET + phys_base; image link address a is at a − __START_KERNEL_map + sum.
	sum := x86.PhysBase(pa, sym.BannerAddr)
	img := func(link uint64) uint64 { return x86.ImagePhys(link, sum) }
	read := func(what string, addr uint64) (uint64, error) {
		var b [8]byte
		if _, err := phys.ReadAt(b[:], int64(addr)); err != nil {
			return 0, fmt.Errorf("banner at %#x: reading %s at physical %#x: %w", pa, what, addr, err)
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	l := &Location{BannerPhys: pa}
	// pointsTo checks that entry e is a present table entry pointing at
	// want, allowing one high bit of difference: the SME encryption bit,
	// which the kernel sets in the entries it writes when memory
	// encryption is active.
	pointsTo := func(e, want uint64) bool {
		if e&present == 0 {
			return false
		}
		got := e & frameMask
		if got == want {
			return true
		}
		d := got ^ want
		if bits.OnesCount64(d) == 1 && d >= 1<<32 && got&^d == want && (l.SMEMask == 0 || l.SMEMask == d) {
			l.SMEMask = d
			return true
		}
		return false
	}
	top, err := read("init_top_pgt[511]", img(sym.TopPgt)+511*8)
	if err != nil {
		return nil, err
	}
	switch {
	case pointsTo(top, img(sym.Level3Pgt)):
	case sym.Level4Pgt != 0 && pointsTo(top, img(sym.Level4Pgt)):
		l.L5 = true
		e, err := read("level4_kernel_pgt[511]", img(sym.Level4Pgt)+511*8)
		if err != nil {
			return nil, err
		}
		if !pointsTo(e, img(sym.Level3Pgt)) {
			return nil, fmt.Errorf("banner at %#x: level4_kernel_pgt[511] = %#x does not point at level3_kernel_pgt (physical %#x)", pa, e, img(sym.Level3Pgt))
		}
	default:
		return nil, fmt.Errorf("banner at %#x: init_top_pgt[511] = %#x points at neither level3_kernel_pgt (physical %#x) nor level4_kernel_pgt", pa, top, img(sym.Level3Pgt))
	}
	e3, err := read("level3_kernel_pgt[510]", img(sym.Level3Pgt)+510*8)
	if err != nil {
		return nil, err
	}
	if e3&present == 0 || e3&pse != 0 {
		return nil, fmt.Errorf("banner at %#x: level3_kernel_pgt[510] = %#x is not a table entry", pa, e3)
	}
	l2 := e3 & frameMask &^ l.SMEMask
	if sym.Level2Pgt != 0 && l2 != img(sym.Level2Pgt) {
		return nil, fmt.Errorf("banner at %#x: level3_kernel_pgt[510] points at %#x, not level2_kernel_pgt (physical %#x)", pa, l2, img(sym.Level2Pgt))
	}
	va, err := findMapping(phys, l2, pa, frameMask&^l.SMEMask)
	if err != nil {
		return nil, fmt.Errorf("banner at %#x: %w", pa, err)
	}
	l.KernelOffset = va - sym.BannerAddr
	if l.KernelOffset >= maxKernelOffset || l.KernelOffset%pageSize != 0 {
		return nil, fmt.Errorf("banner at %#x: mapped at %#x, a KASLR offset of %#x that is not page-aligned in [0, 1 GiB)", pa, va, l.KernelOffset)
	}
	l.PhysBase = sum - l.KernelOffset
	// Proof: the page tables this location implies map the banner back.
	m, err := New(phys, l.Params(sym))
	if err != nil {
		return nil, err
	}
	got := make([]byte, len(banner))
	if _, err := m.ReadAt(got, int64(va)); err != nil || !bytes.Equal(got, banner) {
		return nil, fmt.Errorf("banner at %#x: reading it back at %#x through the implied page tables failed (%v)", pa, va, err)
	}
	if sym.PgtableL5 != 0 {
		var b [4]byte
		if _, err := m.ReadAt(b[:], int64(sym.PgtableL5+l.KernelOffset)); err != nil {
			return nil, fmt.Errorf("banner at %#x: reading __pgtable_l5_enabled: %w", pa, err)
		}
		if v := binary.LittleEndian.Uint32(b[:]); v > 1 || (v == 1) != l.L5 {
			return nil, fmt.Errorf("banner at %#x: __pgtable_l5_enabled is %d but the page tables have %d levels", pa, v, map[bool]int{false: 4, true: 5}[l.L5])
		}
	}
	return l, nil
}

// findMapping returns the virtual address under __START_KERNEL_map that
// the PMD table at l2 maps to physical pa, through a 2 MiB page or a
// page table of 4 KiB pages.
func findMapping(phys io.ReaderAt, l2, pa, mask uint64) (uint64, error) {
	pmd := make([]byte, pageSize)
	if _, err := phys.ReadAt(pmd, int64(l2)); err != nil {
		return 0, fmt.Errorf("reading level2_kernel_pgt at physical %#x: %w", l2, err)
	}
	pte := make([]byte, pageSize)
	for i := range uint64(512) {
		e := binary.LittleEndian.Uint64(pmd[i*8:])
		if e&present == 0 {
			continue
		}
		if e&pse != 0 {
			if base := e & mask &^ (pmdSize - 1); pa&^(pmdSize-1) == base {
				return x86.KernelTextBase + i*pmdSize + pa%pmdSize, nil
			}
			continue
		}
		if _, err := phys.ReadAt(pte, int64(e&mask)); err != nil {
			continue
		}
		for j := range uint64(512) {
			p := binary.LittleEndian.Uint64(pte[j*8:])
			if p&present != 0 && p&mask == pa&^(pageSize-1) {
				return x86.KernelTextBase + i*pmdSize + j*pageSize + pa%pageSize, nil
			}
		}
	}
	return 0, fmt.Errorf("no level2_kernel_pgt entry (physical %#x) maps the banner", l2)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
