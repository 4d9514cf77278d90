package elfcore

import "fmt"

// FormatError reports malformed ELF data. It names the byte offset in the
// file and the field that is wrong, so that a user can look at the bytes
// (e.g. with `xxd -s OFF`) and a bug report can say exactly what was seen.
type FormatError struct {
	Off   int64  // byte offset in the file of the offending record or field
	Field string // e.g. "e_phoff", "phdr[2].p_offset", "note[3].n_descsz"
	Msg   string // what was expected
	Val   any    // the value found, if any
}

func (e *FormatError) Error() string {
	s := fmt.Sprintf("elfcore: %s at byte %#x: %s", e.Field, e.Off, e.Msg)
	if e.Val != nil {
		switch v := e.Val.(type) {
		case uint64, uint32, uint16, int64, int:
			s += fmt.Sprintf(" (found %#x)", v)
		default:
			s += fmt.Sprintf(" (found %v)", v)
		}
	}
	return s
}

func formatErr(off int64, field, msg string, val any) *FormatError {
	return &FormatError{Off: off, Field: field, Msg: msg, Val: val}
}
