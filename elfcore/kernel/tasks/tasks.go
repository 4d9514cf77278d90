// Package tasks lists the tasks of a Linux kernel from its memory, the way
// ps does on a running system: every thread of every process, and each
// CPU's idle task and the task it was running.
//
// Processes (thread-group leaders) are found on the list that starts at
// init_task.tasks, threads on their leader's signal->thread_head list
// (task_struct.thread_node, 3.14+) or, on kernels without it, on the
// circular task_struct.thread_group list. The idle tasks (pid 0,
// swapper/N), which are on neither list, and the task each CPU was running
// come from the per-CPU runqueues: rq.idle and rq.curr of
// runqueues at __per_cpu_offset[cpu].
//
// The walk reads memory that may be inconsistent or corrupt, so it is
// bounded: a node seen twice ends its list, a pointer that is not a kernel
// address is not followed, and no more than twice PID_MAX_LIMIT list
// entries are visited in all. Such damage, and tasks
// whose fields cannot be read, do not end the walk: they are skipped,
// counted and described (with the address) in List.Problems, and the rest
// is listed. Only what makes any listing impossible (a layout without the
// needed fields, an unreadable init_task) is an error.
package tasks

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// commLen is TASK_COMM_LEN (include/linux/sched.h), the size of
// task_struct.comm: 16 in every kernel.
const commLen = 16

// MaxTasks bounds every walk: PID_MAX_LIMIT on 64-bit kernels
// (include/linux/threads.h: 4 * 1024 * 1024). No kernel can have more
// tasks than pids, so a longer list is corrupt.
const MaxTasks = 4 * 1024 * 1024

// TASK_* state bits from include/linux/sched.h (identical in 4.14 through
// 6.12, checked against the 6.1 and 6.12 sources). They are macros, so
// DWARF does not have them.
const (
	taskInterruptible   = 0x0001
	taskUninterruptible = 0x0002
	taskStopped         = 0x0004 // __TASK_STOPPED
	taskTraced          = 0x0008 // __TASK_TRACED
	exitDead            = 0x0010
	exitZombie          = 0x0020
	taskParked          = 0x0040
	taskNoload          = 0x0400
	taskRTLockWait      = 0x1000 // 5.15+
	taskFrozen          = 0x8000 // 6.1+
	taskIdle            = taskUninterruptible | taskNoload

	// taskReport is TASK_REPORT: the states ps shows, one bit each.
	taskReport     = taskInterruptible | taskUninterruptible | taskStopped | taskTraced | exitDead | exitZombie | taskParked
	taskReportIdle = taskReport + 1
)

// stateChars is task_index_to_char's state_char[] (include/linux/sched.h,
// 4.14+), indexed by __task_state_index.
const stateChars = "RSDTtXZPI"

// StateChar returns the state letter the kernel reports for a task with
// these __state (or state) and exit_state values, as
// __task_state_index and task_index_to_char compute it (as in
// /proc/PID/stat and ps): R S D T t X Z P I.
func StateChar(state, exitState uint32) byte {
	s := (state | exitState) & taskReport
	if state&taskIdle == taskIdle {
		s = taskReportIdle
	}
	// The kernel reports tasks waiting for an RT lock and (since 6.1)
	// frozen tasks as uninterruptible.
	if state&(taskRTLockWait|taskFrozen) != 0 {
		s = taskUninterruptible
	}
	i := 0
	for s != 0 { // fls
		i++
		s >>= 1
	}
	return stateChars[i]
}

// Found says how the walk reached a task.
type Found string

const (
	// FoundList: on init_task.tasks or a thread list (what ps lists).
	FoundList Found = "task list"
	// FoundIdle: a CPU's idle task (rq.idle), on no list; init_task is
	// CPU 0's.
	FoundIdle Found = "idle"
	// FoundRunqueue: running on a CPU (rq.curr) but on no list, e.g. a
	// task that was exiting when memory was captured.
	FoundRunqueue Found = "runqueue"
)

