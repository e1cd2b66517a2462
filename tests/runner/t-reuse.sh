#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scripts/test.sh reuses the results of a guest boot (and of the newcomer's
# demo) whose inputs did not change since it passed. Run here in a copy of
# the checkout: the real test.sh, lib.sh and tap-report.py, fakes for the
# rest (a run-guest.sh that writes results without a guest and notes each
# boot, a kernel build, initramfs, host binaries and QEMU of a few bytes).
# Checked: a boot that failed (or only reported a failure) or died is not
# kept and runs again next time, while XPASS, XFAIL and SKIP are kept;
# a kept boot is not run again, its results are copied, counted as before,
# marked reused and said to be ("reused: LABEL: ..."), and the last line
# says how many passed results were reused; a changed input (the DAX host,
# a module file, a project file) runs the boots that use it again; a boot
# whose inputs changed while it ran is not kept; boots run two at a time
# are kept too; --fresh and VFSRS_FRESH=1 run every boot.
. "$(dirname "$0")/lib.sh"
echo "1..23"
R=$TMP/checkout
F=$TMP/fake
export VFSRS_FAKE=$F VFSRS_CACHE=$TMP/cache
unset VFSRS_RUNS VFSRS_FRESH VFSRS_JOBS VFSRS_PLANS_DIR VFSRS_LOG_REUSE VFSRS_IDLE_TIMEOUT VFSRS_FAKE_GUEST
mkdir -p "$R/scripts" "$R/tests/guest" "$R/tests/runner" "$R/tests/expect" "$R/configs" \
	"$R/fs/virtiofs_rs/proto" "$R/tests/vhost-user-fs-dax" "$F/bin" "$F/tests/host" \
	"$F/kernel/build-test/arch/x86/boot" "$F/kernel/build-test/modroot/lib/modules/6.12.0/kernel" \
	"$VFSRS_CACHE/tools/virtiofsd-1.14.0/bin" "$VFSRS_CACHE/qemu-trixie/usr/bin" \
	"$VFSRS_CACHE/qemu-trixie/var/lib/dpkg"
cp "$ROOT/scripts/test.sh" "$ROOT/scripts/lib.sh" "$ROOT/scripts/tap-report.py" "$R/scripts/"
cp -r "$ROOT/tests/guest/plans" "$R/tests/guest/"
cp "$ROOT/tests/expect/c.xfail" "$ROOT/tests/expect/rust.xfail" "$R/tests/expect/"
cp "$ROOT/configs/base.config" "$R/configs/"
printf '[package]\nname = "proto"\n' >"$R/fs/virtiofs_rs/proto/Cargo.toml"
printf '[package]\nname = "dax"\n' >"$R/tests/vhost-user-fs-dax/Cargo.toml"

# fake FILE: an executable script, from stdin.
fake() {
	{ echo '#!/bin/bash'; cat; } >"$1"
	chmod +x "$1"
}
# suite NAME: a passing TAP suite.
suite() { printf "printf '# suite: %s\\\\n1..1\\\\nok 1 %s\\\\n# exit: %s 0\\\\n'\n" "$1" "$1" "$1"; }
echo 'exit 0' | fake "$R/scripts/setup.sh"
echo 'echo "$VFSRS_FAKE/kernel/build-test"' | fake "$R/scripts/kernel.sh"
fake "$R/scripts/initramfs.sh" <<'EOF'
if [ "$1" = --tests-dir ]; then echo "$VFSRS_FAKE/tests"; else echo "$VFSRS_FAKE/initramfs.cpio.gz"; fi
EOF
echo 'echo "$VFSRS_FAKE/vhost-user-fs-dax"' | fake "$R/scripts/build-dax-host.sh"
{ echo 'echo "${VFSRS_FRESH:-unset}" >"$VFSRS_FAKE/lint-fresh"'; suite lint; } | fake "$R/scripts/lint.sh"
suite bench | fake "$R/scripts/bench.sh"
suite runner | fake "$R/tests/runner/run.sh"
# The demo and each boot are noted in $F/boots. A boot whose label is in
# $F/fail fails, one in $F/failrow reports a failure but exits 0, one in
# $F/die leaves no results; with $F/change, the first boot changes the
# kernel (as a kernel.sh run elsewhere would).
fake "$R/tests/runner/demo-newcomer.sh" <<'EOF'
echo demo >>"$VFSRS_FAKE/boots"
printf '# suite: demo\n1..1\nok 1 demo\n# exit: demo 0\n'
EOF
fake "$R/scripts/run-guest.sh" <<'EOF'
out= label= plans=()
while [ $# -gt 0 ]; do
	case "$1" in --out) out=$2 ;; --label) label=$2 ;; --plan) plans+=("$2") ;; esac
	case "$1" in --out|--label|--plan|--plan-label|--driver|--host|--transport|--build-dir|--cycles) shift ;; esac
	shift
