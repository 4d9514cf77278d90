package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ScriptConfig describes a one-shot guest: a kernel booted with a busybox
// initramfs whose /init is Script, which does its work, reports on the
// console and powers the machine off. Unlike Boot it needs no Debian
// kernel package (no modules, no facts block, QMP only for DumpWhen): it is for kernels
// built elsewhere, such as the ones carrying the livedump patches.
type ScriptConfig struct {
	// Kernel is the bzImage to boot.
	Kernel string
	// Memory in QEMU -m syntax; default 2G. CPUs default 2.
	Memory string
	CPUs   int
	// LA57 gives the guest a CPU with 5-level paging (LA57CPU), which
	// Debian kernels use when the CPU has it; otherwise the CPU is
	// qemu64, which has no la57, so no5lvl is not needed.
	LA57 bool
	// Cmdline is appended to "console=ttyS0 panic=-1 printk.devkmsg=on".
	Cmdline string
	// Script is /init, run by busybox sh as PID 1. It should end with
	// `poweroff -f`; a script that returns makes the kernel panic, which
	// ends QEMU too (panic=-1, -no-reboot).
	Script string
	// Files are extra archive entries: path in the initramfs → contents
	// (mode 0755, so binaries and scripts run).
	Files map[string][]byte
	// Disks are raw images attached as virtio disks, /dev/vda onwards.
	Disks []string
	// Timeout bounds the whole run; default 10 minutes.
	Timeout time.Duration
	// QEMU is the emulator binary; default qemu-system-x86_64.
	QEMU string
	// CacheDir is used only if a static busybox must be fetched.
	CacheDir string
	// DumpWhen, if set, gives the guest a QMP socket and a vmcoreinfo
	// device: once the console shows this text, a QMP dump-guest-memory
	// ELF dump is written to DumpPath and QEMU is told to quit. The
	// script should then idle (not power off), so the dump shows the
	// machine as the script left it.
	DumpWhen string
	DumpPath string
}

// ScriptRun is what a one-shot guest did.
type ScriptRun struct {
	// Console is everything the guest printed on its serial console.
	Console string
	// Elapsed is the time from starting QEMU until it exited.
	Elapsed time.Duration
	// Args is QEMU's command line.
	Args []string
	// QEMUOutput is QEMU's own stdout and stderr.
	QEMUOutput string
	// Dumped tells that DumpPath was written (DumpWhen was seen).
	Dumped bool
}

// RunScript boots a one-shot guest and waits until QEMU exits (the guest
// powered off, panicked or triple-faulted) or the timeout passes, which
// is an error. The console is returned in both cases.
func RunScript(ctx context.Context, cfg ScriptConfig) (*ScriptRun, error) {
	if cfg.Memory == "" {
		cfg.Memory = "2G"
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.QEMU == "" {
		cfg.QEMU = "qemu-system-x86_64"
	}
	mib, err := ParseMemory(cfg.Memory)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ldx-script-guest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	if err := buildScriptInitramfs(ctx, initrd, cfg.Script, cfg.Files, cfg.CacheDir); err != nil {
		return nil, err
	}
	serial := filepath.Join(dir, "serial.log")
	cpu := "qemu64"
	if cfg.LA57 {
		cpu = LA57CPU
	}
	cmdline := "console=ttyS0 panic=-1 printk.devkmsg=on"
	if cfg.Cmdline != "" {
		cmdline += " " + cfg.Cmdline
	}
	args := []string{
		"-accel", "tcg", "-M", "pc", "-cpu", cpu,
		"-m", strconv.Itoa(mib) + "M", "-smp", strconv.Itoa(cfg.CPUs),
		"-nographic", "-nodefaults", "-no-reboot",
		"-kernel", cfg.Kernel, "-initrd", initrd,
		"-append", cmdline,
		"-serial", "file:" + serial,
		"-monitor", "none",
	}
	qmpSock := filepath.Join(dir, "qmp.sock")
	if cfg.DumpWhen != "" {
		args = append(args, "-device", "vmcoreinfo", "-qmp", "unix:"+qmpSock+",server=on,wait=off")
	}
	for _, d := range cfg.Disks {
		args = append(args, "-drive", "file="+d+",format=raw,if=virtio,cache=unsafe,discard=unmap")
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(rctx, cfg.QEMU, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	logf(ctx, "booting %s: %s %s", filepath.Base(cfg.Kernel), cfg.QEMU, strings.Join(args, " "))
	t0 := time.Now()
	var dumpErr error
	dumped := false
	runErr := cmd.Start()
	if runErr == nil {
		exited := make(chan struct{})
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait(); close(exited) }()
		if cfg.DumpWhen != "" {
			dumped, dumpErr = dumpWhen(rctx, cfg, serial, qmpSock, exited)
			if dumpErr != nil {
				cmd.Process.Kill()
			}
		}
		runErr = <-waited
	}
	r := &ScriptRun{Elapsed: time.Since(t0), Args: args, QEMUOutput: out.String(), Dumped: dumped}
	b, _ := os.ReadFile(serial)
	r.Console = string(b)
	switch {
	case rctx.Err() != nil && ctx.Err() == nil:
		return r, fmt.Errorf("guest still running after %s; console tail:\n%s", cfg.Timeout, tail(r.Console, 3000))
	case ctx.Err() != nil:
		return r, ctx.Err()
	case dumpErr != nil:
		return r, dumpErr
	case runErr != nil:
		return r, fmt.Errorf("%s: %w: %s", cfg.QEMU, runErr, tail(r.QEMUOutput, 2000))
	}
	return r, nil
}

// dumpWhen polls the console for cfg.DumpWhen, then takes the QMP dump and
// makes QEMU quit. It returns whether the dump was written; QEMU exiting
// before the text appears is not an error here (RunScript reports the
// console).
func dumpWhen(ctx context.Context, cfg ScriptConfig, serial, qmpSock string, exited <-chan struct{}) (bool, error) {
	q, err := dialQMP(ctx, qmpSock, exited)
	if err != nil {
		select {
		case <-exited:
			return false, nil
		default:
			return false, err
		}
	}
	defer q.close()
	for {
		b, _ := os.ReadFile(serial)
		if bytes.Contains(b, []byte(cfg.DumpWhen)) {
			break
		}
		select {
		case <-exited:
			return false, nil
		case <-ctx.Done():
			return false, nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := qmpDump(ctx, q, cfg.DumpPath, "elf", "", false); err != nil {
		return false, err
	}
	q.execute(ctx, "quit", nil)
	return true, nil
}

// buildScriptInitramfs writes a gzip-compressed newc cpio holding a static
// busybox with its applet links, script as /init, and files.
func buildScriptInitramfs(ctx context.Context, dst, script string, files map[string][]byte, cacheDir string) error {
	if script == "" {
		return errors.New("buildScriptInitramfs: no script")
	}
	bb, err := loadBusybox(ctx, cacheDir)
	if err != nil {
		return err
	}
	return writeInitramfs(dst, bb, []byte(script), func(cw *CPIOWriter) {
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			cw.File(n, 0o755, files[n])
		}
	})
}
