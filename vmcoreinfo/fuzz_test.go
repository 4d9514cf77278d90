package vmcoreinfo

import (
	"bytes"
	"testing"
)

// FuzzParse checks, for any input: no panic; ParseLenient's output is
// accepted by Parse and round-trips byte for byte; ParseLenient agrees with
// Parse on valid input; Damage accounts for every input byte; and the
// accessors, Lint and Missing do not panic on whatever survives.
func FuzzParse(f *testing.F) {
	s := sample(f)
	f.Add(s)
	f.Add(livedumpText(f, 1))
	f.Add(livedumpText(f, 0)[:3004])
	f.Add(append(bytes.Clone(s[:2648]), make([]byte, 64)...))
	f.Add(append(bytes.Clone(s[:1000]), noteHeader()...))
	f.Add(bytes.ReplaceAll(s[:500], []byte("\n"), []byte("\r\n")))
	f.Add([]byte("A=1\nA=2\n\x00\x00B=\x00\n"))
	f.Add([]byte("NUMBER(VMALLOC_START)=0xffffc90000000000\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=1\nKERNELOFFSET=1000\nSYMBOL(_stext)=0\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, d := ParseLenient(b)
		out := in.Bytes()
		strict, err := Parse(out)
		if err != nil {
			t.Fatalf("lenient output rejected: %v\n%q", err, out)
		}
		if !bytes.Equal(strict.Bytes(), out) || !strict.Equal(in) {
			t.Fatalf("lenient output does not round-trip")
		}
		if again, d2 := ParseLenient(out); !d2.Clean() || !again.Equal(in) {
			t.Fatalf("lenient not idempotent: %v", d2)
		}
		if d.End < 0 || d.End > len(b) || d.End+d.Ignored != len(b) || (d.Stop == nil) != (d.Ignored == 0) {
			t.Fatalf("bad damage accounting: %+v (len %d)", d, len(b))
		}
		if len(out) != d.End-d.NULBytes()-d.CRLF {
			t.Fatalf("kept %d bytes, damage accounts for %d", len(out), d.End-d.NULBytes()-d.CRLF)
		}
		if p, err := Parse(b); err == nil {
			if !d.Clean() || !bytes.Equal(p.Bytes(), b) {
				t.Fatalf("strict and lenient disagree on valid input: %v", d)
			}
		} else if d.Clean() {
			t.Fatalf("strict rejected (%v) what lenient found clean", err)
		}
		_ = d.String()
		d.PartialKey()
		for i, l := range in.Lines() {
			if i == 64 { // Lookup is linear: keep the harness linear too
				break
			}
			in.LookupUint(l.Key)
			in.LookupInt(l.Key)
			in.Check(l.Key)
		}
		in.OSRelease()
		in.BuildID()
		in.PageSize()
		in.KernelOffset()
		in.CrashTime()
		in.KernelVersion()
		for _, p := range in.Lint() {
			_ = p.String()
		}
		in.Missing(AllConsumers)
	})
}
