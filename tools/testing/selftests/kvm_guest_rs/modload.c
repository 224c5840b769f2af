// SPDX-License-Identifier: GPL-2.0
/*
 * modload - load a module with exactly one finit_module() call.
 *
 * busybox insmod retries a failed finit_module() with init_module(), which
 * runs the module's init twice; the selftests need one attempt and the exact
 * errno.  Usage: modload MODULE.ko [PARAM=VALUE...]
 * Prints "modload: ok" or "modload: errno N (NAME): message" and exits 0 on
 * success, 1 on failure, 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *errno_name(int e)
{
	switch (e) {
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case EBUSY: return "EBUSY";
	case ENOMEM: return "ENOMEM";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	case EAGAIN: return "EAGAIN";
	default: return "?";
	}
}

int main(int argc, char **argv)
{
	char params[4096] = "";
	size_t len = 0;
	int fd, i;

	if (argc < 2) {
		fprintf(stderr, "usage: modload MODULE.ko [PARAM=VALUE...]\n");
		return 2;
	}
	for (i = 2; i < argc; i++) {
		int n = snprintf(params + len, sizeof(params) - len, "%s%s", len ? " " : "", argv[i]);

		if (n < 0 || (size_t)n >= sizeof(params) - len) {
			fprintf(stderr, "modload: parameters too long\n");
			return 2;
		}
		len += n;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("modload: errno %d (%s): open %s: %s\n", errno, errno_name(errno), argv[1],
		       strerror(errno));
		return 1;
	}
	if (syscall(SYS_finit_module, fd, params, 0)) {
		int e = errno;

		printf("modload: errno %d (%s): %s\n", e, errno_name(e), strerror(e));
		return 1;
	}
	printf("modload: ok\n");
	return 0;
}
