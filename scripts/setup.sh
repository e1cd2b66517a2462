#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install everything the project needs on a Debian 12 host: Debian packages,
# pinned cargo tools (bindgen-cli, virtiofsd) and QEMU >= 11.1 in a trixie
# chroot. Idempotent: a second run only checks.
#
# usage: scripts/setup.sh
. "$(dirname "$0")/lib.sh"
[ $# = 0 ] || die "usage: $0"

APT_PACKAGES=(
	linux-source-6.12 rustc-web rust-web-src
	clang lld llvm libclang-dev flex bison bc libelf-dev libssl-dev cpio
	xz-utils make gcc libc6-dev pkg-config busybox-static debootstrap
	libseccomp-dev libcap-ng-dev util-linux rsync patch kmod python3 rust-web-clippy
	fio stress-ng linux-perf
)

setup_apt() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
	step_begin apt "installing Debian packages: ${missing[*]}"
	apt-get update -q || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed for: ${missing[*]}"
	step_end apt
}

# cargo_tool NAME VERSION BIN: cargo install --locked into the cache.
cargo_tool() {
	local name=$1 version=$2 bin=$3 root
	root=$(dirname "$(dirname "$bin")")
	[ -x "$bin" ] && return 0
	command -v cargo >/dev/null || die "cargo not found (rustup toolchain expected on PATH)"
	step_begin "cargo-install-$name" "cargo install $name $version"
	rm -rf "$root.tmp"
	cargo install "$name" --version "$version" --locked --root "$root.tmp" -q ||
		die "cargo install $name $version failed"
	rm -rf "$root"
	mv "$root.tmp" "$root"
	step_end "cargo-install-$name"
}

# The QEMU chroot comes from the same Debian archive, through the same
# proxy, as this machine's own packages (scripts/apt-source.sh reads them
# from its apt configuration).
setup_qemu() {
	local stamp=$QEMU_CHROOT/.vfsrs-ready tmp=$QEMU_CHROOT.tmp v k val uri= conf=() env=()
	if [ -f "$stamp" ]; then
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "need root to build the QEMU chroot"
	while read -r k val; do
		case "$k" in
		uri) uri=$val ;;
		conf) conf+=("$val") ;;
		http_proxy|https_proxy) env+=("$k=$val") ;;
		esac
	done < <("$VFSRS_ROOT/scripts/apt-source.sh") || die "cannot tell where this machine's packages come from"
	[ -n "$uri" ] || die "scripts/apt-source.sh found no Debian archive"
	step_begin qemu-chroot "building the $QEMU_SUITE chroot from $uri with QEMU from $QEMU_SUITE-backports"
	rm -rf "$tmp"
	env "${env[@]}" debootstrap --variant=minbase "$QEMU_SUITE" "$tmp" "$uri" \
		>"$VFSRS_CACHE/debootstrap.log" 2>&1 ||
		die "debootstrap $QEMU_SUITE failed, see $VFSRS_CACHE/debootstrap.log"
	echo "deb $uri $QEMU_SUITE-backports main" >"$tmp/etc/apt/sources.list.d/backports.list"
	[ ${#conf[@]} -eq 0 ] || printf '%s\n' "${conf[@]}" >"$tmp/etc/apt/apt.conf.d/90vfsrs-host"
	env "${env[@]}" chroot "$tmp" /bin/sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends -t $QEMU_SUITE-backports \
		qemu-system-x86 qemu-system-data seabios && apt-get clean" \
		>"$VFSRS_CACHE/qemu-apt.log" 2>&1 ||
		die "installing qemu-system-x86 in the chroot failed, see $VFSRS_CACHE/qemu-apt.log"
	v=$(chroot "$tmp" qemu-system-x86_64 --version | head -n1 | sed -n 's/.*version \([0-9.]*\).*/\1/p')
	[ -n "$v" ] || die "qemu-system-x86_64 in the chroot does not run"
	printf '%s\n%s\n' "$QEMU_MIN_VERSION" "$v" | sort -V -C ||
		die "QEMU $v in the chroot is older than $QEMU_MIN_VERSION"
	echo "$v" >"$tmp/.vfsrs-ready"
	rm -rf "$QEMU_CHROOT"
	mv "$tmp" "$QEMU_CHROOT"
	step_end qemu-chroot "QEMU $v ready in $QEMU_CHROOT"
}

check_bindgen() {
	local v
	v=$("$BINDGEN" --version | awk '{print $2}')
	printf '%s\n%s\n' 0.65.1 "$v" | sort -V -C || die "bindgen $v is too old (need >= 0.65.1)"
}

mkdir -p "$VFSRS_CACHE/locks"
exec 9>"$VFSRS_CACHE/locks/setup"
flock -w 3600 9 || die "another setup holds $VFSRS_CACHE/locks/setup"
setup_apt
cargo_tool bindgen-cli "$BINDGEN_VERSION" "$BINDGEN"
check_bindgen
cargo_tool virtiofsd "$VIRTIOFSD_VERSION" "$VIRTIOFSD"
setup_qemu
