package kcore

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/elfcore/livedump"
	"ldx/extract/dump"
	"ldx/vmcoreinfo"
)

// Format is the dump.Format of a live /proc/kcore source.
const Format dump.Format = "/proc/kcore (running kernel)"

const pageSize = 4096

// noPaddr is the p_paddr of kcore segments that map no single physical
// range (vmalloc, modules, vmemmap).
const noPaddr = ^uint64(0)

// Host is where the running kernel's files are; tests point it at fakes.
type Host struct {
	Kcore      string // /proc/kcore
	VMCOREINFO string // /sys/kernel/vmcoreinfo
	CPUOnline  string // /sys/devices/system/cpu/online
	Lockdown   string // /sys/kernel/security/lockdown
	// Open opens a file read-only (default os.Open).
	Open func(path string) (*os.File, error)
	// Statfs describes the file system holding path (default unix.Statfs).
	Statfs func(path string) (Statfs, error)
}

// DefaultHost is the running machine.
func DefaultHost() *Host {
	return &Host{
		Kcore:      "/proc/kcore",
		VMCOREINFO: "/sys/kernel/vmcoreinfo",
		CPUOnline:  "/sys/devices/system/cpu/online",
		Lockdown:   "/sys/kernel/security/lockdown",
	}
}

func (h *Host) open(path string) (*os.File, error) {
	if h.Open != nil {
		return h.Open(path)
	}
	return os.Open(path)
}

// Source is /proc/kcore opened and understood: the RAM it maps by
// physical address, the kernel image, VMCOREINFO and the online CPUs.
type Source struct {
	Path string
	f    *os.File
	core *elfcore.File
	// Loads are the direct-map segments of System RAM.
	Loads []elfcore.ProgHeader
	// RAM are their physical ranges, merged, from 1 MiB up (as the
	// kernel's own vmcore header).
	RAM []elfcore.Range
	// PageOffset is page_offset_base (p_vaddr − p_paddr of the RAM segments).
	PageOffset uint64
	// Image is the kernel image's physical range and ImageVirt its
	// virtual address.
	Image     elfcore.Range
	ImageVirt uint64
	// VMCOREINFO is the kernel's text; VMCOREINFOFrom says where it was
	// read; VMCOREINFOPhys is its note's physical range when known.
	VMCOREINFO     []byte
	VMCOREINFOFrom string
	VMCOREINFOPhys elfcore.Range
	Info           *vmcoreinfo.Info
	// CPUs are the online CPUs.
	CPUs []int
	// Phys reads RAM by physical address through the direct-map segments.
	Phys     *elfcore.PhysMem
	Warnings []string
}

// Close closes /proc/kcore.
func (s *Source) Close() error { return s.f.Close() }

// RAMBytes is the memory the RAM ranges cover.
func (s *Source) RAMBytes() uint64 {
	var n uint64
	for _, r := range s.RAM {
		n += r.End - r.Start
	}
	return n
}

// Open opens the host's /proc/kcore and reads what the capture needs. A
// host that cannot be captured this way is a *Refusal.
func Open(h *Host) (*Source, error) {
	f, err := h.open(h.Kcore)
	if err != nil {
		return nil, openRefusal(h, err)
	}
	s := &Source{Path: h.Kcore, f: f}
	if err := s.load(h); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func openRefusal(h *Host, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Refusal{Reason: NoKcore, What: fmt.Sprintf("%s does not exist (%v)", h.Kcore, err),
			Hint: "a kernel built with CONFIG_PROC_KCORE, outside a container that hides it"}
	case errors.Is(err, fs.ErrPermission):
		if lockedDown(h) {
			return &Refusal{Reason: LockedDown, What: fmt.Sprintf("%s: %v: the kernel is locked down (lockdown=confidentiality), which forbids reading kernel memory", h.Kcore, err),
				Hint: "boot without lockdown=confidentiality (or with Secure Boot's lockdown lifted) to capture this way"}
		}
		return &Refusal{Reason: NotPermitted, What: fmt.Sprintf("%s: %v: reading kernel memory needs root with CAP_SYS_RAWIO", h.Kcore, err),
			Hint: "run as root (with CAP_SYS_RAWIO)"}
	}
	return &Refusal{Reason: NoKcore, What: fmt.Sprintf("%s: %v", h.Kcore, err)}
}

