// SPDX-License-Identifier: GPL-2.0
/*
 * unpriv_read - read a directory tree as an unprivileged user.
 *
 * Usage: unpriv_read DIR
 * Drops to uid/gid 65534 (nobody), then walks DIR and prints, for every
 * regular file, "read PATH: CONTENT" (newlines folded into spaces) if it can
 * be read, or "denied PATH" if open() fails with EACCES.  The test plan
 * checks that no file an unprivileged user can read holds a kernel or
 * physical address.  Exits 0 after the walk, 2 on errors (not root, no DIR).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int walk(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d) {
		if (errno == EACCES || errno == EPERM) {
			printf("denied %s/\n", dir);
			return 0;
		}
		printf("error %s/: %s\n", dir, strerror(errno));
		return 2;
	}
	while ((e = readdir(d))) {
		char path[4096], buf[4096];
		struct stat st;
		ssize_t n;
		int fd;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			rc |= walk(path);
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			if (errno == EACCES || errno == EPERM) {
				printf("denied %s\n", path);
			} else {
				printf("error %s: %s\n", path, strerror(errno));
				rc = 2;
			}
			continue;
		}
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n < 0) {
			printf("denied %s\n", path);
			continue;
		}
		buf[n] = 0;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n')
				buf[i] = ' ';
		printf("read %s: %s\n", path, buf);
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
		perror("unpriv_read: cannot drop to uid 65534");
		return 2;
	}
	if (getuid() == 0 || geteuid() == 0) {
		fprintf(stderr, "unpriv_read: still root\n");
		return 2;
	}
	return walk(argv[1]);
}
