#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The main job as a newcomer runs it: scripts/demo.sh in a cache that has
# no runs directory yet (every other part of $VFSRS_CACHE is linked, so
# nothing is rebuilt). It must succeed the first time, show the product
# (mount, listing, read, write, the host's view) and end with its one-line
# verdict, with no test-harness counts. Prints TAP.
#
# usage: tests/runner/demo-newcomer.sh DIR   (the new cache; kept for its logs)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
[ $# = 1 ] || die "usage: $0 DIR"
NEW=$1
rm -rf "$NEW"
mkdir -p "$NEW"
NEW=$(cd "$NEW" && pwd)
for e in "$VFSRS_CACHE"/*; do
	[ "$(basename "$e")" = runs ] || ln -s "$e" "$NEW/$(basename "$e")"
done
n=0
check() { # NAME CMD...
	n=$((n + 1))
	if "${@:2}" >/dev/null 2>&1; then echo "ok $n $1"; else echo "not ok $n $1"; fi
}
echo "# suite: demo-newcomer"
echo "1..9"
rc=0
(unset VFSRS_RUNS; VFSRS_CACHE=$NEW "$ROOT/scripts/demo.sh") >"$NEW/demo.out" 2>"$NEW/demo.err" || rc=$?
sed 's/^/#   /' "$NEW/demo.out"
out=$NEW/demo.out
check "demo.sh exits 0 the first time" [ "$rc" = 0 ]
check "it made its runs directory" test -d "$NEW/runs"
check "it shows the mount" grep -q '^  \$ mount -t virtiofs ' "$out"
check "it lists the host's files" grep -q ' hello.txt$' "$out"
check "it reads a host file" grep -q '^    hello from the host$' "$out"
check "the host sees what the guest wrote" grep -q '^    hello from the guest (Linux ' "$out"
check "it ends with the verdict" bash -c "tail -n 1 '$out' | grep -q '^demo: OK: '"
check "no harness counts in its output" bash -c "! grep -q -i -E 'doctest|^(not )?ok [0-9]|[0-9]+ passed, [0-9]+ failed' '$out'"
check "its progress goes to stderr" grep -q 'booting a guest' "$NEW/demo.err"
echo "# exit: demo-newcomer 0"
