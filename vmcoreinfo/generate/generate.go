// Package generate writes the VMCOREINFO text an x86_64 Linux kernel would
// have emitted, from its debug vmlinux and, when there is one, a dump of
// it: the kernel's key set, in its order and its printf formats.
//
// The kernel builds the text once at boot (crash_save_vmcoreinfo_init in
// kernel/crash_core.c, kernel/vmcore_info.c from 6.9; the printk keys in
// log_buf_vmcoreinfo_setup, the x86 keys in arch_crash_save_vmcoreinfo).
// table.go mirrors those functions line by line, as a union over kernel
// versions: each line says which source it mirrors and the condition under
// which a kernel emits it, decided from the vmlinux itself — a symbol or
// DWARF member, struct or enumerator that exists only in the kernels (or
// configurations) that print the line. Values come from the vmlinux
// (symbols plus the KASLR offset, DWARF sizes, offsets, array lengths and
// enumerators), from x86_64 constants where the kernel prints a macro that
// DWARF does not hold, and from the dump for what only the running kernel
// knew (phys_base, the randomised vmalloc and vmemmap bases, the
// mem_section pointer, 5-level paging).
//
// Nothing is guessed: a key whose value is not known is left out of the
// text and listed with the reason, so that a consumer reading the result
// never takes a link-time placeholder for a runtime value.
package generate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"ldx/elfcore/kernel/kmem"
	"ldx/elfcore/vmlinux"
)

// Vmlinux is what generation reads from a debug vmlinux;
// *vmlinux.File implements it.
type Vmlinux interface {
	BuildID() []byte
	Release() (string, error)
	Banner() ([]byte, error)
	Symbol(name string) (uint64, error)
	ReadData(addr uint64, p []byte) error
	StructSize(name string) (int64, error)
	Member(typ, member string) (vmlinux.Member, error)
	Enum(name string) (int64, error)
	VarArrayLen(name string) (int64, error)
	VarTypeName(name string) (string, error)
}

// Runtime are the running kernel's values, from a dump. The addressing
// values come from the dump's own VMCOREINFO when it has them, else from
// kmem.Locate.
type Runtime struct {
	KernelOffset uint64 // KERNELOFFSET: runtime − link-time address of the image
	PhysBase     uint64 // phys_base
	PgtableL5    bool   // 5-level paging
	SMEMask      uint64 // sme_me_mask
	// Mem reads kernel virtual memory (a *kmem.Mem): the variables the
	// kernel printed are read from it, and the fields above are only the
	// fallback when it is nil or a read fails. Nil leaves the keys that
	// only memory can give (the mem_section pointer, the randomised
	// vmalloc and vmemmap bases) unknown.
	Mem io.ReaderAt
	// Location is where kmem.Locate found the image, when the values
	// above came from it (RuntimeFromDump without usable VMCOREINFO).
	Location *kmem.Location
}

// Origin says where a value came from.
type Origin string

const (
	FromVmlinux  Origin = "vmlinux"  // symbols, DWARF, initialised data
	FromConstant Origin = "constant" // an x86_64 macro the kernel prints, not in DWARF
	FromDump     Origin = "dump"     // the running kernel's memory or addressing values
	Assumed      Origin = "assumed"  // no dump: the link-time value (KERNELOFFSET=0)
)

// Line is one key of the generated VMCOREINFO.
type Line struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Origin Origin `json:"origin"`
	// Source names the kernel code the line mirrors.
	Source string `json:"source"`
}

// Omitted is a key the kernel emits whose value is not known here.
type Omitted struct {
	Key    string   `json:"key"`
	Reason string   `json:"reason"`
	Kind   OmitKind `json:"kind"`
}

// OmitKind says why a key is not known: whether it is expected (the
// running kernel's value, no dump given; CRASHTIME) or a failure.
type OmitKind string

const (
	// CrashTime: CRASHTIME, which no generation can know.
	CrashTime OmitKind = "crash-time"
	// NeedsDump: only the running kernel had the value, and no dump (or no
	// dump memory) was given.
	NeedsDump OmitKind = "needs-dump"
	// DumpUnreadable: the dump was given but the value could not be read
	// from its memory.
	DumpUnreadable OmitKind = "dump-unreadable"
	// NotInVmlinux: the vmlinux does not give what the kernel prints (a
	// damaged vmlinux, or a kernel whose source differs from the table).
	NotInVmlinux OmitKind = "vmlinux"
	// Unsupported: a part of the kernel's emission this package does not
	// generate (the log_buf keys of kernels before 5.10).
	Unsupported OmitKind = "unsupported"
)

// Expected reports whether an omission is expected from the inputs given
// rather than a failure: CRASHTIME, and runtime values without a dump.
func (o Omitted) Expected() bool { return o.Kind == CrashTime || o.Kind == NeedsDump }

