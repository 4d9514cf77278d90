package guest

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// KernelSpec says which Debian kernel to fetch. The zero value means the
// Debian 12 (bookworm) 6.1 cloud kernel: it is the smallest one (its -dbg
// package is ~280 MB against ~860 MB for the generic flavour) and boots
// fastest under TCG because it has few drivers to probe.
type KernelSpec struct {
	// Series is the kernel series: "6.1" (default: bookworm's own kernel,
	// meta package linux-image-<flavour>) or e.g. "6.12" (bookworm's
	// backport, meta package linux-image-6.12-<flavour>).
	Series string `json:"series,omitempty"`
	// Flavour is the Debian flavour: "cloud-amd64" (default) or "amd64".
	Flavour string `json:"flavour,omitempty"`
	// Package, if set, names the concrete image package (for example
	// "linux-image-6.1.0-56-cloud-amd64") and bypasses the meta package.
	Package string `json:"package,omitempty"`
	// Version, if set, pins the image package's version (apt's pkg=version).
	// Without Package and Version, the series' entry in Pins says both; a
	// series without one gets apt's candidate of the meta package.
	Version string `json:"version,omitempty"`
}

func (k KernelSpec) withDefaults() KernelSpec {
	if k.Series == "" && k.Package == "" {
		k.Series = "6.1"
	}
	if k.Flavour == "" && k.Package == "" {
		k.Flavour = "cloud-amd64"
	}
	return k
}

// MetaPackage is the Debian meta package that depends on the newest concrete
// kernel of the spec's series and flavour.
func (k KernelSpec) MetaPackage() string {
	k = k.withDefaults()
	if k.Package != "" {
		return ""
	}
	if k.Series == "6.1" {
		// bookworm's own series has no series in the meta package's name.
		return "linux-image-" + k.Flavour
	}
	return "linux-image-" + k.Series + "-" + k.Flavour
}

// Kernel is an unpacked Debian kernel in the cache. All paths are absolute.
type Kernel struct {
	Spec       KernelSpec `json:"spec"`
	Meta       string     `json:"meta,omitempty"` // meta package it was resolved from
	Package    string     `json:"package"`        // image package that was unpacked
	DbgPackage string     `json:"dbg_package"`
	Version    string     `json:"version"` // Debian package version, e.g. 6.1.192-2
	Release    string     `json:"release"` // uname -r, e.g. 6.1.0-56-cloud-amd64

	Dir        string `json:"-"`
	Vmlinuz    string `json:"-"`
	Vmlinux    string `json:"-"` // debug vmlinux (usr/lib/debug/boot/vmlinux-<release>)
	SystemMap  string `json:"-"` // made with nm -n: the package's own is a stub
	ModulesDir string `json:"-"` // lib/modules/<release>
	Config     string `json:"-"` // boot/config-<release>

	// What the first fetch cost, kept for reports.
	DownloadBytes int64         `json:"download_bytes"`
	DownloadTime  time.Duration `json:"download_time"`
	ExtractTime   time.Duration `json:"extract_time"`

	// Choice says how this run came to use the kernel: "pinned", or why
	// not (for example the pin is no longer served). Not stored: it is a
	// property of the run, not of the kernel.
	Choice string `json:"-"`
}

// Relative layout inside a kernel's cache directory. Stored relative so the
// cache survives being moved (CI cache restore).
func (k *Kernel) setPaths(dir string) error {
	k.Dir = dir
	k.Vmlinuz = filepath.Join(dir, "boot", "vmlinuz-"+k.Release)
	k.Config = filepath.Join(dir, "boot", "config-"+k.Release)
	k.Vmlinux = filepath.Join(dir, "usr", "lib", "debug", "boot", "vmlinux-"+k.Release)
	k.SystemMap = filepath.Join(dir, "System.map-"+k.Release)
	k.ModulesDir = ""
	// Older packages ship lib/modules, merged-/usr ones usr/lib/modules.
	for _, m := range []string{filepath.Join(dir, "lib", "modules", k.Release), filepath.Join(dir, "usr", "lib", "modules", k.Release)} {
		if st, err := os.Stat(m); err == nil && st.IsDir() {
			k.ModulesDir = m
			break
		}
	}
	for _, p := range []string{k.Vmlinuz, k.Vmlinux, k.SystemMap} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("kernel cache %s incomplete: %w", dir, err)
		}
	}
	if k.ModulesDir == "" {
		return fmt.Errorf("kernel cache %s: no lib/modules/%s", dir, k.Release)
	}
	return nil
}

