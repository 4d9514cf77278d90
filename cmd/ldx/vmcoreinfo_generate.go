package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"ldx/extract/dump"
	"ldx/vmcoreinfo/generate"
)

// generateReport is `ldx vmcoreinfo generate --json`.
type generateReport struct {
	Vmlinux string `json:"vmlinux"`
	Release string `json:"release"`
	Dump    string `json:"dump,omitempty"`
	// Runtime is absent without --dump.
	Runtime *generateRuntime `json:"runtime,omitempty"`
	// Text is the VMCOREINFO note text, exactly as printed without --json.
	Text     string             `json:"text"`
	Lines    []generate.Line    `json:"lines"`
	Unknown  []generate.Omitted `json:"unknown"`
	Warnings []string           `json:"warnings"`
}

type generateRuntime struct {
	Source       generate.RuntimeSource `json:"source"`
	KernelOffset hexU64                 `json:"kernel_offset"`
	PhysBase     signedU64              `json:"phys_base"`
	PgtableL5    bool                   `json:"pgtable_l5"`
	SMEMask      hexU64                 `json:"sme_mask"`
}

func newVMCOREINFOGenerateCmd() *cobra.Command {
	var vmlinuxPath, dumpPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "generate --vmlinux VMLINUX [--dump FILE]",
		Short: "Write the VMCOREINFO the kernel would have emitted, from its debug vmlinux (and a dump)",
		Long: `generate writes the VMCOREINFO text the kernel of VMLINUX (its -dbg debug
image) emits at boot: the kernel's own key set, order and printf formats,
as kernel/crash_core.c (kernel/vmcore_info.c from 6.9), printk.c and
arch/x86/kernel/crash_core_64.c write it on x86_64. Checked line by line
against the 6.1 and 6.12 sources and reproduced key for key on real Debian
6.1 and 6.12 dumps; for other releases it warns.

Values come from the vmlinux (symbols, DWARF sizes, offsets, array lengths
and enumerators), from x86_64 constants where the kernel prints a macro,
and, with --dump, from the dumped kernel: KERNELOFFSET, phys_base, paging
depth and SME mask from the dump's VMCOREINFO, or — when it is missing or
lost those keys — found in the dumped physical memory from the vmlinux's
banner and page tables; the variables below are read from its memory.

A key whose value is not known is not written: it is listed on standard
error (and under "unknown" with --json), with the reason. Never known:

  CRASHTIME                    appended at crash time, not at boot

Without --dump, also unknown (only the running kernel had them):

  SYMBOL(mem_section)          the SPARSEMEM_EXTREME root pointer
  NUMBER(phys_base)            where the image was loaded
  NUMBER(pgtable_l5_enabled)   5-level paging (CONFIG_X86_5LEVEL kernels)
  NUMBER(MAX_PHYSMEM_BITS)     46 or 52, by the paging depth (idem)
  LENGTH(mem_section)          NR_SECTION_ROOTS, by the paging depth (idem)
  NUMBER(sme_mask)             the memory-encryption bit (CONFIG_AMD_MEM_ENCRYPT)
  NUMBER(VMALLOC_START)        6.9+, randomised (CONFIG_RANDOMIZE_MEMORY)
  SYMBOL(vmemmap)              6.10+, randomised (CONFIG_RANDOMIZE_MEMORY)

and the SYMBOL() values are link-time addresses with KERNELOFFSET=0
(listed as assumed in --json), as makedumpfile -g writes them.

Standard output holds only the text, as the kernel's note would; a note
of where the runtime values came from, the unknown keys and warnings go to
standard error.

Exit codes: 0 written, every key known but those listed above; 1 a key
the kernel emits could not be generated (the vmlinux lacks what it
prints, the dump's memory could not be read, a kernel before 5.10) — the
text is still written, without it; 2 usage; 3 the dump is not readable,
or the vmlinux cannot be read or is not the dumped kernel's.`,
		Example: `  ldx vmcoreinfo generate --vmlinux /usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64 --dump vmcore
  ldx vmcoreinfo generate --vmlinux vmlinux-6.12 > vmcoreinfo.txt
  ldx vmcoreinfo generate --vmlinux vmlinux --dump /dev/sdb --json | jq -r '.unknown[].key'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if vmlinuxPath == "" {
				return &exitError{exitUsage, errors.New("vmcoreinfo generate: --vmlinux VMLINUX is required (the kernel's debug vmlinux)")}
			}
			v, err := openVmlinux("vmcoreinfo generate", vmlinuxPath)
			if err != nil {
				return err
			}
			defer v.Close()
			rep := &generateReport{Vmlinux: vmlinuxPath, Dump: dumpPath}
			var rt *generate.Runtime
			if dumpPath != "" {
				d, err := openDump(cmd.Context(), dumpPath, dump.Options{})
				if err != nil {
					return err
				}
				defer d.Close()
				if d.VMCOREINFO != nil {
					if _, err := v.Matches(d.VMCOREINFO); err != nil {
						return &exitError{exitBadInput, fmt.Errorf("vmcoreinfo generate: %w", err)}
					}
				}
				var src generate.RuntimeSource
				rt, src, err = generate.RuntimeFromDump(cmd.Context(), v, d.Phys, d.RAM, d.VMCOREINFO)
				if err != nil {
					return fmt.Errorf("vmcoreinfo generate: %s: %w", dumpPath, err)
				}
				rep.Runtime = &generateRuntime{Source: src, KernelOffset: hexU64(rt.KernelOffset), PhysBase: signedU64(rt.PhysBase),
					PgtableL5: rt.PgtableL5, SMEMask: hexU64(rt.SMEMask)}
			}
			res, err := generate.Generate(v, rt)
			if err != nil {
				return fmt.Errorf("vmcoreinfo generate: %w", err)
			}
			rep.Release, rep.Text, rep.Lines, rep.Unknown, rep.Warnings = res.Release, string(res.Text()), res.Lines, res.Unknown, res.Warnings
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				if _, err := io.WriteString(cmd.OutOrStdout(), rep.Text); err != nil {
					return err
				}
				reportGenerate(cmd.ErrOrStderr(), rep)
			}
			var failed []string
			for _, u := range res.Unknown {
				if !u.Expected() {
					failed = append(failed, u.Key)
				}
			}
			if len(failed) > 0 {
				names := strings.Join(failed[:min(len(failed), 6)], ", ")
				if len(failed) > 6 {
					names += ", …"
				}
				return fmt.Errorf("vmcoreinfo generate: %d key(s) the kernel emits could not be generated (%s); the reasons are listed", len(failed), names)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&vmlinuxPath, "vmlinux", "", "the kernel's debug vmlinux (required)")
	f.StringVar(&dumpPath, "dump", "", "a dump of that kernel, for the runtime values (any input ldx reads)")
	f.BoolVar(&asJSON, "json", false, "print the text, every key with its origin and kernel source, and the unknown keys as JSON")
	return cmd
}

// reportGenerate says on standard error where the runtime values came
// from and which keys were not written.
func reportGenerate(w io.Writer, rep *generateReport) {
	if rt := rep.Runtime; rt != nil {
		how := "the dump's VMCOREINFO"
		if rt.Source == generate.Located {
			how = "the dumped memory (the dump's VMCOREINFO lacks them): the vmlinux's banner and page tables"
		}
		fmt.Fprintf(w, "ldx: vmcoreinfo generate: KERNELOFFSET %#x, phys_base %s, %d-level paging from %s\n",
			uint64(rt.KernelOffset), signedHex(uint64(rt.PhysBase)), map[bool]int{false: 4, true: 5}[rt.PgtableL5], how)
	} else {
		fmt.Fprintln(w, "ldx: vmcoreinfo generate: no --dump: SYMBOL() values are link-time addresses, KERNELOFFSET=0 is assumed")
	}
	for _, u := range rep.Unknown {
		fmt.Fprintf(w, "not written: %s: %s\n", u.Key, u.Reason)
	}
	for _, x := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", strings.TrimSpace(x))
	}
}
