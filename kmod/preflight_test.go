package kmod_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"ldx/kmod"
	"ldx/kmod/kmodtest"
)

// TestPreflightRefusals: every refusal, on a fake host. Each one names its
// risk and the way out, writes nothing to the interface or the device, and
// --force overrides only the ones marked forcible.
func TestPreflightRefusals(t *testing.T) {
	synth := func(cpus int) *kmodtest.Kernel { return kmodtest.NewSynthetic(kmodtest.SyntheticOptions{CPUs: cpus}) }
	tests := []struct {
		name     string
		cfg      kmodtest.MachineConfig
		setup    func(t *testing.T, m *kmodtest.Machine) string // returns the device to use, "" for the machine's
		id       kmod.CheckID
		found    string // in the message
		forcible bool
	}{
		{"no livedump support", kmodtest.MachineConfig{NoLivedump: true}, nil, kmod.CheckInterface, "no livedump support", false},
		{"not root", kmodtest.MachineConfig{Euid: 1000}, nil, kmod.CheckRoot, "uid 1000", false},
		{"interface busy", kmodtest.MachineConfig{}, func(t *testing.T, m *kmodtest.Machine) string {
			m.Livedump.SetState(kmod.Start, m.Device)
			return ""
		}, kmod.CheckIdle, "state START (2)", false},
		{"another capture running", kmodtest.MachineConfig{}, func(t *testing.T, m *kmodtest.Machine) string {
			p := m.Host().Paths.Lock
			os.MkdirAll(filepath.Dir(p), 0o755)
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("4242\n")
			t.Cleanup(func() { f.Close() })
			// flock locks are per open file description: this one
			// conflicts with capture's own.
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
				t.Fatal(err)
			}
			return ""
		}, kmod.CheckIdle, "pid 4242", false},
		{"device missing", kmodtest.MachineConfig{}, func(t *testing.T, m *kmodtest.Machine) string { return m.Path("/dev/sdz") }, kmod.CheckDevice, "no such file", false},
		{"not a block device", kmodtest.MachineConfig{}, func(t *testing.T, m *kmodtest.Machine) string { return m.Path("/proc/meminfo") }, kmod.CheckDevice, "not a block device", false},
		{"read-only device", kmodtest.MachineConfig{}, func(t *testing.T, m *kmodtest.Machine) string {
			os.WriteFile(filepath.Join(m.SysDir(), "ro"), []byte("1\n"), 0o644)
			return ""
		}, kmod.CheckDevice, "read-only", false},
		{"RAM-backed device", kmodtest.MachineConfig{DeviceName: "zram0", Major: 252, Minor: 0}, nil, kmod.CheckDevice, "backed by RAM", true},
		{"mounted", kmodtest.MachineConfig{}, func(t *testing.T, m *kmodtest.Machine) string {
			m.AppendFile("/proc/mounts", "/dev/loop3 /srv ext4 rw 0 0")
			return ""
		}, kmod.CheckInUse, "mounted on /srv", false},
		{"partition mounted", kmodtest.MachineConfig{}, func(t *testing.T, m *kmodtest.Machine) string {
			m.AddPartition("loop3p1", 4)
			m.AppendFile("/proc/mounts", `/dev/loop3p1 /mnt/my\040data xfs rw 0 0`)
			return ""
		}, kmod.CheckInUse, "/dev/loop3p1 is mounted on /mnt/my data", false},
		{"swap", kmodtest.MachineConfig{}, func(t *testing.T, m *kmodtest.Machine) string {
			m.AppendFile("/proc/swaps", "/dev/loop3                               partition\t1048572\t\t0\t\t-2")
			return ""
		}, kmod.CheckInUse, "active swap", false},
		{"LVM on it", kmodtest.MachineConfig{}, func(t *testing.T, m *kmodtest.Machine) string {
			m.AddHolder("dm-0", "vg0-data")
			return ""
		}, kmod.CheckInUse, "dm-0 (vg0-data)", false},
		{"device too small", kmodtest.MachineConfig{DeviceSize: 32 << 20}, nil, kmod.CheckSize, "the dump needs (max_pfn+1)·4096", false},
		{"randomised layout (kcore)", kmodtest.MachineConfig{Kernel: func() *kmodtest.Kernel { k := synth(2); k.PageOffsetBase = 0xffff9a4c80000000; return k }()}, nil, kmod.CheckLayout, "page_offset_base is 0xffff9a4c80000000", false},
		{"randomised layout (config)", kmodtest.MachineConfig{Layout: "config", RandomizeMemory: true}, nil, kmod.CheckLayout, "CONFIG_RANDOMIZE_MEMORY", true},
		{"layout unknown", kmodtest.MachineConfig{Layout: "none"}, nil, kmod.CheckLayout, "cannot tell", true},
		{"too little memory", kmodtest.MachineConfig{MemAvailable: 900 << 20}, nil, kmod.CheckMemory, "MemAvailable 900.0 MiB", false},
		{"memory without margin", kmodtest.MachineConfig{MemAvailable: 1300 << 20}, nil, kmod.CheckMemory, "safety margin", true},
		{"12 CPUs, 256 KiB units", kmodtest.MachineConfig{Kernel: synth(12)}, nil, kmod.CheckCPUs, "CPUs 8-11 would double-fault", false},
		{"per-CPU unit unknown", kmodtest.MachineConfig{NoPercpuLine: true, Kernel: func() *kmodtest.Kernel { k := synth(4); k.CrashNotes = nil; return k }()}, nil, kmod.CheckCPUs, "unit size is unknown", true},
		{"128 possible CPUs (K-10)", kmodtest.MachineConfig{Kernel: synth(4), PossibleCPUs: 128}, nil, kmod.CheckCPUs, "K-10", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t, tt.cfg)
			dev := ""
			if tt.setup != nil {
				dev = tt.setup(t, m)
			}
			before := checksum(t, m.Device)
			_, err := capture(m, kmod.Options{Device: dev})
			var re *kmod.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("error %v, want a refusal", err)
			}
			if re.Result.ID != tt.id || !strings.Contains(err.Error(), tt.found) || re.Result.Forcible != tt.forcible {
				t.Errorf("refused by %s (forcible %v), want %s (forcible %v): %v", re.Result.ID, re.Result.Forcible, tt.id, tt.forcible, err)
			}
			if re.Result.Risk == "" || (re.Result.WayOut == "" && tt.id != kmod.CheckIdle) || !strings.Contains(err.Error(), "nothing was written") {
				t.Errorf("the refusal does not name the risk and the way out: %v", err)
			}
			if checksum(t, m.Device) != before {
				t.Error("the device changed")
			}
			if m.Livedump != nil && len(m.Livedump.Writes()) != 0 {
				t.Errorf("writes to the interface: %q", m.Livedump.Writes())
			}
			if tt.id == kmod.CheckInterface && !errors.Is(err, kmod.ErrNoInterface) {
				t.Error("a missing interface is not ErrNoInterface")
			}
			// --force passes the forcible refusals and no other.
			_, err = capture(m, kmod.Options{Device: dev, Force: true, DryRun: true})
			if errors.As(err, &re) == tt.forcible && re.Result.ID == tt.id {
				t.Errorf("--force: %v", err)
			}
		})
	}
}

