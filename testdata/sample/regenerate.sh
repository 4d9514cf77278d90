#!/usr/bin/env bash
# Regenerates the bundled sample: the device a livedump v1 run would have
# written for a synthetic 64 MiB, 4-CPU kernel (kmod/kmodtest.NewSynthetic),
# prepared by ldx capture with per-page markers and a manifest. The notes are
# cut at one page (K-1), 4 MiB of RAM were never written (the module's own
# buffers), and the header's RAM range covers a page past RAM.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
go run ./kmod/kmodtest/cmd/ldx-mkimage -synthetic 64M -cpus 4 -prepared marked -manifest \
	-nonce 6c6478206c6478206c6478206c647820 -start 1795680000 -unwritten 2800000-2c00000 -o "$tmp"
xz -9e -T2 -c "$tmp" > testdata/sample/livedump-4cpu.img.xz
