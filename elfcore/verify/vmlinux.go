package verify

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"ldx/elfcore/vmlinux"
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

// checkVmlinux runs V1–V7.
func (c *checker) checkVmlinux() {
	v := c.opt.Vmlinux
	if v == nil {
		return
	}
	ids := []string{"V1", "V2", "V3", "V4", "V5", "V6", "V7"}
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
		c.skip("V3", err.Error())
	} else {
		c.checkSymbols(v, ko, how)
	}
	c.checkLayout(v)
}

// checkBuildID is V1.
func (c *checker) checkBuildID(v *vmlinux.File) {
	want := v.BuildID()
	got, ok := c.info.BuildID()
	switch {
	case want == nil:
		c.skip("V1", "the vmlinux has no .note.gnu.build-id")
	case !ok:
		c.skip("V1", "VMCOREINFO has no BUILD-ID (kernels before 5.9 do not write it); V2 compares the release and banner")
	case !v.MatchesBuildID(got):
		c.fail("V1", fmt.Sprintf("VMCOREINFO BUILD-ID=%s, the vmlinux (%s) has %x", got, v.Path(), want), fixWrongVmlinux,
			at("VMCOREINFO BUILD-ID", c.vmciLineOff("BUILD-ID")), vmMismatch()...)
	default:
		c.pass("V1", fmt.Sprintf("BUILD-ID %x in both", want))
	}
}

// checkVmRelease is V2: OSRELEASE and, read from the dumped memory, the
// whole linux_banner (release, builder, build number and date: it tells
// builds apart where the release string does not).
func (c *checker) checkVmRelease(v *vmlinux.File) {
	rel, err := v.Release()
	if err != nil {
		c.skip("V2", fmt.Sprintf("the vmlinux's release: %v", err))
		return
	}
	osrel, ok := c.info.OSRelease()
	if !ok {
		c.skip("V2", "VMCOREINFO has no OSRELEASE (D3)")
		return
	}
	if osrel != rel {
		c.fail("V2", fmt.Sprintf("OSRELEASE=%s, the vmlinux is %s", osrel, rel), fixWrongVmlinux,
			at("VMCOREINFO OSRELEASE", c.vmciLineOff("OSRELEASE")), vmMismatch()...)
		return
	}
	found := fmt.Sprintf("release %s in both", rel)
	if banner, ok := c.bannerCompare(v); ok && banner != "" {
		c.fail("V2", found+"; but "+banner, fixWrongVmlinux, nowhere, vmMismatch()...)
		return
	} else if ok {
		found += "; linux_banner in memory equals the vmlinux's"
	}
	c.pass("V2", found)
}

