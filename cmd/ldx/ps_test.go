package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/vmlinux"
	"ldx/kmod/kmodtest"
	"ldx/kmod/manifest"
)

// psFixture is a small debug "vmlinux" with 6.1's task_struct, rq and
// per-CPU shapes, linked at the kernel's address (elfcore/kernel/tasks/testdata).
const psFixture = "../../elfcore/kernel/tasks/testdata/vmlinux.elf"

// psTask as the tests compare it.
type psRow struct {
	PID, TGID, PPID int32
	State           string
	CPU             int32
	Current         bool
	Comm            string
	Found           string
}

// psWant is what the synthetic kernel of psDump holds.
var psWant = []psRow{
	{0, 0, 0, "R", 0, false, "swapper/0", "idle"},
	{0, 0, 1, "R", 1, false, "swapper/1", "idle"},
	{1, 1, 0, "S", 0, true, "init", "task list"},
	{2, 2, 0, "S", 1, false, "kthreadd", "task list"},
	{3, 3, 2, "I", 1, false, "kworker/1:0", "task list"},
	{100, 100, 1, "S", 0, false, "ldx-app", "task list"},
	{101, 100, 1, "R", 1, true, "ldx-app-worker", "task list"},
	{102, 100, 1, "D", 0, false, "ldx-app-io", "task list"},
}

// psDump writes a raw livedump device of the analysis tests' synthetic
// kernel (analysis_test.go) with the tasks of psWant laid out as the
// fixture's DWARF says. vmci edits its VMCOREINFO; damage edits memory
// last.
func psDump(t *testing.T, v *vmlinux.File, vmci func(string) string, damage func(p tPhys, addr map[string]uint64)) string {
	t.Helper()
	off := func(typ, member string) uint64 {
		o, err := v.MemberOffset(typ, member)
		if err != nil {
			t.Fatal(err)
		}
		return uint64(o)
	}
	sym := func(name string) uint64 {
		a, err := v.Symbol(name)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	const kaslr = tTextVirt - 0xffffffff81000000
	p := tKernel()
	pa := func(va uint64) uint64 {
		if va >= tTextVirt {
			return imagePA(va)
		}
		return va - tPOB
	}
	put64 := func(va, x uint64) { p.put(pa(va), x) }
	put32 := func(va uint64, x uint32) {
		copy(p[pa(va):], []byte{byte(x), byte(x >> 8), byte(x >> 16), byte(x >> 24)})
	}
	heap := uint64(tPOB + 0x800000)
	alloc := func(n uint64) uint64 { a := heap; heap += (n + 63) &^ 63; return a }

	addr := map[string]uint64{}
	initTask := sym("init_task") + kaslr
	task := func(name string, at uint64, pid, tgid int32, parent string, state uint32, cpu uint32) uint64 {
		if at == 0 {
			at = alloc(0x200)
		}
		addr[name] = at
		put32(at+off("task_struct", "pid"), uint32(pid))
		put32(at+off("task_struct", "tgid"), uint32(tgid))
		put32(at+off("task_struct", "__state"), state)
		put32(at+off("task_struct", "thread_info.cpu"), cpu)
		put64(at+off("task_struct", "real_parent"), addr[parent])
		copy(p[pa(at+off("task_struct", "comm")):], name)
		return at
	}
	task("swapper/0", initTask, 0, 0, "swapper/0", 0, 0)
	task("init", 0, 1, 1, "swapper/0", 0x2001, 0)
	task("swapper/1", 0, 0, 0, "init", 0, 1)
	task("kthreadd", 0, 2, 2, "swapper/0", 1, 1)
	task("kworker/1:0", 0, 3, 3, "kthreadd", 0x402, 1)
	task("ldx-app", 0, 100, 100, "init", 1, 0)
	task("ldx-app-worker", 0, 101, 100, "init", 0, 1)
	task("ldx-app-io", 0, 102, 100, "init", 2, 0)
	link := func(nodes ...uint64) {
		for i, n := range nodes {
			put64(n, nodes[(i+1)%len(nodes)])
			put64(n+8, nodes[(i+len(nodes)-1)%len(nodes)])
		}
	}
	procs := []string{"init", "kthreadd", "kworker/1:0", "ldx-app"}
	nodes := []uint64{initTask + off("task_struct", "tasks")}
	for _, name := range procs {
		nodes = append(nodes, addr[name]+off("task_struct", "tasks"))
		threads := []string{name}
		if name == "ldx-app" {
			threads = append(threads, "ldx-app-worker", "ldx-app-io")
		}
		sig := alloc(0x40)
		head := []uint64{sig + off("signal_struct", "thread_head")}
		for _, th := range threads {
			put64(addr[th]+off("task_struct", "signal"), sig)
			head = append(head, addr[th]+off("task_struct", "thread_node"))
		}
		link(head...)
	}
	link(nodes...)
	// Two CPUs online; init runs on CPU 0, ldx-app-worker on CPU 1.
	put64(sym("__cpu_online_mask")+kaslr, 0b11)
	for c, run := range []string{"init", "ldx-app-worker"} {
		area := alloc(0x1000)
		put64(sym("__per_cpu_offset")+kaslr+8*uint64(c), area)
		rq := area + sym("runqueues") // zero-based per-CPU: no KASLR
		put64(rq+off("rq", "curr"), addr[run])
		put64(rq+off("rq", "idle"), addr[fmt.Sprintf("swapper/%d", c)])
	}
	if damage != nil {
		damage(p, addr)
	}

	text := strings.Replace(tVMCOREINFO(), "OSRELEASE="+tRelease, "OSRELEASE=6.1.0-ldx-ps", 1)
	text = strings.Replace(text, "BUILD-ID=0123456789abcdef0123456789abcdef01234567", "BUILD-ID="+hex.EncodeToString(v.BuildID()), 1)
	if vmci != nil {
		text = vmci(text)
	}
	k := &kmodtest.Kernel{
		Mem: p, RAM: []elfcore.Range{{Start: 0x1000, End: 0x9fc00}, {Start: 1 << 20, End: tMem - 0x20000}},
		MaxPFN: (tMem - 0x20000) / 4096, TextPhys: tTextPhys, TextVirt: tTextVirt, TextSize: 4 << 20,
		PageOffsetBase: tPOB, CPUs: 2, VMCOREINFO: []byte(text), VMCOREINFONote: 0x1c00000,
		LeaderPid: 15, IP: tTextVirt + 0x1000,
	}
	raw := filepath.Join(t.TempDir(), "device.img")
	run0 := kmodtest.Run{Prepared: manifest.Zeroed, Manifest: &manifest.Manifest{}, Start: time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)}
	if _, err := kmodtest.WriteFile(raw, k, &run0); err != nil {
		t.Fatal(err)
	}
	return raw
}

