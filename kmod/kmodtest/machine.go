package kmodtest

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/kmod"
)

// MachineConfig shapes a Machine: the running kernel as user space sees
// it, the device, and how the emulated livedump run behaves.
type MachineConfig struct {
	// Kernel is the running kernel; default NewSynthetic with 2 CPUs.
	Kernel *Kernel
	// MemTotal and MemAvailable (bytes) go to /proc/meminfo; default 4 GiB
	// and 3 GiB.
	MemTotal, MemAvailable uint64
	// PossibleCPUs and OnlineCPUs default to Kernel.CPUs (present).
	PossibleCPUs, OnlineCPUs int
	// PercpuUnit is the per-CPU unit size the boot log names; default
	// 256 KiB. NoPercpuLine leaves the line out of the log.
	PercpuUnit   uint64
	NoPercpuLine bool
	// Layout says how user space can learn the direct map's base
	// (Kernel.PageOffsetBase): "kcore" (default, /proc/kcore's program
	// headers), "config" (only /proc/config.gz, whose
	// CONFIG_RANDOMIZE_MEMORY is RandomizeMemory) or "none".
	Layout          string
	RandomizeMemory bool
	// Cmdline is /proc/cmdline.
	Cmdline string
	// Euid is the effective uid capture sees (default 0, root).
	Euid int

	// DeviceName, Major and Minor identify the device (default loop3,
	// 7:3); DeviceSize is its size (default (max_pfn+1)·4096 rounded up
	// to 1 MiB, plus 1 MiB).
	DeviceName   string
	Major, Minor uint32
	DeviceSize   int64
	// DeviceFill fills the device at creation (stale bytes); default
	// stalePage pattern for every page, so that never-written pages that
	// were not prepared are visible.
	NoStaleFill bool

	// NoLivedump: the kernel has no livedump support.
	NoLivedump bool
	// Attributes are later-tree attributes offered besides state and
	// output: "failed", "buffer_size", "type" (package kmod: the kernel interface). With "type", output
	// is parsed as later trees do (only a trailing newline is dropped).
	Attributes []string
	// BufferPages is the request-queue size (buffer_size); default
	// 131072, v1's fixed size.
	BufferPages int

	// Unwritten are RAM ranges the module never dumps (its buffers, package livedump, "Placement").
	Unwritten []elfcore.Range
	// Early are the pages START dumps (sensitive pages).
	Early []elfcore.Range
	// Late are pages whose copies are still queued at FINISH, written
	// with the header and notes FinishLatency after FINISH; UNINIT before
	// then loses them all (package kmod: setups that crash the machine).
	Late []elfcore.Range
	// SweepTime is how long SWEEP's write blocks; FinishLatency how long
	// FINISH's pages take to reach the device.
	SweepTime, FinishLatency time.Duration
	// SweepQueued is the share of SWEEP's pages still queued when its
	// write returns; they reach the device over DrainTime (default
	// SweepTime), after FINISH, and UNINIT waits for them. The real v1
	// kernel returned from SWEEP on a 2 GiB guest with 708 of its 1013 MiB
	// written and wrote the rest within the next 1.3 s; an UNINIT straight
	// after FINISH took 1.4 s and returned with the queue drained. 0 means
	// that default of 0.3; a negative value means SWEEP returns with
	// everything written.
	SweepQueued float64
	DrainTime   time.Duration
	// DropFinish: FINISH's pages never reach the device (K-4).
	DropFinish bool
	// OpenFails: INIT's exclusive open of the device fails (say, someone
	// grabbed it after preflight); v1 does not notice (package kmod: the kernel interface), so the
	// device is not claimed and START would oops.
	OpenFails bool
	// FailState makes the write of a state fail with that errno (and a
	// kernel log line), leaving the state unchanged; FailOutput the write
	// of output.
	FailState  map[kmod.State]syscall.Errno
	FailOutput syscall.Errno
	// FailedPages is what `failed` reports after a run.
	FailedPages int
	// OnWrite, if set, is called at the start of every attribute write,
	// before the kernel acts on it (tests cancel captures there).
	OnWrite func(attr, value string)
}

// Machine is a fake machine for ldx capture: a directory tree standing in
// for the /proc, /sys and /dev/kmsg files capture reads (laid out as
// kmod.PathsUnder expects), a regular file standing in for the block
// device, and the livedump interface itself (Livedump), which enforces
// the kernel's rules and writes the device as the module would. Host
// returns the kmod.Host that points capture at all of it.
type Machine struct {
	Root, Device string
	Kernel       *Kernel
	Config       MachineConfig
	Livedump     *Livedump
	paths        kmod.Paths
	blockDev     string

	mu      sync.Mutex
	kmsgSeq int
	stat    [17]uint64
}

