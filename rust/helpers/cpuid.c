// SPDX-License-Identifier: GPL-2.0

#include <asm/cpuid/api.h>

__rust_helper void rust_helper_cpuid_count(u32 op, int count, u32 *eax, u32 *ebx, u32 *ecx,
					   u32 *edx)
{
	cpuid_count(op, count, eax, ebx, ecx, edx);
}
