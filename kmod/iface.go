package kmod

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultRoot is where the livedump patches put their interface.
const DefaultRoot = "/sys/kernel/livedump"

// Attrs is the livedump sysfs directory: reading and writing its
// attributes. DirAttrs is the real one; kmod/kmodtest's Livedump emulates
// the kernel behind it.
type Attrs interface {
	// List names the attributes; an error wrapping fs.ErrNotExist means
	// the kernel has no livedump interface.
	List() ([]string, error)
	// ReadAttr returns an attribute's contents.
	ReadAttr(name string) ([]byte, error)
	// WriteAttr writes data to an attribute in one write(2), returning
	// the kernel's errno (a syscall.Errno in the chain) on failure.
	WriteAttr(name string, data []byte) error
}

// DirAttrs is Attrs over a sysfs directory.
type DirAttrs string

// List implements Attrs.
func (d DirAttrs) List() ([]string, error) {
	ents, err := os.ReadDir(string(d))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// ReadAttr implements Attrs.
func (d DirAttrs) ReadAttr(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), name))
}

// WriteAttr implements Attrs. sysfs hands one write(2) to the attribute's
// store function, so the data goes out in exactly one call.
func (d DirAttrs) WriteAttr(name string, data []byte) error {
	p := filepath.Join(string(d), name)
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	n, err := unix.Write(fd, data)
	if err != nil {
		return &os.PathError{Op: "write", Path: p, Err: err}
	}
	if n != len(data) {
		return &os.PathError{Op: "write", Path: p, Err: fmt.Errorf("short write: %d of %d bytes", n, len(data))}
	}
	return nil
}

// ErrNoInterface means the running kernel has no livedump interface.
var ErrNoInterface = errors.New("this kernel has no livedump support")

// Interface is the livedump sysfs interface of the running kernel.
type Interface struct {
	// Root is the interface's directory, for messages.
	Root string
	// Attributes are the attributes the kernel offers: v1 has state and
	// output; later trees add type, buffer_size, consistent, failed,
	// use_interrupt and kfifo_debug (package documentation: "The kernel interface").
	Attributes []string

	attrs Attrs
	kmsg  *Kmsg
	log   []string
}

// WriteError is a write the kernel refused, with the kernel log lines
// logged meanwhile.
type WriteError struct {
	Attr, Value string
	Err         error
	// KernelLog are the messages logged since just before the write.
	KernelLog []string
}

func (e *WriteError) Error() string {
	s := fmt.Sprintf("writing %q to %s: %s", strings.TrimSuffix(e.Value, "\n"), e.Attr, describeErrno(e.Err))
	if len(e.KernelLog) > 0 {
		s += "\n  kernel log: " + strings.Join(e.KernelLog, "\n  kernel log: ")
	} else {
		s += " (the kernel logged nothing about it)"
	}
	return s
}

func (e *WriteError) Unwrap() error { return e.Err }

func describeErrno(err error) string {
	switch errnoOf(err) {
	case syscall.EINVAL:
		return "invalid argument (EINVAL)"
	case ENOIOCTLCMD:
		return "unknown error 515 (ENOIOCTLCMD: not a state number)"
	case 0:
		return err.Error()
	}
	return fmt.Sprintf("%v (%s)", errnoOf(err).Error(), unix.ErrnoName(errnoOf(err)))
}

// OpenInterface opens the interface served by attrs at root (for
// messages). kmsg, if not nil, is used to explain failed writes; the
// Interface does not close it.
func OpenInterface(root string, attrs Attrs, kmsg *Kmsg) (*Interface, error) {
	names, err := attrs.List()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: %w", root, ErrNoInterface)
		}
		return nil, fmt.Errorf("reading %s: %w", root, err)
	}
	slices.Sort(names)
	i := &Interface{Root: root, Attributes: names, attrs: attrs, kmsg: kmsg}
	if !i.Has("state") || !i.Has("output") {
		return nil, fmt.Errorf("%s has no state and output attributes (it has %s): %w", root, strings.Join(names, ", "), ErrNoInterface)
	}
	return i, nil
}

// Has reports whether the kernel offers attribute name.
func (i *Interface) Has(name string) bool { return slices.Contains(i.Attributes, name) }

func (i *Interface) path(name string) string { return filepath.Join(i.Root, name) }

// State reads the current state.
func (i *Interface) State() (State, error) {
	b, err := i.attrs.ReadAttr("state")
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", i.path("state"), err)
	}
	return parseState(b)
}

