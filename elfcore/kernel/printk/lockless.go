package printk

import (
	"fmt"
	"io"

	"ldx/vmcoreinfo"
)

// Descriptor state and ID encoding of the lockless ring
// (kernel/printk/printk_ringbuffer.h): the top two bits of state_var are
// the state, the rest the descriptor ID. IDs count up through the 62 bits.
const (
	idMask        = 1<<62 - 1
	stateReserved = 0
	stateCommit   = 1
	stateFinal    = 2
	stateReusable = 3
	// Data-less blocks have odd logical positions (blocks are 8-aligned):
	// NO_LPOS / EMPTY_LINE_LPOS (3) is a record whose text is empty, an
	// empty line the kernel's own reader returns as ""; FAILED_LPOS (1) a
	// record whose text the kernel could not store.
	lposEmpty  = 3
	lposFailed = 1
	idSize     = 8 // every data block starts with its descriptor's ID
	// maxCountBits and maxSizeBits bound the ring geometry: the kernel's
	// largest log_buf_len is 2^31 bytes, with a descriptor per 32 bytes.
	maxCountBits = 26
	maxSizeBits  = 31
)

// lockless holds the layout of the lockless ring from VMCOREINFO.
type lockless struct {
	prbSize, descRing, textRing                       uint64
	countBits, descsPtr, infosPtr, headID, tailID     uint64
	sizeBits, dataPtr, counter                        uint64
	descSize, stateVar, textLpos, lposBegin, lposNext uint64
	infoSize, tsNsec, textLen                         uint64
	seq, caller, devInfo, subsys, device              int64
	subsysLen, deviceLen                              uint64
}

