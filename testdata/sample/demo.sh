#!/usr/bin/env bash
# make demo: what ldx does with a livedump device, on the bundled sample: a
# real Debian 6.1 guest's memory (256 MiB, 4 CPUs) as a livedump v1 run
# prepared by `ldx capture` leaves it on the device (see README.md here).
set -euo pipefail
cd "$(dirname "$0")/../.."
in=testdata/sample/livedump-6.1-4cpu.img.xz
out=bin/demo.vmcore
ldx=./bin/ldx
width=${COLUMNS:-120}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
if [ ! -t 1 ]; then step() { printf '\n== %s\n' "$*"; }; fi

step "ldx extract $in -o $out"
echo "   the device: notes cut at one page by the kernel (K-1), 16 MiB the kernel never"
echo "   wrote (its buffers; marked by capture), a page past RAM in its header"
$ldx extract -q --force "$in" -o "$out"

step "ldx info $out   (from VMCOREINFO alone, no vmlinux)"
$ldx info "$out" | awk '/^$/ { exit } { print }'   # the header; segments and notes follow

step "ldx dmesg $out | tail   (the guest's own marker lines at the end)"
$ldx dmesg "$out" | tail -n 5 | cut -c "1-$width"

step "ldx vtop $out init_uts_ns   (the kernel's page tables, level by level)"
$ldx vtop "$out" init_uts_ns

step "ldx read $out init_uts_ns+0x82 65   (utsname.release)"
$ldx read "$out" init_uts_ns+0x82 65

step "ldx syms $out 'init_ut*'   (the kernel's own kallsyms, from the dump)"
$ldx syms "$out" 'init_ut*'

step "ldx verify --brief $out   (what crash, makedumpfile, drgn, libkdumpfile, vmcore-dmesg will make of it)"
$ldx verify --brief "$out" | cut -c "1-$width"

step "the vmcore on disk: apparent size and disk usage (zero pages are holes)"
ls -ls "$out"
