#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Set up everything and run every test: lint, the host crates' tests, the
# runner's self-tests, a smoke run of the benchmark command, the guest
# matrix (driver x host x transport x plan) and the demo as a newcomer runs
# it. Ends with "N passed, N failed" (followed, when results of earlier runs
# were reused, by "(M of them reused from earlier runs with identical
# inputs)").
#
# usage: scripts/test.sh [--quick | --list] [--fresh]
#   --quick  only the gate: C driver, virtiofsd, virtio-pci, plan basic
#   --list   print the guest boots the matrix makes, run nothing
#   --fresh  run every test again, reuse no earlier result (also VFSRS_FRESH=1;
#            .ci/run uses it)
#   VFSRS_JOBS=N  guests at a time (default 1; a TCG guest keeps about one
#                 core busy, so on a machine of your own N=cores is faster)
#
# Plans that need the same driver, host, transport and device configuration
# (virtiofsd's options included: tests/guest/README.md) share one guest boot; each plan keeps its own
# verdict. Builds whose inputs did not change are not done again, and
# neither are lint checks, guest boots and the newcomer's demo whose inputs
# did not change since they passed: their stored results are reused, and the
# output says which and why ("reused: ..."; see "Reuse of guest results"
# below for what a boot's inputs are). The closing summary counts this
# project's tests, and the Rust doctests the kernel runs at every boot once
# per kernel build, marks what was reused and says how many passed results
# were.
. "$(dirname "$0")/lib.sh"

MODE=full
FRESH=${VFSRS_FRESH:-0}
usage() { die "usage: $0 [--quick | --list] [--fresh]"; }
for arg in "$@"; do
	case "$arg" in
	--quick|--list) [ "$MODE" = full ] || usage; MODE=${arg#--} ;;
	--fresh) FRESH=1 ;;
	*) usage ;;
	esac
done
case "$FRESH" in
0|1) ;;
*) die "VFSRS_FRESH must be 0 or 1" ;;
esac
# lint.sh reads it too.
export VFSRS_FRESH=$FRESH

