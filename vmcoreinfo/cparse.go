package vmcoreinfo

import (
	"math"
	"math/bits"
)

// C library string-to-number conversions, as glibc implements them on an
// LP64 machine (long and unsigned long are 64 bits, so strtoul and
// strtoull are the same function). The consumers' VMCOREINFO readers are
// built on these; consumers.go mirrors the readers.

// CNumber is the result of a C conversion function.
type CNumber struct {
	// Value is the returned value as a 64-bit pattern: for Strtol a
	// signed long, for Strtoul an unsigned long (a negative input wraps).
	Value uint64
	// End is the index in the input of *endptr: 0 when no digits were
	// converted (endptr = nptr).
	End int
	// Range reports errno == ERANGE: the value was clamped (Strtoul to
	// ULONG_MAX, Strtol to LONG_MAX or LONG_MIN).
	Range bool
}

// Int returns Value as a signed long.
func (n CNumber) Int() int64 { return int64(n.Value) }

// cSpace is C's isspace in the "C" locale.
func cSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func digitVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

// cConvert is the common part of glibc's strtol and strtoul: leading
// whitespace, an optional sign, the base prefix (base 0: "0x" hex, a
// leading 0 octal, else decimal; base 16: an optional "0x"), then digits.
// It returns the magnitude, whether it overflowed 64 bits, the sign and
// the end index. "0x" not followed by a hex digit converts the "0" alone,
// as glibc does.
func cConvert(s string, base int) (mag uint64, over, neg bool, end int) {
	i := 0
	for i < len(s) && cSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if (base == 0 || base == 16) && i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') {
		if i+2 < len(s) && digitVal(s[i+2]) < 16 {
			i += 2
			base = 16
		} else {
			// "0x" with no hex digit: the "0" is the number.
			return 0, false, neg, i + 1
		}
	}
	if base == 0 {
		base = 10
		if i < len(s) && s[i] == '0' {
			base = 8
		}
	}
	start := i
	for i < len(s) {
		d := digitVal(s[i])
		if d >= base {
			break
		}
		if !over {
			hi, lo := mulAdd(mag, uint64(base), uint64(d))
			if hi != 0 {
				over = true
			} else {
				mag = lo
			}
		}
		i++
	}
	if i == start {
		return 0, false, false, 0
	}
	return mag, over, neg, i
}

// mulAdd returns m*b+d as a 128-bit value (hi, lo).
func mulAdd(m, b, d uint64) (hi, lo uint64) {
	hi, lo = bits.Mul64(m, b)
	var carry uint64
	lo, carry = bits.Add64(lo, d, 0)
	return hi + carry, lo
}

// Strtoul is glibc's strtoul (and strtoull): on overflow it returns
// ULONG_MAX with ERANGE whatever the sign; otherwise a '-' negates the
// result modulo 2^64.
func Strtoul(s string, base int) CNumber {
	mag, over, neg, end := cConvert(s, base)
	switch {
	case over:
		return CNumber{Value: math.MaxUint64, End: end, Range: true}
	case neg:
		return CNumber{Value: -mag, End: end}
	}
	return CNumber{Value: mag, End: end}
}

// Strtol is glibc's strtol: out-of-range values clamp to LONG_MAX or
// LONG_MIN with ERANGE.
func Strtol(s string, base int) CNumber {
	mag, over, neg, end := cConvert(s, base)
	switch {
	case neg && (over || mag > 1<<63):
		return CNumber{Value: 1 << 63, End: end, Range: true}
	case !neg && (over || mag > math.MaxInt64):
		return CNumber{Value: math.MaxInt64, End: end, Range: true}
	case neg:
		return CNumber{Value: -mag, End: end}
	}
	return CNumber{Value: mag, End: end}
}

// Atoi is glibc's atoi: (int) strtol(s, NULL, 10), the long truncated to
// 32 bits; no error is reported.
func Atoi(s string) int32 { return int32(Strtol(s, 10).Int()) }

// Atol is glibc's atol: strtol(s, NULL, 10) without error reporting.
func Atol(s string) int64 { return Strtol(s, 10).Int() }
