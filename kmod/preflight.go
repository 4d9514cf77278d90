package kmod

import (
	"errors"
	"fmt"
	"ldx/elfcore/kernel/x86"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"ldx/elfcore/livedump"
	"ldx/kmod/manifest"
)

// CheckID names a preflight check; the CLI maps each to its exit code.
type CheckID string

// The preflight checks, in the order they run and are reported.
const (
	CheckInterface CheckID = "interface"
	CheckRoot      CheckID = "root"
	CheckIdle      CheckID = "idle"
	CheckDevice    CheckID = "device"
	CheckInUse     CheckID = "device-in-use"
	CheckSize      CheckID = "device-size"
	CheckLayout    CheckID = "memory-layout"
	CheckMemory    CheckID = "memory"
	CheckCPUs      CheckID = "cpus"
)

// Status is a check's verdict.
type Status int

const (
	Pass    Status = iota // nothing in the way
	Warn                  // the capture goes ahead; the user should know
	Refuse                // the capture does not go ahead (unless Forced)
	Skipped               // not checked (an earlier check makes it moot)
)

func (s Status) String() string {
	return [...]string{"ok", "warning", "REFUSED", "skipped"}[s]
}

// Check is one preflight check, as data: what it guards against and how
// it decides.
type Check struct {
	ID   CheckID
	Name string
	// Risk is what goes wrong when the check's condition is ignored (the
	// package documentation, "Setups that crash the machine" and "The
	// kernel interface", says what real runs showed).
	Risk string
	run  func(*preflight) CheckResult
}

// Checks are every preflight check, in order. Nothing is written to the
// kernel interface or the device until all pass.
var Checks = []Check{
	{CheckInterface, "livedump interface", "without the livedump patches there is nothing to capture with", (*preflight).checkInterface},
	{CheckRoot, "root", "the interface, /proc/iomem's addresses and the device are root's", (*preflight).checkRoot},
	{CheckIdle, "interface idle", "a second run on top of one in progress is refused by the kernel, or crashes it (v1 has no lock)", (*preflight).checkIdle},
	{CheckDevice, "device", "the kernel accepts any path at INIT; with one that is not a usable block device START oopses and SWEEP hangs (seen on real runs)", (*preflight).checkDevice},
	{CheckInUse, "device not in use", "the dump overwrites the device from byte 0", (*preflight).checkInUse},
	{CheckSize, "device size", "the kernel does not check the size; writes past the end fail silently (livedump defect K-8)", (*preflight).checkSize},
	{CheckLayout, "memory layout (KASLR)", "with a randomised memory layout INIT oopses in wrprotect_unselect_pages, every time (seen on real runs)", (*preflight).checkLayout},
	{CheckMemory, "available memory", "INIT allocates 1 GiB of buffers page by page; when memory runs out the OOM killer runs and the kernel panics, it does not fail with ENOMEM (seen on real runs)", (*preflight).checkMemory},
	{CheckCPUs, "CPUs", "START protects only the first 2 MiB of CPU 0's per-CPU area as sensitive; a CPU whose per-CPU area lies beyond it double-faults (seen on real runs)", (*preflight).checkCPUs},
}

// CheckResult is a check's outcome.
type CheckResult struct {
	ID     CheckID `json:"id"`
	Name   string  `json:"name"`
	Status Status  `json:"status"`
	// Found is what the check saw.
	Found string `json:"found"`
	// Risk is the check's risk, for refusals.
	Risk string `json:"risk,omitempty"`
	// WayOut tells the user how to make the check pass.
	WayOut string `json:"way_out,omitempty"`
	// Forcible says --force may override the refusal: only where ldx
	// cannot be sure and the user can judge.
	Forcible bool `json:"forcible,omitempty"`
	// Forced says --force did override it.
	Forced bool `json:"forced,omitempty"`
}

// PreflightOptions shape the checks.
type PreflightOptions struct {
	// Force overrides the refusals the user can judge (CheckResult.Forcible).
	Force bool
	// Reset allows a busy interface: it is reset (UNINIT) before the run.
	Reset bool
	// All runs every check even when the interface is missing (dry runs).
	All bool
}

// PreflightReport is what preflight found.
type PreflightReport struct {
	Results []CheckResult
	Facts   *Facts
	Device  *BlockDevice
	// Interface is nil when there is none.
	Interface *Interface
	// State is the interface's state before anything was done.
	State State
	// BufferBytes is what INIT allocates for its request queues.
	BufferBytes uint64
	// NeedBytes is the smallest device for this machine.
	NeedBytes uint64
}