# The guest matrix: every plan runs against the C driver (the oracle) and
# virtiofs-rs; what fails where is listed in tests/expect/<driver>.xfail.
# Columns: label suffix, host, transport, plan. One row per line; rows
# whose plans need the same guest are grouped into one boot by themselves.
# QEMU 11.1.3 exposes the cache window on virtio-pci only, so the DAX plans
# run there. The tools plans (fio and stress-ng, about 2.5 minutes each
# with the C driver) run once per host: virtiofsd (and virtiofsd --writeback),
# and the DAX host with dax=always (tools-dax-never.plan says why dax=never
# is not here).
MATRIX=(
	"virtiofsd/pci virtiofsd pci basic"
	"virtiofsd/mmio virtiofsd mmio basic"
	"dax/pci/dax-always dax pci dax-always"
	"dax/pci/dax-never dax pci dax-never"
	"dax/pci/dax-inode dax pci dax-inode"
	"dax/pci/dax-cycles dax pci dax-cycles"
	"dax/pci/dax-inject dax pci dax-inject"
	"dax/pci/dax-inject-remove dax pci dax-inject-remove"
	"dax/pci/inject-ops dax pci inject-ops"
	"dax/pci/locks dax pci locks"
	"dax/pci/locks-dax dax pci locks-dax"
	"dax/pci/locks-nointr dax pci locks-nointr"
	"dax/pci/locks-inject dax pci locks-inject"
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
	"virtiofsd/pci/submounts virtiofsd pci submounts"
	"virtiofsd/pci/tools virtiofsd pci tools"
	"virtiofsd/pci/tools-writeback virtiofsd pci tools-writeback"
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
mkdir -p "$VFSRS_RUNS"
RESULTS=$(mktemp -d "$VFSRS_RUNS/test-$(date +%Y%m%d-%H%M%S)-XXXX")
FILES=()
TAPREPORT=$VFSRS_ROOT/scripts/tap-report.py

# What the guests need, built (or found up to date) first. Every boot of
# this run uses this one kernel build.
B=$("$VFSRS_ROOT/scripts/kernel.sh" test)
IMG=$("$VFSRS_ROOT/scripts/initramfs.sh" "$B")
TESTS=$("$VFSRS_ROOT/scripts/initramfs.sh" --tests-dir "$B")
DAXD=
# (No "| grep -q" here: under pipefail, printf killed by SIGPIPE when grep
# has seen enough would make the test fail now and then.)
if [[ " ${BOOT_ARGS[*]} " == *" --host dax "* ]]; then
	DAXD=$("$VFSRS_ROOT/scripts/build-dax-host.sh")
fi

# Static checks (rustfmt, clippy, checkpatch), one result each; a check
# whose inputs did not change since it passed is not run again (unless
# --fresh).
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
# sources, cargo stamps, initramfs contents, the matrix's boots, the reuse
# of guest results.
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

# boot_files KEY: the files a boot leaves that reuse needs (its results
# and its report), relative to $RESULTS, one per line.
boot_files() {
	local key=$1 base=${BOOT_OUT[$1]#"$RESULTS"/} p
	echo "$base.tap"
	echo "$base/boot/results.tsv"
	for p in ${BOOT_PLANS[$key]}; do echo "$base/$p/results.tsv"; done
}

# Reuse of guest results. A guest boot (or the newcomer's demo) whose
# inputs are all what they were when it last passed is not run again: its
# results, kept in $VFSRS_CACHE/results/<key>/, are copied into this run,
# marked reused ("# reused:", counted as such by the closing summary), and
# a "reused:" line says so. The key, a sha256, covers
#   - the boot's run-guest.sh arguments (driver, host, transport, extra
#     options such as --cycles), plans, plan labels, label, output name, and
#     the runner's variables (VFSRS_IDLE_TIMEOUT, VFSRS_PLANS_DIR,
#     VFSRS_FAKE_GUEST);
#   - the kernel build the guest boots: its inputs (.vfsrs-built), bzImage
#     and every file of modroot/lib/modules (what the initramfs carries);
#   - the initramfs image and the host helper the plans run (vfs_pattern);
#   - the host daemon's binary (virtiofsd, or the DAX host), QEMU's binary
#     and the package list of QEMU's chroot (its libraries and firmware);
#   - this machine's package list and kernel (the daemons' libraries, the
#     file system the plans share);
#   - the content of every file git knows (tracked, or untracked and not
#     ignored) under scripts/, tests/ and configs/: any change to the
#     runner, a plan, a test or an expectation runs every boot again.
# An input that is missing or unknown (not a git checkout) means no reuse.
# Results are kept only from a boot (or demo) that passed, as the summary
# counts it (no "fail" result in any of its results files; XPASS is no
# failure), left every file, and whose inputs did not change while it ran.
# --fresh reuses nothing; what passes is still kept for the next run.
STORE=$VFSRS_CACHE/results
mkdir -p "$STORE"
# Kept results go 7 days after the run that passed (never refreshed by
# reuse): a warm run vouches for a pass of this week, not of any time.
find "$STORE" -mindepth 1 -maxdepth 1 -name '[0-9a-f]*' -mtime +7 -exec rm -rf {} + 2>/dev/null || true

# key_file NAME FILE: "NAME SHA256" of FILE; fails if FILE is missing.
key_file() {
	local h
	[ -f "$2" ] || { echo "$1 missing ($2)" >&2; return 1; }
	h=$(sha256sum <"$2") || return 1
	echo "$1 ${h%% *}"
}

# common_inputs: the inputs every boot shares, "NAME SHA256" per line.
common_inputs() {
	key_file kernel-build "$B/.vfsrs-built" || return 1
	key_file bzImage "$B/arch/x86/boot/bzImage" || return 1
	[ -d "$B/modroot/lib/modules" ] || { echo "modules missing ($B/modroot)" >&2; return 1; }
	(cd "$B/modroot" && find lib/modules -type f -print0 | LC_ALL=C sort -z |
		xargs -0 -r sha256sum --) | awk '{ print $2, $1 }' || return 1
	key_file initramfs "$IMG" || return 1
	key_file vfs_pattern "$TESTS/host/vfs_pattern" || return 1
	key_file qemu "$QEMU_CHROOT/usr/bin/qemu-system-x86_64" || return 1
	key_file qemu-chroot-packages "$QEMU_CHROOT/var/lib/dpkg/status" || return 1
	key_file host-packages /var/lib/dpkg/status || return 1
	echo "host-kernel $(uname -r -v | sha256sum | cut -d' ' -f1)"
	# The file system the shared directories live on decides what xattrs,
	# ACLs and holes the plans see.
	echo "shared-fs $(findmnt -no FSTYPE,OPTIONS -T "$VFSRS_RUNS" | sha256sum | cut -d' ' -f1)"
	echo "uid $(id -u)"
	git -C "$VFSRS_ROOT" rev-parse --git-dir >/dev/null 2>&1 ||
		{ echo "$VFSRS_ROOT is not a git checkout" >&2; return 1; }
	# A file git lists but the work tree lacks (deleted) has no line; any
	# other error means no key (never a key that misses a file).
	(
		set -o pipefail
		cd "$VFSRS_ROOT" || exit 1
		git ls-files -z -c -o --exclude-standard -- scripts tests configs | LC_ALL=C sort -zu |
			while IFS= read -r -d '' f; do
				[ -e "$f" ] || [ -L "$f" ] || continue
				h=$(sha256sum <"$f") || exit 1
				echo "$f ${h%% *}"
			done
	) || { echo "cannot hash the project's files" >&2; return 1; }
}

# common_key: the sha256 of common_inputs (fails when an input is missing).
common_key() {
	local lines
	lines=$(common_inputs) || return 1
	printf '%s\n' "$lines" | sha256sum | cut -d' ' -f1
}

# host_inputs ARGS: the host daemon's binary for run-guest.sh options ARGS.
host_inputs() {
	case " $1 " in
	*" --host dax "*) key_file dax-host "$DAXD" ;;
	*) key_file virtiofsd "$VIRTIOFSD" ;;
	esac
}

