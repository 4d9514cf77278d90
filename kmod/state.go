package kmod

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"syscall"
)

// State is the livedump state number `state` reads and accepts
// (package documentation: "The kernel interface").
type State int

// The states of the livedump v1 interface, in the kernel's numbering.
const (
	Undefined State = 0 // after boot
	Init      State = 1 // buffers allocated, direct map split, device opened
	Start     State = 2 // memory write-protected, sensitive pages dumped, header built
	Sweep     State = 3 // every remaining page queued
	Finish    State = 4 // header and notes queued (never waits for I/O)
	Uninit    State = 5 // everything released; idle again
)

var stateNames = [...]string{"UNDEFINED", "INIT", "START", "SWEEP", "FINISH", "UNINIT"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Idle reports whether no run is in progress: only in these states does
// the kernel accept a new `output` and INIT.
func (s State) Idle() bool { return s == Undefined || s == Uninit }

// ENOIOCTLCMD is what the kernel returns for a state number outside 0–5;
// user space sees "Unknown error 515" (package documentation: "The kernel interface").
const ENOIOCTLCMD = syscall.Errno(515)

// TransitionError is a transition the kernel refuses, found before
// writing it.
type TransitionError struct {
	From, To State
	Errno    syscall.Errno // what the kernel would return
	Why      string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("the kernel refuses %s (%d) in state %s (%d) with %s: %s", e.To, int(e.To), e.From, int(e.From), errnoName(e.Errno), e.Why)
}

// CheckTransition returns nil if the v1 kernel accepts writing to while
// in state from, else what it would answer and why. outputSet says
// whether `output` holds a path. The rules are state_store and
// livedump_change_state's (package documentation: "The kernel interface"): 0 is never accepted, numbers outside
// 0–5 give 515, everything but UNINIT needs an output, INIT follows
// UNDEFINED or UNINIT, START follows INIT, SWEEP START, FINISH SWEEP, and
// UNINIT any state from INIT on (so a run can be abandoned half-done).
func CheckTransition(from, to State, outputSet bool) error {
	bad := func(errno syscall.Errno, why string) error {
		return &TransitionError{From: from, To: to, Errno: errno, Why: why}
	}
	switch {
	case to < Undefined || to > Uninit:
		return bad(ENOIOCTLCMD, "not a state number (0–5)")
	case to == Undefined:
		return bad(syscall.EINVAL, "UNDEFINED cannot be entered")
	case to != Uninit && !outputSet:
		return bad(syscall.EINVAL, "output must be set first")
	}
	want := map[State]string{Init: "UNDEFINED or UNINIT", Start: "INIT", Sweep: "START", Finish: "SWEEP", Uninit: "INIT or later"}[to]
	ok := false
	switch to {
	case Init:
		ok = from.Idle()
	case Start, Sweep, Finish:
		ok = from == to-1
	case Uninit:
		ok = from >= Init
	}
	if !ok {
		return bad(syscall.EINVAL, "it must follow "+want)
	}
	return nil
}

// parseState parses what reading `state` gives: the number on the first
// line, then an empty line and six legend lines (package documentation: "The kernel interface").
func parseState(b []byte) (State, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	n, err := strconv.Atoi(string(bytes.TrimSpace(line)))
	if err != nil {
		return 0, fmt.Errorf("livedump state %q is not a number", line)
	}
	return State(n), nil
}

// errnoName names the errors the interface gives the way its
// documentation does.
func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EINVAL:
		return "EINVAL"
	case ENOIOCTLCMD:
		return "error 515 (ENOIOCTLCMD)"
	case syscall.ENOMEM:
		return "ENOMEM"
	case syscall.EBUSY:
		return "EBUSY"
	case 0:
		return "success"
	}
	return e.Error()
}

// errnoOf extracts the errno of a failed attribute write.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}
