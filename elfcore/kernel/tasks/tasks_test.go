package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"ldx/elfcore/kernel/kmem/kmemtest"
	"ldx/elfcore/vmlinux"
)

var errNotFound = errors.New("not found")

// fakeLayout answers like *vmlinux.File from maps.
type fakeLayout struct {
	members map[string]int64 // "task_struct.pid" → offset
	sizes   map[string]int64
	symbols map[string]uint64
}

func (l *fakeLayout) Symbol(name string) (uint64, error) {
	if v, ok := l.symbols[name]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("symbol %s: %w", name, errNotFound)
}

func (l *fakeLayout) StructSize(name string) (int64, error) {
	if v, ok := l.sizes[name]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("struct %s: %w", name, errNotFound)
}

func (l *fakeLayout) MemberOffset(typ, member string) (int64, error) {
	if v, ok := l.members[typ+"."+member]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("%s.%s: %w", typ, member, errNotFound)
}

// Kernel generations the fake layout can take.
type generation int

const (
	gen61  generation = iota // __state, thread_info.cpu, thread_node and thread_group
	gen612                   // as 6.1 without thread_group (removed in 6.7)
	gen410                   // long state, task_struct.cpu, thread_node
	gen313                   // long state, cpu via task->stack, thread_group only
	genUP                    // 6.1 without SMP: no __per_cpu_offset
)

const (
	kaslr    = 0x1c000000
	imgLink  = 0xffffffff82000000
	heapBase = 0xffff888000000000
	taskSize = 0x400
	pcpuSize = 0x1000 // per-CPU area size in the fake heap
)

func newLayout(g generation) *fakeLayout {
	l := &fakeLayout{
		members: map[string]int64{
			"task_struct.tasks": 0x30, "task_struct.pid": 0x100, "task_struct.tgid": 0x104,
			"task_struct.exit_state": 0x108, "task_struct.real_parent": 0x110, "task_struct.comm": 0x200,
			"rq.curr": 0x40, "rq.idle": 0x48,
		},
		sizes: map[string]int64{"cpumask": 8},
		symbols: map[string]uint64{
			"init_task": imgLink, "runqueues": 0x300, "__per_cpu_start": 0, "__per_cpu_end": 0x800,
			"__per_cpu_offset": imgLink + 0x10000, "__cpu_online_mask": imgLink + 0x10800,
		},
	}
	m := l.members
	switch g {
	case gen61, gen612, genUP:
		m["task_struct.thread_info.cpu"], m["task_struct.__state"] = 0x14, 0x18
	case gen410:
		m["task_struct.cpu"], m["task_struct.state"] = 0x40, 0x18
	case gen313:
		m["task_struct.stack"], m["thread_info.cpu"], m["task_struct.state"] = 0x20, 0x10, 0x18
		delete(l.symbols, "__cpu_online_mask")
		l.symbols["cpu_online_bits"] = imgLink + 0x10800
	}
	if g != gen313 {
		m["task_struct.signal"], m["task_struct.thread_node"], m["signal_struct.thread_head"] = 0x180, 0x190, 0x10
	}
	if g != gen612 && g != gen410 {
		m["task_struct.thread_group"] = 0x1a0
	}
	if g == genUP {
		delete(l.symbols, "__per_cpu_offset")
		l.symbols["runqueues"] = imgLink + 0x20000
	}
	return l
}

// fakeKernel builds kernel memory with the fake layout: an image region
// (KASLR applied) and a heap in the direct map.
type fakeKernel struct {
	t    *testing.T
	g    generation
	l    *fakeLayout
	mem  kmemtest.Mem
	next uint64 // heap bump allocator
}

func newFakeKernel(t *testing.T, g generation) *fakeKernel {
	return newFakeKernelWith(t, g, newLayout(g))
}

// fixtureLink is where testdata/vmlinux.elf is linked.
const fixtureLink = 0xffffffff81000000

func newFakeKernelWith(t *testing.T, g generation, l *fakeLayout) *fakeKernel {
	k := &fakeKernel{t: t, g: g, l: l, next: heapBase + 0x10000}
	k.mem = kmemtest.Mem{{Base: imgLink + kaslr, Data: make([]byte, 0x30000)}, {Base: fixtureLink + kaslr, Data: make([]byte, 0x10000)},
		{Base: heapBase, Data: make([]byte, 0x800000)}}
	return k
}

