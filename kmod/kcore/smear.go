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
// documentation, "Not a snapshot"), found in the live memory, with what
// each holds; what could not be found is said in the warnings.
func (s *Source) CriticalPages() (pages []uint64, what map[uint64]string, warnings []string) {
	what = map[uint64]string{}
	add := func(pa uint64, w string) {
		pa &^= pageSize - 1
		if _, ok := what[pa]; !ok {
			what[pa] = w
		}
		pages = append(pages, pa)
	}
	if r := s.VMCOREINFOPhys; r.End > 0 {
		for pa := r.Start &^ (pageSize - 1); pa < r.End; pa += pageSize {
			add(pa, "VMCOREINFO note")
		}
	}
	mem, err := s.kmem(nil)
	if err != nil {
		return dedupe(pages), what, []string{"the page tables cannot be read, so only the VMCOREINFO note is checked for changes: " + err.Error()}
	}
	// Every page-table page on the walk of the kernel image.
	add(mem.Root(), "page table (top level)")
	tables := func(va uint64) error {
		w, err := mem.Translate(va)
		if err != nil {
			return err
		}
		for _, l := range w.Levels {
			add(l.TableAddr, "page table ("+l.Name+")")
		}
		return nil
	}
	// The image is at most 1 GiB (KERNEL_IMAGE_SIZE); a larger extent is
	// not the kernel's and is walked no further.
	for va := s.ImageVirt; va < s.ImageVirt+min(s.Image.End-s.Image.Start, 1<<30); va += 2 << 20 {
		if err := tables(va); err != nil {
			warnings = append(warnings, fmt.Sprintf("kernel image %#x: %v", va, err))
			break
		}
	}
	virtRange := func(role string, va, size uint64) {
		for p := va &^ (pageSize - 1); p < va+size && len(pages) < maxCheckedPages; p += pageSize {
			tables(p)
			pa, err := mem.VtoP(p)
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("%s page %#x: %v", role, p, err))
				return
			}
			add(pa, role)
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
	return pages, what, warnings
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
