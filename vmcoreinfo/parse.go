package vmcoreinfo

import (
	"bytes"
	"fmt"
	"strings"
)

// ErrKind classifies a FormatError.
type ErrKind uint8

const (
	// ErrNoNewline: the text ends inside a line. drgn ignores a final line
	// without '\n' (D1); in a livedump note it means the text was cut (K-1).
	ErrNoNewline ErrKind = iota + 1
	// ErrNUL: a NUL byte. makedumpfile's fgets stops at it (D1). A
	// repeated livedump leaves NUL runs before CRASHTIME (K-6).
	ErrNUL
	// ErrControl: a control byte other than '\n' and NUL, including '\r'.
	ErrControl
	// ErrNonASCII: a byte >= 0x80. The kernel only writes ASCII here; such
	// bytes mean the text ran into unrelated memory.
	ErrNonASCII
	// ErrEmptyLine: an empty line.
	ErrEmptyLine
	// ErrNoEquals: a line without '='.
	ErrNoEquals
	// ErrEmptyKey: a line starting with '='.
	ErrEmptyKey
	// ErrKeyChar: a key byte outside [A-Za-z0-9_.()-]. Every key the
	// kernel emits fits that set; anything else is garbage.
	ErrKeyChar
)

var errKindNames = [...]string{
	ErrNoNewline: "no newline",
	ErrNUL:       "NUL byte",
	ErrControl:   "control byte",
	ErrNonASCII:  "non-ASCII byte",
	ErrEmptyLine: "empty line",
	ErrNoEquals:  "no '='",
	ErrEmptyKey:  "empty key",
	ErrKeyChar:   "bad key byte",
}

func (k ErrKind) String() string {
	if int(k) < len(errKindNames) && errKindNames[k] != "" {
		return errKindNames[k]
	}
	return fmt.Sprintf("ErrKind(%d)", k)
}

// FormatError reports malformed VMCOREINFO text.
type FormatError struct {
	Off  int // byte offset in the input of the offending byte
	Line int // 1-based line number (NUL runs stripped by ParseLenient do not count)
	Kind ErrKind
	Msg  string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("vmcoreinfo: line %d (offset %d): %s", e.Line, e.Off, e.Msg)
}

func isKeyByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == '(' || c == ')' || c == '-'
}

func isPrint(c byte) bool { return 0x20 <= c && c < 0x7f }

// checkLine validates one line without its '\n'; off is the input offset of
// line[0], lineNo its 1-based number. It returns the index of the first '='.
func checkLine(line []byte, off, lineNo int) (int, *FormatError) {
	fail := func(i int, kind ErrKind, msg string) (int, *FormatError) {
		return -1, &FormatError{Off: off + i, Line: lineNo, Kind: kind, Msg: msg}
	}
	if len(line) == 0 {
		return fail(0, ErrEmptyLine, "empty line")
	}
	eq := -1
	for i, c := range line {
		switch {
		case c == 0:
			return fail(i, ErrNUL, "NUL byte (a repeated livedump leaves NUL runs before CRASHTIME, K-6)")
		case c >= 0x80:
			return fail(i, ErrNonASCII, fmt.Sprintf("non-ASCII byte 0x%02x", c))
		case !isPrint(c):
			return fail(i, ErrControl, fmt.Sprintf("control byte 0x%02x", c))
		case eq >= 0:
			// value byte: any printable
		case c == '=':
			if i == 0 {
				return fail(i, ErrEmptyKey, "empty key")
			}
			eq = i
		case !isKeyByte(c):
			return fail(i, ErrKeyChar, fmt.Sprintf("byte %q not allowed in a key", c))
		}
	}
	if eq < 0 {
		return fail(len(line), ErrNoEquals, "line has no '='")
	}
	return eq, nil
}

// Parse parses VMCOREINFO text strictly: every line must be "KEY=VALUE\n"
// with a key of [A-Za-z0-9_.()-] and a printable-ASCII value, the last line
// included (drgn ignores an unterminated last line). NUL, CR and other
// control bytes are errors. Empty input yields an empty Info. Duplicate keys
// and badly formatted values are accepted here and reported by Lint.
//
// The error is a *FormatError for the first deviation.
func Parse(text []byte) (*Info, error) {
	in, _, err := scan(text, false)
	if err != nil {
		return nil, err
	}
	return in, nil
}

// NULRun is a run of NUL bytes that ParseLenient removed.
type NULRun struct {
	Off int // input offset of the first NUL
	Len int // number of NUL bytes
}

// Damage describes what ParseLenient repaired or dropped.
type Damage struct {
	// NULRuns are the NUL runs removed from line starts, each followed by a
	// well-formed line. A repeated livedump leaves one before CRASHTIME
	// (K-6, about 21 bytes per earlier run).
	NULRuns []NULRun
	// CRLF counts lines whose "\r\n" ending was turned into "\n".
	CRLF int
	// End is the input offset just past the last line kept; input[End:]
	// was ignored.
	End int
	// Ignored is the number of bytes ignored at the end (len(input) - End).
	Ignored int
	// Stop says why parsing stopped before the end of the input (nil when
	// all of it was used): ErrNoNewline for a text cut at its end, ErrNUL,
	// ErrControl or ErrNonASCII when it runs into unrelated memory (K-1),
	// and so on.
	Stop *FormatError
	// Partial is the printable prefix (at most MaxPartial bytes) of the
	// line that was rejected: for a text cut mid-line, the part of the
	// last line that survived. PartialOff is its input offset.
	Partial    string
	PartialOff int
}

