// Command ldx-mkimage makes a raw livedump v1 device image from a QEMU
// dump-guest-memory ELF dump of a guest and the facts the guest reported
// about itself, with each of the kernel's defects switchable. It is
// kmodtest.WriteImage on the command line, for poking at consumers (crash,
// makedumpfile, drgn, ldx extract) by hand.
//
//	ldx-mkimage -dump guest.elf -facts facts.json -o dev.img [flags]
//
// The facts file is the JSON encoding of kmod/kmodtest/guest.Facts; only
// these fields are read (all optional except system_ram):
//
//	system_ram    [{"start":N,"end":N}]  /proc/iomem System RAM, inclusive ends
//	vmcoreinfo    {"addr":N,"size":N}    /sys/kernel/vmcoreinfo
//	num_present   N                      present CPUs
//	crash_notes   [{"cpu":N,"addr":N}]   per-CPU crash_notes
//	symbols       {"_text":N,"_end":N,"max_pfn":N,"page_offset_base":N}
//	              kallsyms addresses; max_pfn and page_offset_base are
//	              variables whose values are read from the dump
//	la57          bool                   5-level paging
//
// The struct is mirrored here rather than imported so that the tool does
// not depend on the QEMU-driving guest package.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"ldx/elfcore"
	"ldx/elfcore/kernel/x86"
	"ldx/kmod/kmodtest"
	"ldx/kmod/kmodtest/guest"
	"ldx/kmod/manifest"
)

// facts mirrors the fields of guest.Facts that an image needs.
func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ldx-mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	flag := flag.NewFlagSet("ldx-mkimage", flag.ContinueOnError)
	var (
		dumpPath  = flag.String("dump", "", "QEMU dump-guest-memory ELF dump (paging:false, with -device vmcoreinfo)")
		factsPath = flag.String("facts", "", "guest facts JSON (kmod/kmodtest/guest.Facts)")
		out       = flag.String("o", "", "output image file")
		size      = flag.String("size", "", "device size (bytes, or with K/M/G suffix); default (max_pfn+1)·4096 rounded up to 1M, plus 1M")
		prepared  = flag.String("prepared", "", `device preparation before INIT: "" (livedump.sh: nothing), none (capture --no-clear), zeroed, marked`)
		withMan   = flag.Bool("manifest", false, "write an ldx capture manifest at 0xA0000 (needs -prepared)")
		nonceHex  = flag.String("nonce", "", "run nonce, 32 hex digits (default random)")
		start     = flag.Int64("start", 0, "START time as Unix seconds (CRASHTIME); default now")
		prev      = flag.Int("previous-runs", 0, "earlier livedumps in this boot (K-6 NULs before CRASHTIME)")
		unwritten = flag.String("unwritten", "", "RAM the module never dumps (its buffers, state, bitmaps): hex ranges start-end[,…], end exclusive")
		freeRun   = flag.String("unwritten-free", "", "also never dumped: the highest run of this much all-zero RAM (whole MiB, e.g. 16M; free memory, where the module's buffers come from)")
		zeroText  = flag.Bool("zero-text", false, "read the kernel text (_stext to _etext, page-aligned; needs -facts) as zeros: shrinks an image kept for demonstration, the debug vmlinux has the text")
		lost      = flag.String("lost", "", "pages lost by UNINIT right after FINISH: hex ranges (0-1000 loses the header)")
		early     = flag.String("early", "", "pages written at START or by faults (with -stop sweep): hex ranges")
		stop      = flag.String("stop", "complete", "phase the run never reached: complete (none), finish, sweep")
		seed      = flag.Uint64("stale-seed", 0, "seed of the stale bytes in never-written pages")
		oldHeader = flag.Bool("old-header", false, "pages 0 and 1 hold an earlier run's header and notes (only with -prepared \"\")")
		oldStart  = flag.Int64("old-start", 0, "that earlier run's START (Unix seconds); default an hour before -start")
		oldCPUs   = flag.Int("old-cpus", 0, "present CPUs at that earlier run; default the same")
		cpus      = flag.Int("cpus", 0, "present CPUs (default: facts, else the dump's NT_PRSTATUS count)")
		pid       = flag.Uint("pid", 0, "pr_pid of every CORE note (the stop_machine thread)")
		ip        = flag.String("ip", "", "ip of every CORE note, hex (memdump_thread_func); default _text+0x1000")
		report    = flag.Bool("report", false, "print the report as JSON on stdout")
		synth     = flag.String("synthetic", "", "instead of -dump: a synthetic kernel with this much memory (e.g. 64M; kmodtest.NewSynthetic)")
	)
	if err := flag.Parse(args); err != nil {
		return err
	}
	if (*dumpPath == "") == (*synth == "") || *out == "" || flag.NArg() != 0 {
		flag.Usage()
		return fmt.Errorf("need -o and one of -dump or -synthetic")
	}

	var k *kmodtest.Kernel
	var err error
	if *synth != "" {
		memSize, err := parseSize(*synth)
		if err != nil {
			return fmt.Errorf("-synthetic: %w", err)
		}
		k = kmodtest.NewSynthetic(kmodtest.SyntheticOptions{MemSize: uint64(memSize), CPUs: max(*cpus, 1), Seed: *seed})
	} else {
		var closer io.Closer
		k, closer, err = kmodtest.FromELFDump(*dumpPath)
		if err != nil {
			return err
		}
		defer closer.Close()
	}
	if *factsPath != "" {
		f, err := applyFacts(k, *factsPath)
		if err != nil {
			return err
		}
		if *zeroText {
			t0, t1 := f.Symbol("_stext"), f.Symbol("_etext")
			if t0 < k.TextVirt || t1 <= t0 {
				return fmt.Errorf("-zero-text: the facts have no _stext/_etext symbols")
			}
			pa := func(va uint64) uint64 { return x86.ImagePhys(va, k.PhysBase()) }
			text := elfcore.Range{Start: pa(t0) &^ (kmodtest.PageSize - 1), End: (pa(t1) + kmodtest.PageSize - 1) &^ (kmodtest.PageSize - 1)}
			k.Mem = kmodtest.ZeroMem(k.Mem, []elfcore.Range{text})
			fmt.Fprintf(os.Stderr, "ldx-mkimage: kernel text [%#x, %#x) reads as zeros\n", text.Start, text.End)
		}
	} else if *zeroText {
		return fmt.Errorf("-zero-text needs -facts")
	}
	if len(k.RAM) == 0 {
		return fmt.Errorf("no System RAM map: give -facts (QEMU's PT_LOADs are not the kernel's E820 view)")
	}
	if *cpus != 0 {
		k.CPUs = *cpus
		if len(k.CrashNotes) > k.CPUs {
			k.CrashNotes = k.CrashNotes[:k.CPUs]
		}
	}
	k.LeaderPid = uint32(*pid)
	if *synth == "" {
		k.IP = k.TextVirt + 0x1000
	}
	if *ip != "" {
		if k.IP, err = strconv.ParseUint(strings.TrimPrefix(*ip, "0x"), 16, 64); err != nil {
			return fmt.Errorf("-ip: %w", err)
		}
	}

	r := &kmodtest.Run{Prepared: manifest.Preparation(*prepared), PreviousRuns: *prev, StaleSeed: *seed}
	if *size != "" {
		if r.DeviceSize, err = parseSize(*size); err != nil {
			return fmt.Errorf("-size: %w", err)
		}
	}
	if *nonceHex != "" {
		if err := r.Nonce.UnmarshalText([]byte(*nonceHex)); err != nil {
			return err
		}
	}
	if *withMan {
		r.Manifest = &manifest.Manifest{Tool: "ldx-mkimage"}
	}
	if *start != 0 {
		r.Start = time.Unix(*start, 0)
	}
	for _, x := range []struct {
		flag string
		dst  *[]elfcore.Range
	}{{*unwritten, &r.Unwritten}, {*lost, &r.Lost}, {*early, &r.Early}} {
		if *x.dst, err = parseRanges(x.flag); err != nil {
			return err
		}
	}
	if *freeRun != "" {
		n, err := parseSize(*freeRun)
		if err != nil || n <= 0 {
			return fmt.Errorf("-unwritten-free %q: want a size such as 16M", *freeRun)
		}
		fr, err := k.FreeRun(uint64(n))
		if err != nil {
			return fmt.Errorf("-unwritten-free: %w", err)
		}
		fmt.Fprintf(os.Stderr, "ldx-mkimage: never written (free RAM): [%#x, %#x)\n", fr.Start, fr.End)
		r.Unwritten = append(r.Unwritten, fr)
	}
	switch *stop {
	case "complete", "":
	case "finish":
		r.StopBefore = kmodtest.Finish
	case "sweep":
		r.StopBefore = kmodtest.Sweep
	default:
		return fmt.Errorf("-stop %q: want complete, finish or sweep", *stop)
	}
	if *oldHeader {
		r.OldHeader = &kmodtest.OldRun{CPUs: *oldCPUs}
		if *oldStart != 0 {
			r.OldHeader.Start = time.Unix(*oldStart, 0)
		}
	}

	rep, err := kmodtest.WriteFile(*out, k, r)
	if err != nil {
		return err
	}
	if *report {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "%s: %d bytes, max_pfn %#x, %d CPUs, notes %d bytes (%s), header written: %v, notes written: %v\n",
		*out, rep.DeviceSize, k.MaxPFN, k.CPUs, rep.NotesSize, cutText(rep), rep.HeaderWritten, rep.NotesWritten)
	return nil
}