func locklessLayout(info *vmcoreinfo.Info) (*lockless, error) {
	k := &keys{info: info}
	l := &lockless{
		prbSize:   k.get("SIZE(printk_ringbuffer)"),
		descRing:  k.get("OFFSET(printk_ringbuffer.desc_ring)"),
		textRing:  k.get("OFFSET(printk_ringbuffer.text_data_ring)"),
		countBits: k.get("OFFSET(prb_desc_ring.count_bits)"),
		descsPtr:  k.get("OFFSET(prb_desc_ring.descs)"),
		infosPtr:  k.get("OFFSET(prb_desc_ring.infos)"),
		headID:    k.get("OFFSET(prb_desc_ring.head_id)"),
		tailID:    k.get("OFFSET(prb_desc_ring.tail_id)"),
		sizeBits:  k.get("OFFSET(prb_data_ring.size_bits)"),
		dataPtr:   k.get("OFFSET(prb_data_ring.data)"),
		counter:   k.get("OFFSET(atomic_long_t.counter)"),
		descSize:  k.get("SIZE(prb_desc)"),
		stateVar:  k.get("OFFSET(prb_desc.state_var)"),
		textLpos:  k.get("OFFSET(prb_desc.text_blk_lpos)"),
		lposBegin: k.get("OFFSET(prb_data_blk_lpos.begin)"),
		lposNext:  k.get("OFFSET(prb_data_blk_lpos.next)"),
		infoSize:  k.get("SIZE(printk_info)"),
		tsNsec:    k.get("OFFSET(printk_info.ts_nsec)"),
		textLen:   k.get("OFFSET(printk_info.text_len)"),
		seq:       k.opt("OFFSET(printk_info.seq)"),
		caller:    k.opt("OFFSET(printk_info.caller_id)"),
		devInfo:   k.opt("OFFSET(printk_info.dev_info)"),
		subsys:    k.opt("OFFSET(dev_printk_info.subsystem)"),
		device:    k.opt("OFFSET(dev_printk_info.device)"),
	}
	if err := k.err("lockless ring (5.10+)"); err != nil {
		return nil, err
	}
	l.subsysLen, _ = info.Length("printk_info_subsystem")
	l.deviceLen, _ = info.Length("printk_info_device")
	if l.prbSize > maxStruct || l.descSize > maxStruct || l.infoSize > maxStruct || l.descSize == 0 || l.infoSize == 0 {
		return nil, fmt.Errorf("VMCOREINFO gives implausible ring structure sizes: printk_ringbuffer %d, prb_desc %d, printk_info %d", l.prbSize, l.descSize, l.infoSize)
	}
	for _, f := range []struct {
		name         string
		off, n, size uint64
	}{
		{"prb_desc_ring.count_bits", l.descRing + l.countBits, 4, l.prbSize},
		{"prb_desc_ring.descs", l.descRing + l.descsPtr, 8, l.prbSize},
		{"prb_desc_ring.infos", l.descRing + l.infosPtr, 8, l.prbSize},
		{"prb_desc_ring.head_id", l.descRing + l.headID + l.counter, 8, l.prbSize},
		{"prb_desc_ring.tail_id", l.descRing + l.tailID + l.counter, 8, l.prbSize},
		{"prb_data_ring.size_bits", l.textRing + l.sizeBits, 4, l.prbSize},
		{"prb_data_ring.data", l.textRing + l.dataPtr, 8, l.prbSize},
		{"prb_desc.state_var", l.stateVar + l.counter, 8, l.descSize},
		{"prb_data_blk_lpos.begin", l.textLpos + l.lposBegin, 8, l.descSize},
		{"prb_data_blk_lpos.next", l.textLpos + l.lposNext, 8, l.descSize},
		{"printk_info.ts_nsec", l.tsNsec, 8, l.infoSize},
		{"printk_info.text_len", l.textLen, 2, l.infoSize},
	} {
		if err := field(f.name, f.off, f.n, f.size); err != nil {
			return nil, err
		}
	}
	// Optional fields outside the structure are ignored, not fatal.
	if l.seq >= 0 && uint64(l.seq)+8 > l.infoSize {
		l.seq = -1
	}
	if l.caller >= 0 && uint64(l.caller)+4 > l.infoSize {
		l.caller = -1
	}
	if l.devInfo < 0 || l.subsys < 0 || uint64(l.devInfo+l.subsys)+l.subsysLen > l.infoSize {
		l.subsysLen = 0
	}
	if l.devInfo < 0 || l.device < 0 || uint64(l.devInfo+l.device)+l.deviceLen > l.infoSize {
		l.deviceLen = 0
	}
	return l, nil
}

// Array is one of the lockless ring's three arrays: where it is and how
// many bytes a reader copies of it.
type Array struct {
	Name       string
	Addr, Size uint64
}

// LocateLockless reads the lockless ring's header through the pointer at
// SYMBOL(prb) and says where its descriptor, info and text arrays are,
// without reading them: what a check needs to know which pages a reader of
// the log will touch.
func LocateLockless(mem io.ReaderAt, info *vmcoreinfo.Info) (Ring, []Array, error) {
	l, err := locklessLayout(info)
	if err != nil {
		return Ring{}, nil, err
	}
	r, err := l.locate(mem, info)
	if err != nil {
		return Ring{}, nil, err
	}
	return r, l.arrays(r), nil
}

// arrays lists the ring's arrays as readLockless copies them.
func (l *lockless) arrays(r Ring) []Array {
	return []Array{
		{"prb_desc array", r.Descs, r.Count * l.descSize},
		{"printk_info array", r.Infos, r.Count * l.infoSize},
		{"text data ring", r.Text, r.TextSize},
	}
}