const kernelJSON = "kernel.json"

func loadKernel(dir string) (*Kernel, error) {
	b, err := os.ReadFile(filepath.Join(dir, kernelJSON))
	if err != nil {
		return nil, err
	}
	k := new(Kernel)
	if err := json.Unmarshal(b, k); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, kernelJSON), err)
	}
	if err := k.setPaths(dir); err != nil {
		return nil, err
	}
	return k, nil
}

// pkgInfo is what apt-cache says about the packages to fetch.
type pkgInfo struct {
	meta      string
	image     string
	dbg       string
	version   string
	imageSize int64
	dbgSize   int64
	choice    string // see Kernel.Choice
	warning   string // loud line when a pin had to be given up
}

func (p pkgInfo) release() string {
	return strings.TrimSuffix(strings.TrimPrefix(p.image, "linux-image-"), "-unsigned")
}

func (p pkgInfo) cacheKey() string {
	return strings.TrimSuffix(p.image, "-unsigned") + "_" + escapeVersion(p.version)
}

// escapeVersion makes a Debian version safe in a file name the way apt does
// for .deb names (the epoch colon becomes %3a).
func escapeVersion(v string) string { return strings.ReplaceAll(v, ":", "%3a") }

// Fetch makes sure the kernel described by k is unpacked under cacheDir and
// returns it. A spec that names only a series and flavour means that
// series' entry in Pins, fetched at exactly the pinned version; if the
// archive no longer serves it, Fetch warns loudly and takes the newest
// kernel of the series instead. Either way it announces the package and
// version it uses (log function and stderr). The image and -dbg packages are
// fetched with apt-get download and unpacked with dpkg: nothing is installed
// on the host. The cache is keyed by the concrete package and version, so a
// repeated call only asks the local apt-cache what is served and returns at
// once; if apt-cache cannot answer (no lists), a matching kernel already in
// the cache (the pinned one first) is used without touching the network.
// Unpacking happens in a temporary directory renamed into place when
// complete, so an interrupted fetch is never mistaken for a finished one.
func Fetch(ctx context.Context, cacheDir string, k KernelSpec) (*Kernel, error) {
	k = k.withDefaults()
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	kernelsDir := filepath.Join(cacheDir, "kernels")

	info, err := resolveCached(ctx, kernelsDir, k)
	if err != nil {
		if kern, choice, warning := findCachedFor(kernelsDir, k); kern != nil {
			logf(ctx, "apt-cache failed (%v); using cached %s %s", err, kern.Package, kern.Version)
			if warning != "" {
				announce(ctx, warning)
			}
			kern.Choice = choice
			announce(ctx, kernelLine(k, kern, choice))
			return kern, nil
		}
		// Most likely there are no package lists yet (fresh container).
		logf(ctx, "apt-cache failed (%v); running apt-get update", err)
		if _, uerr := run(ctx, "", "apt-get", "update"); uerr != nil {
			return nil, fmt.Errorf("resolve %+v: %w (and apt-get update failed: %v)", k, err, uerr)
		}
		if info, err = resolvePinned(ctx, k, Pins); err != nil {
			return nil, err
		}
	}
	if info.warning != "" {
		announce(ctx, info.warning)
	}
	kern, err := fetchResolved(ctx, cacheDir, kernelsDir, k, info)
	if err != nil && info.choice == choicePinned && ctx.Err() == nil {
		// The download refreshed the lists (apt-get update) before giving
		// up: if they no longer serve the pin, fall back to the series.
		if again, rerr := resolvePinned(ctx, k, Pins); rerr == nil && (again.image != info.image || again.version != info.version) {
			if again.warning != "" {
				announce(ctx, again.warning)
			}
			info = again
			kern, err = fetchResolved(ctx, cacheDir, kernelsDir, k, info)
		}
	}
	if err != nil {
		return nil, err
	}
	kern.Choice = info.choice
	announce(ctx, kernelLine(k, kern, info.choice))
	return kern, nil
}

