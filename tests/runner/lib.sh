# SPDX-License-Identifier: GPL-2.0
# Helpers for the runner's self-tests: source it, do not run it.
set -euo pipefail
RUNNER_TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$RUNNER_TESTS/../.." && pwd)
TMP=$(mktemp -d /tmp/vfsrs-runner-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
n=0

# check NAME CMD...: one TAP result for CMD; on failure up to 20 lines of
# its output follow as comments.
check() {
	local name=$1 out
	shift
	n=$((n + 1))
	if out=$("$@" 2>&1); then
		echo "ok $n $name"
	else
		echo "not ok $n $name"
		printf '%s\n' "$out" | head -n 20 | sed 's/^/#   /'
	fi
}

# has FILE REGEX / lacks FILE REGEX: a line of FILE matches (or none does).
has() { grep -q -E -e "$2" "$1" || { echo "no line matching '$2' in $1:"; head -n 40 "$1"; return 1; }; }
lacks() { ! grep -E -e "$2" "$1" || { echo "(lines above match '$2' in $1)"; return 1; }; }
# same A B: two strings are equal.
same() { [ "$1" = "$2" ] || { echo "got '$1', want '$2'"; return 1; }; }
