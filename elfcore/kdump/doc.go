// Package kdump reads the kdump-compressed ("diskdump") dump format that
// makedumpfile writes with -c, -l, -p, -z or -d without -E.
//
// The layout is documented in full in the File documentation; raw.go holds
// the on-disk records and their little-endian encoding.
package kdump
