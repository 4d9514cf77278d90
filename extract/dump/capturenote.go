package dump

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"ldx/elfcore"
)

// The LDX note is ldx's own note in a dump it captured from a running
// kernel (ldx capture --kcore): such memory is read while the kernel keeps
// changing it, so the dump is not a snapshot of one instant. The note says
// so, and how much of what readers depend on most changed during the read.
// Its descriptor is text, one "key=value" line per field, NUL-padded to
// CaptureNoteSize bytes (a fixed size, because the note's room in the
// output is laid out before the capture ends):
//
//	method=kcore             how the memory was read
//	start=RFC 3339 time      the read began (UTC, nanoseconds)
//	end=RFC 3339 time        the read ended
//	pages_checked=N          pages read first, hashed, and read again at the end
//	pages_changed=N          of those, pages whose bytes differed
//	unreadable_bytes=N       memory that could not be read, stored as zeros
//	cpu_registers=none       the CPU notes carry no registers
//
// Readers ignore keys they do not know.
const (
	NameLDX         = "LDX"
	NT_LDX_CAPTURE  = 1
	CaptureNoteSize = 512
)

// CaptureNote is the content of the LDX note.
type CaptureNote struct {
	Method          string
	Start, End      time.Time
	PagesChecked    int
	PagesChanged    int
	UnreadableBytes uint64
}

// Note encodes c as the LDX note.
func (c *CaptureNote) Note() elfcore.Note {
	var b strings.Builder
	fmt.Fprintf(&b, "method=%s\nstart=%s\nend=%s\npages_checked=%d\npages_changed=%d\nunreadable_bytes=%d\ncpu_registers=none\n",
		c.Method, c.Start.UTC().Format(time.RFC3339Nano), c.End.UTC().Format(time.RFC3339Nano),
		c.PagesChecked, c.PagesChanged, c.UnreadableBytes)
	desc := make([]byte, CaptureNoteSize)
	copy(desc, b.String())
	return elfcore.Note{Name: NameLDX, Type: NT_LDX_CAPTURE, Desc: desc, Off: -1}
}

// ParseCaptureNote decodes an LDX note's descriptor.
func ParseCaptureNote(desc []byte) (*CaptureNote, error) {
	text := string(bytes.TrimRight(desc, "\x00"))
	c := &CaptureNote{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("LDX note line %d %q: expected key=value", i+1, line)
		}
		var err error
		switch k {
		case "method":
			c.Method = v
		case "start":
			c.Start, err = time.Parse(time.RFC3339Nano, v)
		case "end":
			c.End, err = time.Parse(time.RFC3339Nano, v)
		case "pages_checked":
			c.PagesChecked, err = strconv.Atoi(v)
		case "pages_changed":
			c.PagesChanged, err = strconv.Atoi(v)
		case "unreadable_bytes":
			c.UnreadableBytes, err = strconv.ParseUint(v, 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("LDX note line %d %q: %v", i+1, line, err)
		}
	}
	if c.Method == "" {
		return nil, fmt.Errorf("LDX note: no method")
	}
	return c, nil
}

// CaptureNote returns the dump's LDX note, or nil when it has none (or an
// unreadable one).
func (d *Dump) CaptureNote() *CaptureNote {
	for _, n := range d.Notes {
		if n.Is(NameLDX, NT_LDX_CAPTURE) {
			if c, err := ParseCaptureNote(n.Desc); err == nil {
				return c
			}
		}
	}
	return nil
}