// locate reads *prb and the ring structure: the geometry and where the
// arrays are.
func (l *lockless) locate(mem io.ReaderAt, info *vmcoreinfo.Info) (Ring, error) {
	var r Ring
	prbSym, _ := info.Symbol("prb")
	ptr, err := readFull(mem, prbSym, 8, "the prb pointer (SYMBOL(prb))")
	if err != nil {
		return r, err
	}
	r.Addr = u64(ptr, 0)
	prb, err := readFull(mem, r.Addr, l.prbSize, "the printk_ringbuffer")
	if err != nil {
		return r, err
	}
	dr, tr := l.descRing, l.textRing
	countBits := uint64(u32(prb, dr+l.countBits))
	sizeBits := uint64(u32(prb, tr+l.sizeBits))
	if countBits > maxCountBits || sizeBits > maxSizeBits || sizeBits < 4 {
		return r, fmt.Errorf("printk_ringbuffer at %#x is implausible: %d-bit descriptor count, %d-bit text size", r.Addr, countBits, sizeBits)
	}
	r.Count, r.TextSize = 1<<countBits, 1<<sizeBits
	r.Descs = u64(prb, dr+l.descsPtr)
	r.Infos = u64(prb, dr+l.infosPtr)
	r.Text = u64(prb, tr+l.dataPtr)
	r.Head = u64(prb, dr+l.headID+l.counter) & idMask
	r.Tail = u64(prb, dr+l.tailID+l.counter) & idMask
	return r, nil
}

// readLockless follows makedumpfile's dump_lockless_dmesg: copy the ring
// structure, the descriptor and info arrays and the text ring, then visit
// every ID from tail_id to head_id.
func readLockless(mem io.ReaderAt, info *vmcoreinfo.Info, maxBytes uint64) (*Log, error) {
	l, err := locklessLayout(info)
	if err != nil {
		return nil, err
	}
	log := &Log{Format: Lockless}
	if log.Ring, err = l.locate(mem, info); err != nil {
		return nil, err
	}
	r := &log.Ring
	if total := r.Count*(l.descSize+l.infoSize) + r.TextSize; total > maxBytes {
		return nil, fmt.Errorf("printk_ringbuffer at %#x: %d descriptors and %d bytes of text (%d bytes) exceed the %d-byte limit", r.Addr, r.Count, r.TextSize, total, maxBytes)
	}
	descs, err := readFull(mem, r.Descs, r.Count*l.descSize, "the descriptor array prb_desc_ring.descs")
	if err != nil {
		return nil, err
	}
	infos, err := readFull(mem, r.Infos, r.Count*l.infoSize, "the info array prb_desc_ring.infos")
	if err != nil {
		return nil, err
	}
	text, err := readFull(mem, r.Text, r.TextSize, "the text data ring")
	if err != nil {
		return nil, err
	}

	// The ring holds at most Count descriptors, so tail..head can never
	// span more: a larger distance means head or tail is corrupt, and only
	// the newest Count IDs can be in the ring at all.
	n := (r.Head-r.Tail)&idMask + 1
	tail := r.Tail
	if n > r.Count {
		log.problem("tail_id %#x and head_id %#x are %d IDs apart but the ring has %d descriptors: read the newest %d IDs", r.Tail, r.Head, n, r.Count, r.Count)
		n = r.Count
		tail = (r.Head - r.Count + 1) & idMask
	}
	log.Records = make([]Record, 0, n)
	for i := range n {
		id := (tail + i) & idMask
		if rec, ok := l.record(log, descs, infos, text, id, uint64(len(log.Records))); ok {
			log.Records = append(log.Records, rec)
		}
	}
	return log, nil
}

