package guest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

// Pin is the exact Debian kernel a series of the test bed uses.
type Pin struct {
	Series  string // "6.1", "6.12"
	Flavour string // "cloud-amd64"
	Package string // concrete image package
	Dbg     string // its -dbg package (the debug vmlinux)
	Version string // Debian version of both
}

// Pins are the kernels the e2e tests boot, one per series: the only place
// that names them. A run fetches exactly these versions (apt-get download
// pkg=version); if the archive no longer serves one, the run warns loudly
// and falls back to the newest kernel of the same series, so it still
// passes. To move to a newer kernel, change the entry here (see
// `apt-cache madison linux-image-cloud-amd64 linux-image-6.12-cloud-amd64`
// after apt-get update for what the archive serves).
var Pins = []Pin{
	{
		Series:  "6.1",
		Flavour: "cloud-amd64",
		Package: "linux-image-6.1.0-57-cloud-amd64",
		Dbg:     "linux-image-6.1.0-57-cloud-amd64-dbg",
		Version: "6.1.192-3",
	},
	{
		Series:  "6.12",
		Flavour: "cloud-amd64",
		Package: "linux-image-6.12.118+deb12-cloud-amd64",
		Dbg:     "linux-image-6.12.118+deb12-cloud-amd64-dbg",
		Version: "6.12.118-1~deb12u1",
	},
}

// pinFor returns the pin for a spec that names only a series and flavour,
// and false for specs without one (other flavours, or an explicit package
// or version, which the caller chose on purpose).
func pinFor(pins []Pin, k KernelSpec) (Pin, bool) {
	k = k.withDefaults()
	if k.Package != "" || k.Version != "" {
		return Pin{}, false
	}
	for _, p := range pins {
		if p.Series == k.Series && p.Flavour == k.Flavour {
			return p, true
		}
	}
	return Pin{}, false
}

// pinServed says whether the archive (as apt's lists describe it: package
// name to the versions it serves) still has both the pinned image and its
// -dbg package at the pinned version; if not, why not, for the warning.
func pinServed(p Pin, served map[string][]string) (bool, string) {
	var missing []string
	for _, pkg := range []string{p.Package, p.Dbg} {
		if !slices.Contains(served[pkg], p.Version) {
			have := "nothing"
			if len(served[pkg]) > 0 {
				have = strings.Join(served[pkg], ", ")
			}
			missing = append(missing, fmt.Sprintf("%s=%s (archive has %s)", pkg, p.Version, have))
		}
	}
	if len(missing) == 0 {
		return true, ""
	}
	return false, strings.Join(missing, "; ")
}

// parseMadison reads `apt-cache madison` output ("pkg | version | source"
// lines) into package name → served versions, in apt's order.
func parseMadison(out string) map[string][]string {
	served := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) < 3 {
			continue
		}
		pkg, ver := strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
		if pkg == "" || ver == "" || slices.Contains(served[pkg], ver) {
			continue
		}
		served[pkg] = append(served[pkg], ver)
	}
	return served
}

// aptServed asks the local apt-cache which versions of pkgs it can download.
func aptServed(ctx context.Context, pkgs ...string) (map[string][]string, error) {
	out, err := run(ctx, "", "apt-cache", append([]string{"madison"}, pkgs...)...)
	if err != nil {
		return nil, err
	}
	return parseMadison(string(out)), nil
}

// How a run came to use a kernel, for the line it prints.
const (
	choicePinned    = "pinned"
	choiceRequested = "requested package/version"
	choiceUnpinned  = "no pin for this series/flavour: newest of series"
)

// pinFallbackWarning is the loud line of a run whose pin is gone.
func pinFallbackWarning(p Pin, why string, image, version string) string {
	return fmt.Sprintf("WARNING pinned %s=%s is no longer served (%s); using newest of series %s: %s %s — update Pins in kernels.go",
		p.Package, p.Version, why, p.Series, image, version)
}

// kernelLine is the line every run prints per kernel it uses.
func kernelLine(k KernelSpec, kern *Kernel, choice string) string {
	series := k.withDefaults().Series
	if series == "" {
		series = "custom"
	}
	return fmt.Sprintf("kernel %s: %s %s (%s)", series, kern.Package, kern.Version, choice)
}

// announced holds the lines already written to stderr by this process.
var announced sync.Map

// announce logs msg through the context's log function every time and
// writes it to stderr, prefixed "guest: ", once per process: the
// pinned-kernel lines and the fallback warning must reach a log even when
// the caller's log function is quiet (a passing test's t.Logf).
func announce(ctx context.Context, msg string) {
	logf(ctx, "%s", msg)
	if _, dup := announced.LoadOrStore(msg, true); !dup {
		fmt.Fprintln(os.Stderr, "guest: "+msg)
	}
}
