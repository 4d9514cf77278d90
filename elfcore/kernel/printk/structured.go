package printk

import (
	"bytes"
	"fmt"
	"io"

	"ldx/vmcoreinfo"
)

// structured holds the layout of the 3.5–5.9 log_buf records: a
// struct printk_log header (struct log before 3.11) followed by the text
// and the dictionary, records aligned to 8 bytes, a header with len 0
// meaning "continue at offset 0".
type structured struct {
	hdrSize                       uint64
	tsNsec, length, textLen       uint64
	dictLen, caller               int64
	logBuf, logBufLen, first, nxt uint64
}

func structuredLayout(info *vmcoreinfo.Info) (*structured, error) {
	name := "printk_log"
	if !info.Has("SIZE(printk_log)") && info.Has("SIZE(log)") {
		name = "log"
	}
	k := &keys{info: info}
	s := &structured{
		hdrSize:   k.get("SIZE(" + name + ")"),
		tsNsec:    k.get("OFFSET(" + name + ".ts_nsec)"),
		length:    k.get("OFFSET(" + name + ".len)"),
		textLen:   k.get("OFFSET(" + name + ".text_len)"),
		dictLen:   k.opt("OFFSET(" + name + ".dict_len)"),
		caller:    k.opt("OFFSET(" + name + ".caller_id)"),
		logBuf:    k.get("SYMBOL(log_buf)"),
		logBufLen: k.get("SYMBOL(log_buf_len)"),
		first:     k.get("SYMBOL(log_first_idx)"),
		nxt:       k.get("SYMBOL(log_next_idx)"),
	}
	if err := k.err("structured log_buf (3.5–5.9)"); err != nil {
		return nil, err
	}
	if s.hdrSize == 0 || s.hdrSize > maxStruct {
		return nil, fmt.Errorf("VMCOREINFO gives an implausible SIZE(%s) %d", name, s.hdrSize)
	}
	for _, f := range []struct {
		name   string
		off, n uint64
	}{{".ts_nsec", s.tsNsec, 8}, {".len", s.length, 2}, {".text_len", s.textLen, 2}} {
		if err := field(name+f.name, f.off, f.n, s.hdrSize); err != nil {
			return nil, err
		}
	}
	if s.dictLen >= 0 && uint64(s.dictLen)+2 > s.hdrSize {
		s.dictLen = -1
	}
	if s.caller >= 0 && uint64(s.caller)+4 > s.hdrSize {
		s.caller = -1
	}
	return s, nil
}

// readStructured follows makedumpfile's dump_dmesg for variable-length
// records: from log_first_idx, record by record, to log_next_idx. A
// record's len is the only link to the next one, so a corrupt header ends
// the walk; the walk also ends when it would pass the buffer's end twice
// or visit more records than the buffer can hold (a cycle).
func readStructured(mem io.ReaderAt, info *vmcoreinfo.Info, maxBytes uint64) (*Log, error) {
	s, err := structuredLayout(info)
	if err != nil {
		return nil, err
	}
	head := func(va, n uint64, what string) (uint64, error) {
		b, err := readFull(mem, va, n, what)
		if err != nil {
			return 0, err
		}
		if n == 4 {
			return uint64(u32(b, 0)), nil
		}
		return u64(b, 0), nil
	}
	log := &Log{Format: Structured}
	r := &log.Ring
	if r.Addr, err = head(s.logBuf, 8, "the log_buf pointer (SYMBOL(log_buf))"); err != nil {
		return nil, err
	}
	if r.TextSize, err = head(s.logBufLen, 4, "log_buf_len"); err != nil {
		return nil, err
	}
	if r.Tail, err = head(s.first, 4, "log_first_idx"); err != nil {
		return nil, err
	}
	if r.Head, err = head(s.nxt, 4, "log_next_idx"); err != nil {
		return nil, err
	}
	r.Text = r.Addr
	size := r.TextSize
	if size < s.hdrSize || size > maxBytes {
		return nil, fmt.Errorf("log_buf_len %d is implausible (limit %d bytes)", size, maxBytes)
	}
	if r.Tail >= size || r.Head >= size {
		return nil, fmt.Errorf("log_first_idx %d or log_next_idx %d lies outside the %d-byte log_buf at %#x", r.Tail, r.Head, size, r.Addr)
	}
	buf, err := readFull(mem, r.Addr, size, "log_buf")
	if err != nil {
		return nil, err
	}
	stop := func(idx uint64, format string, a ...any) {
		log.skip(SkipUnwalked, "log_buf index %d: %s; the records after it cannot be found", idx, fmt.Sprintf(format, a...))
	}
	idx, wrapped := r.Tail, false
	maxRecords := size/s.hdrSize + 1
	for idx != r.Head {
		if uint64(len(log.Records)) >= maxRecords {
			stop(idx, "more records than log_buf can hold (a cycle)")
			break
		}
		if idx+s.hdrSize > size {
			stop(idx, "a record header would run past the end of log_buf")
			break
		}
		n := uint64(u16(buf, idx+s.length))
		if n == 0 {
			// The writer did not fit the next record before the end and
			// left a zero header: continue at the start.
			if wrapped || idx == 0 {
				stop(idx, "a second wrap to offset 0")
				break
			}
			idx, wrapped = 0, true
			continue
		}
		if n < s.hdrSize || idx+n > size {
			stop(idx, "record length %d does not fit (header %d bytes, %d bytes left)", n, s.hdrSize, size-idx)
			break
		}
		if idx < r.Head && idx+n > r.Head {
			stop(idx, "record of %d bytes overlaps log_next_idx %d", n, r.Head)
			break
		}
		rec := Record{Seq: uint64(len(log.Records)), TsNsec: u64(buf, idx+s.tsNsec)}
		textLen := uint64(u16(buf, idx+s.textLen))
		if avail := n - s.hdrSize; textLen > avail {
			textLen, rec.Truncated = avail, true
		}
		text := idx + s.hdrSize
		rec.Text = buf[text : text+textLen]
		if s.dictLen >= 0 {
			dl := min(uint64(u16(buf, idx+uint64(s.dictLen))), n-s.hdrSize-textLen)
			rec.Subsystem, rec.Device = parseDict(buf[text+textLen : text+textLen+dl])
		}
		if s.caller >= 0 {
			rec.Caller, rec.HasCaller = u32(buf, idx+uint64(s.caller)), true
		}
		log.Records = append(log.Records, rec)
		idx += n
		if idx == size && r.Head != size {
			// Exactly full to the end: the next record is at the start.
			if wrapped {
				stop(idx, "a second wrap to offset 0")
				break
			}
			idx, wrapped = 0, true
		}
	}
	return log, nil
}

// parseDict takes SUBSYSTEM= and DEVICE= from a record dictionary
// (NUL-separated KEY=value pairs).
func parseDict(d []byte) (subsystem, device string) {
	for kv := range bytes.SplitSeq(d, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("SUBSYSTEM=")); ok {
			subsystem = string(v)
		} else if v, ok := bytes.CutPrefix(kv, []byte("DEVICE=")); ok {
			device = string(v)
		}
	}
	return subsystem, device
}
