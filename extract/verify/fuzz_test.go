package verify

import (
	"bytes"
	"context"
	"debug/elf"
	"testing"

	"ldx/elfcore"
	"ldx/extract/verify/verifytest"
)

// memFile is an in-memory io.WriterAt.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// fuzzSeed is a small core with the synthetic kernel's notes and two
// PT_LOADs over 64 KiB of data: cheap to build in every fuzz worker.
func fuzzSeed(f *testing.F) []byte {
	k, err := verifytest.SyntheticKernel(2)
	if err != nil {
		f.Fatal(err)
	}
	st := &elfcore.PRStatus{Pid: 1}
	notes := elfcore.EncodeNotes([]elfcore.Note{st.Note(), st.Note(), {Name: "VMCOREINFO", Desc: k.VMCOREINFO}})
	m := &memFile{}
	w := elfcore.NewWriter(m, elf.EM_X86_64, 2, notes)
	off := uint64(w.DataOffset())
	w.AddLoad(elfcore.ProgHeader{Off: off, Vaddr: k.TextVirt, Paddr: k.TextPhys, Filesz: 0x8000, Memsz: 0x8000})
	w.AddLoad(elfcore.ProgHeader{Off: off + 0x8000, Vaddr: k.PageOffsetBase + 0x100000, Paddr: 0x100000, Filesz: 0x8000, Memsz: 0x8000})
	m.WriteAt(bytes.Repeat([]byte{0x5a}, 0x10000), int64(off))
	if err := w.Finish(); err != nil {
		f.Fatal(err)
	}
	return m.b
}

// FuzzVerify: whatever the bytes, verify reports or refuses; it never
// panics or hangs.
func FuzzVerify(f *testing.F) {
	seed := fuzzSeed(f)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	kd := synthKdump(f, 24) // the kdump-compressed path (H checks)
	f.Add(kd)
	f.Add(kd[:len(kd)/3])
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Reader(context.Background(), "fuzz", bytes.NewReader(b), int64(len(b)), Options{})
		if err == nil && len(rep.Checks) == 0 {
			t.Fatal("a report without checks")
		}
	})
}
