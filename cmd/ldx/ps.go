package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"ldx/elfcore/kernel/tasks"
	"ldx/elfcore/vmlinux"
	"ldx/extract/dump"
)

// psTask is one task in ps --json.
type psTask struct {
	PID       int32  `json:"pid"`
	TGID      int32  `json:"tgid"`
	PPID      int32  `json:"ppid"`
	State     string `json:"state"`
	StateBits hexU64 `json:"state_bits"`
	ExitState uint32 `json:"exit_state"`
	CPU       int32  `json:"cpu"`
	Current   bool   `json:"current"`
	Comm      string `json:"comm"`
	Task      hexU64 `json:"task"`
	Found     string `json:"found"`
}

type psCPU struct {
	CPU  int    `json:"cpu"`
	RQ   hexU64 `json:"rq"`
	Curr hexU64 `json:"curr"`
	Idle hexU64 `json:"idle"`
}

// psReport is ps --json.
type psReport struct {
	Input       string           `json:"input"`
	Vmlinux     string           `json:"vmlinux"`
	Release     string           `json:"release,omitempty"`
	KASLROffset hexU64           `json:"kaslr_offset"`
	Layout      tasks.LayoutInfo `json:"layout"`
	CPUs        []psCPU          `json:"cpus"`
	Tasks       []psTask         `json:"tasks"`
	Skipped     int              `json:"skipped"`
	Problems    []string         `json:"problems"`
}

