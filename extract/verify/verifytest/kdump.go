package verifytest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"ldx/elfcore/kdump"
	"ldx/vmcoreinfo"
)

// The kdump mutation corpus: a good kdump-compressed file (ldx extract
// --format kdump, or makedumpfile -c) with one field broken at a time.
// Offsets are spelled out here rather than taken from the package under
// test; kdump.Open only finds where the areas and descriptors lie.
const (
	kOffSignature    = 0
	kOffVersion      = 8
	kOffBlockSize    = 428
	kOffSubHdrSize   = 432
	kOffBitmapBlocks = 436
	kOffMaxMapnr     = 440

	// relative to the sub-header (block 1)
	kSubPhysBase   = 0
	kSubVmcoreinfo = 32 // offset, then size at +8
	kSubNote       = 48
	kSubMaxMapnr64 = 96

	// relative to a page_desc
	kDescOffset = 0
	kDescSize   = 8
	kDescFlags  = 12

	startKernelMap = 0xffffffff80000000 // x86-64 __START_KERNEL_map
)

// KdumpMutant is one broken requirement of a kdump file.
type KdumpMutant struct {
	Name string
	// Want are the verify checks that must fail, each one ID or several
	// joined by "|" when any of them may be the one that catches it (which
	// depends on the boot's layout); Unreadable means verify must refuse
	// the file as no dump at all.
	Want       []string
	Unreadable bool
	Make       func(k *KdumpCore) (*Mutation, error)
	// Hangs names a consumer seen to spin on the mutant until killed
	// rather than fail: the e2e corpus runs it only when asked, since
	// each such run costs a whole tool timeout.
	Hangs string
}

// KdumpCore is the parsed good kdump file mutants start from.
type KdumpCore struct {
	r    io.ReaderAt
	size int64
	f    *kdump.File
	info *vmcoreinfo.Info
	bs   int64
}

// ParseKdump opens the good kdump file.
func ParseKdump(r io.ReaderAt, size int64) (*KdumpCore, error) {
	f, err := kdump.Open(r, size)
	if err != nil {
		return nil, err
	}
	k := &KdumpCore{r: r, size: size, f: f, bs: int64(f.PageSize)}
	if t := f.VMCOREINFO(); t != nil {
		k.info, _ = vmcoreinfo.ParseLenient(t)
	}
	if k.info == nil {
		return nil, fmt.Errorf("the good kdump file has no VMCOREINFO")
	}
	return k, nil
}

// Close releases the parsed file.
func (k *KdumpCore) Close() error { return k.f.Close() }

func u32le(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func patch(off int64, data []byte) *Mutation {
	return &Mutation{Size: -1, Patches: []Patch{{off, data}}}
}

// bitmapArea returns the offset and length of both bitmaps.
func (k *KdumpCore) bitmapArea() (int64, int64) {
	return (1 + int64(k.f.Header.SubHdrSize)) * k.bs, int64(k.f.Header.BitmapBlocks) * k.bs
}

// UtsPFN is the pfn of init_uts_ns (a page crash and drgn read to start).
func (k *KdumpCore) UtsPFN() (uint64, error) {
	uts, ok1 := k.info.Symbol("init_uts_ns")
	pb, ok2 := k.info.Number("phys_base")
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("VMCOREINFO lacks SYMBOL(init_uts_ns) or NUMBER(phys_base)")
	}
	pfn := (uts - startKernelMap + uint64(pb)) / uint64(k.bs)
	if !k.f.Dumpable(pfn) {
		return 0, fmt.Errorf("init_uts_ns's pfn %#x is not in the file", pfn)
	}
	return pfn, nil
}

// lastPFN is the highest dumpable pfn: a page no consumer reads to start
// (free or user memory at the top of RAM).
func (k *KdumpCore) lastPFN() uint64 {
	r := k.f.DumpableRanges()
	return r[len(r)-1].End - 1
}

// desc returns pfn's descriptor and its offset.
func (k *KdumpCore) desc(pfn uint64) (kdump.RawPageDesc, int64, error) {
	return k.f.PageDesc(pfn)
}

// descField patches one field of pfn's descriptor.
func (k *KdumpCore) descField(pfn uint64, field int64, data []byte) (*Mutation, error) {
	_, off, err := k.desc(pfn)
	if err != nil {
		return nil, err
	}
	return patch(off+field, data), nil
}

// flagBit sets or clears pfn's bit in the bitmap starting at off.
func (k *KdumpCore) flagBit(bmOff int64, pfn uint64, set bool) (*Mutation, error) {
	b := make([]byte, 1)
	at := bmOff + int64(pfn/8)
	if _, err := k.r.ReadAt(b, at); err != nil {
		return nil, err
	}
	if set {
		b[0] |= 1 << (pfn % 8)
	} else {
		b[0] &^= 1 << (pfn % 8)
	}
	return patch(at, b), nil
}