// Output reads the output path back.
func (i *Interface) Output() (string, error) {
	b, err := i.attrs.ReadAttr("output")
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", i.path("output"), err)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// write writes one attribute, explaining a failure with the kernel log.
func (i *Interface) write(name, value string) error {
	i.kmsg.Mark()
	err := i.attrs.WriteAttr(name, []byte(value))
	lines := i.kmsg.Since()
	i.log = append(i.log, lines...)
	if err == nil {
		return nil
	}
	return &WriteError{Attr: i.path(name), Value: value, Err: err, KernelLog: interesting(lines, 5)}
}

// KernelLog returns the kernel log lines logged while this Interface
// wrote, and since its last write, that concern livedump or look like
// trouble (warnings, oopses, OOM). A successful run logs nothing
// (package documentation: "The kernel interface").
func (i *Interface) KernelLog() []string {
	i.log = append(i.log, i.kmsg.Since()...)
	return interesting(i.log, 0)
}

// SetOutput sets the device the kernel will write to. The kernel accepts
// a new output only when idle, and drops the last character written
// unconditionally, taking it for the newline echo adds (`echo -n
// /dev/vda` stores /dev/vd; package documentation: "The kernel interface"). So the path goes out with its newline and
// is read back and compared.
func (i *Interface) SetOutput(path string) error {
	st, err := i.State()
	if err != nil {
		return err
	}
	if !st.Idle() {
		return fmt.Errorf("the kernel accepts a new output only when idle, and it is in state %s", st)
	}
	if len(path)+1 >= 4096 {
		return fmt.Errorf("output path of %d bytes is longer than the kernel's PATH_MAX buffer", len(path))
	}
	if strings.ContainsAny(path, "\n\x00") {
		return fmt.Errorf("output path %q contains a newline or NUL", path)
	}
	if err := i.write("output", path+"\n"); err != nil {
		return err
	}
	got, err := i.Output()
	if err != nil {
		return err
	}
	if got != path {
		return fmt.Errorf("the kernel stored output %q, not %q: this kernel parses `output` differently from livedump v1", got, path)
	}
	return nil
}

// Set moves the interface to state to. The transition is checked against
// the current state first (CheckTransition), so that nothing the kernel
// would refuse is written; after a successful write the state is read
// back. A refused write comes back as a *WriteError with the kernel log.
func (i *Interface) Set(to State) error {
	from, err := i.State()
	if err != nil {
		return err
	}
	out, err := i.Output()
	if err != nil {
		return err
	}
	if err := CheckTransition(from, to, out != ""); err != nil {
		return err
	}
	if err := i.write("state", strconv.Itoa(int(to))+"\n"); err != nil {
		return err
	}
	now, err := i.State()
	if err != nil {
		return err
	}
	if now != to {
		return fmt.Errorf("wrote %s (%d) to %s and the kernel accepted it, but it now reads %s", to, int(to), i.path("state"), now)
	}
	return nil
}

// Reset brings a busy interface back to idle with UNINIT; an idle one is
// left alone (UNINIT from UNDEFINED is refused). It returns the state it
// found.
func (i *Interface) Reset() (State, error) {
	st, err := i.State()
	if err != nil || st.Idle() {
		return st, err
	}
	return st, i.Set(Uninit)
}

// intAttr reads the number on an attribute's first line.
func (i *Interface) intAttr(name string) (int, bool, error) {
	if !i.Has(name) {
		return 0, false, nil
	}
	b, err := i.attrs.ReadAttr(name)
	if err != nil {
		return 0, false, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	n, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil {
		return 0, false, fmt.Errorf("%s: %q is not a number", i.path(name), line)
	}
	return n, true, nil
}

// Failed returns the kernel's count of pages it could not save, where the
// kernel exposes one (`failed`, later trees; package documentation: "The kernel interface").
func (i *Interface) Failed() (int, bool, error) { return i.intAttr("failed") }

// BufferPages returns the number of pages of each of the kernel's two
// request queues, where the kernel lets it be read (`buffer_size`, later
// trees); v1 has a fixed 131072 (package documentation: "The kernel interface").
func (i *Interface) BufferPages() (int, bool, error) { return i.intAttr("buffer_size") }

// EnsureType selects the block-device dump type on kernels that offer
// several (`type`: memdump or filedump, later trees). v1 has only block
// devices and no such attribute.
func (i *Interface) EnsureType(want string) error {
	if !i.Has("type") {
		return nil
	}
	b, err := i.attrs.ReadAttr("type")
	if err != nil {
		return err
	}
	cur, _, _ := strings.Cut(string(b), "\n")
	if strings.TrimSpace(cur) == want {
		return nil
	}
	return i.write("type", want+"\n")
}
