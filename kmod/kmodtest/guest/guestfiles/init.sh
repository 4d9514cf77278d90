#!/bin/sh
# /init of the ldx test guest, run by busybox sh as PID 1.
#
# It loads qemu_fw_cfg (so that QEMU learns where VMCOREINFO is and puts it
# in every dump), writes marker lines into the printk ring, starts named
# processes, prints a facts block on the console and then idles until QEMU
# is killed. Inputs come from files in /etc/ldx written by initramfs.go,
# so nothing here needs quoting tricks. Facts are parsed by facts.go: keep
# the "== section" names in sync.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp /run

nonce=$(cat /etc/ldx/nonce)

# Dependencies come first in the list (initramfs.go orders them).
while read -r m; do
	[ -n "$m" ] || continue
	insmod "/lib/modules/ldx/$m" || echo "ldx-init: insmod $m failed"
done </etc/ldx/modules

# One write per line: each write to /dev/kmsg is one printk record.
while IFS= read -r line; do
	printf '%s\n' "$line" >/dev/kmsg
done </etc/ldx/markers

# The named processes. The binaries are links named after the process, so
# exec already sets comm; the sleeper also calls prctl(PR_SET_NAME).
procs=""
while read -r name; do
	[ -n "$name" ] || continue
	"/bin/$name" "$name" "$nonce" &
	procs="$procs $name:$!"
done </etc/ldx/procs
for e in $procs; do
	name=${e%%:*}
	pid=${e#*:}
	i=0
	while [ "$(cat /proc/$pid/comm 2>/dev/null)" != "$name" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
done

# From here on the console carries only the facts: kernel messages (below
# KERN_ALERT) would otherwise interleave with them.
echo 1 >/proc/sys/kernel/printk

echo LDX-FACTS-BEGIN
echo "== nonce"
echo "$nonce"
echo "== uname-r"
uname -r
echo "== cmdline"
cat /proc/cmdline
echo "== iomem"
cat /proc/iomem
echo "== vmcoreinfo"
cat /sys/kernel/vmcoreinfo
echo "== fw-cfg-vmcoreinfo"
if [ -e /sys/firmware/qemu_fw_cfg/by_name/etc/vmcoreinfo/raw ]; then echo yes; else echo no; fi
echo "== cpu-present"
cat /sys/devices/system/cpu/present
echo "== cpu-possible"
cat /sys/devices/system/cpu/possible
echo "== cpu-online"
cat /sys/devices/system/cpu/online
echo "== crash-notes"
for d in /sys/devices/system/cpu/cpu[0-9]*; do
	[ -r "$d/crash_notes" ] || continue
	echo "${d##*/cpu} $(cat "$d/crash_notes") $(cat "$d/crash_notes_size" 2>/dev/null)"
done
echo "== kallsyms"
grep -E ' (_text|_stext|_etext|_end|page_offset_base|vmalloc_base|vmemmap_base|phys_base|vmcoreinfo_note|init_uts_ns|max_pfn|init_top_pgt|init_task|prb|__per_cpu_offset|__pgtable_l5_enabled)$' /proc/kallsyms
echo "== meminfo"
grep '^MemTotal:' /proc/meminfo
echo "== la57"
if grep -qw la57 /proc/cpuinfo; then echo yes; else echo no; fi
echo "== processes"
for e in $procs; do
	pid=${e#*:}
	echo "$pid $(cat /proc/$pid/comm)"
done
echo "== markers"
dmesg | grep 'ldx-e2e-marker:'
echo LDX-FACTS-END
echo "LDX-READY $nonce"

while :; do sleep 3600; done
