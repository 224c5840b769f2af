# SPDX-License-Identifier: GPL-2.0
# Shared shell helpers for kvm-guest-rs tools.  Source it; it loads the
# toolchain description written by tools/setup/setup.sh.

KGR_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KGR_CACHE=${KGR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvm-guest-rs}

kgr_die() {
	printf '[%s] error: %s\n' "${KGR_TAG:-kgr}" "$*" >&2
	exit 1
}
kgr_step() { printf '[%s] %s\n' "${KGR_TAG:-kgr}" "$*" >&2; }

# kgr_ensure_pkgs PKG...: installs the Debian packages that are missing,
# through the machine's own apt (refreshing its lists first, once).  Needs
# root only when something is missing; names the package that cannot be had.
kgr_ensure_pkgs() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		kgr_step "host packages: all $# present"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || kgr_die "host packages: missing ${missing[*]} and not root; install them with apt-get"
	kgr_step "host packages: installing ${missing[*]}"
	apt-get update -qq >/dev/null || kgr_die "host packages: 'apt-get update' failed"
	for p in "${missing[@]}"; do
		apt-cache show "$p" >/dev/null 2>&1 || kgr_die "host packages: '$p' is not available from the machine's apt sources"
	done
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		kgr_die "host packages: 'apt-get install ${missing[*]}' failed"
}

# Loads $KGR_CACHE/env.mk ("KEY := value" lines) into shell variables.
kgr_load_env() {
	local f="$KGR_CACHE/env.mk" k v
	[ -f "$f" ] || kgr_die "$f missing: run 'make setup' (tools/setup/setup.sh) first"
	while IFS= read -r line; do
		case "$line" in "#"* | "") continue ;; esac
		k=${line%% :=*}
		v=${line#*:= }
		[ "$v" = "$line" ] && v=""
		printf -v "$k" '%s' "$v"
		export "${k?}"
	done <"$f"
}

# Arguments for every kbuild invocation (kernel and out-of-tree module).
kgr_kbuild_args() {
	printf '%s\n' "LLVM=$LLVM_SUFFIX" "RUSTC=$RUSTC" "BINDGEN=$BINDGEN" "RUST_LIB_SRC=$RUST_LIB_SRC"
	[ -n "$CLIPPY_DRIVER" ] && printf '%s\n' "CLIPPY_DRIVER=$CLIPPY_DRIVER"
	[ -n "$RUSTFMT" ] && printf '%s\n' "RUSTFMT=$RUSTFMT"
	return 0
}

# kgr_test_module_build DIR MO KOUT [MAKEVAR=VALUE...]: build the test
# module(s) that DIR's Kbuild names out of tree against the kernel build KOUT,
# in MO (emptied first); the output goes to MO/build.log.
kgr_test_module_build() {
	local dir=$1 mo=$2 kout=$3 kargs
	shift 3
	mapfile -t kargs < <(kgr_kbuild_args)
	rm -rf "$mo" && mkdir -p "$mo" &&
		make -s -C "$kout" M="$dir" MO="$mo" "${kargs[@]}" "$@" modules >"$mo/build.log" 2>&1
}

# Name of the writable kernel tree (and its builds).  The default "main" is
# shared by every clone; a second work tree (git worktree) that carries a
# different overlay sets KGR_TREE to its own name so the two never fight over
# one source tree.
KGR_TREE=${KGR_TREE:-main}
kgr_tree_suffix() { [ "$KGR_TREE" = main ] || printf -- '-%s' "$KGR_TREE"; }

# Writable kernel source tree with the overlay applied.
kgr_kernel_src() { printf '%s' "$KGR_CACHE/src/linux-$KVERSION$(kgr_tree_suffix)"; }

# Output directory of the kernel build for flavour $1, keyed by kernel
# version, config fragments and toolchain.
kgr_kernel_out() {
	local flavour=$1 h
	h=$(cat "$KGR_REPO/tools/kernel/configs/base.config" "$KGR_REPO/tools/kernel/configs/$flavour.config" \
		<(printf '%s\n' "$RUSTC" "$("$RUSTC" --version)" "$LLVM_SUFFIX" "$BINDGEN") | sha256sum | cut -c1-12)
	printf '%s' "$KGR_CACHE/build/linux-$KVERSION$(kgr_tree_suffix)-$flavour-$h"
}

# kgr_soak_guest MACHINE VCPUS STABLE CYCLES: the run-guest arguments of one
# soak shape (make soak, and make check's short form): the host model,
# kvm-pv-ext, kmemleak on, the host channel, plan soak.
kgr_soak_guest() {
	local cpu=max,x-tcg-kvm-pv=on
	[ "$3" = off ] && cpu=$cpu,kvmclock-stable-bit=off
	printf '%s\n' --cpu "$cpu" --machine "$1" --smp "$2" \
		--append "kvm-pv-ext kmemleak=on kgr.soak=$4 kgr.stable=$3" --hostctl --plan soak
}

# kgr_qemu_model: prints the QEMU that has the project's KVM PV host model:
# $QEMU_MODEL if set, else the last one tools/qemu/qemu-build.sh built under
# $KGR_CACHE/qemu.  Fails (prints nothing) if there is none, or if the binary
# lacks the model (its vCPUs have no x-kvmclock-fault property).
kgr_qemu_model() {
	local b qemu=${QEMU_MODEL:-} help
	if [ -z "$qemu" ]; then
		for b in "$KGR_CACHE"/qemu/build-*/qemu-system-x86_64; do
			[ -x "$b" ] && qemu=$b
		done
	fi
	[ -n "$qemu" ] || return 1
	# No pipe into grep -q: under pipefail, QEMU dying of SIGPIPE would look like a failure.
	help=$("$qemu" -device max-x86_64-cpu,help 2>/dev/null) || return 1
	[ "${help#*x-kvmclock-fault}" != "$help" ] || return 1
	printf '%s\n' "$qemu"
}
