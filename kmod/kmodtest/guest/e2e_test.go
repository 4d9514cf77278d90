package guest

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestE2EPrepare boots a real Debian 6.1 cloud kernel under QEMU and dumps
// it (or reuses the cached dump). It needs apt, dpkg, qemu-system-x86_64,
// gcc and a few minutes the first time, so it runs only with LDX_E2E=1.
func TestE2EPrepare(t *testing.T) {
	if os.Getenv("LDX_E2E") != "1" {
		t.Skip("set LDX_E2E=1 to boot a real kernel under QEMU")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ctx = WithLog(ctx, t.Logf)
	a, err := Prepare(ctx, "", Spec{Kernel: KernelSpec{Series: "6.1"}, CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dump %s (reused %v), kernel %s %s (%s)", a.Dump, a.Reused, a.Kernel.Package, a.Kernel.Version, a.Kernel.Choice)

	head := make([]byte, 4)
	f, err := os.Open(a.Dump)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Read(head)
	st, _ := f.Stat()
	f.Close()
	if err != nil || !bytes.Equal(head, []byte("\x7fELF")) {
		t.Fatalf("dump does not start with the ELF magic: %q %v", head, err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("dump mode %v, want 0600", st.Mode().Perm())
	}

	vmci, err := ReadVMCOREINFO(a.Dump)
	if err != nil {
		t.Fatal(err)
	}
	fa := a.Facts
	if rel, _ := VMCOREINFOValue(vmci, "OSRELEASE"); rel != fa.Release || rel != a.Kernel.Release {
		t.Errorf("VMCOREINFO OSRELEASE %q, facts %q, kernel %q", rel, fa.Release, a.Kernel.Release)
	}
	if !fa.FwCfgVMCOREINFO || fa.VMCOREINFO.Addr == 0 {
		t.Errorf("vmcoreinfo facts: %+v fw_cfg %v", fa.VMCOREINFO, fa.FwCfgVMCOREINFO)
	}
	if fa.NumPresent != 2 || fa.NumOnline != 2 || len(fa.CrashNotes) != 2 {
		t.Errorf("CPUs: present %d online %d crash_notes %d, want 2", fa.NumPresent, fa.NumOnline, len(fa.CrashNotes))
	}
	if len(fa.SystemRAM) == 0 {
		t.Error("no System RAM in iomem")
	}
	for _, s := range []string{"_text", "_stext", "_end", "page_offset_base", "phys_base", "vmcoreinfo_note", "init_uts_ns", "max_pfn"} {
		if fa.Symbol(s) == 0 {
			t.Errorf("no kallsyms value for %s", s)
		}
	}
	// KERNELOFFSET is the text KASLR shift the guest reported via kallsyms.
	if off, ok := VMCOREINFOValue(vmci, "KERNELOFFSET"); !ok || off != strings.TrimPrefix(Hex(fa.KASLROffset()).String(), "0x") {
		t.Errorf("KERNELOFFSET %q, kallsyms _text gives %#x", off, fa.KASLROffset())
	}

	want := defaultMarkers(fa.Nonce)
	if !slices.Equal(fa.Markers, want) {
		t.Errorf("markers read back from the guest's printk ring:\n%q\nwant\n%q", fa.Markers, want)
	}
	for _, name := range DefaultProcesses {
		if fa.PID(name) <= 1 {
			t.Errorf("process %s missing from facts %+v", name, fa.Processes)
		}
	}
}
