#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Cargo target directories in the cache are stamped with the sources they
# were built from (scripts/lib.sh): after a modified copy of a crate was
# built in the same target directory, building the original again must not
# reuse the copy's binary, even though cargo, going by file times, would.
. "$(dirname "$0")/lib.sh"
echo "1..4"
command -v cargo >/dev/null || { echo "Bail out! cargo missing"; exit 1; }
export VFSRS_CACHE=$TMP/cache CARGO_NET_OFFLINE=true
# shellcheck source=../../scripts/lib.sh
. "$ROOT/scripts/lib.sh"
TARGET=$VFSRS_CACHE/cargo-target/stamp
mkcrate() { # DIR WORD
	mkdir -p "$1/src"
	printf '[package]\nname = "stamp"\nversion = "0.1.0"\nedition = "2021"\n[workspace]\n' >"$1/Cargo.toml"
	printf 'fn main() { println!("%s"); }\n' "$2" >"$1/src/main.rs"
	(cd "$1" && cargo generate-lockfile -q --offline)
	touch -d '2001-01-01' "$1/src/main.rs" "$1/Cargo.toml"
}
# build ROOT: what scripts/build-dax-host.sh does, for checkout ROOT.
build() {
	VFSRS_ROOT=$1
	local h
	h=$(crate_hash "$1/crate")
	cargo_prepare "$1/crate" "$TARGET"
	(cd "$1/crate" && CARGO_TARGET_DIR=$TARGET cargo build --release -q) 2>&1
	cargo_stamp "$1/crate" "$TARGET" "$h"
	"$TARGET/release/stamp"
}
mkcrate "$TMP/orig/crate" original
cp -a "$TMP/orig" "$TMP/copy"
printf 'fn main() { println!("modified"); }\n' >"$TMP/copy/crate/src/main.rs"
check "the original builds" same "$(build "$TMP/orig" 2>&1 | tail -n 1)" original
check "the modified copy builds in the same target directory" same "$(build "$TMP/copy" 2>&1 | tail -n 1)" modified
# Without the stamp check, cargo keeps the copy's binary: the original's
# files are older than what it built.
(cd "$TMP/orig/crate" && CARGO_TARGET_DIR=$TARGET cargo build --release -q 2>/dev/null)
check "(cargo alone would reuse the copy's binary)" same "$("$TARGET/release/stamp")" modified
check "the original again: rebuilt from its own sources" same "$(build "$TMP/orig" 2>&1 | tail -n 1)" original
