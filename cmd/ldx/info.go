package main

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ldx/elfcore"
	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/kernel/x86"
	"ldx/elfcore/vmlinux"
	"ldx/extract/dump"
	"ldx/kmod/manifest"
)

// openDump analyses any input the way extract would (raw livedump device
// or image, xz image, ELF vmcore, kdump file) without writing anything.
// Inputs that are not dumps exit with exitBadInput, like extract.
func openDump(ctx context.Context, path string, opt dump.Options) (*dump.Dump, error) {
	d, err := dump.Open(ctx, path, opt)
	if err == nil {
		return d, nil
	}
	var ie *dump.InputError
	switch {
	case errors.As(err, &ie):
		return nil, &exitError{exitBadInput, err}
	case errors.Is(err, context.Canceled):
		return nil, err
	}
	return nil, &exitError{exitFailure, err}
}

// kernelMem returns the page-table reader of a dump, or an error saying
// why virtual addresses cannot be read.
func kernelMem(d *dump.Dump) (*kmem.Mem, error) {
	m, err := d.Kmem()
	if err != nil {
		return nil, fmt.Errorf("%s: kernel virtual memory cannot be read: %w", d.Source.Path, err)
	}
	return m, nil
}

// writeJSON writes v indented, as every --json output does.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// hexU64 is a number written to JSON as a "0x…" string: addresses stay
// readable and exact in JSON readers that use float64.
type hexU64 uint64

func (h hexU64) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%#x", uint64(h))), nil }

// signedU64 is a two's-complement offset written to JSON as signed hex.
type signedU64 uint64

func (h signedU64) MarshalText() ([]byte, error) { return []byte(signedHex(uint64(h))), nil }

// infoReport is what ldx info says about a dump.
type infoReport struct {
	Input     string      `json:"input"`
	InputKind string      `json:"input_kind"`
	InputSize int64       `json:"input_size"`
	Format    dump.Format `json:"format"`
	// Parts are the files of a split dump, in pfn order.
	Parts []string `json:"parts,omitempty"`
	// Producer names what wrote the dump, as far as the dump shows it.
	Producer string `json:"producer"`
	Live     bool   `json:"live"`
	// LiveWhy says how Producer and Live were decided.
	LiveWhy     string        `json:"live_reason"`
	Release     string        `json:"release,omitempty"`
	BuildID     string        `json:"build_id,omitempty"`
	Arch        string        `json:"arch"`
	PageSize    uint64        `json:"page_size,omitempty"`
	CPUs        int           `json:"cpus"`
	Memory      uint64        `json:"memory_bytes"`
	RAM         []rangeJSON   `json:"ram"`
	Time        *time.Time    `json:"time,omitempty"`
	TimeSource  string        `json:"time_source,omitempty"`
	KASLR       bool          `json:"kaslr"`
	KASLROffset hexU64        `json:"kaslr_offset"`
	PhysBase    signedU64     `json:"phys_base"`
	PhysBaseSrc string        `json:"phys_base_source"`
	PageOffset  hexU64        `json:"page_offset_base"`
	Paging      int           `json:"paging_levels"`
	Image       *imageJSON    `json:"kernel_image,omitempty"`
	Layout      *kmem.Layout  `json:"-"`
	Regions     []regionJSON  `json:"regions,omitempty"`
	Segments    []segmentJSON `json:"segments"`
	Notes       []noteJSON    `json:"notes"`
	Repairs     []string      `json:"repairs"`
	Warnings    []string      `json:"warnings"`
	Manifest    *manifestJSON `json:"capture_manifest,omitempty"`
}

type rangeJSON struct {
	Start hexU64 `json:"start"`
	End   hexU64 `json:"end"`
}

type imageJSON struct {
	Virt hexU64 `json:"virt"`
	Phys hexU64 `json:"phys"`
	Size uint64 `json:"size"`
}

type regionJSON struct {
	Name   string `json:"name"`
	Start  hexU64 `json:"start"`
	End    hexU64 `json:"end"`
	Source string `json:"source,omitempty"`
}

type segmentJSON struct {
	Index  int    `json:"index"`
	Type   string `json:"type"`
	Offset hexU64 `json:"offset"`
	Vaddr  hexU64 `json:"vaddr"`
	Paddr  hexU64 `json:"paddr"`
	Filesz uint64 `json:"filesz"`
	Memsz  uint64 `json:"memsz"`
	Flags  string `json:"flags"`
	What   string `json:"what"`
}

