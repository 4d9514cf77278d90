package verify

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"ldx/elfcore/vmlinux"
	"ldx/vmcoreinfo/generate"
)

// The V checks run only with a vmlinux (Options.Vmlinux): they prove the
// dump and the debug image belong together — the same build, symbols at
// the same places once the KASLR offset is added, the same type layouts —
// so that crash and drgn, which take everything from the vmlinux, read
// what makedumpfile, which takes everything from VMCOREINFO, reads.
//
// A failed V1/V2 means the wrong vmlinux (crash refuses it: "vmlinux and
// DUMP do not match!"; drgn reads garbage). A failed V3–V7 with a
// matching build means VMCOREINFO lies about this kernel: makedumpfile
// follows it into the wrong fields.

// vmMismatch is the effect of a dump and a vmlinux that are not one build.
func vmMismatch() []Effect {
	return []Effect{
		eff(Crash, Fatal, "\"WARNING: kernel version inconsistency\" / \"vmlinux and DUMP do not match!\": crash refuses the pair"),
		eff(Drgn, Fatal, "reads every structure with the wrong layout and symbols: wrong results or errors"),
	}
}

// vmciWrong is the effect of VMCOREINFO values that disagree with the
// kernel's own debug information.
func vmciWrong() []Effect {
	return []Effect{
		eff(Makedumpfile, Fatal, "follows the wrong VMCOREINFO values: page filtering and --dump-dmesg read the wrong fields"),
		eff(Crash, Degraded, "crash uses the vmlinux, but its VMCOREINFO-based fallbacks (e.g. without symbols) are wrong"),
	}
}

const fixWrongVmlinux = "use the vmlinux of the dumped build: the -dbg package of the kernel version OSRELEASE names, whose build-id equals BUILD-ID (`ldx vmcoreinfo FILE --key BUILD-ID`)"

// vmlinuxChecks runs V1–V7 (with Options.Vmlinux).
func vmlinuxChecks(f *facts) []Result {
	c := f.newGroup()
	c.checkVmlinux()
	return c.out
}

func (c *group) checkVmlinux() {
	v := c.opt.Vmlinux
	if v == nil {
		return
	}
	ids := []ID{V1, V2, V3, V4, V5, V6, V7}
	if c.info == nil {
		for _, id := range ids {
			c.skip(id, "no VMCOREINFO to compare with the vmlinux (D1)")
		}
		return
	}
	c.checkBuildID(v)
	c.checkVmRelease(v)
	ko, how, err := v.KASLROffset(c.info)
	if err != nil {
		c.skip(V3, err.Error())
	} else {
		c.checkSymbols(v, ko, how)
	}
	c.checkLayout(v, ko)
}

// checkBuildID is V1.
func (c *group) checkBuildID(v *vmlinux.File) {
	want := v.BuildID()
	got, ok := c.info.BuildID()
	switch {
	case want == nil:
		c.skip(V1, "the vmlinux has no .note.gnu.build-id")
	case !ok:
		c.skip(V1, "VMCOREINFO has no BUILD-ID (kernels before 5.9 do not write it); V2 compares the release and banner")
	case !v.MatchesBuildID(got):
		c.fail(V1, fmt.Sprintf("VMCOREINFO BUILD-ID=%s, the vmlinux (%s) has %x", got, v.Path(), want), fixWrongVmlinux,
			at("VMCOREINFO BUILD-ID", c.vmciLineOff("BUILD-ID")), vmMismatch()...)
	default:
		c.pass(V1, fmt.Sprintf("BUILD-ID %x in both", want))
	}
}

// checkVmRelease is V2: OSRELEASE and, read from the dumped memory, the
// whole linux_banner (release, builder, build number and date: it tells
// builds apart where the release string does not).
func (c *group) checkVmRelease(v *vmlinux.File) {
	rel, err := v.Release()
	if err != nil {
		c.skip(V2, fmt.Sprintf("the vmlinux's release: %v", err))
		return
	}
	osrel, ok := c.info.OSRelease()
	if !ok {
		c.skip(V2, "VMCOREINFO has no OSRELEASE (D3)")
		return
	}
	if osrel != rel {
		c.fail(V2, fmt.Sprintf("OSRELEASE=%s, the vmlinux is %s", osrel, rel), fixWrongVmlinux,
			at("VMCOREINFO OSRELEASE", c.vmciLineOff("OSRELEASE")), vmMismatch()...)
		return
	}
	found := fmt.Sprintf("release %s in both", rel)
	if banner, ok := c.bannerCompare(v); ok && banner != "" {
		c.fail(V2, found+"; but "+banner, fixWrongVmlinux, nowhere, vmMismatch()...)
		return
	} else if ok {
		found += "; linux_banner in memory equals the vmlinux's"
	}
	c.pass(V2, found)
}

