package guest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	_ "embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed guestfiles/init.sh
var initScript []byte

//go:embed guestfiles/sleeper.c
var sleeperSource []byte

// DefaultProcesses are the named processes every guest runs. Their names are
// at most 15 bytes so that they fit comm (TASK_COMM_LEN 16) unchanged.
var DefaultProcesses = []string{"ldx-sleeper-a", "ldx-sleeper-b", "ldx-worker"}

// MarkerPrefix starts every marker line the guest writes to /dev/kmsg;
// tests grep consumers' dmesg output for it.
const MarkerPrefix = "ldx-e2e-marker:"

// defaultMarkers returns the marker lines for a guest with the given nonce:
// a short one, one with punctuation, and a 900-byte one (long lines are where
// printk readers truncate or split records; the kernel accepts up to 1024).
func defaultMarkers(nonce string) []string {
	long := MarkerPrefix + " long line " + nonce + " "
	for i := 0; len(long) < 900; i++ {
		long += fmt.Sprintf("%03d-abcdefghijklmnopqrstuvwxyz ", i)
	}
	return []string{
		MarkerPrefix + " hello from the test guest " + nonce,
		MarkerPrefix + " second line " + nonce + " (punctuation: <>&;'\"|$`\\ %s %d)",
		long[:900],
	}
}

// InitramfsOptions says what goes into the test guest's initramfs.
type InitramfsOptions struct {
	Kernel    *Kernel
	Nonce     string
	Markers   []string // lines written to /dev/kmsg; default DefaultMarkers(Nonce)
	Processes []string // named processes to start; default DefaultProcesses
	// Modules to load, by name; default qemu_fw_cfg. Their dependencies are
	// added (and loaded first) automatically.
	Modules []string
	// WorkDir holds intermediate files (the compiled sleeper).
	WorkDir string
	// CacheDir is where a static busybox is unpacked if the host has none.
	CacheDir string
}

