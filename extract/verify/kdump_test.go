package verify

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"ldx/elfcore/kdump"
)

// kdumpFile is a minimal kdump-compressed file: 64 pfns, pfns 1 and 2
// dumpable (raw), VMCOREINFO in the sub-header.
func kdumpFile(vmci string, physBase uint64) []byte {
	const ps = 4096
	var h kdump.RawHeader
	copy(h.Signature[:], kdump.SigKdump)
	h.HeaderVersion, h.BlockSize, h.SubHdrSize, h.NrCPUs = 6, ps, 1, 1
	h.BitmapBlocks = kdump.BitmapBlocksFor(64, ps)
	kdump.SetUtsField(&h.Utsname.Release, "6.1.0-test")
	sub := kdump.RawSubHeader{PhysBase: physBase, DumpLevel: 31, MaxMapnr64: 64, OffsetVmcoreinfo: ps + kdump.SubHeaderSize, SizeVmcoreinfo: uint64(len(vmci))}
	b := make([]byte, 2*ps)
	copy(b, h.Encode())
	copy(b[ps:], sub.Encode())
	copy(b[sub.OffsetVmcoreinfo:], vmci)
	bm := make([]byte, int(h.BitmapBlocks)*ps)
	bm[0] = 0xff
	bm[len(bm)/2] = 0x6
	b = append(b, bm...)
	data := int64(len(b)) + 2*kdump.PageDescSize
	for i := range 2 {
		b = kdump.AppendPageDesc(b, kdump.RawPageDesc{Offset: data + int64(i)*ps, Size: ps})
	}
	return append(b, bytes.Repeat([]byte{0xaa}, 2*ps)...)
}

func TestKdumpChecks(t *testing.T) {
	vmci := "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nNUMBER(phys_base)=0x1000000\n"
	for _, tc := range []struct {
		name string
		file []byte
		want map[ID]Status
	}{
		{"good", kdumpFile(vmci, 0x1000000), map[ID]Status{H1: Pass, H2: Pass, H3: Pass, H4: Pass, H5: Pass}},
		{"qemu phys_base guess", kdumpFile(vmci, 0xfffffffa7aefabf8), map[ID]Status{H1: Pass, H4: Fail}},
		{"other release", kdumpFile(strings.Replace(vmci, "6.1.0", "6.12.0", 1), 0x1000000), map[ID]Status{H2: Fail}},
		{"cut data", kdumpFile(vmci, 0x1000000)[:5*4096+100], map[ID]Status{H1: Pass, H3: Fail}},
		{"bad block size", func() []byte { b := kdumpFile(vmci, 0); b[428] = 1; return b }(), map[ID]Status{H1: Fail, H2: Skipped}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Reader(context.Background(), tc.name, bytes.NewReader(tc.file), int64(len(tc.file)), Options{Deep: true})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Format != "kdump-compressed" {
				t.Errorf("format %q", rep.Format)
			}
			for id, st := range tc.want {
				if c := rep.Check(id); c == nil || c.Status != st {
					t.Errorf("%s: %+v, want %v", id, c, st)
				}
			}
			for _, c := range rep.Checks {
				if !strings.HasPrefix(string(c.ID), "H") {
					t.Errorf("check %s on a kdump file", c.ID)
				}
			}
		})
	}
}
