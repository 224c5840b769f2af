#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# module-build.sh KOUT: build samples/kvm_guest_rs out of tree against the
# kernel build KOUT, with CLIPPY=1 when clippy is available.  Objects go to
# $KGR_CACHE/module/<kernel build name> (kbuild MO=), not into the work tree.
# Prints the path of kvm_guest_rs.ko as the last stdout line.
set -euo pipefail
KGR_TAG=module
. "$(dirname "$0")/../lib/lib.sh"
kgr_load_env
KOUT=$1
[ -f "$KOUT/.config" ] || kgr_die "$KOUT is not a configured kernel build: run 'make kernel' first"
MO="$KGR_CACHE/module/$(basename "$KOUT")"
mkdir -p "$MO"
mapfile -t KARGS < <(kgr_kbuild_args)
[ -n "$CLIPPY_DRIVER" ] && KARGS+=(CLIPPY=1)
export LIBCLANG_PATH
make -s -C "$KOUT" M="$KGR_REPO/samples/kvm_guest_rs" MO="$MO" "${KARGS[@]}" -j"$(nproc)" modules >&2
[ -f "$MO/kvm_guest_rs.ko" ] || kgr_die "no kvm_guest_rs.ko in $MO"
printf '%s\n' "$MO/kvm_guest_rs.ko"