# outside_inputs: the content of plans (VFSRS_PLANS_DIR) and a fake guest
# (VFSRS_FAKE_GUEST) from outside the checkout, "NAME SHA256" per file.
outside_inputs() {
	local f
	if [ -n "${VFSRS_PLANS_DIR:-}" ]; then
		[ -d "$VFSRS_PLANS_DIR" ] || return 1
		(cd "$VFSRS_PLANS_DIR" && find . -type f -print0 | LC_ALL=C sort -z |
			xargs -0 -r sha256sum --) | awk '{ print "plans:" $2, $1 }' || return 1
	fi
	if [ -n "${VFSRS_FAKE_GUEST:-}" ]; then
		for f in $VFSRS_FAKE_GUEST; do
			[ -f "$f" ] || continue
			key_file "fake-guest:$f" "$f" || return 1
		done
	fi
	return 0
}

# boot_key KEY COMMON: the inputs key of boot KEY, given the common key.
boot_key() {
	local key=$1 lines
	[ -n "$2" ] || return 1
	lines=$(
		echo "common $2"
		echo "args ${BOOT_ARGS[$key]}"
		echo "plans ${BOOT_PLANS[$key]}"
		echo "plan-labels ${BOOT_LABELS[$key]}"
		echo "label ${BOOT_LABEL[$key]}"
		echo "out ${BOOT_OUT[$key]#"$RESULTS"/}"
		echo "env ${VFSRS_IDLE_TIMEOUT:-}|${VFSRS_PLANS_DIR:-}|${VFSRS_FAKE_GUEST:-}"
		outside_inputs || exit 1
		host_inputs "${BOOT_ARGS[$key]}"
	) || return 1
	printf '%s\n' "$lines" | sha256sum | cut -d' ' -f1
}

# demo_key COMMON: the inputs key of the newcomer's demo (scripts/demo.sh
# boots virtiofs-rs with the DAX host; its scripts are project files).
demo_key() {
	local lines
	[ -n "$1" ] || return 1
	lines=$(
		echo "common $1"
		echo "demo tests/runner/demo-newcomer.sh"
		echo "env ${VFSRS_IDLE_TIMEOUT:-}|${VFSRS_PLANS_DIR:-}|${VFSRS_FAKE_GUEST:-}"
		outside_inputs || exit 1
		key_file dax-host "$DAXD"
	) || return 1
	printf '%s\n' "$lines" | sha256sum | cut -d' ' -f1
}

# passed_results FILE: FILE holds results and none failed, as tap-report.py
# counts them (any status but pass, xpass, xfail or skip is a failure).
passed_results() {
	awk -F'\t' '/^#/ || $0 == "" { next } { n++ } $1 !~ /^(pass|xpass|xfail|skip)$/ { bad = 1 }
		END { exit bad || !n }' "$1"
}

