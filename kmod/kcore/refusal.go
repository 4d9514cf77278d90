package kcore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Reason is why a capture is refused; the CLI maps each to its exit code.
type Reason int

const (
	NoKcore         Reason = iota + 1 // no readable /proc/kcore ELF core
	LockedDown                        // lockdown=confidentiality
	NotPermitted                      // not root / no CAP_SYS_RAWIO
	RAMBackedOutput                   // the output is on tmpfs or ramfs
	NoRoom                            // the output's file system has less free space than the estimate
)

func (r Reason) String() string {
	return [...]string{"", "no /proc/kcore", "locked down", "not permitted", "RAM-backed output", "no room"}[r]
}

// Refusal is a capture refused before anything was written.
type Refusal struct {
	Reason Reason
	What   string
	Hint   string
	// Forceable says --force overrides it (ldx cannot be sure).
	Forceable bool
}

func (e *Refusal) Error() string {
	s := "capture refused (" + e.Reason.String() + "): " + e.What
	if e.Hint != "" {
		s += "\n  " + e.Hint
	}
	return s
}

// Statfs is what the output checks need of a file system.
type Statfs struct {
	Type  int64  // f_type magic
	Avail uint64 // bytes available to an unprivileged user... or root: f_bavail·f_bsize
}

// Magic numbers of RAM-backed file systems (statfs f_type).
const (
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

func (h *Host) statfs(path string) (Statfs, error) {
	if h.Statfs != nil {
		return h.Statfs(path)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Statfs{}, err
	}
	return Statfs{Type: int64(st.Type), Avail: st.Bavail * uint64(st.Bsize)}, nil
}

// OutputCheck is what the output check found.
type OutputCheck struct {
	Dir      string
	Avail    uint64
	Estimate uint64
}

// CheckOutput refuses an output on a RAM-backed file system, or on one
// with less room than estimate bytes unless force, and an existing output
// unless force (then it must be a regular file).
func CheckOutput(h *Host, output string, estimate uint64, force bool) (*OutputCheck, error) {
	if fi, err := os.Stat(output); err == nil {
		if !force {
			return nil, fmt.Errorf("%s: %w (use --force to overwrite it)", output, ErrOutputExists)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s exists and is not a regular file; refusing to replace it", output)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	dir := filepath.Dir(output)
	st, err := h.statfs(dir)
	if err != nil {
		return nil, fmt.Errorf("the output's directory %s: %w", dir, err)
	}
	oc := &OutputCheck{Dir: dir, Avail: st.Avail, Estimate: estimate}
	switch st.Type {
	case tmpfsMagic, ramfsMagic:
		name := "tmpfs"
		if st.Type == ramfsMagic {
			name = "ramfs"
		}
		return oc, &Refusal{Reason: RAMBackedOutput,
			What: fmt.Sprintf("the output %s is on %s (%s), which keeps files in RAM: the dump would eat the memory it is dumping", output, name, dir),
			Hint: "write to a disk-backed file system"}
	}
	if st.Avail < estimate && !force {
		return oc, &Refusal{Reason: NoRoom, Forceable: true,
			What: fmt.Sprintf("%s has %d MiB free, the dump may need up to %d MiB (all of RAM; zero pages become holes, so it usually needs much less)", dir, st.Avail>>20, estimate>>20),
			Hint: "free space or choose another -o; --force goes ahead (the write fails if the disk fills, and the partial output is removed)"}
	}
	return oc, nil
}

// CheckStream refuses a stream into a regular file on a RAM-backed file
// system. Only a regular file is judged: a pipe, a socket, a terminal or
// a block device (a raw disk the stream is written onto) passes, even
// though the device node itself lives on devtmpfs, which statfs reports
// as tmpfs. f is the stream's file (stdout); nil (not a file) passes.
func CheckStream(h *Host, f *os.File) error {
	if f == nil {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	st, err := h.fstatfs(f)
	if err != nil {
		return nil
	}
	if st.Type == tmpfsMagic || st.Type == ramfsMagic {
		return &Refusal{Reason: RAMBackedOutput,
			What: fmt.Sprintf("the output stream goes to a file (%s) on a RAM-backed file system (tmpfs or ramfs): the dump would eat the memory it is dumping", f.Name()),
			Hint: "send the stream to a disk-backed file, a raw disk or through a pipe off the machine"}
	}
	return nil
}

// fstatfs is statfs of an open file; the test hook gets its name.
func (h *Host) fstatfs(f *os.File) (Statfs, error) {
	if h.Statfs != nil {
		return h.Statfs(f.Name())
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return Statfs{}, err
	}
	return Statfs{Type: int64(st.Type), Avail: st.Bavail * uint64(st.Bsize)}, nil
}

// ErrOutputExists is the output existing without force.
var ErrOutputExists = errors.New("output file exists")
