package kcore

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"ldx/elfcore"
)

// liveReader reads live memory for the copy: a range that cannot be read
// is zero-filled and recorded page by page instead of ending the capture,
// and the pace is capped at rate bytes per second (0: none).
type liveReader struct {
	ctx   context.Context
	r     io.ReaderAt
	rate  int64
	start time.Time
	total int64
	sleep func(context.Context, time.Duration)
	now   func() time.Time

	mu  sync.Mutex
	bad []elfcore.Range
}

func newLiveReader(ctx context.Context, r io.ReaderAt, rate int64) *liveReader {
	return &liveReader{ctx: ctx, r: r, rate: rate, start: time.Now(), sleep: sleepCtx, now: time.Now}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (l *liveReader) ReadAt(p []byte, off int64) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	if _, err := l.r.ReadAt(p, off); err != nil {
		for o := 0; o < len(p); o += pageSize {
			page := p[o:min(len(p), o+pageSize)]
			if _, err := l.r.ReadAt(page, off+int64(o)); err != nil {
				clear(page)
				l.record(uint64(off)+uint64(o), uint64(len(page)))
			}
		}
	}
	l.pace(len(p))
	return len(p), l.ctx.Err()
}

// pace sleeps until the bytes read so far fit the rate.
func (l *liveReader) pace(n int) {
	l.total += int64(n)
	if l.rate <= 0 {
		return
	}
	due := time.Duration(float64(l.total) / float64(l.rate) * float64(time.Second))
	if ahead := due - l.now().Sub(l.start); ahead > 0 {
		l.sleep(l.ctx, ahead)
	}
}

func (l *liveReader) record(pa, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k := len(l.bad); k > 0 && l.bad[k-1].End == pa {
		l.bad[k-1].End += n
		return
	}
	l.bad = append(l.bad, elfcore.Range{Start: pa, End: pa + n})
}

// Unreadable returns the ranges that could not be read (stored as zeros).
func (l *liveReader) Unreadable() []elfcore.Range {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]elfcore.Range(nil), l.bad...)
}

// ParseRate parses a byte rate: a number with an optional K, M, G or T
// (powers of 1024) and an optional "/s" or "B/s".
func ParseRate(s string) (int64, error) {
	var n float64
	var unit string
	if _, err := fmt.Sscanf(s, "%g%s", &n, &unit); err != nil {
		if _, err := fmt.Sscanf(s, "%g", &n); err != nil {
			return 0, fmt.Errorf("rate %q: expected bytes per second such as 200M", s)
		}
	}
	mult := map[string]float64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
	u := unit
	for _, suf := range []string{"/s", "B"} {
		if len(u) >= len(suf) && u[len(u)-len(suf):] == suf {
			u = u[:len(u)-len(suf)]
		}
	}
	m, ok := mult[u]
	if !ok || n <= 0 {
		return 0, fmt.Errorf("rate %q: expected bytes per second such as 200M", s)
	}
	return int64(n * m), nil
}
