#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Static checks, one TAP line each: rustfmt, clippy on the kernel-side Rust
# (kernel crate + driver, with Debian's clippy-driver matching rustc),
# cargo clippy and rustfmt on the host crates, checkpatch.pl on the
# project's C.
#
# usage: scripts/lint.sh BUILD_DIR   (what scripts/kernel.sh printed)
#
# A check that passed is not run again while its inputs (files, tool
# versions, the kernel build) keep the same hash: its line then says
# "# reused: passed at DATE". A failed check always runs again, and with
# VFSRS_FRESH=1 (scripts/test.sh --fresh) every check runs.
. "$(dirname "$0")/lib.sh"

[ $# = 1 ] || die "usage: $0 BUILD_DIR"
B=$1
KSRC=$(dirname "$B")/src
[ -f "$B/.vfsrs-built" ] || die "$B is not a finished kernel build (run scripts/kernel.sh)"
CLIPPY_DRIVER=/usr/bin/clippy-driver
HOST_CRATES=(fs/virtiofs_rs/proto tests/vhost-user-fs-dax)
STAMPS=$VFSRS_CACHE/lint
mkdir -p "$STAMPS"
n=0

cd "$VFSRS_ROOT"
KRUST=$(git ls-files 'rust/*.rs' 'fs/*.rs')
CFILES=$(git ls-files '*.c' '*.h')

# check NAME KEY FUNCTION: one TAP line for FUNCTION (which prints what is
# wrong and fails), or the reused verdict of an earlier pass with KEY.
check() {
	local name=$1 key stamp out rc=0
	key=$(printf '%s\n' "$2" "$(hash_files "$VFSRS_ROOT/scripts/lint.sh")" | sha256sum | cut -c1-16)
	stamp=$STAMPS/$name-$key
	n=$((n + 1))
	if [ -f "$stamp" ] && [ "${VFSRS_FRESH:-0}" != 1 ]; then
		log "$name: inputs unchanged since it passed at $(cat "$stamp"), not run again"
		echo "ok $n $name # reused: passed at $(cat "$stamp")"
		return
	fi
	step_begin "lint-$name" "lint: $name"
	out=$("$3" 2>&1) || rc=$?
	step_end "lint-$name" "lint: $name"
	if [ "$rc" = 0 ]; then
		echo "ok $n $name"
		date '+%Y-%m-%d %H:%M' >"$stamp"
	else
		echo "not ok $n $name"
		printf '%s\n' "$out" | head -n 20 | sed 's/^/#   /'
	fi
}

rustfmt_kernel() {
	# shellcheck disable=SC2086
	rustfmt --edition 2021 --check $KRUST fs/virtiofs_rs/proto/lib.rs
}

# Clippy compiles the kernel crate and the driver with clippy-driver in the
# build directory (holding its lock, so no kernel build runs meanwhile). kbuild would see the changed command lines at the next
# real build and rebuild them (and relink vmlinux), so what clippy rewrites
# is saved first and put back afterwards; the objects clippy must see are
# removed from the build so it compiles them for certain.
clippy_kernel() {
	with_lock "kernel-$(basename "$(dirname "$B")")" clippy_kernel_locked
}
clippy_restore() {
	local d
	for d in rust fs/virtiofs_rs; do
		rsync -a --delete "$B/.lint-save/$d/" "$B/$d/"
	done
	rm -rf "$B/.lint-save"
}
clippy_kernel_locked() {
	local save=$B/.lint-save d out rc=0
	# An interrupted earlier run left its copy: put it back first.
	[ ! -f "$save/.complete" ] || clippy_restore
	rm -rf "$save"
	mkdir -p "$save"
	for d in rust fs/virtiofs_rs; do
		mkdir -p "$save/$d"
		cp -a "$B/$d/." "$save/$d/"
	done
	touch "$save/.complete"
	trap clippy_restore EXIT
	trap "exit 130" INT TERM
	rm -f "$B/rust/kernel.o" "$B/fs/virtiofs_rs/virtiofs.o"
	out=$(kmake -C "$KSRC" O="$B" CLIPPY=1 CLIPPY_DRIVER="$CLIPPY_DRIVER" -j"$(nproc)" \
		rust/ fs/virtiofs_rs/ 2>&1) || rc=$?
	out=$(printf '%s\n' "$out" | grep -v -e '^Symbol ' -e KSYM_NAME_LEN || true)
	trap - EXIT INT TERM
	clippy_restore
	if printf '%s\n' "$out" | grep -q -E '^(warning|error)'; then
		printf '%s\n' "$out" | grep -E -A4 '^(warning|error)'
		return 1
	fi
	[ "$rc" = 0 ] || { printf '%s\n' "$out" | tail -n 20; return 1; }
}

# cargo clippy in a target directory of its own, cleaned of the crate's
# artifacts first, so the crate is always checked from its current sources.
clippy_host() {
	local c target rc=0
	for c in "${HOST_CRATES[@]}"; do
		target=$VFSRS_CACHE/cargo-target/$(basename "$c")-clippy
		if [ -d "$target" ]; then
			(cd "$c" && CARGO_TARGET_DIR=$target cargo clean -q --release -p "$(crate_package "$VFSRS_ROOT/$c")") ||
				rc=1
		fi
		(cd "$c" && CARGO_TARGET_DIR=$target cargo clippy --locked --release --all-targets -q -- -D warnings) ||
			rc=1
	done
	return "$rc"
}

rustfmt_host() {
	cargo fmt --check --manifest-path tests/vhost-user-fs-dax/Cargo.toml
}

checkpatch() {
	local f out
	# shellcheck disable=SC2086
	out=$(for f in $CFILES; do
		"$KSRC/scripts/checkpatch.pl" --no-tree --terse -q -f "$f"
	done 2>&1 | grep -E 'ERROR|WARNING' | grep -v 'Use of volatile' || true)
	[ -z "$out" ] || { printf '%s\n' "$out"; return 1; }
}

# shellcheck disable=SC2086
host_crates_hash() {
	local c
	for c in "${HOST_CRATES[@]}"; do crate_hash "$VFSRS_ROOT/$c"; done
}

echo "# suite: lint"
echo "1..5"
# shellcheck disable=SC2086
check rustfmt "$(hash_files $KRUST) $(rustfmt --version)" rustfmt_kernel
check clippy_kernel_rust "$(cat "$B/.vfsrs-built") $($CLIPPY_DRIVER --version)" clippy_kernel
check clippy_host_crates "$(host_crates_hash) $(cargo clippy --version)" clippy_host
check rustfmt_host_crates "$(crate_hash "$VFSRS_ROOT/tests/vhost-user-fs-dax") $(cargo fmt --version)" rustfmt_host
# shellcheck disable=SC2086
check checkpatch "$(hash_files $CFILES) $(sha256sum <"$KSRC/scripts/checkpatch.pl")" checkpatch
echo "# exit: lint 0"
