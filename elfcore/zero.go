package elfcore

import "bytes"

// zeroPage is compared against, never written.
var zeroPage [4096]byte

// IsZero reports whether b is all zero bytes: how every package tells a
// zero page (a hole in the sparse output, a never-written page of a zeroed
// device, an empty header page). bytes.Equal against a static zero page
// compiles to the runtime's vectorised memequal, which is what makes
// scanning terabytes for zero pages cheap.
func IsZero(b []byte) bool {
	for len(b) >= len(zeroPage) {
		if !bytes.Equal(b[:len(zeroPage)], zeroPage[:]) {
			return false
		}
		b = b[len(zeroPage):]
	}
	return bytes.Equal(b, zeroPage[:len(b)])
}
