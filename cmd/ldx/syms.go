package main

import (
	"bufio"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"ldx/elfcore/kernel/kallsyms"
	"ldx/extract/dump"
)

// symsSymbol is one symbol, for --json.
type symsSymbol struct {
	Addr hexU64 `json:"addr"`
	Type string `json:"type"`
	Name string `json:"name"`
}

type symsOutput struct {
	Encoding kallsyms.Encoding `json:"encoding"`
	Verified bool              `json:"verified"`
	Total    int               `json:"total"`
	Symbols  []symsSymbol      `json:"symbols"`
}

func newSymsCmd() *cobra.Command {
	var asJSON bool
	var dopt dump.Options
	cmd := &cobra.Command{
		Use:   "syms FILE [PATTERN]",
		Short: "List the kernel's symbols from the dump's own kallsyms table",
		Long: `syms decodes the kernel's symbol table (kallsyms) from the dumped memory,
located by VMCOREINFO (Linux 6.0 and later), without a vmlinux, and prints
each symbol as nm does: address, type letter, name, in address order.

PATTERN selects symbols: a glob (path.Match: *, ?, [...]) when it has one
of those characters, else a substring of the name.

How the kernel stored the addresses (base-relative with absolute per-CPU
symbols, base-relative, or absolute) is decided from the data: the encoding
that puts _stext at VMCOREINFO's SYMBOL(_stext). Per-CPU symbols print as
the kernel's zero-based offsets into the per-CPU area, as /proc/kallsyms
shows them.

Exit codes: 0 ok, 1 no kallsyms table or nothing matches, 2 usage, 3 not a
readable dump.`,
		Example: `  ldx syms vmcore jiffies
  ldx syms vmcore 'init_*'
  ldx syms vmcore --json | jq -r '.symbols[] | select(.type == "T") | .name'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.RangeArgs(1, 2)(cmd, args); err != nil {
				return &exitError{exitUsage, fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			match := func(string) bool { return true }
			if len(args) == 2 {
				pat := args[1]
				if strings.ContainsAny(pat, "*?[\\") {
					if _, err := path.Match(pat, ""); err != nil {
						return &exitError{exitUsage, fmt.Errorf("syms: PATTERN %q: %w", pat, err)}
					}
					match = func(s string) bool { ok, _ := path.Match(pat, s); return ok }
				} else {
					match = func(s string) bool { return strings.Contains(s, pat) }
				}
			}
			d, err := openDump(cmd.Context(), args[0], dopt)
			if err != nil {
				return err
			}
			defer d.Close()
			t, err := readKallsyms(d)
			if err != nil {
				return err
			}
			out := symsOutput{Encoding: t.Encoding(), Verified: t.Verified(), Total: t.Len(), Symbols: []symsSymbol{}}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			n := 0
			for i := range t.Len() {
				s := t.At(i)
				if !match(s.Name) {
					continue
				}
				n++
				if asJSON {
					out.Symbols = append(out.Symbols, symsSymbol{hexU64(s.Addr), string(s.Type), s.Name})
				} else {
					fmt.Fprintf(w, "%016x %c %s\n", s.Addr, s.Type, s.Name)
				}
			}
			if asJSON {
				if err := writeJSON(w, out); err != nil {
					return err
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if n == 0 && len(args) == 2 {
				return fmt.Errorf("syms: no symbol matches %q (of %d)", args[1], t.Len())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the encoding and the symbols as JSON")
	zeroExcludedFlag(cmd, &dopt)
	return cmd
}

// readKallsyms decodes the dump's kallsyms table.
func readKallsyms(d *dump.Dump) (*kallsyms.Table, error) {
	m, err := kernelMem(d)
	if err != nil {
		return nil, err
	}
	t, err := kallsyms.Read(m, d.VMCOREINFO)
	if err != nil {
		if errors.Is(err, kallsyms.ErrNoKallsyms) {
			err = fmt.Errorf("%w (Linux 6.0 and later export it)", err)
		}
		return nil, fmt.Errorf("%s: %w", d.Source.Path, err)
	}
	return t, nil
}
