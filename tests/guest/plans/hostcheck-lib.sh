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
