package tasks

import (
	"fmt"
	"strings"
)

// Layout is what the walker needs to know about the kernel's types and
// symbols: what a debug vmlinux's DWARF and symbol table say.
// *vmlinux.File satisfies it. Symbols are link-time addresses; the walker
// applies the KASLR offset itself.
//
// Errors are taken to mean "absent": where kernels differ (a field renamed
// or moved between versions) the walker tries each known form in turn and
// reports every error only when none of them is there.
type Layout interface {
	Symbol(name string) (uint64, error)
	StructSize(name string) (int64, error)
	MemberOffset(typ, member string) (int64, error)
}

// layout is the resolved shape of everything the walk reads: byte offsets
// in task_struct, signal_struct and rq, and runtime symbol addresses.
type layout struct {
	// task_struct
	tasks, pid, tgid, exitState, comm, realParent int64
	state                                         int64
	stateSize                                     int // 4 for __state (5.14+), 8 for the older long state
	stateName                                     string
	// cpu: task_struct.thread_info.cpu (THREAD_INFO_IN_TASK, 4.9+ / 5.16+),
	// task_struct.cpu (4.9–5.15), or thread_info.cpu through task->stack
	// (before THREAD_INFO_IN_TASK).
	cpu        int64
	cpuViaStk  bool  // cpu is an offset in struct thread_info at task->stack
	stack      int64 // task_struct.stack, when cpuViaStk
	cpuName    string
	signal     int64 // task_struct.signal, with threadHead/threadNode
	threadHead int64 // signal_struct.thread_head (3.14+)
	threadNode int64 // task_struct.thread_node (3.14+)
	// threadGroup is task_struct.thread_group, the older circular thread
	// list (removed in 6.7), used when thread_node is not there.
	threadGroup  int64
	useThreadGrp bool

	// rq
	rqCurr, rqIdle int64

	// runtime addresses (KASLR applied where it applies)
	initTask     uint64
	runqueues    uint64 // per-CPU offset of runqueues, or its address on a UP kernel
	perCPUOffset uint64 // __per_cpu_offset[], 0 on a UP kernel
	onlineMask   uint64
	onlineName   string
	maskBytes    int64 // sizeof(struct cpumask)

	// span is the byte range of task_struct read for each task: every
	// field the walk needs lies inside it, so a task costs one read.
	spanLo, spanHi int64
}

// LayoutError lists everything the walk needs that the layout lacks.
type LayoutError struct {
	Missing []error
}

func (e *LayoutError) Error() string {
	var b strings.Builder
	b.WriteString("the kernel's layout lacks what the task walk needs:")
	for _, m := range e.Missing {
		b.WriteString("\n  ")
		b.WriteString(m.Error())
	}
	return b.String()
}

func (e *LayoutError) Unwrap() []error { return e.Missing }

// alternatives are the failed lookups of the forms one needed piece
// takes in different kernel versions, each naming its form.
type alternatives struct {
	what string // what the forms are for, or ""
	errs []error
}