func (k *fakeKernel) off(name string) uint64 {
	v, ok := k.l.members[name]
	if !ok {
		k.t.Fatalf("fake layout has no %s", name)
	}
	return uint64(v)
}

func (k *fakeKernel) alloc(n uint64) uint64 {
	a := k.next
	k.next += (n + 63) &^ 63
	return a
}

func (k *fakeKernel) initTask() uint64 { return k.l.symbols["init_task"] + kaslr }

// taskSpec is a task to write.
type taskSpec struct {
	pid, tgid int32
	parent    uint64
	state     uint32
	exit      uint32
	cpu       uint32
	comm      string
}

// writeTask writes a task_struct at addr (0: allocate one).
func (k *fakeKernel) writeTask(addr uint64, s taskSpec) uint64 {
	if addr == 0 {
		addr = k.alloc(taskSize)
	}
	m := k.mem
	m.PutU32(addr+k.off("task_struct.pid"), uint32(s.pid))
	m.PutU32(addr+k.off("task_struct.tgid"), uint32(s.tgid))
	m.PutU32(addr+k.off("task_struct.exit_state"), s.exit)
	m.PutU64(addr+k.off("task_struct.real_parent"), s.parent)
	comm := make([]byte, commLen)
	copy(comm, s.comm)
	m.Put(addr+k.off("task_struct.comm"), comm)
	switch k.g {
	case gen61, gen612, genUP:
		m.PutU32(addr+k.off("task_struct.__state"), s.state)
		m.PutU32(addr+k.off("task_struct.thread_info.cpu"), s.cpu)
	case gen410:
		m.PutU64(addr+k.off("task_struct.state"), uint64(s.state))
		m.PutU32(addr+k.off("task_struct.cpu"), s.cpu)
	case gen313:
		m.PutU64(addr+k.off("task_struct.state"), uint64(s.state))
		ti := k.alloc(0x40)
		m.PutU64(addr+k.off("task_struct.stack"), ti)
		m.PutU32(ti+k.off("thread_info.cpu"), s.cpu)
	}
	return addr
}

// link writes a circular list through the list_heads at nodes.
func (k *fakeKernel) link(nodes ...uint64) {
	for i, n := range nodes {
		k.mem.PutU64(n, nodes[(i+1)%len(nodes)])
		k.mem.PutU64(n+8, nodes[(i+len(nodes)-1)%len(nodes)])
	}
}

// processes links the leaders on init_task.tasks and each group's threads
// on its thread lists. groups[i][0] is the leader.
func (k *fakeKernel) processes(groups ...[]uint64) {
	to := k.off("task_struct.tasks")
	nodes := []uint64{k.initTask() + to}
	for _, g := range groups {
		nodes = append(nodes, g[0]+to)
		if _, ok := k.l.members["task_struct.thread_node"]; ok {
			sig := k.alloc(0x100)
			head := []uint64{sig + k.off("signal_struct.thread_head")}
			for _, th := range g {
				k.mem.PutU64(th+k.off("task_struct.signal"), sig)
				head = append(head, th+k.off("task_struct.thread_node"))
			}
			k.link(head...)
		}
		if _, ok := k.l.members["task_struct.thread_group"]; ok {
			var tg []uint64
			for _, th := range g {
				tg = append(tg, th+k.off("task_struct.thread_group"))
			}
			k.link(tg...)
		}
	}
	k.link(nodes...)
}

// cpus writes the online mask, __per_cpu_offset and each CPU's rq.
func (k *fakeKernel) cpus(idle, curr []uint64) {
	if k.g == genUP {
		rq := k.l.symbols["runqueues"] + kaslr
		k.mem.PutU64(rq+k.off("rq.idle"), idle[0])
		k.mem.PutU64(rq+k.off("rq.curr"), curr[0])
		return
	}
	var mask uint64
	for c := range idle {
		mask |= 1 << c
		area := k.alloc(pcpuSize)
		k.mem.PutU64(k.l.symbols["__per_cpu_offset"]+kaslr+8*uint64(c), area)
		rq := area + k.l.symbols["runqueues"] // per-CPU symbols are not relocated
		k.mem.PutU64(rq+k.off("rq.idle"), idle[c])
		k.mem.PutU64(rq+k.off("rq.curr"), curr[c])
	}
	online := k.l.symbols["__cpu_online_mask"]
	if online == 0 {
		online = k.l.symbols["cpu_online_bits"]
	}
	k.mem.PutU64(online+kaslr, mask)
}

