# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the kvm_guest_rs tests: kgr_splats reads kernel log lines on
# stdin and prints those that report a kernel problem: WARN/BUG (lockdep,
# KASAN, atomic-sleep and RCU reports all start with one of these), oopses,
# stack dumps, stalls and lockups.  Banners such as "RCU lockdep checking is
# enabled" do not match.
KGR_SPLAT_RE='WARNING:|BUG:|Oops|general protection fault|Call Trace:|KASAN:|UBSAN:|self-detected stall|detected stalls|soft lockup|hard LOCKUP|blocked for more than'
kgr_splats() { grep -E "$KGR_SPLAT_RE"; }
