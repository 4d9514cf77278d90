package verify

import (
	"errors"
	"fmt"
	"ldx/elfcore"
	"strings"

	"ldx/elfcore/kernel/kmem"
)

// makedumpfile's read model. makedumpfile takes phys_base as crash does
// (crashPhysBase), roots its page walk at SYMBOL(init_top_pgt) − KTEXT +
// phys_base, walks the page tables for every virtual address, and reads
// physical memory first-match in program-header order (closest_pt_load).
// That walk (facts.mkd) is built once in the fact-finding phase; E2, E3,
// E5, F1 and the kallsyms read use it. Its own start-up step checked here
// is mem_section (E5).

// walker returns a makedumpfile-style page walk with the given phys_base
// over the first-match physical view.
func (c *facts) walker(pb uint64) (*kmem.Mem, error) {
	x := c.xlat()
	if !x.haveRoot {
		return nil, errors.New("VMCOREINFO has no SYMBOL(init_top_pgt) (D6)")
	}
	return kmem.New(c.first, kmem.Params{PgtRoot: x.root, PhysBase: pb, L5: x.l5, SMEMask: x.sme})
}

// checkMemSection is E5: makedumpfile's initial() builds the mem_map from
// mem_section for -d 31 and --dump-dmesg alike.
func (c *group) checkMemSection() {
	if len(c.missing["D12"]) > 0 {
		for _, r := range c.missing["D12"] {
			if strings.Contains(r.Key, "mem_section") {
				c.skip(E5, "VMCOREINFO lacks the mem_section keys (D12)")
				return
			}
		}
	}
	if c.mkd == nil {
		c.skip(E5, c.mkdErr.Error())
		return
	}
	// makedumpfile falls back to x86_64's _SECTION_SIZE_BITS (27) without
	// NUMBER(SECTION_SIZE_BITS); kmem needs the key, so lend it.
	info := c.info
	if !info.Has("NUMBER(SECTION_SIZE_BITS)") {
		info = info.Clone()
		info.SetNumber("SECTION_SIZE_BITS", 27)
	}
	secs, err := c.mkd.PresentSections(info)
	if err != nil {
		c.fail(E5, err.Error(), "the dump lacks the memory holding mem_section, or VMCOREINFO's keys are wrong", at("VMCOREINFO SYMBOL(mem_section)", c.vmci.Off+24),
			eff(Makedumpfile, Fatal, "get_mem_section: \"Could not validate mem_section.\" — -d 31 and --dump-dmesg fail"))
		return
	}
	total := elfcore.Covered(secs)
	ram := c.first.Ranges()
	var top uint64
	if len(ram) > 0 {
		top = ram[len(ram)-1].End
	}
	if c.livedump || top == 0 || secs[0].Start < top {
		c.pass(E5, fmt.Sprintf("%s of present memory sections, the first at %#x", mib(total), secs[0].Start))
		return
	}
	c.fail(E5, fmt.Sprintf("the present memory sections start at %#x, above every PT_LOAD (ending at %#x)", secs[0].Start, top), "mem_section does not describe this memory", nowhere,
		eff(Makedumpfile, Fatal, "builds its page map from mem_section"))
}
