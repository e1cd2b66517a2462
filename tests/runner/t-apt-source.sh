#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scripts/apt-source.sh: the Debian archive and proxy come from the
# machine's apt configuration (one-line and deb822 sources, in apt's
# order, skipping disabled entries and other suites), and no file of the
# repository names a package mirror host.
. "$(dirname "$0")/lib.sh"
echo "1..8"
A=http://debian-archive.invalid/debian

# conf DIR [APT.CONF LINES]: an apt configuration rooted in DIR.
conf() {
	local d=$1
	shift
	mkdir -p "$d/sources.list.d" "$d/apt.conf.d"
	touch "$d/sources.list"
	{
		echo "Dir::Etc \"$d/\";"
		echo 'Dir::Etc::sourcelist "sources.list";'
		echo 'Dir::Etc::sourceparts "sources.list.d";'
		echo 'Acquire::http::Proxy "";'
		echo 'Acquire::https::Proxy "";'
		printf '%s\n' "$@"
	} >"$d/apt.conf"
}
src() { APT_CONFIG=$1/apt.conf "$ROOT/scripts/apt-source.sh" --codename bookworm; }

d=$TMP/deb822
conf "$d"
cat >"$d/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $A-security
Suites: bookworm-security
Components: main

Types: deb
# a comment
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb deb-src
URIs: $A/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
check "deb822: the release's archive, not -security, not disabled" same "$(src "$d" | grep '^uri')" "uri $A"
check "no proxy configured: none passed on" same "$(src "$d" | grep -c proxy || true)" 0

d=$TMP/oneline
conf "$d" 'Acquire::http::Proxy "http://proxy.invalid:3128/";'
cat >"$d/sources.list" <<EOF
# deb http://commented.invalid/debian bookworm main
deb-src http://src.invalid/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $A bookworm main contrib
EOF
check "one-line: options and comments skipped" same "$(src "$d" | grep '^uri')" "uri $A"
check "the apt proxy is passed to debootstrap" same "$(src "$d" | grep '^http_proxy')" "http_proxy http://proxy.invalid:3128/"
check "the apt proxy is carried into the chroot" has <(src "$d") '^conf Acquire::http::Proxy "http://proxy.invalid:3128/";$'

d=$TMP/parts
conf "$d"
echo "deb $A-other bookworm main" >"$d/sources.list.d/b.list"
echo "deb $A bookworm main" >"$d/sources.list.d/a.list"
check "parts are read in name order" same "$(src "$d" | grep '^uri')" "uri $A"

d=$TMP/none
conf "$d"
echo "deb $A trixie main" >"$d/sources.list"
check "no source for the release: an error, not a guess" bash -c "! APT_CONFIG=$d/apt.conf $ROOT/scripts/apt-source.sh --codename bookworm"

# No package mirror host anywhere in the repository.
mirrors() {
	(cd "$ROOT" && git ls-files -z ':!tests/runner/t-apt-source.sh' | xargs -0 grep -I -n -i -E \
		'deb\.debian\.org|security\.debian\.org|ftp[0-9.]*[a-z.]*\.debian\.org|httpredir|snapshot\.debian\.org|archive\.ubuntu\.com|mirrors?\.[a-z0-9-]+\.(com|org|net|edu)' || true)
}
check "no package mirror host in the repository" same "$(mirrors)" ""
