package dump

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
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