// KdumpMutants is the kdump corpus. Descriptor damage is done twice: on a
// page no consumer reads to start (the last one: only a full read such as
// makedumpfile's re-filter meets it) and on init_uts_ns's page, which
// crash (with a vmlinux) and drgn read first.
func KdumpMutants() []KdumpMutant {
	return []KdumpMutant{
		{"signature garbled", nil, true, func(k *KdumpCore) (*Mutation, error) {
			return patch(kOffSignature, []byte("XDUMP   ")), nil
		}, ""},
		{"header_version 2 (no VMCOREINFO, notes)", []string{"H2"}, false, func(k *KdumpCore) (*Mutation, error) {
			return patch(kOffVersion, u32le(2)), nil
		}, ""},
		{"block_size 8192", []string{"H1"}, false, func(k *KdumpCore) (*Mutation, error) {
			return patch(kOffBlockSize, u32le(8192)), nil
		}, "drgn 0.0.22 (libkdumpfile)"},
		{"sub_hdr_size past the end", []string{"H1"}, false, func(k *KdumpCore) (*Mutation, error) {
			return patch(kOffSubHdrSize, u32le(uint32(k.size/k.bs+8))), nil
		}, "crash 8.0.2"},
		{"bitmap_blocks one block short (read as one bitmap)", []string{"H6|H3|H7"}, false, func(k *KdumpCore) (*Mutation, error) {
			return patch(kOffBitmapBlocks, u32le(k.f.Header.BitmapBlocks-1)), nil
		}, ""},
		{"max_mapnr larger than the bitmaps hold", []string{"H1"}, false, func(k *KdumpCore) (*Mutation, error) {
			n := uint64(k.f.Header.BitmapBlocks)*uint64(k.bs)*8 + 64
			m := patch(kOffMaxMapnr, u32le(uint32(n)))
			m.Patches = append(m.Patches, Patch{k.bs + kSubMaxMapnr64, u64le(n)})
			return m, nil
		}, ""},
		{"sub-header phys_base +2 MiB", []string{"H4"}, false, func(k *KdumpCore) (*Mutation, error) {
			return patch(k.bs+kSubPhysBase, u64le(k.f.PhysBase()+2<<20)), nil
		}, ""},
		{"offset_vmcoreinfo past the end", []string{"H1"}, false, func(k *KdumpCore) (*Mutation, error) {
			return patch(k.bs+kSubVmcoreinfo, u64le(uint64(k.size+k.bs))), nil
		}, ""},
		{"size_vmcoreinfo 0", []string{"H2"}, false, func(k *KdumpCore) (*Mutation, error) {
			return patch(k.bs+kSubVmcoreinfo+8, u64le(0)), nil
		}, ""},
		{"VMCOREINFO zeroed", []string{"H2"}, false, func(k *KdumpCore) (*Mutation, error) {
			return patch(k.f.Sub.OffsetVmcoreinfo, make([]byte, k.f.Sub.SizeVmcoreinfo)), nil
		}, ""},
		{"offset_note past the end", []string{"H1"}, false, func(k *KdumpCore) (*Mutation, error) {
			return patch(k.bs+kSubNote, u64le(uint64(k.size+k.bs))), nil
		}, ""},
		{"first dumped page marked excluded", []string{"H6"}, false, func(k *KdumpCore) (*Mutation, error) {
			off, n := k.bitmapArea()
			return k.flagBit(off+n/2, k.f.DumpableRanges()[0].Start, false)
		}, ""},
		{"an excluded page below the kernel marked dumped", []string{"H6"}, false, func(k *KdumpCore) (*Mutation, error) {
			off, n := k.bitmapArea()
			r := k.f.DumpableRanges()
			switch {
			case len(r) >= 2: // a page a dump level left out
				return k.flagBit(off+n/2, r[0].End, true)
			case r[0].Start > 0: // all of RAM is dumped: a page below it
				return k.flagBit(off+n/2, r[0].Start-1, true)
			}
			return nil, fmt.Errorf("no excluded pfn below the last dumpable one")
		}, ""},
		{"RAM bitmap lacks a dumped page", []string{"H6"}, false, func(k *KdumpCore) (*Mutation, error) {
			off, _ := k.bitmapArea()
			return k.flagBit(off, k.lastPFN(), false)
		}, ""},
		{"last page's descriptor past the end", []string{"H3"}, false, func(k *KdumpCore) (*Mutation, error) {
			return k.descField(k.lastPFN(), kDescOffset, u64le(uint64(k.size+k.bs)))
		}, ""},
		{"last page's descriptor size > block_size", []string{"H3"}, false, func(k *KdumpCore) (*Mutation, error) {
			return k.descField(k.lastPFN(), kDescSize, u32le(uint32(k.bs)+1))
		}, ""},
		{"last page's descriptor size 0", []string{"H3"}, false, func(k *KdumpCore) (*Mutation, error) {
			return k.descField(k.lastPFN(), kDescSize, u32le(0))
		}, ""},
		{"init_uts_ns page's descriptor past the end", []string{"H3", "H7"}, false, func(k *KdumpCore) (*Mutation, error) {
			pfn, err := k.UtsPFN()
			if err != nil {
				return nil, err
			}
			return k.descField(pfn, kDescOffset, u64le(uint64(k.size+k.bs)))
		}, ""},
		{"init_uts_ns page's flags unknown (0x80)", []string{"H3", "H7"}, false, func(k *KdumpCore) (*Mutation, error) {
			pfn, err := k.UtsPFN()
			if err != nil {
				return nil, err
			}
			return k.descField(pfn, kDescFlags, u32le(0x80))
		}, ""},
		{"init_uts_ns page's zlib data flagged snappy", []string{"H7"}, false, func(k *KdumpCore) (*Mutation, error) {
			return k.reflag(kdump.FlagSnappy)
		}, ""},
		{"init_uts_ns page's zlib data flagged zstd", []string{"H7"}, false, func(k *KdumpCore) (*Mutation, error) {
			return k.reflag(kdump.FlagZstd)
		}, ""},
		{"init_uts_ns page's zlib data flagged lzo", []string{"H7"}, false, func(k *KdumpCore) (*Mutation, error) {
			return k.reflag(kdump.FlagLZO)
		}, ""},
		{"init_uts_ns page's compressed data garbled", []string{"H7"}, false, func(k *KdumpCore) (*Mutation, error) {
			pfn, err := k.UtsPFN()
			if err != nil {
				return nil, err
			}
			d, _, err := k.desc(pfn)
			if err != nil {
				return nil, err
			}
			if d.Flags == 0 {
				return nil, fmt.Errorf("init_uts_ns's page is stored raw")
			}
			junk := make([]byte, d.Size/2)
			for i := range junk {
				junk[i] = byte(0x5a ^ i*7)
			}
			return patch(d.Offset+int64(d.Size/4), junk), nil
		}, ""},
		{"truncated in the page data (half)", []string{"H3"}, false, func(k *KdumpCore) (*Mutation, error) {
			return &Mutation{Size: k.size / 2}, nil
		}, ""},
		{"truncated in the bitmaps", []string{"H1"}, false, func(k *KdumpCore) (*Mutation, error) {
			off, n := k.bitmapArea()
			return &Mutation{Size: off + n/4}, nil
		}, "crash 8.0.2"},
	}
}