// bannerCompare reads linux_banner from the dump (at its symbol plus the
// KASLR offset) and compares it with the vmlinux's. ok is false when it
// cannot be read; diff is "" when equal.
func (c *facts) bannerCompare(v *vmlinux.File) (diff string, ok bool) {
	if c.mkd == nil {
		return "", false
	}
	ko, _, errKO := v.KASLROffset(c.info)
	addr, err := v.Symbol("linux_banner")
	if errKO != nil || err != nil {
		return "", false
	}
	want, err := v.Banner()
	if err != nil {
		return "", false
	}
	got := make([]byte, len(want)+1) // and its NUL
	if _, err := c.mkd.ReadAt(got, int64(addr+ko)); err != nil {
		return "", false
	}
	cut := func(b []byte) string {
		s := string(b)
		if i := strings.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		return strings.TrimSpace(s)
	}
	if cut(got) == cut(want) {
		return "", true
	}
	return fmt.Sprintf("linux_banner in memory is %q, the vmlinux's is %q", truncate(cut(got), 120), truncate(cut(want), 120)), true
}

// pointerValue reads the pointer stored at a kernel address: SYMBOL() keys
// the kernel writes with VMCOREINFO_SYMBOL_ARRAY for a pointer hold its
// value, not the variable's address (mem_section under SPARSEMEM_EXTREME).
func (c *facts) pointerValue(addr uint64) (uint64, bool) {
	if c.mkd == nil {
		return 0, false
	}
	p, err := c.mkd.Uint64(addr)
	return p, err == nil
}

