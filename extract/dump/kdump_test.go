package dump_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kdump"
	. "ldx/extract/dump"
	"ldx/extract/verify/verifytest"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

const pageSize = 4096

// writeKdump writes d's memory from pfn 0 to the end of its RAM as a
// kdump-compressed file (pages stored raw), leaving out the pages in
// excluded, with the given sub-header phys_base.
func writeKdump(t *testing.T, d *Dump, excluded elfcore.Range, physBase uint64) string {
	t.Helper()
	maxPFN := d.RAM[len(d.RAM)-1].End / pageSize
	rel, _ := d.VMCOREINFO.OSRelease()
	mem := func(pfn uint64) []byte {
		if pa := pfn * pageSize; pa >= excluded.Start && pa < excluded.End {
			return nil
		}
		page := make([]byte, pageSize)
		if _, err := d.Memory.ReadAt(page, int64(pfn*pageSize)); err != nil {
			t.Fatal(err)
		}
		return page
	}
	path := filepath.Join(t.TempDir(), "dump.kdump")
	if err := os.WriteFile(path, encodeKdump(rel, d.Report.CPUs, d.VMCOREINFO.Bytes(), elfcore.EncodeNotes(d.Notes), maxPFN, physBase, mem), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// encodeKdump lays out a kdump-compressed file as makedumpfile does, every
// pfn below maxPFN RAM, mem(pfn) its page or nil when excluded.
func encodeKdump(rel string, cpus int, vmci, notes []byte, maxPFN, physBase uint64, mem func(pfn uint64) []byte) []byte {
	var h kdump.RawHeader
	copy(h.Signature[:], kdump.SigKdump)
	h.HeaderVersion, h.BlockSize, h.NrCPUs = 6, pageSize, int32(cpus)
	h.BitmapBlocks = kdump.BitmapBlocksFor(maxPFN, pageSize)
	kdump.SetUtsField(&h.Utsname.Release, rel)
	sub := kdump.RawSubHeader{PhysBase: physBase, DumpLevel: 31, MaxMapnr64: maxPFN}
	sub.OffsetVmcoreinfo = pageSize + kdump.SubHeaderSize
	sub.SizeVmcoreinfo = uint64(len(vmci))
	sub.OffsetNote = sub.OffsetVmcoreinfo + int64(len(vmci))
	sub.SizeNote = uint64(len(notes))
	subBlocks := (kdump.SubHeaderSize + len(vmci) + len(notes) + pageSize - 1) / pageSize
	h.SubHdrSize = int32(subBlocks)
	out := make([]byte, (1+subBlocks)*pageSize)
	copy(out, h.Encode())
	copy(out[pageSize:], sub.Encode())
	copy(out[sub.OffsetVmcoreinfo:], vmci)
	copy(out[sub.OffsetNote:], notes)
	half := int(h.BitmapBlocks) / 2 * pageSize
	bm := make([]byte, 2*half)
	var pages [][]byte
	for pfn := range maxPFN {
		bm[pfn/8] |= 1 << (pfn % 8)
		if p := mem(pfn); p != nil {
			bm[half+int(pfn/8)] |= 1 << (pfn % 8)
			pages = append(pages, p)
		}
	}
	out = append(out, bm...)
	data := int64(len(out) + len(pages)*kdump.PageDescSize)
	for i := range pages {
		out = kdump.AppendPageDesc(out, kdump.RawPageDesc{Offset: data + int64(i)*pageSize, Size: pageSize})
	}
	for _, p := range pages {
		out = append(out, p...)
	}
	return out
}

// FuzzAnalyseKdump: the kdump opener on damaged files never panics or
// hangs; what it cannot read is an error.
func FuzzAnalyseKdump(f *testing.F) {
	vmci := kmodtest.SyntheticVMCOREINFO("6.1.0-fuzz", 0xffffffff81000000, 0, false)
	seed := encodeKdump("6.1.0-fuzz", 1, vmci, nil, 40, 0, func(pfn uint64) []byte {
		if pfn%3 == 0 {
			return nil
		}
		p := make([]byte, pageSize)
		kmodtest.SyntheticPage(p, 1, pfn)
		return p
	})
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		fh, err := os.CreateTemp(dir, "in-*.kdump")
		if err != nil {
			t.Fatal(err)
		}
		path := fh.Name()
		defer os.Remove(path)
		_, err = fh.Write(b)
		if err := errors.Join(err, fh.Close()); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			d, err := Open(context.Background(), path, Options{})
			if err == nil {
				d.Close()
			}
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("opening a %d-byte kdump file takes more than 20 s", len(b))
		}
	})
}

