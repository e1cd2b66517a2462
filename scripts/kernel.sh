#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Prepare a Linux 6.12 tree from Debian's linux-source-6.12 tarball, overlay
# the project's kernel directories, apply patches/, configure from configs/
# and build bzImage + modules.
#
# usage: scripts/kernel.sh [test|bench]
#
# Layout under $VFSRS_CACHE/kernel/<tarball hash>/:
#   pristine/  the extracted tarball, never modified
#   src/       pristine + overlay + patches; only files whose content changed
#              are rewritten, so make rebuilds only what depends on them
#   build-<flavor>/  O= build directory; modroot/ holds modules_install output
# On success prints the build directory on stdout.
. "$(dirname "$0")/lib.sh"

FLAVOR=${1:-test}
case "$FLAVOR" in
test|bench) ;;
*) die "usage: $0 [test|bench]" ;;
esac

# Project directories that land at the same path in the kernel tree.
OVERLAY_DIRS=(rust fs drivers include Documentation)

[ -x "$BINDGEN" ] || die "bindgen not found at $BINDGEN (run scripts/setup.sh)"
[ -x /usr/bin/rustc ] || die "/usr/bin/rustc missing (rustc-web; run scripts/setup.sh)"
[ -d /usr/lib/rustlib/src/rust/library ] || die "rust-src missing (rust-web-src; run scripts/setup.sh)"

TARBALL=$(kernel_tarball)
TKEY=$(sha256sum "$TARBALL" | cut -c1-12)
K=$VFSRS_CACHE/kernel/$TKEY
B=$K/build-$FLAVOR
mkdir -p "$K"

prepare_pristine() {
	[ -f "$K/pristine/.vfsrs-ready" ] && return 0
	log "extracting $TARBALL (~25 s)"
	rm -rf "$K/pristine.tmp"
	mkdir -p "$K/pristine.tmp"
	tar -xf "$TARBALL" -C "$K/pristine.tmp" --strip-components=1 ||
		die "cannot extract $TARBALL"
	[ -f "$K/pristine.tmp/Makefile" ] || die "$TARBALL holds no kernel tree"
	touch "$K/pristine.tmp/.vfsrs-ready"
	rm -rf "$K/pristine"
	mv "$K/pristine.tmp" "$K/pristine"
}

prepare_src() {
	[ -f "$K/src/.vfsrs-ready" ] && return 0
	log "copying the pristine tree"
	rm -rf "$K/src"
	cp -a "$K/pristine" "$K/src.tmp"
	rm -f "$K/src.tmp/.vfsrs-ready" "$K/src.tmp/.vfsrs-manifest"
	touch "$K/src.tmp/.vfsrs-manifest"
	mv "$K/src.tmp" "$K/src"
	touch "$K/src/.vfsrs-ready"
}

