// SPDX-License-Identifier: GPL-2.0
/*
 * pingpong - cross-CPU wake-ups: two processes pinned to CPUs 0 and 1 pass
 * a byte back and forth through two pipes N times.  Each pass wakes a task
 * on the other CPU, i.e. a reschedule IPI: a stream of edge-triggered APIC
 * interrupts for the PV EOI storm.
 *
 * Usage: pingpong N
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s))
		perror("pingpong: sched_setaffinity");
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000, i;
	int ab[2], ba[2], status;
	char c = 0;
	pid_t pid;

	if (pipe(ab) || pipe(ba)) {
		perror("pingpong: pipe");
		return 2;
	}
	pid = fork();
	if (pid == 0) {
		pin(1);
		for (i = 0; i < n; i++)
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	pin(0);
	for (i = 0; i < n; i++)
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) {
			fprintf(stderr, "pingpong: broken pipe at %ld\n", i);
			return 1;
		}
	waitpid(pid, &status, 0);
	printf("pingpong: %ld round trips\n", n);
	return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