// lockedDown reports whether the kernel's lockdown is in confidentiality
// mode (the active mode is the bracketed word).
func lockedDown(h *Host) bool {
	if h.Lockdown == "" {
		return false
	}
	f, err := h.open(h.Lockdown)
	if err != nil {
		return false
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 256))
	return strings.Contains(string(b), "[confidentiality]")
}

func (s *Source) load(h *Host) error {
	fi, err := s.f.Stat()
	if err != nil {
		return &Refusal{Reason: NoKcore, What: fmt.Sprintf("%s: %v", s.Path, err)}
	}
	// A read, not just the open, must work: the header is where a
	// permission or lockdown problem shows first.
	head := make([]byte, elfcore.HeaderSize)
	if _, err := s.f.ReadAt(head, 0); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return openRefusal(h, err)
		}
		return &Refusal{Reason: NoKcore, What: fmt.Sprintf("%s: reading its ELF header: %v (a container may hide it behind an empty file)", s.Path, err)}
	}
	core, err := elfcore.NewFile(s.f, fi.Size())
	if err != nil {
		return &Refusal{Reason: NoKcore, What: fmt.Sprintf("%s is not the kernel's ELF core: %v", s.Path, err)}
	}
	if core.Type != elf.ET_CORE || core.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s: an ELF %v for %v; ldx captures x86_64 kernels", s.Path, core.Type, core.Machine)
	}
	s.core = core
	var text *elfcore.ProgHeader
	deltas := map[uint64]int{}
	for i, l := range core.Loads() {
		switch {
		case l.Paddr == noPaddr || l.Memsz == 0:
		case l.Vaddr >= x86.KernelTextBase:
			if text == nil {
				text = &core.Loads()[i]
			}
		case l.Vaddr > l.Paddr:
			deltas[l.Vaddr-l.Paddr]++
			s.Loads = append(s.Loads, l)
		}
	}
	if len(s.Loads) == 0 {
		return fmt.Errorf("%s: no PT_LOAD maps System RAM with its physical address (p_paddr is -1 before Linux 4.11)", s.Path)
	}
	for d, n := range deltas {
		if n > deltas[s.PageOffset] || s.PageOffset == 0 {
			s.PageOffset = d
		}
	}
	if len(deltas) > 1 {
		s.Loads = slices.DeleteFunc(s.Loads, func(l elfcore.ProgHeader) bool { return l.Vaddr-l.Paddr != s.PageOffset })
		s.warn("segments with another p_vaddr − p_paddr than the direct map's %#x were left out", s.PageOffset)
	}
	for i, l := range s.Loads {
		if l.Filesz < l.Memsz {
			return fmt.Errorf("%s: program header of RAM segment %d (physical %#x): p_filesz %#x < p_memsz %#x", s.Path, i, l.Paddr, l.Filesz, l.Memsz)
		}
	}
	s.Phys = elfcore.NewPhysMem(s.f, s.Loads)
	for _, r := range s.Phys.Ranges() {
		start, end := max(r.Start, livedump.RAMStart), r.End&^(pageSize-1)
		start = (start + pageSize - 1) &^ (pageSize - 1)
		if start < end {
			s.RAM = append(s.RAM, elfcore.Range{Start: start, End: end})
		}
	}
	if err := s.readVMCOREINFO(h); err != nil {
		return err
	}
	if err := s.findImage(text); err != nil {
		return err
	}
	cpus, err := readCPUs(h)
	if err != nil {
		s.warn("online CPUs unknown (%v): one CPU note written", err)
		cpus = []int{0}
	}
	s.CPUs = cpus
	return nil
}

func (s *Source) warn(format string, a ...any) {
	s.Warnings = append(s.Warnings, fmt.Sprintf(format, a...))
}

