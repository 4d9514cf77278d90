package verify

import (
	"fmt"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/printk"
	"ldx/vmcoreinfo"
)

// What makedumpfile 1.7's dump_lockless_dmesg does without a key: a
// missing offset reads as NOT_FOUND (-1), so most turn the log into
// garbage, but a few only cost details (measured against makedumpfile
// 1.7.2 by the e2e mutation corpus).
var ringKeyDetail = map[string]string{
	"SIZE(prb_desc_ring)":            "it does not read",
	"OFFSET(printk_info.ts_nsec)":    "the timestamps are wrong",
	"OFFSET(prb_desc_ring.tail_id)":  "it starts from the wrong oldest record",
	"OFFSET(prb_data_blk_lpos.next)": "records that wrap around the text ring's end come out wrong",
	"OFFSET(printk_info.text_len)":   "texts run on to the end of their data blocks",
}

// ringKeysEffect is makedumpfile --dump-dmesg's fate without keys.
func ringKeysEffect(missing []vmcoreinfo.Requirement) Effect {
	var details []string
	for _, r := range missing {
		d, ok := ringKeyDetail[r.Key]
		if !ok {
			if r.Key == vmcoreinfo.KeyPrb {
				return eff(Makedumpfile, Fatal, "--dump-dmesg: without SYMBOL(prb) it looks for the pre-5.10 log_buf and fails (\"Can't find some symbols for log_buf\")")
			}
			return eff(Makedumpfile, Fatal, fmt.Sprintf("--dump-dmesg walks the ring with offset -1 for %s: no log, or garbage", r.Key))
		}
		details = append(details, r.Key+": "+d)
	}
	return eff(Makedumpfile, Degraded, "--dump-dmesg prints the log, but "+strings.Join(details, "; "))
}

// maxRingBytes bounds what F1 copies of the ring (descriptors, infos,
// text); kernels with log_buf_len beyond it are decoded only by --deep.
const maxRingBytes = 64 << 20

// checkPrintk is F1 and F2.
//
// F1 reads the ring the way makedumpfile's dump_lockless_dmesg does, through
// its page walk: the pointer at SYMBOL(prb), the ring, then every page of
// the descriptor, info and text arrays must translate into dumped memory,
// and elfcore/kernel/printk must decode at least one record from them.
// printkChecks is group F: the printk ring as makedumpfile reads it through
// its page walk (F1) and as vmcore-dmesg reads it through p_vaddr (F2).
func printkChecks(f *facts) ([]Result, ringLog) {
	c := f.newGroup()
	log := c.checkPrintk()
	return c.out, log
}

// ringLog is what F1's decoding leaves for the report besides its result:
// the decoder's complaints, and the newest record, which RunTools looks
// for in the tools' own output.
type ringLog struct {
	notes  []string
	newest string
}

func (c *group) checkPrintk() ringLog {
	if c.info == nil {
		c.skip(F1, "no VMCOREINFO note (C3)")
		c.skip(F2, "no VMCOREINFO note (C3)")
		return ringLog{}
	}
	if ver, ok := c.info.KernelVersion(); ok && ver.Less(vmcoreinfo.Version{Major: 5, Minor: 10}) {
		c.skip(F1, fmt.Sprintf("kernel %s predates the lockless ring; the structured-ring keys are not verified", ver))
		c.skip(F2, fmt.Sprintf("kernel %s predates the lockless ring", ver))
		return ringLog{}
	}
	var fatalMissing, minorMissing []vmcoreinfo.Requirement
	for _, r := range c.missing["F1"] {
		if r.Severity == vmcoreinfo.Fatal {
			fatalMissing = append(fatalMissing, r)
		} else {
			minorMissing = append(minorMissing, r)
		}
	}
	if len(fatalMissing) > 0 {
		names := keyNames(fatalMissing)
		if len(names) > 6 {
			names = append(names[:6], fmt.Sprintf("… (%d keys)", len(names)))
		}
		fix := "the kernel emits these keys; use its own VMCOREINFO text"
		if c.livedump {
			fix = "`ldx extract` recovers the complete VMCOREINFO from the dumped memory (K-1)"
		}
		c.fail(F1, "the lockless-ring keys are missing: "+strings.Join(names, ", "), fix, at("VMCOREINFO", c.vmci.Off+24),
			ringKeysEffect(fatalMissing), eff(VmcoreDmesg, Fatal, "cannot walk the ring without them"))
		c.skip(F2, "the lockless-ring keys are missing (F1)")
		return ringLog{}
	}
	log := c.checkRingWalk(minorMissing)
	c.checkRingVaddr()
	return log
}

