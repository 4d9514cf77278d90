package kmod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"ldx/kmod/manifest"
)

// Phase names a step of a capture.
type Phase string

// The phases of a capture, in order.
const (
	PhasePreflight Phase = "preflight"
	PhaseReset     Phase = "reset"
	PhasePrepare   Phase = "prepare"
	PhaseManifest  Phase = "manifest"
	PhaseOutput    Phase = "output"
	PhaseInit      Phase = "INIT"
	PhaseStart     Phase = "START"
	PhaseSweep     Phase = "SWEEP"
	PhaseFinish    Phase = "FINISH"
	PhaseQuiesce   Phase = "quiesce"
	PhaseUninit    Phase = "UNINIT"
	PhaseReadback  Phase = "read-back"
)

// EventKind tells what an Event reports.
type EventKind int

const (
	PhaseBegin EventKind = iota
	PhaseEnd
	Progress // Done of Total bytes
	Note     // something the user should read now
)

// Event reports how a capture advances, for display.
type Event struct {
	Kind        EventKind
	Phase       Phase
	Elapsed     time.Duration // PhaseEnd: the phase's duration
	Done, Total int64         // Progress
	Text        string        // PhaseEnd: what was done; Note: the note
}

// PhaseTime is a finished phase.
type PhaseTime struct {
	Phase    Phase         `json:"phase"`
	Duration time.Duration `json:"duration_ns"`
	Text     string        `json:"text,omitempty"`
}

// Options configure a capture.
type Options struct {
	// Device is the block device to dump to.
	Device string
	// Host is the machine; nil is this one.
	Host *Host
	// Prepare is how never-written pages are made recognisable:
	// manifest.Zeroed (the default), manifest.Marked (exact, slower) or
	// manifest.Unprepared (--no-clear: stale bytes stay).
	Prepare manifest.Preparation
	// Force overrides the refusals the user can judge.
	Force bool
	// Reset resets a busy interface before the run.
	Reset bool
	// DryRun runs the preflight checks and returns the plan; nothing is
	// written and no lock is taken.
	DryRun bool
	// Quiesce bounds the wait after FINISH.
	Quiesce QuiesceOptions
	// Tool is recorded in the manifest ("ldx capture <version>").
	Tool string
	// Events, if set, is called as the capture advances.
	Events func(Event)
}

