// SPDX-License-Identifier: GPL-2.0

#include <asm/cpufeature.h>

__rust_helper bool rust_helper_boot_cpu_has(int feature)
{
	return boot_cpu_has(feature);
}