func (k *fakeKernel) list(t *testing.T) *List {
	t.Helper()
	return k.listWith(t, k.l)
}

func (k *fakeKernel) listWith(t *testing.T, layout Layout) *List {
	t.Helper()
	w, err := New(k.mem, layout, kaslr)
	if err != nil {
		t.Fatal(err)
	}
	l, err := w.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// row is a task as the tests compare it.
type row struct {
	pid, tgid, ppid int32
	state           string
	cpu             int32
	comm            string
	current         bool
	found           Found
}

func rows(l *List) []row {
	var r []row
	for _, t := range l.Tasks {
		r = append(r, row{t.PID, t.TGID, t.PPID, string(t.State), t.CPU, t.Comm, t.Current, t.Found})
	}
	return r
}

// standard builds a small 2-CPU system: init (pid 1) with a thread,
// kthreadd, a multi-threaded process, a zombie; CPU 0 idle, CPU 1 runs
// a thread of pid 200.
func standard(t *testing.T, g generation) *fakeKernel {
	return standardOn(newFakeKernel(t, g))
}

func standardOn(k *fakeKernel) *fakeKernel {
	it := k.initTask()
	k.writeTask(it, taskSpec{pid: 0, tgid: 0, parent: it, comm: "swapper/0"})
	idle1 := k.writeTask(0, taskSpec{pid: 0, tgid: 0, parent: it, cpu: 1, comm: "swapper/1"})
	init := k.writeTask(0, taskSpec{pid: 1, tgid: 1, parent: it, state: 0x2001, cpu: 1, comm: "init"})
	kthreadd := k.writeTask(0, taskSpec{pid: 2, tgid: 2, parent: it, state: 0x1, comm: "kthreadd"})
	kworker := k.writeTask(0, taskSpec{pid: 3, tgid: 3, parent: kthreadd, state: 0x402, comm: "kworker/0:0"})
	app := k.writeTask(0, taskSpec{pid: 200, tgid: 200, parent: init, state: 0x1, comm: "app"})
	th1 := k.writeTask(0, taskSpec{pid: 201, tgid: 200, parent: init, state: 0x0, cpu: 1, comm: "app-worker"})
	th2 := k.writeTask(0, taskSpec{pid: 202, tgid: 200, parent: init, state: 0x2, comm: "app-io"})
	zombie := k.writeTask(0, taskSpec{pid: 300, tgid: 300, parent: app, state: 0x80, exit: 0x20, comm: "defunct"})
	stopped := k.writeTask(0, taskSpec{pid: 301, tgid: 301, parent: init, state: 0x104, cpu: 1, comm: "stopped"})
	k.processes([]uint64{init}, []uint64{kthreadd}, []uint64{kworker}, []uint64{app, th1, th2}, []uint64{zombie}, []uint64{stopped})
	k.cpus([]uint64{it, idle1}, []uint64{it, th1})
	return k
}

var standardRows = []row{
	{0, 0, 0, "R", 0, "swapper/0", true, FoundIdle},
	{0, 0, 0, "R", 1, "swapper/1", false, FoundIdle},
	{1, 1, 0, "S", 1, "init", false, FoundList},
	{2, 2, 0, "S", 0, "kthreadd", false, FoundList},
	{3, 3, 2, "I", 0, "kworker/0:0", false, FoundList},
	{200, 200, 1, "S", 0, "app", false, FoundList},
	{201, 200, 1, "R", 1, "app-worker", true, FoundList},
	{202, 200, 1, "D", 0, "app-io", false, FoundList},
	{300, 300, 200, "Z", 0, "defunct", false, FoundList},
	{301, 301, 1, "T", 1, "stopped", false, FoundList},
}

func TestGenerations(t *testing.T) {
	for _, c := range []struct {
		name    string
		g       generation
		layout  LayoutInfo
		wantUP  bool
		threads string
	}{
		{"6.1", gen61, LayoutInfo{"task_struct.__state", "task_struct.thread_info.cpu", "signal_struct.thread_head", "__cpu_online_mask"}, false, ""},
		{"6.12", gen612, LayoutInfo{"task_struct.__state", "task_struct.thread_info.cpu", "signal_struct.thread_head", "__cpu_online_mask"}, false, ""},
		{"4.10", gen410, LayoutInfo{"task_struct.state", "task_struct.cpu", "signal_struct.thread_head", "__cpu_online_mask"}, false, ""},
		{"3.13", gen313, LayoutInfo{"task_struct.state", "thread_info.cpu at task_struct.stack", "task_struct.thread_group", "cpu_online_bits"}, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := standard(t, c.g).list(t)
			if got := rows(l); !slices.Equal(got, standardRows) {
				t.Errorf("tasks:\n%s\nwant\n%s", fmtRows(got), fmtRows(standardRows))
			}
			if l.Layout != c.layout {
				t.Errorf("layout %+v, want %+v", l.Layout, c.layout)
			}
			if len(l.Problems) != 0 || l.Skipped != 0 {
				t.Errorf("problems on a consistent kernel: %d skipped, %q", l.Skipped, l.Problems)
			}
			if len(l.CPUs) != 2 || l.CPUs[1].Curr != l.Tasks[6].Addr || l.CPUs[1].Idle != l.Tasks[1].Addr {
				t.Errorf("CPUs %+v", l.CPUs)
			}
		})
	}
}

