# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the kvm_guest_rs tests: kgr_splats [EXTRA_RE] reads kernel log
# lines on stdin and prints those that report a kernel problem: WARN/BUG
# (lockdep, KASAN, atomic-sleep and RCU reports all start with one of these),
# oopses, stack dumps, stalls and lockups, and lines matching EXTRA_RE.
# Banners such as "RCU lockdep checking is enabled" do not match.
# kgr_test_clean_log [EXTRA_RE] does the same and reports one KTAP result
# (ktap_helpers.sh), with the first five such lines as diagnostics.
KGR_SPLAT_RE='WARNING:|BUG:|Oops|general protection fault|Call Trace:|KASAN:|UBSAN:|self-detected stall|detected stalls|soft lockup|hard LOCKUP|blocked for more than'
kgr_splats() { grep -E "$KGR_SPLAT_RE${1:+|$1}"; }
kgr_test_clean_log() {
	_kgr_bad=$(kgr_splats "${1:-}" | head -n 5)
	if [ -z "$_kgr_bad" ]; then
		ktap_test_pass "kernel log has no warning, BUG, lockdep or KASAN report"
	else
		echo "$_kgr_bad" | while read -r l; do ktap_print_msg "$l"; done
		ktap_test_fail "kernel log has no warning, BUG, lockdep or KASAN report"
	fi
}
