// SPDX-License-Identifier: GPL-2.0

/*
 * Leak guards of the Rust kernel crate (rust/kernel/leak_guard.rs): a
 * registration whose callbacks are module code (a CPU hotplug state, a sysfs
 * group) arms a guard; if the module goes while the guard is still armed (the
 * registration was leaked), the guard's undo function removes the
 * registration before the module's memory is freed.
 *
 * One module notifier, registered at boot, serves every guard, so arming and
 * disarming a guard only take rust_leak_guard_lock, never the notifier
 * chain's lock: they may be called from a CPU hotplug callback (while an
 * insmod holds the chain's lock and waits for cpus_read_lock()), or from a
 * callback that an undo runs.  The notifier runs first (highest priority),
 * while the going module's static keys and calls are still managed, since
 * the undo runs the module's callbacks one last time.
 *
 * A regular object of the kernel (not a helper, which CONFIG_RUST_INLINE_HELPERS
 * would copy into other objects): the list of guards is one for the whole
 * kernel.  rust/helpers/leak_guard.c declares the functions for bindgen.
 * Without CONFIG_MODULES no code is ever freed and no guard is needed.
 */

#include <linux/completion.h>
#include <linux/init.h>
#include <linux/limits.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>

/* The prototypes. */
#include "helpers/leak_guard.c"

#ifdef CONFIG_MODULES

struct rust_leak_guard {
	/* On rust_leak_guards, or on the notifier's list while the owner goes. */
	struct list_head node;
	struct module *owner;
	void (*undo)(void *ptr, unsigned long word);
	void *ptr;
	unsigned long word;
	/* Off every list: the undo runs or ran; undone completes after it. */
	bool undoing;
	struct completion undone;
};

static LIST_HEAD(rust_leak_guards);
static DEFINE_MUTEX(rust_leak_guard_lock);

/*
 * Arms a guard that calls @undo(@ptr, @word) when @owner goes; NULL if out of
 * memory.  Process context.
 */
void *rust_helper_leak_guard_arm(struct module *owner,
				 void (*undo)(void *ptr, unsigned long word),
				 void *ptr, unsigned long word)
{
	struct rust_leak_guard *g = kmalloc(sizeof(*g), GFP_KERNEL);

	if (!g)
		return NULL;
	g->owner = owner;
	g->undo = undo;
	g->ptr = ptr;
	g->word = word;
	g->undoing = false;
	init_completion(&g->undone);
	guard(mutex)(&rust_leak_guard_lock);
	list_add(&g->node, &rust_leak_guards);
	return g;
}

/*
 * Disarms and frees @g.  Returns true if its undo ran (or runs: then it waits
 * for it), in which case the registration is gone.  Process context; not from
 * @g's own undo.  (The guard of a registration that is never dropped is never
 * freed, like the registration: kmemleak reports both.)
 */
bool rust_helper_leak_guard_disarm(void *guard)
{
	struct rust_leak_guard *g = guard;
	bool undone;

	scoped_guard(mutex, &rust_leak_guard_lock) {
		undone = g->undoing;
		if (!undone)
			list_del(&g->node);
	}
	if (undone)
		wait_for_completion(&g->undone);
	kfree(g);
	return undone;
}

static int rust_leak_guard_notify(struct notifier_block *nb, unsigned long action,
				  void *data)
{
	struct module *mod = data;
	struct rust_leak_guard *g, *tmp;
	LIST_HEAD(going);

	if (action != MODULE_STATE_GOING)
		return NOTIFY_DONE;
	mutex_lock(&rust_leak_guard_lock);
	/* Again, for guards an undo armed. */
	for (;;) {
		list_for_each_entry_safe(g, tmp, &rust_leak_guards, node) {
			if (g->owner == mod)
				list_move_tail(&g->node, &going);
		}
		if (list_empty(&going))
			break;
		while (!list_empty(&going)) {
			g = list_first_entry(&going, struct rust_leak_guard, node);
			list_del(&g->node);
			g->undoing = true;
			mutex_unlock(&rust_leak_guard_lock);
			g->undo(g->ptr, g->word);
			pr_warn("rust: a leaked registration of module %s outlived it; removed\n",
				mod->name);
			/* A disarm waiting for it frees @g. */
			complete_all(&g->undone);
			mutex_lock(&rust_leak_guard_lock);
		}
	}
	mutex_unlock(&rust_leak_guard_lock);
	return NOTIFY_DONE;
}

static struct notifier_block rust_leak_guard_nb = {
	.notifier_call = rust_leak_guard_notify,
	.priority = INT_MAX,
};

static int __init rust_leak_guard_init(void)
{
	return register_module_notifier(&rust_leak_guard_nb);
}
core_initcall(rust_leak_guard_init);

#endif /* CONFIG_MODULES */
