#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the guest initramfs: busybox-static, tests/guest/init, the test
# plans, the kselftests (static) and the kernel's modules.
#
# usage: scripts/initramfs.sh BUILD_DIR
#   BUILD_DIR is what scripts/kernel.sh printed. Prints the initramfs path.
. "$(dirname "$0")/lib.sh"

B=${1:?usage: $0 BUILD_DIR}
[ -f "$B/.vfsrs-built" ] || die "$B is not a finished kernel build (run scripts/kernel.sh)"
KSRC=$(dirname "$B")/src
[ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static; run scripts/setup.sh)"
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
file_is_static /bin/busybox || die "/bin/busybox is not static (install busybox-static)"

SELFTESTS=$VFSRS_ROOT/tests/selftests/virtiofs
OUT=$VFSRS_CACHE/initramfs
mkdir -p "$OUT"

# kselftests and host helpers, rebuilt when their sources change.
build_tests() {
	local h dir t
	h=$(hash_files "$SELFTESTS"/*.c "$SELFTESTS"/*.h "$KSRC/tools/testing/selftests/kselftest_harness.h")
	dir=$OUT/tests-$h
	if [ ! -f "$dir/.ready" ]; then
		rm -rf "$dir"
		mkdir -p "$dir/host"
		for t in "$SELFTESTS"/*_test.c; do
			gcc -static -O2 -Wall -Werror -Wno-format-truncation -I"$KSRC/tools/testing/selftests" \
				-o "$dir/$(basename "$t" .c)" "$t" -lpthread ||
				die "building $(basename "$t") failed"
		done
		gcc -O2 -Wall -Werror -o "$dir/host/vfs_pattern" "$SELFTESTS/vfs_pattern.c" ||
			die "building vfs_pattern failed"
		touch "$dir/.ready"
	fi
	echo "$dir"
}

TESTS=$(build_tests)
ln -sfn "$TESTS" "$OUT/tests-current"

h=$(printf '%s\n' "$(cat "$B/.vfsrs-built")" "$TESTS" "$(hash_tree tests/guest)" \
	"$(sha256sum /bin/busybox)" | sha256sum | cut -c1-16)
IMG=$OUT/initramfs-$(basename "$(dirname "$B")")-$(basename "$B")-$h.cpio.gz
if [ ! -f "$IMG" ]; then
	root=$(mktemp -d "$OUT/root.XXXXXX")
	trap 'rm -rf "$root"' EXIT
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,mnt,tests,plans,lib}
	cp /bin/busybox "$root/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
	done
	cp "$VFSRS_ROOT/tests/guest/init" "$root/init"
	cp "$VFSRS_ROOT"/tests/guest/plans/*.plan "$root/plans/"
	find "$TESTS" -maxdepth 1 -type f -perm -u+x -exec cp -t "$root/tests" {} +
	cp "$VFSRS_ROOT"/tests/guest/bin/* "$root/tests/"
	cp -a "$B/modroot/lib/modules" "$root/lib/"
	# The console the kernel opens for init, before devtmpfs is mounted.
	mknod -m 600 "$root/dev/console" c 5 1 || die "mknod /dev/console failed (run as root)"
	(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$IMG.tmp"
	mv "$IMG.tmp" "$IMG"
	# Keep the newest few images only.
	ls -t "$OUT"/initramfs-*.cpio.gz | tail -n +6 | xargs -r rm -f
fi
echo "$IMG"
