// Package printk reads the kernel log (the printk ring buffer) out of a
// kernel dump with nothing but VMCOREINFO and a reader of kernel virtual
// memory, as makedumpfile --dump-dmesg and vmcore-dmesg do
// (described below): the lockless ring of 5.10+ kernels and the
// structured log_buf of 3.5–5.9.
//
// A dump is a snapshot of memory that kernel code was changing, or memory
// that is damaged, so nothing read from it is trusted: the ring geometry
// is bounded before anything is allocated (Options.MaxBytes), the record
// walk is bounded by the ring's own capacity whatever its head and tail
// say, and a record that does not check out (a descriptor slot reused for
// a newer record, a data block whose embedded ID is not the record's, a
// length that points outside the ring) is skipped and counted in the Log,
// never followed. Read returns what could be read and says what could not.
//
// # Which format
//
// The kernel describes its log in VMCOREINFO (kernel/printk/printk.c
// log_buf_vmcoreinfo_setup):
//
//   - before 3.5, a plain character ring: SYMBOL(log_buf), SYMBOL(log_end),
//     SYMBOL(log_buf_len), SYMBOL(logged_chars);
//   - 3.5–5.9, variable-length records: SYMBOL(log_buf),
//     SYMBOL(log_buf_len), SYMBOL(log_first_idx), SYMBOL(log_next_idx),
//     SYMBOL(clear_idx), SIZE(printk_log) (SIZE(log) before 3.11) and
//     OFFSET(printk_log.ts_nsec, len, text_len, dict_len), plus caller_id
//     with CONFIG_PRINTK_CALLER;
//   - 5.10+, the lockless ring: SYMBOL(prb), SYMBOL(printk_rb_static),
//     SYMBOL(clear_seq), and SIZE/OFFSET keys of printk_ringbuffer
//     (desc_ring, text_data_ring, fail), prb_desc_ring (count_bits, descs,
//     infos, head_id, tail_id), prb_desc (state_var, text_blk_lpos),
//     prb_data_blk_lpos (begin, next), printk_info (seq, ts_nsec, text_len,
//     caller_id, dev_info), dev_printk_info (subsystem, device, with
//     LENGTH(printk_info_subsystem, printk_info_device)), prb_data_ring
//     (size_bits, data, head_lpos, tail_lpos), atomic_long_t (counter), and
//     from 5.13 latched_seq (val).
//
// makedumpfile takes the lockless path when SIZE(printk_ringbuffer) or
// SYMBOL(prb) is present; vmcore-dmesg when SYMBOL(prb) is, the structured
// one when SYMBOL(log_first_idx) is, else the legacy one. Of the lockless
// keys both really read the core set: all but fail, seq, dev_info,
// head_lpos and tail_lpos (clear_seq and latched_seq only for makedumpfile
// --partial-dmesg). The dump's own sizes and offsets are always used;
// typical 64-bit values (printk_ringbuffer 88 bytes with desc_ring at 0,
// text_data_ring 48, fail 80; prb_desc_ring 48; prb_desc 24; printk_info
// 88 with ts_nsec at 8, text_len 16, caller_id 20) only suit fixtures.
//
// # Reading the lockless ring
//
// As makedumpfile's dump_lockless_dmesg and vmcore-dmesg's
// dump_dmesg_lockless do, all in kernel virtual memory:
//
//  1. SYMBOL(prb) is a pointer variable: its value is the live
//     printk_ringbuffer, printk_rb_static in the image or, when the kernel
//     enlarged the log at boot, printk_rb_dynamic with its arrays in the
//     direct map.
//  2. The descriptor ring (at desc_ring) gives count_bits (2^count_bits
//     descriptors), the descs and infos arrays, and tail_id and head_id
//     (atomic longs, read at OFFSET(atomic_long_t.counter)).
//  3. The text ring (at text_data_ring) gives size_bits (2^size_bits bytes)
//     and the data pointer.
//  4. IDs run from tail_id to head_id inclusive; an ID's slot is id mod
//     count.
//  5. A descriptor's state_var holds the state in its top two bits
//     (0 reserved, 1 committed, 2 finalized, 3 reusable) and the ID in the
//     rest; the record counts only if the ID is the expected one and the
//     state committed or finalized, which rejects stale or reused slots.
//  6. text_blk_lpos.begin and .next are taken modulo the ring size: equal
//     means no text; begin > next means the block wrapped and the data is
//     at offset 0. Each block starts with an 8-byte copy of the ID. The
//     length is printk_info.text_len, clamped to the block.
//  7. The timestamp is printk_info.ts_nsec, printed [seconds.micros];
//     makedumpfile 1.7.5+ adds [T<pid>] or [C<cpu>] from caller_id (top bit:
//     CPU).
//
// # Reading the structured ring
//
// log_buf is a pointer (into the image, or the direct map when enlarged),
// log_buf_len, log_first_idx and log_next_idx are 32-bit. Each record
// starts with a printk_log header (ts_nsec u64, len u16 the whole record,
// text_len u16, dict_len u16, facility and level), the text right after
// SIZE(printk_log) bytes; len 0 means "wrap to offset 0"; the walk stops at
// log_next_idx. vmcore-dmesg and makedumpfile guard against cycles, as this
// package does. The pre-3.5 ring is the newest min(log_end, log_buf_len)
// bytes ending at log_end mod log_buf_len.
package printk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"ldx/elfcore/kernel/kmem"
	"strings"

	"ldx/vmcoreinfo"
)

