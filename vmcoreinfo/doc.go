// Package vmcoreinfo parses, edits, formats and lints the kernel's
// VMCOREINFO text: the descriptor of the ELF note named "VMCOREINFO" that
// crash, makedumpfile, drgn, libkdumpfile and vmcore-dmesg read to learn the
// kernel release, page size, symbol addresses, structure layouts and KASLR
// offset of a vmcore.
//
// # Text format
//
// The kernel (kernel/crash_core.c vmcoreinfo_append_str) writes one
// "KEY=VALUE\n" line per fact, in a fixed order, at most VMCOREINFO_BYTES
// (4096) bytes in total, each line formatted in a 0x50-byte buffer. Value
// formats depend on the key family (include/linux/crash_core.h):
//
//	SYMBOL(x)                hex without 0x (%lx)
//	OFFSET(s.f) SIZE(x) LENGTH(x)   unsigned decimal (%lu)
//	NUMBER(x)                signed decimal (%ld); NUMBER(VMALLOC_START) is 0x%lx
//	KERNELOFFSET             hex without 0x
//	PAGESIZE CRASHTIME       decimal
//	BUILD-ID                 40 hex digits
//	OSRELEASE                the utsname release (< 65 bytes)
//
// # Why two parsers
//
// [Parse] is strict: it accepts exactly what a healthy kernel emits (every
// line "KEY=VALUE\n" with printable ASCII, the last one newline-terminated,
// no NUL, no CR) and reports the first deviation as a [*FormatError].
//
// [ParseLenient] never fails. It exists because livedump output is damaged
// in two known ways (docs/livedump-format.md §7):
//
//   - K-1: only the first page of notes is written, so the VMCOREINFO text is
//     cut mid-line and followed by unrelated bytes (low-memory pages, stale
//     data) while n_descsz still claims the full length.
//   - K-6: from the second livedump in a boot on, the text carries a run of
//     NUL bytes (about 21 per earlier run) just before CRASHTIME.
//
// ParseLenient strips NUL runs that sit at a line start and are followed by
// a well-formed line, normalises CRLF endings, and stops at the first line
// that is not a complete, well-formed "KEY=VALUE\n". What it repaired or
// dropped is described by a [*Damage]. For any input x,
// ParseLenient(x).Bytes() is accepted by Parse and round-trips byte for byte.
//
// # Reading values
//
// Typed accessors ([Info.Symbol], [Info.Number], [Info.PageSize], …) return
// ok=false for a key that is missing or malformed. The Lookup variants
// ([Info.LookupUint], [Info.LookupInt], …) return a [*KeyError] that
// tells the two apart (errors.Is(err, [ErrMissing]) or [ErrMalformed]), so
// that "ldx verify" can say which key is wrong and what was expected.
//
// # Consumer rules
//
// [Info.Lint] checks the text against the consumers' rules (checklist items
// D1–D15 of docs/consumer-compat.md §1 D) and [Requirements] lists the keys
// each consumer needs, so that verify and extract can say which keys a
// truncated note lost and what that breaks.
package vmcoreinfo
