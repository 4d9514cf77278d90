//go:build e2e

package main

// TestKcoreE2E: ldx capture --kcore inside real, unpatched Debian kernels
// booted under QEMU (KASLR on; 2 and 4 CPUs; one guest with 5-level
// paging), onto an ext4 file system on a virtio disk; the vmcore is brought
// back to the host and judged by ldx verify, drgn, makedumpfile and (6.1)
// crash. Refusals are exercised in the same boot, each with its exit code,
// its message and nothing written: output on the initramfs (ramfs) and on
// a tmpfs, a stream into a file on tmpfs, a capture as an unprivileged
// user, no /proc/kcore (a mount namespace with an empty /proc) and one
// hidden behind /dev/null (as container runtimes do); a capture stopped by
// SIGTERM, which exits 130 and leaves no file behind; and a capture to
// stdout (-o -) as a flattened stream. Once per kernel the stream goes
// onto a second, raw virtio disk: the host's ldx extract reads the disk
// image (the stream, then the rest of the disk) into a vmcore judged like
// the file capture (but for crash); otherwise it goes to a file on the
// ext4 disk for makedumpfile -R. The capture is the
// script's last work: the guest then idles while the host takes a QMP
// dump-guest-memory of it, and both captures are compared with it (kernel
// log, tasks, kernel text).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ldx/kmod/kmodtest/guest"
)

const kcoreMarker = "ldx-kcore-e2e-marker:"

type kcoreScenario struct {
	name   string
	series string
	memory string
	cpus   int
	crash  bool // crash 8.0.2 cannot open Debian 6.12 dumps (package guest, "Facts of the test bed")
	la57   bool // 5-level paging
	// rawStream sends the -o - capture onto a raw second disk (once
	// per kernel) instead of a file on the ext4 disk.
	rawStream bool
}

// kcoreScript is the guest's /init: the virtio modules, the disk's ext4
// mounted at /mnt/x, marker lines in the kernel log, a named task, the
// refusals, the interrupted capture, the stream, then the capture.
const kcoreScript = `#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp /run /mnt/x
for m in $(cat /etc/kcore-modules); do insmod /lib/modules/kcore/$m || echo "KCOREE2E insmod $m failed"; done
for i in 1 2 3; do
	echo "` + kcoreMarker + ` line $i of run $(cat /etc/kcore-run)" >/dev/kmsg
done
/bin/ldx-kcore-task &
run_ldx() {
	name=$1
	shift
	"$@" >/tmp/out 2>&1
	rc=$?
	sed "s/^/KCOREE2E-OUT $name: /" /tmp/out
	echo "KCOREE2E-RC $name $rc"
}
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
mount -t ext4 /dev/vda /mnt/x || echo "KCOREE2E mount failed"
run_ldx ramfs /bin/ldx capture --kcore -q -o /tmp/vmcore
ls /tmp/vmcore /tmp/.vmcore* 2>/dev/null | sed 's/^/KCOREE2E-LEFT ramfs: /'
mkdir -p /mnt/t
mount -t tmpfs tmpfs /mnt/t
run_ldx tmpfs /bin/ldx capture --kcore -q -o /mnt/t/vmcore
ls /mnt/t/vmcore /mnt/t/.vmcore* 2>/dev/null | sed 's/^/KCOREE2E-LEFT tmpfs: /'
/bin/ldx capture --kcore -q -o - >/mnt/t/vmcore.flat 2>/tmp/out
echo "KCOREE2E-RC tmpfsstream $?"
sed 's/^/KCOREE2E-OUT tmpfsstream: /' /tmp/out
[ -s /mnt/t/vmcore.flat ] && echo "KCOREE2E-LEFT tmpfsstream: /mnt/t/vmcore.flat is not empty"
run_ldx nokcore unshare -m sh -c "mount -t tmpfs none /proc && exec /bin/ldx capture --kcore -q -o /mnt/x/vmcore-nokcore"
run_ldx hidden unshare -m sh -c "mount --bind /dev/null /proc/kcore && exec /bin/ldx capture --kcore -q -o /mnt/x/vmcore-nokcore"
ls /mnt/x/vmcore-nokcore /mnt/x/.vmcore-nokcore* 2>/dev/null | sed 's/^/KCOREE2E-LEFT nokcore: /'
run_ldx notroot su nobody -s /bin/sh -c "/bin/ldx capture --kcore -q -o /mnt/x/vmcore-nobody"
ls /mnt/x/vmcore-nobody /mnt/x/.vmcore-nobody* 2>/dev/null | sed 's/^/KCOREE2E-LEFT notroot: /'
run_ldx dryrun /bin/ldx capture --kcore --dry-run -o /mnt/x/vmcore
/bin/ldx capture --kcore -q --max-rate 16M -o /mnt/x/vmcore-term >/tmp/term.out 2>&1 &
pid=$!
sleep 4
kill -TERM $pid
wait $pid
echo "KCOREE2E-RC sigterm $?"
sed 's/^/KCOREE2E-OUT sigterm: /' /tmp/term.out
ls -a /mnt/x | grep vmcore-term | sed 's/^/KCOREE2E-LEFT sigterm: /'
if [ "$(cat /etc/kcore-stream)" = raw ]; then
	/bin/ldx capture --kcore -q -o - >/dev/vdb 2>/tmp/stream.err
else
	/bin/ldx capture --kcore -q -o - >/mnt/x/vmcore.flat 2>/tmp/stream.err
fi
echo "KCOREE2E-RC stream $?"
sed 's/^/KCOREE2E-OUT stream: /' /tmp/stream.err
run_ldx capture /bin/ldx capture --kcore --max-rate 2G -o /mnt/x/vmcore
sync
umount /mnt/x
echo KCOREE2E-ALIVE
echo KCOREE2E-IDLE
sleep 100000
poweroff -f
`

