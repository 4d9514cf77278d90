package generate

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"testing"

	"ldx/elfcore/kernel/kmem/kmemtest"
	"ldx/elfcore/vmlinux"
	"ldx/vmcoreinfo"
	"ldx/vmcoreinfo/vmcoreinfotest"
)

// fakeVmlinux is a vmlinux held in maps. Names not in a map are
// vmlinux.ErrNotFound, as the real reader says; fail makes a lookup of a
// name fail otherwise (a damaged vmlinux).
type fakeVmlinux struct {
	buildID  []byte
	release  string
	symbols  map[string]uint64
	data     map[uint64][]byte // initialised bytes starting at link addresses
	structs  map[string]int64
	members  map[string]vmlinux.Member // "type.member"
	enums    map[string]int64
	arrays   map[string]int64 // global array lengths
	varTypes map[string]string
	fail     map[string]error
}

func newFake() *fakeVmlinux {
	return &fakeVmlinux{symbols: map[string]uint64{}, data: map[uint64][]byte{}, structs: map[string]int64{},
		members: map[string]vmlinux.Member{}, enums: map[string]int64{}, arrays: map[string]int64{}, varTypes: map[string]string{}, fail: map[string]error{}}
}

func notFound(kind, name string) error {
	return &vmlinux.LookupError{File: "fake-vmlinux", Kind: kind, Name: name, Err: vmlinux.ErrNotFound}
}

func (f *fakeVmlinux) BuildID() []byte { return f.buildID }

func (f *fakeVmlinux) Release() (string, error) {
	if f.release == "" {
		return "", notFound("symbol", "linux_banner")
	}
	return f.release, nil
}

// Banner reads linux_banner from the fake's data, up to its NUL.
func (f *fakeVmlinux) Banner() ([]byte, error) {
	a, err := f.Symbol("linux_banner")
	if err != nil {
		return nil, err
	}
	for base, b := range f.data {
		if a >= base && a < base+uint64(len(b)) {
			rest := b[a-base:]
			if i := bytes.IndexByte(rest, 0); i >= 0 {
				return rest[:i], nil
			}
			return nil, fmt.Errorf("fake-vmlinux: linux_banner has no NUL")
		}
	}
	return nil, fmt.Errorf("fake-vmlinux: no data at linux_banner %#x", a)
}

func (f *fakeVmlinux) Symbol(name string) (uint64, error) {
	if err := f.fail[name]; err != nil {
		return 0, err
	}
	a, ok := f.symbols[name]
	if !ok {
		return 0, notFound("symbol", name)
	}
	return a, nil
}

func (f *fakeVmlinux) ReadData(addr uint64, p []byte) error {
	for a, b := range f.data {
		if addr >= a && addr+uint64(len(p)) <= a+uint64(len(b)) {
			copy(p, b[addr-a:])
			return nil
		}
	}
	return fmt.Errorf("fake-vmlinux: no data at %#x+%d", addr, len(p))
}

func (f *fakeVmlinux) StructSize(name string) (int64, error) {
	if err := f.fail[name]; err != nil {
		return 0, err
	}
	n, ok := f.structs[name]
	if !ok {
		return 0, notFound("type", name)
	}
	return n, nil
}

func (f *fakeVmlinux) Member(typ, member string) (vmlinux.Member, error) {
	if err := f.fail[typ+"."+member]; err != nil {
		return vmlinux.Member{}, err
	}
	m, ok := f.members[typ+"."+member]
	if !ok {
		return vmlinux.Member{}, notFound("member", typ+"."+member)
	}
	return m, nil
}

func (f *fakeVmlinux) Enum(name string) (int64, error) {
	if err := f.fail[name]; err != nil {
		return 0, err
	}
	v, ok := f.enums[name]
	if !ok {
		return 0, notFound("enumerator", name)
	}
	return v, nil
}

func (f *fakeVmlinux) VarArrayLen(name string) (int64, error) {
	n, ok := f.arrays[name]
	if !ok {
		return 0, notFound("variable", name)
	}
	return n, nil
}

func (f *fakeVmlinux) VarTypeName(name string) (string, error) {
	t, ok := f.varTypes[name]
	if !ok {
		return "", notFound("variable", name)
	}
	return t, nil
}

// member returns (creating) a member, not an array until said.
func (f *fakeVmlinux) member(key string) vmlinux.Member {
	m, ok := f.members[key]
	if !ok {
		m.ArrayLen = -1
	}
	return m
}

