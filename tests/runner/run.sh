#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The runner's self-tests that need no guest: each tests/runner/t-NAME.sh
# prints TAP for one suite, framed here as suite "runner-NAME". They cover
# the places where the runner could fail silently (see each file's header).
#
# usage: tests/runner/run.sh
#   VFSRS_BUILD_DIR (a finished scripts/kernel.sh build) enables the
#   initramfs checks; without it they are skipped.
set -euo pipefail
cd "$(dirname "$0")"
[ $# = 0 ] || { echo "usage: $0" >&2; exit 2; }
status=0
for t in t-*.sh; do
	name=${t%.sh}
	name=runner-${name#t-}
	echo "# suite: $name"
	rc=0
	"./$t" || rc=$?
	echo "# exit: $name $rc"
	[ "$rc" = 0 ] || status=1
done
exit "$status"
