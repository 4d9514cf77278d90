package dump

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"ldx/elfcore"
	"ldx/kmod/kmodtest"
)

// A test-only input format, to show all that adding one takes: a new file
// holding its Format, its Opener (a Probe answering ErrNotMine for other
// inputs, an Open returning the memory, RAM and notes) and
// `func init() { register(testOpener) }` — nothing else in the package
// changes. (The test registers it itself, to see Open before and after.)
// The format: page 0 is "LDXTEST1" and the VMCOREINFO text up to a NUL;
// the rest of the file is physical memory at offset = physical address.
const testFormat Format = "ldx test image"

var testMagic = []byte("LDXTEST1")

var testOpener = Opener{
	Format: testFormat,
	Rank:   50,
	Probe: func(in *Input) error {
		if !bytes.HasPrefix(in.Page0, testMagic) {
			return ErrNotMine
		}
		return nil
	},
	Open: func(ctx context.Context, in *Input) (*Dump, error) {
		text, _, _ := bytes.Cut(in.Page0[len(testMagic):], []byte{0})
		in.Report.VMCOREINFO = "the image's page 0"
		return &Dump{
			Memory: in.Source,
			Raw:    true,
			RAM:    []elfcore.Range{{Start: pageSize, End: uint64(in.Source.Size)}},
			Notes:  []elfcore.Note{{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: bytes.Clone(text)}},
		}, nil
	},
}

func writeTestImage(t *testing.T) (string, []byte) {
	t.Helper()
	mem := make([]byte, 3*pageSize)
	for i := range mem {
		mem[i] = byte(i * 7)
	}
	img := append(append(append([]byte{}, testMagic...), "OSRELEASE=6.1.0-ldx-test\nPAGESIZE=4096\n"...), make([]byte, pageSize)...)[:pageSize]
	path := filepath.Join(t.TempDir(), "test.img")
	if err := os.WriteFile(path, append(img, mem...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, mem
}

// TestOpenerTable: each opener's probe turns away the others' inputs with
// ErrNotMine, and Open reads an input through the opener that accepts it;
// an input no opener accepts stays an *InputError.
func TestOpenerTable(t *testing.T) {
	ctx := context.Background()
	path, mem := writeTestImage(t)

	if _, err := Open(ctx, path, Options{}); !errors.As(err, new(*InputError)) || !strings.Contains(err.Error(), "no dump header in page 0") {
		t.Fatalf("before registering: err = %v, want the InputError for no dump header", err)
	}

	saved := slices.Clone(openers)
	t.Cleanup(func() { openers = saved })
	register(testOpener)
	if got, want := Formats(), []Format{FormatLivedump, FormatKdump, testFormat, FormatELF}; !slices.Equal(got, want) {
		t.Errorf("formats in order %q, want %q", got, want)
	}

	probe := func(o Opener, path string) error {
		src, err := OpenSource(ctx, path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		in, err := newInput(src, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return o.Probe(in)
	}
	live := newFixture(t, kmodtest.SyntheticOptions{CPUs: 2}, kmodtest.Run{}).image
	for _, tc := range []struct {
		o    Opener
		path string
		want error
	}{
		{livedumpOpener, path, ErrNotMine},
		{elfOpener, path, ErrNotMine},
		{testOpener, path, nil},
		{testOpener, live, ErrNotMine},
		{livedumpOpener, live, nil},
	} {
		if err := probe(tc.o, tc.path); !errors.Is(err, tc.want) {
			t.Errorf("%s probing %s: %v, want %v", tc.o.Format, filepath.Base(tc.path), err, tc.want)
		}
	}

	d, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Format != testFormat || d.Report.Format != testFormat || d.Report.VMCOREINFO != "the image's page 0" {
		t.Errorf("format %q, report %q from %q", d.Format, d.Report.Format, d.Report.VMCOREINFO)
	}
	if rel, _ := d.VMCOREINFO.OSRelease(); rel != "6.1.0-ldx-test" {
		t.Errorf("release %q", rel)
	}
	got := make([]byte, len(mem))
	if _, err := d.Phys.ReadAt(got, pageSize); err != nil || !bytes.Equal(got, mem) {
		t.Errorf("memory differs (%v)", err)
	}
	var ue *elfcore.UnmappedError
	if _, err := d.Phys.ReadAt(got[:8], 0); !errors.As(err, &ue) {
		t.Errorf("reading page 0: %v, want UnmappedError", err)
	}

	// The livedump device still opens as one.
	ld, err := Open(ctx, live, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	if ld.Format != FormatLivedump {
		t.Errorf("the livedump image opened as %q", ld.Format)
	}
}
