package guest

import (
	"reflect"
	"strings"
	"testing"
)

// sampleConsole is shaped like a real 6.1 guest's console: CRLF line ends,
// kernel messages before the block, a dmesg timestamp on markers.
const sampleConsole = `[    1.923554] Run /init as init process
[    2.045566] ldx-e2e-marker: hello from the test guest 293a70d147a5
LDX-FACTS-BEGIN
== nonce
293a70d147a5
== uname-r
6.1.0-56-cloud-amd64
== cmdline
console=ttyS0 panic=-1 printk.devkmsg=on
== iomem
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
000f0000-000fffff : Reserved
  000f0000-000fffff : System ROM
00100000-1ffdffff : System RAM
  09800000-0a601ef1 : Kernel code
100000000-17fffffff : PCI Bus 0000:00
== vmcoreinfo
0x00000000011e0000 1024
== fw-cfg-vmcoreinfo
yes
== cpu-present
0-1
== cpu-possible
0-3
== cpu-online
0-1
== crash-notes
1 1f539400 368
0 1f439400 368
== kallsyms
ffffffff92800000 T _stext
ffffffff92800000 T _text
ffffffff93b98480 D page_offset_base
ffffffff94b42030 B vmcoreinfo_note
== meminfo
MemTotal:         481052 kB
== la57
no
== processes
91 ldx-sleeper-a
93 ldx-worker
== markers
[    2.045566] ldx-e2e-marker: hello from the test guest 293a70d147a5
[12345.000001] ldx-e2e-marker: [bracketed] text
LDX-FACTS-END
LDX-READY 293a70d147a5
`

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func TestParseFacts(t *testing.T) {
	f, err := parseFacts(crlf(sampleConsole))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"nonce", f.Nonce, "293a70d147a5"},
		{"release", f.Release, "6.1.0-56-cloud-amd64"},
		{"cmdline", f.Cmdline, "console=ttyS0 panic=-1 printk.devkmsg=on"},
		{"iomem entries", len(f.IOMem), 7},
		{"iomem nested", f.IOMem[3], IOMemEntry{Start: 0xf0000, End: 0xfffff, Name: "System ROM", Depth: 1}},
		{"iomem above 4G", f.IOMem[6], IOMemEntry{Start: 0x100000000, End: 0x17fffffff, Name: "PCI Bus 0000:00"}},
		{"system ram", f.SystemRAM, []Range{{0x1000, 0x9fbff}, {0x100000, 0x1ffdffff}}},
		{"vmcoreinfo", f.VMCOREINFO, NoteAddr{Addr: 0x11e0000, Size: 0x1024}},
		{"fw_cfg", f.FwCfgVMCOREINFO, true},
		{"present", f.NumPresent, 2},
		{"possible", f.NumPossible, 4},
		{"online", f.NumOnline, 2},
		{"crash notes sorted", f.CrashNotes, []CrashNote{{0, 0x1f439400, 368}, {1, 0x1f539400, 368}}},
		{"_text", f.Symbol("_text"), uint64(0xffffffff92800000)},
		{"page_offset_base", f.Symbol("page_offset_base"), uint64(0xffffffff93b98480)},
		{"kaslr offset", f.KASLROffset(), uint64(0x11800000)},
		{"memtotal", f.MemTotalKiB, uint64(481052)},
		{"la57", f.LA57, false},
		{"processes", f.Processes, []Process{{"ldx-sleeper-a", 91}, {"ldx-worker", 93}}},
		{"pid", f.PID("ldx-worker"), 93},
		{"markers", f.Markers, []string{
			"ldx-e2e-marker: hello from the test guest 293a70d147a5",
			"ldx-e2e-marker: [bracketed] text",
		}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestParseFactsErrors(t *testing.T) {
	block := func(body string) []byte {
		return []byte("LDX-FACTS-BEGIN\n== uname-r\n6.1.0-x\n" + body + "LDX-FACTS-END\n")
	}
	tests := []struct {
		name    string
		console []byte
		want    string // substring of the error; "" means success
	}{
		{"no block", []byte("booting\nKernel panic\n"), "no LDX-FACTS-BEGIN"},
		{"unterminated", []byte("LDX-FACTS-BEGIN\n== uname-r\nx\n"), "no LDX-FACTS-END"},
		{"no release", []byte("LDX-FACTS-BEGIN\n== cmdline\nx\nLDX-FACTS-END\n"), "no uname-r"},
		{"minimal", block(""), ""},
		{"end without newline", []byte("LDX-FACTS-BEGIN\n== uname-r\nx\nLDX-FACTS-END"), ""},
		{"bad iomem", block("== iomem\nzzzz-1 : RAM\n"), "bad iomem"},
		{"bad vmcoreinfo", block("== vmcoreinfo\n0x12\n"), "bad vmcoreinfo"},
		{"bad cpu list", block("== cpu-present\n3-1\n"), "bad CPU list"},
		{"bad kallsyms", block("== kallsyms\nffff T\n"), "bad kallsyms"},
		{"bad process", block("== processes\nabc ldx-worker\n"), "bad processes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFacts(tt.console)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// The last block wins: a serial log may hold an earlier, aborted attempt.
func TestParseFactsLastBlock(t *testing.T) {
	two := "LDX-FACTS-BEGIN\n== uname-r\nold\nLDX-FACTS-END\nnoise\nLDX-FACTS-BEGIN\n== uname-r\nnew\nLDX-FACTS-END\n"
	f, err := parseFacts([]byte(two))
	if err != nil {
		t.Fatal(err)
	}
	if f.Release != "new" {
		t.Fatalf("release %q, want new", f.Release)
	}
}

func TestCountCPUList(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  bool
	}{
		{"0", 1, false},
		{"0-1", 2, false},
		{"0-3,5,7-8", 7, false},
		{"", 0, false},
		{"a", 0, true},
		{"2-1", 0, true},
	}
	for _, tt := range tests {
		got, err := countCPUList(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("countCPUList(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  bool
	}{
		{"512M", 512, false},
		{"512", 512, false},
		{"1G", 1024, false},
		{"1.5G", 1536, false},
		{"4GiB", 4096, false},
		{"1024MB", 1024, false},
		{"0", 0, true},
		{"big", 0, true},
		{"1.1M", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseMemory(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestHexJSON(t *testing.T) {
	var h Hex
	if err := h.UnmarshalText([]byte("0xffffffff81000000")); err != nil || h != 0xffffffff81000000 {
		t.Fatalf("UnmarshalText: %v %v", h, err)
	}
	b, _ := h.MarshalText()
	if string(b) != "0xffffffff81000000" {
		t.Fatalf("MarshalText: %s", b)
	}
}
