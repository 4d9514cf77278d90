// Package guest produces real kernel memory for tests: it fetches a Debian
// kernel (without installing it), builds a busybox initramfs, boots it under
// qemu-system-x86_64 with TCG and takes a QMP dump-guest-memory ELF dump,
// together with the "facts" the guest reports about itself.
//
// Why: ldx turns livedump block devices into ELF vmcores, and the only honest
// reference for "what a vmcore of this kernel must contain" is a real kernel's
// memory. The facts (iomem, VMCOREINFO address, crash_notes, kallsyms, marker
// lines in the printk ring, named processes) are reported by the guest itself,
// so tests can check consumers' output against ground truth instead of
// against values computed by the code under test.
//
// The pieces:
//
//   - [Fetch] downloads the kernel image and its -dbg package at the version
//     pinned in [Pins] (announced on every run) with apt-get download and
//     unpacks them with dpkg into a cache (nothing is installed on the host).
//   - buildInitramfs writes a newc cpio (pure Go) with busybox, the
//     qemu_fw_cfg module and a /init that prints the facts.
//   - [Boot] starts QEMU (TCG: KVM does not work on the test machines) and
//     waits until the guest has printed its facts; [Guest.Dump] takes the dump.
//   - [Prepare] ties it together and caches the artefacts per spec, so tests
//     pay for a boot only once per machine.
//
// Everything is Linux/x86-64 and Debian specific on purpose: it is a test bed.
//
// # Facts of the test bed
//
// Measured on the test machines (2 cores, Debian 12) with Debian's own
// packages: QEMU 7.2, crash 8.0.2, makedumpfile 1.7.2, drgn 0.0.22 (with
// libkdumpfile 0.5.1), busybox-static 1.35, Debian 6.1 and 6.12 kernels.
//
//   - Kernels: the kernel package's System.map is a stub (the real one is
//     `nm -n` of the -dbg vmlinux); the -dbg vmlinux's build-id equals the
//     BUILD-ID in a dump's VMCOREINFO.
//   - Booting: /dev/kvm is a nested variant on which `-cpu host` and `max`
//     abort, so guests run under TCG (a 512 MiB, 2-CPU guest reaches user
//     space in about 6 s). VMCOREINFO reaches QEMU's dump only with
//     `-device vmcoreinfo` and the guest's qemu_fw_cfg module loaded.
//     `-cpu max,+la57` gives 5-level paging; Debian kernels randomise both
//     the text and the memory layout unless `nokaslr` is given. `-M pc -m
//     4G` puts 3 GiB below 4 GiB and 1 GiB above.
//   - QEMU 7.2's ELF dumps: program headers at 0xc0 after two section
//     headers, e_ehsize 8 (a QEMU bug), p_vaddr = p_paddr and no
//     kernel-image segment, one CORE NT_PRSTATUS (pr_pid = CPU index + 1)
//     and one QEMU note per vCPU, plus VMCOREINFO. `paging:true` gives tens
//     of thousands of segments (PN_XNUM). max_pfn must come from the guest
//     (its e820 map), not from QEMU's PT_LOADs, which include BIOS-reserved
//     areas.
//   - crash 8.0.2 cannot open Debian 6.12 dumps at all, QEMU's own
//     included: it looks for module_load_offset, gone in 6.12, and with
//     --kaslr=auto stops at "invalid structure member offset:
//     module_core_size". On 6.12 the tests judge with makedumpfile and drgn.
//     On 6.1 its `ps` shows only the idle tasks (it misreads struct pid's
//     flexible array), so the tests walk init_task.tasks with `list`
//     instead, and it cannot `bt` tasks outside its pid-hash table.
//     `crash --log` without a vmlinux cannot read the 5.10+ ring.
//   - makedumpfile 1.7.2 reads program headers at offset 64 whatever
//     e_phoff says (so QEMU 7.2 dumps fail as they come), and warns "The
//     kernel version is not supported" for these kernels but works.
//   - drgn 0.0.22 has no -e (a script file is run instead), needs PT_LOADs
//     with kernel virtual addresses ("recursive address translation"
//     otherwise), maps CPU registers to tasks by pr_pid, and cannot unwind
//     6.4+ kernels (ORC format).
package guest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultCacheDir is where downloaded kernels and prepared dumps live unless
// the caller says otherwise: $LDX_CACHE, else $HOME/.cache/ldx. A fixed,
// per-user place lets every test package and the CLI share one download.
func DefaultCacheDir() string {
	if d := os.Getenv("LDX_CACHE"); d != "" {
		return d
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".cache", "ldx")
	}
	return filepath.Join(os.TempDir(), "ldx-cache")
}

type logKey struct{}

// WithLog returns a context whose progress messages (downloads, boots, dumps)
// go to logf. Progress is carried in the context rather than in Spec so that
// it never becomes part of a cache key.
func WithLog(ctx context.Context, logf func(format string, args ...any)) context.Context {
	return context.WithValue(ctx, logKey{}, logf)
}

func logf(ctx context.Context, format string, args ...any) {
	if f, ok := ctx.Value(logKey{}).(func(string, ...any)); ok && f != nil {
		f(format, args...)
	}
}

// run runs a host command and returns its stdout; on failure the error
// carries the command line and the tail of stderr, because apt/dpkg errors
// are only useful with their message.
func run(ctx context.Context, dir string, name string, args ...string) ([]byte, error) {
	cmd := command(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes(), nil
}

// command is exec.CommandContext with the child in its own process group,
// and cancellation killing the whole group. Tools like dpkg-deb fork
// helpers (decompressors) that inherit stdout/stderr: killing only the
// direct child would orphan them, and Wait would then block forever on the
// still-open output pipes. Pdeathsig covers the direct child if this
// process dies first; WaitDelay is the last resort against stuck pipes.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// tail returns at most the last n bytes of s, starting at a line boundary
// when possible, so error messages stay readable.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return "..." + s
}

// lockFile takes an exclusive flock on path, polling so that ctx can cancel
// the wait. Locks serialise concurrent test packages that want the same
// kernel or dump; without them two `go test` processes would download and
// boot the same thing twice on a 2-core machine.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	waited := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waited {
			logf(ctx, "waiting for lock %s (another process is preparing the same thing)", path)
			waited = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// exists reports whether path exists (any type).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
