#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# fetch.sh: get a pristine QEMU 10.0.x source tree that configures offline.
#
# Idempotent.  Everything comes from package registries:
#  - the upstream tarball is Debian's "+ds" orig tarball of source package
#    qemu, fetched through the project's private apt configuration
#    ($KGR_CACHE/apt, written by tools/setup/setup.sh).  The newest 10.0.x in
#    the Sources indexes is taken unless QEMU_DEB_VERSION names one.  Its
#    SHA-256 is checked against the Checksums-Sha256 field of the Sources
#    index.  When "apt-get source" fails (the mirror has been seen to 404 on
#    the .dsc), the orig tarball alone is fetched from the URI of the private
#    sources.list + the index's Directory field, through apt-helper.
#  - "+ds" drops the vendored Python wheels, so the meson and pycotap wheels
#    that python/wheels normally carries come from PyPI ("pip download").
#
# Layout: $KGR_CACHE/qemu/dl (downloads), $KGR_CACHE/qemu/qemu-VER-pristine
# (unpacked tree + wheels; never modified afterwards: qemu-build.sh hard-links it).  One progress line per
# step goes to stderr; the last stdout line is the pristine tree's path.
set -euo pipefail
KGR_TAG=qemu
. "$(dirname "$0")/../lib/lib.sh"

QEMU_SERIES=${QEMU_SERIES:-10.0}
MESON_WHEEL=meson==1.5.0
PYCOTAP_WHEEL=pycotap==1.3.1

QCACHE="$KGR_CACHE/qemu"
DL="$QCACHE/dl"
APT="$KGR_CACHE/apt"
mkdir -p "$DL/wheels"

apt_opts=(-o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache")

# --- Step 1: choose the Debian source version -----------------------------------
[ -f "$APT/sources.list" ] && [ -d "$APT/lists" ] ||
	kgr_die "source index: private apt configuration $APT missing; run tools/setup/setup.sh first"
grep -q '^deb-src ' "$APT/sources.list" ||
	kgr_die "source index: $APT/sources.list has no deb-src lines; run tools/setup/setup.sh"
showsrc=$(apt-cache "${apt_opts[@]}" showsrc qemu 2>/dev/null) ||
	kgr_die "source index: 'apt-cache showsrc qemu' failed with the private apt configuration"

# One line per source record: version, directory, orig tarball sha256 and name.
records=$(printf '%s\n' "$showsrc" | awk '
	/^Package: / { pkg = $2 }
	/^Version: / { ver = $2 }
	/^Directory: / { dir = $2 }
	/^Checksums-Sha256:/ { insum = 1; next }
	/^ / && insum { if ($3 ~ /\.orig\.tar\.[a-z0-9]+$/) { sha = $1; file = $3 }; next }
	{ insum = 0 }
	/^$/ { if (pkg == "qemu" && ver != "" && file != "") print ver, dir, sha, file;
	       pkg = ver = dir = sha = file = "" }
	END { if (pkg == "qemu" && ver != "" && file != "") print ver, dir, sha, file }')
[ -n "$records" ] || kgr_die "source index: no 'qemu' source record in the private Sources indexes"

best=""
while read -r ver dir sha file; do
	up=${ver#*:}
	up=${up%%+*}
	up=${up%%-*}
	if [ -n "${QEMU_DEB_VERSION:-}" ]; then
		[ "$ver" = "$QEMU_DEB_VERSION" ] || continue
	else
		case "$up" in "$QEMU_SERIES".*) ;; *) continue ;; esac
	fi
	if [ -z "$best" ] || dpkg --compare-versions "$ver" gt "${best%% *}"; then
		best="$ver $dir $sha $file"
	fi
done <<<"$records"
[ -n "$best" ] || kgr_die "source index: no qemu ${QEMU_DEB_VERSION:-$QEMU_SERIES.x} source in the private Sources indexes"
read -r DEB_VER DIRECTORY SHA256 ORIG <<<"$best"
UPSTREAM=${DEB_VER#*:}
UPSTREAM=${UPSTREAM%%+*}
UPSTREAM=${UPSTREAM%%-*}
kgr_step "source: qemu $DEB_VER (upstream $UPSTREAM), $ORIG"

PRISTINE="$QCACHE/qemu-$UPSTREAM-pristine"
STAMP="$PRISTINE/.kgr-pristine"
want_stamp="$ORIG $SHA256 $MESON_WHEEL $PYCOTAP_WHEEL"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ]; then
	kgr_step "pristine tree: $PRISTINE present (SHA-256 verified when unpacked)"
	printf '%s\n' "$PRISTINE"
	exit 0
fi

# --- Step 2: download and verify the orig tarball ---------------------------------
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }
if sha_ok "$DL/$ORIG"; then
	kgr_step "download: $ORIG present, SHA-256 matches the Sources index"