# reuse K WHAT FILE...: copy WHAT's results kept under inputs key K (FILEs,
# relative to $RESULTS) into this run, marked reused, and say so; fails
# when there are none (or --fresh).
reuse() {
	local k=$1 what=$2 d=$STORE/$1 f when
	shift 2
	[ "$FRESH" = 0 ] && [ -n "$k" ] && [ -f "$d/meta" ] && [ -f "$d/sums" ] || return 1
	for f in "$@"; do [ -f "$d/files/$f" ] || return 1; done
	# A damaged entry (a file truncated or changed since) runs again.
	(cd "$d/files" && sha256sum --quiet --status -c ../sums) || return 1
	when=$(sed -n 's/^date //p' "$d/meta")
	for f in "$@"; do
		mkdir -p "$(dirname "$RESULTS/$f")"
		case "$f" in
		*.tsv) { echo "# reused: passed at $when (inputs key ${k:0:12})"; cat "$d/files/$f"; } >"$RESULTS/$f" ;;
		*) cp "$d/files/$f" "$RESULTS/$f" ;;
		esac || return 1
	done
	echo "reused: $what: inputs unchanged since it passed at $when in $(sed -n 's/^run //p' "$d/meta") (key ${k:0:12})"
}

# keep K WHAT SECONDS FILE...: keep WHAT's results (FILEs, relative to
# $RESULTS) for later runs with inputs key K, if they are all there and
# none failed.
keep() {
	local k=$1 what=$2 secs=$3 f tmp
	shift 3
	[ -n "$k" ] || return 0
	for f in "$@"; do
		[ -s "$RESULTS/$f" ] || return 0
		case "$f" in *.tsv) passed_results "$RESULTS/$f" || return 0 ;; esac
	done
	[ ! -e "$STORE/$k" ] || return 0
	tmp=$(mktemp -d "$STORE/.new.XXXXXX") || return 0
	for f in "$@"; do
		mkdir -p "$tmp/files/$(dirname "$f")" && cp "$RESULTS/$f" "$tmp/files/$f" &&
			(cd "$tmp/files" && sha256sum -- "$f") >>"$tmp/sums" ||
			{ rm -rf "$tmp"; return 0; }
	done
	printf 'date %s\nrun %s\nseconds %s\nwhat %s\n' "$(date '+%Y-%m-%d %H:%M')" "$RESULTS" \
		"$secs" "$what" >"$tmp/meta" || { rm -rf "$tmp"; return 0; }
	mv -T "$tmp" "$STORE/$k" 2>/dev/null || rm -rf "$tmp"
}

# The inputs every boot shares, compared with the last run's: which
# changed says why boots run again.
COMMON=
if INPUTS=$(common_inputs 2>"$RESULTS/inputs.err"); then
	COMMON=$(printf '%s\n' "$INPUTS" | sha256sum | cut -d' ' -f1)
	if [ -f "$STORE/inputs-last" ] && [ "$FRESH" = 0 ]; then
		changed=$(printf '%s\n' "$INPUTS" | awk 'NR == FNR { old[$1] = $2; next }
			{ if (old[$1] != $2) print $1; delete old[$1] } END { for (n in old) print n }' \
			"$STORE/inputs-last" - | LC_ALL=C sort)
		if [ -n "$changed" ]; then
			log "guest inputs changed since the last run: $(echo "$changed" |
				head -n 8 | paste -sd' ')$([ "$(echo "$changed" | wc -l)" -le 8 ] || echo " ...")"
		fi
	fi
	printf '%s\n' "$INPUTS" >"$STORE/inputs-last.$$" && mv -f "$STORE/inputs-last.$$" "$STORE/inputs-last"
else
	log "no guest results reused or kept: $(tail -n 1 "$RESULTS/inputs.err")"
fi
[ "$FRESH" = 0 ] || log "--fresh: every boot runs; no earlier results are reused"

# guest_boot KEY: one guest for the plans of KEY.
guest_boot() {
	local key=$1 args=() p l
	read -r -a args <<<"${BOOT_ARGS[$key]}"
	for p in ${BOOT_PLANS[$key]}; do args+=(--plan "$p"); done
	for l in ${BOOT_LABELS[$key]}; do args+=(--plan-label "$l"); done
	"$VFSRS_ROOT/scripts/run-guest.sh" --label "${BOOT_LABEL[$key]}" --out "${BOOT_OUT[$key]}" \
		--build-dir "$B" "${args[@]}"
}

# run_boot KEY K: boot a guest for KEY (its report on stdout with one job
# at a time, into KEY's .tap either way) and keep its results under
# inputs key K if it passed and its inputs did not change meanwhile.
run_boot() {
	local key=$1 k=$2 t0=$SECONDS rc=0 files=()
	if [ "$JOBS" = 1 ]; then
		guest_boot "$key" | tee "${BOOT_OUT[$key]}.tap" || rc=1
	else
		guest_boot "$key" >"${BOOT_OUT[$key]}.tap" 2>"${BOOT_OUT[$key]}.log" || rc=1
	fi
	[ "$rc" = 0 ] && [ -n "$k" ] || return 0
	if [ "$(boot_key "$key" "$(common_key 2>/dev/null)")" != "$k" ]; then
		log "${BOOT_LABEL[$key]}: its inputs changed while it ran; its results are not kept"
		return 0
	fi
	mapfile -t files < <(boot_files "$key")
	keep "$k" "${BOOT_LABEL[$key]}" $((SECONDS - t0)) "${files[@]}"
}