func fmtRows(rs []row) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %+v\n", r)
	}
	return b.String()
}

func TestUniprocessor(t *testing.T) {
	k := newFakeKernel(t, genUP)
	it := k.initTask()
	k.writeTask(it, taskSpec{comm: "swapper", parent: it})
	sh := k.writeTask(0, taskSpec{pid: 1, tgid: 1, parent: it, comm: "sh"})
	k.processes([]uint64{sh})
	k.cpus([]uint64{it}, []uint64{sh})
	l := k.list(t)
	want := []row{{0, 0, 0, "R", 0, "swapper", false, FoundIdle}, {1, 1, 0, "R", 0, "sh", true, FoundList}}
	if got := rows(l); !slices.Equal(got, want) || len(l.Problems) != 0 {
		t.Errorf("tasks:\n%s\nproblems %q", fmtRows(got), l.Problems)
	}
}

func TestStateChar(t *testing.T) {
	for _, c := range []struct {
		state, exit uint32
		want        byte
	}{
		{0, 0, 'R'},
		{0x1, 0, 'S'},       // TASK_INTERRUPTIBLE
		{0x2001, 0, 'S'},    // | TASK_FREEZABLE
		{0x2, 0, 'D'},       // TASK_UNINTERRUPTIBLE
		{0x102, 0, 'D'},     // TASK_KILLABLE
		{0x104, 0, 'T'},     // TASK_STOPPED
		{0x8, 0, 't'},       // TASK_TRACED
		{0x80, 0x10, 'X'},   // TASK_DEAD, EXIT_DEAD
		{0x80, 0x20, 'Z'},   // TASK_DEAD, EXIT_ZOMBIE
		{0x0, 0x20, 'Z'},    // zombie
		{0x40, 0, 'P'},      // TASK_PARKED
		{0x402, 0, 'I'},     // TASK_IDLE
		{0x2402, 0, 'I'},    // TASK_IDLE | TASK_FREEZABLE
		{0x1000, 0, 'D'},    // TASK_RTLOCK_WAIT
		{0x8001, 0, 'D'},    // TASK_FROZEN: reported as D since 6.1
		{0x200, 0, 'R'},     // TASK_WAKING
		{0x800, 0, 'R'},     // TASK_NEW
		{0x400, 0, 'R'},     // TASK_NOLOAD alone
		{0xffff, 0x30, 'D'}, // RTLOCK/FROZEN win over everything
	} {
		if got := StateChar(c.state, c.exit); got != c.want {
			t.Errorf("StateChar(%#x, %#x) = %c, want %c", c.state, c.exit, got, c.want)
		}
	}
}

