package kdump

import "errors"

// LZO1X errors.
var (
	errLZOInput   = errors.New("lzo1x: input overrun")
	errLZOOutput  = errors.New("lzo1x: output overrun (more than a page)")
	errLZOLookBeh = errors.New("lzo1x: match distance before the start of the output")
	errLZOTrail   = errors.New("lzo1x: data after the end marker")
	errLZOEnd     = errors.New("lzo1x: bad end marker")
	errLZOLong    = errors.New("lzo1x: run length too long")
)

// LZO1XDecompress decodes one LZO1X block (as liblzo2's lzo1x_1_compress
// writes it, which makedumpfile -l uses) from src into dst and returns the
// number of bytes written. It never writes past len(dst) and never reads
// past len(src): output or input overruns, matches reaching before the
// output's start and a missing end marker are errors.
//
// The stream is a sequence of instructions, each selected by its first
// byte t and by state (how many literals the previous instruction copied):
//
//   - t > 17 as the very first byte: t-17 literals follow.
//   - t < 16 after a match (state 0): a literal run of t+3 bytes (t == 0:
//     length 18 + 255 per following zero byte + the next byte).
//   - t < 16 after 1…3 literals: a 2-byte match, distance 1 + t>>2 +
//     next<<2.
//   - t < 16 right after a literal run (state 4): a 3-byte match, distance
//     2049 + t>>2 + next<<2.
//   - t ≥ 64: a 3…8-byte match, distance 1 + (t>>2)&7 + next<<3.
//   - 32 ≤ t < 64: a match of (t&31)+2 bytes (extended like literal runs
//     when 0), distance 1 + le16>>2.
//   - 16 ≤ t < 32: a match of (t&7)+2 bytes, distance 16384 + (t&8)<<11 +
//     le16>>2; distance 16384 exactly is the end marker (t = 17, 0, 0).
//
// A match's low two bits of its last distance byte(s) give 0…3 literals
// to copy after it (the next state).
func LZO1XDecompress(src, dst []byte) (int, error) {
	ip, op := 0, 0
	need := func(n int) bool { return len(src)-ip >= n }
	// extend reads a run-length extension: zero bytes each worth 255,
	// then a byte added with base.
	extend := func(base int) (int, error) {
		zeros := 0
		for {
			if !need(1) {
				return 0, errLZOInput
			}
			if src[ip] != 0 {
				break
			}
			ip++
			zeros++
			if zeros > len(dst)/255+2 {
				return 0, errLZOLong
			}
		}
		v := zeros*255 + base + int(src[ip])
		ip++
		return v, nil
	}
	copyLit := func(t int) error {
		if !need(t) {
			return errLZOInput
		}
		if len(dst)-op < t {
			return errLZOOutput
		}
		copy(dst[op:], src[ip:ip+t])
		ip += t
		op += t
		return nil
	}
	copyMatch := func(dist, t int) error {
		if dist <= 0 || dist > op {
			return errLZOLookBeh
		}
		if len(dst)-op < t {
			return errLZOOutput
		}
		m := op - dist
		for i := 0; i < t; i++ { // byte by byte: matches may overlap
			dst[op+i] = dst[m+i]
		}
		op += t
		return nil
	}
	if len(src) < 3 {
		return 0, errLZOInput
	}
	state := 0
	if src[0] > 17 {
		t := int(src[0]) - 17
		ip++
		if err := copyLit(t); err != nil {
			return op, err
		}
		if t < 4 {
			state = t
		} else {
			state = 4
		}
	}
	for {
		if !need(1) {
			return op, errLZOInput
		}
		t := int(src[ip])
		ip++
		var dist, length, next int
		switch {
		case t < 16 && state == 0:
			if t == 0 {
				v, err := extend(15)
				if err != nil {
					return op, err
				}
				t = v
			}
			if err := copyLit(t + 3); err != nil {
				return op, err
			}
			state = 4
			continue
		case t < 16 && state != 4:
			if !need(1) {
				return op, errLZOInput
			}
			dist = 1 + t>>2 + int(src[ip])<<2
			ip++
			length, next = 2, t&3
		case t < 16: // state 4
			if !need(1) {
				return op, errLZOInput
			}
			dist = 1 + 0x800 + t>>2 + int(src[ip])<<2
			ip++
			length, next = 3, t&3
		case t >= 64:
			if !need(1) {
				return op, errLZOInput
			}
			dist = 1 + (t>>2)&7 + int(src[ip])<<3
			ip++
			length, next = t>>5+1, t&3
		case t >= 32:
			length = t&31 + 2
			if length == 2 {
				v, err := extend(31)
				if err != nil {
					return op, err
				}
				length = v + 2
			}
			if !need(2) {
				return op, errLZOInput
			}
			le16 := int(src[ip]) | int(src[ip+1])<<8
			ip += 2
			dist, next = 1+le16>>2, le16&3
		default: // 16 ≤ t < 32
			length = t&7 + 2
			if length == 2 {
				v, err := extend(7)
				if err != nil {
					return op, err
				}
				length = v + 2
			}
			if !need(2) {
				return op, errLZOInput
			}
			le16 := int(src[ip]) | int(src[ip+1])<<8
			ip += 2
			dist = (t&8)<<11 + le16>>2
			next = le16 & 3
			if dist == 0 {
				if length != 3 {
					return op, errLZOEnd
				}
				if ip != len(src) {
					return op, errLZOTrail
				}
				return op, nil
			}
			dist += 0x4000
		}
		if err := copyMatch(dist, length); err != nil {
			return op, err
		}
		if err := copyLit(next); err != nil {
			return op, err
		}
		state = next
	}
}
