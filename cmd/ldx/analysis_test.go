package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// A small synthetic x86_64 kernel for the analysis commands: 32 MiB of
// RAM, KASLR in both halves (text at 0xffffffff9c000000 with a negative
// phys_base, a randomised direct map), real 4-level page tables (2 MiB
// pages for the image and the direct map, a 4 KiB vmalloc page), a
// lockless printk ring with the 6.1 layout, init_uts_ns, vmap_area_list.
// It is dumped three ways: the raw device the livedump kernel would
// write (kmodtest), ldx extract's vmcore of it, and a QEMU-style ELF
// (p_vaddr = p_paddr, QEMU notes).
const (
	tMem      = 32 << 20
	tTextPhys = 16 << 20
	tTextVirt = 0xffffffff9c000000
	tPhysBase = int64(tTextPhys) - int64(tTextVirt-x86.KernelTextBase) // negative
	tPOB      = 0xffff9a4c00000000
	tVmalloc  = 0xffffb4e3c0000000
	tRelease  = "6.1.0-ldx-analysis"
	tPgt      = tTextVirt + 0x10000 // init_top_pgt
	tPrb      = tTextVirt + 0x20000 // the prb pointer
	tRing     = tTextVirt + 0x20100
	tDescs    = tTextVirt + 0x21000
	tInfos    = tTextVirt + 0x22000
	tText     = tTextVirt + 0x23000
	tUts      = tTextVirt + 0x30000
	tVmapList = tTextVirt + 0x31000
)

// tRecords are the log records: text, timestamp, caller id.
var tRecords = []struct {
	text   string
	ts     uint64
	caller uint32
}{
	{"Linux version " + tRelease + " (ldx@test)", 0, 0},
	{"ldx-test: two\nlines", 1_500_000_000, 1},
	{"ldx-test: a \x01 control byte and \xc3\xa9", 2_000_001_000, 0x80000001},
	{"ldx-test-marker: hello from the synthetic kernel", 123_456_789_012, 77},
}

const tDmesg = `[    0.000000] Linux version 6.1.0-ldx-analysis (ldx@test)
[    1.500000] ldx-test: two
               lines
[    2.000001] ldx-test: a \x01 control byte and \xc3\xa9
[  123.456789] ldx-test-marker: hello from the synthetic kernel
`

type tPhys []byte

func (p tPhys) put(pa, v uint64)                        { binary.LittleEndian.PutUint64(p[pa:], v) }
func (p tPhys) get(pa uint64) uint64                    { return binary.LittleEndian.Uint64(p[pa:]) }
func (p tPhys) ReadAt(b []byte, off int64) (int, error) { return copy(b, p[off:]), nil }
func imagePA(va uint64) uint64                          { return va - tTextVirt + tTextPhys }
func (p tPhys) putImage(va uint64, b []byte)            { copy(p[imagePA(va):], b) }
func (p tPhys) putImage64(va, v uint64)                 { p.put(imagePA(va), v) }
func (p tPhys) mapPage(next *uint64, root, va, pa, size uint64) {
	table := root
	for _, sh := range []uint{39, 30, 21, 12} {
		ea := table + ((va>>sh)&0x1ff)*8
		if 1<<sh == size {
			e := pa | 0x63
			if sh != 12 {
				e |= 0x80
			}
			p.put(ea, e)
			return
		}
		e := p.get(ea)
		if e&1 == 0 {
			e = *next | 0x67
			*next += 4096
			p.put(ea, e)
		}
		table = e &^ 0xfff
	}
}

func tVMCOREINFO() string {
	return fmt.Sprintf(`OSRELEASE=%s
BUILD-ID=0123456789abcdef0123456789abcdef01234567
PAGESIZE=4096
SYMBOL(init_uts_ns)=%x
OFFSET(uts_namespace.name)=0
SYMBOL(swapper_pg_dir)=%x
SYMBOL(_stext)=%x
SYMBOL(vmap_area_list)=%x
OFFSET(vmap_area.va_start)=0
OFFSET(vmap_area.list)=40
SYMBOL(prb)=%x
SYMBOL(printk_rb_static)=%x
%sNUMBER(KERNEL_IMAGE_SIZE)=1073741824
SYMBOL(init_top_pgt)=%x
NUMBER(pgtable_l5_enabled)=0
NUMBER(phys_base)=%d
KERNELOFFSET=%x
`, tRelease, uint64(tUts), uint64(tPgt), uint64(tTextVirt), uint64(tVmapList), uint64(tPrb), uint64(tRing),
		kmodtest.TemplateLines("SIZE(printk_ringbuffer)", "OFFSET(atomic_long_t.counter)", 0), uint64(tPgt),
		tPhysBase, uint64(tTextVirt-x86.DefaultText))
}

