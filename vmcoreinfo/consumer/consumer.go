// Package consumer names the programs that read vmcores and grades what a
// defect does to them. It is the one model of consumers that the
// VMCOREINFO key table (package vmcoreinfo) and ldx verify share: which
// consumer needs a key, and how badly a missing key or a broken
// requirement hits it, are said in these types.
package consumer

import (
	"fmt"
	"strings"
)

// Consumer is one program that reads vmcores, or a set of them (bits
// or'ed together): a requirement matters to a set, an effect hits one.
type Consumer uint8

const (
	Crash Consumer = 1 << iota
	Makedumpfile
	Drgn
	Libkdumpfile
	VmcoreDmesg

	// All is every consumer.
	All = Crash | Makedumpfile | Drgn | Libkdumpfile | VmcoreDmesg
)

// Each lists every consumer, one at a time, in report order.
var Each = []Consumer{Crash, Makedumpfile, Drgn, Libkdumpfile, VmcoreDmesg}

var names = []string{"crash", "makedumpfile", "drgn", "libkdumpfile", "vmcore-dmesg"}

// String names the consumer, or the consumers of a set joined by commas
// ("none" for the empty set).
func (c Consumer) String() string {
	var out []string
	for i, n := range names {
		if c&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

// Has reports whether the set c holds every consumer of o.
func (c Consumer) Has(o Consumer) bool { return o != 0 && c&o == o }

// Split returns the consumers of the set c, in report order.
func (c Consumer) Split() []Consumer {
	var out []Consumer
	for _, e := range Each {
		if c&e != 0 {
			out = append(out, e)
		}
	}
	return out
}

// MarshalText writes the consumer's name (a set's names joined by commas).
func (c Consumer) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (c *Consumer) UnmarshalText(b []byte) error {
	var set Consumer
	for _, n := range strings.Split(string(b), ",") {
		i := indexOf(names, n)
		if i < 0 {
			return fmt.Errorf("consumer: unknown consumer %q", n)
		}
		set |= 1 << i
	}
	*c = set
	return nil
}

// Severity grades what a defect does to a consumer.
type Severity uint8

const (
	// None: nothing fails.
	None Severity = iota
	// Info: worth knowing, not a defect (a live dump's synthetic CPU
	// registers, a QEMU producer).
	Info
	// Cosmetic: warnings, noise or performance only.
	Cosmetic
	// Degraded: the file opens, but a feature or a fallback is lost.
	Degraded
	// Fatal: the consumer rejects the file, or a whole mode (filtering,
	// dmesg, translation) returns nothing or wrong results.
	Fatal
)

var severityNames = []string{None: "ok", Info: "info", Cosmetic: "cosmetic", Degraded: "degraded", Fatal: "fatal"}

func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("Severity(%d)", s)
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	i := indexOf(severityNames, string(b))
	if i < 0 {
		return fmt.Errorf("consumer: unknown severity %q", b)
	}
	*s = Severity(i)
	return nil
}

func indexOf(list []string, s string) int {
	for i, n := range list {
		if n == s {
			return i
		}
	}
	return -1
}
