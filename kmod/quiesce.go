package kmod

import (
	"context"
	"time"
)

// QuiesceOptions bound the wait between FINISH and UNINIT. FINISH only
// queues the header and notes and returns; the kernel thread drains its
// queues in 20 ms steps and stops for good at UNINIT, so UNINIT right
// after FINISH loses whatever is still queued — 0 to 122 pages in real
// runs of livedump.sh, none in runs that waited 5 s (package
// documentation: "Setups that crash the machine"; livedump defect K-4). The
// wait ends when the device's write counters have not moved and nothing
// has been in flight for QuietFor, and never before MinWait.
type QuiesceOptions struct {
	MinWait  time.Duration // default 5 s
	QuietFor time.Duration // default 2 s
	MaxWait  time.Duration // default 2 min: then the capture fails
	Poll     time.Duration // default 100 ms
}

func (o QuiesceOptions) withDefaults() QuiesceOptions {
	if o.MinWait <= 0 {
		o.MinWait = 5 * time.Second
	}
	if o.QuietFor <= 0 {
		o.QuietFor = 2 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 2 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	return o
}

// quietResult says how the wait ended.
type quietResult struct {
	Waited  time.Duration
	Sectors uint64 // 512-byte sectors written meanwhile
	Blind   bool   // the counters could not be read: waited MinWait+QuietFor
	Timeout bool   // never quiet within MaxWait
}

// waitQuiet waits until the device is quiet (see QuiesceOptions). tick is
// called every poll with the time waited and how long it has been quiet.
func waitQuiet(ctx context.Context, stat func() (DiskStat, error), o QuiesceOptions, tick func(waited, quiet time.Duration)) (quietResult, error) {
	start := time.Now()
	sleep := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	first, err := stat()
	if err != nil {
		err := sleep(o.MinWait + o.QuietFor)
		return quietResult{Waited: time.Since(start), Blind: true}, err
	}
	last, quietSince := first, start
	for {
		if err := sleep(o.Poll); err != nil {
			return quietResult{Waited: time.Since(start), Sectors: last.WriteSectors - first.WriteSectors}, err
		}
		now := time.Now()
		cur, err := stat()
		if err != nil {
			return quietResult{Waited: now.Sub(start)}, err
		}
		if cur.WriteIOs != last.WriteIOs || cur.WriteSectors != last.WriteSectors || cur.InFlight != 0 {
			quietSince = now
		}
		last = cur
		waited, quiet := now.Sub(start), now.Sub(quietSince)
		if tick != nil {
			tick(waited, quiet)
		}
		res := quietResult{Waited: waited, Sectors: cur.WriteSectors - first.WriteSectors}
		if waited >= o.MinWait && quiet >= o.QuietFor {
			return res, nil
		}
		if waited >= o.MaxWait {
			res.Timeout = true
			return res, nil
		}
	}
}
