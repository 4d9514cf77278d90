package vmcoreinfo

import (
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// ValueKind is the value format of a key, as the kernel writes it.
type ValueKind uint8

const (
	// TextValue is any printable text (keys this package does not know).
	TextValue ValueKind = iota
	// ReleaseValue is the utsname release of OSRELEASE: 1–64 bytes.
	ReleaseValue
	// HexValue is "%lx": hex digits without 0x (SYMBOL(x), KERNELOFFSET).
	HexValue
	// UnsignedValue is "%lu": unsigned decimal (OFFSET/SIZE/LENGTH, PAGESIZE).
	UnsignedValue
	// SignedValue is "%ld": signed decimal (NUMBER(x), CRASHTIME).
	SignedValue
	// BuildIDValue is the hex build ID of BUILD-ID (40 lowercase digits).
	BuildIDValue
)

func (k ValueKind) String() string {
	switch k {
	case ReleaseValue:
		return "kernel release (1-64 printable bytes)"
	case HexValue:
		return "hex without 0x"
	case UnsignedValue:
		return "unsigned decimal"
	case SignedValue:
		return "signed decimal"
	case BuildIDValue:
		return "40 lowercase hex digits"
	default:
		return "text"
	}
}

// keyRule is one row of the key-family table that drives KindOf, the typed
// accessors and Lint.
type keyRule struct {
	key   string    // exact key, or a family prefix ending in "("
	kind  ValueKind // value format
	hexOK bool      // the kernel itself prints this decimal-family key as 0x%lx
	rule  string    // verify's row (package verify, D1–D15) a malformed value violates
	sev   Severity  // severity of a malformed value
	why   string    // consumer behaviour that makes a malformed value harmful
	// extra is a further check on a value that parsed: it returns the
	// severity and a message, or 0 when the value is fine.
	extra func(v string) (Severity, string)
}

// keyRules maps keys and key families to their value formats. Exact keys
// come first; family prefixes match "PREFIX(name)".
var keyRules = []keyRule{
	{key: KeyOSRelease, kind: ReleaseValue, rule: "D3", sev: Fatal,
		why: "makedumpfile read_vmcoreinfo_basic_info fails (\"Invalid format\"); drgn and crash match the vmlinux by it"},
	{key: KeyPageSize, kind: UnsignedValue, rule: "D4", sev: Fatal, extra: checkPageSize,
		why: "makedumpfile requires a power of two; drgn requires a valid PAGESIZE"},
	{key: KeyBuildID, kind: BuildIDValue, rule: "D13", sev: Degraded,
		why: "drgn matches the vmlinux by build ID, otherwise only by OSRELEASE"},
	{key: KeyKernelOffset, kind: HexValue, rule: "D8", sev: Fatal, extra: checkKernelOffset,
		why: "crash enables its KASLR check on it and drgn uses it as the vmlinux bias"},
	{key: KeyCrashTime, kind: SignedValue, rule: "D14", sev: Cosmetic,
		why: "only its presence is used (drgn takes registers from crash_notes when it is present)"},
	// Decimal-family keys the kernel prints as 0x%lx.
	{key: "NUMBER(VMALLOC_START)", kind: SignedValue, hexOK: true, rule: "D2", sev: Degraded,
		why: "crash (first_vmalloc_address) and makedumpfile read it on 6.9+ kernels"},
	{key: "NUMBER(kimage_voffset)", kind: SignedValue, hexOK: true, rule: "D2", sev: Fatal, why: "arm64 address translation"},
	{key: "NUMBER(PHYS_OFFSET)", kind: SignedValue, hexOK: true, rule: "D2", sev: Fatal, why: "arm64 address translation"},
	{key: "NUMBER(KERNELPACMASK)", kind: SignedValue, hexOK: true, rule: "D2", sev: Degraded, why: "arm64 pointer authentication"},
	{key: "NUMBER(TCR_EL1_T1SZ)", kind: SignedValue, hexOK: true, rule: "D2", sev: Fatal, why: "arm64 address translation"},
	// Families.
	{key: "SYMBOL(", kind: HexValue, rule: "D2", sev: Fatal, extra: checkSymbol,
		why: "makedumpfile read_vmcoreinfo_symbol treats 0, ULONG_MAX and trailing junk as fatal (\"Invalid data\"); drgn rejects invalid numbers"},
	{key: "OFFSET(", kind: UnsignedValue, rule: "D2", sev: Fatal,
		why: "makedumpfile read_vmcoreinfo_long treats trailing junk as fatal; drgn parses with base 0"},
	{key: "SIZE(", kind: UnsignedValue, rule: "D2", sev: Fatal,
		why: "makedumpfile read_vmcoreinfo_long treats trailing junk as fatal; drgn parses with base 0"},
	{key: "LENGTH(", kind: UnsignedValue, rule: "D2", sev: Fatal,
		why: "makedumpfile read_vmcoreinfo_long treats trailing junk as fatal; drgn parses with base 0"},
	{key: "NUMBER(", kind: SignedValue, rule: "D2", sev: Fatal,
		why: "crash and makedumpfile parse NUMBER as decimal, drgn with base 0 (\"number in VMCOREINFO is invalid\")"},
}

// ruleFor returns the table row for key, or nil for an unknown key.
func ruleFor(key string) *keyRule {
	for i := range keyRules {
		r := &keyRules[i]
		if strings.HasSuffix(r.key, "(") {
			if len(key) > len(r.key)+1 && strings.HasPrefix(key, r.key) && key[len(key)-1] == ')' {
				return r
			}
		} else if key == r.key {
			return r
		}
	}
	return nil
}

// KindOf returns the value format of key: HexValue for SYMBOL(x) and
// KERNELOFFSET, UnsignedValue for OFFSET/SIZE/LENGTH and PAGESIZE,
// SignedValue for NUMBER(x) and CRASHTIME, and so on; TextValue for keys
// this package does not know.
func KindOf(key string) ValueKind {
	if r := ruleFor(key); r != nil {
		return r.kind
	}
	return TextValue
}

// Key constructors for the key families.

// SymbolKey returns "SYMBOL(name)".
func SymbolKey(name string) string { return "SYMBOL(" + name + ")" }

// NumberKey returns "NUMBER(name)".
func NumberKey(name string) string { return "NUMBER(" + name + ")" }

// OffsetKey returns "OFFSET(name)"; name is "struct.field".
func OffsetKey(name string) string { return "OFFSET(" + name + ")" }

// SizeKey returns "SIZE(name)".
func SizeKey(name string) string { return "SIZE(" + name + ")" }

// LengthKey returns "LENGTH(name)".
func LengthKey(name string) string { return "LENGTH(" + name + ")" }

// Value formatting, the kernel's way.

// FormatHex formats v as the kernel formats SYMBOL(x) and KERNELOFFSET
// values ("%lx": lowercase hex, no 0x, no leading zeros).
func FormatHex(v uint64) string { return strconv.FormatUint(v, 16) }

// FormatSymbol is FormatHex, named for SYMBOL(x) values.
func FormatSymbol(v uint64) string { return FormatHex(v) }

// FormatDecimal formats v as the kernel formats OFFSET/SIZE/LENGTH and
// PAGESIZE values ("%lu").
func FormatDecimal(v uint64) string { return strconv.FormatUint(v, 10) }

// FormatSigned formats v as the kernel formats NUMBER(x) and CRASHTIME
// values ("%ld").
func FormatSigned(v int64) string { return strconv.FormatInt(v, 10) }

// FormatBuildID formats a binary build ID as BUILD-ID's value (lowercase
// hex, two digits per byte, as the kernel's bin2hex).
func FormatBuildID(id []byte) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 2*len(id))
	for i, c := range id {
		b[2*i] = digits[c>>4]
		b[2*i+1] = digits[c&15]
	}
	return string(b)
}

