#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# How scripts/test.sh groups the matrix into boots, and what run-guest.sh
# runs: every matrix row runs once per driver, plans of one boot need the
# same guest (run-guest.sh refuses others; virtiofsd's options count), a
# plan's "virtiofsd" line sets virtiofsd's options (and needs that host),
# and --print-cmd prints the daemon and QEMU command lines for both hosts
# without building anything.
. "$(dirname "$0")/lib.sh"
echo "1..12"
"$ROOT/scripts/test.sh" --list >"$TMP/list"
rows() { sed -n '/^MATRIX=(/,/^)/p' "$ROOT/scripts/test.sh" | grep -c '^[[:space:]]*"'; }
planned() { grep -o -- '--plan [^ ]*' "$TMP/list" | tr ',' '\n' | grep -c .; }
check "every matrix row runs once per driver" same "$(planned)" "$((2 * $(rows)))"
check "both drivers boot" bash -c "grep -q -- '--driver c ' '$TMP/list' && grep -q -- '--driver rust ' '$TMP/list'"
check "plans with other host configurations get their own boot" \
	has "$TMP/list" -- '--host dax --transport pci --plan corrupt-len$'
check "plans that need the same guest share it" has "$TMP/list" -- '--plan basic,cycles(,|$)'
check "run-guest.sh refuses plans that need different guests" \
	bash -c "! '$ROOT/scripts/run-guest.sh' --host dax --plan basic --plan corrupt-len --print-cmd 2>/dev/null"
"$ROOT/scripts/run-guest.sh" --host dax --plan dax-always --print-cmd >"$TMP/dax" 2>&1
"$ROOT/scripts/run-guest.sh" --host virtiofsd --transport mmio --print-cmd >"$TMP/vfsd" 2>&1
check "print-cmd, DAX host: window size, socket, test device" bash -c \
	"grep -q -- '--cache-size 64M' '$TMP/dax' && grep -q 'vhost-user-test-device-pci,virtio-id=26' '$TMP/dax' && grep -q 'path=\$SOCK_DIR/vfs.0.sock' '$TMP/dax'"
check "print-cmd, virtiofsd: tag and shared memory" bash -c \
	"grep -q -- '--tag=vfsrs' '$TMP/vfsd' && grep -q 'vhost-user-fs-device,tag=vfsrs' '$TMP/vfsd' && grep -q 'share=on' '$TMP/vfsd'"
check "print-cmd starts and builds nothing" bash -c "! grep -q -E 'kernel up to date|building' '$TMP/dax' '$TMP/vfsd'"
check "plans with other virtiofsd options get their own boot" bash -c \
	"grep -q -- '--host virtiofsd --transport pci --plan posix-never$' '$TMP/list' && grep -q -- '--plan posix$' '$TMP/list'"
check "run-guest.sh refuses plans with different virtiofsd options in one boot" \
	bash -c "! '$ROOT/scripts/run-guest.sh' --plan posix --plan posix-never --print-cmd 2>/dev/null"
"$ROOT/scripts/run-guest.sh" --plan posix-never --print-cmd >"$TMP/never" 2>&1
"$ROOT/scripts/run-guest.sh" --plan posix --print-cmd >"$TMP/posix" 2>&1
check "print-cmd, virtiofsd directive: replaces --cache, adds options" bash -c \
	"grep -q -- '--cache=never' '$TMP/never' && ! grep -q -- '--cache=auto' '$TMP/never' && grep -q -- '--sandbox=none' '$TMP/never' && grep -q -- '--cache=auto' '$TMP/posix' && grep -q -- '--xattr' '$TMP/posix'"
check "a virtiofsd directive needs the virtiofsd host" \
	bash -c "! '$ROOT/scripts/run-guest.sh' --host dax --plan posix-never --print-cmd 2>/dev/null"