// Result is what a capture did.
type Result struct {
	Device    string           `json:"device"`
	Preflight *PreflightReport `json:"-"`
	// Manifest is the manifest on the device, as last written.
	Manifest *manifest.Manifest `json:"manifest,omitempty"`
	Phases   []PhaseTime        `json:"phases"`
	// Prepared says how the dump range was prepared.
	Prepared string `json:"prepared,omitempty"`
	// ResetFrom is the state --reset found, when it reset the interface.
	ResetFrom *State    `json:"reset_from,omitempty"`
	Readback  *Readback `json:"readback,omitempty"`
	// FailedPages is the kernel's count of pages it could not save, where
	// it exposes one (`failed`).
	FailedPages *int `json:"failed_pages,omitempty"`
	// KernelLog are livedump's and other worrying kernel log lines seen
	// during the run; a good run has none (package documentation: "The kernel interface").
	KernelLog []string `json:"kernel_log,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	// Plan is what a dry run would do.
	Plan []string `json:"plan,omitempty"`
}

// Error is a capture that failed or was interrupted after preflight. It
// says which step failed, whether the kernel side is idle again, and what
// the device holds.
type Error struct {
	Phase Phase
	Err   error
	// KernelReset says the interface ended idle (UNINIT sent, or never
	// left idle); ResetFrom is the state UNINIT was sent from.
	KernelReset bool
	ResetFrom   State
	// ResetErr says why the interface could not be reset.
	ResetErr error
	// Dump says what the device holds now.
	Dump string
}

func (e *Error) Error() string {
	what := "failed at " + string(e.Phase)
	if errors.Is(e.Err, context.Canceled) {
		what = "interrupted during " + string(e.Phase)
	}
	s := fmt.Sprintf("capture %s: %v", what, e.Err)
	switch {
	case !e.KernelReset:
		s += fmt.Sprintf("\n  kernel side: NOT reset: %v", e.ResetErr)
	case e.ResetFrom != Undefined:
		s += fmt.Sprintf("\n  kernel side: reset (UNINIT from %s)", e.ResetFrom)
	default:
		s += "\n  kernel side: idle"
	}
	return s + "\n  device: " + e.Dump
}

func (e *Error) Unwrap() error { return e.Err }

// capture is one run.
type capture struct {
	h     *Host
	opt   Options
	res   *Result
	kmsg  *Kmsg
	iface *Interface
	dev   *BlockDevice
	facts *Facts

	phase      Phase
	phaseStart time.Time
	// kernelTouched: something beyond output was written to the
	// interface; deviceTouched: the device was written.
	kernelTouched, deviceTouched bool
	// noUninit: UNINIT is not safe (the kernel did not open the device).
	noUninit  bool
	realBlock bool
	man       *manifest.Manifest
}

func (c *capture) emit(e Event) {
	if c.opt.Events != nil {
		c.opt.Events(e)
	}
}

func (c *capture) begin(p Phase) {
	c.phase, c.phaseStart = p, time.Now()
	c.emit(Event{Kind: PhaseBegin, Phase: p})
}

func (c *capture) end(text string) {
	d := time.Since(c.phaseStart)
	c.res.Phases = append(c.res.Phases, PhaseTime{Phase: c.phase, Duration: d, Text: text})
	c.emit(Event{Kind: PhaseEnd, Phase: c.phase, Elapsed: d, Text: text})
}

func (c *capture) note(format string, a ...any) {
	c.emit(Event{Kind: Note, Phase: c.phase, Text: fmt.Sprintf(format, a...)})
}

func (c *capture) warn(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	c.res.Warnings = append(c.res.Warnings, s)
	c.emit(Event{Kind: Note, Phase: c.phase, Text: "warning: " + s})
}

// Capture runs a livedump capture to opt.Device: preflight, device
// preparation and manifest, INIT → START → SWEEP → FINISH, the wait for
// the device to go quiet, UNINIT, and the read-back check. A refusal
// before anything was written is a *RefusedError; a failure or an
// interruption (ctx) after that is an *Error, by which time the kernel
// side has been reset and the device marked incomplete.
func Capture(ctx context.Context, opt Options) (*Result, error) {
	h := opt.Host.withDefaults()
	opt.Quiesce = opt.Quiesce.withDefaults()
	if opt.Prepare == "" {
		opt.Prepare = manifest.Zeroed
	}
	c := &capture{h: h, opt: opt, res: &Result{Device: opt.Device}}
	if k, err := openKmsg(h.Paths.Kmsg); err == nil {
		c.kmsg = k
		defer k.Close()
	}
	c.begin(PhasePreflight)
	pre := Preflight(h, opt.Device, PreflightOptions{Force: opt.Force, Reset: opt.Reset, All: opt.DryRun}, c.kmsg)
	c.res.Preflight = pre
	c.iface, c.dev, c.facts = pre.Interface, pre.Device, pre.Facts
	c.end(preflightSummary(pre))
	if opt.DryRun {
		c.res.Plan = c.plan()
		return c.res, pre.Err()
	}
	if err := pre.Err(); err != nil {
		return c.res, err
	}
	if err := ctx.Err(); err != nil {
		return c.res, &Error{Phase: PhasePreflight, Err: err, KernelReset: true, Dump: "not touched"}
	}
	unlock, err := lockFile(h.Paths.Lock)
	switch {
	case errors.Is(err, errLocked):
		return c.res, &RefusedError{Result: CheckResult{ID: CheckIdle, Name: "interface idle", Status: Refuse, Found: err.Error(), Risk: Checks[2].Risk, WayOut: "wait for the other capture to finish"}}
	case err != nil:
		c.warn("cannot take the lock %s (%v): nothing stops a second capture from starting meanwhile", h.Paths.Lock, err)
	default:
		defer unlock()
	}
	if err := c.run(ctx); err != nil {
		return c.res, c.fail(err)
	}
	return c.res, nil
}

// preflightSummary says how preflight went in one line.
func preflightSummary(pre *PreflightReport) string {
	var ok, warn, forced int
	for _, r := range pre.Results {
		switch {
		case r.Status == Pass:
			ok++
		case r.Status == Warn:
			warn++
		case r.Forced:
			forced++
		}
	}
	s := fmt.Sprintf("%d checks passed", ok)
	if warn > 0 {
		s += fmt.Sprintf(", %d warnings", warn)
	}
	if forced > 0 {
		s += fmt.Sprintf(", %d overridden by --force", forced)
	}
	if r := pre.Refusal(); r != nil {
		s += ", refused: " + r.Name
	}
	return s
}

// step runs one phase. An interruption is noticed when the phase begins
// and when its work returns (a kernel write cannot be interrupted), and is
// reported as the phase's own.
func (c *capture) step(ctx context.Context, p Phase, fn func() (string, error)) error {
	c.begin(p)
	if err := ctx.Err(); err != nil {
		return err
	}
	text, err := fn()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.end(text)
	return nil
}

// run does everything after preflight; errors are turned into *Error by
// fail.
func (c *capture) run(ctx context.Context) error {
	f, dev, iface := c.facts, c.dev, c.iface
	for _, r := range c.res.Preflight.Results {
		if r.Status == Warn {
			c.warn("%s: %s", r.Name, r.Found)
		}
		if r.Forced {
			c.warn("%s: overridden by --force: %s", r.Name, r.Found)
		}
	}

	if st := c.res.Preflight.State; !st.Idle() {
		err := c.step(ctx, PhaseReset, func() (string, error) {
			c.kernelTouched = true
			if _, err := iface.Reset(); err != nil {
				return "", err
			}
			c.res.ResetFrom = &st
			return fmt.Sprintf("UNINIT from %s", st), nil
		})
		if err != nil {
			return err
		}
	}

	// Prepare the device: header pages cleared first, so that a run that
	// stops anywhere from here on is recognisable (package livedump,
	// defects K-2 and K-4).
	if fi, err := os.Stat(dev.Resolved); err == nil {
		c.realBlock = fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
	}
	m := f.manifest(dev)
	m.Version, m.Nonce, m.Time, m.Tool = manifest.Version, manifest.NewNonce(), c.h.Now().UTC(), c.opt.Tool
	m.Prepared, m.Status = c.opt.Prepare, manifest.StatusRunning
	c.man = m // from here on a failure writes it, marked incomplete
	var d *devFile
	defer func() {
		if d != nil {
			d.Close()
		}
	}()
	err := c.step(ctx, PhasePrepare, func() (string, error) {
		var err error
		if d, err = openDev(dev.Resolved, c.realBlock, true); err != nil {
			return "", fmt.Errorf("opening %s: %w", dev.Resolved, err)
		}
		c.deviceTouched = true
		if err := d.writeAt(make([]byte, 2*pageSize), 0); err != nil {
			return "", fmt.Errorf("clearing the header pages: %w", err)
		}
		dumpEnd := int64(f.DumpEnd())
		progress := func(done, total int64) {
			c.emit(Event{Kind: Progress, Phase: PhasePrepare, Done: done, Total: total})
		}
		switch c.opt.Prepare {
		case manifest.Zeroed:
			how, err := d.zero(ctx, 0, dumpEnd, dev, progress)
			if err != nil {
				return "", fmt.Errorf("zeroing %s of %s: %w", size(uint64(dumpEnd)), dev.Resolved, err)
			}
			c.res.Prepared = fmt.Sprintf("zeroed %s: %s", size(uint64(dumpEnd)), how.How)
			if how.Slow {
				c.warn("the device cannot zero a range without writing it; zeroing wrote %s (--no-clear skips it, --mark costs the same and is exact)", size(uint64(dumpEnd)))
			}
		case manifest.Marked:
			if err := d.mark(ctx, m.Nonce, f.MaxPFN+1, progress); err != nil {
				return "", fmt.Errorf("marking %s of %s: %w", size(uint64(dumpEnd)), dev.Resolved, err)
			}
			c.res.Prepared = fmt.Sprintf("marked %d pages (%s) with run %s's never-written marker", f.MaxPFN+1, size(uint64(dumpEnd)), m.Nonce)
		case manifest.Unprepared:
			if err := d.writeAt(make([]byte, manifest.MaxSize), manifest.Offset); err != nil {
				return "", fmt.Errorf("clearing the manifest window: %w", err)
			}
			c.res.Prepared = "header pages cleared only (--no-clear)"
			c.warn("--no-clear: pages the kernel does not write (its own 1 GiB of buffers, holes, dropped pages) keep the device's old bytes, which cannot be told from memory")
		default:
			return "", fmt.Errorf("unknown preparation %q", c.opt.Prepare)
		}
		if err := d.f.Sync(); err != nil {
			return "", fmt.Errorf("flushing %s: %w", dev.Resolved, err)
		}
		return c.res.Prepared, nil
	})
	if err != nil {
		return err
	}

	err = c.step(ctx, PhaseManifest, func() (string, error) {
		if err := d.writeManifest(m); err != nil {
			return "", err
		}
		c.res.Manifest = m
		// Release the exclusive claim: INIT's own exclusive open must
		// succeed.
		err := d.Close()
		d = nil
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("at %#x: run %s, %d RAM ranges, max_pfn %#x, VMCOREINFO note at %#x", manifest.Offset, m.Nonce, len(m.RAM), m.MaxPFN, m.VMCOREINFONote.Start), nil
	})
	if err != nil {
		return err
	}

	err = c.step(ctx, PhaseOutput, func() (string, error) {
		// Nothing may hold the device when INIT opens it exclusively;
		// after INIT the kernel must (below).
		if claimed, err := c.h.Claimed(dev.Resolved); err == nil && claimed {
			return "", fmt.Errorf("%s is held open exclusively by something else: INIT's open would fail unnoticed and START oops", dev.Resolved)
		}
		if err := iface.EnsureType("memdump"); err != nil {
			return "", err
		}
		return dev.Resolved, iface.SetOutput(dev.Resolved)
	})
	if err != nil {
		return err
	}

	err = c.step(ctx, PhaseInit, func() (string, error) {
		c.kernelTouched = true
		if err := iface.Set(Init); err != nil {
			return "", err
		}
		// v1 does not check that it opened the device (package documentation: "The kernel interface"): a bad path
		// is accepted and START oopses. Its exclusive open is visible,
		// though.
		if claimed, err := c.h.Claimed(dev.Resolved); err == nil && !claimed {
			c.noUninit = true
			return "", fmt.Errorf("after INIT the kernel holds no exclusive claim on %s, so it did not open it; START would oops, and UNINIT may too, as it releases a device it never opened", dev.Resolved)
		}
		return "", nil
	})
	if err != nil {
		return err
	}
	if err := c.step(ctx, PhaseStart, func() (string, error) { return "", iface.Set(Start) }); err != nil {
		return err
	}
	if err := c.step(ctx, PhaseSweep, func() (string, error) { return "", c.sweep(ctx) }); err != nil {
		return err
	}
	if err := c.step(ctx, PhaseFinish, func() (string, error) { return "", iface.Set(Finish) }); err != nil {
		return err
	}

	err = c.step(ctx, PhaseQuiesce, func() (string, error) {
		q, err := waitQuiet(ctx, dev.Stat, c.opt.Quiesce, nil)
		if err != nil {
			return "", err
		}
		if q.Timeout {
			return "", fmt.Errorf("%s was still being written %s after FINISH", dev.Resolved, q.Waited.Round(time.Second))
		}
		if q.Blind {
			c.warn("%s has no readable I/O counters: waited a fixed %s after FINISH instead of for the device to go quiet", dev.Resolved, q.Waited.Round(time.Second))
			return fmt.Sprintf("waited %.1f s (the device's I/O counters are unreadable)", q.Waited.Seconds()), nil
		}
		if n, ok, err := iface.Failed(); err == nil && ok {
			c.res.FailedPages = &n
			if n > 0 {
				c.warn("the kernel reports %d pages it could not save (`failed`); they read as never written", n)
			}
		}
		return fmt.Sprintf("quiet after %.1f s; %s written after FINISH", q.Waited.Seconds(), size(q.Sectors*512)), nil
	})
	if err != nil {
		return err
	}

	err = c.step(ctx, PhaseUninit, func() (string, error) { return "kernel side idle", iface.Set(Uninit) })
	if err != nil {
		return err
	}

	return c.step(ctx, PhaseReadback, func() (string, error) {
		dropCache(dev.Resolved, c.realBlock)
		rb, err := checkReadback(dev.Resolved, m, f.PageOffsetBase)
		if err != nil {
			return "", err
		}
		c.res.Readback = rb
		now := c.h.Now().UTC()
		m.Status, m.Finished, m.FailedPages = manifest.StatusComplete, &now, c.res.FailedPages
		if err := c.rewriteManifest(false); err != nil {
			return "", err
		}
		text := fmt.Sprintf("header and notes are this run's: %d CPU notes", rb.CPUNotes)
		if rb.Release != "" {
			text += ", " + rb.Release
		}
		if rb.NotesCut {
			text += fmt.Sprintf("; notes cut at one page (%d bytes claimed, K-1: ldx extract recovers them)", rb.NotesSize)
		}
		c.res.KernelLog = iface.KernelLog()
		if len(c.res.KernelLog) > 0 {
			c.warn("the kernel logged %d livedump or warning lines during the run (a clean run logs none): see the kernel log", len(c.res.KernelLog))
		}
		return text, nil
	})
}

// sweep writes SWEEP, which returns only when every page is queued (1–3 s
// on a 2 GiB guest, minutes on large machines; package documentation:
// "Timing"), showing progress
// from the device's write counters meanwhile. The write cannot be
// interrupted: an interruption is acted on when it returns.
func (c *capture) sweep(ctx context.Context) error {
	first, statErr := c.dev.Stat()
	total := int64(c.facts.RAMBytes()) - int64(c.res.Preflight.BufferBytes)
	done := make(chan error, 1)
	go func() { done <- c.iface.Set(Sweep) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	cancelled := ctx.Done()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if statErr == nil && total > 0 {
				if s, err := c.dev.Stat(); err == nil {
					c.emit(Event{Kind: Progress, Phase: PhaseSweep, Done: min(total, int64(s.WriteSectors-first.WriteSectors)*512), Total: total})
				}
			}
		case <-cancelled:
			c.note("interrupted: SWEEP runs inside the kernel and cannot be stopped; the interface is reset as soon as it returns")
			cancelled = nil
		}
	}
}

// fail resets the kernel side and marks the device after a failure.
func (c *capture) fail(err error) error {
	e := &Error{Phase: c.phase, Err: err}
	e.KernelReset = true
	if c.kernelTouched && c.iface != nil {
		st, serr := c.iface.State()
		switch {
		case serr != nil:
			e.KernelReset, e.ResetErr = false, serr
		case st.Idle():
		case c.noUninit:
			e.KernelReset = false
			e.ResetErr = fmt.Errorf("left in state %s on purpose: UNINIT of a device the kernel never opened may oops; reboot when convenient (the interface holds its 1 GiB of buffers until then), or `ldx capture --reset` at your own risk", st)
		default:
			if uerr := c.iface.Set(Uninit); uerr != nil {
				e.KernelReset, e.ResetErr = false, fmt.Errorf("UNINIT from %s failed: %w; run `ldx capture --reset`", st, uerr)
			} else {
				e.ResetFrom = st
			}
		}
	}
	switch {
	case !c.deviceTouched:
		e.Dump = "not touched"
	default:
		if c.kernelTouched && c.dev != nil {
			// Bios the kernel submitted (or, not reset, still queues)
			// may land after the header is cleared: let them land first.
			waitQuiet(context.Background(), c.dev.Stat, QuiesceOptions{MinWait: c.opt.Quiesce.QuietFor, QuietFor: c.opt.Quiesce.QuietFor, MaxWait: 10 * time.Second, Poll: c.opt.Quiesce.Poll}, nil)
		}
		if c.man != nil {
			now := c.h.Now().UTC()
			c.man.Status, c.man.StatusDetail, c.man.Finished = manifest.StatusIncomplete, fmt.Sprintf("%s: %v", c.phase, firstLine(err)), &now
		}
		if merr := c.rewriteManifest(true); merr != nil {
			e.Dump = fmt.Sprintf("COULD NOT be marked incomplete (%v): do not trust what it holds", merr)
			break
		}
		c.res.Manifest = c.man
		switch {
		case phaseIndex(c.phase) <= phaseIndex(PhaseManifest):
			e.Dump = "prepared only partly; it holds no dump (its header pages are cleared, the capture manifest says incomplete)"
		case phaseIndex(c.phase) < phaseIndex(PhaseFinish):
			e.Dump = "no dump: the kernel never wrote its header (page 0, cleared before the run), and the capture manifest says incomplete; ldx extract refuses it"
		default:
			e.Dump = "an incomplete dump: ldx cleared its header page and the capture manifest says incomplete, so ldx extract refuses it"
		}
	}
	if c.iface != nil {
		c.res.KernelLog = c.iface.KernelLog()
	}
	return e
}

var phaseOrder = []Phase{PhasePreflight, PhaseReset, PhasePrepare, PhaseManifest, PhaseOutput, PhaseInit, PhaseStart, PhaseSweep, PhaseFinish, PhaseQuiesce, PhaseUninit, PhaseReadback}

func phaseIndex(p Phase) int {
	for i, q := range phaseOrder {
		if q == p {
			return i
		}
	}
	return -1
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// rewriteManifest writes the manifest again with its final status; with
// clearHeader it first clears pages 0 and 1, so that an incomplete dump is
// refused by readers that do not look at the status. The kernel may still
// hold the device, so it is not claimed exclusively.
func (c *capture) rewriteManifest(clearHeader bool) error {
	d, err := openDev(c.dev.Resolved, c.realBlock, false)
	if err != nil {
		return err
	}
	defer d.Close()
	if clearHeader {
		if err := d.writeAt(make([]byte, 2*pageSize), 0); err != nil {
			return err
		}
	}
	if c.man != nil {
		if err := d.writeManifest(c.man); err != nil {
			return err
		}
	}
	if err := d.f.Sync(); err != nil {
		return err
	}
	dropCache(c.dev.Resolved, c.realBlock)
	return nil
}

// plan says what a capture with these options would do.
func (c *capture) plan() []string {
	pre := c.res.Preflight
	dev := c.opt.Device
	if c.dev != nil {
		dev = c.dev.Resolved
	}
	end := c.facts.DumpEnd()
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	add("take the lock %s (one capture at a time)", c.h.Paths.Lock)
	if !pre.State.Idle() {
		add("reset the interface: UNINIT from %s", pre.State)
	}
	add("clear pages 0–1 of %s (so that a run that stops early is recognisable)", dev)
	switch c.opt.Prepare {
	case manifest.Zeroed:
		how := "the kernel or ldx writes the zeros (no write-zeroes or discard)"
		if c.dev != nil && c.dev.WriteZeroesMax > 0 {
			how = "BLKZEROOUT, the device's write-zeroes"
		} else if c.dev != nil && c.dev.DiscardMax > 0 {
			how = "BLKDISCARD, checked to read back as zeros"
		}
		add("zero [0, %#x) of %s (%s): %s", end, dev, size(end), how)
	case manifest.Marked:
		add("stamp each of the %d pages of [0, %#x) with a never-written marker (%s written)", end/pageSize, end, size(end))
	case manifest.Unprepared:
		add("leave the rest of the device as it is (--no-clear)")
	}
	add("write the capture manifest at %#x and read it back; release the device", manifest.Offset)
	if c.iface != nil && c.iface.Has("type") {
		add("write \"memdump\" to %s/type if another type is selected", c.iface.Root)
	}
	add("write %q to %s/output (the kernel drops the last character) and read it back", dev+"\n", c.h.Paths.Livedump)
	add("INIT, check the kernel claimed %s, START, SWEEP (%s of RAM), FINISH", dev, size(c.facts.RAMBytes()))
	q := c.opt.Quiesce
	add("wait until %s has written nothing for %s, at least %s after FINISH (at most %s)", dev, q.QuietFor, q.MinWait, q.MaxWait)
	add("UNINIT")
	add("read pages 0–1 and the manifest back around the page cache and check them; mark the manifest complete")
	add("on any error or interruption: UNINIT, clear pages 0–1 and mark the manifest incomplete")
	return p
}

// Reset brings a stuck interface back to idle (`ldx capture --reset`). It
// refuses while another capture holds the lock or another process has the
// state file open (a transition may be running: v1 serialises nothing).
// It returns the state it found.
func Reset(h *Host) (State, error) {
	h = h.withDefaults()
	var kmsg *Kmsg
	if k, err := openKmsg(h.Paths.Kmsg); err == nil {
		kmsg = k
		defer k.Close()
	}
	iface, err := OpenInterface(h.Paths.Livedump, h.Attrs, kmsg)
	if err != nil {
		return 0, err
	}
	if h.Geteuid() != 0 {
		return 0, errors.New("resetting the livedump interface needs root")
	}
	unlock, err := lockFile(h.Paths.Lock)
	if errors.Is(err, errLocked) {
		return 0, err
	}
	if err == nil {
		defer unlock()
	}
	st, err := iface.State()
	if err != nil || st.Idle() {
		return st, err
	}
	if o := openersOf(h.Paths.Proc, iface.path("state")); len(o) > 0 {
		return st, fmt.Errorf("state %s, and %s has the state file open: a transition may be running; not resetting under it", st, strings.Join(o, ", "))
	}
	_, err = iface.Reset()
	return st, err
}
