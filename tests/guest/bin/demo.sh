#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The main job, inside the guest: mount the host directory by its tag, show
# what the driver did and use the files. Output is TAP, commands' output is
# shown as "# " comment lines.
MNT=/mnt/host
n=0
step() {
	local name=$1; shift
	n=$((n + 1))
	if out=$("$@" 2>&1); then res=ok; else res="not ok"; fi
	[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/#   /'
	echo "$res $n $name"
}
echo "1..10"
mkdir -p "$MNT"
if [ -n "$VFS_MOUNT_OPTS" ]; then
	step "mount -t virtiofs -o $VFS_MOUNT_OPTS $VFS_TAG $MNT" mount -t virtiofs -o "$VFS_MOUNT_OPTS" "$VFS_TAG" "$MNT"
else
	step "mount -t virtiofs $VFS_TAG $MNT" mount -t virtiofs "$VFS_TAG" "$MNT"
fi
step "/proc/mounts" grep " $MNT " /proc/mounts
step "driver messages" sh -c 'dmesg | grep -i -E "virtio.?fs|fuse|dax" | tail -n 20'
step "sysfs tag" sh -c 'for d in /sys/fs/virtiofs/*; do echo "$d/tag: $(cat $d/tag)"; done'
step "df" df -h "$MNT"
step "cache window (/proc/iomem)" sh -c 'grep -i virtio /proc/iomem || echo "no cache window"'
step "ls -l the host's files" ls -l "$MNT/host"
step "cat host/hello.txt" cat "$MNT/host/hello.txt"
step "write guest/hello-from-guest.txt" sh -c "mkdir -p $MNT/guest && uname -a > $MNT/guest/hello-from-guest.txt && cat $MNT/guest/hello-from-guest.txt"
step "umount" umount "$MNT"
