#!/bin/sh
# Rebuilds the DWARF fixtures from fixture.c (GCC 12 on Debian 12 made the
# committed ones). -nostdlib -static keeps them a few KB; the
# _Static_asserts in fixture.c check the layout the test expects.
set -eu
cd "$(dirname "$0")"
for v in 4 5; do
	gcc -O1 -g -gdwarf-$v -fdebug-prefix-map="$PWD"=. -fno-eliminate-unused-debug-types -nostdlib -static -no-pie \
		-Wl,--build-id=sha1 -o fixture-dwarf$v.elf fixture.c
done
objcopy --strip-debug fixture-dwarf5.elf fixture-nodwarf.elf
