// SPDX-License-Identifier: GPL-2.0
/*
 * apf_work - async page fault workloads for the host model's first-touch
 * window (x-apf-va-start/-end: each page is "not present" on its first
 * touch and ready x-apf-delay-ns later).
 *
 *   apf_work overlap ADDR NPAGES CPU WORK_MS
 *	Two tasks pinned to CPU: one touches NPAGES pages at ADDR (each waits
 *	for the host), the other computes for about WORK_MS of CPU time
 *	(calibrated first).  Prints the wall time until both are done:
 *	"apf_work: overlap N pages, work W ms: T ms".  With async page faults
 *	the computing task runs while the other waits; without them the vCPU
 *	waits (x-apf-sync), so T is about the sum of both.
 *
 *   apf_work cost ADDR NPAGES CPU
 *	Touches NPAGES pages at ADDR from a task pinned to CPU, alone, and prints
 *	the wall time: "apf_work: cost N pages: T ns".  Under icount shift 0
 *	(one virtual ns per guest instruction, idle time skipped to the next
 *	timer), T - NPAGES * delay is what the episodes cost in instructions.
 *
 *   apf_work read ADDR NPAGES [CPU]
 *	Fills NPAGES pages at ADDR with read(2) from /dev/zero, so that the
 *	first touch of each page is the kernel's (a copy to user memory),
 *	then checks and writes them.  "apf_work: read N pages, data ok".
 *
 * Exits 0, 1 on a data error, 2 on a usage or system error.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long page;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("apf_work: sched_setaffinity");
		return -1;
	}
	return 0;
}

static volatile uint64_t *map(unsigned long addr, unsigned long n)
{
	void *p = mmap((void *)addr, n * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED || (unsigned long)p != addr) {
		perror("apf_work: mmap");
		return NULL;
	}
	return p;
}

static volatile uint64_t sink;

static void spin(uint64_t iters)
{
	uint64_t i, x = 1;

	for (i = 0; i < iters; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	sink = x;
}

static int overlap(unsigned long addr, unsigned long n, int cpu, double work_ms)
{
	volatile uint64_t *p;
	uint64_t iters = 1 << 20;
	double t0, t, best = 0;
	unsigned long i;
	pid_t child;
	int status;

	if (pin(cpu))
		return 2;
	/*
	 * Calibrate: iterations per ms of this CPU, from the fastest of eight
	 * warm runs. Whatever else runs on the CPU meanwhile (an interrupt, a
	 * kworker) only makes a run slower, and one such run must not shrink
	 * the work (under -icount a 5 ms run met one and the work came out a
	 * third of what was asked).
	 */
	spin(iters);
	for (i = 0; i < 8; i++) {
		t0 = now_ms();
		spin(iters);
		t = now_ms() - t0;
		if (i == 0 || t < best)
			best = t;
	}
	iters = (uint64_t)(iters / (best > 0.01 ? best : 0.01) * work_ms);
	p = map(addr, n);
	if (!p)
		return 2;
	t0 = now_ms();
	child = fork();
	if (child < 0) {
		perror("apf_work: fork");
		return 2;
	}
	if (child == 0) {
		spin(iters);
		_exit(0);
	}
	for (i = 0; i < n; i++)
		p[i * page / 8] = i;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status))
		return 2;
	t = now_ms() - t0;
	for (i = 0; i < n; i++) {
		if (p[i * page / 8] != i) {
			printf("apf_work: page %lu corrupted\n", i);
			return 1;
		}
	}
	printf("apf_work: overlap %lu pages, work %.0f ms (%.0f iterations/ms): %.1f ms\n", n, work_ms,
	       (1 << 20) / (best > 0.01 ? best : 0.01), t);
	return 0;
}

static int cost(unsigned long addr, unsigned long n, int cpu)
{
	volatile uint64_t *p;
	struct timespec t0, t1;
	unsigned long i;

	if (pin(cpu))
		return 2;
	p = map(addr, n);
	if (!p)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++)
		p[i * page / 8] = i;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (i = 0; i < n; i++) {
		if (p[i * page / 8] != i) {
			printf("apf_work: page %lu corrupted\n", i);
			return 1;
		}
	}
	printf("apf_work: cost %lu pages: %lld ns\n", n,
	       (t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec));
	return 0;
}

static int readin(unsigned long addr, unsigned long n)
{
	volatile uint64_t *p = map(addr, n);
	unsigned long i, j;
	int fd;

	if (!p)
		return 2;
	fd = open("/dev/zero", O_RDONLY);
	if (fd < 0) {
		perror("apf_work: /dev/zero");
		return 2;
	}
	for (i = 0; i < n; i++) {
		if (read(fd, (char *)p + i * page, page) != page) {
			perror("apf_work: read");
			return 2;
		}
	}
	close(fd);
	for (i = 0; i < n; i++) {
		for (j = 0; j < page / 8; j++) {
			if (p[i * page / 8 + j]) {
				printf("apf_work: page %lu not zero\n", i);
				return 1;
			}
		}
		p[i * page / 8] = ~i;
	}
	for (i = 0; i < n; i++) {
		if (p[i * page / 8] != ~i) {
			printf("apf_work: page %lu corrupted\n", i);
			return 1;
		}
	}
	printf("apf_work: read %lu pages, data ok\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	page = sysconf(_SC_PAGESIZE);
	if (argc == 6 && !strcmp(argv[1], "overlap"))
		return overlap(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0),
			       atoi(argv[4]), atof(argv[5]));
	if (argc == 5 && !strcmp(argv[1], "cost"))
		return cost(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0), atoi(argv[4]));
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "read")) {
		if (argc == 5 && pin(atoi(argv[4])))
			return 2;
		return readin(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
	}
	fprintf(stderr,
		"usage: apf_work overlap ADDR NPAGES CPU WORK_MS | cost ADDR NPAGES CPU | read ADDR NPAGES [CPU]\n");
	return 2;
}
