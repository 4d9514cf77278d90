package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"ldx/elfcore"
)

func TestParsers(t *testing.T) {
	if got, _ := parseCPUList("0-3,5,8-9"); !reflect.DeepEqual(got, []int{0, 1, 2, 3, 5, 8, 9}) {
		t.Errorf("parseCPUList: %v", got)
	}
	if _, err := parseCPUList("3-1"); err == nil {
		t.Error("bad CPU list accepted")
	}
	if s := cpuList([]int{8, 9, 10, 11, 14}); s != "8-11,14" {
		t.Errorf("cpuList: %s", s)
	}
	if got := parseKmsg([]byte("4,812,1234,-;livedump: To start a livedump the current state must be LIVEDUMP_STATE_INIT.\n SUBSYSTEM=x\n6,813,1300,c;plain; with semicolon\n")); !reflect.DeepEqual(got, []string{"livedump: To start a livedump the current state must be LIVEDUMP_STATE_INIT.", "plain; with semicolon"}) {
		t.Errorf("parseKmsg: %q", got)
	}
	if s := unescapeMount(`/mnt/a\040b\011c`); s != "/mnt/a b\tc" {
		t.Errorf("unescapeMount: %q", s)
	}
	if u, _ := percpuUnit([]string{"percpu: Embedded 53 pages/cpu s185496 r0 d31592 u1048576"}, nil); u != 1<<20 {
		t.Errorf("percpu unit %d", u)
	}
	if u, _ := percpuUnit(nil, []uint64{0x1012340, 0x1052340, 0x1092340}); u != 0x40000 {
		t.Errorf("percpu unit from crash_notes %#x", u)
	}
	if u, _ := percpuUnit(nil, []uint64{0x1012340, 0x1052340, 0x7092340}); u != 0 {
		t.Errorf("uneven crash_notes gave %#x", u)
	}
}

func TestReadIomem(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "iomem")
	os.WriteFile(p, []byte(`00000000-00000fff : Reserved
00001000-0009fbff : System RAM
000a0000-000bffff : PCI Bus 0000:00
00100000-bffdffff : System RAM
  01000000-01e0280f : Kernel code
  3f000000-3fffffff : System RAM
bffe0000-bfffffff : Reserved
100000000-13fffffff : System RAM
`), 0o644)
	ram, err := readIomem(p)
	want := []elfcore.Range{{Start: 0x1000, End: 0x9fc00}, {Start: 0x100000, End: 0xbffe0000}, {Start: 0x100000000, End: 0x140000000}}
	if err != nil || !reflect.DeepEqual(ram, want) {
		t.Errorf("readIomem: %x %v", ram, err)
	}
	os.WriteFile(p, []byte("00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n"), 0o644)
	if _, err := readIomem(p); err == nil {
		t.Error("a non-root /proc/iomem (all zeros) was accepted")
	}
}
