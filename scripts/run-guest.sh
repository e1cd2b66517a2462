#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Boot one QEMU guest against one virtio-fs host, run one or more test
# plans in it, one after the other, and report TAP per plan.
#
# usage: scripts/run-guest.sh [--driver c|rust] [--host virtiofsd|dax]
#          [--transport pci|mmio] [--plan NAME]... [--opts MOUNT_OPTS]
#          [--cycles N] [--timeout SECONDS] [--flavor test|bench]
#          [--cache-size SIZE] [--inject SPEC]... [--out DIR] [--label TEXT]
#          [--plan-label PLAN=TEXT]... [--keep-shared] [--build-dir DIR]
#          [--append KERNEL_ARGS] [--print-cmd]
#
# Plans in one boot must need the same host and device configuration
# (tests/guest/README.md lists the plan directives and what a boot shares).
# The runner builds the kernel and initramfs if needed, starts the host
# daemon(s) and QEMU (TCG, from the trixie chroot), and then, for each plan:
# gives it a fresh shared directory (plus what its .prepare adds), tells the
# guest to go, answers its .hostagent requests, and when the plan ends keeps
# what the guest left in OUT/PLAN/shared. A plan that overruns its timeout
# stops the guest (the runner names the test that hung); the plans after it
# fail as not run. Once the guest is off, each plan that started gets its
# .hostcheck (on its own shared directory and its slice of host.log), and
# the kernel log is scanned for splats, per plan.
#
# Logs are written while the guest runs: OUT/tap.log (the TAP channel),
# OUT/console.log (the kernel log), OUT/host.log, OUT/qemu.log. A plan with
# a failure keeps OUT/PLAN/shared (--keep-shared keeps every plan's).
# --build-dir uses that kernel build (scripts/kernel.sh's output) as it is,
# so every boot of one scripts/test.sh run tests the same kernel.
# --append adds to the guest kernel's command line (e.g. dyndbg=...).
# --print-cmd prints the daemon and QEMU command lines and exits.
#
# Exit status: 0 if nothing failed, 1 otherwise. The last line reads
# "<label>: N passed, N failed, N xfail, N skipped"; OUT/summary holds
# "passed failed xfail skipped", OUT/PLAN/summary and OUT/boot/summary the
# same per plan and for the boot, next to their results.tsv.
. "$(dirname "$0")/lib.sh"

DRIVER=c HOST=virtiofsd TRANSPORT=pci OPTS= CYCLES=1 TIMEOUT=
FLAVOR=test CACHE_SIZE= OUT= LABEL= TAG=vfsrs MEM=1G PRINT=0 KEEP=0 B= APPEND=
# A plan's timeout when it sets none.
DEFAULT_TIMEOUT=600
# Outside a plan (boot, between plans) the guest must show progress this often.
IDLE_TIMEOUT=${VFSRS_IDLE_TIMEOUT:-150}
PLANS=() INJECT=() PLAN_LABELS=()
usage() { sed -n 's/^# usage: /usage: /p; s/^#          /  /p' "$0" | head -7 >&2; exit 2; }
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || case "$1" in --print-cmd|--keep-shared|-h|--help) ;; *) usage ;; esac
	case "$1" in
	--driver) DRIVER=$2; shift ;;
	--host) HOST=$2; shift ;;
	--transport) TRANSPORT=$2; shift ;;
	--plan) IFS=, read -r -a p <<<"$2"; PLANS+=("${p[@]}"); shift ;;
	--opts) OPTS=$2; shift ;;
	--cycles) CYCLES=$2; shift ;;
	--timeout) TIMEOUT=$2; shift ;;
	--flavor) FLAVOR=$2; shift ;;
	--cache-size) CACHE_SIZE=$2; shift ;;
	--inject) INJECT+=("$2"); shift ;;
	--out) OUT=$2; shift ;;
	--label) LABEL=$2; shift ;;
	--plan-label) PLAN_LABELS+=("$2"); shift ;;
	--keep-shared) KEEP=1 ;;
	--build-dir) B=$2; shift ;;
	--append) APPEND=$2; shift ;;
	--print-cmd) PRINT=1 ;;
	-h|--help) usage ;;
	*) echo "unknown argument: $1" >&2; usage ;;
	esac
	shift
