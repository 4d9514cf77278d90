package dump

import (
	"cmp"
	"fmt"
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

// openSplit opens the input, one part of a split dump (makedumpfile
// --split writes one file per pfn range, given on its command line and
// normally kept together), with the other parts of the same dump found
// beside it in its directory: the kdump files whose header (dump time and
// utsname) is the input's. kdump.Join checks that they are one dump and
// that their ranges cover every dumpable page without a gap or an
// overlap; an error says which range is missing.
func openSplit(src *Source, sum *Report) (*kdump.File, error) {
	self, err := kdump.OpenPart(src, src.Size)
	if err != nil {
		return nil, err
	}
	start, end, _ := self.Part()
	want := func(more string) error {
		return fmt.Errorf("one part of a split dump (makedumpfile --split), holding the pfns [%#x, %#x) of [0, %#x): %s; ldx reads a split dump with all its parts in one directory (or join them with makedumpfile --reassemble)", start, end, self.MaxMapnr, more)
	}
	if src.Kind != KindFile {
		return nil, want("its other parts are looked for beside a plain file only, and this input is a " + string(src.Kind))
	}
	dir := filepath.Dir(src.Path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, want(fmt.Sprintf("its directory cannot be listed: %v", err))
	}
	if len(entries) > maxSplitDirEntries {
		return nil, want(fmt.Sprintf("its directory holds %d entries, more than the %d ldx looks through", len(entries), maxSplitDirEntries))
	}
	selfInfo, err := src.file.Stat()
	if err != nil {
		return nil, err
	}
	parts, names := []*kdump.File{self}, map[*kdump.File]string{self: src.Path}
	var files []*os.File
	fail := func(err error) (*kdump.File, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path)
		if err != nil || os.SameFile(fi, selfInfo) || fi.Size() < 2*kdumpMinBlock {
			continue
		}
		p, fh := splitPartOf(path, fi.Size(), self)
		if p == nil {
			continue
		}
		if len(parts) == maxSplitParts {
			fh.Close()
			return fail(want(fmt.Sprintf("more than %d parts were found", maxSplitParts)))
		}
		parts, names[p], files = append(parts, p), path, append(files, fh)
	}
	j, err := kdump.Join(parts)
	if err != nil {
		var found []string
		slices.SortFunc(parts, func(a, b *kdump.File) int {
			as, _, _ := a.Part()
			bs, _, _ := b.Part()
			return cmp.Compare(as, bs)
		})
		for _, p := range parts {
			s, e, _ := p.Part()
			found = append(found, fmt.Sprintf("%s [%#x, %#x)", filepath.Base(names[p]), s, e))
		}
		return fail(want(fmt.Sprintf("the parts found (%s) do not make the dump: %v", strings.Join(found, ", "), err)))
	}
	src.others = files
	for _, p := range j.Parts() {
		sum.Parts = append(sum.Parts, names[p])
	}
	return j, nil
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
