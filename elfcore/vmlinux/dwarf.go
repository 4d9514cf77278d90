package vmlinux

import (
	"debug/dwarf"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"github.com/go-delve/delve/pkg/dwarf/godwarf"
	"github.com/go-delve/delve/pkg/dwarf/op"
)

// index is the lazily built name index over .debug_info. It advances one
// compilation unit at a time, and only when a lookup misses.
type index struct {
	mu   sync.Mutex
	d    *dwarf.Data
	scan *dwarf.Reader // the cursor: the next unit to index
	done bool
	err  error
	// units is how many compilation units have been indexed.
	units int

	types    map[string]dwarf.Offset // struct/union tag → complete definition
	typedefs map[string]dwarf.Offset
	enums    map[string]int64
	vars     map[string]dwarf.Offset // name → definition DIE (the one with the location)
	decls    map[string]dwarf.Offset // name → first declaration DIE
}

// debugSections are what type and variable lookups need. .debug_line,
// .debug_loclists and .debug_frame (40 MB on Debian 6.1) are not read.
var debugSections = []string{"abbrev", "info", "str", "line_str", "str_offsets", "addr", "rnglists", "ranges"}

func (f *File) dwarfIndex() (*index, error) {
	if f.closed.Load() {
		return nil, fmt.Errorf("%s: %w", f.path, ErrClosed)
	}
	f.dwarfOnce.Do(func() {
		sec := map[string][]byte{}
		for _, name := range debugSections {
			b, err := f.debugSection(name)
			if err != nil {
				f.dwErr = err
				return
			}
			sec[name] = b
		}
		if sec["info"] == nil {
			f.dwErr = fmt.Errorf("%s: no .debug_info: not a debug vmlinux (install the -dbg package's usr/lib/debug/boot/vmlinux-*)", f.path)
			return
		}
		d, err := dwarf.New(sec["abbrev"], nil, nil, sec["info"], nil, nil, sec["ranges"], sec["str"])
		if err != nil {
			f.dwErr = fmt.Errorf("%s: %w", f.path, err)
			return
		}
		for _, name := range []string{"line_str", "str_offsets", "addr", "rnglists"} {
			if sec[name] != nil {
				if err := d.AddSection(".debug_"+name, sec[name]); err != nil {
					f.dwErr = fmt.Errorf("%s: .debug_%s: %w", f.path, name, err)
					return
				}
			}
		}
		f.dw = &index{d: d, scan: d.Reader(),
			types: map[string]dwarf.Offset{}, typedefs: map[string]dwarf.Offset{},
			enums: map[string]int64{}, vars: map[string]dwarf.Offset{}, decls: map[string]dwarf.Offset{}}
	})
	return f.dw, f.dwErr
}

// debugSection returns .debug_<name>: a slice of the mapping when stored
// plainly, decompressed (by delve, which knows both the SHF_COMPRESSED and
// the legacy .zdebug_ forms) otherwise; nil when absent.
func (f *File) debugSection(name string) ([]byte, error) {
	s := f.elf.Section(".debug_" + name)
	if s == nil {
		s = f.elf.Section(".zdebug_" + name)
	}
	if s == nil {
		return nil, nil
	}
	if b, ok := f.section(s); ok && !strings.HasPrefix(s.Name, ".zdebug_") {
		return b, nil
	}
	// delve allocates what a .zdebug_ header claims: bound it first (zlib
	// cannot expand more than ~1032x; debug info does ~5-10x).
	if raw, ok := f.section(s); ok && strings.HasPrefix(s.Name, ".zdebug_") && len(raw) >= 12 && string(raw[:4]) == "ZLIB" {
		if n := binary.BigEndian.Uint64(raw[4:12]); n > 1032*uint64(len(raw)) || n > 1<<32 {
			return nil, fmt.Errorf("%s: %s claims %d bytes uncompressed from %d: damaged", f.path, s.Name, n, len(raw))
		}
	}
	b, err := godwarf.GetDebugSectionElf(f.elf, name)
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", f.path, s.Name, err)
	}
	return b, nil
}