// findCachedFor finds a cached kernel for k when apt-cache cannot answer:
// the pinned one if it is there, else the newest cached of the series (with
// a warning when that is not the pin).
func findCachedFor(kernelsDir string, k KernelSpec) (kern *Kernel, choice, warning string) {
	p, pinned := pinFor(Pins, k)
	if pinned {
		if kern := findCachedKernel(kernelsDir, KernelSpec{Package: p.Package, Version: p.Version}); kern != nil {
			return kern, choicePinned + ", from the cache: apt-cache unavailable", ""
		}
	}
	kern = findCachedKernel(kernelsDir, k)
	if kern == nil {
		return nil, "", ""
	}
	if !pinned {
		return kern, unpinnedChoice(k) + ", from the cache: apt-cache unavailable", ""
	}
	return kern, fallbackChoice(p) + ", from the cache: apt-cache unavailable",
		fmt.Sprintf("WARNING pinned %s=%s is not in the cache and apt-cache is unavailable; using the newest cached kernel of series %s: %s %s",
			p.Package, p.Version, p.Series, kern.Package, kern.Version)
}

// fetchResolved makes sure the kernel info names is unpacked in the cache.
func fetchResolved(ctx context.Context, cacheDir, kernelsDir string, k KernelSpec, info pkgInfo) (*Kernel, error) {
	dir := filepath.Join(kernelsDir, info.cacheKey())
	if kern, err := loadKernel(dir); err == nil {
		return kern, nil
	}

	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if kern, err := loadKernel(dir); err == nil { // someone else finished it
		return kern, nil
	}
	if exists(dir) { // incomplete leftovers can only come from a bug or a hand edit
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	// Under the lock, temporary directories of interrupted runs are garbage.
	if old, _ := filepath.Glob(filepath.Join(kernelsDir, ".tmp-"+filepath.Base(dir)+"-*")); len(old) > 0 {
		for _, o := range old {
			os.RemoveAll(o)
		}
	}

	debsDir := filepath.Join(cacheDir, "debs")
	t0 := time.Now()
	imageDeb, image, n1, err := download(ctx, debsDir, []string{info.image, alternateImage(info.image)}, info.version, info.imageSize)
	if err != nil {
		return nil, err
	}
	info.image = image
	dbgDeb, _, n2, err := download(ctx, debsDir, []string{info.dbg}, info.version, info.dbgSize)
	if err != nil {
		return nil, err
	}
	dlTime := time.Since(t0)

	t1 := time.Now()
	kern, err := unpack(ctx, kernelsDir, dir, info, imageDeb, dbgDeb)
	if err != nil {
		return nil, err
	}
	kern.Spec = k
	kern.DownloadBytes = n1 + n2
	kern.DownloadTime = dlTime
	kern.ExtractTime = time.Since(t1)
	if err := writeJSON(filepath.Join(dir, kernelJSON), kern); err != nil {
		return nil, err
	}
	logf(ctx, "kernel %s %s ready in %s (download %.0f MB in %s, unpack %s)", kern.Package, kern.Version, dir,
		float64(kern.DownloadBytes)/1e6, dlTime.Round(time.Millisecond), kern.ExtractTime.Round(time.Millisecond))
	// The debs are large (the generic -dbg is ~860 MB) and everything needed
	// is now unpacked; keep only the result.
	os.Remove(imageDeb)
	os.Remove(dbgDeb)
	return kern, nil
}

// alternateImage returns the signed/unsigned twin of an image package. Both
// carry the same vmlinuz and modules (the signed one is the meta package's
// dependency); the twin is a fallback if one of them cannot be downloaded.
func alternateImage(pkg string) string {
	if s, ok := strings.CutSuffix(pkg, "-unsigned"); ok {
		return s
	}
	return pkg + "-unsigned"
}

// resolveCached is resolve with a memo: without apt's binary package cache
// (Debian container images disable it) every apt-cache call re-reads all
// package lists, about half a second each. The answer depends only on the
// lists, so it is reused while /var/lib/apt/lists is unchanged.
func resolveCached(ctx context.Context, kernelsDir string, k KernelSpec) (pkgInfo, error) {
	type memo struct {
		Stamp                     string
		Meta, Image, Dbg, Version string
		ImageSize, DbgSize        int64
		Choice, Warning           string
	}
	stamp := aptListsStamp()
	// The pin is part of the question: editing Pins must not reuse an
	// answer given for the old pin.
	pin, _ := pinFor(Pins, k)
	key, _ := json.Marshal(struct {
		Spec KernelSpec
		Pin  Pin
	}{k, pin})
	path := filepath.Join(kernelsDir, fmt.Sprintf("resolve-%x.json", sha256.Sum256(key)))
	var m memo
	if b, err := os.ReadFile(path); err == nil && stamp != "" && json.Unmarshal(b, &m) == nil && m.Stamp == stamp && m.Image != "" && m.Choice != "" {
		return pkgInfo{meta: m.Meta, image: m.Image, dbg: m.Dbg, version: m.Version, imageSize: m.ImageSize, dbgSize: m.DbgSize,
			choice: m.Choice, warning: m.Warning}, nil
	}
	info, err := resolvePinned(ctx, k, Pins)
	if err != nil {
		return info, err
	}
	if stamp != "" && os.MkdirAll(kernelsDir, 0o755) == nil {
		writeJSON(path, memo{stamp, info.meta, info.image, info.dbg, info.version, info.imageSize, info.dbgSize, info.choice, info.warning})
	}
	return info, nil
}

// resolvePinned resolves k through the pin table: the pinned package and
// version if apt's lists serve both it and its -dbg package, else (with a
// warning) the newest of the series as resolve finds it. Specs without a pin
// resolve as before.
func resolvePinned(ctx context.Context, k KernelSpec, pins []Pin) (pkgInfo, error) {
	k = k.withDefaults()
	p, ok := pinFor(pins, k)
	if !ok {
		info, err := resolve(ctx, k)
		info.choice = unpinnedChoice(k)
		return info, err
	}
	served, err := aptServed(ctx, p.Package, p.Dbg)
	if err != nil {
		return pkgInfo{}, err
	}
	ok, why := pinServed(p, served)
	if ok {
		info, err := resolve(ctx, KernelSpec{Package: p.Package, Version: p.Version})
		if err != nil {
			return info, err
		}
		info.meta = k.MetaPackage() // so that an offline run finds it as one of the series
		info.choice = choicePinned
		return info, nil
	}
	// An error here most likely means there are no lists at all (then the
	// pin is not really gone): the caller runs apt-get update and asks again.
	info, err := resolve(ctx, k)
	if err != nil {
		return info, err
	}
	info.choice = fallbackChoice(p)
	info.warning = pinFallbackWarning(p, why, info.image, info.version)
	return info, nil
}

func unpinnedChoice(k KernelSpec) string {
	if k.Package != "" || k.Version != "" {
		return choiceRequested
	}
	return choiceUnpinned
}

func fallbackChoice(p Pin) string {
	return "NOT the pinned " + p.Package + "=" + p.Version + ": newest of series " + p.Series
}

// aptListsStamp summarises the package lists (names, sizes, mtimes); it
// changes whenever apt-get update changes anything.
func aptListsStamp() string {
	ents, err := os.ReadDir("/var/lib/apt/lists")
	if err != nil {
		return ""
	}
	h := sha256.New()
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			fmt.Fprintf(h, "%s %d %d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// resolve asks the local apt-cache (no network) which concrete packages the
// spec means.
func resolve(ctx context.Context, k KernelSpec) (pkgInfo, error) {
	var info pkgInfo
	image := k.Package
	if image == "" {
		info.meta = k.MetaPackage()
		st, err := aptShow(ctx, info.meta)
		if err != nil {
			return info, err
		}
		for _, dep := range strings.Split(st["Depends"], ",") {
			name := strings.Fields(strings.Split(dep, "|")[0])
			if len(name) > 0 && strings.HasPrefix(name[0], "linux-image-") {
				image = name[0]
				break
			}
		}
		if image == "" {
			return info, fmt.Errorf("meta package %s has no linux-image dependency (Depends: %q)", info.meta, st["Depends"])
		}
	}
	ref := image
	if k.Version != "" {
		ref += "=" + k.Version
	}
	st, err := aptShow(ctx, ref)
	if err != nil {
		return info, err
	}
	info.image = image
	info.version = st["Version"]
	info.imageSize, _ = strconv.ParseInt(st["Size"], 10, 64)
	if k.Package == "" && k.Series != "" && !strings.HasPrefix(info.version, k.Series+".") {
		return info, fmt.Errorf("%s resolves to %s %s, not a %s kernel", info.meta, image, info.version, k.Series)
	}
	info.dbg = strings.TrimSuffix(image, "-unsigned") + "-dbg"
	dst, err := aptShow(ctx, info.dbg+"="+info.version)
	if err != nil {
		return info, err
	}
	info.dbgSize, _ = strconv.ParseInt(dst["Size"], 10, 64)
	return info, nil
}

// aptShow returns the first stanza of `apt-cache show` for ref (a package or
// package=version); --no-all-versions makes a bare name mean the candidate.
func aptShow(ctx context.Context, ref string) (map[string]string, error) {
	out, err := run(ctx, "", "apt-cache", "show", "--no-all-versions", ref)
	if err != nil {
		return nil, err
	}
	st := parseStanza(string(out))
	if st["Package"] == "" || st["Version"] == "" {
		return nil, fmt.Errorf("apt-cache show %s: no package stanza", ref)
	}
	return st, nil
}

// parseStanza parses the first RFC822-style stanza of apt-cache output.
func parseStanza(s string) map[string]string {
	st := map[string]string{}
	last := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(st) > 0 {
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" {
				st[last] += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = k
		st[k] = strings.TrimSpace(v)
	}
	return st
}

// findCachedKernel returns the most recently unpacked cached kernel that
// matches k, for when apt-cache cannot tell which version is current.
func findCachedKernel(kernelsDir string, k KernelSpec) *Kernel {
	ents, _ := os.ReadDir(kernelsDir)
	var best *Kernel
	var bestTime time.Time
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(kernelsDir, e.Name())
		kern, err := loadKernel(dir)
		if err != nil {
			continue
		}
		switch {
		case k.Package != "":
			if strings.TrimSuffix(kern.Package, "-unsigned") != strings.TrimSuffix(k.Package, "-unsigned") {
				continue
			}
		case kern.Meta != k.MetaPackage():
			continue
		}
		if k.Version != "" && kern.Version != k.Version {
			continue
		}
		st, err := os.Stat(filepath.Join(dir, kernelJSON))
		if err != nil {
			continue
		}
		if best == nil || st.ModTime().After(bestTime) {
			best, bestTime = kern, st.ModTime()
		}
	}
	return best
}

// download makes sure <pkg>_<version>_amd64.deb for the first downloadable
// name in pkgs is in debsDir and returns its path, the package name and the
// number of bytes fetched (0 if it was already there). apt-get download
// writes into a temporary directory that is renamed into place, so a killed
// download leaves no truncated .deb behind. If the download fails, package
// lists are refreshed once (apt-get update) and the download retried: stale
// or missing lists are the usual cause.
func download(ctx context.Context, debsDir string, pkgs []string, version string, size int64) (path, pkg string, n int64, err error) {
	if err := os.MkdirAll(debsDir, 0o755); err != nil {
		return "", "", 0, err
	}
	for _, p := range pkgs {
		path := filepath.Join(debsDir, p+"_"+escapeVersion(version)+"_amd64.deb")
		if st, err := os.Stat(path); err == nil && (size == 0 || st.Size() == size || p != pkgs[0]) {
			return path, p, 0, nil
		}
	}
	var errs []error
	updated := false
	for attempt := 0; attempt < 2; attempt++ {
		for _, p := range pkgs {
			path, n, err := aptDownload(ctx, debsDir, p, version)
			if err == nil {
				return path, p, n, nil
			}
			errs = append(errs, err)
		}
		if updated || ctx.Err() != nil {
			break
		}
		logf(ctx, "apt-get download failed; running apt-get update and retrying")
		if _, err := run(ctx, "", "apt-get", "update"); err != nil {
			errs = append(errs, err)
			break
		}
		updated = true
	}
	return "", "", 0, errors.Join(errs...)
}

func aptDownload(ctx context.Context, debsDir, pkg, version string) (string, int64, error) {
	tmp, err := os.MkdirTemp(debsDir, ".dl-")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(tmp)
	// apt drops privileges to _apt for downloads and warns when _apt cannot
	// write the target directory; the download still works.
	os.Chmod(tmp, 0o755)
	t0 := time.Now()
	logf(ctx, "apt-get download %s=%s", pkg, version)
	if _, err := run(ctx, tmp, "apt-get", "download", pkg+"="+version); err != nil {
		return "", 0, err
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return "", 0, fmt.Errorf("apt-get download %s=%s produced %d .deb files", pkg, version, len(debs))
	}
	st, err := os.Stat(debs[0])
	if err != nil {
		return "", 0, err
	}
	dst := filepath.Join(debsDir, pkg+"_"+escapeVersion(version)+"_amd64.deb")
	if err := os.Rename(debs[0], dst); err != nil {
		return "", 0, err
	}
	logf(ctx, "downloaded %s (%.1f MB) in %s", filepath.Base(dst), float64(st.Size())/1e6, time.Since(t0).Round(time.Millisecond))
	return dst, st.Size(), nil
}

// unpack builds the kernel's cache directory in a temporary sibling and
// renames it to dir when everything is there.
func unpack(ctx context.Context, kernelsDir, dir string, info pkgInfo, imageDeb, dbgDeb string) (*Kernel, error) {
	tmp, err := os.MkdirTemp(kernelsDir, ".tmp-"+filepath.Base(dir)+"-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	rel := info.release()
	logf(ctx, "dpkg -x %s", filepath.Base(imageDeb))
	if _, err := run(ctx, "", "dpkg", "-x", imageDeb, tmp); err != nil {
		return nil, err
	}
	vmlinux := filepath.Join("usr", "lib", "debug", "boot", "vmlinux-"+rel)
	logf(ctx, "extracting %s from %s", vmlinux, filepath.Base(dbgDeb))
	if err := extractFromDeb(ctx, dbgDeb, vmlinux, filepath.Join(tmp, vmlinux)); err != nil {
		return nil, err
	}
	// The image package's System.map is a one-line stub pointing at the -dbg
	// package; consumers (crash, makedumpfile) want the real one.
	sysmap := filepath.Join(tmp, "System.map-"+rel)
	out, err := run(ctx, "", "nm", "-n", filepath.Join(tmp, vmlinux))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(sysmap, out, 0o644); err != nil {
		return nil, err
	}
	kern := &Kernel{Meta: info.meta, Package: info.image, DbgPackage: info.dbg, Version: info.version, Release: rel}
	if err := kern.setPaths(tmp); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(tmp, kernelJSON), kern); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	ok = true
	if err := kern.setPaths(dir); err != nil {
		return nil, err
	}
	return kern, nil
}

// extractFromDeb copies one file out of a .deb's data archive. Only the
// debug vmlinux is needed from the -dbg package, and unpacking all of it with
// dpkg -x would write ~1.7-5.6 GB of module debug info; streaming the tar and
// stopping at the wanted member (near the start) is also much faster.
func extractFromDeb(ctx context.Context, deb, member, dst string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := command(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	found, err := copyTarMember(tar.NewReader(stdout), member, dst)
	cancel()       // stop dpkg-deb (and its decompressor) if we stopped reading early
	_ = cmd.Wait() // killed on purpose when found early
	if err != nil {
		return fmt.Errorf("%s: %w (%s)", deb, err, tail(stderr.String(), 500))
	}
	if !found {
		return fmt.Errorf("%s has no %s (%s)", deb, member, tail(stderr.String(), 500))
	}
	return nil
}

func copyTarMember(tr *tar.Reader, member, dst string) (bool, error) {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if strings.TrimPrefix(h.Name, "./") != member || h.Typeflag != tar.TypeReg {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return false, err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return false, err
		}
		return true, f.Close()
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