func TestKcoreE2E(t *testing.T) {
	for _, tool := range []string{"qemu-system-x86_64", "makedumpfile", "mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (make e2e-deps installs it): %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ctx = guest.WithLog(ctx, t.Logf)
	ldxBin := staticLdx(t)
	for _, sc := range []kcoreScenario{
		{name: "6.1-2cpu", series: "6.1", memory: "512M", cpus: 2, crash: true, rawStream: true},
		{name: "6.12-4cpu", series: "6.12", memory: "768M", cpus: 4},
		{name: "6.12-2cpu-la57", series: "6.12", memory: "512M", cpus: 2, la57: true, rawStream: true},
	} {
		t.Run(sc.name, func(t *testing.T) {
			k, err := guest.Fetch(ctx, guest.DefaultCacheDir(), guest.KernelSpec{Series: sc.series})
			if err != nil {
				t.Fatal(err)
			}
			order, mods, err := guest.Modules(ctx, k.ModulesDir, "virtio_pci", "virtio_blk")
			if err != nil {
				t.Fatal(err)
			}
			files := map[string][]byte{
				"bin/ldx":            ldxBin,
				"bin/ldx-kcore-task": []byte("#!/bin/sh\nwhile :; do sleep 1; done\n"),
				"etc/kcore-run":      []byte(sc.name + "\n"),
				"etc/kcore-stream":   []byte(map[bool]string{true: "raw\n", false: "file\n"}[sc.rawStream]),
				"etc/kcore-modules":  []byte(strings.Join(order, "\n") + "\n"),
				"etc/passwd":         []byte("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"),
				"etc/group":          []byte("root:x:0:\nnogroup:x:65534:\n"),
			}
			for n, b := range mods {
				files["lib/modules/kcore/"+n] = b
			}
			dir := t.TempDir()
			disk := filepath.Join(dir, "disk.img")
			mib, err := guest.ParseMemory(sc.memory)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(disk, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(disk, int64(2*mib+256)<<20); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "nodiscard", disk).CombinedOutput(); err != nil {
				t.Fatalf("mkfs.ext4: %v\n%s", err, out)
			}
			disks := []string{disk}
			raw := filepath.Join(dir, "raw.img")
			if sc.rawStream {
				// Sparse, with room for all of RAM: the stream writes
				// no zero pages, and what follows it stays zeros.
				if err := os.WriteFile(raw, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(raw, int64(mib+64)<<20); err != nil {
					t.Fatal(err)
				}
				disks = append(disks, raw)
			}
			run, err := guest.RunScript(ctx, guest.ScriptConfig{
				Kernel: k.Vmlinuz, Memory: sc.memory, CPUs: sc.cpus, LA57: sc.la57,
				Script: kcoreScript, Files: files, Disks: disks,
				Timeout:  8 * time.Minute,
				DumpWhen: "KCOREE2E-IDLE", DumpPath: filepath.Join(dir, "qemu.elf"),
			})
			if err != nil {
				if run != nil {
					t.Logf("kcore_e2e %s: console:\n%s", sc.name, run.Console)
				}
				t.Fatal(err)
			}
			g := parseKcoreGuest(run.Console)
			t.Logf("kcore_e2e %s: guest %s ran %.1f s (%s, %d CPUs); exit codes %v", sc.name, k.Release, run.Elapsed.Seconds(), sc.memory, sc.cpus, g.rc)
			for _, l := range g.out["capture"] {
				t.Logf("kcore_e2e %s:   capture| %s", sc.name, l)
			}
			if !strings.Contains(run.Console, "KCOREE2E-ALIVE") || strings.Contains(run.Console, "KCOREE2E mount failed") {
				t.Fatalf("kcore_e2e %s: the guest did not get through its script:\n%s", sc.name, tail(run.Console, 60))
			}
			for name, want := range map[string]int{"ramfs": exitRAMBacked, "tmpfs": exitRAMBacked, "tmpfsstream": exitRAMBacked, "notroot": exitNotPermitted,
				"nokcore": exitNoKcore, "hidden": exitNoKcore, "sigterm": exitInterrupted, "dryrun": 0, "capture": 0, "stream": 0} {
				if got, ok := g.rc[name]; !ok || got != want {
					t.Errorf("kcore_e2e %s: %s: exit %d (ran %v), want %d:\n%s", sc.name, name, got, ok, want, strings.Join(g.out[name], "\n"))
				}
				if len(g.left[name]) > 0 {
					t.Errorf("kcore_e2e %s: %s was refused yet left %v", sc.name, name, g.left[name])
				}
			}
			for name, want := range map[string]string{"ramfs": "keeps files in RAM", "tmpfs": "is on tmpfs", "tmpfsstream": "RAM-backed file system",
				"notroot": "needs root", "nokcore": "/proc/kcore does not exist", "hidden": "hide it behind an empty file"} {
				if got := strings.Join(g.out[name], "\n"); !strings.Contains(got, want) {
					t.Errorf("kcore_e2e %s: the %s refusal does not say %q: %q", sc.name, name, want, got)
				}
			}
			if g.rc["capture"] != 0 {
				t.FailNow()
			}
			vmcore := filepath.Join(dir, "vmcore")
			if out, err := exec.Command("debugfs", "-R", "dump /vmcore "+vmcore, disk).CombinedOutput(); err != nil {
				t.Fatalf("debugfs dump: %v\n%s", err, out)
			}
			checkKcoreVmcore(t, sc, sc.name, k, vmcore, dir)
			memo := ldxMemo{} // the QEMU dump is read once for both captures
			if run.Dumped {
				compareKcoreQEMU(t, sc.name, k, vmcore, filepath.Join(dir, "qemu.elf"), memo)
			} else {
				t.Errorf("kcore_e2e %s: no QMP dump was taken after the capture", sc.name)
			}
			if !sc.la57 {
				// The 4-level guests cover it; the 5-level guest stays
				// within the test's time budget.
				checkKcoreCompressed(t, sc, vmcore, dir)
			}
			if !sc.rawStream {
				checkKcoreStream(t, sc, disk, dir)
				return
			}
			os.Remove(vmcore)
			streamed := checkKcoreRawStream(t, sc, raw, dir)
			checkKcoreVmcore(t, sc, sc.name+" raw-disk stream", k, streamed, dir)
			if run.Dumped {
				compareKcoreQEMU(t, sc.name+" raw-disk stream", k, streamed, filepath.Join(dir, "qemu.elf"), memo)
			}
		})
	}
}

type kcoreGuest struct {
	rc   map[string]int
	out  map[string][]string
	left map[string][]string
}

func parseKcoreGuest(console string) *kcoreGuest {
	g := &kcoreGuest{rc: map[string]int{}, out: map[string][]string{}, left: map[string][]string{}}
	for _, l := range strings.Split(console, "\n") {
		l = strings.TrimRight(l, "\r")
		var name string
		var rc int
		if i := strings.Index(l, "KCOREE2E-RC "); i >= 0 {
			if n, _ := fmt.Sscanf(l[i:], "KCOREE2E-RC %s %d", &name, &rc); n == 2 {
				g.rc[name] = rc
			}
		}
		for _, kind := range []string{"OUT", "LEFT"} {
			if i := strings.Index(l, "KCOREE2E-"+kind+" "); i >= 0 {
				rest := l[i+len("KCOREE2E-"+kind+" "):]
				if n, text, ok := strings.Cut(rest, ": "); ok {
					if kind == "OUT" {
						g.out[n] = append(g.out[n], text)
					} else {
						g.left[n] = append(g.left[n], text)
					}
				}
			}
		}
	}
	return g
}

const kcoreDrgnScript = `
from drgn.helpers.linux.pid import for_each_task
print("KCORE-RELEASE", prog["init_uts_ns"].name.release.string_().decode())
for t in for_each_task(prog):
    print("KCORE-TASK", t.comm.string_().decode(errors="replace"))
`

func checkKcoreVmcore(t *testing.T, sc kcoreScenario, label string, k *guest.Kernel, vmcore, dir string) {
	out, errs, code := ldx("verify", vmcore)
	t.Logf("kcore_e2e %s: host: ldx verify exit %d", label, code)
	if code != 0 {
		t.Errorf("kcore_e2e %s: ldx verify: exit %d:\n%s%s", label, code, out, errs)
	}
	out, _, code = ldx("info", vmcore)
	if code != 0 || !strings.Contains(out, "kcore") || !strings.Contains(out, "non-atomic") {
		t.Errorf("kcore_e2e %s: ldx info (exit %d) does not report a live kcore capture:\n%s", label, code, out)
	}
	wantMarkers := func(tool string, text []byte) {
		for i := 1; i <= 3; i++ {
			want := fmt.Sprintf("%s line %d of run %s", kcoreMarker, i, sc.name)
			if !bytes.Contains(text, []byte(want)) {
				t.Errorf("kcore_e2e %s: %s lacks %q", label, tool, want)
			}
		}
	}
	ref := filepath.Join(dir, "makedumpfile.dmesg")
	os.Remove(ref) // makedumpfile does not replace it (the file capture's, before the stream's)
	mdOut, err := exec.Command("makedumpfile", "--dump-dmesg", vmcore, ref).CombinedOutput()
	if err != nil {
		t.Errorf("kcore_e2e %s: makedumpfile --dump-dmesg: %v\n%s", label, err, mdOut)
	}
	md, _ := os.ReadFile(ref)
	wantMarkers("makedumpfile --dump-dmesg", md)
	t.Logf("kcore_e2e %s: makedumpfile --dump-dmesg: %d bytes of log", label, len(md))

	script := filepath.Join(dir, "probe.py")
	os.WriteFile(script, []byte(kcoreDrgnScript), 0o644)
	dout, err := exec.Command("/usr/bin/drgn", "-q", "-c", vmcore, "-s", k.Vmlinux, script).CombinedOutput()
	if err != nil {
		t.Errorf("kcore_e2e %s: drgn: %v\n%s", label, err, tail(string(dout), 30))
	}
	if !strings.Contains(string(dout), "KCORE-RELEASE "+k.Release+"\n") {
		t.Errorf("kcore_e2e %s: drgn's init_uts_ns release is not %s:\n%s", label, k.Release, tail(string(dout), 30))
	}
	tasks := strings.Count(string(dout), "KCORE-TASK ")
	for _, want := range []string{"KCORE-TASK init\n", "KCORE-TASK ldx-kcore-task\n", "KCORE-TASK ldx\n"} {
		if !strings.Contains(string(dout), want) {
			t.Errorf("kcore_e2e %s: drgn's for_each_task has no %q (%d tasks)", label, strings.TrimSpace(want), tasks)
		}
	}
	t.Logf("kcore_e2e %s: drgn: release %s, %d tasks with init, ldx-kcore-task and ldx", label, k.Release, tasks)

	if !sc.crash || label != sc.name {
		// crash judges the file capture only: the stream's vmcore
		// holds the same kind of image, and crash takes longest.
		return
	}
	cscript := filepath.Join(dir, "crash.in")
	os.WriteFile(cscript, []byte("sys\nlog\nquit\n"), 0o644)
	cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cout, err := exec.CommandContext(cctx, "crash", "-s", "--no_scroll", "-i", cscript, k.Vmlinux, vmcore).CombinedOutput()
	if err != nil {
		t.Errorf("kcore_e2e %s: crash: %v\n%s", label, err, tail(string(cout), 30))
	}
	if !strings.Contains(string(cout), k.Release) {
		t.Errorf("kcore_e2e %s: crash's sys does not show %s:\n%s", label, k.Release, tail(string(cout), 30))
	}
	wantMarkers("crash log", cout)
	t.Logf("kcore_e2e %s: crash: sys shows %s, log the markers", label, k.Release)
}

// checkKcoreStream rearranges the guest's flattened stream with
// makedumpfile -R and verifies the result.
func checkKcoreStream(t *testing.T, sc kcoreScenario, disk, dir string) {
	flat := filepath.Join(dir, "vmcore.flat")
	if out, err := exec.Command("debugfs", "-R", "dump /vmcore.flat "+flat, disk).CombinedOutput(); err != nil {
		t.Fatalf("debugfs dump: %v\n%s", err, out)
	}
	in, err := os.Open(flat)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	re := filepath.Join(dir, "vmcore.rearranged")
	cmd := exec.Command("makedumpfile", "-R", re)
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcore_e2e %s: makedumpfile -R of the stream: %v\n%s", sc.name, err, out)
	}
	out, errs, code := ldx("verify", re)
	fi, _ := os.Stat(flat)
	t.Logf("kcore_e2e %s: -o -: %d MiB flattened stream, makedumpfile -R rearranges it, ldx verify exit %d", sc.name, fi.Size()>>20, code)
	if code != 0 {
		t.Errorf("kcore_e2e %s: ldx verify of the rearranged stream: exit %d\n%s%s", sc.name, code, out, errs)
	}
	os.Remove(flat)
	os.Remove(re)
}

// compareKcoreQEMU judges the kcore capture against QEMU's own dump of the
// same guest taken just after it, while the guest idled: the capture's log
// must be a prefix of the dump's (lines may follow it), the task lists must
// agree on every task there since the guest's set-up (tasks started later
// may come and go in between, and a live read may tear a task being
// created or freed), and the kernel text must be identical.
func compareKcoreQEMU(t *testing.T, label string, k *guest.Kernel, vmcore, qemu string, memo ldxMemo) {
	capLog, errs, code := ldx("dmesg", vmcore)
	if code != 0 {
		t.Fatalf("kcore_e2e %s: ldx dmesg of the capture: exit %d: %s", label, code, errs)
	}
	qemuLog, errs, code := memo.ldx("dmesg", qemu)
	if code != 0 {
		t.Fatalf("kcore_e2e %s: ldx dmesg of the QEMU dump: exit %d: %s", label, code, errs)
	}
	capLines := strings.Split(strings.TrimSuffix(capLog, "\n"), "\n")
	qemuLines := strings.Split(strings.TrimSuffix(qemuLog, "\n"), "\n")
	if !strings.Contains(capLog, kcoreMarker) {
		t.Errorf("kcore_e2e %s: ldx dmesg of the capture lacks the markers", label)
	}
	for i, l := range capLines {
		if i >= len(qemuLines) || qemuLines[i] != l {
			other := "(end of log)"
			if i < len(qemuLines) {
				other = qemuLines[i]
			}
			t.Errorf("kcore_e2e %s: dmesg line %d of the capture is %q, the QEMU dump's %q", label, i+1, l, other)
			break
		}
	}
	t.Logf("kcore_e2e %s: vs QEMU dump: dmesg %d lines in the capture, a prefix of the dump's %d", label, len(capLines), len(qemuLines))

	type task struct {
		PID  int32  `json:"pid"`
		Comm string `json:"comm"`
	}
	psOf := func(in string, run func(...string) (string, string, int)) map[task]bool {
		out, errs, code := run("ps", "--json", "--vmlinux", k.Vmlinux, in)
		if code != 0 {
			t.Fatalf("kcore_e2e %s: ldx ps %s: exit %d: %s", label, filepath.Base(in), code, errs)
		}
		var r struct {
			Tasks []task `json:"tasks"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("kcore_e2e %s: ldx ps --json %s: %v", label, filepath.Base(in), err)
		}
		m := map[task]bool{}
		for _, x := range r.Tasks {
			m[x] = true
		}
		return m
	}
	capPs, qemuPs := psOf(vmcore, ldx), psOf(qemu, memo.ldx)
	// The script starts ldx-kcore-task once the guest is set up: every
	// task with a higher pid came later (ldx, the script's commands, the
	// kernel's usermode helpers such as modprobe, the ext4 threads of the
	// disk mounted after it) and may come or go between the capture and
	// the QEMU dump. Tasks with a lower pid (init, the kernel threads,
	// ldx-kcore-task itself) live as long as the guest: each must be in
	// both. Kernel workers, and the modprobe the kernel starts whenever a
	// module is asked for (seen at pid 107, set-up done at 164, on 6.12),
	// come and go whatever their pid.
	setup := int32(-1)
	for x := range qemuPs {
		if x.Comm == "ldx-kcore-task" && capPs[x] {
			setup = x.PID
		}
	}
	if setup < 0 {
		t.Fatalf("kcore_e2e %s: ldx-kcore-task is not among the tasks both dumps list", label)
	}
	transient := func(x task) bool {
		return x.PID > setup || strings.HasPrefix(x.Comm, "kworker/") || x.Comm == "modprobe"
	}
	// A task_struct that was being set up or torn down while the live
	// capture read it: smear, only in the capture, with pid 0 and no
	// name, or a pid beyond PID_MAX_LIMIT and bytes for a name.
	torn := func(x task) bool {
		if x.PID == 0 && x.Comm == "" {
			return true
		}
		printable := true
		for _, r := range x.Comm {
			printable = printable && r >= ' ' && r < 0x7f
		}
		return x.PID < 0 || x.PID > 1<<22 || !printable
	}
	common, nTorn, onlyCap, onlyQEMU := 0, 0, []string{}, []string{}
	for x := range capPs {
		if qemuPs[x] {
			common++
			continue
		}
		onlyCap = append(onlyCap, fmt.Sprintf("%d %q", x.PID, x.Comm))
		switch {
		case torn(x):
			nTorn++
		case !transient(x):
			t.Errorf("kcore_e2e %s: task %d %q, there since the guest's set-up, is in the capture, not in the QEMU dump", label, x.PID, x.Comm)
		}
	}
	if nTorn > 2 {
		t.Errorf("kcore_e2e %s: %d tasks of the capture are torn (a smear of at most a few tasks is expected): %v", label, nTorn, onlyCap)
	}
	for x := range qemuPs {
		if capPs[x] {
			continue
		}
		onlyQEMU = append(onlyQEMU, fmt.Sprintf("%d %q", x.PID, x.Comm))
		if !transient(x) {
			t.Errorf("kcore_e2e %s: task %d %q, there since the guest's set-up, is in the QEMU dump, not in the capture", label, x.PID, x.Comm)
		}
	}
	for _, want := range []string{"init", "ldx-kcore-task"} {
		found := false
		for x := range capPs {
			found = found || (x.Comm == want && qemuPs[x])
		}
		if !found {
			t.Errorf("kcore_e2e %s: %s is not among the tasks both dumps list", label, want)
		}
	}
	t.Logf("kcore_e2e %s: vs QEMU dump: ps %d tasks in both (set-up done at pid %d); only in the capture %v (%d torn); only in the QEMU dump %v", label, common, setup, onlyCap, nTorn, onlyQEMU)

	syms, errs, code := ldx("syms", vmcore, "_*text")
	if code != 0 {
		t.Fatalf("kcore_e2e %s: ldx syms: exit %d: %s", label, code, errs)
	}
	addr := map[string]uint64{}
	for _, l := range strings.Split(syms, "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && (f[2] == "_stext" || f[2] == "_etext") {
			v, err := strconv.ParseUint(f[0], 16, 64)
			if err == nil {
				addr[f[2]] = v
			}
		}
	}
	start, end := addr["_stext"], addr["_etext"]
	if start == 0 || end <= start || end-start > 256<<20 {
		t.Fatalf("kcore_e2e %s: ldx syms gives _stext %#x, _etext %#x:\n%s", label, start, end, tail(syms, 20))
	}
	n := strconv.FormatUint(end-start, 10)
	capText, errs, code := ldx("read", "--raw", vmcore, strconv.FormatUint(start, 16), n)
	if code != 0 {
		t.Fatalf("kcore_e2e %s: ldx read of the capture's kernel text: exit %d: %s", label, code, errs)
	}
	qemuText, errs, code := memo.ldx("read", "--raw", qemu, strconv.FormatUint(start, 16), n)
	if code != 0 {
		t.Fatalf("kcore_e2e %s: ldx read of the QEMU dump's kernel text: exit %d: %s", label, code, errs)
	}
	if uint64(len(capText)) != end-start || capText != qemuText {
		diff := 0
		for i := 0; i+4096 <= len(capText) && i+4096 <= len(qemuText); i += 4096 {
			if capText[i:i+4096] != qemuText[i:i+4096] {
				diff++
			}
		}
		t.Errorf("kcore_e2e %s: kernel text %#x..%#x differs: %d and %d bytes read, %d pages differ", label, start, end, len(capText), len(qemuText), diff)
	}
	t.Logf("kcore_e2e %s: vs QEMU dump: kernel text _stext.._etext %#x..%#x, %d bytes compared", label, start, end, len(capText))
}

// checkKcoreRawStream reads the stream the guest wrote onto its raw
// second disk: ldx extract of the whole disk image (the flattened stream,
// then the zeros the rest of the disk holds), which must stop at the
// stream's end record. It returns the extracted vmcore. (makedumpfile -R
// of a stream is checked in the cases that stream to a file.)
func checkKcoreRawStream(t *testing.T, sc kcoreScenario, raw, dir string) string {
	vmcore := filepath.Join(dir, "vmcore.from-disk")
	out, errs, code := ldx("extract", "-q", "--json", raw, "-o", vmcore)
	if code != 0 {
		t.Fatalf("kcore_e2e %s: ldx extract of the raw disk: exit %d\n%s%s", sc.name, code, out, errs)
	}
	var sum struct {
		InputKind string   `json:"input_kind"`
		Warnings  []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("kcore_e2e %s: ldx extract --json: %v\n%s", sc.name, err, out)
	}
	for _, w := range sum.Warnings {
		if strings.Contains(w, "end record") {
			t.Errorf("kcore_e2e %s: ldx extract of the raw disk says the stream was cut: %s", sc.name, w)
		}
	}
	if !strings.Contains(sum.InputKind, "flattened") {
		t.Errorf("kcore_e2e %s: ldx extract reads the raw disk as %q, not as a flattened stream", sc.name, sum.InputKind)
	}
	fi, _ := os.Stat(raw)
	t.Logf("kcore_e2e %s: raw-disk stream: ldx extract of the %d MiB disk image (%s) wrote %s", sc.name, fi.Size()>>20, sum.InputKind, filepath.Base(vmcore))
	return vmcore
}

// ldxMemo keeps what ldx printed for a set of arguments, for a file that
// more than one comparison reads the same way.
type ldxMemo map[string]ldxResult

type ldxResult struct {
	out, errs string
	code      int
}

func (m ldxMemo) ldx(args ...string) (string, string, int) {
	key := strings.Join(args, "\x00")
	r, ok := m[key]
	if !ok {
		r.out, r.errs, r.code = ldx(args...)
		m[key] = r
	}
	return r.out, r.errs, r.code
}

// checkKcoreCompressed filters and compresses the capture with
// makedumpfile -c -d 31 and reads the log back out of the result.
func checkKcoreCompressed(t *testing.T, sc kcoreScenario, vmcore, dir string) {
	out := filepath.Join(dir, "vmcore.d31")
	if b, err := exec.Command("makedumpfile", "-c", "-d", "31", vmcore, out).CombinedOutput(); err != nil {
		t.Errorf("kcore_e2e %s: makedumpfile -c -d 31 of the capture: %v\n%s", sc.name, err, tail(string(b), 20))
		return
	}
	defer os.Remove(out)
	log := filepath.Join(dir, "d31.dmesg")
	if b, err := exec.Command("makedumpfile", "--dump-dmesg", out, log).CombinedOutput(); err != nil {
		t.Errorf("kcore_e2e %s: makedumpfile --dump-dmesg of the -d 31 output: %v\n%s", sc.name, err, b)
		return
	}
	text, _ := os.ReadFile(log)
	for i := 1; i <= 3; i++ {
		want := fmt.Sprintf("%s line %d of run %s", kcoreMarker, i, sc.name)
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("kcore_e2e %s: --dump-dmesg of the -d 31 output lacks %q", sc.name, want)
		}
	}
	in, _ := os.Stat(vmcore)
	fi, _ := os.Stat(out)
	t.Logf("kcore_e2e %s: makedumpfile -c -d 31: %d MiB -> %d MiB, --dump-dmesg shows the markers", sc.name, in.Size()>>20, fi.Size()>>20)
}
