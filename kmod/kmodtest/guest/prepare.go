package guest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Spec is everything that determines a prepared dump. It is the cache key
// (together with the concrete kernel version and this package's guest
// contents), so it holds no knobs that do not change the dump.
type Spec struct {
	Kernel  KernelSpec `json:"kernel"`
	Memory  string     `json:"memory,omitempty"` // default 512M
	CPUs    int        `json:"cpus,omitempty"`   // default 2
	NoKASLR bool       `json:"nokaslr,omitempty"`
	LA57    bool       `json:"la57,omitempty"`
	Cmdline string     `json:"cmdline,omitempty"`
	// KdumpFormat, if set ("kdump-zlib", ...), also dumps the guest in
	// that QEMU format (Artefacts.Kdump), right after the ELF dump.
	KdumpFormat string `json:"kdump_format,omitempty"`
}

// Artefacts are the files of one prepared dump. All paths are absolute.
type Artefacts struct {
	Dir        string `json:"dir,omitempty"`
	Dump       string `json:"dump,omitempty"`       // QEMU ELF dump, mode 0600
	Kdump      string `json:"kdump,omitempty"`      // QEMU kdump-* dump (Spec.KdumpFormat), mode 0600
	FactsJSON  string `json:"facts_json,omitempty"` // Facts as JSON
	VMCOREINFO string `json:"vmcoreinfo,omitempty"` // file with the dump's VMCOREINFO text
	SerialLog  string `json:"serial_log,omitempty"` // guest console
	Vmlinux    string `json:"vmlinux,omitempty"`    // debug vmlinux of the kernel
	SystemMap  string `json:"system_map,omitempty"`

	Key      string        `json:"key"`
	Spec     Spec          `json:"spec"`
	Kernel   *Kernel       `json:"kernel"`
	Facts    *Facts        `json:"-"`
	QEMUArgs []string      `json:"qemu_args"`
	BootTime time.Duration `json:"boot_time"`
	DumpTime time.Duration `json:"dump_time"`
	// Reused is true when the dump came from the cache (not stored).
	Reused bool `json:"reused"`
}

const (
	// cacheFormat changes when the layout or JSON of prepared dumps does.
	cacheFormat   = "ldx-guest-2"
	artefactsJSON = "artefacts.json"
	dumpName      = "vmcore"
	kdumpName     = "vmcore.kdump"
	factsName     = "facts.json"
	vmcoreinfoTxt = "vmcoreinfo.txt"
	serialName    = "serial.log"
)

func (s Spec) withDefaults() (Spec, int, error) {
	if s.Memory == "" {
		s.Memory = "512M"
	}
	if s.CPUs == 0 {
		s.CPUs = 2
	}
	mib, err := ParseMemory(s.Memory)
	if err != nil {
		return s, 0, err
	}
	s.Memory = strconv.Itoa(mib) + "M"
	s.Kernel = s.Kernel.withDefaults()
	return s, mib, nil
}

// key names a prepared dump: readable parts first, then a hash of what else
// shapes the guest (init script, sleeper, command line), so changing the
// guest's contents invalidates old dumps instead of silently reusing them.
func (s Spec) key(k *Kernel, mib int) string {
	h := sha256.New()
	h.Write([]byte(cacheFormat))
	h.Write(initScript)
	h.Write(sleeperSource)
	fmt.Fprintf(h, "\x00%s\x00%s\x00%v\x00%s", s.Cmdline, strings.Join(defaultMarkers("n"), "\n"), DefaultProcesses, Config{LA57: s.LA57}.withDefaults().CPUModel)
	parts := []string{k.Release, escapeVersion(k.Version), strconv.Itoa(mib) + "M", strconv.Itoa(s.CPUs) + "cpu"}
	if s.NoKASLR {
		parts = append(parts, "nokaslr")
	}
	if s.LA57 {
		parts = append(parts, "la57")
	}
	if s.KdumpFormat != "" {
		parts = append(parts, s.KdumpFormat)
	}
	parts = append(parts, hex.EncodeToString(h.Sum(nil))[:10])
	return strings.Join(parts, "_")
}

