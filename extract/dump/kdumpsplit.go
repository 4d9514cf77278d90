package dump

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"ldx/elfcore/kdump"
)

// Bounds of the search for a split dump's other parts: a directory of
// crash dumps holds a few files per dump, not thousands.
const (
	maxSplitDirEntries = 4096
	maxSplitParts      = 1024
)

// openSplit opens the input, one part of a split dump, with the other
// parts of the same dump found beside it (JoinSplit). Only a plain file
// has a directory to look in.
func openSplit(src *Source, sum *Report) (*kdump.File, error) {
	if src.Kind != KindFile {
		self, err := kdump.OpenPart(src, src.Size)
		if err != nil {
			return nil, err
		}
		return nil, splitError(self, "its other parts are looked for beside a plain file only, and this input is a "+string(src.Kind))
	}
	set, err := JoinSplit(src.Path, src, src.Size)
	if err != nil {
		return nil, err
	}
	src.others = set.files
	sum.Parts = set.Names
	if len(set.Unused) > 0 {
		sum.warn("more parts of this dump lie beside it than one split has (it was split more than once into this directory, or parts were copied): read through %s; not needed: %s",
			strings.Join(baseNames(set.Names), ", "), strings.Join(baseNames(set.Unused), ", "))
	}
	return set.File, nil
}

// SplitSet is a split dump read through all its parts: the joined File,
// which reads every page through the part holding it, and the parts'
// paths.
type SplitSet struct {
	*kdump.File
	Names []string // the parts' paths, in pfn order
	// Unused are parts of the same dump beside them that were not needed:
	// of another split into the same directory, or copies.
	Unused []string
	files  []*os.File
}

// Close closes the joined File and the parts JoinSplit opened (not the
// one it was given).
func (s *SplitSet) Close() error {
	err := s.File.Close()
	for _, f := range s.files {
		f.Close()
	}
	return err
}

// JoinSplit opens the split dump of which the file at path (readable as
// r, size bytes) is one part. makedumpfile --split writes one file per
// pfn range, given on its command line and normally kept together, so the
// other parts are looked for beside it in its directory: the kdump files
// whose header (dump time and utsname) is its own. kdump.Join checks that
// they are one dump and that their ranges cover every dumpable page
// without a gap or an overlap; an error names the ranges found.
func JoinSplit(path string, r io.ReaderAt, size int64) (*SplitSet, error) {
	self, err := kdump.OpenPart(r, size)
	if err != nil {
		return nil, err
	}
	want := func(more string) error { return splitError(self, more) }
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, want(fmt.Sprintf("its directory cannot be listed: %v", err))
	}
	if len(entries) > maxSplitDirEntries {
		return nil, want(fmt.Sprintf("its directory holds %d entries, more than the %d ldx looks through", len(entries), maxSplitDirEntries))
	}
	selfInfo, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	parts, names := []*kdump.File{self}, map[*kdump.File]string{self: path}
	handles := map[*kdump.File]*os.File{} // the files this call opened
	fail := func(err error) (*SplitSet, error) {
		for _, f := range handles {
			f.Close()
		}
		return nil, err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p)
		if err != nil || os.SameFile(fi, selfInfo) || fi.Size() < 2*kdumpMinBlock {
			continue
		}
		part, fh := splitPartOf(p, fi.Size(), self)
		if part == nil {
			continue
		}
		if len(parts) == maxSplitParts {
			fh.Close()
			return fail(want(fmt.Sprintf("more than %d parts were found", maxSplitParts)))
		}
		parts, names[part], handles[part] = append(parts, part), p, fh
	}
	j, err := kdump.Join(parts)
	var unused []*kdump.File
	if err != nil {
		// More parts of this dump than fit together: it was split more
		// than once into this directory, or a part was copied. Every part
		// Join accepts together carries the same header, bitmaps and
		// VMCOREINFO, so any chain of them reads the same dump; the first
		// by file name is read and the others are named in a warning.
		if chain := splitChain(self, parts[1:]); chain != nil {
			if jc, errc := kdump.Join(chain); errc == nil {
				j, err = jc, nil
				for _, p := range parts {
					if !slices.Contains(chain, p) {
						unused = append(unused, p)
					}
				}
			}
		}
	}
	if err != nil {
		var found []string
		for _, p := range byStart(parts) {
			s, e, _ := p.Part()
			found = append(found, fmt.Sprintf("%s [%#x, %#x)", filepath.Base(names[p]), s, e))
		}
		return fail(want(fmt.Sprintf("the parts found (%s) do not make the dump: %v", strings.Join(found, ", "), err)))
	}
	set := &SplitSet{File: j}
	for _, p := range j.Parts() {
		set.Names = append(set.Names, names[p])
	}
	for _, p := range byStart(unused) {
		set.Unused = append(set.Unused, names[p])
	}
	for _, p := range parts[1:] {
		if slices.Contains(unused, p) {
			handles[p].Close()
		} else {
			set.files = append(set.files, handles[p])
		}
	}
	return set, nil
}

