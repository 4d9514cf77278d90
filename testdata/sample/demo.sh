#!/usr/bin/env bash
# make demo: extract the bundled sample livedump image into a vmcore.
set -euo pipefail
cd "$(dirname "$0")/../.."
in=testdata/sample/livedump-4cpu.img.xz
out=bin/demo.vmcore
echo "== ldx extract $in -o $out"
echo "   (a synthetic 4-CPU kernel's livedump device, xz-compressed: notes cut at"
echo "    one page, 4 MiB never written, a page past RAM in the header; see README)"
./bin/ldx extract "$in" -o "$out" --force
echo
echo "== the vmcore: apparent size and disk usage (zero pages are not stored)"
ls -ls "$out"
echo
echo "For real kernel memory opened by crash, makedumpfile and drgn: make e2e"
