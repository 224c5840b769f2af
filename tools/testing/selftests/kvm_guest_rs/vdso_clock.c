// SPDX-License-Identifier: GPL-2.0
/*
 * vdso_clock - clock_gettime() in the vDSO across clocksource changes.
 *
 * Usage:
 *   vdso_clock loop STOPFILE [SPIN]
 *                             one thread per online CPU, pinned, calling
 *                             clock_gettime(CLOCK_MONOTONIC) until STOPFILE
 *                             exists; each read is checked against the
 *                             largest value any thread published before it
 *                             (time never goes backwards, on any CPU);
 *                             prints "cpus C reads R warps W max_warp_ns M
 *                             max_gap_ns G" (G: the largest step between
 *                             two reads of one thread, i.e. how far the
 *                             clock jumped forward, e.g. across a VM stop,
 *                             plus scheduling delays) and exits 1 if W > 0.
 *                             SPIN: empty loop iterations between two
 *                             reads (CPU work that does not read the
 *                             clock: an HPET clocksource is an MMIO exit
 *                             per read, which would slow the whole VM).  A fault (SIGBUS from an
 *                             unmapped vDSO page) kills it.
 *   vdso_clock page           reads slot 0 of the pvclock page of this
 *                             process's [vvar_vclock] area and prints
 *                             "version V tsc_timestamp T system_time S", or
 *                             "sigbus" if the kernel refuses to map it.
 *                             (/proc/self/pagemap cannot tell its frame: page
 *                             walks skip VM_PFNMAP areas.)
 *   vdso_clock stime N        N calls of clock_gettime(CLOCK_MONOTONIC);
 *                             prints "calls N utime U stime S" (clock ticks
 *                             from /proc/self/stat): a vDSO read runs in user
 *                             mode only, a system call mostly in the kernel.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
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

static const char *stop_file;
static long spin;
static _Atomic uint64_t newest, reads, warps, max_warp, max_gap;
static atomic_int stop;

static void *loop_thread(void *arg)
{
	uint64_t n = 0, w = 0, mw = 0, mg = 0, prev = 0;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET((int)(long)arg, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		perror("sched_setaffinity");
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		/* Published before this read: the read may not be older. */
		uint64_t before = atomic_load(&newest);
		uint64_t t = mono_ns();
		uint64_t cur = atomic_load(&newest);

		if (t < before) {
			w++;
			if (before - t > mw)
				mw = before - t;
		}
		while (t > cur && !atomic_compare_exchange_weak(&newest, &cur, t))
			;
		if (prev && t > prev && t - prev > mg)
			mg = t - prev;
		prev = t;
		n++;
		for (volatile long k = 0; k < spin; k++)
			;
	}
	atomic_fetch_add(&reads, n);
	atomic_fetch_add(&warps, w);
	uint64_t m = atomic_load(&max_warp);

	while (mw > m && !atomic_compare_exchange_weak(&max_warp, &m, mw))
		;
	m = atomic_load(&max_gap);
	while (mg > m && !atomic_compare_exchange_weak(&max_gap, &m, mg))
		;
	return NULL;
}

static int loop(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN), i;
	pthread_t *t = calloc(cpus, sizeof(*t));

	for (i = 0; i < cpus; i++)
		pthread_create(&t[i], NULL, loop_thread, (void *)i);
	while (access(stop_file, F_OK))
		usleep(20000);
	atomic_store(&stop, 1);
	for (i = 0; i < cpus; i++)
		pthread_join(t[i], NULL);
	printf("cpus %ld reads %llu warps %llu max_warp_ns %llu max_gap_ns %llu\n", cpus,
	       (unsigned long long)reads, (unsigned long long)warps,
	       (unsigned long long)max_warp, (unsigned long long)max_gap);
	return warps ? 1 : 0;
}

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

static int page(void)
{
	unsigned long start = 0, end;
	char line[512];
	FILE *maps = fopen("/proc/self/maps", "r");
	volatile uint64_t *slot;

	while (maps && fgets(line, sizeof(line), maps))
		if (strstr(line, "[vvar_vclock]") && sscanf(line, "%lx-%lx", &start, &end) == 2)
			break;
	if (!start) {
		printf("no [vvar_vclock]\n");
		return 1;
	}
	/* The pvclock page is the first of the area (VDSO_PAGE_PVCLOCK_OFFSET). */
	slot = (volatile uint64_t *)start;
	signal(SIGBUS, on_sigbus);
	if (sigsetjmp(bus_jmp, 1)) {
		printf("sigbus\n");
		return 0;
	}
	printf("version %u tsc_timestamp %llu system_time %llu\n", (unsigned int)slot[0],
	       (unsigned long long)slot[1], (unsigned long long)slot[2]);
	return 0;
}

static int stime(long n)
{
	unsigned long ut = 0, st = 0;
	char buf[1024], *p;
	long i;
	int fd;

	for (i = 0; i < n; i++)
		mono_ns();
	fd = open("/proc/self/stat", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		return 1;
	buf[sizeof(buf) - 1] = 0;
	/* Fields 14 and 15, after the ")" that ends the command name. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 1;
	printf("calls %ld utime %lu stime %lu\n", n, ut, st);
	return 0;
}

int main(int argc, char **argv)
{
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "loop")) {
		stop_file = argv[2];
		spin = argc == 4 ? atol(argv[3]) : 0;
		return loop();
	}
	if (argc == 2 && !strcmp(argv[1], "page"))
		return page();
	if (argc == 3 && !strcmp(argv[1], "stime"))
		return stime(atol(argv[2]));
	fprintf(stderr, "usage: vdso_clock loop STOPFILE [SPIN] | page | stime N\n");
	return 2;
}
