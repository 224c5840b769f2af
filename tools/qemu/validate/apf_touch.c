// SPDX-License-Identifier: GPL-2.0
/*
 * apf_touch - touch N pages of a fixed user mapping, once each, and check
 * the data.  The host model's async-PF trigger window is armed on this
 * mapping, so every first touch is an async page fault: "page not present"
 * (the task sleeps), then "page ready" (an interrupt wakes it).
 *
 * Usage: apf_touch ADDR NPAGES [CPU]  (CPU: pin to it first; the model's
 * trigger window is per vCPU)
 * Prints "apf_touch: N pages at ADDR, data ok" and exits 0, or reports the
 * first corrupted page and exits 1.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long addr, n, i;
	long page = sysconf(_SC_PAGESIZE);
	volatile uint64_t *p;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: apf_touch ADDR NPAGES [CPU]\n");
		return 2;
	}
	if (argc == 4) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(atoi(argv[3]), &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			perror("apf_touch: sched_setaffinity");
			return 2;
		}
	}
	addr = strtoul(argv[1], NULL, 0);
	n = strtoul(argv[2], NULL, 0);
	p = mmap((void *)addr, n * page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED || (unsigned long)p != addr) {
		perror("apf_touch: mmap");
		return 2;
	}
	/* One write per page: the first touch of each page. */
	for (i = 0; i < n; i++)
		p[i * page / 8] = 0x6b67727300000000ull | i;
	for (i = 0; i < n; i++) {
		uint64_t want = 0x6b67727300000000ull | i;

		if (p[i * page / 8] != want || p[i * page / 8 + 1] != 0) {
			printf("apf_touch: page %lu corrupted: %#llx\n", i,
			       (unsigned long long)p[i * page / 8]);
			return 1;
		}
	}
	printf("apf_touch: %lu pages at %#lx, data ok\n", n, addr);
	return 0;
}
