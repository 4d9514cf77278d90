package kmodtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
)

// Default direct-map bases. livedump v1 only works without
// CONFIG_RANDOMIZE_MEMORY (INIT oopses otherwise; package kmod: setups that crash the machine), so these are the
// page_offset_base values of every kernel that produced a real device.
const (
	PageOffset4Level = x86.PageOffset4Level
	PageOffset5Level = x86.PageOffset5Level
)

// Kernel is the live kernel whose memory livedump dumps: its physical
// memory and the facts the kernel itself uses when it builds the header
// and notes.
type Kernel struct {
	// Mem is physical memory, read by physical address. Only pages the
	// run writes are read.
	Mem io.ReaderAt
	// RAM is the E820 System RAM map as /proc/iomem shows it (half-open
	// byte ranges). trim_bios_range has usually been applied already
	// (pfn 0 reserved, 0xA0000-0xFFFFF gone); the emulator applies it
	// again, which is harmless.
	RAM []elfcore.Range
	// MaxPFN is the kernel's max_pfn: one past the last RAM page frame.
	MaxPFN uint64
	// TextPhys and TextVirt are _text's physical and (KASLR-relocated)
	// virtual address; TextSize is _end - _text.
	TextPhys, TextVirt, TextSize uint64
	// PageOffsetBase is the direct map's base (page_offset_base).
	PageOffsetBase uint64
	// CPUs is the number of present CPUs: one CORE note each.
	CPUs int
	// VMCOREINFO is the kernel's VMCOREINFO text as built at boot, without
	// CRASHTIME (what /proc/kcore's note or QEMU's dump carries).
	VMCOREINFO []byte
	// VMCOREINFONote is the physical address of the kernel's global
	// vmcoreinfo_note buffer (/sys/kernel/vmcoreinfo). START rewrites it
	// with CRASHTIME before the protection walk, so the dumped copy holds
	// the complete note (package livedump, "Page 1: the notes"). Zero means unknown: the buffer is then not
	// emulated.
	VMCOREINFONote uint64
	// CrashNotes are the physical addresses of the present CPUs'
	// crash_notes buffers, by CPU (optional). START's crash_save_cpu
	// rewrites them before the walk, so their dumped copies hold the CORE
	// notes too, except CPU 0's in the first run of a boot (package livedump, "Page 1: the notes"; it was
	// dumped earlier in START, as part of CPU 0's per-CPU area).
	CrashNotes []uint64
	// LeaderPid is pr_pid in every CORE note: the pid of the
	// stop_machine thread that ran the leader (package livedump, "Page 1: the notes" and "Seen on real runs").
	LeaderPid uint32
	// IP is pr_reg ip in every CORE note: memdump_thread_func's address.
	// Unpatched kernels (the QEMU test guests) have no such function; any
	// kernel text address will do.
	IP uint64
}

func (k *Kernel) check() error {
	switch {
	case k.Mem == nil:
		return errors.New("kmodtest: Kernel.Mem is nil")
	case k.MaxPFN < 2:
		return fmt.Errorf("kmodtest: Kernel.MaxPFN %d: want the kernel's max_pfn", k.MaxPFN)
	case len(k.RAM) == 0:
		return errors.New("kmodtest: Kernel.RAM is empty: give the System RAM map from /proc/iomem")
	case k.CPUs < 1:
		return fmt.Errorf("kmodtest: Kernel.CPUs %d: want the number of present CPUs", k.CPUs)
	case len(k.VMCOREINFO) == 0:
		return errors.New("kmodtest: Kernel.VMCOREINFO is empty")
	case len(k.VMCOREINFO) > VMCOREINFOBytes:
		return fmt.Errorf("kmodtest: Kernel.VMCOREINFO is %d bytes, the kernel keeps at most %d", len(k.VMCOREINFO), VMCOREINFOBytes)
	case len(k.CrashNotes) > k.CPUs:
		return fmt.Errorf("kmodtest: %d crash_notes addresses for %d present CPUs", len(k.CrashNotes), k.CPUs)
	}
	return nil
}

// PhysBase returns phys_base as the kernel computes __pa_symbol: the
// physical address of kernel-image virtual address __START_KERNEL_map.
func (k *Kernel) PhysBase() uint64 { return x86.PhysBase(k.TextPhys, k.TextVirt) }

