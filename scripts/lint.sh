#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Static checks, one TAP line each: rustfmt, clippy on the kernel-side Rust
# (kernel crate + driver, with Debian's clippy-driver matching rustc),
# cargo clippy on the host crates, checkpatch.pl on the project's C.
#
# usage: scripts/lint.sh BUILD_DIR   (what scripts/kernel.sh printed)
. "$(dirname "$0")/lib.sh"

B=${1:?usage: $0 BUILD_DIR}
KSRC=$(dirname "$B")/src
CLIPPY_DRIVER=/usr/bin/clippy-driver
n=0
result() { # name ok? output
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n $1"
	else
		echo "not ok $n $1"
		printf '%s\n' "$3" | head -n 20 | sed 's/^/#   /'
	fi
}

# Each check reports its own failure; none stops the others.
set +e
cd "$VFSRS_ROOT"
KRUST=$(git ls-files 'rust/*.rs' 'fs/*.rs')
echo "# suite: lint"
echo "1..5"

out=$(rustfmt --edition 2021 --check $KRUST fs/virtiofs_rs/proto/lib.rs 2>&1); rc=$?
result rustfmt $rc "$out"

# Clippy only sees what it compiles: touch our Rust sources so kbuild
# recompiles them (and only them, plus what links them) under clippy-driver.
(cd "$KSRC" && touch rust/kernel/virtio.rs fs/virtiofs_rs/virtiofs.rs)
out=$(kmake -C "$KSRC" O="$B" CLIPPY=1 CLIPPY_DRIVER="$CLIPPY_DRIVER" -j"$(nproc)" \
	rust/ fs/virtiofs_rs/ 2>&1 | grep -v -e '^Symbol ' -e KSYM_NAME_LEN)
if printf '%s\n' "$out" | grep -q -E '^(warning|error)'; then rc=1; else rc=0; fi
result clippy_kernel_rust $rc "$(printf '%s\n' "$out" | grep -E -A4 '^(warning|error)')"

rc=0 out=
for c in fs/virtiofs_rs/proto tests/vhost-user-fs-dax; do
	o=$(cd "$c" && CARGO_TARGET_DIR="$VFSRS_CACHE/cargo-target/$(basename "$c")" \
		cargo clippy --locked --release --all-targets -q -- -D warnings 2>&1) || { rc=1; out+="$o"; }
done
result clippy_host_crates $rc "$out"

out=$(cargo fmt --check --manifest-path tests/vhost-user-fs-dax/Cargo.toml 2>&1); rc=$?
result rustfmt_host_crates $rc "$out"

out=$(for f in $(git ls-files '*.c' '*.h'); do
	"$KSRC/scripts/checkpatch.pl" --no-tree --terse -q -f "$f"
done 2>&1 | grep -E 'ERROR|WARNING' | grep -v 'Use of volatile')
[ -z "$out" ]; result checkpatch $? "$out"
echo "# exit: lint 0"
