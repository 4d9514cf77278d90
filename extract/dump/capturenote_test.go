package dump

import (
	"testing"
	"time"
)

func TestCaptureNoteRoundTrip(t *testing.T) {
	start := time.Date(2026, 12, 5, 4, 0, 0, 123456789, time.UTC)
	c := &CaptureNote{Method: "kcore", Start: start, End: start.Add(8191 * time.Millisecond), PagesChecked: 37, PagesChanged: 2, UnreadableBytes: 8192}
	n := c.Note()
	if len(n.Desc) != CaptureNoteSize || n.Name != NameLDX || n.Type != NT_LDX_CAPTURE {
		t.Fatalf("note %q type %d, %d bytes; want LDX type 1, %d bytes", n.Name, n.Type, len(n.Desc), CaptureNoteSize)
	}
	got, err := ParseCaptureNote(n.Desc)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Start.Equal(c.Start) || !got.End.Equal(c.End) || got.Method != c.Method || got.PagesChecked != 37 || got.PagesChanged != 2 || got.UnreadableBytes != 8192 {
		t.Errorf("round trip: %+v, want %+v", got, c)
	}
	for _, bad := range []string{"", "method=kcore\npages_checked=x\n", "no equals sign\n", "start=yesterday\nmethod=kcore\n"} {
		if _, err := ParseCaptureNote([]byte(bad)); err == nil {
			t.Errorf("ParseCaptureNote(%q) accepted", bad)
		}
	}
}

func FuzzParseCaptureNote(f *testing.F) {
	f.Add((&CaptureNote{Method: "kcore", Start: time.Unix(0, 0), End: time.Unix(9, 0), PagesChecked: 3}).Note().Desc)
	f.Add([]byte("method=kcore\nfuture_key=1\n"))
	f.Fuzz(func(t *testing.T, desc []byte) {
		c, err := ParseCaptureNote(desc)
		if err != nil {
			return
		}
		if len(c.Method) > CaptureNoteSize/2 {
			return // would not fit the fixed-size note again
		}
		again, err := ParseCaptureNote(c.Note().Desc)
		if err != nil {
			t.Fatalf("re-encoded note does not parse: %v", err)
		}
		if again.Method != c.Method || again.PagesChecked != c.PagesChecked || again.PagesChanged != c.PagesChanged || again.UnreadableBytes != c.UnreadableBytes {
			t.Fatalf("round trip changed %+v into %+v", c, again)
		}
	})
}
