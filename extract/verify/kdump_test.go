package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ldx/elfcore"
	"ldx/elfcore/kdump"
	"ldx/extract/verify/verifytest"
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
				if !strings.HasPrefix(string(c.ID), "H") && c.ID != G1 {
					t.Errorf("check %s on a kdump file", c.ID)
				}
			}
		})
	}
}

// synthKdump is a kdump file written by package kdump's writer (the
// layout makedumpfile -c -d N writes): RAM of pages pfns from 0x10, zlib,
// dump level 31 with every 7th page excluded and every 5th page zero, and
// init_uts_ns in the middle page holding the release.
func synthKdump(t testing.TB, pages uint64) []byte { return synthKdumpAs(t, pages, kdump.CompressZlib) }

// synthKdumpAs is synthKdump with another compression.
func synthKdumpAs(t testing.TB, pages uint64, comp kdump.Compression) []byte {
	t.Helper()
	const (
		rel  = "6.1.0-synth"
		pb   = 0x1000
		name = 4 // OFFSET(uts_namespace.name)
	)
	utsPFN := 0x10 + pages/2
	uts := startKernelMap + utsPFN*4096 - pb
	vmci := fmt.Sprintf("OSRELEASE=%s\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=%x\nOFFSET(uts_namespace.name)=%d\nNUMBER(phys_base)=%d\n", rel, uint64(uts), name, pb)
	notes := elfcore.EncodeNotes([]elfcore.Note{{Name: "VMCOREINFO", Desc: []byte(vmci)}})
	m := &memFile{}
	w, err := kdump.NewWriter(m, kdump.WriterConfig{
		Utsname: kdump.Utsname{Sysname: "Linux", Release: rel, Machine: "x86_64"}, NrCPUs: 1, PhysBase: pb,
		Notes: notes, VMCOREINFOOff: 24, VMCOREINFOSize: len(vmci),
		RAM: []kdump.PFNRange{{Start: 0x10, End: 0x10 + pages}}, DumpLevel: 31, Workers: 1, Compression: comp,
		Exclude: func(pfn uint64) bool { return pfn%7 == 3 && pfn != utsPFN },
	})
	if err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	for pfn := uint64(0x10); pfn < 0x10+pages; pfn++ {
		clear(page)
		if pfn%5 != 0 {
			copy(page, strings.Repeat(fmt.Sprintf("page %#x ", pfn), 300))
		}
		if pfn == utsPFN {
			copy(page[name+utsReleaseOff:], rel+"\x00")
		}
		if err := w.Write(pfn, page); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return m.b
}

// TestKdumpMutants runs the kdump corpus on the synthetic file: the good
// file passes every check, and each mutant fires its checks.
func TestKdumpMutants(t *testing.T) {
	good := synthKdump(t, 1000)
	rep, err := Reader(context.Background(), "good", bytes.NewReader(good), int64(len(good)), Options{Deep: true})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failed(); len(f) > 0 || rep.Check(H7) == nil || rep.Check(H7).Status != Pass {
		t.Fatalf("the good file fails %v:\n%s", f, failedSummary(rep))
	}
	for _, m := range verifytest.KdumpMutants() {
		t.Run(m.Name, func(t *testing.T) {
			b, err := m.Build(good)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Reader(context.Background(), m.Name, bytes.NewReader(b), int64(len(b)), Options{})
			if m.Unreadable {
				if _, ok := err.(*UnreadableError); !ok {
					t.Fatalf("want the file refused, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range m.Want {
				if !firedAny(rep, id) {
					t.Errorf("check %s did not fire: %+v\nfailed: %s", id, rep.Check(ID(id)), failedSummary(rep))
				}
			}
			t.Logf("failed: %v", rep.Failed())
		})
	}
}

// TestKdumpSplitPart: one part of a split dump fails H1 for every
// consumer given it alone (drgn only degraded on the part holding
// init_uts_ns), while H2–H7 read the whole set found beside it; a part
// missing leaves H1 naming the gap and the rest skipped; a descriptor
// broken in one part is H3 naming that part.
func TestKdumpSplitPart(t *testing.T) {
	const pages = 600 // pfns 0x10 … 0x268, init_uts_ns in pfn 0x13c
	whole := synthKdump(t, pages)
	cuts := []uint64{0, 0x100, 0x200, 0x10 + pages}
	parts, err := verifytest.SplitKdump(whole, cuts)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"vmcore-1", "vmcore-2", "vmcore-3"}
	write := func(t *testing.T, skip int, edit func(i int, b []byte)) string {
		dir := t.TempDir()
		for i, p := range parts {
			if i == skip {
				continue
			}
			p = bytes.Clone(p)
			if edit != nil {
				edit(i, p)
			}
			if err := os.WriteFile(filepath.Join(dir, names[i]), p, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	status := func(rep *Report) map[ID]Status {
		m := map[ID]Status{}
		for _, c := range rep.Checks {
			m[c.ID] = c.Status
		}
		return m
	}
	verifyPart := func(t *testing.T, path string) *Report {
		rep, err := File(context.Background(), path, Options{Deep: true})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	t.Run("complete set", func(t *testing.T) {
		dir := write(t, -1, nil)
		for i, name := range names {
			rep := verifyPart(t, filepath.Join(dir, name))
			got := status(rep)
			for _, id := range []ID{H2, H3, H4, H5, H6, H7} {
				if got[id] != Pass {
					t.Errorf("%s: %s %v, want pass (the whole set reads)\n%s", name, id, got[id], failedSummary(rep))
				}
			}
			h1 := rep.Check(H1)
			if h1 == nil || !h1.Failed() || !strings.Contains(h1.Found, "split dump of 3 parts") {
				t.Fatalf("%s: H1 %+v, want a failure naming the 3 parts", name, h1)
			}
			drgn := Fatal
			if i == 1 { // holds init_uts_ns
				drgn = Degraded
			}
			if p := rep.Prediction(Drgn); p.Verdict != drgn || rep.taskWalkStops != (i == 1) {
				t.Errorf("%s: drgn %v (task walk stops %v), want %v", name, p.Verdict, rep.taskWalkStops, drgn)
			}
			if p := rep.Prediction(Crash); p.Verdict != Fatal || p.NoVmlinux != None {
				t.Errorf("%s: crash %v, --osrelease %v; want fatal, none (it reads the headers)", name, p.Verdict, p.NoVmlinux)
			}
			if p := rep.Prediction(Makedumpfile); p.Verdict != Fatal {
				t.Errorf("%s: makedumpfile %v, want fatal", name, p.Verdict)
			}
		}
	})
	t.Run("one part holds every page", func(t *testing.T) {
		all, err := verifytest.SplitKdump(whole, []uint64{0, 0x10 + pages, 0x10 + pages})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Reader(context.Background(), "all", bytes.NewReader(all[0]), int64(len(all[0])), Options{Deep: true})
		if err != nil {
			t.Fatal(err)
		}
		if f := rep.Failed(); len(f) > 0 {
			t.Errorf("a part holding every page (read alone by every consumer) fails %v:\n%s", f, failedSummary(rep))
		}
		if h1 := rep.Check(H1); h1 == nil || !strings.Contains(h1.Found, "holds all its") {
			t.Errorf("H1 %+v, want the part named as holding every page", h1)
		}
		rep, err = Reader(context.Background(), "none", bytes.NewReader(all[1]), int64(len(all[1])), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if h1 := rep.Check(H1); h1 == nil || !h1.Failed() {
			t.Errorf("H1 on the empty part %+v, want a failure", h1)
		}
	})
	t.Run("part missing", func(t *testing.T) {
		dir := write(t, 1, nil)
		rep := verifyPart(t, filepath.Join(dir, names[0]))
		h1 := rep.Check(H1)
		if h1 == nil || !h1.Failed() || !strings.Contains(h1.Found, "a part is missing") {
			t.Fatalf("H1 %+v, want the gap named", h1)
		}
		if st := status(rep)[H2]; st != Skipped {
			t.Errorf("H2 %v, want skipped", st)
		}
	})
	t.Run("descriptor past its part's end", func(t *testing.T) {
		h, _ := kdump.DecodeHeader(whole)
		descOff := int64(1+h.SubHdrSize+int32(h.BitmapBlocks)) * int64(h.BlockSize)
		dir := write(t, -1, func(i int, b []byte) {
			if i == 2 {
				binary.LittleEndian.PutUint64(b[descOff:], uint64(len(b))) // the part's first descriptor
			}
		})
		rep := verifyPart(t, filepath.Join(dir, names[0]))
		if c := rep.Check(H3); c == nil || !c.Failed() || !strings.Contains(c.Found, names[2]) || !strings.Contains(c.Found, "past the end") {
			t.Errorf("H3 %+v, want the descriptor of %s past its end", c, names[2])
		}
	})
	t.Run("page data inside a part's array", func(t *testing.T) {
		h, _ := kdump.DecodeHeader(whole)
		descOff := int64(1+h.SubHdrSize+int32(h.BitmapBlocks)) * int64(h.BlockSize)
		dir := write(t, -1, func(i int, b []byte) {
			if i == 1 {
				binary.LittleEndian.PutUint64(b[descOff:], uint64(descOff+kdump.PageDescSize))
			}
		})
		rep := verifyPart(t, filepath.Join(dir, names[2]))
		if c := rep.Check(H6); c == nil || !c.Failed() || !strings.Contains(c.Found, names[1]+", a part holding") {
			t.Errorf("H6 %+v, want %s's array and data overlapping", c, names[1])
		}
	})
}

// firedAny reports whether the check want names failed; want may join
// several IDs with "|", any of which will do.
func firedAny(rep *Report, want string) bool {
	for _, id := range strings.Split(want, "|") {
		if c := rep.Check(ID(id)); c != nil && c.Failed() {
			return true
		}
	}
	return false
}
