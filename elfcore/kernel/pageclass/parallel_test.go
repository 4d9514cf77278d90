package pageclass

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"ldx/elfcore"
)

// randomKernel is a 6.1 kernel (64-page sections) of nSecs sections whose
// struct pages are random: garbage flags and types everywhere (as inside
// free blocks of a live snapshot), over it buddy blocks of orders 0–10 and
// compound pages of orders 1–9 (the larger span several sections), some
// misaligned or of impossible order. Sections 5 and 17 are absent, the
// map of section 23 unreadable.
func randomKernel(seed uint64, nSecs int) fakeMem {
	r := rand.New(rand.NewPCG(seed, 1))
	n := uint64(nSecs * nPages)
	mm := make([]byte, n*64)
	put := func(pfn uint64, p sp) {
		b := mm[pfn*64:]
		clear(b[:64])
		binary.LittleEndian.PutUint64(b[0:], p.flags)
		binary.LittleEndian.PutUint64(b[8:], p.head)
		b[16], b[17] = p.dtor, p.order
		binary.LittleEndian.PutUint64(b[24:], p.mapping)
		binary.LittleEndian.PutUint64(b[40:], p.private)
		binary.LittleEndian.PutUint32(b[48:], uint32(p.mapcount))
	}
	flagBits := []uint64{1 << 4, 1 << 13, 1 << 10, 1 << 19, 1 << 9}
	for pfn := range n {
		p := sp{mapcount: -1}
		for _, f := range flagBits {
			if r.IntN(4) == 0 {
				p.flags |= f
			}
		}
		if r.IntN(3) == 0 {
			p.mapping = 0xffff888001000 | uint64(r.IntN(2))
		}
		switch r.IntN(8) {
		case 0:
			p.mapcount, p.private = -129, uint64(r.IntN(12))
		case 1:
			p.mapcount = -257
		}
		put(pfn, p)
	}
	for pfn := uint64(0); pfn < n; {
		order := uint64(r.IntN(11))
		if r.IntN(3) > 0 {
			order = uint64(r.IntN(4))
		}
		if pfn&(1<<order-1) != 0 && r.IntN(10) > 0 {
			pfn++
			continue
		}
		switch r.IntN(3) {
		case 0: // a buddy block
			put(pfn, sp{mapcount: -129, private: order})
		case 1: // a compound page
			if order == 0 || order > 9 || pfn+1<<order > n {
				break
			}
			head := sp{flags: 1<<16 | flagBits[r.IntN(len(flagBits))], mapcount: -1}
			if r.IntN(2) == 0 {
				head.mapping = 0xffff888001001
			}
			put(pfn, head)
			first := sp{head: memMapVA + pfn*64 | 1, order: uint8(order), mapcount: -1}
			if r.IntN(20) == 0 {
				first.order = 30 // beyond MaxCompoundOrder
			}
			if r.IntN(4) == 0 {
				first.dtor = 2 // hugetlb
			}
			put(pfn+1, first)
			for q := pfn + 2; q < pfn+1<<order; q++ {
				put(q, sp{head: memMapVA + pfn*64 | 1, mapcount: -1})
			}
		}
		pfn += 1 << order
	}
	root := make([]byte, 8)
	binary.LittleEndian.PutUint64(root, tableVA)
	table := make([]byte, 4096)
	for i := range nSecs {
		smm := uint64(memMapVA | 0x7)
		switch i {
		case 5, 17:
			smm = 0
		case 23:
			smm = (memMapVA + 1<<30) | 0x7 // nothing there
		}
		binary.LittleEndian.PutUint64(table[i*16:], smm)
	}
	return fakeMem{rootVA: root, tableVA: table, memMapVA: mm}
}

// Classification on many workers in many runs decides exactly what one
// pass in pfn order does: the same pages, counts, anomalies and notes,
// however the runs cut through blocks.
func TestClassifyWorkers(t *testing.T) {
	const nSecs = 48
	ram := []elfcore.Range{{Start: 0, End: 1000 * 4096}, {Start: 1100 * 4096, End: (nSecs*nPages - 50) * 4096}}
	in := info(t, info61)
	for seed := range uint64(6) {
		mem := randomKernel(seed, nSecs)
		for _, level := range []Level{31, 16, 2 | 8, 4} {
			// One pass per chunk size: an unreadable chunk is one anomaly.
			want := map[uint64]*Result{}
			for _, chunk := range []uint64{16, 64} {
				r, err := classify(context.Background(), mem, in, level, ram, nil, tuning{workers: 1, chunk: chunk, group: 1 << 30})
				if err != nil {
					t.Fatal(err)
				}
				want[chunk] = r
			}
			if w := want[16]; w.Counts.Total() == 0 || w.Anomalies == 0 {
				t.Fatalf("seed %d level %d: the random kernel has %d excluded pages, %d anomalies", seed, level, w.Counts.Total(), w.Anomalies)
			}
			for _, tn := range []tuning{{workers: 1, chunk: 16, group: 1}, {workers: 2, chunk: 16, group: 1}, {workers: 3, chunk: 16, group: 2}, {workers: 7, chunk: 16, group: 5}, {workers: 2, chunk: 64}} {
				got, err := classify(context.Background(), mem, in, level, ram, nil, tn)
				want := want[tn.chunk]
				if err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("seed %d level %d %+v", seed, level, tn)
				if !slices.Equal(got.bits, want.bits) {
					for pfn := range uint64(nSecs * nPages) {
						if got.Excluded(pfn) != want.Excluded(pfn) {
							t.Fatalf("%s: pfn %d excluded %v, one pass %v", name, pfn, got.Excluded(pfn), want.Excluded(pfn))
						}
					}
				}
				if got.Counts != want.Counts || got.Anomalies != want.Anomalies || !slices.Equal(got.Notes, want.Notes) {
					t.Fatalf("%s: counts %+v anomalies %d %q; one pass %+v %d %q", name, got.Counts, got.Anomalies, got.Notes, want.Counts, want.Anomalies, want.Notes)
				}
			}
		}
	}
}
