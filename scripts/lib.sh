# SPDX-License-Identifier: GPL-2.0
# Common helpers for the virtiofs-rs scripts. Source it, do not run it.
#
# Everything the scripts build or download lives under $VFSRS_CACHE (outside
# the repository), keyed by the inputs that produced it.

set -euo pipefail

VFSRS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VFSRS_CACHE=${VFSRS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtiofs-rs}
export VFSRS_ROOT VFSRS_CACHE

# Pinned tool versions.
BINDGEN_VERSION=0.73.2
VIRTIOFSD_VERSION=1.14.0
QEMU_SUITE=trixie
QEMU_MIN_VERSION=11.1

BINDGEN=$VFSRS_CACHE/tools/bindgen-cli-$BINDGEN_VERSION/bin/bindgen
VIRTIOFSD=$VFSRS_CACHE/tools/virtiofsd-$VIRTIOFSD_VERSION/bin/virtiofsd
QEMU_CHROOT=$VFSRS_CACHE/qemu-$QEMU_SUITE

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# hash_files FILE...: one sha256 over the names and contents of the files.
hash_files() {
	local f
	for f in "$@"; do
		printf '%s\n' "${f#"$VFSRS_ROOT"/}"
		cat "$f"
	done | sha256sum | cut -c1-16
}

# hash_tree DIR...: hash of every tracked-or-untracked file under DIRs.
hash_tree() {
	local files d dirs=()
	for d in "$@"; do
		[ -e "$VFSRS_ROOT/$d" ] && dirs+=("$d")
	done
	[ ${#dirs[@]} -gt 0 ] || { echo empty; return; }
	files=$(cd "$VFSRS_ROOT" && find "${dirs[@]}" -type f ! -path '*/target/*' | LC_ALL=C sort)
	[ -n "$files" ] || { echo empty; return; }
	(cd "$VFSRS_ROOT" && hash_files $files)
}

# with_lock NAME CMD...: run CMD holding an exclusive lock on NAME, so two
# runs never build the same thing at once.
with_lock() {
	local name=$1; shift
	mkdir -p "$VFSRS_CACHE/locks"
	(
		flock -w 7200 9 || die "timed out waiting for lock $name"
		"$@"
	) 9>"$VFSRS_CACHE/locks/$name"
}

# The kernel source tarball Debian's linux-source-6.12 installs.
kernel_tarball() {
	local t
	t=$(ls /usr/src/linux-source-6.12.tar.* 2>/dev/null | head -n1 || true)
	[ -n "$t" ] || die "no /usr/src/linux-source-6.12.tar.* (run scripts/setup.sh, which installs linux-source-6.12)"
	echo "$t"
}

# Make invocation for the Rust-enabled LLVM build.
kmake() {
	make -s LLVM=1 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
		BINDGEN="$BINDGEN" "$@"
}
