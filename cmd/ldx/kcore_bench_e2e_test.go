//go:build e2e

package main

// TestBenchKcoreE2E (LDX_BENCH=1, make bench-kcore) prints, for a Debian
// 6.1 guest under QEMU, the throughput of ldx capture --kcore beside
// makedumpfile -d 31 -c reading the same /proc/kcore in the same guest (the
// host's makedumpfile and its shared libraries are copied into the
// initramfs), and the capture's smear figures (pages that changed of the
// pages read first and again at the end) for an idle guest and for one
// running a memory-writing loop (dd through a 32 MiB buffer) and a
// fork-and-exit loop, which rewrites the task list the capture checks. Figures are printed, not asserted: TCG
// speed depends on the host.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"ldx/kmod/kmodtest/guest"
)

const kcoreBenchScript = `#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp /run /mnt/x
for m in $(cat /etc/kcore-modules); do insmod /lib/modules/kcore/$m || echo "KCOREBENCH insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
mount -t ext4 /dev/vda /mnt/x || echo "KCOREBENCH mount failed"
bench() {
	name=$1
	shift
	t0=$(cut -d' ' -f1 /proc/uptime)
	"$@" >/tmp/out 2>&1
	rc=$?
	t1=$(cut -d' ' -f1 /proc/uptime)
	sed "s/^/KCOREBENCH-OUT $name: /" /tmp/out
	echo "KCOREBENCH-OUT $name: loadavg: $(cat /proc/loadavg)"
	echo "KCOREBENCH-RC $name $rc $t0 $t1"
	rm -f /mnt/x/out
	sync
}
bench idle /bin/ldx capture --kcore -o /mnt/x/out
bench makedumpfile /bin/makedumpfile -d 31 -c /proc/kcore /mnt/x/out
(while :; do dd if=/dev/zero of=/dev/null bs=32M count=16 2>/dev/null; done) &
busy1=$!
(while :; do /bin/true; done) &
busy2=$!
bench busy /bin/ldx capture --kcore -o /mnt/x/out
kill $busy1 $busy2
umount /mnt/x
echo KCOREBENCH-DONE
poweroff -f
`

func TestBenchKcoreE2E(t *testing.T) {
	if os.Getenv("LDX_BENCH") != "1" {
		t.Skip("benchmark: set LDX_BENCH=1 (make bench-kcore)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ctx = guest.WithLog(ctx, t.Logf)
	const memory = "512M"
	k, err := guest.Fetch(ctx, guest.DefaultCacheDir(), guest.KernelSpec{Series: "6.1"})
	if err != nil {
		t.Fatal(err)
	}
	order, mods, err := guest.Modules(ctx, k.ModulesDir, "virtio_pci", "virtio_blk")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"bin/ldx":           staticLdx(t),
		"etc/kcore-modules": []byte(strings.Join(order, "\n") + "\n"),
	}
	for n, b := range mods {
		files["lib/modules/kcore/"+n] = b
	}
	addHostBinary(t, files, "makedumpfile", "bin/makedumpfile")
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 1<<30); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "nodiscard", disk).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	run, err := guest.RunScript(ctx, guest.ScriptConfig{
		Kernel: k.Vmlinuz, Memory: memory, CPUs: 2,
		Script: kcoreBenchScript, Files: files, Disks: []string{disk},
		Timeout: 15 * time.Minute,
	})
	if err != nil {
		if run != nil {
			t.Logf("console:\n%s", tail(run.Console, 80))
		}
		t.Fatal(err)
	}
	if !strings.Contains(run.Console, "KCOREBENCH-DONE") {
		t.Fatalf("the guest did not get through its script:\n%s", tail(run.Console, 60))
	}
	out := map[string][]string{}
	rcLine := map[string]string{}
	for _, l := range strings.Split(run.Console, "\n") {
		l = strings.TrimRight(l, "\r")
		if i := strings.Index(l, "KCOREBENCH-OUT "); i >= 0 {
			if n, text, ok := strings.Cut(l[i+len("KCOREBENCH-OUT "):], ": "); ok {
				out[n] = append(out[n], text)
			}
		}
		if i := strings.Index(l, "KCOREBENCH-RC "); i >= 0 {
			f := strings.Fields(l[i:])
			if len(f) == 5 {
				rcLine[f[1]] = strings.Join(f[2:], " ")
			}
		}
	}
	rate := regexp.MustCompile(`time:\s+(.*)`)
	load := regexp.MustCompile(`loadavg: (\S+)`)
	smear := regexp.MustCompile(`smear:\s+(\d+) pages readers depend on most read first and again at the end, (\d+) changed`)
	t.Logf("bench_kcore: guest %s, %s RAM, 2 CPUs, TCG", k.Release, memory)
	for _, name := range []string{"idle", "busy"} {
		text := strings.Join(out[name], "\n")
		r, s, l := "?", "?", "?"
		if m := load.FindStringSubmatch(text); m != nil {
			l = m[1]
		}
		if m := rate.FindStringSubmatch(text); m != nil {
			r = m[1]
		}
		if m := smear.FindStringSubmatch(text); m != nil {
			s = m[2] + " of " + m[1] + " pages changed"
		}
		t.Logf("bench_kcore: ldx capture --kcore (%s guest, load %s): exit/start/end %s; %s; smear %s", name, l, rcLine[name], r, s)
	}
	var secs [2]float64
	if f := strings.Fields(rcLine["makedumpfile"]); len(f) == 3 {
		secs[0], _ = strconv.ParseFloat(f[1], 64)
		secs[1], _ = strconv.ParseFloat(f[2], 64)
	}
	mib, _ := guest.ParseMemory(memory)
	d := secs[1] - secs[0]
	if d > 0 {
		t.Logf("bench_kcore: makedumpfile -d 31 -c /proc/kcore: exit %s, %.1f s (%.0f MiB/s of RAM)", strings.Fields(rcLine["makedumpfile"])[0], d, float64(mib)/d)
	} else {
		t.Logf("bench_kcore: makedumpfile -d 31 -c /proc/kcore: %q", rcLine["makedumpfile"])
	}
	if !strings.HasPrefix(rcLine["makedumpfile"], "0 ") {
		t.Logf("bench_kcore: makedumpfile output:\n%s", tail(strings.Join(out["makedumpfile"], "\n"), 20))
	}
}

// addHostBinary puts the host's program name at dst in files, with the
// shared libraries ldd lists for it at their own paths.
func addHostBinary(t *testing.T, files map[string][]byte, name, dst string) {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing (make e2e-deps installs it): %v", name, err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	files[dst] = b
	ldd, err := exec.Command("ldd", p).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", p, err)
	}
	for _, l := range strings.Split(string(ldd), "\n") {
		for _, f := range strings.Fields(l) {
			if !strings.HasPrefix(f, "/") {
				continue
			}
			lib, err := os.ReadFile(f)
			if err != nil {
				t.Fatalf("%s's library %s: %v", name, f, err)
			}
			files[strings.TrimPrefix(f, "/")] = lib
		}
	}
}
