package vmlinux

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"ldx/elfcore"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"ldx/vmcoreinfo"
)

// File is an opened vmlinux. Its methods are safe for concurrent use,
// except Close: after Close every method returns ErrClosed, but Close must
// not run while a lookup is in flight (the lookup reads the mapping).
type File struct {
	path   string
	data   []byte // the whole file, mapped read-only
	elf    *elf.File
	closed atomic.Bool

	symOnce sync.Once
	syms    map[string]elf.Symbol
	symErr  error

	dwarfOnce sync.Once
	dw        *index
	dwErr     error
}

// Open maps a vmlinux and reads its ELF headers; symbols and DWARF are
// read on first use.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() < 64 {
		return nil, fmt.Errorf("%s: %d bytes is too short for an ELF header", path, st.Size())
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	if !bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		start := bytes.Clone(data[:8])
		unix.Munmap(data)
		return nil, fmt.Errorf("%s: not an ELF file (it starts with % x): a debug vmlinux is the -dbg package's /usr/lib/debug/boot/vmlinux-<release>, not the compressed /boot/vmlinuz", path, start)
	}
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		unix.Munmap(data)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if ef.Class != elf.ELFCLASS64 {
		unix.Munmap(data)
		return nil, fmt.Errorf("%s: ELF class %v, expected ELFCLASS64", path, ef.Class)
	}
	return &File{path: path, data: data, elf: ef}, nil
}

// Close unmaps the file. Nothing returned earlier (slices from ReadData
// are copies) refers to the mapping.
func (f *File) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	err := unix.Munmap(f.data)
	f.data = nil
	return err
}

// Path is the file's path as opened.
func (f *File) Path() string { return f.path }

// Machine is the ELF e_machine.
func (f *File) Machine() elf.Machine { return f.elf.Machine }

// BuildID returns the GNU build-id (the kernel's VMCOREINFO BUILD-ID), or
// nil when the image has none.
func (f *File) BuildID() []byte {
	if f.closed.Load() {
		return nil
	}
	for _, s := range f.elf.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		b, ok := f.section(s)
		if !ok {
			continue
		}
		if id, ok := elfcore.FindNote(b, "GNU", elfcore.NT_GNU_BUILD_ID); ok {
			return bytes.Clone(id)
		}
	}
	return nil
}

// section returns an uncompressed allocated or debug section's bytes from
// the mapping.
func (f *File) section(s *elf.Section) ([]byte, bool) {
	if s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_COMPRESSED != 0 {
		return nil, false
	}
	end := s.Offset + s.Size
	if end < s.Offset || end > uint64(len(f.data)) {
		return nil, false
	}
	return f.data[s.Offset:end], true
}

// Banner returns linux_banner, without its NUL: "Linux version <release>
// (<builder>) (<compiler>) #<build> <date>\n". The whole banner tells
// builds apart where the release does not, and is what locates the image
// in a dump's memory.
func (f *File) Banner() ([]byte, error) {
	addr, err := f.Symbol("linux_banner")
	if err != nil {
		return nil, err
	}
	n, _ := f.SymbolSize("linux_banner")
	if n == 0 || n > maxBanner {
		n = maxBanner
	}
	buf := make([]byte, n)
	// Without a symbol size, a banner near the end of its section may be
	// shorter than the read: shrink to what the section holds.
	for len(buf) > 0 {
		err = f.ReadData(addr, buf)
		if err == nil || !errors.Is(err, errPastSection) {
			break
		}
		buf = buf[:len(buf)/2]
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading linux_banner at %#x: %w", f.path, addr, err)
	}
	const prefix = "Linux version "
	if !bytes.HasPrefix(buf, []byte(prefix)) {
		return nil, fmt.Errorf("%s: linux_banner at %#x does not start with %q", f.path, addr, prefix)
	}
	i := bytes.IndexByte(buf, 0)
	if i < 0 {
		return nil, fmt.Errorf("%s: linux_banner at %#x has no NUL within %d bytes", f.path, addr, len(buf))
	}
	return buf[:i], nil
}

// maxBanner bounds linux_banner (about 200 bytes on Debian kernels).
const maxBanner = 1024

// Release returns the kernel release (UTS_RELEASE, what OSRELEASE in
// VMCOREINFO and `uname -r` say), read from linux_banner so that no DWARF
// is needed for it.
func (f *File) Release() (string, error) {
	b, err := f.Banner()
	if err != nil {
		return "", err
	}
	rest := b[len("Linux version "):]
	end := bytes.IndexAny(rest, " \n")
	if end <= 0 {
		return "", fmt.Errorf("%s: linux_banner %q has no release", f.path, b)
	}
	return string(rest[:end]), nil
}

// Symbol returns a symbol's link-time address (the KASLR offset, KERNELOFFSET
// in VMCOREINFO, is not applied). When a name is both global and file-local
// (static), the global one is returned; among locals, the first.
func (f *File) Symbol(name string) (uint64, error) {
	s, err := f.symbol(name)
	return s.Value, err
}

// SymbolSize returns a symbol's st_size.
func (f *File) SymbolSize(name string) (uint64, error) {
	s, err := f.symbol(name)
	return s.Size, err
}

