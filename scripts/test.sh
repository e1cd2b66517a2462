#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Set up everything and run every test: host crate tests, then the guest
# matrix (driver x host x transport). Ends with "N passed, N failed".
#
# usage: scripts/test.sh [--quick]
#   --quick  only the gate: C driver, virtiofsd, virtio-pci
. "$(dirname "$0")/lib.sh"

QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
[ $# -le 1 ] || die "usage: $0 [--quick]"

"$VFSRS_ROOT/scripts/setup.sh"

TOTAL_PASS=0 TOTAL_FAIL=0 TOTAL_XFAIL=0 TOTAL_SKIP=0
RESULTS=$VFSRS_CACHE/runs/test-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS"
LINES=()

add() { # label passed failed xfail skipped
	TOTAL_PASS=$((TOTAL_PASS + $2)) TOTAL_FAIL=$((TOTAL_FAIL + $3))
	TOTAL_XFAIL=$((TOTAL_XFAIL + $4)) TOTAL_SKIP=$((TOTAL_SKIP + $5))
	LINES+=("$(printf '%-40s %4d passed %4d failed %4d xfail %4d skipped' "$1" "$2" "$3" "$4" "$5")")
}

# Host crates: cargo test, counted from libtest's summary lines.
cargo_tests() {
	local dir=$1 name out p f
	name=$(basename "$dir")
	[ -f "$dir/Cargo.toml" ] || return 0
	log "cargo test in ${dir#"$VFSRS_ROOT"/}"
	out=$(cd "$dir" && CARGO_TARGET_DIR="$VFSRS_CACHE/cargo-target/$name" \
		cargo test --locked --release 2>&1) || true
	printf '%s\n' "$out" >"$RESULTS/cargo-$name.log"
	p=$(printf '%s\n' "$out" | sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' |
		awk '{s+=$1} END {print s+0}')
	f=$(printf '%s\n' "$out" | sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' |
		awk '{s+=$1} END {print s+0}')
	if ! printf '%s\n' "$out" | grep -q '^test result:'; then
		printf '%s\n' "$out" | tail -n 20 >&2
		f=$((f + 1))   # it did not even build
	fi
	add "cargo:$name" "$p" "$f" 0 0
}

# Static checks (rustfmt, clippy, checkpatch), one result each.
B=$("$VFSRS_ROOT/scripts/kernel.sh" test)
"$VFSRS_ROOT/scripts/lint.sh" "$B" | tee "$RESULTS/lint.tap"
add lint "$(grep -c '^ok ' "$RESULTS/lint.tap")" "$(grep -c '^not ok ' "$RESULTS/lint.tap")" 0 0

cargo_tests "$VFSRS_ROOT/fs/virtiofs_rs/proto"
cargo_tests "$VFSRS_ROOT/tests/vhost-user-fs-dax"

# guest LABEL ARGS...: one guest run; its verdict joins the totals.
guest() {
	local label=$1 out; shift
	out=$RESULTS/$(echo "$label" | tr '/ ' '__')
	"$VFSRS_ROOT/scripts/run-guest.sh" --label "$label" --out "$out" "$@" | tee "$out.tap" || true
	if [ -f "$out/summary" ]; then
		# shellcheck disable=SC2046
		add "$label" $(cat "$out/summary")
	else
		add "$label" 0 1 0 0
	fi
}

# The guest matrix: every plan runs against the C driver (the oracle) and
# virtiofs-rs; what fails where is listed in tests/expect/<driver>.xfail.
# Columns: label suffix, host, transport, plan. QEMU 11.1.3 exposes the
# cache window on virtio-pci only, so the DAX plans run there.
MATRIX=(
	"virtiofsd/pci virtiofsd pci basic"
	"virtiofsd/mmio virtiofsd mmio basic"
	"dax/pci/dax-always dax pci dax-always"
	"dax/pci/dax-never dax pci dax-never"
	"dax/pci/dax-inject dax pci dax-inject"
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
)

# The gate: the C driver with the upstream host.
guest c/virtiofsd/pci --driver c --host virtiofsd --transport pci --plan basic
if [ "$QUICK" = 0 ]; then
	for driver in c rust; do
		for row in "${MATRIX[@]}"; do
			read -r label host transport plan <<<"$row"
			[ "$driver/$label" = c/virtiofsd/pci ] && continue # the gate ran it
			extra=()
			# Three load/unload cycles before the tests on the first run.
			[ "$driver/$label" = rust/virtiofsd/pci ] && extra=(--cycles 3)
			guest "$driver/$label" --driver "$driver" --host "$host" \
				--transport "$transport" --plan "$plan" "${extra[@]}"
		done
	done
fi

echo
echo "Results (logs in $RESULTS):"
printf '  %s\n' "${LINES[@]}"
echo "$TOTAL_XFAIL expected failures (tests/expect/*.xfail), $TOTAL_SKIP skipped"
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
[ "$TOTAL_FAIL" = 0 ]
