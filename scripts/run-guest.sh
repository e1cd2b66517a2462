#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Boot one QEMU guest against one virtio-fs host, run a test plan inside it
# and report TAP.
#
# usage: scripts/run-guest.sh [--driver c|rust] [--host virtiofsd|dax]
#          [--transport pci|mmio] [--plan NAME] [--opts MOUNT_OPTS]
#          [--cycles N] [--timeout SECONDS] [--flavor test|bench]
#          [--cache-size SIZE] [--inject SPEC]... [--out DIR] [--label TEXT]
#
# It builds the kernel and initramfs if needed, prepares a temporary shared
# directory, starts the host daemon and QEMU (TCG, from the trixie chroot),
# waits for the guest to power off (or kills it after --timeout and names
# the test that hung), stops everything it started, runs the plan's host
# checks, scans the guest log for kernel splats, and prints one TAP stream.
# Results matching tests/expect/<driver>.xfail are expected failures.
#
# Exit status: 0 if nothing failed, 1 otherwise. The last line reads
# "<label>: N passed, N failed, N xfail, N skipped" and $OUT/summary holds
# "passed failed xfail skipped".
. "$(dirname "$0")/lib.sh"

DRIVER=c HOST=virtiofsd TRANSPORT=pci PLAN=basic OPTS= CYCLES=1 TIMEOUT=600
FLAVOR=test CACHE_SIZE=64M OUT= LABEL= TAG=vfsrs MEM=1G
# TIMEOUT: a guest that has not started its first suite by then is stuck.
BOOT_TIMEOUT=150
INJECT=()
usage() { sed -n 's/^# usage: //p; s/^#          /  /p' "$0" | head -5 >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--driver) DRIVER=$2; shift ;;
	--host) HOST=$2; shift ;;
	--transport) TRANSPORT=$2; shift ;;
	--plan) PLAN=$2; shift ;;
	--opts) OPTS=$2; shift ;;
	--cycles) CYCLES=$2; shift ;;
	--timeout) TIMEOUT=$2; shift ;;
	--flavor) FLAVOR=$2; shift ;;
	--cache-size) CACHE_SIZE=$2; shift ;;
	--inject) INJECT+=("$2"); shift ;;
	--out) OUT=$2; shift ;;
	--label) LABEL=$2; shift ;;
	-h|--help) usage ;;
	*) echo "unknown argument: $1" >&2; usage ;;
	esac
	shift