# VFSRS_JOBS: guests at a time (default 1). A TCG guest keeps about one
# core busy, so on a machine of your own more jobs finish sooner.
JOBS=${VFSRS_JOBS:-1}
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "VFSRS_JOBS must be a positive number"
# First the boots whose results can be reused, then the others.
declare -A BOOT_KEY=() REUSED=()
for key in "${BOOTS[@]}"; do
	if ! BOOT_KEY[$key]=$(boot_key "$key" "$COMMON" 2>"$RESULTS/inputs.err"); then
		BOOT_KEY[$key]=
		[ -z "$COMMON" ] ||
			log "${BOOT_LABEL[$key]}: results neither reused nor kept: $(tail -n 1 "$RESULTS/inputs.err")"
	fi
	mapfile -t files < <(boot_files "$key")
	if reuse "${BOOT_KEY[$key]}" "${BOOT_LABEL[$key]}" "${files[@]}"; then REUSED[$key]=1; fi
done
if [ ${#REUSED[@]} -gt 0 ]; then
	log "guest boots: ${#REUSED[@]} of ${#BOOTS[@]} reused (inputs unchanged since they passed; --fresh runs them again), $((${#BOOTS[@]} - ${#REUSED[@]})) to run"
fi
# With more jobs, the boots run in the background: BOOT_PIDS.
BOOT_PIDS=()
# boots_running: how many of them have not been waited for. ("wait -n"
# may return for the host steps, and a plain "wait" would wait for them
# too and make bash forget their status.)
boots_running() {
	local p n=0
	for p in "${BOOT_PIDS[@]}"; do ! kill -0 "$p" 2>/dev/null || n=$((n + 1)); done
	echo "$n"
}
for key in "${BOOTS[@]}"; do
	[ -z "${REUSED[$key]:-}" ] || continue
	if [ "$JOBS" = 1 ]; then
		run_boot "$key" "${BOOT_KEY[$key]}" || true
		continue
	fi
	while [ "$(boots_running)" -ge "$JOBS" ]; do wait -n || true; done
	run_boot "$key" "${BOOT_KEY[$key]}" &
	BOOT_PIDS+=("$!")
done
if [ "$JOBS" != 1 ]; then
	for p in "${BOOT_PIDS[@]}"; do wait "$p" || true; done
	for key in "${BOOTS[@]}"; do
		[ -n "${REUSED[$key]:-}" ] || tail -n 1 "${BOOT_OUT[$key]}.tap" 2>/dev/null || true
	done
fi

if [ "$MODE" = full ]; then
	# The main job as a newcomer runs it: scripts/demo.sh with no runs
	# directory yet; its exit status and output are checked. It boots a
	# guest, so its results are reused as a boot's are.
	FILES+=("$RESULTS/demo-newcomer.tsv")
	if ! k=$(demo_key "$COMMON" 2>"$RESULTS/inputs.err"); then
		k=
		[ -z "$COMMON" ] || log "demo (newcomer): results neither reused nor kept: $(tail -n 1 "$RESULTS/inputs.err")"
	fi
	if ! reuse "$k" "demo (newcomer)" demo-newcomer.tsv demo-newcomer.tap; then
		step_begin demo-newcomer "demo as a newcomer runs it (tests/runner/demo-newcomer.sh)"
		t0=$SECONDS rc=0
		"$VFSRS_ROOT/tests/runner/demo-newcomer.sh" "$RESULTS/demo-newcomer" >"$RESULTS/demo-newcomer.tap" || rc=$?
		step_end demo-newcomer
		if "$TAPREPORT" tap --label "demo (newcomer)" --tap "$RESULTS/demo-newcomer.tap" \
			--results "$RESULTS/demo-newcomer.tsv" && [ "$rc" = 0 ] && [ -n "$k" ]; then
			if [ "$(demo_key "$(common_key 2>/dev/null)" 2>/dev/null)" = "$k" ]; then
				keep "$k" "demo (newcomer)" $((SECONDS - t0)) demo-newcomer.tsv demo-newcomer.tap
			else
				log "demo (newcomer): its inputs changed while it ran; its results are not kept"
			fi
		fi
	fi
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