// buildInitramfs writes a gzip-compressed newc cpio to dst: busybox with its
// applet links, /init (guestfiles/init.sh), the modules, the named-process binaries and
// the /etc/ldx input files.
func buildInitramfs(ctx context.Context, dst string, o InitramfsOptions) error {
	if o.Kernel == nil {
		return fmt.Errorf("buildInitramfs: no kernel")
	}
	if len(o.Markers) == 0 {
		o.Markers = defaultMarkers(o.Nonce)
	}
	if len(o.Processes) == 0 {
		o.Processes = DefaultProcesses
	}
	if len(o.Modules) == 0 {
		o.Modules = []string{"qemu_fw_cfg"}
	}
	for _, m := range o.Markers {
		if strings.ContainsAny(m, "\n\x00") {
			return fmt.Errorf("marker %q: markers are single lines", m)
		}
	}
	if o.WorkDir == "" {
		d, err := os.MkdirTemp("", "ldx-initramfs-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.WorkDir = d
	}

	bb, err := loadBusybox(ctx, o.CacheDir)
	if err != nil {
		return err
	}
	mods, err := resolveModules(ctx, o.Kernel.ModulesDir, o.Modules)
	if err != nil {
		return err
	}
	procFiles, err := processBinaries(ctx, o.WorkDir, o.Processes)
	if err != nil {
		return err
	}

	return writeInitramfs(dst, bb, initScript, func(cw *CPIOWriter) {
		fillInitramfs(cw, o, mods, procFiles)
	}, "etc/ldx", "lib/modules/ldx")
}

// fillInitramfs adds the e2e guest's inputs, modules and named-process
// binaries.
func fillInitramfs(cw *CPIOWriter, o InitramfsOptions, mods []module, procFiles []procFile) {
	cw.File("etc/ldx/nonce", 0o644, []byte(o.Nonce+"\n"))
	cw.File("etc/ldx/markers", 0o644, []byte(strings.Join(o.Markers, "\n")+"\n"))
	cw.File("etc/ldx/procs", 0o644, []byte(strings.Join(o.Processes, "\n")+"\n"))
	var modList []string
	for i, m := range mods {
		name := fmt.Sprintf("%02d-%s.ko", i, m.name)
		cw.File("lib/modules/ldx/"+name, 0o644, m.data)
		modList = append(modList, name)
	}
	cw.File("etc/ldx/modules", 0o644, []byte(strings.Join(modList, "\n")+"\n"))
	for _, pf := range procFiles {
		if pf.target != "" {
			cw.Symlink(pf.name, pf.target)
		} else {
			cw.File(pf.name, 0o755, pf.data)
		}
	}
}

// writeInitramfs writes dst as a gzip-compressed newc cpio: the busybox
// base (with the extra dirs), init as /init, then what fill adds. Level 1:
// the kernel decompresses it in well under a second anyway and building
// stays fast.
func writeInitramfs(dst string, bb *busyboxImage, init []byte, fill func(cw *CPIOWriter), dirs ...string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		return err
	}
	cw := newCPIOWriter(zw)
	bb.write(cw, dirs...)
	cw.File("init", 0o755, init)
	fill(cw)
	if err := cw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// findBusybox returns a statically linked busybox: the host's if it has one
// (Debian's busybox-static), else one unpacked from busybox-static into the
// cache with apt-get download + dpkg -x, so the host is left untouched.
// It must be static because the initramfs has no libc.
func findBusybox(ctx context.Context, cacheDir string) (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if isStatic(p) {
			return p, nil
		}
	}
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	dir := filepath.Join(cacheDir, "tools", "busybox-static")
	bb := filepath.Join(dir, "bin", "busybox")
	if isStatic(bb) {
		return bb, nil
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if isStatic(bb) {
		return bb, nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-busybox-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755)
	logf(ctx, "no static busybox on the host: fetching busybox-static into %s", dir)
	if _, err := run(ctx, tmp, "apt-get", "download", "busybox-static"); err != nil {
		if _, uerr := run(ctx, "", "apt-get", "update"); uerr != nil {
			return "", err
		}
		if _, err := run(ctx, tmp, "apt-get", "download", "busybox-static"); err != nil {
			return "", err
		}
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download busybox-static produced %d files", len(debs))
	}
	root := filepath.Join(tmp, "root")
	if _, err := run(ctx, "", "dpkg", "-x", debs[0], root); err != nil {
		return "", err
	}
	for _, p := range []string{"bin/busybox", "usr/bin/busybox"} {
		if isStatic(filepath.Join(root, p)) {
			os.RemoveAll(dir)
			if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
				return "", err
			}
			if p != "bin/busybox" {
				if err := os.Rename(filepath.Join(root, p), filepath.Join(root, "bin/busybox")); err != nil {
					return "", err
				}
			}
			if err := os.Rename(root, dir); err != nil {
				return "", err
			}
			return bb, nil
		}
	}
	return "", fmt.Errorf("busybox-static package has no static busybox")
}

// isStatic reports whether path is an ELF executable without an interpreter.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return f.Type == elf.ET_EXEC || f.Type == elf.ET_DYN
}

type procFile struct {
	name   string // path in the archive
	data   []byte // contents, or
	target string // symlink target
}

// processBinaries returns the archive entries for the named processes. The
// preferred form is one static C program (guestfiles/sleeper.c) with a link per name;
// if the host cannot build static C programs (no gcc or no libc.a), each
// name becomes a shell script, whose process also has the script's name as
// comm (binfmt_script keeps the script's file name).
func processBinaries(ctx context.Context, workDir string, names []string) ([]procFile, error) {
	for _, n := range names {
		if len(n) > 15 || strings.ContainsAny(n, "/ \t\n") || n == "" {
			return nil, fmt.Errorf("process name %q: need 1-15 bytes without '/' or spaces (comm is 16 bytes)", n)
		}
	}
	src := filepath.Join(workDir, "ldx-sleeper.c")
	bin := filepath.Join(workDir, "ldx-sleeper")
	if err := os.WriteFile(src, sleeperSource, 0o644); err != nil {
		return nil, err
	}
	var files []procFile
	if _, err := run(ctx, workDir, "gcc", "-static", "-Os", "-s", "-o", bin, src); err == nil {
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		files = append(files, procFile{name: "bin/ldx-sleeper", data: data})
		for _, n := range names {
			files = append(files, procFile{name: "bin/" + n, target: "ldx-sleeper"})
		}
		return files, nil
	} else {
		logf(ctx, "cannot build static sleeper (%v); using shell scripts", err)
	}
	for _, n := range names {
		files = append(files, procFile{name: "bin/" + n, data: []byte("#!/bin/sh\nwhile :; do sleep 3600; done\n")})
	}
	return files, nil
}

