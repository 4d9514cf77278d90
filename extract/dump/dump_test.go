package dump

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ldx/elfcore"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// fixture is a synthetic livedump device image and what the emulated
// kernel wrote to it.
type fixture struct {
	report *kmodtest.Report
	image  string
}

func newFixture(t *testing.T, o kmodtest.SyntheticOptions, run kmodtest.Run) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "device.img")
	_, rep, err := kmodtest.WriteSyntheticImage(path, o, &run)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{report: rep, image: path}
}

func withManifest(p manifest.Preparation, unwritten ...elfcore.Range) kmodtest.Run {
	return kmodtest.Run{Prepared: p, Manifest: &manifest.Manifest{Time: time.Date(2026, 11, 26, 5, 59, 0, 0, time.UTC)}, Unwritten: unwritten}
}

func TestOpen(t *testing.T) {
	unwritten := elfcore.Range{Start: 40 << 20, End: 41 << 20}
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 4}, withManifest(manifest.Marked, unwritten))
	d, err := Open(context.Background(), fx.image, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if rel, _ := d.VMCOREINFO.OSRelease(); rel != "6.1.0-ldx-synthetic" || len(d.Notes) != 5 || d.Format != "livedump raw device" {
		t.Errorf("release %q, %d notes, format %q", rel, len(d.Notes), d.Format)
	}
	if _, ok := d.VMCOREINFO.CrashTime(); !ok {
		t.Error("the recovered VMCOREINFO has no CRASHTIME")
	}
	page, want := make([]byte, pageSize), make([]byte, pageSize)
	for _, pa := range []uint64{0x100000, 0x101800, unwritten.Start, unwritten.Start + 0x1800, 60 << 20} {
		n := pageSize - int(pa%pageSize)
		if _, err := d.Phys.ReadAt(page[:n], int64(pa)); err != nil {
			t.Fatalf("phys %#x: %v", pa, err)
		}
		clear(want)
		if fx.report.WasWritten(pa / pageSize) {
			dev, _ := os.Open(fx.image)
			dev.ReadAt(want[:n], int64(pa))
			dev.Close()
		}
		if !bytes.Equal(page[:n], want[:n]) {
			t.Errorf("phys %#x differs from what the kernel wrote (written=%v)", pa, fx.report.WasWritten(pa/pageSize))
		}
	}
	var ue *elfcore.UnmappedError
	if _, err := d.Phys.ReadAt(page, 0x2000); !errors.As(err, &ue) {
		t.Errorf("reading low memory: %v, want UnmappedError", err)
	}
}
