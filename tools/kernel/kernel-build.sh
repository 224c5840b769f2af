#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# kernel-build.sh FLAVOUR [rustdoc]: configure and build the guest kernel (or,
# with "rustdoc", the documentation of its Rust crates, after the kernel).
#
# The kernel source is a writable copy of Debian's pristine linux-source tree
# with the project's overlay applied (tools/kernel/overlay.sh).  Each flavour
# builds out of tree (O=) in a directory keyed by kernel version, config
# fragment hash and toolchain, so switching flavours or editing one fragment
# never invalidates another build, and kbuild rebuilds only what changed.
# Prints the output directory as the last line on stdout.
set -euo pipefail
KGR_TAG=kernel
. "$(dirname "$0")/../lib/lib.sh"
kgr_load_env

FLAVOUR=${1:-default}
# Heavy builds (this one, QEMU) take turns on a 2-core machine.
exec 9>"$KGR_CACHE/heavy.lock"
flock 9
CONFIGS="$KGR_REPO/tools/kernel/configs"
[ -f "$CONFIGS/$FLAVOUR.config" ] || kgr_die "unknown flavour '$FLAVOUR' (have: $(cd "$CONFIGS" && ls *.config | sed 's/\.config$//' | grep -v '^base$' | tr '\n' ' '))"

KSRC=$(kgr_kernel_src)
if [ ! -f "$KSRC/.kgr-copied" ]; then
	kgr_step "creating writable source tree $KSRC"
	rm -rf "$KSRC"
	cp -a "$KSRC_PRISTINE" "$KSRC"
	chmod -R u+w "$KSRC"
	touch "$KSRC/.kgr-copied"
fi
"$KGR_REPO/tools/kernel/overlay.sh" "$KSRC_PRISTINE" "$KSRC"

OUT=$(kgr_kernel_out "$FLAVOUR")
mapfile -t KARGS < <(kgr_kbuild_args)
export LIBCLANG_PATH
kmake() { make -s -C "$KSRC" O="$OUT" "${KARGS[@]}" "$@"; }

if [ ! -f "$OUT/.config" ] || [ ! -f "$OUT/.kgr-config-done" ]; then
	kgr_step "configuring $FLAVOUR flavour in $OUT"
	mkdir -p "$OUT"
	kmake tinyconfig >/dev/null
	"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$OUT" "$OUT/.config" \
		"$CONFIGS/base.config" "$CONFIGS/$FLAVOUR.config" >/dev/null
	kmake olddefconfig >/dev/null
	# Every fragment line must survive olddefconfig.
	bad=""
	while IFS= read -r line; do
		case "$line" in CONFIG_*=n) want="# ${line%=n} is not set" ;; CONFIG_*) want=$line ;; *) continue ;; esac
		grep -qxF "$want" "$OUT/.config" || bad="$bad ${line}"
	done < <(cat "$CONFIGS/base.config" "$CONFIGS/$FLAVOUR.config")
	if [ -n "$bad" ]; then
		if ! grep -q '^CONFIG_RUST=y' "$OUT/.config"; then
			kmake rustavailable >&2 || true
		fi
		kgr_die "config values did not stick:$bad"
	fi
	touch "$OUT/.kgr-config-done"
fi

# Lint all Rust code with clippy when it is available (the rustc-web fallback has none).
[ -n "$CLIPPY_DRIVER" ] && KARGS+=(CLIPPY=1)

kgr_step "building linux $KVERSION ($FLAVOUR)"
start=$(date +%s)
stamp() { { stat -c %Y "$OUT/rust/kernel.o" "$OUT/rust/helpers/helpers.o" 2>/dev/null || true; } | tr '\n' ' '; }
before=$(stamp)
kmake -j"$(nproc)" all 2>&1 | tee "$OUT/.kgr-build.log" >&2
[ "${PIPESTATUS[0]}" -eq 0 ] || kgr_die "kernel build failed (log: $OUT/.kgr-build.log)"
# Warnings in overlay files are kept until the object that shows them is rebuilt.
if [ "$(stamp)" != "$before" ]; then
	re=$(sed 's/[.]/[.]/g' "$KSRC/.kgr-overlay-manifest" | paste -sd'|')
	grep -E -B3 -A3 "($re)" "$OUT/.kgr-build.log" | grep -E -A6 '(^|: )(warning|error)' >"$OUT/.kgr-overlay-warnings" || true
fi
kgr_step "linux $KVERSION ($FLAVOUR) built in $(($(date +%s) - start)) s: $OUT/arch/x86/boot/bzImage"
if [ "${2:-}" = rustdoc ]; then
	kgr_step "rustdoc ($FLAVOUR)"
	kmake -j"$(nproc)" rustdoc >&2
	kgr_step "rustdoc: $OUT/Documentation/output/rust/rustdoc/kernel/index.html"
fi
printf '%s\n' "$OUT"
