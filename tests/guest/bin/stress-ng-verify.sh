#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# stress-ng with --verify, for a plan's "run" line, with a verdict of its
# own. stress-ng's exit status alone is not one: it misses a failed
# verification (a "fail:" line such as "hdd: incorrect data found") until
# five have been logged in one stressor, and a stressor too slow to finish
# one round before the timeout (bogo ops 0) verified nothing yet passes.
# This fails on a non-zero exit status (a stressor failed, was skipped or
# could not start), on any "fail:" line and on any stressor that did no
# work. stress-ng's output is passed through.
#
# usage: stress-ng-verify.sh STRESS-NG-ARGS...
# (stress-ng-seek.sh links here: the same, under a result name of its own)
log=$(mktemp /tmp/stress-ng-verify.XXXXXX) || exit 2
{ stress-ng --verify --metrics-brief "$@" 2>&1; echo $? >"$log.rc"; } | tee "$log"
rc=$(cat "$log.rc")
fails=$(grep -c '^stress-ng: fail:' "$log")
# "stress-ng: metrc: [PID] NAME BOGO-OPS ...", one line per stressor,
# before the "miscellaneous metrics" ones.
bogo() { awk '/miscellaneous metrics/ { exit } $2 == "metrc:" && $5 ~ /^[0-9]+$/ { print $4, $5 }' "$log"; }
idle=$(bogo | awk '$2 == 0 { print $1 }' | tr '\n' ' ')
worked=$(bogo | awk '$2 > 0' | wc -l)
rm -f "$log" "$log.rc"
verdict=0
if [ "$rc" != 0 ]; then
	echo "stress-ng-verify: stress-ng exited with status $rc"
	verdict=1
fi
if [ "$fails" != 0 ]; then
	echo "stress-ng-verify: $fails failure(s) reported (the fail: lines above)"
	verdict=1
fi
if [ -n "$idle" ]; then
	echo "stress-ng-verify: no bogo op completed, nothing verified: $idle"
	verdict=1
fi
if [ "$worked" = 0 ]; then
	echo "stress-ng-verify: no stressor reported any work"
	verdict=1
fi
[ "$verdict" != 0 ] || echo "stress-ng-verify: $worked stressor(s) worked, no failure"
exit "$verdict"