else
	kgr_step "download: apt-get source --download-only qemu=$DEB_VER"
	tmp=$(mktemp -d "$DL/.apt-src.XXXXXX")
	if (cd "$tmp" && apt-get "${apt_opts[@]}" -o Debug::NoLocking=1 -o APT::Sandbox::User=root \
		-qq source --download-only "qemu=$DEB_VER" >/dev/null 2>&1) && [ -f "$tmp/$ORIG" ]; then
		mv -f "$tmp/$ORIG" "$DL/$ORIG"
	else
		# The .dsc or .debian.tar may be missing on the mirror: get the orig
		# tarball alone from the mirror URI of the deb-src lines.
		uri=$(awk '/^deb-src / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$APT/sources.list")
		[ -n "$uri" ] || kgr_die "download: no mirror URI in $APT/sources.list"
		kgr_step "download: apt-get source failed; fetching $DIRECTORY/$ORIG alone"
		/usr/lib/apt/apt-helper download-file "${uri%/}/$DIRECTORY/$ORIG" "$tmp/$ORIG" "SHA256:$SHA256" >/dev/null 2>&1 ||
			kgr_die "download: cannot fetch $ORIG (qemu $DEB_VER) from the Debian mirror"
		mv -f "$tmp/$ORIG" "$DL/$ORIG"
	fi
	rm -rf "$tmp"
	sha_ok "$DL/$ORIG" || kgr_die "download: SHA-256 of $ORIG does not match the Sources index ($SHA256)"
	kgr_step "download: $ORIG SHA-256 $SHA256 matches the Sources index"
fi

# --- Step 3: Python wheels for an offline configure ----------------------------
for w in "$MESON_WHEEL" "$PYCOTAP_WHEEL"; do
	name=${w%%==*}
	v=${w#*==}
	if ls "$DL/wheels/$name-$v-"*.whl >/dev/null 2>&1; then
		kgr_step "wheels: $name $v present"
	else
		kgr_step "wheels: pip download $w"
		python3 -m pip download -q --no-deps --only-binary=:all: -d "$DL/wheels" "$w" >/dev/null 2>&1 ||
			kgr_die "wheels: 'pip download $w' from PyPI failed"
	fi
done

# --- Step 4: unpack ---------------------------------------------------------------
kgr_step "unpack: $ORIG -> $PRISTINE"
tmp=$(mktemp -d "$QCACHE/.unpack.XXXXXX")
tar --no-same-owner -xf "$DL/$ORIG" -C "$tmp" || kgr_die "unpack: tar failed on $ORIG"
top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d)
[ -n "$top" ] && [ -f "$top/VERSION" ] || kgr_die "unpack: $ORIG has no top-level QEMU directory"
[ "$(cat "$top/VERSION")" = "$UPSTREAM" ] || kgr_die "unpack: VERSION is $(cat "$top/VERSION"), expected $UPSTREAM"
mkdir -p "$top/python/wheels"
cp "$DL/wheels/meson-${MESON_WHEEL#*==}-"*.whl "$DL/wheels/pycotap-${PYCOTAP_WHEEL#*==}-"*.whl "$top/python/wheels/"
printf '%s\n' "$want_stamp" >"$top/.kgr-pristine"
rm -rf "$PRISTINE"
mv "$top" "$PRISTINE"
rmdir "$tmp"
kgr_step "pristine tree: $PRISTINE ready"
printf '%s\n' "$PRISTINE"
