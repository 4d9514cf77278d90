//go:build e2e

// End-to-end tests of what ldx does with a debug vmlinux, on real Debian
// 6.1 and 6.12 guests and their -dbg vmlinux: verify --vmlinux passes on
// matching pairs, in every input form, and names the mismatch when the
// vmlinux is another kernel's.
//
//	go test -tags e2e -run TestVmlinuxE2E -v ./cmd/ldx/
package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"ldx/elfcore/vmlinux"
	"ldx/kmod/kmodtest/guest"
)

// vmlinuxScenarios are analysisScenarios' four main guests (their dumps
// are cached already): 6.1 and 6.12, 4- and 5-level paging, KASLR.
var vmlinuxScenarios = analysisScenarios[:4]

type verifyJSON struct {
	Checks []struct {
		ID, Status, Found string
	}
	ExitCode int `json:"exit_code"`
}

func verifyV(t *testing.T, args ...string) (verifyJSON, int) {
	t.Helper()
	out, errs, code := ldx(append([]string{"verify", "--json"}, args...)...)
	var r verifyJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("ldx verify %v: exit %d, %v\nstderr: %s", args, code, err, errs)
	}
	return r, code
}

func TestVmlinuxE2E(t *testing.T) {
	ctx := guest.WithLog(context.Background(), t.Logf)
	arts := map[string]*guest.Artefacts{}
	for _, sc := range vmlinuxScenarios {
		art, err := guest.Prepare(ctx, e2eCacheDir(), sc.spec)
		if err != nil {
			t.Fatalf("preparing %s: %v", sc.name, err)
		}
		arts[sc.name] = art
	}
	other := map[string]string{} // a vmlinux of the other series, for the mismatch
	for _, sc := range vmlinuxScenarios {
		for _, sc2 := range vmlinuxScenarios {
			if sc2.spec.Kernel.Series != sc.spec.Kernel.Series {
				other[sc.name] = arts[sc2.name].Vmlinux
			}
		}
	}
	for _, sc := range vmlinuxScenarios {
		t.Run(sc.name, func(t *testing.T) {
			art := arts[sc.name]
			names, inputs := analysisInputs(t, art)
			for _, name := range names {
				if name == "livedump-device" {
					continue // verify reads the raw device as it is: its cut notes are K-1, not a vmlinux question
				}
				r, _ := verifyV(t, "--vmlinux", art.Vmlinux, inputs[name])
				got := 0
				for _, c := range r.Checks {
					if !strings.HasPrefix(c.ID, "V") {
						continue
					}
					got++
					if c.Status != "pass" {
						t.Errorf("%s: %s %s: %s", name, c.ID, c.Status, c.Found)
					} else {
						t.Logf("e2e_vmlinux %s %s: %s %s", sc.name, name, c.ID, c.Found)
					}
				}
				if got != 7 {
					t.Errorf("%s: %d V checks, want 7", name, got)
				}
			}
			// Another kernel's vmlinux: fatal, and the mismatch named.
			wrong := other[sc.name]
			wv, err := vmlinux.Open(wrong)
			if err != nil {
				t.Fatal(err)
			}
			defer wv.Close()
			wrel, _ := wv.Release()
			r, code := verifyV(t, "--vmlinux", wrong, inputs["ldx-vmcore-of-livedump-device"])
			if code != exitFatal {
				t.Errorf("wrong vmlinux: exit %d, want %d", code, exitFatal)
			}
			want := map[string]string{"V1": "BUILD-ID=", "V2": wrel, "V3": "differ", "V4": "differ", "V5": "differ"}
			for _, c := range r.Checks {
				if w, ok := want[c.ID]; ok {
					if c.Status != "fail" || !strings.Contains(c.Found, w) {
						t.Errorf("wrong vmlinux: %s %s %q, want a failure naming %q", c.ID, c.Status, c.Found, w)
					}
					t.Logf("e2e_vmlinux_mismatch %s: %s %s", sc.name, c.ID, c.Found)
					delete(want, c.ID)
				}
			}
			if len(want) > 0 {
				t.Errorf("wrong vmlinux: checks not reported: %v", want)
			}
		})
	}
}