// bootAndDump boots a guest as spec says, dumps it into tmp (the ELF dump,
// the kdump-format one spec asks for, the serial log, VMCOREINFO and the
// guest's facts) and stops it.
func bootAndDump(ctx context.Context, tmp string, kern *Kernel, spec Spec, cacheDir string) (*Guest, time.Duration, error) {
	g, err := Boot(ctx, Config{
		Kernel: kern, Memory: spec.Memory, CPUs: spec.CPUs, NoKASLR: spec.NoKASLR,
		LA57: spec.LA57, Cmdline: spec.Cmdline, CacheDir: cacheDir,
	})
	if err != nil {
		return nil, 0, err
	}
	defer g.Close()
	t0 := time.Now()
	if err := g.Dump(ctx, filepath.Join(tmp, dumpName)); err != nil {
		return nil, 0, err
	}
	dumpTime := time.Since(t0)
	if spec.KdumpFormat != "" {
		if err := g.DumpAs(ctx, filepath.Join(tmp, kdumpName), spec.KdumpFormat); err != nil {
			return nil, 0, err
		}
	}
	if err := copyFile(g.SerialLog, filepath.Join(tmp, serialName)); err != nil {
		return nil, 0, err
	}
	g.Close() // the guest is no longer needed; free its memory and CPU now

	vmci, err := ReadVMCOREINFO(filepath.Join(tmp, dumpName))
	if err != nil {
		return nil, 0, err
	}
	if rel, _ := VMCOREINFOValue(vmci, "OSRELEASE"); rel != g.Facts.Release {
		return nil, 0, fmt.Errorf("dump's VMCOREINFO OSRELEASE %q != guest's uname -r %q", rel, g.Facts.Release)
	}
	if err := os.WriteFile(filepath.Join(tmp, vmcoreinfoTxt), []byte(vmci), 0o644); err != nil {
		return nil, 0, err
	}
	if err := writeJSON(filepath.Join(tmp, factsName), g.Facts); err != nil {
		return nil, 0, err
	}
	return g, dumpTime, nil
}

// Prepare returns a dump of a guest booted as spec says, with its facts,
// booting and dumping only if the cache (cacheDir, default
// DefaultCacheDir()) has no complete one yet. Artefacts are written to a
// temporary directory renamed into place at the end, so an interrupted run
// is never mistaken for a complete one; concurrent callers for the same spec
// wait for each other instead of booting twice.
func Prepare(ctx context.Context, cacheDir string, spec Spec) (*Artefacts, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	spec, mib, err := spec.withDefaults()
	if err != nil {
		return nil, err
	}
	kern, err := Fetch(ctx, cacheDir, spec.Kernel)
	if err != nil {
		return nil, err
	}
	key := spec.key(kern, mib)
	dumpsDir := filepath.Join(cacheDir, "dumps")
	dir := filepath.Join(dumpsDir, key)
	if a, err := loadArtefacts(dir, kern); err == nil {
		a.Reused = true
		return a, nil
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if a, err := loadArtefacts(dir, kern); err == nil {
		a.Reused = true
		return a, nil
	}
	// Under the lock, leftovers of interrupted runs are garbage.
	os.RemoveAll(dir)
	if old, _ := filepath.Glob(filepath.Join(dumpsDir, ".tmp-"+key+"-*")); len(old) > 0 {
		for _, o := range old {
			os.RemoveAll(o)
		}
	}
	tmp, err := os.MkdirTemp(dumpsDir, ".tmp-"+key+"-")
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()

	// A boot under TCG or QEMU's dump can fail for reasons of the moment
	// (a guest that never reaches its prompt, a dump that QEMU ends
	// early); such a failure is logged and the boot tried once more.
	g, dumpTime, err := bootAndDump(ctx, tmp, kern, spec, cacheDir)
	if err != nil && ctx.Err() == nil {
		first := err
		logf(ctx, "booting and dumping %s failed (%v); once more", key, first)
		if ents, _ := os.ReadDir(tmp); ents != nil {
			for _, e := range ents {
				os.RemoveAll(filepath.Join(tmp, e.Name()))
			}
		}
		if g, dumpTime, err = bootAndDump(ctx, tmp, kern, spec, cacheDir); err != nil {
			err = fmt.Errorf("%w (and on the first try: %v)", err, first)
		}
	}
	if err != nil {
		return nil, err
	}
	a := &Artefacts{Key: key, Spec: spec, Kernel: kern, QEMUArgs: g.Args, BootTime: g.BootTime, DumpTime: dumpTime}
	if err := writeJSON(filepath.Join(tmp, artefactsJSON), a); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	done = true
	return loadArtefacts(dir, kern)
}

func loadArtefacts(dir string, kern *Kernel) (*Artefacts, error) {
	b, err := os.ReadFile(filepath.Join(dir, artefactsJSON))
	if err != nil {
		return nil, err
	}
	a := new(Artefacts)
	if err := json.Unmarshal(b, a); err != nil {
		return nil, err
	}
	a.Dir = dir
	a.Dump = filepath.Join(dir, dumpName)
	a.FactsJSON = filepath.Join(dir, factsName)
	a.VMCOREINFO = filepath.Join(dir, vmcoreinfoTxt)
	a.SerialLog = filepath.Join(dir, serialName)
	if a.Spec.KdumpFormat != "" {
		a.Kdump = filepath.Join(dir, kdumpName)
		if _, err := os.Stat(a.Kdump); err != nil {
			return nil, err
		}
	}
	a.Kernel = kern
	a.Vmlinux = kern.Vmlinux
	a.SystemMap = kern.SystemMap
	fb, err := os.ReadFile(a.FactsJSON)
	if err != nil {
		return nil, err
	}
	a.Facts = new(Facts)
	if err := json.Unmarshal(fb, a.Facts); err != nil {
		return nil, err
	}
	if _, err := os.Stat(a.Dump); err != nil {
		return nil, err
	}
	return a, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
