#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The initramfs scripts/initramfs.sh builds for the kernel build in
# $VFSRS_BUILD_DIR: /etc/passwd and /etc/group give tests a named
# unprivileged user (vfsuser, uid 1000) that su can switch to and that can
# reach the file system (/ is 0755 in the archive), every file of
# tests/guest/bin is there (subdirectories too), /init and the plans are the
# repository's, the tests directory is a fixed path per input hash (no
# shared "current" link for concurrent runs to race on), and Debian's fio
# and stress-ng run from the initramfs alone (chroot: its own libraries and
# loader), fio with the engines the plans use and, under the System V
# shared memory preload the guest needs, a verified job.
. "$(dirname "$0")/lib.sh"
N=11
echo "1..$N"
B=${VFSRS_BUILD_DIR:-}
if [ -z "$B" ] || [ ! -f "$B/.vfsrs-built" ]; then
	for i in $(seq "$N"); do echo "ok $i # SKIP no VFSRS_BUILD_DIR (a finished kernel build)"; done
	exit 0
fi
IMG=$("$ROOT/scripts/initramfs.sh" "$B" 2>/dev/null)
T1=$("$ROOT/scripts/initramfs.sh" --tests-dir "$B" 2>/dev/null)
T2=$("$ROOT/scripts/initramfs.sh" --tests-dir "$B" 2>/dev/null)
R=$TMP/root
mkdir -p "$R"
(cd "$R" && gzip -dc "$IMG" | cpio --quiet -id 2>/dev/null)

check "passwd names vfsuser with uid 1000" has "$R/etc/passwd" '^vfsuser:x:1000:1000:'
check "group names vfsuser with gid 1000" has "$R/etc/group" '^vfsuser:x:1000:'
check "su switches to vfsuser in the initramfs" same "$(chroot "$R" /bin/su -s /bin/sh vfsuser -c 'id -u' 2>&1)" 1000
# The kernel gives / the mode of the archive's "." entry (extracting it
# here does not), so look at the archive itself.
root_mode() { gzip -dc "$IMG" | cpio --quiet -tv 2>/dev/null | awk '$NF == "." { print $1 }'; }
check "/ is 0755, so the unprivileged user can reach /tmp and /tests" same "$(root_mode)" drwxr-xr-x
missing() {
	local f
	(cd "$ROOT/tests/guest/bin" && find . -type f) | while read -r f; do
		cmp -s "$ROOT/tests/guest/bin/$f" "$R/tests/$f" || echo "missing or different: tests/$f"
	done
}
check "every file of tests/guest/bin is in /tests" same "$(missing)" ""
check "/init is tests/guest/init" cmp "$ROOT/tests/guest/init" "$R/init"
plans_differ() {
	local f
	for f in "$ROOT"/tests/guest/plans/*.plan; do cmp -s "$f" "$R/plans/$(basename "$f")" || echo "$f"; done
}
check "every plan is in /plans" same "$(plans_differ)" ""
check "the tests directory is per input hash, no shared link" \
	bash -c "[ '$T1' = '$T2' ] && [ -f '$T1/.ready' ] && [ ! -e '$(dirname "$T1")/tests-current' ] && ! grep -q tests-current '$ROOT/scripts/run-guest.sh'"
check "fio and stress-ng run from the initramfs, the host's versions" same \
	"$(chroot "$R" /usr/bin/fio --version 2>&1; chroot "$R" /usr/bin/stress-ng --version 2>&1 | cut -d' ' -f1-3)" \
	"$(/usr/bin/fio --version; /usr/bin/stress-ng --version | cut -d' ' -f1-3)"
engines() { chroot "$R" /usr/bin/fio --enghelp | tr -d '\t' | grep -x -E 'psync|libaio|mmap' | sort | paste -sd,; }
check "fio has the psync, libaio and mmap engines built in" same "$(engines)" "libaio,mmap,psync"
check "fio verifies a job in the initramfs with the sysv-shm preload" \
	chroot "$R" /bin/env LD_PRELOAD=/usr/lib/vfsrs/sysv-shm.so /usr/bin/fio --name=t \
	--filename=/tmp/t.dat --size=256k --rw=randwrite --bs=4k --ioengine=libaio --iodepth=4 \
	--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0
