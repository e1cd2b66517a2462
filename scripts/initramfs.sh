#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the guest initramfs: busybox-static, tests/guest/init, the test
# plans, the kselftests (static), tests/guest/bin, the kernel's modules,
# /etc/passwd + /etc/group with an unprivileged user (vfsuser, uid 1000),
# the third-party exercisers from Debian (fio, stress-ng: see TOOLS) with
# the shared libraries ldd resolves for them and the dynamic loader, each
# at the path it has on this machine, and the System V shared memory
# preload fio needs in the guest (tests/guest/preload/sysv-shm.c).
#
# usage: scripts/initramfs.sh [--tests-dir] BUILD_DIR
#   BUILD_DIR is what scripts/kernel.sh printed. Prints the initramfs path,
#   or with --tests-dir the directory of the built tests (TESTS/host holds
#   the host-side helpers). Both are keyed by their inputs and never change
#   once built, so concurrent runs can share them.
. "$(dirname "$0")/lib.sh"

WANT=image
if [ "${1:-}" = --tests-dir ]; then WANT=tests; shift; fi
[ $# = 1 ] || die "usage: $0 [--tests-dir] BUILD_DIR"
B=$1
[ -f "$B/.vfsrs-built" ] || die "$B is not a finished kernel build (run scripts/kernel.sh)"
KSRC=$(dirname "$B")/src
[ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static; run scripts/setup.sh)"
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
file_is_static /bin/busybox || die "/bin/busybox is not static (install busybox-static)"

SELFTESTS=$VFSRS_ROOT/tests/selftests/virtiofs
OUT=$VFSRS_CACHE/initramfs
mkdir -p "$OUT"
# Runners before this one pointed a shared link at the current tests; a
# cache they used may still have it. Nothing reads it any more.
rm -f "$OUT/tests-current"

# kselftests and host helpers, rebuilt when their sources change.
build_tests() {
	local dir=$1 t
	[ -f "$dir/.ready" ] && return 0
	step_begin build-tests "building the kselftests"
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp/host"
	for t in "$SELFTESTS"/*_test.c; do
		gcc -static -O2 -Wall -Werror -Wno-format-truncation -I"$KSRC/tools/testing/selftests" \
			-o "$dir.tmp/$(basename "$t" .c)" "$t" -lpthread ||
			die "building $(basename "$t") failed"
	done
	gcc -O2 -Wall -Werror -o "$dir.tmp/host/vfs_pattern" "$SELFTESTS/vfs_pattern.c" ||
		die "building vfs_pattern failed"
	touch "$dir.tmp/.ready"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
	step_end build-tests "kselftests built"
}

h=$(hash_files "$SELFTESTS"/*.c "$SELFTESTS"/*.h "$KSRC/tools/testing/selftests/kselftest_harness.h")
TESTS=$OUT/tests-$h
with_lock "tests-$h" build_tests "$TESTS"
if [ "$WANT" = tests ]; then
	echo "$TESTS"
	exit 0
fi

# Third-party exercisers (Debian packages, scripts/setup.sh installs them),
# for plans' "run" lines (tests/guest/README.md).
TOOLS=(/usr/bin/fio /usr/bin/stress-ng)
# VFSRS_PERF=1: perf too, for profiling bench cells (bench-fio.sh, vfsrs.perf).
[ "${VFSRS_PERF:-0}" = 0 ] || TOOLS+=(/usr/bin/perf)
# fio engines the plans use: built into Debian's fio (no engine modules).
FIO_ENGINES=(psync libaio mmap)
for t in "${TOOLS[@]}"; do
	[ -x "$t" ] || die "$t missing (run scripts/setup.sh)"
done
engines=$(/usr/bin/fio --enghelp) || die "/usr/bin/fio --enghelp failed"
for e in "${FIO_ENGINES[@]}"; do
	grep -qx "[[:space:]]*$e" <<<"$engines" || die "/usr/bin/fio has no built-in $e engine"
done

# tool_files: the tools, every shared library ldd resolves for them and the
# dynamic loader, one path per line as the loader will look for them.
tool_files() {
	local t out
	for t in "${TOOLS[@]}"; do
		echo "$t"
		out=$(ldd "$t") || die "ldd $t failed"
		grep -q 'not found' <<<"$out" && die "ldd $t: a library is missing: $(grep 'not found' <<<"$out")"
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out"
	done | LC_ALL=C sort -u
}
TOOL_FILES=$(tool_files)

build_image() {
	local img=$1 root a
	if [ -f "$img" ]; then
		touch "$img" # in use: pruning keeps it
		log_reuse "initramfs up to date: its inputs did not change ($img)"
		return 0
	fi
	step_begin initramfs "building the initramfs"
	root=$(mktemp -d "$OUT/root.XXXXXX")
	# The archive's "." becomes the guest's /: mktemp made it 0700, which
	# would lock the unprivileged user out of everything.
	chmod 755 "$root"
	trap 'rm -rf "$root"' EXIT
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,mnt,tests,plans,lib,etc,root,home}
	cp /bin/busybox "$root/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
	done
	cp "$VFSRS_ROOT/tests/guest/init" "$root/init"
	cp "$PLANS_DIR"/*.plan "$root/plans/"
	find "$TESTS" -maxdepth 1 -type f -perm -u+x -exec cp -t "$root/tests" {} +
	cp -r "$VFSRS_ROOT"/tests/guest/bin/. "$root/tests/"
	cp -a "$B/modroot/lib/modules" "$root/lib/"
	# The tools and their libraries, dereferenced, at the paths ldd named.
	for a in $TOOL_FILES; do
		mkdir -p "$root$(dirname "$a")"
		cp -L "$a" "$root$a"
	done
	# fio keeps its job table in System V shared memory, which the guest
	# kernel lacks: plans preload this (tests/guest/preload/sysv-shm.c).
	mkdir -p "$root/usr/lib/vfsrs"
	gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$root/usr/lib/vfsrs/sysv-shm.so" \
		"$VFSRS_ROOT/tests/guest/preload/sysv-shm.c" || die "building sysv-shm.so failed"
	# Users for tests that drop root: vfsuser (uid 1000) and nobody.
	cat >"$root/etc/passwd" <<-EOF
		root:x:0:0:root:/root:/bin/sh
		vfsuser:x:1000:1000:virtiofs-rs test user:/home/vfsuser:/bin/sh
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >"$root/etc/group" <<-EOF
		root:x:0:
		vfsuser:x:1000:
		nogroup:x:65534:
	EOF
	# The console the kernel opens for init, before devtmpfs is mounted.
	mknod -m 600 "$root/dev/console" c 5 1 || die "mknod /dev/console failed (run as root)"
	(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$img.tmp"
	mv "$img.tmp" "$img"
	rm -rf "$root"
	trap - EXIT
	# Keep the newest few images, and any used in the last hour. Another
	# run (other key, other lock) may prune the same old images meanwhile.
	ls -t "$OUT"/initramfs-*.cpio.gz | tail -n +6 |
		while read -r a; do find "$a" -mmin +60 -delete 2>/dev/null || true; done
	step_end initramfs "initramfs built"
}

# The tools' part of the key: each file's real path, size and time (dpkg
# sets them from the package, so any upgrade of a tool or library changes
# it) and the tools' versions.
tools_key() {
	local f
	for f in $TOOL_FILES; do
		printf '%s %s\n' "$f" "$(stat -L -c '%s %Y' "$f")"
		readlink -f "$f"
	done
	/usr/bin/fio --version
	/usr/bin/stress-ng --version
}
h=$(printf '%s\n' "$(cat "$B/.vfsrs-built")" "$(basename "$TESTS")" "$(hash_tree tests/guest)" \
	"$(sha256sum /bin/busybox)" "$(hash_files "$VFSRS_ROOT/scripts/initramfs.sh")" \
	"$(tools_key | sha256sum)" | sha256sum | cut -c1-16)
IMG=$OUT/initramfs-$(basename "$(dirname "$B")")-$(basename "$B")-$h.cpio.gz
with_lock "initramfs-$h" build_image "$IMG"
echo "$IMG"
