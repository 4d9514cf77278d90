package guest

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Facts is what the guest reported about itself from user space (as root)
// just before it printed READY. These are the ground truth that tests check
// dumps and consumers against.
type Facts struct {
	Nonce   string `json:"nonce"`
	Release string `json:"release"` // uname -r
	Cmdline string `json:"cmdline"` // /proc/cmdline

	// IOMem is /proc/iomem in order, nesting given by Depth (0 = top level).
	IOMem []IOMemEntry `json:"iomem"`
	// SystemRAM are the top-level "System RAM" ranges: the guest's RAM as the
	// kernel sees it (not QEMU's RAM blocks, which include BIOS areas).
	SystemRAM []Range `json:"system_ram"`

	// VMCOREINFO is /sys/kernel/vmcoreinfo: physical address and size of the
	// kernel's VMCOREINFO ELF note.
	VMCOREINFO NoteAddr `json:"vmcoreinfo"`
	// FwCfgVMCOREINFO says whether qemu_fw_cfg exposed etc/vmcoreinfo, i.e.
	// whether QEMU will put a VMCOREINFO note in dumps.
	FwCfgVMCOREINFO bool `json:"fw_cfg_vmcoreinfo"`

	CPUsPresent  string `json:"cpus_present"` // e.g. "0-3"
	CPUsPossible string `json:"cpus_possible"`
	CPUsOnline   string `json:"cpus_online"`
	NumPresent   int    `json:"num_present"`
	NumPossible  int    `json:"num_possible"`
	NumOnline    int    `json:"num_online"`
	// CrashNotes are the per-CPU crash_notes (physical addresses), by CPU.
	CrashNotes []CrashNote `json:"crash_notes"`

	// Symbols are /proc/kallsyms addresses (KASLR applied) of _text, _stext,
	// _end, page_offset_base, phys_base, vmcoreinfo_note, init_uts_ns,
	// max_pfn and a few more (see guestfiles/init.sh).
	Symbols map[string]Hex `json:"symbols"`

	MemTotalKiB uint64 `json:"mem_total_kib"`
	// LA57 says whether the kernel runs with 5-level paging (the la57 CPU
	// flag is cleared when it does not).
	LA57 bool `json:"la57"`

	// Processes are the named processes the guest started, with their comm
	// as read back from /proc/PID/comm.
	Processes []Process `json:"processes"`
	// Markers are the marker lines as the kernel's printk ring holds them
	// (read back with dmesg, timestamp removed).
	Markers []string `json:"markers"`
}

// IOMemEntry is one line of /proc/iomem. End is inclusive, as printed.
type IOMemEntry struct {
	Start Hex    `json:"start"`
	End   Hex    `json:"end"`
	Name  string `json:"name"`
	Depth int    `json:"depth"`
}

// Range is an inclusive physical address range [Start, End].
type Range struct {
	Start Hex `json:"start"`
	End   Hex `json:"end"`
}

// NoteAddr locates an ELF note in physical memory.
type NoteAddr struct {
	Addr Hex    `json:"addr"`
	Size uint64 `json:"size"`
}

// CrashNote is one CPU's crash_notes buffer.
type CrashNote struct {
	CPU  int    `json:"cpu"`
	Addr Hex    `json:"addr"`
	Size uint64 `json:"size,omitempty"`
}

// Process is a named process in the guest.
type Process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// Hex is an address; it is written to JSON as a "0x..." string so that
// facts.json stays readable next to /proc/iomem and kallsyms output (and
// survives JSON readers that turn numbers into float64).
type Hex uint64

// MarshalText implements encoding.TextMarshaler.
func (h Hex) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%#x", uint64(h))), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hex) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(strings.TrimPrefix(string(b), "0x"), 16, 64)
	*h = Hex(v)
	return err
}

func (h Hex) String() string { return fmt.Sprintf("%#x", uint64(h)) }

// Symbol returns a kallsyms address, or 0.
func (f *Facts) Symbol(name string) uint64 { return uint64(f.Symbols[name]) }

// KASLROffset is _text minus the link-time address of _text
// (__START_KERNEL_map + 16 MiB = 0xffffffff81000000), which is what
// VMCOREINFO's KERNELOFFSET says.
func (f *Facts) KASLROffset() uint64 { return f.Symbol("_text") - 0xffffffff81000000 }

// PID returns the pid of the named process, or 0.
func (f *Facts) PID(name string) int {
	for _, p := range f.Processes {
		if p.Name == name {
			return p.PID
		}
	}
	return 0
}

const (
	factsBegin = "LDX-FACTS-BEGIN"
	factsEnd   = "LDX-FACTS-END"
)

var dmesgStamp = regexp.MustCompile(`^\[\s*[0-9]+\.[0-9]+\] `)

