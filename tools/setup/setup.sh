#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Idempotent toolchain and source setup for kvm-guest-rs.
#
# Everything comes from package registries: Debian (system apt for build
# tools, a private apt configuration for trixie-backports sources), crates.io
# (bindgen-cli).  Re-running it when everything is present does nothing but
# print one line per step.  It writes $KGR_CACHE/env.mk, which the top-level
# Makefile includes.
#
# The machine's apt configuration is never modified: Debian sources we need
# from other suites are fetched through a private configuration under
# $KGR_CACHE/apt whose mirror URI is read, at run time, from the machine's own
# apt sources.

set -euo pipefail

CACHE=${KGR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvm-guest-rs}
KERNEL_SERIES=${KERNEL_SERIES:-7.3}
BINDGEN_VERSION=0.72.1
LLVM_VERSION=19

# Host packages installed through the machine's own apt.
HOST_PKGS=(
	"clang-$LLVM_VERSION" "libclang-$LLVM_VERSION-dev" "lld-$LLVM_VERSION" "llvm-$LLVM_VERSION"
	flex bison bc libelf-dev libssl-dev cpio busybox-static xz-utils
	qemu-system-x86 python3
	# kexec(8) for the guest test of the teardown at kexec (tools/runner/mkinitramfs).
	kexec-tools
)

KGR_TAG=setup
. "$(dirname "$0")/../lib/lib.sh"
step() { kgr_step "$@"; }
die() { kgr_die "$@"; }

mkdir -p "$CACHE"

# --- Step 1: host packages ----------------------------------------------------
kgr_ensure_pkgs "${HOST_PKGS[@]}"

# --- Step 2: private apt configuration -----------------------------------------
APT="$CACHE/apt"
mirror_uri() {
	local uri=""
	# deb822 sources first, then one-line sources.
	uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	if [ -z "$uri" ]; then
		uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			grep -v security | sed -E 's/^deb (\[[^]]*\] )?//' | awk '{ print $1; exit }' || true)
	fi
	printf '%s' "$uri"
}
apt_private() {
	apt-get -o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" -o Debug::NoLocking=1 "$@"
}
apt_cache_private() {
	apt-cache -o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" "$@"
}
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$CACHE/dl"
URI=$(mirror_uri)
[ -n "$URI" ] || die "private apt: no Debian mirror URI found in /etc/apt/sources.list*"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
want_sources="deb [signed-by=$KEYRING] $URI trixie main
deb [signed-by=$KEYRING] $URI trixie-backports main
deb-src [signed-by=$KEYRING] $URI trixie main
deb-src [signed-by=$KEYRING] $URI trixie-backports main
deb-src [signed-by=$KEYRING] $URI bookworm-backports main"
# Lists are refreshed when the sources change or are older than a day.
if [ ! -f "$APT/sources.list" ] || [ "$(cat "$APT/sources.list")" != "$want_sources" ] ||
	[ -n "$(find "$APT/lists" -maxdepth 1 -name '*Packages*' -mtime +0 -print -quit)" ] ||
	[ -z "$(find "$APT/lists" -maxdepth 1 -name '*Packages*' -print -quit)" ]; then
	printf '%s\n' "$want_sources" >"$APT/sources.list"
	step "private apt: updating package lists (mirror from the machine's apt sources)"
	apt_private update -qq >/dev/null 2>&1 || die "private apt: 'apt-get update' failed for trixie/trixie-backports"
else
	step "private apt: lists up to date"
fi

# Downloads PKG=VERSION into $CACHE/dl and prints the .deb path.
fetch_deb() {
	local pkg=$1 ver=$2 f
	f=$(ls "$CACHE/dl/${pkg}_"*.deb 2>/dev/null | grep -F "_${ver//:/%3a}_" | head -n1 || true)
	if [ -z "$f" ]; then
		(cd "$CACHE/dl" && apt_private download -qq "$pkg=$ver" >/dev/null 2>&1) ||
			die "fetch: cannot download Debian package $pkg=$ver"
		f=$(ls "$CACHE/dl/${pkg}_"*.deb | grep -F "_${ver//:/%3a}_" | head -n1)
	fi
	printf '%s' "$f"
}

# --- Step 3: rust-src matching the machine's rustc -----------------------------
command -v rustc >/dev/null || die "rust: rustc not found (the machine's rustup toolchain is required)"
RUSTC_VER=$(rustc --version | awk '{ print $2 }')
RUST_LIB_SRC=""
RUST_NOTE=""
src_dir="$CACHE/rust-src-$RUSTC_VER"
if [ -f "$src_dir/.done" ]; then
	step "rust-src $RUSTC_VER: present"
else
	ver=$(apt_cache_private madison rust-src | awk -F' *\\| *' -v v="$RUSTC_VER" 'index($2, v "+") == 1 { print $2; exit }')
	if [ -n "$ver" ]; then
		step "rust-src $RUSTC_VER: fetching Debian rust-src $ver"
		deb=$(fetch_deb rust-src "$ver")
		rm -rf "$src_dir" && mkdir -p "$src_dir"
		dpkg-deb -x "$deb" "$src_dir" || die "rust-src: cannot unpack $deb"
		touch "$src_dir/.done"
	fi
