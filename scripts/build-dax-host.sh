#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the project's DAX test host (tests/vhost-user-fs-dax) and print the
# path of its binary: $VFSRS_CACHE/bin/vhost-user-fs-dax-<sources hash>, a
# copy that never changes once made. When a binary for these exact sources
# exists, cargo does not even run. Cargo's target directory lives in the
# cache and is stamped with the sources it was built from (scripts/lib.sh).
#
# usage: scripts/build-dax-host.sh
. "$(dirname "$0")/lib.sh"
[ $# = 0 ] || die "usage: $0"

CRATE=$VFSRS_ROOT/tests/vhost-user-fs-dax
TARGET=$VFSRS_CACHE/cargo-target/vhost-user-fs-dax
[ -f "$CRATE/Cargo.toml" ] || die "missing $CRATE/Cargo.toml"
command -v cargo >/dev/null || die "cargo not found"
H=$(crate_hash "$CRATE")
BIN=$VFSRS_CACHE/bin/vhost-user-fs-dax-$H

build() {
	[ -x "$BIN" ] && return 0
	cargo_prepare "$CRATE" "$TARGET"
	step_begin dax-host "building the DAX host (cargo build --release)"
	(cd "$CRATE" && CARGO_TARGET_DIR=$TARGET cargo build --release --locked -q) >&2 ||
		die "building the DAX host failed"
	cargo_stamp "$CRATE" "$TARGET" "$H"
	[ -x "$TARGET/release/vhost-user-fs-dax" ] || die "no binary at $TARGET/release/vhost-user-fs-dax"
	mkdir -p "$(dirname "$BIN")"
	cp "$TARGET/release/vhost-user-fs-dax" "$BIN.tmp"
	mv "$BIN.tmp" "$BIN"
	# Keep the newest few binaries, and any used in the last hour.
	ls -t "$VFSRS_CACHE"/bin/vhost-user-fs-dax-* | tail -n +6 |
		while read -r f; do find "$f" -mmin +60 -delete; done
	step_end dax-host "DAX host built"
}

if [ -x "$BIN" ]; then
	log_reuse "DAX host up to date: built from these sources before ($BIN)"
else
	with_lock cargo-vhost-user-fs-dax build
fi
touch "$BIN"
echo "$BIN"
