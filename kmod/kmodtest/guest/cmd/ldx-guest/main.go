// Command ldx-guest prepares (or finds in the cache) a QEMU dump of a Debian
// kernel with the guest's facts, and prints the artefact paths. Makefile
// targets and CI call it so that tests find ready-made real kernel memory.
//
//	go run ./kmod/kmodtest/guest/cmd/ldx-guest -kernel 6.1 -mem 512M -cpus 2 [-nokaslr] [-la57] [-json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"ldx/kmod/kmodtest/guest"
)

func main() {
	var (
		spec    guest.Spec
		cache   = flag.String("cache", guest.DefaultCacheDir(), "cache directory (default $LDX_CACHE or ~/.cache/ldx)")
		asJSON  = flag.Bool("json", false, "print the artefacts as JSON")
		quiet   = flag.Bool("q", false, "no progress messages on stderr")
		timeout = flag.Duration("timeout", 30*time.Minute, "overall time limit")
	)
	flag.StringVar(&spec.Kernel.Series, "kernel", "6.1", "kernel series: 6.1 or 6.12")
	flag.StringVar(&spec.Kernel.Flavour, "flavour", "cloud-amd64", "Debian kernel flavour: cloud-amd64 or amd64")
	flag.StringVar(&spec.Kernel.Package, "package", "", "concrete image package (overrides -kernel/-flavour)")
	flag.StringVar(&spec.Kernel.Version, "version", "", "pin the image package version")
	flag.StringVar(&spec.Memory, "mem", "512M", "guest memory")
	flag.IntVar(&spec.CPUs, "cpus", 2, "vCPUs")
	flag.BoolVar(&spec.NoKASLR, "nokaslr", false, "boot with nokaslr")
	flag.BoolVar(&spec.LA57, "la57", false, "5-level paging guest")
	flag.StringVar(&spec.Cmdline, "cmdline", "", "extra kernel command line")
	flag.StringVar(&spec.KdumpFormat, "kdump", "", "also dump in this QEMU format (kdump-zlib, kdump-lzo, kdump-snappy)")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	// Cancelling on SIGINT/SIGTERM lets Prepare kill QEMU and remove its
	// temporary files instead of leaving a guest running.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if !*quiet {
		ctx = guest.WithLog(ctx, func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "ldx-guest: "+format+"\n", args...)
		})
	}
	t0 := time.Now()
	a, err := guest.Prepare(ctx, *cache, spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ldx-guest:", err)
		os.Exit(1)
	}
	if *asJSON {
		out := struct {
			*guest.Artefacts
			Facts *guest.Facts `json:"facts"`
		}{a, a.Facts}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Println(string(b))
		return
	}
	fmt.Printf("kernel     %s %s (%s)\n", a.Kernel.Package, a.Kernel.Version, a.Kernel.Release)
	fmt.Printf("dump       %s\n", a.Dump)
	fmt.Printf("facts      %s\n", a.FactsJSON)
	fmt.Printf("vmcoreinfo %s\n", a.VMCOREINFO)
	fmt.Printf("vmlinux    %s\n", a.Vmlinux)
	fmt.Printf("system.map %s\n", a.SystemMap)
	fmt.Printf("serial     %s\n", a.SerialLog)
	if a.Reused {
		fmt.Printf("reused     yes (%s)\n", time.Since(t0).Round(time.Millisecond))
	} else {
		fmt.Printf("times      boot %s, dump %s, total %s\n", a.BootTime.Round(time.Millisecond), a.DumpTime.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	}
}