done
case "$DRIVER" in c|rust) ;; *) die "--driver must be c or rust" ;; esac
case "$HOST" in virtiofsd|dax) ;; *) die "--host must be virtiofsd or dax" ;; esac
case "$TRANSPORT" in pci|mmio) ;; *) die "--transport must be pci or mmio" ;; esac
[ -f "$VFSRS_ROOT/tests/guest/plans/$PLAN.plan" ] || die "no plan tests/guest/plans/$PLAN.plan"
[[ "$CYCLES" =~ ^[0-9]+$ && "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--cycles and --timeout take numbers"
LABEL=${LABEL:-$DRIVER/$HOST/$TRANSPORT/$PLAN}
PLANFILE=$VFSRS_ROOT/tests/guest/plans/$PLAN.plan

# Plan directives for the host side: "opts", "inject", "cache-size",
# "devices", "vq-size".
# Command-line options win over the plan's.
plan_value() { sed -n "s/^$1[[:space:]]\{1,\}//p" "$PLANFILE"; }
[ -n "$OPTS" ] || OPTS=$(plan_value opts | tail -n1)
if [ ${#INJECT[@]} -eq 0 ]; then
	while read -r s; do [ -n "$s" ] && INJECT+=("$s"); done < <(plan_value inject)
fi
[ -z "$(plan_value cache-size)" ] || CACHE_SIZE=$(plan_value cache-size | tail -n1)
# "devices N": N virtio-fs devices, each with its own daemon, all with the
# same tag (the driver must bind one and refuse the others).
DEVICES=$(plan_value devices | tail -n1)
DEVICES=${DEVICES:-1}
# "vq-size N": ring size of the DAX host's virtqueues (QEMU's default else).
VQ_SIZE=$(plan_value vq-size | tail -n1)
[ -z "$VQ_SIZE" ] || [[ "$VQ_SIZE" =~ ^[0-9]+$ ]] || die "plan vq-size must be a number"
[[ "$DEVICES" =~ ^[1-4]$ ]] || die "plan devices must be 1..4"
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
CACHE_BYTES=$(to_bytes "$CACHE_SIZE")
[ -f "$QEMU_CHROOT/.vfsrs-ready" ] || die "QEMU chroot missing or incomplete at $QEMU_CHROOT (run scripts/setup.sh)"

B=$("$VFSRS_ROOT/scripts/kernel.sh" "$FLAVOR")
IMG=$("$VFSRS_ROOT/scripts/initramfs.sh" "$B")
TESTS=$(readlink -f "$VFSRS_CACHE/initramfs/tests-current")

case "$HOST" in
virtiofsd)
	[ -x "$VIRTIOFSD" ] || die "virtiofsd not found at $VIRTIOFSD (run scripts/setup.sh)" ;;
dax)
	DAXD=$("$VFSRS_ROOT/scripts/build-dax-host.sh") ;;
esac

OUT=${OUT:-$VFSRS_CACHE/runs/$(date +%Y%m%d-%H%M%S)-$DRIVER-$HOST-$TRANSPORT-$PLAN}
mkdir -p "$OUT"
RUN=$(mktemp -d "$QEMU_CHROOT/tmp/vfsrs-run.XXXXXX")
RUNC=/tmp/$(basename "$RUN")
SHARED=$(mktemp -d /tmp/vfsrs-shared.XXXXXX)
DAEMON_PIDS=() QEMU_PID=

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
	rm -rf "$RUN" "$SHARED"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The host side of the shared directory: what the guest must find, plus
# what the plan's own .prepare script adds.
prepare_shared() {
	local prep=$VFSRS_ROOT/tests/guest/plans/$PLAN.prepare
	mkdir -p "$SHARED/host/subdir" "$SHARED/agent"
	printf 'hello from the host\n' >"$SHARED/host/hello.txt"
	"$TESTS/host/vfs_pattern" $((1024 * 1024 + 17)) 2 >"$SHARED/host/data.bin"
	if [ -x "$prep" ]; then
		VFS_PATTERN="$TESTS/host/vfs_pattern" "$prep" "$SHARED" ||
			die "$PLAN.prepare failed"
	fi
}

# The host agent: a guest test creates agent/NAME in the shared directory;
# the plan's .hostagent script acts on it on the host, then agent/NAME.done
# appears. This is how a test asks for a host-side change mid-run.
host_agent_poll() {
	local agent=$VFSRS_ROOT/tests/guest/plans/$PLAN.hostagent f
	[ -x "$agent" ] || return 0
	for f in "$SHARED"/agent/*; do
		[ -f "$f" ] || continue
		case "$f" in *.done) continue ;; esac
		[ -e "$f.done" ] && continue
		VFS_PATTERN="$TESTS/host/vfs_pattern" "$agent" "$SHARED" "$(basename "$f")" \
			>>"$OUT/hostagent.log" 2>&1 || true
		touch "$f.done"
	done
}

# start_daemon I: daemon I serves socket vfs.I.sock (I = 0 .. DEVICES-1).
start_daemon() {
	local i=$1 sock=$RUN/vfs.$1.sock log=$OUT/host.log n pid
	[ "$i" = 0 ] || log=$OUT/host.$i.log
	case "$HOST" in
	virtiofsd)
		"$VIRTIOFSD" --socket-path="$sock" --shared-dir="$SHARED" --tag="$TAG" \
			--cache=auto --sandbox=none --log-level=info >"$log" 2>&1 &
		;;
	dax)
		local inj=() s
		for s in "${INJECT[@]}"; do inj+=(--inject "$s"); done
		"$DAXD" --socket "$sock" --shared-dir "$SHARED" --tag "$TAG" \
			--cache-size "$CACHE_SIZE" "${inj[@]}" >"$log" 2>&1 &
		;;
	esac
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
	local machine serial fsdev cmdline
	cmdline="console=ttyS0 panic=-1 loglevel=7 vfsrs.driver=$DRIVER vfsrs.plan=$PLAN"
	cmdline+=" vfsrs.tag=$TAG vfsrs.cycles=$CYCLES vfsrs.cache=$CACHE_BYTES vfsrs.transport=$TRANSPORT"
	[ -n "$OPTS" ] && cmdline+=" vfsrs.opts=$OPTS"
	case "$TRANSPORT" in
	pci) machine=q35 serial=virtio-serial-pci ;;
	# Without a PIT the TSC cannot be calibrated under TCG and boot may
	# stall; microvm leaves the PIT out unless asked.
	mmio) machine=microvm,pit=on,pic=on,rtc=on serial=virtio-serial-device ;;
	esac
	case "$HOST/$TRANSPORT" in
	virtiofsd/pci) fsdev="vhost-user-fs-pci,tag=$TAG" ;;
	virtiofsd/mmio) fsdev="vhost-user-fs-device,tag=$TAG" ;;
	dax/pci) fsdev="vhost-user-test-device-pci,virtio-id=26,num_vqs=2,config_size=40" ;;
	dax/mmio) fsdev="vhost-user-test-device,virtio-id=26,num_vqs=2,config_size=40" ;;
	esac
	if [ -n "$VQ_SIZE" ]; then
		[ "$HOST" = dax ] || die "plan vq-size needs --host dax"
		fsdev+=",vq_size=$VQ_SIZE"
	fi
	local devargs=() i
	for i in $(seq 0 $((DEVICES - 1))); do
		devargs+=(-chardev "socket,id=vfs$i,path=$RUNC/vfs.$i.sock" -device "$fsdev,chardev=vfs$i")
	done
	cp "$B/arch/x86/boot/bzImage" "$RUN/bzImage"
	cp "$IMG" "$RUN/initrd.gz"
	: >"$RUN/console.log"
	: >"$RUN/tap.log"
	chroot "$QEMU_CHROOT" qemu-system-x86_64 \
		-M "$machine,memory-backend=mem" -accel tcg -smp 2 -m "$MEM" \
		-nodefaults -no-user-config -display none -no-reboot \
		-object "memory-backend-memfd,id=mem,size=$MEM,share=on" \
		"${devargs[@]}" \
		-serial "file:$RUNC/console.log" \
		-chardev "file,id=tap,path=$RUNC/tap.log" \
		-device "$serial" -device virtconsole,chardev=tap \
		-kernel "$RUNC/bzImage" -initrd "$RUNC/initrd.gz" -append "$cmdline" \
		>"$OUT/qemu.log" 2>&1 &
	QEMU_PID=$!
}

# Names the suite and test running when the guest stopped answering.
hung_test() {
	local suite test started ended
	suite=$(sed -n 's/^# suite: //p' "$RUN/tap.log" | tail -n1)
	started=$(grep -c '^# suite: ' "$RUN/tap.log" || true)
	ended=$(grep -c '^# exit: ' "$RUN/tap.log" || true)
	[ "$started" -gt 0 ] && [ "$started" = "$ended" ] && suite="(between suites)"
	test=$(sed -n 's/^#  RUN  *\([^ ]*\).*/\1/p' "$RUN/tap.log" | tail -n1)
	echo "suite ${suite:-(none: the guest never started a suite)}, last started test ${test:-(none)}"
}

wait_guest() {
	local start=$SECONDS
	while kill -0 "$QEMU_PID" 2>/dev/null; do
		if [ $((SECONDS - start)) -ge "$BOOT_TIMEOUT" ] && ! grep -q '^# suite:' "$RUN/tap.log"; then
			TIMED_OUT="the guest did not reach /init within ${BOOT_TIMEOUT}s (see console.log)"
			log "$LABEL: $TIMED_OUT"
			stop_pid "$QEMU_PID"
			break
		fi
		if [ $((SECONDS - start)) -ge "$TIMEOUT" ]; then
			TIMED_OUT="timeout after ${TIMEOUT}s in $(hung_test)"
			log "$LABEL: $TIMED_OUT"
			stop_pid "$QEMU_PID"
			break
		fi
		host_agent_poll
		sleep 0.5
	done
	wait "$QEMU_PID" 2>/dev/null || true
	QEMU_PID=
	GUEST_SECONDS=$((SECONDS - start))
}

TIMED_OUT=
prepare_shared
for i in $(seq 0 $((DEVICES - 1))); do start_daemon "$i"; done
start_qemu
log "$LABEL: guest running (timeout ${TIMEOUT}s, logs in $OUT)"
wait_guest
cp "$RUN/console.log" "$RUN/tap.log" "$OUT/"
for p in "${DAEMON_PIDS[@]}"; do stop_pid "$p"; done
DAEMON_PIDS=()

# Host-side checks of what the guest left in the shared directory.
HOSTCHECK=$VFSRS_ROOT/tests/guest/plans/$PLAN.hostcheck
: >"$OUT/hostcheck.tap"
if [ -x "$HOSTCHECK" ] && grep -q '^# done' "$OUT/tap.log"; then
	VFS_PATTERN="$TESTS/host/vfs_pattern" VFS_HOST_LOG="$OUT/host.log" \
		"$HOSTCHECK" "$SHARED" >"$OUT/hostcheck.tap" 2>&1 || true
fi

"$VFSRS_ROOT/scripts/tap-report.py" --label "$LABEL" --driver "$DRIVER" --plan "$PLAN" \
	--expect "$VFSRS_ROOT/tests/expect/$DRIVER.xfail" \
	--tap "$OUT/tap.log" --console "$OUT/console.log" --hostcheck "$OUT/hostcheck.tap" \
	--timeout "$TIMED_OUT" --seconds "$GUEST_SECONDS" --summary "$OUT/summary"