// lookup answers from the index, indexing further units until found is
// true or all of .debug_info has been seen.
func (x *index) lookup(found func() bool) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for !found() {
		if x.done {
			return x.err
		}
		x.err = x.indexUnit()
		if x.err != nil {
			x.done = true
			return x.err
		}
	}
	return nil
}

// indexUnit indexes the top-level DIEs of the next compilation unit:
// complete struct and union definitions, typedefs, enumerators, and
// global variables. The first definition of a name wins: the kernel's
// core types are the same in every unit; a file-local struct that reuses
// a name (there are a few) is defined in its own unit, later.
func (x *index) indexUnit() error {
	r := x.scan
	cu, err := r.Next()
	if err != nil {
		return err
	}
	if cu == nil {
		x.done = true
		return nil
	}
	x.units++
	if !cu.Children {
		return nil
	}
	for {
		e, err := r.Next()
		if err != nil {
			return err
		}
		if e == nil {
			x.done = true
			return nil
		}
		if e.Tag == 0 {
			return nil // end of the unit's children
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		decl, _ := e.Val(dwarf.AttrDeclaration).(bool)
		switch e.Tag {
		case dwarf.TagStructType, dwarf.TagUnionType:
			if name != "" && !decl {
				if _, ok := x.types[name]; !ok {
					x.types[name] = e.Offset
				}
			}
		case dwarf.TagTypedef:
			if _, ok := x.typedefs[name]; name != "" && !ok {
				x.typedefs[name] = e.Offset
			}
		case dwarf.TagEnumerationType:
			if e.Children {
				if err := x.indexEnumerators(r); err != nil {
					return err
				}
				continue
			}
		case dwarf.TagVariable:
			// GCC defines a global declared in a header with a nameless
			// DIE pointing (DW_AT_specification) at the unit's copy of
			// the declaration.
			if spec, ok := e.Val(dwarf.AttrSpecification).(dwarf.Offset); ok {
				sr := x.d.Reader()
				sr.Seek(spec)
				if se, err := sr.Next(); err == nil && se != nil {
					name, _ = se.Val(dwarf.AttrName).(string)
				}
				decl = false
			}
			if name != "" {
				m := x.vars
				if decl {
					m = x.decls
				}
				if _, ok := m[name]; !ok {
					m[name] = e.Offset
				}
			}
		}
		if e.Children {
			r.SkipChildren()
		}
	}
}

func (x *index) indexEnumerators(r *dwarf.Reader) error {
	for {
		e, err := r.Next()
		if err != nil {
			return err
		}
		if e == nil || e.Tag == 0 {
			return nil
		}
		if e.Tag == dwarf.TagEnumerator {
			name, _ := e.Val(dwarf.AttrName).(string)
			if _, ok := x.enums[name]; name != "" && !ok {
				switch v := e.Val(dwarf.AttrConstValue).(type) {
				case int64:
					x.enums[name] = v
				case uint64:
					x.enums[name] = int64(v)
				}
			}
		}
		if e.Children {
			r.SkipChildren()
		}
	}
}

// UnitsIndexed says how many compilation units lookups have needed so far
// (for benchmarks and tests of laziness).
func (f *File) UnitsIndexed() int {
	x, err := f.dwarfIndex()
	if err != nil {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.units
}

func (f *File) lookupErr(kind, name string, err error) error {
	if err == nil {
		err = ErrNotFound
	}
	return &LookupError{File: f.path, Kind: kind, Name: name, Err: err}
}

// Enum returns the value of an enumerator constant (PG_lru, NR_FREE_PAGES …).
func (f *File) Enum(name string) (int64, error) {
	x, err := f.dwarfIndex()
	if err != nil {
		return 0, err
	}
	var v int64
	var ok bool
	err = x.lookup(func() bool { v, ok = x.enums[name]; return ok })
	if !ok {
		return 0, f.lookupErr("enumerator", name, err)
	}
	return v, nil
}

// typeDef returns the DIE offset of the complete struct or union named
// name, or failing that of the typedef named name.
func (f *File) typeDef(name string) (dwarf.Offset, error) {
	x, err := f.dwarfIndex()
	if err != nil {
		return 0, err
	}
	name = strings.TrimPrefix(strings.TrimPrefix(name, "struct "), "union ")
	var off dwarf.Offset
	var ok bool
	err = x.lookup(func() bool {
		if off, ok = x.types[name]; ok {
			return true
		}
		off, ok = x.typedefs[name]
		return ok
	})
	if !ok {
		return 0, f.lookupErr("type", name, err)
	}
	return off, nil
}

// complete returns the complete definition of a struct or union that a
// unit only declared (DW_AT_declaration), by name.
func (f *File) complete(name string) (dwarf.Offset, bool) {
	x, err := f.dwarfIndex()
	if err != nil || name == "" {
		return 0, false
	}
	var off dwarf.Offset
	var ok bool
	x.lookup(func() bool { off, ok = x.types[name]; return ok })
	return off, ok
}

// entry reads the DIE at off.
func (f *File) entry(off dwarf.Offset) (*dwarf.Entry, *dwarf.Reader, error) {
	x, err := f.dwarfIndex()
	if err != nil {
		return nil, nil, err
	}
	r := x.d.Reader()
	r.Seek(off)
	e, err := r.Next()
	if err != nil {
		return nil, nil, err
	}
	if e == nil {
		return nil, nil, &FormatError{Off: uint64(off), Msg: "no entry"}
	}
	return e, r, nil
}

// typeInfo is a resolved type: typedefs and qualifiers followed, sizes
// computed the way C does (an array is its element count times its
// element's size).
type typeInfo struct {
	off      dwarf.Offset // the underlying DIE
	tag      dwarf.Tag
	name     string
	size     int64
	arrayLen int64 // -1 when not an array; the outermost dimension's count
}

const maxTypeDepth = 64 // typedef and qualifier chains are short; cycles are corrupt

func (f *File) resolve(off dwarf.Offset) (typeInfo, error) {
	for depth := 0; depth < maxTypeDepth; depth++ {
		e, r, err := f.entry(off)
		if err != nil {
			return typeInfo{}, err
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		switch e.Tag {
		case dwarf.TagTypedef, dwarf.TagConstType, dwarf.TagVolatileType, dwarf.TagRestrictType, dwarf.TagAtomicType:
			next, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
			if !ok {
				return typeInfo{off: off, tag: dwarf.TagUnspecifiedType, name: "void", arrayLen: -1}, nil
			}
			off = next
			continue
		case dwarf.TagStructType, dwarf.TagUnionType:
			if decl, _ := e.Val(dwarf.AttrDeclaration).(bool); decl {
				full, ok := f.complete(name)
				if !ok {
					return typeInfo{}, &FormatError{Off: uint64(off), Msg: fmt.Sprintf("%s %q is only declared, never defined", e.Tag, name)}
				}
				off = full
				continue
			}
		case dwarf.TagArrayType:
			return f.arrayInfo(e, r)
		}
		size, _ := e.Val(dwarf.AttrByteSize).(int64)
		return typeInfo{off: off, tag: e.Tag, name: name, size: size, arrayLen: -1}, nil
	}
	return typeInfo{}, &FormatError{Off: uint64(off), Msg: "type chain too long (a cycle?)"}
}

func (f *File) arrayInfo(e *dwarf.Entry, r *dwarf.Reader) (typeInfo, error) {
	ti := typeInfo{off: e.Offset, tag: dwarf.TagArrayType, arrayLen: -1}
	elemOff, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
	if !ok {
		return ti, &FormatError{Off: uint64(e.Offset), Msg: "array without an element type"}
	}
	total := int64(1)
	first := true
	if e.Children {
		for {
			c, err := r.Next()
			if err != nil {
				return ti, err
			}
			if c == nil || c.Tag == 0 {
				break
			}
			if c.Tag != dwarf.TagSubrangeType {
				continue
			}
			n := int64(0) // flexible array: no count, no upper bound
			if v, ok := c.Val(dwarf.AttrCount).(int64); ok {
				n = v
			} else if v, ok := c.Val(dwarf.AttrUpperBound).(int64); ok {
				n = v + 1
			}
			if first {
				ti.arrayLen, first = n, false
			}
			total *= n
		}
	}
	if ti.arrayLen < 0 {
		ti.arrayLen = 0
	}
	elem, err := f.resolve(elemOff)
	if err != nil {
		return ti, err
	}
	if sz, ok := e.Val(dwarf.AttrByteSize).(int64); ok {
		ti.size = sz
	} else {
		ti.size = total * elem.size
	}
	return ti, nil
}

// StructSize returns sizeof a struct or union named by its tag
// ("page", "struct page"), or of a typedef ("nodemask_t"): what the
// kernel's SIZE() keys hold.
func (f *File) StructSize(name string) (int64, error) {
	off, err := f.typeDef(name)
	if err != nil {
		return 0, err
	}
	ti, err := f.resolve(off)
	if err != nil {
		return 0, f.lookupErr("type", name, err)
	}
	return ti.size, nil
}

// Member is where a member lies in its struct, offsetof-style.
type Member struct {
	Offset    int64 // bytes from the start of the outer type
	BitOffset int64 // for a bitfield, bits from the start of the outer type; else 0
	BitSize   int64 // for a bitfield; else 0
	Size      int64 // sizeof the member
	ArrayLen  int64 // element count when the member is an array (0 for a flexible one); -1 otherwise

	typ dwarf.Offset // the member's resolved type, for paths and anonymous members
	die dwarf.Offset // the DW_TAG_member entry
}

// MemberOffset returns offsetof(typ, member): what OFFSET() keys hold.
func (f *File) MemberOffset(typ, member string) (int64, error) {
	m, err := f.Member(typ, member)
	return m.Offset, err
}

// Member finds a member of a struct or union (typ is a tag or a typedef
// name). member may be a path through nested members ("a.b"); members of
// anonymous structs and unions are found as C finds them.
func (f *File) Member(typ, member string) (Member, error) {
	off, err := f.typeDef(typ)
	if err != nil {
		return Member{}, err
	}
	outer, err := f.resolve(off)
	if err != nil {
		return Member{}, f.lookupErr("type", typ, err)
	}
	top := outer
	var m Member
	base := int64(0)
	prev := typ
	for i, part := range strings.Split(member, ".") {
		if i > 0 {
			switch {
			case m.ArrayLen >= 0:
				return Member{}, f.lookupErr("member", typ+"."+member, fmt.Errorf("%s is an array, not a struct or union", prev))
			case m.BitSize != 0:
				return Member{}, f.lookupErr("member", typ+"."+member, fmt.Errorf("%s is a bitfield, not a struct or union", prev))
			case outer.tag != dwarf.TagStructType && outer.tag != dwarf.TagUnionType:
				return Member{}, f.lookupErr("member", typ+"."+member, fmt.Errorf("%s is a %s, not a struct or union", prev, kindName(outer.tag)))
			}
		}
		var found bool
		m, found, err = f.findMember(outer.off, part, base, 0)
		if err != nil {
			return Member{}, f.lookupErr("member", typ+"."+member, err)
		}
		if !found {
			return Member{}, f.lookupErr("member", typ+"."+member, nil)
		}
		base = m.Offset
		prev = part
		outer, err = f.memberType(m)
		if err != nil {
			return Member{}, f.lookupErr("member", typ+"."+member, err)
		}
	}
	// A member outside its struct is damaged DWARF, and would send callers
	// reading that many bytes astray.
	if m.Offset < 0 || m.Size < 0 || m.Offset+m.Size > top.size || m.BitOffset < 0 || m.BitOffset+m.BitSize > top.size*8 {
		return Member{}, f.lookupErr("member", typ+"."+member, &FormatError{Off: uint64(m.die),
			Msg: fmt.Sprintf("member at byte %d, %d bytes (bit %d, %d bits), lies outside its %d-byte %s", m.Offset, m.Size, m.BitOffset, m.BitSize, top.size, typ)})
	}
	return m, nil
}

// memberType resolves a member's type.
func (f *File) memberType(m Member) (typeInfo, error) { return f.resolve(m.typ) }

// findMember searches the members of the struct or union at off,
// descending into anonymous members. base is the byte offset of the
// struct within the outermost type.
func (f *File) findMember(off dwarf.Offset, name string, base int64, depth int) (Member, bool, error) {
	if depth > maxTypeDepth {
		return Member{}, false, &FormatError{Off: uint64(off), Msg: "anonymous members nested too deep"}
	}
	e, r, err := f.entry(off)
	if err != nil {
		return Member{}, false, err
	}
	if e.Tag != dwarf.TagStructType && e.Tag != dwarf.TagUnionType {
		return Member{}, false, fmt.Errorf("%s is not a struct or union", e.Tag)
	}
	if !e.Children {
		return Member{}, false, nil
	}
	var anon []*dwarf.Entry
	for {
		c, err := r.Next()
		if err != nil {
			return Member{}, false, err
		}
		if c == nil || c.Tag == 0 {
			break
		}
		if c.Children {
			r.SkipChildren()
		}
		if c.Tag != dwarf.TagMember {
			continue
		}
		cname, _ := c.Val(dwarf.AttrName).(string)
		if cname == "" {
			anon = append(anon, c)
			continue
		}
		if cname == name {
			m, err := f.memberAt(c, base)
			return m, err == nil, err
		}
	}
	for _, c := range anon {
		m, err := f.memberAt(c, base)
		if err != nil {
			return Member{}, false, err
		}
		t, err := f.memberType(m)
		if err != nil {
			return Member{}, false, err
		}
		if t.tag != dwarf.TagStructType && t.tag != dwarf.TagUnionType {
			continue
		}
		if got, ok, err := f.findMember(t.off, name, m.Offset, depth+1); err != nil || ok {
			return got, ok, err
		}
	}
	return Member{}, false, nil
}

// memberAt decodes a DW_TAG_member's location: DW_AT_data_member_location
// (a constant, or in DWARF 2 an expression, evaluated by delve's op), and
// for bitfields DW_AT_data_bit_offset (DWARF 4+) or the older
// DW_AT_bit_offset counted from the storage unit's most significant bit.
func (f *File) memberAt(c *dwarf.Entry, base int64) (Member, error) {
	toff, ok := c.Val(dwarf.AttrType).(dwarf.Offset)
	if !ok {
		return Member{}, &FormatError{Off: uint64(c.Offset), Msg: "member without a type"}
	}
	t, err := f.resolve(toff)
	if err != nil {
		return Member{}, err
	}
	m := Member{Size: t.size, ArrayLen: t.arrayLen, typ: t.off, die: c.Offset}
	var loc int64
	switch v := c.Val(dwarf.AttrDataMemberLoc).(type) {
	case int64:
		loc = v
	case []byte:
		a, _, err := op.ExecuteStackProgram(op.DwarfRegisters{}, v, 8, nil)
		if err != nil {
			return Member{}, &FormatError{Off: uint64(c.Offset), Msg: fmt.Sprintf("data member location: %v", err)}
		}
		loc = a
	}
	if bs, ok := c.Val(dwarf.AttrBitSize).(int64); ok {
		m.BitSize = bs
		if dbo, ok := c.Val(dwarf.AttrDataBitOffset).(int64); ok {
			m.BitOffset = base*8 + dbo
		} else if bo, ok := c.Val(dwarf.AttrBitOffset).(int64); ok {
			storage := t.size
			if sz, ok := c.Val(dwarf.AttrByteSize).(int64); ok {
				storage = sz
			}
			m.BitOffset = (base+loc)*8 + storage*8 - bo - bs // little endian
		} else {
			m.BitOffset = (base + loc) * 8
		}
		m.Offset = m.BitOffset / 8
		return m, nil
	}
	m.Offset = base + loc
	return m, nil
}

// variable returns the merged declaration+definition of a global variable.
func (f *File) variable(name string) (godwarf.Entry, dwarf.Offset, error) {
	x, err := f.dwarfIndex()
	if err != nil {
		return nil, 0, err
	}
	var off dwarf.Offset
	var ok bool
	err = x.lookup(func() bool { off, ok = x.vars[name]; return ok })
	if !ok {
		// Only declared (an extern never defined, or defined in
		// assembly): the declaration still has the type.
		if off, ok = x.decls[name]; !ok {
			return nil, 0, f.lookupErr("variable", name, err)
		}
	}
	e, _, err := f.entry(off)
	if err != nil {
		return nil, 0, f.lookupErr("variable", name, err)
	}
	merged, _ := godwarf.LoadAbstractOriginAndSpecification(e, x.d.Reader())
	return merged, off, nil
}

// VarAddr returns a global variable's link-time address from its DWARF
// location (DW_OP_addr), evaluated by delve's op.
func (f *File) VarAddr(name string) (uint64, error) {
	e, off, err := f.variable(name)
	if err != nil {
		return 0, err
	}
	loc, ok := e.Val(dwarf.AttrLocation).([]byte)
	if !ok {
		return 0, f.lookupErr("variable", name, &FormatError{Off: uint64(off), Msg: "no DW_AT_location (optimised out or per-CPU?)"})
	}
	a, _, err := op.ExecuteStackProgram(op.DwarfRegisters{}, loc, 8, nil)
	if err != nil {
		return 0, f.lookupErr("variable", name, &FormatError{Off: uint64(off), Msg: fmt.Sprintf("location: %v", err)})
	}
	return uint64(a), nil
}

func (f *File) varType(name string) (typeInfo, dwarf.Offset, error) {
	e, off, err := f.variable(name)
	if err != nil {
		return typeInfo{}, 0, err
	}
	toff, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
	if !ok {
		return typeInfo{}, 0, f.lookupErr("variable", name, &FormatError{Off: uint64(off), Msg: "no type"})
	}
	ti, err := f.resolve(toff)
	if err != nil {
		return typeInfo{}, 0, f.lookupErr("variable", name, err)
	}
	return ti, toff, nil
}

// VarArrayLen returns the element count of a global array variable
// (node_data → MAX_NUMNODES), from its definition's type when the
// header's declaration leaves the length out.
func (f *File) VarArrayLen(name string) (int64, error) {
	ti, _, err := f.varType(name)
	if err != nil {
		return 0, err
	}
	if ti.tag != dwarf.TagArrayType {
		return 0, f.lookupErr("variable", name, fmt.Errorf("is a %s, not an array", ti.tag))
	}
	return ti.arrayLen, nil
}

// VarTypeName names a global variable's type as C would: "struct rq",
// "unsigned long", "struct pglist_data *[64]" is reported as its
// outermost kind ("array").
func (f *File) VarTypeName(name string) (string, error) {
	ti, _, err := f.varType(name)
	if err != nil {
		return "", err
	}
	switch ti.tag {
	case dwarf.TagStructType:
		return "struct " + ti.name, nil
	case dwarf.TagUnionType:
		return "union " + ti.name, nil
	case dwarf.TagEnumerationType:
		return "enum " + ti.name, nil
	case dwarf.TagPointerType:
		return "pointer", nil
	case dwarf.TagArrayType:
		return "array", nil
	}
	return ti.name, nil
}

// kindName names a DWARF type tag the way C would.
func kindName(t dwarf.Tag) string {
	switch t {
	case dwarf.TagPointerType:
		return "pointer"
	case dwarf.TagBaseType:
		return "scalar"
	case dwarf.TagEnumerationType:
		return "enum"
	case dwarf.TagSubroutineType:
		return "function"
	}
	return strings.TrimPrefix(strings.TrimSuffix(t.String(), "Type"), "Tag")
}