// Format names the kernel's log buffer format.
type Format string

const (
	// Lockless is the printk_ringbuffer of Linux 5.10 and later.
	Lockless Format = "lockless"
	// Structured is the variable-length printk_log records in log_buf of
	// Linux 3.5 to 5.9.
	Structured Format = "structured"
)

// Record is one log message.
type Record struct {
	// Seq is the kernel's sequence number (printk_info.seq). The
	// structured ring does not export it; there Seq counts records from
	// the oldest one in the buffer and SeqKnown is false.
	Seq      uint64
	SeqKnown bool
	// TsNsec is the local_clock() timestamp in nanoseconds since boot.
	TsNsec uint64
	// Caller is the caller id (CONFIG_PRINTK_CALLER): a thread id, or a
	// CPU number with the top bit set. HasCaller says the kernel records
	// it (its offset is in VMCOREINFO).
	Caller    uint32
	HasCaller bool
	// Text is the message, raw bytes without a trailing newline.
	Text []byte
	// Subsystem and Device are the dev_printk() context, if any.
	Subsystem, Device string
	// Truncated says the text is shorter than the record's text_len: the
	// data block was smaller than the length claims, and the text was cut
	// to the block as makedumpfile does.
	Truncated bool
}

// CallerString formats the caller id as the kernel's console does with
// CONFIG_PRINTK_CALLER: "T<pid>" for a task, "C<cpu>" for a CPU context.
func (r *Record) CallerString() string {
	if !r.HasCaller {
		return ""
	}
	if r.Caller&0x80000000 != 0 {
		return fmt.Sprintf("C%d", r.Caller&^0x80000000)
	}
	return fmt.Sprintf("T%d", r.Caller)
}

// Ring describes where the log was found, for diagnostics.
type Ring struct {
	Addr     uint64 `json:"addr"`      // printk_ringbuffer, or log_buf
	Descs    uint64 `json:"descs"`     // lockless: descriptor array
	Infos    uint64 `json:"infos"`     // lockless: printk_info array
	Text     uint64 `json:"text"`      // text data ring (lockless) or log_buf
	Count    uint64 `json:"count"`     // lockless: descriptors
	TextSize uint64 `json:"text_size"` // bytes of text ring / log_buf
	Head     uint64 `json:"head"`      // head_id, or log_next_idx
	Tail     uint64 `json:"tail"`      // tail_id, or log_first_idx
}

// Log is the result of reading the ring.
type Log struct {
	Format  Format
	Ring    Ring
	Records []Record
	// Skipped counts records left out, by reason. Reasons are stable
	// strings (see the skip* constants) so that callers can report them.
	Skipped map[string]int
	// Problems describe what was wrong, the first few instances of each
	// kind with the ID or index and the addresses involved.
	Problems []string
}

// Reasons for skipping a record.
const (
	// SkipReserved: a writer had reserved the descriptor but not yet
	// committed it when memory was captured.
	SkipReserved = "reserved (being written)"
	// SkipDropped: the kernel had already made the record reusable
	// because newer text overwrote its data: the oldest records of a ring
	// that wrapped, normal in any long-running system.
	SkipDropped = "dropped by the kernel when the ring wrapped"
	// SkipReused: the descriptor slot holds a newer record than the one
	// expected there (memory captured while writers were reusing it), or
	// a reusable record lies between readable ones.
	SkipReused = "overwritten while the dump was taken"
	// SkipLost: the kernel could not store the text (failed data block
	// reservation): the record exists, its text does not.
	SkipLost = "text lost by the kernel"
	// SkipCorrupt: descriptor, info or data block inconsistent with each
	// other or with the ring's geometry.
	SkipCorrupt = "corrupt"
	// SkipUnwalked: records the walk could not reach (a broken chain in
	// the structured ring, an impossible head/tail distance).
	SkipUnwalked = "unreachable"
)