// Value parsing. These accept what every consumer reads the same way, and
// reject what consumers read differently, so that a value this package
// returns is the value crash, makedumpfile and drgn all see.

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hasHexPrefix(s string) bool { return len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') }

// parseHexDigits parses 1–16 hex digits (either case).
func parseHexDigits(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 16 {
		// More than 16 digits overflows unsigned long; strtoul saturates
		// to ULONG_MAX, which makedumpfile rejects.
		if len(s) > 16 && strings.Trim(s[:len(s)-16], "0") == "" {
			s = s[len(s)-16:]
		} else {
			return 0, false
		}
	}
	if !allHex(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 64)
	return v, err == nil
}

// parseHex parses a HexValue. An optional 0x is accepted because every
// consumer parses these with strtoul(…, 16), which skips it.
func parseHex(s string) (uint64, bool) {
	if hasHexPrefix(s) {
		s = s[2:]
	}
	return parseHexDigits(s)
}

// parseDecimalDigits parses "0" or a decimal number without leading zeros.
// Leading zeros are rejected: drgn and libkdumpfile parse with base 0 and
// would read octal, while makedumpfile reads decimal.
func parseDecimalDigits(s string) (uint64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// parseUnsigned parses an UnsignedValue: decimal, or 0x-prefixed hex (read
// the same way by makedumpfile's hex fallback and drgn's base 0).
func parseUnsigned(s string) (uint64, bool) {
	if hasHexPrefix(s) {
		return parseHexDigits(s[2:])
	}
	return parseDecimalDigits(s)
}

// parseSigned parses a SignedValue: optionally negative decimal, or
// 0x-prefixed hex read as a 64-bit two's-complement pattern (so that
// NUMBER(VMALLOC_START)=0xffffc90000000000 yields a negative int64 whose
// uint64 conversion is the address).
func parseSigned(s string) (int64, bool) {
	if hasHexPrefix(s) {
		v, ok := parseHexDigits(s[2:])
		return int64(v), ok
	}
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	u, ok := parseDecimalDigits(s)
	if !ok {
		return 0, false
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true // -int64(1<<63) wraps to MinInt64, as wanted
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// allHex reports whether s is non-empty and all hex digits.
func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func isBuildID(s string) bool { return len(s)%2 == 0 && allHex(s) }

// checkValue validates v against kind (plus the row's extra check) and
// returns what was expected when it fails.
func checkValue(r *keyRule, v string) (ok bool, want string) {
	kind := TextValue
	if r != nil {
		kind = r.kind
	}
	switch kind {
	case ReleaseValue:
		if v == "" || len(v) > maxRelease {
			return false, kind.String()
		}
	case HexValue:
		if _, ok := parseHex(v); !ok {
			return false, kind.String()
		}
	case UnsignedValue:
		if _, ok := parseUnsigned(v); !ok {
			return false, kind.String()
		}
	case SignedValue:
		if _, ok := parseSigned(v); !ok {
			return false, kind.String()
		}
	case BuildIDValue:
		if !isBuildID(v) {
			return false, "hex digits"
		}
	}
	if r != nil && r.extra != nil {
		if sev, msg := r.extra(v); sev >= Fatal {
			return false, msg
		}
	}
	return true, ""
}

// maxRelease is the longest OSRELEASE: new_utsname.release is 65 bytes
// including the NUL, and makedumpfile rejects anything longer.
const maxRelease = 64

func checkPageSize(v string) (Severity, string) {
	n, ok := parseUnsigned(v)
	if ok && (n == 0 || bits.OnesCount64(n) != 1) {
		return Fatal, "a non-zero power of two (makedumpfile refuses anything else)"
	}
	return 0, ""
}

func checkSymbol(v string) (Severity, string) {
	n, ok := parseHex(v)
	if ok && (n == 0 || n == math.MaxUint64) {
		return Degraded, "neither 0 nor ULONG_MAX: makedumpfile read_vmcoreinfo_symbol rejects both as invalid data"
	}
	return 0, ""
}

func checkKernelOffset(v string) (Severity, string) {
	n, ok := parseHex(v)
	if ok && n&0xfff != 0 {
		return Degraded, "4 KiB alignment: crash requires the KASLR relocation to be page-aligned (symbols.c derive_kaslr_offset)"
	}
	return 0, ""
}
