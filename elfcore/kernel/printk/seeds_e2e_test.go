//go:build e2e

package printk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ldx/extract/dump"
	"ldx/kmod/kmodtest/guest"
)

// TestWriteFuzzSeeds writes testdata/fuzz/FuzzRead seeds made from real
// kernel logs: the newest records of Debian 6.1 and 6.12 guests' rings
// (text, timestamps, caller ids as the kernel stored them), refilled into
// small rings of both formats so that a seed stays a few KiB — one of
// them wrapped. Run it after changing the fuzz input layout:
//
//	LDX_WRITE_SEEDS=1 go test -tags e2e -run TestWriteFuzzSeeds ./elfcore/kernel/printk/
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("LDX_WRITE_SEEDS") == "" {
		t.Skip("set LDX_WRITE_SEEDS=1")
	}
	cache := os.Getenv("LDX_CACHE")
	for _, series := range []string{"6.1", "6.12"} {
		art, err := guest.Prepare(context.Background(), cache, guest.Spec{Kernel: guest.KernelSpec{Series: series}, Memory: "1G", CPUs: 4})
		if err != nil {
			t.Fatal(err)
		}
		d, err := dump.Open(context.Background(), art.Dump, dump.Options{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := d.Kmem()
		if err != nil {
			t.Fatal(err)
		}
		log, err := Read(m, d.VMCOREINFO, nil)
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		recs := log.Records[len(log.Records)-12:]
		seeds := map[string][]byte{}
		k := newKlog(3, 10)
		for _, r := range recs {
			k.add(string(r.Text[:min(len(r.Text), 200)]), r.TsNsec, r.Caller, stateFinal)
		}
		seeds["lockless"] = locklessBlob(k)
		k = newKlog(3, 9)
		for _, r := range append(recs, recs...) {
			k.add(string(r.Text[:min(len(r.Text), 120)]), r.TsNsec, r.Caller, stateFinal)
		}
		seeds["lockless-wrapped"] = locklessBlob(k)
		s := newSlog(1024)
		for _, r := range recs {
			s.add(string(r.Text[:min(len(r.Text), 200)]), "", r.TsNsec, r.Caller)
		}
		seeds["structured"] = structuredBlob(s)
		for name, b := range seeds {
			f := filepath.Join("testdata", "fuzz", "FuzzRead", "real-"+strings.ReplaceAll(series, ".", "_")+"-"+name)
			if err := os.WriteFile(f, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d bytes", f, len(b))
		}
	}
}
