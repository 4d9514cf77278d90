package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ldx/elfcore"
	"ldx/extract/verify/verifytest"
	"ldx/kmod"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// captureMachine is an emulated machine (kmod/kmodtest) for the capture
// command: fake /proc and /sys, a file standing in for the device, and
// the livedump interface double.
func captureMachine(t *testing.T, cfg kmodtest.MachineConfig) *kmodtest.Machine {
	t.Helper()
	if cfg.FinishLatency == 0 {
		cfg.FinishLatency = 20 * time.Millisecond
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

// captureCLI runs ldx with the capture command pointed at m.
func captureCLI(t *testing.T, m *kmodtest.Machine, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	captureHooks.host = m.Host()
	captureHooks.quiesce = &kmod.QuiesceOptions{MinWait: 100 * time.Millisecond, QuietFor: 60 * time.Millisecond, MaxWait: 5 * time.Second, Poll: 10 * time.Millisecond}
	defer func() { captureHooks.host, captureHooks.quiesce = nil, nil }()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	if m.Livedump != nil {
		m.Livedump.Wait()
	}
	return out.String(), errb.String(), code
}

func captureSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestCaptureExtractVerify: the whole chain against the emulated kernel —
// capture, extract, and ldx verify passing the vmcore.
func TestCaptureExtractVerify(t *testing.T) {
	k, err := verifytest.SyntheticKernel(2)
	if err != nil {
		t.Fatal(err)
	}
	m := captureMachine(t, kmodtest.MachineConfig{Kernel: k, Unwritten: []elfcore.Range{{Start: 60 << 20, End: 62 << 20}}})
	vmcore := filepath.Join(t.TempDir(), "vmcore")
	out, errs, code := captureCLI(t, m, "capture", m.Device, "--extract", "-o", vmcore, "-q")
	if code != 0 {
		t.Fatalf("capture exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"preflight", "prepare", "zeroed", "INIT", "START", "SWEEP", "FINISH", "quiet after", "UNINIT", "read-back", "captured: " + m.Device + " holds a complete dump", "not exposed by this kernel", "wrote " + vmcore, "capture manifest:  yes, device zeroed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if c := m.Livedump.Crashed(); c != "" {
		t.Fatal(c)
	}
	var vout, verr bytes.Buffer
	if code := run([]string{"verify", vmcore, "--brief"}, &vout, &verr); code != exitOK {
		t.Errorf("ldx verify exit %d:\n%s\n%s", code, vout.String(), verr.String())
	}
	// The device itself now reads as a complete livedump, too.
	if code := run([]string{"verify", m.Device, "--brief"}, &vout, &verr); code == exitBadInput {
		t.Errorf("ldx verify cannot read the device: %s", verr.String())
	}
}

// TestCaptureExitCodes: each refusal has its own code and writes nothing;
// failures after preflight reset the kernel side.
func TestCaptureExitCodes(t *testing.T) {
	synth := func(cpus int) *kmodtest.Kernel { return kmodtest.NewSynthetic(kmodtest.SyntheticOptions{CPUs: cpus}) }
	randomised := synth(2)
	randomised.PageOffsetBase = 0xffffa08e40000000
	tests := []struct {
		name  string
		cfg   kmodtest.MachineConfig
		setup func(m *kmodtest.Machine)
		args  func(m *kmodtest.Machine) []string
		code  int
		say   string
	}{
		{"no livedump", kmodtest.MachineConfig{NoLivedump: true}, nil, nil, exitNoLivedump, "no livedump support"},
		{"busy", kmodtest.MachineConfig{}, func(m *kmodtest.Machine) { m.Livedump.SetState(kmod.Sweep, m.Device) }, nil, exitBusy, "--reset"},
		{"not root", kmodtest.MachineConfig{Euid: 1000}, nil, nil, exitNotRoot, "root"},
		{"randomised layout", kmodtest.MachineConfig{Kernel: randomised}, nil, nil, exitRandomLayout, "nokaslr"},
		{"low memory", kmodtest.MachineConfig{MemAvailable: 600 << 20}, nil, nil, exitLowMemory, "OOM killer"},
		{"12 cpus", kmodtest.MachineConfig{Kernel: synth(12)}, nil, nil, exitCPUs, "maxcpus=8"},
		{"not a block device", kmodtest.MachineConfig{}, nil, func(m *kmodtest.Machine) []string { return []string{"capture", m.Path("/proc/iomem")} }, exitBadDevice, "not a block device"},
		{"mounted", kmodtest.MachineConfig{}, func(m *kmodtest.Machine) { m.AppendFile("/proc/mounts", "/dev/loop3 /var/crash ext4 rw 0 0") }, nil, exitDeviceInUse, "/var/crash"},
		{"too small", kmodtest.MachineConfig{DeviceSize: 16 << 20}, nil, nil, exitDeviceSmall, "device size"},
		{"SWEEP refused", kmodtest.MachineConfig{FailState: map[kmod.State]syscall.Errno{kmod.Sweep: syscall.EINVAL}}, nil, nil, exitCaptureFailed, "failed at SWEEP"},
		{"UNINIT refused", kmodtest.MachineConfig{FailState: map[kmod.State]syscall.Errno{kmod.Uninit: syscall.EINVAL}}, nil, nil, exitNotReset, "NOT reset"},
		{"no device", kmodtest.MachineConfig{}, nil, func(m *kmodtest.Machine) []string { return []string{"capture"} }, exitUsage, "DEVICE"},
		{"mark and no-clear", kmodtest.MachineConfig{}, nil, func(m *kmodtest.Machine) []string { return []string{"capture", m.Device, "--mark", "--no-clear"} }, exitUsage, "exclude"},
		{"extract without -o", kmodtest.MachineConfig{}, nil, func(m *kmodtest.Machine) []string { return []string{"capture", m.Device, "--extract"} }, exitUsage, "-o"},
		{"settle too short", kmodtest.MachineConfig{}, nil, func(m *kmodtest.Machine) []string { return []string{"capture", m.Device, "--settle", "500ms"} }, exitUsage, "loses pages"},
		{"output exists", kmodtest.MachineConfig{}, nil, func(m *kmodtest.Machine) []string {
			return []string{"capture", m.Device, "--extract", "-o", m.Path("/proc/iomem")}
		}, exitOutputExist, "before capturing"},
		{"reset, no livedump", kmodtest.MachineConfig{NoLivedump: true}, nil, func(m *kmodtest.Machine) []string { return []string{"capture", "--reset"} }, exitNoLivedump, "no livedump support"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := captureMachine(t, tt.cfg)
			if tt.setup != nil {
				tt.setup(m)
			}
			args := []string{"capture", m.Device}
			if tt.args != nil {
				args = tt.args(m)
			}
			before := captureSum(t, m.Device)
			out, errs, code := captureCLI(t, m, args...)
			if code != tt.code || !strings.Contains(out+errs, tt.say) {
				t.Errorf("exit %d, want %d with %q\n%s%s", code, tt.code, tt.say, out, errs)
			}
			if m.Livedump != nil {
				if c := m.Livedump.Crashed(); c != "" {
					t.Fatal(c)
				}
				if tt.code != exitNotReset && tt.code != exitBusy && !m.Livedump.State().Idle() {
					t.Errorf("interface left in %s", m.Livedump.State())
				}
			}
			if tt.code != exitCaptureFailed && tt.code != exitNotReset && captureSum(t, m.Device) != before {
				t.Error("the device was written")
			}
		})
	}
}

// TestCaptureReset: --reset alone brings a stuck interface back.
func TestCaptureReset(t *testing.T) {
	m := captureMachine(t, kmodtest.MachineConfig{})
	m.Livedump.SetState(kmod.Finish, m.Device)
	out, errs, code := captureCLI(t, m, "capture", "--reset")
	if code != 0 || !strings.Contains(out, "was in FINISH") || m.Livedump.State() != kmod.Uninit {
		t.Fatalf("exit %d, state %s\n%s%s", code, m.Livedump.State(), out, errs)
	}
	out, _, code = captureCLI(t, m, "capture", "--reset")
	if code != 0 || !strings.Contains(out, "nothing to reset") {
		t.Errorf("second reset: exit %d %s", code, out)
	}
}

// TestCaptureSignals sends real SIGINT and SIGTERM to the process while
// the emulated kernel is busy: the capture stops at that step, resets the
// kernel side, marks the device and exits 130.
func TestCaptureSignals(t *testing.T) {
	for _, tc := range []struct {
		sig   syscall.Signal
		when  string // the state write during which the signal arrives
		phase string
		from  string
	}{
		{syscall.SIGINT, "3\n", "SWEEP", "SWEEP"},
		{syscall.SIGTERM, "1\n", "INIT", "INIT"},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			m := captureMachine(t, kmodtest.MachineConfig{SweepTime: 400 * time.Millisecond, OnWrite: func(attr, value string) {
				if attr == "state" && value == tc.when {
					syscall.Kill(os.Getpid(), tc.sig)
					time.Sleep(100 * time.Millisecond) // let it land while the kernel works
				}
			}})
			out, errs, code := captureCLI(t, m, "capture", m.Device, "-q")
			if code != exitInterrupted {
				t.Fatalf("exit %d\n%s%s", code, out, errs)
			}
			for _, want := range []string{"interrupted during " + tc.phase, "reset (UNINIT from " + tc.from + ")", "capture manifest says incomplete"} {
				if !strings.Contains(errs, want) {
					t.Errorf("message lacks %q: %s", want, errs)
				}
			}
			if st := m.Livedump.State(); st != kmod.Uninit {
				t.Errorf("state %s", st)
			}
			f, _ := os.Open(m.Device)
			defer f.Close()
			man, err := manifest.Read(f)
			if err != nil || man.Status != manifest.StatusIncomplete {
				t.Errorf("manifest %v %v", man, err)
			}
		})
	}
}

// TestCaptureDryRun prints the checks and the plan and writes nothing.
func TestCaptureDryRun(t *testing.T) {
	m := captureMachine(t, kmodtest.MachineConfig{Layout: "none"})
	before := captureSum(t, m.Device)
	out, errs, code := captureCLI(t, m, "capture", "--dry-run", m.Device)
	if code != exitRandomLayout || !strings.Contains(out, "REFUSED*") || !strings.Contains(out, "plan:") || !strings.Contains(errs, "--force") {
		t.Errorf("exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = captureCLI(t, m, "capture", "--dry-run", "--force", m.Device)
	if code != 0 || !strings.Contains(out, "forced") || !strings.Contains(out, "nothing was written") {
		t.Errorf("forced dry run: exit %d\n%s%s", code, out, errs)
	}
	if captureSum(t, m.Device) != before || len(m.Livedump.Writes()) != 0 {
		t.Error("a dry run wrote something")
	}
}

// TestCaptureJSON: a livedump capture with --json prints one object on
// stdout (the phase lines go to stderr): the device, manifest, phases and
// with --extract the extract summary; a dry run's object has the checks
// and the plan.
func TestCaptureJSON(t *testing.T) {
	k, err := verifytest.SyntheticKernel(2)
	if err != nil {
		t.Fatal(err)
	}
	type object struct {
		Method   string `json:"method"`
		DryRun   bool   `json:"dry_run"`
		Device   string `json:"device"`
		Manifest *struct {
			Release string `json:"release"`
		} `json:"manifest"`
		Phases []struct {
			Phase string `json:"phase"`
		} `json:"phases"`
		Checks []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"checks"`
		Plan    []string `json:"plan"`
		Extract *struct {
			Output string `json:"output"`
		} `json:"extract"`
	}
	for _, tc := range []struct {
		name   string
		dryRun bool
	}{{"capture and extract", false}, {"dry run", true}} {
		t.Run(tc.name, func(t *testing.T) {
			m := captureMachine(t, kmodtest.MachineConfig{Kernel: k})
			vmcore := filepath.Join(t.TempDir(), "vmcore")
			args := []string{"capture", m.Device, "--extract", "-o", vmcore, "-q", "--json"}
			if tc.dryRun {
				args = []string{"capture", m.Device, "-q", "--json", "--dry-run"}
			}
			out, errs, code := captureCLI(t, m, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errs)
			}
			var o object
			if err := json.Unmarshal([]byte(out), &o); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
			}
			if o.Method != "livedump" || o.DryRun != tc.dryRun || o.Device != m.Device {
				t.Errorf("method %q dry run %v device %q", o.Method, o.DryRun, o.Device)
			}
			if tc.dryRun {
				if len(o.Checks) == 0 || len(o.Plan) == 0 || o.Extract != nil {
					t.Errorf("dry run: %d checks, %d plan steps, extract %v", len(o.Checks), len(o.Plan), o.Extract)
				}
				return
			}
			if o.Manifest == nil || o.Manifest.Release == "" || len(o.Phases) == 0 {
				t.Errorf("manifest %+v, %d phases", o.Manifest, len(o.Phases))
			}
			if o.Extract == nil || o.Extract.Output != vmcore {
				t.Errorf("extract %+v, want output %s", o.Extract, vmcore)
			}
			if !strings.Contains(errs, "SWEEP") {
				t.Errorf("the phase lines are not on stderr:\n%s", errs)
			}
		})
	}
	m := captureMachine(t, kmodtest.MachineConfig{Kernel: k})
	if _, _, code := captureCLI(t, m, "capture", "--reset", "--json"); code != exitUsage {
		t.Errorf("--reset --json: exit %d, want %d", code, exitUsage)
	}
}
