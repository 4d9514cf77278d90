package guest

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"syscall"
)

// CPIOWriter writes a "newc" (SVR4, magic 070701) cpio archive, the format
// the kernel's initramfs unpacker reads. It is written in Go rather than by
// the cpio command so that device nodes (/dev/console) can be put in the
// archive without root and without a staging tree on disk.
//
// Parent directories are created implicitly, in order, because the kernel
// unpacker does not create them for files.
type CPIOWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

// newCPIOWriter returns a writer appending archive entries to w.
func newCPIOWriter(w io.Writer) *CPIOWriter {
	return &CPIOWriter{w: w, ino: 1, dirs: map[string]bool{".": true, "": true}}
}

// cleanName turns an absolute or relative path into the archive's
// relative form ("bin/sh").
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (c *CPIOWriter) header(name string, mode uint32, size int, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	// 13 8-digit hex fields after the magic; the name includes its NUL and
	// the header+name, and then the data, are padded to 4 bytes.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	buf := make([]byte, 0, len(hdr)+len(name)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = append(buf, make([]byte, pad4(len(buf)))...)
	_, c.err = c.w.Write(buf)
}

func (c *CPIOWriter) data(b []byte) {
	if c.err != nil {
		return
	}
	if _, c.err = c.w.Write(b); c.err != nil {
		return
	}
	_, c.err = c.w.Write(make([]byte, pad4(len(b))))
}

func pad4(n int) int { return (4 - n%4) % 4 }

func (c *CPIOWriter) mkdirs(dir string) {
	if c.dirs[dir] {
		return
	}
	c.mkdirs(path.Dir(dir))
	c.dirs[dir] = true
	c.header(dir, syscall.S_IFDIR|0o755, 0, 0, 0)
}

// Dir adds a directory (and its parents).
func (c *CPIOWriter) Dir(name string, perm fs.FileMode) error {
	name = cleanName(name)
	c.mkdirs(path.Dir(name))
	if !c.dirs[name] {
		c.dirs[name] = true
		c.header(name, syscall.S_IFDIR|uint32(perm.Perm()), 0, 0, 0)
	}
	return c.err
}

// File adds a regular file with the given contents.
func (c *CPIOWriter) File(name string, perm fs.FileMode, data []byte) error {
	name = cleanName(name)
	c.mkdirs(path.Dir(name))
	c.header(name, syscall.S_IFREG|uint32(perm.Perm()), len(data), 0, 0)
	c.data(data)
	return c.err
}

// Symlink adds a symbolic link name -> target.
func (c *CPIOWriter) Symlink(name, target string) error {
	name = cleanName(name)
	c.mkdirs(path.Dir(name))
	c.header(name, syscall.S_IFLNK|0o777, len(target), 0, 0)
	c.data([]byte(target))
	return c.err
}

// CharDev adds a character device node.
func (c *CPIOWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	name = cleanName(name)
	c.mkdirs(path.Dir(name))
	c.header(name, syscall.S_IFCHR|uint32(perm.Perm()), 0, major, minor)
	return c.err
}

// Close writes the TRAILER!!! entry. It does not close the underlying writer.
func (c *CPIOWriter) Close() error {
	c.ino = 0
	c.header("TRAILER!!!", 0, 0, 0, 0)
	return c.err
}
