#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Set up everything and run every test: lint, the host crates' tests, the
# runner's self-tests, a smoke run of the benchmark command, the guest
# matrix (driver x host x transport x plan) and the demo as a newcomer runs
# it. Ends with "N passed, N failed".
#
# usage: scripts/test.sh [--quick | --list]
#   --quick  only the gate: C driver, virtiofsd, virtio-pci, plan basic
#   --list   print the guest boots the matrix makes, run nothing
#   VFSRS_JOBS=N  guests at a time (default 1; a TCG guest keeps about one
#                 core busy, so on a machine of your own N=cores is faster)
#
# Plans that need the same driver, host, transport and device configuration
# (virtiofsd's options included: tests/guest/README.md) share one guest boot; each plan keeps its own
# verdict. Lint checks and builds whose inputs did not change are not run
# again (the output says so). The closing summary counts this project's
# tests, and the Rust doctests the kernel runs at every boot once per
# kernel build.
. "$(dirname "$0")/lib.sh"

MODE=full
case "${1:-}" in
'') ;;
--quick) MODE=quick ;;
--list) MODE=list ;;
*) die "usage: $0 [--quick | --list]" ;;
esac
[ $# -le 1 ] || die "usage: $0 [--quick | --list]"

# The guest matrix: every plan runs against the C driver (the oracle) and
# virtiofs-rs; what fails where is listed in tests/expect/<driver>.xfail.
# Columns: label suffix, host, transport, plan. One row per line; rows
# whose plans need the same guest are grouped into one boot by themselves.
# QEMU 11.1.3 exposes the cache window on virtio-pci only, so the DAX plans
# run there. The tools plans (fio and stress-ng, about 2.5 minutes each
# with the C driver) run once per host: virtiofsd, and the DAX host with
# dax=always (tools-dax-never.plan says why dax=never is not here).
MATRIX=(
	"virtiofsd/pci virtiofsd pci basic"
	"virtiofsd/mmio virtiofsd mmio basic"
	"dax/pci/dax-always dax pci dax-always"
	"dax/pci/dax-never dax pci dax-never"
	"dax/pci/dax-inode dax pci dax-inode"
	"dax/pci/dax-cycles dax pci dax-cycles"
	"dax/pci/dax-inject dax pci dax-inject"
	"dax/pci/dax-inject-remove dax pci dax-inject-remove"
	"dax/mmio/basic dax mmio basic"
	"dax/pci/corrupt-len dax pci corrupt-len"
	"dax/pci/corrupt-unique dax pci corrupt-unique"
	"virtiofsd/pci/cycles virtiofsd pci cycles"
	"virtiofsd/pci/duptag virtiofsd pci duptag"
	"dax/pci/badwindow dax pci badwindow"
	"dax/pci/ring-full dax pci ring-full"
	"dax/pci/forget dax pci forget"
	"dax/pci/interrupt dax pci interrupt"
	"dax/pci/interrupt-open dax pci interrupt-open"
	"dax/pci/vfs-edges dax pci vfs-edges"
	"dax/pci/ring-pressure dax pci ring-pressure"
	"dax/pci/unbind dax pci unbind"
	"virtiofsd/pci/posix virtiofsd pci posix"
	"virtiofsd/pci/posix-never virtiofsd pci posix-never"
	"virtiofsd/pci/posix-always virtiofsd pci posix-always"
	"virtiofsd/pci/posix-writeback virtiofsd pci posix-writeback"
	"virtiofsd/pci/tools virtiofsd pci tools"
	"dax/pci/tools-dax-always dax pci tools-dax-always"
)
# The gate runs first: the C driver with the upstream host.
GATE="c virtiofsd/pci"
# Extra run-guest.sh options for the boot that runs a row (driver/label):
# three load/unload cycles before the tests.
declare -A ROW_EXTRA=([rust/virtiofsd/pci]="--cycles 3")

# Group the rows into boots: BOOTS in order, each with its run-guest.sh
# options, plans and per-plan labels.
BOOTS=()
declare -A BOOT_ARGS=() BOOT_PLANS=() BOOT_LABELS=()
add_row() { # driver label host transport plan
	local key="$1 $3 $4 $(plan_boot_key "$3" "$5")" extra=${ROW_EXTRA[$1/$2]:-}
	if [ -z "${BOOT_ARGS[$key]:-}" ]; then
		BOOTS+=("$key")
		BOOT_ARGS[$key]="--driver $1 --host $3 --transport $4"
	fi
	[ -z "$extra" ] || BOOT_ARGS[$key]+=" $extra"
	case " ${BOOT_PLANS[$key]:-} " in
	*" $5 "*) die "MATRIX: plan $5 appears twice for $1/$3/$4" ;;
	esac
	BOOT_PLANS[$key]+=" $5"
	BOOT_LABELS[$key]+=" $5=$1/$2"
}
read -r gd gl <<<"$GATE"
for row in "${MATRIX[@]}"; do
	read -r label host transport plan <<<"$row"
	[ "$label" = "$gl" ] && add_row "$gd" "$label" "$host" "$transport" "$plan"
