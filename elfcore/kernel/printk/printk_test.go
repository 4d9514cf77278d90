package printk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"ldx/elfcore/kernel/kmem/kmemtest"
	"ldx/vmcoreinfo"
)

// check compares a Log's records with what the ring holds.
func check(t *testing.T, got *Log, want []Record) {
	t.Helper()
	if len(got.Records) != len(want) {
		t.Fatalf("%d records, want %d; skipped %v; problems %q", len(got.Records), len(want), got.Skipped, got.Problems)
	}
	for i := range want {
		g, w := got.Records[i], want[i]
		if !bytes.Equal(g.Text, w.Text) || g.TsNsec != w.TsNsec || g.Seq != w.Seq || g.SeqKnown != w.SeqKnown ||
			g.Caller != w.Caller || g.HasCaller != w.HasCaller || g.Subsystem != w.Subsystem || g.Device != w.Device || g.Truncated != w.Truncated {
			t.Errorf("record %d = %+v (text %q), want %+v (text %q)", i, g, g.Text, w, w.Text)
		}
	}
}

func TestLockless(t *testing.T) {
	for _, tc := range []struct {
		name           string
		countBits      uint
		sizeBits       uint
		n              int
		mutate         func(k *klog, want []Record) []Record
		skipped        map[string]int
		wantWrapped    bool
		wantProblemSub string
	}{
		{name: "a few records", countBits: 5, sizeBits: 12, n: 3},
		{name: "empty ring", countBits: 5, sizeBits: 12, n: 0},
		{
			// 60 records of ~40 bytes through a 512-byte text ring: most
			// descriptors are reusable, several blocks wrapped.
			name: "text ring wrapped", countBits: 6, sizeBits: 9, n: 60,
			skipped: map[string]int{SkipDropped: -1}, wantWrapped: true,
		},
		{
			// 40 records through 8 descriptors: the tail was pushed 32 times.
			name: "descriptor ring wrapped", countBits: 3, sizeBits: 14, n: 40,
		},
		{
			name: "record overwritten mid-way", countBits: 5, sizeBits: 12, n: 10,
			mutate: func(k *klog, want []Record) []Record {
				// The capture caught a writer copying a newer block over
				// record 4's data: its ID there is another one.
				_, b, _ := k.desc(k.tailID + 1 + 4)
				binary.LittleEndian.PutUint64(k.text[b&(k.size-1):], 0xdead)
				return append(want[:4:4], want[5:]...)
			},
			skipped: map[string]int{SkipCorrupt: 1},
		},
		{
			name: "corrupt descriptors", countBits: 5, sizeBits: 12, n: 10,
			mutate: func(k *klog, want []Record) []Record {
				base := k.tailID + 1
				// Garbage state_var.
				k.setDesc(base+1, 0x123456789abcdef, 0, 0)
				// Positions past the ring.
				sv, b, _ := k.desc(base + 3)
				k.setDesc(base+3, sv, b, b+k.size*3)
				// Odd positions that are neither data-less value.
				k.setDesc(base+5, sv&^idMask|(base+5), 5, 17)
				// text_len larger than the block: cut, not skipped.
				binary.LittleEndian.PutUint16(k.infos[k.slot(base+7)*infoSize+16:], 5000)
				want[7].Truncated = true
				want[7].Text = append(want[7].Text, make([]byte, (len(want[7].Text)+7)&^7-len(want[7].Text))...)
				// An info slot holding another record's seq.
				binary.LittleEndian.PutUint64(k.infos[k.slot(base+8)*infoSize:], 12345)
				return []Record{want[0], want[2], want[4], want[6], want[7], want[9]}
			},
			skipped: map[string]int{SkipCorrupt: 4},
		},
		{
			name: "writer still reserving the head", countBits: 5, sizeBits: 12, n: 6,
			mutate: func(k *klog, want []Record) []Record {
				k.add("half-written", 99, 1, stateReserved)
				return want
			},
			skipped: map[string]int{SkipReserved: 1},
		},
		{
			name: "committed but not finalized head is read", countBits: 5, sizeBits: 12, n: 6,
			mutate: func(k *klog, want []Record) []Record {
				k.add("continuation pending", 99, 1, stateCommit)
				return k.want()
			},
		},
		{
			name: "empty line and lost text", countBits: 5, sizeBits: 12, n: 4,
			mutate: func(k *klog, want []Record) []Record {
				k.add("", 500, 7, stateFinal)
				id := k.add("lost", 600, 7, stateFinal)
				sv, _, _ := k.desc(id)
				k.setDesc(id, sv, lposFailed, lposFailed)
				delete(k.truth, id)
				return k.want()
			},
			skipped: map[string]int{SkipLost: 1},
		},
		{
			name: "slot reused by a newer record", countBits: 5, sizeBits: 12, n: 10,
			mutate: func(k *klog, want []Record) []Record {
				id := k.tailID + 1 + 2
				sv, b, n := k.desc(id)
				k.setDesc(id, sv+k.count, b, n)
				return append(want[:2:2], want[3:]...)
			},
			skipped: map[string]int{SkipReused: 1},
		},
		{
			name: "reusable record between readable ones", countBits: 5, sizeBits: 12, n: 10,
			mutate: func(k *klog, want []Record) []Record {
				k.makeReusable(k.tailID + 1 + 5)
				return append(want[:5:5], want[6:]...)
			},
			skipped: map[string]int{SkipReused: 1},
		},
		{
			name: "head and tail impossibly far apart", countBits: 4, sizeBits: 12, n: 10,
			mutate: func(k *klog, want []Record) []Record {
				k.tailID = (k.headID - 1<<40) & idMask
				return want
			},
			skipped:        map[string]int{SkipCorrupt: -1},
			wantProblemSub: "IDs apart",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKlog(tc.countBits, tc.sizeBits)
			for i := range tc.n {
				k.add(msg(i), uint64(i)*1_234_567_891+17, uint32(i%3)|uint32(i%2)<<31, stateFinal)
			}
			want := k.want()
			if tc.mutate != nil {
				want = tc.mutate(k, want)
			}
			if tc.wantWrapped && k.wrapped == 0 {
				t.Fatal("test ring never wrapped a data block")
			}
			log, err := Read(k.mem(), locklessInfo(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if log.Format != Lockless || log.Ring.Count != k.count || log.Ring.TextSize != k.size {
				t.Errorf("ring %+v", log.Ring)
			}
			check(t, log, want)
			for reason, n := range tc.skipped {
				if got := log.Skipped[reason]; got != n && !(n < 0 && got > 0) {
					t.Errorf("skipped %q = %d, want %d (all: %v)", reason, got, n, log.Skipped)
				}
			}
			if tc.skipped == nil && log.SkippedTotal() != 0 {
				t.Errorf("skipped %v: %q", log.Skipped, log.Problems)
			}
			if tc.wantProblemSub != "" && !strings.Contains(strings.Join(log.Problems, "\n"), tc.wantProblemSub) {
				t.Errorf("problems %q lack %q", log.Problems, tc.wantProblemSub)
			}
		})
	}
}

func TestLocklessDevInfo(t *testing.T) {
	k := newKlog(4, 12)
	id := k.add("virtio_net virtio1 eth0: link up", 5, 1, stateFinal)
	inf := k.infos[k.slot(id)*infoSize:]
	copy(inf[24:], "net\x00")
	copy(inf[24+16:], "n2\x00")
	log, err := Read(k.mem(), locklessInfo(), nil)
	if err != nil || len(log.Records) != 1 {
		t.Fatal(log, err)
	}
	if r := log.Records[0]; r.Subsystem != "net" || r.Device != "n2" {
		t.Errorf("dev_info = %q %q", r.Subsystem, r.Device)
	}
}

func TestLocklessErrors(t *testing.T) {
	k := newKlog(4, 12)
	k.add("hello", 1, 1, stateFinal)
	mem := k.mem()
	for _, tc := range []struct {
		name   string
		mem    func() kmemtest.Mem
		info   func() *vmcoreinfo.Info
		substr string
	}{
		{"no ring keys", func() kmemtest.Mem { return mem }, func() *vmcoreinfo.Info {
			info := locklessInfo()
			info.Delete("SIZE(prb_desc)")
			info.Delete("OFFSET(printk_info.text_len)")
			return info
		}, "SIZE(prb_desc), OFFSET(printk_info.text_len)"},
		{"prb pointer unreadable", func() kmemtest.Mem { return mem[1:] }, locklessInfo, fmt.Sprintf("%#x", uint64(symPrb))},
		{"text ring not in the dump", func() kmemtest.Mem { return mem[:4] }, locklessInfo, fmt.Sprintf("%#x", uint64(addrText))},
		{"absurd geometry", func() kmemtest.Mem {
			m := append(kmemtest.Mem(nil), mem...)
			prb := append([]byte(nil), m[1].Data...)
			binary.LittleEndian.PutUint32(prb[dataRing:], 60)
			m[1] = kmemtest.Region{Base: addrRing, Data: prb}
			return m
		}, locklessInfo, "implausible"},
		{"field outside its structure", func() kmemtest.Mem { return mem }, func() *vmcoreinfo.Info {
			info := locklessInfo()
			info.Set("OFFSET(printk_info.ts_nsec)", "200")
			return info
		}, "printk_info.ts_nsec"},
		{"no log at all", func() kmemtest.Mem { return mem }, func() *vmcoreinfo.Info {
			info, _ := vmcoreinfo.ParseLenient([]byte("OSRELEASE=x\n"))
			return info
		}, "neither SYMBOL(prb)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(tc.mem(), tc.info(), nil)
			if err == nil || !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("error %v, want one containing %q", err, tc.substr)
			}
		})
	}
	// The byte limit applies before anything large is read.
	if _, err := Read(mem, locklessInfo(), &Options{MaxBytes: 1024}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("MaxBytes: %v", err)
	}
	if _, err := Read(mem, locklessInfo(), nil); err != nil {
		t.Error(err)
	}
	if _, err := Detect(func() *vmcoreinfo.Info {
		i, _ := vmcoreinfo.ParseLenient([]byte("SYMBOL(log_end)=1\n"))
		return i
	}()); !errors.Is(err, ErrNoLog) {
		t.Errorf("pre-3.5: %v", err)
	}
}

