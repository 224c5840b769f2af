// SPDX-License-Identifier: GPL-2.0

#include <linux/irqflags.h>
#include <linux/preempt.h>
#include <linux/sched.h>

__rust_helper void rust_helper_set_current_state_uninterruptible(void)
{
	set_current_state(TASK_UNINTERRUPTIBLE);
}

__rust_helper void rust_helper_set_current_state_running(void)
{
	__set_current_state(TASK_RUNNING);
}

__rust_helper void rust_helper_local_irq_enable(void)
{
	local_irq_enable();
}

__rust_helper void rust_helper_local_irq_disable(void)
{
	local_irq_disable();
}

__rust_helper bool rust_helper_irqs_disabled(void)
{
	return irqs_disabled();
}

__rust_helper int rust_helper_preempt_count(void)
{
	return preempt_count();
}
