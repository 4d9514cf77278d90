package printk

import (
	"encoding/binary"
	"fmt"
	"strings"

	"ldx/elfcore/kernel/kmem/kmemtest"
	"ldx/kmod/kmodtest"
	"ldx/vmcoreinfo"
)

// This file emulates the kernel's printk ring buffers closely enough to
// build the memory of a dump in tests: the lockless ring as
// kernel/printk/printk_ringbuffer.c writes it (DESC0_ID and BLK0_LPOS
// start values, IDs crossing 2^32, data blocks that wrap stored whole at
// the start with their ID at both places, descriptors made reusable when
// their text is overwritten, the tail pushed when the descriptor ring is
// full), and the structured log_buf of 3.5–5.9 (records aligned to 8, a
// zero header where the writer wrapped, the oldest records dropped).

// Addresses of the test kernel's ring (kernel image addresses).
const (
	symPrb     = 0xffffffff81ff0000 // SYMBOL(prb): the pointer
	addrRing   = 0xffffffff82000000 // printk_rb_static
	addrDescs  = 0xffffffff82100000
	addrInfos  = 0xffffffff82200000
	addrText   = 0xffffffff82400000
	symLogBuf  = 0xffffffff81ff1000 // structured: SYMBOL(log_buf) and friends
	addrLogBuf = 0xffffffff83000000
)

// Layout of a 6.1 x86_64 kernel (from a Debian 6.1 dump's VMCOREINFO).
const (
	prbSize   = 88
	descSize  = 24
	infoSize  = 88
	dataRing  = 48 // OFFSET(printk_ringbuffer.text_data_ring)
	stateDesc = 2  // finalized
)

// locklessKeys are the printk keys of a real kernel (kmodtest's
// template) with prb and printk_rb_static as %x verbs.
var locklessKeys = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(prb)=%x\nSYMBOL(printk_rb_static)=%x\n" +
	kmodtest.TemplateLines("SIZE(printk_ringbuffer)", "OFFSET(atomic_long_t.counter)", 0)

func locklessInfo() *vmcoreinfo.Info {
	info, _ := vmcoreinfo.ParseLenient(fmt.Appendf(nil, locklessKeys, uint64(symPrb), uint64(addrRing)))
	return info
}

// klog is the kernel's lockless ring.
type klog struct {
	count, size        uint64
	descs, infos, text []byte
	headID, tailID     uint64
	headLpos, tailLpos uint64
	nextSeq            uint64
	wrapped            int // data blocks stored wrapped
	// truth is what a correct reader returns: the committed or finalized
	// records between tail and head, oldest first.
	truth map[uint64]Record // by ID
}

func newKlog(countBits, sizeBits uint) *klog {
	k := &klog{count: 1 << countBits, size: 1 << sizeBits, truth: map[uint64]Record{}}
	k.descs = make([]byte, k.count*descSize)
	k.infos = make([]byte, k.count*infoSize)
	k.text = make([]byte, k.size)
	// prb_init / _DEFINE_PRINTKRB: descriptor count-1 is the reusable
	// initial head and tail, DESC0_ID; the data ring starts at BLK0_LPOS.
	id0 := uint64(uint32(-(uint32(k.count) + 1)))
	k.headID, k.tailID = id0, id0
	k.setDesc(id0, stateReusableSV(id0), lposFailed, lposFailed)
	k.headLpos, k.tailLpos = -k.size, -k.size
	return k
}

func stateReusableSV(id uint64) uint64 { return 3<<62 | id }

func (k *klog) slot(id uint64) uint64 { return id & (k.count - 1) }

func (k *klog) setDesc(id, sv, begin, next uint64) {
	d := k.descs[k.slot(id)*descSize:]
	binary.LittleEndian.PutUint64(d[0:], sv)
	binary.LittleEndian.PutUint64(d[8:], begin)
	binary.LittleEndian.PutUint64(d[16:], next)
}

func (k *klog) desc(id uint64) (sv, begin, next uint64) {
	d := k.descs[k.slot(id)*descSize:]
	return binary.LittleEndian.Uint64(d), binary.LittleEndian.Uint64(d[8:]), binary.LittleEndian.Uint64(d[16:])
}

// makeReusable marks a record's descriptor reusable: its text is gone.
func (k *klog) makeReusable(id uint64) {
	sv, b, n := k.desc(id)
	if sv&idMask == id {
		k.setDesc(id, stateReusableSV(id), b, n)
	}
	delete(k.truth, id)
}