// parseFacts extracts the last facts block from a serial console log. The
// console turns "\n" into "\r\n" and may carry kernel messages and escape
// sequences before the block, so only the lines between the BEGIN and END
// markers are read and carriage returns are dropped.
func parseFacts(console []byte) (*Facts, error) {
	console = bytes.ReplaceAll(console, []byte("\r"), nil)
	b := bytes.LastIndex(console, []byte("\n"+factsBegin+"\n"))
	if b < 0 {
		if bytes.HasPrefix(console, []byte(factsBegin+"\n")) {
			b = -1
		} else {
			return nil, fmt.Errorf("no %s line", factsBegin)
		}
	}
	body := console[b+1+len(factsBegin)+1:]
	e := bytes.Index(body, []byte("\n"+factsEnd+"\n"))
	if e < 0 {
		if !bytes.HasSuffix(body, []byte("\n"+factsEnd)) {
			return nil, fmt.Errorf("no %s line after %s", factsEnd, factsBegin)
		}
		e = len(body) - len(factsEnd) - 1
	}
	body = body[:e+1]

	sections := map[string][]string{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "== "); ok {
			cur = strings.TrimSpace(name)
			if _, dup := sections[cur]; !dup {
				sections[cur] = []string{}
			}
			continue
		}
		if cur == "" {
			continue
		}
		sections[cur] = append(sections[cur], line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}

	f := &Facts{Symbols: map[string]Hex{}}
	first := func(name string) string {
		if l := sections[name]; len(l) > 0 {
			return strings.TrimSpace(l[0])
		}
		return ""
	}
	f.Nonce = first("nonce")
	f.Release = first("uname-r")
	f.Cmdline = first("cmdline")
	if f.Release == "" {
		return nil, fmt.Errorf("facts: no uname-r")
	}

	for _, l := range sections["iomem"] {
		ent, err := parseIOMemLine(l)
		if err != nil {
			return nil, err
		}
		f.IOMem = append(f.IOMem, ent)
		if ent.Depth == 0 && ent.Name == "System RAM" {
			f.SystemRAM = append(f.SystemRAM, Range{ent.Start, ent.End})
		}
	}

	// The kernel prints "%pa %x": a 0x-prefixed address and a hex size
	// (0x1024 = 12+12+4096+12 bytes for 4 KiB pages).
	if v := strings.Fields(first("vmcoreinfo")); len(v) == 2 {
		var err1, err2 error
		err1 = f.VMCOREINFO.Addr.UnmarshalText([]byte(v[0]))
		f.VMCOREINFO.Size, err2 = strconv.ParseUint(strings.TrimPrefix(v[1], "0x"), 16, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("facts: bad vmcoreinfo line %q", first("vmcoreinfo"))
		}
	} else if first("vmcoreinfo") != "" {
		return nil, fmt.Errorf("facts: bad vmcoreinfo line %q", first("vmcoreinfo"))
	}
	f.FwCfgVMCOREINFO = first("fw-cfg-vmcoreinfo") == "yes"
	f.LA57 = first("la57") == "yes"

	var err error
	f.CPUsPresent, f.CPUsPossible, f.CPUsOnline = first("cpu-present"), first("cpu-possible"), first("cpu-online")
	if f.NumPresent, err = countCPUList(f.CPUsPresent); err != nil {
		return nil, err
	}
	if f.NumPossible, err = countCPUList(f.CPUsPossible); err != nil {
		return nil, err
	}
	if f.NumOnline, err = countCPUList(f.CPUsOnline); err != nil {
		return nil, err
	}

	for _, l := range sections["crash-notes"] {
		v := strings.Fields(l)
		if len(v) < 2 {
			return nil, fmt.Errorf("facts: bad crash-notes line %q", l)
		}
		cpu, err1 := strconv.Atoi(v[0])
		addr, err2 := strconv.ParseUint(v[1], 16, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("facts: bad crash-notes line %q", l)
		}
		cn := CrashNote{CPU: cpu, Addr: Hex(addr)}
		if len(v) > 2 {
			cn.Size, _ = strconv.ParseUint(v[2], 10, 64)
		}
		f.CrashNotes = append(f.CrashNotes, cn)
	}
	sort.Slice(f.CrashNotes, func(i, j int) bool { return f.CrashNotes[i].CPU < f.CrashNotes[j].CPU })

	for _, l := range sections["kallsyms"] {
		v := strings.Fields(l)
		if len(v) < 3 {
			return nil, fmt.Errorf("facts: bad kallsyms line %q", l)
		}
		addr, err := strconv.ParseUint(v[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("facts: bad kallsyms line %q", l)
		}
		if _, dup := f.Symbols[v[2]]; !dup {
			f.Symbols[v[2]] = Hex(addr)
		}
	}

	if v := strings.Fields(first("meminfo")); len(v) >= 2 && v[0] == "MemTotal:" {
		f.MemTotalKiB, _ = strconv.ParseUint(v[1], 10, 64)
	}

	for _, l := range sections["processes"] {
		v := strings.Fields(l)
		if len(v) != 2 {
			return nil, fmt.Errorf("facts: bad processes line %q", l)
		}
		pid, err := strconv.Atoi(v[0])
		if err != nil {
			return nil, fmt.Errorf("facts: bad processes line %q", l)
		}
		f.Processes = append(f.Processes, Process{Name: v[1], PID: pid})
	}

	for _, l := range sections["markers"] {
		f.Markers = append(f.Markers, dmesgStamp.ReplaceAllString(l, ""))
	}
	return f, nil
}

// parseIOMemLine parses "  00100000-1ffdffff : System RAM"; two spaces of
// indentation per nesting level.
func parseIOMemLine(l string) (IOMemEntry, error) {
	var e IOMemEntry
	trimmed := strings.TrimLeft(l, " ")
	e.Depth = (len(l) - len(trimmed)) / 2
	rng, name, ok := strings.Cut(trimmed, " : ")
	if !ok {
		return e, fmt.Errorf("facts: bad iomem line %q", l)
	}
	s, en, ok := strings.Cut(rng, "-")
	if !ok {
		return e, fmt.Errorf("facts: bad iomem line %q", l)
	}
	err1 := e.Start.UnmarshalText([]byte(s))
	err2 := e.End.UnmarshalText([]byte(en))
	if err1 != nil || err2 != nil {
		return e, fmt.Errorf("facts: bad iomem line %q", l)
	}
	e.Name = name
	return e, nil
}

// countCPUList counts the CPUs in a kernel CPU list such as "0-3,5,7-8".
func countCPUList(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("bad CPU list %q", s)
			}
		}
		n += b - a + 1
	}
	return n, nil
}