// readVMCOREINFO takes the kernel's note from kcore (4.19+), else from the
// physical address /sys/kernel/vmcoreinfo gives. The physical range is
// looked up either way: the note's page is checked for changes.
func (s *Source) readVMCOREINFO(h *Host) error {
	var noteErr error
	if pa, size, err := sysVMCOREINFO(h); err == nil {
		s.VMCOREINFOPhys = elfcore.Range{Start: pa, End: pa + size}
		buf := make([]byte, size)
		if _, err := s.Phys.ReadAt(buf, int64(pa)); err != nil {
			noteErr = fmt.Errorf("reading its note at physical %#x: %w", pa, err)
		} else if desc, ok := elfcore.FindNote(buf, elfcore.NameVMCOREINFO, elfcore.NT_VMCOREINFO); ok {
			s.VMCOREINFO, s.VMCOREINFOFrom = desc, fmt.Sprintf("the kernel's vmcoreinfo_note at physical %#x (%s)", pa, h.VMCOREINFO)
		} else {
			noteErr = fmt.Errorf("no VMCOREINFO note at physical %#x", pa)
		}
	} else {
		noteErr = err
	}
	notes, err := s.core.Notes()
	if err != nil {
		s.warn("%s: its notes are damaged: %v", s.Path, err)
	}
	for _, n := range notes {
		if n.Is(elfcore.NameVMCOREINFO, elfcore.NT_VMCOREINFO) {
			s.VMCOREINFO, s.VMCOREINFOFrom = n.Desc, s.Path+"'s VMCOREINFO note"
		}
	}
	if s.VMCOREINFO == nil {
		return fmt.Errorf("%s has no VMCOREINFO note (before Linux 4.19) and %s did not give one: %v", s.Path, h.VMCOREINFO, noteErr)
	}
	info, dmg := vmcoreinfo.ParseLenient(s.VMCOREINFO)
	if info == nil {
		return fmt.Errorf("%s: the VMCOREINFO text has no key=value lines", s.VMCOREINFOFrom)
	}
	if !dmg.Clean() {
		s.warn("cleaned the VMCOREINFO text: %s", dmg)
	}
	s.Info = info
	s.VMCOREINFO = info.Bytes()
	return nil
}

// sysVMCOREINFO reads /sys/kernel/vmcoreinfo: "physical-address size" in hex.
func sysVMCOREINFO(h *Host) (uint64, uint64, error) {
	f, err := h.open(h.VMCOREINFO)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 128))
	if err != nil {
		return 0, 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, 0, fmt.Errorf("%s: %q, expected \"ADDRESS SIZE\" in hex", h.VMCOREINFO, b)
	}
	pa, err1 := strconv.ParseUint(fields[0], 16, 64)
	size, err2 := strconv.ParseUint(fields[1], 16, 64)
	if err1 != nil || err2 != nil || size == 0 || size > 1<<20 {
		return 0, 0, fmt.Errorf("%s: %q, expected \"ADDRESS SIZE\" in hex with a size up to 1 MiB", h.VMCOREINFO, b)
	}
	return pa, size, nil
}

// findImage takes the image from kcore's text segment, else from
// SYMBOL(_stext), NUMBER(phys_base) and the page tables.
func (s *Source) findImage(text *elfcore.ProgHeader) error {
	if text != nil {
		s.Image = elfcore.Range{Start: text.Paddr &^ (pageSize - 1), End: (text.Paddr + text.Memsz + pageSize - 1) &^ (pageSize - 1)}
		s.ImageVirt = text.Vaddr - (text.Paddr - s.Image.Start)
		return nil
	}
	mem, err := s.kmem(nil)
	if err != nil {
		return fmt.Errorf("%s has no kernel-text segment with a physical address, and the page tables cannot be read: %w", s.Path, err)
	}
	stext, ok := s.Info.Symbol("_stext")
	if !ok {
		return fmt.Errorf("%s has no kernel-text segment with a physical address, and VMCOREINFO has no SYMBOL(_stext)", s.Path)
	}
	s.Image, s.ImageVirt = mem.ImageExtent(stext, s.Info)
	return nil
}

func readCPUs(h *Host) ([]int, error) {
	f, err := h.open(h.CPUOnline)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, err
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}

// maxCPUs is x86_64's largest NR_CPUS (CONFIG_MAXSMP): a list naming more
// is not the kernel's.
const maxCPUs = 8192

// parseCPUList parses the kernel's CPU list format ("0-3,5").
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= maxCPUs || len(cpus)+(b-a+1) > maxCPUs {
			return nil, fmt.Errorf("bad CPU list %q (CPUs 0…%d, at most %d of them)", s, maxCPUs-1, maxCPUs)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("empty CPU list")
	}
	return cpus, nil
}