func (f *File) symbol(name string) (elf.Symbol, error) {
	if f.closed.Load() {
		return elf.Symbol{}, &LookupError{File: f.path, Kind: "symbol", Name: name, Err: ErrClosed}
	}
	f.symOnce.Do(f.loadSymbols)
	if f.symErr != nil {
		return elf.Symbol{}, &LookupError{File: f.path, Kind: "symbol", Name: name, Err: f.symErr}
	}
	s, ok := f.syms[name]
	if !ok {
		return elf.Symbol{}, &LookupError{File: f.path, Kind: "symbol", Name: name, Err: ErrNotFound}
	}
	return s, nil
}

func (f *File) loadSymbols() {
	syms, err := f.elf.Symbols()
	if err != nil {
		f.symErr = fmt.Errorf("reading .symtab: %w", err)
		return
	}
	f.syms = make(map[string]elf.Symbol, len(syms))
	for _, s := range syms {
		if s.Name == "" || elf.ST_TYPE(s.Info) == elf.STT_FILE || elf.ST_TYPE(s.Info) == elf.STT_SECTION {
			continue
		}
		old, dup := f.syms[s.Name]
		if !dup || (elf.ST_BIND(old.Info) == elf.STB_LOCAL && elf.ST_BIND(s.Info) != elf.STB_LOCAL) {
			f.syms[s.Name] = s
		}
	}
}

// ReadData copies the image's initialised bytes at a link-time address:
// .rodata, .data and the like as the kernel starts with them. Bytes in a
// NOBITS section (.bss) read as zeros. The range must lie in one section.
func (f *File) ReadData(addr uint64, p []byte) error {
	if f.closed.Load() {
		return fmt.Errorf("%s: %w", f.path, ErrClosed)
	}
	n := uint64(len(p))
	for _, s := range f.elf.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Size == 0 || addr < s.Addr || addr-s.Addr >= s.Size {
			continue
		}
		off := addr - s.Addr
		if n > s.Size-off {
			return fmt.Errorf("%s: %d bytes at %#x run past the end of %s (%#x-%#x): %w", f.path, n, addr, s.Name, s.Addr, s.Addr+s.Size, errPastSection)
		}
		if s.Type == elf.SHT_NOBITS {
			clear(p)
			return nil
		}
		b, ok := f.section(s)
		if !ok {
			return fmt.Errorf("%s: section %s (file offset %#x, %d bytes) is not readable from the file", f.path, s.Name, s.Offset, s.Size)
		}
		copy(p, b[off:off+n])
		return nil
	}
	return fmt.Errorf("%s: address %#x is in no allocated section: %w", f.path, addr, errNoSection)
}

var (
	errNoSection   = errors.New("no section")
	errPastSection = errors.New("past the section's end")
)

// MatchesBuildID reports whether a build-id written as hex — VMCOREINFO's
// BUILD-ID — is this image's. The kernel prints a fixed 20 bytes
// ("%20phN"), so a shorter build-id comes zero-padded; case is ignored.
func (f *File) MatchesBuildID(hexID string) bool {
	id := f.BuildID()
	if len(id) == 0 || hexID == "" {
		return false
	}
	want := strings.ToLower(fmt.Sprintf("%x", id))
	got := strings.ToLower(hexID)
	if len(got) > len(want) && strings.Trim(got[len(want):], "0") == "" {
		got = got[:len(want)]
	}
	return got == want
}

// Matches says whether the vmlinux is the dumped kernel's: its build-id
// against the dump's BUILD-ID or, when either has none, the releases. A
// vmlinux of another build would give wrong offsets and read garbage. It
// returns the dump's release; with nothing to compare it says nothing
// against the pair (the readers' own sanity checks still apply).
func (f *File) Matches(info *vmcoreinfo.Info) (string, error) {
	dumpRel, haveRel := info.OSRelease()
	vRel, relErr := f.Release()
	if id, ok := info.BuildID(); ok && f.BuildID() != nil {
		if !f.MatchesBuildID(id) {
			return "", fmt.Errorf("--vmlinux %s is not the dumped kernel's: its build-id is %s (release %s), the dump's BUILD-ID %s (release %s)",
				f.Path(), hex.EncodeToString(f.BuildID()), vRel, id, dumpRel)
		}
		return dumpRel, nil
	}
	if !haveRel || relErr != nil {
		return dumpRel, nil
	}
	if vRel != dumpRel {
		return "", fmt.Errorf("--vmlinux %s is not the dumped kernel's: it is release %s, the dump's OSRELEASE %s", f.Path(), vRel, dumpRel)
	}
	return dumpRel, nil
}

// KASLROffset is how far the dumped kernel's image was moved from this
// vmlinux's link-time addresses: KERNELOFFSET from the dump's VMCOREINFO,
// else SYMBOL(_stext) minus the vmlinux's _stext. how says which, for
// reports; without either, the error says so.
func (f *File) KASLROffset(info *vmcoreinfo.Info) (off uint64, how string, err error) {
	if ko, ok := info.KernelOffset(); ok {
		return ko, fmt.Sprintf("KERNELOFFSET=%x", ko), nil
	}
	st, ok := info.Symbol("_stext")
	link, lerr := f.Symbol("_stext")
	if ok && lerr == nil {
		return st - link, fmt.Sprintf("KASLR offset %#x from SYMBOL(_stext) (no KERNELOFFSET)", st-link), nil
	}
	return 0, "", errors.New("VMCOREINFO has neither KERNELOFFSET nor SYMBOL(_stext): the KASLR offset is unknown")
}