// TestDamage corrupts the standard kernel and checks the walk ends,
// names the address and lists what it still can.
func TestDamage(t *testing.T) {
	for _, c := range []struct {
		name        string
		g           generation
		damage      func(k *fakeKernel, l *List) (problem string)
		wantPids    []int32
		wantSkipped int
	}{
		{
			name: "process list cycles without returning to the head",
			g:    gen61,
			damage: func(k *fakeKernel, l *List) string {
				// stopped (pid 301) points back to kthreadd's node.
				to := k.off("task_struct.tasks")
				k.mem.PutU64(addrOf(l, 301)+to, addrOf(l, 2)+to)
				return fmt.Sprintf("the node at %#x points back to %#x, already visited", addrOf(l, 301)+to, addrOf(l, 2)+to)
			},
			wantPids: []int32{0, 0, 1, 2, 3, 200, 201, 202, 300, 301},
		},
		{
			name: "thread list cycles",
			g:    gen61,
			damage: func(k *fakeKernel, l *List) string {
				tn := k.off("task_struct.thread_node")
				k.mem.PutU64(addrOf(l, 202)+tn, addrOf(l, 201)+tn)
				return fmt.Sprintf("the node at %#x points back to %#x", addrOf(l, 202)+tn, addrOf(l, 201)+tn)
			},
			wantPids: []int32{0, 0, 1, 2, 3, 200, 201, 202, 300, 301},
		},
		{
			name: "thread_group list cycles",
			g:    gen313,
			damage: func(k *fakeKernel, l *List) string {
				tg := k.off("task_struct.thread_group")
				k.mem.PutU64(addrOf(l, 202)+tg, addrOf(l, 201)+tg)
				return fmt.Sprintf("the thread_group list of pid 200 (head %#x): the node at %#x points back to %#x", addrOf(l, 200)+tg, addrOf(l, 202)+tg, addrOf(l, 201)+tg)
			},
			wantPids: []int32{0, 0, 1, 2, 3, 200, 201, 202, 300, 301},
		},
		{
			name: "process list points to unmapped memory",
			g:    gen61,
			damage: func(k *fakeKernel, l *List) string {
				to := k.off("task_struct.tasks")
				bad := uint64(heapBase + 0x1000000 + to)
				k.mem.PutU64(addrOf(l, 200)+to, bad)
				return fmt.Sprintf("reading the next pointer at %#x after 5 entries", bad)
			},
			// app's threads are still read (they hang off app); the
			// unmapped "task" is skipped, and the list ends there.
			wantPids:    []int32{0, 0, 1, 2, 3, 200, 201, 202},
			wantSkipped: 1,
		},
		{
			name: "NULL next pointer",
			g:    gen61,
			damage: func(k *fakeKernel, l *List) string {
				to := k.off("task_struct.tasks")
				k.mem.PutU64(addrOf(l, 2)+to, 0)
				return fmt.Sprintf("the node at %#x points to 0x0, not a kernel address, after 2 entries", addrOf(l, 2)+to)
			},
			wantPids: []int32{0, 0, 1, 2, 201},
		},
		{
			name: "signal pointer garbage",
			g:    gen61,
			damage: func(k *fakeKernel, l *List) string {
				k.mem.PutU64(addrOf(l, 200)+k.off("task_struct.signal"), 0x1234)
				return fmt.Sprintf("threads of pid 200 (task %#x): task_struct.signal is 0x1234", addrOf(l, 200))
			},
			wantPids: []int32{0, 0, 1, 2, 3, 200, 201, 300, 301},
		},
		{
			name: "real_parent unreadable",
			g:    gen61,
			damage: func(k *fakeKernel, l *List) string {
				k.mem.PutU64(addrOf(l, 300)+k.off("task_struct.real_parent"), heapBase+0x1000000)
				return fmt.Sprintf("task %#x (pid 300): reading real_parent->tgid at %#x", addrOf(l, 300), uint64(heapBase+0x1000000)+k.off("task_struct.tgid"))
			},
			wantPids: []int32{0, 0, 1, 2, 3, 200, 201, 202, 300, 301},
		},
		{
			name: "runqueue idle pointer unmapped",
			g:    gen61,
			damage: func(k *fakeKernel, l *List) string {
				k.mem.PutU64(l.CPUs[1].RQ+k.off("rq.idle"), heapBase+0x1000000)
				return fmt.Sprintf("CPU 1: rq.idle task at %#x: reading task_struct", uint64(heapBase+0x1000000))
			},
			wantPids:    []int32{0, 1, 2, 3, 200, 201, 202, 300, 301},
			wantSkipped: 1,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := standard(t, c.g)
			clean := k.list(t)
			want := c.damage(k, clean)
			l := k.list(t)
			var pids []int32
			for _, tk := range l.Tasks {
				pids = append(pids, tk.PID)
			}
			if !slices.Equal(pids, c.wantPids) {
				t.Errorf("pids %v, want %v", pids, c.wantPids)
			}
			if !slices.ContainsFunc(l.Problems, func(p string) bool { return strings.Contains(p, want) }) {
				t.Errorf("no problem says %q: %q", want, l.Problems)
			}
			if l.Skipped != c.wantSkipped {
				t.Errorf("skipped %d, want %d (%q)", l.Skipped, c.wantSkipped, l.Problems)
			}
		})
	}
}

