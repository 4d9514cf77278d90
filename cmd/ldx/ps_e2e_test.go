//go:build e2e

// End-to-end test of ldx ps on real kernel memory: the Debian 6.1 and 6.12
// guests of the analysis e2e (KASLR, 2-4 CPUs, 4- and 5-level paging),
// read as the QEMU dump, the emulated livedump device and ldx extract's
// vmcores of both, with the guest's -dbg vmlinux, against drgn's task
// iteration and runqueues on the same memory.
//
//	go test -tags e2e -run TestPsE2E -v ./cmd/ldx/
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"ldx/elfcore/kernel/tasks"
	"ldx/kmod/kmodtest/guest"
)

// psDrgnScript prints drgn's view: every task of for_each_task (the pid
// IDR in drgn 0.0.22, so no idle tasks), and each online CPU's rq.curr
// and idle task.
const psDrgnScript = `
import json
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_state_to_char, task_cpu, idle_task
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.percpu import per_cpu
out = {"tasks": [], "cpus": []}
for t in for_each_task(prog):
    try:
        st = t.__state.value_()
    except AttributeError:
        st = t.state.value_()
    out["tasks"].append(dict(pid=t.pid.value_(), tgid=t.tgid.value_(), ppid=t.real_parent.tgid.value_(),
        state=task_state_to_char(t), state_bits=st & 0xffffffff, exit_state=t.exit_state.value_(),
        cpu=task_cpu(t), comm=t.comm.string_().decode("utf-8", "backslashreplace"), task=t.value_()))
for c in for_each_online_cpu(prog):
    rq = per_cpu(prog["runqueues"], c)
    out["cpus"].append(dict(cpu=c, curr=rq.curr.value_(), idle=idle_task(prog, c).value_()))
print("LDXPS " + json.dumps(out))
`

type drgnTask struct {
	PID, TGID, PPID int32
	State           string
	StateBits       uint32 `json:"state_bits"`
	ExitState       uint32 `json:"exit_state"`
	CPU             int32
	Comm            string
	Task            uint64
}

type drgnPs struct {
	Tasks []drgnTask
	CPUs  []struct {
		CPU        int
		Curr, Idle uint64
	}
}

// ldxPsTask is one task of ldx ps --json.
type ldxPsTask struct {
	PID, TGID, PPID int32
	State           string
	StateBits       string `json:"state_bits"`
	ExitState       uint32 `json:"exit_state"`
	CPU             int32
	Current         bool
	Comm            string
	Task            string
	Found           string
}

type ldxPs struct {
	Tasks    []ldxPsTask
	Skipped  int
	Problems []string
	Layout   struct{ State, CPU, Threads string }
}

