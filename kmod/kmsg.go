package kmod

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Kmsg reads the kernel log through /dev/kmsg. The livedump interface
// answers a failed write with EINVAL and nothing else; the reason, when
// there is one, is a pr_warn in the kernel log (package documentation: "The kernel interface"), so every write
// marks the log first and a failure shows what was logged since.
//
// /dev/kmsg returns one record per read, "prio,seq,usec,flags;text" plus
// indented dictionary lines, and EAGAIN when opened non-blocking and
// drained. A regular file of such lines (what tests use) works too.
type Kmsg struct {
	// fd is read with raw system calls: through os.File, Go's poller would
	// turn /dev/kmsg's EAGAIN (drained) into waiting for the next message.
	fd int
}

// openKmsg opens the kernel log at path for reading.
func openKmsg(path string) (*Kmsg, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &Kmsg{fd: fd}, nil
}

// Close closes the log.
func (k *Kmsg) Close() error {
	if k == nil {
		return nil
	}
	return unix.Close(k.fd)
}

// Mark skips everything logged so far: Since then returns only newer
// records.
func (k *Kmsg) Mark() {
	if k != nil {
		unix.Seek(k.fd, 0, io.SeekEnd)
	}
}

// Since returns the messages logged since the last Mark (or Since, or
// the open), without their record prefixes.
func (k *Kmsg) Since() []string {
	if k == nil {
		return nil
	}
	var out []string
	buf := make([]byte, 16<<10)
	for range 1 << 20 {
		n, err := unix.Read(k.fd, buf)
		if n > 0 {
			out = append(out, parseKmsg(buf[:n])...)
		}
		switch {
		case err == nil && n > 0:
			continue
		case errors.Is(err, unix.EPIPE):
			// Records were overwritten before we read them; the read
			// position has moved on to the oldest one left.
			continue
		case errors.Is(err, unix.EINTR):
			continue
		}
		break // EAGAIN (drained), 0 (end of a regular file) or a real error
	}
	return out
}

// parseKmsg returns the message text of each record in b.
func parseKmsg(b []byte) []string {
	var out []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 || line[0] == ' ' {
			continue // dictionary continuation lines
		}
		s := string(line)
		if pre, text, ok := strings.Cut(s, ";"); ok && strings.Count(pre, ",") >= 3 {
			s = text
		}
		out = append(out, s)
	}
	return out
}

// readKmsg returns every message still in the kernel log at path.
func readKmsg(path string) ([]string, error) {
	k, err := openKmsg(path)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	return k.Since(), nil
}

// interesting picks the kernel log lines worth showing after a failed
// write or a run: livedump's own messages and anything that looks like a
// warning, oops or OOM. If none match, the last few lines are returned.
func interesting(lines []string, fallback int) []string {
	var out []string
	for _, l := range lines {
		ll := strings.ToLower(l)
		for _, k := range []string{"livedump", "wrprotect", "memdump", "warning", "bug:", "oops", "out of memory", "call trace", "double fault"} {
			if strings.Contains(ll, k) {
				out = append(out, l)
				break
			}
		}
	}
	if len(out) == 0 && fallback > 0 && len(lines) > 0 {
		out = lines[max(0, len(lines)-fallback):]
	}
	if len(out) > 40 {
		out = append(out[:40], "…")
	}
	return out
}
