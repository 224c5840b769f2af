#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# series.sh OUTDIR: write the upstream series and check it, as KTAP.
#
# The series (git format-patch files in OUTDIR) is built from
# tools/kernel/series.map against the pristine Linux tree: each patch of
# tools/kernel/patches/ with the new files it introduces (which the overlay
# only copies), and a last patch that adds the driver under samples/ with its
# Kconfig (CONFIG_SAMPLE_KVM_GUEST_RS), so that it builds in tree.  Checks:
# the patches apply to the pristine tree in order, and
# scripts/checkpatch.pl --strict finds nothing in them but what
# tools/kernel/series.checkpatch explains.
set -uo pipefail
KGR_TAG=series
. "$(dirname "$0")/../lib/lib.sh"
kgr_load_env
OUT=${1:?usage: series.sh OUTDIR}
MAP="$KGR_REPO/tools/kernel/series.map"
ACCEPTED="$KGR_REPO/tools/kernel/series.checkpatch"
PATCHES="$KGR_REPO/tools/kernel/patches"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree="$work/tree"
g() { git -C "$tree" -c user.name="kvm-guest-rs developers" -c user.email=kvm@vger.kernel.org "$@"; }

# The pristine copies of every existing file the series edits.
touched() {
	for p in "$PATCHES"/0*.patch; do sed -n 's|^+++ b/||p' "$p"; done
	printf '%s\n' samples/Kconfig samples/Makefile
}
copy_pristine() {
	local f
	touched | sort -u | while read -r f; do
		mkdir -p "$1/$(dirname "$f")"
		cp "$KSRC_PRISTINE/$f" "$1/$f"
	done
}
mkdir -p "$tree"
copy_pristine "$tree"
g init -q && g add -A && g commit -q -m "linux $KVERSION (the files the series touches)" ||
	kgr_die "cannot create the scratch tree"

# message PATCH: the commit message of a patch file (subject, blank, body).
message() {
	awk '/^Subject: /{ sub(/^Subject: (\[PATCH[^]]*\] )?/, ""); s = $0; insub = 1; next }
		insub && /^ / { s = s $0; next }
		insub { insub = 0; print s; print ""; inbody = 1; next }
		inbody && /^---$/ { exit }
		inbody { print }' "$1"
}

n=0
while IFS=: read -r p newfiles; do
	case "$p" in "" | "#"*) continue ;; esac
	n=$((n + 1))
	if [ "$p" = samples ]; then
		cat >"$work/msg" <<'EOF'
samples: rust: add kvm_guest_rs, KVM paravirtual guest features in Rust

A loadable counterpart of the in-tree KVM guest code (arch/x86/kernel/
kvm.c, kvmclock.c), written against the abstractions of this series:
the kvm-clock-rs clocksource with per-CPU records registered from CPU
hotplug callbacks, sysfs counters under /sys/kernel/kvm_guest_rs/, and
a teardown that leaves every paravirtual MSR at 0.  Unlike the in-tree
guest it can be loaded and unloaded at run time; steal time, PV EOI and
async page faults follow.  Selected with CONFIG_SAMPLE_KVM_GUEST_RS.
EOF
		mkdir -p "$tree/samples/kvm_guest_rs"
		sed 's|^# Kconfig entry of kvm_guest_rs for when the series is carried in a kernel$|# Kconfig entry of kvm_guest_rs, sourced by samples/Kconfig.|; /^# tree (samples\/Kconfig sources it)/,/^# depends on are set by/d' \
			"$KGR_REPO/Kconfig" >"$tree/samples/kvm_guest_rs/Kconfig"
		printf '%s\n' '# SPDX-License-Identifier: GPL-2.0' \
			'obj-$(CONFIG_SAMPLE_KVM_GUEST_RS) += kvm_guest_rs.o' >"$tree/samples/kvm_guest_rs/Makefile"
		sed -i 's|^source "samples/rust/Kconfig"$|source "samples/rust/Kconfig"\n\nsource "samples/kvm_guest_rs/Kconfig"|' "$tree/samples/Kconfig"
		sed -i 's|^obj-$(CONFIG_SAMPLES_RUST)\t\t+= rust/$|obj-$(CONFIG_SAMPLES_RUST)\t\t+= rust/\nobj-$(CONFIG_SAMPLE_KVM_GUEST_RS)\t+= kvm_guest_rs/|' "$tree/samples/Makefile"
	else
		[ -f "$PATCHES/$p" ] || kgr_die "series.map names $p, which tools/kernel/patches/ lacks"
		patch -s -p1 -d "$tree" --no-backup-if-mismatch <"$PATCHES/$p" >/dev/null ||
			kgr_die "$p does not apply in series order"
		message "$PATCHES/$p" >"$work/msg"
	fi
	for f in $newfiles; do
		[ -f "$KGR_REPO/$f" ] || kgr_die "series.map: $f does not exist"
		mkdir -p "$tree/$(dirname "$f")"
		cp "$KGR_REPO/$f" "$tree/$f"
	done
	g add -A && g commit -q -s -F "$work/msg" || kgr_die "cannot commit patch $n ($p)"
