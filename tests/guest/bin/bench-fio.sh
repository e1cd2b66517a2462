#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scripts/bench.sh's guest side (a measurement, not a test): run fio once
# per cell on the mount, one cell after the other, and print what the host
# needs on stdout, which the plan's "run" line turns into "#   " comments
# of the TAP channel (so nothing here depends on the driver under test to
# carry the results back):
#
#   BENCH cell CELL begin UPTIME
#   BENCH meminfo CELL before|after Cached=KIB MemAvailable=KIB
#   BENCH dax CELL before|after NAME=VALUE...   (virtiofs-rs' window counters)
#   BENCH json-begin CELL
#   ... fio's JSON report ...
#   BENCH json-end CELL
#   BENCH cell CELL end UPTIME rc=FIO_STATUS [mayfail]
#   BENCH done failed=N
#
# Cells are JOB-ENGINE-JOBS: seqread, randread, seqwrite, randwrite (the
# seed's matrix; ENGINE psync, libaio (O_DIRECT, iodepth 16) or mmap; 1 or
# 4 jobs, one file each), bigrandread, bigrandwrite (psync, a file set
# larger than the DAX window), smallread, smallwrite (psync, 16 KiB files),
# create-filecreate, stat-filestat, delete-filedelete (metadata). Before
# each cell the guest syncs and drops its caches. A cell whose fio fails
# counts as failed unless the spec lists it as "mayfail" (a combination
# that may be unsupported: the host judges fio's error); the exit status
# is the number of failed cells.
#
# The spec comes from the kernel command line (run-guest.sh --append),
# the same string scripts/bench.sh gives bench.prepare on the host:
#   vfsrs.bench=runtime:S,size:SIZE,big:NxSIZE,small:N,meta:N,cells:A+B,mayfail:C+D
# Without it: the quick defaults below.
#
# usage: bench-fio.sh   (after a plan's "mount" line, which sets VFS_MNT)
MNT=${VFS_MNT:?no VFS_MNT: a "mount" line must come first}
D=$MNT/bench
JOBFILE=/tests/fio-jobs/bench.fio
OUT=/tmp/bench-fio.json

spec=runtime:3,size:8m,big:8x32m,small:200,meta:200,cells:seqread-psync-1+randwrite-psync-1
for arg in $(cat /proc/cmdline); do
	case "$arg" in vfsrs.bench=*) spec=${arg#vfsrs.bench=} ;; esac
done
runtime=3 size=8m big=8x32m small=200 meta=200 cells= mayfail=
IFS=,
for kv in $spec; do
	case "$kv" in
	runtime:*) runtime=${kv#*:} ;;
	size:*) size=${kv#*:} ;;
	big:*) big=${kv#*:} ;;
	small:*) small=${kv#*:} ;;
	meta:*) meta=${kv#*:} ;;
	cells:*) cells=${kv#*:} ;;
	mayfail:*) mayfail=${kv#*:} ;;
	*) echo "bench-fio.sh: unknown spec field '$kv'" >&2; exit 1 ;;
	esac
done
unset IFS
[ -n "$cells" ] || { echo "bench-fio.sh: no cells in the spec" >&2; exit 1; }
[ -d "$D" ] || { echo "bench-fio.sh: no $D (bench.prepare makes it on the host)" >&2; exit 1; }
echo "BENCH spec $spec"
echo "BENCH kernel $(uname -r)"
echo "BENCH mount $(grep " $MNT " /proc/mounts)"

export BENCH_DIR="$D" BENCH_RUNTIME="$runtime" BENCH_SIZE="$size"
export BENCH_BIG_FILES="${big%%x*}" BENCH_BIG_SIZE="${big#*x}"
export BENCH_SMALL="$small" BENCH_META="$meta"

