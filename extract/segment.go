package extract

import (
	"fmt"

	"ldx/elfcore"
	"ldx/kmod/manifest"
)

// segmenter turns a stream of pages into PT_LOAD segments and their file
// data. Every page of RAM stays covered by a PT_LOAD (consumers fail on
// reads of uncovered pages, zero or not), and every segment has
// p_filesz == p_memsz: makedumpfile 1.7's mmap path takes a segment's
// file extent from p_memsz and reads a zero-filled tail from the wrong
// bytes, or past the end of the file.
//
// Zero memory is not stored all the same:
//   - a run of at least minGap zero pages becomes zero segments whose
//     p_offset all point at one shared region of zeros at the end of the
//     file, itself a hole: no disk space, and the apparent size grows only
//     by the longest piece (zero runs are cut into pieces of at most
//     zeroCap);
//   - shorter zero runs stay inside a data segment as holes of the sparse
//     output file.
//
// The number of segments is bounded: when the budget gets tight, minGap
// doubles, so later memory is split more coarsely, and at the end zero
// runs only become holes.
type segmenter struct {
	out        writerAt
	pageOffset uint64 // p_vaddr = pageOffset + p_paddr for RAM segments
	image      manifest.Range
	maxSegs    int
	minGap     uint64 // bytes
	zeroCap    uint64 // largest zero segment

	fileOff     uint64 // next free file offset for data
	segs        []segment
	data        int    // index of the open data segment, or -1
	zeroStart   uint64 // pending zero run [zeroStart, zeroStart+zeroLen)
	zeroLen     uint64
	longestZero uint64
	imgOff      uint64 // file offset of the image's first byte
	imgSeen     bool
	nextTighten int
	rangesLeft  int

	written, zeroPages uint64
}

type segment struct {
	elfcore.ProgHeader
	zero bool // file data is the shared zero region
}

type writerAt interface {
	WriteAt(p []byte, off int64) (int, error)
}

func newSegmenter(out writerAt, dataOff, pageOffset uint64, image manifest.Range, maxSegs, minGapPages int, ram []manifest.Range) *segmenter {
	// Zero pieces: at most about 2048 of them over all of RAM, at least
	// 16 MiB each, at most 1 GiB.
	zeroCap := min(max(covered(ram)/2048, 16<<20), 1<<30) &^ (pageSize - 1)
	return &segmenter{out: out, fileOff: dataOff, pageOffset: pageOffset, image: image, data: -1,
		maxSegs: maxSegs, minGap: uint64(minGapPages) * pageSize, zeroCap: zeroCap, rangesLeft: len(ram)}
}

func (s *segmenter) inImage(pa uint64) bool { return pa >= s.image.Start && pa < s.image.End }

// exhausted reports that only the segments the remaining ranges need are
// left in the budget: zero runs then stay inside data segments.
func (s *segmenter) exhausted() bool { return s.maxSegs-len(s.segs) <= s.rangesLeft+1 }

// add appends a segment and adapts minGap to the budget: it doubles each
// time the count crosses another fraction (1/2, 3/4, 7/8 …) of it.
func (s *segmenter) add(sg segment) {
	sg.Vaddr = s.pageOffset + sg.Paddr
	s.segs = append(s.segs, sg)
	if s.nextTighten == 0 {
		s.nextTighten = s.maxSegs / 2
	}
	if n := len(s.segs); n >= s.nextTighten {
		s.minGap *= 2
		s.nextTighten += max(1, (s.maxSegs-s.nextTighten)/2)
	}
}

func (s *segmenter) openData(pa uint64) {
	s.add(segment{ProgHeader: elfcore.ProgHeader{Paddr: pa, Off: s.fileOff}})
	s.data = len(s.segs) - 1
	if pa == s.image.Start {
		s.imgOff, s.imgSeen = s.fileOff, true
	}
}

func (s *segmenter) closeData() {
	if s.data < 0 {
		return
	}
	d := &s.segs[s.data]
	s.fileOff = d.Off + d.Filesz
	s.data = -1
}

// flushZero settles the pending zero run: zero segments, or — when the run
// is short and follows data, or the budget is spent — a hole inside the
// open data segment (opened over the run if there is none).
func (s *segmenter) flushZero(short bool) {
	if s.zeroLen == 0 {
		return
	}
	start, n := s.zeroStart, s.zeroLen
	s.zeroLen = 0
	if (short && s.data >= 0) || s.exhausted() {
		if s.data < 0 {
			s.openData(start)
		}
		d := &s.segs[s.data]
		d.Filesz = start + n - d.Paddr
		d.Memsz = d.Filesz
		return
	}
	s.closeData()
	for n > 0 {
		k := min(n, s.zeroCap)
		s.add(segment{ProgHeader: elfcore.ProgHeader{Paddr: start, Filesz: k, Memsz: k}, zero: true})
		s.longestZero = max(s.longestZero, k)
		start, n = start+k, n-k
	}
}

// beginRange starts a RAM range: segments never span two ranges.
func (s *segmenter) beginRange(r manifest.Range) {}

// endRange settles the end of a RAM range.
func (s *segmenter) endRange(r manifest.Range) {
	s.flushZero(s.zeroLen < s.minGap)
	s.closeData()
	s.rangesLeft--
}

// page processes one page at pa; data is nil for a zero page.
func (s *segmenter) page(pa uint64, data []byte) error {
	if pa == s.image.Start {
		// The image PT_LOAD must point at contiguous file data: a data
		// segment starts exactly there and is not split inside it.
		s.flushZero(false)
		s.closeData()
		s.openData(pa)
	}
	if data == nil && !s.inImage(pa) {
		if s.zeroLen == 0 {
			s.zeroStart = pa
		}
		s.zeroLen += pageSize
		s.zeroPages++
		return nil
	}
	s.flushZero(s.zeroLen < s.minGap)
	if s.data < 0 {
		s.openData(pa)
	}
	d := &s.segs[s.data]
	if data != nil {
		off := d.Off + (pa - d.Paddr)
		if _, err := s.out.WriteAt(data, int64(off)); err != nil {
			return fmt.Errorf("writing the output at byte %#x: %w", off, err)
		}
		s.written += uint64(len(data))
	}
	d.Filesz = pa + pageSize - d.Paddr
	d.Memsz = d.Filesz
	return nil
}

// finish places the shared zero region after the data and returns the
// segments and the file size the output needs.
func (s *segmenter) finish() ([]elfcore.ProgHeader, uint64) {
	s.closeData()
	zeroOff := pageUp(s.fileOff)
	end := s.fileOff
	out := make([]elfcore.ProgHeader, len(s.segs))
	for i, sg := range s.segs {
		if sg.zero {
			sg.Off = zeroOff
			end = max(end, zeroOff+s.longestZero)
		}
		out[i] = sg.ProgHeader
	}
	return out, end
}

// imageSegment returns the kernel-image PT_LOAD over the RAM segments'
// file data.
func (s *segmenter) imageSegment(vaddr uint64) (elfcore.ProgHeader, bool) {
	if !s.imgSeen {
		return elfcore.ProgHeader{}, false
	}
	size := s.image.End - s.image.Start
	return elfcore.ProgHeader{Paddr: s.image.Start, Vaddr: vaddr, Off: s.imgOff, Filesz: size, Memsz: size}, true
}