// Result is a generated VMCOREINFO.
type Result struct {
	Release string    `json:"release"`
	Lines   []Line    `json:"lines"`
	Unknown []Omitted `json:"unknown"`
	// Warnings are disagreements noticed on the way (a dump value that
	// contradicts the addressing values given).
	Warnings []string `json:"warnings"`
}

// vmcoreinfoBytes is VMCOREINFO_BYTES (PAGE_SIZE): the kernel's buffer.
const vmcoreinfoBytes = 4096

// appendLimit is the size of vmcoreinfo_append_str's stack buffer (0x50)
// less the NUL: vscnprintf writes at most this many characters per line.
const appendLimit = 0x50 - 1

// Text returns the VMCOREINFO note text as the kernel would hold it: each
// line cut where vmcoreinfo_append_str cuts it, the whole cut at
// VMCOREINFO_BYTES.
func (r *Result) Text() []byte {
	var b []byte
	for _, l := range r.Lines {
		s := l.Key + "=" + l.Value + "\n"
		if len(s) > appendLimit {
			s = s[:appendLimit]
		}
		s = s[:min(len(s), vmcoreinfoBytes-len(b))]
		b = append(b, s...)
	}
	return b
}

// Get returns a generated key's value.
func (r *Result) Get(key string) (string, bool) {
	for _, l := range r.Lines {
		if l.Key == key {
			return l.Value, true
		}
	}
	return "", false
}

// crashTime is the one key no generation can know: crash_save_vmcoreinfo
// appends it when the kernel crashes (or a livedump is taken).
var crashTime = Omitted{Key: "CRASHTIME", Kind: CrashTime, Reason: "appended by crash_save_vmcoreinfo() at crash (or live dump) time, never at boot: a vmlinux cannot know it, and a dump keeps it only in its own VMCOREINFO"}

// unknownError marks a value that is not known (as opposed to a failure
// to read the vmlinux).
type unknownError struct {
	kind   OmitKind
	reason string
}

func (e *unknownError) Error() string { return e.reason }

func unknown(kind OmitKind, format string, a ...any) error {
	return &unknownError{kind, fmt.Sprintf(format, a...)}
}

// because prefixes an unknown value's reason with why a key depends on
// it, keeping its kind; other errors pass unchanged.
func because(err error, format string, a ...any) error {
	var ue *unknownError
	if errors.As(err, &ue) {
		return &unknownError{ue.kind, fmt.Sprintf(format, a...) + ": " + ue.reason}
	}
	return err
}

// Generate builds the VMCOREINFO the kernel of v would have emitted. rt
// nil means no dump: SYMBOL() values are link-time addresses, KERNELOFFSET
// is written as 0 (listed as assumed), and the keys only the running kernel
// knew are listed as unknown.
func Generate(v Vmlinux, rt *Runtime) (*Result, error) {
	g := &gen{v: v, rt: rt, res: &Result{Lines: []Line{}, Unknown: []Omitted{}, Warnings: []string{}}}
	rel, err := v.Release()
	if err != nil {
		return nil, fmt.Errorf("generate: the vmlinux has no release string: %w", err)
	}
	g.res.Release = rel
	if ma, mi, err := parseRelease(rel); err != nil || !verifiedSeries[[2]int{ma, mi}] {
		g.res.Warnings = append(g.res.Warnings, fmt.Sprintf("the key table was checked line by line against the 6.1 and 6.12 kernel sources; release %s may differ where a line's history between or beyond them is not mirrored (see the table's conditions)", rel))
	}
	if len(v.BuildID()) == 0 {
		return nil, errors.New("generate: the vmlinux has no GNU build-id note: the kernel's BUILD-ID line cannot be written")
	}
	for _, e := range table() {
		if e.when != nil {
			ok, err := e.when(g)
			if err != nil {
				g.res.Unknown = append(g.res.Unknown, Omitted{e.key, fmt.Sprintf("cannot tell whether this kernel emits it: %v", err), NotInVmlinux})
				continue
			}
			if !ok {
				continue
			}
		}
		val, origin, err := e.value(g)
		if err != nil {
			o := Omitted{Key: e.key, Reason: "the vmlinux does not give it: " + err.Error(), Kind: NotInVmlinux}
			var ue *unknownError
			if errors.As(err, &ue) {
				o.Reason, o.Kind = ue.reason, ue.kind
			}
			g.res.Unknown = append(g.res.Unknown, o)
			continue
		}
		g.res.Lines = append(g.res.Lines, Line{Key: e.key, Value: val, Origin: origin, Source: e.source})
	}
	g.res.Unknown = append(g.res.Unknown, crashTime)
	return g.res, nil
}

// verifiedSeries are the kernel series whose sources the table was
// checked against, and whose real VMCOREINFO the e2e test reproduces.
var verifiedSeries = map[[2]int]bool{{6, 1}: true, {6, 12}: true}

// ErrNoKey is Value's answer for a key the kernel's table does not have.
var ErrNoKey = errors.New("not a key of the kernel's VMCOREINFO table")