// tKernel builds the synthetic kernel's memory.
func tKernel() tPhys {
	p := make(tPhys, tMem)
	next := uint64(0x200000) // page tables
	root := imagePA(tPgt)
	for off := uint64(0); off < 4<<20; off += 2 << 20 {
		p.mapPage(&next, root, tTextVirt+off, tTextPhys+off, 2<<20)
	}
	for pa := uint64(0); pa < tMem; pa += 2 << 20 {
		p.mapPage(&next, root, tPOB+pa, pa, 2<<20)
	}
	p.mapPage(&next, root, tVmalloc+0x1000, 0x1e00000, 4096)
	copy(p[0x1e00000:], "a vmalloc page")
	// vmap_area_list → one vmap_area in the direct map.
	p.putImage64(tVmapList, tPOB+0x1d00000+40)
	p.put(0x1d00000, tVmalloc+0x1000)
	// init_uts_ns: sysname at +0, release at +130.
	p.putImage(tUts, []byte("Linux"))
	p.putImage(tUts+130, []byte(tRelease))
	// The printk ring: 16 descriptors, 4 KiB of text, the kernel's start
	// values (DESC0_ID, BLK0_LPOS).
	const count, size = 16, 4096
	id0 := uint64(uint32(1<<32 - (count + 1)))
	p.putImage64(tPrb, tRing)
	ring := make([]byte, 88)
	binary.LittleEndian.PutUint32(ring[0:], 4)
	binary.LittleEndian.PutUint64(ring[8:], tDescs)
	binary.LittleEndian.PutUint64(ring[16:], tInfos)
	binary.LittleEndian.PutUint64(ring[24:], id0+uint64(len(tRecords)))
	binary.LittleEndian.PutUint64(ring[32:], id0)
	binary.LittleEndian.PutUint32(ring[48:], 12)
	binary.LittleEndian.PutUint64(ring[56:], tText)
	p.putImage(tRing, ring)
	desc := func(id, sv, begin, next uint64) {
		d := tDescs + (id%count)*24
		p.putImage64(d, sv)
		p.putImage64(d+8, begin)
		p.putImage64(d+16, next)
	}
	desc(id0, 3<<62|id0, 1, 1)
	lpos := uint64(1<<64 - size)
	for i, r := range tRecords {
		id := id0 + 1 + uint64(i)
		n := (uint64(len(r.text))+7)&^7 + 8
		desc(id, 2<<62|id, lpos, lpos+n)
		p.putImage64(tText+lpos%size, id)
		p.putImage(tText+lpos%size+8, []byte(r.text))
		lpos += n
		inf := tInfos + (id%count)*88
		p.putImage64(inf, uint64(i))
		p.putImage64(inf+8, r.ts)
		binary.LittleEndian.PutUint16(p[imagePA(inf+16):], uint16(len(r.text)))
		binary.LittleEndian.PutUint32(p[imagePA(inf+20):], r.caller)
	}
	return p
}

// tInputs are the three dumps of the synthetic kernel, made once.
var tInputs struct {
	once              sync.Once
	dir               string
	raw, vmcore, qemu string
	err               error
}

func testInputs(t *testing.T) (raw, vmcore, qemu string) {
	t.Helper()
	tInputs.once.Do(func() {
		dir, err := os.MkdirTemp("", "ldx-analysis-")
		if err != nil {
			tInputs.err = err
			return
		}
		tInputs.dir = dir
		tInputs.err = makeInputs(dir)
	})
	if tInputs.err != nil {
		t.Fatal(tInputs.err)
	}
	return tInputs.raw, tInputs.vmcore, tInputs.qemu
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tInputs.dir != "" {
		os.RemoveAll(tInputs.dir)
	}
	os.Exit(code)
}