func openFixture(t *testing.T, path string) *vmlinux.File {
	t.Helper()
	v, err := vmlinux.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// psDecoded is ps --json as a script reads it.
type psDecoded struct {
	Release     string
	KASLROffset string `json:"kaslr_offset"`
	Layout      struct{ State, CPU, Threads string }
	CPUs        []struct{ CPU int }
	Tasks       []struct {
		PID, TGID, PPID int32
		State           string
		CPU             int32
		Current         bool
		Comm, Found     string
	}
	Skipped  int
	Problems []string
}

func psJSON(t *testing.T, out string) (rows []psRow, rep psDecoded) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("ps --json: %v\n%s", err, out)
	}
	for _, x := range rep.Tasks {
		rows = append(rows, psRow{x.PID, x.TGID, x.PPID, x.State, x.CPU, x.Current, x.Comm, x.Found})
	}
	return rows, rep
}

func TestPs(t *testing.T) {
	v := openFixture(t, psFixture)
	raw := psDump(t, v, nil, nil)
	vmcore := filepath.Join(t.TempDir(), "vmcore")
	if _, errs, code := ldx("extract", "-q", raw, "-o", vmcore); code != 0 {
		t.Fatalf("extract: exit %d: %s", code, errs)
	}
	for _, in := range []string{raw, vmcore} {
		t.Run(filepath.Base(in), func(t *testing.T) {
			out, errs, code := ldx("ps", in, "--vmlinux", psFixture, "--json")
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			rows, rep := psJSON(t, out)
			if !slices.Equal(rows, psWant) {
				t.Errorf("tasks\n%v\nwant\n%v", rows, psWant)
			}
			if rep.Release != "6.1.0-ldx-ps" || rep.KASLROffset != fmt.Sprintf("%#x", uint64(tTextVirt-0xffffffff81000000)) || len(rep.CPUs) != 2 ||
				rep.Layout.Threads != "signal_struct.thread_head" || len(rep.Problems) != 0 || rep.Skipped != 0 {
				t.Errorf("report %+v", rep)
			}
			// For people: a header, the running tasks marked with ">",
			// numbers right-aligned.
			out, errs, code = ldx("ps", "--vmlinux", psFixture, in)
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if code != 0 || errs != "" || len(lines) != 2+len(psWant) {
				t.Fatalf("exit %d, stderr %q, stdout\n%s", code, errs, out)
			}
			if f := strings.Fields(lines[0]); !slices.Equal(f, []string{"PID", "TGID", "PPID", "CPU", "ST", "TASK", "COMM"}) {
				t.Errorf("header %q", lines[0])
			}
			for i, w := range psWant {
				f := strings.Fields(lines[2+i])
				if w.Current != (f[0] == ">") {
					t.Errorf("line %q: running %v", lines[2+i], w.Current)
				}
				if f[len(f)-1] != w.Comm || f[len(f)-3] != w.State {
					t.Errorf("line %q, want %+v", lines[2+i], w)
				}
			}
			if !strings.Contains(out, " >  101   100     1    1  R   0x") {
				t.Errorf("columns not aligned as expected:\n%s", out)
			}
		})
	}
}

