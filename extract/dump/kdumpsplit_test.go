package dump_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ldx/elfcore"
	"ldx/extract/dump"
	"ldx/extract/verify/verifytest"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// cutKdump writes the parts of the kdump file whole for the pfn ranges
// between cuts into dir, named names.
func cutKdump(t *testing.T, whole []byte, cuts []uint64, dir string, names []string) {
	t.Helper()
	parts, err := verifytest.SplitKdump(whole, cuts)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		if err := os.WriteFile(filepath.Join(dir, names[i]), p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKdumpSplit: any part of a split dump opens to the dump the whole
// file is, its other parts found beside it (among unrelated files);
// with one missing the error names the ranges found. A dump split twice
// into one directory opens through a set the given part belongs to.
func TestKdumpSplit(t *testing.T) {
	ctx := context.Background()
	image := filepath.Join(t.TempDir(), "device.img")
	if _, err := verifytest.WriteImage(image, 2, kmodtest.Run{Prepared: manifest.Zeroed, Manifest: &manifest.Manifest{}}); err != nil {
		t.Fatal(err)
	}
	ref, err := dump.Open(ctx, image, dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	wholePath := writeKdump(t, ref, elfcore.Range{Start: 56 << 20, End: 60 << 20}, ref.Image.Start-0x1000000)
	whole, err := os.ReadFile(wholePath)
	if err != nil {
		t.Fatal(err)
	}
	w, err := dump.Open(ctx, wholePath, dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	maxPFN := w.RAM[len(w.RAM)-1].End / pageSize
	dir := t.TempDir()
	cutKdump(t, whole, []uint64{0, maxPFN / 3, maxPFN / 3, 2 * maxPFN / 3, maxPFN}, dir, []string{"vmcore-1", "vmcore-2", "vmcore-3", "vmcore-4"})
	os.WriteFile(filepath.Join(dir, "notes.txt"), bytes.Repeat([]byte("x"), 3*pageSize), 0o600)
	os.WriteFile(filepath.Join(dir, "other.kdump"), whole, 0o600) // a whole dump, not a part
	os.Symlink(wholePath, filepath.Join(dir, "link"))

	got, want := make([]byte, 64<<10), make([]byte, 64<<10)
	for _, name := range []string{"vmcore-1", "vmcore-2", "vmcore-4"} {
		d, err := dump.Open(ctx, filepath.Join(dir, name), dump.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(d.Report.Parts) != 4 || filepath.Base(d.Report.Parts[3]) != "vmcore-4" {
			t.Errorf("%s: parts %q", name, d.Report.Parts)
		}
		for _, pa := range []uint64{0x100000, 20 << 20, maxPFN * pageSize / 2, (maxPFN - 16) * pageSize, 56 << 20} {
			n1, e1 := w.Phys.ReadAt(want, int64(pa))
			n2, e2 := d.Phys.ReadAt(got, int64(pa))
			if n1 != n2 || (e1 == nil) != (e2 == nil) || !bytes.Equal(got[:n2], want[:n1]) {
				t.Errorf("%s: physical %#x: %d bytes, %v; the whole file: %d bytes, %v", name, pa, n2, e2, n1, e1)
			}
		}
		d.Close()
	}

	// The dump split twice into one directory (3 and 2 parts): each part
	// opens with its own set, and a warning names the other set's parts.
	// With a copy of a part beside its set, the first by name is read.
	twice := t.TempDir()
	cutKdump(t, whole, []uint64{0, maxPFN / 3, 2 * maxPFN / 3, maxPFN}, twice, []string{"a-1", "a-2", "a-3"})
	cutKdump(t, whole, []uint64{0, maxPFN / 2, maxPFN}, twice, []string{"b-1", "b-2"})
	b2, err := os.ReadFile(filepath.Join(twice, "b-2"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(twice, "a-b-2.copy"), b2, 0o600)
	for _, tc := range []struct{ name, set, unused string }{
		{"a-2", "a-1 a-2 a-3", "b-1, a-b-2.copy, b-2"},
		{"a-3", "a-1 a-2 a-3", "b-1, a-b-2.copy, b-2"},
		{"b-1", "b-1 a-b-2.copy", "a-1, a-2, b-2, a-3"},
		{"b-2", "b-1 b-2", "a-1, a-2, a-b-2.copy, a-3"},
	} {
		d, err := dump.Open(ctx, filepath.Join(twice, tc.name), dump.Options{})
		if err != nil {
			t.Errorf("%s among two sets: %v", tc.name, err)
			continue
		}
		var parts []string
		for _, p := range d.Report.Parts {
			parts = append(parts, filepath.Base(p))
		}
		if strings.Join(parts, " ") != tc.set {
			t.Errorf("%s among two sets: parts %q, want %s", tc.name, parts, tc.set)
		}
		if w := strings.Join(d.Report.Warnings, "\n"); !strings.Contains(w, "not needed: "+tc.unused) {
			t.Errorf("%s among two sets: warnings %q, want the parts not needed (%s) named", tc.name, w, tc.unused)
		}
		for _, pa := range []uint64{0x100000, maxPFN * pageSize / 2, (maxPFN - 16) * pageSize} {
			n1, e1 := w.Phys.ReadAt(want, int64(pa))
			n2, e2 := d.Phys.ReadAt(got, int64(pa))
			if n1 != n2 || (e1 == nil) != (e2 == nil) || !bytes.Equal(got[:n2], want[:n1]) {
				t.Errorf("%s among two sets: physical %#x: %d bytes, %v; the whole file: %d bytes, %v", tc.name, pa, n2, e2, n1, e1)
			}
		}
		d.Close()
	}

	os.Remove(filepath.Join(dir, "vmcore-3"))
	_, err = dump.Open(ctx, filepath.Join(dir, "vmcore-1"), dump.Options{})
	var ie *dump.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "a part is missing") || !strings.Contains(err.Error(), "vmcore-4 [") {
		t.Errorf("a part missing: %v", err)
	}
}
