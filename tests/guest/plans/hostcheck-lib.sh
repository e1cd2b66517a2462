# SPDX-License-Identifier: GPL-2.0
# Shared by the *.hostcheck scripts: source it, do not run it.
#
# check NAME CMD...: one TAP line for CMD; on failure up to five lines of
# its output follow as "#" comments.
n=0
check() {
	local name=$1 out
	shift
	n=$((n + 1))
	if out=$("$@" 2>&1); then
		echo "ok $n $name"
	else
		echo "not ok $n $name"
		printf '%s\n' "$out" | head -n 5 | sed 's/^/#   /'
	fi
}

# inject_hit_once LOG SPEC: the DAX host's LOG has exactly one hit of the
# injection rule SPEC ("inject: SPEC hits OP #N").
inject_hit_once() {
	local n
	n=$(grep -cF "inject: $2 hits " "$1" || true)
	[ "$n" = 1 ] || {
		echo "$2: $n hits"
		grep -F "inject: $2 hits " "$1" | head -n 3
		return 1
	}
}