// Task is one task_struct.
type Task struct {
	Addr uint64 // address of the task_struct
	PID  int32
	TGID int32
	// PPID is the tgid of real_parent (what ps shows), -1 if it could not
	// be read.
	PPID int32
	// State is the letter ps shows; StateBits and ExitState the raw
	// task_struct.__state (or .state) and exit_state.
	State     byte
	StateBits uint32
	ExitState uint32
	CPU       int32 // task_cpu(): where it runs, or ran last
	Comm      string
	// Current: the task is rq.curr of a CPU (running, or about to be
	// switched out, when memory was captured).
	Current bool
	Found   Found
}

// CPU is one online CPU's runqueue.
type CPU struct {
	CPU  int
	RQ   uint64 // address of its struct rq
	Curr uint64 // rq.curr
	Idle uint64 // rq.idle
}

// List is the result of a walk.
type List struct {
	// Tasks are sorted by tgid, then pid, then CPU (idle tasks), so that
	// threads follow their leader as in ps -eL.
	Tasks []Task
	CPUs  []CPU
	// Skipped counts tasks found but not listed because their fields
	// could not be read.
	Skipped int
	// Problems describe, each with the address, what could not be
	// followed or read. An empty list means the walk was complete.
	Problems []string
	// Layout describes which form of version-dependent fields was used.
	Layout LayoutInfo
}

// LayoutInfo names the version-dependent forms the walk used.
type LayoutInfo struct {
	State   string `json:"state"` // "task_struct.__state" or "task_struct.state"
	CPU     string `json:"cpu"`
	Threads string `json:"threads"`     // "signal_struct.thread_head" or "task_struct.thread_group"
	Online  string `json:"online_mask"` // the online CPU mask symbol
}

// Walker walks the tasks of one kernel's memory.
type Walker struct {
	mem io.ReaderAt
	lo  *layout
}

// New resolves the layout once: it returns a *LayoutError naming every
// field and symbol the walk needs that l lacks. mem reads kernel virtual
// memory (at virtual addresses); kaslr is the KASLR offset (KERNELOFFSET)
// added to the link-time symbols of l.
func New(mem io.ReaderAt, l Layout, kaslr uint64) (*Walker, error) {
	lo, err := resolveLayout(l, kaslr)
	if err != nil {
		return nil, err
	}
	return &Walker{mem: mem, lo: lo}, nil
}

// walk is the state of one List call.
type walk struct {
	*Walker
	ctx   context.Context
	list  *List
	index map[uint64]int // task address → index in list.Tasks
	// parents are the real_parent pointers, resolved to tgids at the end.
	parents []uint64
	// budget is the number of list entries left to visit: each task is on
	// at most two lists (processes, its thread group), so 2*MaxTasks.
	budget int
	steps  int
}

