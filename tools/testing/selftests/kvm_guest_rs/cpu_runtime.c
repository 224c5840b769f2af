// SPDX-License-Identifier: GPL-2.0
/*
 * cpu_runtime SECONDS: spin on the CPU for SECONDS of CLOCK_MONOTONIC and print
 * "runtime_ns RUNTIME wall_ns WALL": the time the scheduler charged this thread
 * (CLOCK_THREAD_CPUTIME_ID, the runqueue's clock_task, from which the steal
 * clock's time is taken out) against the wall time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts)) {
		perror("clock_gettime");
		exit(1);
	}
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long long w0, r0, end, w1, r1;
	int secs = argc > 1 ? atoi(argv[1]) : 0;

	if (secs <= 0 || secs > 60) {
		fprintf(stderr, "usage: cpu_runtime SECONDS (1..60)\n");
		return 2;
	}
	w0 = ns(CLOCK_MONOTONIC);
	r0 = ns(CLOCK_THREAD_CPUTIME_ID);
	end = w0 + secs * 1000000000LL;
	do
		w1 = ns(CLOCK_MONOTONIC);
	while (w1 < end);
	r1 = ns(CLOCK_THREAD_CPUTIME_ID);
	printf("runtime_ns %lld wall_ns %lld\n", r1 - r0, w1 - w0);
	return 0;
}
