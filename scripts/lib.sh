# SPDX-License-Identifier: GPL-2.0
# Common helpers for the virtiofs-rs scripts. Source it, do not run it.
#
# Everything the scripts build or download lives under $VFSRS_CACHE (outside
# the repository), keyed by the inputs that produced it.

set -Eeuo pipefail
# No silent failures: say which command stopped a script.
trap 'vfsrs_rc=$?; printf "[%s] error: \"%s\" failed (status %s, line %s)\n" "$(basename "$0")" "$BASH_COMMAND" "$vfsrs_rc" "$LINENO" >&2' ERR

VFSRS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VFSRS_CACHE=${VFSRS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtiofs-rs}
# Logs of every run (scripts create it when they need it).
VFSRS_RUNS=${VFSRS_RUNS:-$VFSRS_CACHE/runs}
export VFSRS_ROOT VFSRS_CACHE VFSRS_RUNS

# Pinned tool versions.
BINDGEN_VERSION=0.73.2
VIRTIOFSD_VERSION=1.14.0
QEMU_SUITE=trixie
QEMU_MIN_VERSION=11.1

BINDGEN=$VFSRS_CACHE/tools/bindgen-cli-$BINDGEN_VERSION/bin/bindgen
VIRTIOFSD=$VFSRS_CACHE/tools/virtiofsd-$VIRTIOFSD_VERSION/bin/virtiofsd
QEMU_CHROOT=$VFSRS_CACHE/qemu-$QEMU_SUITE

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# log_reuse TEXT: say that a step is skipped because its inputs did not
# change (VFSRS_LOG_REUSE=0: once is enough, scripts/run-guest.sh within
# scripts/test.sh).
log_reuse() {
	[ "${VFSRS_LOG_REUSE:-1}" = 0 ] || log "$*"
}

# fmt_secs N: "42s", "3m07s".
fmt_secs() {
	if [ "$1" -ge 60 ]; then printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); else printf '%ds' "$1"; fi
}

# Progress of long steps: step_begin KEY TEXT says what starts and how long
# its last run took; step_end KEY says how long it took and remembers it.
declare -gA VFSRS_STEP_T0=()
step_begin() {
	local last
	last=$(cat "$VFSRS_CACHE/timings/$1" 2>/dev/null || true)
	log "$2${last:+ (last time: $(fmt_secs "$last"))}"
	VFSRS_STEP_T0[$1]=$SECONDS
}
step_end() {
	local t=$((SECONDS - ${VFSRS_STEP_T0[$1]:-$SECONDS}))
	mkdir -p "$VFSRS_CACHE/timings"
	echo "$t" >"$VFSRS_CACHE/timings/$1"
	log "${2:-$1 done} in $(fmt_secs "$t")"
}

# hash_files FILE...: one sha256 over the names and contents of the files
# (names relative to the repository or the cache, wherever those are).
hash_files() {
	local f name
	for f in "$@"; do
		name=${f#"$VFSRS_ROOT"/}
		printf '%s\n' "${name#"$VFSRS_CACHE"/}"
		cat "$f"
	done | sha256sum | cut -c1-16
}

# hash_tree DIR...: hash of every tracked-or-untracked file under DIRs.
hash_tree() {
	local files d dirs=()
	for d in "$@"; do
		[ -e "$VFSRS_ROOT/$d" ] && dirs+=("$d")
	done
	[ ${#dirs[@]} -gt 0 ] || { echo empty; return; }
	files=$(cd "$VFSRS_ROOT" && find "${dirs[@]}" -type f ! -path '*/target/*' | LC_ALL=C sort)
	[ -n "$files" ] || { echo empty; return; }
	(cd "$VFSRS_ROOT" && hash_files $files)
}

# with_lock NAME CMD...: run CMD holding an exclusive lock on NAME, so two
# runs never build the same thing at once.
with_lock() {
	local name=$1; shift
	mkdir -p "$VFSRS_CACHE/locks"
	(
		flock -w 7200 9 || die "timed out waiting for lock $name"
		"$@"
	) 9>"$VFSRS_CACHE/locks/$name"
}

# The kernel source tarball Debian's linux-source-6.12 installs.
kernel_tarball() {
	local t
	t=$(ls /usr/src/linux-source-6.12.tar.* 2>/dev/null | head -n1 || true)
	[ -n "$t" ] || die "no /usr/src/linux-source-6.12.tar.* (run scripts/setup.sh, which installs linux-source-6.12)"
	echo "$t"
}

# Make invocation for the Rust-enabled LLVM build.
kmake() {
	make -s LLVM=1 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
		BINDGEN="$BINDGEN" "$@"
}

# Test plans (tests/guest/README.md describes their directives).
PLANS_DIR=${VFSRS_PLANS_DIR:-$VFSRS_ROOT/tests/guest/plans}

# plan_values PLAN KEY: the values of directive KEY in PLAN, one per line.
plan_values() {
	sed -n "s/^$2[[:space:]]\{1,\}//p" "$PLANS_DIR/$1.plan"
}

# plan_has PLAN KEY: true if PLAN has a line that is KEY alone (a flag directive).
plan_has() {
	grep -q "^$2[[:space:]]*\$" "$PLANS_DIR/$1.plan"
}

# plan_value PLAN KEY DEFAULT: the last value of KEY, or DEFAULT.
plan_value() {
	local v
	v=$(plan_values "$1" "$2" | tail -n 1)
	echo "${v:-$3}"
}

# to_bytes SIZE: 64M -> 67108864.
to_bytes() {
	local v=$1 n=${1%[KMGkmg]}
	[[ "$n" =~ ^[0-9]+$ ]] || die "bad size $v"
	case "$v" in
	*[Kk]) echo $((n << 10)) ;;
	*[Mm]) echo $((n << 20)) ;;
	*[Gg]) echo $((n << 30)) ;;
	*) echo "$n" ;;
	esac
}

