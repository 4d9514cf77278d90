#!/usr/bin/env bash
# Regenerates the bundled sample (see README.md here): boots a small Debian
# guest under QEMU with the e2e test bed (kmod/kmodtest/guest; the kernel is
# the series' pinned package, the dump cached in $LDX_CACHE), emulates the
# device a livedump v1 run prepared by `ldx capture` (marked, with its
# manifest) leaves from that memory, and compresses it. Given the same
# cached dump the image is the same byte for byte (fixed nonce and start
# time, never-written range chosen from the dump); a new boot gives new
# memory (other marker nonce, other timestamps).
set -euo pipefail
cd "$(dirname "$0")/../.."
want_kernel="linux-image-6.1.0-57-cloud-amd64 6.1.192-3"
out=testdata/sample/livedump-6.1-4cpu.img.xz

guest=$(go run ./kmod/kmodtest/guest/cmd/ldx-guest -q -kernel 6.1 -mem 256M -cpus 4 -nokaslr -cmdline init_on_free=1)
echo "$guest"
field() { awk -v k="$1" '$1 == k { print $2 }' <<<"$guest"; }
kernel=$(awk '$1 == "kernel" { print $2, $3 }' <<<"$guest")
if [ "$kernel" != "$want_kernel" ]; then
	echo "regenerate.sh: the guest ran $kernel, not $want_kernel: update want_kernel and README.md" >&2
	exit 1
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
go run ./kmod/kmodtest/cmd/ldx-mkimage -dump "$(field dump)" -facts "$(field facts)" \
	-prepared marked -manifest -previous-runs 1 -unwritten-free 16M -zero-text \
	-nonce 6c6478206c6478206c6478206c647820 -start 1795680000 -pid 15 -o "$tmp"
xz -9e -T1 -c "$tmp" > "$out"
ls -l "$out"
