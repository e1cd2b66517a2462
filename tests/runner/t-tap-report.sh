#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scripts/tap-report.py on made-up guest logs: every plan line is its own
# suite (a program run twice keeps both exit statuses), every non-zero exit
# counts, a guest that dies fails the plan it died in and the plans after
# it (and only those), splats belong to the plan whose part of the kernel
# log they are in, xfail patterns for one plan do not hide a boot-level
# failure of a boot shared with other plans, and the closing summary counts
# the kernel's doctests once per kernel build.
. "$(dirname "$0")/lib.sh"
REPORT=$ROOT/scripts/tap-report.py
echo "1..27"

# guest DIR PLANS XFAIL: run the guest report on DIR/tap.log, DIR/console.log.
guest() {
	local d=$1 plans=$2
	printf '%s\n' "${3:-}" >"$d/xfail"
	touch "$d/console.log"
	"$REPORT" guest --label t --driver c --plans "$plans" --expect "$d/xfail" --tap "$d/tap.log" \
		--console "$d/console.log" --outdir "$d" --build-id b1 --project-root "$ROOT" \
		${TIMEOUT:+--timeout "$TIMEOUT" --timeout-plan "$TIMEOUT_PLAN"} >"$d/report" || true
}
# summary DIR SECTION: "passed failed xfail skipped" of one plan (or boot).
summary() { cat "$1/$2/summary"; }
failed() { read -r _ f _ <"$1/$2/summary"; echo "$f"; }

boot_ok='# suite: driver
1..1
ok 1 load_c
# exit: driver 0'
unload='# suite: unload
1..1
ok 1 unload_c
# exit: unload 0'

# 1. The same program twice with different arguments: the first run's
# failing exit status must not be hidden by the second's.
d=$TMP/twice
mkdir -p "$d"
cat >"$d/tap.log" <<EOF
$boot_ok
# plan: p1
# suite: prog -a
1..1
ok 1 t
# exit: prog 1
# suite: prog -b
1..1
ok 1 t
# exit: prog 0
$unload
# plan-end: p1
# done
EOF
guest "$d" p1
check "program twice: the first run's exit status counts" same "$(failed "$d" p1)" 1
check "program twice: the failure names the invocation" has "$d/report" '^#   exit status 1 \(prog -a\)'
check "program twice: both runs' results count" same "$(summary "$d" p1)" "4 1 0 0"

# 2. A non-zero exit explained by expected failures is expected; one with
# only passing results is a failure.
d=$TMP/explained
mkdir -p "$d"
cat >"$d/tap.log" <<EOF
$boot_ok
# plan: p1
# suite: prog
1..2
ok 1 good
not ok 2 bad
# exit: prog 1
$unload
# plan-end: p1
# done
EOF
guest "$d" p1 "prog:bad"
check "exit status explained by xfail results is xfail" same "$(summary "$d" p1)" "3 0 2 0"
guest "$d" p1 "prog:good"
check "exit status with an unexpected failure fails" same "$(failed "$d" p1)" 2

# 3. Framing errors are failures, never silent.
d=$TMP/framing
mkdir -p "$d"
cat >"$d/tap.log" <<EOF
$boot_ok
# plan: p1
ok 7 stray result outside any suite
# suite: short
1..3
ok 1 a
# exit: short 0
# suite: silent
# exit: silent 0
# suite: unfinished
1..1
ok 1 a
$unload
# plan-end: p1
# done
EOF
guest "$d" p1
check "a result outside any suite fails" grep -q 'not ok .* t:runner:(stray TAP result)' "$d/report"
check "fewer results than planned fails" grep -q 'not ok .* t:short:(plan)' "$d/report"
check "a suite with no results fails" grep -q 'not ok .* t:silent:(no results)' "$d/report"
check "a suite that never finished fails" grep -q 'not ok .* t:unfinished:(exit)' "$d/report"

