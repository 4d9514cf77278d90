package main

import (
	"errors"
	"strings"
	"testing"

	"ldx/vmcoreinfo"
)

func TestParseAddrKallsyms(t *testing.T) {
	info, err := vmcoreinfo.Parse([]byte("SYMBOL(init_uts_ns)=ffffffff82a1c0a0\n"))
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	lookup := func(name string) (uint64, error) {
		asked++
		if name == "jiffies" {
			return 0xffffffff82a079c0, nil
		}
		return 0, errors.New(name + " is not in the kernel's kallsyms table either")
	}
	for _, tc := range []struct {
		in      string
		want    uint64
		err     string
		lookups int
	}{
		{in: "init_uts_ns+0x86", want: 0xffffffff82a1c126},
		{in: "ffffffff81000000", want: 0xffffffff81000000},
		{in: "jiffies", want: 0xffffffff82a079c0, lookups: 1},
		{in: "jiffies+8", want: 0xffffffff82a079c8, lookups: 1},
		{in: "SYMBOL(jiffies)", err: "SYMBOL(jiffies) is not there", lookups: 0},
		{in: "nosuch", err: "nosuch is not in the kernel's kallsyms table", lookups: 1},
	} {
		asked = 0
		got, err := parseAddr(info, tc.in, lookup)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%s = %#x, %v; want %#x", tc.in, got, err, tc.want)
		}
		if asked != tc.lookups {
			t.Errorf("%s: kallsyms asked %d times, want %d", tc.in, asked, tc.lookups)
		}
	}
}

// The synthetic test kernel's VMCOREINFO (as a 5.x kernel's) has no
// kallsyms keys: syms says so, read still resolves VMCOREINFO's symbols.
func TestSymsWithoutKallsyms(t *testing.T) {
	_, vmcore, _ := testInputs(t)
	_, errs, code := ldx("syms", vmcore)
	if code != exitFailure || !strings.Contains(errs, "VMCOREINFO does not locate the kallsyms table") || !strings.Contains(errs, "Linux 6.0") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	_, errs, code = ldx("read", vmcore, "no_such_symbol", "8")
	if code != exitUsage || !strings.Contains(errs, "VMCOREINFO does not locate the kallsyms table") {
		t.Errorf("read of a name without kallsyms: exit %d, stderr %q", code, errs)
	}
	if _, errs, code := ldx("syms", vmcore, "[x"); code != exitUsage {
		t.Errorf("a malformed glob: exit %d, stderr %q", code, errs)
	}
}
