package extract

import (
	"fmt"

	"ldx/elfcore"
)

// segmenter turns a stream of pages into PT_LOAD segments and their file
// data: one segment per RAM range, split only where the kernel image
// starts and ends (the image PT_LOAD points at the same file bytes and
// needs them contiguous). Zero pages are holes of the sparse output file:
// the file takes the disk space of the non-zero memory only.
//
// The layout is the one all consumers were seen to read correctly. Every
// page of RAM is covered (crash fails at start-up on reads of uncovered
// pages, zero or not, and never-written pages must read as zeros), every
// segment has p_filesz == p_memsz and file bytes of its own: makedumpfile
// 1.7's mmap path takes a segment's file extent from p_memsz, so zero-
// filled tails were read from the next segment's bytes (a segfault with
// -d 31), and segments sharing file bytes (one region of zeros for all
// zero runs) made it read the kernel log as NULs.
type segmenter struct {
	out        writerAt
	pageOffset uint64 // p_vaddr = pageOffset + p_paddr for RAM segments
	image      elfcore.Range

	fileOff uint64 // next free file offset
	segs    []elfcore.ProgHeader
	cur     int    // index of the open segment, or -1
	imgOff  uint64 // file offset of the image's first byte
	imgSeen bool

	written, zeroPages uint64

	// Filtering (a dump level above 0): pages the level leaves out are
	// held back in pend until the run of them reaches cutPages, when the
	// open segment ends where the run began and the run's pages stay out
	// of every PT_LOAD (cut is then set until a kept page opens the next
	// segment). A shorter run is written like any other pages: it keeps
	// the number of PT_LOADs below one per MiB of RAM, as makedumpfile -E
	// does with the same threshold.
	pend    []pendingPage
	pendBuf []byte
	cut     bool
	leftOut uint64 // pages in no PT_LOAD
}

// cutPages is the shortest run of left-out pages that ends a segment
// (makedumpfile -E's threshold, 256 pages).
const cutPages = 256

type pendingPage struct {
	pa   uint64
	data []byte // nil for a zero page
}

type writerAt interface {
	WriteAt(p []byte, off int64) (int, error)
}

func newSegmenter(out writerAt, dataOff, pageOffset uint64, image elfcore.Range) *segmenter {
	return &segmenter{out: out, fileOff: dataOff, pageOffset: pageOffset, image: image, cur: -1}
}

func (s *segmenter) open(pa uint64) {
	s.segs = append(s.segs, elfcore.ProgHeader{Paddr: pa, Vaddr: s.pageOffset + pa, Off: s.fileOff})
	s.cur = len(s.segs) - 1
	if pa == s.image.Start {
		s.imgOff, s.imgSeen = s.fileOff, true
	}
}

func (s *segmenter) close() {
	if s.cur >= 0 {
		s.fileOff = s.segs[s.cur].Off + s.segs[s.cur].Filesz
		s.cur = -1
	}
}

// beginRange starts a RAM range: segments never span two ranges.
func (s *segmenter) beginRange(r elfcore.Range) { s.open(r.Start) }

// endRange closes the range's last segment at the range's end; left-out
// pages ending the range stay out, however few.
func (s *segmenter) endRange(r elfcore.Range) {
	if len(s.pend) > 0 && !s.cut {
		s.cutAt(s.pend[0].pa)
		s.leftOut += uint64(len(s.pend))
	}
	s.pend = s.pend[:0]
	if s.cut {
		s.cut = false
		return
	}
	sg := &s.segs[s.cur]
	sg.Filesz = r.End - sg.Paddr
	sg.Memsz = sg.Filesz
	s.close()
}

// page processes one page at pa; data is nil for a zero page. excluded
// says the dump level leaves it out; pages of the kernel image never are
// (the image PT_LOAD needs its bytes contiguous).
func (s *segmenter) page(pa uint64, data []byte, excluded bool) error {
	if data == nil {
		s.zeroPages++
	}
	if excluded && (pa < s.image.Start || pa >= s.image.End) {
		if s.cut {
			s.leftOut++
			return nil
		}
		if s.pendBuf == nil {
			s.pendBuf = make([]byte, cutPages*pageSize)
		}
		pp := pendingPage{pa: pa}
		if data != nil {
			pp.data = s.pendBuf[len(s.pend)*pageSize : len(s.pend)*pageSize+len(data)]
			copy(pp.data, data)
		}
		s.pend = append(s.pend, pp)
		if len(s.pend) == cutPages {
			s.cutAt(s.pend[0].pa)
			s.leftOut += cutPages
			s.pend = s.pend[:0]
		}
		return nil
	}
	for _, pp := range s.pend {
		if err := s.keep(pp.pa, pp.data); err != nil {
			return err
		}
	}
	s.pend = s.pend[:0]
	if s.cut {
		s.open(pa)
		s.cut = false
	}
	return s.keep(pa, data)
}

// cutAt ends the open segment at pa, where a run of left-out pages
// begins; a segment left empty is dropped.
func (s *segmenter) cutAt(pa uint64) {
	sg := &s.segs[s.cur]
	if sg.Paddr == pa {
		s.segs = s.segs[:s.cur]
		s.cur = -1
	} else {
		sg.Filesz = pa - sg.Paddr
		sg.Memsz = sg.Filesz
		s.close()
	}
	s.cut = true
}

// keep places a page inside the open segment.
func (s *segmenter) keep(pa uint64, data []byte) error {
	if (pa == s.image.Start || pa == s.image.End) && s.segs[s.cur].Paddr != pa {
		sg := &s.segs[s.cur]
		sg.Filesz = pa - sg.Paddr
		sg.Memsz = sg.Filesz
		s.close()
		s.open(pa)
	}
	if data == nil {
		return nil
	}
	sg := &s.segs[s.cur]
	off := sg.Off + (pa - sg.Paddr)
	if _, err := s.out.WriteAt(data, int64(off)); err != nil {
		return fmt.Errorf("writing the output at byte %#x: %w", off, err)
	}
	s.written += uint64(len(data))
	return nil
}

// finish returns the segments and the file size the output needs.
func (s *segmenter) finish() ([]elfcore.ProgHeader, uint64) {
	s.close()
	return s.segs, s.fileOff
}

// imageSegment returns the kernel-image PT_LOAD over the RAM segments'
// file data.
func (s *segmenter) imageSegment(vaddr uint64) (elfcore.ProgHeader, bool) {
	if !s.imgSeen {
		return elfcore.ProgHeader{}, false
	}
	size := s.image.Len()
	return elfcore.ProgHeader{Paddr: s.image.Start, Vaddr: vaddr, Off: s.imgOff, Filesz: size, Memsz: size}, true
}
