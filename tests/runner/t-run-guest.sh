#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scripts/run-guest.sh with a fake guest (tests/runner/fake-guest.sh plays
# QEMU and the guest's /init): four plans in one boot, the third hangs.
# Checked: tap.log is readable outside the chroot while the guest runs; each
# plan gets a fresh shared directory with its .prepare; a passing plan's
# directory is removed, a failing one's kept; the hanging plan hits its own
# timeout, which names the suite, and still gets its host check; the plan
# after it fails as not run; the boot itself has no failure.
. "$(dirname "$0")/lib.sh"
echo "1..10"
B=${VFSRS_BUILD_DIR:-}
. "$ROOT/scripts/lib.sh"
if [ -z "$B" ] || [ ! -f "$B/.vfsrs-built" ] || [ ! -f "$QEMU_CHROOT/.vfsrs-ready" ] || [ ! -x "$VIRTIOFSD" ]; then
	for i in $(seq 10); do echo "ok $i # SKIP needs VFSRS_BUILD_DIR, the QEMU chroot and virtiofsd (scripts/setup.sh)"; done
	exit 0
fi
P=$TMP/plans
mkdir -p "$P"
printf 'test write:guest/good-out\ntest ok\n' >"$P/good.plan"
printf 'test write:guest/bad-out\ntest fail\n' >"$P/bad.plan"
printf 'timeout 3\ntest write:guest/hang-out\ntest hang\n' >"$P/hang.plan"
printf 'test ok\n' >"$P/after.plan"
printf '#!/bin/sh\ntouch "$1/host/prepared-good"\n' >"$P/good.prepare"
hostcheck() { # PLAN CONDITION
	printf '#!/bin/sh\necho "# suite: hostcheck"\necho 1..1\nif %s; then echo "ok 1 %s"; else echo "not ok 1 %s"; fi\necho "# exit: hostcheck 0"\n' \
		"$2" "$1" "$1" >"$P/$1.hostcheck"
}
hostcheck good '[ -f "$1/host/prepared-good" ] && [ "$(cat "$1/guest/good-out")" = good ]'
hostcheck bad '[ -f "$1/guest/bad-out" ] && [ ! -e "$1/guest/good-out" ] && [ ! -e "$1/host/prepared-good" ]'
hostcheck hang '[ -f "$1/guest/hang-out" ]'
chmod +x "$P"/*.prepare "$P"/*.hostcheck
OUT=$TMP/out
rc=0
VFSRS_FAKE_GUEST=$RUNNER_TESTS/fake-guest.sh VFSRS_PLANS_DIR=$P VFSRS_IDLE_TIMEOUT=20 \
	"$ROOT/scripts/run-guest.sh" --build-dir "$B" --plan good --plan bad --plan hang --plan after \
	--label fake --out "$OUT" >"$TMP/report" 2>"$TMP/log" &
pid=$!
live=no
for i in $(seq 100); do
	if grep -q '^# plan: hang' "$OUT/tap.log" 2>/dev/null && kill -0 "$pid" 2>/dev/null; then live=yes; break; fi
	sleep 0.2
done
wait "$pid" || rc=$?
summary() { cat "$OUT/$1/summary" 2>/dev/null; }

check "the run fails" same "$rc" 1
check "tap.log is readable while the guest runs" same "$live" yes
check "a plan gets its .prepare and its host check" same "$(summary good)" "5 0 0 0"
check "a passing plan's shared directory is removed" test ! -e "$OUT/good/shared"
check "a failing plan keeps what the guest left" test -f "$OUT/bad/shared/guest/bad-out"
check "each plan starts with a fresh shared directory" has "$TMP/report" '^ok [0-9]+ fake/bad:hostcheck:bad$'
check "a plan's own timeout stops the guest, naming the suite" has "$TMP/report" '^#   timeout after 3s in plan hang, suite hang'
check "the plan that hung still gets its host check" has "$TMP/report" '^ok [0-9]+ fake/hang:hostcheck:hang$'
check "the plan after it fails as not run" has "$TMP/report" '^not ok [0-9]+ fake/after:runner:\(not run\)$'
check "the boot itself has no failure" same "$(cut -d' ' -f2 "$OUT/boot/summary" 2>/dev/null)" 0
