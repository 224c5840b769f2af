#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Plan of `make check`: the boot-time KUnit results, then the module selftests.
rc=0
sh /kgr/plans/kunit-summary.sh || rc=1
sh /kgr/plans/hostctl.sh || { [ $? = 4 ] || rc=1; }
/kgr/selftests/kvm_guest_rs/module_load.sh || { [ $? = 4 ] || rc=1; }
exit $rc