done
[ ${#PLANS[@]} -gt 0 ] || PLANS=(basic)
case "$DRIVER" in c|rust) ;; *) die "--driver must be c or rust" ;; esac
case "$HOST" in virtiofsd|dax) ;; *) die "--host must be virtiofsd or dax" ;; esac
case "$TRANSPORT" in pci|mmio) ;; *) die "--transport must be pci or mmio" ;; esac
case "$FLAVOR" in test|bench) ;; *) die "--flavor must be test or bench" ;; esac
[[ "$CYCLES" =~ ^[0-9]+$ ]] || die "--cycles takes a number"
[[ "$TIMEOUT" =~ ^[0-9]*$ ]] || die "--timeout takes a number of seconds"
declare -A PLAN_TIMEOUT=()
for p in "${PLANS[@]}"; do
	[ -f "$PLANS_DIR/$p.plan" ] || die "no plan tests/guest/plans/$p.plan"
	[ -z "${PLAN_TIMEOUT[$p]:-}" ] || die "plan $p given twice"
	PLAN_TIMEOUT[$p]=${TIMEOUT:-$(plan_value "$p" timeout "$DEFAULT_TIMEOUT")}
	[[ "${PLAN_TIMEOUT[$p]}" =~ ^[0-9]+$ ]] || die "plan $p: timeout must be a number of seconds"
	# Every plan of one boot needs what the first one needs.
	if [ "$(plan_boot_key "$HOST" "$p")" != "$(plan_boot_key "$HOST" "${PLANS[0]}")" ] &&
		[ -z "$CACHE_SIZE" ] && [ ${#INJECT[@]} -eq 0 ]; then
		die "plans ${PLANS[0]} and $p need different guests: $(plan_boot_key "$HOST" "${PLANS[0]}") vs $(plan_boot_key "$HOST" "$p")"
	fi
done
PLAN_LIST=$(IFS=,; echo "${PLANS[*]}")
LABEL=${LABEL:-$DRIVER/$HOST/$TRANSPORT$([ ${#PLANS[@]} -gt 1 ] || echo "/${PLANS[0]}")}

# The host and device configuration, from the first plan; the command line wins.
P0=${PLANS[0]}
if [ ${#INJECT[@]} -eq 0 ]; then
	while read -r s; do [ -n "$s" ] && INJECT+=("$s"); done < <(plan_values "$P0" inject)
fi
# "host-mount DIR": a tmpfs at SHARED/DIR that only the host daemon sees.
HOST_MOUNTS=()
while read -r s; do
	[ -n "$s" ] || continue
	[[ "$s" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$ ]] ||
		die "plan $P0: host-mount takes a relative path without '..', not '$s'"
	HOST_MOUNTS+=("$s")
done < <(plan_values "$P0" host-mount)
CACHE_SIZE=${CACHE_SIZE:-$(plan_value "$P0" cache-size 64M)}
CACHE_BYTES=$(to_bytes "$CACHE_SIZE")
# "devices N": N virtio-fs devices, each with its own daemon, all with the
# same tag (the driver must bind one and refuse the others).
DEVICES=$(plan_value "$P0" devices 1)
[[ "$DEVICES" =~ ^[1-4]$ ]] || die "plan devices must be 1..4"
# "vq-size N": ring size of the DAX host's virtqueues (QEMU's default else).
VQ_SIZE=$(plan_value "$P0" vq-size "")
[ -z "$VQ_SIZE" ] || [[ "$VQ_SIZE" =~ ^[0-9]+$ ]] || die "plan vq-size must be a number"
[ -z "$VQ_SIZE" ] || [ "$HOST" = dax ] || die "plan vq-size needs --host dax"
# "dax-file-size SIZE": the DAX host marks files of at least SIZE DAX
# (FUSE_ATTR_DAX, for -o dax=inode).
DAX_FILE_SIZE=$(plan_value "$P0" dax-file-size "")
[ -z "$DAX_FILE_SIZE" ] || [ "$HOST" = dax ] || die "plan dax-file-size needs --host dax"
# "locks": the DAX host serves FUSE remote locks (--locks); "locks
# ignore-interrupts": and consumes every FUSE_INTERRUPT doing nothing.
LOCKS=0
! plan_has "$P0" locks || LOCKS=1
case "$(plan_value "$P0" locks "")" in
"") ;;
ignore-interrupts) LOCKS=nointr ;;
*) die "plan $P0: locks takes nothing or ignore-interrupts" ;;
esac
[ "$LOCKS" = 0 ] || [ "$HOST" = dax ] || die "plan locks needs --host dax"
# "tmpfile": the DAX host serves FUSE_TMPFILE (--tmpfile).
TMPFILE=0
! plan_has "$P0" tmpfile || TMPFILE=1
[ -z "$(plan_value "$P0" tmpfile "")" ] || die "plan $P0: tmpfile takes nothing"
[ "$TMPFILE" = 0 ] || [ "$HOST" = dax ] || die "plan tmpfile needs --host dax"
# "virtiofsd OPTIONS": the first plan's virtiofsd options (defaults replaced
# by name, others added); a plan that sets any runs on virtiofsd only.
for p in "${PLANS[@]}"; do
	plan_virtiofsd_opts "$p" >/dev/null
	[ "$HOST" = virtiofsd ] || [ -z "$(plan_values "$p" virtiofsd)" ] ||
		die "plan $p sets virtiofsd options: it needs --host virtiofsd"
done
VIRTIOFSD_TEXT=$(plan_virtiofsd_opts "$P0")
mapfile -t VIRTIOFSD_OPTS <<<"$VIRTIOFSD_TEXT"

# A command as shell words, quoted only where needed ($VARS stay as they
# are), one option (with its value) per line.
print_words() {
	local w q out= safe='^[A-Za-z0-9_./:=,+@%$-]+$'
	for w in "$@"; do
		if [[ "$w" =~ $safe ]]; then q=$w; else q="'${w//\'/\'\\\'\'}'"; fi
		if [ -n "$out" ] && [[ "$w" == -* ]]; then out+=" \\"$'\n'"    $q"; else out+="${out:+ }$q"; fi
	done
	echo "$out"
}

# daemon_cmd I: the command line of host daemon I into DCMD. The runner
# starts it in the socket directory: a relative socket path cannot
# outgrow sun_path, however deep the cache is.
daemon_cmd() {
	local i=$1 s sock=${SOCKDIR:+$SOCKDIR/}vfs.$1.sock
	case "$HOST" in
	virtiofsd)
		DCMD=("$VIRTIOFSD" --socket-path="$sock" --shared-dir="$SHARED" --tag="$TAG"
			"${VIRTIOFSD_OPTS[@]}") ;;
	dax)
		DCMD=("$DAXD" --socket "$sock" --shared-dir "$SHARED" --tag "$TAG" --cache-size "$CACHE_SIZE")
		[ -z "$DAX_FILE_SIZE" ] || DCMD+=(--dax-file-size "$DAX_FILE_SIZE")
		[ "$LOCKS" = 0 ] || DCMD+=(--locks)
		[ "$LOCKS" != nointr ] || DCMD+=(--ignore-interrupts)
		[ "$TMPFILE" = 0 ] || DCMD+=(--tmpfile)
		for s in "${INJECT[@]}"; do DCMD+=(--inject "$s"); done ;;
	esac
}

# The host's TSC frequency in kHz, from its kernel log (or, without
# frequency scaling, /proc/cpuinfo); empty when unknown.
tsc_khz() {
	local mhz
	mhz=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p; s/.*tsc: Detected \([0-9.]*\) MHz processor.*/\1/p' | tail -n 1 || true)
	if [ -z "$mhz" ] && [ ! -d /sys/devices/system/cpu/cpufreq/policy0 ] && grep -q -w constant_tsc /proc/cpuinfo; then
		mhz=$(awk -F: '/^cpu MHz/ { print $2 + 0; exit }' /proc/cpuinfo)
	fi
	[ -z "$mhz" ] || awk -v m="$mhz" 'BEGIN { printf "%d", m * 1000 }'
}
TSC_KHZ=$(tsc_khz || true)
# qemu_cmd: the QEMU command line into QCMD (paths as QEMU sees them).
qemu_cmd() {
	local machine serial fsdev cmdline i
	# pty.legacy_count=0: no BSD ptys (nothing uses them; registering 256
	# takes seconds on the debug kernel under TCG).
	cmdline="console=ttyS0 panic=-1 loglevel=7 pty.legacy_count=0 vfsrs.driver=$DRIVER vfsrs.plans=$PLAN_LIST"
	cmdline+=" vfsrs.tag=$TAG vfsrs.cycles=$CYCLES vfsrs.cache=$CACHE_BYTES vfsrs.transport=$TRANSPORT"
	[ -z "$OPTS" ] || cmdline+=" vfsrs.opts=$OPTS"
	[ -z "$APPEND" ] || cmdline+=" $APPEND"
	case "$TRANSPORT" in
	pci) machine=q35 serial=virtio-serial-pci ;;
	# Without a PIT the TSC cannot be calibrated under TCG and boot may
	# stall; microvm leaves the PIT out unless asked.
	mmio) machine=microvm,pit=on,pic=on,rtc=on serial=virtio-serial-device
		# Nor can it be calibrated against the PIT when the host is busy
		# (the guest then hangs early in boot): give the guest the TSC
		# frequency it would measure, the host's (TCG passes it through).
		[ -z "$TSC_KHZ" ] || cmdline+=" tsc_early_khz=$TSC_KHZ" ;;
	esac
	case "$HOST/$TRANSPORT" in
	virtiofsd/pci) fsdev="vhost-user-fs-pci,tag=$TAG" ;;
	virtiofsd/mmio) fsdev="vhost-user-fs-device,tag=$TAG" ;;
	dax/pci) fsdev="vhost-user-test-device-pci,virtio-id=26,num_vqs=2,config_size=40" ;;
	dax/mmio) fsdev="vhost-user-test-device,virtio-id=26,num_vqs=2,config_size=40" ;;
	esac
	[ -z "$VQ_SIZE" ] || fsdev+=",vq_size=$VQ_SIZE"
	QCMD=(qemu-system-x86_64 -M "$machine,memory-backend=mem" -accel tcg -smp 2 -m "$MEM"
		-nodefaults -no-user-config -display none -no-reboot
		-object "memory-backend-memfd,id=mem,size=$MEM,share=on")
	for i in $(seq 0 $((DEVICES - 1))); do
		QCMD+=(-chardev "socket,id=vfs$i,path=$QSOCKDIR/vfs.$i.sock" -device "$fsdev,chardev=vfs$i")
	done
	# The logs go to files the runner opened outside the chroot (fd 10:
	# kernel console, 11: TAP channel); the runner answers on hvc1.
	QCMD+=(-add-fd fd=10,set=10 -add-fd fd=11,set=11
		-serial file:/dev/fdset/10
		-chardev file,id=tap,path=/dev/fdset/11
		-chardev "pipe,id=ctl,path=$QSOCKDIR/ctl"
		-device "$serial" -device virtconsole,chardev=tap -device virtconsole,chardev=ctl
		-kernel "$QKERNEL" -initrd "$QINITRD" -append "$cmdline")
}

