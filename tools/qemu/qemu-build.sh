#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# qemu-build.sh: build qemu-system-x86_64 (TCG only) with the KVM PV host model.
#
# Idempotent and incremental:
#  1. tools/qemu/fetch.sh provides the pristine QEMU 10.0.x tree;
#  2. tools/qemu/patches/series is applied with "patch -p1" onto a fresh
#     (hard-linked) copy of the pristine tree, only when the series hash
#     (series file + patches) changes: $KGR_CACHE/qemu/patched-VER-HASH;
#  3. the files any series touched are synced into the one source tree per
#     QEMU version ($KGR_CACHE/qemu/src-VER) with cmp-before-copy, so
#     unchanged files keep their mtime and ninja rebuilds only what a patch
#     edit really changed;
#  4. configure (once per version and flag set) and "ninja -j2" in
#     $KGR_CACHE/qemu/build-VER, both under the machine's heavy-job lock
#     ($KGR_CACHE/heavy.lock) with nice; ninja is skipped (no lock taken)
#     when the binary was already built from this series and configuration.
#     Do not edit src-VER by hand: change the patches.
# Progress goes to stderr as "[qemu] ..."; the last stdout line is the
# absolute path of qemu-system-x86_64.
#
# The binary has no firmware of its own ("+ds" tarball, --disable-install-blobs):
# run it with the Debian firmware and without the default NIC (its option ROM,
# efi-e1000.rom, is not installed by the Debian packages used here):
#   qemu-system-x86_64 -L /usr/share/qemu -L /usr/share/seabios -nic none \
#       -M pc -cpu max,x-tcg-kvm-pv=on ...
# See Documentation/virt/kvm_guest_rs/host-model.rst.
set -euo pipefail
KGR_TAG=qemu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/lib.sh"

QCACHE="$KGR_CACHE/qemu"
PATCHES="$HERE/patches"
LOCK="$KGR_CACHE/heavy.lock"
HOST_PKGS=(libglib2.0-dev ninja-build libpixman-1-dev libfdt-dev)
CONFIGURE_FLAGS=(--target-list=x86_64-softmmu --without-default-features --enable-tcg
	--enable-fdt=system --disable-install-blobs --disable-docs --disable-werror)
# Runs "$@" under the machine's heavy-job lock, niced; records in $LOCKED
# when the lock was acquired, to tell waiting from working.
LOCKED=$(mktemp)
trap 'rm -f "$LOCKED"' EXIT
heavy() { flock "$LOCK" nice -n 5 sh -c 'date +%s >"$0"; exec "$@"' "$LOCKED" "$@"; }

# --- Step 1: host build dependencies -------------------------------------------
kgr_ensure_pkgs "${HOST_PKGS[@]}"
mkdir -p "$QCACHE" "$(dirname "$LOCK")"

# --- Step 2: pristine source -------------------------------------------------------
PRISTINE=$("$HERE/fetch.sh" | tail -n1)
[ -f "$PRISTINE/VERSION" ] || kgr_die "fetch: fetch.sh gave no source tree"
VER=$(cat "$PRISTINE/VERSION")

# --- Step 3: apply the series onto a fresh copy when it changed ----------------
[ -f "$PATCHES/series" ] || kgr_die "patches: $PATCHES/series missing"
mapfile -t SERIES < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$PATCHES/series")
for p in "${SERIES[@]}"; do [ -f "$PATCHES/$p" ] || kgr_die "patches: $p listed in series but missing"; done
HASH=$( (cat "$PATCHES/series" && for p in "${SERIES[@]}"; do cat "$PATCHES/$p"; done) | sha256sum | cut -c1-12)
PATCHED="$QCACHE/patched-$VER-$HASH"
if [ -f "$PATCHED/.kgr-series" ]; then
	kgr_step "patches: series $HASH already applied ($PATCHED)"
