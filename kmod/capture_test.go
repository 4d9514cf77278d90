package kmod_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/elfcore/livedump"
	"ldx/extract"
	"ldx/extract/dump"
	"ldx/kmod"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// fast keeps the post-FINISH wait short; the machines' late pages arrive
// well within it.
var fast = kmod.QuiesceOptions{MinWait: 150 * time.Millisecond, QuietFor: 100 * time.Millisecond, MaxWait: 5 * time.Second, Poll: 10 * time.Millisecond}

func newMachine(t *testing.T, cfg kmodtest.MachineConfig) *kmodtest.Machine {
	t.Helper()
	if cfg.FinishLatency == 0 {
		cfg.FinishLatency = 30 * time.Millisecond
	}
	if cfg.SweepTime == 0 {
		cfg.SweepTime = 20 * time.Millisecond
	}
	m, err := kmodtest.NewMachine(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Livedump != nil {
		t.Cleanup(m.Livedump.Close)
	}
	return m
}

func capture(m *kmodtest.Machine, opt kmod.Options) (*kmod.Result, error) {
	return captureCtx(context.Background(), m, opt)
}

func captureCtx(ctx context.Context, m *kmodtest.Machine, opt kmod.Options) (*kmod.Result, error) {
	opt.Host = m.Host()
	if opt.Device == "" {
		opt.Device = m.Device
	}
	if opt.Quiesce == (kmod.QuiesceOptions{}) {
		opt.Quiesce = fast
	}
	res, err := kmod.Capture(ctx, opt)
	if m.Livedump != nil {
		m.Livedump.Wait()
	}
	return res, err
}

func checksum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// extractAndCheck turns the device into a vmcore and checks it against
// what the emulated module wrote: every RAM page is the run's page where
// the module wrote it and zero where it did not (never a stale byte), the
// notes are complete.
func extractAndCheck(t *testing.T, m *kmodtest.Machine) *extract.Summary {
	t.Helper()
	out := filepath.Join(t.TempDir(), "vmcore")
	sum, err := extract.Run(context.Background(), extract.Options{Input: m.Device, Output: out})
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	if !sum.Manifest || sum.CPUs != m.Kernel.CPUs {
		t.Errorf("extract summary: manifest %v, cpus %d", sum.Manifest, sum.CPUs)
	}
	rep, image := m.Livedump.Run()
	f, err := elfcore.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	notes, err := f.Notes()
	if err != nil || len(notes) != m.Kernel.CPUs+1 {
		t.Fatalf("%d notes (%v), want %d", len(notes), err, m.Kernel.CPUs+1)
	}
	if vmci := notes[len(notes)-1]; !bytes.Equal(vmci.Desc, bytes.ReplaceAll(rep.VMCOREINFO, []byte{0}, nil)) {
		t.Errorf("VMCOREINFO in the vmcore (%d bytes) is not the run's (%d bytes)", len(vmci.Desc), len(rep.VMCOREINFO))
	}
	img, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	pm := f.Phys()
	got, want := make([]byte, 4096), make([]byte, 4096)
	bad := 0
	for _, r := range pm.Ranges() {
		if r.Start >= x86.KernelTextBase {
			continue
		}
		for pa := r.Start; pa < r.End && bad < 5; pa += 4096 {
			if _, err := pm.ReadAt(got, int64(pa)); err != nil {
				t.Fatal(err)
			}
			clear(want)
			if rep.WasWritten(pa / 4096) {
				img.ReadAt(want, int64(pa))
			}
			if !bytes.Equal(got, want) {
				t.Errorf("vmcore page %#x differs from what the module wrote (written %v, stale %v)", pa, rep.WasWritten(pa/4096), kmodtest.HasStaleBytes(got))
				bad++
			}
		}
	}
	return sum
}

func readManifest(t *testing.T, m *kmodtest.Machine) *manifest.Manifest {
	t.Helper()
	f, err := os.Open(m.Device)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	man, err := manifest.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return man
}

func TestCapture(t *testing.T) {
	unwritten := []elfcore.Range{{Start: 40 << 20, End: 44 << 20}}
	tests := []struct {
		name      string
		cfg       kmodtest.MachineConfig
		prepare   manifest.Preparation
		unwritten uint64
	}{
		{"2 cpus, zeroed", kmodtest.MachineConfig{}, "", 0},
		{"4 cpus, marked, notes cut, buffers unwritten", kmodtest.MachineConfig{Kernel: kmodtest.NewSynthetic(kmodtest.SyntheticOptions{CPUs: 4}), Unwritten: unwritten}, manifest.Marked, 1024},
		{"3 cpus, zeroed, later tree with failed counter", kmodtest.MachineConfig{Kernel: kmodtest.NewSynthetic(kmodtest.SyntheticOptions{CPUs: 3}), Attributes: []string{"type", "buffer_size", "failed"}, FailedPages: 7, Unwritten: unwritten, Early: []elfcore.Range{{Start: 16 << 20, End: 20 << 20}}, Late: []elfcore.Range{{Start: 30 << 20, End: 30<<20 + 40*4096}}}, manifest.Zeroed, 0},
		{"8 cpus, 5-level direct map from kcore", kmodtest.MachineConfig{Kernel: func() *kmodtest.Kernel {
			k := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{CPUs: 8})
			k.PageOffsetBase = kmodtest.PageOffset5Level
			return k
		}()}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t, tt.cfg)
			var phases []kmod.Phase
			res, err := capture(m, kmod.Options{Prepare: tt.prepare, Tool: "ldx test", Events: func(e kmod.Event) {
				if e.Kind == kmod.PhaseEnd {
					phases = append(phases, e.Phase)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if c := m.Livedump.Crashed(); c != "" {
				t.Fatalf("machine crashed: %s", c)
			}
			if st := m.Livedump.State(); st != kmod.Uninit {
				t.Errorf("interface left in %s", st)
			}
			if lost := m.Livedump.Lost(); lost != 0 {
				t.Errorf("%d pages lost: UNINIT came too early", lost)
			}
			want := []kmod.Phase{kmod.PhasePreflight, kmod.PhasePrepare, kmod.PhaseManifest, kmod.PhaseOutput, kmod.PhaseInit, kmod.PhaseStart, kmod.PhaseSweep, kmod.PhaseFinish, kmod.PhaseQuiesce, kmod.PhaseUninit, kmod.PhaseReadback}
			if len(phases) != len(want) {
				t.Errorf("phases %v, want %v", phases, want)
			}
			// The output went out with its newline: the v1 kernel keeps
			// the path whole.
			if w := m.Livedump.Writes(); !contains(w, "output="+m.Device) {
				t.Errorf("writes %q", w)
			}
			man := readManifest(t, m)
			if man.Status != manifest.StatusComplete || man.Finished == nil || man.MaxPFN != m.Kernel.MaxPFN || man.VMCOREINFONote.Start != m.Kernel.VMCOREINFONote || man.Tool != "ldx test" {
				t.Errorf("manifest %+v", man)
			}
			if man.Release == "" || man.BuildID == "" || man.PresentCPUs != m.Kernel.CPUs || len(man.CrashNotes) != m.Kernel.CPUs || man.Device.Major != 7 {
				t.Errorf("manifest facts %+v", man)
			}
			if tt.cfg.FailedPages > 0 && (res.FailedPages == nil || *res.FailedPages != tt.cfg.FailedPages || man.FailedPages == nil) {
				t.Errorf("failed pages %v, manifest %v", res.FailedPages, man.FailedPages)
			}
			if res.Readback == nil || res.Readback.CPUNotes < min(m.Kernel.CPUs, 11) {
				t.Fatalf("read-back %+v", res.Readback)
			}
			// The notes page's VMCOREINFO gives the release while its
			// header survives (up to 11 CPUs) and CRASHTIME when the whole
			// text, CRASHTIME line (21 bytes) included, fits (K-1).
			if rb := res.Readback; m.Kernel.CPUs < 12 && rb.Release != man.Release {
				t.Errorf("read-back release %q, manifest %q", rb.Release, man.Release)
			}
			full := len(m.Kernel.VMCOREINFO) + len("CRASHTIME=1700000000\n")
			if rb := res.Readback; livedump.TextKept(m.Kernel.CPUs, full) == full && (rb.CrashTime == nil || rb.CrashTime.Before(man.Time.Add(-time.Minute))) {
				t.Errorf("read-back CRASHTIME %v, want one from this run (manifest time %v)", rb.CrashTime, man.Time)
			}
			sum := extractAndCheck(t, m)
			if sum.Unwritten != tt.unwritten {
				t.Errorf("extract counted %d never-written pages, want %d", sum.Unwritten, tt.unwritten)
			}
			if want := string(man.Prepared); sum.Prepared != want {
				t.Errorf("extract saw preparation %q, want %q", sum.Prepared, want)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkIncomplete checks what every failed or interrupted capture must
// leave: the kernel side reset, the device's header cleared and its
// manifest saying incomplete, extract refusing it, and the step named.
func checkIncomplete(t *testing.T, m *kmodtest.Machine, err error, phase kmod.Phase) *kmod.Error {
	t.Helper()
	var ce *kmod.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want *kmod.Error", err, err)
	}
	if ce.Phase != phase || !strings.Contains(err.Error(), string(phase)) {
		t.Errorf("failed phase %s (%q), want %s", ce.Phase, err, phase)
	}
	if c := m.Livedump.Crashed(); c != "" {
		t.Fatalf("machine crashed: %s", c)
	}
	if st := m.Livedump.State(); !st.Idle() || !ce.KernelReset {
		t.Errorf("interface left in %s (reset %v: %v)", st, ce.KernelReset, ce.ResetErr)
	}
	man := readManifest(t, m)
	if man.Status != manifest.StatusIncomplete || !strings.HasPrefix(man.StatusDetail, string(phase)) {
		t.Errorf("manifest status %q %q", man.Status, man.StatusDetail)
	}
	b := make([]byte, 8192)
	f, _ := os.Open(m.Device)
	f.ReadAt(b, 0)
	f.Close()
	if !elfcore.IsZero(b) {
		t.Error("pages 0–1 not cleared")
	}
	_, xerr := extract.Run(context.Background(), extract.Options{Input: m.Device, Output: filepath.Join(t.TempDir(), "vmcore")})
	var ie *dump.InputError
	if !errors.As(xerr, &ie) {
		t.Errorf("extract of the incomplete device: %v, want a refusal", xerr)
	}
	return ce
}

// TestCaptureWriteFails: a write the kernel refuses at every state; the
// message carries the kernel's log line.
func TestCaptureWriteFails(t *testing.T) {
	for _, tc := range []struct {
		state kmod.State
		errno syscall.Errno
		phase kmod.Phase
	}{
		{kmod.Init, syscall.ENOMEM, kmod.PhaseInit},
		{kmod.Start, syscall.EINVAL, kmod.PhaseStart},
		{kmod.Sweep, syscall.EINVAL, kmod.PhaseSweep},
		{kmod.Finish, syscall.EINVAL, kmod.PhaseFinish},
	} {
		t.Run(tc.state.String(), func(t *testing.T) {
			m := newMachine(t, kmodtest.MachineConfig{FailState: map[kmod.State]syscall.Errno{tc.state: tc.errno}})
			_, err := capture(m, kmod.Options{})
			ce := checkIncomplete(t, m, err, tc.phase)
			if !strings.Contains(err.Error(), "injected failure of "+tc.state.String()) {
				t.Errorf("the kernel log line is not in the message: %v", err)
			}
			if !errors.Is(ce, tc.errno) {
				t.Errorf("errno lost: %v", err)
			}
			if tc.state > kmod.Init && ce.ResetFrom != tc.state-1 {
				t.Errorf("reset from %s, want %s", ce.ResetFrom, tc.state-1)
			}
		})
	}
	t.Run("output", func(t *testing.T) {
		m := newMachine(t, kmodtest.MachineConfig{FailOutput: syscall.EINVAL})
		_, err := capture(m, kmod.Options{})
		checkIncomplete(t, m, err, kmod.PhaseOutput)
		if w := m.Livedump.Writes(); len(w) != 1 {
			t.Errorf("writes after the failed output: %q", w)
		}
	})
	t.Run("UNINIT", func(t *testing.T) {
		// The one failure ldx cannot clean up after: it says so.
		m := newMachine(t, kmodtest.MachineConfig{FailState: map[kmod.State]syscall.Errno{kmod.Uninit: syscall.EINVAL}})
		_, err := capture(m, kmod.Options{})
		var ce *kmod.Error
		if !errors.As(err, &ce) || ce.Phase != kmod.PhaseUninit || ce.KernelReset || !strings.Contains(err.Error(), "NOT reset") || !strings.Contains(err.Error(), "--reset") {
			t.Fatalf("error %v", err)
		}
		if man := readManifest(t, m); man.Status != manifest.StatusIncomplete {
			t.Errorf("manifest status %q", man.Status)
		}
	})
}

// TestCaptureInterrupt: an interruption at the start of every phase, and
// during the kernel's blocking writes.
func TestCaptureInterrupt(t *testing.T) {
	phases := []kmod.Phase{kmod.PhasePreflight, kmod.PhasePrepare, kmod.PhaseManifest, kmod.PhaseOutput, kmod.PhaseInit, kmod.PhaseStart, kmod.PhaseSweep, kmod.PhaseFinish, kmod.PhaseQuiesce, kmod.PhaseUninit, kmod.PhaseReadback}
	for _, p := range phases {
		t.Run("at "+string(p), func(t *testing.T) {
			m := newMachine(t, kmodtest.MachineConfig{})
			before := checksum(t, m.Device)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := captureCtx(ctx, m, kmod.Options{Events: func(e kmod.Event) {
				if e.Kind == kmod.PhaseBegin && e.Phase == p {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
				t.Fatalf("error %v", err)
			}
			switch p {
			case kmod.PhasePreflight, kmod.PhasePrepare:
				// Nothing written at all.
				var ce *kmod.Error
				if !errors.As(err, &ce) || ce.Phase != p || ce.Dump != "not touched" {
					t.Errorf("error %v", err)
				}
				if checksum(t, m.Device) != before || len(m.Livedump.Writes()) != 0 {
					t.Error("an interruption before the device was opened wrote something")
				}
			default:
				checkIncomplete(t, m, err, p)
			}
		})
	}
	for _, st := range []kmod.State{kmod.Init, kmod.Start, kmod.Sweep, kmod.Finish} {
		t.Run("during "+st.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m := newMachine(t, kmodtest.MachineConfig{SweepTime: 200 * time.Millisecond, OnWrite: func(attr, value string) {
				if attr == "state" && value == string(rune('0'+st))+"\n" {
					cancel()
				}
			}})
			_, err := captureCtx(ctx, m, kmod.Options{})
			// The write completes (the kernel cannot be interrupted); the
			// interruption is noticed when it returns.
			checkIncomplete(t, m, err, kmod.Phase(st.String()))
		})
	}
}

// TestCaptureLatePages: FINISH's pages arrive late; ldx waits for the
// device to go quiet. Without the wait (a zero minimum and a quiet window
// shorter than the kernel's latency, as livedump.sh does) the pages are
// lost — and ldx's read-back notices and marks the dump incomplete.
func TestCaptureLatePages(t *testing.T) {
	late := []elfcore.Range{{Start: 20 << 20, End: 20<<20 + 100*4096}}
	t.Run("waited", func(t *testing.T) {
		m := newMachine(t, kmodtest.MachineConfig{FinishLatency: 300 * time.Millisecond, Late: late})
		if _, err := capture(m, kmod.Options{Quiesce: kmod.QuiesceOptions{MinWait: 500 * time.Millisecond, QuietFor: 100 * time.Millisecond, Poll: 10 * time.Millisecond}}); err != nil {
			t.Fatal(err)
		}
		if lost := m.Livedump.Lost(); lost != 0 {
			t.Errorf("%d pages lost", lost)
		}
		extractAndCheck(t, m)
	})
	t.Run("too early", func(t *testing.T) {
		m := newMachine(t, kmodtest.MachineConfig{FinishLatency: 400 * time.Millisecond, Late: late})
		_, err := capture(m, kmod.Options{Quiesce: kmod.QuiesceOptions{MinWait: time.Millisecond, QuietFor: 30 * time.Millisecond, Poll: 5 * time.Millisecond}})
		if lost := m.Livedump.Lost(); lost != 102 {
			t.Errorf("%d pages lost, want the header, the notes and 100 late pages", lost)
		}
		checkIncomplete(t, m, err, kmod.PhaseReadback)
		if !errors.Is(err, kmod.ErrNoHeader) {
			t.Errorf("error %v, want ErrNoHeader", err)
		}
	})
	t.Run("FINISH never written", func(t *testing.T) {
		m := newMachine(t, kmodtest.MachineConfig{DropFinish: true})
		_, err := capture(m, kmod.Options{})
		checkIncomplete(t, m, err, kmod.PhaseReadback)
	})
}

// TestCaptureNotClaimed: the kernel accepted INIT without opening the
// device (v1 does not check; package documentation: "The kernel interface"). ldx must not START (an oops) and
// leaves the interface in INIT rather than risk UNINIT.
func TestCaptureNotClaimed(t *testing.T) {
	m := newMachine(t, kmodtest.MachineConfig{OpenFails: true})
	_, err := capture(m, kmod.Options{})
	var ce *kmod.Error
	if !errors.As(err, &ce) || ce.Phase != kmod.PhaseInit || ce.KernelReset || !strings.Contains(err.Error(), "did not open") {
		t.Fatalf("error %v", err)
	}
	if c := m.Livedump.Crashed(); c != "" {
		t.Fatalf("crashed: %s", c)
	}
	if st := m.Livedump.State(); st != kmod.Init {
		t.Errorf("state %s, want INIT", st)
	}
	if man := readManifest(t, m); man.Status != manifest.StatusIncomplete {
		t.Errorf("manifest status %q", man.Status)
	}
}

// TestCaptureBusy: an interface left mid-run by a killed capture is
// refused, and --reset brings it back first.
func TestCaptureBusy(t *testing.T) {
	m := newMachine(t, kmodtest.MachineConfig{})
	m.Livedump.SetState(kmod.Sweep, m.Device)
	before := checksum(t, m.Device)
	_, err := capture(m, kmod.Options{})
	var re *kmod.RefusedError
	if !errors.As(err, &re) || re.Result.ID != kmod.CheckIdle || !strings.Contains(err.Error(), "--reset") {
		t.Fatalf("error %v", err)
	}
	if checksum(t, m.Device) != before || len(m.Livedump.Writes()) != 0 {
		t.Fatal("a refused capture wrote something")
	}
	res, err := capture(m, kmod.Options{Reset: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResetFrom == nil || *res.ResetFrom != kmod.Sweep {
		t.Errorf("reset from %v", res.ResetFrom)
	}
	extractAndCheck(t, m)

	m.Livedump.SetState(kmod.Start, m.Device)
	if st, err := kmod.Reset(m.Host()); err != nil || st != kmod.Start || m.Livedump.State() != kmod.Uninit {
		t.Errorf("Reset: %v %v, now %s", st, err, m.Livedump.State())
	}
	if st, err := kmod.Reset(m.Host()); err != nil || st != kmod.Uninit {
		t.Errorf("Reset of an idle interface: %v %v", st, err)
	}
}

// TestDryRun: the plan and the checks, nothing written.
func TestDryRun(t *testing.T) {
	m := newMachine(t, kmodtest.MachineConfig{})
	before := checksum(t, m.Device)
	res, err := capture(m, kmod.Options{DryRun: true, Prepare: manifest.Marked})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan) < 8 || len(res.Preflight.Results) != len(kmod.Checks) {
		t.Errorf("plan %q", res.Plan)
	}
	if checksum(t, m.Device) != before || len(m.Livedump.Writes()) != 0 {
		t.Error("a dry run wrote something")
	}
	if _, err := os.Stat(m.Host().Paths.Lock); err == nil {
		t.Error("a dry run created the lock file")
	}
}
