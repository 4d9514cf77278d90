#!/bin/sh
# Rebuilds vmlinux.elf from vmlinux.c (GCC 12 on Debian 12 made the
# committed one): linked at 0xffffffff81000000 like x86_64 kernels, the
# per-CPU section "pcpu" at 0x40 with __per_cpu_start = 0 and
# __per_cpu_end after it (zero-based, not moved by KASLR). The
# _Static_asserts in vmlinux.c check the layout the tests expect.
set -eu
cd "$(dirname "$0")"
gcc -O1 -g -gdwarf-5 -fdebug-prefix-map="$PWD"=. -fno-eliminate-unused-debug-types -mcmodel=kernel -fno-pie -no-pie -nostdlib -static \
	-Wl,--build-id=sha1 -Wl,-Ttext=0xffffffff81000000 -Wl,--section-start=pcpu=0x40 \
	-Wl,--defsym=__per_cpu_start=0 -Wl,--defsym=__per_cpu_end=0x1000 \
	-o vmlinux.elf vmlinux.c