// MaxPartial bounds Damage.Partial.
const MaxPartial = 256

// Clean reports whether nothing was repaired or dropped.
func (d *Damage) Clean() bool { return len(d.NULRuns) == 0 && d.CRLF == 0 && d.Stop == nil }

// Truncated reports whether input was dropped at the end.
func (d *Damage) Truncated() bool { return d.Stop != nil }

// NULBytes returns the total number of NUL bytes removed.
func (d *Damage) NULBytes() int {
	n := 0
	for _, r := range d.NULRuns {
		n += r.Len
	}
	return n
}

// PartialKey returns the key of the dropped partial line when the cut fell
// after its '=': the key is complete, its value was lost or cut short.
func (d *Damage) PartialKey() (string, bool) {
	i := strings.IndexByte(d.Partial, '=')
	if i <= 0 {
		return "", false
	}
	for j := 0; j < i; j++ {
		if !isKeyByte(d.Partial[j]) {
			return "", false
		}
	}
	return d.Partial[:i], true
}

func (d *Damage) String() string {
	if d.Clean() {
		return "no damage"
	}
	var parts []string
	for _, r := range d.NULRuns {
		parts = append(parts, fmt.Sprintf("stripped %d NUL bytes at offset %d", r.Len, r.Off))
	}
	if d.CRLF > 0 {
		parts = append(parts, fmt.Sprintf("converted %d CRLF line endings", d.CRLF))
	}
	if d.Stop != nil {
		s := fmt.Sprintf("text ends at offset %d: line %d: %s", d.End, d.Stop.Line, d.Stop.Msg)
		if d.Partial != "" {
			s += fmt.Sprintf(" (dropped partial line %q at offset %d)", d.Partial, d.PartialOff)
		}
		s += fmt.Sprintf("; ignored %d trailing bytes", d.Ignored)
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// ParseLenient parses as much well-formed text as it can and never fails.
//
//   - A run of NUL bytes at a line start that is followed by a well-formed
//     line is removed and recorded (K-6).
//   - A "\r\n" line ending becomes "\n" and is counted.
//   - Parsing stops at the first line that is not a complete "KEY=VALUE\n"
//     in Parse's grammar (text cut mid-line, binary garbage, a NUL run up to
//     the end, an empty line …). Everything from that line on is ignored and
//     described in Damage, so a note cut by K-1 yields exactly the complete
//     lines before the cut.
//
// The result's Bytes() always satisfies Parse. Damage is never nil.
func ParseLenient(text []byte) (*Info, *Damage) {
	in, d, _ := scan(text, true)
	return in, d
}

// scan is the common parser. In strict mode it returns the first error; in
// lenient mode it records it in Damage.Stop and returns a nil error.
func scan(text []byte, lenient bool) (*Info, *Damage, *FormatError) {
	in := &Info{lines: make([]Line, 0, bytes.Count(text, []byte{'\n'}))}
	d := &Damage{}
	pos, lineNo := 0, 1
	for pos < len(text) {
		start := pos
		if lenient && text[pos] == 0 {
			for pos < len(text) && text[pos] == 0 {
				pos++
			}
			if pos == len(text) {
				d.stop(text, start, &FormatError{Off: start, Line: lineNo, Kind: ErrNUL,
					Msg: fmt.Sprintf("%d NUL bytes up to the end of the text", pos-start)})
				break
			}
		}
		rest := text[pos:]
		nl := bytes.IndexByte(rest, '\n')
		line := rest
		if nl >= 0 {
			line = rest[:nl]
		}
		cr := lenient && nl >= 0 && len(line) > 0 && line[len(line)-1] == '\r'
		if cr {
			line = line[:len(line)-1]
		}
		eq, err := checkLine(line, pos, lineNo)
		if nl < 0 && (err == nil || err.Kind == ErrNoEquals) {
			// A prefix of a good line: the text was cut inside it.
			err = &FormatError{Off: len(text), Line: lineNo, Kind: ErrNoNewline,
				Msg: "text ends inside a line (no final newline)"}
		}
		if err != nil {
			if !lenient {
				return nil, nil, err
			}
			d.stop(text, start, err)
			d.Partial, d.PartialOff = printablePrefix(rest), pos
			break
		}
		if pos > start {
			d.NULRuns = append(d.NULRuns, NULRun{Off: start, Len: pos - start})
		}
		if cr {
			d.CRLF++
		}
		in.lines = append(in.lines, Line{Key: string(line[:eq]), Value: string(line[eq+1:])})
		pos += nl + 1
		lineNo++
		d.End = pos
	}
	return in, d, nil
}

func (d *Damage) stop(text []byte, end int, err *FormatError) {
	d.End, d.Ignored, d.Stop, d.PartialOff = end, len(text)-end, err, end
}

// printablePrefix returns the leading printable-ASCII bytes of b, up to
// MaxPartial.
func printablePrefix(b []byte) string {
	n := 0
	for n < len(b) && n < MaxPartial && isPrint(b[n]) {
		n++
	}
	return string(b[:n])
}