done
echo "$label" >>"$VFSRS_FAKE/boots"
if [ -f "$VFSRS_FAKE/change" ]; then
	rm "$VFSRS_FAKE/change"
	echo new >>"$VFSRS_FAKE/kernel/build-test/arch/x86/boot/bzImage"
fi
listed() { grep -qxF "$label" "$@" 2>/dev/null; }
! listed "$VFSRS_FAKE/die" || exit 1
st=pass
! listed "$VFSRS_FAKE/fail" "$VFSRS_FAKE/failrow" || st=fail
row() { printf '%s\tproject\teach\t%s\t%s:%s\t\n' "$1" "$2" "$3" "$2"; }
mkdir -p "$out/boot"
{
	echo "# label: $label (boot)"
	row pass driver:load "$label (boot)"
	row xpass driver:listed "$label (boot)"
} >"$out/boot/results.tsv"
for p in "${plans[@]}"; do
	mkdir -p "$out/$p"
	{
		echo "# label: $label/$p"
		row "$st" "$p:t" "$label/$p"
		row xfail "$p:x" "$label/$p"
		row skip "$p:s" "$label/$p"
	} >"$out/$p/results.tsv"
done
echo "$label: fake"
[ "$st" = pass ] || listed "$VFSRS_FAKE/failrow"
EOF
fake "$F/bin/cargo" <<'EOF'
case "$1" in
-V) echo "cargo 0.0.0 (fake)" ;;
test) mkdir -p "$CARGO_TARGET_DIR"; printf 'test t ... ok\n\ntest result: ok. 1 passed\n' ;;
esac
EOF
echo 'echo "rustc 0.0.0 (fake)"' | fake "$F/bin/rustc"
export PATH=$F/bin:$PATH
B=$F/kernel/build-test
echo inputs >"$B/.vfsrs-built"
echo kernel >"$B/arch/x86/boot/bzImage"
echo module >"$B/modroot/lib/modules/6.12.0/kernel/virtiofs_rs.ko"
echo initramfs >"$F/initramfs.cpio.gz"
echo helper >"$F/tests/host/vfs_pattern"
echo dax >"$F/vhost-user-fs-dax"
echo virtiofsd >"$VFSRS_CACHE/tools/virtiofsd-1.14.0/bin/virtiofsd"
echo qemu >"$VFSRS_CACHE/qemu-trixie/usr/bin/qemu-system-x86_64"
echo packages >"$VFSRS_CACHE/qemu-trixie/var/lib/dpkg/status"
git -C "$R" init -q
git -C "$R" add -A

# run NAME ARGS...: scripts/test.sh ARGS in the copy, its output in
# $TMP/NAME.out and .err, the boots it ran (sorted) in $TMP/NAME.boots.
run() {
	local name=$1
	shift
	rm -f "$F/boots"
	touch "$F/boots"
	VFSRS_RUNS=$TMP/runs-$name "$R/scripts/test.sh" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || true
	LC_ALL=C sort "$F/boots" >"$TMP/$name.boots"
}
boots() { grep -c . "$TMP/$1.boots" || true; }
last() { tail -n 1 "$TMP/$1.out"; }
kept() { find "$VFSRS_CACHE/results" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | wc -l; }
"$R/scripts/test.sh" --list >"$TMP/list"
ALL=$(($(grep -c '^boot: ' "$TMP/list") + 1))
DAX=$(($(grep -c '^boot: .*--host dax ' "$TMP/list") + 1))

printf '%s\n' rust/dax/pci/interrupt >"$F/fail"
printf '%s\n' c/dax/pci/unbind >"$F/die"
printf '%s\n' rust/virtiofsd/mmio >"$F/failrow"
run first
check "first run: every boot and the demo run" same "$(boots first)" "$ALL"
check "first run: nothing reused, every key known" \
	bash -c "! grep -q reused '$TMP/first.out' && ! grep -q 'reused nor kept\|reused or kept' '$TMP/first.err'"
