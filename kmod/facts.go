package kmod

import (
	"bufio"
	"compress/gzip"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/elfcore/livedump"
	"ldx/kmod/manifest"
)

// Facts are what capture learns about the running kernel before it
// decides anything. Fields it could not learn stay zero; the error fields
// say why.
type Facts struct {
	Release, Hostname, BuildID string

	// RAM is the System RAM map from /proc/iomem, half-open, sorted.
	RAM []elfcore.Range
	// MaxPFN is one past the last RAM page (e820__end_of_ram_pfn): the
	// kernel dumps [0, (MaxPFN+1)·4096) (livedump.RAMEnd).
	MaxPFN uint64
	RAMErr error

	MemTotal, MemAvailable uint64 // bytes
	MemErr                 error

	Present, Possible, Online []int // CPU numbers
	CPUErr                    error
	// CrashNotes are the physical addresses of the present CPUs'
	// crash_notes, by CPU.
	CrashNotes []uint64

	// VMCOREINFONote is the kernel's VMCOREINFO note buffer (see package
	// livedump, "Page 1: the notes").
	VMCOREINFONote elfcore.Range

	// PageOffsetBase is the direct map's base; PageOffsetFrom says how it
	// was learnt ("" when it could not be).
	PageOffsetBase uint64
	PageOffsetFrom string
	// Config is the kernel configuration, when found (ConfigFrom).
	Config     map[string]string
	ConfigFrom string
	Cmdline    string
	// TextDefault says that kallsyms puts _text at the unrelocated
	// 0xffffffff81000000 (KASLR not applied); nil when unknown.
	TextDefault *bool

	// PercpuUnit is the size of one CPU's per-CPU unit (PercpuFrom says
	// from where), 0 when unknown.
	PercpuUnit uint64
	PercpuFrom string
	// BootLog is the kernel log as read at preflight.
	BootLog []string
}

// DumpEnd is (MaxPFN+1)·4096: where the kernel's RAM PT_LOAD ends and
// how large the device must be (see package livedump, "Placement").
func (f *Facts) DumpEnd() uint64 { return livedump.RAMEnd(f.MaxPFN) }

// RAMBytes is the amount of System RAM.
func (f *Facts) RAMBytes() uint64 { return elfcore.Covered(f.RAM) }

const pageSize = 4096

// gatherFacts reads everything preflight and the manifest need. It never
// fails as a whole: each fact has its own error.
func gatherFacts(h *Host) *Facts {
	p := h.Paths
	f := &Facts{}
	f.Release, _ = readString(p.Release)
	f.Hostname, _ = readString(p.Hostname)
	if b, err := os.ReadFile(p.Notes); err == nil {
		f.BuildID = buildID(b)
	}
	f.RAM, f.RAMErr = readIomem(p.Iomem)
	if f.RAMErr == nil {
		f.MaxPFN = f.RAM[len(f.RAM)-1].End / pageSize
	}
	f.MemTotal, f.MemAvailable, f.MemErr = readMeminfo(p.Meminfo)
	f.Present, f.CPUErr = readCPUList(filepath.Join(p.CPU, "present"))
	if f.CPUErr == nil {
		f.Possible, f.CPUErr = readCPUList(filepath.Join(p.CPU, "possible"))
	}
	if f.CPUErr == nil {
		f.Online, f.CPUErr = readCPUList(filepath.Join(p.CPU, "online"))
	}
	for _, cpu := range f.Present {
		s, err := readString(filepath.Join(p.CPU, fmt.Sprintf("cpu%d", cpu), "crash_notes"))
		a, perr := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
		if err != nil || perr != nil {
			f.CrashNotes = nil
			break
		}
		f.CrashNotes = append(f.CrashNotes, a)
	}
	if s, err := readString(p.VMCOREINFO); err == nil {
		if fs := strings.Fields(s); len(fs) == 2 {
			a, e1 := strconv.ParseUint(strings.TrimPrefix(fs[0], "0x"), 16, 64)
			n, e2 := strconv.ParseUint(strings.TrimPrefix(fs[1], "0x"), 16, 64)
			if e1 == nil && e2 == nil && a != 0 {
				f.VMCOREINFONote = elfcore.Range{Start: a, End: a + n}
			}
		}
	}
	f.BootLog, _ = readKmsg(p.Kmsg)
	f.Cmdline, _ = readString(p.Cmdline)
	f.Config, f.ConfigFrom = readConfig(p.Config, f.Release)
	if base, err := kcorePageOffset(p.Kcore); err == nil {
		f.PageOffsetBase, f.PageOffsetFrom = base, p.Kcore
	}
	if t, ok := kallsymsText(p.Kallsyms); ok {
		def := t == x86.DefaultText
		f.TextDefault = &def
	}
	f.PercpuUnit, f.PercpuFrom = percpuUnit(f.BootLog, f.CrashNotes)
	return f
}

// readIomem returns the top-level System RAM ranges of /proc/iomem.
// Non-root readers see all addresses as zero, which is refused.
func readIomem(path string) ([]elfcore.Range, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ram []elfcore.Range
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == ' ' {
			continue
		}
		rng, name, ok := strings.Cut(line, " : ")
		if !ok || strings.TrimSpace(name) != "System RAM" {
			continue
		}
		lo, hi, ok := strings.Cut(rng, "-")
		a, e1 := strconv.ParseUint(lo, 16, 64)
		z, e2 := strconv.ParseUint(hi, 16, 64)
		if !ok || e1 != nil || e2 != nil || z < a {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		ram = append(ram, elfcore.Range{Start: a, End: z + 1})
	}
	if len(ram) == 0 {
		return nil, fmt.Errorf("%s lists no System RAM", path)
	}
	if ram[len(ram)-1].End <= 1 {
		return nil, fmt.Errorf("%s shows every address as 0: it needs root to read", path)
	}
	elfcore.SortRanges(ram)
	return ram, nil
}