done
if [ "$MODE" != quick ]; then
	for driver in c rust; do
		for row in "${MATRIX[@]}"; do
			read -r label host transport plan <<<"$row"
			[ "$driver $label" = "$GATE" ] && continue
			add_row "$driver" "$label" "$host" "$transport" "$plan"
		done
	done
fi

# Plans no row runs, with the first line of their header.
unmatrixed() {
	local f p
	for f in "$PLANS_DIR"/*.plan; do
		p=$(basename "$f" .plan)
		printf '%s\n' "${MATRIX[@]}" | awk -v p="$p" '$4 == p { found = 1 } END { exit !found }' && continue
		echo "$p: $(sed -n '1s/^# *//p' "$f")"
	done
}

if [ "$MODE" = list ]; then
	for key in "${BOOTS[@]}"; do
		echo "boot: ${BOOT_ARGS[$key]} --plan$(echo "${BOOT_PLANS[$key]}" | sed 's/ /,/g; s/^,/ /')"
	done
	unmatrixed | sed 's/^/not in the matrix: /'
	exit 0
fi

T0=$SECONDS
"$VFSRS_ROOT/scripts/setup.sh"
RESULTS=$VFSRS_RUNS/test-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS"
FILES=()
TAPREPORT=$VFSRS_ROOT/scripts/tap-report.py

# What the guests need, built (or found up to date) first. Every boot of
# this run uses this one kernel build.
B=$("$VFSRS_ROOT/scripts/kernel.sh" test)
"$VFSRS_ROOT/scripts/initramfs.sh" "$B" >/dev/null
if printf '%s\n' "${BOOT_ARGS[@]}" | grep -q -- '--host dax'; then
	"$VFSRS_ROOT/scripts/build-dax-host.sh" >/dev/null
fi

# Static checks (rustfmt, clippy, checkpatch), one result each; a check
# whose inputs did not change since it passed is not run again.
lint() {
	local reused
	"$VFSRS_ROOT/scripts/lint.sh" "$B" >"$RESULTS/lint.tap" || true
	reused=$(grep -c '# reused' "$RESULTS/lint.tap" || true)
	"$TAPREPORT" tap --label lint --tap "$RESULTS/lint.tap" --results "$RESULTS/lint.tsv" \
		--note "not run again, inputs unchanged since they passed: $reused" || true
}

# Host crates: cargo test (libtest's lines), in target directories stamped
# with the sources they were built from (scripts/lib.sh).
cargo_test() {
	local dir=$1 name=$2 target=$VFSRS_CACHE/cargo-target/$2 h rc=0
	h=$(crate_hash "$dir")
	cargo_prepare "$dir" "$target"
	step_begin "cargo-test-$name" "cargo test in ${dir#"$VFSRS_ROOT"/}"
	(cd "$dir" && CARGO_TARGET_DIR=$target cargo test --locked --release) \
		>"$RESULTS/cargo-$name.log" 2>&1 || rc=$?
	step_end "cargo-test-$name"
	[ "$rc" != 0 ] || cargo_stamp "$dir" "$target" "$h"
	echo "$rc" >"$RESULTS/cargo-$name.rc"
}
cargo_tests() {
	local dir name
	for dir in $CARGO_CRATES; do
		name=$(basename "$dir")
		with_lock "cargo-$name" cargo_test "$VFSRS_ROOT/$dir" "$name" ||
			echo 1 >"$RESULTS/cargo-$name.rc"
		"$TAPREPORT" cargo --label "cargo:$name" --log "$RESULTS/cargo-$name.log" \
			--rc "$(cat "$RESULTS/cargo-$name.rc")" --results "$RESULTS/cargo-$name.tsv" || true
	done
}
CARGO_CRATES="fs/virtiofs_rs/proto tests/vhost-user-fs-dax"

# The runner's own tests that need no guest: TAP report, guest /init, apt
# sources, cargo stamps, initramfs contents, the matrix's boots.
runner_tests() {
	step_begin runner-selftests "runner self-tests (tests/runner)"
	VFSRS_BUILD_DIR=$B "$VFSRS_ROOT/tests/runner/run.sh" >"$RESULTS/runner.tap" || true
	step_end runner-selftests
	"$TAPREPORT" tap --label "runner self-tests" --tap "$RESULTS/runner.tap" \
		--results "$RESULTS/runner.tsv" || true
}

# The benchmark is not a test (scripts/bench.sh runs for many minutes and
# asserts no speed); its smoke run proves the command still works: its
# plans, guest specs and report generator on canned guest output, no
# guest, seconds.
bench_smoke() {
	step_begin bench-smoke "bench smoke run (scripts/bench.sh --smoke)"
	"$VFSRS_ROOT/scripts/bench.sh" --smoke >"$RESULTS/bench-smoke.tap" 2>"$RESULTS/bench-smoke.log" || true
	step_end bench-smoke
	"$TAPREPORT" tap --label "bench smoke" --tap "$RESULTS/bench-smoke.tap" \
		--results "$RESULTS/bench-smoke.tsv" || true
}

