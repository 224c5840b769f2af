# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the kvm_guest_rs feature tests and the compare plan (after
# ktap_helpers.sh).
#
# It sets the paths the tests share: ST (the selftest programs), MOD (the
# module), CS (the current clocksource's sysfs directory), D (the module's
# debugfs directory).
#
# kgr_arg NAME: the value of kgr.NAME= on the kernel command line (the last
# one), empty if there is none.
# kgr_result COND NAME: one KTAP result, a pass if the shell condition COND
# (evaluated in the caller's variables) holds.
# kgr_knob PROP JSON...: set the host model's property PROP of every vCPU,
# in one host request (needs run-guest --hostctl; more PROP JSON pairs may
# follow); fails if one cannot be set.
# kgr_busy SECONDS: keep every online CPU busy for SECONDS of uptime.
# kgr_steal_ns: the steal column of /proc/stat, all CPUs, in ns.
# kgr_skip_unless_kvm: skip the whole test (exit 4) unless the guest runs on
# KVM or the host model.
# kgr_skip_unless_hostctl: skip the whole test (exit 4) without a host channel
# (run-guest --hostctl).
# kgr_msr_set_on_every_cpu MSR: the MSR reads non-zero on every online CPU.
# new_dmesg: the kernel log after the first $dmesg_mark lines (the test sets
# dmesg_mark=$(dmesg | wc -l) when it starts).
# loaded: the module is loaded.
# current: the current clocksource.
# unload: switch timekeeping away from kvm-clock-rs (it pins the module while
# current), then rmmod.
# kgr_pci_tty: the device of the first PCI serial port (-device pci-serial,
# whose INTx is a level-triggered IOAPIC line), empty if there is none.
# kgr_cpu1_cycles N FILE: take CPU1 offline and online N times; FILE (a
# feature's cpu1/enabled) must read 0 while it is offline and 1 once it is
# back. Returns 0 if every step did.
ST=/kgr/selftests/kvm_guest_rs
MOD=/kgr/modules/kvm_guest_rs.ko
CS=/sys/devices/system/clocksource/clocksource0
D=/sys/kernel/debug/kvm_guest_rs

kgr_skip_unless_kvm() {
	"$ST/kvm_detect" >/dev/null && return 0
	ktap_skip_all "not on KVM (boot with the host model: -cpu max,x-tcg-kvm-pv=on)"
	exit 4
}

kgr_skip_unless_hostctl() {
	hostq cpu-path 0 >/dev/null 2>&1 && return 0
	ktap_skip_all "no host channel (run-guest --hostctl)"
	exit 4
}

kgr_msr_set_on_every_cpu() {
	[ "$("$ST/msr_read" "$1" | grep -c ' 0x[0-9a-f]*[1-9a-f][0-9a-f]*$')" = "$(nproc)" ]
}

kgr_pci_tty() {
	for _kgr_t in /sys/class/tty/ttyS*; do
		case "$(readlink -f "$_kgr_t/device" 2>/dev/null)" in
		*/pci*)
			echo "/dev/${_kgr_t##*/}"
			return
			;;
		esac
	done
}

kgr_cpu1_cycles() {
	_kgr_ok=0
	_kgr_i=0
	while [ $_kgr_i -lt "$1" ]; do
		echo 0 >/sys/devices/system/cpu/cpu1/online || _kgr_ok=1
		[ "$(cat "$2")" = 0 ] || _kgr_ok=1
		echo 1 >/sys/devices/system/cpu/cpu1/online || _kgr_ok=1
		[ "$(cat "$2")" = 1 ] || _kgr_ok=1
		_kgr_i=$((_kgr_i + 1))
	done
	return $_kgr_ok
}

new_dmesg() { dmesg | tail -n +$((dmesg_mark + 1)); }
loaded() { grep -q '^kvm_guest_rs ' /proc/modules; }
# current, unload, is_current: shell builtins where they can (a fork costs a
# tenth of a second or more in the debug flavour under TCG).
current() {
	read -r _kgr_cs <$CS/current_clocksource
	echo "$_kgr_cs"
}
# is_current NAME: NAME is the current clocksource.
is_current() {
	read -r _kgr_cs <$CS/current_clocksource
	[ "$_kgr_cs" = "$1" ]
}
unload() {
	read -r _kgr_cs <$CS/available_clocksource
	case " $_kgr_cs " in *" kvm-clock-rs "*) echo kvm-clock-rs >$CS/unbind_clocksource ;; esac
	rmmod kvm_guest_rs
}

kgr_arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^kgr\.$1=//p" | tail -n1; }

kgr_result() {
	if eval "$1"; then ktap_test_pass "$2"; else ktap_test_fail "$2"; fi
}

kgr_knob() { hostq cpu-set "$@" >/dev/null; }

# kgr_busy SECONDS: every online CPU busy for SECONDS; waits for its own
# burners only (a bare wait would wait for the caller's background work too).
kgr_busy() {
	_kgr_pids=""
	for _kgr_c in $(seq 0 $(($(nproc) - 1))); do
		taskset -c "$_kgr_c" sh -c "end=\$((\$(cut -d. -f1 /proc/uptime) + $1)); while [ \$(cut -d. -f1 /proc/uptime) -lt \$end ]; do :; done" &
		_kgr_pids="$_kgr_pids $!"
	done
	# shellcheck disable=SC2086
	wait $_kgr_pids
}

kgr_steal_ns() { awk '/^cpu / { print $9 * 10000000 }' /proc/stat; }
