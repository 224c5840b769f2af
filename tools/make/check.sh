#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: every test of the project, as KTAP, with phase timings.
#
# Phases: setup; host (cargo test, rustfmt, runner tests); kernel (debug
# flavour build, clippy on the overlay); module (CLIPPY=1 build, rustfmt,
# compile-fail cases of the abstractions);
# boot (guest under stock QEMU: boot-time KUnit, module selftests); model
# (QEMU with the KVM PV host model: the module selftests on "KVM", and the
# in-tree C guest validating the model); kvmclock (its guest tests, the
# in-tree side of steal time, PV EOI and async PF, and the teardown at kexec and reboot on the
# model); steal (the steal-time guest tests, booted with kvm-pv-ext); pv_eoi
# (the PV EOI guest tests, kvm-pv-ext and a PCI serial port); async_pf (the
# async page fault guest tests, kvm-pv-ext, the model's fault knobs); soak
# (all four features at once, the short form of make soak); series
# (the upstream patch series: applies, checkpatch, in-tree build).  Each result is recorded as
# PASS/FAIL/SKIP; the end prints one KTAP document with all of them, the
# phase timings, and "N passed, N failed, N skipped".  Exits non-zero on any
# failure.
set -uo pipefail
KGR_TAG=check
. "$(dirname "$0")/../lib/lib.sh"

FLAVOUR=${FLAVOUR:-debug}
# The load/unload and CPU hotplug cycles of each feature's guest tests (kgr.cycles):
# 5 here; `make check CYCLES=20` runs them at the count they were written for
# (make soak's long form runs 100 of each with all four features).
CYCLES=${CYCLES:-5}
case "$CYCLES" in
'' | *[!0-9]* | 0*) kgr_die "CYCLES=$CYCLES: want a whole number of cycles, 1 or more" ;;
esac
# One directory per kernel tree (KGR_TREE), so two work trees can check at once.
WORK="$KGR_CACHE/check$(kgr_tree_suffix)"
mkdir -p "$WORK"
RESULTS="$WORK/results"
TIMINGS="$WORK/timings"
: >"$RESULTS"
: >"$TIMINGS"
T0=$(date +%s)

