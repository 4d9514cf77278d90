package guest

import (
	"reflect"
	"strings"
	"testing"
)

// The pin table itself: one entry per series the e2e tests boot, each
// consistent with Debian's naming.
func TestPinsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Pins {
		id := p.Series + "/" + p.Flavour
		if seen[id] {
			t.Errorf("two pins for %s", id)
		}
		seen[id] = true
		if !strings.HasPrefix(p.Package, "linux-image-") || !strings.HasSuffix(p.Package, "-"+p.Flavour) {
			t.Errorf("%s: image package %q is not linux-image-…-%s", id, p.Package, p.Flavour)
		}
		if p.Dbg != p.Package+"-dbg" {
			t.Errorf("%s: dbg package %q, want %q", id, p.Dbg, p.Package+"-dbg")
		}
		if !strings.HasPrefix(p.Version, p.Series+".") {
			t.Errorf("%s: version %q is not of series %s", id, p.Version, p.Series)
		}
		if !strings.HasPrefix(strings.TrimPrefix(p.Package, "linux-image-"), p.Series+".") {
			t.Errorf("%s: package %q is not of series %s", id, p.Package, p.Series)
		}
	}
	for _, want := range []string{"6.1/cloud-amd64", "6.12/cloud-amd64"} {
		if !seen[want] {
			t.Errorf("no pin for %s", want)
		}
	}
}

func TestPinFor(t *testing.T) {
	pins := []Pin{
		{Series: "6.1", Flavour: "cloud-amd64", Package: "linux-image-6.1.0-57-cloud-amd64", Dbg: "linux-image-6.1.0-57-cloud-amd64-dbg", Version: "6.1.192-3"},
		{Series: "6.12", Flavour: "cloud-amd64", Package: "linux-image-6.12.118+deb12-cloud-amd64", Dbg: "linux-image-6.12.118+deb12-cloud-amd64-dbg", Version: "6.12.118-1~deb12u1"},
	}
	tests := []struct {
		name string
		spec KernelSpec
		want string // pinned version, "" for none
	}{
		{"zero value is 6.1 cloud", KernelSpec{}, "6.1.192-3"},
		{"6.1", KernelSpec{Series: "6.1"}, "6.1.192-3"},
		{"6.12", KernelSpec{Series: "6.12"}, "6.12.118-1~deb12u1"},
		{"6.12 cloud explicit", KernelSpec{Series: "6.12", Flavour: "cloud-amd64"}, "6.12.118-1~deb12u1"},
		{"other flavour", KernelSpec{Series: "6.1", Flavour: "amd64"}, ""},
		{"other series", KernelSpec{Series: "6.6"}, ""},
		{"explicit package", KernelSpec{Package: "linux-image-6.1.0-56-cloud-amd64"}, ""},
		{"explicit version", KernelSpec{Series: "6.1", Version: "6.1.192-2"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := pinFor(pins, tt.spec)
			if got := p.Version; ok != (tt.want != "") || got != tt.want {
				t.Errorf("pinFor(%+v) = %q, %v; want %q", tt.spec, got, ok, tt.want)
			}
		})
	}
}

// The fallback decision, given what the archive serves.
func TestPinServed(t *testing.T) {
	p := Pin{Series: "6.1", Flavour: "cloud-amd64", Package: "linux-image-6.1.0-57-cloud-amd64", Dbg: "linux-image-6.1.0-57-cloud-amd64-dbg", Version: "6.1.192-3"}
	tests := []struct {
		name   string
		served map[string][]string
		ok     bool
		whyHas []string
		whyNot []string
	}{
		{"both served", map[string][]string{p.Package: {"6.1.192-3"}, p.Dbg: {"6.1.192-3"}}, true, nil, nil},
		{"among others", map[string][]string{p.Package: {"6.1.192-4", "6.1.192-3"}, p.Dbg: {"6.1.192-4", "6.1.192-3"}}, true, nil, nil},
		{"image moved on", map[string][]string{p.Package: {"6.1.192-4"}, p.Dbg: {"6.1.192-3"}}, false,
			[]string{p.Package + "=6.1.192-3 (archive has 6.1.192-4)"}, []string{p.Dbg}},
		{"dbg gone", map[string][]string{p.Package: {"6.1.192-3"}}, false,
			[]string{p.Dbg + "=6.1.192-3 (archive has nothing)"}, []string{p.Package + "="}},
		{"ABI bumped, both gone", map[string][]string{"linux-image-6.1.0-58-cloud-amd64": {"6.1.200-1"}}, false,
			[]string{p.Package + "=6.1.192-3 (archive has nothing)", p.Dbg + "=6.1.192-3 (archive has nothing)"}, nil},
		{"nothing", nil, false, []string{"archive has nothing"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := pinServed(p, tt.served)
			if ok != tt.ok {
				t.Fatalf("pinServed = %v (%q), want %v", ok, why, tt.ok)
			}
			if ok && why != "" {
				t.Errorf("served, but why = %q", why)
			}
			for _, s := range tt.whyHas {
				if !strings.Contains(why, s) {
					t.Errorf("why %q lacks %q", why, s)
				}
			}
			for _, s := range tt.whyNot {
				if strings.Contains(why, s) {
					t.Errorf("why %q names %q, which is served", why, s)
				}
			}
		})
	}
}