// List walks the task lists and the runqueues. The error is non-nil only
// when nothing can be listed (init_task unreadable) or ctx is done;
// everything else is in List.Problems.
func (w *Walker) List(ctx context.Context) (*List, error) {
	lo := w.lo
	k := &walk{Walker: w, ctx: ctx, list: &List{}, index: map[uint64]int{}, budget: 2 * MaxTasks}
	k.list.Layout = LayoutInfo{State: "task_struct." + lo.stateName, CPU: lo.cpuName, Online: lo.onlineName,
		Threads: "signal_struct.thread_head"}
	if lo.useThreadGrp {
		k.list.Layout.Threads = "task_struct.thread_group"
	}

	// init_task heads the process list and is CPU 0's idle task.
	if _, err := k.addTask(lo.initTask, FoundIdle); err != nil {
		return nil, fmt.Errorf("reading init_task at %#x: %w (do the vmlinux and the KASLR offset match the dump?)", lo.initTask, err)
	}
	if t := k.list.Tasks[0]; t.PID != 0 || !bytes.HasPrefix([]byte(t.Comm), []byte("swapper")) {
		k.problem("init_task at %#x reads as pid %d comm %q, not pid 0 swapper: the vmlinux or the KASLR offset may not match the dump", lo.initTask, t.PID, t.Comm)
	}

	head := lo.initTask + uint64(lo.tasks)
	err := k.walkList(head, "the process list init_task.tasks", func(node uint64) error {
		leader := node - uint64(lo.tasks)
		i, err := k.addTask(leader, FoundList)
		if err != nil {
			k.skip("process at %#x (init_task.tasks node %#x): %v", leader, node, err)
			return nil
		}
		return k.threads(leader, i)
	})
	if err != nil {
		return nil, err
	}
	if err := k.runqueues(); err != nil {
		return nil, err
	}
	k.resolveParents()

	slices.SortStableFunc(k.list.Tasks, func(a, b Task) int {
		return cmp.Or(cmp.Compare(a.TGID, b.TGID), cmp.Compare(a.PID, b.PID), cmp.Compare(a.CPU, b.CPU))
	})
	return k.list, nil
}

func (k *walk) problem(format string, args ...any) {
	k.list.Problems = append(k.list.Problems, fmt.Sprintf(format, args...))
}

func (k *walk) skip(format string, args ...any) {
	k.list.Skipped++
	k.problem(format, args...)
}

// threads adds the threads of the leader at addr (list.Tasks[i]).
func (k *walk) threads(leader uint64, i int) error {
	lo := k.lo
	if lo.useThreadGrp {
		// thread_group has no separate head: the leader's node is one.
		return k.walkList(leader+uint64(lo.threadGroup), fmt.Sprintf("the thread_group list of pid %d", k.list.Tasks[i].PID), k.threadNode(lo.threadGroup))
	}
	sig, err := k.ptr(leader + uint64(lo.signal))
	if err != nil {
		k.problem("threads of pid %d (task %#x): reading task_struct.signal: %v", k.list.Tasks[i].PID, leader, err)
		return nil
	}
	if sig == 0 {
		return nil // released: no threads to list
	}
	if !kernelPtr(sig) {
		k.problem("threads of pid %d (task %#x): task_struct.signal is %#x, not a kernel address", k.list.Tasks[i].PID, leader, sig)
		return nil
	}
	return k.walkList(sig+uint64(lo.threadHead), fmt.Sprintf("the thread list of pid %d (signal_struct %#x)", k.list.Tasks[i].PID, sig), k.threadNode(lo.threadNode))
}

// threadNode returns the visitor of a thread list whose nodes are at
// task_struct offset off.
func (k *walk) threadNode(off int64) func(uint64) error {
	return func(node uint64) error {
		t := node - uint64(off)
		if _, seen := k.index[t]; seen {
			return nil // the leader
		}
		if _, err := k.addTask(t, FoundList); err != nil {
			k.skip("thread at %#x (thread list node %#x): %v", t, node, err)
		}
		return nil
	}
}

