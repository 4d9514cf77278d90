package vmlinux

import (
	"errors"
	"fmt"
)

// ErrNotFound is matched (errors.Is) by every lookup of a name the
// vmlinux does not have.
var ErrNotFound = errors.New("not found")

// ErrClosed is returned by every method of a closed File.
var ErrClosed = errors.New("vmlinux file already closed")

// LookupError says which name of which kind was looked up, in which file.
type LookupError struct {
	File string // the vmlinux path
	Kind string // "symbol", "type", "member", "enumerator", "variable"
	Name string
	Err  error // ErrNotFound, or what went wrong reading it
}

func (e *LookupError) Error() string {
	if errors.Is(e.Err, ErrNotFound) {
		return fmt.Sprintf("%s: no %s %q", e.File, e.Kind, e.Name)
	}
	return fmt.Sprintf("%s: %s %q: %v", e.File, e.Kind, e.Name, e.Err)
}

func (e *LookupError) Unwrap() error { return e.Err }

// FormatError reports DWARF that does not have the shape a C compiler
// emits, at a .debug_info offset.
type FormatError struct {
	Off uint64 // offset in .debug_info
	Msg string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("DWARF at .debug_info+%#x: %s", e.Off, e.Msg)
}