// reflag gives init_uts_ns's page another compression flag than the one
// its data was written with.
func (k *KdumpCore) reflag(flag uint32) (*Mutation, error) {
	pfn, err := k.UtsPFN()
	if err != nil {
		return nil, err
	}
	d, off, err := k.desc(pfn)
	if err != nil {
		return nil, err
	}
	if d.Flags == 0 || d.Flags == flag {
		return nil, fmt.Errorf("init_uts_ns's page has flags %#x", d.Flags)
	}
	return patch(off+kDescFlags, u32le(flag)), nil
}

// BuildKdump builds the mutant's bytes from the good file's.
func (m KdumpMutant) Build(good []byte) ([]byte, error) {
	k, err := ParseKdump(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		return nil, err
	}
	defer k.Close()
	mu, err := m.Make(k)
	if err != nil {
		return nil, err
	}
	return mu.apply(good), nil
}

// SplitKdump returns the parts makedumpfile --split writes of the kdump
// file whole for the pfn ranges between cuts: the same file with split =
// 1, the part's range in the sub-header and only the part's page
// descriptors, first in an array as long as the whole dump's (the page
// data stays where they point).
func SplitKdump(whole []byte, cuts []uint64) ([][]byte, error) {
	f, err := kdump.Open(bytes.NewReader(whole), int64(len(whole)))
	if err != nil {
		return nil, err
	}
	h := f.Header
	descOff := int64(1+h.SubHdrSize+int32(h.BitmapBlocks)) * int64(h.BlockSize)
	rank := func(pfn uint64) (n uint64) { // dumpable pages below pfn
		for _, r := range f.DumpableRanges() {
			n += min(r.End, max(pfn, r.Start)) - r.Start
		}
		return n
	}
	var parts [][]byte
	for i := range len(cuts) - 1 {
		p := bytes.Clone(whole)
		sub := kdump.DecodeSubHeader(p[h.BlockSize:])
		sub.Split, sub.StartPFN64, sub.EndPFN64 = 1, cuts[i], cuts[i+1]
		copy(p[h.BlockSize:], sub.Encode())
		lo, hi := rank(cuts[i]), rank(cuts[i+1])
		arr := p[descOff : descOff+int64(f.DumpablePages())*kdump.PageDescSize]
		n := copy(arr, whole[descOff+int64(lo)*kdump.PageDescSize:descOff+int64(hi)*kdump.PageDescSize])
		clear(arr[n:])
		parts = append(parts, p)
	}
	return parts, nil
}