# Files the patches touch, relative to the tree root.
patched_files() {
	local p
	for p in "$VFSRS_ROOT"/patches/*.patch; do
		[ -e "$p" ] || continue
		sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p"
	done | LC_ALL=C sort -u
}

# Build the wanted state of every project-owned file in stage/, then copy
# into src/ only what differs.
sync_overlay() {
	local stage=$K/stage d f p
	rm -rf "$stage"
	mkdir -p "$stage"
	for d in "${OVERLAY_DIRS[@]}"; do
		[ -d "$VFSRS_ROOT/$d" ] || continue
		(cd "$VFSRS_ROOT" && find "$d" -type f ! -name '*~' ! -path '*/target/*' -print0 |
			xargs -0 -r cp --parents -t "$stage")
	done
	for f in $(patched_files); do
		[ -f "$K/pristine/$f" ] || die "patches/ touch $f, which the tree lacks"
		mkdir -p "$stage/$(dirname "$f")"
		cp "$K/pristine/$f" "$stage/$f"
	done
	for p in "$VFSRS_ROOT"/patches/*.patch; do
		[ -e "$p" ] || continue
		patch -s -p1 -d "$stage" --no-backup-if-mismatch <"$p" ||
			die "patch $(basename "$p") does not apply to $(basename "$TARBALL")"
	done
	(cd "$stage" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$K/manifest.new"
	# Files we owned before but no longer do: back to pristine, or gone.
	LC_ALL=C comm -23 "$K/src/.vfsrs-manifest" "$K/manifest.new" | while read -r f; do
		if [ -f "$K/pristine/$f" ]; then
			# A fresh mtime, so make rebuilds what depends on it.
			cp "$K/pristine/$f" "$K/src/$f"
		else
			rm -f "$K/src/$f"
		fi
	done
	rsync -rc "$stage/" "$K/src/"
	mv "$K/manifest.new" "$K/src/.vfsrs-manifest"
}

configure() {
	local frags=("$VFSRS_ROOT/configs/base.config" "$VFSRS_ROOT/configs/$FLAVOR.config")
	local h line
	h=$(hash_files "${frags[@]}")
	if [ -f "$B/.config" ] && [ "$(cat "$B/.vfsrs-config" 2>/dev/null)" = "$h" ]; then
		return 0
	fi
	log "configuring $FLAVOR kernel (tinyconfig + ${frags[*]##*/})"
	mkdir -p "$B"
	kmake -C "$K/src" O="$B" tinyconfig >/dev/null
	(cd "$K/src" && KCONFIG_CONFIG="$B/.config" scripts/kconfig/merge_config.sh \
		-m -O "$B" "$B/.config" "${frags[@]}" >"$B/merge.log") ||
		die "merge_config failed, see $B/merge.log"
	kmake -C "$K/src" O="$B" olddefconfig >/dev/null
	# Every option we ask for must survive olddefconfig.
	for line in $(cat "${frags[@]}" | grep -E '^(CONFIG_[A-Za-z0-9_]+=|# CONFIG_.* is not set)' |
		sed 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set/\1=n/'); do
		case "$line" in
		*=n)
			if grep -q "^${line%=n}=" "$B/.config"; then
				die "config: ${line%=n} is still set (see configs/)"
			fi ;;
		*)
			grep -qx "$line" "$B/.config" ||
				die "config: $line did not stick (a dependency is missing; see configs/)" ;;
		esac
	done
	echo "$h" >"$B/.vfsrs-config"
}

build() {
	local inputs
	inputs="$TKEY $(cat "$B/.vfsrs-config") $(hash_tree "${OVERLAY_DIRS[@]}" patches)"
	if [ "$(cat "$B/.vfsrs-built" 2>/dev/null)" = "$inputs" ] &&
		[ -f "$B/arch/x86/boot/bzImage" ] && [ -d "$B/modroot" ]; then
		log_reuse "kernel up to date: its inputs (tarball, config, overlay, patches) did not change ($B)"
		return 0
	fi
	rm -f "$B/.vfsrs-built"
	kmake -C "$K/src" O="$B" rustavailable >/dev/null ||
		die "the Rust toolchain is not usable for the kernel (make rustavailable)"
	if [ -f "$B/arch/x86/boot/bzImage" ]; then
		step_begin "kernel-$FLAVOR" "rebuilding what changed in the $FLAVOR kernel ($B/build.log)"
	else
		step_begin "kernel-$FLAVOR" "building the $FLAVOR kernel in $B (a cold build takes ~15 min; $B/build.log)"
	fi
	kmake -C "$K/src" O="$B" -j"$(nproc)" bzImage modules >"$B/build.log" 2>&1 || {
		grep -E 'error|Error' "$B/build.log" | head -40 >&2
		die "kernel build failed, see $B/build.log"
	}
	rm -rf "$B/modroot"
	kmake -C "$K/src" O="$B" INSTALL_MOD_PATH="$B/modroot" modules_install >/dev/null ||
		die "modules_install failed"
	echo "$inputs" >"$B/.vfsrs-built"
	step_end "kernel-$FLAVOR" "$FLAVOR kernel built"
}

main() {
	prepare_pristine
	prepare_src
	sync_overlay
	configure
	build
	echo "$B"
}

with_lock "kernel-$TKEY" main
