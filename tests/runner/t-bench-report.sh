#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scripts/bench-report.py on canned guest output (tests/runner/bench/, a
# quick run's): the table, CSV and chart come out with the right numbers
# (Rust/C and DAX/never ratios of the medians, the median of three runs),
# expected-unsupported combinations show as "unsupported", and the report
# fails, naming the cell, on what must not pass silently: a fio error, a
# job that did no I/O, an unsupported cell failing with another error, a
# cell the guest never ran.
. "$(dirname "$0")/lib.sh"
REPORT=$ROOT/scripts/bench-report.py
echo "1..11"

# fresh NAME: a copy of the canned run in $TMP/NAME.
fresh() { rm -rf "${TMP:?}/$1"; cp -r "$RUNNER_TESTS/bench" "$TMP/$1"; }
# report NAME: run the report; its stdout in $TMP/NAME.out, status in $TMP/NAME.rc.
report() { local rc=0; "$REPORT" report --dir "$TMP/$1" >"$TMP/$1.out" 2>&1 || rc=$?; echo "$rc" >"$TMP/$1.rc"; }
# edit NAME BOOT CELL PYEXPR: change fio's JSON of CELL in BOOT's tap.log
# (PYEXPR runs with j = the first job).
edit() {
	python3 - "$TMP/$1/boots/$2/tap.log" "$3" "$4" <<'PY'
import json, sys
path, cell, expr = sys.argv[1:]
lines = open(path).read().split("\n")
b = lines.index(f"#   BENCH json-begin {cell}")
e = lines.index(f"#   BENCH json-end {cell}")
d = json.loads("\n".join(l[4:] for l in lines[b + 1:e]))
j = d["jobs"][0]
exec(expr)
lines[b + 1:e] = ["#   " + l for l in json.dumps(d, indent=1).split("\n")]
open(path, "w").write("\n".join(lines))
PY
}
csv_field() { # NAME CONFIG DRIVER JOB ENGINE FIELD
	python3 - "$TMP/$1/results.csv" "$2" "$3" "$4" "$5" "$6" <<'PY'
import csv, sys
path, c, d, job, eng, field = sys.argv[1:]
for r in csv.DictReader(open(path)):
    if (r["config"], r["driver"], r["job"], r["engine"]) == (c, d, job, eng):
        print(r[field])
PY
}

fresh ok
report ok
check "the canned run reports, exit 0" same "$(cat "$TMP/ok.rc")" 0
check "the table is the last output, one row per cell" bash -c \
	"tail -n 1 '$TMP/ok.out' | grep -q '^| delete (ops/s) |' && [ \$(grep -c '^| [a-z]' '$TMP/ok.out') = 9 ]"
check "expected failures show as unsupported, never as 0" bash -c \
	"grep -q '^| seqread-mmap-1 | unsupported | unsupported |' '$TMP/ok.out' &&
	 grep -q -E '^\| smallread-psync-1 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| unsupported \| ' '$TMP/ok.out'"
check "an unsupported cell has no number in the CSV" same \
	"$(csv_field ok never c seqread mmap status)/$(csv_field ok never c seqread mmap median_mibs)" "unsupported/"
# close A B: within 0.5% (the CSV's medians are rounded).
close() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 0.005 * abs(b))" "$1" "$2" ||
	{ echo "got $1, want $2"; return 1; }; }
rc_ratio=$(python3 -c "print(f'{$(csv_field ok dax rust seqread psync median_mibs) / $(csv_field ok dax c seqread psync median_mibs):.3f}')")
check "Rust/C is the ratio of the medians" close "$(csv_field ok dax rust seqread psync rust_c_ratio)" "$rc_ratio"
dn_ratio=$(python3 -c "print(f'{$(csv_field ok dax c randwrite psync median_mibs) / $(csv_field ok never c randwrite psync median_mibs):.3f}')")
check "DAX/never is the ratio of the medians" close "$(csv_field ok dax c randwrite psync dax_nodax_ratio)" "$dn_ratio"
# 14 Rust bars with a C bar to compare with: 7 cells in each configuration
# (cache=never has no mmap, C on the DAX host no small files).
check "the chart is well-formed XML with a Rust/C ratio over each comparable Rust bar" bash -c \
	"python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' '$TMP/ok/results.svg' &&
	 [ \$(grep -c '×</text>' '$TMP/ok/results.svg') = 14 ]"

