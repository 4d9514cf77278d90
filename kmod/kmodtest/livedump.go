package kmodtest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"ldx/elfcore/livedump"
	"ldx/kmod"
	"ldx/kmod/manifest"
)

// Livedump emulates the livedump v1 sysfs interface and the module behind
// it, as kmod.Attrs: the state machine with its EINVAL and 515 answers and
// pr_warn lines (package livedump, "Seen on real runs"), the `output` that
// loses its last character, and the device written by phase as real runs
// showed (package livedump, "Seen on real runs"): START's sensitive pages
// (MachineConfig.Early), every selected page from SWEEP on (pfn 1 with the
// notes included; a share of them, MachineConfig.SweepQueued, only after
// SWEEP has returned, as the real kernel does), and FINISH's header and
// notes pages — plus MachineConfig.Late — only FinishLatency later, lost if
// UNINIT comes first (package livedump, "Seen on real runs"). The page
// contents are WriteImage's.
//
// It also knows the ways the real code takes the machine down (package
// livedump, "Seen on real runs") and records the crash instead (Crashed):
// INIT with a randomised memory layout (oops) or too little memory (OOM
// panic), START after INIT was given a bad path (oops) or with CPUs beyond
// the 2 MiB per-CPU window (double fault), and FINISH with K-10's oversized
// header. After a crash every access fails with EIO.
type Livedump struct {
	m  *Machine
	mu sync.Mutex

	state       kmod.State
	output      string
	typ         string
	bufferPages int
	failed      int
	claimed     bool     // the device is open exclusively, INIT to UNINIT
	blockFD     *os.File // a real block device, held like the kernel holds it
	badOutput   bool     // INIT was given something that is not the device
	crashed     string
	runs        int // STARTs this boot (K-6's NULs)
	gen         int // bumped by UNINIT: queued late pages are dropped
	image       string
	report      *Report
	plan        phasePages
	writes      []string
	lost        uint64
	late        sync.WaitGroup
	drain       sync.WaitGroup // SWEEP's pages still queued when it returned
}

// phasePages are the pages one run writes, by when.
type phasePages struct{ early, sweep, finish pfnSet }

// List implements kmod.Attrs.
func (l *Livedump) List() ([]string, error) {
	return append([]string{"state", "output"}, l.m.Config.Attributes...), nil
}

func (l *Livedump) has(attr string) bool {
	for _, a := range l.m.Config.Attributes {
		if a == attr {
			return true
		}
	}
	return false
}

var stateLegend = "\nLIVEDUMP_STATE_UNDEFINED = 0\nLIVEDUMP_STATE_INIT = 1\nLIVEDUMP_STATE_START = 2\nLIVEDUMP_STATE_SWEEP = 3\nLIVEDUMP_STATE_FINISH = 4\nLIVEDUMP_STATE_UNINIT = 5\n"

// ReadAttr implements kmod.Attrs.
func (l *Livedump) ReadAttr(name string) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.crashed != "" {
		return nil, syscall.EIO
	}
	switch {
	case name == "state":
		return fmt.Appendf(nil, "%d\n%s", int(l.state), stateLegend), nil
	case name == "output":
		return []byte(l.output + "\n"), nil
	case name == "failed" && l.has(name):
		return fmt.Appendf(nil, "%d\n", l.failed), nil
	case name == "buffer_size" && l.has(name):
		return fmt.Appendf(nil, "%d\n\nMinimal: %d\nRecommended: %d\n", l.bufferPages, 20000, 40000), nil
	case name == "type" && l.has(name):
		return fmt.Appendf(nil, "%s\n\nPossible types:\nmemdump\nfiledump\n", l.typ), nil
	}
	return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (l *Livedump) warn(format string, a ...any) {
	l.m.Kmsg(4, "livedump: "+format, a...)
}

// kstrtoint is the kernel's parser: an optional sign, digits, at most one
// trailing newline.
func kstrtoint(b []byte) (int, bool) {
	s := strings.TrimSuffix(string(b), "\n")
	n, err := strconv.ParseInt(s, 10, 32)
	return int(n), err == nil && s != "" && !strings.ContainsAny(s, " \t\n")
}

