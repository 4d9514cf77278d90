//go:build e2e

package extract

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	secs, cpu  float64 // wall; user + system
	size, disk int64
	rssKiB     int64
	readBytes  int64 // read from the disk (not from the page cache)
}

// measure runs a command on a cold page cache (where permitted) and
// returns its wall and CPU time, peak RSS, what it read from the disk and
// the size of the file it wrote (apparent and on disk).
func measure(t *testing.T, out string, name string, args ...string) result {
	return measureCache(t, true, out, name, args...)
}

func measureCache(t *testing.T, cold bool, out string, name string, args ...string) result {
	if cold {
		exec.Command("sync").Run()
		os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
	}
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
		r.cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime)).Seconds()
		r.readBytes = ru.Inblock * 512
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
// comes), at dump levels 0, 1 and 31, zlib, page cache dropped before
// each run. -d 31 is also run on the 1 GiB guest (peak RSS must stay flat
// as the dump grows) and with a warm page cache, three rounds of each
// tool in turn, medians printed: the machine is shared, so CPU time (user
// + system) and the paired ratio say more than one wall time. MiB read is
// what came from the disk rather than the page cache. Figures, not
// assertions.
func TestBenchKdumpE2E(t *testing.T) {
	if os.Getenv("LDX_BENCH") == "" {
		t.Skip("set LDX_BENCH=1 (make bench)")
	}
	ldx, err := filepath.Abs("../bin/ldx")
	if err != nil {
		t.Fatal(err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "input\ttool\tcache\ttime s\tuser+sys s\tMiB read\toutput MiB\tpeak RSS MiB\t")
	row := func(input, tool, cache string, r result) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%.2f\t%.0f\t%.1f\t%d\t\n", input, tool, cache, r.secs, r.cpu, float64(r.readBytes)/(1<<20), float64(r.size)/(1<<20), r.rssKiB>>10)
	}
	var ratios []string
	var kd, elf4 string // the 4 GiB guest's -d 31 kdump file and ELF vmcore
	for _, g := range []struct{ name, scenario string }{{"1G", "6.1-4cpu-kaslr"}, {"4G", "6.1-8cpu-4G-pcihole"}} {
		var spec guest.Spec
		for _, s := range e2eScenarios {
			if s.name == g.scenario {
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
		input := g.name + " ELF vmcore"
		ldxOut, mdOut := filepath.Join(dir, "ldx.kdump"), filepath.Join(dir, "makedumpfile.kdump")
		ldxRun := func(cold bool, level string) result {
			os.Remove(ldxOut)
			return measureCache(t, cold, ldxOut, ldx, "extract", "-q", "--format", "kdump", "-d", level, elfIn, "-o", ldxOut)
		}
		mdRun := func(cold bool, level string) result {
			os.Remove(mdOut)
			return measureCache(t, cold, mdOut, "makedumpfile", "-c", "-d", level, elfIn, mdOut)
		}
		if g.name == "4G" {
			for _, level := range []string{"0", "1"} {
				row(input, "ldx extract --format kdump -d "+level, "cold", ldxRun(true, level))
				row(input, "makedumpfile -c -d "+level, "cold", mdRun(true, level))
			}
		}
		for _, cache := range []string{"cold", "warm"} {
			var l, m []result
			for range 3 {
				l = append(l, ldxRun(cache == "cold", "31"))
				m = append(m, mdRun(cache == "cold", "31"))
			}
			lr, mr := median(l), median(m)
			row(input, "ldx extract --format kdump -d 31", cache, lr)
			row(input, "makedumpfile -c -d 31", cache, mr)
			ratios = append(ratios, fmt.Sprintf("%s, -d 31, %s cache: makedumpfile/ldx time %.2f×, user+sys %.2f×, output size %.3f×",
				input, cache, mr.secs/lr.secs, mr.cpu/lr.cpu, float64(mr.size)/float64(lr.size)))
		}
		if g.name == "4G" {
			kd, elf4 = filepath.Join(t.TempDir(), "ldx.kdump"), elfIn
			if err := os.Rename(ldxOut, kd); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.Flush()
	fmt.Println("(medians of 3 rounds for -d 31)")
	for _, r := range ratios {
		fmt.Println(r)
	}
	// The analysis commands on the -d 31 kdump file beside the ELF vmcore.
	tw = tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "command\tinput\ttime s\tpeak RSS MiB\t")
	for _, cmd := range []string{"dmesg", "info"} {
		for _, in := range []struct{ name, path string }{{"4G ELF vmcore", elf4}, {"its kdump -d 31", kd}} {
			r := measure(t, "", ldx, cmd, in.path)
			fmt.Fprintf(tw, "ldx %s\t%s\t%.2f\t%d\t\n", cmd, in.name, r.secs, r.rssKiB>>10)
		}
	}
	tw.Flush()
}

// median is the run of median wall time, with the median CPU time and
// read; size and RSS are the largest seen.
func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	m := result{
		secs:      pick(func(r result) float64 { return r.secs }),
		cpu:       pick(func(r result) float64 { return r.cpu }),
		readBytes: int64(pick(func(r result) float64 { return float64(r.readBytes) })),
	}
	for _, r := range rs {
		m.size, m.disk, m.rssKiB = max(m.size, r.size), max(m.disk, r.disk), max(m.rssKiB, r.rssKiB)
	}
	return m
}
