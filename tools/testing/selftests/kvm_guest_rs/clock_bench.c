// SPDX-License-Identifier: GPL-2.0
/*
 * clock_bench - cost and cross-CPU monotonicity of clock_gettime() from user space.
 *
 * Usage:
 *   clock_bench bench [N]   time N calls of clock_gettime(CLOCK_MONOTONIC);
 *                           prints "calls N ns T ns_per_call X vdso_mode M"
 *   clock_bench warp [N]    one thread per online CPU, pinned; each does N
 *                           reads of CLOCK_MONOTONIC under a shared lock and
 *                           counts reads below the previous one (a warp);
 *                           prints "cpus C reads R warps W max_warp_ns M"
 *                           and exits 1 if W > 0
 *
 * With -icount (tools/runner/run-guest --icount 0) virtual nanoseconds are
 * instructions, so "ns_per_call" is the instruction cost of one call: the
 * vDSO path when the clocksource has one (the in-tree kvm-clock), the system
 * call otherwise (kvm-clock-rs, which a module cannot give a vDSO mode).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static long n_reads;
static atomic_flag lock = ATOMIC_FLAG_INIT;
static uint64_t last, warps, max_warp;
static atomic_int ready;
static int nthreads;

static void *warp_thread(void *arg)
{
	cpu_set_t set;
	long i;

	CPU_ZERO(&set);
	CPU_SET((int)(long)arg, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		perror("sched_setaffinity");
	atomic_fetch_add(&ready, 1);
	while (atomic_load(&ready) < nthreads)
		;
	for (i = 0; i < n_reads; i++) {
		uint64_t t;

		while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
			;
		t = mono_ns();
		if (t < last) {
			warps++;
			if (last - t > max_warp)
				max_warp = last - t;
		}
		last = t;
		atomic_flag_clear_explicit(&lock, memory_order_release);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 100000;

	if (argc < 2 || n <= 0) {
		fprintf(stderr, "usage: clock_bench bench|warp [N]\n");
		return 2;
	}
	if (!strcmp(argv[1], "bench")) {
		uint64_t t0, t1, sink = 0;
		long i;

		t0 = mono_ns();
		for (i = 0; i < n; i++)
			sink += mono_ns();
		t1 = mono_ns();
		printf("calls %ld ns %llu ns_per_call %.1f sink %llu\n", n,
		       (unsigned long long)(t1 - t0), (double)(t1 - t0) / n,
		       (unsigned long long)(sink & 1));
		return 0;
	}
	if (!strcmp(argv[1], "warp")) {
		pthread_t th[64];
		int cpu, ncpus = sysconf(_SC_NPROCESSORS_ONLN);

		if (ncpus > 64)
			ncpus = 64;
		n_reads = n;
		nthreads = ncpus;
		for (cpu = 0; cpu < ncpus; cpu++)
			pthread_create(&th[cpu], NULL, warp_thread, (void *)(long)cpu);
		for (cpu = 0; cpu < ncpus; cpu++)
			pthread_join(th[cpu], NULL);
		printf("cpus %d reads %ld warps %llu max_warp_ns %llu\n", ncpus, n * ncpus,
		       (unsigned long long)warps, (unsigned long long)max_warp);
		return warps ? 1 : 0;
	}
	fprintf(stderr, "usage: clock_bench bench|warp [N]\n");
	return 2;
}