// fakeKernel builds a vmlinux and a dump from a real kernel's VMCOREINFO
// text: the link-time facts (symbols less KERNELOFFSET, sizes, offsets,
// enumerators) go into the vmlinux, the runtime values into memory, where
// the kernel keeps them. What the kernel derives (MAX_PHYSMEM_BITS,
// LENGTH(mem_section), the 6.1 mapcount constants) is left out, so that
// generation has to derive it too.
func fakeKernel(t *testing.T, fixture string) (*fakeVmlinux, *Runtime, *vmcoreinfo.Info) {
	t.Helper()
	info, err := vmcoreinfo.Parse(vmcoreinfotest.Text(t, fixture))
	if err != nil {
		t.Fatal(err)
	}
	ko, _ := info.KernelOffset()
	f := newFake()
	mem := &kmemtest.Mem{}
	rt := &Runtime{KernelOffset: ko, Mem: mem}
	next := uint64(0xffffffff83a00000) // link addresses for runtime variables
	variable := func(name string, v uint64, size int) {
		f.symbols[name] = next
		mem.Map(next+ko, binary.LittleEndian.AppendUint64(nil, v)[:size])
		next += 0x40
	}
	for _, l := range info.Lines() {
		k, v := l.Key, l.Value
		u, _ := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
		d, _ := strconv.ParseInt(v, 10, 64)
		name := k[strings.IndexByte(k, '(')+1 : max(strings.IndexByte(k, ')'), 0)]
		switch {
		case k == "OSRELEASE":
			f.release = v
		case k == "BUILD-ID":
			f.buildID, _ = hex.DecodeString(v)
		case k == "KERNELOFFSET", k == "PAGESIZE", k == "LENGTH(mem_section)", k == "NUMBER(SECTION_SIZE_BITS)", k == "NUMBER(MAX_PHYSMEM_BITS)", k == "SYMBOL(swapper_pg_dir)":
		case k == "SYMBOL(node_online_map)":
			f.symbols["node_states"] = u - ko - 128
			f.enums["N_ONLINE"] = 1
		case k == "SYMBOL(mem_section)":
			variable("mem_section", u, 8)
			f.varTypes["mem_section"] = "pointer"
		case k == "SYMBOL(vmemmap)":
			variable("vmemmap_base", u, 8)
			f.symbols["vmemmap_populate"] = 0xffffffff81f00000
		case k == "NUMBER(VMALLOC_START)":
			variable("vmalloc_base", u, 8)
		case k == "NUMBER(phys_base)":
			variable("phys_base", uint64(d), 8)
			rt.PhysBase = uint64(d)
		case k == "NUMBER(pgtable_l5_enabled)":
			variable("__pgtable_l5_enabled", uint64(d), 4)
			rt.PgtableL5 = d != 0
		case k == "NUMBER(sme_mask)":
			variable("sme_me_mask", uint64(d), 8)
			rt.SMEMask = uint64(d)
		case k == "NUMBER(KERNEL_IMAGE_SIZE)":
			pgt := make([]byte, 4096)
			for i := int64(0); i < d>>21; i++ {
				binary.LittleEndian.PutUint64(pgt[i*8:], uint64(i)<<21|0xe3)
			}
			f.symbols["level2_kernel_pgt"] = 0xffffffff82a16000
			f.data[0xffffffff82a16000] = pgt
		case k == "NUMBER(PG_head_mask)":
			f.enums["PG_head"] = int64(bits.TrailingZeros64(uint64(d)))
		case strings.HasSuffix(k, "_MAPCOUNT_VALUE)"):
			if t := uint32(d) >> 24; t != 0xff { // 6.12: PGTY_x << 24; 6.1: ~0x80, ~0x100 are constants
				f.enums["PGTY_"+strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(name, "PAGE_"), "_MAPCOUNT_VALUE"))] = int64(t)
			}
		case strings.HasPrefix(k, "SYMBOL("):
			f.symbols[name] = u - ko
		case strings.HasPrefix(k, "NUMBER("):
			f.enums[name] = d
		case strings.HasPrefix(k, "SIZE("):
			f.structs[name] = d
		case strings.HasPrefix(k, "OFFSET("):
			m := f.member(name)
			m.Offset = d
			f.members[name] = m
		case k == "LENGTH(node_data)":
			f.arrays["node_data"] = d
		case k == "LENGTH(printk_info_subsystem)", k == "LENGTH(printk_info_device)":
			key := "dev_printk_info." + strings.TrimPrefix(name, "printk_info_")
			m := f.member(key)
			m.Size = d
			f.members[key] = m
		case strings.HasPrefix(k, "LENGTH("):
			m := f.member(name)
			m.ArrayLen = d
			f.members[name] = m
		default:
			t.Fatalf("%s: key %s not modelled", fixture, k)
		}
	}
	// OSRELEASE is read from init_uts_ns.name.release in the image.
	f.members["new_utsname.release"] = vmlinux.Member{Offset: 65, Size: 65, ArrayLen: 65}
	rel := make([]byte, 65)
	copy(rel, f.release)
	f.data[f.symbols["init_uts_ns"]+uint64(f.members["uts_namespace.name"].Offset)+65] = rel
	return f, rt, info
}
