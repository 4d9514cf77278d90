// Package flattened reads and writes makedumpfile's "flattened" format:
// a dump file written as a stream of positioned writes, so that it can go
// through a pipe (ssh, a socket, a tape) where the writer cannot seek.
//
// # The format
//
// makedumpfile writes it with -F (any output format: kdump-compressed or
// ELF), and QEMU 7.2 writes every kdump-* dump-guest-memory in it. All
// integers are big-endian int64, whatever the dumped machine:
//
//	offset 0     "makedumpfile" NUL-padded to 16 bytes
//	offset 16    type    = 1 (flattened)
//	offset 24    version = 1
//	...          zeros up to 4096 bytes (the header block)
//	offset 4096  records: {offset, size, size bytes of data} ...
//	             {-1, -1} ends the stream
//
// Each record is one write of size bytes at offset of the file the
// producer would have written had it been able to seek (the "rearranged"
// file; `makedumpfile -R` makes it). Records come in any order and may
// overlap: a later write replaces an earlier one, as it would in a file.
// Bytes no record writes read as zeros (the rearranged file has holes
// there).
//
// # Reading without rearranging
//
// Readers of a dump need random access. Rather than copy the data into a
// rearranged file, Open reads the record headers once and keeps an index
// of where each range of the rearranged file lies in the stream: memory
// for the index (24 bytes per record), never for the data. crash reads flattened files the same way
// but sorts the records first; drgn 0.0.22 and makedumpfile 1.7.2 (without
// -R) cannot read them at all, which is why ldx extract turns them into
// ordinary files.
//
// A stream cut short (a pipe that broke, a copy that filled the disk)
// has no end record: Open indexes the whole records it finds and says the
// stream was truncated, so that what was saved can still be read.
package flattened