# 4. The guest dies in the second of three plans: the first keeps its
# verdict, the second fails, the third did not run; the boot itself is fine.
d=$TMP/crash
mkdir -p "$d"
cat >"$d/tap.log" <<EOF
$boot_ok
# plan: p1
# suite: prog
1..1
ok 1 a
# exit: prog 0
$unload
# plan-end: p1
# plan: p2
# suite: prog
1..2
ok 1 a
EOF
printf '[ 1.0] vfsrs: plan p1 start\n[ 2.0] vfsrs: plan p1 end\n[ 2.1] vfsrs: plan p2 start\n[ 3.0] Kernel panic - not syncing: test\n' >"$d/console.log"
guest "$d" p1,p2,p3
check "crash: the plans before it pass" same "$(summary "$d" p1)" "3 0 0 0"
check "crash: the plan it happened in fails" grep -q 'not ok .* t/p2:runner:(plan finished)' "$d/report"
check "crash: the splat is that plan's" grep -q 'not ok .* t/p2:runner:no kernel splat' "$d/report"
check "crash: the plans after it fail as not run" grep -q 'not ok .* t/p3:runner:(not run)' "$d/report"
check "crash: the boot has no failure of its own" same "$(failed "$d" boot)" 0

# 5. A timeout in a plan is reported on that plan.
TIMEOUT="timeout after 5s in plan p2, suite prog, last started test x" TIMEOUT_PLAN=p2 guest "$d" p1,p2,p3
check "timeout: named on the plan that overran" has "$d/report" '^#   timeout after 5s in plan p2'

# 6. A splat before the first plan is the boot's: an xfail for one plan of a
# shared boot does not hide it; for a boot of that plan alone it does.
d=$TMP/bootsplat
mkdir -p "$d"
cat >"$d/tap.log" <<EOF
$boot_ok
# plan: p1
$unload
# plan-end: p1
# plan: p2
$unload
# plan-end: p2
# done
EOF
printf '[ 0.5] WARNING: at probe\n[ 1.0] vfsrs: plan p1 start\n[ 2.0] vfsrs: plan p1 end\n[ 2.1] vfsrs: plan p2 start\n[ 3.0] vfsrs: plan p2 end\n' >"$d/console.log"
guest "$d" p1,p2 "p1:runner:no kernel splat"
check "boot splat in a shared boot is not hidden by one plan's xfail" same "$(failed "$d" boot)" 1
guest "$d" p1,p2 "p1:runner:no kernel splat
p2:runner:no kernel splat"
check "boot splat expected by every plan of the boot is xfail" same "$(failed "$d" boot)" 0

# 7. Host checks: a failing script or one that prints no suite fails.
d=$TMP/hostcheck
mkdir -p "$d/p1"
cat >"$d/tap.log" <<EOF
$boot_ok
# plan: p1
$unload
# plan-end: p1
# done
EOF
printf '# hostcheck: p1.hostcheck\nsyntax error\n# hostcheck-status: 2\n' >"$d/p1/hostcheck.tap"
guest "$d" p1
check "a host check that prints no suite fails" grep -q 'not ok .* t:hostcheck:(no results)' "$d/report"
check "a host check that exits non-zero fails" grep -q 'not ok .* t:hostcheck:(exit)' "$d/report"

# 8. Doctests: the kernel's and this project's (by their source file),
# counted once per kernel build however many boots ran them.
for b in boot1 boot2; do
	d=$TMP/$b
	mkdir -p "$d"
	cat >"$d/tap.log" <<EOF
$boot_ok
# plan: p1
$unload
# plan-end: p1
# done
EOF
	cat >"$d/console.log" <<'EOF'