uptime_s() { cut -d' ' -f1 /proc/uptime; }
meminfo() { # CELL WHEN
	echo "BENCH meminfo $1 $2 $(sed -n -e 's/^Cached: *\([0-9]*\) kB$/Cached=\1/p' \
		-e 's/^MemAvailable: *\([0-9]*\) kB$/MemAvailable=\1/p' /proc/meminfo | tr '\n' ' ')"
}
# The window counters of virtiofs-rs (the C driver has none).
counters() { # CELL WHEN
	local d f line=
	for d in /sys/fs/virtiofs/*/dax; do
		[ -d "$d" ] || continue
		for f in "$d"/*; do line="$line $(basename "$f")=$(cat "$f")"; done
		echo "BENCH dax $1 $2$line"
		return 0
	done
}

# Profiling (by hand: VFSRS_PERF=1 scripts/run-guest.sh --flavor bench
# --keep-shared --append "vfsrs.perf vfsrs.bench=..."): each cell runs
# under "perf record -a -g", its report lands in the shared directory as
# bench/perf.CELL, and the virtio interrupt counts go to the TAP channel:
#   BENCH irq CELL before|after NAME=COUNT...
perf=
if [ -x /usr/bin/perf ] && grep -qw vfsrs.perf /proc/cmdline; then
	perf=1
fi
irqs() { # CELL WHEN
	echo "BENCH irq $1 $2$(awk '/virtio/ { n = 0; for (i = 2; i < NF; i++) if ($i ~ /^[0-9]+$/) n += $i; printf " %s=%d", $NF, n }' /proc/interrupts)"
}

failed=0
for cell in $(echo "$cells" | tr '+' ' '); do
	job=${cell%%-*} rest=${cell#*-}
	engine=${rest%-*} jobs=${rest##*-}
	export BENCH_ENGINE="$engine" BENCH_JOBS="$jobs" BENCH_IODEPTH=1 BENCH_DIRECT=0
	[ "$engine" != libaio ] || export BENCH_IODEPTH=16 BENCH_DIRECT=1
	case "$job" in
	seqread) section=data BENCH_RW=read ;;
	randread) section=data BENCH_RW=randread ;;
	seqwrite) section=data BENCH_RW=write ;;
	randwrite) section=data BENCH_RW=randwrite ;;
	bigrandread) section=big BENCH_RW=randread ;;
	bigrandwrite) section=big BENCH_RW=randwrite ;;
	smallread) section=small BENCH_RW=read ;;
	smallwrite) section=small BENCH_RW=write ;;
	create|stat|delete) section=$job BENCH_RW=read ;;
	*) echo "bench-fio.sh: unknown cell $cell" >&2; failed=$((failed + 1)); continue ;;
	esac
	export BENCH_RW
	sync
	echo 3 >/proc/sys/vm/drop_caches
	echo "BENCH cell $cell begin $(uptime_s)"
	meminfo "$cell" before
	counters "$cell" before
	rm -f "$OUT"
	if [ -n "$perf" ]; then
		irqs "$cell" before
		/usr/bin/perf record -q -a -g -F 499 -o /tmp/perf.data -- \
			fio --section="$section" --output-format=json --output="$OUT" "$JOBFILE" 2>&1
		rc=$?
		irqs "$cell" after
		# Where each task spent the cell, then which CPU ran what.
		/usr/bin/perf report -i /tmp/perf.data --stdio --no-children --sort comm,sym \
			-g none --percent-limit 0.2 >"$D/perf.$cell" 2>&1
		/usr/bin/perf report -i /tmp/perf.data --stdio --no-children --sort cpu,comm \
			-g none >>"$D/perf.$cell" 2>&1
	else
		fio --section="$section" --output-format=json --output="$OUT" "$JOBFILE" 2>&1
		rc=$?
	fi
	meminfo "$cell" after
	counters "$cell" after
	echo "BENCH json-begin $cell"
	[ ! -f "$OUT" ] || cat "$OUT"
	echo "BENCH json-end $cell"
	note=
	case "+$mayfail+" in *"+$cell+"*) note=" mayfail" ;; esac
	echo "BENCH cell $cell end $(uptime_s) rc=$rc$note"
	[ "$rc" = 0 ] || [ -n "$note" ] || failed=$((failed + 1))
done
echo "BENCH done failed=$failed"
exit "$failed"