func drgnTasks(t *testing.T, vmcore, vmlinux string) *drgnPs {
	script := filepath.Join(t.TempDir(), "ps.py")
	os.WriteFile(script, []byte(psDrgnScript), 0o644)
	out, err := exec.Command("/usr/bin/drgn", "-q", "-c", vmcore, "-s", vmlinux, script).CombinedOutput()
	i := bytes.Index(out, []byte("LDXPS "))
	if err != nil || i < 0 {
		t.Fatalf("drgn: %v\n%s", err, out)
	}
	var d drgnPs
	if err := json.Unmarshal(bytes.TrimSpace(out[i+6:]), &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func TestPsE2E(t *testing.T) {
	ctx := guest.WithLog(context.Background(), t.Logf)
	bin, _ := filepath.Abs("../../bin/ldx")
	for _, sc := range analysisScenarios[:4] { // 6.1 and 6.12, 2 and 4 CPUs, 4- and 5-level paging
		t.Run(sc.name, func(t *testing.T) {
			art, err := guest.Prepare(ctx, guest.DefaultCacheDir(), sc.spec)
			if err != nil {
				t.Fatalf("preparing the guest: %v", err)
			}
			names, inputs := analysisInputs(t, art)
			ref := drgnTasks(t, inputs["ldx-vmcore-of-qemu-dump"], art.Vmlinux)
			var first []ldxPsTask
			for _, in := range names {
				t0 := time.Now()
				out, errs, code := ldx("ps", inputs[in], "--vmlinux", art.Vmlinux, "--json")
				took := time.Since(t0)
				if code != 0 {
					t.Fatalf("%s: ldx ps: exit %d: %s", in, code, errs)
				}
				var got ldxPs
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("%s: %v", in, err)
				}
				if errs != "" || len(got.Problems) > 0 || got.Skipped > 0 {
					t.Errorf("%s: damage reported on a consistent dump: %s", in, errs)
				}
				sum := comparePs(t, in, art, &got, ref)
				if first == nil {
					first = got.Tasks
				} else if !slices.Equal(got.Tasks, first) {
					t.Errorf("%s: the task list differs from %s's", in, names[0])
				}
				t.Logf("e2e_ps %s %s: %s; layout %s, %s, %s; %.0f ms in-process",
					sc.name, in, sum, got.Layout.State, got.Layout.CPU, got.Layout.Threads, took.Seconds()*1000)
			}
			// As a user runs it: the binary (make e2e builds it), time and
			// peak memory with the vmlinux's DWARF read.
			if _, err := os.Stat(bin); err == nil {
				c := exec.Command(bin, "ps", inputs["qemu-dump"], "--vmlinux", art.Vmlinux)
				t0 := time.Now()
				if err := c.Run(); err != nil {
					t.Errorf("bin/ldx ps: %v", err)
				} else {
					ru := c.ProcessState.SysUsage().(*syscall.Rusage)
					t.Logf("e2e_ps_cost %s: bin/ldx ps on the QEMU dump: %.2f s wall, peak RSS %d MiB (targets: 3 s, 1 GiB)",
						sc.name, time.Since(t0).Seconds(), ru.Maxrss>>10)
				}
			}
		})
	}
}

// comparePs checks ldx's list against drgn's and the guest's facts and
// returns a summary of what was compared.
func comparePs(t *testing.T, in string, art *guest.Artefacts, got *ldxPs, ref *drgnPs) string {
	t.Helper()
	byPid := map[int32]ldxPsTask{}
	var idle []ldxPsTask
	var threads, runqueueOnly, drgnStateDiffers int
	for _, x := range got.Tasks {
		switch {
		case x.PID == 0:
			idle = append(idle, x)
			continue
		case x.Found == "runqueue":
			runqueueOnly++
		}
		if _, dup := byPid[x.PID]; dup {
			t.Errorf("%s: pid %d listed twice", in, x.PID)
		}
		byPid[x.PID] = x
		if x.PID != x.TGID {
			threads++
		}
	}
	// The same pids as drgn's for_each_task (which has no idle tasks);
	// a task only ldx found, through a runqueue, would be one exiting.
	var missing []int32
	for _, d := range ref.Tasks {
		x, ok := byPid[d.PID]
		if !ok {
			missing = append(missing, d.PID)
			continue
		}
		delete(byPid, d.PID)
		if fmt.Sprintf("%#x", d.Task) != x.Task || x.Comm != d.Comm || x.TGID != d.TGID || x.PPID != d.PPID || x.CPU != d.CPU ||
			x.StateBits != fmt.Sprintf("%#x", d.StateBits) || x.ExitState != d.ExitState {
			t.Errorf("%s: pid %d: ldx %+v, drgn %+v", in, d.PID, x, d)
		}
		// ldx's letter is the kernel's rule (__task_state_index) on the
		// raw state. drgn 0.0.22's task_state_to_char simplifies it (I
		// only for exactly TASK_IDLE, no TASK_FROZEN/RTLOCK rule): the
		// letters must be equal wherever the two rules agree.
		kernel := string(tasks.StateChar(d.StateBits, d.ExitState))
		if x.State != kernel {
			t.Errorf("%s: pid %d: state %s, the kernel's rule on %#x/%#x gives %s", in, d.PID, x.State, d.StateBits, d.ExitState, kernel)
		}
		if drgn := drgnStateRule(d.StateBits, d.ExitState); d.State != drgn {
			t.Errorf("%s: pid %d: drgn says %s, its rule on %#x/%#x gives %s: the test's model of drgn is wrong", in, d.PID, d.State, d.StateBits, d.ExitState, drgn)
		} else if x.State != d.State {
			if kernel == drgn {
				t.Errorf("%s: pid %d: state %s, drgn %s", in, d.PID, x.State, d.State)
			}
			drgnStateDiffers++
			t.Logf("%s: pid %d (%s): state %s, drgn's task_state_to_char %s (state %#x, exit_state %#x): the kernel's rule differs from drgn's here", in, d.PID, d.Comm, x.State, d.State, d.StateBits, d.ExitState)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s: drgn lists pids %v that ldx does not", in, missing)
	}
	for pid, x := range byPid {
		if x.Found != "runqueue" {
			t.Errorf("%s: ldx lists pid %d (%s, found via %s) that drgn does not", in, pid, x.Comm, x.Found)
		}
	}
	// One idle task per online CPU, swapper/N on CPU N, and what each CPU
	// runs, as drgn reads the runqueues.
	if len(idle) != len(ref.CPUs) || len(idle) != art.Facts.NumOnline {
		t.Errorf("%s: %d idle tasks, drgn %d online CPUs, the guest %d", in, len(idle), len(ref.CPUs), art.Facts.NumOnline)
	}
	current := map[string]bool{}
	for _, x := range got.Tasks {
		if x.Current {
			current[x.Task] = true
		}
	}
	for i, c := range ref.CPUs {
		if i < len(idle) && (idle[i].Task != fmt.Sprintf("%#x", c.Idle) || idle[i].Comm != fmt.Sprintf("swapper/%d", c.CPU) || idle[i].CPU != int32(c.CPU)) {
			t.Errorf("%s: CPU %d: idle task %+v, drgn's idle_task %#x", in, c.CPU, idle[i], c.Idle)
		}
		if !current[fmt.Sprintf("%#x", c.Curr)] {
			t.Errorf("%s: CPU %d runs %#x (drgn), not marked current by ldx", in, c.CPU, c.Curr)
		}
	}
	if len(current) != len(ref.CPUs) {
		t.Errorf("%s: %d tasks marked current, %d CPUs", in, len(current), len(ref.CPUs))
	}
	// The guest's named processes, with the pids the guest saw.
	var named []string
	for _, p := range art.Facts.Processes {
		x, ok := byPidAll(got.Tasks, int32(p.PID))
		if !ok || x.Comm != p.Name || x.TGID != int32(p.PID) {
			t.Errorf("%s: the guest's %s (pid %d) is not listed as such: %+v", in, p.Name, p.PID, x)
		}
		named = append(named, fmt.Sprintf("%s=%d", p.Name, p.PID))
	}
	// ldx-worker's two threads (guestfiles/sleeper.c): the thread-list walk
	// on a real kernel.
	worker := int32(art.Facts.PID("ldx-worker"))
	for _, name := range []string{"ldx-worker-t1", "ldx-worker-t2"} {
		found := false
		for _, x := range got.Tasks {
			if x.Comm == name && x.TGID == worker && x.PID != worker && x.PPID == byPidAllPPID(got.Tasks, worker) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no thread %s of ldx-worker (tgid %d)", in, name, worker)
		}
	}
	if threads < 2 {
		t.Errorf("%s: %d threads that are not group leaders, want at least ldx-worker's 2", in, threads)
	}
	if len(art.Facts.Processes) < 3 {
		t.Errorf("the guest started %d named processes, want ldx-sleeper-a, ldx-sleeper-b, ldx-worker", len(art.Facts.Processes))
	}
	return fmt.Sprintf("%d tasks (%d threads that are not leaders, %d idle, %d only on a runqueue) = drgn's %d for_each_task pids + %d idle, pid/tgid/ppid/comm/cpu/state/task address equal; state letters beside drgn's task_state_to_char: %d differ; current per CPU equals rq.curr; %s",
		len(got.Tasks), threads, len(idle), runqueueOnly, len(ref.Tasks), len(idle), drgnStateDiffers, strings.Join(named, " "))
}

// drgnStateRule is drgn 0.0.22's task_state_to_char on a 4.14+ kernel
// (task_state_array "RSDTtXZPI", TASK_REPORT 0x7f).
func drgnStateRule(state, exit uint32) string {
	s := (state | exit) & 0x7f
	n := 0
	for v := s; v != 0; v >>= 1 {
		n++
	}
	c := "RSDTtXZPI"[n]
	if c == 'D' && state&^s == 0x400 {
		c = 'I'
	}
	return string(c)
}

func byPidAll(ts []ldxPsTask, pid int32) (ldxPsTask, bool) {
	i := slices.IndexFunc(ts, func(x ldxPsTask) bool { return x.PID == pid })
	if i < 0 {
		return ldxPsTask{}, false
	}
	return ts[i], true
}

// byPidAllPPID is the ppid ldx lists for pid (its threads share it).
func byPidAllPPID(ts []ldxPsTask, pid int32) int32 {
	x, _ := byPidAll(ts, pid)
	return x.PPID
}