[ 0.1]     KTAP version 1
[ 0.1]     # Subtest: rust_doctests_kernel
[ 0.1]     1..2
[ 0.2]     # rust_doctest_kernel_sync_arc_rs_0.location: rust/kernel/sync/arc.rs:10
[ 0.2]     ok 1 rust_doctest_kernel_sync_arc_rs_0
[ 0.3]     # rust_doctest_kernel_virtio_rs_0.location: rust/kernel/virtio.rs:20
[ 0.3]     ok 2 rust_doctest_kernel_virtio_rs_0
[ 0.4] ok 1 rust_doctests_kernel
[ 1.0] vfsrs: plan p1 start
[ 2.0] vfsrs: plan p1 end
EOF
	guest "$d" p1
done
cat "$TMP"/boot1/*/results.tsv "$TMP"/boot1/boot/results.tsv >/dev/null
"$REPORT" total "$TMP"/boot1/boot/results.tsv "$TMP"/boot1/p1/results.tsv \
	"$TMP"/boot2/boot/results.tsv "$TMP"/boot2/p1/results.tsv >"$TMP/total" || true
check "doctests: kernel and project doctests told apart" \
	grep -q 'kernel.*rust_doctest_kernel_sync_arc_rs_0' "$TMP/boot1/boot/results.tsv"
check "doctests: this project's doctest is the project's" \
	grep -q 'project.*rust_doctest_kernel_virtio_rs_0' "$TMP/boot1/boot/results.tsv"
check "doctests: the kernel's counted once over two boots" \
	has "$TMP/total" "^The kernel's own Rust doctests.*: 1 passed, 0 failed"
# Per boot: driver load and the boot splat check (2), per plan: unload and
# splat check (2); twice; plus each doctest once.
check "total: ends with 'N passed, N failed'" same "$(tail -n 1 "$TMP/total")" "10 passed, 0 failed"
# The second boot's results copied from an earlier run (scripts/test.sh
# marks them "# reused:"), and a lint check not run again: counted, and
# the last line says how many passed results were reused (the doctests
# boot1 ran are not).
for f in boot/results.tsv p1/results.tsv; do
	mkdir -p "$TMP/reused/$(dirname "$f")"
	{ echo "# reused: passed at 2026-12-01 05:12"; cat "$TMP/boot2/$f"; } >"$TMP/reused/$f"
done
printf '# suite: lint\n1..2\nok 1 fmt # reused: passed at 2026-12-01 05:12\nok 2 clippy\n# exit: lint 0\n' >"$TMP/lint.tap"
"$REPORT" tap --label lint --tap "$TMP/lint.tap" --results "$TMP/lint.tsv" >/dev/null
"$REPORT" total "$TMP"/boot1/boot/results.tsv "$TMP"/boot1/p1/results.tsv \
	"$TMP"/reused/boot/results.tsv "$TMP"/reused/p1/results.tsv "$TMP/lint.tsv" >"$TMP/total" || true
check "total: reused results counted, and how many the last line says" same "$(tail -n 1 "$TMP/total")" \
	"12 passed, 0 failed (5 of them reused from earlier runs with identical inputs)"
check "total: a reused results file is marked" has "$TMP/total" '^  t +2 passed .*\[reused\]$'

# 9. cargo test output: each test a result; a crash with no failing test
# still fails; a failing test is not counted twice.
printf 'running 2 tests\ntest a ... ok\ntest b ... FAILED\n\ntest result: FAILED. 1 passed; 1 failed\n' >"$TMP/cargo.log"
"$REPORT" cargo --label c --log "$TMP/cargo.log" --rc 101 --results "$TMP/cargo.tsv" >/dev/null || true
check "cargo: one result per test, the failure once" same "$(cut -f1 "$TMP/cargo.tsv" | grep -v '^#' | sort | tr '\n' ' ')" "fail pass "
printf 'error[E0425]: cannot find value\n' >"$TMP/cargo.log"
"$REPORT" cargo --label c --log "$TMP/cargo.log" --rc 101 --results "$TMP/cargo.tsv" >/dev/null || true
check "cargo: a build failure fails" grep -q '^fail' "$TMP/cargo.tsv"
