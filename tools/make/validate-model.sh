#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# validate-model.sh [KOUT]: judge the QEMU host model with the in-tree C guest.
#
# Builds the patched QEMU (tools/qemu/qemu-build.sh) and, unless a kernel build
# directory is given, the $FLAVOUR kernel (default: debug, the kernel make
# check validates); boots the C guest (CONFIG_KVM_GUEST, no nopv) on -cpu max,x-tcg-kvm-pv=on with a known TSC frequency, -rtc base,
# injected steal and a PCI serial port, and runs the plan
# tools/qemu/validate/c-guest.sh, which reads the model's counters
# through the host channel.  Then boots a workload twice in deterministic
# mode (-icount, x-steal-ppm, async-PF window on -cpu; plan
# tools/qemu/validate/deterministic.sh) and checks that both consoles are
# byte-identical.  Prints the guest's KTAP, then
# "N passed, N failed"; the KTAP and console log are left in $VALIDATE_OUT
# (default $KGR_CACHE/validate).
set -euo pipefail
KGR_TAG=validate-model
. "$(dirname "$0")/../lib/lib.sh"
kgr_load_env
# The flavour make check validates, so that both judge the same kernel.
FLAVOUR=${FLAVOUR:-debug}
TSC_HZ=2600000000
STEAL_PCT=20
RTC_BASE=2024-01-01T00:00:00
RTC_EPOCH=$(date -u -d "$RTC_BASE" +%s)

QEMU_BIN=$("$KGR_REPO/tools/qemu/qemu-build.sh" | tail -n1)
KOUT=${1:-$("$KGR_REPO/tools/kernel/kernel-build.sh" "$FLAVOUR" | tail -n1)}
OUT=${VALIDATE_OUT:-$KGR_CACHE/validate}
mkdir -p "$OUT"
"$KGR_REPO/tools/runner/mkinitramfs" "$OUT/initramfs.cpio.gz" "$(kgr_kernel_src)"
kgr_step "booting the C guest on the model ($QEMU_BIN)"
rc=0
"$KGR_REPO/tools/runner/run-guest" --qemu "$QEMU_BIN" \
	--cpu "max,x-tcg-kvm-pv=on,tsc-frequency=$TSC_HZ,x-steal-host=off,x-steal-ppm=$((STEAL_PCT * 10000))" \
	--kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$OUT/initramfs.cpio.gz" \
	--plan c-guest --hostctl --timeout 900 \
	--append "kgr.tsc_khz=$((TSC_HZ / 1000)) kgr.rtc_base=$RTC_EPOCH kgr.steal_pct=$STEAL_PCT" \
	--qemu-arg -rtc --qemu-arg "base=$RTC_BASE,clock=vm" \
	--qemu-arg -chardev --qemu-arg null,id=kgrnull --qemu-arg -device --qemu-arg pci-serial,chardev=kgrnull \
	--log "$OUT/console.log" --ktap "$OUT/validate.ktap" || rc=$?
if [ $rc -ge 2 ]; then
	kgr_die "no verdict from the guest (exit $rc); console: $OUT/console.log"
fi
# Deterministic mode: two identical -icount boots must print the same bytes.
APF_PAGES=16
A=$((0x200000000000))
icount_rc=(0 0 0)
# Both at once: in virtual time the host's load cannot change what they print
# (one TCG thread each under -icount), and the wait is halved.
icount_pid=()
# Backgrounded, run-guest ignores SIGINT (a non-interactive shell's jobs do):
# pass an interrupt on as SIGTERM, which it handles by stopping its QEMU.
trap 'kill -TERM "${icount_pid[@]}" 2>/dev/null; exit 130' INT TERM
for run in 1 2; do
	"$KGR_REPO/tools/runner/run-guest" --qemu "$QEMU_BIN" --icount 3 \
		--cpu "max,x-tcg-kvm-pv=on,tsc-frequency=$TSC_HZ,x-steal-host=off,x-steal-ppm=$((STEAL_PCT * 10000)),x-apf-va-start=$A,x-apf-va-end=$((A + APF_PAGES * 4096)),x-apf-count=$APF_PAGES" \
		--kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$OUT/initramfs.cpio.gz" \
		--plan deterministic --timeout 900 --append "kgr.steal_pct=$STEAL_PCT kgr.apf_pages=$APF_PAGES" \
		--log "$OUT/icount-$run.console" --ktap "$OUT/icount-$run.ktap" &
	icount_pid[run]=$!
done
for run in 1 2; do
	wait "${icount_pid[run]}" || icount_rc[run]=$?
done
trap - INT TERM
{
	# The icount run's own checks, then the comparison.  A boot without a
	# verdict has no KTAP (run-guest removes a stale one): say so, so that
	# neither this script nor make check loses the deterministic results.
	for run in 1 2; do
		[ "${icount_rc[run]}" -le 1 ] ||
			echo "not ok deterministic mode: -icount boot $run reached a verdict (exit ${icount_rc[run]}, console $OUT/icount-$run.console)"
	done
	{ grep -E '^(not )?ok [0-9]+ ' "$OUT/icount-1.ktap" 2>/dev/null || true; } | sed -E 's/^((not )?ok) [0-9]+ /\1 /'
	if [ -s "$OUT/icount-1.console" ] && cmp -s "$OUT/icount-1.console" "$OUT/icount-2.console"; then
		echo "ok deterministic mode: two -icount boots print byte-identical consoles ($(wc -c <"$OUT/icount-1.console") bytes)"
	else
		echo "not ok deterministic mode: two -icount boots print byte-identical consoles ($(cmp "$OUT/icount-1.console" "$OUT/icount-2.console" 2>&1 | head -n1))"
		rc=1
	fi
} | awk '{ sub(/^(not )?ok/, "& " NR); print } END { print "1.." NR }' >"$OUT/icount.results"
grep -q '^not ok' "$OUT/icount.results" && rc=1
# A second KTAP document after the main plan's.
{ echo "TAP version 13"; tail -n1 "$OUT/icount.results"; sed '$d' "$OUT/icount.results"; } >>"$OUT/validate.ktap"

cat "$OUT/validate.ktap"
"$KGR_REPO/tools/lib/ktap-count" model <"$OUT/validate.ktap" >"$OUT/results"
printf '%s passed, %s failed, %s skipped\n' "$(grep -c '^PASS' "$OUT/results")" \
	"$(grep -c '^FAIL' "$OUT/results")" "$(grep -c '^SKIP' "$OUT/results")"
exit $rc
