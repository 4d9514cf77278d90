package dump

import (
	"fmt"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/livedump"
)

// Producer is what made a dump, and whether the machine kept running (a
// live dump) or had crashed, as the notes each producer leaves behind
// tell (package verify, rows C7 and C8; package livedump, defect K-7).
type Producer struct {
	Name string
	Live bool
	Why  string // what in the dump says so
}

// Producer tells what made the dump.
func (d *Dump) Producer() Producer {
	if d.Format == FormatLivedump {
		return Producer{"livedump (raw device or image)", true, "the kernel's livedump header and notes layout"}
	}
	if c := d.CaptureNote(); c != nil {
		return Producer{"ldx capture --" + c.Method + " (a running kernel)", true,
			fmt.Sprintf("ldx's LDX note: a live, non-atomic read from %s to %s; %d of %d pages checked changed while it ran; %d bytes unreadable (zeros); CPU notes without registers",
				c.Start.Format(time.RFC3339), c.End.Format(time.RFC3339), c.PagesChanged, c.PagesChecked, c.UnreadableBytes)}
	}
	var qemu bool
	var cores []elfcore.Note
	pidIsCPU := true
	for _, n := range d.Notes {
		switch {
		case n.Name == elfcore.NameQEMU:
			qemu = true
		case n.Is(elfcore.NameCore, elfcore.NT_PRSTATUS):
			if st, err := elfcore.ParsePRStatus(n.Desc); err == nil && st.Pid != uint32(len(cores)+1) {
				pidIsCPU = false
			}
			cores = append(cores, n)
		}
	}
	pidIsCPU = pidIsCPU && len(cores) > 0
	crashTime := d.Report.CrashTime != nil
	switch {
	case qemu:
		return Producer{"QEMU dump-guest-memory", true, "QEMU CPU-state notes: memory of a guest QEMU paused, not crashed"}
	case livedump.SyntheticRegisters(cores):
		return Producer{"livedump, extracted by ldx", true, "CPU notes carry only an instruction pointer (the livedump kernel's synthetic registers)"}
	case crashTime && !pidIsCPU:
		return Producer{"kdump (/proc/vmcore)", false, "VMCOREINFO has CRASHTIME and the CPU notes hold the registers saved at the crash"}
	case !crashTime && pidIsCPU:
		return Producer{"live dump", true, "no CRASHTIME, and NT_PRSTATUS pr_pid is the CPU number + 1 (the live-dump convention)"}
	}
	return Producer{"ELF vmcore", !crashTime, "no producer-specific notes; live if there is no CRASHTIME"}
}
