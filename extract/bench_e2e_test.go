//go:build e2e

package extract

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"ldx/kmod/kmodtest"
	"ldx/kmod/kmodtest/guest"
	"ldx/kmod/manifest"
)

// TestBenchE2E (make bench) measures ldx extract against the two ways a
// livedump device is turned into a vmcore today, on the device image of a
// mostly idle real guest behind a read-only loop device: the livedump
// patches' dd-based script, and makedumpfile -E -d 1 (ELF output without
// zero pages). It prints time, throughput, output size and peak RSS; for
// ldx also on a smaller guest, to show memory stays flat as dumps grow.
// Figures, not assertions: the targets are in the README.
func TestBenchE2E(t *testing.T) {
	if os.Getenv("LDX_BENCH") == "" {
		t.Skip("set LDX_BENCH=1 (make bench)")
	}
	ldx, err := filepath.Abs("../bin/ldx")
	if err != nil {
		t.Fatal(err)
	}
	ctx := guest.WithLog(context.Background(), t.Logf)
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "guest\ttool\tinput MiB\ttime s\tMiB/s\toutput MiB\ton disk MiB\tpeak RSS MiB\t")
	for _, mem := range []string{"1G", "4G"} {
		spec := guest.Spec{Kernel: guest.KernelSpec{Series: "6.1"}, Memory: mem, CPUs: 2}
		art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), spec)
		if err != nil {
			t.Fatal(err)
		}
		k, closer, err := kernelFromGuest(art)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		img := filepath.Join(dir, "device.img")
		run := kmodtest.Run{Prepared: manifest.Zeroed, Manifest: &manifest.Manifest{}, Start: time.Now()}
		rep, err := kmodtest.WriteFile(img, k, &run)
		closer.Close()
		if err != nil {
			t.Fatal(err)
		}
		dev := img
		if out, err := exec.Command("losetup", "--find", "--show", "--read-only", img).Output(); err == nil {
			dev = strings.TrimSpace(string(out))
			defer exec.Command("losetup", "-d", dev).Run()
		} else {
			t.Logf("no loop device (%v): reading the image file", err)
		}
		size := rep.DeviceSize
		row := func(tool string, r result) {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.0f\t%d\t%d\t%d\t\n", mem, tool, size>>20, r.secs, float64(rep.DumpEnd)/(1<<20)/r.secs, r.size>>20, r.disk>>20, r.rssKiB>>10)
		}
		out := filepath.Join(dir, "ldx.vmcore")
		row("ldx extract", measure(t, out, ldx, "extract", "-q", dev, "-o", out))
		os.Remove(out)
		if mem == "4G" {
			out = filepath.Join(dir, "dd.vmcore")
			row("dd (livedump_extract.sh)", measure(t, out, "dd", "if="+dev, "of="+out, "bs=4096", fmt.Sprint("count=", rep.DumpEnd/4096), "status=none"))
			os.Remove(out)
			out = filepath.Join(dir, "makedumpfile.vmcore")
			row("makedumpfile -E -d 1", measure(t, out, "makedumpfile", "-E", "-d", "1", dev, out))
			os.Remove(out)
		}
		os.Remove(img)
	}
	tw.Flush()
}

type result struct {
	secs       float64
	size, disk int64
	rssKiB     int64
}

// measure runs a command and returns its wall time, peak RSS and the size
// of the file it wrote (apparent and on disk).
func measure(t *testing.T, out string, name string, args ...string) result {
	exec.Command("sync").Run()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0) // cold cache where permitted
	start := time.Now()
	cmd := exec.Command(name, args...)
	b, err := cmd.CombinedOutput()
	secs := time.Since(start).Seconds()
	if err != nil {
		t.Errorf("%s: %v\n%s", name, err, tail(string(b), 20))
	}
	r := result{secs: secs}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rssKiB = ru.Maxrss
	}
	var st syscall.Stat_t
	if syscall.Stat(out, &st) == nil {
		r.size, r.disk = st.Size, st.Blocks*512
	}
	return r
}

// TestBenchKdumpE2E (make bench) compares ldx extract --format kdump with
// makedumpfile -c on the same ELF vmcore: ldx's own normalised vmcore of
// the cached 4 GiB 6.1 guest (makedumpfile does not take QEMU's dump as it
// comes). At dump levels 0, 1 and 31, zlib. Figures, not assertions.
func TestBenchKdumpE2E(t *testing.T) {
	if os.Getenv("LDX_BENCH") == "" {
		t.Skip("set LDX_BENCH=1 (make bench)")
	}
	ldx, err := filepath.Abs("../bin/ldx")
	if err != nil {
		t.Fatal(err)
	}
	var spec guest.Spec
	for _, s := range e2eScenarios {
		if s.name == "6.1-8cpu-4G-pcihole" {
			spec = s.spec
		}
	}
	art, err := guest.Prepare(guest.WithLog(context.Background(), t.Logf), guest.DefaultCacheDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	elfIn := filepath.Join(dir, "vmcore")
	if _, err := Run(context.Background(), Options{Input: art.Dump, Output: elfIn}); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	syscall.Stat(elfIn, &st)
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "input\ttool\ttime s\tMiB/s\toutput MiB\tpeak RSS MiB\t")
	row := func(tool string, r result) {
		fmt.Fprintf(tw, "4G ELF vmcore\t%s\t%.2f\t%.0f\t%.1f\t%d\t\n", tool, r.secs, float64(st.Size)/(1<<20)/r.secs, float64(r.size)/(1<<20), r.rssKiB>>10)
	}
	for _, level := range []string{"0", "1", "31"} {
		out := filepath.Join(dir, "ldx.kdump")
		row("ldx extract --format kdump -d "+level, measure(t, out, ldx, "extract", "-q", "--format", "kdump", "-d", level, elfIn, "-o", out))
		if level != "31" {
			os.Remove(out)
		}
		out = filepath.Join(dir, "makedumpfile.kdump")
		row("makedumpfile -c -d "+level, measure(t, out, "makedumpfile", "-c", "-d", level, elfIn, out))
		os.Remove(out)
	}
	tw.Flush()
	// The analysis commands on the -d 31 kdump file beside the ELF vmcore.
	kd := filepath.Join(dir, "ldx.kdump")
	tw = tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "command\tinput\ttime s\tpeak RSS MiB\t")
	for _, cmd := range []string{"dmesg", "info"} {
		for _, in := range []struct{ name, path string }{{"4G ELF vmcore", elfIn}, {"its kdump -d 31", kd}} {
			r := measure(t, "", ldx, cmd, in.path)
			fmt.Fprintf(tw, "ldx %s\t%s\t%.2f\t%d\t\n", cmd, in.name, r.secs, r.rssKiB>>10)
		}
	}
	tw.Flush()
}
