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

# The gate: the C driver (the oracle) with the upstream host.
guest c/virtiofsd/pci --driver c --host virtiofsd --transport pci --plan basic
if [ "$QUICK" = 0 ]; then
	guest c/virtiofsd/mmio --driver c --host virtiofsd --transport mmio --plan basic
	# The project's DAX host, proven with the C driver. QEMU 11.1.3 exposes
	# the cache window on virtio-pci only, so DAX plans run there.
	guest c/dax/pci/dax-always --driver c --host dax --transport pci --plan dax-always
	guest c/dax/pci/dax-never --driver c --host dax --transport pci --plan dax-never
	guest c/dax/pci/dax-inject --driver c --host dax --transport pci --plan dax-inject
	guest c/dax/mmio/basic --driver c --host dax --transport mmio --plan basic
	# Malformed replies (fault injection): C accepts them (c.xfail says why).
	guest c/dax/pci/corrupt-len --driver c --host dax --transport pci --plan corrupt-len
	guest c/dax/pci/corrupt-unique --driver c --host dax --transport pci --plan corrupt-unique
	guest c/virtiofsd/pci/cycles --driver c --host virtiofsd --transport pci --plan cycles
	guest c/virtiofsd/pci/duptag --driver c --host virtiofsd --transport pci --plan duptag
	guest c/dax/pci/badwindow --driver c --host dax --transport pci --plan badwindow
	guest c/dax/pci/ring-full --driver c --host dax --transport pci --plan ring-full
	guest c/dax/pci/forget --driver c --host dax --transport pci --plan forget
	# virtiofs-rs: expected failures are listed in tests/expect/rust.xfail.
	guest rust/virtiofsd/pci --driver rust --host virtiofsd --transport pci --plan basic --cycles 3
	guest rust/virtiofsd/mmio --driver rust --host virtiofsd --transport mmio --plan basic
	guest rust/dax/pci/dax-always --driver rust --host dax --transport pci --plan dax-always
	guest rust/dax/pci/corrupt-len --driver rust --host dax --transport pci --plan corrupt-len
	guest rust/dax/pci/corrupt-unique --driver rust --host dax --transport pci --plan corrupt-unique
	guest rust/virtiofsd/pci/cycles --driver rust --host virtiofsd --transport pci --plan cycles
	guest rust/virtiofsd/pci/duptag --driver rust --host virtiofsd --transport pci --plan duptag
	guest rust/dax/pci/badwindow --driver rust --host dax --transport pci --plan badwindow
	guest rust/dax/pci/ring-full --driver rust --host dax --transport pci --plan ring-full
	guest rust/dax/pci/forget --driver rust --host dax --transport pci --plan forget
fi

echo
echo "Results (logs in $RESULTS):"
printf '  %s\n' "${LINES[@]}"
echo "$TOTAL_XFAIL expected failures (tests/expect/*.xfail), $TOTAL_SKIP skipped"
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
[ "$TOTAL_FAIL" = 0 ]