// pushDataTail invalidates the oldest data blocks until lpos is free
// (data_push_tail): every record whose block begins before lpos loses it.
func (k *klog) pushDataTail(lpos uint64) {
	for id := k.tailID; ; id = (id + 1) & idMask {
		if sv, b, n := k.desc(id); sv&idMask == id && b&1 == 0 && int64(b-lpos) < 0 {
			k.makeReusable(id)
			if int64(n-k.tailLpos) > 0 {
				k.tailLpos = n
			}
		}
		if id == k.headID {
			break
		}
	}
	if int64(lpos-k.tailLpos) > 0 {
		k.tailLpos = lpos
	}
}

// add stores a record as prb_reserve + prb_final_commit do and returns
// its ID. state is the descriptor state to leave it in.
func (k *klog) add(text string, ts uint64, caller uint32, state uint64) uint64 {
	id := (k.headID + 1) & idMask
	if (id-k.count)&idMask == k.tailID { // desc_push_tail
		_, _, n := k.desc(k.tailID)
		if int64(n-k.tailLpos) > 0 && n&1 == 0 {
			k.pushDataTail(n)
		}
		k.makeReusable(k.tailID)
		k.tailID = (k.tailID + 1) & idMask
	}
	begin, next := uint64(lposEmpty), uint64(lposEmpty)
	if len(text) > 0 {
		sz := (uint64(len(text))+7)&^7 + idSize
		begin = k.headLpos
		next = begin + sz
		wraps := begin/k.size != next/k.size
		if wraps { // get_next_lpos: stored whole at the start of the next wrap
			next = (next &^ (k.size - 1)) + sz
		}
		if int64(next-k.tailLpos) > int64(k.size) {
			k.pushDataTail(next - k.size)
		}
		at := begin & (k.size - 1)
		binary.LittleEndian.PutUint64(k.text[at:], id)
		if wraps {
			at = 0
			binary.LittleEndian.PutUint64(k.text[0:], id)
			k.wrapped++
		}
		copy(k.text[at+idSize:], text)
		k.headLpos = next
	}
	k.setDesc(id, state<<62|id, begin, next)
	inf := k.infos[k.slot(id)*infoSize:]
	clear(inf[:infoSize])
	seq := k.nextSeq
	k.nextSeq++
	binary.LittleEndian.PutUint64(inf[0:], seq)
	binary.LittleEndian.PutUint64(inf[8:], ts)
	binary.LittleEndian.PutUint16(inf[16:], uint16(len(text)))
	binary.LittleEndian.PutUint32(inf[20:], caller)
	k.headID = id
	if state == stateCommit || state == stateFinal {
		k.truth[id] = Record{Seq: seq, SeqKnown: true, TsNsec: ts, Caller: caller, HasCaller: true, Text: []byte(text)}
	}
	return id
}

// want returns the records a correct reader returns, oldest first.
func (k *klog) want() []Record {
	var out []Record
	for id := k.tailID; ; id = (id + 1) & idMask {
		if r, ok := k.truth[id]; ok {
			out = append(out, r)
		}
		if id == k.headID {
			break
		}
	}
	return out
}

// mem lays the ring out in kernel memory.
func (k *klog) mem() kmemtest.Mem {
	prb := make([]byte, prbSize)
	binary.LittleEndian.PutUint32(prb[0:], uint32(bitsOf(k.count)))
	binary.LittleEndian.PutUint64(prb[8:], addrDescs)
	binary.LittleEndian.PutUint64(prb[16:], addrInfos)
	binary.LittleEndian.PutUint64(prb[24:], k.headID)
	binary.LittleEndian.PutUint64(prb[32:], k.tailID)
	binary.LittleEndian.PutUint32(prb[dataRing:], uint32(bitsOf(k.size)))
	binary.LittleEndian.PutUint64(prb[dataRing+8:], addrText)
	binary.LittleEndian.PutUint64(prb[dataRing+16:], k.headLpos)
	binary.LittleEndian.PutUint64(prb[dataRing+24:], k.tailLpos)
	ptr := binary.LittleEndian.AppendUint64(nil, addrRing)
	return kmemtest.Mem{{Base: symPrb, Data: ptr}, {Base: addrRing, Data: prb}, {Base: addrDescs, Data: k.descs}, {Base: addrInfos, Data: k.infos}, {Base: addrText, Data: k.text}}
}