// Value computes one key as the kernel v was built from prints it, without
// generating the rest: ldx verify compares a dump's own lines with it. The
// key's emission condition is not evaluated (whoever asks has the line).
func Value(v Vmlinux, rt *Runtime, key string) (string, Origin, error) {
	rel, err := v.Release()
	if err != nil {
		return "", "", err
	}
	g := &gen{v: v, rt: rt, res: &Result{Release: rel}}
	for _, e := range table() {
		if e.key == key {
			return e.value(g)
		}
	}
	return "", "", ErrNoKey
}

// gen carries one generation.
type gen struct {
	v   Vmlinux
	rt  *Runtime
	res *Result
}

// ko is the KASLR offset applied to SYMBOL() values: the dump's, or 0.
func (g *gen) ko() uint64 {
	if g.rt == nil {
		return 0
	}
	return g.rt.KernelOffset
}

// symOrigin is the origin of a value that adds the offset to a link
// address.
func (g *gen) symOrigin() Origin {
	if g.rt == nil {
		return FromVmlinux // link-time, as KERNELOFFSET=0 (assumed) says
	}
	return FromDump
}

// has reports whether a name exists, telling "not there" (false, nil)
// from a failure to look (error).
func has(err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, vmlinux.ErrNotFound):
		return false, nil
	}
	return false, err
}

func (g *gen) hasSymbol(name string) (bool, error) { _, err := g.v.Symbol(name); return has(err) }
func (g *gen) hasEnum(name string) (bool, error)   { _, err := g.v.Enum(name); return has(err) }
func (g *gen) hasMember(typ, m string) (bool, error) {
	_, err := g.v.Member(typ, m)
	return has(err)
}
func (g *gen) hasStruct(name string) (bool, error) { _, err := g.v.StructSize(name); return has(err) }

// readVar reads a little-endian integer variable of the running kernel.
func (g *gen) readVar(name string, size int) (uint64, error) {
	if g.rt == nil || g.rt.Mem == nil {
		return 0, unknown(NeedsDump, "%s holds the running kernel's value: needs a dump", name)
	}
	a, err := g.v.Symbol(name)
	if err != nil {
		return 0, err
	}
	va := a + g.ko()
	b := make([]byte, 8)
	if _, err := g.rt.Mem.ReadAt(b[:size], int64(va)); err != nil {
		return 0, unknown(DumpUnreadable, "reading %s at %#x in the dump: %v", name, va, err)
	}
	return binary.LittleEndian.Uint64(b), nil
}

// runtimeValue reads a variable from the dump's memory, falling back to
// the value given in Runtime (cross-checked when both exist): the given
// values are the dump's addressing values, as good as the variable.
func (g *gen) runtimeValue(name string, size int, given func(*Runtime) uint64) (uint64, error) {
	if g.rt == nil {
		return 0, unknown(NeedsDump, "%s holds the running kernel's value: needs a dump", name)
	}
	v, err := g.readVar(name, size)
	if err == nil {
		if w := given(g.rt); w != v {
			g.res.Warnings = append(g.res.Warnings, fmt.Sprintf("%s in the dump's memory is %#x, but the addressing values give %#x; the memory's value is written", name, v, w))
		}
		return v, nil
	}
	var ue *unknownError
	if errors.As(err, &ue) && ue.kind == DumpUnreadable {
		g.res.Warnings = append(g.res.Warnings, fmt.Sprintf("%s; the addressing value %#x is written", err, given(g.rt)))
	}
	return given(g.rt), nil
}

// pgtableL5 is pgtable_l5_enabled() of the running kernel: 0 for kernels
// built without CONFIG_X86_5LEVEL (no __pgtable_l5_enabled variable).
func (g *gen) pgtableL5() (bool, Origin, error) {
	ok, err := g.hasSymbol("__pgtable_l5_enabled")
	if err != nil {
		return false, "", err
	}
	if !ok {
		return false, FromConstant, nil
	}
	v, err := g.runtimeValue("__pgtable_l5_enabled", 4, func(r *Runtime) uint64 {
		if r.PgtableL5 {
			return 1
		}
		return 0
	})
	if err != nil {
		return false, "", err
	}
	return v != 0, FromDump, nil
}

// maxPhysmemBits is MAX_PHYSMEM_BITS (arch/x86/include/asm/sparsemem.h):
// (pgtable_l5_enabled() ? 52 : 46) on x86_64.
func (g *gen) maxPhysmemBits() (int64, Origin, error) {
	l5, origin, err := g.pgtableL5()
	if err != nil {
		return 0, "", because(err, "MAX_PHYSMEM_BITS is (pgtable_l5_enabled() ? 52 : 46)")
	}
	if l5 {
		return 52, origin, nil
	}
	return 46, origin, nil
}

// sectionSizeBits is SECTION_SIZE_BITS on x86_64
// (arch/x86/include/asm/sparsemem.h).
const sectionSizeBits = 27

// pageSize is PAGE_SIZE on x86_64.
const pageSize = 4096