func TestParseMadison(t *testing.T) {
	out := `linux-image-6.1.0-57-cloud-amd64 |  6.1.192-3 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-6.1.0-57-cloud-amd64 |  6.1.192-3 | http://mirror.example/debian-security bookworm-security/main amd64 Packages
linux-image-6.1.0-57-cloud-amd64-dbg |  6.1.192-3 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-6.12.118+deb12-cloud-amd64 | 6.12.118-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-6.12.118+deb12-cloud-amd64 | 6.12.117-1~deb12u1 | http://deb.debian.org/debian bookworm/main amd64 Packages
N: Unable to locate package nonsense
`
	want := map[string][]string{
		"linux-image-6.1.0-57-cloud-amd64":       {"6.1.192-3"},
		"linux-image-6.1.0-57-cloud-amd64-dbg":   {"6.1.192-3"},
		"linux-image-6.12.118+deb12-cloud-amd64": {"6.12.118-1~deb12u1", "6.12.117-1~deb12u1"},
	}
	if got := parseMadison(out); !reflect.DeepEqual(got, want) {
		t.Errorf("parseMadison:\n got %v\nwant %v", got, want)
	}
	if got := parseMadison(""); len(got) != 0 {
		t.Errorf("parseMadison(\"\") = %v", got)
	}
}

// The lines a run prints: the kernel it uses, and the warning when the pin
// is gone. Makefile's e2e target greps for the "guest: " prefix announce adds.
func TestKernelLines(t *testing.T) {
	p := Pins[0]
	kern := &Kernel{Package: p.Package, Version: p.Version}
	if got, want := kernelLine(KernelSpec{Series: p.Series}, kern, choicePinned), "kernel "+p.Series+": "+p.Package+" "+p.Version+" (pinned)"; got != want {
		t.Errorf("kernelLine = %q, want %q", got, want)
	}
	if got := kernelLine(KernelSpec{Package: "linux-image-x"}, &Kernel{Package: "linux-image-x", Version: "1"}, choiceRequested); !strings.HasPrefix(got, "kernel custom: linux-image-x 1 (") {
		t.Errorf("kernelLine for an explicit package = %q", got)
	}
	w := pinFallbackWarning(p, "gone", "linux-image-new", "9.9-1")
	for _, s := range []string{"WARNING", "pinned " + p.Package + "=" + p.Version + " is no longer served", "newest of series " + p.Series + ": linux-image-new 9.9-1"} {
		if !strings.Contains(w, s) {
			t.Errorf("warning %q lacks %q", w, s)
		}
	}
}

// A guest's dump is cached under a key naming the kernel's release (the
// package name without linux-image-) and its Debian version.
func TestDumpKeyHasKernelVersion(t *testing.T) {
	spec, mib, err := Spec{Kernel: KernelSpec{Series: "6.1"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	kernels := []*Kernel{
		{Package: "linux-image-6.1.0-57-cloud-amd64", Release: "6.1.0-57-cloud-amd64", Version: "6.1.192-3"},
		{Package: "linux-image-6.1.0-57-cloud-amd64", Release: "6.1.0-57-cloud-amd64", Version: "6.1.192-4"},
		{Package: "linux-image-6.1.0-58-cloud-amd64", Release: "6.1.0-58-cloud-amd64", Version: "6.1.192-4"},
		{Package: "linux-image-6.1.0-58-cloud-amd64", Release: "6.1.0-58-cloud-amd64", Version: "1:6.1.192-4"},
	}
	keys := map[string]bool{}
	for _, k := range kernels {
		key := spec.key(k, mib)
		if !strings.Contains(key, k.Release+"_"+escapeVersion(k.Version)+"_") {
			t.Errorf("key %q lacks release and version of %s %s", key, k.Package, k.Version)
		}
		if strings.ContainsAny(key, ":/") {
			t.Errorf("key %q is not a plain file name", key)
		}
		if keys[key] {
			t.Errorf("key %q shared by two kernels", key)
		}
		keys[key] = true
	}
}