// runqueues adds each online CPU's idle task and marks what it runs.
func (k *walk) runqueues() error {
	lo := k.lo
	cpus, err := k.onlineCPUs()
	if err != nil {
		k.problem("%v; only CPU 0's runqueue is read", err)
		cpus = []int{0}
	}
	for _, c := range cpus {
		if err := k.ctx.Err(); err != nil {
			return err
		}
		rq := lo.runqueues
		if lo.perCPUOffset != 0 {
			off, err := k.u64(lo.perCPUOffset + 8*uint64(c))
			if err != nil {
				k.problem("CPU %d: reading __per_cpu_offset[%d] at %#x: %v", c, c, lo.perCPUOffset+8*uint64(c), err)
				continue
			}
			rq += off
		}
		cpu := CPU{CPU: c, RQ: rq}
		var err1, err2 error
		cpu.Curr, err1 = k.ptr(rq + uint64(lo.rqCurr))
		cpu.Idle, err2 = k.ptr(rq + uint64(lo.rqIdle))
		if err := errors.Join(err1, err2); err != nil {
			k.problem("CPU %d: reading its runqueue at %#x: %v", c, rq, err)
			continue
		}
		k.list.CPUs = append(k.list.CPUs, cpu)
		for _, x := range []struct {
			addr  uint64
			found Found
			what  string
		}{{cpu.Idle, FoundIdle, "rq.idle"}, {cpu.Curr, FoundRunqueue, "rq.curr"}} {
			if !kernelPtr(x.addr) {
				k.problem("CPU %d: %s of the runqueue at %#x is %#x, not a kernel address", c, x.what, rq, x.addr)
				continue
			}
			i, seen := k.index[x.addr]
			if !seen {
				var err error
				if i, err = k.addTask(x.addr, x.found); err != nil {
					k.skip("CPU %d: %s task at %#x: %v", c, x.what, x.addr, err)
					continue
				}
			}
			t := &k.list.Tasks[i]
			if x.found == FoundRunqueue {
				t.Current = true
				if t.CPU != int32(c) {
					k.problem("task %#x (pid %d) is rq.curr of CPU %d but says it is on CPU %d", x.addr, t.PID, c, t.CPU)
				}
			}
		}
	}
	return nil
}

// onlineCPUs reads the online CPU mask.
func (k *walk) onlineCPUs() ([]int, error) {
	lo := k.lo
	if lo.perCPUOffset == 0 {
		return []int{0}, nil
	}
	b := make([]byte, lo.maskBytes)
	if _, err := k.mem.ReadAt(b, int64(lo.onlineMask)); err != nil {
		return nil, fmt.Errorf("reading the online CPU mask %s at %#x: %w", lo.onlineName, lo.onlineMask, err)
	}
	var cpus []int
	for i, x := range b {
		for bit := range 8 {
			if x&(1<<bit) != 0 {
				cpus = append(cpus, i*8+bit)
			}
		}
	}
	if len(cpus) == 0 {
		return nil, fmt.Errorf("the online CPU mask %s at %#x is empty", lo.onlineName, lo.onlineMask)
	}
	return cpus, nil
}

// walkList calls visit with the address of each node of the circular
// list whose head is at head, in order, the head excluded. It stops with
// a recorded problem naming the address when a next pointer cannot be
// read or is not a kernel address, when a node comes round again without
// the list returning to the head, or when the walk as a whole would
// exceed its entry budget. It returns an error only when ctx is done (or
// visit fails).
func (k *walk) walkList(head uint64, what string, visit func(node uint64) error) error {
	seen := map[uint64]struct{}{}
	prev := head
	next, err := k.ptr(head)
	for n := 0; ; n++ {
		if err != nil {
			k.problem("%s (head %#x): reading the next pointer at %#x after %d entries: %v; the rest of the list is not read", what, head, prev, n, err)
			return nil
		}
		if next == head {
			return nil
		}
		if !kernelPtr(next) {
			k.problem("%s (head %#x): the node at %#x points to %#x, not a kernel address, after %d entries; the rest of the list is not read", what, head, prev, next, n)
			return nil
		}
		if _, dup := seen[next]; dup {
			k.problem("%s (head %#x): the node at %#x points back to %#x, already visited, after %d entries (a cycle that misses the head); the rest of the list is not read", what, head, prev, next, n)
			return nil
		}
		if k.budget <= 0 {
			k.problem("%s (head %#x): more than %d list entries in all at node %#x, more than any kernel's pids allow; the lists are corrupt and the rest is not read", what, head, 2*MaxTasks, next)
			return nil
		}
		k.budget--
		if k.steps++; k.steps%4096 == 0 {
			if err := k.ctx.Err(); err != nil {
				return err
			}
		}
		seen[next] = struct{}{}
		if err := visit(next); err != nil {
			return err
		}
		prev = next
		next, err = k.ptr(next)
	}
}

