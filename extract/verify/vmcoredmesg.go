package verify

import (
	"fmt"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/kernel/printk"
)

// vmcore-dmesg's read model. vmcore-dmesg has no page walk and no
// physical view: every address goes through the first program header of
// any type whose p_vaddr range holds it (vaddrOnly), each buffer read with
// one pread from the file. F2 checks the printk ring that way.

// vaddrOnly finds va the way vmcore-dmesg does: the first program header
// of any type whose [p_vaddr, p_vaddr+p_memsz) holds it (vaddr_to_offset).
func (c *facts) vaddrOnly(va, size uint64) (elfcore.ProgHeader, int, error) {
	for i, p := range c.f.Progs {
		if va >= p.Vaddr && va-p.Vaddr < p.Memsz {
			if va+size-p.Vaddr > p.Memsz || va+size-p.Vaddr > p.Filesz {
				return p, i, fmt.Errorf("[%#x, %#x) runs past the end of phdr[%d]'s file data (vmcore-dmesg reads each buffer with one pread)", va, va+size, i)
			}
			return p, i, nil
		}
	}
	return elfcore.ProgHeader{}, -1, fmt.Errorf("\"No program header covering vaddr %#x found\"", va)
}

type vaddrReader struct{ c *facts }

func (v vaddrReader) ReadAt(p []byte, off int64) (int, error) {
	seg, _, err := v.c.vaddrOnly(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return v.c.r.ReadAt(p, int64(seg.Off+uint64(off)-seg.Vaddr))
}

// missingF2 reports the keys only vmcore-dmesg needs, as an F2 failure.
func (c *group) missingF2() bool {
	rs := c.missing["F2"]
	if len(rs) == 0 {
		return false
	}
	sev := None
	for _, r := range rs {
		sev = max(sev, r.Severity)
	}
	c.fail(F2, "missing: "+strings.Join(keyNames(rs), ", "), "the kernel emits these keys; use its own VMCOREINFO text", at("VMCOREINFO", c.vmci.Off+24),
		eff(VmcoreDmesg, sev, "cannot tell the static ring from a dynamically allocated one"))
	return true
}

// checkRingVaddr is F2: vmcore-dmesg has no page walk; every buffer must be
// inside one p_vaddr segment, contiguous in the file.
func (c *group) checkRingVaddr() {
	if c.missingF2() {
		return
	}
	_, arrays, err := printk.LocateLockless(vaddrReader{c.facts}, c.info)
	var bad []string
	if err != nil {
		bad = append(bad, err.Error())
	} else {
		for _, a := range arrays {
			if _, _, err := c.vaddrOnly(a.Addr, a.Size); err != nil {
				bad = append(bad, a.Name+": "+err.Error())
			}
		}
	}
	if len(bad) > 0 {
		c.fail(F2, strings.Join(bad, "; "), "run `ldx extract FILE -o VMCORE`: it writes kernel-image and direct-map p_vaddr for every segment", nowhere,
			eff(VmcoreDmesg, Fatal, "translates only through p_vaddr (vaddr_to_offset), exit 30"))
		return
	}
	c.pass(F2, "prb, the ring and its three arrays each lie in one p_vaddr segment")
}