// TestCurrentOffList: a task running on a CPU but on no list (exiting)
// is listed, marked as found through the runqueue.
func TestCurrentOffList(t *testing.T) {
	k := standard(t, gen61)
	l := k.list(t)
	exiting := k.writeTask(0, taskSpec{pid: 400, tgid: 400, parent: addrOf(l, 1), state: 0x80, exit: 0x10, comm: "exiting"})
	k.mem.PutU64(l.CPUs[0].RQ+k.off("rq.curr"), exiting)
	l = k.list(t)
	i := slices.IndexFunc(l.Tasks, func(t Task) bool { return t.PID == 400 })
	if i < 0 {
		t.Fatalf("rq.curr's task is not listed: %v", rows(l))
	}
	if got := rows(l)[i]; got != (row{400, 400, 1, "X", 0, "exiting", true, FoundRunqueue}) {
		t.Errorf("got %+v", got)
	}
	if l.Tasks[0].Current {
		t.Errorf("swapper/0 still marked current")
	}
}

// TestLongList: the walk of a long (and a very long cyclic) list is
// bounded and linear.
func TestLongList(t *testing.T) {
	k := standard(t, gen612)
	it := k.initTask()
	l := k.list(t)
	// 2000 single-threaded processes.
	groups := [][]uint64{{addrOf(l, 1)}}
	for i := range 2000 {
		groups = append(groups, []uint64{k.writeTask(0, taskSpec{pid: int32(1000 + i), tgid: int32(1000 + i), parent: it, state: 1, comm: "p"})})
	}
	k.processes(groups...)
	l = k.list(t)
	if len(l.Tasks) != 2000+4 || len(l.Problems) != 0 {
		t.Errorf("%d tasks, problems %q", len(l.Tasks), l.Problems)
	}
	// The last one points back into the middle.
	to := k.off("task_struct.tasks")
	k.mem.PutU64(groups[2000][0]+to, groups[1000][0]+to)
	l = k.list(t)
	if len(l.Tasks) != 2000+4 || len(l.Problems) != 1 || !strings.Contains(l.Problems[0], "already visited, after 2001 entries") {
		t.Errorf("%d tasks, problems %q", len(l.Tasks), l.Problems)
	}
}