rm "$F/fail" "$F/die" "$F/failrow"
run second
check "a boot that failed or died was not kept: it runs again, and only it" same \
	"$(paste -sd' ' "$TMP/second.boots")" "c/dax/pci/unbind rust/dax/pci/interrupt rust/virtiofsd/mmio"
check "a kept boot is reused and says why" has "$TMP/second.out" \
	'^reused: rust/dax/pci \(dax-always, dax-never, .*\): inputs unchanged since it passed at [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} in [^ ]+ \(key [0-9a-f]{12}\)$'
check "the demo is reused" has "$TMP/second.out" '^reused: demo \(newcomer\): inputs unchanged since it passed at '
run third
check "nothing changed: no boot runs" same "$(boots third)" 0
check "reused results count as before" same "$(last third | cut -d' ' -f1-4)" "$(last second | cut -d' ' -f1-4)"
# The host steps (lint, 2 cargo crates, runner, bench: 5 passes) ran.
check "the last line says how many passed results were reused" same "$(last third)" \
	"$(last third | cut -d' ' -f1) passed, 0 failed ($(($(last third | cut -d' ' -f1) - 5)) of them reused from earlier runs with identical inputs)"
check "reused results are marked in the summary" has "$TMP/third.out" '^  c/dax/pci/unbind \(boot\) +2 passed .*\[reused\]$'
check "reused results files say so" has "$(ls -d "$TMP"/runs-third/test-*)/rust-dax-pci-interrupt/interrupt/results.tsv" \
	'^# reused: passed at '
check "results of a run that reused nothing say nothing of reuse" same "$(last first | sed 's/[0-9]*//g')" " passed,  failed"

echo changed >>"$F/vhost-user-fs-dax"
before=$(kept)
VFSRS_JOBS=2 run daxhost
check "a changed DAX host runs the boots on it and the demo again, only those" same "$(boots daxhost)" "$DAX"
check "boots run two at a time (VFSRS_JOBS=2) are kept too" same "$(kept)" "$((before + DAX))"
check "(and test.sh waits for each of them and for the host steps)" lacks "$TMP/daxhost.err" 'wait: '
check "(and the boots on virtiofsd are reused)" has "$TMP/daxhost.out" '^reused: c/virtiofsd/mmio: '
run fresh --fresh
check "--fresh: every boot and the demo run" same "$(boots fresh)" "$ALL"
check "--fresh: nothing reused, and lint reuses nothing" \
	bash -c "! grep -q reused '$TMP/fresh.out' && [ \"\$(cat '$F/lint-fresh')\" = 1 ]"

# One boot is enough from here on: the gate (--quick).
GATE=c/virtiofsd/pci
run quick --quick
run quick-again --quick
check "--quick: the gate that passed is reused" bash -c \
	"[ '$(boots quick)' = 1 ] && [ '$(boots quick-again)' = 0 ] && grep -q '^reused: $GATE: ' '$TMP/quick-again.out'"
echo changed >>"$B/modroot/lib/modules/6.12.0/kernel/virtiofs_rs.ko"
run module --quick
check "a changed module file runs the boot again" same "$(cat "$TMP/module.boots")" "$GATE"
echo '# changed' >>"$R/tests/expect/rust.xfail"
run project --quick
check "a changed project file runs the boot again" same "$(cat "$TMP/project.boots")" "$GATE"
check "the log names the inputs that changed" has "$TMP/project.err" 'guest inputs changed since the last run: tests/expect/rust.xfail$'
VFSRS_FRESH=1 run fresh-env --quick
check "VFSRS_FRESH=1: the boot that passed before runs again" same "$(cat "$TMP/fresh-env.boots")" "$GATE"

echo '# changed' >>"$R/tests/expect/c.xfail"
touch "$F/change"
before=$(kept)
run changing
check "a boot whose inputs changed while it ran is not kept (nor those after it)" \
	bash -c "[ '$(kept)' = '$before' ] && [ '$(boots changing)' = '$ALL' ] && grep -q 'its inputs changed while it ran' '$TMP/changing.err'"
