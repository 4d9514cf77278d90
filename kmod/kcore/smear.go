package kcore

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"ldx/elfcore/kernel/kallsyms"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/kernel/printk"
	"ldx/elfcore/kernel/x86"
)

// maxCheckedPages bounds the pages checked for changes (a printk ring
// enlarged with log_buf_len has a large descriptor array).
const maxCheckedPages = 4096

func (s *Source) kmem(physBase *uint64) (*kmem.Mem, error) {
	if physBase == nil && s.ImageVirt >= x86.KernelTextBase {
		pb := x86.PhysBase(s.Image.Start, s.ImageVirt)
		physBase = &pb
	}
	params, err := kmem.ParamsFrom(s.Info, physBase)
	if err != nil {
		return nil, err
	}
	return kmem.New(s.Phys, params)
}

// CriticalPages are the physical pages readers depend on most (package
// documentation, "Not a snapshot"), found in the live memory; what could
// not be found is said in the warnings.
func (s *Source) CriticalPages() (pages []uint64, warnings []string) {
	add := func(pa uint64) { pages = append(pages, pa&^(pageSize-1)) }
	addRange := func(start, end uint64) {
		for pa := start &^ (pageSize - 1); pa < end; pa += pageSize {
			add(pa)
		}
	}
	if s.VMCOREINFOPhys.End > 0 {
		addRange(s.VMCOREINFOPhys.Start, s.VMCOREINFOPhys.End)
	}
	mem, err := s.kmem(nil)
	if err != nil {
		return dedupe(pages), []string{"the page tables cannot be read, so only the VMCOREINFO note is checked for changes: " + err.Error()}
	}
	// Every page-table page on the walk of the kernel image.
	add(mem.Root())
	tables := func(va uint64) error {
		w, err := mem.Translate(va)
		if err != nil {
			return err
		}
		for _, l := range w.Levels {
			add(l.TableAddr)
		}
		return nil
	}
	for va := s.ImageVirt; va < s.ImageVirt+(s.Image.End-s.Image.Start); va += 2 << 20 {
		if err := tables(va); err != nil {
			warnings = append(warnings, fmt.Sprintf("kernel image %#x: %v", va, err))
			break
		}
	}
	virtRange := func(what string, va, size uint64) {
		for p := va &^ (pageSize - 1); p < va+size && len(pages) < maxCheckedPages; p += pageSize {
			tables(p)
			pa, err := mem.VtoP(p)
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("%s page %#x: %v", what, p, err))
				return
			}
			add(pa)
		}
	}
	if _, arrays, err := printk.LocateLockless(mem, s.Info); err == nil {
		for _, a := range arrays {
			if strings.Contains(a.Name, "desc") {
				virtRange("printk "+a.Name, a.Addr, a.Size)
			}
		}
	} else {
		warnings = append(warnings, "the printk ring's descriptors are not checked: "+err.Error())
	}
	if tab, err := kallsyms.Read(mem, s.Info); err == nil {
		if it, ok := tab.Lookup("init_task"); ok {
			// init_task up to the next symbol, at most 4 pages: its
			// tasks list head is the head of the task list.
			end := it + 4*pageSize
			for _, sym := range tab.Symbols() {
				if sym.Addr > it && sym.Addr < end {
					end = sym.Addr
				}
			}
			virtRange("init_task", it, end-it)
		} else {
			warnings = append(warnings, "kallsyms has no init_task: its pages are not checked")
		}
	} else {
		warnings = append(warnings, "init_task is not checked (kallsyms: "+err.Error()+")")
	}
	pages = dedupe(pages)
	if len(pages) > maxCheckedPages {
		pages = pages[:maxCheckedPages]
	}
	return pages, warnings
}

func dedupe(p []uint64) []uint64 {
	slices.Sort(p)
	return slices.Compact(p)
}

// pageSums are the hashes of pages read at one time; a page that cannot
// be read hashes as nil.
type pageSums struct {
	pages []uint64
	sums  [][]byte
}

func (s *Source) hashPages(pages []uint64) pageSums {
	ps := pageSums{pages: pages, sums: make([][]byte, len(pages))}
	buf := make([]byte, pageSize)
	for i, pa := range pages {
		if _, err := s.Phys.ReadAt(buf, int64(pa)); err == nil {
			h := sha256.Sum256(buf)
			ps.sums[i] = h[:]
		}
	}
	return ps
}

// changed reads the pages again and returns those whose bytes differ.
func (s *Source) changed(before pageSums) []uint64 {
	after := s.hashPages(before.pages)
	var ch []uint64
	for i := range before.pages {
		if !slices.Equal(before.sums[i], after.sums[i]) {
			ch = append(ch, before.pages[i])
		}
	}
	return ch
}
