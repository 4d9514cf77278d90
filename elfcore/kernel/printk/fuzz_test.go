package printk

import (
	"encoding/binary"
	"fmt"
	"testing"

	"ldx/elfcore/kernel/kmem/kmemtest"
	"ldx/vmcoreinfo"
)

// The fuzz input is a mode byte and one blob of kernel memory mapped at
// fuzzBase. Mode bit 0 chooses the ring format: 0 the lockless ring with
// SYMBOL(prb) at fuzzBase, 1 the structured log_buf with SYMBOL(log_buf),
// log_buf_len, log_first_idx, clear_idx and log_next_idx at fuzzBase,
// +8, +12, +16 and +20. Every pointer and index in the blob is the
// fuzzer's to corrupt. Seeds are rings the emulator builds, and in
// testdata/fuzz/FuzzRead rings refilled with the newest records of real
// Debian 6.1 and 6.12 dumps (TestWriteFuzzSeeds, build tag e2e).
const fuzzBase = 0xffffffff82000000

func fuzzInfo(structured bool) *vmcoreinfo.Info {
	var text []byte
	if structured {
		text = fmt.Appendf(nil, structuredKeys, uint64(fuzzBase), uint64(fuzzBase+8), uint64(fuzzBase+12), uint64(fuzzBase+16), uint64(fuzzBase+20))
	} else {
		text = fmt.Appendf(nil, locklessKeys, uint64(fuzzBase), uint64(fuzzBase+8))
	}
	info, _ := vmcoreinfo.ParseLenient(text)
	return info
}

// locklessBlob lays a lockless ring out contiguously at fuzzBase: the prb
// pointer, the printk_ringbuffer, the descriptors, the infos, the text.
func locklessBlob(k *klog) []byte {
	descs := uint64(fuzzBase + 8 + prbSize)
	infos := descs + uint64(len(k.descs))
	text := infos + uint64(len(k.infos))
	b := binary.LittleEndian.AppendUint64(nil, fuzzBase+8)
	prb := make([]byte, prbSize)
	binary.LittleEndian.PutUint32(prb[0:], uint32(bitsOf(k.count)))
	binary.LittleEndian.PutUint64(prb[8:], descs)
	binary.LittleEndian.PutUint64(prb[16:], infos)
	binary.LittleEndian.PutUint64(prb[24:], k.headID)
	binary.LittleEndian.PutUint64(prb[32:], k.tailID)
	binary.LittleEndian.PutUint32(prb[dataRing:], uint32(bitsOf(k.size)))
	binary.LittleEndian.PutUint64(prb[dataRing+8:], text)
	b = append(b, prb...)
	b = append(b, k.descs...)
	b = append(b, k.infos...)
	return append([]byte{0}, append(b, k.text...)...)
}

// structuredBlob lays a log_buf out at fuzzBase: the five variables
// (24 bytes), then the buffer.
func structuredBlob(s *slog) []byte {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint64(hdr[0:], fuzzBase+24)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(s.buf)))
	binary.LittleEndian.PutUint32(hdr[12:], uint32(s.first))
	binary.LittleEndian.PutUint32(hdr[16:], uint32(s.first))
	binary.LittleEndian.PutUint32(hdr[20:], uint32(s.next))
	return append([]byte{1}, append(hdr, s.buf...)...)
}

func FuzzRead(f *testing.F) {
	for _, g := range []struct{ cb, sb uint }{{3, 8}, {4, 9}, {2, 10}} {
		k := newKlog(g.cb, g.sb)
		for i := range 20 {
			k.add(msg(i), uint64(i)*1e9, uint32(i), stateFinal)
		}
		f.Add(locklessBlob(k))
	}
	s := newSlog(512)
	for i := range 20 {
		s.add(msg(i), "SUBSYSTEM=x\x00DEVICE=y", uint64(i), uint32(i))
	}
	f.Add(structuredBlob(s))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		structured := data[0]&1 != 0
		mem := kmemtest.Mem{{Base: fuzzBase, Data: data[1:]}}
		log, err := Read(mem, fuzzInfo(structured), &Options{MaxBytes: 1 << 20})
		if err != nil {
			return
		}
		limit := log.Ring.Count
		if structured {
			limit = log.Ring.TextSize/slogHdr + 1
		}
		if uint64(len(log.Records)) > limit {
			t.Fatalf("%d records from a ring that holds at most %d", len(log.Records), limit)
		}
		var out []byte
		for i := range log.Records {
			r := &log.Records[i]
			if uint64(len(r.Text)) > log.Ring.TextSize {
				t.Fatalf("record %d: %d bytes of text from a %d-byte ring", i, len(r.Text), log.Ring.TextSize)
			}
			out = AppendText(out[:0], r, FormatOptions{Caller: true, Seq: true})
			_ = EscapeText(r.Text)
		}
	})
}