// Refusal returns the first refusal not overridden, or nil.
func (r *PreflightReport) Refusal() *CheckResult {
	for i := range r.Results {
		if res := &r.Results[i]; res.Status == Refuse && !res.Forced {
			return res
		}
	}
	return nil
}

// Err returns a *RefusedError when a check refuses.
func (r *PreflightReport) Err() error {
	first := r.Refusal()
	if first == nil {
		return nil
	}
	e := &RefusedError{Result: *first}
	for _, res := range r.Results {
		if res.Status == Refuse && !res.Forced && res.ID != first.ID {
			e.Others = append(e.Others, res)
		}
	}
	return e
}

// RefusedError is a preflight refusal: nothing was written.
type RefusedError struct {
	Result CheckResult
	// Others are the other refusals, reported too.
	Others []CheckResult
}

func (e *RefusedError) Error() string {
	s := "refused: " + describe(e.Result)
	for _, o := range e.Others {
		s += "\nalso refused: " + describe(o)
	}
	return s + "\nnothing was written to the kernel interface or the device"
}

// Is lets errors.Is(err, ErrNoInterface) see a missing interface.
func (e *RefusedError) Is(target error) bool {
	return target == ErrNoInterface && e.Result.ID == CheckInterface
}

func describe(r CheckResult) string {
	s := r.Name + ": " + r.Found
	if r.Risk != "" {
		s += "\n  risk: " + r.Risk
	}
	if r.WayOut != "" {
		s += "\n  way out: " + r.WayOut
	}
	if r.Forcible {
		s += "\n  (--force overrides this check if you can vouch for it)"
	}
	return s
}

// preflight is the state the checks share.
type preflight struct {
	h        *Host
	opt      PreflightOptions
	device   string
	rep      *PreflightReport
	ifaceErr error
	stateErr error
	devErr   error
	kmsg     *Kmsg
}

// Preflight runs every check against the machine and the device. It
// reads only; it writes nothing anywhere. kmsg, if not nil, is given to
// the Interface it opens.
func Preflight(h *Host, device string, opt PreflightOptions, kmsg *Kmsg) *PreflightReport {
	h = h.withDefaults()
	p := &preflight{h: h, opt: opt, device: device, rep: &PreflightReport{}, kmsg: kmsg}
	p.rep.Interface, p.ifaceErr = OpenInterface(h.Paths.Livedump, h.Attrs, kmsg)
	if p.ifaceErr == nil {
		p.rep.State, p.stateErr = p.rep.Interface.State()
	}
	p.rep.Facts = gatherFacts(h)
	// Without an interface the device is not even opened (unless every
	// check is wanted).
	if device != "" && (p.ifaceErr == nil || opt.All) {
		p.rep.Device, p.devErr = probeDevice(h, device)
	}
	for _, c := range Checks {
		var r CheckResult
		if c.ID != CheckInterface && p.ifaceErr != nil && !opt.All {
			r = CheckResult{Status: Skipped, Found: "not checked: no livedump interface"}
		} else {
			r = c.run(p)
		}
		r.ID, r.Name = c.ID, c.Name
		if r.Status == Refuse {
			r.Risk = c.Risk
			if r.Forcible && opt.Force {
				r.Forced = true
			}
		}
		p.rep.Results = append(p.rep.Results, r)
	}
	return p.rep
}

func pass(format string, a ...any) CheckResult {
	return CheckResult{Status: Pass, Found: fmt.Sprintf(format, a...)}
}
func refuse(found, wayOut string) CheckResult {
	return CheckResult{Status: Refuse, Found: found, WayOut: wayOut}
}
func refuseForcible(found, wayOut string) CheckResult {
	return CheckResult{Status: Refuse, Found: found, WayOut: wayOut, Forcible: true}
}

func (p *preflight) checkInterface() CheckResult {
	if p.ifaceErr != nil {
		if errors.Is(p.ifaceErr, ErrNoInterface) {
			return refuse(p.ifaceErr.Error(),
				"boot a kernel built with the livedump patches (CONFIG_LIVEDUMP); there is nothing to capture with on this one")
		}
		return refuse(p.ifaceErr.Error(), "check that "+p.h.Paths.Livedump+" is readable")
	}
	i := p.rep.Interface
	kind := "v1"
	if len(i.Attributes) > 2 {
		kind = "later tree"
	}
	return pass("%s: %s (%s)", i.Root, strings.Join(i.Attributes, ", "), kind)
}

