package extract

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kdump"
	"ldx/elfcore/kernel/pageclass"
	"ldx/extract/dump"
)

// Output formats.
const (
	FormatELF   = "elf"
	FormatKdump = "kdump"
)

// writeKdump streams the dump's memory into a kdump-compressed file
// (package kdump's writer): the same notes, VMCOREINFO, phys_base and
// RAM as the ELF output, never-written pages as zeros. The pages are
// compressed on all cores while this goroutine reads.
func writeKdump(ctx context.Context, out sink, p *dump.Dump, opt *Options, sum *Summary) error {
	cfg, err := kdumpConfig(p, opt)
	if err != nil {
		return err
	}
	if opt.exclude != nil {
		cfg.Exclude = opt.exclude
	} else if lvl := opt.DumpLevel; lvl&^pageclass.Zero != 0 {
		classes, err := classify(ctx, p, lvl, opt.progress)
		if err != nil {
			return err
		}
		sum.Filter = &Filter{Level: lvl, Excluded: classes.Counts, Anomalies: classes.Anomalies}
		for _, n := range classes.Notes {
			sum.warn("dump level %d: struct page anomaly (page kept): %s", lvl, n)
		}
		cfg.Exclude = classes.Excluded
	}
	w, err := kdump.NewWriter(out, cfg)
	if err != nil {
		return err
	}
	defer w.Abort() // no-op after Close
	total := int64(p.RAMBytes())
	var done int64
	var last time.Time
	pg := pager{w: w}
	copyChunk := func(pa, n uint64, chunk []byte) error {
		if chunk != nil {
			sum.Read += n
			if p.Unwritten != nil {
				// Never-written pages read as zeros, as in the ELF
				// output. chunk is the walk's buffer, refilled next call.
				for off := uint64(0); off+pageSize <= n; off += pageSize {
					if pa%pageSize == 0 && !elfcore.IsZero(chunk[off:off+pageSize]) && p.Unwritten((pa+off)/pageSize, chunk[off:off+pageSize]) {
						sum.Unwritten++
						clear(chunk[off : off+pageSize])
					}
				}
			}
		}
		if err := pg.add(pa, n, chunk); err != nil {
			return err
		}
		done += int64(n)
		if now := time.Now(); now.Sub(last) > 100*time.Millisecond {
			opt.progress("copy", done, total)
			last = now
		}
		return nil
	}
	// Runs of excluded pages are not read: the writer gets them as zeros
	// and leaves them out (at -d 31 most of an idle machine's memory is
	// free pages).
	for _, sp := range readSpans(p.RAM, cfg.Exclude) {
		if sp.read {
			err = p.Walk(ctx, []elfcore.Range{sp.Range}, copyChunk)
		} else {
			err = copyChunk(sp.Start, sp.End-sp.Start, nil)
		}
		if err != nil {
			break
		}
	}
	if err != nil {
		return err
	}
	if err := pg.flush(); err != nil {
		return err
	}
	opt.progress("copy", total, total)
	if opt.FinalNotes != nil {
		final, err := opt.FinalNotes()
		if err != nil {
			return err
		}
		if err := w.ReplaceNotes(elfcore.EncodeNotes(final)); err != nil {
			return err
		}
	}
	st, err := w.Close()
	if err != nil {
		return err
	}
	if err := out.commit(st.Size); err != nil {
		return err
	}
	sum.Memory = p.RAMBytes()
	sum.Written = st.DataBytes
	sum.OutputSize = st.Size
	sum.ZeroPages = st.ZeroPages
	sum.Kdump = &KdumpSummary{Compression: cfg.Compression.String(), DumpLevel: cfg.DumpLevel, Stats: st}
	sum.OnDisk = out.onDisk()
	return nil
}

// KdumpSummary is what the kdump-compressed output holds.
type KdumpSummary struct {
	Compression string `json:"compression"`
	DumpLevel   int    `json:"dump_level"`
	kdump.Stats
}

// kdumpConfig takes the header's facts from the dump: the note blob as
// the ELF output's PT_NOTE holds it, the kernel's utsname (crash compares
// its machine and release), phys_base and the RAM map.
func kdumpConfig(p *dump.Dump, opt *Options) (kdump.WriterConfig, error) {
	cfg := kdump.WriterConfig{
		NrCPUs:      p.Report.CPUs,
		Compression: opt.Compression,
		DumpLevel:   int(opt.DumpLevel),
		Notes:       elfcore.EncodeNotes(p.Notes),
	}
	if p.Report.CrashTime != nil {
		cfg.Timestamp = *p.Report.CrashTime
	}
	notes, err := elfcore.ParseNotes(cfg.Notes, 0)
	if err != nil {
		return cfg, err
	}
	for _, n := range notes {
		if n.Is(elfcore.NameVMCOREINFO, elfcore.NT_VMCOREINFO) {
			// The descriptor follows the 12-byte header and the name,
			// NUL-terminated and padded to 4 bytes.
			cfg.VMCOREINFOOff = int(n.Off) + 12 + (len(n.Name)+1+3)&^3
			cfg.VMCOREINFOSize = len(n.Desc)
		}
	}
	for _, r := range p.RAM {
		if r.Start%pageSize != 0 || r.End%pageSize != 0 {
			return cfg, fmt.Errorf("RAM range [%#x, %#x) is not page-aligned", r.Start, r.End)
		}
		cfg.RAM = append(cfg.RAM, kdump.PFNRange{Start: r.Start / pageSize, End: r.End / pageSize})
	}
	cfg.Utsname = kdump.Utsname{Sysname: "Linux", Machine: "x86_64"}
	if p.VMCOREINFO != nil {
		cfg.Utsname.Release, _ = p.VMCOREINFO.OSRelease()
	}
	if mem, err := p.Kmem(); err == nil {
		cfg.PhysBase = mem.Params().PhysBase
		if u, ok := readUtsname(mem, p); ok {
			cfg.Utsname = u
		}
	}
	return cfg, nil
}