// checkRingWalk is F1's walk and decoding; minorMissing are the missing
// ring keys that only cost details.
func (c *group) checkRingWalk(minorMissing []vmcoreinfo.Requirement) (log ringLog) {
	if c.mkd == nil {
		c.skip(F1, c.mkdErr.Error())
		return log
	}
	rg, arrays, err := printk.LocateLockless(c.mkd, c.info)
	if err != nil {
		c.fail(F1, err.Error(), "the dump lacks the memory of the printk ring or the page tables that map it (E2)", at("VMCOREINFO SYMBOL(prb)", c.vmci.Off+24),
			eff(Makedumpfile, Fatal, "--dump-dmesg cannot read the ring"))
		return log
	}
	var bad []string
	pages := 0
	for _, a := range arrays {
		for va := a.Addr &^ (pageSize - 1); va < a.Addr+a.Size; va += pageSize {
			pages++
			pa, err := c.mkd.VtoP(va)
			if err == nil {
				if _, ok := c.first.Lookup(pa); !ok {
					err = &elfcore.UnmappedError{Paddr: pa}
				}
			}
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s [%#x, %#x) page %#x: %v", a.Name, a.Addr, a.Addr+a.Size, va, err))
				break
			}
		}
	}
	if len(bad) > 0 {
		c.fail(F1, strings.Join(bad, "; "), "the dump lacks part of the printk ring; take it again", at("VMCOREINFO SYMBOL(prb)", c.vmci.Off+24),
			eff(Makedumpfile, Fatal, "--dump-dmesg copies the whole arrays: \"Can't read …\""))
		return log
	}
	// Decode it as makedumpfile would (elfcore/kernel/printk), bounded: the ring's
	// arrays are copied whole, a few hundred KiB on real kernels.
	limit := uint64(maxRingBytes)
	if c.opt.Deep {
		limit = 0 // printk's own bound
	}
	rec, err := printk.Read(c.mkd, c.info, &printk.Options{MaxBytes: limit})
	if err == nil && len(rec.Records) == 0 {
		err = fmt.Errorf("no readable record (%d skipped: %v; %v)", rec.SkippedTotal(), rec.Skipped, rec.Problems)
	}
	if err != nil {
		c.fail(F1, fmt.Sprintf("ring at %#x readable (%d descriptors, %s of text), but decoding it fails: %v", rg.Addr, rg.Count, mib(rg.TextSize), err),
			"the ring's memory is not the kernel's (stale or never-written pages?)", at("VMCOREINFO SYMBOL(prb)", c.vmci.Off+24),
			eff(Makedumpfile, Degraded, "--dump-dmesg prints nothing or garbage"))
		return log
	}
	if len(rec.Problems) > 0 {
		log.notes = append(log.notes, fmt.Sprintf("F1: the printk decoder skipped records: %s", strings.Join(rec.Problems, "; ")))
	}
	text := string(rec.Records[len(rec.Records)-1].Text)
	if !strings.ContainsAny(text, "\n") {
		log.newest = text
	}
	skipped := ""
	if n := rec.SkippedTotal(); n > 0 {
		skipped = fmt.Sprintf(" (%d skipped)", n)
	}
	found := fmt.Sprintf("ring at %#x: %d descriptors, %s of text, all %d pages mapped; %d records%s, the newest %q", rg.Addr, rg.Count, mib(rg.TextSize), pages, len(rec.Records), skipped, truncate(text, 60))
	if len(minorMissing) > 0 {
		sev := None
		for _, r := range minorMissing {
			sev = max(sev, r.Severity)
		}
		c.failSev(F1, sev, found+"; missing keys for details: "+strings.Join(keyNames(minorMissing), ", "),
			"the kernel emits these keys; use its own VMCOREINFO text", at("VMCOREINFO", c.vmci.Off+24),
			eff(Makedumpfile, sev, "prints the log without sequence numbers, caller ids or device info, or cannot do --partial-dmesg"),
			eff(VmcoreDmesg, sev, "prints the log without some details"))
		return log
	}
	c.pass(F1, found)
	return log
}