if [ "$PRINT" = 1 ]; then
	SOCKDIR='$SOCK_DIR' QSOCKDIR='$SOCK_DIR' SHARED='$SHARED_DIR' QKERNEL='$KERNEL' QINITRD='$INITRD'
	VIRTIOFSD=virtiofsd DAXD=vhost-user-fs-dax
	echo "# scripts/run-guest.sh --driver $DRIVER --host $HOST --transport $TRANSPORT --plan $PLAN_LIST"
	echo "# SOCK_DIR: a directory for the vhost-user sockets (QEMU connects, the daemon listens)"
	echo "# SHARED_DIR: the host directory the guest mounts by tag $TAG"
	echo "# KERNEL, INITRD: the guest kernel and initramfs (scripts/kernel.sh, scripts/initramfs.sh)"
	case "$HOST" in
	virtiofsd) echo "# virtiofsd $VIRTIOFSD_VERSION (scripts/setup.sh: cargo install virtiofsd)" ;;
	dax) echo "# vhost-user-fs-dax: the DAX test host (scripts/build-dax-host.sh prints its path)" ;;
	esac
	for i in $(seq 0 $((DEVICES - 1))); do
		daemon_cmd "$i"
		echo "$(print_words "${DCMD[@]}") &"
	done
	echo "# QEMU >= $QEMU_MIN_VERSION (scripts/setup.sh: in the chroot $QEMU_CHROOT)."
	echo "# fd 10 and 11: files for the kernel console and the TAP channel; ctl.in/ctl.out: FIFOs"
	echo "# (mkfifo) for the runner's answers. In your own VM: -serial stdio instead."
	qemu_cmd
	echo "$(print_words "${QCMD[@]}") 10>console.log 11>tap.log"
	exit 0
