#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The benchmark (issue #10): fio in QEMU guests, the in-tree C driver
# against virtiofs-rs, on one kernel build and one QEMU, printed as a table
# and drawn as a chart. A measurement, not a test: nothing here asserts a
# speed. It fails (non-zero exit, naming the cells) when fio reports an
# error or a job that did no I/O, or a guest dies or splats.
#
# usage: scripts/bench.sh [--quick | --smoke] [--list] [--runs N] [--out DIR]
#   (default)  the full run (40 to 42 minutes on 2 cores, see "Time")
#   --quick    a few cells, 3 s each, one run (about 2 minutes)
#   --list     print the cells each boot would run (plan.tsv), run nothing
#   --smoke    no guest: the plans, the specs and the report generator on
#              canned guest output (tests/runner/bench/), in seconds; TAP
#              (scripts/test.sh runs it)
#   --runs N   runs of each cell (default 3; the median is reported)
#   --out DIR  output directory (default $VFSRS_CACHE/bench/<date-time>)
#
# Configurations, each with both drivers (plans tests/guest/plans/bench-*):
#   never  virtiofsd --cache=never, mount -o dax=never (the seed's cache=none)
#   dax    the DAX test host (tests/vhost-user-fs-dax), its default 64 MiB
#          window, mount -o dax=always
#   auto   virtiofsd --cache=auto, mount -o dax=never (the everyday mode)
# Cells (tests/guest/bin/bench-fio.sh runs them, fio-jobs/bench.fio holds
# the jobs), 4 KiB blocks:
#   the seed's matrix {seqread, randread, seqwrite, randwrite} x {psync,
#     libaio (O_DIRECT, iodepth 16), mmap} x {1 job, 4 jobs, one file each},
#     3 s each, on 8 MiB files (4 jobs: 32 MiB, half the window);
#   on never and dax: randread and randwrite psync over 8 files of half
#     the window each (four times the window; never is the no-DAX
#     baseline), with virtiofs-rs' window counters;
#   on never and dax: 4,000 files of 16 KiB read and written (fio opens,
#     reads or writes, closes one file after the other, 3 s), and create,
#     stat, unlink of 2,000 empty files (fio's filecreate, filestat and
#     filedelete engines; ops/s);
#   the guest's Cached and MemAvailable before and after every cell.
# Before each cell the guest syncs and drops its caches. Combinations that
# cannot work are run anyway and shown as "unsupported" when fio fails
# with the expected error (see mayfail below), never as 0.
#
# Order: per run, per configuration, the C and Rust boots follow each
# other (C first in odd runs, Rust first in even runs), so the two drivers
# of a cell are measured minutes apart; every boot has a fresh host daemon,
# guest and file set.
#
# Output ($OUT): header.txt, plan.tsv (every boot's cells), boots.tsv,
# boots/<run>-<config>-<driver>/ (run-guest.sh's logs: tap.log carries
# fio's JSON), json/<config>/<driver>/<run>/<cell>.json (fio's raw JSON),
# results.csv, results.md, results.svg (scripts/bench-report.py). The
# header goes to the top of stdout, the table to its last lines.
#
# Time, measured with --quick on this 2-core machine (the bench kernel,
# with other builds and guests sharing the cores): a boot costs about 8 s
# beyond its cells, a fio run 0.6-0.8 s beyond its runtime, a small file about
# 4 ms of fio's setup (it stats every file first) and a metadata operation
# 2-7 ms (7 on cache=never, where each is a round trip or two). The full
# run has 18 boots (3 configurations x 2 drivers x 3 runs), 456 timed
# cells, 24 small-file and 36 metadata cells: 40 to 42 minutes. That is
# why a cell runs 3 s (5 s: 57 minutes) and the metadata cells use 2,000
# files, not issue #10's 10,000 (17 minutes more). After every run,
# bench-report.py estimate measures these costs again and prints the full
# run's estimate from them (kept in $VFSRS_CACHE/timings/ and shown when
# the next full run starts).
. "$(dirname "$0")/lib.sh"

