package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"ldx/elfcore/kernel/kmem"
	"ldx/extract/dump"
)

// vtopLevel is one page-table step, for --json.
type vtopLevel struct {
	Level     string `json:"level"`
	Table     hexU64 `json:"table"`
	Index     uint64 `json:"index"`
	EntryAddr hexU64 `json:"entry_addr"`
	Entry     hexU64 `json:"entry"`
	Flags     string `json:"flags"`
}

// vtopResult is the translation of one address.
type vtopResult struct {
	Vaddr    hexU64      `json:"vaddr"`
	Region   string      `json:"region"`
	Root     hexU64      `json:"root"`
	Levels   []vtopLevel `json:"levels"`
	Paddr    *hexU64     `json:"paddr,omitempty"`
	PageSize uint64      `json:"page_size,omitempty"`
	// Linear is what the region's fixed offset gives (direct map, kernel
	// image); LinearOK says whether the page tables agree.
	Linear   *hexU64 `json:"linear_paddr,omitempty"`
	LinearOK *bool   `json:"linear_agrees,omitempty"`
	InDump   bool    `json:"in_dump"`
	// Excluded says why a page of RAM is not in the dump (a kdump file's
	// dump level left it out).
	Excluded string `json:"excluded,omitempty"`
	Error    string `json:"error,omitempty"`
}

func newVtopCmd() *cobra.Command {
	var pgd string
	var asJSON bool
	var dopt dump.Options
	cmd := &cobra.Command{
		Use:   "vtop FILE ADDR...",
		Short: "Translate virtual addresses through the dump's page tables, level by level",
		Long: `vtop walks the dump's page tables for each virtual address and prints every
level: the table's physical address, the index, the entry's address and
value and its flags, then the physical address and the page size (4 KiB,
2 MiB or 1 GiB). The walk starts at init_top_pgt from VMCOREINFO, 4 or 5
levels as NUMBER(pgtable_l5_enabled) says, the SME bit stripped, as
makedumpfile translates every address.

Each address is also placed in the kernel's address map (direct map,
kernel image, vmalloc, vmemmap, modules, user, ...), with the randomised
bases found in the dump; where the region maps memory linearly (direct map,
kernel image) the linear result is checked against the walk.

ADDR is as for read. User addresses need a process's page tables: --pgd
takes its mm->pgd (kernel virtual) or a CR3 value (physical).

Exit codes: 0 all translated, 1 an address is not mapped, 2 usage, 3 not a
readable dump.`,
		Example: `  ldx vtop vmcore init_uts_ns
  ldx vtop vmcore ffff888001000000 ffffc90000000000 --json
  ldx vtop vmcore --pgd ffff888004a52000 7ffd4d1c8000`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return &exitError{exitUsage, fmt.Errorf("%s: needs FILE and at least one ADDR", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := openDump(cmd.Context(), args[0], dopt)
			if err != nil {
				return err
			}
			defer d.Close()
			var addrs []uint64
			lookup := kallsymsLookup(d)
			for _, a := range args[1:] {
				v, err := parseAddr(d.VMCOREINFO, a, lookup)
				if err != nil {
					return &exitError{exitUsage, err}
				}
				addrs = append(addrs, v)
			}
			m, err := walkerFor(d, pgd)
			if err != nil {
				return err
			}
			layout := m.Layout(d.VMCOREINFO, d.PageOffset)
			var results []vtopResult
			failed := 0
			for _, va := range addrs {
				r := translate(d, m, layout, va, pgd != "")
				if r.Error != "" {
					failed++
				}
				results = append(results, r)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(w, results); err != nil {
					return err
				}
			} else {
				for i := range results {
					if i > 0 {
						fmt.Fprintln(w)
					}
					if err := printVtop(w, &results[i]); err != nil {
						return err
					}
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d addresses could not be translated", failed, len(addrs))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pgd, "pgd", "", "walk this page global directory (a process's mm->pgd, or a CR3 value) instead of init_top_pgt")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the walks as JSON")
	zeroExcludedFlag(cmd, &dopt)
	return cmd
}

func translate(d *dump.Dump, m *kmem.Mem, layout *kmem.Layout, va uint64, userRoot bool) vtopResult {
	region := layout.Region(va)
	r := vtopResult{Vaddr: hexU64(va), Region: region.Name, Root: hexU64(m.Root())}
	w, err := m.Translate(va)
	if w != nil {
		for i, l := range w.Levels {
			leaf := i == len(w.Levels)-1 && w.Size == 4096
			r.Levels = append(r.Levels, vtopLevel{l.Name, hexU64(l.TableAddr), l.Index, hexU64(l.EntryAddr), hexU64(l.Entry), kmem.EntryFlags(l.Entry, leaf)})
		}
	}
	if lin, ok := region.LinearPhys(va); ok {
		v := hexU64(lin)
		r.Linear = &v
	}
	if err != nil {
		r.Error = err.Error()
		var nm *kmem.NotMappedError
		if region.Name == "user" && !userRoot && errors.As(err, &nm) {
			r.Error += "; user addresses are mapped by a process's page tables: pass its mm->pgd with --pgd"
		}
		return r
	}
	pa := hexU64(w.Paddr)
	r.Paddr, r.PageSize = &pa, w.Size
	if r.Linear != nil {
		ok := *r.Linear == pa
		r.LinearOK = &ok
	}
	var b [1]byte
	_, rerr := d.Phys.ReadAt(b[:], int64(w.Paddr))
	r.InDump = rerr == nil
	if ee := (*dump.ExcludedError)(nil); errors.As(rerr, &ee) {
		r.Excluded = ee.Why
	}
	return r
}

func printVtop(w io.Writer, r *vtopResult) error {
	fmt.Fprintf(w, "virtual   0x%016x  %s\n", uint64(r.Vaddr), r.Region)
	if r.Paddr != nil {
		where := "in the dump"
		if r.Excluded != "" {
			where = "excluded from the dump (" + r.Excluded + ")"
		} else if !r.InDump {
			where = "NOT in the dump's memory"
		}
		fmt.Fprintf(w, "physical  %#x  (%s page, %s)\n", uint64(*r.Paddr), sizeName(r.PageSize), where)
	}
	if len(r.Levels) > 0 {
		var rows [][]string
		for _, l := range r.Levels {
			rows = append(rows, []string{l.Level, fmt.Sprintf("%#x", uint64(l.Table)), strconv.FormatUint(l.Index, 10),
				fmt.Sprintf("%#x", uint64(l.EntryAddr)), fmt.Sprintf("0x%016x", uint64(l.Entry)), l.Flags})
		}
		if err := printTable(w, []string{"level", "table", "index", "entry at", "entry", "flags"}, rows, 1, 2, 3); err != nil {
			return err
		}
	}
	switch {
	case r.LinearOK != nil && *r.LinearOK:
		fmt.Fprintf(w, "linear    %#x  (the %s's fixed offset agrees)\n", uint64(*r.Linear), r.Region)
	case r.LinearOK != nil:
		fmt.Fprintf(w, "linear    %#x  MISMATCH: the %s's fixed offset gives another address than the page tables\n", uint64(*r.Linear), r.Region)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "error     %s\n", r.Error)
	}
	return nil
}

func sizeName(n uint64) string {
	switch n {
	case 1 << 30:
		return "1 GiB"
	case 2 << 20:
		return "2 MiB"
	case 4 << 10:
		return "4 KiB"
	}
	return strconv.FormatUint(n, 10) + "-byte"
}
