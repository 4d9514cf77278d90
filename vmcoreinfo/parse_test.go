package vmcoreinfo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"ldx/vmcoreinfo/vmcoreinfotest"
)

// sample is a real VMCOREINFO text (kernel 6.2.15-100.fc36.x86_64, read
// from /proc/kcore), 3289 bytes, 109 lines, no CRASHTIME (kcore never has
// one).
func sample(t testing.TB) []byte {
	t.Helper()
	return vmcoreinfotest.Text(t, "fedora-6.2.15-kcore.txt")
}

// crashtimeLine is what crash_save_vmcoreinfo appends: 21 bytes, the size
// of each NUL run a repeated livedump leaves (K-6).
const crashtimeLine = "CRASHTIME=1700000000\n"

// livedumpText is the sample as a livedump START writes it: with CRASHTIME,
// after `earlier` earlier livedump runs in the same boot (K-6).
func livedumpText(t testing.TB, earlier int) []byte {
	b := bytes.Clone(sample(t))
	b = append(b, make([]byte, 21*earlier)...)
	return append(b, crashtimeLine...)
}

func mustParse(t testing.TB, b []byte) *Info {
	t.Helper()
	in, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestSampleRoundTrip(t *testing.T) {
	b := sample(t)
	if len(b) != 3289 {
		t.Fatalf("sample is %d bytes, the package documentation says 3289", len(b))
	}
	in := mustParse(t, b)
	if in.Len() != 109 {
		t.Errorf("Len = %d, want 109", in.Len())
	}
	if got := in.Bytes(); !bytes.Equal(got, b) {
		t.Errorf("Bytes() differs from input")
	}
	if in.TextLen() != len(b) {
		t.Errorf("TextLen = %d", in.TextLen())
	}
	if in.Line(0) != (Line{"OSRELEASE", "6.2.15-100.fc36.x86_64"}) || in.Line(108).String() != "NUMBER(sme_mask)=0" {
		t.Errorf("first/last line: %v / %v", in.Line(0), in.Line(108))
	}
	lin, d := ParseLenient(b)
	if !d.Clean() || !lin.Equal(in) || d.End != len(b) || d.Ignored != 0 {
		t.Errorf("lenient on clean text: %v", d)
	}
	if e, err := Parse(nil); err != nil || e.Len() != 0 || len(e.Bytes()) != 0 {
		t.Errorf("empty input: %v %v", e, err)
	}
}

// completeLines returns the lines of text that end before cut.
func completeLines(t testing.TB, text []byte, cut int) []Line {
	t.Helper()
	n := bytes.LastIndexByte(text[:cut], '\n') + 1
	return mustParse(t, text[:n]).Lines()
}

func equalLines(a, b []Line) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// noteHeader is the start of a second ELF note, as met when a cut note is
// followed by another one: namesz 5, descsz 336, type 1, "CORE".
func noteHeader() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 5)
	b = binary.LittleEndian.AppendUint32(b, 336)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = append(b, "CORE\x00\x00\x00\x00"...)
	return append(b, make([]byte, 64)...)
}

// TestTruncationEveryOffset cuts the livedump text at every offset and
// appends what K-1 leaves after the cut: nothing (reader clamped to the
// page), zeros (a zeroed low-memory page), random bytes (stale data), a
// second note header, 0xff fill. ParseLenient must return exactly the
// complete lines before the cut.
func TestTruncationEveryOffset(t *testing.T) {
	text := livedumpText(t, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 512)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	tails := map[string][]byte{
		"none":   nil,
		"zeros":  make([]byte, 4096),
		"random": random,
		"note":   noteHeader(),
		"ff":     bytes.Repeat([]byte{0xff}, 100),
	}
	for name, tail := range tails {
		for cut := 0; cut <= len(text); cut++ {
			in := append(bytes.Clone(text[:cut]), tail...)
			got, d := ParseLenient(in)
			want := completeLines(t, text, cut)
			if cut == len(text) && name == "none" {
				if !d.Clean() {
					t.Fatalf("%s/%d: damage on the full text: %v", name, cut, d)
				}
			}
			if !equalLines(got.Lines(), want) {
				t.Fatalf("tail %s, cut %d: got %d lines, want %d (damage: %v)", name, cut, got.Len(), len(want), d)
			}
			end := bytes.LastIndexByte(text[:cut], '\n') + 1
			if d.End != end || d.Ignored != len(in)-end {
				t.Fatalf("tail %s, cut %d: End=%d Ignored=%d, want %d %d", name, cut, d.End, d.Ignored, end, len(in)-end)
			}
			if (d.Stop == nil) != (len(in) == end) {
				t.Fatalf("tail %s, cut %d: Stop=%v", name, cut, d.Stop)
			}
			// The partial line is the part of the cut line that survived.
			if d.Stop != nil && cut > end && !strings.HasPrefix(d.Partial, string(text[end:cut])) {
				t.Fatalf("tail %s, cut %d: Partial=%q, want prefix %q", name, cut, d.Partial, text[end:cut])
			}
		}
	}
}

