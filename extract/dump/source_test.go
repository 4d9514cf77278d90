package dump

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"ldx/elfcore"
	"ldx/elfcore/flattened"
	"ldx/kmod/kmodtest"
)

// TestDirectReader checks that reads of any offset and length through the
// O_DIRECT reader (used for block devices) return the file's bytes. tmpfs
// has no O_DIRECT, so the file lives in the package directory's file
// system.
func TestDirectReader(t *testing.T) {
	dir, err := os.MkdirTemp(".", ".direct-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	data := make([]byte, 3<<20+123)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(dir, "dev")
	os.WriteFile(path, data, 0o600)
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if errors.Is(err, unix.EINVAL) {
		t.Skip("no O_DIRECT on this file system")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := &directReader{f: f}
	for _, c := range []struct{ off, n int }{
		{0, 4096}, {1, 10}, {4095, 2}, {5000, 3 << 20}, {len(data) - 7, 7}, {len(data) - 7, 100}, {123, 1 << 20},
	} {
		buf := make([]byte, c.n)
		n, err := d.ReadAt(buf, int64(c.off))
		want := data[c.off:min(len(data), c.off+c.n)]
		if n != len(want) || !bytes.Equal(buf[:n], want) {
			t.Errorf("ReadAt(%d, %d) = %d, %v", c.off, c.n, n, err)
		}
		if n < c.n && err == nil {
			t.Errorf("short read at %d without error", c.off)
		}
	}
}

// TestFlattenedSource: a dump written as a flattened stream, its writes
// out of order (as makedumpfile -F and QEMU write them), opens as the
// dump itself; a stream cut short opens with a warning.
func TestFlattenedSource(t *testing.T) {
	fx := newFixture(t, kmodtest.SyntheticOptions{CPUs: 2}, kmodtest.Run{})
	img, err := os.ReadFile(fx.image)
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 64 << 10
	var offs []int
	for off := 0; off < len(img); off += chunk {
		if !elfcore.IsZero(img[off:min(len(img), off+chunk)]) {
			offs = append(offs, off)
		}
	}
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(offs), func(i, j int) { offs[i], offs[j] = offs[j], offs[i] })
	var buf bytes.Buffer
	w, _ := flattened.NewWriter(&buf)
	for _, off := range offs {
		w.WriteAt(img[off:min(len(img), off+chunk)], int64(off))
	}
	w.SetSize(int64(len(img)))
	w.Close()
	whole := buf.Bytes()
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data []byte
		warn string
	}{
		{"whole", whole, ""},
		{"cut", whole[:len(whole)-16], "no end record"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".flat")
			os.WriteFile(path, c.data, 0o600)
			want, err := Open(context.Background(), fx.image, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			got, err := Open(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if got.Source.Kind != KindFlattened || got.Format != want.Format || len(got.Notes) != len(want.Notes) {
				t.Errorf("kind %q format %q notes %d, want flattened %q %d", got.Source.Kind, got.Format, len(got.Notes), want.Format, len(want.Notes))
			}
			if w := strings.Join(got.Report.Warnings, "\n"); c.warn != "" && !strings.Contains(w, c.warn) || c.warn == "" && strings.Contains(w, "flattened") {
				t.Errorf("warnings %q, want %q", w, c.warn)
			}
			a, b := make([]byte, 3*pageSize), make([]byte, 3*pageSize)
			for _, pa := range []int64{0x100000, 0x1ff800, 40 << 20} {
				_, errA := got.Phys.ReadAt(a, pa)
				_, errB := want.Phys.ReadAt(b, pa)
				if !bytes.Equal(a, b) || (errA == nil) != (errB == nil) {
					t.Errorf("phys %#x differs from the image's (%v, %v)", pa, errA, errB)
				}
			}
		})
	}
}
