// SPDX-License-Identifier: GPL-2.0

#include <linux/cc_platform.h>
#include <linux/hardirq.h>
#include <linux/mm.h>
#include <linux/nmi.h>
#include <asm/pvclock.h>
#include <asm/kvmclock.h>

#ifndef CONFIG_ARCH_HAS_CC_PLATFORM
__rust_helper bool rust_helper_cc_platform_has(enum cc_attr attr)
{
	return cc_platform_has(attr);
}
#endif

__rust_helper void *rust_helper_page_address(const struct page *page)
{
	return page_address(page);
}

__rust_helper phys_addr_t rust_helper_virt_to_phys(volatile void *address)
{
	return virt_to_phys(address);
}

#ifndef CONFIG_DETECT_HUNG_TASK
__rust_helper void rust_helper_reset_hung_task_detector(void)
{
	reset_hung_task_detector();
}
#endif

#ifdef CONFIG_KVM_GUEST
__rust_helper struct pvclock_vsyscall_time_info **rust_helper_hv_clock_per_cpu_ptr(unsigned int cpu)
{
	return per_cpu_ptr(&hv_clock_per_cpu, cpu);
}
#endif

__rust_helper bool rust_helper_in_nmi(void)
{
	return in_nmi();
}
