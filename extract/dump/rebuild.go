package dump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"ldx/elfcore"
	"ldx/elfcore/vmlinux"
	"ldx/vmcoreinfo"
	"ldx/vmcoreinfo/generate"
)

// rebuilt is a VMCOREINFO made from the debug vmlinux and the dumped
// memory, for a dump whose own text is lost.
type rebuilt struct {
	text     []byte
	source   string   // for Report.VMCOREINFO
	repair   string   // what was done, for Report.Repairs
	warnings []string // disagreements and keys left out
}

// rebuildVMCOREINFO generates the kernel's VMCOREINFO (vmcoreinfo/generate)
// with the runtime values found in the dumped memory: the image is located
// by the vmlinux's linux_banner (kmem.Locate: KERNELOFFSET, phys_base,
// paging depth, SME bit), and the variables the kernel prints are read
// through the page tables. survived is whatever of the kernel's own text
// reached the dump (the part of the notes page a livedump kept): it must
// agree with the vmlinux, and its CRASHTIME is kept.
func rebuildVMCOREINFO(ctx context.Context, phys io.ReaderAt, ram []elfcore.Range, v *vmlinux.File, survived []byte) (*rebuilt, error) {
	var old *vmcoreinfo.Info
	if len(survived) > 0 {
		// Only complete lines count: the last one may be cut.
		if i := bytes.LastIndexByte(survived, '\n'); i >= 0 {
			old, _ = vmcoreinfo.ParseLenient(survived[:i+1])
		}
	}
	if old != nil {
		if id, ok := old.BuildID(); ok && len(v.BuildID()) > 0 && !v.MatchesBuildID(id) {
			return nil, fmt.Errorf("the surviving VMCOREINFO says BUILD-ID=%s but the vmlinux %s has %x: it is not this kernel's vmlinux", id, v.Path(), v.BuildID())
		}
	}
	rt, _, err := generate.RuntimeFromDump(ctx, v, phys, ram, nil)
	if errors.Is(err, context.Canceled) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("finding the kernel image of %s in the dumped memory: %w (is it this kernel's vmlinux?)", v.Path(), err)
	}
	loc := rt.Location
	res, err := generate.Generate(v, rt)
	if err != nil {
		return nil, err
	}
	out := &rebuilt{text: res.Text()}
	// The kernel's own surviving lines are the judge of the generated ones.
	agree, differ := 0, []string{}
	if old != nil {
		for _, l := range old.Lines() {
			if l.Key == vmcoreinfo.KeyCrashTime {
				continue
			}
			if g, ok := res.Get(l.Key); ok {
				if g == l.Value {
					agree++
				} else {
					differ = append(differ, fmt.Sprintf("%s (kernel %s, rebuilt %s)", l.Key, l.Value, g))
				}
			}
		}
		if len(differ) > 0 {
			out.warnings = append(out.warnings, fmt.Sprintf("the rebuilt VMCOREINFO differs from the %d surviving lines of the kernel's own in %s", agree+len(differ), strings.Join(differ, ", ")))
		}
		if ct, ok := old.Get(vmcoreinfo.KeyCrashTime); ok {
			out.text = append(out.text, vmcoreinfo.KeyCrashTime+"="+ct+"\n"...)
		}
	}
	var unknown []string
	for _, u := range res.Unknown {
		if u.Key == vmcoreinfo.KeyCrashTime && old != nil && old.Has(vmcoreinfo.KeyCrashTime) {
			continue
		}
		unknown = append(unknown, u.Key)
	}
	if len(unknown) > 0 {
		out.warnings = append(out.warnings, fmt.Sprintf("the rebuilt VMCOREINFO lacks %s: a vmlinux and the dumped memory cannot give them", strings.Join(unknown, ", ")))
	}
	out.source = fmt.Sprintf("a rebuild from the vmlinux %s (build-id %x) and the dumped memory", v.Path(), v.BuildID())
	out.repair = fmt.Sprintf("rebuilt VMCOREINFO (%d lines) from the vmlinux %s: the kernel image found in the dumped memory by its linux_banner at %#x (KERNELOFFSET %x, phys_base %#x, %d-level paging), the printed variables read from memory",
		len(res.Lines), v.Path(), loc.BannerPhys, loc.KernelOffset, loc.PhysBase, map[bool]int{false: 4, true: 5}[loc.L5])
	if old != nil {
		out.repair += fmt.Sprintf("; %d of the kernel's surviving lines agree", agree)
	}
	return out, nil
}