func TestStructured(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		n       int
		mutate  func(s *slog, want []Record) []Record
		wraps   bool
		skipped int
	}{
		{name: "a few records", size: 4096, n: 5},
		{name: "empty", size: 4096, n: 0},
		{name: "wrapped, oldest dropped", size: 1024, n: 50, wraps: true},
		{
			name: "zero header where the walk starts", size: 1024, n: 50, wraps: true,
			mutate: func(s *slog, want []Record) []Record {
				// A cycle: a zero header at 0 after the wrap.
				binary.LittleEndian.PutUint16(s.buf[8:], 0)
				return nil
			},
			skipped: 1,
		},
		{
			name: "corrupt length ends the walk", size: 4096, n: 8,
			mutate: func(s *slog, want []Record) []Record {
				binary.LittleEndian.PutUint16(s.buf[s.idx[3]+8:], 3)
				return want[:3]
			},
			skipped: 1,
		},
		{
			name: "length past the end", size: 4096, n: 8,
			mutate: func(s *slog, want []Record) []Record {
				binary.LittleEndian.PutUint16(s.buf[s.idx[5]+8:], 0xfff8)
				return want[:5]
			},
			skipped: 1,
		},
		{
			name: "text_len beyond the record", size: 4096, n: 3,
			mutate: func(s *slog, want []Record) []Record {
				binary.LittleEndian.PutUint16(s.buf[s.idx[1]+10:], 900)
				binary.LittleEndian.PutUint16(s.buf[s.idx[1]+12:], 0)
				n := binary.LittleEndian.Uint16(s.buf[s.idx[1]+8:])
				want[1].Text = s.buf[s.idx[1]+slogHdr : s.idx[1]+uint64(n)]
				want[1].Truncated = true
				want[1].Subsystem, want[1].Device = "", ""
				return want
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSlog(tc.size)
			for i := range tc.n {
				dict := ""
				if i%4 == 1 {
					dict = "SUBSYSTEM=pci\x00DEVICE=+pci:0000:00:01.0"
				}
				s.add(msg(i), dict, uint64(i)*987_654_321, uint32(i))
			}
			if tc.wraps && s.wraps == 0 {
				t.Fatal("test buffer never wrapped")
			}
			want := s.want()
			if tc.mutate != nil {
				want = tc.mutate(s, want)
			}
			log, err := Read(s.mem(), structuredInfo(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if log.Format != Structured {
				t.Errorf("format %s", log.Format)
			}
			if want != nil {
				check(t, log, want)
			}
			if got := log.SkippedTotal(); got != tc.skipped {
				t.Errorf("skipped %v (%q), want %d", log.Skipped, log.Problems, tc.skipped)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		rec  Record
		o    FormatOptions
		want string
	}{
		{Record{TsNsec: 1_661_395_123, Text: []byte("ldx-e2e-marker: hello")}, FormatOptions{},
			"[    1.661395] ldx-e2e-marker: hello\n"},
		{Record{TsNsec: 0, Text: nil}, FormatOptions{}, "[    0.000000] \n"},
		{Record{TsNsec: 123456_000_999_999, Text: []byte("big")}, FormatOptions{}, "[123456.000999] big\n"},
		// Newlines continue under the text; tabs stay; control bytes and
		// bytes above 0x7e are escaped.
		{Record{TsNsec: 2_000_000, Text: []byte("a\nb\tc\x01\xc3\xa9")}, FormatOptions{},
			"[    0.002000] a\n               b\tc\\x01\\xc3\\xa9\n"},
		{Record{TsNsec: 5, Caller: 123, HasCaller: true, Text: []byte("x\ny")}, FormatOptions{Caller: true},
			"[    0.000000][  T123] x\n                       y\n"},
		{Record{TsNsec: 5, Caller: 0x80000003, HasCaller: true, Seq: 42, Text: []byte("x")}, FormatOptions{Caller: true, Seq: true},
			"#42 [    0.000000][    C3] x\n"},
		{Record{TsNsec: 5, Text: []byte("no caller recorded")}, FormatOptions{Caller: true},
			"[    0.000000] no caller recorded\n"},
	} {
		if got := string(AppendText(nil, &tc.rec, tc.o)); got != tc.want {
			t.Errorf("AppendText(%q, %+v) =\n%q\nwant\n%q", tc.rec.Text, tc.o, got, tc.want)
		}
	}
	if got := EscapeText([]byte("a\nb\x00\xff")); got != "a\nb\\x00\\xff" {
		t.Errorf("EscapeText = %q", got)
	}
}
