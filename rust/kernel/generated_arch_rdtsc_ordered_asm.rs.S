/* SPDX-License-Identifier: GPL-2.0 */

#include <asm/alternative.h>
#include <asm/cpufeatures.h>

// Cut here.

::kernel::concat_literals!(ALTERNATIVE_2("rdtsc", "lfence; rdtsc", X86_FEATURE_LFENCE_RDTSC, "rdtscp", X86_FEATURE_RDTSCP))
