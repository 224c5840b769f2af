#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# overlay.sh PRISTINE TREE: make TREE = PRISTINE + the project's kernel overlay.
#
# The overlay is (1) every file under the repository's rust/ directory, copied
# to the same path in the kernel tree, and (2) the patch series in
# tools/kernel/patches/series (edits of existing kernel files), applied in
# order.  The result is staged first, then synced into TREE touching only the
# files whose content changed, so kbuild rebuilds only what depends on them.
# Files that a previous overlay touched and the current one does not are
# restored from PRISTINE (or removed if PRISTINE lacks them), so the mechanism
# re-applies cleanly after any overlay change.
set -euo pipefail

PRISTINE=$1
TREE=$2
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PATCHES="$REPO/tools/kernel/patches"
MANIFEST="$TREE/.kgr-overlay-manifest"

die() {
	printf '[overlay] error: %s\n' "$*" >&2
	exit 1
}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# 1. New files at their kernel paths.
(cd "$REPO" && find rust -type f ! -name '*~' -print) | while read -r f; do
	mkdir -p "$stage/$(dirname "$f")"
	cp "$REPO/$f" "$stage/$f"
done

# 2. Patches, applied to pristine copies of the files they touch.
if [ -f "$PATCHES/series" ]; then
	grep -vE '^\s*(#|$)' "$PATCHES/series" | while read -r p; do
		[ -f "$PATCHES/$p" ] || die "patch $p listed in series is missing"
		grep -E '^\+\+\+ ' "$PATCHES/$p" | sed -E 's|^\+\+\+ [^/]*/||; s|\s.*$||' | while read -r f; do
			[ -e "$stage/$f" ] && continue
			mkdir -p "$stage/$(dirname "$f")"
			if [ -e "$PRISTINE/$f" ]; then cp "$PRISTINE/$f" "$stage/$f" && chmod u+w "$stage/$f"; fi
		done
		patch -s -p1 -d "$stage" --no-backup-if-mismatch -r - <"$PATCHES/$p" >/dev/null ||
			die "patch $p does not apply to linux $(basename "$PRISTINE")"
	done
fi

# 3. Restore files the previous overlay touched and this one does not.
(cd "$stage" && find . -type f | sed 's|^\./||' | sort) >"$stage.manifest"
if [ -f "$MANIFEST" ]; then
	comm -23 <(sort "$MANIFEST") "$stage.manifest" | while read -r f; do
		if [ -e "$PRISTINE/$f" ]; then
			cp "$PRISTINE/$f" "$TREE/$f" && chmod u+w "$TREE/$f"
		else
			rm -f "$TREE/$f"
		fi
	done
fi

# 4. Sync changed files only.
changed=0
while read -r f; do
	if ! cmp -s "$stage/$f" "$TREE/$f"; then
		mkdir -p "$TREE/$(dirname "$f")"
		cp "$stage/$f" "$TREE/$f"
		changed=$((changed + 1))
	fi
done <"$stage.manifest"
mv "$stage.manifest" "$MANIFEST"
printf '[overlay] %d files in overlay, %d changed\n' "$(wc -l <"$MANIFEST")" "$changed" >&2
