// SPDX-License-Identifier: GPL-2.0
/*
 * pv_features_test - check the invariants of the kvm_guest_rs sysfs counters.
 *
 * Reads /sys/kernel/kvm_guest_rs/kvmclock/ (Documentation/ABI/testing/
 * sysfs-kernel-kvm_guest_rs) and checks what must hold while kvm-clock-rs
 * runs: every online CPU has its pvclock record registered, the MSR each CPU
 * holds (read back through /dev/cpu/N/msr) is the value sysfs reports, the
 * totals are the sums of the per-CPU counters, the counters only grow, the
 * clock and its wall-clock view move with CLOCK_MONOTONIC and
 * CLOCK_REALTIME, and no record was refused or replaced.
 *
 * Skips (exit 4) when not on KVM, when the module is not loaded, or when
 * kvmclock does not run (e.g. the in-tree kvm-clock owns it). Needs root for
 * /dev/cpu/N/msr (CONFIG_X86_MSR).
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define KC_DIR "/sys/kernel/kvm_guest_rs/kvmclock"

#define MAX_COUNTERS 32

/*
 * The counters are discovered, not listed: every file of cpu0/ that also
 * exists in KC_DIR is a counter whose total (KC_DIR/name) is the sum of the per-CPU
 * values (Documentation/ABI/testing/sysfs-kernel-kvm_guest_rs).
 */
static char counters[MAX_COUNTERS][64];
static int nr_counters;

static int discover_counters(void)
{
	struct dirent *e;
	DIR *d = opendir(KC_DIR "/cpu0");
	char path[256];

	if (!d)
		return -errno;
	nr_counters = 0;
	while ((e = readdir(d)) && nr_counters < MAX_COUNTERS) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(counters[0]))
			continue;
		snprintf(path, sizeof(path), KC_DIR "/%s", e->d_name);
		if (access(path, F_OK))
			continue;
		strcpy(counters[nr_counters++], e->d_name);
	}
	closedir(d);
	return 0;
}

static int counter_index(const char *name)
{
	for (int i = 0; i < nr_counters; i++)
		if (!strcmp(counters[i], name))
			return i;
	return -1;
}

/* Reads a whole sysfs file into buf; returns 0 or -errno. */
static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

/* Reads an unsigned number from KC_DIR/name (or KC_DIR/cpuN/name if cpu >= 0). */
static int read_u64(int cpu, const char *name, uint64_t *val)
{
	char path[256], buf[64], *end;
	int ret;

	if (cpu >= 0)
		snprintf(path, sizeof(path), KC_DIR "/cpu%d/%s", cpu, name);
	else
		snprintf(path, sizeof(path), KC_DIR "/%s", name);
	ret = read_file(path, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 0);
	if (errno || end == buf || (*end && *end != '\n'))
		return -EINVAL;
	return 0;
}

static int cpu_online(int cpu)
{
	char path[64], buf[8];

	if (cpu == 0)
		return 1;
	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	if (read_file(path, buf, sizeof(buf)))
		return 0;
	return buf[0] == '1';
}

static int nr_cpu_dirs(void)
{
	char path[64];
	int n = 0;

	for (;;) {
		snprintf(path, sizeof(path), KC_DIR "/cpu%d", n);
		if (access(path, F_OK))
			return n;
		n++;
	}
}