fi

[ -f "$QEMU_CHROOT/.vfsrs-ready" ] || die "QEMU chroot missing or incomplete at $QEMU_CHROOT (run scripts/setup.sh)"
QEMU_CHROOT=$(readlink -f "$QEMU_CHROOT")
if [ -n "$B" ]; then
	[ -f "$B/.vfsrs-built" ] || die "--build-dir $B is not a finished kernel build"
	# scripts/test.sh said once that the builds are up to date.
	export VFSRS_LOG_REUSE=0
else
	B=$("$VFSRS_ROOT/scripts/kernel.sh" "$FLAVOR")
fi
IMG=$("$VFSRS_ROOT/scripts/initramfs.sh" "$B")
TESTS=$("$VFSRS_ROOT/scripts/initramfs.sh" --tests-dir "$B")
BUILD_ID=$( (echo "$FLAVOR"; cat "$B/.vfsrs-built") | sha256sum | cut -c1-12)
case "$HOST" in
virtiofsd)
	[ -x "$VIRTIOFSD" ] || die "virtiofsd not found at $VIRTIOFSD (run scripts/setup.sh)" ;;
dax)
	DAXD=$("$VFSRS_ROOT/scripts/build-dax-host.sh") ;;
esac

OUT=${OUT:-$VFSRS_RUNS/$(date +%Y%m%d-%H%M%S)-$DRIVER-$HOST-$TRANSPORT-${PLAN_LIST//,/+}}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT/shared" "$OUT/boot"
for p in "${PLANS[@]}"; do rm -rf "${OUT:?}/$p"; mkdir -p "$OUT/$p"; done
SHARED=$OUT/shared
mkdir -p "$SHARED"
mkdir -p "$QEMU_CHROOT/tmp"
RUN=$(mktemp -d "$QEMU_CHROOT/tmp/vfsrs-run.XXXXXX")
SOCKDIR=$RUN QSOCKDIR=/tmp/$(basename "$RUN") QKERNEL=/tmp/$(basename "$RUN")/bzImage
QINITRD=/tmp/$(basename "$RUN")/initrd.gz
DAEMON_PIDS=() QEMU_PID= CTLFD= CUR= FINISHED=0

stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local p
	stop_pid "$QEMU_PID"
	for p in "${DAEMON_PIDS[@]}"; do stop_pid "$p"; done
	QEMU_PID= DAEMON_PIDS=()
	[ -z "$CTLFD" ] || exec {CTLFD}>&-
	rm -rf "$RUN"
	[ "$FINISHED" = 1 ] || log "$LABEL: stopped early; logs and shared directories stay in $OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_daemon I: daemon I serves socket vfs.I.sock (I = 0 .. DEVICES-1).
start_daemon() {
	local i=$1 sock=$RUN/vfs.$1.sock log=$OUT/host.log n pid
	[ "$i" = 0 ] || log=$OUT/host.$i.log
	SOCKDIR= daemon_cmd "$i"
	if [ ${#HOST_MOUNTS[@]} -gt 0 ]; then
		# The daemon gets a mount namespace of its own with a tmpfs at
		# each host-mount directory: the mounts end with it, whatever
		# way the run ends, and nothing else on the host sees them.
		DCMD=(unshare --mount --propagation private -- bash -c '
			set -e
			n=$1 shared=$2
			shift 2
			for ((k = 0; k < n; k++)); do
				mkdir -p "$shared/$1"
				mount -t tmpfs -o size=16m,mode=0755 vfsrs-host-mount "$shared/$1"
				shift
			done
			exec "$@"' host-mount "${#HOST_MOUNTS[@]}" "$SHARED" "${HOST_MOUNTS[@]}" "${DCMD[@]}")
	fi
	(cd "$RUN" && exec "${DCMD[@]}") >"$log" 2>&1 &
	pid=$!
	DAEMON_PIDS+=("$pid")
	for n in $(seq 100); do
		[ -S "$sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || die "$HOST exited at start, see $log"
		sleep 0.1
	done
	die "$HOST did not create $sock within 10 s, see $log"
}

start_qemu() {
	qemu_cmd
	cp "$B/arch/x86/boot/bzImage" "$RUN/bzImage"
	cp "$IMG" "$RUN/initrd.gz"
	mkfifo "$RUN/ctl.in" "$RUN/ctl.out"
	: >"$OUT/console.log"
	: >"$OUT/tap.log"
	# VFSRS_FAKE_GUEST (tests/runner only): a script that plays the guest.
	local fake=()
	[ -z "${VFSRS_FAKE_GUEST:-}" ] || fake=(env "VFSRS_SHARED=$SHARED" "$VFSRS_FAKE_GUEST")
	"${fake[@]}" chroot "$QEMU_CHROOT" "${QCMD[@]}" \
		10>"$OUT/console.log" 11>"$OUT/tap.log" >"$OUT/qemu.log" 2>&1 &
	QEMU_PID=$!
	# Read-write, so opening the FIFO does not wait for QEMU.
	exec {CTLFD}<>"$RUN/ctl.in"
}

# The host side of a plan's shared directory: what the guest must find,
# plus what the plan's own .prepare script adds.
prepare_plan() {
	local p=$1 prep=$PLANS_DIR/$1.prepare
	mkdir -p "$SHARED/host/subdir" "$SHARED/agent"
	printf 'hello from the host\n' >"$SHARED/host/hello.txt"
	"$TESTS/host/vfs_pattern" $((1024 * 1024 + 17)) 2 >"$SHARED/host/data.bin"
	if [ -x "$prep" ]; then
		VFS_PATTERN="$TESTS/host/vfs_pattern" "$prep" "$SHARED" >>"$OUT/$p/prepare.log" 2>&1 ||
			die "$p.prepare failed, see $OUT/$p/prepare.log"
	fi
}

host_log_size() { stat -c %s "$OUT/host.log" 2>/dev/null || echo 0; }

declare -A PLAN_T0=() LOG_FROM=() LOG_TO=() STARTED=()
# start_plan P: the guest announced P; prepare its directory and let it go.
start_plan() {
	local p=$1 last key=plan-$DRIVER-$HOST-$TRANSPORT-$1
	[ -n "${PLAN_TIMEOUT[$p]:-}" ] || { log "$LABEL: the guest announced unknown plan $p"; return; }
	[ -z "$CUR" ] || end_plan "$CUR"
	prepare_plan "$p"
	CUR=$p STARTED[$p]=1 PLAN_T0[$p]=$SECONDS LOG_FROM[$p]=$(host_log_size)
	step_begin "$key" "$LABEL: plan $p (timeout ${PLAN_TIMEOUT[$p]}s)"
	printf 'go %s\n' "$p" >&"$CTLFD"
}

# end_plan P: P is over (or the guest stopped in it): keep its directory.
end_plan() {
	local p=$1 f
	[ "$CUR" = "$p" ] || return 0
	LOG_TO[$p]=$(host_log_size)
	mkdir -p "$OUT/$p/shared"
	for f in "$SHARED"/* "$SHARED"/.[!.]*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		mv "$f" "$OUT/$p/shared/" || die "cannot move $f to $OUT/$p/shared"
	done
	step_end "plan-$DRIVER-$HOST-$TRANSPORT-$p" "$LABEL: plan $p finished"
	CUR=
}

# The host agent: a guest test creates agent/NAME in the shared directory;
# the plan's .hostagent script acts on it on the host, then agent/NAME.done
# appears. This is how a test asks for a host-side change mid-run.
host_agent_poll() {
	local agent=$PLANS_DIR/$CUR.hostagent f
	[ -n "$CUR" ] && [ -x "$agent" ] || return 0
	for f in "$SHARED"/agent/*; do
		[ -f "$f" ] || continue
		case "$f" in *.done) continue ;; esac
		[ -e "$f.done" ] && continue
		VFS_PATTERN="$TESTS/host/vfs_pattern" "$agent" "$SHARED" "$(basename "$f")" \
			>>"$OUT/$CUR/hostagent.log" 2>&1 || true
		touch "$f.done"
	done
}

# Names the suite and test running in the current plan when the guest
# stopped answering.
hung_test() {
	local part suite test started ended
	part=$(tr -d '\r' <"$OUT/tap.log" |
		awk -v p="# plan: $CUR" '$0 == p { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }')
	suite=$(printf '%s' "$part" | sed -n 's/^# suite: //p' | tail -n1)
	started=$(printf '%s' "$part" | grep -c '^# suite: ' || true)
	ended=$(printf '%s' "$part" | grep -c '^# exit: ' || true)
	[ "$started" -gt 0 ] && [ "$started" = "$ended" ] && suite="(between suites)"
	test=$(printf '%s' "$part" | sed -n 's/^#  RUN  *\([^ ]*\).*/\1/p' | tail -n1)
	echo "suite ${suite:-(none)}, last started test ${test:-(none)}"
}

stop_guest() {
	TIMED_OUT=$1 TIMEOUT_PLAN=$CUR
	log "$LABEL: $TIMED_OUT"
	stop_pid "$QEMU_PID"
}

wait_guest() {
	local start=$SECONDS idle_t0=$SECONDS size=-1 s seen=0 marks m i booted=0
	while kill -0 "$QEMU_PID" 2>/dev/null; do
		s=$(stat -c %s "$OUT/tap.log" || echo 0)
		if [ "$s" != "$size" ]; then
			if [ "$booted" = 0 ] && [ "$s" -gt 0 ]; then
				booted=1
				log "$LABEL: booted in $(fmt_secs $((SECONDS - start)))"
			fi
			size=$s idle_t0=$SECONDS
		fi
		mapfile -t marks < <(grep -E '^# (plan|plan-end): ' "$OUT/tap.log" | tr -d '\r' || true)
		for ((i = seen; i < ${#marks[@]}; i++)); do
			m=${marks[$i]}
			case "$m" in
			"# plan: "*) start_plan "${m#\# plan: }" ;;
			"# plan-end: "*) end_plan "${m#\# plan-end: }" ;;
			esac
		done
		seen=${#marks[@]}
		if [ -n "$CUR" ]; then
			host_agent_poll
			if [ $((SECONDS - ${PLAN_T0[$CUR]})) -ge "${PLAN_TIMEOUT[$CUR]}" ]; then
				stop_guest "timeout after ${PLAN_TIMEOUT[$CUR]}s in plan $CUR, $(hung_test)"
				break
			fi
		elif [ $((SECONDS - idle_t0)) -ge "$IDLE_TIMEOUT" ]; then
			if [ "$seen" = 0 ]; then
				stop_guest "the guest did not reach its first plan within ${IDLE_TIMEOUT}s (see console.log)"
			else
				stop_guest "no progress for ${IDLE_TIMEOUT}s outside a plan (see console.log)"
			fi
			break
		fi
		sleep 0.5 || true
	done
	wait "$QEMU_PID" 2>/dev/null || true
	QEMU_PID=
	GUEST_SECONDS=$((SECONDS - start))
	[ -z "$CUR" ] || end_plan "$CUR"
}

# Host-side checks of what the guest left in a plan's shared directory,
# with the plan's part of the host's log.
host_check() {
	local p=$1 hc=$PLANS_DIR/$1.hostcheck rc=0
	[ -n "${STARTED[$p]:-}" ] || return 0
	if [ -n "${LOG_TO[$p]:-}" ] && [ -f "$OUT/host.log" ]; then
		{ tail -c +$((${LOG_FROM[$p]} + 1)) "$OUT/host.log" |
			head -c $((${LOG_TO[$p]} - ${LOG_FROM[$p]})) || true; } >"$OUT/$p/host.log"
	fi
	[ -x "$hc" ] || return 0
	{
		echo "# hostcheck: $p.hostcheck"
		VFS_PATTERN="$TESTS/host/vfs_pattern" VFS_HOST_LOG="$OUT/$p/host.log" \
			"$hc" "$OUT/$p/shared" 2>&1 || rc=$?
		echo "# hostcheck-status: $rc"
	} >"$OUT/$p/hostcheck.tap"
}

TIMED_OUT= TIMEOUT_PLAN=
for i in $(seq 0 $((DEVICES - 1))); do start_daemon "$i"; done
start_qemu
step_begin "guest-$DRIVER-$HOST-$TRANSPORT-${PLAN_LIST//,/+}" \
	"$LABEL: guest running plans ${PLAN_LIST//,/, } (live logs: $OUT/tap.log, console.log)"
wait_guest
step_end "guest-$DRIVER-$HOST-$TRANSPORT-${PLAN_LIST//,/+}" "$LABEL: guest finished"
for p in "${DAEMON_PIDS[@]}"; do stop_pid "$p"; done
DAEMON_PIDS=()
for p in "${PLANS[@]}"; do host_check "$p"; done

rc=0
plan_label_args=()
for l in "${PLAN_LABELS[@]}"; do plan_label_args+=(--plan-label "$l"); done
checked=$(for p in "${PLANS[@]}"; do [ ! -x "$PLANS_DIR/$p.hostcheck" ] || echo "$p"; done | paste -sd,)
"$VFSRS_ROOT/scripts/tap-report.py" guest --label "$LABEL" --driver "$DRIVER" --plans "$PLAN_LIST" \
	"${plan_label_args[@]}" --expect "$VFSRS_ROOT/tests/expect/$DRIVER.xfail" --hostchecks "$checked" \
	--tap "$OUT/tap.log" --console "$OUT/console.log" --outdir "$OUT" \
	--timeout "$TIMED_OUT" --timeout-plan "$TIMEOUT_PLAN" --seconds "$GUEST_SECONDS" \
	--build-id "$BUILD_ID" --project-root "$VFSRS_ROOT" || rc=$?

# Evidence: a plan with a failure keeps its shared directory.
for p in "${PLANS[@]}"; do
	[ -d "$OUT/$p/shared" ] || continue
	read -r _ failed _ <"$OUT/$p/summary" 2>/dev/null || failed=1
	if [ "$failed" != 0 ] || [ "$KEEP" = 1 ]; then
		[ "$failed" = 0 ] || log "$LABEL: plan $p failed; what the guest left is in $OUT/$p/shared"
	else
		rm -rf "${OUT:?}/$p/shared"
	fi
done
rmdir "$SHARED" 2>/dev/null || true
FINISHED=1
exit "$rc"