type module struct {
	name string
	path string
	data []byte // uncompressed
}

// resolveModules finds the named modules and their dependencies in the
// unpacked modules directory and returns them uncompressed, dependencies
// first. dpkg -x does not run depmod, so there is normally no modules.dep:
// dependencies come from each module's .modinfo "depends=" instead.
// Modules are decompressed here because busybox insmod may not handle
// .ko.xz/.ko.zst (Debian 6.12 ships .ko.xz). Modules listed in
// modules.builtin are skipped.
func resolveModules(ctx context.Context, modulesDir string, names []string) ([]module, error) {
	index := map[string]string{}
	err := filepath.WalkDir(filepath.Join(modulesDir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if n, ok := moduleName(d.Name()); ok {
				index[n] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(modulesDir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			if n, ok := moduleName(filepath.Base(l)); ok {
				builtin[n] = true
			}
		}
	}
	var out []module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string) error
	visit = func(name string) error {
		name = strings.ReplaceAll(name, "-", "_")
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		state[name] = 1
		p, ok := index[name]
		if !ok {
			if builtin[name] {
				state[name] = 2
				return nil
			}
			return fmt.Errorf("module %s not found under %s", name, modulesDir)
		}
		data, err := readModule(ctx, p)
		if err != nil {
			return err
		}
		deps, err := modinfoDepends(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[name] = 2
		out = append(out, module{name: name, path: p, data: data})
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleName returns the normalised module name of a module file name.
func moduleName(file string) (string, bool) {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if n, ok := strings.CutSuffix(file, ext); ok {
			return strings.ReplaceAll(n, "-", "_"), true
		}
	}
	return "", false
}

func readModule(ctx context.Context, p string) ([]byte, error) {
	switch {
	case strings.HasSuffix(p, ".ko.xz"):
		return run(ctx, "", "xz", "-dc", p)
	case strings.HasSuffix(p, ".ko.zst"):
		return run(ctx, "", "zstd", "-dcq", p)
	case strings.HasSuffix(p, ".ko.gz"):
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	}
	return os.ReadFile(p)
}

// modinfoDepends returns the "depends=" list of a module's .modinfo section.
func modinfoDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	data, err := s.Data()
	if err != nil {
		return nil, err
	}
	var deps []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, 0); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "depends="); ok {
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, d)
				}
			}
		}
	}
	return deps, sc.Err()
}

// busyboxImage is the static busybox every test guest's initramfs is made
// of, with the applets it links to itself.
type busyboxImage struct {
	data    []byte
	applets []string
}

// loadBusybox finds the static busybox and lists its applets.
func loadBusybox(ctx context.Context, cacheDir string) (*busyboxImage, error) {
	path, err := findBusybox(ctx, cacheDir)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	list, err := run(ctx, "", path, "--list-full")
	if err != nil {
		return nil, err
	}
	return &busyboxImage{data: data, applets: strings.Fields(string(list))}, nil
}

// write lays out the base of a busybox initramfs: the usual directories
// plus dirs, the two device nodes init needs before devtmpfs is mounted
// (the kernel opens /dev/console for init), busybox and a link per applet.
func (b *busyboxImage) write(cw *CPIOWriter, dirs ...string) {
	for _, d := range append([]string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run"}, dirs...) {
		cw.Dir(d, 0o755)
	}
	cw.CharDev("dev/console", 0o600, 5, 1)
	cw.CharDev("dev/null", 0o666, 1, 3)
	cw.File("bin/busybox", 0o755, b.data)
	for _, a := range b.applets {
		if a = cleanName(a); a != "bin/busybox" && a != "init" && a != "linuxrc" {
			cw.Symlink(a, "/bin/busybox")
		}
	}
}
