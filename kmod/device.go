package kmod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"ldx/elfcore"
	"ldx/kmod/manifest"
)

// devFile is the dump device opened for preparation. Every write goes
// around the page cache (O_DIRECT) where the device allows it: the
// kernel's bios go straight to the disk, so cached copies of what ldx
// wrote would later be read instead of the dump, and a page cache filled
// with a whole device's markers would take the memory INIT needs.
type devFile struct {
	f      *os.File
	path   string
	block  bool
	direct bool
	buf    []byte // aligned bounce buffer
}

const chunk = 1 << 20 // bytes per write when zeroing by hand or marking

// openDev opens the device read-write. excl claims it exclusively (a block
// device only), so that nothing mounts it while ldx prepares it; the claim
// must be gone before INIT, whose own exclusive open would otherwise fail
// and leave v1 to oops at START (package documentation: "The kernel interface").
func openDev(path string, block, excl bool) (*devFile, error) {
	flags := os.O_RDWR | unix.O_CLOEXEC
	if excl && block {
		flags |= unix.O_EXCL
	}
	d := &devFile{path: path, block: block, direct: true, buf: alignedBuffer(chunk)}
	f, err := os.OpenFile(path, flags|unix.O_DIRECT, 0)
	if errors.Is(err, unix.EINVAL) {
		d.direct = false
		f, err = os.OpenFile(path, flags, 0)
	}
	if err != nil {
		return nil, err
	}
	d.f = f
	return d, nil
}

func (d *devFile) Close() error { return d.f.Close() }

// alignedBuffer returns n bytes aligned for O_DIRECT (4096 covers every
// logical block size in use).
func alignedBuffer(n int) []byte {
	b := make([]byte, n+4096)
	skew := int(uintptr(unsafe.Pointer(&b[0])) & 4095)
	pad := 0
	if skew != 0 {
		pad = 4096 - skew
	}
	return b[pad : pad+n]
}

// writeAt writes whole pages at a page-aligned offset.
func (d *devFile) writeAt(b []byte, off int64) error {
	if off%pageSize != 0 || len(b)%pageSize != 0 {
		return fmt.Errorf("kmod: unaligned device write of %d bytes at %#x", len(b), off)
	}
	for len(b) > 0 {
		n := min(len(b), len(d.buf))
		copy(d.buf, b[:n])
		if _, err := d.f.WriteAt(d.buf[:n], off); err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// readDirect reads n bytes at off of path around the page cache.
func readDirect(path string, off int64, n int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EINVAL) {
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	start := off &^ (pageSize - 1)
	end := (off + int64(n) + pageSize - 1) &^ (pageSize - 1)
	buf := alignedBuffer(int(end - start))
	got, err := f.ReadAt(buf, start)
	if got < int(off-start)+n {
		if err == nil {
			err = fmt.Errorf("short read")
		}
		return nil, fmt.Errorf("reading %d bytes at %#x of %s: %w", n, off, path, err)
	}
	return bytes.Clone(buf[off-start : off-start+int64(n)]), nil
}

// zeroMethod says how the dump range was cleared.
type zeroMethod struct {
	How  string
	Slow bool // every byte was written
}

// zero clears [off, off+n) of the device as fast as the device allows:
// write-zeroes (BLKZEROOUT) where the queue supports it, else a discard
// (BLKDISCARD) that is then checked to read back as zeros, else
// BLKZEROOUT letting the kernel write the zeros, else writing them
// here. A regular file (tests) gets its range punched out.
func (d *devFile) zero(ctx context.Context, off, n int64, dev *BlockDevice, progress func(done, total int64)) (zeroMethod, error) {
	if !d.block {
		if err := unix.Fallocate(int(d.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err == nil {
			progress(n, n)
			return zeroMethod{How: "punched out (a regular file)"}, nil
		}
		return zeroMethod{How: "written (a regular file)", Slow: true}, d.writeZeros(ctx, off, n, progress)
	}
	if dev.WriteZeroesMax > 0 {
		if err := d.ioctlRange(ctx, unix.BLKZEROOUT, off, n, progress); err == nil {
			return zeroMethod{How: "BLKZEROOUT (the device's write-zeroes)"}, nil
		} else if ctx.Err() != nil {
			return zeroMethod{}, err
		}
	}
	if dev.DiscardMax > 0 {
		if err := d.ioctlRange(ctx, unix.BLKDISCARD, off, n, progress); err == nil {
			if ok, err := d.readsZero(off, n); err == nil && ok {
				return zeroMethod{How: "BLKDISCARD (checked to read back as zeros)"}, nil
			}
		} else if ctx.Err() != nil {
			return zeroMethod{}, err
		}
	}
	if err := d.ioctlRange(ctx, unix.BLKZEROOUT, off, n, progress); err == nil {
		return zeroMethod{How: "BLKZEROOUT (the kernel wrote the zeros: the device has no write-zeroes or discard that zeroes)", Slow: true}, nil
	} else if ctx.Err() != nil {
		return zeroMethod{}, err
	}
	return zeroMethod{How: "written by ldx (BLKZEROOUT unsupported)", Slow: true}, d.writeZeros(ctx, off, n, progress)
}

// ioctlRange runs BLKZEROOUT or BLKDISCARD over a range in 1 GiB steps,
// reporting progress and stopping between steps when ctx is done.
func (d *devFile) ioctlRange(ctx context.Context, req uint, off, n int64, progress func(done, total int64)) error {
	const step = 1 << 30
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		l := min(step, n-done)
		r := [2]uint64{uint64(off + done), uint64(l)}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), uintptr(req), uintptr(unsafe.Pointer(&r[0]))); e != 0 {
			return e
		}
		done += l
		progress(done, n)
	}
	return nil
}

// readsZero samples pages across the range after a discard: the first,
// the last and 62 spread between.
func (d *devFile) readsZero(off, n int64) (bool, error) {
	pages := n / pageSize
	for i := int64(0); i < 64; i++ {
		pfn := min(pages-1, i*pages/63)
		b, err := readDirect(d.path, off+pfn*pageSize, pageSize)
		if err != nil {
			return false, err
		}
		if !elfcore.IsZero(b) {
			return false, nil
		}
	}
	return true, nil
}

func (d *devFile) writeZeros(ctx context.Context, off, n int64, progress func(done, total int64)) error {
	clear(d.buf)
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		l := min(int64(len(d.buf)), n-done)
		if _, err := d.f.WriteAt(d.buf[:l], off+done); err != nil {
			return err
		}
		done += l
		progress(done, n)
	}
	return nil
}