// addTask reads the task_struct at addr and appends it to the list.
func (k *walk) addTask(addr uint64, found Found) (int, error) {
	lo := k.lo
	if !kernelPtr(addr) {
		return 0, fmt.Errorf("%#x is not a kernel address", addr)
	}
	buf := make([]byte, lo.spanHi-lo.spanLo)
	base := addr + uint64(lo.spanLo)
	if _, err := k.mem.ReadAt(buf, int64(base)); err != nil {
		return 0, fmt.Errorf("reading task_struct bytes [%#x, %#x) at %#x: %w", lo.spanLo, lo.spanHi, base, err)
	}
	at := func(off int64) []byte { return buf[off-lo.spanLo:] }
	le := binary.LittleEndian
	t := Task{
		Addr:      addr,
		PID:       int32(le.Uint32(at(lo.pid))),
		TGID:      int32(le.Uint32(at(lo.tgid))),
		StateBits: le.Uint32(at(lo.state)), // the low half of a long state
		ExitState: le.Uint32(at(lo.exitState)),
		Comm:      cString(at(lo.comm)[:commLen]),
		Found:     found,
		PPID:      -1,
	}
	t.State = StateChar(t.StateBits, t.ExitState)
	if lo.cpuViaStk {
		stk := le.Uint64(at(lo.stack))
		var b [4]byte
		if _, err := k.mem.ReadAt(b[:], int64(stk+uint64(lo.cpu))); err != nil {
			k.problem("task %#x (pid %d): reading thread_info.cpu at %#x: %v", addr, t.PID, stk+uint64(lo.cpu), err)
			t.CPU = -1
		} else {
			t.CPU = int32(le.Uint32(b[:]))
		}
	} else {
		t.CPU = int32(le.Uint32(at(lo.cpu)))
	}
	k.index[addr] = len(k.list.Tasks)
	k.list.Tasks = append(k.list.Tasks, t)
	k.parents = append(k.parents, le.Uint64(at(lo.realParent)))
	return len(k.list.Tasks) - 1, nil
}

// resolveParents sets each task's PPID to its real_parent's tgid, read
// from the tasks already listed or from memory.
func (k *walk) resolveParents() {
	tgids := map[uint64]int32{}
	for i := range k.list.Tasks {
		t := &k.list.Tasks[i]
		p := k.parents[i]
		if j, ok := k.index[p]; ok {
			t.PPID = k.list.Tasks[j].TGID
			continue
		}
		if v, ok := tgids[p]; ok {
			t.PPID = v
			continue
		}
		if !kernelPtr(p) {
			k.problem("task %#x (pid %d): real_parent is %#x, not a kernel address", t.Addr, t.PID, p)
			continue
		}
		var b [4]byte
		if _, err := k.mem.ReadAt(b[:], int64(p+uint64(k.lo.tgid))); err != nil {
			k.problem("task %#x (pid %d): reading real_parent->tgid at %#x: %v", t.Addr, t.PID, p+uint64(k.lo.tgid), err)
			continue
		}
		tgids[p] = int32(binary.LittleEndian.Uint32(b[:]))
		t.PPID = tgids[p]
	}
}

func (k *walk) u64(va uint64) (uint64, error) {
	var b [8]byte
	if _, err := k.mem.ReadAt(b[:], int64(va)); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// ptr reads a pointer at va, a kernel address.
func (k *walk) ptr(va uint64) (uint64, error) {
	if !kernelPtr(va) {
		return 0, fmt.Errorf("%#x is not a kernel address", va)
	}
	return k.u64(va)
}

// kernelPtr says whether p can be the address of a kernel object: in the
// upper (kernel) half and 8-byte aligned, as list_heads and task_structs
// are.
func kernelPtr(p uint64) bool { return p>>63 == 1 && p%8 == 0 }

// cString is b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