func (p *preflight) checkRoot() CheckResult {
	if uid := p.h.Geteuid(); uid != 0 {
		return refuse(fmt.Sprintf("running as uid %d", uid), "run as root (sudo ldx capture …)")
	}
	return pass("uid 0")
}

func (p *preflight) checkIdle() CheckResult {
	if p.stateErr != nil {
		return refuse(p.stateErr.Error(), "")
	}
	if pid, held := lockHeld(p.h.Paths.Lock); held {
		return refuse(fmt.Sprintf("another ldx capture (pid %s) is running (%s is locked)", pid, p.h.Paths.Lock), "wait for it to finish")
	}
	st := p.rep.State
	if st.Idle() {
		return pass("state %s (%d)", st, int(st))
	}
	if openers := openersOf(p.h.Paths.Proc, filepath.Join(p.h.Paths.Livedump, "state")); len(openers) > 0 {
		return refuse(fmt.Sprintf("state %s (%d), and %s has the state file open: a transition may be running right now", st, int(st), strings.Join(openers, ", ")),
			"wait for that process to finish; resetting under it could crash the kernel (v1 serialises nothing)")
	}
	if p.opt.Reset {
		return CheckResult{Status: Warn, Found: fmt.Sprintf("state %s (%d): --reset will UNINIT it first", st, int(st))}
	}
	return refuse(fmt.Sprintf("state %s (%d): a run is in progress or was abandoned", st, int(st)),
		"if no capture is running, `ldx capture --reset` brings the interface back to idle (UNINIT is accepted from any state from INIT on)")
}

func (p *preflight) checkDevice() CheckResult {
	if p.device == "" {
		return CheckResult{Status: Skipped, Found: "no device given"}
	}
	if p.devErr != nil {
		return refuse(p.devErr.Error(), "name an existing block device, e.g. /dev/sdb")
	}
	d := p.rep.Device
	if !d.Node.Block {
		return refuse(fmt.Sprintf("%s is not a block device", d.Resolved), "name a whole disk or partition (/dev/sdX, /dev/nvmeXnY, a loop device); the kernel writes to block devices only")
	}
	if d.RO {
		return refuse(fmt.Sprintf("%s is read-only", d.Resolved), "make it writable (blockdev --setrw) or use another device; the kernel opens it without checking and every write would fail unnoticed (K-8)")
	}
	if strings.HasPrefix(d.Name, "zram") || (strings.HasPrefix(d.Name, "ram") && len(d.Name) > 3 && d.Name[3] >= '0' && d.Name[3] <= '9') {
		return refuseForcible(fmt.Sprintf("%s is backed by RAM", d.Resolved), "use a disk: writing the dump to memory takes memory the kernel needs while its 1 GiB of buffers are allocated")
	}
	how := "no write-zeroes or discard: zeroing writes every byte"
	switch {
	case d.WriteZeroesMax > 0:
		how = "write-zeroes"
	case d.DiscardMax > 0:
		how = "discard"
	}
	return pass("%s (%s, %d:%d), %s, %s", d.Resolved, d.Name, d.Node.Major, d.Node.Minor, size(uint64(d.Node.Size)), how)
}

func (p *preflight) checkInUse() CheckResult {
	d := p.rep.Device
	if d == nil || !d.Node.Block {
		return CheckResult{Status: Skipped, Found: "no block device"}
	}
	uses := d.uses(p.h)
	// A busy interface holds its device itself (INIT to UNINIT); the
	// claim is probed again after --reset, before INIT.
	if p.rep.Interface == nil || p.rep.State.Idle() {
		if claimed, err := p.h.Claimed(d.Resolved); err == nil && claimed {
			uses = append(uses, "something holds it open exclusively")
		}
	}
	if len(uses) > 0 {
		return refuse(strings.Join(uses, "; "),
			"unmount it, swapoff, or take it out of its md/dm/LVM stack, or choose an unused device; the dump overwrites it from byte 0, and the kernel's exclusive open at INIT would fail unnoticed (v1 does not check it) so that START oopses")
	}
	if len(d.Parts) > 0 {
		var names []string
		for _, pt := range d.Parts {
			names = append(names, pt.Name)
		}
		return CheckResult{Status: Warn, Found: fmt.Sprintf("not in use, but it has partitions (%s): the dump overwrites them and the partition table", strings.Join(names, ", "))}
	}
	return pass("not mounted, not swap, no holders")
}

