package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestVMCOREINFOGenerateUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no --vmlinux", []string{"vmcoreinfo", "generate"}, exitUsage, "--vmlinux VMLINUX is required"},
		{"an argument", []string{"vmcoreinfo", "generate", "--vmlinux", psFixture, "vmcore"}, exitUsage, "accepts 0 arg(s)"},
		{"unknown flag", []string{"vmcoreinfo", "generate", "--vmlinx", psFixture}, exitUsage, "unknown flag"},
		{"no such vmlinux", []string{"vmcoreinfo", "generate", "--vmlinux", "/nonexistent/vmlinux"}, exitBadInput, "--vmlinux"},
		{"not a dump", []string{"vmcoreinfo", "generate", "--vmlinux", psFixture, "--dump", psFixture}, exitBadInput, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := ldx(tc.args...)
			if code != tc.code || out != "" || !strings.Contains(errs, tc.err) {
				t.Errorf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, tc.code, out, errs, tc.err)
			}
		})
	}
}

// The fixture vmlinux has a few of the kernel's types: what it gives is
// written in the kernel's order, what it lacks is listed, and the exit
// code says that keys the kernel emits are missing.
func TestVMCOREINFOGenerate(t *testing.T) {
	v := openFixture(t, psFixture)
	t.Run("no dump", func(t *testing.T) {
		out, errs, code := ldx("vmcoreinfo", "generate", "--vmlinux", psFixture)
		if code != exitFailure {
			t.Errorf("exit %d, want %d (the fixture lacks struct page …)", code, exitFailure)
		}
		for _, want := range []string{"OSRELEASE=6.1.0-ldx-ps\nBUILD-ID=" + fmt.Sprintf("%x", v.BuildID()) + "\nPAGESIZE=4096\n", "SYMBOL(_stext)=ffffffff81000000\n", "KERNELOFFSET=0\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		for _, want := range []string{"KERNELOFFSET=0 is assumed", "not written: SIZE(page): the vmlinux does not give it", "not written: NUMBER(phys_base): phys_base holds the running kernel's value: needs a dump", "not written: CRASHTIME", "could not be generated"} {
			if !strings.Contains(errs, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errs)
			}
		}
		if strings.Contains(out, "not written") || strings.Contains(out, "ldx:") {
			t.Errorf("stdout holds more than the text:\n%s", out)
		}
	})
	raw := psDump(t, v, nil, nil)
	var pb int64 = tPhysBase
	physBase := uint64(pb)
	t.Run("dump", func(t *testing.T) {
		out, errs, code := ldx("vmcoreinfo", "generate", "--vmlinux", psFixture, "--dump", raw, "--json")
		if code != exitFailure {
			t.Errorf("exit %d, want %d", code, exitFailure)
		}
		var rep struct {
			Release string
			Runtime struct {
				Source       string
				KernelOffset string `json:"kernel_offset"`
				PhysBase     string `json:"phys_base"`
			}
			Text    string
			Lines   []struct{ Key, Value, Origin, Source string }
			Unknown []struct{ Key, Reason, Kind string }
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("--json: %v\n%s\n%s", err, out, errs)
		}
		if rep.Runtime.Source != "vmcoreinfo" || rep.Runtime.KernelOffset != fmt.Sprintf("%#x", uint64(tTextVirt-0xffffffff81000000)) || rep.Runtime.PhysBase != signedHex(physBase) {
			t.Errorf("runtime = %+v", rep.Runtime)
		}
		if !strings.Contains(rep.Text, fmt.Sprintf("SYMBOL(_stext)=%x\n", uint64(tTextVirt))) || !strings.Contains(rep.Text, fmt.Sprintf("NUMBER(phys_base)=%d\n", tPhysBase)) {
			t.Errorf("text lacks the dump's _stext or phys_base:\n%s", rep.Text)
		}
		for _, l := range rep.Lines {
			if l.Source == "" || l.Origin == "" {
				t.Errorf("%s: no origin or source", l.Key)
			}
		}
		kinds := map[string]string{}
		for _, u := range rep.Unknown {
			kinds[u.Key] = u.Kind
		}
		if kinds["CRASHTIME"] != "crash-time" || kinds["SIZE(page)"] != "vmlinux" || kinds["NUMBER(phys_base)"] != "" {
			t.Errorf("unknown kinds = %v", kinds)
		}
	})
	t.Run("wrong vmlinux", func(t *testing.T) {
		other := psDump(t, v, func(s string) string {
			return strings.Replace(s, "BUILD-ID="+fmt.Sprintf("%x", v.BuildID()), "BUILD-ID=00112233445566778899aabbccddeeff00112233", 1)
		}, nil)
		out, errs, code := ldx("vmcoreinfo", "generate", "--vmlinux", psFixture, "--dump", other)
		if code != exitBadInput || out != "" || !strings.Contains(errs, "is not the dumped kernel's") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
		}
	})
}
