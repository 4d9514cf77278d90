package printk

import "strconv"

// FormatOptions choose the optional columns of the text output.
type FormatOptions struct {
	// Caller adds the caller id after the timestamp as the kernel's
	// console prints it with CONFIG_PRINTK_CALLER: "[    1.234567][  T123] ".
	Caller bool
	// Seq puts the record's sequence number first: "#42 [    1.234567] ".
	Seq bool
}

// AppendText appends r formatted as makedumpfile --dump-dmesg prints a
// record, which is also what dmesg(1) shows: the timestamp as
// "[%5lu.%06lu] ", then the text with every newline followed by spaces
// as wide as the prefix, printable ASCII and white space as they are and
// any other byte as \xNN, and a final newline. (makedumpfile formats a
// byte ≥ 0x80 through a signed char, "\xffffffc3"; ldx prints "\xc3".)
func AppendText(b []byte, r *Record, o FormatOptions) []byte {
	start := len(b)
	if o.Seq {
		b = append(b, '#')
		b = strconv.AppendUint(b, r.Seq, 10)
		b = append(b, ' ')
	}
	b = appendTimestamp(b, r.TsNsec)
	if o.Caller && r.HasCaller {
		c := r.CallerString()
		b = append(b, '[')
		for i := len(c); i < 6; i++ {
			b = append(b, ' ')
		}
		b = append(b, c...)
		b = append(b, ']')
	}
	b = append(b, ' ')
	indent := len(b) - start
	for _, c := range r.Text {
		switch {
		case c == '\n':
			b = append(b, '\n')
			for range indent {
				b = append(b, ' ')
			}
		case printable(c):
			b = append(b, c)
		default:
			b = appendHexEscape(b, c)
		}
	}
	return append(b, '\n')
}

// EscapeText returns the text with the bytes AppendText escapes escaped,
// newlines kept: a lossless, valid UTF-8 form for JSON.
func EscapeText(text []byte) string {
	b := make([]byte, 0, len(text))
	for _, c := range text {
		if c == '\n' || printable(c) {
			b = append(b, c)
		} else {
			b = appendHexEscape(b, c)
		}
	}
	return string(b)
}

// appendTimestamp formats nanoseconds as "[%5lu.%06lu]".
func appendTimestamp(b []byte, ns uint64) []byte {
	sec, usec := ns/1e9, ns%1e9/1e3
	b = append(b, '[')
	s := strconv.FormatUint(sec, 10)
	for i := len(s); i < 5; i++ {
		b = append(b, ' ')
	}
	b = append(b, s...)
	b = append(b, '.')
	u := strconv.FormatUint(usec, 10)
	for i := len(u); i < 6; i++ {
		b = append(b, '0')
	}
	b = append(b, u...)
	return append(b, ']')
}

// printable is C's isprint(c) || isspace(c) in the C locale.
func printable(c byte) bool {
	return (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func appendHexEscape(b []byte, c byte) []byte {
	const digits = "0123456789abcdef"
	return append(b, '\\', 'x', digits[c>>4], digits[c&15])
}