func TestCancel(t *testing.T) {
	k := standard(t, gen61)
	w, err := New(k.mem, k.l, kaslr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.List(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

func TestFatal(t *testing.T) {
	// Damaged DWARF must not size the walk's reads.
	for _, tc := range []struct {
		name   string
		damage func(l *fakeLayout)
		want   string
	}{
		{"task_struct spread over a terabyte", func(l *fakeLayout) { l.members["task_struct.comm"] = 1 << 40 }, "task_struct fields span"},
		{"cpumask of a gigabyte", func(l *fakeLayout) { l.sizes["cpumask"] = 1 << 30 }, "struct cpumask has size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := standard(t, gen61)
			tc.damage(k.l)
			_, err := New(k.mem, k.l, kaslr)
			var le *LayoutError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want a LayoutError saying %q", err, tc.want)
			}
		})
	}
	t.Run("layout lacks fields", func(t *testing.T) {
		k := standard(t, gen61)
		delete(k.l.members, "task_struct.__state")
		delete(k.l.members, "task_struct.thread_info.cpu")
		delete(k.l.members, "task_struct.thread_node")
		delete(k.l.members, "task_struct.thread_group")
		delete(k.l.symbols, "runqueues")
		_, err := New(k.mem, k.l, kaslr)
		var le *LayoutError
		if !errors.As(err, &le) || len(le.Missing) != 4 {
			t.Fatalf("err %v, want a LayoutError with 4 entries", err)
		}
		for _, want := range []string{"task_struct.__state", "task_struct.state", "task_struct.thread_info.cpu", "task_struct.cpu",
			"task_struct.thread_node", "task_struct.thread_group", "symbol runqueues"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %s: %v", want, err)
			}
		}
		if !errors.Is(err, errNotFound) {
			t.Errorf("the layout's own errors are not wrapped: %v", err)
		}
	})
	t.Run("wrong KASLR offset", func(t *testing.T) {
		k := standard(t, gen61)
		w, err := New(k.mem, k.l, kaslr+0x200000)
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.List(context.Background())
		if err == nil || !strings.Contains(err.Error(), "reading init_task") || !strings.Contains(err.Error(), fmt.Sprintf("%#x", uint64(imgLink+kaslr+0x200000))) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("init_task is not swapper", func(t *testing.T) {
		k := standard(t, gen61)
		k.mem.PutU32(k.initTask()+k.off("task_struct.pid"), 77)
		l := k.list(t)
		if len(l.Problems) == 0 || !strings.Contains(l.Problems[0], "not pid 0 swapper") {
			t.Errorf("problems %q", l.Problems)
		}
	})
}

func addrOf(l *List, pid int32) uint64 {
	for _, t := range l.Tasks {
		if t.PID == pid {
			return t.Addr
		}
	}
	panic(fmt.Sprintf("no pid %d", pid))
}

// TestVmlinuxFixture walks with a real *vmlinux.File as the Layout: a
// small C program with 6.1's shapes, linked like a kernel with a
// zero-based per-CPU section (testdata/regenerate.sh). The memory is
// written with the offsets its DWARF gives.
func TestVmlinuxFixture(t *testing.T) {
	v, err := vmlinux.Open("testdata/vmlinux.elf")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	l := &fakeLayout{members: map[string]int64{}, sizes: map[string]int64{}, symbols: map[string]uint64{}}
	for m := range newLayout(gen61).members {
		typ, member, _ := strings.Cut(m, ".")
		if l.members[m], err = v.MemberOffset(typ, member); err != nil {
			t.Fatal(err)
		}
	}
	for s := range newLayout(gen61).symbols {
		if l.symbols[s], err = v.Symbol(s); err != nil {
			t.Fatal(err)
		}
	}
	if l.sizes["cpumask"], err = v.StructSize("cpumask"); err != nil {
		t.Fatal(err)
	}
	// What vmlinux.c's _Static_asserts say, and the per-CPU symbol
	// below __per_cpu_end, 0-based.
	if l.members["task_struct.thread_info.cpu"] != 12 || l.members["task_struct.comm"] != 112 || l.symbols["runqueues"] != 0x40 ||
		l.symbols["init_task"] < fixtureLink || l.sizes["cpumask"] != 8 {
		t.Fatalf("the fixture's layout is not what vmlinux.c says: %v %v %v", l.members, l.symbols, l.sizes)
	}
	k := standardOn(newFakeKernelWith(t, gen61, l))
	got := k.listWith(t, v)
	if r := rows(got); !slices.Equal(r, standardRows) {
		t.Errorf("tasks:\n%s\nwant\n%s", fmtRows(r), fmtRows(standardRows))
	}
	if len(got.Problems) != 0 {
		t.Errorf("problems %q", got.Problems)
	}
	// Without a member, New names it and keeps the vmlinux's error.
	_, err = New(k.mem, noMember{v, "task_struct.real_parent"}, kaslr)
	if !errors.Is(err, vmlinux.ErrNotFound) || !strings.Contains(err.Error(), "real_parent") {
		t.Errorf("err %v", err)
	}
}

// noMember hides one member of a Layout.
type noMember struct {
	*vmlinux.File
	hide string
}

func (n noMember) MemberOffset(typ, member string) (int64, error) {
	if typ+"."+member == n.hide {
		return n.File.MemberOffset(typ, "no_such_"+member)
	}
	return n.File.MemberOffset(typ, member)
}
