#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The negative control of the tools plan: fio's verification must catch a
# file that changed between the write and the read back. fio writes and
# verifies a file on the mount, verifies it again after the guest's caches
# are dropped (the data comes from the host then), asks the runner's host
# agent to overwrite bytes inside one 4 KiB block on the host
# (tools.hostagent: alter-detect), drops the caches and verifies once
# more: that run must fail on that block's crc32c. This also shows that
# the plan's verify-only pass reads what the host has, not what the
# guest's page cache kept. TAP on stdout.
#
# usage: fio-detects.sh   (after a plan's "mount" line, which sets VFS_MNT)
MNT=${VFS_MNT:?no VFS_MNT: a "mount" line must come first}
F=$MNT/detect.dat
OUT=/tmp/fio-detects.out
# The block whose data the host agent changes (its header stays intact).
BAD_BLOCK=65536
n=0 failed=0
result() { # STATUS NAME NOTE: ok if STATUS is 0
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2 # $3"
		failed=1
	fi
}
# fio_run VERIFY_ONLY: one job, psync, 4 KiB blocks, 1 MiB, crc32c.
fio_run() {
	local rc
	fio --name=detect --filename="$F" --ioengine=psync --rw=write --bs=4k --size=1m \
		--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_only="$1" \
		--verify_state_save=0 --end_fsync=1 --clat_percentiles=0 >"$OUT" 2>&1
	rc=$?
	sed 's/^/#   /' "$OUT"
	return $rc
}
drop_caches() { sync && echo 3 >/proc/sys/vm/drop_caches; }

echo "1..5"
fio_run 0
rc=$?
result $rc written_and_verified "fio exit status $rc"
if [ "$rc" != 0 ]; then
	for t in verified_from_host host_altered_one_block verify_fails_after_host_change \
		mismatch_names_the_altered_block; do
		result 1 $t "no file written"
	done
	exit 1
fi
drop_caches
fio_run 1
rc=$?
result $rc verified_from_host "fio exit status $rc"

# The host agent: agent/REQUEST appears on the host, REQUEST.done when done.
: >"$MNT/agent/alter-detect"
i=0
while [ ! -e "$MNT/agent/alter-detect.done" ] && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -e "$MNT/agent/alter-detect.done" ]
result $? host_altered_one_block "the host agent never answered"

drop_caches
fio_run 1
rc=$?
[ "$rc" != 0 ]
result $? verify_fails_after_host_change "fio exit status $rc: the change went unnoticed"
grep -q "crc32c: verify failed at file $F offset $BAD_BLOCK," "$OUT"
result $? mismatch_names_the_altered_block "no crc32c mismatch reported at offset $BAD_BLOCK"
exit $failed