// TestKdumpOpener: a kdump file made from a dump opens to the same model
// (RAM, kernel image, direct map, notes), a wrong sub-header phys_base is
// repaired and reported, and excluded pages are an ExcludedError through
// Phys but zeros through Memory (what extract writes).
func TestKdumpOpener(t *testing.T) {
	ctx := context.Background()
	// verifytest's synthetic kernel has page tables and kallsyms.
	image := filepath.Join(t.TempDir(), "device.img")
	if _, err := verifytest.WriteImage(image, 2, kmodtest.Run{Prepared: manifest.Zeroed, Manifest: &manifest.Manifest{}}); err != nil {
		t.Fatal(err)
	}
	ref, err := Open(ctx, image, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	excl := elfcore.Range{Start: 56 << 20, End: 56<<20 + 8*pageSize}
	path := writeKdump(t, ref, excl, 0xfffffffa7aefabf8)
	d, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Format != FormatKdump || d.Report.Format != FormatKdump {
		t.Errorf("format %q", d.Format)
	}
	if wantRAM := []elfcore.Range{{Start: 0, End: ref.RAM[len(ref.RAM)-1].End}}; !slices.Equal(d.RAM, wantRAM) || d.Image != ref.Image || d.ImageVirt != ref.ImageVirt || d.PageOffset != ref.PageOffset {
		t.Errorf("model differs: RAM %v image %v at %#x direct map %#x; want [0, %v) %v %#x %#x", d.RAM, d.Image, d.ImageVirt, d.PageOffset, ref.RAM, ref.Image, ref.ImageVirt, ref.PageOffset)
	}
	if len(d.Notes) != len(ref.Notes) || d.Report.CPUs != ref.Report.CPUs {
		t.Errorf("%d notes, %d CPUs; want %d, %d", len(d.Notes), d.Report.CPUs, len(ref.Notes), ref.Report.CPUs)
	}
	if !strings.Contains(strings.Join(d.Report.Repairs, "\n"), "sub-header's phys_base 0xfffffffa7aefabf8 is wrong") {
		t.Errorf("the wrong phys_base is not reported: %q", d.Report.Repairs)
	}
	if !strings.Contains(strings.Join(d.Report.Warnings, "\n"), "8 pages of RAM") {
		t.Errorf("the excluded pages are not reported: %q", d.Report.Warnings)
	}
	got, want := make([]byte, 3*pageSize), make([]byte, 3*pageSize)
	for _, pa := range []uint64{0x100000, 60 << 20, uint64(ref.Image.Start) + 0x800} {
		ref.Phys.ReadAt(want, int64(pa))
		if _, err := d.Phys.ReadAt(got, int64(pa)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("physical %#x: %v, equal %v", pa, err, bytes.Equal(got, want))
		}
	}
	for _, pa := range []uint64{excl.Start, excl.Start + 0x10, excl.Start - 0x100} {
		n, err := d.Phys.ReadAt(got[:0x200], int64(pa))
		var ee *ExcludedError
		if !errors.As(err, &ee) || !errors.Is(err, kdump.ErrExcluded) || ee.Paddr != max(pa, excl.Start) || n != int(max(pa, excl.Start)-pa) ||
			!strings.Contains(err.Error(), "page excluded from the dump (dump level 31)") {
			t.Errorf("physical %#x: %d bytes, %v; want the excluded page reported", pa, n, err)
		}
	}
	if _, err := d.Memory.ReadAt(got, int64(excl.Start)); err != nil || !elfcore.IsZero(got) {
		t.Errorf("Memory of an excluded page: %v, zero %v; want zeros for extract", err, elfcore.IsZero(got))
	}
	// Asked to (crash's --zero_excluded), Phys reads them as zeros and
	// the report says so.
	z, err := Open(ctx, path, Options{ZeroExcluded: true})
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	for i := range got {
		got[i] = 0xff
	}
	if n, err := z.Phys.ReadAt(got, int64(excl.Start-pageSize)); err != nil || n != len(got) || !elfcore.IsZero(got[pageSize:]) {
		t.Errorf("ZeroExcluded: physical %#x: %d bytes, %v, zero %v; want zeros", excl.Start, n, err, elfcore.IsZero(got[pageSize:]))
	}
	if !strings.Contains(strings.Join(z.Report.Warnings, "\n"), "excluded at dump level 31 are read as zeros") {
		t.Errorf("ZeroExcluded is not reported: %q", z.Report.Warnings)
	}
}