# Three runs: r2 and r3 copies of r1 with the Rust seqread at 2x and 0.5x.
fresh three
python3 - "$TMP/three" <<'PY'
import os, shutil, sys
d = sys.argv[1]
plan = [l for l in open(f"{d}/plan.tsv")]
boots = [l for l in open(f"{d}/boots.tsv")]
r1_plan = [l for l in plan if l.startswith("r1\t")]
r1_boots = [l for l in boots if l.startswith("r1\t")]
r1_dirs = [b for b in os.listdir(f"{d}/boots") if b.startswith("r1-")]
for r in ("r2", "r3"):
    plan += [l.replace("r1\t", f"{r}\t", 1) for l in r1_plan]
    boots += [l.replace("r1", r) for l in r1_boots]
    for b in r1_dirs:
        shutil.copytree(f"{d}/boots/{b}", f"{d}/boots/{r}{b[2:]}")
open(f"{d}/plan.tsv", "w").write("".join(plan))
open(f"{d}/boots.tsv", "w").write("".join(boots))
PY
edit three r2-dax-rust seqread-psync-1 'j["read"]["bw_bytes"] *= 2'
edit three r3-dax-rust seqread-psync-1 'j["read"]["bw_bytes"] //= 2'
report three
base=$(csv_field ok dax rust seqread psync median_mibs)
check "three runs: the median, the min and the max" bash -c \
	"$(declare -f close); [ '$(csv_field three dax rust seqread psync runs)' = 3 ] &&
	 close '$(csv_field three dax rust seqread psync median_mibs)' '$base' &&
	 close '$(csv_field three dax rust seqread psync min_mibs)' \$(python3 -c 'print($base / 2)') &&
	 close '$(csv_field three dax rust seqread psync max_mibs)' \$(python3 -c 'print($base * 2)')"

# failing NAME DESCRIPTION PATTERN: the report failed and names the cell.
failing() { [ "$(cat "$TMP/$1.rc")" = 1 ] && grep -q -E "$2" "$TMP/$1.out" || { cat "$TMP/$1.out"; return 1; }; }
fresh err
edit err r1-never-rust randwrite-psync-1 'j["error"] = 5'
report err
fresh zero
edit zero r1-dax-c seqread-psync-1 'j["read"].update(io_bytes=0, bw_bytes=0, iops=0, total_ios=0)'
report zero
check "a fio error or a job without I/O fails the report, naming the cell" bash -c \
	"$(declare -f failing); TMP='$TMP'; failing err '^bench: FAILED: never Rust randwrite-psync-1: r1: fio error EIO' &&
	 failing zero '^bench: FAILED: dax C seqread-psync-1: r1: fio did no I/O'"
fresh othererr
edit othererr r1-never-c seqread-mmap-1 'j["error"] = 22'
report othererr
fresh died
sed -i '/BENCH cell create-filecreate-1 begin/,$d' "$TMP/died/boots/r1-never-rust/tap.log"
report died
check "an unsupported cell with another errno, or a cell never run, fails" bash -c \
	"$(declare -f failing); TMP='$TMP'; failing othererr '^bench: FAILED: never C seqread-mmap-1: r1: fio error EINVAL' &&
	 failing died '^bench: FAILED: never Rust delete-filedelete-1: r1: not run'"
"$ROOT/scripts/bench.sh" --quick --list >"$TMP/plan-quick.tsv"
check "the estimate from a run's measured costs" bash -c \
	"'$REPORT' estimate --dir '$TMP/ok' --plan '$TMP/plan-quick.tsv' --runtime 3 --small 200 --meta 200 | grep -q -E '^estimate: [0-9]+ s'"
