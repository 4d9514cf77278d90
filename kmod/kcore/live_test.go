package kcore

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"ldx/elfcore"
)

// faulty reads 0xAA everywhere except in bad, where it fails.
type faulty struct{ bad []elfcore.Range }

func (f faulty) ReadAt(p []byte, off int64) (int, error) {
	for _, r := range f.bad {
		if uint64(off) < r.End && uint64(off)+uint64(len(p)) > r.Start {
			return 0, errors.New("EFAULT")
		}
	}
	for i := range p {
		p[i] = 0xAA
	}
	return len(p), nil
}

func TestLiveReaderUnreadable(t *testing.T) {
	bad := []elfcore.Range{{Start: 0x3000, End: 0x5000}, {Start: 0x9000, End: 0xa000}}
	l := newLiveReader(context.Background(), faulty{bad}, 0)
	buf := make([]byte, 0x10000)
	if n, err := l.ReadAt(buf, 0); n != len(buf) || err != nil {
		t.Fatalf("ReadAt = %d, %v; want the whole buffer, zero-filled where unreadable", n, err)
	}
	for pa := 0; pa < len(buf); pa += pageSize {
		inBad := (pa >= 0x3000 && pa < 0x5000) || (pa >= 0x9000 && pa < 0xa000)
		want := byte(0xAA)
		if inBad {
			want = 0
		}
		if !bytes.Equal(buf[pa:pa+pageSize], bytes.Repeat([]byte{want}, pageSize)) {
			t.Errorf("page %#x: want all %#x", pa, want)
		}
	}
	if got := l.Unreadable(); len(got) != 2 || got[0] != bad[0] || got[1] != bad[1] {
		t.Errorf("unreadable %v, want %v", got, bad)
	}
}

func TestLiveReaderPace(t *testing.T) {
	var slept time.Duration
	l := newLiveReader(context.Background(), faulty{}, 1<<20)
	clock := l.start
	l.now = func() time.Time { return clock }
	l.sleep = func(_ context.Context, d time.Duration) { slept += d; clock = clock.Add(d) }
	buf := make([]byte, 1<<20)
	for range 4 {
		l.ReadAt(buf, 0)
	}
	// 4 MiB at 1 MiB/s on a clock that only sleeping advances: 4 s.
	if slept != 4*time.Second {
		t.Errorf("slept %v for 4 MiB at 1 MiB/s, want about 4 s", slept)
	}
}
