package extract

import (
	"fmt"

	"ldx/elfcore"
	"ldx/kmod/manifest"
)

// segmenter turns a stream of pages into PT_LOAD segments and their file
// data. Memory stays covered without gaps (crash fails at start-up on a
// page no PT_LOAD covers), but runs of at least minGap zero pages are not
// stored: they end a segment's file data (p_filesz < p_memsz, which crash,
// makedumpfile and drgn read as zeros) and the next non-zero page starts
// a new segment. Shorter zero runs stay inside a segment as holes of a
// sparse output file. The number of segments is bounded: when the budget
// gets tight, minGap doubles, so later memory is split more coarsely.
type segmenter struct {
	out        writerAt
	pageOffset uint64 // p_vaddr = pageOffset + p_paddr for RAM segments
	image      manifest.Range
	maxSegs    int
	minGap     uint64 // bytes

	fileOff     uint64 // next free file offset
	segs        []elfcore.ProgHeader
	cur         *elfcore.ProgHeader // open segment; Filesz tracks the data end
	curEnd      uint64              // physical end of memory covered by cur
	imgOff      uint64              // file offset of the image's first byte
	imgSeen     bool
	nextTighten int

	written, zeroPages uint64
	rangesLeft         int
}

type writerAt interface {
	WriteAt(p []byte, off int64) (int, error)
}

func newSegmenter(out writerAt, dataOff, pageOffset uint64, image manifest.Range, maxSegs, minGapPages int, ranges int) *segmenter {
	return &segmenter{out: out, fileOff: dataOff, pageOffset: pageOffset, image: image,
		maxSegs: maxSegs, minGap: uint64(minGapPages) * pageSize, rangesLeft: ranges}
}

func (s *segmenter) inImage(pa uint64) bool { return pa >= s.image.Start && pa < s.image.End }

// open starts a segment at pa.
func (s *segmenter) open(pa uint64) {
	s.segs = append(s.segs, elfcore.ProgHeader{Paddr: pa, Vaddr: s.pageOffset + pa, Off: s.fileOff})
	s.cur = &s.segs[len(s.segs)-1]
	s.curEnd = pa
	if pa == s.image.Start {
		s.imgOff, s.imgSeen = s.fileOff, true
	}
	s.tighten()
}

// tighten doubles minGap each time the segment count crosses another
// fraction (1/2, 3/4, 7/8 …) of the budget, and stops splitting when only
// the segments each remaining range needs are left.
func (s *segmenter) tighten() {
	n := len(s.segs)
	if s.maxSegs-n <= s.rangesLeft+1 {
		s.minGap = ^uint64(0)
		return
	}
	if s.nextTighten == 0 {
		s.nextTighten = s.maxSegs / 2
	}
	if n >= s.nextTighten {
		s.minGap *= 2
		s.nextTighten += (s.maxSegs - s.nextTighten) / 2
	}
}

// close ends the open segment at physical address end.
func (s *segmenter) close(end uint64) {
	if s.cur == nil {
		return
	}
	s.cur.Memsz = end - s.cur.Paddr
	s.fileOff = s.cur.Off + s.cur.Filesz
	s.cur = nil
}

// beginRange starts a new RAM range: segments never span two ranges.
func (s *segmenter) beginRange(r manifest.Range) { s.open(r.Start) }

// endRange closes the segment of the current range.
func (s *segmenter) endRange(r manifest.Range) {
	s.close(r.End)
	s.rangesLeft--
}

// page processes one page at pa; data is nil for a zero page.
func (s *segmenter) page(pa uint64, data []byte) error {
	keep := data != nil || s.inImage(pa)
	if pa == s.image.Start && s.cur.Paddr != pa {
		// The image PT_LOAD must point at contiguous file data: start a
		// segment exactly there and do not split inside it.
		s.close(pa)
		s.open(pa)
	}
	if !keep {
		s.zeroPages++
		return nil
	}
	dataEnd := s.cur.Paddr + s.cur.Filesz
	if s.cur.Filesz > 0 && pa-dataEnd >= s.minGap && !s.inImage(pa) {
		s.close(pa)
		s.open(pa)
	} else if s.cur.Filesz == 0 && pa-s.cur.Paddr >= s.minGap && !s.inImage(pa) {
		// A long zero run at the start of a segment: it keeps no data.
		s.close(pa)
		s.open(pa)
	}
	off := s.cur.Off + (pa - s.cur.Paddr)
	if data != nil {
		if _, err := s.out.WriteAt(data, int64(off)); err != nil {
			return fmt.Errorf("writing the output at byte %#x: %w", off, err)
		}
		s.written += uint64(len(data))
	}
	s.cur.Filesz = pa + pageSize - s.cur.Paddr
	return nil
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

// end returns the file size the output needs.
func (s *segmenter) end() uint64 {
	var end uint64
	for _, p := range s.segs {
		end = max(end, p.Off+p.Filesz)
	}
	return end
}