MODE=full RUNS= OUT= LIST=0
usage() { sed -n '/^# usage: /,/^#$/{s/^# usage: /usage: /p; s/^#   /  /p}' "$0"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) MODE=quick ;;
	--smoke) MODE=smoke ;;
	--list) LIST=1 ;;
	--runs) [ $# -ge 2 ] || { usage >&2; exit 2; }; RUNS=$2; shift ;;
	--out) [ $# -ge 2 ] || { usage >&2; exit 2; }; OUT=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
REPORT=$VFSRS_ROOT/scripts/bench-report.py

CONFIGS=(never dax auto)
declare -A CONF_HOST=([never]=virtiofsd [dax]=dax [auto]=virtiofsd)
# The window: the DAX host's default, which the test plans use too.
WINDOW=$(plan_value bench-dax cache-size 64M)
WINDOW_BYTES=$(to_bytes "$WINDOW")

# set_mode MODE: the cells, sizes and runs of a mode.
set_mode() {
	local rw e j
	case "$1" in
	full)
		M_CONFIGS=(never dax auto) M_RUNS=3 M_RUNTIME=3 M_SMALL=4000 M_META=2000
		# Writes first: the guest's MemAvailable still rises for some
		# seconds after boot, and the memory report is about the reads.
		M_DATA=()
		for rw in seqwrite randwrite seqread randread; do
			for e in psync libaio mmap; do
				for j in 1 4; do M_DATA+=("$rw-$e-$j"); done
			done
		done
		M_BIG=(bigrandwrite-psync-1 bigrandread-psync-1)
		M_SMALLC=(smallwrite-psync-1 smallread-psync-1)
		M_METAC=(create-filecreate-1 stat-filestat-1 delete-filedelete-1) ;;
	quick|smoke)
		M_CONFIGS=(never dax) M_RUNS=1 M_RUNTIME=3 M_SMALL=200 M_META=200
		M_DATA=(randwrite-psync-1 seqread-psync-1 seqread-mmap-1)
		M_BIG=(bigrandread-psync-1)
		M_SMALLC=(smallread-psync-1)
		M_METAC=(create-filecreate-1 stat-filestat-1 delete-filedelete-1) ;;
	esac
	# 8 MiB per job file: 4 jobs use half the window.
	M_SIZE=8m
	# Eight files, four times the window in all.
	M_BIGSPEC=8x$((WINDOW_BYTES / 2 >> 20))m
}

# cells CONFIG: the cells a configuration runs.
cells() {
	local c=("${M_DATA[@]}")
	[ "$1" = auto ] || c+=("${M_BIG[@]}" "${M_SMALLC[@]}" "${M_METAC[@]}")
	printf '%s\n' "${c[@]}"
}

