#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Teardown at reboot and kexec, with kvm_guest_rs loaded and kvm-clock-rs
# registered on every CPU (and, booted with kvm-pv-ext, the module's steal-time
# records too).
#
# kgr.teardown=reboot: check the registrations and end with the module still
# loaded; the runner's /init then reboots, and run-guest --state-at-reset
# keeps the host model's state at that reset for the host side to check.
#
# Otherwise (kexec): kexec into a fresh kernel; the new kernel (booted with nopv, so
# it writes no PV MSR itself) checks that the host model holds every PV MSR
# at 0 on every vCPU and writes no guest memory any more.  Without the
# module's reboot notifier the host would keep writing the old kernel's
# records into memory the new kernel owns (the class of CVE-2021-47110).
#
# Needs the initramfs made with KGR_KEXEC_KERNEL/KGR_KEXEC_INITRD
# (tools/runner/mkinitramfs), run-guest --hostctl, the host model and
# no-kvmclock.  Stage 1 (this kernel) passes what it saw to stage 2 on the
# command line (kgr.stage=kexec kgr.before=...); stage 2 prints the KTAP.
. /kgr/selftests/kselftest/ktap_helpers.sh
. /kgr/selftests/kvm_guest_rs/feature_lib.sh
PV_MSRS="0x4b564d01 0x4b564d00 0x12 0x11 0x4b564d02 0x4b564d03 0x4b564d04"
WRITES="x-kvm-pv-pvclock-writes x-kvm-pv-steal-updates x-kvm-pv-pv-eoi-armed x-kvm-pv-apf-injected"
stage=$(kgr_arg stage)
stage=${stage:-load}
before=$(kgr_arg before)
mode=$(kgr_arg teardown)
mode=${mode:-kexec}

# registered: kvm-clock-rs has a record registered on every CPU, and so have
# the module's steal time, PV EOI and async PF when booted with kvm-pv-ext.
registered() {
	kgr_msr_set_on_every_cpu 0x4b564d01 || return 1
	! grep -qw kvm-pv-ext /proc/cmdline || { kgr_msr_set_on_every_cpu 0x4b564d03 && kgr_msr_set_on_every_cpu 0x4b564d04 &&
		kgr_msr_set_on_every_cpu 0x4b564d02; }
}

if [ "$mode" = reboot ]; then
	ktap_print_header
	ktap_set_plan 1
	kgr_result '"$ST/modload" $MOD >/dev/null && [ "$(cat $CS/current_clocksource)" = kvm-clock-rs ] && registered' \
		"before reboot: module loaded, kvm-clock-rs current, a record on every CPU (left loaded)"
	ktap_finished
fi

if [ "$stage" = load ]; then
	ktap_print_header
	if ! "$ST/kvm_detect" >/dev/null || ! grep -qw no-kvmclock /proc/cmdline || [ ! -f /kgr/boot/bzImage ]; then
		ktap_skip_all "needs the host model, no-kvmclock and an initramfs with kexec"
		exit 4
	fi
	ok=1
	"$ST/modload" $MOD >/dev/null || ok=0
	[ "$(cat $CS/current_clocksource)" = kvm-clock-rs ] || ok=0
	registered || ok=0
	ktap_print_msg "module loaded and registered on every CPU: $ok; kexec now"
	cmd=""
	for arg in $(cat /proc/cmdline); do
		case "$arg" in kgr.stage=* | kgr.before=*) ;; *) cmd="$cmd $arg" ;; esac
	done
	if ! kexec -l /kgr/boot/bzImage --initrd=/kgr/boot/initrd \
		--command-line="${cmd# } nopv kgr.stage=kexec kgr.before=$ok"; then
		echo "Bail out! kexec -l failed"
		exit 2
	fi
	kexec -e
	echo "Bail out! kexec -e returned"
	exit 2
fi

ktap_print_header
ktap_set_plan 4
kgr_result '[ "$before" = 1 ]' "before kexec: module loaded, kvm-clock-rs current, a record on every CPU"
# The model's view, before this kernel wrote any PV MSR (nopv).
hostq hmp info kvm-pv >/tmp/kvm-pv.out 2>&1
grep -E 'msr|CPU' /tmp/kvm-pv.out | while read -r l; do ktap_print_msg "$l"; done
# The MSRs that point the host at guest memory (not async_pf_int, a vector).
set_msrs=$(grep -oE '(system_time|wall_clock|steal_time|pv_eoi_en|async_pf_en) 0x[0-9a-f]+' /tmp/kvm-pv.out)
kgr_result '[ "$(grep -c "^CPU #" /tmp/kvm-pv.out)" = "$(nproc)" ] && [ "$(echo "$set_msrs" | grep -c .)" = $((5 * $(nproc))) ] && ! echo "$set_msrs" | grep -qv " 0x0$"' \
	"after kexec: the host model holds every PV MSR at 0 on every vCPU"
"$ST/msr_read" $PV_MSRS >/tmp/msr.out 2>&1
rc=$?
kgr_result '[ $rc = 0 ]' "after kexec: every PV MSR reads 0 (or #GP) on every CPU"
w0=$(hostq cpu-sum $WRITES | tr '\n' ' ')
sleep 2
w1=$(hostq cpu-sum $WRITES | tr '\n' ' ')
ktap_print_msg "host writes: $w0 -> $w1"
kgr_result '[ -n "$w0" ] && [ "$w0" = "$w1" ]' "after kexec: the host model writes no guest memory (2 s)"
ktap_finished