// TestLivedumpN3 checks the N = 3 row of "What a cut note keeps": with
// 3 CPUs, 3004 bytes of text survive and the last line kept is
// SYMBOL(kallsyms_token_index); 11 lines are lost, including the x86_64
// arch keys and CRASHTIME.
func TestLivedumpN3(t *testing.T) {
	full := livedumpText(t, 0)
	if len(full) != 3310 {
		t.Fatalf("S = %d", len(full))
	}
	kept := 4096 - 356*3 - 24
	dev := append(bytes.Clone(full[:kept]), make([]byte, 4096)...) // page 2 is zero
	in, d := ParseLenient(dev[:len(full)])                         // n_descsz claims the full length
	if last := in.Line(in.Len() - 1).Key; last != "SYMBOL(kallsyms_token_index)" {
		t.Errorf("last key kept = %s", last)
	}
	if d.Stop == nil || d.Stop.Kind != ErrNUL || d.Partial != "SYMBOL(kallsyms_offsets)=ffffffffb6484" {
		t.Errorf("damage: %v", d)
	}
	if k, ok := d.PartialKey(); !ok || k != "SYMBOL(kallsyms_offsets)" {
		t.Errorf("PartialKey = %q", k)
	}
	lost := Lost(mustParse(t, full), in)
	if len(lost) != 11 || lost[0].Key != "SYMBOL(kallsyms_offsets)" || lost[10].Key != KeyCrashTime {
		t.Errorf("lost %d lines: %v", len(lost), lost)
	}
	var missing []string
	for _, r := range in.Missing(AllConsumers) {
		missing = append(missing, r.Key)
	}
	want := []string{KeyInitTopPgt, KeyKernelOffset, KeyPhysBase, KeyPgtableL5, KeySmeMask, KeyKernelImageSize}
	if strings.Join(missing, " ") != strings.Join(want, " ") {
		t.Errorf("missing = %v, want %v", missing, want)
	}
}

