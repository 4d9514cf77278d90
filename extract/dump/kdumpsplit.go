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
	return set.File, nil
}

// SplitSet is a split dump read through all its parts: the joined File,
// which reads every page through the part holding it, and the parts'
// paths.
type SplitSet struct {
	*kdump.File
	Names []string // the parts' paths, in pfn order
	files []*os.File
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
	var files []*os.File
	fail := func(err error) (*SplitSet, error) {
		for _, f := range files {
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
		parts, names[part], files = append(parts, part), p, append(files, fh)
	}
	j, err := kdump.Join(parts)
	if err != nil {
		chains := splitChains(self, parts[1:])
		if len(chains) > 1 {
			return fail(want(fmt.Sprintf("more than one set of parts makes the dump ({%s} and {%s}): it was split more than once into this directory; move the other set away",
				partList(chains[0], names), partList(chains[1], names))))
		}
		if len(chains) == 1 {
			j, err = kdump.Join(chains[0])
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
	set := &SplitSet{File: j, files: files}
	for _, p := range j.Parts() {
		set.Names = append(set.Names, names[p])
	}
	return set, nil
}

// Bounds the chains of parts splitChains tries on each side of the given
// part (each try compares the parts' headers and bitmaps).
const maxSplitChains = 16

// splitChains finds the sets of parts that make self's dump when the
// candidates found beside it (all with self's header) do not all fit
// together. That happens when a dump was split twice into one directory
// (makedumpfile --split run again with another part count, on the same
// input, so with the same header): the two sets overlap. A set is a chain
// of parts, self among them, whose pfn ranges follow one another without
// a gap, and which kdump.Join accepts. Parts holding no pfn (a range
// [n, n)) join no chain but self: they hold nothing to read. At most two
// chains are returned: one is the answer, two make the choice ambiguous.
func splitChains(self *kdump.File, cands []*kdump.File) [][]*kdump.File {
	var nonEmpty []*kdump.File
	for _, c := range cands {
		if s, e, _ := c.Part(); s < e {
			nonEmpty = append(nonEmpty, c)
		}
	}
	lo, hi, _ := self.Part()
	// Every chain of parts ending at pfn lo (left) or starting at hi
	// (right), up to maxSplitChains of each.
	var walk func(at uint64, left bool, acc []*kdump.File, out *[][]*kdump.File)
	walk = func(at uint64, left bool, acc []*kdump.File, out *[][]*kdump.File) {
		if len(*out) >= maxSplitChains {
			return
		}
		*out = append(*out, slices.Clone(acc))
		for _, c := range nonEmpty {
			s, e, _ := c.Part()
			if left && e == at && !slices.Contains(acc, c) {
				walk(s, true, append(acc, c), out)
			} else if !left && s == at && !slices.Contains(acc, c) {
				walk(e, false, append(acc, c), out)
			}
		}
	}
	var lefts, rights [][]*kdump.File
	walk(lo, true, nil, &lefts)
	walk(hi, false, nil, &rights)
	var found [][]*kdump.File
	for _, l := range lefts {
		for _, r := range rights {
			set := append(append(slices.Clone(l), self), r...)
			if _, err := kdump.Join(set); err == nil {
				if found = append(found, set); len(found) == 2 {
					return found
				}
			}
		}
	}
	return found
}

// partList names a set of parts, in pfn order.
func partList(set []*kdump.File, names map[*kdump.File]string) string {
	var ns []string
	for _, p := range byStart(set) {
		ns = append(ns, filepath.Base(names[p]))
	}
	return strings.Join(ns, ", ")
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
