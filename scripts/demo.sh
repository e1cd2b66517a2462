#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The main job: set everything up, boot a QEMU guest, mount a host
# directory over virtio-fs and show it working, then show the host's side,
# and end with a one-line verdict.
#
# usage: scripts/demo.sh [--driver c|rust] [--host virtiofsd|dax] [--transport pci|mmio] [--opts MOUNT_OPTS]
#   defaults: the Rust driver (virtiofs-rs) with the project's DAX host
#   and -o dax=always over virtio-pci (the cache window's counters are
#   shown before and after a file goes through it); --host virtiofsd shows
#   the page-cache path with the upstream host; --driver c shows the
#   in-tree C driver; other scripts/run-guest.sh options pass through.
. "$(dirname "$0")/lib.sh"

DRIVER=rust HOST=dax TRANSPORT=pci OPTS= OPTS_GIVEN=
args=("$@")
while [ $# -gt 0 ]; do
	case "$1" in
	-h|--help) sed -n 's/^# usage: /usage: /p; s/^#   /  /p' "$0" >&2; exit 0 ;;
	--plan) die "the demo runs its own plan" ;;
	--driver) DRIVER=${2:?--driver needs c or rust}; shift ;;
	--host) HOST=${2:?--host needs virtiofsd or dax}; shift ;;
	--transport) TRANSPORT=${2:?--transport needs pci or mmio}; shift ;;
	--opts) OPTS=${2:?--opts needs mount options} OPTS_GIVEN=1; shift ;;
	esac
	shift
done
case "$DRIVER" in
c) what="the in-tree C driver (virtiofs.ko)" ;;
rust) what="virtiofs-rs (virtiofs_rs.ko)" ;;
*) die "--driver must be c or rust" ;;
esac

# With the DAX host, the window is used unless the options say otherwise.
[ -n "$OPTS_GIVEN" ] || [ "$HOST" != dax ] || OPTS=dax=always

T0=$SECONDS
OUT=$VFSRS_RUNS/demo-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
log "setting up (scripts/setup.sh installs what is missing; the first time takes minutes)"
"$VFSRS_ROOT/scripts/setup.sh"
log "booting a guest with $what, host $HOST, virtio-$TRANSPORT${OPTS:+, mount options $OPTS}"
rc=0
"$VFSRS_ROOT/scripts/run-guest.sh" --driver "$DRIVER" --host "$HOST" ${OPTS:+--opts "$OPTS"} \
	--plan demo --out "$OUT" --label demo --keep-shared "${args[@]}" \
	>"$OUT/report.tap" || rc=$?

echo
echo "== In the guest: $what mounts the host directory by its tag =="
# "# $ CMD" lines are commands, "#   " lines their output.
[ -s "$OUT/tap.log" ] || echo "    (the guest printed nothing: see the messages above and $OUT)"
sed -n '/^# plan: demo/,/^# plan-end: demo/p' "$OUT/tap.log" 2>/dev/null | awk '
	/^# suite: / { insuite = ($3 == "demo.sh") ; next }
	!insuite { next }
	/^# \$ / { print "  " substr($0, 3); next }
	/^#   / { print "    " substr($0, 5); next }
	/^not ok / { sub(/^not ok [0-9]+ /, ""); print "    ^^^ FAILED: " $0 }'

echo
echo "== On the host: the shared directory ($OUT/demo/shared) =="
if [ -d "$OUT/demo/shared/guest" ]; then
	echo "  \$ ls -l guest/"
	ls -l "$OUT/demo/shared/guest" | sed 's/^/    /'
	echo "  \$ cat guest/hello-from-guest.txt"
	sed 's/^/    /' "$OUT/demo/shared/guest/hello-from-guest.txt" 2>/dev/null ||
		echo "    (no such file: the guest's write did not reach the host)"
	echo "  \$ md5sum guest/data.bin"
	(cd "$OUT/demo/shared" && md5sum guest/data.bin 2>/dev/null | sed 's/^/    /') ||
		echo "    (no such file)"
else
	echo "    (the guest left nothing: it did not get to write)"
fi

echo
failed=$(cat "$OUT"/*/results.tsv 2>/dev/null | awk -F'\t' '$1 == "fail" { print $5 }')
t=$(fmt_secs $((SECONDS - T0)))
if [ "$rc" = 0 ] && [ -z "$failed" ]; then
	echo "demo: OK: $what mounted the host directory, listed and read the host's files and wrote one the host reads ($t; logs in $OUT)"
else
	echo "Failed:"
	printf '%s\n' "${failed:-run-guest.sh exited $rc (see $OUT/report.tap)}" | sed 's/^/  /'
	echo "demo: FAILED with $what: $(printf '%s\n' "$failed" | grep -c . || true) failure(s) above ($t; logs in $OUT)"
fi
exit "$rc"
