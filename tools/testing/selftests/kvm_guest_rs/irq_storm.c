// SPDX-License-Identifier: GPL-2.0
/*
 * irq_storm - keep interrupts of three kinds coming for a while.
 *
 * Usage: irq_storm SECONDS [TTY]
 *        irq_storm -n ROUNDS [TTY]
 *
 * - cross-CPU IPIs: two threads, on CPU0 and CPU1 when both are online,
 *   pass a byte back and forth through two pipes; each waits in read(), so
 *   each pass wakes a sleeping CPU (a reschedule IPI);
 * - the local APIC timer: a thread sleeps 50 us at a time (hrtimers);
 * - a level-triggered line: with TTY (a PCI serial port, INTx through the
 *   IOAPIC), a thread writes to it in raw mode; every emptied transmit FIFO
 *   raises the line.
 *
 * With SECONDS it runs that long, or until SIGUSR1; with -n it runs until the ping-pong made
 * ROUNDS round trips and the other threads made ROUNDS / 4 sleeps and
 * ROUNDS * 4 bytes (fixed work, for deterministic comparisons).  Prints
 * "roundtrips N sleeps N tty_bytes N" and exits 0 if every thread made
 * progress, 1 if one did not, 2 on usage or setup errors.  An interrupt that
 * is never ended stops a thread for good: after SECONDS + 60 s (or 600 s with
 * -n) it prints "irq_storm: stuck" and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;
static atomic_long roundtrips, sleeps, tty_bytes;
static long rounds;	/* -n: the fixed amount of work, else 0 */
static int ping[2], pong[2];

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* CPU1 may be offline (hotplug tests): run anywhere then. */
	sched_setaffinity(0, sizeof(set), &set);
}

static void *pinger(void *arg)
{
	char c = 0;

	(void)arg;
	pin(0);
	while (!atomic_load(&stop)) {
		if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1)
			break;
		if (atomic_fetch_add(&roundtrips, 1) + 1 == rounds)
			break;
	}
	c = 1;
	/* Let the ponger go. */
	if (write(ping[1], &c, 1) != 1)
		perror("irq_storm: write");
	return NULL;
}

static void *ponger(void *arg)
{
	char c;

	(void)arg;
	pin(1);
	for (;;) {
		if (read(ping[0], &c, 1) != 1 || c)
			break;
		if (write(pong[1], &c, 1) != 1)
			break;
	}
	return NULL;
}

static void *sleeper(void *arg)
{
	struct timespec ts = { 0, 50000 };

	(void)arg;
	while (!atomic_load(&stop)) {
		nanosleep(&ts, NULL);
		if (atomic_fetch_add(&sleeps, 1) + 1 == rounds / 4 && rounds)
			break;
	}
	return NULL;
}

static void *writer(void *arg)
{
	int fd = *(int *)arg;
	char buf[256];

	memset(buf, 'x', sizeof(buf));
	while (!atomic_load(&stop)) {
		ssize_t n = write(fd, buf, sizeof(buf));

		if (n < 0 && errno != EINTR) {
			perror("irq_storm: tty write");
			break;
		}
		if (n > 0 && atomic_fetch_add(&tty_bytes, n) + n >= rounds * 4 && rounds)
			break;
	}
	return NULL;
}

static void stop_now(int sig)
{
	(void)sig;
	atomic_store(&stop, 1);
}

static void stuck(int sig)
{
	static const char msg[] = "irq_storm: stuck\n";

	ssize_t n;

	(void)sig;
	n = write(2, msg, sizeof(msg) - 1);
	(void)n;
	_exit(1);
}

int main(int argc, char **argv)
{
	pthread_t t[4];
	int nt = 0, fd = -1, i;
	long seconds = 0;
	const char *tty = NULL;

	if (argc >= 3 && !strcmp(argv[1], "-n")) {
		rounds = atol(argv[2]);
		tty = argc > 3 ? argv[3] : NULL;
	} else if (argc >= 2) {
		seconds = atol(argv[1]);
		tty = argc > 2 ? argv[2] : NULL;
	}
	if ((rounds <= 0 && seconds <= 0) || pipe(ping) || pipe(pong)) {
		fprintf(stderr, "usage: irq_storm SECONDS [TTY] | irq_storm -n ROUNDS [TTY]\n");
		return 2;
	}
	if (tty) {
		struct termios tio;

		fd = open(tty, O_WRONLY | O_NOCTTY);
		if (fd < 0 || tcgetattr(fd, &tio)) {
			perror(tty);
			return 2;
		}
		cfmakeraw(&tio);
		cfsetospeed(&tio, B115200);
		if (tcsetattr(fd, TCSANOW, &tio)) {
			perror(tty);
			return 2;
		}
	}
	signal(SIGALRM, stuck);
	signal(SIGUSR1, stop_now);
	alarm(rounds ? 600 : seconds + 60);
	pthread_create(&t[nt++], NULL, ponger, NULL);
	pthread_create(&t[nt++], NULL, pinger, NULL);
	pthread_create(&t[nt++], NULL, sleeper, NULL);
	if (fd >= 0)
		pthread_create(&t[nt++], NULL, writer, &fd);
	if (!rounds) {
		struct timespec end, now;

		clock_gettime(CLOCK_MONOTONIC, &end);
		end.tv_sec += seconds;
		do {
			/* SIGUSR1 interrupts the sleep. */
			sleep(1);
			clock_gettime(CLOCK_MONOTONIC, &now);
		} while (!atomic_load(&stop) && now.tv_sec < end.tv_sec);
		atomic_store(&stop, 1);
	}
	for (i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	printf("roundtrips %ld sleeps %ld tty_bytes %ld\n", atomic_load(&roundtrips),
	       atomic_load(&sleeps), atomic_load(&tty_bytes));
	return atomic_load(&roundtrips) > 0 && atomic_load(&sleeps) > 0 &&
	       (fd < 0 || atomic_load(&tty_bytes) > 0) ? 0 : 1;
}