// NewMachine builds a machine under dir (a fresh temporary directory).
func NewMachine(dir string, cfg MachineConfig) (*Machine, error) {
	if cfg.Kernel == nil {
		cfg.Kernel = NewSynthetic(SyntheticOptions{CPUs: 2})
	}
	k := cfg.Kernel
	if cfg.MemTotal == 0 {
		cfg.MemTotal = 4 << 30
	}
	if cfg.MemAvailable == 0 {
		cfg.MemAvailable = 3 << 30
	}
	if cfg.PossibleCPUs == 0 {
		cfg.PossibleCPUs = k.CPUs
	}
	if cfg.OnlineCPUs == 0 {
		cfg.OnlineCPUs = k.CPUs
	}
	if cfg.PercpuUnit == 0 {
		cfg.PercpuUnit = 256 << 10
	}
	if cfg.Layout == "" {
		cfg.Layout = "kcore"
	}
	if cfg.DeviceName == "" {
		cfg.DeviceName, cfg.Major, cfg.Minor = "loop3", 7, 3
	}
	if cfg.DeviceSize == 0 {
		cfg.DeviceSize = int64(((k.MaxPFN+1)*PageSize+(1<<20)-1)&^((1<<20)-1)) + 1<<20
	}
	if cfg.BufferPages == 0 {
		cfg.BufferPages = 131072
	}
	m := &Machine{Root: dir, Kernel: k, Config: cfg, paths: kmod.PathsUnder(dir)}
	m.Device = filepath.Join(dir, "dev", cfg.DeviceName)
	if err := m.build(); err != nil {
		return nil, err
	}
	if !cfg.NoLivedump {
		m.Livedump = &Livedump{m: m, state: kmod.Undefined, typ: "memdump", bufferPages: cfg.BufferPages}
	}
	return m, nil
}

// Host returns the kmod.Host of this machine.
func (m *Machine) Host() *kmod.Host {
	h := &kmod.Host{
		Paths:      m.paths,
		StatDevice: m.statDevice,
		Claimed:    m.claimed,
		Geteuid:    func() int { return m.Config.Euid },
	}
	if m.blockDev != "" {
		// The real block layer: device nodes, exclusive opens, sysfs
		// counters, mounts and swaps are the host's own.
		def := kmod.DefaultPaths()
		h.StatDevice, h.Claimed = nil, nil
		h.Paths.SysDevBlock, h.Paths.Mounts, h.Paths.Swaps = def.SysDevBlock, def.Mounts, def.Swaps
	}
	if m.Livedump != nil {
		h.Attrs = m.Livedump
	}
	return h
}

// UseBlockDevice makes a real block device the dump device, for tests
// that run as root: typically a loop device over Device, so that the
// emulated kernel's pages land in the same file. The emulated kernel then
// opens it exclusively from INIT to UNINIT, as the real one does, and the
// Host probes the real block layer.
func (m *Machine) UseBlockDevice(path string) { m.blockDev = path }

// Path returns the fake file standing for a host path such as
// "/proc/mounts".
func (m *Machine) Path(hostPath string) string { return filepath.Join(m.Root, hostPath) }

// SysDir is the device's directory under /sys/dev/block.
func (m *Machine) SysDir() string {
	return filepath.Join(m.paths.SysDevBlock, fmt.Sprintf("%d:%d", m.Config.Major, m.Config.Minor))
}

func (m *Machine) statDevice(path string) (kmod.DevNode, error) {
	if path == m.Device {
		st, err := os.Stat(path)
		if err != nil {
			return kmod.DevNode{}, err
		}
		return kmod.DevNode{Block: true, Major: m.Config.Major, Minor: m.Config.Minor, Size: st.Size()}, nil
	}
	if st, err := os.Stat(path); err == nil && strings.HasPrefix(path, m.Root) {
		// Other files of the fake tree are what they are.
		return kmod.DevNode{Block: false, Size: st.Size()}, nil
	}
	return kmod.DevNode{}, &os.PathError{Op: "stat", Path: path, Err: fs.ErrNotExist}
}

// claimed: the device is held exclusively while the emulated kernel has
// it open (from INIT to UNINIT).
func (m *Machine) claimed(path string) (bool, error) {
	if path != m.Device {
		return false, nil
	}
	if m.Livedump == nil {
		return false, nil
	}
	m.Livedump.mu.Lock()
	defer m.Livedump.mu.Unlock()
	return m.Livedump.claimed, nil
}

