package kdump

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLZO1X decodes pages liblzo2 encoded (testdata/lzo) and checks that
// every cut or corruption of them is an error or a wrong length, never a
// panic or a write past the buffer.
func TestLZO1X(t *testing.T) {
	files, _ := filepath.Glob("testdata/lzo/*.lzo")
	if len(files) < 5 {
		t.Fatalf("fixtures missing: %v", files)
	}
	for _, fn := range files {
		name := strings.TrimSuffix(filepath.Base(fn), ".lzo")
		comp, err := os.ReadFile(fn)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(strings.TrimSuffix(fn, ".lzo") + ".raw")
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, len(want)+16)
		n, err := lzo1xDecompress(comp, dst)
		if err != nil || !bytes.Equal(dst[:n], want) {
			t.Errorf("%s: %d bytes, err %v; equal %v", name, n, err, bytes.Equal(dst[:n], want))
		}
		// An output buffer one byte short is an overrun.
		if _, err := lzo1xDecompress(comp, make([]byte, len(want)-1)); err == nil {
			t.Errorf("%s: decoding into a short buffer succeeded", name)
		}
		for cut := 0; cut < len(comp); cut += 1 + len(comp)/50 {
			if n, err := lzo1xDecompress(comp[:cut], dst); err == nil {
				t.Errorf("%s cut at %d: no error (%d bytes)", name, cut, n)
			}
		}
		if _, err := lzo1xDecompress(append(bytes.Clone(comp), 0), dst); err == nil {
			t.Errorf("%s: trailing byte accepted", name)
		}
	}
}

func FuzzLZO1X(f *testing.F) {
	files, _ := filepath.Glob("testdata/lzo/*.lzo")
	for _, fn := range files {
		if b, err := os.ReadFile(fn); err == nil && len(b) < 8192 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dst := make([]byte, 4096)
		n, err := lzo1xDecompress(b, dst)
		if n < 0 || n > len(dst) {
			t.Fatalf("n = %d", n)
		}
		_ = err
	})
}