# virtiofsd's options that a plan's "virtiofsd" directive can change; the
# socket, shared directory and tag are the runner's.
VIRTIOFSD_DEFAULT_OPTS=(--cache=auto --sandbox=none --log-level=info)

# plan_virtiofsd_opts PLAN: virtiofsd's options for PLAN, one per line: the
# defaults, each replaced by the plan's option of the same name, then the
# plan's other options in the order given ("virtiofsd --cache=never --xattr"
# gives --cache=never --sandbox=none --log-level=info --xattr).
plan_virtiofsd_opts() {
	local plan=$1 o d name words=() out=()
	read -r -a words <<<"$(plan_values "$plan" virtiofsd | paste -sd' ')"
	for o in "${words[@]}"; do
		[[ "$o" =~ ^--[a-z][a-z0-9-]*(=[^[:space:]]*)?$ ]] ||
			die "plan $plan: virtiofsd takes options as --name or --name=value, not '$o'"
		case "${o%%=*}" in
		--socket-path|--socket|--fd|--shared-dir|--tag)
			die "plan $plan: virtiofsd ${o%%=*} is the runner's" ;;
		esac
	done
	for d in "${VIRTIOFSD_DEFAULT_OPTS[@]}"; do
		name=${d%%=*}
		for o in "${words[@]}"; do
			[ "${o%%=*}" != "$name" ] || d=$o
		done
		out+=("$d")
	done
	for o in "${words[@]}"; do
		case " ${VIRTIOFSD_DEFAULT_OPTS[*]%%=*} " in
		*" ${o%%=*} "*) ;;
		*) out+=("$o") ;;
		esac
	done
	printf '%s\n' "${out[@]}"
}

# plan_boot_key HOST PLAN: the host and device configuration PLAN needs.
# Plans with the same key (and driver, host and transport) share a guest.
plan_boot_key() {
	local host=$1 plan=$2 key
	[ -f "$PLANS_DIR/$plan.plan" ] || die "no plan tests/guest/plans/$plan.plan"
	if grep -q '^alone\([[:space:]]\|$\)' "$PLANS_DIR/$plan.plan"; then
		echo "alone:$plan"
		return
	fi
	key="devices=$(plan_value "$plan" devices 1)"
	key+=" hostmount=$(plan_values "$plan" host-mount | paste -sd,)"
	if [ "$host" = virtiofsd ]; then
		key+=" virtiofsd=$(plan_virtiofsd_opts "$plan" | paste -sd' ')"
	fi
	if [ "$host" = dax ]; then
		key+=" cache=$(to_bytes "$(plan_value "$plan" cache-size 64M)")"
		key+=" vq=$(plan_value "$plan" vq-size default)"
		key+=" inject=$(plan_values "$plan" inject | paste -sd,)"
		key+=" daxsize=$(v=$(plan_value "$plan" dax-file-size ""); [ -z "$v" ] && echo none || to_bytes "$v")"
		key+=" locks=$(plan_has "$plan" locks && echo on || echo "$(plan_value "$plan" locks off)")"
		key+=" tmpfile=$(plan_has "$plan" tmpfile && echo on || echo off)"
	fi
	echo "$key"
}

# Cargo builds share one target directory per crate in the cache, but cargo
# judges freshness by file times, so a binary built from other sources (a
# copy of the repository, another branch) could look fresh. Each target
# directory therefore carries a stamp: the hash of the sources its crate's
# artifacts were built from. cargo_prepare cleans the crate's own artifacts
# (not its dependencies) when the stamp does not match; cargo_stamp writes
# it after a successful build. Hold with_lock "cargo-NAME" around both.

# crate_hash DIR: the crate's sources (target/ excluded) and the toolchain.
crate_hash() {
	printf '%s\n' "$(hash_tree "${1#"$VFSRS_ROOT"/}")" "$(cargo -V)" "$(rustc -V)" |
		sha256sum | cut -c1-16
}

# crate_package DIR: the package name in DIR/Cargo.toml.
crate_package() {
	sed -n 's/^name *= *"\(.*\)"/\1/p' "$1/Cargo.toml" | head -n 1
}

# cargo_prepare DIR TARGET: make TARGET safe to build DIR's current sources in.
cargo_prepare() {
	local dir=$1 target=$2 h
	h=$(crate_hash "$dir")
	[ "$(cat "$target/.vfsrs-sources" 2>/dev/null)" = "$h" ] && return 0
	rm -f "$target/.vfsrs-sources"
	[ -d "$target" ] || return 0
	log "${dir#"$VFSRS_ROOT"/}: $target was built from other sources; cleaning $(crate_package "$dir")"
	(cd "$dir" && CARGO_TARGET_DIR=$target cargo clean -q --release -p "$(crate_package "$dir")" &&
		CARGO_TARGET_DIR=$target cargo clean -q -p "$(crate_package "$dir")") ||
		die "cargo clean in $target failed"
}

# cargo_stamp DIR TARGET HASH: TARGET now holds DIR's build from sources HASH
# (refused if the sources changed while cargo ran).
cargo_stamp() {
	[ "$(crate_hash "$1")" = "$3" ] || die "${1#"$VFSRS_ROOT"/} changed during the build; run again"
	echo "$3" >"$2/.vfsrs-sources"
}
