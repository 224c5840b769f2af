// SPDX-License-Identifier: GPL-2.0
/*
 * clocks - print CLOCK_REALTIME and CLOCK_BOOTTIME in nanoseconds, read
 * back to back: "realtime_ns boottime_ns".  Their difference is the wall
 * time at which CLOCK_BOOTTIME was 0, with nanosecond resolution (busybox
 * date has only seconds).
 */
#include <stdio.h>
#include <time.h>

static long long ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(void)
{
	long long rt = ns(CLOCK_REALTIME);
	long long bt = ns(CLOCK_BOOTTIME);

	printf("%lld %lld\n", rt, bt);
	return 0;
}