// TestPreflightPasses: hosts that look odd but are safe, and what ldx
// adapts to.
func TestPreflightPasses(t *testing.T) {
	tests := []struct {
		name string
		cfg  kmodtest.MachineConfig
		warn kmod.CheckID
	}{
		{"layout from config, not randomised", kmodtest.MachineConfig{Layout: "config"}, ""},
		{"nokaslr", kmodtest.MachineConfig{Layout: "none", Cmdline: "ro quiet nokaslr"}, ""},
		{"small buffers of a later tree", kmodtest.MachineConfig{MemAvailable: 1 << 30, Attributes: []string{"buffer_size"}, BufferPages: 16384}, ""},
		{"CPUs beyond the window offline", kmodtest.MachineConfig{Kernel: kmodtest.NewSynthetic(kmodtest.SyntheticOptions{CPUs: 12}), OnlineCPUs: 8}, kmod.CheckCPUs},
		{"8 CPUs, 256 KiB units", kmodtest.MachineConfig{Kernel: kmodtest.NewSynthetic(kmodtest.SyntheticOptions{CPUs: 8})}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(t, tt.cfg)
			res, err := capture(m, kmod.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Preflight.Results {
				if (r.Status == kmod.Warn) != (r.ID == tt.warn) {
					t.Errorf("%s: %s %s", r.ID, r.Status, r.Found)
				}
			}
			if c := m.Livedump.Crashed(); c != "" {
				t.Fatal(c)
			}
			extractAndCheck(t, m)
		})
	}
}