// Kmsg appends a message to the fake kernel log.
func (m *Machine) Kmsg(prio int, format string, a ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kmsgSeq++
	f, err := os.OpenFile(m.paths.Kmsg, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%d,%d,%d,-;%s\n", prio, m.kmsgSeq, m.kmsgSeq*1000, fmt.Sprintf(format, a...))
}

// countWrites adds page writes to the device's I/O counters.
func (m *Machine) countWrites(pages uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stat[4] += pages
	m.stat[6] += pages * 8
	return m.writeStat()
}

func (m *Machine) writeStat() error {
	var b strings.Builder
	for _, v := range m.stat {
		fmt.Fprintf(&b, " %8d", v)
	}
	b.WriteByte('\n')
	// Renamed into place, so that a reader never sees it half-written.
	p := filepath.Join(m.SysDir(), "stat")
	if err := os.WriteFile(p+".new", []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(p+".new", p)
}

func (m *Machine) write(hostPath string, data []byte) error {
	p := m.Path(hostPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// build writes the fake tree and the device.
func (m *Machine) build() error {
	k, cfg := m.Kernel, m.Config
	var iomem strings.Builder
	prev := uint64(0)
	for _, r := range k.RAM {
		if r.Start > prev {
			fmt.Fprintf(&iomem, "%08x-%08x : Reserved\n", prev, r.Start-1)
		}
		fmt.Fprintf(&iomem, "%08x-%08x : System RAM\n", r.Start, r.End-1)
		if k.TextPhys >= r.Start && k.TextPhys < r.End {
			fmt.Fprintf(&iomem, "  %08x-%08x : Kernel code\n", k.TextPhys, k.TextPhys+k.TextSize/2-1)
		}
		prev = r.End
	}
	files := map[string]string{
		"/proc/iomem":                      iomem.String(),
		"/proc/meminfo":                    fmt.Sprintf("MemTotal:       %d kB\nMemFree:        %d kB\nMemAvailable:   %d kB\n", cfg.MemTotal>>10, cfg.MemAvailable>>10, cfg.MemAvailable>>10),
		"/proc/mounts":                     "sysfs /sys sysfs rw 0 0\nproc /proc proc rw 0 0\n/dev/vda / ext4 rw,relatime 0 0\n",
		"/proc/swaps":                      "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
		"/proc/cmdline":                    cfg.Cmdline + "\n",
		"/proc/sys/kernel/osrelease":       release(k) + "\n",
		"/proc/sys/kernel/hostname":        "ldx-test\n",
		"/sys/devices/system/cpu/present":  cpuRange(k.CPUs),
		"/sys/devices/system/cpu/possible": cpuRange(cfg.PossibleCPUs),
		"/sys/devices/system/cpu/online":   cpuRange(cfg.OnlineCPUs),
		"/proc/kallsyms":                   fmt.Sprintf("%016x T _text\n%016x T _stext\n", k.TextVirt, k.TextVirt),
	}
	if k.VMCOREINFONote != 0 {
		files["/sys/kernel/vmcoreinfo"] = fmt.Sprintf("0x%016x %x\n", k.VMCOREINFONote, VMCOREINFONoteSize)
	}
	for cpu, a := range k.CrashNotes {
		files[fmt.Sprintf("/sys/devices/system/cpu/cpu%d/crash_notes", cpu)] = fmt.Sprintf("%x\n", a)
		files[fmt.Sprintf("/sys/devices/system/cpu/cpu%d/crash_notes_size", cpu)] = fmt.Sprintf("%d\n", NoteBufSize)
	}
	dev := fmt.Sprintf("/sys/dev/block/%d:%d", cfg.Major, cfg.Minor)
	files[dev+"/uevent"] = fmt.Sprintf("MAJOR=%d\nMINOR=%d\nDEVNAME=%s\nDEVTYPE=disk\n", cfg.Major, cfg.Minor, cfg.DeviceName)
	files[dev+"/dev"] = fmt.Sprintf("%d:%d\n", cfg.Major, cfg.Minor)
	files[dev+"/size"] = fmt.Sprintf("%d\n", cfg.DeviceSize/512)
	files[dev+"/ro"] = "0\n"
	files[dev+"/queue/write_zeroes_max_bytes"] = "4294966784\n"
	files[dev+"/queue/discard_max_bytes"] = "4294966784\n"
	for p, s := range files {
		if err := m.write(p, []byte(s)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(m.SysDir(), "holders"), 0o755); err != nil {
		return err
	}
	if err := m.writeStat(); err != nil {
		return err
	}
	if err := m.write("/sys/kernel/notes", buildIDNote(k)); err != nil {
		return err
	}
	// The boot log.
	if err := m.write("/dev/kmsg", nil); err != nil {
		return err
	}
	m.Kmsg(6, "Linux version %s (ldx kmodtest)", release(k))
	if !cfg.NoPercpuLine {
		m.Kmsg(6, "percpu: Embedded %d pages/cpu s225280 r8192 d28672 u%d", cfg.PercpuUnit/PageSize, cfg.PercpuUnit)
	}
	switch cfg.Layout {
	case "kcore":
		if err := m.write("/proc/kcore", kcore(k)); err != nil {
			return err
		}
	case "config":
		v := "# CONFIG_RANDOMIZE_MEMORY is not set"
		if cfg.RandomizeMemory {
			v = "CONFIG_RANDOMIZE_MEMORY=y"
		}
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		fmt.Fprintf(zw, "CONFIG_X86_64=y\nCONFIG_RANDOMIZE_BASE=y\n%s\n", v)
		zw.Close()
		if err := m.write("/proc/config.gz", b.Bytes()); err != nil {
			return err
		}
	}
	// The device, holding stale bytes.
	f, err := os.Create(m.Device)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(cfg.DeviceSize); err != nil {
		return err
	}
	if !cfg.NoStaleFill {
		buf := make([]byte, chunkPages*PageSize)
		pages := uint64(cfg.DeviceSize) / PageSize
		for base := uint64(0); base < pages; base += chunkPages {
			n := min(chunkPages, pages-base)
			for i := range n {
				stalePage(buf[i*PageSize:(i+1)*PageSize], 99, base+i)
			}
			if _, err := f.WriteAt(buf[:n*PageSize], int64(base*PageSize)); err != nil {
				return err
			}
		}
	}
	return f.Sync()
}

func release(k *Kernel) string {
	if v := parseKeys(k.VMCOREINFO)["OSRELEASE"]; v != "" {
		return v
	}
	return "6.1.0-ldx-synthetic"
}

func cpuRange(n int) string {
	if n <= 1 {
		return "0\n"
	}
	return fmt.Sprintf("0-%d\n", n-1)
}

// buildIDNote is /sys/kernel/notes: the GNU build-id note.
func buildIDNote(k *Kernel) []byte {
	id, _ := hex.DecodeString(parseKeys(k.VMCOREINFO)["BUILD-ID"])
	b := binary.LittleEndian.AppendUint32(nil, 4)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(id)))
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = append(b, "GNU\x00"...)
	b = append(b, id...)
	return append(b, make([]byte, (4-len(id)%4)%4)...)
}

// kcore is /proc/kcore's header: a note, the kernel text, the RAM ranges
// through the direct map (p_vaddr = page_offset_base + p_paddr) and a
// vmalloc segment without a physical address.
func kcore(k *Kernel) []byte {
	type seg struct{ vaddr, paddr, size uint64 }
	segs := []seg{{k.TextVirt, k.TextPhys, k.TextSize}}
	for _, r := range k.RAM {
		segs = append(segs, seg{k.PageOffsetBase + r.Start, r.Start, r.Len()})
	}
	segs = append(segs, seg{x86.VmallocBase4Level, ^uint64(0), 32 << 40})
	phnum := 1 + len(segs)
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_CORE), Machine: uint16(elf.EM_X86_64), Version: 1, Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: uint16(phnum)}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	binary.Write(&b, binary.LittleEndian, &h)
	off := uint64(64 + 56*phnum)
	binary.Write(&b, binary.LittleEndian, &elf.Prog64{Type: uint32(elf.PT_NOTE), Off: off})
	off += 4096
	for _, s := range segs {
		binary.Write(&b, binary.LittleEndian, &elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: 7, Off: off, Vaddr: s.vaddr, Paddr: s.paddr, Filesz: s.size, Memsz: s.size, Align: PageSize})
		off += s.size
	}
	return b.Bytes()
}

// AddPartition gives the device a partition (name, minor), for tests of
// partitions in use.
func (m *Machine) AddPartition(name string, minor uint32) error {
	dir := filepath.Join(m.SysDir(), name)
	if err := os.MkdirAll(filepath.Join(dir, "holders"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "partition"), []byte("1\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "dev"), fmt.Appendf(nil, "%d:%d\n", m.Config.Major, minor), 0o644)
}

// AddHolder stacks a dm device (with its dm name) on the device.
func (m *Machine) AddHolder(name, dmName string) error {
	dir := filepath.Join(m.SysDir(), "holders", name, "dm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "name"), []byte(dmName+"\n"), 0o644)
}

// AppendFile appends a line to a fake host file such as "/proc/mounts".
func (m *Machine) AppendFile(hostPath, line string) error {
	f, err := os.OpenFile(m.Path(hostPath), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(line + "\n")
	return err
}
