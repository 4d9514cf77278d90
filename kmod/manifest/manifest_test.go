package manifest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"ldx/elfcore"
)

type device []byte

func (d device) ReadAt(p []byte, off int64) (int, error) { return bytes.NewReader(d).ReadAt(p, off) }

func TestRoundTrip(t *testing.T) {
	m := &Manifest{
		Nonce: NewNonce(), Time: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC),
		Release: "6.1.0-50-cloud-amd64", PresentCPUs: 4,
		RAM:            []elfcore.Range{{Start: 0x1000, End: 0x9f000}, {Start: 0x100000, End: 0x1ffdf000}},
		VMCOREINFONote: elfcore.Range{Start: 0x1f5e0000, End: 0x1f5e0000 + 0x1024},
		Prepared:       Marked,
	}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(enc)%4096 != 0 {
		t.Errorf("encoded length %d not page aligned", len(enc))
	}
	dev := make(device, 0x100000)
	copy(dev[Offset:], enc)
	got, err := Read(dev)
	if err != nil {
		t.Fatal(err)
	}
	if got.Nonce != m.Nonce || got.Release != m.Release || len(got.RAM) != 2 || got.RAM[1] != m.RAM[1] || got.Prepared != Marked || !got.Time.Equal(m.Time) {
		t.Errorf("got %+v", got)
	}
	if !got.IsRAM(0x100000, 0x200000) || got.IsRAM(0x9f000, 0xa0000) {
		t.Error("IsRAM wrong")
	}
}

func TestReadErrors(t *testing.T) {
	m := &Manifest{Nonce: NewNonce()}
	enc, _ := m.Encode()
	tests := []struct {
		name string
		dev  func() device
		want string
	}{
		{"empty device", func() device { return make(device, 0x100000) }, "none"},
		{"short device", func() device { return make(device, 0x1000) }, "none"},
		{"damaged body", func() device {
			d := make(device, 0x100000)
			copy(d[Offset:], enc)
			d[Offset+40] ^= 0xff
			return d
		}, "CRC-32C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(tt.dev())
			if tt.want == "none" {
				if !errors.Is(err, ErrNone) {
					t.Fatalf("err = %v, want ErrNone", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMarker(t *testing.T) {
	n := NewNonce()
	page := make([]byte, 4096)
	mk := Marker(n, 0x1234)
	copy(page, mk[:])
	if !IsMarker(page, n, 0x1234) {
		t.Error("own marker not recognised")
	}
	if IsMarker(page, n, 0x1235) {
		t.Error("marker of another pfn accepted")
	}
	if IsMarker(page, NewNonce(), 0x1234) {
		t.Error("marker of another run accepted")
	}
	page[4095] = 1
	if IsMarker(page, n, 0x1234) {
		t.Error("written page accepted as marker")
	}
}