func TestNULRuns(t *testing.T) {
	base := sample(t)
	for _, earlier := range []int{1, 2, 5} {
		text := livedumpText(t, earlier)
		if _, err := Parse(text); err == nil {
			t.Fatalf("strict Parse accepted NULs")
		} else if fe := (*FormatError)(nil); !errors.As(err, &fe) || fe.Kind != ErrNUL || fe.Off != len(base) || fe.Line != 110 {
			t.Fatalf("strict error: %#v", err)
		}
		in, d := ParseLenient(text)
		want := append(bytes.Clone(base), crashtimeLine...)
		if !bytes.Equal(in.Bytes(), want) {
			t.Fatalf("%d runs: text not repaired", earlier)
		}
		if len(d.NULRuns) != 1 || d.NULRuns[0] != (NULRun{Off: len(base), Len: 21 * earlier}) || d.NULBytes() != 21*earlier || d.Stop != nil || d.Clean() {
			t.Fatalf("%d runs: damage %+v", earlier, d)
		}
		if ct, ok := in.CrashTime(); !ok || ct.Unix() != 1700000000 {
			t.Fatalf("CRASHTIME %v %v", ct, ok)
		}
	}
	cases := []struct {
		in, out string
		runs    []NULRun
		stop    ErrKind
	}{
		{"\x00\x00A=1\n", "A=1\n", []NULRun{{0, 2}}, 0},
		{"A=1\n\x00B=2\n\x00\x00C=3\n", "A=1\nB=2\nC=3\n", []NULRun{{4, 1}, {9, 2}}, 0},
		{"A=1\n\x00\x00\x00", "A=1\n", nil, ErrNUL},             // zeros up to the end: not a K-6 run
		{"A=1\n\x00\x00CRASHT", "A=1\n", nil, ErrNoNewline},     // CRASHTIME cut
		{"A=1\nB=\x00\x00\x002\n", "A=1\n", nil, ErrNUL},        // NULs inside a line
		{"A=1\n\x00\x00\x01\x02=3\n", "A=1\n", nil, ErrControl}, // garbage after zeros
		{"A=1\n\x00\x00B=2\n\x00\x00", "A=1\nB=2\n", []NULRun{{4, 2}}, ErrNUL},
	}
	for _, c := range cases {
		in, d := ParseLenient([]byte(c.in))
		if got := in.String(); got != c.out {
			t.Errorf("%q: got %q, want %q", c.in, got, c.out)
		}
		if len(d.NULRuns) != len(c.runs) || len(c.runs) > 0 && !equalRuns(d.NULRuns, c.runs) {
			t.Errorf("%q: runs %v, want %v", c.in, d.NULRuns, c.runs)
		}
		if c.stop == 0 && d.Stop != nil || c.stop != 0 && (d.Stop == nil || d.Stop.Kind != c.stop) {
			t.Errorf("%q: stop %v, want %v", c.in, d.Stop, c.stop)
		}
	}
}

func equalRuns(a, b []NULRun) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestCRLF(t *testing.T) {
	b := sample(t)
	crlf := bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	_, err := Parse(crlf)
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Kind != ErrControl || fe.Line != 1 || fe.Off != 32 {
		t.Fatalf("strict: %v", err)
	}
	in, d := ParseLenient(crlf)
	if !bytes.Equal(in.Bytes(), b) || d.CRLF != 109 || d.Stop != nil || d.Clean() {
		t.Fatalf("lenient: %v", d)
	}
	// Mixed endings, and a bare CR that is not a line ending.
	in, d = ParseLenient([]byte("A=1\r\nB=2\nC=\r3\nD=4\n"))
	if in.String() != "A=1\nB=2\n" || d.CRLF != 1 || d.Stop == nil || d.Stop.Kind != ErrControl || d.Partial != "C=" {
		t.Fatalf("mixed: %q %v", in, d)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		in        string
		kind      ErrKind
		off, line int
	}{
		{"A=1", ErrNoNewline, 3, 1},
		{"A=1\nB=2", ErrNoNewline, 7, 2},
		{"A=1\n\n", ErrEmptyLine, 4, 2},
		{"\n", ErrEmptyLine, 0, 1},
		{"A=1\nB\n", ErrNoEquals, 5, 2},
		{"=1\n", ErrEmptyKey, 0, 1},
		{"A B=1\n", ErrKeyChar, 1, 1},
		{"A:B=1\n", ErrKeyChar, 1, 1},
		{"A=1\x7f\n", ErrControl, 3, 1},
		{"A=\t1\n", ErrControl, 2, 1},
		{"A=1\r\n", ErrControl, 3, 1},
		{"A=\xc3\xa9\n", ErrNonASCII, 2, 1},
		{"A=1\n\x00", ErrNUL, 4, 2},
		{"A\x00=1\n", ErrNUL, 1, 1},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.in))
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%q: err = %v", c.in, err)
			continue
		}
		if fe.Kind != c.kind || fe.Off != c.off || fe.Line != c.line {
			t.Errorf("%q: got %v/%d/%d (%v), want %v/%d/%d", c.in, fe.Kind, fe.Off, fe.Line, fe, c.kind, c.off, c.line)
		}
	}
	// Values may hold '=', spaces and any printable byte.
	in := mustParse(t, []byte("A=b=c\nB= x \nC=\nD=~!@#$%^&*()\n"))
	if v, _ := in.Get("A"); v != "b=c" {
		t.Errorf("A=%q", v)
	}
	if v, ok := in.Get("C"); !ok || v != "" {
		t.Errorf("C=%q %v", v, ok)
	}
}

