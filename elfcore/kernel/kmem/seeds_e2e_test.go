//go:build e2e

package kmem_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"ldx/elfcore/kernel/kmem"
	"ldx/extract/dump"
	"ldx/kmod/kmodtest/guest"
)

// recorder records the 8-byte words a page-table walk reads.
type recorder struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	words map[uint64]uint64
}

func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	if len(p) == 8 && n == 8 {
		r.words[uint64(off)] = binary.LittleEndian.Uint64(p)
	}
	return n, err
}

// TestWriteFuzzSeeds writes testdata/fuzz/FuzzTranslate seeds: the
// page-table words real walks read in Debian 6.1 guests with 4- and
// 5-level paging and KASLR, for an address in the kernel image, the
// direct map, vmalloc and vmemmap, in FuzzTranslate's input layout.
//
//	LDX_WRITE_SEEDS=1 go test -tags e2e -run TestWriteFuzzSeeds ./elfcore/kernel/kmem/
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("LDX_WRITE_SEEDS") == "" {
		t.Skip("set LDX_WRITE_SEEDS=1")
	}
	for _, la57 := range []bool{false, true} {
		art, err := guest.Prepare(context.Background(), os.Getenv("LDX_CACHE"), guest.Spec{Kernel: guest.KernelSpec{Series: "6.1"}, Memory: "1G", CPUs: 4, LA57: la57})
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
		lay := m.Layout(d.VMCOREINFO, d.PageOffset)
		uts, _ := d.VMCOREINFO.Symbol("init_uts_ns")
		for name, va := range map[string]uint64{"image": uts, "direct": d.PageOffset + 0x1000123, "vmalloc": lay.VmallocStart, "vmemmap": lay.VmemmapStart + 0x1000*64} {
			rec := &recorder{r: d.Phys, words: map[uint64]uint64{}}
			rm, _ := kmem.New(rec, m.Params())
			if _, err := rm.Translate(va); err != nil {
				t.Fatalf("%s %#x: %v", name, va, err)
			}
			b := binary.LittleEndian.AppendUint64(nil, va)
			flags := byte(0)
			if la57 {
				flags = 1
			}
			b = append(b, flags)
			b = binary.LittleEndian.AppendUint64(b, m.Root())
			for pa, v := range rec.words {
				b = binary.LittleEndian.AppendUint64(b, pa)
				b = binary.LittleEndian.AppendUint64(b, v)
			}
			f := filepath.Join("testdata", "fuzz", "FuzzTranslate", fmt.Sprintf("real-6_1-l%d-%s", map[bool]int{false: 4, true: 5}[la57], name))
			if err := os.WriteFile(f, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d.Close()
	}
}