// checkSymbols is V3: every SYMBOL() equals the vmlinux symbol plus the
// KASLR offset.
func (c *group) checkSymbols(v *vmlinux.File, ko uint64, how string) {
	rt := c.vmRuntime(ko)
	var bad, unknown []string
	n := 0
	firstBad := ""
	for _, l := range c.info.Lines() {
		name, ok := strings.CutPrefix(l.Key, "SYMBOL(")
		if !ok || !strings.HasSuffix(name, ")") {
			continue
		}
		name = strings.TrimSuffix(name, ")")
		got, err := strconv.ParseUint(l.Value, 16, 64)
		if err != nil {
			continue // D2 reports malformed values
		}
		n++
		want, err := c.expected(v, rt, l.Key)
		if errors.Is(err, vmlinux.ErrNotFound) || errors.Is(err, errNotDWARF) {
			unknown = append(unknown, name)
			continue
		} else if err != nil {
			unknown = append(unknown, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		if w, _ := strconv.ParseUint(want, 16, 64); w == got {
			continue
		}
		if link, err := v.Symbol(name); err == nil {
			if p, ok := c.pointerValue(link + ko); ok && p == got {
				continue // VMCOREINFO_SYMBOL_ARRAY of a pointer the kernel table does not know
			}
		}
		if firstBad == "" {
			firstBad = l.Key
		}
		bad = append(bad, fmt.Sprintf("%s=%x, the vmlinux + %#x gives %s", l.Key, got, ko, want))
	}
	var notChecked string
	if len(unknown) > 0 {
		notChecked = fmt.Sprintf("; not symbols of the vmlinux (runtime values, not checked): %s", strings.Join(unknown, ", "))
	}
	switch {
	case len(bad) > 0:
		c.fail(V3, fmt.Sprintf("%d of %d SYMBOL() entries differ (%s): %s%s", len(bad), n, how, strings.Join(firstN(bad, 6), "; "), notChecked), fixWrongVmlinux,
			at("VMCOREINFO "+firstBad, c.vmciLineOff(firstBad)), append(vmMismatch(), vmciWrong()...)...)
	case n == 0:
		c.skip(V3, "VMCOREINFO has no SYMBOL() entries")
	default:
		c.pass(V3, fmt.Sprintf("%d SYMBOL() entries equal the vmlinux's symbols + %s%s", n-len(unknown), how, notChecked))
	}
}

// layoutKinds are the VMCOREINFO key families compared with DWARF (V4–V7).
var layoutKinds = []struct {
	id           ID
	prefix, what string
}{
	{V4, "OFFSET(", "member offsets"},
	{V5, "SIZE(", "type sizes"},
	{V6, "LENGTH(", "array lengths"},
	{V7, "NUMBER(", "enumerator values"},
}

// checkLayout is V4–V7: OFFSET(), SIZE(), LENGTH() and NUMBER() entries
// against the vmlinux's DWARF.
func (c *group) checkLayout(v *vmlinux.File, ko uint64) {
	rt := c.vmRuntime(ko)
	for _, k := range layoutKinds {
		var bad, unknown []string
		n, checked := 0, 0
		firstBad := ""
		var dwErr error
		for _, l := range c.info.Lines() {
			name, ok := strings.CutPrefix(l.Key, k.prefix)
			if !ok || !strings.HasSuffix(name, ")") {
				continue
			}
			name = strings.TrimSuffix(name, ")")
			got, err := strconv.ParseInt(l.Value, 10, 64)
			if err != nil {
				continue
			}
			n++
			if k.id == V7 && name != "PG_head_mask" && !strings.HasPrefix(name, "PG_") && !strings.HasPrefix(name, "NR_") {
				unknown = append(unknown, name) // layout constants and runtime values
				continue
			}
			want, err := c.layoutValue(v, rt, l.Key)
			if err != nil {
				var le *vmlinux.LookupError
				if errors.As(err, &le) && errors.Is(err, vmlinux.ErrNotFound) && (k.id == V4 || k.id == V5) {
					// The kernel wrote it because its build has it.
					bad = append(bad, fmt.Sprintf("%s: the vmlinux has no %s %s", l.Key, le.Kind, le.Name))
					if firstBad == "" {
						firstBad = l.Key
					}
				} else if errors.As(err, &le) || errors.Is(err, errNotDWARF) {
					unknown = append(unknown, name)
				} else {
					dwErr = err
				}
				continue
			}
			checked++
			if want != got {
				bad = append(bad, fmt.Sprintf("%s=%d, DWARF says %d", l.Key, got, want))
				if firstBad == "" {
					firstBad = l.Key
				}
			}
		}
		if dwErr != nil && checked == 0 {
			c.skip(k.id, fmt.Sprintf("the vmlinux's DWARF cannot be read: %v", dwErr))
			continue
		}
		family := strings.TrimSuffix(k.prefix, "(") + "()"
		var notChecked string
		if len(unknown) > 0 {
			notChecked = fmt.Sprintf("; not in DWARF (macros or runtime values, not checked): %s", strings.Join(firstN(unknown, 12), ", "))
		}
		switch {
		case len(bad) > 0:
			c.fail(k.id, fmt.Sprintf("%d of %d %s entries differ from the vmlinux's %s: %s%s", len(bad), n, family, k.what, strings.Join(firstN(bad, 6), "; "), notChecked), fixWrongVmlinux,
				at("VMCOREINFO "+firstBad, c.vmciLineOff(firstBad)), append(vmMismatch(), vmciWrong()...)...)
		case checked == 0:
			c.skip(k.id, fmt.Sprintf("no %s entry can be checked against DWARF (%d in VMCOREINFO)%s", family, n, notChecked))
		default:
			c.pass(k.id, fmt.Sprintf("%d of %d %s entries equal the vmlinux's %s%s", checked, n, family, k.what, notChecked))
		}
	}
}

var errNotDWARF = errors.New("not a DWARF entity")

// vmRuntime is what the dump says about the running kernel, for
// generate.Value: the KASLR offset, the addressing keys, and memory to
// read the variables the kernel printed (mem_section, vmemmap_base).
func (c *facts) vmRuntime(ko uint64) *generate.Runtime {
	rt := &generate.Runtime{KernelOffset: ko, PhysBase: c.physBase}
	if c.mkd != nil {
		rt.Mem = c.mkd
	}
	return rt
}

// expected is the value the kernel of v printed for key, as
// vmcoreinfo/generate computes it (macros such as swapper_pg_dir,
// node_online_map, NR_SECTION_ROOTS, PG_head_mask, the printk dictionary
// sizes, and the runtime vmemmap and mem_section values read from memory).
// A key generate's table does not have is computed the plain way: a
// symbol plus the KASLR offset, offsetof, sizeof, an array's length, an
// enumerator.
func (c *facts) expected(v *vmlinux.File, rt *generate.Runtime, key string) (string, error) {
	want, _, err := generate.Value(v, rt, key)
	if !errors.Is(err, generate.ErrNoKey) {
		return want, err
	}
	kind, name, _ := strings.Cut(strings.TrimSuffix(key, ")"), "(")
	typ, member, dotted := strings.Cut(name, ".")
	var n int64
	switch {
	case kind == "SYMBOL":
		a, err := v.Symbol(name)
		return strconv.FormatUint(a+rt.KernelOffset, 16), err
	case kind == "OFFSET" && dotted:
		n, err = v.MemberOffset(typ, member)
	case kind == "SIZE":
		n, err = v.StructSize(name)
	case kind == "LENGTH" && dotted:
		var m vmlinux.Member
		if m, err = v.Member(typ, member); err == nil && m.ArrayLen < 0 {
			err = errNotDWARF
		}
		n = m.ArrayLen
	case kind == "LENGTH":
		if n, err = v.VarArrayLen(name); err != nil {
			err = errNotDWARF
		}
	case kind == "NUMBER":
		if n, err = v.Enum(name); err != nil {
			err = errNotDWARF
		}
	default:
		err = errNotDWARF
	}
	return strconv.FormatInt(n, 10), err
}

// layoutValue is expected for the decimal families (V4–V7).
func (c *facts) layoutValue(v *vmlinux.File, rt *generate.Runtime, key string) (int64, error) {
	want, err := c.expected(v, rt, key)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(want, 10, 64)
	if err != nil {
		return 0, errNotDWARF
	}
	return n, nil
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string(nil), s[:n]...), fmt.Sprintf("… %d more", len(s)-n))
}

// vmciLineOff is the file offset of a VMCOREINFO line ("KEY=" in the
// note's descriptor, which starts 24 bytes after the note header:
// 12 bytes of header, "VMCOREINFO\0" padded to 12), -1 if unknown.
func (c *facts) vmciLineOff(key string) int64 {
	if c.vmci == nil || key == "" {
		return -1
	}
	i := bytes.Index(c.vmci.Desc, []byte(key+"="))
	if i < 0 {
		return -1
	}
	return c.vmci.Off + 24 + int64(i)
}