else
	kgr_step "patches: applying ${#SERIES[@]} patches (series $HASH) onto a copy of $VER"
	for old in "$QCACHE/patched-$VER-"*; do
		[ -d "$old" ] && rm -rf "$old"
	done
	tmp="$PATCHED.tmp"
	rm -rf "$tmp"
	# Hard links are enough: patch(1) replaces the files it changes.
	cp -al "$PRISTINE" "$tmp"
	rm -f "$tmp/.kgr-pristine"
	: >"$tmp/.kgr-touched"
	for p in "${SERIES[@]}"; do
		patch -d "$tmp" -p1 -s -f -N --no-backup-if-mismatch <"$PATCHES/$p" >/dev/null 2>&1 ||
			kgr_die "patches: $p does not apply to QEMU $VER (try: patch -d <pristine copy> -p1 --dry-run < $PATCHES/$p)"
		sed -n -e 's|^+++ b/\([^[:space:]]*\).*|\1|p' -e 's|^--- a/\([^[:space:]]*\).*|\1|p' "$PATCHES/$p" >>"$tmp/.kgr-touched"
	done
	sort -u -o "$tmp/.kgr-touched" "$tmp/.kgr-touched"
	echo "$HASH" >"$tmp/.kgr-series"
	mv "$tmp" "$PATCHED"
fi

# --- Step 4: sync into the build's source tree ------------------------------------
SRC="$QCACHE/src-$VER"
if [ ! -f "$SRC/.kgr-copied" ]; then
	kgr_step "source: creating $SRC"
	rm -rf "$SRC"
	# A real copy: the sync below writes into these files.
	cp -a "$PATCHED" "$SRC"
	touch "$SRC/.kgr-copied"
elif [ "$(cat "$SRC/.kgr-series" 2>/dev/null)" = "$HASH" ]; then
	kgr_step "source: $SRC up to date with series $HASH"
else
	# Files touched by the old or the new series; all others equal pristine.
	changed=0
	while IFS= read -r f; do
		[ -n "$f" ] || continue
		if [ -e "$PATCHED/$f" ]; then
			if ! cmp -s "$PATCHED/$f" "$SRC/$f"; then
				mkdir -p "$(dirname "$SRC/$f")"
				cp "$PATCHED/$f" "$SRC/$f"
				changed=$((changed + 1))
			fi
		elif [ -e "$SRC/$f" ]; then
			rm -f "$SRC/$f"
			changed=$((changed + 1))
		fi
	done < <(sort -u "$SRC/.kgr-touched" "$PATCHED/.kgr-touched")
	cp "$PATCHED/.kgr-touched" "$SRC/.kgr-touched"
	cp "$PATCHED/.kgr-series" "$SRC/.kgr-series"
	kgr_step "source: $changed file(s) updated in $SRC for series $HASH"
fi

# --- Step 5: configure ------------------------------------------------------------
BUILD="$QCACHE/build-$VER"
want_cfg="${CONFIGURE_FLAGS[*]}"
if [ -f "$BUILD/build.ninja" ] && [ "$(cat "$BUILD/.kgr-configure" 2>/dev/null)" = "$want_cfg" ]; then
	kgr_step "configure: $BUILD already configured"
else
	kgr_step "configure: ${CONFIGURE_FLAGS[*]}"
	rm -rf "$BUILD"
	mkdir -p "$BUILD"
	(cd "$BUILD" && heavy "$SRC/configure" "${CONFIGURE_FLAGS[@]}" >"$BUILD/configure.log" 2>&1) ||
		kgr_die "configure failed; see $BUILD/configure.log"
	printf '%s\n' "$want_cfg" >"$BUILD/.kgr-configure"
fi

# --- Step 6: build ----------------------------------------------------------------
BIN="$BUILD/qemu-system-x86_64"
# The source tree only changes through the sync above, so a binary built
# from this series and configuration needs neither the lock nor ninja.
want_built="$VER $HASH $want_cfg"
if [ -x "$BIN" ] && [ "$(cat "$BUILD/.kgr-built" 2>/dev/null)" = "$want_built" ]; then
	kgr_step "ninja: qemu-system-x86_64 is up to date for series $HASH"
	printf '%s\n' "$BIN"
	exit 0
fi
kgr_step "ninja: building qemu-system-x86_64 in $BUILD"
start=$(date +%s)
heavy ninja -C "$BUILD" -j2 qemu-system-x86_64 >"$BUILD/ninja.log" 2>&1 || {
	grep -E -A8 '^FAILED|error:' "$BUILD/ninja.log" | grep -v '^cc \|^c++ ' | head -n 60 >&2
	kgr_die "ninja failed; see $BUILD/ninja.log"
}
[ -x "$BIN" ] || kgr_die "ninja succeeded but $BIN is missing"
printf '%s\n' "$want_built" >"$BUILD/.kgr-built"
now=$(date +%s)
got=$(cat "$LOCKED" 2>/dev/null)
[ -n "$got" ] || got=$start
kgr_step "ninja: done in $((now - got)) s (after $((got - start)) s waiting for $LOCK)"
printf '%s\n' "$BIN"