func newPsCmd() *cobra.Command {
	var vmlinuxPath string
	var asJSON bool
	var dopt dump.Options
	cmd := &cobra.Command{
		Use:   "ps FILE --vmlinux VMLINUX",
		Short: "List the dumped kernel's tasks (needs the debug vmlinux)",
		Long: `ps lists every task of the dumped kernel, as ps -eL would have on the
running system, plus each CPU's idle task (pid 0, swapper/N): pid, thread
group (tgid), parent process (ppid, the tgid of real_parent), state, CPU
and command name. A ">" marks the task each CPU was running (rq->curr)
when memory was captured. (The idle tasks of CPUs other than 0 show ppid
1: init forked them when it brought the CPUs up.)

Processes come from the list at init_task.tasks, their threads from
signal->thread_head (or thread_group on kernels before 3.14), the idle and
running tasks from each online CPU's runqueue. The layout of task_struct
and the runqueue comes from the DWARF of --vmlinux, the debug vmlinux of
the dumped kernel (its -dbg package); symbols are moved by the dump's
KERNELOFFSET. The vmlinux must be the dumped kernel's: its build-id (or,
without one in the dump, its release) is checked against VMCOREINFO.

State letters are the kernel's own (/proc/PID/stat): R running or
runnable, S sleeping, D uninterruptible (also frozen tasks), T stopped, t
traced, X dead, Z zombie, P parked, I idle kernel thread.

Tasks are listed by tgid, then pid, threads after their process. Lists
that are damaged (a pointer to nowhere, a cycle) end where the damage is,
tasks that cannot be read are skipped; both are reported on standard error
with the address, and the rest is listed.

Exit codes: 0 listed (even with damage reported), 1 no task could be
listed (the vmlinux lacks a needed type or field, init_task unreadable),
2 usage, 3 not a readable dump, or the vmlinux cannot be read or is not
the dumped kernel's.`,
		Example: `  ldx ps vmcore --vmlinux /usr/lib/debug/boot/vmlinux-6.1.0-56-cloud-amd64
  ldx ps /dev/sdb --vmlinux vmlinux-6.12 --json | jq -r '.tasks[] | select(.state == "D") | .comm'`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if vmlinuxPath == "" {
				return &exitError{exitUsage, errors.New("ps: --vmlinux VMLINUX is required (the debug vmlinux of the dumped kernel)")}
			}
			v, err := openVmlinux("ps", vmlinuxPath)
			if err != nil {
				return err
			}
			defer v.Close()
			d, err := openDump(cmd.Context(), args[0], dopt)
			if err != nil {
				return err
			}
			defer d.Close()
			rep, err := psList(cmd, d, v)
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else if err := psTable(cmd.OutOrStdout(), rep); err != nil {
				return err
			}
			reportPsProblems(cmd.ErrOrStderr(), rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&vmlinuxPath, "vmlinux", "", "debug vmlinux of the dumped kernel (required)")
	f.BoolVar(&asJSON, "json", false, "print the tasks, the CPUs and what could not be read as JSON")
	zeroExcludedFlag(cmd, &dopt)
	return cmd
}

// psList checks that the vmlinux is the dump's and walks the tasks.
func psList(cmd *cobra.Command, d *dump.Dump, v *vmlinux.File) (*psReport, error) {
	m, err := kernelMem(d)
	if err != nil {
		return nil, &exitError{exitBadInput, err}
	}
	release, err := v.Matches(d.VMCOREINFO)
	if err != nil {
		return nil, &exitError{exitBadInput, fmt.Errorf("ps: %s: %w", d.Source.Path, err)}
	}
	kaslr, _, err := v.KASLROffset(d.VMCOREINFO)
	if err != nil {
		return nil, &exitError{exitBadInput, fmt.Errorf("ps: %s: %w", d.Source.Path, err)}
	}
	w, err := tasks.New(m, v, kaslr)
	if err != nil {
		return nil, fmt.Errorf("ps: %s: %w", v.Path(), err)
	}
	l, err := w.List(cmd.Context())
	if err != nil {
		return nil, fmt.Errorf("ps: %s: %w", d.Source.Path, err)
	}
	rep := &psReport{Input: d.Source.Path, Vmlinux: v.Path(), Release: release, KASLROffset: hexU64(kaslr),
		Layout: l.Layout, CPUs: []psCPU{}, Tasks: make([]psTask, 0, len(l.Tasks)), Skipped: l.Skipped, Problems: l.Problems}
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	for _, c := range l.CPUs {
		rep.CPUs = append(rep.CPUs, psCPU{c.CPU, hexU64(c.RQ), hexU64(c.Curr), hexU64(c.Idle)})
	}
	for _, t := range l.Tasks {
		rep.Tasks = append(rep.Tasks, psTask{PID: t.PID, TGID: t.TGID, PPID: t.PPID, State: string(t.State),
			StateBits: hexU64(t.StateBits), ExitState: t.ExitState, CPU: t.CPU, Current: t.Current,
			Comm: t.Comm, Task: hexU64(t.Addr), Found: string(t.Found)})
	}
	return rep, nil
}

// psTable prints the tasks for people.
func psTable(w io.Writer, rep *psReport) error {
	rows := make([][]string, 0, len(rep.Tasks))
	for _, t := range rep.Tasks {
		mark := ""
		if t.Current {
			mark = ">"
		}
		ppid := strconv.Itoa(int(t.PPID))
		if t.PPID < 0 {
			ppid = "?"
		}
		rows = append(rows, []string{mark, strconv.Itoa(int(t.PID)), strconv.Itoa(int(t.TGID)), ppid,
			strconv.Itoa(int(t.CPU)), t.State, fmt.Sprintf("%#x", uint64(t.Task)), t.Comm})
	}
	return printTable(w, []string{" ", "PID", "TGID", "PPID", "CPU", "ST", "TASK", "COMM"}, rows, 1, 2, 3, 4)
}

// reportPsProblems says on w what could not be read.
func reportPsProblems(w io.Writer, rep *psReport) {
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "ldx: ps: %s\n", p)
	}
	if rep.Skipped > 0 || len(rep.Problems) > 0 {
		fmt.Fprintf(w, "ldx: ps: %d tasks listed, %d skipped as unreadable, %d problems: the list may be incomplete\n",
			len(rep.Tasks), rep.Skipped, len(rep.Problems))
	}
}
