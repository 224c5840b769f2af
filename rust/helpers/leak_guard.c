// SPDX-License-Identifier: GPL-2.0

/*
 * The leak guards of rust/kernel/leak_guard.rs, defined in rust/leak_guard.c
 * (a regular object, not a helper: their list is one for the whole kernel);
 * declared here for bindgen.
 */

#include <linux/types.h>

#ifdef CONFIG_MODULES
struct module;

void *rust_helper_leak_guard_arm(struct module *owner,
				 void (*undo)(void *ptr, unsigned long word),
				 void *ptr, unsigned long word);
bool rust_helper_leak_guard_disarm(void *guard);
#endif