func makeInputs(dir string) error {
	mem := tKernel()
	vmci := tVMCOREINFO()
	k := &kmodtest.Kernel{
		Mem: mem, RAM: []elfcore.Range{{Start: 0x1000, End: 0x9fc00}, {Start: 1 << 20, End: tMem - 0x20000}},
		MaxPFN: (tMem - 0x20000) / 4096, TextPhys: tTextPhys, TextVirt: tTextVirt, TextSize: 4 << 20,
		PageOffsetBase: tPOB, CPUs: 2, VMCOREINFO: []byte(vmci), VMCOREINFONote: 0x1c00000,
		LeaderPid: 15, IP: tTextVirt + 0x1000,
	}
	tInputs.raw = filepath.Join(dir, "device.img")
	run0 := kmodtest.Run{Prepared: manifest.Zeroed, Manifest: &manifest.Manifest{}, Start: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)}
	if _, err := kmodtest.WriteFile(tInputs.raw, k, &run0); err != nil {
		return err
	}
	tInputs.vmcore = filepath.Join(dir, "vmcore")
	var out, errb bytes.Buffer
	if code := run([]string{"extract", "-q", tInputs.raw, "-o", tInputs.vmcore}, &out, &errb); code != 0 {
		return fmt.Errorf("ldx extract: exit %d: %s", code, errb.String())
	}
	// A QEMU dump-guest-memory file: p_vaddr = p_paddr, CORE and QEMU
	// notes per CPU, the VMCOREINFO note, RAM from 0.
	tInputs.qemu = filepath.Join(dir, "qemu.elf")
	var notes []elfcore.Note
	for cpu := range 2 {
		st := &elfcore.PRStatus{Pid: uint32(cpu + 1)}
		st.Regs[elfcore.RegRIP] = tTextVirt + 0x2000
		st.Regs[elfcore.RegRSP] = tPOB + 0x100000
		notes = append(notes, st.Note(), elfcore.Note{Name: elfcore.NameQEMU, Desc: make([]byte, 0x1b0)})
	}
	notes = append(notes, elfcore.Note{Name: elfcore.NameVMCOREINFO, Type: elfcore.NT_VMCOREINFO, Desc: []byte(vmci)})
	f, err := os.Create(tInputs.qemu)
	if err != nil {
		return err
	}
	defer f.Close()
	w := elfcore.NewWriter(f, elf.EM_X86_64, 1, elfcore.EncodeNotes(notes))
	if _, err := f.WriteAt(mem, w.DataOffset()); err != nil {
		return err
	}
	if err := w.AddLoad(elfcore.ProgHeader{Off: uint64(w.DataOffset()), Filesz: tMem, Memsz: tMem, Flags: elf.PF_R | elf.PF_W | elf.PF_X}); err != nil {
		return err
	}
	return w.Finish()
}

// ldx runs a command line in-process.
func ldx(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

func TestDmesg(t *testing.T) {
	raw, vmcore, qemu := testInputs(t)
	for _, in := range []string{raw, vmcore, qemu} {
		t.Run(filepath.Base(in), func(t *testing.T) {
			out, errs, code := ldx("dmesg", in)
			if code != 0 || out != tDmesg || errs != "" {
				t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, errs, out, tDmesg)
			}
		})
	}
	out, _, _ := ldx("dmesg", "--caller", "--seq", vmcore)
	for _, want := range []string{"#0 [    0.000000][    T0] Linux", "#2 [    2.000001][    C1] ldx-test: a", "#1 [    1.500000][    T1] ldx-test: two\n" + strings.Repeat(" ", 26) + "lines\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("--caller --seq output lacks %q:\n%s", want, out)
		}
	}
	out, _, code := ldx("dmesg", "--json", vmcore)
	var j struct {
		Format  string
		Records []struct {
			Seq    uint64
			TsNsec uint64 `json:"ts_nsec"`
			Time   string
			Caller string
			Text   string
		}
		Skipped map[string]int
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || code != 0 {
		t.Fatalf("--json: %v, exit %d\n%s", err, code, out)
	}
	if j.Format != "lockless" || len(j.Records) != 4 || j.Records[3].Time != "123.456789" || j.Records[2].Caller != "C1" ||
		j.Records[2].Text != `ldx-test: a \x01 control byte and \xc3\xa9` || j.Records[1].Text != "ldx-test: two\nlines" {
		t.Errorf("--json: %+v", j)
	}
}

