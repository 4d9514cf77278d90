package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"ldx/elfcore/kernel/kallsyms"
	"ldx/elfcore/kernel/kmem"
	"ldx/extract/dump"
	"ldx/vmcoreinfo"
)

// maxReadLen bounds one read: a hexdump of more than this is not for
// people, and --raw of whole regions is what extract is for.
const maxReadLen = 1 << 30

func newReadCmd() *cobra.Command {
	var phys, raw bool
	var pgd string
	var dopt dump.Options
	cmd := &cobra.Command{
		Use:   "read FILE ADDR [LEN]",
		Short: "Hexdump kernel virtual (default) or physical memory of a dump",
		Long: `read prints LEN bytes (default 256) at ADDR as a hexdump, translating the
virtual address through the dump's own page tables (init_top_pgt from
VMCOREINFO; 4 or 5 levels; 2 MiB and 1 GiB pages), or reading physical
memory with --phys. Lines repeating the previous one are shown as "*".

ADDR is hexadecimal (0x optional), or a symbol name with an optional
hexadecimal offset: init_uts_ns, init_uts_ns+0x86, jiffies. A name is
looked up in VMCOREINFO's SYMBOL() keys, then in the kernel's own kallsyms
table in the dump (Linux 6.0 and later; see ldx syms). Per-CPU symbols
there are offsets into each CPU's per-CPU area, not addresses, and are
refused with their offset. LEN is decimal,
or hexadecimal with 0x. User addresses need a process's page tables:
--pgd takes its mm->pgd (a kernel virtual address) or a CR3 value.

Reading stops at the first page that is not mapped or not in the dump;
what was read is printed, the error names the address.

Exit codes: 0 ok, 1 unmapped or unreadable memory, 2 usage, 3 not a
readable dump.`,
		Example: `  ldx read vmcore init_uts_ns+0x86 65
  ldx read vmcore ffffffff81000000 64
  ldx read --phys vmcore 0x1000000 4096 --raw > page.bin`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.RangeArgs(2, 3)(cmd, args); err != nil {
				return &exitError{exitUsage, fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			length := uint64(256)
			if len(args) == 3 {
				n, err := strconv.ParseUint(args[2], 0, 64)
				if err != nil || n == 0 || n > maxReadLen {
					return &exitError{exitUsage, fmt.Errorf("read: LEN %q is not a length between 1 and %d", args[2], maxReadLen)}
				}
				length = n
			}
			if phys && pgd != "" {
				return &exitError{exitUsage, errors.New("read: --pgd translates virtual addresses; it makes no sense with --phys")}
			}
			d, err := openDump(cmd.Context(), args[0], dopt)
			if err != nil {
				return err
			}
			defer d.Close()
			addr, err := parseAddr(d.VMCOREINFO, args[1], kallsymsLookup(d))
			if err != nil {
				return &exitError{exitUsage, err}
			}
			var r io.ReaderAt = d.Phys
			if !phys {
				m, err := walkerFor(d, pgd)
				if err != nil {
					return err
				}
				r = m
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			var out io.Writer = w
			var hd *hexdumper
			if !raw {
				hd = &hexdumper{w: w, addr: addr}
				out = hd
			}
			rerr := copyMemory(out, r, addr, length, !phys)
			if hd != nil {
				hd.flush()
			}
			if err := w.Flush(); err != nil {
				return err
			}
			return rerr
		},
	}
	f := cmd.Flags()
	f.BoolVar(&phys, "phys", false, "ADDR is a physical address")
	f.BoolVar(&raw, "raw", false, "write the bytes themselves, not a hexdump")
	f.StringVar(&pgd, "pgd", "", "translate through this page global directory (a process's mm->pgd, or a CR3 value) instead of init_top_pgt")
	zeroExcludedFlag(cmd, &dopt)
	return cmd
}

// walkerFor returns the page-table reader for virtual reads: the kernel's
// (init_top_pgt), or a process's when pgd is given. A pgd in the kernel
// half is mm->pgd, a direct-map address; below, it is a physical address
// (CR3, whose low bits — PCID — are ignored).
func walkerFor(d *dump.Dump, pgd string) (*kmem.Mem, error) {
	m, err := kernelMem(d)
	if err != nil || pgd == "" {
		return m, err
	}
	v, err := parseAddr(d.VMCOREINFO, pgd, kallsymsLookup(d))
	if err != nil {
		return nil, &exitError{exitUsage, fmt.Errorf("--pgd: %w", err)}
	}
	root := v
	if v >= 1<<63 {
		if root, err = m.VtoP(v); err != nil {
			return nil, fmt.Errorf("--pgd %#x: %w", v, err)
		}
	}
	return m.WithRoot(root), nil
}

// copyMemory copies length bytes at addr to w page by page, so that an
// unmapped page stops the copy at its address with what came before
// already written.
func copyMemory(w io.Writer, r io.ReaderAt, addr, length uint64, virtual bool) error {
	const page = 4096
	buf := make([]byte, page)
	kind := "physical"
	if virtual {
		kind = "virtual"
	}
	for done := uint64(0); done < length; {
		a := addr + done
		if a < addr {
			return fmt.Errorf("%s address range %#x+%d wraps around", kind, addr, length)
		}
		k := min(length-done, page-a%page)
		n, err := r.ReadAt(buf[:k], int64(a))
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if uint64(n) < k {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading %s address %#x (%d of %d bytes read): %w", kind, a+uint64(n), done+uint64(n), length, err)
		}
		done += k
	}
	return nil
}

// symbolLookup resolves a symbol name VMCOREINFO does not have.
type symbolLookup func(name string) (uint64, error)

// percpuLimit: kallsyms values below it are per-CPU offsets (the absolute
// per-CPU encoding stores them as non-negative int32s), not addresses.
const percpuLimit = 1 << 31

// kallsymsLookup resolves names through the dump's own kallsyms table,
// decoded on first use: most addresses are hexadecimal or VMCOREINFO
// symbols, and those should not pay for decoding the table.
func kallsymsLookup(d *dump.Dump) symbolLookup {
	var t *kallsyms.Table
	var terr error
	loaded := false
	return func(name string) (uint64, error) {
		if !loaded {
			loaded = true
			t, terr = readKallsyms(d)
		}
		if terr != nil {
			return 0, terr
		}
		v, ok := t.Lookup(name)
		if !ok {
			return 0, fmt.Errorf("%s is not in the kernel's kallsyms table either (%d symbols)", name, t.Len())
		}
		if v < percpuLimit {
			// Reading at the offset would read user memory or nothing:
			// say what the value is instead.
			return 0, fmt.Errorf("%s is a per-CPU symbol: its kallsyms value %#x is an offset into each CPU's per-CPU area; add that CPU's __per_cpu_offset[cpu] (read __per_cpu_offset)", name, v)
		}
		return v, nil
	}
}

// parseAddr reads an address: hexadecimal with or without 0x, or a symbol
// with an optional +offset (hexadecimal). A symbol is looked up in
// VMCOREINFO's SYMBOL() keys, then through more (the kallsyms table) when
// more is not nil.
func parseAddr(info *vmcoreinfo.Info, s string, more symbolLookup) (uint64, error) {
	s = strings.TrimSpace(s)
	base, off, hasOff := strings.Cut(s, "+")
	var v uint64
	if n, err := parseHexAddr(base); err == nil {
		v = n
	} else {
		if info == nil {
			return 0, fmt.Errorf("address %q is not hexadecimal and the dump has no VMCOREINFO symbols", s)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(base, "SYMBOL("), ")")
		sym, ok := info.Symbol(name)
		switch {
		case ok:
			v = sym
		case more == nil || strings.HasPrefix(base, "SYMBOL("):
			return 0, fmt.Errorf("address %q is neither hexadecimal nor a VMCOREINFO symbol (SYMBOL(%s) is not there)", s, name)
		default:
			kv, err := more(name)
			if err != nil {
				return 0, fmt.Errorf("address %q is neither hexadecimal nor a VMCOREINFO symbol (SYMBOL(%s) is not there), and %w", s, name, err)
			}
			v = kv
		}
	}
	if hasOff {
		n, err := parseHexAddr(off)
		if err != nil {
			return 0, fmt.Errorf("offset %q in %q is not hexadecimal", off, s)
		}
		v += n
	}
	return v, nil
}

func parseHexAddr(s string) (uint64, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" {
		return 0, errors.New("empty")
	}
	return strconv.ParseUint(s, 16, 64)
}

// hexdumper formats what is written to it like hexdump -C, with the
// dump's addresses in the first column: 16 bytes a line, an ASCII column,
// repeated lines collapsed into "*".
type hexdumper struct {
	w        io.Writer
	addr     uint64 // address of the next byte
	line     []byte // pending bytes of the current line
	lineAddr uint64
	prev     []byte
	starred  bool
}

func (h *hexdumper) Write(p []byte) (int, error) {
	for _, c := range p {
		if len(h.line) == 0 {
			h.lineAddr = h.addr
		}
		h.line = append(h.line, c)
		h.addr++
		if len(h.line) == 16 || h.addr%16 == 0 {
			h.emit()
		}
	}
	return len(p), nil
}

func (h *hexdumper) emit() {
	if len(h.line) == 0 {
		return
	}
	full := len(h.line) == 16
	if full && h.prev != nil && bytes.Equal(h.line, h.prev) {
		if !h.starred {
			fmt.Fprintln(h.w, "*")
			h.starred = true
		}
		h.line = h.line[:0]
		return
	}
	h.starred = false
	var b strings.Builder
	fmt.Fprintf(&b, "%016x  ", h.lineAddr&^15)
	pad := int(h.lineAddr % 16)
	var ascii strings.Builder
	for i := range 16 {
		if i == 8 {
			b.WriteByte(' ')
		}
		j := i - pad
		if j < 0 || j >= len(h.line) {
			b.WriteString("   ")
			ascii.WriteByte(' ')
			continue
		}
		c := h.line[j]
		fmt.Fprintf(&b, "%02x ", c)
		if c >= 0x20 && c < 0x7f {
			ascii.WriteByte(c)
		} else {
			ascii.WriteByte('.')
		}
	}
	fmt.Fprintf(h.w, "%s |%s|\n", b.String(), strings.TrimRight(ascii.String(), " "))
	if full {
		h.prev = append(h.prev[:0], h.line...)
	} else {
		h.prev = nil
	}
	h.line = h.line[:0]
}

// flush prints the last partial line and, after a run of repeated lines,
// the address where the data ends, as hexdump does.
func (h *hexdumper) flush() {
	h.emit()
	if h.starred {
		fmt.Fprintf(h.w, "%016x\n", h.addr)
	}
}
