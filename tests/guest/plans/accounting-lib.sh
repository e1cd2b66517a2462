# SPDX-License-Identifier: GPL-2.0
# Shared by the *.hostcheck scripts of plans on the DAX host: balance its
# accounting log (tests/vhost-user-fs-dax/src/account.rs), in which every
# lookup the server counts is an "ENTRY OP nodeid N name NAME" line, every
# lookup the guest gives back a "FORGET nodeid N nlookup K" line, every
# handle opened an "OPENED OP nodeid N fh F" line and every handle released
# a "RELEASE OP nodeid N fh F" line. Source it, do not run it.

# The value after KEY on an awk input line.
ACCT_AWK_FIELD='function field(k,  i) { for (i = 1; i < NF; i++) if ($i == k) return $(i + 1); return "" }'

# acct_summary LOG: one TAP comment with the totals.
acct_summary() {
	awk "$ACCT_AWK_FIELD"'
		/ ENTRY [A-Z]+ nodeid / { e++ }
		/ FORGET nodeid / { f += field("nlookup") }
		/ OPENED [A-Z]+ nodeid / { o++ }
		/ RELEASE [A-Z]+ nodeid / { r++ }
		END { printf "#   host log: %d lookups counted, %d given back; %d handles opened, %d released\n", e, f, o, r }
	' "$1"
}

# forgets_balance_lookups LOG: for every node but the root (1), the lookups
# the server counted equal the ones the guest gave back with FORGET. The
# guest must have evicted its inodes while mounted (the C driver drops
# forgets after FUSE_DESTROY).
forgets_balance_lookups() {
	awk "$ACCT_AWK_FIELD"'
		/ ENTRY [A-Z]+ nodeid / {
			n = field("nodeid"); got[n]++
			sub(/.* name /, ""); name[n] = substr($0, 1, 40)
		}
		/ FORGET nodeid / { n = field("nodeid"); back[n] += field("nlookup") }
		END {
			for (n in got)
				if (n != 1 && got[n] != back[n]) {
					printf "node %s (%s): %d lookups counted, %d given back\n", n, name[n], got[n], back[n]
					bad = 1
				}
			for (n in back)
				if (n != 1 && !(n in got)) {
					printf "node %s: %d given back, never counted\n", n, back[n]
					bad = 1
				}
			exit bad
		}
	' "$1"
}

# releases_balance_opens LOG: every handle the server opened was released
# once.
releases_balance_opens() {
	awk "$ACCT_AWK_FIELD"'
		/ OPENED [A-Z]+ nodeid / { f = field("fh"); opened[f]++; what[f] = $0; sub(/.* OPENED /, "", what[f]) }
		/ RELEASE [A-Z]+ nodeid / { released[field("fh")]++ }
		END {
			for (f in opened)
				if (opened[f] != released[f]) {
					printf "%s: released %d times\n", what[f], released[f]
					bad = 1
				}
			for (f in released)
				if (!(f in opened)) {
					printf "fh %s: released, never opened\n", f
					bad = 1
				}
			exit bad
		}
	' "$1"
}

# answered LOG OP NAME: the server answered an OP (LOOKUP, CREATE, ...) of
# NAME with an entry.
answered() {
	grep -q " ENTRY $2 nodeid [0-9]* name $3\$" "$1" || {
		echo "no $2 of $3 was answered"
		return 1
	}
}

# opened LOG NAME: the server opened (FUSE_OPEN) a node it had looked up as
# NAME.
opened() {
	local ids
	ids=$(sed -n "s/.* ENTRY [A-Z]* nodeid \([0-9]*\) name $2\$/\1/p" "$1" | sort -u)
	for id in $ids; do
		grep -q " OPENED OPEN nodeid $id fh " "$1" && return 0
	done
	echo "no OPEN of $2 (node ${ids:-unknown}) was answered"
	return 1
}

# held LOG OP N: the host's injection held at least N replies to OP.
held() {
	local n
	n=$(grep -c "inject: delay:.* hits $2 #" "$1" || true)
	[ "$n" -ge "$3" ] || {
		echo "only $n $2 replies were held"
		return 1
	}
}

# no_released_handle_use LOG: the host saw no READ, WRITE, FLUSH, FSYNC,
# FALLOCATE or LSEEK on a file handle that was not open (never opened, or
# already released: RELEASE overtook a request using it).
no_released_handle_use() {
	if grep "which is not open" "$1" | head -n 3 | grep .; then
		return 1
	fi
	return 0
}
