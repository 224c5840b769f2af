#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make run`: build what is missing, boot a guest, load kvm_guest_rs, print
# what it detected, unload it, power off.  FLAVOUR, ACCEL, QEMU, STOCK,
# PARAMS (module parameters) and CMDLINE (extra kernel command line; default
# no-kvmclock, so that the in-tree kvm-clock stays off and kvm-clock-rs takes
# over; CMDLINE= boots with the in-tree driver) come from the environment.  Under TCG the guest
# runs on QEMU with the project's KVM PV host model (-cpu max,x-tcg-kvm-pv=on)
# unless QEMU names another binary or STOCK=1 asks for the distribution's.
set -euo pipefail
KGR_TAG=run
. "$(dirname "$0")/../lib/lib.sh"
kgr_load_env
FLAVOUR=${FLAVOUR:-default}

kgr_step "kernel ($FLAVOUR flavour)"
KOUT=$("$KGR_REPO/tools/kernel/kernel-build.sh" "$FLAVOUR" | tail -n1)
kgr_step "module"
KO=$("$KGR_REPO/tools/kernel/module-build.sh" "$KOUT" | tail -n1)
kgr_step "initramfs"
INITRD="$KGR_CACHE/run/initramfs.cpio.gz"
mkdir -p "$KGR_CACHE/run"
"$KGR_REPO/tools/runner/mkinitramfs" "$INITRD" "$(kgr_kernel_src)" "$KO"
QEMU_ARGS=()
if [ "${ACCEL:-tcg}" = tcg ] && [ -z "${QEMU:-}" ] && [ "${STOCK:-0}" != 1 ]; then
	kgr_step "QEMU with the KVM PV host model"
	QEMU_ARGS=(--qemu "$("$KGR_REPO/tools/qemu/qemu-build.sh" | tail -n1)" --cpu max,x-tcg-kvm-pv=on)
fi
kgr_step "booting (accel ${ACCEL:-tcg}; console log $KGR_CACHE/run/console.log)"
rc=0
"$KGR_REPO/tools/runner/run-guest" "${QEMU_ARGS[@]}" --kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$INITRD" --plan demo \
	--append "${PARAMS:+kgr.params=${PARAMS// /,}} ${CMDLINE-no-kvmclock}" --log "$KGR_CACHE/run/console.log" \
	--ktap "$KGR_CACHE/run/output.txt" --timeout 300 || rc=$?
sed 's/^/  guest| /' "$KGR_CACHE/run/output.txt" 2>/dev/null || true
[ $rc -eq 0 ] || kgr_die "guest run failed (exit $rc); console log: $KGR_CACHE/run/console.log"
kgr_step "done"
