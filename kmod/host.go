package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Paths are every host file capture reads (and the lock it takes). Tests
// point them at a fake tree (PathsUnder).
type Paths struct {
	Livedump    string   // the livedump interface (package documentation: "The kernel interface")
	Iomem       string   // System RAM map and top of RAM
	Meminfo     string   // MemAvailable, MemTotal
	VMCOREINFO  string   // physical address and size of the kernel's VMCOREINFO note (package vmcoreinfo, "What the kernel emits")
	CPU         string   // present/possible/online lists, cpuN/crash_notes
	Mounts      string   // mounted file systems
	Swaps       string   // active swap
	SysDevBlock string   // block devices by major:minor (stat, size, ro, holders, partitions, queue)
	Kmsg        string   // kernel log: the reasons for refused writes, the per-CPU unit size
	Kcore       string   // the direct map's base (page_offset_base), from its program headers
	Config      []string // kernel configuration, tried in order ("%s" is the release)
	Cmdline     string   // nokaslr
	Kallsyms    string   // _text, to tell whether KASLR was applied at all
	Release     string   // uname -r
	Hostname    string
	Notes       string // the kernel's ELF notes: its build-id
	Proc        string // processes holding the interface open
	Lock        string // one capture at a time
}

// DefaultPaths are the real machine's.
func DefaultPaths() Paths {
	return Paths{
		Livedump:    DefaultRoot,
		Iomem:       "/proc/iomem",
		Meminfo:     "/proc/meminfo",
		VMCOREINFO:  "/sys/kernel/vmcoreinfo",
		CPU:         "/sys/devices/system/cpu",
		Mounts:      "/proc/mounts",
		Swaps:       "/proc/swaps",
		SysDevBlock: "/sys/dev/block",
		Kmsg:        "/dev/kmsg",
		Kcore:       "/proc/kcore",
		Config:      []string{"/proc/config.gz", "/boot/config-%s", "/lib/modules/%s/config"},
		Cmdline:     "/proc/cmdline",
		Kallsyms:    "/proc/kallsyms",
		Release:     "/proc/sys/kernel/osrelease",
		Hostname:    "/proc/sys/kernel/hostname",
		Notes:       "/sys/kernel/notes",
		Proc:        "/proc",
		Lock:        "/run/ldx-capture.lock",
	}
}

// PathsUnder returns DefaultPaths with every path under root, for a fake
// host tree.
func PathsUnder(root string) Paths {
	p := DefaultPaths()
	v := reflect.ValueOf(&p).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(filepath.Join(root, f.String()))
		case reflect.Slice:
			s := f.Interface().([]string)
			out := make([]string, len(s))
			for j, x := range s {
				out[j] = filepath.Join(root, x)
			}
			f.Set(reflect.ValueOf(out))
		}
	}
	return p
}

// DevNode is what stat(2) and the block layer say about a device node.
type DevNode struct {
	Block        bool // a block device (else a regular file or something else)
	Major, Minor uint32
	Size         int64 // bytes
}

// Host is the machine capture runs on: its files, the livedump interface,
// and the few probes of a device that are not file reads. The zero value
// (or nil) is the real machine; tests fill it from kmod/kmodtest.
type Host struct {
	Paths Paths
	// Attrs serves the livedump interface; nil means DirAttrs(Paths.Livedump).
	Attrs Attrs
	// StatDevice describes a device node; nil means stat(2) and
	// BLKGETSIZE64.
	StatDevice func(path string) (DevNode, error)
	// Claimed reports whether some holder has the block device open
	// exclusively — a mount, md/dm, or the livedump kernel after INIT
	// (blkdev_get_by_path with FMODE_EXCL; package documentation: "The kernel interface"). nil means probing with
	// open(O_EXCL), which fails with EBUSY exactly then.
	Claimed func(path string) (bool, error)
	// Geteuid is nil for os.Geteuid.
	Geteuid func() int
	// Now is nil for time.Now.
	Now func() time.Time
}

// withDefaults returns a copy of h (which may be nil) with every nil
// field and empty path set to the real machine's.
func (h *Host) withDefaults() *Host {
	out := Host{}
	if h != nil {
		out = *h
	}
	def := DefaultPaths()
	pv, dv := reflect.ValueOf(&out.Paths).Elem(), reflect.ValueOf(def)
	for i := range pv.NumField() {
		if pv.Field(i).IsZero() {
			pv.Field(i).Set(dv.Field(i))
		}
	}
	if out.Attrs == nil {
		out.Attrs = DirAttrs(out.Paths.Livedump)
	}
	if out.StatDevice == nil {
		out.StatDevice = statDevice
	}
	if out.Claimed == nil {
		out.Claimed = claimedExclusively
	}
	if out.Geteuid == nil {
		out.Geteuid = os.Geteuid
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return &out
}

func statDevice(path string) (DevNode, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return DevNode{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	n := DevNode{Major: unix.Major(st.Rdev), Minor: unix.Minor(st.Rdev), Size: st.Size}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		n.Block = true
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return n, &os.PathError{Op: "open", Path: path, Err: err}
		}
		defer unix.Close(fd)
		size, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
		if err != nil {
			return n, &os.PathError{Op: "BLKGETSIZE64", Path: path, Err: err}
		}
		n.Size = int64(size)
	case unix.S_IFREG:
		n.Major, n.Minor = 0, 0
	}
	return n, nil
}

// claimedExclusively probes with open(O_EXCL), which on a block device
// fails with EBUSY while anyone holds it exclusively, and otherwise
// claims nothing once closed.
func claimedExclusively(path string) (bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, syscall.EBUSY) {
		return true, nil
	}
	if err != nil {
		return false, &os.PathError{Op: "open O_EXCL", Path: path, Err: err}
	}
	unix.Close(fd)
	return false, nil
}

// readString reads a small file, trimmed.
func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// errLocked is lockFile's error when another capture holds the lock.
var errLocked = errors.New("another ldx capture is running")

// lockFile takes the one-capture-at-a-time lock. It returns a release
// function, or an error wrapping errLocked and naming the holder when
// another capture runs.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s holds %s)", errLocked, strings.TrimSpace(string(b[:n])), path)
		}
		return nil, err
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() { f.Truncate(0); f.Close() }, nil
}

// lockHeld reports, without taking it, whether another capture holds the
// lock (for --dry-run, which creates nothing).
func lockHeld(path string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		return strings.TrimSpace(string(b[:n])), true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return "", false
}