# Those host-side steps run alongside the guests: a TCG guest keeps about
# one core busy, they use the other.
log "lint, cargo tests, runner self-tests and the bench smoke run run alongside the guests (log: $RESULTS/host-steps.log)"
(lint; cargo_tests; runner_tests; bench_smoke) >"$RESULTS/host-steps.log" 2>&1 &
HOST_STEPS=$!
FILES+=("$RESULTS/lint.tsv")
for dir in $CARGO_CRATES; do FILES+=("$RESULTS/cargo-$(basename "$dir").tsv"); done
FILES+=("$RESULTS/runner.tsv" "$RESULTS/bench-smoke.tsv")

# The boots: each KEY's label, its output directory, the results files it
# will write (listed now, so the summary names a boot that died early).
declare -A BOOT_LABEL=() BOOT_OUT=()
for key in "${BOOTS[@]}"; do
	read -r -a a <<<"${BOOT_ARGS[$key]}"
	read -r -a plans <<<"${BOOT_PLANS[$key]}"
	label=${a[1]}/${a[3]}/${a[5]}
	if [ ${#plans[@]} = 1 ]; then
		label=${BOOT_LABELS[$key]#*=}
	else
		label+=" ($(IFS=,; echo "${plans[*]}" | sed 's/,/, /g'))"
	fi
	BOOT_LABEL[$key]=$label
	BOOT_OUT[$key]=$RESULTS/${a[1]}-${a[3]}-${a[5]}-$(IFS=+; echo "${plans[*]}")
	FILES+=("${BOOT_OUT[$key]}/boot/results.tsv")
	for p in "${plans[@]}"; do FILES+=("${BOOT_OUT[$key]}/$p/results.tsv"); done
done

# guest_boot KEY: one guest for the plans of KEY.
guest_boot() {
	local key=$1 args=() p l
	read -r -a args <<<"${BOOT_ARGS[$key]}"
	for p in ${BOOT_PLANS[$key]}; do args+=(--plan "$p"); done
	for l in ${BOOT_LABELS[$key]}; do args+=(--plan-label "$l"); done
	"$VFSRS_ROOT/scripts/run-guest.sh" --label "${BOOT_LABEL[$key]}" --out "${BOOT_OUT[$key]}" \
		--build-dir "$B" "${args[@]}"
}

# VFSRS_JOBS: guests at a time (default 1). A TCG guest keeps about one
# core busy, so on a machine of your own more jobs finish sooner.
JOBS=${VFSRS_JOBS:-1}
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "VFSRS_JOBS must be a positive number"
if [ "$JOBS" = 1 ]; then
	for key in "${BOOTS[@]}"; do
		guest_boot "$key" | tee "${BOOT_OUT[$key]}.tap" || true
	done
else
	running=0
	for key in "${BOOTS[@]}"; do
		if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
		{ guest_boot "$key" || true; } >"${BOOT_OUT[$key]}.tap" 2>"${BOOT_OUT[$key]}.log" &
		running=$((running + 1))
	done
	wait || true
	for key in "${BOOTS[@]}"; do tail -n 1 "${BOOT_OUT[$key]}.tap" 2>/dev/null || true; done
fi

if [ "$MODE" = full ]; then
	# The main job as a newcomer runs it: scripts/demo.sh with no runs
	# directory yet; its exit status and output are checked.
	step_begin demo-newcomer "demo as a newcomer runs it (tests/runner/demo-newcomer.sh)"
	rc=0
	"$VFSRS_ROOT/tests/runner/demo-newcomer.sh" "$RESULTS/demo-newcomer" >"$RESULTS/demo-newcomer.tap" || rc=$?
	step_end demo-newcomer
	"$TAPREPORT" tap --label "demo (newcomer)" --tap "$RESULTS/demo-newcomer.tap" \
		--results "$RESULTS/demo-newcomer.tsv" || true
	FILES+=("$RESULTS/demo-newcomer.tsv")
fi

if kill -0 "$HOST_STEPS" 2>/dev/null; then log "waiting for lint, cargo tests, runner self-tests and the bench smoke run"; fi
wait "$HOST_STEPS" || true
grep -E '^\[|^(lint|cargo:|runner self-tests|bench smoke)' "$RESULTS/host-steps.log" || true
# A step or boot that died before its results: one failure, not silence.
for f in "${FILES[@]}"; do
	[ ! -f "$f" ] || continue
	mkdir -p "$(dirname "$f")"
	what=${f#"$RESULTS"/}
	printf '# label: %s\nfail\tproject\teach\t(no results)\t%s:(no results)\tno results; see %s\n' \
		"$what" "$what" "$RESULTS" >"$f"
done

echo
unmatrixed | sed 's/^/Not in the matrix: /'
[ "$MODE" = full ] || echo "Not run (--quick): every boot but the gate, and the newcomer's demo"
echo "scripts/test.sh took $(fmt_secs $((SECONDS - T0)))"
"$TAPREPORT" total --logs "$RESULTS" "${FILES[@]}" || exit 1
