// Package kdump reads the kdump-compressed dump format ("diskdump"), the
// format makedumpfile writes unless told to write ELF (-E), and QEMU's
// dump-guest-memory writes for its kdump-* formats.
//
// # Layout
//
// The file is cut into blocks of block_size bytes (the page size, 4096 on
// x86-64); every area below starts on a block boundary.
//
//   - Block 0: struct disk_dump_header (RawHeader, 464 bytes): the
//     signature "KDUMP   " (older diskdump: "DISKDUMP"), header_version,
//     the kernel's utsname, a timestamp, status flags, block_size,
//     sub_hdr_size (blocks of the sub-header area), bitmap_blocks (blocks
//     of both bitmaps together), a 32-bit max_mapnr and nr_cpus.
//   - Block 1 on, sub_hdr_size blocks: struct kdump_sub_header
//     (RawSubHeader): phys_base and dump_level (version 1), split and the
//     32-bit start/end pfn (2), offset and size of the VMCOREINFO text (3),
//     of the ELF notes blob — NT_PRSTATUS per CPU, the VMCOREINFO note
//     again (4) — and of the erase information (5), and the 64-bit
//     start/end pfn and max_mapnr (6, which supersede the 32-bit fields).
//     makedumpfile places the VMCOREINFO text and the notes right after
//     the sub-header inside this area; the erase information sits at the
//     end of the file. Offsets are absolute file offsets.
//   - The bitmaps, bitmap_blocks blocks at block 1+sub_hdr_size. Bit n
//     (byte n/8, bit n%8 from the least significant) stands for pfn n.
//     Readers decide the split as crash does: when bitmap_blocks is at
//     least twice ceil(ceil(max_mapnr/8)/block_size), the area holds two
//     bitmaps of equal size, the first half the RAM bitmap (pfns that
//     exist), the second half the dumpable bitmap (pfns whose page is in
//     the file). Otherwise (the old diskdump single bitmap) the one bitmap
//     serves as both.
//   - The page_desc array at block 1+sub_hdr_size+bitmap_blocks: one
//     24-byte struct page_desc (offset, size, flags, page_flags) for every
//     set bit of the dumpable bitmap, in pfn order, so the descriptor of
//     pfn p is number popcount(dumpable bits below p).
//   - Page data after the array. With dump level bit 1 (zero pages)
//     makedumpfile writes one page of zeros first and points every zero
//     page's descriptor at it: zero pages stay dumpable, they share data.
//
// A descriptor's flags say how its data is stored: 0 raw (size is the page
// size), FlagZlib (a zlib stream, with its header and checksum), FlagLZO
// (an LZO1X block), FlagSnappy (a raw snappy block, no framing), FlagZstd
// (one zstd frame). A compressed page must be smaller than a page: a page
// that does not compress is stored raw. The header's status repeats the
// compression flag of the dump, FlagIncomplete marks a dump cut short (out
// of space: descriptors past the end are missing), FlagExcludedVmemmap a
// dump whose unused vmemmap was left out.
//
// A page the dump excluded (its dumpable bit clear: free, cache or user
// pages at the dump level used) has no data at all; File.ReadPage reports
// it as ErrExcluded rather than inventing zeros, so that a reader can say
// so. A split dump (makedumpfile --split, one file per pfn range) is read
// with all its parts (OpenPart, Join; see split.go): Open alone refuses a
// part with ErrSplit.
//
// # Reading
//
// Open validates every header field against the file size and reads both
// bitmaps (max_mapnr/4 bytes of memory, 64 MiB for 1 TiB of RAM) plus one
// cumulative count per 64Ki pfns, so that finding a page's descriptor is a
// table look-up and a popcount of at most 1024 words. Descriptors and page
// data are read from the file on demand; ReadPage is safe for concurrent
// use.
package kdump
