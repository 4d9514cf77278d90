package dump

import "bytes"

const pageSize = 4096

var zeroPage = make([]byte, pageSize)

// IsZero reports whether b is all zero bytes. bytes.Equal compiles to the
// runtime's vectorised memequal, which is what makes scanning terabytes
// for zero pages cheap.
func IsZero(b []byte) bool {
	for len(b) >= pageSize {
		if !bytes.Equal(b[:pageSize], zeroPage) {
			return false
		}
		b = b[pageSize:]
	}
	return bytes.Equal(b, zeroPage[:len(b)])
}

func pageDown(a uint64) uint64 { return a &^ (pageSize - 1) }
func pageUp(a uint64) uint64   { return (a + pageSize - 1) &^ (pageSize - 1) }
