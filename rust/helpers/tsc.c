// SPDX-License-Identifier: GPL-2.0

#include <asm/cpufeature.h>
#include <asm/tsc.h>

__rust_helper bool rust_helper_boot_cpu_has(int feature)
{
	return boot_cpu_has(feature);
}

__rust_helper u64 rust_helper_rdtsc_ordered(void)
{
	return rdtsc_ordered();
}