record() { printf '%s %s\n' "$1" "$2" >>"$RESULTS"; }
# check NAME CMD...: runs CMD, records its result, keeps its output in $WORK/NAME.log.
check() {
	local name=$1 log
	shift
	log="$WORK/$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_').log"
	if "$@" >"$log" 2>&1; then
		record PASS "$name"
	else
		record FAIL "$name"
		kgr_step "FAILED: $name (log: $log)"
		tail -n 20 "$log" | sed 's/^/  | /' >&2
	fi
}
phase_start() {
	PHASE=$1
	PHASE_T=$(date +%s)
	kgr_step "phase $PHASE"
}
phase_end() { printf '%-8s %4d s\n' "$PHASE" $(($(date +%s) - PHASE_T)) >>"$TIMINGS"; }
# guest_boot NAME LABEL RUN-GUEST-ARGS...: boots with run-guest, console and
# KTAP in $WORK/NAME.{console,ktap}; records the guest's results as "LABEL: ...",
# or a failure if the boot reached no verdict.
guest_boot() {
	local name=$1 label=$2 rc args=() appended=""
	shift 2
	# kgr.cycles joins the boot's command line.
	while [ $# -gt 0 ]; do
		if [ "$1" = --append ] && [ $# -ge 2 ]; then
			args+=(--append "$2 kgr.cycles=$CYCLES")
			appended=1
			shift 2
			continue
		fi
		args+=("$1")
		shift
	done
	[ -n "$appended" ] || args+=(--append "kgr.cycles=$CYCLES")
	"$KGR_REPO/tools/runner/run-guest" "${args[@]}" --log "$WORK/$name.console" --ktap "$WORK/$name.ktap"
	rc=$?
	if [ $rc -le 1 ]; then
		"$KGR_REPO/tools/lib/ktap-count" "$label" <"$WORK/$name.ktap" >>"$RESULTS"
	else
		record FAIL "$label: boot reached a verdict (exit $rc, console $WORK/$name.console)"
	fi
}

# --- setup -------------------------------------------------------------------
phase_start setup
if "$KGR_REPO/tools/setup/setup.sh"; then
	record PASS "setup: toolchain and kernel source"
else
	record FAIL "setup: toolchain and kernel source"
	kgr_die "setup failed; nothing else can run"
fi
kgr_load_env
phase_end

# --- host --------------------------------------------------------------------
phase_start host
export CARGO_TARGET_DIR="$KGR_CACHE/cargo-target"
(cd "$KGR_REPO/tools/host" && cargo test --workspace --no-fail-fast) >"$WORK/cargo-test.log" 2>&1
cargo_rc=$?
sed -nE 's/^test (.*) \.\.\. ok$/PASS host: cargo test \1/p; s/^test (.*) \.\.\. FAILED$/FAIL host: cargo test \1/p; s/^test (.*) \.\.\. ignored$/SKIP host: cargo test \1/p' \
	"$WORK/cargo-test.log" >>"$RESULTS"
if [ $cargo_rc -ne 0 ] && ! grep -q '^test .* FAILED$' "$WORK/cargo-test.log"; then
	record FAIL "host: cargo test builds and runs"
	tail -n 20 "$WORK/cargo-test.log" >&2
fi
"$KGR_REPO/tools/runner/selftest.sh" 2>&1 | tee "$WORK/runner-selftest.log" | "$KGR_REPO/tools/lib/ktap-count" "host: run-guest" >>"$RESULTS"
check "host: cargo fmt --check" sh -c "cd '$KGR_REPO/tools/host' && cargo fmt --all --check"
check "host: cargo clippy, no warnings" sh -c "cd '$KGR_REPO/tools/host' && cargo clippy -q --workspace --all-targets -- -D warnings"
phase_end

# --- kernel ------------------------------------------------------------------
phase_start kernel
KOUT=""
if "$KGR_REPO/tools/kernel/kernel-build.sh" "$FLAVOUR" >"$WORK/kernel.out" 2>"$WORK/kernel.log"; then
	KOUT=$(tail -n1 "$WORK/kernel.out")
	record PASS "kernel: build linux $KVERSION ($FLAVOUR flavour, CLIPPY=1)"
	w="$KOUT/.kgr-overlay-warnings"
	if [ -s "$w" ]; then
		record FAIL "kernel: overlay (rust/) builds without compiler or clippy warnings"
		sed 's/^/  | /' "$w" >&2
	else
		record PASS "kernel: overlay (rust/) builds without compiler or clippy warnings"
	fi
else
	record FAIL "kernel: build linux $KVERSION ($FLAVOUR flavour, CLIPPY=1)"
	tail -n 30 "$WORK/kernel.log" | sed 's/^/  | /' >&2
fi
KSRC=$(kgr_kernel_src)
# rustdoc of the kernel crate with the overlay (about a minute; not incremental,
# so it is skipped when rust/ and the patches are what the last clean run saw).
if [ -n "$KOUT" ]; then
	doc_key=$(cd "$KGR_REPO" && find rust tools/kernel/patches -type f -print0 | LC_ALL=C sort -z |
		xargs -0 cat | sha256sum | cut -c1-16)
	if [ "$(cat "$KOUT/.kgr-rustdoc-ok" 2>/dev/null)" = "$doc_key" ]; then
		record PASS "kernel: rustdoc builds without warnings (rust/ unchanged since the last clean run)"
	elif "$KGR_REPO/tools/kernel/kernel-build.sh" "$FLAVOUR" rustdoc >"$WORK/rustdoc.out" 2>"$WORK/rustdoc.log" &&
		! grep -qE '^(warning|error)' "$WORK/rustdoc.log"; then
		echo "$doc_key" >"$KOUT/.kgr-rustdoc-ok"
		record PASS "kernel: rustdoc builds without warnings"
	else
		record FAIL "kernel: rustdoc builds without warnings"
		grep -E -A5 '^(warning|error)' "$WORK/rustdoc.log" | head -n 20 | sed 's/^/  | /' >&2
	fi
fi
mapfile -t RUST_FILES < <(cd "$KGR_REPO" && find rust samples tools/testing/rust-compile-fail tools/testing/rust-asm-frame -name '*.rs' | sort)
check "kernel: rustfmt --check of rust/ and samples/" \
	sh -c "cd '$KGR_REPO' && '$RUSTFMT' --edition 2021 --config-path '$KSRC/.rustfmt.toml' --check ${RUST_FILES[*]}"
phase_end

# --- module ------------------------------------------------------------------
phase_start module
KO=""
if [ -n "$KOUT" ]; then
	if "$KGR_REPO/tools/kernel/module-build.sh" "$KOUT" >"$WORK/module.out" 2>"$WORK/module.log"; then
		KO=$(tail -n1 "$WORK/module.out")
		record PASS "module: build kvm_guest_rs.ko out of tree with CLIPPY=1"
		if grep -qE '^(warning|error)' "$WORK/module.log"; then
			record FAIL "module: no compiler or clippy warnings"
			grep -A5 -E '^(warning|error)' "$WORK/module.log" | head -n 30 | sed 's/^/  | /' >&2
		else
			record PASS "module: no compiler or clippy warnings"
		fi
	else
		record FAIL "module: build kvm_guest_rs.ko out of tree with CLIPPY=1"
		tail -n 30 "$WORK/module.log" | sed 's/^/  | /' >&2
	fi
	# What safe code must not be able to write (host-shared memory, MSRs).
	"$KGR_REPO/tools/testing/rust-compile-fail/compile-fail.sh" "$KOUT" 2>&1 | tee "$WORK/compile-fail.log" |
		"$KGR_REPO/tools/lib/ktap-count" "module: compile-fail" >>"$RESULTS"
	# The call from kernel::preempt's inline asm has its frame (objtool --stackval).
	"$KGR_REPO/tools/testing/rust-asm-frame/asm-frame.sh" "$KOUT" 2>&1 | tee "$WORK/asm-frame.log" |
		"$KGR_REPO/tools/lib/ktap-count" "module: asm-frame" >>"$RESULTS"
else
	record SKIP "module: build (kernel build failed)"
fi
phase_end

# --- kvmclock on the host model ---------------------------------------------
# kvmclock_model_boots: the guest tests of kvm-clock-rs (plan kvmclock) on the
# QEMU host model, booted with no-kvmclock: once with the defaults, once with
# kvmclock-stable-bit=off (the monotonic clamp).  Uses the binary of the model
# phase ($QEMU_MODEL), else one built earlier in $KGR_CACHE/qemu; without one
# the phase records a SKIP with the reason.
kvmclock_model_boots() {
	local qemu initrd name cpu append plan
	if ! qemu=$(kgr_qemu_model); then
		record SKIP "kvmclock (host model): no QEMU with the KVM PV host model (run tools/qemu/qemu-build.sh)"
		return
	fi
	if [ -z "$KO" ]; then
		record SKIP "kvmclock (host model): no module"
		return
	fi
	initrd="$WORK/initramfs.cpio.gz"
	for name in default clamp; do
		cpu=max,x-tcg-kvm-pv=on
		append="no-kvmclock kgr.rtc_base=1704067200"
		plan=kvmclock-check
		if [ $name = clamp ]; then
			plan=kvmclock
			cpu=$cpu,kvmclock-stable-bit=off
			append="$append kgr.kvmclock=clamp"
		fi
		guest_boot "kvmclock-$name" "kvmclock (host model, $name)" \
			--qemu "$qemu" --cpu "$cpu" --append "$append" --hostctl \
			--qemu-arg -rtc --qemu-arg base=2024-01-01T00:00:00,clock=vm \
			--kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$initrd" --plan "$plan" --timeout 1200
	done
	# Teardown at kexec (selftests/kvm_guest_rs/teardown_test.sh): an initramfs that carries kexec,
	# this kernel and the plain initramfs for the kernel it kexecs into. Booted with kvm-pv-ext,
	# so the module's kvmclock and steal-time records are both registered when the kernel goes.
	if ! KGR_KEXEC_KERNEL="$KOUT/arch/x86/boot/bzImage" KGR_KEXEC_INITRD="$initrd" \
		"$KGR_REPO/tools/runner/mkinitramfs" "$WORK/initramfs-kexec.cpio.gz" "$KSRC" "$KO" 2>"$WORK/initramfs-kexec.log"; then
		record FAIL "teardown (host model): build the kexec initramfs"
		cat "$WORK/initramfs-kexec.log" >&2
		return
	fi
	guest_boot teardown "teardown (host model, kexec)" \
		--qemu "$qemu" --cpu max,x-tcg-kvm-pv=on --append "no-kvmclock kvm-pv-ext" --hostctl \
		--kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$WORK/initramfs-kexec.cpio.gz" --plan teardown \
		--timeout 900
	# Teardown at reboot: the plan leaves the module loaded, /init reboots, and
	# QEMU pauses at that reset so the model's MSRs can be read (--state-at-reset).
	guest_boot reboot "teardown (host model, reboot)" \
		--qemu "$qemu" --cpu max,x-tcg-kvm-pv=on \
		--append "no-kvmclock kvm-pv-ext kgr.teardown=reboot" --state-at-reset "$WORK/reboot.state" \
		--kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$initrd" --plan teardown --timeout 600
	# The MSRs that point the host at guest memory, two vCPUs (run-guest's -smp).
	msrs=$(grep -oE '(system_time|wall_clock|steal_time|pv_eoi_en|async_pf_en) 0x[0-9a-f]+' "$WORK/reboot.state" 2>/dev/null)
	if [ "$(printf '%s\n' "$msrs" | grep -c .)" = 10 ] && ! printf '%s\n' "$msrs" | grep -qv ' 0x0$'; then
		record PASS "teardown (host model, reboot): every PV MSR is 0 on every vCPU at the reset"
	else
		record FAIL "teardown (host model, reboot): every PV MSR is 0 on every vCPU at the reset"
		sed 's/^/  | /' "$WORK/reboot.state" >&2 2>/dev/null
	fi
}

# --- boot --------------------------------------------------------------------
phase_start boot
if [ -n "$KO" ]; then
	INITRD="$WORK/initramfs.cpio.gz"
	if "$KGR_REPO/tools/runner/mkinitramfs" "$INITRD" "$KSRC" "$KO" 2>"$WORK/initramfs.log"; then
		guest_boot boot-stock "guest (stock QEMU)" --kernel "$KOUT/arch/x86/boot/bzImage" \
			--initrd "$INITRD" --plan boot --hostctl --timeout 600
	else
		record FAIL "boot: build initramfs"
		cat "$WORK/initramfs.log" >&2
	fi
else
	record SKIP "boot: guest tests (no module)"
fi
phase_end

# --- model -------------------------------------------------------------------
# The QEMU host model of the KVM PV interface: the module's tests again, now
# on "KVM" (load/unload under lockdep and KASAN), then the in-tree C guest
# judging the model (tools/make/validate-model.sh).
phase_start model
QEMU_MODEL=""
if "$KGR_REPO/tools/qemu/qemu-build.sh" >"$WORK/qemu.out" 2>"$WORK/qemu.log"; then
	QEMU_MODEL=$(tail -n1 "$WORK/qemu.out")
	record PASS "model: build QEMU with the KVM PV host model"
else
	record FAIL "model: build QEMU with the KVM PV host model"
	tail -n 30 "$WORK/qemu.log" | sed 's/^/  | /' >&2
fi
if [ -n "$QEMU_MODEL" ] && [ -n "$KO" ]; then
	guest_boot boot-model "guest (model)" --qemu "$QEMU_MODEL" --cpu max,x-tcg-kvm-pv=on \
		--kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$INITRD" --plan boot --hostctl --timeout 600
fi
if [ -n "$QEMU_MODEL" ] && [ -n "$KOUT" ]; then
	rm -f "$WORK/validate/validate.ktap"
	VALIDATE_OUT="$WORK/validate" "$KGR_REPO/tools/make/validate-model.sh" "$KOUT" >"$WORK/validate.out" 2>"$WORK/validate.log"
	vrc=$?
	if [ -s "$WORK/validate/validate.ktap" ] && [ $vrc -le 1 ]; then
		"$KGR_REPO/tools/lib/ktap-count" "model (C guest)" <"$WORK/validate/validate.ktap" >>"$RESULTS"
	else
		record FAIL "model (C guest): validate-model reached a verdict"
		tail -n 20 "$WORK/validate.log" | sed 's/^/  | /' >&2
	fi
fi
phase_end

# The kvm-clock-rs guest tests on the model (QEMU_MODEL from the model phase).
phase_start kvmclock
kvmclock_model_boots
phase_end

# The steal-time guest tests on the model, booted with kvm-pv-ext so the
# module provides the steal clock (the in-tree side runs in the kvmclock
# phase's default boot).
phase_start steal
if qemu=$(kgr_qemu_model) && [ -n "$KO" ]; then
	guest_boot steal "steal time (host model, kvm-pv-ext)" \
		--qemu "$qemu" --cpu max,x-tcg-kvm-pv=on --append kvm-pv-ext --hostctl \
		--kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$WORK/initramfs.cpio.gz" --plan steal \
		--timeout 900
else
	record SKIP "steal time (host model): no QEMU with the KVM PV host model, or no module"
fi
phase_end

# The PV EOI guest tests on the model, booted with kvm-pv-ext so the module
# owns the EOI override, and with a PCI serial port whose INTx is a
# level-triggered IOAPIC line (the in-tree side runs in the kvmclock phase's
# default boot).
phase_start pv_eoi
if qemu=$(kgr_qemu_model) && [ -n "$KO" ]; then
	guest_boot pv_eoi "PV EOI (host model, kvm-pv-ext)" \
		--qemu "$qemu" --cpu max,x-tcg-kvm-pv=on --append kvm-pv-ext --hostctl \
		--qemu-arg -chardev --qemu-arg null,id=kgr-lvl --qemu-arg -device --qemu-arg pci-serial,chardev=kgr-lvl \
		--kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$WORK/initramfs.cpio.gz" --plan pv_eoi \
		--timeout 900
else
	record SKIP "PV EOI (host model): no QEMU with the KVM PV host model, or no module"
fi
phase_end

# The async page fault guest tests on the model, booted with kvm-pv-ext so the
# module owns MSR_KVM_ASYNC_PF_EN and the page-ready vector (the in-tree side
# runs in the kvmclock phase's default boot).
phase_start async_pf
if qemu=$(kgr_qemu_model) && [ -n "$KO" ]; then
	guest_boot async_pf "async PF (host model, kvm-pv-ext)" \
		--qemu "$qemu" --cpu max,x-tcg-kvm-pv=on --append kvm-pv-ext --hostctl \
		--kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$WORK/initramfs.cpio.gz" --plan async_pf \
		--timeout 900
	# The overlap speed-up is a ratio of wall times: exact in virtual time
	# (icount), moved by the host's load in real time, so it gets its own boot.
	guest_boot async_pf-overlap "async PF (host model, kvm-pv-ext, icount)" \
		--qemu "$qemu" --cpu max,x-tcg-kvm-pv=on --append "kvm-pv-ext kgr.async_pf=overlap" --hostctl \
		--icount 0 --kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$WORK/initramfs.cpio.gz" --plan async_pf \
		--timeout 900
else
	record SKIP "async PF (host model): no QEMU with the KVM PV host model, or no module"
fi
phase_end

# The reliability soak's short form (tools/make/soak.sh has the long one):
# all four features at once under a mixed workload, 3 load/unload cycles and
# one CPU hotplug cycle, VM stop/cont, 2 live migrations into a fresh QEMU,
# the host faults in two groups, kmemleak.
phase_start soak
if qemu=$(kgr_qemu_model) && [ -n "$KO" ]; then
	mapfile -t soak_args < <(kgr_soak_guest pc 2 on short)
	guest_boot soak "soak (host model, all four features, short)" --qemu "$qemu" "${soak_args[@]}" \
		--kernel "$KOUT/arch/x86/boot/bzImage" --initrd "$WORK/initramfs.cpio.gz" --timeout 1800
else
	record SKIP "soak (host model): no QEMU with the KVM PV host model, or no module"
fi
phase_end

# --- series ------------------------------------------------------------------
# The upstream series (tools/kernel/series.sh): it carries every new file,
# applies to pristine Linux in order, passes checkpatch --strict (remarks of
# the types tools/kernel/series.checkpatch explains), and builds in tree with
# the same config fragments plus CONFIG_SAMPLE_KVM_GUEST_RS=m (a persistent
# tree under the cache: the first build takes as long as a kernel build).
phase_start series
SERIES_BUILD=$FLAVOUR "$KGR_REPO/tools/kernel/series.sh" "$WORK/series" 2>"$WORK/series.log" |
	tee "$WORK/series.ktap" | "$KGR_REPO/tools/lib/ktap-count" "series" >>"$RESULTS"
phase_end

# --- summary -----------------------------------------------------------------
total=$(wc -l <"$RESULTS")
echo "KTAP version 1"
echo "1..$total"
i=0
while read -r res name; do
	i=$((i + 1))
	case "$res" in
	PASS) echo "ok $i $name" ;;
	SKIP) echo "ok $i $name # SKIP" ;;
	*) echo "not ok $i $name" ;;
	esac
done <"$RESULTS"
echo "# phase timings (total $(($(date +%s) - T0)) s):"
sed 's/^/#   /' "$TIMINGS"
pass=$(grep -c '^PASS' "$RESULTS")
fail=$(grep -c '^FAIL' "$RESULTS")
skip=$(grep -c '^SKIP' "$RESULTS")
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
