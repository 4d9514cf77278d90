package guest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

type cpioEntry struct {
	name         string
	mode         uint32
	data         string
	major, minor uint32
}

// readCPIO is an independent newc reader, strict about the magic and the
// 4-byte alignment the kernel's unpacker relies on.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("header at unaligned offset %d", off)
		}
		if len(b)-off < 110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, namesz := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(b[off+110 : off+110+namesz-1])
		if b[off+110+namesz-1] != 0 {
			t.Fatalf("%s: name not NUL-terminated", name)
		}
		off += 110 + namesz
		off += pad4(off)
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name, mode, string(b[off : off+size]), rmaj, rmin})
		off += size
		off += pad4(off)
	}
}

func TestCPIOWriter(t *testing.T) {
	tests := []struct {
		name  string
		build func(c *CPIOWriter)
		want  []cpioEntry
	}{
		{
			name:  "empty archive",
			build: func(c *CPIOWriter) {},
			want:  nil,
		},
		{
			name: "file sizes around the alignment",
			build: func(c *CPIOWriter) {
				for n := 0; n <= 5; n++ {
					c.File(fmt.Sprintf("f%d", n), 0o644, []byte(strings.Repeat("x", n)))
				}
			},
			want: func() []cpioEntry {
				var w []cpioEntry
				for n := 0; n <= 5; n++ {
					w = append(w, cpioEntry{name: fmt.Sprintf("f%d", n), mode: syscall.S_IFREG | 0o644, data: strings.Repeat("x", n)})
				}
				return w
			}(),
		},
		{
			name: "parents created once, absolute names made relative",
			build: func(c *CPIOWriter) {
				c.File("/a/b/c", 0o755, []byte("hi"))
				c.Dir("a/b", 0o700) // exists already: no second entry
				c.Symlink("a/l", "/bin/busybox")
				c.CharDev("/dev/console", 0o600, 5, 1)
			},
			want: []cpioEntry{
				{name: "a", mode: syscall.S_IFDIR | 0o755},
				{name: "a/b", mode: syscall.S_IFDIR | 0o755},
				{name: "a/b/c", mode: syscall.S_IFREG | 0o755, data: "hi"},
				{name: "a/l", mode: syscall.S_IFLNK | 0o777, data: "/bin/busybox"},
				{name: "dev", mode: syscall.S_IFDIR | 0o755},
				{name: "dev/console", mode: syscall.S_IFCHR | 0o600, major: 5, minor: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := newCPIOWriter(&buf)
			tt.build(c)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			got := readCPIO(t, buf.Bytes())
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

// Cross-check with GNU cpio when the host has it.
func TestCPIOWriterGNUCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("no cpio")
	}
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.File("bin/x", 0o755, []byte("abc"))
	c.Symlink("bin/y", "x")
	c.Close()
	f := t.TempDir() + "/a.cpio"
	os.WriteFile(f, buf.Bytes(), 0o644)
	out, err := exec.Command("cpio", "-it", "--quiet", "-F", f).CombinedOutput()
	if err != nil {
		t.Fatalf("cpio: %v: %s", err, out)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != "bin bin/x bin/y" {
		t.Fatalf("cpio -t: %q", out)
	}
}