func TestLenientGarbage(t *testing.T) {
	cases := []struct {
		in, out, partial string
		kind             ErrKind
		key              string
	}{
		{"A=1\nB=2", "A=1\n", "B=2", ErrNoNewline, "B"},
		{"A=1\nNUMBER(phys_base)=3154\x00\x00", "A=1\n", "NUMBER(phys_base)=3154", ErrNUL, "NUMBER(phys_base)"},
		{"A=1\nSYMBOL(kallsyms_o\x7fELF\x02", "A=1\n", "SYMBOL(kallsyms_o", ErrControl, ""},
		{"A=1\n\xff\xffB=2\n", "A=1\n", "", ErrNonASCII, ""},
		{"A=1\nhello world\nB=2\n", "A=1\n", "hello world", ErrKeyChar, ""},
		{"A=1\n\nB=2\n", "A=1\n", "", ErrEmptyLine, ""},
		{"\x05\x00\x00\x00", "", "", ErrControl, ""},
	}
	for _, c := range cases {
		in, d := ParseLenient([]byte(c.in))
		if in.String() != c.out || d.Partial != c.partial || d.Stop == nil || d.Stop.Kind != c.kind {
			t.Errorf("%q: got %q partial %q stop %v", c.in, in, d.Partial, d.Stop)
			continue
		}
		if k, ok := d.PartialKey(); k != c.key || ok != (c.key != "") {
			t.Errorf("%q: PartialKey = %q %v", c.in, k, ok)
		}
		if d.End != len(c.out) || d.Ignored != len(c.in)-len(c.out) || d.PartialOff < d.End || d.String() == "" {
			t.Errorf("%q: %+v", c.in, d)
		}
	}
	long := "A=1\n" + strings.Repeat("x", 1000)
	if _, d := ParseLenient([]byte(long)); len(d.Partial) != MaxPartial {
		t.Errorf("partial not capped: %d", len(d.Partial))
	}
}

// TestLivedumpTable checks every row of the table in "What a cut note keeps"
// (S = 3310): how much text survives with N present CPUs, the first key
// lost and how many lines are lost.
func TestLivedumpTable(t *testing.T) {
	full := livedumpText(t, 0)
	fullInfo := mustParse(t, full)
	rows := []struct {
		cpus, kept int
		firstLost  string
		lost       int
	}{
		{1, 3310, "", 0},
		{2, 3310, "", 0},
		{3, 3004, "SYMBOL(kallsyms_offsets)", 11},
		{4, 2648, "NUMBER(PG_hwpoison)", 20},
		{5, 2292, "OFFSET(prb_data_ring.data)", 34},
		{6, 1936, "OFFSET(printk_info.ts_nsec)", 45},
		{7, 1580, "OFFSET(prb_desc_ring.count_bits)", 58},
		{8, 1224, "OFFSET(vmap_area.list)", 68},
		{9, 868, "OFFSET(pglist_data.node_zones)", 80},
		{10, 512, "SIZE(pglist_data)", 94},
		{11, 156, "OFFSET(uts_namespace.name)", 106},
	}
	for _, r := range rows {
		avail := max(0, 4096-356*r.cpus-24)
		if avail > len(full) {
			avail = len(full)
		}
		if avail != r.kept {
			t.Errorf("N=%d: %d bytes of text fit, table says %d", r.cpus, avail, r.kept)
		}
		// Bytes past the page come from physical page 2: zeros here.
		desc := append(bytes.Clone(full[:avail]), make([]byte, len(full)-avail)...)
		in, _ := ParseLenient(desc)
		lost := Lost(fullInfo, in)
		first := ""
		if len(lost) > 0 {
			first = lost[0].Key
		}
		if first != r.firstLost || len(lost) != r.lost {
			t.Errorf("N=%d: first lost %q, %d lost; table says %q, %d", r.cpus, first, len(lost), r.firstLost, r.lost)
		}
	}
}
