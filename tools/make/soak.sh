#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make soak`: the reliability campaign (selftests/kvm_guest_rs/soak_test.sh):
# all four features of the module at once under a mixed workload, on the
# debug flavour (lockdep, KASAN, UBSAN, DEBUG_ATOMIC_SLEEP, kmemleak) and the
# QEMU host model, in several guest shapes.
#
#   SOAK=long (default)  the release campaign: 100 cycles of each kind and
#                        every host fault alone in the main shape (pc, 2
#                        vCPUs, stable bit on), the short form in the others:
#                        pc with 1 vCPU, q35 with 4, q35 with 2 and the
#                        stable bit off
#   SOAK=short           the main shape, short form: 3 load cycles, one hotplug
#                        cycle, the host faults in two groups (make check)
#   SOAK_SHAPES="..."    other shapes: MACHINE:VCPUS:STABLE:CYCLES words,
#                        e.g. "q35:4:off:long" (CYCLES: short or long)
#   FLAVOUR=debug        kernel flavour (debug unless given)
#
# Each shape boots once (run-guest --hostctl, kvm-pv-ext); the console and
# KTAP go to $KGR_CACHE/soak/SHAPE.{console,ktap}.  Prints each shape's
# results and table, then one line per shape, and writes
# $KGR_CACHE/soak/report.txt.  Exits non-zero if a shape failed or reached
# no verdict.
set -uo pipefail
KGR_TAG=soak
. "$(dirname "$0")/../lib/lib.sh"
kgr_load_env

FLAVOUR=${FLAVOUR:-debug}
SOAK=${SOAK:-long}
OUT="$KGR_CACHE/soak$(kgr_tree_suffix)"
mkdir -p "$OUT"
case "$SOAK" in
long) SHAPES=${SOAK_SHAPES:-"pc:2:on:long pc:1:on:short q35:4:on:short q35:2:off:short"} ;;
short) SHAPES=${SOAK_SHAPES:-"pc:2:on:short"} ;;
*) kgr_die "SOAK must be long or short, not '$SOAK'" ;;
esac
for s in $SHAPES; do
	[[ $s =~ ^(pc|q35):[1-8]:(on|off):(short|long)$ ]] ||
		kgr_die "bad shape '$s': want MACHINE:VCPUS:STABLE:CYCLES (pc|q35, 1-8, on|off, short|long)"
done
qemu=$(kgr_qemu_model) || kgr_die "no QEMU host model: run tools/qemu/qemu-build.sh (or set QEMU_MODEL)"
KOUT=$("$KGR_REPO/tools/kernel/kernel-build.sh" "$FLAVOUR" | tail -n1) || kgr_die "kernel build failed"
KO=$("$KGR_REPO/tools/kernel/module-build.sh" "$KOUT" | tail -n1) || kgr_die "module build failed"
"$KGR_REPO/tools/runner/mkinitramfs" "$OUT/initramfs.cpio.gz" "$(kgr_kernel_src)" "$KO" || kgr_die "initramfs failed"

: >"$OUT/summary"
fail=0
for s in $SHAPES; do
	IFS=: read -r machine cpus stable cycles <<<"$s"
	name="$machine-smp$cpus-stable$stable-$cycles"
	mapfile -t args < <(kgr_soak_guest "$machine" "$cpus" "$stable" "$cycles")
	kgr_step "soak $name"
	start=$(date +%s)
	rc=0
	"$KGR_REPO/tools/runner/run-guest" --qemu "$qemu" "${args[@]}" --kernel "$KOUT/arch/x86/boot/bzImage" \
		--initrd "$OUT/initramfs.cpio.gz" --timeout 7200 \
		--log "$OUT/$name.console" --ktap "$OUT/$name.ktap" || rc=$?
	secs=$(($(date +%s) - start))
	if [ $rc -gt 1 ] || [ ! -s "$OUT/$name.ktap" ]; then
		printf '%-28s no verdict (exit %d, console %s) in %d s\n' "$name" $rc "$OUT/$name.console" $secs >>"$OUT/summary"
		fail=1
		continue
	fi
	cat "$OUT/$name.ktap"
	p=$(grep -c '^ok ' "$OUT/$name.ktap")
	f=$(grep -c '^not ok ' "$OUT/$name.ktap")
	sk=$(grep -c '^ok .*# SKIP' "$OUT/$name.ktap")
	[ "$f" = 0 ] && [ $rc = 0 ] || fail=1
	printf '%-28s %3d passed, %d failed (%d skipped) in %d s\n' "$name" $((p - sk)) "$f" "$sk" $secs >>"$OUT/summary"
done
{
	echo "soak ($SOAK, $FLAVOUR flavour, $(date -u +%Y-%m-%d)):"
	cat "$OUT/summary"
	for s in $SHAPES; do
		IFS=: read -r machine cpus stable cycles <<<"$s"
		name="$machine-smp$cpus-stable$stable-$cycles"
		echo
		echo "$name:"
		sed -n '/^# what /,/^# soak .* took/s/^# //p' "$OUT/$name.ktap" 2>/dev/null
	done
} | tee "$OUT/report.txt"
exit $fail