fi
if [ -f "$src_dir/.done" ]; then
	RUST_LIB_SRC="$src_dir/usr/lib/rustlib/src/rust/library"
	RUSTC=$(command -v rustc)
	CLIPPY_DRIVER=$(command -v clippy-driver || true)
	RUSTFMT=$(command -v rustfmt || true)
else
	# Fallback: Debian's rustc-web with its own rust-web-src.  It builds, but
	# has no clippy, so CLIPPY=1 checks cannot run.
	RUST_NOTE="no Debian rust-src matches rustc $RUSTC_VER: using rustc-web (NO CLIPPY)"
	printf '\n[setup] WARNING: %s\n\n' "$RUST_NOTE" >&2
	if ! dpkg-query -W rustc-web >/dev/null 2>&1; then
		[ "$(id -u)" -eq 0 ] || die "rust fallback: need root to install rustc-web"
		apt_private install -y -qq --no-install-recommends -t trixie rustc-web rust-web-src >/dev/null ||
			die "rust fallback: cannot install rustc-web rust-web-src"
	fi
	RUSTC=/usr/bin/rustc-web
	RUST_LIB_SRC=/usr/lib/rust-web/lib/rustlib/src/rust/library
	CLIPPY_DRIVER=""
	RUSTFMT=$(command -v rustfmt || true)
fi
[ -d "$RUST_LIB_SRC/core" ] || die "rust-src: $RUST_LIB_SRC has no core/"

# --- Step 4: bindgen-cli -------------------------------------------------------
BINDGEN="$CACHE/cargo/bin/bindgen"
if [ -x "$BINDGEN" ] && "$BINDGEN" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
	step "bindgen $BINDGEN_VERSION: present"
else
	step "bindgen $BINDGEN_VERSION: cargo install --locked (about 1 min)"
	cargo install -q --locked --root "$CACHE/cargo" bindgen-cli --version "$BINDGEN_VERSION" ||
		die "bindgen: 'cargo install --locked bindgen-cli --version $BINDGEN_VERSION' failed"
fi
LIBCLANG_PATH=/usr/lib/llvm-$LLVM_VERSION/lib
[ -e "$LIBCLANG_PATH/libclang.so" ] || [ -e "$LIBCLANG_PATH/libclang.so.1" ] ||
	die "bindgen: libclang $LLVM_VERSION not found in $LIBCLANG_PATH"

# --- Step 5: kernel source ----------------------------------------------------
kver=$(apt_cache_private madison "linux-source-$KERNEL_SERIES" | awk -F' *\\| *' '{ print $2 }' | sort -V | tail -n1)
if [ -z "$kver" ]; then
	die "kernel: no linux-source-$KERNEL_SERIES in Debian trixie/trixie-backports; set KERNEL_SERIES (tools/setup/setup.sh) and the config fragments to an available series"
fi
KVERSION=${kver%%-*}
KVERSION=${KVERSION#*:}
KSRC_PRISTINE="$CACHE/src/linux-$KVERSION-pristine"
if [ -f "$KSRC_PRISTINE/.done" ]; then
	step "kernel source $KVERSION: present"
else
	step "kernel source $KVERSION: fetching Debian linux-source-$KERNEL_SERIES $kver"
	deb=$(fetch_deb "linux-source-$KERNEL_SERIES" "$kver")
	tmp="$CACHE/src/.unpack.$$"
	rm -rf "$tmp" && mkdir -p "$tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards '*/linux-source-*.tar.*' ||
		die "kernel: cannot unpack $deb"
	tarball=$(find "$tmp" -name "linux-source-*.tar.*" | head -n1)
	tar -x -C "$tmp" -f "$tarball" || die "kernel: cannot unpack $tarball"
	rm -rf "$KSRC_PRISTINE"
	mv "$tmp/linux-source-$KERNEL_SERIES" "$KSRC_PRISTINE"
	rm -rf "$tmp"
	chmod -R a-w "$KSRC_PRISTINE"
	touch "$KSRC_PRISTINE/.done" 2>/dev/null || { chmod u+w "$KSRC_PRISTINE"; touch "$KSRC_PRISTINE/.done"; chmod u-w "$KSRC_PRISTINE"; }
fi

# --- Step 6: write env.mk -----------------------------------------------------
env_mk="$CACHE/env.mk"
new_env="# Generated by tools/setup/setup.sh; do not edit.
KGR_CACHE := $CACHE
KVERSION := $KVERSION
KSRC_PRISTINE := $KSRC_PRISTINE
RUSTC := $RUSTC
RUST_LIB_SRC := $RUST_LIB_SRC
CLIPPY_DRIVER := $CLIPPY_DRIVER
RUSTFMT := $RUSTFMT
BINDGEN := $BINDGEN
LIBCLANG_PATH := $LIBCLANG_PATH
LLVM_SUFFIX := -$LLVM_VERSION
RUST_NOTE := $RUST_NOTE"
if [ ! -f "$env_mk" ] || [ "$(cat "$env_mk")" != "$new_env" ]; then
	printf '%s\n' "$new_env" >"$env_mk"
fi
step "toolchain ready: rustc $RUSTC_VER, bindgen $BINDGEN_VERSION, clang $LLVM_VERSION, linux $KVERSION${RUST_NOTE:+ ($RUST_NOTE)}"
