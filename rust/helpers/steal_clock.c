// SPDX-License-Identifier: GPL-2.0

#include <linux/sched/cputime.h>

#if defined(CONFIG_PARAVIRT) && defined(CONFIG_HAVE_PV_STEAL_CLOCK_GEN)
__rust_helper u64 rust_helper_paravirt_steal_clock(int cpu)
{
	return paravirt_steal_clock(cpu);
}
#endif
