/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Lock helpers shared by the virtiofs kselftests that take POSIX record
 * locks and flock() locks from other processes (posix_test, lock_test,
 * lock_inject_test). Each *_in_child helper opens the file afresh in a
 * child, so the lock is another process's, and gives the child's verdict.
 */
#ifndef VFS_LOCK_UTIL_H
#define VFS_LOCK_UTIL_H

#include <sys/file.h>

#include "vfs_util.h"

/* fcntl(@cmd) for a lock of @type over @len bytes from @start. */
static inline int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, cmd, &fl);
}

/* In a child: F_SETLK on a fresh open of @path; 0 if the result is @want. */
static inline int setlk_in_child(const char *path, short type, off_t start, off_t len,
				 int want)
{
	pid_t pid = fork();
	int fd;

	if (!pid) {
		fd = open(path, O_RDWR);
		if (fd < 0)
			_exit(child_fail(__LINE__, "open"));
		_exit((setlk(fd, F_SETLK, type, start, len) ? errno : 0) == want ?
		      0 : child_fail(__LINE__, "F_SETLK"));
	}
	return reap(pid);
}

/* In a child: F_GETLK on a fresh open of @path, its answer into @out. */
static inline int getlk_in_child(const char *path, short type, off_t start, off_t len,
				 struct flock *out)
{
	int p[2], fd;
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (!pid) {
		struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
				    .l_start = start, .l_len = len };

		fd = open(path, O_RDWR);
		if (fd < 0 || fcntl(fd, F_GETLK, &fl))
			_exit(child_fail(__LINE__, "F_GETLK"));
		_exit(write(p[1], &fl, sizeof(fl)) != sizeof(fl));
	}
	close(p[1]);
	if (read(p[0], out, sizeof(*out)) != sizeof(*out))
		memset(out, 0xff, sizeof(*out));
	close(p[0]);
	return reap(pid);
}

/* In a child: flock(@op) on a fresh open of @path; 0 if the result is @want. */
static inline int flock_in_child(const char *path, int op, int want)
{
	pid_t pid = fork();
	int fd;

	if (!pid) {
		fd = open(path, O_RDWR);
		if (fd < 0)
			_exit(child_fail(__LINE__, "open"));
		_exit((flock(fd, op) ? errno : 0) == want ? 0 : child_fail(__LINE__, "flock"));
	}
	return reap(pid);
}

#endif /* VFS_LOCK_UTIL_H */