static int rdmsr(int cpu, uint32_t msr, uint64_t *val)
{
	char path[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/dev/cpu/%d/msr", cpu);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = pread(fd, val, sizeof(*val), msr);
	close(fd);
	return n == sizeof(*val) ? 0 : -EIO;
}

static uint64_t ns_of(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Parses "sec.nsec" into nanoseconds. */
static int read_wall(const char *name, uint64_t *ns)
{
	char path[256], buf[64];
	unsigned long long sec, nsec;

	snprintf(path, sizeof(path), KC_DIR "/%s", name);
	if (read_file(path, buf, sizeof(buf)) || sscanf(buf, "%llu.%9llu", &sec, &nsec) != 2)
		return -EINVAL;
	*ns = sec * 1000000000ull + nsec;
	return 0;
}

static int on_kvm(void)
{
	unsigned int eax, ebx, ecx, edx, base;
	char sig[13] = { 0 };

	__cpuid(1, eax, ebx, ecx, edx);
	if (!(ecx & (1u << 31)))
		return 0;
	for (base = 0x40000000; base <= 0x4000ff00; base += 0x100) {
		__cpuid(base, eax, ebx, ecx, edx);
		memcpy(sig + 0, &ebx, 4);
		memcpy(sig + 4, &ecx, 4);
		memcpy(sig + 8, &edx, 4);
		if (!memcmp(sig, "KVMKVMKVM\0\0\0", 12))
			return 1;
	}
	return 0;
}

/* Skips the test unless kvm-clock-rs runs. */
#define REQUIRE_KVMCLOCK()						\
	do {								\
		if (!on_kvm())						\
			SKIP(return, "not running on KVM");		\
		if (access("/sys/module/kvm_guest_rs", F_OK))		\
			SKIP(return, "kvm_guest_rs is not loaded");	\
		if (access(KC_DIR, F_OK))					\
			SKIP(return, "kvmclock does not run (" KC_DIR " missing)"); \
	} while (0)

TEST(every_online_cpu_has_its_record_registered)
{
	int cpu, n;

	REQUIRE_KVMCLOCK();
	n = nr_cpu_dirs();
	ASSERT_GE(n, 1);
	for (cpu = 0; cpu < n; cpu++) {
		uint64_t enabled, regs;

		ASSERT_EQ(0, read_u64(cpu, "enabled", &enabled));
		ASSERT_EQ(0, read_u64(cpu, "registrations", &regs));
		if (cpu_online(cpu)) {
			EXPECT_EQ(1, enabled) TH_LOG("CPU%d online but not registered", cpu);
			EXPECT_GE(regs, 1);
		} else {
			EXPECT_EQ(0, enabled) TH_LOG("CPU%d offline but registered", cpu);
		}
	}
}

TEST(msr_holds_the_registered_record)
{
	uint64_t msr, value, hw;
	int cpu, n, ret;

	REQUIRE_KVMCLOCK();
	if (getuid())
		SKIP(return, "needs root for /dev/cpu/N/msr");
	ASSERT_EQ(0, read_u64(-1, "msr", &msr));
	ASSERT_TRUE(msr == 0x4b564d01 || msr == 0x12);
	n = nr_cpu_dirs();
	for (cpu = 0; cpu < n; cpu++) {
		if (!cpu_online(cpu))
			continue;
		ret = rdmsr(cpu, msr, &hw);
		if (ret == -ENOENT || ret == -ENXIO)
			SKIP(return, "no /dev/cpu/%d/msr (CONFIG_X86_MSR)", cpu);
		ASSERT_EQ(0, ret);
		ASSERT_EQ(0, read_u64(cpu, "msr_value", &value));
		EXPECT_EQ(value, hw) TH_LOG("CPU%d: sysfs %#" PRIx64 ", MSR %#" PRIx64, cpu, value, hw);
		EXPECT_EQ(1, hw & 1) TH_LOG("CPU%d: enable bit clear", cpu);
		EXPECT_EQ(0, hw & 0x3e) TH_LOG("CPU%d: record not 64-byte aligned", cpu);
		EXPECT_EQ((hw & 0xfff) + 32 <= 4096, 1) TH_LOG("CPU%d: record crosses a page", cpu);
	}
}

TEST(totals_are_sums_and_counters_only_grow)
{
	uint64_t before[MAX_COUNTERS], sum[MAX_COUNTERS], after[MAX_COUNTERS], v;
	int cpu, n, i, reads, clamps, fallbacks;

	REQUIRE_KVMCLOCK();
	ASSERT_EQ(0, discover_counters());
	reads = counter_index("reads");
	clamps = counter_index("clamps");
	fallbacks = counter_index("fallbacks");
	/* The documented counters are there (more may be added). */
	ASSERT_GE(nr_counters, 7);
	ASSERT_GE(reads, 0);
	ASSERT_GE(clamps, 0);
	ASSERT_GE(fallbacks, 0);
	n = nr_cpu_dirs();
	for (i = 0; i < nr_counters; i++) {
		ASSERT_EQ(0, read_u64(-1, counters[i], &before[i])) TH_LOG("%s", counters[i]);
		sum[i] = 0;
	}
	for (cpu = 0; cpu < n; cpu++)
		for (i = 0; i < nr_counters; i++) {
			ASSERT_EQ(0, read_u64(cpu, counters[i], &v)) TH_LOG("cpu%d/%s", cpu, counters[i]);
			sum[i] += v;
		}
	usleep(200000);
	for (i = 0; i < nr_counters; i++) {
		ASSERT_EQ(0, read_u64(-1, counters[i], &after[i]));
		/* Counters move between the reads: the sum lies between two totals. */
		EXPECT_GE(sum[i], before[i]) TH_LOG("%s", counters[i]);
		EXPECT_LE(sum[i], after[i]) TH_LOG("%s", counters[i]);
	}
	EXPECT_LE(after[clamps], after[reads]) TH_LOG("more clamps than reads");
	EXPECT_LE(after[fallbacks], after[reads]) TH_LOG("more fallbacks than reads");
}

TEST(healthy_host_gives_no_refused_or_replaced_records)
{
	uint64_t invalid, fallbacks, regs, online = 0;
	int cpu, n;

	REQUIRE_KVMCLOCK();
	ASSERT_EQ(0, read_u64(-1, "invalid_records", &invalid));
	ASSERT_EQ(0, read_u64(-1, "fallbacks", &fallbacks));
	ASSERT_EQ(0, read_u64(-1, "registrations", &regs));
	EXPECT_EQ(0, invalid);
	n = nr_cpu_dirs();
	for (cpu = 0; cpu < n; cpu++)
		online += cpu_online(cpu);
	/*
	 * A CPU that comes online reads the clock before its record is registered (the hotplug
	 * callback runs later than the in-tree driver's early_percpu_clock_init), from the
	 * reference record. Without hotplug since the load, nothing may fall back.
	 */
	if (regs == online) {
		EXPECT_EQ(0, fallbacks);
	} else {
		TH_LOG("%" PRIu64 " registrations for %" PRIu64 " online CPUs: hotplug happened, "
		       "%" PRIu64 " bring-up reads fell back", regs, online, fallbacks);
	}
}

TEST(stable_flag_and_rating_are_sane)
{
	uint64_t trusted, rating, stable;
	int cpu, n;
	char path[256], buf[16];

	REQUIRE_KVMCLOCK();
	ASSERT_EQ(0, read_u64(-1, "stable_trusted", &trusted));
	EXPECT_TRUE(trusted <= 1);
	ASSERT_EQ(0, read_u64(-1, "rating", &rating));
	EXPECT_TRUE(rating >= 1 && rating <= 499);
	n = nr_cpu_dirs();
	for (cpu = 0; cpu < n; cpu++) {
		snprintf(path, sizeof(path), KC_DIR "/cpu%d/stable", cpu);
		ASSERT_EQ(0, read_file(path, buf, sizeof(buf)));
		if (!cpu_online(cpu))
			continue;
		ASSERT_EQ(0, read_u64(cpu, "stable", &stable));
		EXPECT_TRUE(stable <= 1);
	}
}

TEST(reads_grow_while_kvm_clock_rs_is_current)
{
	char buf[64];
	uint64_t a, b;

	REQUIRE_KVMCLOCK();
	ASSERT_EQ(0, read_file("/sys/devices/system/clocksource/clocksource0/current_clocksource",
			       buf, sizeof(buf)));
	if (strcmp(buf, "kvm-clock-rs\n"))
		SKIP(return, "current clocksource is %.*s", (int)strcspn(buf, "\n"), buf);
	ASSERT_EQ(0, read_u64(-1, "reads", &a));
	ns_of(CLOCK_MONOTONIC);
	usleep(100000);
	ASSERT_EQ(0, read_u64(-1, "reads", &b));
	EXPECT_GT(b, a);
}

TEST(wall_clock_is_epoch_plus_kvmclock_and_close_to_realtime)
{
	uint64_t epoch, wall1, wall2, real;

	REQUIRE_KVMCLOCK();
	if (read_wall("wall_clock_epoch", &epoch))
		SKIP(return, "no wall clock from the host");
	ASSERT_EQ(0, read_wall("wall_clock", &wall1));
	real = ns_of(CLOCK_REALTIME);
	ASSERT_EQ(0, read_wall("wall_clock", &wall2));
	EXPECT_GT(wall1, epoch);
	EXPECT_GE(wall2, wall1);
	/* CLOCK_REALTIME came from the RTC at boot (seconds); allow 2 s. */
	EXPECT_LT(llabs((long long)(real - wall1)), 2000000000LL)
		TH_LOG("realtime %" PRIu64 " vs kvmclock wall clock %" PRIu64, real, wall1);
}

TEST_HARNESS_MAIN