// WriteAttr implements kmod.Attrs.
func (l *Livedump) WriteAttr(name string, data []byte) error {
	if hook := l.m.Config.OnWrite; hook != nil {
		hook(name, string(data))
	}
	l.mu.Lock()
	l.writes = append(l.writes, name+"="+strings.TrimSuffix(string(data), "\n"))
	if l.crashed != "" {
		l.mu.Unlock()
		return syscall.EIO
	}
	switch name {
	case "state":
		return l.writeState(data) // unlocks
	case "output":
		defer l.mu.Unlock()
		return l.writeOutput(data)
	case "type", "buffer_size":
		defer l.mu.Unlock()
		if !l.has(name) {
			return &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		if !l.state.Idle() {
			l.warn("you cannot change the %s in current state of livedump.", name)
			return syscall.EINVAL
		}
		if name == "type" {
			for _, t := range []string{"memdump", "filedump"} {
				if len(data) > 0 && strings.HasPrefix(t, string(data[:len(data)-1])) {
					l.typ = t
					return nil
				}
			}
			l.warn("unknown type.")
			return syscall.EINVAL
		}
		n, ok := kstrtoint(data)
		if !ok || n <= 0 {
			return syscall.EINVAL
		}
		l.bufferPages = n
		return nil
	case "failed":
		l.mu.Unlock()
		if l.has(name) {
			return syscall.EACCES
		}
	default:
		l.mu.Unlock()
	}
	return &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (l *Livedump) writeOutput(data []byte) error {
	if !l.state.Idle() {
		l.warn("you cannot change the output in current state of livedump.")
		return syscall.EINVAL
	}
	if e := l.m.Config.FailOutput; e != 0 {
		return e
	}
	if len(data) == 0 || len(data) >= 4096 {
		return syscall.EINVAL
	}
	if l.has("type") {
		// Later trees drop a trailing newline only.
		l.output = strings.TrimSuffix(string(data), "\n")
	} else {
		// v1 drops the last character, whatever it is (package
		// livedump, "Seen on real runs").
		l.output = string(data[:len(data)-1])
	}
	return nil
}

// writeState is state_store and livedump_change_state (package livedump,
// "Seen on real runs"). It is called locked and unlocks.
func (l *Livedump) writeState(data []byte) error {
	unlocked := false
	defer func() {
		if !unlocked {
			l.mu.Unlock()
		}
	}()
	n, ok := kstrtoint(data)
	if !ok {
		return syscall.EINVAL
	}
	to := kmod.State(n)
	if to < kmod.Undefined || to > kmod.Uninit {
		return kmod.ENOIOCTLCMD
	}
	if to == kmod.Undefined {
		l.warn("you cannot change the livedump state into LIVEDUMP_STATE_UNDEFINED.")
		return syscall.EINVAL
	}
	if to != kmod.Uninit && l.output == "" {
		l.warn("The output must be set first before changing the state.")
		return syscall.EINVAL
	}
	if err := kmod.CheckTransition(l.state, to, true); err != nil {
		l.warn("%s", map[kmod.State]string{
			kmod.Init:   "To initialize a livedump the current state must be LIVEDUMP_STATE_UNDEFINED or LIVEDUMP_STATE_UNINIT.",
			kmod.Start:  "To start a livedump the current state must be LIVEDUMP_STATE_INIT.",
			kmod.Sweep:  "To start sweep functionality of livedump the current state must be LIVEDUMP_STATE_START.",
			kmod.Finish: "To finish a livedump the current state must be LIVEDUMP_STATE_SWEEP.",
			kmod.Uninit: "To uninitialize livedump the current state must be at least LIVEDUMP_STATE_INIT.",
		}[to])
		return syscall.EINVAL
	}
	if e, ok := l.m.Config.FailState[to]; ok && e != 0 {
		l.warn("injected failure of %s (%v)", to, e)
		return e
	}
	cfg, k := l.m.Config, l.m.Kernel
	switch to {
	case kmod.Init:
		if k.PageOffsetBase != PageOffset4Level && k.PageOffsetBase != PageOffset5Level {
			return l.crash("INIT: oops in wrprotect_unselect_pages: a vmalloc address taken for a direct-map one (randomised memory layout, as on real runs)")
		}
		need := 2*uint64(l.bufferPages)*PageSize + 2*((k.MaxPFN/8+PageSize-1)&^(PageSize-1))
		if cfg.MemAvailable < need {
			return l.crash(fmt.Sprintf("INIT: out of memory allocating %d buffer pages: OOM killer, then \"Kernel panic - not syncing: System is deadlocked on memory\" (as on real runs)", 2*l.bufferPages))
		}
		a, _ := filepath.EvalSymlinks(l.output)
		b, _ := filepath.EvalSymlinks(l.m.Device)
		// blkdev_get_by_path's ERR_PTR is tested with < 0, so a bad
		// path is accepted (package livedump, "Defects").
		l.badOutput = a == "" || a != b || cfg.OpenFails
		if bd := l.m.blockDev; bd != "" && !cfg.OpenFails {
			// A real block device is opened exclusively, as
			// blkdev_get_by_path(FMODE_EXCL) does; a failure goes
			// unnoticed, as in v1 (package livedump, "Defects").
			c, _ := filepath.EvalSymlinks(bd)
			l.badOutput = a != c
			if !l.badOutput {
				f, err := os.OpenFile(bd, os.O_RDWR|syscall.O_EXCL, 0)
				l.badOutput, l.blockFD = err != nil, f
			}
		}
		l.claimed = !l.badOutput
		l.failed = 0
	case kmod.Start:
		if l.badOutput {
			return l.crash(fmt.Sprintf("START: oops in the livedump thread at its first bio: INIT never opened %q (as on real runs; SWEEP would hang)", l.output))
		}
		for cpu := range cfg.OnlineCPUs {
			if uint64(cpu+1)*cfg.PercpuUnit > 2<<20 {
				return l.crash(fmt.Sprintf("START: double fault on CPU %d: its per-CPU area lies beyond the 2 MiB of CPU 0's treated as sensitive (as on real runs)", cpu))
			}
		}
		if err := l.startRun(); err != nil {
			return err
		}
		l.failed = cfg.FailedPages
	case kmod.Sweep:
		sweep, image, gen := l.plan.sweep, l.image, l.gen
		q := cfg.SweepQueued
		if q == 0 {
			q = 0.3
		}
		now, queued := sweep.splitAt(uint64(float64(sweep.count()) * (1 - max(0, min(1, q)))))
		l.mu.Unlock()
		unlocked = true
		err := l.writePagesOver(image, now, cfg.SweepTime, gen)
		if err == nil && queued.count() > 0 {
			drain := cfg.DrainTime
			if drain == 0 {
				drain = cfg.SweepTime
			}
			l.drain.Add(1)
			go func() {
				defer l.drain.Done()
				l.writePagesOver(image, queued, drain, gen)
			}()
		}
		l.mu.Lock()
		unlocked = false
		if err != nil {
			return err
		}
	case kmod.Finish:
		if livedump.MergedHeaderSize(cfg.PossibleCPUs, k.CPUs) > PageSize {
			return l.crash("FINISH: the ELF header buffer overflows pfn 0's page (K-10)")
		}
		if !cfg.DropFinish {
			l.late.Add(1)
			go l.finishLate(l.image, l.plan.finish, l.gen)
		}
	case kmod.Uninit:
		// UNINIT stops the kernel thread, which first writes what SWEEP
		// left queued (FINISH's own pages and Late are another matter).
		l.mu.Unlock()
		l.drain.Wait()
		l.mu.Lock()
		l.gen++
		l.claimed, l.badOutput = false, false
		if l.blockFD != nil {
			l.blockFD.Close()
			l.blockFD = nil
		}
	}
	l.state = to
	return nil
}

func (l *Livedump) crash(why string) error {
	l.crashed = why
	l.m.Kmsg(0, "%s", why)
	return syscall.EIO
}

// startRun builds this run's image (CRASHTIME = now) and writes START's
// sensitive pages.
func (l *Livedump) startRun() error {
	cfg := l.m.Config
	st, err := os.Stat(l.m.Device)
	if err != nil {
		return err
	}
	if l.image != "" {
		os.Remove(l.image)
	}
	l.image = l.m.Path(fmt.Sprintf("/run/livedump-run-%d.img", l.runs))
	if err := os.MkdirAll(filepath.Dir(l.image), 0o755); err != nil {
		return err
	}
	rep, err := WriteFile(l.image, l.m.Kernel, &Run{Prepared: manifest.Zeroed, Start: time.Now(), PreviousRuns: l.runs, Unwritten: cfg.Unwritten, DeviceSize: st.Size()})
	if err != nil {
		return err
	}
	l.runs++
	l.report = rep
	written := pagesOf(rep.Written)
	hdr := span(0, 2)
	early := written.intersect(pagesOf(cfg.Early)).minus(hdr)
	late := written.intersect(pagesOf(cfg.Late)).minus(hdr)
	l.plan = phasePages{
		early:  early,
		sweep:  written.minus(span(0, 1)).minus(early).minus(late),
		finish: written.intersect(hdr).union(late),
	}
	return l.copyPages(l.image, early)
}

// writePagesOver writes pages in ten steps spread over d, stopping if a
// later UNINIT bumped the generation.
func (l *Livedump) writePagesOver(image string, s pfnSet, d time.Duration, gen int) error {
	parts := splitSet(s, 10)
	for _, p := range parts {
		l.mu.Lock()
		stale := l.gen != gen
		l.mu.Unlock()
		if stale {
			l.lost += p.count()
			continue
		}
		if err := l.copyPages(image, p); err != nil {
			return err
		}
		time.Sleep(d / time.Duration(len(parts)))
	}
	return nil
}

// finishLate writes FINISH's pages FinishLatency after FINISH, unless
// UNINIT came first: then they are lost, as the v1 thread stops without
// draining its queues (package livedump, "Seen on real runs", K-4).
func (l *Livedump) finishLate(image string, s pfnSet, gen int) {
	defer l.late.Done()
	time.Sleep(l.m.Config.FinishLatency)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen != gen {
		l.lost += s.count()
		return
	}
	l.copyPages(image, s)
}

// splitSet cuts s into about n parts of similar page counts.
func splitSet(s pfnSet, n int) []pfnSet {
	per := max(1, (s.count()+uint64(n)-1)/uint64(n))
	var out []pfnSet
	var cur pfnSet
	var curN uint64
	for _, r := range s {
		for lo := r.lo; lo < r.hi; {
			hi := min(r.hi, lo+per-curN)
			cur = append(cur, pfnRange{lo, hi})
			curN += hi - lo
			lo = hi
			if curN == per {
				out, cur, curN = append(out, cur), nil, 0
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// copyPages copies pages of the run's image to the device, counting the
// writes in the device's I/O statistics.
func (l *Livedump) copyPages(image string, s pfnSet) error {
	if len(s) == 0 {
		return nil
	}
	src, err := os.Open(image)
	if err != nil {
		return err
	}
	defer src.Close()
	dst := l.blockFD
	if dst == nil {
		f, err := os.OpenFile(l.m.Device, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		dst = f
	}
	buf := make([]byte, chunkPages*PageSize)
	for _, r := range s {
		for lo := r.lo; lo < r.hi; {
			n := min(uint64(chunkPages), r.hi-lo)
			b := buf[:n*PageSize]
			if _, err := src.ReadAt(b, int64(lo*PageSize)); err != nil {
				return err
			}
			if _, err := dst.WriteAt(b, int64(lo*PageSize)); err != nil {
				return err
			}
			lo += n
		}
	}
	if l.blockFD != nil {
		// The kernel's bios bypass the page cache; these writes reach
		// the device (and its I/O counters) now too.
		return dst.Sync()
	}
	return l.m.countWrites(s.count())
}

// State returns the interface's state.
func (l *Livedump) State() kmod.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// SetState forces a state, as a killed earlier run would have left it.
func (l *Livedump) SetState(s kmod.State, output string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state, l.output = s, output
	l.claimed = s != kmod.Undefined && s != kmod.Uninit
}

// Crashed says how the emulated machine went down, or "".
func (l *Livedump) Crashed() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.crashed
}

// Writes lists every attribute write as "attr=value".
func (l *Livedump) Writes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.writes...)
}

// Lost is the number of pages UNINIT discarded before they reached the
// device. Wait for pending late writes first.
func (l *Livedump) Lost() uint64 {
	l.drain.Wait()
	l.late.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// Run returns the report of the last run that reached START (what the
// emulated module wrote, or would have) and its complete image, or nil.
func (l *Livedump) Run() (*Report, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.report, l.image
}

// Wait waits for FINISH's late pages (or their loss).
func (l *Livedump) Wait() {
	l.drain.Wait()
	l.late.Wait()
}

// Close removes the run's image.
func (l *Livedump) Close() {
	l.drain.Wait()
	l.late.Wait()
	if l.image != "" {
		os.Remove(l.image)
	}
}
