// SPDX-License-Identifier: GPL-2.0
/*
 * msr_read - print an MSR of every online CPU through /dev/cpu/N/msr.
 *
 * Usage: msr_read MSR...
 * Prints "cpu N msr 0xMSR 0xVALUE" per CPU and MSR, or "cpu N msr 0xMSR #GP"
 * when the read fails with EIO (the hypervisor refuses the MSR).  Exits 0 if
 * every MSR read as 0 or #GP on every online CPU, 1 if one is non-zero,
 * 2 on usage or access errors (e.g. no CONFIG_X86_MSR, not root).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cpu_online(int cpu)
{
	char path[64], c = '0';
	int fd;

	if (cpu == 0)
		return 1;
	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	if (read(fd, &c, 1) != 1)
		c = '0';
	close(fd);
	return c == '1';
}

int main(int argc, char **argv)
{
	long ncpus = sysconf(_SC_NPROCESSORS_CONF);
	int rc = 0, cpu, i;

	if (argc < 2) {
		fprintf(stderr, "usage: msr_read MSR...\n");
		return 2;
	}
	for (cpu = 0; cpu < ncpus; cpu++) {
		char path[64];
		int fd;

		if (!cpu_online(cpu))
			continue;
		snprintf(path, sizeof(path), "/dev/cpu/%d/msr", cpu);
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			printf("cpu %d: %s: %s\n", cpu, path, strerror(errno));
			return 2;
		}
		for (i = 1; i < argc; i++) {
			uint32_t msr = strtoul(argv[i], NULL, 0);
			uint64_t val;

			if (pread(fd, &val, sizeof(val), msr) != sizeof(val)) {
				if (errno != EIO) {
					printf("cpu %d msr %#x: %s\n", cpu, msr, strerror(errno));
					close(fd);
					return 2;
				}
				printf("cpu %d msr %#x #GP\n", cpu, msr);
				continue;
			}
			printf("cpu %d msr %#x %#" PRIx64 "\n", cpu, msr, val);
			if (val)
				rc = 1;
		}
		close(fd);
	}
	return rc;
}
