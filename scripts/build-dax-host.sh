#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the project's DAX test host (tests/vhost-user-fs-dax) and print the
# path of its binary. Cargo's target directory lives in the cache.
#
# usage: scripts/build-dax-host.sh
. "$(dirname "$0")/lib.sh"

CRATE=$VFSRS_ROOT/tests/vhost-user-fs-dax
TARGET=$VFSRS_CACHE/cargo-target/vhost-user-fs-dax
[ -f "$CRATE/Cargo.toml" ] || die "missing $CRATE/Cargo.toml"
command -v cargo >/dev/null || die "cargo not found"
(cd "$CRATE" && CARGO_TARGET_DIR=$TARGET cargo build --release --locked -q) >&2 ||
	die "building the DAX host failed"
BIN=$TARGET/release/vhost-user-fs-dax
[ -x "$BIN" ] || die "no binary at $BIN"
echo "$BIN"