// splitChain finds, when the parts found beside self (all with self's
// header) do not all fit together, one chain of them through self that
// makes the whole dump: makedumpfile's parts start at pfn 0 and end at
// max_mapnr, each where the one before ends. Among several chains the
// first by file name (cands come in directory order) is taken. Parts
// holding no pfn join no chain but self. nil if there is none.
func splitChain(self *kdump.File, cands []*kdump.File) []*kdump.File {
	var ps []*kdump.File
	for _, c := range cands {
		if s, e, _ := c.Part(); s < e {
			ps = append(ps, c)
		}
	}
	lo, hi, _ := self.Part()
	left := chainBetween(ps, lo, 0, true)
	right := chainBetween(ps, hi, self.MaxMapnr, false)
	if left == nil || right == nil {
		return nil
	}
	return append(append(left, self), right...)
}

// chainBetween returns the first chain of parts from pfn from to pfn to:
// upwards each part starts where the one before ends; downwards (down)
// each ends where the one before starts. Which boundaries lead on to the
// end is worked out once per boundary, so the search never follows a dead
// end: it is linear in the parts per boundary, however many overlap. nil if
// there is no chain; an empty, non-nil chain if from is to.
func chainBetween(ps []*kdump.File, from, to uint64, down bool) []*kdump.File {
	step := func(at uint64, p *kdump.File) (uint64, bool) {
		s, e, _ := p.Part()
		if down {
			return s, e == at && s >= to
		}
		return e, s == at && e <= to
	}
	reaches := map[uint64]bool{to: true}
	var leads func(at uint64) bool
	leads = func(at uint64) bool {
		if r, ok := reaches[at]; ok {
			return r
		}
		reaches[at] = false // ranges are not empty: no step returns to at
		for _, p := range ps {
			if next, ok := step(at, p); ok && leads(next) {
				reaches[at] = true
				break
			}
		}
		return reaches[at]
	}
	if !leads(from) {
		return nil
	}
	chain := []*kdump.File{}
	for at := from; at != to; {
		for _, p := range ps {
			if next, ok := step(at, p); ok && leads(next) {
				chain, at = append(chain, p), next
				break
			}
		}
	}
	if down {
		slices.Reverse(chain)
	}
	return chain
}

// baseNames returns the paths' file names.
func baseNames(paths []string) []string {
	var ns []string
	for _, p := range paths {
		ns = append(ns, filepath.Base(p))
	}
	return ns
}

// byStart returns the parts sorted by their first pfn.
func byStart(parts []*kdump.File) []*kdump.File {
	ps := slices.Clone(parts)
	slices.SortFunc(ps, func(a, b *kdump.File) int {
		as, _, _ := a.Part()
		bs, _, _ := b.Part()
		return cmp.Compare(as, bs)
	})
	return ps
}

// splitError is the error for a split part whose dump cannot be joined.
func splitError(self *kdump.File, why string) error {
	start, end, _ := self.Part()
	return fmt.Errorf("one part of a split dump (makedumpfile --split), holding the pfns [%#x, %#x) of [0, %#x): %s; ldx reads a split dump with all its parts in one directory (or join them with makedumpfile --reassemble)", start, end, self.MaxMapnr, why)
}

// kdumpMinBlock is the smallest block a kdump file has.
const kdumpMinBlock = 4096

// splitPartOf opens path as a part of the split dump self is a part of,
// or returns nil when it is not one (not a kdump file, not split, another
// dump's).
func splitPartOf(path string, size int64, self *kdump.File) (*kdump.File, *os.File) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil
	}
	sig := make([]byte, len(kdump.SigKdump))
	if _, err := fh.ReadAt(sig, 0); err != nil || !kdump.IsSignature(sig) {
		fh.Close()
		return nil, nil
	}
	p, err := kdump.OpenPart(fh, size)
	if err != nil {
		fh.Close()
		return nil, nil
	}
	if _, _, ok := p.Part(); !ok || p.Header.TimestampSec != self.Header.TimestampSec || p.Header.TimestampUsec != self.Header.TimestampUsec || p.Header.Utsname != self.Header.Utsname {
		fh.Close()
		return nil, nil
	}
	return p, fh
}