func TestDmesgCorruptRecord(t *testing.T) {
	_, vmcore, _ := testInputs(t)
	// Break record 1's data block ID in a copy of the vmcore: found
	// through the physical address ldx vtop gives for the text ring.
	b, err := os.ReadFile(vmcore)
	if err != nil {
		t.Fatal(err)
	}
	id1 := make([]byte, 8)
	binary.LittleEndian.PutUint64(id1, uint64(1<<32-(16+1))+2)
	i := bytes.Index(b, append(id1, "ldx-test: two"...))
	if i < 0 {
		t.Fatal("record 1's data block not found in the vmcore")
	}
	b[i] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.vmcore")
	os.WriteFile(bad, b, 0o600)
	out, errs, code := ldx("dmesg", bad)
	if code != 0 || strings.Contains(out, "two") || !strings.Contains(out, "ldx-test-marker") ||
		!strings.Contains(errs, "1 of 4 records skipped: 1 corrupt") || !strings.Contains(errs, "text was overwritten") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

func TestInfo(t *testing.T) {
	raw, vmcore, qemu := testInputs(t)
	for _, tc := range []struct {
		in       string
		producer string
	}{{raw, "livedump (raw device or image)"}, {vmcore, "livedump, extracted by ldx"}, {qemu, "QEMU dump-guest-memory"}} {
		t.Run(filepath.Base(tc.in), func(t *testing.T) {
			out, errs, code := ldx("info", tc.in)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			for _, want := range []string{"release:          " + tRelease, "cpus:             2", "paging:           4-level",
				"page_offset_base: 0xffff9a4c00000000", "phys_base:        -0x1b000000", "kaslr:            on, kernel offset 0x1b000000",
				"vmalloc:          0xffffb4e3c0000000", "producer:         " + tProducer(tc.producer), "Program headers", "Notes:", "VMCOREINFO"} {
				if !strings.Contains(out, want) {
					t.Errorf("info lacks %q:\n%s", want, out)
				}
			}
			out, _, _ = ldx("info", "--json", tc.in)
			var j map[string]any
			if err := json.Unmarshal([]byte(out), &j); err != nil {
				t.Fatal(err)
			}
			if j["release"] != tRelease || j["page_offset_base"] != "0xffff9a4c00000000" || j["phys_base"] != "-0x1b000000" ||
				j["paging_levels"] != 4.0 || j["cpus"] != 2.0 || j["live"] != true || j["producer"] != tc.producer {
				t.Errorf("--json: %v", j)
			}
		})
	}
}

func tProducer(s string) string { return s }

func TestVMCOREINFOCmd(t *testing.T) {
	_, vmcore, qemu := testInputs(t)
	out, _, code := ldx("vmcoreinfo", qemu)
	if code != 0 || out != tVMCOREINFO() {
		t.Errorf("exit %d:\n%s", code, out)
	}
	out, _, code = ldx("vmcoreinfo", vmcore, "--key", "SYMBOL(_stext)", "-k", "phys_base", "-k", "OSRELEASE")
	if code != 0 || out != fmt.Sprintf("%x\n-452984832\n%s\n", uint64(tTextVirt), tRelease) {
		t.Errorf("--key: exit %d %q", code, out)
	}
	out, errs, code := ldx("vmcoreinfo", vmcore, "-k", "OSRELEASE", "-k", "NOPE")
	if code != 1 || out != tRelease+"\n" || !strings.Contains(errs, "no NOPE") {
		t.Errorf("missing key: exit %d %q %q", code, out, errs)
	}
	out, _, code = ldx("vmcoreinfo", "--json", vmcore)
	if code != 0 || !strings.HasPrefix(out, "{\n  \"OSRELEASE\": \""+tRelease+"\",\n  \"BUILD-ID\"") || !strings.Contains(out, `"CRASHTIME": "`) {
		t.Errorf("--json:\n%s", out)
	}
	var j map[string]string
	if err := json.Unmarshal([]byte(out), &j); err != nil || j["NUMBER(phys_base)"] != "-452984832" {
		t.Errorf("--json: %v %v", err, j)
	}
}

func TestRead(t *testing.T) {
	raw, vmcore, qemu := testInputs(t)
	for _, in := range []string{raw, vmcore, qemu} {
		t.Run(filepath.Base(in), func(t *testing.T) {
			out, errs, code := ldx("read", in, "init_uts_ns+0x80", "32")
			want := fmt.Sprintf("%016x  %s  |%s|\n", uint64(tUts+0x80), "00 00 36 2e 31 2e 30 2d  6c 64 78 2d 61 6e 61 6c", "..6.1.0-ldx-anal")
			want += fmt.Sprintf("%016x  %s  |%s|\n", uint64(tUts+0x90), "79 73 69 73 00 00 00 00  00 00 00 00 00 00 00 00", "ysis............")
			if code != 0 || !strings.HasPrefix(out, want) {
				t.Errorf("exit %d %s\n%s\nwant prefix\n%s", code, errs, out, want)
			}
			out, _, code = ldx("read", "--raw", in, "init_uts_ns+0x82", "18")
			if code != 0 || out != tRelease {
				t.Errorf("--raw: %q", out)
			}
			out, _, code = ldx("read", "--raw", in, fmt.Sprintf("%x", uint64(tVmalloc+0x1000)), "14")
			if code != 0 || out != "a vmalloc page" {
				t.Errorf("vmalloc: %q", out)
			}
			out, _, code = ldx("read", "--raw", "--phys", in, "0x1e00000", "0xe")
			if code != 0 || out != "a vmalloc page" {
				t.Errorf("--phys: %q", out)
			}
		})
	}
	// Repeated lines collapse; the end address follows the star.
	out, _, _ := ldx("read", vmcore, fmt.Sprintf("%x", uint64(tUts+0x2000)), "64")
	if want := fmt.Sprintf("%016x  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n*\n%016x\n", uint64(tUts+0x2000), uint64(tUts+0x2040)); out != want {
		t.Errorf("collapsed:\n%s\nwant\n%s", out, want)
	}
	// Unmapped: what was read is printed, the error names the address.
	end := uint64(tVmalloc + 0x2000)
	out, errs, code := ldx("read", vmcore, fmt.Sprintf("%x", uint64(end-16)), "64")
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(errs, fmt.Sprintf("virtual address %#x", uint64(end))) {
		t.Errorf("unmapped: exit %d\n%s%s", code, out, errs)
	}
	for _, args := range [][]string{{"read", vmcore, "no_such_symbol"}, {"read", vmcore, "init_uts_ns", "0"}, {"read", vmcore}, {"read", vmcore, "1000", "zz"}} {
		if _, errs, code := ldx(args...); code != exitUsage {
			t.Errorf("%q: exit %d, %s", args, code, errs)
		}
	}
}

func TestVtop(t *testing.T) {
	raw, vmcore, qemu := testInputs(t)
	for _, in := range []string{raw, vmcore, qemu} {
		t.Run(filepath.Base(in), func(t *testing.T) {
			out, errs, code := ldx("vtop", "--json", in, "init_uts_ns", fmt.Sprintf("%x", uint64(tPOB+0x1234567)), fmt.Sprintf("%#x", uint64(tVmalloc+0x1008)))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var rs []struct {
				Region       string
				Paddr        string
				PageSize     uint64 `json:"page_size"`
				Levels       []struct{ Level string }
				LinearAgrees *bool `json:"linear_agrees"`
			}
			if err := json.Unmarshal([]byte(out), &rs); err != nil {
				t.Fatal(err)
			}
			want := []struct {
				region, paddr string
				size          uint64
				levels        int
				linear        bool
			}{
				{"kernel image", fmt.Sprintf("%#x", imagePA(tUts)), 2 << 20, 3, true},
				{"direct map", "0x1234567", 2 << 20, 3, true},
				{"vmalloc/ioremap", "0x1e00008", 4096, 4, false},
			}
			for i, w := range want {
				r := rs[i]
				if r.Region != w.region || r.Paddr != w.paddr || r.PageSize != w.size || len(r.Levels) != w.levels || (r.LinearAgrees != nil) != w.linear || (w.linear && !*r.LinearAgrees) {
					t.Errorf("%d: %+v, want %+v", i, r, w)
				}
			}
		})
	}
	out, errs, code := ldx("vtop", vmcore, "init_uts_ns", "0x7ffd00001000")
	for _, want := range []string{"kernel image", "linear", "agrees", "pgd", "pud", "pmd", "PRESENT|RW|ACCESSED|DIRTY|PSE"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 || !strings.Contains(out, "pass its mm->pgd with --pgd") || !strings.Contains(errs, "1 of 2 addresses") {
		t.Errorf("user address without --pgd: exit %d\n%s%s", code, out, errs)
	}
	// A process's page tables: here the kernel's own PGD, given as a CR3
	// value, translates kernel addresses the same way.
	out, _, code = ldx("vtop", "--pgd", fmt.Sprintf("%#x", imagePA(tPgt)), vmcore, "init_uts_ns")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("physical  %#x", imagePA(tUts))) {
		t.Errorf("--pgd: exit %d\n%s", code, out)
	}
}

func TestAnalysisBadInput(t *testing.T) {
	f := filepath.Join(t.TempDir(), "notadump")
	os.WriteFile(f, bytes.Repeat([]byte("x"), 8192), 0o600)
	for _, c := range []string{"info", "dmesg", "vmcoreinfo"} {
		if _, errs, code := ldx(c, f); code != exitBadInput {
			t.Errorf("%s: exit %d, %s", c, code, errs)
		}
	}
	if _, errs, code := ldx("vtop", f, "0"); code != exitBadInput {
		t.Errorf("vtop: exit %d, %s", code, errs)
	}
	if _, _, code := ldx("vtop", f); code != exitUsage {
		t.Errorf("vtop without ADDR: exit %d", code)
	}
}