func cutText(rep *kmodtest.Report) string {
	if !rep.NotesCut {
		return "complete"
	}
	if rep.TextKept < 0 {
		return "cut: VMCOREINFO header lost"
	}
	return fmt.Sprintf("cut: %d of %d VMCOREINFO text bytes on the device", rep.TextKept, len(rep.VMCOREINFO))
}

// applyFacts fills what only the running guest knew.
func applyFacts(k *kmodtest.Kernel, path string) (*guest.Facts, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f guest.Facts
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := k.ApplyFacts(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if k.PageOffsetBase != kmodtest.PageOffset4Level && k.PageOffsetBase != kmodtest.PageOffset5Level {
		fmt.Fprintf(os.Stderr, "ldx-mkimage: warning: page_offset_base %#x is randomised; a real livedump v1 INIT oopses on such a kernel (package kmod: setups that crash the machine)\n", k.PageOffsetBase)
	}
	return &f, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 0, 64)
	return n * mult, err
}

// parseRanges parses "start-end,…" in hex (0x optional), end exclusive.
func parseRanges(s string) ([]elfcore.Range, error) {
	var out []elfcore.Range
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		a, b, ok := strings.Cut(part, "-")
		lo, err1 := strconv.ParseUint(strings.TrimPrefix(a, "0x"), 16, 64)
		hi, err2 := strconv.ParseUint(strings.TrimPrefix(b, "0x"), 16, 64)
		if !ok || err1 != nil || err2 != nil || hi <= lo {
			return nil, fmt.Errorf("bad range %q: want hex start-end, end exclusive", part)
		}
		out = append(out, elfcore.Range{Start: lo, End: hi})
	}
	return out, nil
}