// readUtsname reads init_uts_ns's new_utsname from the dumped memory,
// as makedumpfile copies it into the header; only a name whose release is
// VMCOREINFO's OSRELEASE is taken.
func readUtsname(mem interface {
	ReadAt([]byte, int64) (int, error)
}, p *dump.Dump) (kdump.Utsname, bool) {
	uts, ok1 := p.VMCOREINFO.Symbol("init_uts_ns")
	name, ok2 := p.VMCOREINFO.Offset("uts_namespace.name")
	rel, ok3 := p.VMCOREINFO.OSRelease()
	if !ok1 || !ok2 || !ok3 {
		return kdump.Utsname{}, false
	}
	buf := make([]byte, 6*65)
	if _, err := mem.ReadAt(buf, int64(uts+name)); err != nil {
		return kdump.Utsname{}, false
	}
	f := func(i int) string { return string(bytes.TrimRight(buf[i*65:(i+1)*65], "\x00")) }
	u := kdump.Utsname{Sysname: f(0), Nodename: f(1), Release: f(2), Version: f(3), Machine: f(4), Domainname: f(5)}
	if u.Release != rel {
		return kdump.Utsname{}, false
	}
	return u, true
}

// pager turns the walk's chunks (holes and data, any alignment) into
// whole pages for the writer.
type pager struct {
	w     *kdump.Writer
	carry []byte // the partial page at carryPA
	pa    uint64
}

func (g *pager) add(pa, n uint64, chunk []byte) error {
	for n > 0 {
		if len(g.carry) == 0 && pa%pageSize == 0 && n >= pageSize {
			k := n &^ (pageSize - 1)
			var err error
			if chunk == nil {
				err = g.w.WriteZeros(pa/pageSize, k/pageSize)
			} else {
				err = g.w.Write(pa/pageSize, chunk[:k])
				chunk = chunk[k:]
			}
			if err != nil {
				return err
			}
			pa, n = pa+k, n-k
			continue
		}
		if len(g.carry) == 0 {
			g.pa = pageDown(pa)
			g.carry = make([]byte, pa-g.pa, pageSize)
		}
		k := min(n, pageSize-uint64(len(g.carry)))
		if chunk == nil {
			g.carry = append(g.carry, make([]byte, k)...)
		} else {
			g.carry = append(g.carry, chunk[:k]...)
			chunk = chunk[k:]
		}
		pa, n = pa+k, n-k
		if len(g.carry) == pageSize {
			if err := g.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *pager) flush() error {
	if len(g.carry) == 0 {
		return nil
	}
	page := append(g.carry, make([]byte, pageSize-len(g.carry))...)
	g.carry = nil
	return g.w.Write(g.pa/pageSize, page)
}

// span is a part of RAM, to read or not.
type span struct {
	elfcore.Range
	read bool
}

// minSkip is the shortest run of excluded pages not read: shorter runs
// are read with their neighbours, as one large read beats many small ones.
const minSkip = 64

// readSpans splits ram into the spans to read and the runs of at least
// minSkip pages excluded says are left out.
func readSpans(ram []elfcore.Range, excluded func(pfn uint64) bool) []span {
	var out []span
	add := func(start, end uint64, read bool) {
		if start == end {
			return
		}
		if k := len(out) - 1; k >= 0 && out[k].read == read && out[k].End == start {
			out[k].End = end
			return
		}
		out = append(out, span{elfcore.Range{Start: start, End: end}, read})
	}
	for _, r := range ram {
		if excluded == nil {
			add(r.Start, r.End, true)
			continue
		}
		first, last := (r.Start+pageSize-1)/pageSize, r.End/pageSize
		if first >= last {
			add(r.Start, r.End, true)
			continue
		}
		add(r.Start, first*pageSize, true)
		kept := first * pageSize // start of the pages not yet placed
		for pfn := first; pfn < last; {
			if !excluded(pfn) {
				pfn++
				continue
			}
			run := pfn
			for pfn < last && excluded(pfn) {
				pfn++
			}
			if pfn-run >= minSkip {
				add(kept, run*pageSize, true)
				add(run*pageSize, pfn*pageSize, false)
				kept = pfn * pageSize
			}
		}
		add(kept, r.End, true)
	}
	return out
}