// TestForcedIntoACrash shows what the refusals prevent: forced past its
// checks, the emulated kernel goes down as the real one did (package
// documentation: "Setups that crash the machine").
func TestForcedIntoACrash(t *testing.T) {
	randomised := kmodtest.NewSynthetic(kmodtest.SyntheticOptions{})
	randomised.PageOffsetBase = 0xffff9a4c80000000
	for _, tc := range []struct {
		name  string
		cfg   kmodtest.MachineConfig
		crash string
	}{
		{"randomised layout", kmodtest.MachineConfig{Kernel: randomised, Layout: "config", RandomizeMemory: true}, "INIT: oops"},
		{"K-10", kmodtest.MachineConfig{PossibleCPUs: 128}, "FINISH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, tc.cfg)
			capture(m, kmod.Options{Force: true})
			if c := m.Livedump.Crashed(); !strings.Contains(c, tc.crash) {
				t.Errorf("crash %q, want %q", c, tc.crash)
			}
		})
	}
}

// TestCheckTransition: the kernel's answers to every state write
// (package documentation: "The kernel interface").
func TestCheckTransition(t *testing.T) {
	for from := kmod.Undefined; from <= kmod.Uninit; from++ {
		for to := kmod.State(-1); to <= 7; to++ {
			err := kmod.CheckTransition(from, to, true)
			var want syscall.Errno
			switch {
			case to < 0 || to > 5:
				want = kmod.ENOIOCTLCMD
			case to == kmod.Init && (from == kmod.Undefined || from == kmod.Uninit),
				to >= kmod.Start && to <= kmod.Finish && from == to-1,
				to == kmod.Uninit && from >= kmod.Init:
				want = 0
			default:
				want = syscall.EINVAL
			}
			var te *kmod.TransitionError
			got := syscall.Errno(0)
			if errors.As(err, &te) {
				got = te.Errno
			}
			if got != want {
				t.Errorf("%s → %d: %v, want errno %d", from, int(to), err, want)
			}
		}
	}
	if err := kmod.CheckTransition(kmod.Undefined, kmod.Init, false); err == nil {
		t.Error("INIT without output accepted")
	}
	if err := kmod.CheckTransition(kmod.Start, kmod.Uninit, false); err != nil {
		t.Errorf("UNINIT needs no output: %v", err)
	}
}

// TestOutputLastCharacter: the v1 kernel drops the last character written
// to output; ldx sends the newline and reads the path back.
func TestOutputLastCharacter(t *testing.T) {
	m := newMachine(t, kmodtest.MachineConfig{})
	if err := m.Livedump.WriteAttr("output", []byte("/dev/vda")); err != nil {
		t.Fatal(err)
	}
	if b, _ := m.Livedump.ReadAttr("output"); string(b) != "/dev/vd\n" {
		t.Errorf("the double kept %q", b)
	}
	iface, err := kmod.OpenInterface("/sys/kernel/livedump", m.Livedump, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := iface.SetOutput("/dev/vdb"); err != nil {
		t.Fatal(err)
	}
	if out, _ := iface.Output(); out != "/dev/vdb" {
		t.Errorf("output %q", out)
	}
	// Refused transitions are not written at all.
	if err := iface.Set(kmod.Start); err == nil || len(m.Livedump.Writes()) != 2 {
		t.Errorf("START from UNDEFINED: %v, writes %q", err, m.Livedump.Writes())
	}
	// What the kernel refuses comes back with its log line.
	m.Livedump.SetState(kmod.Init, "/dev/vdb")
	err = iface.SetOutput("/dev/vdc")
	if err == nil || !strings.Contains(err.Error(), "only when idle") {
		t.Errorf("output in INIT: %v", err)
	}
	if err := m.Livedump.WriteAttr("state", []byte("7\n")); !errors.Is(err, kmod.ENOIOCTLCMD) {
		t.Errorf("state 7: %v", err)
	}
}
