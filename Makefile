# SPDX-License-Identifier: GPL-2.0
#
# kvm-guest-rs: KVM paravirtual guest features as an out-of-tree Rust kernel module.
#
#   make run      set up everything on first use, boot a guest, load the module,
#                 print what it detected, unload it, power off
#   make check    every test (host, build, boot), as KTAP; ends "N passed, N failed"
#
#   make compare  the in-tree C features vs the module, all four, on the host
#                 model (icount): table with targets, plots
#                 (Documentation/virt/kvm_guest_rs/compare-results.rst)
#   make soak     the reliability campaign: all four features under a mixed
#                 workload, load/unload and CPU hotplug cycles, VM stop/cont,
#                 every host fault, kmemleak; four guest shapes (SOAK=short:
#                 the short form make check runs)
#
# Other targets: setup, kernel, module, initramfs, validate-model (the in-tree
# C guest judges the QEMU host model), host-test, rustdoc (the kernel
# crate's documentation with the new abstractions), series (the upstream
# patch series, checked: applies, checkpatch; SERIES_BUILD=debug also builds
# it in tree), series-bisect (the same, building the kernel crate after every
# patch too: about a minute a patch), clean-cache, help.
# Variables: FLAVOUR=default|debug (kernel config; `check` and, unless
#            given, `validate-model` use debug), CYCLES=N (make check: the
#            load/unload and hotplug cycles of each feature test, default 5),
#            ACCEL=tcg|kvm, QEMU=<qemu-system-x86_64>, STOCK=1 (make run on the
#            distribution's QEMU instead of the host model), PARAMS="<module params>",
#            CMDLINE="<extra kernel command line>" (make run; default
#            no-kvmclock, so kvm-clock-rs takes over; CMDLINE= keeps kvm-clock),
#            KGR_CACHE=<cache dir> (default ~/.cache/kvm-guest-rs).
#
# The real work is in tools/; kbuild, cargo and the scripts' own checks make
# every step incremental.

KGR_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kvm-guest-rs
FLAVOUR ?= default
ACCEL ?= tcg
export KGR_CACHE ACCEL

KOUT_CMD = tools/kernel/kernel-build.sh $(FLAVOUR) | tail -n1

.PHONY: all help setup kernel module initramfs run check compare soak validate-model host-test rustdoc series series-bisect clean-cache

all: module

help:
	@awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' Makefile

setup:
	@tools/setup/setup.sh

kernel: setup
	@tools/kernel/kernel-build.sh $(FLAVOUR) >/dev/null

module: setup
	@kout=$$($(KOUT_CMD)) && tools/kernel/module-build.sh "$$kout"

initramfs: setup
	@kout=$$($(KOUT_CMD)) && ko=$$(tools/kernel/module-build.sh "$$kout" | tail -n1) && \
	. tools/lib/lib.sh && kgr_load_env && \
	tools/runner/mkinitramfs "$(KGR_CACHE)/initramfs-$(FLAVOUR).cpio.gz" "$$(kgr_kernel_src)" "$$ko" && \
	echo "$(KGR_CACHE)/initramfs-$(FLAVOUR).cpio.gz"

run: setup
	@tools/make/run.sh

check:
	@FLAVOUR=debug tools/make/check.sh

compare: setup
	@tools/make/compare.sh

soak: setup
	@tools/make/soak.sh

validate-model: setup
	@tools/make/validate-model.sh

host-test:
	@cd tools/host && cargo test

rustdoc: setup
	@tools/kernel/kernel-build.sh $(FLAVOUR) rustdoc >/dev/null

series: setup
	@tools/kernel/series.sh "$(KGR_CACHE)/series"

series-bisect: setup
	@SERIES_BUILD=debug SERIES_BISECT=1 tools/kernel/series.sh "$(KGR_CACHE)/series"

clean-cache:
	rm -rf "$(KGR_CACHE)/build" "$(KGR_CACHE)/module" "$(KGR_CACHE)/check"
