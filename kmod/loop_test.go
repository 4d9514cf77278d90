package kmod_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"ldx/elfcore"
	"ldx/kmod"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// loopDevice attaches a loop device to file, or skips the test where that
// needs privileges the test does not have.
func loopDevice(t *testing.T, file string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a loop device")
	}
	out, err := exec.Command("losetup", "--find", "--show", file).Output()
	if err != nil {
		t.Skipf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "--detach", dev).Run() })
	return dev
}

// TestCaptureLoopDevice runs the capture against a real block device (a
// loop device over the emulated machine's device file): the block-device
// paths — BLKZEROOUT, O_DIRECT writes and reads, the exclusive-open probes
// before and after INIT, the real sysfs I/O counters for the wait after
// FINISH — with the emulated kernel holding the device as the real one
// does.
func TestCaptureLoopDevice(t *testing.T) {
	for _, prep := range []manifest.Preparation{manifest.Zeroed, manifest.Marked} {
		t.Run(string(prep), func(t *testing.T) {
			m := newMachine(t, kmodtest.MachineConfig{Unwritten: []elfcore.Range{{Start: 40 << 20, End: 41 << 20}}})
			dev := loopDevice(t, m.Device)
			m.UseBlockDevice(dev)
			res, err := capture(m, kmod.Options{Device: dev, Prepare: prep})
			if err != nil {
				t.Fatal(err)
			}
			if prep == manifest.Zeroed && !strings.Contains(res.Prepared, "BLKZEROOUT") {
				t.Errorf("prepared: %s", res.Prepared)
			}
			if man := res.Manifest; man.Device.Path != dev || man.Device.Major != 7 {
				t.Errorf("manifest device %+v", man.Device)
			}
			for _, p := range res.Phases {
				if p.Phase == kmod.PhaseQuiesce && !strings.Contains(p.Text, "quiet after") {
					t.Errorf("quiesce: %s", p.Text)
				}
			}
			sum := extractAndCheck(t, m)
			if sum.Unwritten != 256 && prep == manifest.Marked {
				t.Errorf("unwritten %d", sum.Unwritten)
			}
		})
	}
	t.Run("held by someone else", func(t *testing.T) {
		m := newMachine(t, kmodtest.MachineConfig{})
		dev := loopDevice(t, m.Device)
		m.UseBlockDevice(dev)
		fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		_, err = capture(m, kmod.Options{Device: dev})
		var re *kmod.RefusedError
		if !errors.As(err, &re) || re.Result.ID != kmod.CheckInUse {
			t.Fatalf("error %v", err)
		}
	})
}
