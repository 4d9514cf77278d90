// Command ldx turns Linux livedump block devices into ELF vmcores and
// checks and reads kernel dumps.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes, one table for every command. They are part of the
// interface: scripts branch on them.
const (
	exitOK          = 0
	exitFailure     = 1   // I/O errors and everything not listed below
	exitUsage       = 2   // bad command line
	exitBadInput    = 3   // the input cannot be read as a dump (no header, truncated, not a dump)
	exitOutputExist = 4   // the output exists and --force was not given
	exitDegraded    = 5   // verify: a consumer will lose a feature
	exitFatal       = 6   // verify: a consumer will reject the dump or read wrong data
	exitInterrupted = 130 // SIGINT/SIGTERM

	// capture: each preflight refusal has its own code (nothing was written)
	exitNoLivedump    = 10 // capture: this kernel has no livedump interface
	exitBusy          = 11 // capture: the interface is busy or another capture runs (see --reset)
	exitNotRoot       = 12 // capture: not root
	exitRandomLayout  = 13 // capture: randomised memory layout (INIT would oops)
	exitLowMemory     = 14 // capture: too little available memory (INIT would OOM-panic)
	exitCPUs          = 15 // capture: CPU configuration START or FINISH would crash on
	exitBadDevice     = 16 // capture: not a usable block device (START would oops)
	exitDeviceInUse   = 17 // capture: the device is mounted, swap, or held by md/dm/LVM
	exitDeviceSmall   = 18 // capture: the device is smaller than the dump
	exitCaptureFailed = 19 // capture: failed after preflight; kernel side reset, device marked incomplete
	exitNotReset      = 20 // capture: failed and the kernel side could not be reset
	exitNoKcore       = 21 // capture --kcore: no readable /proc/kcore
	exitLockedDown    = 22 // capture --kcore: lockdown=confidentiality forbids reading kernel memory
	exitNotPermitted  = 23 // capture --kcore: needs root with CAP_SYS_RAWIO
	exitRAMBacked     = 24 // capture --kcore: the output is on tmpfs or ramfs
	exitNoRoom        = 25 // capture --kcore: too little free space for the estimate
)

// commands are the subcommands in the order a user meets them, which is
// also the help order: take the dump, turn it into a vmcore, check it,
// then the questions answered without crash.
var commands = []func() *cobra.Command{
	newCaptureCmd,
	newExtractCmd,
	newVerifyCmd,
	newInfoCmd,
	newVMCOREINFOCmd,
	newDmesgCmd,
	newSymsCmd,
	newReadCmd,
	newVtopCmd,
	newPsCmd,
}

// exitError carries an exit code chosen by a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

var version = "dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ldx",
		Short: "Kernel memory dumps taken without rebooting: capture, extract, verify, read",
		Long: `ldx works with the Linux livedump facility, which snapshots kernel memory
copy-on-write while the machine keeps running and writes it to a raw block
device. ldx turns that device into a compact, correct ELF vmcore for crash,
makedumpfile and drgn, repairing what the kernel side gets wrong.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Flag and argument mistakes exit with exitUsage, not exitFailure.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{exitUsage, err} })
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "ldx: %v\n", err)
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFailure
}

// exactArgs is cobra.ExactArgs with the usage exit code.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &exitError{exitUsage, fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}

func init() {
	cobra.EnableCommandSorting = false
}