func (p *preflight) checkSize() CheckResult {
	d, f := p.rep.Device, p.rep.Facts
	if f.RAMErr != nil {
		return refuse("cannot read the RAM map: "+f.RAMErr.Error(), "run as root on a kernel with /proc/iomem")
	}
	need := max(f.DumpEnd(), manifest.Offset+manifest.MaxSize)
	p.rep.NeedBytes = need
	if d == nil || !d.Node.Block {
		return CheckResult{Status: Skipped, Found: fmt.Sprintf("the dump needs %s", size(need))}
	}
	have := uint64(d.Node.Size)
	if have < need {
		return refuse(fmt.Sprintf("%s holds %s; the dump needs (max_pfn+1)·4096 = %s (RAM tops out at %#x per %s; the capture manifest lies inside that range, at %#x)", d.Resolved, size(have), size(need), f.DumpEnd()-pageSize, p.h.Paths.Iomem, manifest.Offset),
			"use a device at least that large; it is the top physical address of RAM, holes included, not the amount of RAM")
	}
	return pass("needs %s of %s (top of RAM %#x)", size(need), size(have), f.DumpEnd()-pageSize)
}

func (p *preflight) checkLayout() CheckResult {
	f := p.rep.Facts
	const way = "boot with nokaslr (it turns memory-layout randomisation off with KASLR), or use a kernel built without CONFIG_RANDOMIZE_MEMORY"
	if f.PageOffsetFrom != "" {
		if x86.IsDefaultPageOffset(f.PageOffsetBase) {
			return pass("page_offset_base %#x, the default (from %s)", f.PageOffsetBase, f.PageOffsetFrom)
		}
		return refuse(fmt.Sprintf("page_offset_base is %#x (from %s), not the default %#x (4-level) or %#x (5-level): the memory layout is randomised", f.PageOffsetBase, f.PageOffsetFrom, uint64(x86.PageOffset4Level), uint64(x86.PageOffset5Level)), way)
	}
	args := strings.Fields(f.Cmdline)
	for _, a := range args {
		if a == "nokaslr" {
			return pass("nokaslr on the kernel command line")
		}
	}
	if f.Config != nil {
		switch {
		case f.Config["CONFIG_RANDOMIZE_MEMORY"] != "y":
			return pass("CONFIG_RANDOMIZE_MEMORY is not set (%s)", f.ConfigFrom)
		case f.Config["CONFIG_KASAN"] == "y":
			return pass("KASAN kernels do not randomise the memory layout (%s)", f.ConfigFrom)
		}
		found := fmt.Sprintf("the kernel is built with CONFIG_RANDOMIZE_MEMORY (%s) and the command line has no nokaslr, so the layout is randomised unless the boot loader skipped KASLR; page_offset_base itself cannot be read (no %s)", f.ConfigFrom, p.h.Paths.Kcore)
		if f.TextDefault != nil && *f.TextDefault {
			found += "; _text is at its unrelocated address, which suggests KASLR was not applied"
		}
		return refuseForcible(found, way+"; --force only if you know this kernel runs with an unrandomised layout")
	}
	return refuseForcible(fmt.Sprintf("cannot tell whether the memory layout is randomised: no %s, no kernel configuration, no nokaslr on the command line", p.h.Paths.Kcore),
		way+"; --force only if you know page_offset_base is the default")
}

// memoryNeeds is what INIT takes: the two request queues, the two
// wrprotect bitmaps, and the page tables of the direct map split to 4 KiB
// pages (8 bytes per page, never merged back; see package livedump, "When
// pages are written").
func (p *preflight) memoryNeeds() (buffers, other uint64) {
	pages := uint64(131072) // MEMDUMP_KFIFO_SIZE, v1 (package livedump, "Placement")
	if i := p.rep.Interface; i != nil {
		if n, ok, err := i.BufferPages(); err == nil && ok && n > 0 {
			pages = uint64(n)
		}
	}
	buffers = 2 * pages * pageSize
	f := p.rep.Facts
	bitmaps := 2 * ((f.MaxPFN/8 + pageSize - 1) &^ (pageSize - 1))
	return buffers, bitmaps + f.RAMBytes()/512
}

func (p *preflight) checkMemory() CheckResult {
	f := p.rep.Facts
	if f.MemErr != nil {
		return refuseForcible("cannot read available memory: "+f.MemErr.Error(), "--force only if you know well over 1 GiB is free")
	}
	buffers, other := p.memoryNeeds()
	p.rep.BufferBytes = buffers
	floor := buffers + other + 128<<20
	margin := max(uint64(512<<20), f.MemTotal/16)
	want := buffers + other + margin
	what := fmt.Sprintf("MemAvailable %s; INIT takes %s of buffers and %s of bitmaps and page tables", size(f.MemAvailable), size(buffers), size(other))
	const way = "free memory (stop services) or add memory before capturing"
	switch {
	case f.MemAvailable < floor:
		return refuse(what+": not enough", way)
	case f.MemAvailable < want:
		return refuseForcible(fmt.Sprintf("%s: less than that plus a %s safety margin for the running workload", what, size(margin)), way+"; --force if the workload will not grow during the capture")
	}
	return pass("%s; %s left", what, size(f.MemAvailable-buffers-other))
}