func bitsOf(n uint64) uint {
	b := uint(0)
	for 1<<b < n {
		b++
	}
	return b
}

// Structured log_buf (3.5–5.9) with CONFIG_PRINTK_CALLER: struct
// printk_log is ts_nsec u64, len u16, text_len u16, dict_len u16,
// facility u8, flags:5/level:3 u8, caller_id u32, padded to 24 bytes.
const structuredKeys = `OSRELEASE=5.4.0-test
PAGESIZE=4096
SYMBOL(log_buf)=%x
SYMBOL(log_buf_len)=%x
SYMBOL(log_first_idx)=%x
SYMBOL(clear_idx)=%x
SYMBOL(log_next_idx)=%x
SIZE(printk_log)=24
OFFSET(printk_log.ts_nsec)=0
OFFSET(printk_log.len)=8
OFFSET(printk_log.text_len)=10
OFFSET(printk_log.dict_len)=12
OFFSET(printk_log.caller_id)=16
`

const slogHdr = 24

func structuredInfo() *vmcoreinfo.Info {
	s := uint64(symLogBuf)
	info, _ := vmcoreinfo.ParseLenient(fmt.Appendf(nil, structuredKeys, s, s+8, s+12, s+16, s+20))
	return info
}

// slog is the kernel's structured log_buf.
type slog struct {
	buf         []byte
	first, next uint64
	recs        []Record // live records, oldest first
	idx         []uint64 // their indexes
	wraps       int
}

func newSlog(size int) *slog { return &slog{buf: make([]byte, size)} }

// add stores a record as log_store does: make room by dropping the oldest
// records (log_make_free_space: room for the record and one more header),
// then wrap with a zero header when the record and one more header do not
// fit before the end.
func (s *slog) add(text, dict string, ts uint64, caller uint32) {
	size := uint64(len(s.buf))
	n := (slogHdr + uint64(len(text)+len(dict)) + 7) &^ 7
	hasSpace := func() bool {
		free := s.first - s.next
		if s.next > s.first {
			free = max(size-s.next, s.first)
		}
		return free >= n+slogHdr
	}
	for len(s.recs) > 0 && !hasSpace() {
		s.first = s.idx[0] + uint64(binary.LittleEndian.Uint16(s.buf[s.idx[0]+8:]))
		s.recs, s.idx = s.recs[1:], s.idx[1:]
		if len(s.idx) > 0 {
			s.first = s.idx[0]
		}
	}
	if s.next+n+slogHdr > size {
		clear(s.buf[s.next : s.next+slogHdr])
		s.next = 0
		s.wraps++
	}
	h := s.buf[s.next:]
	clear(h[:n])
	binary.LittleEndian.PutUint64(h[0:], ts)
	binary.LittleEndian.PutUint16(h[8:], uint16(n))
	binary.LittleEndian.PutUint16(h[10:], uint16(len(text)))
	binary.LittleEndian.PutUint16(h[12:], uint16(len(dict)))
	binary.LittleEndian.PutUint32(h[16:], caller)
	copy(h[slogHdr:], text)
	copy(h[slogHdr+uint64(len(text)):], dict)
	r := Record{TsNsec: ts, Caller: caller, HasCaller: true, Text: []byte(text)}
	r.Subsystem, r.Device = parseDict([]byte(dict))
	s.recs = append(s.recs, r)
	s.idx = append(s.idx, s.next)
	s.next += n
}

func (s *slog) want() []Record {
	out := make([]Record, len(s.recs))
	for i, r := range s.recs {
		r.Seq = uint64(i)
		out[i] = r
	}
	return out
}

func (s *slog) mem() kmemtest.Mem {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint64(hdr[0:], addrLogBuf)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(s.buf)))
	binary.LittleEndian.PutUint32(hdr[12:], uint32(s.first))
	binary.LittleEndian.PutUint32(hdr[16:], uint32(s.first)) // clear_idx
	binary.LittleEndian.PutUint32(hdr[20:], uint32(s.next))
	return kmemtest.Mem{{Base: symLogBuf, Data: hdr}, {Base: addrLogBuf, Data: s.buf}}
}

// msg makes the n-th test message, of varying length.
func msg(n int) string {
	return fmt.Sprintf("message %d %s", n, strings.Repeat("x", n*7%41))
}