// SkippedTotal returns the number of records left out.
func (l *Log) SkippedTotal() int {
	n := 0
	for _, v := range l.Skipped {
		n += v
	}
	return n
}

// maxProblems bounds the detail kept per kind of problem, so a ring full of
// garbage does not produce megabytes of diagnostics.
const maxProblems = 8

func (l *Log) skip(reason string, format string, a ...any) {
	if l.Skipped == nil {
		l.Skipped = map[string]int{}
	}
	l.Skipped[reason]++
	if l.Skipped[reason] <= maxProblems && format != "" {
		l.Problems = append(l.Problems, fmt.Sprintf(format, a...))
	}
}

func (l *Log) problem(format string, a ...any) {
	l.Problems = append(l.Problems, fmt.Sprintf(format, a...))
}

// Options bound what Read may allocate.
type Options struct {
	// MaxBytes bounds the bytes of ring buffer (descriptors, infos, text)
	// Read copies. The kernel's largest log_buf_len is 2 GiB; the default,
	// 1 GiB, is beyond any real configuration but keeps a corrupt size
	// from exhausting memory.
	MaxBytes uint64
}

const defaultMaxBytes = 1 << 30

func (o *Options) maxBytes() uint64 {
	if o == nil || o.MaxBytes == 0 {
		return defaultMaxBytes
	}
	return o.MaxBytes
}

// ErrNoLog means VMCOREINFO describes no log buffer ldx can read.
var ErrNoLog = errors.New("VMCOREINFO describes no printk log buffer")

// Detect returns the ring format VMCOREINFO describes, choosing as
// makedumpfile does: lockless when SYMBOL(prb) is there, structured when
// SYMBOL(log_first_idx) is. The plain character ring of kernels before 3.5
// is not supported.
func Detect(info *vmcoreinfo.Info) (Format, error) {
	switch {
	case info.Has("SYMBOL(prb)"):
		return Lockless, nil
	case info.Has("SYMBOL(log_first_idx)"):
		return Structured, nil
	case info.Has("SYMBOL(log_end)"):
		return "", fmt.Errorf("%w: the plain character log of kernels before 3.5 (SYMBOL(log_end)) is not supported", ErrNoLog)
	}
	return "", fmt.Errorf("%w: neither SYMBOL(prb) (5.10+) nor SYMBOL(log_first_idx) (3.5–5.9)", ErrNoLog)
}

// Read reads the whole log. mem reads kernel virtual memory (a
// *kmem.Mem). A non-nil error means the ring could not be located or
// copied; records that could not be read are counted in the Log instead.
func Read(mem io.ReaderAt, info *vmcoreinfo.Info, opt *Options) (*Log, error) {
	f, err := Detect(info)
	if err != nil {
		return nil, err
	}
	if f == Lockless {
		return readLockless(mem, info, opt.maxBytes())
	}
	return readStructured(mem, info, opt.maxBytes())
}

// keys looks up VMCOREINFO values and collects the names of those missing,
// so that one error lists everything a dump lacks.
type keys struct {
	info    *vmcoreinfo.Info
	missing []string
}

func (k *keys) get(key string) uint64 {
	v, err := k.info.LookupUint(key)
	if err != nil {
		k.missing = append(k.missing, key)
	}
	return v
}

// opt returns an optional key's value, or -1.
func (k *keys) opt(key string) int64 {
	v, err := k.info.LookupUint(key)
	if err != nil || v > 1<<31 {
		return -1
	}
	return int64(v)
}

func (k *keys) err(what string) error {
	if len(k.missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the %s keys %s are missing or malformed", ErrNoLog, what, strings.Join(k.missing, ", "))
}

// maxStruct bounds the structure sizes and offsets taken from VMCOREINFO:
// the real ones are below 128 bytes.
const maxStruct = 4096

// field checks that a field of size n at off lies inside a structure of
// size size.
func field(name string, off, n, size uint64) error {
	if off > maxStruct || off+n > size {
		return fmt.Errorf("VMCOREINFO puts %s at offset %d (%d bytes), outside its %d-byte structure", name, off, n, size)
	}
	return nil
}

// readFull is kmem.ReadFull: bounded copies of kernel memory.
var readFull = kmem.ReadFull

func u64(b []byte, off uint64) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
func u32(b []byte, off uint64) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func u16(b []byte, off uint64) uint16 { return binary.LittleEndian.Uint16(b[off:]) }

// cString returns b up to its first NUL.
func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