func (p *preflight) checkCPUs() CheckResult {
	f := p.rep.Facts
	if f.CPUErr != nil {
		return refuseForcible("cannot read the CPU lists: "+f.CPUErr.Error(), "--force only if you know the per-CPU areas of all online CPUs fit in 2 MiB")
	}
	// K-10: the header buffer is sized for the possible CPUs and, after
	// the notes are merged, may stay larger than the one page FINISH
	// copies it into (see package livedump, "Page 0: the header").
	nPossible, nPresent := len(f.Possible), len(f.Present)
	if merged := livedump.MergedHeaderSize(nPossible, nPresent); merged > pageSize {
		return refuseForcible(fmt.Sprintf("%d possible and %d present CPUs: the kernel's ELF header stays %d bytes after the notes are merged, and FINISH copies it into one 4096-byte page — an overflow (K-10, inferred from the code, not yet seen on a real run)", nPossible, nPresent, merged),
			fmt.Sprintf("boot with possible_cpus=%d (or fewer possible CPUs)", nPresent))
	}
	if f.PercpuUnit == 0 {
		if len(f.Online) <= 1 {
			return pass("one online CPU")
		}
		return refuseForcible(fmt.Sprintf("%d online CPUs, and the per-CPU unit size is unknown (no \"percpu: Embedded\" line left in the kernel log, crash_notes not evenly spaced): cannot tell whether their per-CPU areas fit in 2 MiB", len(f.Online)),
			"look for \"percpu: Embedded … u<bytes>\" in the boot log (journalctl -k -b); if online CPUs × u is at most 2 MiB, use --force")
	}
	const window = 2 << 20
	// Where each CPU's unit starts, relative to CPU 0's: from the
	// crash_notes addresses (same offset in every unit) where known.
	notes := map[int]uint64{}
	if len(f.CrashNotes) == len(f.Present) {
		for i, cpu := range f.Present {
			notes[cpu] = f.CrashNotes[i]
		}
	}
	offset := func(cpu int) uint64 {
		if a, ok := notes[cpu]; ok && notes[0] != 0 && a >= notes[0] {
			return a - notes[0]
		}
		return uint64(cpu) * f.PercpuUnit
	}
	var bad, badOffline []int
	for _, c := range f.Possible {
		if offset(c)+f.PercpuUnit <= window {
			continue
		}
		if contains(f.Online, c) {
			bad = append(bad, c)
		} else {
			badOffline = append(badOffline, c)
		}
	}
	fits := window / f.PercpuUnit
	if len(bad) > 0 {
		return refuse(fmt.Sprintf("%d online CPUs with %s per-CPU units (from %s): only %d fit in the 2 MiB START protects as sensitive; CPUs %s would double-fault", len(f.Online), size(f.PercpuUnit), f.PercpuFrom, fits, cpuList(bad)),
			fmt.Sprintf("boot with maxcpus=%d (or nr_cpus=%d), or take CPUs %s offline for the capture", fits, fits, cpuList(bad)))
	}
	if len(badOffline) > 0 {
		return CheckResult{Status: Warn, Found: fmt.Sprintf("%d online CPUs fit (%s units); do not bring CPUs %s online during the capture: they would double-fault", len(f.Online), size(f.PercpuUnit), cpuList(badOffline))}
	}
	return pass("%d online CPUs × %s per-CPU units fit in 2 MiB", len(f.Online), size(f.PercpuUnit))
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// cpuList formats CPU numbers as the kernel's lists do ("8-11,14").
func cpuList(cpus []int) string {
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		} else {
			parts = append(parts, strconv.Itoa(cpus[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// size formats a byte count for people.
func size(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// openersOf lists the processes (pid and command) that have target open.
func openersOf(proc, target string) []string {
	pids, _ := filepath.Glob(filepath.Join(proc, "[0-9]*"))
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, dir := range pids {
		pid := filepath.Base(dir)
		if pid == self {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && l == target {
				comm, _ := readString(filepath.Join(dir, "comm"))
				out = append(out, fmt.Sprintf("pid %s (%s)", pid, comm))
				break
			}
		}
	}
	return out
}