done <"$MAP"

# Every new file of the overlay and of the driver is in some patch.
missing=$(cd "$KGR_REPO" && find rust samples/kvm_guest_rs -name '*.rs' -o -name '*.c' -o -name '*.S' |
	while read -r f; do [ -f "$tree/$f" ] || echo "$f"; done)

rm -rf "$OUT"
mkdir -p "$OUT"
g format-patch -q -o "$OUT" "$(g rev-list --max-parents=0 HEAD)..HEAD"

# The checks, as KTAP.
mapfile -t series < <(ls "$OUT"/*.patch)
echo "KTAP version 1"
extra=0
[ -n "${SERIES_BUILD:-}" ] && extra=1
[ -n "${SERIES_BUILD:-}" ] && [ -n "${SERIES_BISECT:-}" ] && extra=$((extra + ${#series[@]} - 1))
echo "1..$((2 * ${#series[@]} + 1 + extra))"
i=0
result() {
	i=$((i + 1))
	if [ "$1" = 0 ]; then echo "ok $i $2"; else echo "not ok $i $2"; fi
}
[ -z "$missing" ]
result $? "the series carries every new file of rust/ and samples/kvm_guest_rs/${missing:+ (missing: $(echo $missing))}"
check="$work/check"
mkdir -p "$check"
copy_pristine "$check"
for s in "${series[@]}"; do
	name=$(basename "$s")
	patch -s -p1 -d "$check" --no-backup-if-mismatch <"$s" >"$work/apply.log" 2>&1
	result $? "applies to pristine linux $KVERSION in order: $name"
	perl "$KSRC_PRISTINE/scripts/checkpatch.pl" --strict --no-tree --show-types --terse "$s" \
		>"$work/cp.log" 2>&1
	# --terse lines: FILE:LINE: LEVEL:TYPE: message.  Types accepted with a reason in ACCEPTED.
	bad=$(grep -E ': (ERROR|WARNING|CHECK):' "$work/cp.log" | while read -r l; do
		t=$(printf '%s' "$l" | sed -E 's/.*: (ERROR|WARNING|CHECK):([A-Z_]+):.*/\2/')
		grep -qE "^$t[[:space:]]" "$ACCEPTED" 2>/dev/null || printf '%s\n' "$l"
	done)
	total=$(grep -cE ': (ERROR|WARNING|CHECK):' "$work/cp.log")
	[ -z "$bad" ]
	result $? "checkpatch --strict: $name ($total remarks, all of explained types)"
	[ -n "$bad" ] && printf '%s\n' "$bad" | head -n 5 | sed 's/^/# /'
done
echo "# series: $OUT (${#series[@]} patches)"