type noteJSON struct {
	Index  int    `json:"index"`
	Name   string `json:"name"`
	Type   uint32 `json:"type"`
	Descsz int    `json:"descsz"`
	What   string `json:"what"`
}

type manifestJSON struct {
	Prepared string    `json:"prepared"`
	Time     time.Time `json:"time"`
}

func newInfoCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info FILE",
		Short: "Summarise a dump: kernel, CPUs, memory, layout, segments and notes",
		Long: `info answers the first questions about a dump without a vmlinux: which
kernel (release, build-id), how many CPUs, how much memory and where, when
it was taken, whether it is a live dump, and the values address translation
rests on (KASLR offset, phys_base, page_offset_base, paging levels). Then
the program headers and the notes as ldx reads them.

FILE is anything ldx reads: its own output, a raw livedump device or image
(plain or xz), a QEMU dump-guest-memory file, a /proc/vmcore copy. A raw
livedump input is shown as extract would repair it; the segments listed
are the input's own.

Exit codes: 0 ok, 1 failure, 2 usage, 3 not a readable dump.`,
		Example: `  ldx info vmcore
  ldx info /dev/sdb --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := openDump(cmd.Context(), args[0], dump.Options{})
			if err != nil {
				return err
			}
			defer d.Close()
			r := buildInfo(d)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			return printInfo(cmd.OutOrStdout(), r)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func buildInfo(d *dump.Dump) *infoReport {
	s := d.Report
	r := &infoReport{Input: s.Input, InputKind: string(s.InputKind), InputSize: s.InputSize, Format: d.Format, Parts: s.Parts,
		Arch: "x86_64", CPUs: s.CPUs, Repairs: s.Repairs, Warnings: s.Warnings, PageOffset: hexU64(d.PageOffset)}
	if d.Core != nil && d.Core.Machine != elf.EM_X86_64 {
		r.Arch = d.Core.Machine.String()
	}
	info := d.VMCOREINFO
	if info != nil {
		r.Release, _ = info.OSRelease()
		r.BuildID, _ = info.BuildID()
		r.PageSize, _ = info.PageSize()
		if off, ok := info.KernelOffset(); ok {
			r.KASLROffset = hexU64(off)
		}
	}
	for _, x := range d.RAM {
		r.Memory += x.Len()
		r.RAM = append(r.RAM, rangeJSON{hexU64(x.Start), hexU64(x.End)})
	}
	if d.Image.End > d.Image.Start {
		r.Image = &imageJSON{Virt: hexU64(d.ImageVirt), Phys: hexU64(d.Image.Start), Size: d.Image.End - d.Image.Start}
	}
	r.Paging = 4
	if m, err := d.Kmem(); err == nil {
		p := m.Params()
		if p.L5 {
			r.Paging = 5
		}
		r.PhysBase = signedU64(p.PhysBase)
		r.PhysBaseSrc = "VMCOREINFO NUMBER(phys_base)"
		if info != nil && !info.Has("NUMBER(phys_base)") {
			r.PhysBaseSrc = "the kernel-image PT_LOAD"
		}
		r.Layout = m.Layout(info, d.PageOffset)
		for _, g := range r.Layout.Regions {
			if g.Randomised || g.Name == "kernel image" {
				r.Regions = append(r.Regions, regionJSON{g.Name, hexU64(g.Start), hexU64(g.End), g.Source})
			}
		}
	} else {
		r.PhysBaseSrc = "unknown: " + err.Error()
	}
	pobDefault := uint64(x86.PageOffset4Level)
	if r.Paging == 5 {
		pobDefault = x86.PageOffset5Level
	}
	r.KASLR = r.KASLROffset != 0 || (d.PageOffset != 0 && d.PageOffset != pobDefault)

	if s.CrashTime != nil {
		r.Time, r.TimeSource = s.CrashTime, "VMCOREINFO CRASHTIME"
	}
	if d.Format == dump.FormatLivedump {
		if man, err := manifest.Read(d.Source); err == nil {
			r.Manifest = &manifestJSON{Prepared: string(man.Prepared), Time: man.Time}
			if r.Time == nil {
				t := man.Time
				r.Time, r.TimeSource = &t, "the capture manifest (when the device was prepared)"
			}
		}
	}
	if r.Time == nil && d.Format == dump.FormatELF {
		if fi, err := os.Stat(d.Source.Path); err == nil && fi.Mode().IsRegular() {
			t := fi.ModTime().UTC()
			r.Time, r.TimeSource = &t, "the file's modification time (the dump records no time)"
		}
	}
	p := d.Producer()
	r.Producer, r.Live, r.LiveWhy = p.Name, p.Live, p.Why

	if d.Core != nil {
		for i, p := range d.Core.Progs {
			r.Segments = append(r.Segments, segmentJSON{Index: i, Type: progType(p.Type), Offset: hexU64(p.Off), Vaddr: hexU64(p.Vaddr),
				Paddr: hexU64(p.Paddr), Filesz: p.Filesz, Memsz: p.Memsz, Flags: progFlags(p.Flags), What: segmentWhat(p, d)})
		}
	}
	for i, n := range d.Notes {
		r.Notes = append(r.Notes, noteJSON{Index: i, Name: n.Name, Type: n.Type, Descsz: len(n.Desc), What: noteWhat(n, i, d)})
	}
	return r
}

func progType(t elf.ProgType) string {
	switch t {
	case elf.PT_LOAD:
		return "LOAD"
	case elf.PT_NOTE:
		return "NOTE"
	}
	return strings.TrimPrefix(t.String(), "PT_")
}

func progFlags(f elf.ProgFlag) string {
	b := []byte("---")
	if f&elf.PF_R != 0 {
		b[0] = 'r'
	}
	if f&elf.PF_W != 0 {
		b[1] = 'w'
	}
	if f&elf.PF_X != 0 {
		b[2] = 'x'
	}
	return string(b)
}

func segmentWhat(p elfcore.ProgHeader, d *dump.Dump) string {
	switch {
	case p.Type == elf.PT_NOTE:
		return "notes"
	case p.Type != elf.PT_LOAD:
		return ""
	case p.Vaddr >= x86.KernelTextBase:
		return "kernel image"
	case p.Vaddr == p.Paddr:
		return "physical memory (no virtual address)"
	case d.PageOffset != 0 && p.Vaddr-p.Paddr == d.PageOffset:
		return "RAM, direct map"
	}
	return "memory"
}

func noteWhat(n elfcore.Note, i int, d *dump.Dump) string {
	switch {
	case n.Is(elfcore.NameCore, elfcore.NT_PRSTATUS):
		st, err := elfcore.ParsePRStatus(n.Desc)
		if err != nil {
			return "NT_PRSTATUS: " + err.Error()
		}
		return fmt.Sprintf("NT_PRSTATUS pid %d ip %#x sp %#x", st.Pid, st.Regs[elfcore.RegRIP], st.Regs[elfcore.RegRSP])
	case n.Is(elfcore.NameVMCOREINFO, elfcore.NT_VMCOREINFO):
		lines := strings.Count(string(n.Desc), "\n")
		return fmt.Sprintf("VMCOREINFO, %d lines", lines)
	case n.Name == elfcore.NameQEMU:
		return "QEMU CPU state"
	case n.Is(elfcore.NameCore, elfcore.NT_TASKSTRUCT):
		return "NT_TASKSTRUCT"
	}
	return ""
}

func printInfo(w io.Writer, r *infoReport) error {
	row := func(k, v string) { fmt.Fprintf(w, "%-17s %s\n", k+":", v) }
	row("input", fmt.Sprintf("%s (%s, %s)", r.Input, r.InputKind, mib(r.InputSize)))
	row("format", r.Format.String())
	if len(r.Parts) > 0 {
		row("split dump", fmt.Sprintf("%d parts (makedumpfile --split), in pfn order: %s", len(r.Parts), strings.Join(r.Parts, ", ")))
	}
	row("producer", r.Producer)
	live := "no"
	if r.Live {
		live = "yes"
	}
	row("live dump", fmt.Sprintf("%s (%s)", live, r.LiveWhy))
	row("release", orUnknown(r.Release))
	row("build-id", orUnknown(r.BuildID))
	row("arch", r.Arch)
	if r.PageSize != 0 {
		row("page size", strconv.FormatUint(r.PageSize, 10))
	}
	row("cpus", strconv.Itoa(r.CPUs))
	row("memory", fmt.Sprintf("%s in %d ranges", mib(int64(r.Memory)), len(r.RAM)))
	if r.Time != nil {
		row("time", fmt.Sprintf("%s (%s)", r.Time.Format(time.RFC3339), r.TimeSource))
	} else {
		row("time", "unknown (the dump records none)")
	}
	kaslr := "off"
	if r.KASLR {
		kaslr = "on"
	}
	row("kaslr", fmt.Sprintf("%s, kernel offset %#x", kaslr, uint64(r.KASLROffset)))
	row("phys_base", fmt.Sprintf("%s (%s)", signedHex(uint64(r.PhysBase)), r.PhysBaseSrc))
	row("page_offset_base", fmt.Sprintf("%#x", uint64(r.PageOffset)))
	row("paging", fmt.Sprintf("%d-level", r.Paging))
	if r.Image != nil {
		row("kernel image", fmt.Sprintf("%#x → physical %#x, %s", uint64(r.Image.Virt), uint64(r.Image.Phys), mib(int64(r.Image.Size))))
	}
	for _, g := range r.Regions {
		if g.Name == "kernel image" {
			continue
		}
		src := ""
		if g.Source != "" {
			src = " (" + g.Source + ")"
		}
		label := map[string]string{"direct map": "direct map", "vmalloc/ioremap": "vmalloc", "vmemmap (struct page array)": "vmemmap"}[g.Name]
		if label == "" {
			label = g.Name
		}
		row(label, fmt.Sprintf("%#x%s", uint64(g.Start), src))
	}
	if r.Manifest != nil {
		row("capture manifest", fmt.Sprintf("device %s at %s", r.Manifest.Prepared, r.Manifest.Time.Format(time.RFC3339)))
	}

	fmt.Fprintln(w, "\nPhysical memory:")
	var rows [][]string
	for _, x := range r.RAM {
		rows = append(rows, []string{fmt.Sprintf("%#x", uint64(x.Start)), fmt.Sprintf("%#x", uint64(x.End)), mib(int64(x.End - x.Start))})
	}
	if err := printTable(w, []string{"start", "end", "size"}, rows, 0, 1, 2); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nProgram headers (the input's):")
	rows = rows[:0]
	for _, s := range r.Segments {
		rows = append(rows, []string{strconv.Itoa(s.Index), s.Type, fmt.Sprintf("%#x", uint64(s.Offset)), fmt.Sprintf("%#x", uint64(s.Vaddr)),
			fmt.Sprintf("%#x", uint64(s.Paddr)), fmt.Sprintf("%#x", s.Filesz), fmt.Sprintf("%#x", s.Memsz), s.Flags, s.What})
	}
	if err := printTable(w, []string{"#", "type", "p_offset", "p_vaddr", "p_paddr", "p_filesz", "p_memsz", "flags", "what"}, rows, 0, 2, 3, 4, 5, 6); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nNotes:")
	rows = rows[:0]
	for _, n := range r.Notes {
		rows = append(rows, []string{strconv.Itoa(n.Index), n.Name, strconv.FormatUint(uint64(n.Type), 10), strconv.Itoa(n.Descsz), n.What})
	}
	if err := printTable(w, []string{"#", "name", "type", "descsz", "what"}, rows, 0, 2, 3); err != nil {
		return err
	}
	if len(r.Repairs)+len(r.Warnings) > 0 {
		fmt.Fprintln(w)
	}
	for _, x := range r.Repairs {
		fmt.Fprintf(w, "repaired on reading: %s\n", x)
	}
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", strings.TrimSpace(x))
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// signedHex prints phys_base as the kernel means it: a signed offset,
// negative when KASLR loaded the kernel below its link-time physical
// address relative to its virtual slot.
func signedHex(v uint64) string {
	if int64(v) < 0 {
		return fmt.Sprintf("-%#x", -v)
	}
	return fmt.Sprintf("%#x", v)
}

// openVmlinux opens a --vmlinux for a command: a file that cannot be read
// as a vmlinux is unusable input (exit 3).
func openVmlinux(cmd, path string) (*vmlinux.File, error) {
	v, err := vmlinux.Open(path)
	if err != nil {
		return nil, &exitError{exitBadInput, fmt.Errorf("%s: --vmlinux: %w", cmd, err)}
	}
	return v, nil
}

// zeroExcludedFlag adds --zero-excluded to a command that reads memory:
// crash's --zero_excluded, for filtered kdump files.
func zeroExcludedFlag(cmd *cobra.Command, opt *dump.Options) {
	cmd.Flags().BoolVar(&opt.ZeroExcluded, "zero-excluded", false, "read pages a filtered dump left out (its dump level) as zeros instead of failing on them (crash's --zero_excluded)")
}
