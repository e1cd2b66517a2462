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

# inject_hits LOG SPEC N: the DAX host's LOG has exactly N hits of the
# injection rule SPEC ("inject: SPEC hits OP #N").
inject_hits() {
	local n
	n=$(grep -cF "inject: $2 hits " "$1" || true)
	[ "$n" = "$3" ] || {
		echo "$2: $n hits, not $3"
		grep -F "inject: $2 hits " "$1" | head -n 3
		return 1
	}
}

# inject_hit_once LOG SPEC: exactly one hit of rule SPEC.
inject_hit_once() {
	inject_hits "$1" "$2" 1
}
