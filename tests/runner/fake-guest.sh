#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Plays the guest for tests/runner/t-run-guest.sh, in place of QEMU (the
# runner starts it as "fake-guest.sh chroot ROOT qemu-system-x86_64 ARGS..."
# with its fds 10, the console, and 11, the TAP channel). It speaks the
# runner's protocol as tests/guest/init does and, for each "test WHAT" line
# of a plan, does WHAT: ok, fail, hang, or write:FILE (FILE appears in the
# shared directory, as a guest test's write through virtio-fs would).
set -euo pipefail
root=$2
shift 3
plans= ctl=
while [ $# -gt 0 ]; do
	case "$1" in
	-append) for w in $2; do case "$w" in vfsrs.plans=*) plans=${w#*=} ;; esac; done; shift ;;
	-chardev) case "$2" in pipe,id=ctl,path=*) ctl=$root${2#*path=} ;; esac; shift ;;
	esac
	shift
done
tap() { printf '%s\n' "$@" >&11; }
suite() { tap "# suite: $1" "1..1" "$2 1 $1" "# exit: $1 0"; }
echo "[    0.000000] Linux version fake" >&10
exec 3<"$ctl.in"
suite driver ok
for p in ${plans//,/ }; do
	echo "[    1.000000] vfsrs: plan $p start" >&10
	tap "# plan: $p"
	while read -r word arg <&3; do [ "$word $arg" = "go $p" ] && break; done
	while read -r kw what; do
		[ "$kw" = test ] || continue
		case "$what" in
		ok) suite "$what" ok ;;
		fail) suite "$what" "not ok" ;;
		hang) tap "# suite: hang"; exec sleep 600 ;;
		write:*) mkdir -p "$(dirname "$VFSRS_SHARED/${what#write:}")"
			echo "$p" >"$VFSRS_SHARED/${what#write:}"
			suite write ok ;;
		esac
	done <"${VFSRS_PLANS_DIR:-$(dirname "$0")/../guest/plans}/$p.plan"
	suite unload ok
	tap "# plan-end: $p"
	echo "[    2.000000] vfsrs: plan $p end" >&10
done
tap "# done"