// TestPsDamage: a broken list is reported on stderr with its address;
// what could be read is listed and the exit code is 0.
func TestPsDamage(t *testing.T) {
	v := openFixture(t, psFixture)
	tasksOff, _ := v.MemberOffset("task_struct", "tasks")
	nowhere := uint64(tPOB + tMem + 0x1000) // beyond RAM: not mapped
	var at uint64
	raw := psDump(t, v, nil, func(p tPhys, addr map[string]uint64) {
		at = addr["kthreadd"] + uint64(tasksOff)
		p.put(at-tPOB, nowhere)
	})
	out, errs, code := ldx("ps", raw, "--vmlinux", psFixture, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rows, rep := psJSON(t, out)
	var pids []int32
	for _, r := range rows {
		pids = append(pids, r.PID)
	}
	// init and kthreadd from the list, the idle tasks and CPU 1's running
	// thread from the runqueues; the unreadable "task" is skipped.
	if !slices.Equal(pids, []int32{0, 0, 1, 2, 101}) || rep.Skipped != 1 {
		t.Errorf("pids %v, skipped %d", pids, rep.Skipped)
	}
	for _, want := range []string{fmt.Sprintf("reading the next pointer at %#x", nowhere), "ldx: ps: ", "the list may be incomplete"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if rows[4].Found != "runqueue" {
		t.Errorf("pid 101 found via %q", rows[4].Found)
	}
}

func TestPsExitCodes(t *testing.T) {
	v := openFixture(t, psFixture)
	raw := psDump(t, v, nil, nil)
	dir := t.TempDir()
	notELF := filepath.Join(dir, "not-elf")
	os.WriteFile(notELF, bytes.Repeat([]byte("x"), 4096), 0o644)
	other := "../../elfcore/vmlinux/testdata/fixture-dwarf5.elf" // 6.1.0-fixture, another build-id
	// A dump with no BUILD-ID and the other fixture's release: the pair
	// passes the match check, but that vmlinux has no runqueue types.
	noID := psDump(t, v, func(s string) string {
		s = strings.Replace(s, "OSRELEASE=6.1.0-ldx-ps", "OSRELEASE=6.1.0-fixture", 1)
		return regexpLine("BUILD-ID").ReplaceAllString(s, "")
	}, nil)
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no --vmlinux", []string{"ps", raw}, exitUsage, "--vmlinux VMLINUX is required"},
		{"no FILE", []string{"ps", "--vmlinux", psFixture}, exitUsage, "accepts 1 arg"},
		{"unknown flag", []string{"ps", raw, "--vmlinux", psFixture, "--bogus"}, exitUsage, "bogus"},
		{"vmlinux missing", []string{"ps", raw, "--vmlinux", filepath.Join(dir, "nope")}, exitBadInput, "--vmlinux"},
		{"vmlinux not ELF", []string{"ps", raw, "--vmlinux", notELF}, exitBadInput, "--vmlinux"},
		{"not a dump", []string{"ps", notELF, "--vmlinux", psFixture}, exitBadInput, notELF},
		{"another kernel's vmlinux", []string{"ps", raw, "--vmlinux", other}, exitBadInput, "is not the dumped kernel's: its build-id is"},
		{"vmlinux lacks the types", []string{"ps", noID, "--vmlinux", other}, exitFailure, "lacks what the task walk needs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errs, code := ldx(c.args...)
			t.Logf("exit %d: %s", code, errs)
			if code != c.code || !strings.Contains(errs, c.want) || !strings.HasPrefix(errs, "ldx: ") || out != "" {
				t.Errorf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, c.code, out, errs, c.want)
			}
		})
	}
}

// regexpLine matches the VMCOREINFO line of key.
func regexpLine(key string) *regexp.Regexp {
	return regexp.MustCompile("(?m)^" + regexp.QuoteMeta(key) + "=.*\n")
}
