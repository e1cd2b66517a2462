#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The main job: set everything up, boot a QEMU guest, mount a host
# directory over virtio-fs and show it working, then show the host's side.
#
# usage: scripts/demo.sh [--driver c|rust] [--host virtiofsd|dax] [--transport pci|mmio]
#   defaults: the C driver with virtiofsd over virtio-pci (the Rust driver
#   cannot mount yet, see README.md)
. "$(dirname "$0")/lib.sh"

"$VFSRS_ROOT/scripts/setup.sh"
OUT=$VFSRS_CACHE/runs/demo-$(date +%Y%m%d-%H%M%S)
rc=0
"$VFSRS_ROOT/scripts/run-guest.sh" --plan demo --out "$OUT" --label demo "$@" >"$OUT.tap" || rc=$?
echo "== what the guest did (TAP from the guest, $OUT/tap.log) =="
grep -v '^# \(suite\|exit\|done\)' "$OUT/tap.log" || true
echo "== verdict =="
grep -E '^(not ok|#   host|demo:)' "$OUT.tap" || true
exit $rc