# mayfail CONFIG DRIVER CELL: "ERRNO[,ERRNO] reason" when CELL may fail
# there because the combination is unsupported (fio's error must be one of
# those errnos; another error still fails the bench), else nothing.
mayfail() {
	case "$1/$2/$3" in
	never/*/*-mmap-*)
		# MAP_SHARED on a FOPEN_DIRECT_IO file needs FUSE_DIRECT_IO_ALLOW_MMAP.
		echo "19 mmap of a direct-I/O file (virtiofsd --cache=never opens every file FOPEN_DIRECT_IO)" ;;
	dax/c/small*)
		# tests/vhost-user-fs-dax/README.md: QEMU maps nothing past EOF.
		echo "6 C asks the DAX host for whole 2 MiB ranges, which it cannot map past a file's end (ENXIO)" ;;
	esac
}

# spec CONFIG DRIVER: what the guest (bench-fio.sh) and bench.prepare get.
spec() {
	local c m mf=()
	mapfile -t c < <(cells "$1")
	for m in "${c[@]}"; do
		[ -z "$(mayfail "$1" "$2" "$m")" ] || mf+=("$m")
	done
	printf 'runtime:%s,size:%s,big:%s,small:%s,meta:%s,cells:%s' "$M_RUNTIME" "$M_SIZE" \
		"$M_BIGSPEC" "$M_SMALL" "$M_META" "$(IFS=+; echo "${c[*]}")"
	[ ${#mf[@]} = 0 ] || printf ',mayfail:%s' "$(IFS=+; echo "${mf[*]}")"
	echo
}

# boot_timeout CONFIG: a generous limit for one boot's plan (a hung guest
# fails its boot and the bench goes on with the next).
boot_timeout() {
	local n t=300
	n=$(cells "$1" | grep -c -v -E '^(create|stat|delete|small)' || true)
	t=$((t + n * (M_RUNTIME * 3 + 30)))
	if cells "$1" | grep -q '^small'; then t=$((t + 2 * (M_RUNTIME + 30 + M_SMALL / 50))); fi
	if cells "$1" | grep -q '^create'; then t=$((t + 3 * (30 + M_META / 20))); fi
	echo "$t"
}

# write_plan FILE RUNS: one line per boot cell: run config driver cell mayfail.
write_plan() {
	local f=$1 runs=$2 r c d m
	printf '# run\tconfig\tdriver\tcell\tmayfail\n' >"$f"
	for ((r = 1; r <= runs; r++)); do
		for c in "${M_CONFIGS[@]}"; do
			for d in $(boot_order "$r"); do
				while read -r m; do
					printf 'r%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$d" "$m" "$(mayfail "$c" "$d" "$m")" >>"$f"
				done < <(cells "$c")
			done
		done
	done
}
boot_order() { if (($1 % 2)); then echo "c rust"; else echo "rust c"; fi; }

# The host side of a configuration, as the header states it.
conf_text() {
	local p=bench-$1
	case "${CONF_HOST[$1]}" in
	virtiofsd) echo "virtiofsd $VIRTIOFSD_VERSION $(plan_virtiofsd_opts "$p" | paste -sd' '); mount -o $(plan_value "$p" opts '')" ;;
	dax) echo "vhost-user-fs-dax (tests/vhost-user-fs-dax) --cache-size $(plan_value "$p" cache-size 64M); mount -o $(plan_value "$p" opts '')" ;;
	esac
}

# guest_shape: "-smp N -m SIZE" from the runner's QEMU command line.
guest_shape() {
	"$VFSRS_ROOT/scripts/run-guest.sh" --host dax --plan bench-dax --print-cmd |
		awk '$1 == "-smp" { s = $2 } $1 == "-m" { m = $2 } END { print s " " m }'
}

write_header() {
	local f=$1 kver=$2 qemu=$3 smp mem commit
	read -r smp mem <<<"$(guest_shape)"
	commit=$(git -C "$VFSRS_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [ -n "$(git -C "$VFSRS_ROOT" status --porcelain 2>/dev/null)" ]; then commit+=" (with uncommitted changes)"; fi
	{
		echo "Benchmark: scripts/bench.sh${MODE_ARG:+ $MODE_ARG} (mode $MODE; a measurement: compare ratios, TCG makes absolute numbers meaningless)"
		echo "Date: $(date '+%Y-%m-%d %H:%M:%S %z')"
		echo "Commit: $commit ($(git -C "$VFSRS_ROOT" rev-parse --abbrev-ref HEAD 2>/dev/null || echo '?'))"
		echo "Kernel: $kver, flavor bench (configs/base.config + bench.config: no KASAN, lockdep, kmemleak); the same build for both drivers"
		echo "QEMU: $qemu, TCG, q35, virtio-pci"
		echo "Guest: $smp vCPUs, $mem memory; host: $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
		echo "fio: $(/usr/bin/fio --version) (Debian), bs 4k, $M_RUNTIME s per data cell, $RUNS run(s) per cell (median; min and max in results.csv)"
		echo "Files: $M_SIZE per job file (1 or 4 jobs, one file each); working set ${M_BIGSPEC/x/ x } = $(( ${M_BIGSPEC%%x*} * $(to_bytes "${M_BIGSPEC#*x}") / WINDOW_BYTES )) x the window; $M_SMALL small files x 16 KiB; $M_META files for create/stat/unlink (issue #10: 10,000; fewer to fit the time, see scripts/bench.sh)"
		echo "Window: $WINDOW (the DAX host's default)"
		echo "libaio: O_DIRECT, iodepth 16; psync and mmap: buffered; caches dropped before each cell"
		for c in "${M_CONFIGS[@]}"; do echo "Config $c: $(conf_text "$c")"; done
		echo "Order: per run and configuration C then Rust (odd runs) or Rust then C (even runs); a fresh host daemon and guest per boot"
	} >"$f"
}

# ---- smoke: no guest ----
smoke() {
	local tmp n=0 failed=0 m c d s
	tmp=$(mktemp -d /tmp/vfsrs-bench-smoke.XXXXXX)
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" EXIT
	ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n $2"; else echo "not ok $n $2"; failed=1; fi; }
	echo "# suite: bench-smoke"
	echo "1..6"
	# 1: every configuration's plan is accepted by the runner with its host.
	s=0
	for c in "${CONFIGS[@]}"; do
		"$VFSRS_ROOT/scripts/run-guest.sh" --host "${CONF_HOST[$c]}" --flavor bench --plan "bench-$c" \
			--append "vfsrs.bench=x" --print-cmd >"$tmp/cmd-$c" 2>&1 || { s=1; sed 's/^/#   /' "$tmp/cmd-$c"; }
	done
	grep -q -- '--cache=never' "$tmp/cmd-never" && grep -q -- '--cache-size 64M' "$tmp/cmd-dax" &&
		grep -q -- '--cache=auto' "$tmp/cmd-auto" && grep -q 'vfsrs.bench=x' "$tmp/cmd-auto" || s=1
	ok "$s" "run-guest.sh takes the bench plans with their hosts"
	# 2: the specs fit the kernel command line, for every mode.
	s=0
	for m in full quick; do
		set_mode "$m"
		for c in "${M_CONFIGS[@]}"; do
			for d in c rust; do
				[ "$(spec "$c" "$d" | wc -c)" -lt 1500 ] || { s=1; echo "#   $m $c $d: spec too long"; }
			done
		done
	done
	ok "$s" "the guest specs fit the kernel command line"
	# 3: the guest script parses, and bench.prepare makes the files a spec names.
	s=0
	sh -n "$VFSRS_ROOT/tests/guest/bin/bench-fio.sh" || s=1
	mkdir -p "$tmp/shared"
	printf '#!/bin/sh\nhead -c "$1" /dev/zero\n' >"$tmp/pattern"
	chmod +x "$tmp/pattern"
	VFS_PATTERN=$tmp/pattern VFSRS_BENCH_SPEC="runtime:1,size:4k,big:2x4k,small:3,meta:1,cells:seqread-psync-1+bigrandread-psync-1+smallread-psync-1" \
		"$PLANS_DIR/bench.prepare" "$tmp/shared" >"$tmp/prepare.log" 2>&1 || s=1
	[ -f "$tmp/shared/bench/data.3" ] && [ -f "$tmp/shared/bench/big.1" ] &&
		[ "$(stat -c %s "$tmp/shared/bench/small/f.2")" = 16384 ] && [ -d "$tmp/shared/bench/meta" ] || s=1
	ok "$s" "bench-fio.sh parses; bench.prepare makes the spec's files"
	# 4: the report on canned guest output (a quick run's, trimmed).
	s=0
	cp -r "$VFSRS_ROOT/tests/runner/bench" "$tmp/out"
	"$REPORT" report --dir "$tmp/out" >"$tmp/report.out" 2>&1 || { s=1; tail -n 20 "$tmp/report.out" | sed 's/^/#   /'; }
	ok "$s" "bench-report.py reports the canned run"
	# 5: every output exists; the SVG is well-formed XML; the table ends stdout.
	s=0
	for f in results.csv results.md results.svg; do [ -s "$tmp/out/$f" ] || { s=1; echo "#   no $f"; }; done
	python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$tmp/out/results.svg" || s=1
	tail -n 1 "$tmp/report.out" | grep -q '^|' || s=1
	ok "$s" "results.csv, results.md, a well-formed results.svg, the table last on stdout"
	# 6: the full run's estimate comes out of the canned quick run's costs.
	s=0
	set_mode full
	write_plan "$tmp/plan-full.tsv" 3
	"$REPORT" estimate --dir "$tmp/out" --plan "$tmp/plan-full.tsv" --runtime 5 --small 4000 --meta 10000 \
		>"$tmp/estimate" 2>&1 || s=1
	grep -q -E '^estimate: [0-9]+ s' "$tmp/estimate" || { s=1; sed 's/^/#   /' "$tmp/estimate"; }
	ok "$s" "the full run's estimate from a quick run's costs"
	echo "# exit: bench-smoke $failed"
	return "$failed"
}

if [ "$MODE" = smoke ]; then
	smoke
	exit $?
fi

set_mode "$MODE"
RUNS=${RUNS:-$M_RUNS}
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs takes a positive number"
MODE_ARG=$([ "$MODE" = full ] || echo "--quick")
if [ "$LIST" = 1 ]; then
	write_plan /dev/stdout "$RUNS"
	exit 0
fi
OUT=${OUT:-$VFSRS_CACHE/bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
T0=$SECONDS

"$VFSRS_ROOT/scripts/setup.sh"
B=$("$VFSRS_ROOT/scripts/kernel.sh" bench)
"$VFSRS_ROOT/scripts/initramfs.sh" "$B" >/dev/null
"$VFSRS_ROOT/scripts/build-dax-host.sh" >/dev/null
[ -x "$VIRTIOFSD" ] || die "virtiofsd not found at $VIRTIOFSD (run scripts/setup.sh)"
KVER=$(cat "$B/include/config/kernel.release")
QEMU_VER=$(chroot "$QEMU_CHROOT" qemu-system-x86_64 --version | head -n 1)

write_header "$OUT/header.txt" "$KVER" "$QEMU_VER"
write_plan "$OUT/plan.tsv" "$RUNS"
printf '# run\tconfig\tdriver\tseconds\tstatus\tdir\n' >"$OUT/boots.tsv"
NBOOTS=$((RUNS * ${#M_CONFIGS[@]} * 2))
cat "$OUT/header.txt"
echo "Output: $OUT"
echo
step_begin "bench-$MODE" "bench: $NBOOTS boots ($(IFS=,; echo "${M_CONFIGS[*]}") x C, Rust x $RUNS run(s)); output in $OUT"
[ ! -f "$VFSRS_CACHE/timings/bench-estimate-full" ] || [ "$MODE" != full ] ||
	log "bench: estimated from the last run's costs: $(cat "$VFSRS_CACHE/timings/bench-estimate-full")"

i=0 failed_boots=0
for ((r = 1; r <= RUNS; r++)); do
	for c in "${M_CONFIGS[@]}"; do
		for d in $(boot_order "$r"); do
			i=$((i + 1))
			name=r$r-$c-$d
			dir=$OUT/boots/$name
			mkdir -p "$dir"
			s=$(spec "$c" "$d")
			t=$SECONDS rc=0
			step_begin "bench-boot-$c-$d" "bench: boot $i/$NBOOTS: run $r, $c, $d"
			VFSRS_BENCH_SPEC=$s "$VFSRS_ROOT/scripts/run-guest.sh" --driver "$d" --host "${CONF_HOST[$c]}" \
				--flavor bench --build-dir "$B" --plan "bench-$c" --append "vfsrs.bench=$s" \
				--timeout "$(boot_timeout "$c")" --out "$dir" --label "bench $name" \
				>"$dir.log" 2>&1 || rc=$?
			step_end "bench-boot-$c-$d" "bench: boot $i/$NBOOTS ($name): $(tail -n 1 "$dir.log")"
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "r$r" "$c" "$d" "$((SECONDS - t))" "$rc" "boots/$name" >>"$OUT/boots.tsv"
			[ "$rc" = 0 ] || { failed_boots=$((failed_boots + 1)); log "bench: boot $name failed (see $dir.log and $dir/)"; }
			# A failed plan keeps its shared directory: not the bulk data.
			rm -rf "$dir/bench-$c/shared/bench"
		done
	done
done
step_end "bench-$MODE" "bench: $NBOOTS boots done"

rc=0
"$REPORT" report --dir "$OUT" --seconds "$((SECONDS - T0))" >"$OUT/report.out" || rc=$?
# The full run's estimate, from this run's measured costs.
set_mode full
write_plan "$OUT/plan-full.tsv" 3
if "$REPORT" estimate --dir "$OUT" --plan "$OUT/plan-full.tsv" --runtime "$M_RUNTIME" \
	--small "$M_SMALL" --meta "$M_META" >"$OUT/estimate.txt" 2>&1; then
	mkdir -p "$VFSRS_CACHE/timings"
	sed -n 's/^estimate: //p' "$OUT/estimate.txt" >"$VFSRS_CACHE/timings/bench-estimate-full"
fi
rm -f "$OUT/plan-full.tsv"
[ "$failed_boots" = 0 ] || { log "bench: $failed_boots boot(s) failed: a guest died, splatted or timed out, or a cell failed"; rc=1; }
echo
sed 's/^/bench: /' "$OUT/estimate.txt"
echo "bench: took $(fmt_secs $((SECONDS - T0))); results in $OUT (results.md, results.csv, results.svg, json/)"
cat "$OUT/report.out"
exit "$rc"
