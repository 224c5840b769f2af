#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make compare`: the in-tree C features (boot A) against the module's (boot B,
# kvm-pv-ext + insmod: kvm-clock-rs and the module's steal clock) on the same
# kernel image and the same QEMU host model, in deterministic icount mode
# (run-guest --icount 0: one virtual nanosecond per guest instruction, so
# nanoseconds read as instructions), with 20 % steal injected (x-steal-ppm).
#
# Measures (plan tools/runner/plans/clock-cost.sh): (a) ktime_get() cost in the
# kernel and the raw kvm-clock-rs read, (b) user-space
# clock_gettime(CLOCK_MONOTONIC), vDSO in A and system call in B, (c) warps
# across CPUs, (d) steal time: /proc/stat against the injected steal, and the
# cost of a steal-clock read in B, (e) PV EOI: the share of EOIs that skip the
# APIC write and the EOI register writes per 1000 interrupts, A, B and B with PV
# EOI off, on one fixed interrupt workload (in a second boot per side, with a
# PCI serial port and the host channel), and the instructions on the EOI hook's two paths
# (tools/lib/eoi-path-count.py on the same binaries), (f) async page faults in
# the same second boot: the instructions an episode costs beyond the host's
# delay (and with the page ready first), the overlap a computing task gets
# while another waits, against the vCPU waiting for each page (B, module
# unloaded, x-apf-sync), (g) memory: code, data and static per-CPU bytes of
# the binaries (size -A of kvm.o + kvmclock.o, and of the module).  Writes $KGR_CACHE/compare/{A,B}.ktap, results.tsv,
# report.rst, compare.png (overview) and compare-FEATURE.png (one per
# feature), and prints the table.
#   FLAVOUR=default|debug   kernel flavour (default: default, no debugging)
#   QEMU_MODEL=PATH         the model binary (default: $KGR_CACHE/qemu/build-*/)
#   COMPARE_DOCS=1          also copy the plots to Documentation/virt/kvm_guest_rs/
set -euo pipefail
KGR_TAG=compare
. "$(dirname "$0")/../lib/lib.sh"
kgr_load_env

FLAVOUR=${FLAVOUR:-default}
OUT="$KGR_CACHE/compare$(kgr_tree_suffix)"
mkdir -p "$OUT"
qemu=$(kgr_qemu_model) || kgr_die "no QEMU host model: run tools/qemu/qemu-build.sh (or set QEMU_MODEL)"

KOUT=$("$KGR_REPO/tools/kernel/kernel-build.sh" "$FLAVOUR" | tail -n1)
KO=$("$KGR_REPO/tools/kernel/module-build.sh" "$KOUT" | tail -n1)
"$KGR_REPO/tools/runner/mkinitramfs" "$OUT/initramfs.cpio.gz" "$(kgr_kernel_src)" "$KO"

: >"$OUT/results.tsv"
STEAL_PPM=200000
for side in A B; do
	for part in main eoi; do
		append="kgr.compare=$side kgr.steal_ppm=$STEAL_PPM"
		[ $side = B ] && append="$append kvm-pv-ext"
		extra=()
		name=$side
		if [ $part = eoi ]; then
			# (e) and (f) in a boot of its own: host I/O would cost the main boot its determinism.
			append="$append kgr.compare_part=eoi"
			extra=(--hostctl --qemu-arg -chardev --qemu-arg null,id=kgr-lvl --qemu-arg -device
				--qemu-arg pci-serial,chardev=kgr-lvl)
			name=$side-eoi
		fi
		kgr_step "boot $name ($append), icount shift 0"
		start=$(date +%s)
		rc=0
		"$KGR_REPO/tools/runner/run-guest" --qemu "$qemu" --cpu max,x-tcg-kvm-pv=on,x-steal-ppm=$STEAL_PPM --icount 0 \
			"${extra[@]}" --kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$OUT/initramfs.cpio.gz" --plan clock-cost \
			--append "$append" --timeout 3600 --log "$OUT/$name.console" --ktap "$OUT/$name.ktap" || rc=$?
		kgr_step "boot $name: exit $rc in $(($(date +%s) - start)) s"
		[ $rc -le 1 ] || kgr_die "boot $name reached no verdict (console $OUT/$name.console)"
		sed -n 's/^# compare //p' "$OUT/$name.ktap" >>"$OUT/results.tsv"
		grep -E '^(not )?ok ' "$OUT/$name.ktap" >&2 || true
	done
done
# (e) The EOI hooks' paths, counted in the binaries both boots ran.
"$KGR_REPO/tools/lib/eoi-path-count.py" "$KOUT/vmlinux" "$KO" | sed 's/^\([AB]\) \([a-z]*\) \([0-9]*\).*/\1 eoi_path_\2 \3/' >>"$OUT/results.tsv" ||
	kgr_step "eoi-path-count: a hook path was not found"

# (g) Memory, from the binaries both boots ran: code, data and static per-CPU
# bytes of the C features' objects (A) and of the module (B).
mem() { # mem SIDE OBJECT...: "SIDE mem CODE DATA PERCPU"
	local side=$1
	shift
	size -A "$@" | awk -v side="$side" '
		$1 ~ /^\.(text|noinstr\.text|static_call\.text|init\.text|exit\.text|altinstr_replacement)$/ { code += $2 }
		$1 ~ /^\.(data|bss|rodata.*|data\.\.ro_after_init|init\.rodata|init\.data|exit\.data)$/ { data += $2 }
		$1 ~ /^\.data\.\.percpu/ { percpu += $2 }
		END { print side, "mem", code + 0, data + 0, percpu + 0 }'
}
mem A "$KOUT/arch/x86/kernel/kvm.o" "$KOUT/arch/x86/kernel/kvmclock.o" >>"$OUT/results.tsv"
mem B "$KO" >>"$OUT/results.tsv"

venv="$KGR_CACHE/plot-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
	kgr_step "installing matplotlib from PyPI into $venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q matplotlib
fi
"$venv/bin/python" "$KGR_REPO/tools/lib/compare-report.py" "$OUT/results.tsv" "$OUT/report.rst" "$OUT/compare.png"
if [ "${COMPARE_DOCS:-0}" = 1 ]; then
	cp "$OUT"/compare*.png "$KGR_REPO/Documentation/virt/kvm_guest_rs/"
fi
cat "$OUT/report.rst"