# With SERIES_BUILD=FLAVOUR: build it in tree, in a copy of the pristine tree
# that persists under the cache (files are synced by content, so kbuild
# rebuilds only what changed), with the flavour's config fragments plus
# CONFIG_SAMPLE_KVM_GUEST_RS=m.
if [ -n "${SERIES_BUILD:-}" ]; then
	intree="$KGR_CACHE/series-tree/linux-$KVERSION"
	out="$KGR_CACHE/series-tree/build-$SERIES_BUILD"
	if [ ! -f "$intree/.kgr-copied" ]; then
		kgr_step "creating the in-tree build tree $intree"
		rm -rf "$intree" && mkdir -p "$(dirname "$intree")" && cp -a "$KSRC_PRISTINE" "$intree" &&
			chmod -R u+w "$intree" && touch "$intree/.kgr-copied" || kgr_die "cannot copy the pristine tree"
	fi
	# sync_tree DIR [SUBDIR]: make the in-tree copy hold DIR's version of every
	# file the series touches (below SUBDIR; a file the series adds and DIR
	# lacks is removed).
	sync_tree() {
		(cd "$check" && find "./${2:-}" -type f | sed 's|^\./||; s|^/||') | while read -r f; do
			if [ -f "$1/$f" ]; then
				cmp -s "$1/$f" "$intree/$f" || { mkdir -p "$intree/$(dirname "$f")" && cp "$1/$f" "$intree/$f"; }
			elif [ ! -e "$KSRC_PRISTINE/$f" ]; then
				rm -f "$intree/$f"
			fi
		done
	}
	sync_tree "$check"
	mapfile -t KARGS < <(kgr_kbuild_args)
	[ -n "$CLIPPY_DRIVER" ] && KARGS+=(CLIPPY=1)
	export LIBCLANG_PATH
	km() { make -s -C "$intree" O="$out" "${KARGS[@]}" "$@"; }
	# Configured again whenever a fragment changes (the stamp holds their hash).
	cfg_key=$(cat "$KGR_REPO/tools/kernel/configs/base.config" "$KGR_REPO/tools/kernel/configs/$SERIES_BUILD.config" |
		sha256sum | cut -c1-16)
	if [ "$(cat "$out/.kgr-config-done" 2>/dev/null)" != "$cfg_key" ]; then
		mkdir -p "$out"
		km tinyconfig >/dev/null
		printf '%s\n' CONFIG_SAMPLES=y CONFIG_SAMPLE_KVM_GUEST_RS=m >"$work/samples.config"
		"$intree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
			"$KGR_REPO/tools/kernel/configs/base.config" "$KGR_REPO/tools/kernel/configs/$SERIES_BUILD.config" \
			"$work/samples.config" >/dev/null
		km olddefconfig >/dev/null
		grep -q '^CONFIG_SAMPLE_KVM_GUEST_RS=m' "$out/.config" || kgr_die "CONFIG_SAMPLE_KVM_GUEST_RS=m did not stick"
		echo "$cfg_key" >"$out/.kgr-config-done"
	fi
	# With SERIES_BISECT=1: the kernel crate builds after every patch but the
	# last (which adds the driver and is built by the full build below).  Those
	# patches touch only rust/, so the config and samples/ stay as they are.
	if [ -n "${SERIES_BISECT:-}" ]; then
		step="$work/step"
		mkdir -p "$step"
		copy_pristine "$step"
		for s in "${series[@]:0:${#series[@]}-1}"; do
			name=$(basename "$s")
			patch -s -p1 -d "$step" --no-backup-if-mismatch <"$s" >/dev/null 2>&1
			sync_tree "$step" rust
			kgr_step "bisect: building rust/ at $name"
			km -j"$(nproc)" rust/ >"$work/bisect.log" 2>&1
			rc=$?
			# A warning is an error with CONFIG_WERROR.
			grep -qE '^(warning|error)' "$work/bisect.log" && rc=1
			[ $rc = 0 ] || grep -E -A5 '^(warning|error)' "$work/bisect.log" | head -n 15 | sed 's/^/# /'
			result $rc "bisect: the kernel crate builds without warnings at $name"
		done
	fi
	sync_tree "$check"
	kgr_step "building the series in tree ($SERIES_BUILD flavour) in $out"
	km -j"$(nproc)" all >"$work/build.log" 2>&1
	rc=$?
	[ $rc = 0 ] || tail -n 20 "$work/build.log" | sed 's/^/# /'
	[ $rc = 0 ] && [ -f "$out/samples/kvm_guest_rs/kvm_guest_rs.ko" ]
	result $? "builds in tree ($SERIES_BUILD flavour): bzImage and samples/kvm_guest_rs/kvm_guest_rs.ko"
fi
exit 0