func readMeminfo(path string) (total, avail uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var haveT, haveA bool
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseUint(fs[0], 10, 64)
		if err != nil {
			continue
		}
		if len(fs) > 1 && fs[1] == "kB" {
			n <<= 10
		}
		switch k {
		case "MemTotal":
			total, haveT = n, true
		case "MemAvailable":
			avail, haveA = n, true
		}
	}
	if !haveT || !haveA {
		return 0, 0, fmt.Errorf("%s has no MemTotal or MemAvailable", path)
	}
	return total, avail, nil
}

// readCPUList parses a CPU list file ("0-3,5").
func readCPUList(path string) ([]int, error) {
	s, err := readString(path)
	if err != nil {
		return nil, err
	}
	return parseCPUList(s)
}

func parseCPUList(s string) ([]int, error) {
	var cpus []int
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// buildID finds the GNU build-id note in the kernel's notes section
// (/sys/kernel/notes).
func buildID(b []byte) string {
	id, _ := elfcore.FindNote(b, "GNU", elfcore.NT_GNU_BUILD_ID)
	return hex.EncodeToString(id)
}

// readConfig reads the first kernel configuration found.
func readConfig(paths []string, release string) (map[string]string, string) {
	for _, p := range paths {
		if strings.Contains(p, "%s") {
			if release == "" {
				continue
			}
			p = fmt.Sprintf(p, release)
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		var r io.Reader = f
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				continue
			}
			r = zr
		}
		cfg := map[string]string{}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "CONFIG_") {
				cfg[k] = v
			} else if name, ok := strings.CutPrefix(line, "# "); ok && strings.HasSuffix(name, " is not set") {
				cfg[strings.TrimSuffix(name, " is not set")] = "n"
			}
		}
		f.Close()
		if sc.Err() == nil && len(cfg) > 0 {
			return cfg, p
		}
	}
	return nil, ""
}

// kcorePageOffset reads the direct map's base from /proc/kcore's program
// headers: its KCORE_RAM segments have p_vaddr = __va(p_paddr), the
// others p_paddr = -1 or an image address. The most common p_vaddr −
// p_paddr below the kernel image map is page_offset_base.
func kcorePageOffset(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	count := map[uint64]int{}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_LOAD || p.Paddr == ^uint64(0) || p.Paddr == 0 || x86.IsImageAddr(p.Vaddr) || p.Vaddr < 0xff00000000000000 || p.Vaddr < p.Paddr {
			continue
		}
		count[p.Vaddr-p.Paddr]++
	}
	var best uint64
	for b, n := range count {
		if n > count[best] || (n == count[best] && b < best) {
			best = b
		}
	}
	if count[best] == 0 {
		return 0, fmt.Errorf("%s has no direct-map segments", path)
	}
	return best, nil
}

// kallsymsText returns _text from /proc/kallsyms (non-zero only for root).
func kallsymsText(path string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 3 && fs[2] == "_text" {
			a, err := strconv.ParseUint(fs[0], 16, 64)
			return a, err == nil && a != 0
		}
	}
	return 0, false
}

var percpuRe = regexp.MustCompile(`percpu: Embedded \d+ pages/cpu .*\bu(\d+)\b`)

// percpuUnit finds the size of one CPU's per-CPU unit: the boot log's
// "percpu: Embedded … u<bytes>" line, else the constant stride of the
// CPUs' crash_notes addresses (alloc_percpu puts each CPU's copy at the
// same offset of its unit, in the first chunk).
func percpuUnit(boot []string, crashNotes []uint64) (uint64, string) {
	for _, l := range boot {
		if m := percpuRe.FindStringSubmatch(l); m != nil {
			if u, err := strconv.ParseUint(m[1], 10, 64); err == nil && u > 0 {
				return u, "the boot log (" + strings.TrimSpace(l[strings.Index(l, "percpu:"):]) + ")"
			}
		}
	}
	if len(crashNotes) >= 2 && crashNotes[1] > crashNotes[0] {
		stride := crashNotes[1] - crashNotes[0]
		for i := 2; i < len(crashNotes); i++ {
			if crashNotes[i]-crashNotes[i-1] != stride {
				return 0, ""
			}
		}
		if stride%pageSize == 0 && stride <= 64<<20 {
			return stride, "the spacing of the CPUs' crash_notes addresses"
		}
	}
	return 0, ""
}

// manifestFacts fills a manifest from the facts and the device.
func (f *Facts) manifest(dev *BlockDevice) *manifest.Manifest {
	m := &manifest.Manifest{
		Hostname:       f.Hostname,
		Release:        f.Release,
		BuildID:        f.BuildID,
		PresentCPUs:    len(f.Present),
		PossibleCPUs:   len(f.Possible),
		OnlineCPUs:     len(f.Online),
		RAM:            slices.Clone(f.RAM),
		MaxPFN:         f.MaxPFN,
		VMCOREINFONote: f.VMCOREINFONote,
		CrashNotes:     slices.Clone(f.CrashNotes),
	}
	if dev != nil {
		m.Device = manifest.Device{Path: dev.Path, Size: uint64(dev.Node.Size), Major: dev.Node.Major, Minor: dev.Node.Minor, Serial: dev.Serial, WWID: dev.WWID}
	}
	return m
}
