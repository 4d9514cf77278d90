package guest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config describes one test guest.
type Config struct {
	Kernel *Kernel
	// Memory in QEMU -m syntax ("512M", "1G", "4096"); default 512M.
	Memory string
	// CPUs is the number of vCPUs; default 2.
	CPUs int
	// NoKASLR adds "nokaslr". Debian kernels randomise both the kernel text
	// and the direct map/vmalloc/vmemmap bases by default, which is the
	// case ldx must handle, so KASLR stays on unless asked.
	NoKASLR bool
	// LA57 gives the guest a CPU with 5-level paging (see LA57CPU); the
	// Debian kernels then run with 5-level page tables.
	LA57 bool
	// CPUModel overrides the -cpu value.
	CPUModel string
	// Cmdline is appended to the kernel command line.
	Cmdline string
	// Markers and Processes override defaultMarkers / DefaultProcesses.
	Markers   []string
	Processes []string
	// ReadyTimeout bounds the wait for the guest's READY line; default 120 s
	// (a TCG boot takes 6-10 s on the test machines, but CI runners are
	// slower and may be loaded).
	ReadyTimeout time.Duration
	// QEMU is the emulator binary; default qemu-system-x86_64.
	QEMU string
	// CacheDir is used only if a static busybox must be fetched; default
	// DefaultCacheDir().
	CacheDir string
}

// LA57CPU is the -cpu value used for 5-level paging guests. TCG implements
// LA57 for any model; qemu64 plus the flag is the smallest change from the
// default model, which keeps the 4- and 5-level guests otherwise identical.
// ("-cpu max" also works under TCG and includes LA57; it is only with the
// test machines' nested /dev/kvm that max/host abort.)
const LA57CPU = "qemu64,+la57"

func (c Config) withDefaults() Config {
	if c.Memory == "" {
		c.Memory = "512M"
	}
	if c.CPUs == 0 {
		c.CPUs = 2
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 120 * time.Second
	}
	if c.QEMU == "" {
		c.QEMU = "qemu-system-x86_64"
	}
	if c.CPUModel == "" {
		c.CPUModel = "qemu64"
		if c.LA57 {
			c.CPUModel = LA57CPU
		}
	}
	return c
}

// ParseMemory converts a QEMU-style size ("512M", "1G", "1.5G", "4096";
// bare numbers are MiB as for -m) to MiB.
func ParseMemory(s string) (int, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "G"):
		mult, t = 1024, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		t = t[:len(t)-1]
	case strings.HasSuffix(t, "T"):
		mult, t = 1024*1024, t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("bad memory size %q", s)
	}
	mib := v * mult
	if mib != float64(int(mib)) {
		return 0, fmt.Errorf("memory size %q is not a whole number of MiB", s)
	}
	return int(mib), nil
}

// Guest is a running QEMU test guest. It lives until Close is called or the
// context passed to Boot is cancelled, whichever is first.
type Guest struct {
	Config    Config
	Facts     *Facts
	Dir       string   // private temporary directory, removed by Close
	SerialLog string   // console output (in Dir)
	QEMULog   string   // QEMU's own stdout/stderr (in Dir)
	Args      []string // QEMU command line
	BootTime  time.Duration

	cmd       *exec.Cmd
	exited    chan struct{}
	mu        sync.Mutex // guards qmp against a concurrent Close
	qmp       *qmpClient
	closeOnce sync.Once
}