// record decodes the record with descriptor ID id, or skips it.
func (l *lockless) record(log *Log, descs, infos, text []byte, id, index uint64) (Record, bool) {
	r := &log.Ring
	slot := id & (r.Count - 1)
	d := descs[slot*l.descSize:]
	sv := u64(d, l.stateVar+l.counter)
	if got := sv & idMask; got != id {
		// A slot holds the ID of the record it was last reserved for: a
		// later ID (by a multiple of the ring size) means newer records
		// reused it while memory was captured; anything else is garbage.
		if diff := (got - id) & idMask; diff%r.Count == 0 && diff < 1<<40 {
			log.skip(SkipReused, "record ID %#x: descriptor slot %d already holds the newer ID %#x", id, slot, got)
		} else {
			log.skip(SkipCorrupt, "record ID %#x: descriptor slot %d at %#x holds ID %#x", id, slot, r.Descs+slot*l.descSize, got)
		}
		return Record{}, false
	}
	switch sv >> 62 {
	case stateReserved:
		log.skip(SkipReserved, "record ID %#x: reserved by a writer, not yet committed", id)
		return Record{}, false
	case stateReusable:
		if id == uint64(uint32(-(r.Count + 1))) {
			// DESC0_ID: the placeholder prb_init makes the initial head
			// and tail (_DESCS_COUNT is unsigned int, hence 32 bits). It
			// never held a record.
			return Record{}, false
		}
		if len(log.Records) == 0 {
			// The kernel frees records oldest first (data_push_tail), so
			// reusable descriptors after the tail are the normal state
			// of a ring that wrapped.
			log.skip(SkipDropped, "")
		} else {
			log.skip(SkipReused, "record ID %#x: made reusable although older records are still readable", id)
		}
		return Record{}, false
	}
	inf := infos[slot*l.infoSize:]
	rec := Record{TsNsec: u64(inf, l.tsNsec), Seq: index}
	if l.seq >= 0 {
		rec.Seq, rec.SeqKnown = u64(inf, uint64(l.seq)), true
		// A slot's sequence number advances by the ring size at every
		// reuse (desc_reserve), so it always maps to the same slot.
		if rec.Seq&(r.Count-1) != slot {
			log.skip(SkipCorrupt, "record ID %#x: its info slot %d holds seq %d, which belongs to slot %d", id, slot, rec.Seq, rec.Seq&(r.Count-1))
			return Record{}, false
		}
	}
	if l.caller >= 0 {
		rec.Caller, rec.HasCaller = u32(inf, uint64(l.caller)), true
	}
	if l.subsysLen > 0 {
		off := uint64(l.devInfo + l.subsys)
		rec.Subsystem = cString(inf[off : off+l.subsysLen])
	}
	if l.deviceLen > 0 {
		off := uint64(l.devInfo + l.device)
		rec.Device = cString(inf[off : off+l.deviceLen])
	}
	textLen := uint64(u16(inf, l.textLen))

	begin := u64(d, l.textLpos+l.lposBegin)
	next := u64(d, l.textLpos+l.lposNext)
	if begin&1 != 0 || next&1 != 0 {
		switch {
		case begin == lposEmpty && next == lposEmpty:
			rec.Text = []byte{}
			return rec, true
		case begin == lposFailed && next == lposFailed:
			log.skip(SkipLost, "record seq %d (ID %#x): the kernel could not store its %d bytes of text", rec.Seq, id, textLen)
		default:
			log.skip(SkipCorrupt, "record ID %#x: data block positions %#x..%#x are neither a block nor data-less", id, begin, next)
		}
		return Record{}, false
	}
	size := r.TextSize
	if begin%idSize != 0 || next%idSize != 0 || next-begin == 0 || next-begin > size {
		log.skip(SkipCorrupt, "record ID %#x: data block positions %#x..%#x do not fit the %d-byte text ring", id, begin, next, size)
		return Record{}, false
	}
	b, e := begin&(size-1), next&(size-1)
	if b >= e {
		// A block that would cross the end of the ring is stored whole at
		// its start (get_next_lpos); its ID is written there too.
		b = 0
	}
	if e-b < idSize {
		log.skip(SkipCorrupt, "record ID %#x: data block %#x..%#x is too short for its ID", id, begin, next)
		return Record{}, false
	}
	if got := u64(text, b); got != id {
		log.skip(SkipCorrupt, "record seq %d (ID %#x): the data block at %#x holds ID %#x: its text was overwritten", rec.Seq, id, r.Text+b, got)
		return Record{}, false
	}
	avail := e - b - idSize
	if textLen > avail {
		textLen, rec.Truncated = avail, true
	}
	rec.Text = text[b+idSize : b+idSize+textLen]
	return rec, true
}