func (a *alternatives) Error() string {
	var b strings.Builder
	if a.what != "" {
		b.WriteString(a.what + ": ")
	}
	for i, err := range a.errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (a *alternatives) Unwrap() []error { return a.errs }

func nonNil(errs ...error) []error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// resolver collects the lookups of resolveLayout so that one error can
// name every missing piece at once.
type resolver struct {
	l       Layout
	missing []error
}

// add records a missing piece, once: two members of one missing type
// would otherwise say the same thing twice.
func (r *resolver) add(err error) {
	for _, m := range r.missing {
		if m.Error() == err.Error() {
			return
		}
	}
	r.missing = append(r.missing, err)
}

// member returns the offset of the first of forms (member paths of typ)
// that exists, and which one it was.
func (r *resolver) member(typ string, forms ...string) (int64, string, bool) {
	a := &alternatives{}
	for _, m := range forms {
		off, err := r.l.MemberOffset(typ, m)
		if err == nil {
			return off, m, true
		}
		a.errs = append(a.errs, err)
	}
	r.add(a)
	return 0, "", false
}

// try is member for a form whose absence is not an error by itself.
func (r *resolver) try(typ, member string) (int64, error) {
	return r.l.MemberOffset(typ, member)
}

func (r *resolver) symbol(names ...string) (uint64, string, bool) {
	alt := &alternatives{}
	for _, n := range names {
		a, err := r.l.Symbol(n)
		if err == nil {
			return a, n, true
		}
		alt.errs = append(alt.errs, err)
	}
	r.add(alt)
	return 0, "", false
}

// resolveLayout looks up every offset and symbol the walk needs, once,
// choosing among the forms different kernel versions have by what the
// layout holds.
func resolveLayout(l Layout, kaslr uint64) (*layout, error) {
	r := &resolver{l: l}
	lo := &layout{}
	const ts = "task_struct"
	lo.tasks, _, _ = r.member(ts, "tasks")
	lo.pid, _, _ = r.member(ts, "pid")
	lo.tgid, _, _ = r.member(ts, "tgid")
	lo.exitState, _, _ = r.member(ts, "exit_state")
	lo.comm, _, _ = r.member(ts, "comm")
	lo.realParent, _, _ = r.member(ts, "real_parent")
	// 5.14 renamed "volatile long state" to "unsigned int __state"
	// (commit 2f064a59a11f); both are little-endian, and only the low 32
	// bits carry TASK_* flags.
	var ok bool
	if lo.state, lo.stateName, ok = r.member(ts, "__state", "state"); ok {
		lo.stateSize = 4
		if lo.stateName == "state" {
			lo.stateSize = 8
		}
	}

	if off, err := r.try(ts, "thread_info.cpu"); err == nil {
		lo.cpu, lo.cpuName = off, "task_struct.thread_info.cpu"
	} else if off, err2 := r.try(ts, "cpu"); err2 == nil {
		lo.cpu, lo.cpuName = off, "task_struct.cpu"
	} else {
		stk, err3 := r.try(ts, "stack")
		ti, err4 := r.try("thread_info", "cpu")
		if err3 != nil || err4 != nil {
			r.add(&alternatives{"the task's CPU", nonNil(err, err2, err3, err4)})
		}
		lo.cpu, lo.stack, lo.cpuViaStk, lo.cpuName = ti, stk, true, "thread_info.cpu at task_struct.stack"
	}

	// Threads: signal->thread_head with task_struct.thread_node since 3.14;
	// before that (and until 6.7, beside it) the circular thread_group.
	node, errNode := r.try(ts, "thread_node")
	head, errHead := r.try("signal_struct", "thread_head")
	sig, errSig := r.try(ts, "signal")
	if errNode == nil && errHead == nil && errSig == nil {
		lo.threadNode, lo.threadHead, lo.signal = node, head, sig
	} else if tg, err := r.try(ts, "thread_group"); err == nil {
		lo.threadGroup, lo.useThreadGrp = tg, true
	} else {
		r.add(&alternatives{"the thread lists", nonNil(errNode, errHead, errSig, err)})
	}

	lo.rqCurr, _, _ = r.member("rq", "curr")
	lo.rqIdle, _, _ = r.member("rq", "idle")

	if a, _, ok := r.symbol("init_task"); ok {
		lo.initTask = a + kaslr
	}
	rqSym, _, haveRQ := r.symbol("runqueues")
	// A UP kernel has no __per_cpu_offset: runqueues is a plain variable.
	if a, err := l.Symbol("__per_cpu_offset"); err == nil {
		lo.perCPUOffset = a + kaslr
	}
	if haveRQ {
		lo.runqueues = rqSym
		if lo.perCPUOffset == 0 || !zeroBasedPerCPU(l, rqSym) {
			lo.runqueues += kaslr
		}
	}
	// __cpu_online_mask since 4.5; cpu_online_bits before.
	if a, name, ok := r.symbol("__cpu_online_mask", "cpu_online_bits"); ok {
		lo.onlineMask, lo.onlineName = a+kaslr, name
	}
	// NR_CPUS is at most 8192 (arch/x86/Kconfig): a larger mask is
	// damaged DWARF, not a reason to allocate it.
	if n, err := l.StructSize("cpumask"); err == nil && n > 0 && n <= maxMaskBytes {
		lo.maskBytes = n
	} else {
		if err == nil {
			err = fmt.Errorf("struct cpumask has size %d, want 1 to %d bytes", n, maxMaskBytes)
		}
		r.add(err)
	}

	if len(r.missing) == 0 {
		lo.span(r)
	}
	if len(r.missing) > 0 {
		return nil, &LayoutError{Missing: r.missing}
	}
	return lo, nil
}

// zeroBasedPerCPU says whether sym is an offset into a zero-based per-CPU
// section (x86_64 SMP links .data..percpu at 0): such symbols are not
// relocated by KASLR, as __per_cpu_offset[cpu] holds the absolute base.
func zeroBasedPerCPU(l Layout, sym uint64) bool {
	start, err1 := l.Symbol("__per_cpu_start")
	end, err2 := l.Symbol("__per_cpu_end")
	return err1 == nil && err2 == nil && start == 0 && sym < end
}

// span sets the byte range of task_struct the walk reads per task.
func (lo *layout) span(r *resolver) {
	type f struct{ off, size int64 }
	fs := []f{{lo.tasks, 16}, {lo.pid, 4}, {lo.tgid, 4}, {lo.exitState, 4}, {lo.comm, commLen},
		{lo.realParent, 8}, {lo.state, int64(lo.stateSize)}}
	if lo.cpuViaStk {
		fs = append(fs, f{lo.stack, 8})
	} else {
		fs = append(fs, f{lo.cpu, 4})
	}
	if lo.useThreadGrp {
		fs = append(fs, f{lo.threadGroup, 16})
	} else {
		fs = append(fs, f{lo.signal, 8}, f{lo.threadNode, 16})
	}
	lo.spanLo, lo.spanHi = fs[0].off, fs[0].off+fs[0].size
	for _, x := range fs[1:] {
		lo.spanLo = min(lo.spanLo, x.off)
		lo.spanHi = max(lo.spanHi, x.off+x.size)
	}
	// Each task is read as one span of task_struct (about 10 KiB on 6.x):
	// offsets that spread it wider are damaged DWARF.
	if lo.spanLo < 0 || lo.spanHi-lo.spanLo > maxTaskSpan {
		r.add(fmt.Errorf("task_struct fields span bytes %d to %d: more than %d bytes, the vmlinux's DWARF is damaged", lo.spanLo, lo.spanHi, maxTaskSpan))
	}
}

const (
	maxMaskBytes = 8192 / 8
	maxTaskSpan  = 1 << 20
)
