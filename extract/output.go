package extract

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"ldx/elfcore/flattened"

	"ldx/extract/dump"

	"golang.org/x/sys/unix"
)

// ErrOutputExists is returned when the output exists and Force is not set.
var ErrOutputExists = errors.New("output file exists")

// output is the vmcore being written: a temporary file next to the final
// name, mode 0600 (a dump holds all of kernel memory), renamed into place
// only once complete and synced, so an interrupted run never leaves a
// plausible-looking vmcore behind.
type output struct {
	*os.File
	final string
	force bool
}

func createOutput(final string, force bool, src *dump.Source) (*output, error) {
	if fi, err := os.Stat(final); err == nil {
		if !force {
			return nil, fmt.Errorf("%s: %w (use --force to overwrite it)", final, ErrOutputExists)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s exists and is not a regular file; refusing to replace it", final)
		}
		if src.SameFile(fi) {
			return nil, fmt.Errorf("%s is the input; ldx never writes to its input", final)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".partial-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &output{File: f, final: final, force: force}, nil
}

// tempDirFor returns the directory temporary files for output go into:
// the output's own directory, so the final rename stays on one file system.
func tempDirFor(output string) string { return filepath.Dir(output) }

// commit truncates the file to size, syncs it and renames it into place.
// Without force the rename refuses to replace a file that appeared in the
// meantime (RENAME_NOREPLACE).
func (o *output) commit(size int64) error {
	if err := o.Truncate(size); err != nil {
		return err
	}
	if err := o.Sync(); err != nil {
		return err
	}
	if err := o.Close(); err != nil {
		return err
	}
	if o.force {
		return os.Rename(o.Name(), o.final)
	}
	err := unix.Renameat2(unix.AT_FDCWD, o.Name(), unix.AT_FDCWD, o.final, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s: %w (it appeared while ldx was writing; the new vmcore was not kept)", o.final, ErrOutputExists)
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// File systems without RENAME_NOREPLACE: link + unlink.
		if err := os.Link(o.Name(), o.final); err != nil {
			return err
		}
		return os.Remove(o.Name())
	}
	if err != nil {
		return err
	}
	// Make the rename durable.
	if d, err := os.Open(filepath.Dir(o.final)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// onDisk is the space the committed file takes (its holes take none).
func (o *output) onDisk() int64 {
	var st unix.Stat_t
	if unix.Stat(o.final, &st) != nil {
		return 0
	}
	return st.Blocks * 512
}

// sink is where the vmcore goes: a file (output) or a flattened stream.
type sink interface {
	WriteAt(p []byte, off int64) (int, error)
	commit(size int64) error
	abort()
	onDisk() int64
}

// streamOutput writes the vmcore as a flattened stream. An aborted stream
// has no end record, which its readers report as a stream cut short.
type streamOutput struct{ fw *flattened.Writer }

func newStreamOutput(w io.Writer) (*streamOutput, error) {
	fw, err := flattened.NewWriter(w)
	if err != nil {
		return nil, err
	}
	return &streamOutput{fw: fw}, nil
}

func (s *streamOutput) WriteAt(p []byte, off int64) (int, error) { return s.fw.WriteAt(p, off) }

// commit sets the rearranged file's size (a tail of zero pages is a hole
// no record covers) and writes the end record.
func (s *streamOutput) commit(size int64) error {
	if err := s.fw.SetSize(size); err != nil {
		return err
	}
	return s.fw.Close()
}

func (s *streamOutput) abort()        {}
func (s *streamOutput) onDisk() int64 { return 0 }

// abort removes the partial output.
func (o *output) abort() {
	o.Close()
	os.Remove(o.Name())
}
