package vmcoreinfo

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Line is one "KEY=VALUE" line.
type Line struct {
	Key   string
	Value string
}

func (l Line) String() string { return l.Key + "=" + l.Value }

// Info is a VMCOREINFO text as an ordered list of lines. Order is kept
// exactly: it is the kernel's emission order, which decides what a
// truncated note (K-1) loses. Duplicate keys are kept too (Lint reports
// them). The zero value is an empty Info ready to use.
type Info struct {
	lines []Line
}

// New returns an Info holding lines, in order. It fails if a line would not
// survive Parse (bad key bytes, control or non-ASCII bytes, …).
func New(lines ...Line) (*Info, error) {
	in := &Info{lines: make([]Line, 0, len(lines))}
	for _, l := range lines {
		if err := in.Append(l.Key, l.Value); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// ValidLine reports whether key=value is a line Parse accepts: a non-empty
// key of [A-Za-z0-9_.()-] and a value of printable ASCII.
func ValidLine(key, value string) error {
	if key == "" {
		return errors.New("vmcoreinfo: empty key")
	}
	for i := 0; i < len(key); i++ {
		if !isKeyByte(key[i]) {
			return fmt.Errorf("vmcoreinfo: key %q: byte %q not allowed in a key", key, key[i])
		}
	}
	for i := 0; i < len(value); i++ {
		if !isPrint(value[i]) {
			return fmt.Errorf("vmcoreinfo: %s: value byte 0x%02x is not printable ASCII", key, value[i])
		}
	}
	return nil
}

// Len returns the number of lines.
func (in *Info) Len() int { return len(in.lines) }

// Line returns line i (0-based).
func (in *Info) Line(i int) Line { return in.lines[i] }

// Lines returns a copy of the lines, in order.
func (in *Info) Lines() []Line { return append([]Line(nil), in.lines...) }

// Keys returns the keys, in order (duplicates included).
func (in *Info) Keys() []string {
	keys := make([]string, len(in.lines))
	for i, l := range in.lines {
		keys[i] = l.Key
	}
	return keys
}

// Clone returns a deep copy.
func (in *Info) Clone() *Info { return &Info{lines: in.Lines()} }

// Equal reports whether in and o hold the same lines in the same order.
func (in *Info) Equal(o *Info) bool {
	if len(in.lines) != len(o.lines) {
		return false
	}
	for i := range in.lines {
		if in.lines[i] != o.lines[i] {
			return false
		}
	}
	return true
}

// TextLen returns len(in.Bytes()) without building the text: the
// VMCOREINFO note's n_descsz.
func (in *Info) TextLen() int {
	n := 0
	for _, l := range in.lines {
		n += len(l.Key) + len(l.Value) + 2
	}
	return n
}

// Bytes returns the text exactly as the kernel emits it: "KEY=VALUE\n" per
// line, in order, every line newline-terminated, no NUL and no padding.
func (in *Info) Bytes() []byte {
	b := make([]byte, 0, in.TextLen())
	for _, l := range in.lines {
		b = append(b, l.Key...)
		b = append(b, '=')
		b = append(b, l.Value...)
		b = append(b, '\n')
	}
	return b
}

func (in *Info) String() string { return string(in.Bytes()) }

// Index returns the index of the first line with key, or -1.
func (in *Info) Index(key string) int {
	for i, l := range in.lines {
		if l.Key == key {
			return i
		}
	}
	return -1
}

// Has reports whether key is present.
func (in *Info) Has(key string) bool { return in.Index(key) >= 0 }

// Get returns the value of the first line with key. The first one is what
// crash (vmcoreinfo_read_string) and makedumpfile (read_vmcoreinfo_*) use;
// drgn uses the last. Lint reports duplicates.
func (in *Info) Get(key string) (string, bool) {
	if i := in.Index(key); i >= 0 {
		return in.lines[i].Value, true
	}
	return "", false
}

// Set replaces the value of the first line with key, in place, and removes
// later lines with the same key; without such a line it appends one.
func (in *Info) Set(key, value string) error {
	if err := ValidLine(key, value); err != nil {
		return err
	}
	i := in.Index(key)
	if i < 0 {
		in.lines = append(in.lines, Line{key, value})
		return nil
	}
	in.lines[i].Value = value
	out := in.lines[:i+1]
	for _, l := range in.lines[i+1:] {
		if l.Key != key {
			out = append(out, l)
		}
	}
	in.lines = out
	return nil
}

// Append adds a line at the end, even if key is already present.
func (in *Info) Append(key, value string) error {
	if err := ValidLine(key, value); err != nil {
		return err
	}
	in.lines = append(in.lines, Line{key, value})
	return nil
}

// Delete removes every line with key and returns how many were removed.
func (in *Info) Delete(key string) int {
	out := in.lines[:0]
	for _, l := range in.lines {
		if l.Key != key {
			out = append(out, l)
		}
	}
	n := len(in.lines) - len(out)
	clear(in.lines[len(out):])
	in.lines = out
	return n
}

// SetUint sets key to v formatted per KindOf(key): hex without 0x for
// SYMBOL(x) and KERNELOFFSET, decimal for OFFSET/SIZE/LENGTH/PAGESIZE and
// NUMBER(x), 0x-hex for the NUMBER keys the kernel prints that way
// (NUMBER(VMALLOC_START)).
func (in *Info) SetUint(key string, v uint64) error {
	r := ruleFor(key)
	switch {
	case r != nil && r.hexOK:
		return in.Set(key, "0x"+FormatHex(v))
	case r != nil && r.kind == HexValue:
		return in.Set(key, FormatHex(v))
	case r != nil && r.kind == SignedValue && v > math.MaxInt64:
		return fmt.Errorf("vmcoreinfo: %s: %d does not fit a signed value", key, v)
	case r == nil || r.kind == UnsignedValue || r.kind == SignedValue:
		return in.Set(key, FormatDecimal(v))
	}
	return fmt.Errorf("vmcoreinfo: %s holds %s, not a number", key, r.kind)
}

// SetInt sets key to v: signed decimal for NUMBER(x) and CRASHTIME (0x-hex
// of the two's-complement pattern for NUMBER(VMALLOC_START) and the like);
// negative values are refused for unsigned and hex keys.
func (in *Info) SetInt(key string, v int64) error {
	r := ruleFor(key)
	switch {
	case r != nil && r.hexOK:
		return in.Set(key, "0x"+FormatHex(uint64(v)))
	case r == nil || r.kind == SignedValue:
		return in.Set(key, FormatSigned(v))
	case v < 0:
		return fmt.Errorf("vmcoreinfo: %s holds %s, cannot be %d", key, r.kind, v)
	}
	return in.SetUint(key, uint64(v))
}

// SetSymbol sets SYMBOL(name) to v in hex.
func (in *Info) SetSymbol(name string, v uint64) error { return in.SetUint(SymbolKey(name), v) }

// SetNumber sets NUMBER(name) to v.
func (in *Info) SetNumber(name string, v int64) error { return in.SetInt(NumberKey(name), v) }

// SetCrashTime sets CRASHTIME to t in seconds since the epoch.
func (in *Info) SetCrashTime(t time.Time) error { return in.Set(KeyCrashTime, FormatSigned(t.Unix())) }

// Errors from the Lookup methods.
var (
	// ErrMissing: the key is not present.
	ErrMissing = errors.New("key not present")
	// ErrMalformed: the key is present but its value is not in the format
	// the kernel writes and the consumers parse.
	ErrMalformed = errors.New("malformed value")
)

// KeyError reports a missing key or a malformed value. Err is ErrMissing
// or ErrMalformed.
type KeyError struct {
	Key   string
	Line  int    // 1-based line of the value; 0 when missing
	Value string // the malformed value
	Want  string // what was expected
	Err   error
}

func (e *KeyError) Error() string {
	if e.Err == ErrMissing {
		return fmt.Sprintf("vmcoreinfo: %s: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("vmcoreinfo: line %d: %s=%q: %v, want %s", e.Line, e.Key, e.Value, e.Err, e.Want)
}

func (e *KeyError) Unwrap() error { return e.Err }

// Lookup returns the value of the first line with key, or a *KeyError
// wrapping ErrMissing.
func (in *Info) Lookup(key string) (string, error) {
	i := in.Index(key)
	if i < 0 {
		return "", &KeyError{Key: key, Err: ErrMissing}
	}
	return in.lines[i].Value, nil
}

func (in *Info) malformed(key, want string) *KeyError {
	i := in.Index(key)
	return &KeyError{Key: key, Line: i + 1, Value: in.lines[i].Value, Want: want, Err: ErrMalformed}
}

// Check validates the value of key against the format of its key family
// (KindOf) and the key's own constraints (PAGESIZE a power of two,
// OSRELEASE at most 64 bytes, …). It returns nil, or a *KeyError wrapping
// ErrMissing or ErrMalformed.
func (in *Info) Check(key string) error {
	v, err := in.Lookup(key)
	if err != nil {
		return err
	}
	if ok, want := checkValue(ruleFor(key), v); !ok {
		return in.malformed(key, want)
	}
	return nil
}

// LookupUint returns the value of key as an unsigned number, parsed per
// KindOf(key): hex for SYMBOL(x) and KERNELOFFSET (an optional 0x is
// accepted, as strtoul(…, 16) does), decimal or 0x-hex otherwise. Decimal
// with leading zeros is refused: drgn reads it as octal, makedumpfile as
// decimal. Negative NUMBER values are refused.
func (in *Info) LookupUint(key string) (uint64, error) {
	if err := in.Check(key); err != nil {
		return 0, err
	}
	v, _ := in.Get(key)
	kind := KindOf(key)
	var n uint64
	ok := false
	switch kind {
	case HexValue:
		n, ok = parseHex(v)
	case SignedValue:
		var s int64
		s, ok = parseSigned(v)
		if ok && s < 0 && !hasHexPrefix(v) {
			return 0, in.malformed(key, "a non-negative number")
		}
		n = uint64(s)
	default:
		n, ok = parseUnsigned(v)
	}
	if !ok {
		return 0, in.malformed(key, "an unsigned number")
	}
	return n, nil
}

// LookupInt returns the value of key as a signed number: signed decimal,
// or 0x-hex read as a 64-bit two's-complement pattern (so that
// NUMBER(VMALLOC_START) round-trips through uint64). Hex and unsigned keys
// are refused when their value exceeds math.MaxInt64.
func (in *Info) LookupInt(key string) (int64, error) {
	if err := in.Check(key); err != nil {
		return 0, err
	}
	v, _ := in.Get(key)
	r := ruleFor(key)
	if r == nil || r.kind == SignedValue {
		if n, ok := parseSigned(v); ok {
			return n, nil
		}
		return 0, in.malformed(key, SignedValue.String())
	}
	u, err := in.LookupUint(key)
	if err != nil {
		return 0, err
	}
	if u > math.MaxInt64 {
		return 0, in.malformed(key, "a value that fits int64")
	}
	return int64(u), nil
}

// LookupPageSize returns PAGESIZE, which must be a power of two.
func (in *Info) LookupPageSize() (uint64, error) { return in.LookupUint(KeyPageSize) }

// LookupCrashTime returns CRASHTIME, in seconds since the epoch, as UTC.
// In a livedump it is the START time of the dump, not its end (K-11).
func (in *Info) LookupCrashTime() (time.Time, error) {
	n, err := in.LookupInt(KeyCrashTime)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(n, 0).UTC(), nil
}

// Typed accessors: ok is false when the key is missing or malformed; use
// Check or the Lookup methods to tell which.

// OSRelease returns OSRELEASE (1–64 bytes).
func (in *Info) OSRelease() (string, bool) { return in.checkedString(KeyOSRelease) }

// BuildID returns BUILD-ID as hex text (even number of hex digits).
func (in *Info) BuildID() (string, bool) { return in.checkedString(KeyBuildID) }

func (in *Info) checkedString(key string) (string, bool) {
	if in.Check(key) != nil {
		return "", false
	}
	return in.Get(key)
}

func ok1[T any](v T, err error) (T, bool) { return v, err == nil }

// PageSize returns PAGESIZE (decimal, a power of two).
func (in *Info) PageSize() (uint64, bool) { return ok1(in.LookupPageSize()) }

// KernelOffset returns KERNELOFFSET (hex without 0x), the KASLR offset.
func (in *Info) KernelOffset() (uint64, bool) { return ok1(in.LookupUint(KeyKernelOffset)) }

// Symbol returns SYMBOL(name) (hex without 0x).
func (in *Info) Symbol(name string) (uint64, bool) { return ok1(in.LookupUint(SymbolKey(name))) }

// Number returns NUMBER(name): signed decimal, or 0x-hex as the kernel
// writes NUMBER(VMALLOC_START) (use uint64(v) for such addresses).
func (in *Info) Number(name string) (int64, bool) { return ok1(in.LookupInt(NumberKey(name))) }

// Offset returns OFFSET(name) (unsigned decimal); name is "struct.field".
func (in *Info) Offset(name string) (uint64, bool) { return ok1(in.LookupUint(OffsetKey(name))) }

// Size returns SIZE(name) (unsigned decimal).
func (in *Info) Size(name string) (uint64, bool) { return ok1(in.LookupUint(SizeKey(name))) }

// Length returns LENGTH(name) (unsigned decimal).
func (in *Info) Length(name string) (uint64, bool) { return ok1(in.LookupUint(LengthKey(name))) }

// CrashTime returns CRASHTIME as UTC.
func (in *Info) CrashTime() (time.Time, bool) { return ok1(in.LookupCrashTime()) }
