#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# What this machine's own apt configuration says about where Debian's
# packages come from, so that scripts/setup.sh can build another Debian tree
# (the QEMU chroot) from the same place and through the same proxy. No
# mirror is named in this repository.
#
# usage: scripts/apt-source.sh [--codename NAME]
#   Prints "KEY VALUE" lines:
#     uri URI        the Debian archive the machine uses for its release
#                    (one-line sources.list files and deb822 .sources files
#                    under Dir::Etc::sourcelist and Dir::Etc::sourceparts)
#     conf LINE      an apt.conf line to carry into the chroot (proxies,
#                    Acquire::Check-Valid-Until, Acquire::Check-Date)
#     http_proxy URL, https_proxy URL   the proxies, for debootstrap
#   NAME defaults to VERSION_CODENAME in /etc/os-release. APT_CONFIG is
#   honoured (apt-config reads it), which is how the self-tests point it at
#   other files.
set -euo pipefail
die() { printf '[apt-source.sh] error: %s\n' "$*" >&2; exit 1; }

CODENAME=
while [ $# -gt 0 ]; do
	case "$1" in
	--codename) [ $# -ge 2 ] || die "usage: $0 [--codename NAME]"; CODENAME=$2; shift ;;
	*) die "usage: $0 [--codename NAME]" ;;
	esac
	shift
done
if [ -z "$CODENAME" ]; then
	CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
fi
[ -n "$CODENAME" ] || die "no VERSION_CODENAME in /etc/os-release; pass --codename"
command -v apt-config >/dev/null || die "apt-config not found: is this a Debian machine?"

SL= SP= HP= HSP= CVU= CD=
eval "$(apt-config shell SL Dir::Etc::sourcelist/f SP Dir::Etc::sourceparts/d \
	HP Acquire::http::Proxy HSP Acquire::https::Proxy \
	CVU Acquire::Check-Valid-Until CD Acquire::Check-Date)"

# All "deb" entries as "URI SUITE" lines, in apt's order: the list file,
# then the parts directory in name order (*.list one-line, *.sources deb822).
entries() {
	local f
	[ -z "$SL" ] || [ ! -f "$SL" ] || one_line "$SL"
	[ -n "$SP" ] && [ -d "$SP" ] || return 0
	for f in $(find "$SP" -maxdepth 1 -type f \( -name '*.list' -o -name '*.sources' \) | LC_ALL=C sort); do
		case "$f" in
		*.list) one_line "$f" ;;
		*.sources) deb822 "$f" ;;
		esac
	done
}

# one_line FILE: "deb [options] URI SUITE COMPONENT..."
one_line() {
	sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$1" | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
}

# deb822 FILE: paragraphs of "Field: value" lines (continuations indented).
deb822() {
	awk '
	function flush() {
		if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no") {
			nu = split(uris, u, " "); ns = split(suites, s, " ")
			for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
		}
		types = uris = suites = enabled = ""; last = ""
	}
	/^#/ { next }
	/^[ \t]*$/ { flush(); next }
	/^[ \t]/ { if (last == "uris") uris = uris " " $0; else if (last == "suites") suites = suites " " $0; next }
	{
		field = tolower($0); sub(/:.*/, "", field)
		value = $0; sub(/^[^:]*:[ \t]*/, "", value)
		last = field
		if (field == "types") types = value
		else if (field == "uris") uris = value
		else if (field == "suites") suites = value
		else if (field == "enabled") enabled = value
	}
	END { flush() }' "$1"
}

# The archive that serves the release itself (not -security, -updates, ...).
uri=$(entries | awk -v c="$CODENAME" '$2 == c { print $1; exit }')
[ -n "$uri" ] || die "no 'deb' source for suite $CODENAME in $SL or $SP"
uri=${uri%/}
case "$uri" in
http://*|https://*|ftp://*|file:/*) ;;
*) die "the $CODENAME source $uri is not an http(s), ftp or file URI; debootstrap cannot use it" ;;
esac
echo "uri $uri"
[ -z "$HP" ] || { echo "http_proxy $HP"; echo "conf Acquire::http::Proxy \"$HP\";"; }
[ -z "$HSP" ] || { echo "https_proxy $HSP"; echo "conf Acquire::https::Proxy \"$HSP\";"; }
[ -z "$CVU" ] || echo "conf Acquire::Check-Valid-Until \"$CVU\";"
[ -z "$CD" ] || echo "conf Acquire::Check-Date \"$CD\";"