// ReadImageUint64 reads the 8-byte kernel variable at kernel-image virtual
// address va (a kallsyms address) from Mem, e.g. max_pfn or
// page_offset_base. It needs TextPhys and TextVirt.
func (k *Kernel) ReadImageUint64(va uint64) (uint64, error) {
	if !x86.IsImageAddr(va) {
		return 0, fmt.Errorf("kmodtest: %#x is not a kernel-image address", va)
	}
	var b [8]byte
	pa := x86.ImagePhys(va, k.PhysBase())
	if _, err := k.Mem.ReadAt(b[:], int64(pa)); err != nil {
		return 0, fmt.Errorf("kmodtest: reading %#x (physical %#x): %w", va, pa, err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// FromELFDump builds a Kernel from a QEMU dump-guest-memory ELF core (taken
// with paging:false and -device vmcoreinfo, so that it carries the guest's
// VMCOREINFO note). The closer releases the file behind Kernel.Mem.
//
// What the dump tells is filled in: Mem (physical, through the PT_LOADs),
// CPUs (the number of NT_PRSTATUS notes), VMCOREINFO (CRASHTIME removed if
// a crash or livedump already appended one), TextVirt (SYMBOL(_stext),
// which equals _text on x86_64), TextPhys (from NUMBER(phys_base)),
// PageOffsetBase (the non-randomised default for the paging mode
// NUMBER(pgtable_l5_enabled) names) and VMCOREINFONote (found by scanning
// page starts for the note, when exactly one matches the text).
//
// The caller must fill in RAM, MaxPFN and TextSize: QEMU's PT_LOADs cover
// its RAM blocks including BIOS areas, not the kernel's E820 view, and
// _end is not in VMCOREINFO. It should also check PageOffsetBase (a
// randomised layout is only in the guest's page_offset_base variable, see
// ReadImageUint64) and set LeaderPid, IP and CrashNotes if tests look at them.
func FromELFDump(path string) (*Kernel, io.Closer, error) {
	f, err := elfcore.Open(path)
	if err != nil {
		return nil, nil, err
	}
	k, err := kernelFromCore(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("kmodtest: %s: %w", path, err)
	}
	return k, f, nil
}

func kernelFromCore(f *elfcore.File) (*Kernel, error) {
	notes, err := f.Notes()
	if err != nil {
		return nil, err
	}
	k := &Kernel{Mem: f.Phys()}
	for _, n := range notes {
		switch {
		case n.Name == "CORE" && n.Type == 1:
			k.CPUs++
		case n.Name == "VMCOREINFO" && n.Type == 0 && k.VMCOREINFO == nil:
			k.VMCOREINFO = bootText(n.Desc)
		}
	}
	if k.VMCOREINFO == nil {
		return nil, errors.New("no VMCOREINFO note (boot the guest with qemu_fw_cfg loaded and QEMU's -device vmcoreinfo)")
	}
	keys := parseKeys(k.VMCOREINFO)
	stext, err1 := strconv.ParseUint(keys["SYMBOL(_stext)"], 16, 64)
	physBase, err2 := strconv.ParseInt(keys["NUMBER(phys_base)"], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, errors.New("VMCOREINFO lacks SYMBOL(_stext) or NUMBER(phys_base)")
	}
	k.TextVirt = stext
	k.TextPhys = x86.ImagePhys(stext, uint64(physBase))
	k.PageOffsetBase = PageOffset4Level
	if keys["NUMBER(pgtable_l5_enabled)"] == "1" {
		k.PageOffsetBase = PageOffset5Level
	}
	k.VMCOREINFONote = findVMCOREINFONote(k.Mem, f.Phys().Ranges(), k.VMCOREINFO)
	return k, nil
}

// bootText strips what a crash_save_vmcoreinfo call appends (a CRASHTIME
// line and the K-6 NULs before it), so that the text is the boot-time one
// the emulator starts from.
func bootText(desc []byte) []byte {
	t := bytes.Clone(desc)
	if i := bytes.LastIndex(t, []byte("CRASHTIME=")); i >= 0 && (i == 0 || t[i-1] == '\n' || t[i-1] == 0) {
		t = t[:i]
	}
	return bytes.TrimRight(t, "\x00")
}

// parseKeys maps the text's keys to their values (first occurrence).
func parseKeys(text []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(text), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			if _, dup := m[k]; !dup {
				m[k] = v
			}
		}
	}
	return m
}

// findVMCOREINFONote scans page starts of the given physical ranges for
// the kernel's note ("VMCOREINFO", type 0, the text), as package livedump's notes section suggests
// when /sys/kernel/vmcoreinfo was not recorded. It returns 0 unless exactly
// one page matches.
func findVMCOREINFONote(mem io.ReaderAt, ranges []elfcore.Range, text []byte) uint64 {
	want := vmcoreinfoNote(text)
	want = want[:min(len(want), 24+64)] // header, name and the start of the text
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	var found []uint64
	for _, r := range ranges {
		start := (r.Start + PageSize - 1) &^ (PageSize - 1)
		for at := start; at < r.End; at += chunk {
			n := min(uint64(chunk), r.End-at)
			got, _ := mem.ReadAt(buf[:n], int64(at))
			for off := 0; off+len(want) <= got; off += PageSize {
				if bytes.Equal(buf[off:off+len(want)], want) {
					found = append(found, at+uint64(off))
				}
			}
		}
	}
	if len(found) != 1 {
		return 0
	}
	return found[0]
}