// bannerCompare reads linux_banner from the dump (at its symbol plus the
// KASLR offset) and compares it with the vmlinux's. ok is false when it
// cannot be read; diff is "" when equal.
func (c *checker) bannerCompare(v *vmlinux.File) (diff string, ok bool) {
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
func (c *checker) pointerValue(addr uint64) (uint64, bool) {
	if c.mkd == nil {
		return 0, false
	}
	p, err := c.mkd.Uint64(addr)
	return p, err == nil
}

// checkSymbols is V3: every SYMBOL() equals the vmlinux symbol plus the
// KASLR offset.
func (c *checker) checkSymbols(v *vmlinux.File, ko uint64, how string) {
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
		link, err := symbolValue(v, name)
		if name == "vmemmap" && errors.Is(err, vmlinux.ErrNotFound) {
			// x86_64's vmemmap is (struct page *)vmemmap_base: the
			// kernel printed the variable's runtime value.
			if base, err := v.Symbol("vmemmap_base"); err == nil {
				if p, ok := c.pointerValue(base + ko); ok {
					if p != got {
						bad = append(bad, fmt.Sprintf("%s=%x, vmemmap_base in memory holds %#x", l.Key, got, p))
						if firstBad == "" {
							firstBad = l.Key
						}
					}
					continue
				}
			}
		}
		if errors.Is(err, vmlinux.ErrNotFound) {
			unknown = append(unknown, name)
			continue
		} else if err != nil {
			unknown = append(unknown, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		if got == link+ko {
			continue
		}
		if p, ok := c.pointerValue(link + ko); ok && p == got {
			continue // VMCOREINFO_SYMBOL_ARRAY of a pointer: its value
		}
		if firstBad == "" {
			firstBad = l.Key
		}
		bad = append(bad, fmt.Sprintf("%s=%x, vmlinux %#x + %#x = %#x", l.Key, got, link, ko, link+ko))
	}
	var notChecked string
	if len(unknown) > 0 {
		notChecked = fmt.Sprintf("; not symbols of the vmlinux (runtime values, not checked): %s", strings.Join(unknown, ", "))
	}
	switch {
	case len(bad) > 0:
		c.fail("V3", fmt.Sprintf("%d of %d SYMBOL() entries differ (%s): %s%s", len(bad), n, how, strings.Join(firstN(bad, 6), "; "), notChecked), fixWrongVmlinux,
			at("VMCOREINFO "+firstBad, c.vmciLineOff(firstBad)), append(vmMismatch(), vmciWrong()...)...)
	case n == 0:
		c.skip("V3", "VMCOREINFO has no SYMBOL() entries")
	default:
		c.pass("V3", fmt.Sprintf("%d SYMBOL() entries equal the vmlinux's symbols + %s%s", n-len(unknown), how, notChecked))
	}
}

// layoutKinds are the VMCOREINFO key families compared with DWARF (V4–V7).
var layoutKinds = []struct {
	id, prefix, what string
}{
	{"V4", "OFFSET(", "member offsets"},
	{"V5", "SIZE(", "type sizes"},
	{"V6", "LENGTH(", "array lengths"},
	{"V7", "NUMBER(", "enumerator values"},
}

// checkLayout is V4–V7: OFFSET(), SIZE(), LENGTH() and NUMBER() entries
// against the vmlinux's DWARF.
func (c *checker) checkLayout(v *vmlinux.File) {
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
			want, err := c.layoutValue(v, k.id, name)
			if err != nil {
				var le *vmlinux.LookupError
				if errors.As(err, &le) && errors.Is(err, vmlinux.ErrNotFound) && (k.id == "V4" || k.id == "V5") {
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

// symbolValue is the link-time value the kernel's VMCOREINFO_SYMBOL(name)
// takes. Two x86_64 names are macros, not symbols: swapper_pg_dir is
// init_top_pgt, and node_online_map is node_states[N_ONLINE].
func symbolValue(v *vmlinux.File, name string) (uint64, error) {
	a, err := v.Symbol(name)
	if err == nil || !errors.Is(err, vmlinux.ErrNotFound) {
		return a, err
	}
	switch name {
	case "swapper_pg_dir":
		return v.Symbol("init_top_pgt")
	case "node_online_map":
		base, err1 := v.Symbol("node_states")
		idx, err2 := v.Enum("N_ONLINE")
		size, err3 := v.StructSize("nodemask_t")
		if err := errors.Join(err1, err2, err3); err != nil {
			return 0, err
		}
		return base + uint64(idx*size), nil
	}
	return a, err
}

// lengthValue is what VMCOREINFO_LENGTH(name, …) printed where name is not
// a DWARF array: the printk dictionary fields are sizeof members of
// dev_printk_info; mem_section's length is NR_SECTION_ROOTS, computed the
// way include/linux/mmzone.h does from the dump's own MAX_PHYSMEM_BITS,
// SECTION_SIZE_BITS and PAGESIZE (SPARSEMEM_EXTREME: mem_section is a
// pointer to roots of PAGE_SIZE / sizeof(struct mem_section) entries).
func (c *checker) lengthValue(v *vmlinux.File, name string) (int64, error) {
	switch name {
	case "printk_info_subsystem", "printk_info_device":
		m, err := v.Member("dev_printk_info", strings.TrimPrefix(name, "printk_info_"))
		if err != nil {
			return 0, errNotDWARF
		}
		return m.Size, nil
	case "mem_section":
		if n, err := v.VarArrayLen(name); err == nil {
			return n, nil // SPARSEMEM without EXTREME: an array of NR_SECTION_ROOTS
		}
		phys, ok1 := c.info.Number("MAX_PHYSMEM_BITS")
		sect, ok2 := c.info.Number("SECTION_SIZE_BITS")
		page, ok3 := c.info.PageSize()
		size, err := v.StructSize("mem_section")
		if !ok1 || !ok2 || !ok3 || err != nil || size <= 0 || phys < sect || phys-sect > 40 || int64(page) < size {
			return 0, errNotDWARF
		}
		perRoot := int64(page) / size
		return ((int64(1) << (phys - sect)) + perRoot - 1) / perRoot, nil // DIV_ROUND_UP, as mmzone.h
	}
	return 0, errNotDWARF
}

// layoutValue computes what the kernel's macro would have printed for a
// key, from DWARF: VMCOREINFO_OFFSET is offsetof, VMCOREINFO_SIZE and
// _STRUCT_SIZE sizeof, VMCOREINFO_LENGTH an array's element count (of a
// member "type.member", or of a global array), VMCOREINFO_NUMBER an
// enumerator (and PG_head_mask, 1 << PG_head).
func (c *checker) layoutValue(v *vmlinux.File, id, name string) (int64, error) {
	switch id {
	case "V4":
		typ, member, ok := strings.Cut(name, ".")
		if !ok {
			return 0, errNotDWARF
		}
		return v.MemberOffset(typ, member)
	case "V5":
		return v.StructSize(name)
	case "V6":
		if typ, member, ok := strings.Cut(name, "."); ok {
			m, err := v.Member(typ, member)
			if err != nil {
				return 0, err
			}
			if m.ArrayLen < 0 {
				return 0, errNotDWARF
			}
			return m.ArrayLen, nil
		}
		if n, err := c.lengthValue(v, name); err == nil {
			return n, nil
		}
		n, err := v.VarArrayLen(name)
		if err != nil {
			return 0, errNotDWARF
		}
		return n, nil
	case "V7":
		if name == "PG_head_mask" {
			b, err := v.Enum("PG_head")
			if err != nil {
				return 0, errNotDWARF
			}
			return 1 << b, nil
		}
		if !strings.HasPrefix(name, "PG_") && !strings.HasPrefix(name, "NR_") {
			return 0, errNotDWARF // layout constants and runtime values
		}
		n, err := v.Enum(name)
		if err != nil {
			return 0, errNotDWARF
		}
		return n, nil
	}
	return 0, errNotDWARF
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
func (c *checker) vmciLineOff(key string) int64 {
	if c.vmci == nil || key == "" {
		return -1
	}
	i := bytes.Index(c.vmci.Desc, []byte(key+"="))
	if i < 0 {
		return -1
	}
	return c.vmci.Off + 24 + int64(i)
}
