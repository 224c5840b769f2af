// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_detect - report whether this guest runs on KVM, from user space.
 *
 * Same algorithm as kernel::kvm_para (and kvm_cpuid_base() in
 * arch/x86/kernel/kvm.c): CPUID.1:ECX.HYPERVISOR, then a scan of the bases
 * 0x40000000..0x4000ff00 for "KVMKVMKVM\0\0\0", then the feature leaf at
 * base | 1.  The selftests use it to decide which tests apply.
 *
 * Prints "kvm base=0x... features=0x..." and exits 0 on KVM; prints the
 * reason and exits 4 (KSFT_SKIP) otherwise.
 */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>

#define KSFT_SKIP 4

int main(void)
{
	unsigned int eax, ebx, ecx, edx, base;
	char sig[13] = { 0 };

	__cpuid(1, eax, ebx, ecx, edx);
	if (!(ecx & (1u << 31))) {
		printf("not a hypervisor guest (CPUID.1:ECX.HYPERVISOR clear)\n");
		return KSFT_SKIP;
	}
	for (base = 0x40000000; base <= 0x4000ff00; base += 0x100) {
		__cpuid(base, eax, ebx, ecx, edx);
		memcpy(sig + 0, &ebx, 4);
		memcpy(sig + 4, &ecx, 4);
		memcpy(sig + 8, &edx, 4);
		if (!memcmp(sig, "KVMKVMKVM\0\0\0", 12)) {
			unsigned int max = eax ? eax : (base | 1);
			unsigned int features = 0;

			if (max >= (base | 1))
				__cpuid(base | 1, features, ebx, ecx, edx);
			printf("kvm base=%#x features=%#x\n", base, features);
			return 0;
		}
	}
	__cpuid(0x40000000, eax, ebx, ecx, edx);
	memcpy(sig + 0, &ebx, 4);
	memcpy(sig + 4, &ecx, 4);
	memcpy(sig + 8, &edx, 4);
	printf("hypervisor is not KVM (signature \"%.12s\")\n", sig);
	return KSFT_SKIP;
}