// Boot builds an initramfs for cfg.Kernel, starts QEMU and waits until the
// guest has printed its facts. On any error QEMU is killed before Boot
// returns; on success the caller must Close the guest.
func Boot(ctx context.Context, cfg Config) (_ *Guest, err error) {
	cfg = cfg.withDefaults()
	if cfg.Kernel == nil {
		return nil, errors.New("guest.Boot: no kernel")
	}
	mib, err := ParseMemory(cfg.Memory)
	if err != nil {
		return nil, err
	}
	// The QMP socket path must fit sun_path (108 bytes), so the work
	// directory is under $TMPDIR rather than in the (possibly deep) cache.
	cleanStaleWorkDirs()
	dir, err := os.MkdirTemp("", "ldx-guest-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	g := &Guest{Config: cfg, Dir: dir, SerialLog: filepath.Join(dir, "serial.log"), QEMULog: filepath.Join(dir, "qemu.log"), exited: make(chan struct{})}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()

	var nb [6]byte
	rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])
	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	if err := buildInitramfs(ctx, initrd, InitramfsOptions{
		Kernel: cfg.Kernel, Nonce: nonce, Markers: cfg.Markers, Processes: cfg.Processes,
		WorkDir: dir, CacheDir: cfg.CacheDir,
	}); err != nil {
		return nil, err
	}

	// panic=-1 reboots at once on a panic and -no-reboot turns that into a
	// QEMU exit, so a broken guest fails fast instead of timing out.
	// printk.devkmsg=on lifts /dev/kmsg's rate limit for the markers.
	cmdline := []string{"console=ttyS0", "panic=-1", "printk.devkmsg=on"}
	if cfg.NoKASLR {
		cmdline = append(cmdline, "nokaslr")
	}
	// TCG's "max" model has LA57 too; without no5lvl a Debian kernel would
	// then run 5-level although LA57 was not asked for.
	if !cfg.LA57 && (strings.Contains(cfg.CPUModel, "la57") || strings.HasPrefix(cfg.CPUModel, "max")) {
		cmdline = append(cmdline, "no5lvl")
	}
	if cfg.Cmdline != "" {
		cmdline = append(cmdline, cfg.Cmdline)
	}
	qmpSock := filepath.Join(dir, "qmp.sock")
	g.Args = []string{
		"-accel", "tcg", "-M", "pc", "-cpu", cfg.CPUModel,
		"-m", strconv.Itoa(mib) + "M", "-smp", strconv.Itoa(cfg.CPUs),
		"-nographic", "-nodefaults", "-no-reboot",
		"-device", "vmcoreinfo",
		"-kernel", cfg.Kernel.Vmlinuz, "-initrd", initrd,
		"-append", strings.Join(cmdline, " "),
		"-serial", "file:" + g.SerialLog,
		"-monitor", "none",
		"-qmp", "unix:" + qmpSock + ",server=on,wait=off",
	}
	qlog, err := os.Create(g.QEMULog)
	if err != nil {
		return nil, err
	}
	defer qlog.Close()
	// Not CommandContext: Close and the watcher below own the process, and
	// Pdeathsig kills QEMU if this process dies without running either.
	g.cmd = exec.Command(cfg.QEMU, g.Args...)
	g.cmd.Dir = dir
	g.cmd.Stdout = qlog
	g.cmd.Stderr = qlog
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf(ctx, "booting %s: %s %s", cfg.Kernel.Release, cfg.QEMU, strings.Join(g.Args, " "))
	t0 := time.Now()
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		g.cmd.Wait()
		close(g.exited)
	}()
	go func() {
		select {
		case <-ctx.Done():
			g.Close()
		case <-g.exited:
		}
	}()

	if err := g.waitReady(ctx, nonce); err != nil {
		return nil, err
	}
	g.BootTime = time.Since(t0)
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	q, err := dialQMP(qctx, qmpSock, g.exited)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.qmp = q
	g.mu.Unlock()
	logf(ctx, "guest %s ready after %s", g.Facts.Release, g.BootTime.Round(time.Millisecond))
	return g, nil
}

const ownerFile = "owner.pid"

// cleanStaleWorkDirs removes work directories left by processes that were
// killed (SIGKILL, test timeout) before Close ran. QEMU itself dies with its
// parent (Pdeathsig); its directory does not. Directories of live processes,
// which may be other test binaries sharing the machine, are left alone.
func cleanStaleWorkDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "ldx-guest-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // not ours, or being created right now
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH || isZombie(pid) {
			os.RemoveAll(d)
		}
	}
}

// isZombie reports whether pid has exited but not been reaped (a killed
// test binary whose parent is slow to wait for it).
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised comm, which may contain spaces.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] == 'Z'
	}
	return false
}

// waitReady polls the serial log for "LDX-READY <nonce>" and parses the
// facts block printed before it.
func (g *Guest) waitReady(ctx context.Context, nonce string) error {
	ready := []byte("LDX-READY " + nonce)
	deadline := time.NewTimer(g.Config.ReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		b, _ := os.ReadFile(g.SerialLog)
		if bytes.Contains(b, ready) {
			f, err := parseFacts(b)
			if err != nil {
				return fmt.Errorf("guest facts: %w\nserial log tail:\n%s", err, tail(string(b), 3000))
			}
			if f.Nonce != nonce {
				return fmt.Errorf("guest facts: nonce %q, want %q", f.Nonce, nonce)
			}
			g.Facts = f
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.exited:
			b, _ = os.ReadFile(g.SerialLog)
			q, _ := os.ReadFile(g.QEMULog)
			return fmt.Errorf("QEMU exited before the guest was ready (%v)\nQEMU output:\n%s\nserial log tail:\n%s",
				g.cmd.ProcessState, tail(string(q), 2000), tail(string(b), 3000))
		case <-deadline.C:
			return fmt.Errorf("guest not ready after %s\nserial log tail:\n%s", g.Config.ReadyTimeout, tail(string(b), 3000))
		case <-tick.C:
		}
	}
}

// Close kills QEMU, waits for it and removes the guest's temporary
// directory. It is safe to call more than once and concurrently.
func (g *Guest) Close() error {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		if g.qmp != nil {
			g.qmp.close()
		}
		g.mu.Unlock()
		if g.cmd != nil && g.cmd.Process != nil {
			g.cmd.Process.Kill()
			<-g.exited
		}
		os.RemoveAll(g.Dir)
	})
	return nil
}
