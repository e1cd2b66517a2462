#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The main job, inside the guest: mount the host directory by its tag, list
# it, read a host file, write a file for the host, and show the driver at
# work. TAP: each step is a result, preceded by "# $ COMMAND" and followed
# by the command's output as "#   " lines (scripts/demo.sh shows those).
MNT=/mnt/host
n=0
# step NAME CMD...: run CMD (a shell command line, which may call the
# functions below), show it and its output.
step() {
	local name=$1 out res
	shift
	n=$((n + 1))
	echo "# \$ $*"
	if out=$(eval "$*" 2>&1); then res=ok; else res="not ok"; fi
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/#   /'
	echo "$res $n $name"
}
# The cache window's counters (virtiofs-rs; the C driver has none).
counters() {
	d=$(ls -d /sys/fs/virtiofs/*/dax 2>/dev/null | head -n1)
	if [ -z "$d" ]; then
		echo "no window counters (no DAX on this mount, or the C driver)"
		return 0
	fi
	for c in ranges_total ranges_free ranges_busy setupmapping removemapping fallbacks; do
		printf '%s=%s ' "$c" "$(cat "$d/$c")"
	done
	echo
}
echo "1..12"
mkdir -p "$MNT"
step mount "mount -t virtiofs ${VFS_MOUNT_OPTS:+-o $VFS_MOUNT_OPTS }$VFS_TAG $MNT"
step mounted "grep ' $MNT ' /proc/mounts"
step driver "lsmod | grep -E '^(virtiofs|virtiofs_rs|fuse) ' | cut -d' ' -f1"
step df "df -h $MNT"
step list "ls -l $MNT/host"
step read "cat $MNT/host/hello.txt"
step write "mkdir -p $MNT/guest && echo \"hello from the guest (\$(uname -sr))\" > $MNT/guest/hello-from-guest.txt && cat $MNT/guest/hello-from-guest.txt"
step window "dmesg | grep -i -E 'cache (len|capability)|dax' | tail -n 3 | grep . || echo 'the driver says nothing about a DAX cache window'"
step counters-before "counters"
step data "dd if=/dev/urandom of=$MNT/guest/data.bin bs=1M count=4 2>/dev/null && sync && md5sum $MNT/guest/data.bin | cut -d' ' -f1"
step counters-after "echo 3 > /proc/sys/vm/drop_caches && md5sum $MNT/guest/data.bin | cut -d' ' -f1 && counters"
step umount "umount $MNT"