// mark stamps every page of [0, pages·4096) with its never-written marker
// (manifest.Marker), except pages 0 and 1, which are cleared, and the
// manifest's window, which is cleared for the manifest.
func (d *devFile) mark(ctx context.Context, nonce manifest.Nonce, pages uint64, progress func(done, total int64)) error {
	const perChunk = chunk / pageSize
	total := int64(pages * pageSize)
	winLo, winHi := uint64(manifest.Offset/pageSize), uint64((manifest.Offset+manifest.MaxSize)/pageSize)
	for base := uint64(0); base < pages; base += perChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(perChunk, pages-base)
		b := d.buf[:n*pageSize]
		clear(b)
		for i := range n {
			pfn := base + i
			if pfn < 2 || (pfn >= winLo && pfn < winHi) {
				continue
			}
			m := manifest.Marker(nonce, pfn)
			copy(b[i*pageSize:], m[:])
		}
		if _, err := d.f.WriteAt(b, int64(base*pageSize)); err != nil {
			return err
		}
		progress(int64((base+n)*pageSize), total)
	}
	return nil
}

// writeManifest writes the manifest at its offset and reads it back.
func (d *devFile) writeManifest(m *manifest.Manifest) error {
	enc, err := m.Encode()
	if err != nil {
		return err
	}
	if err := d.writeAt(enc, manifest.Offset); err != nil {
		return fmt.Errorf("writing the capture manifest at %#x: %w", manifest.Offset, err)
	}
	if err := d.f.Sync(); err != nil {
		return err
	}
	back, err := readDirect(d.path, manifest.Offset, len(enc))
	if err != nil {
		return err
	}
	if !bytes.Equal(back, enc) {
		return fmt.Errorf("the capture manifest read back from %s at %#x differs from what was written", d.path, manifest.Offset)
	}
	return nil
}

// dropCache drops whatever the page cache holds of the device, so that
// readers that do not bypass it see the dump.
func dropCache(path string, block bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if block {
		unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKFLSBUF, 0)
	}
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
