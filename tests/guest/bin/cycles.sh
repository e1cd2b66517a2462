#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Load, mount, use, umount and unload the driver N times (VFS_CYCLES,
# default 20), then ask kmemleak for leaks. Prints TAP.
#
# Uses VFSRS_LOAD / VFSRS_UNLOAD (set by /init for the driver under test),
# VFS_MOUNT_OPTS (the plan's opts). With VFS_CYCLES_FILE (a file of the
# mount, of at least 16 KiB) each cycle also reads it whole and copies its
# second page over its third in place: with -o dax=always that maps window
# ranges and writes through the window, so the mapping manager's set-up and
# tear-down are part of every cycle.
N=${VFS_CYCLES:-20}
MNT=/tmp/vfs-cycles
mkdir -p "$MNT"
echo "1..$((N + 1))"
# The driver suite left the module loaded: start from unloaded.
$VFSRS_UNLOAD 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# Forget what boot and earlier suites left, so only these cycles count.
echo clear > /sys/kernel/debug/kmemleak 2>/dev/null
use_file() {
	[ -n "${VFS_CYCLES_FILE:-}" ] || return 0
	cat "$MNT/$VFS_CYCLES_FILE" >/dev/null &&
		dd if="$MNT/$VFS_CYCLES_FILE" of="$MNT/$VFS_CYCLES_FILE" bs=4096 count=1 \
			skip=1 seek=2 conv=notrunc 2>/dev/null
}
i=1
while [ "$i" -le "$N" ]; do
	if $VFSRS_LOAD &&
		mount -t virtiofs ${VFS_MOUNT_OPTS:+-o "$VFS_MOUNT_OPTS"} "$VFS_TAG" "$MNT" &&
		stat "$MNT" >/dev/null && df "$MNT" >/dev/null &&
		use_file && umount "$MNT" && $VFSRS_UNLOAD; then
		echo "ok $i cycle_$i"
	else
		echo "not ok $i cycle_$i"
		umount "$MNT" 2>/dev/null
		$VFSRS_UNLOAD 2>/dev/null
	fi
	i=$((i + 1))
done
# Leave the module loaded again for the suites that follow.
$VFSRS_LOAD
if [ -w /sys/kernel/debug/kmemleak ]; then
	# kmemleak ignores objects younger than 5 s; scan twice, as its
	# documentation advises, to drop transient false positives.
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	echo scan > /sys/kernel/debug/kmemleak
	leaks=$(grep -c "unreferenced object" /sys/kernel/debug/kmemleak)
	if [ "$leaks" = 0 ]; then
		echo "ok $((N + 1)) no_kmemleak_report"
	else
		head -n 40 /sys/kernel/debug/kmemleak | sed 's/^/# /'
		echo "not ok $((N + 1)) no_kmemleak_report # $leaks suspected leaks"
	fi
else
	echo "not ok $((N + 1)) no_kmemleak_report # /sys/kernel/debug/kmemleak missing"
fi
