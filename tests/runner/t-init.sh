#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tests/guest/init's plan loop (busybox sh, as in the guest, through
# "init --run-plan"): a tool's output is never TAP (a tool printing "ok 1"
# or "not ok 1" does not count, its exit status does), a test program's
# stderr is not TAP, every plan line is its own suite, a missing program
# fails, one plan's "env" lines do not reach the next plan, the runner's
# directives (virtiofsd, timeout, ...) are not run as programs, a "run"
# line does not take a directory of the tests for its program, and a
# failed "mount" line ends its plan (the lines after it would run on the
# initramfs, not on the tag).
. "$(dirname "$0")/lib.sh"
echo "1..13"
command -v busybox >/dev/null || { echo "Bail out! busybox missing (scripts/setup.sh installs busybox-static)"; exit 1; }

mkdir -p "$TMP/tests"
cat >"$TMP/tests/tapper" <<'X'
#!/bin/sh
echo "1..1"
echo "ok 1 says_${1:-hi}"
echo "ok 2 printed on stderr" >&2
exit "${TAPPER_RC:-0}"
X
cat >"$TMP/tests/noisy_tool" <<'X'
#!/bin/sh
echo "ok 1 looks like TAP"
echo "1..3"
echo "not ok 2 also looks like TAP" >&2
exit "$1"
X
cat >"$TMP/tests/envcheck" <<'X'
#!/bin/sh
echo "1..1"
if [ -z "${LEAK:-}" ]; then echo "ok 1 no_leak"; else echo "not ok 1 no_leak # LEAK=$LEAK"; fi
X
chmod +x "$TMP"/tests/*
# A directory of the tests named like a program on PATH.
mkdir -p "$TMP/tests/true"
printf 'virtiofsd --cache=never\ntimeout 100\nenv TAPPER_RC=3\ntest tapper a\ntapper b\nrun noisy_tool 0\nrun noisy_tool 4\nenv LEAK=yes\nrun true\ntest no_such_program\n' >"$TMP/one.plan"
printf 'test envcheck\n' >"$TMP/two.plan"
# No such tag here: the mount fails (on any host, as root or not).
printf 'mount %s\nrun false\n' "$TMP/mnt" >"$TMP/three.plan"
VFS_TAG=vfsrs-selftest-no-such-tag VFSRS_TESTS_DIR=$TMP/tests busybox sh "$ROOT/tests/guest/init" \
	--run-plan "$TMP/one.plan" "$TMP/two.plan" "$TMP/three.plan" >"$TMP/tap" 2>"$TMP/err"
"$ROOT/scripts/tap-report.py" tap --label t --tap "$TMP/tap" --results "$TMP/r.tsv" >/dev/null || true
results() { grep -v '^#' "$TMP/r.tsv" | cut -f1,4 | tr '\t' ' '; }

check "a tool's TAP-like output is a comment" has "$TMP/tap" '^#   ok 1 looks like TAP$'
check "a tool's stderr is a comment" has "$TMP/tap" '^#   not ok 2 also looks like TAP$'
check "a test's stderr is a comment" has "$TMP/tap" '^#   ok 2 printed on stderr$'
check "a tool counts once, by its exit status" same "$(results | grep -c noisy_tool)" 2
check "a failing tool fails" has "$TMP/tap" '^not ok 1 exit_status # exit status 4$'
check "each plan line is its own suite" same "$(grep -c '^# suite: tapper' "$TMP/tap")" 2
check "each run's exit status counts" same "$(results | grep -c '^fail tapper:(exit)')" 2
check "a missing program fails" has "$TMP/tap" '^# exit: no_such_program 127$'
check "one plan's env does not reach the next" same "$(results | grep envcheck)" "pass envcheck:no_leak"
check "the runner's directives are not programs" bash -c \
	"! grep -q -E '^# suite: (virtiofsd|timeout)' '$TMP/tap'"
check "run takes a program on PATH, not a directory of the tests" \
	same "$(results | grep '^[a-z]* true:')" "pass true:exit_status"
check "a failed mount fails" same "$(results | grep mount)" "fail mount:mounted"
check "a failed mount ends its plan" \
	bash -c "sed -n '/^# plan: three/,\$p' '$TMP/tap' | grep -c '^# suite:' | grep -qx 1"
