// SPDX-License-Identifier: GPL-2.0
/*
 * FUSE remote locks: POSIX record locks and flock() between guest
 * processes, and between the guest and host processes. Runs on the locks
 * plan only: the DAX host started with --locks grants FUSE_POSIX_LOCKS and
 * FUSE_FLOCK_LOCKS and takes every lock on the host (OFD locks and
 * flock(2), tests/vhost-user-fs-dax/README.md), so the host agent
 * (locks.hostagent) sees the guest's locks and holds locks the guest must
 * see. On a host without remote locks the remote_* tests fail: they are
 * not meant for it.
 *
 * What the C driver (6.12) does, which the expectations follow:
 *   - F_GETLK answers l_pid 0 for a lock held by another guest process: the
 *     host cannot name the holder (OFD locks have no pid) and answers 0;
 *   - flock() is sent as whole-file requests flagged FUSE_LK_FLOCK, which
 *     the host serves with flock(2): flock and POSIX locks do not conflict;
 *   - close() of any descriptor sends FUSE_FLUSH with the process's lock
 *     owner (its POSIX locks go), the last close of a description that
 *     used flock() sends FUSE_RELEASE with FUSE_RELEASE_FLOCK_UNLOCK;
 *   - no FUSE_INTERRUPT: a caught signal does not end an F_SETLKW (it
 *     returns 0 once the lock is granted), SIGKILL leaves the task waiting
 *     until then. A driver that interrupts must return EINTR and hold
 *     nothing; either way what it returns must match what it holds.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "lock_util.h"
#include "vfs_util.h"

/*
 * Blocking children: the child writes a byte to ready_pipe[1] just before its
 * blocking call (its open() also sleeps, waiting for the host).
 */
static int ready_pipe[2];

FIXTURE(locks) {
	char mnt[64];
	char dir[256];
	char path[320];
	int seq;
};

FIXTURE_SETUP(locks)
{
	char guest[128];

	umask(022);
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)))
		TH_LOG("mount %s: %s", vfs_tag(), strerror(errno));
	snprintf(guest, sizeof(guest), "%s/guest", self->mnt);
	ASSERT_EQ(0, mkdir(guest, 0755) && errno != EEXIST);
	snprintf(self->dir, sizeof(self->dir), "%s/%s", guest, _metadata->name);
	ASSERT_EQ(0, mkdir(self->dir, 0755) && errno != EEXIST);
	snprintf(self->path, sizeof(self->path), "%s/lockfile", self->dir);
	ASSERT_EQ(0, vfs_write_pattern(self->path, 1000, 141));
	self->seq = 0;
	ASSERT_EQ(0, pipe(ready_pipe));
}

FIXTURE_TEARDOWN(locks)
{
	close(ready_pipe[0]);
	close(ready_pipe[1]);
	vfs_umount(self->mnt);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void child_ready(void)
{
	if (write(ready_pipe[1], "r", 1) != 1)
		_exit(child_fail(__LINE__, "ready"));
}

/* Waits for @pid's ready byte, until it sleeps (S or D in /proc/PID/stat), then 0.5 s. */
static int wait_blocked(pid_t pid)
{
	char path[64], buf[256], *p, c;
	int i;

	if (read(ready_pipe[0], &c, 1) != 1)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (i = 0; i < 200; i++) {
		usleep(50 * 1000);
		if (vfs_read_line(path, buf, sizeof(buf)))
			return -1;
		p = strrchr(buf, ')');
		if (p && (p[2] == 'S' || p[2] == 'D')) {
			usleep(500 * 1000);
			return 0;
		}
	}
	return -1;
}

/*
 * Asks the host agent (locks.hostagent) for @action on this test's
 * lockfile: creates agent/@action.N.TEST, waits for its .done, and reads
 * what the agent wrote to guest/TEST/@action.N.TEST.out into @out.
 */
static int host_agent(struct __test_metadata *_metadata, const char *mnt, const char *dir,
		      int *seq, const char *action, char *out, size_t len)
{
	char req[300], path[400], done[410], res[600];
	struct stat st;
	int fd, i;

	snprintf(req, sizeof(req), "%s.%d.%s", action, (*seq)++, _metadata->name);
	snprintf(path, sizeof(path), "%s/agent/%s", mnt, req);
	snprintf(done, sizeof(done), "%s.done", path);
	snprintf(res, sizeof(res), "%s/%s.out", dir, req);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	for (i = 0; i < 600; i++) {
		if (!stat(done, &st))
			break;
		usleep(100 * 1000);
	}
	if (i == 600)
		return -1;
	if (out && vfs_read_line(res, out, len))
		return -1;
	return 0;
}

#define AGENT(action, out) \
	host_agent(_metadata, self->mnt, self->dir, &self->seq, action, out, sizeof(out))

/* A conflicting write lock fails with EAGAIN; F_GETLK names the holder's lock. */
TEST_F(locks, posix_conflict_and_getlk)
{
	struct flock fl;
	int fd;

	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 100)) TH_LOG("F_SETLK: %s", strerror(errno));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 50, 10, EAGAIN));
	EXPECT_EQ(0, setlk_in_child(self->path, F_RDLCK, 99, 1, EAGAIN));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 100, 100, 0));

	ASSERT_EQ(0, getlk_in_child(self->path, F_RDLCK, 50, 10, &fl));
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(SEEK_SET, fl.l_whence);
	EXPECT_EQ(0, fl.l_start);
	EXPECT_EQ(100, fl.l_len);
	/* The host cannot name the holder: C reports pid 0. */
	EXPECT_EQ(0, fl.l_pid);
	ASSERT_EQ(0, getlk_in_child(self->path, F_WRLCK, 100, 10, &fl));
	EXPECT_EQ(F_UNLCK, fl.l_type);

	/* A process's own locks never conflict with it. */
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	ASSERT_EQ(0, fcntl(fd, F_GETLK, &fl));
	EXPECT_EQ(F_UNLCK, fl.l_type);

	/* To EOF (l_len 0) and beyond: a lock far past the end conflicts. */
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 500, 0));
	ASSERT_EQ(0, getlk_in_child(self->path, F_WRLCK, 1LL << 40, 1, &fl));
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(500, fl.l_start);
	EXPECT_EQ(0, fl.l_len);
	EXPECT_EQ(0, setlk_in_child(self->path, F_RDLCK, 1LL << 40, 1, EAGAIN));

	/* Unlocking the middle splits the lock. */
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_UNLCK, 20, 10));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 20, 10, 0));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 19, 1, EAGAIN));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 30, 1, EAGAIN));
	close(fd);
}

/* Read locks share; a child's locks go when it exits. */
TEST_F(locks, read_locks_share)
{
	int fd, ready[2], go[2];
	pid_t pid;
	char c;

	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_RDLCK, 0, 0));
	EXPECT_EQ(0, setlk_in_child(self->path, F_RDLCK, 0, 0, 0));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 10, 1, EAGAIN));

	/* A child holding a read lock keeps this process from upgrading. */
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	if (!pid) {
		int cfd = open(self->path, O_RDWR);

		if (cfd < 0 || setlk(cfd, F_SETLK, F_RDLCK, 0, 0))
			_exit(child_fail(__LINE__, "read lock"));
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(child_fail(__LINE__, "pipe"));
		_exit(0);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	EXPECT_EQ(-1, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, reap(pid));
	EXPECT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0)) TH_LOG("the exited child's lock stayed");
	EXPECT_EQ(0, setlk_in_child(self->path, F_RDLCK, 0, 1, EAGAIN));
	close(fd);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
}

/* F_SETLKW waits until the holder unlocks, then holds the lock. */
TEST_F(locks, setlkw_waits_for_unlock)
{
	int fd, ready[2], go[2];
	double t0;
	pid_t pid;
	char c;

	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 100));
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	if (!pid) {
		int cfd = open(self->path, O_RDWR);
		double t;

		if (cfd < 0)
			_exit(child_fail(__LINE__, "open"));
		child_ready();
		t = now();
		if (setlk(cfd, F_SETLKW, F_WRLCK, 50, 100))
			_exit(child_fail(__LINE__, "F_SETLKW"));
		if (now() - t < 0.5)
			_exit(child_fail(__LINE__, "F_SETLKW did not wait"));
		if (write(ready[1], "l", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(child_fail(__LINE__, "pipe"));
		_exit(0);
	}
	ASSERT_EQ(0, wait_blocked(pid));
	t0 = now();
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_UNLCK, 0, 100));
	ASSERT_EQ(1, read(ready[0], &c, 1));
	TH_LOG("granted %.3f s after the unlock", now() - t0);
	/* The waiter holds it now. */
	EXPECT_EQ(-1, setlk(fd, F_SETLK, F_RDLCK, 120, 1));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 50));
	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, reap(pid));
	EXPECT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	close(fd);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
}

static void on_usr1(int sig)
{
}

/*
 * A caught signal (no SA_RESTART) for a task in F_SETLKW: either the call
 * fails with EINTR before the unlock and the task holds nothing, or (C: no
 * FUSE_INTERRUPT) it returns 0 after the unlock and the task holds the
 * lock. Never a lock held after EINTR.
 */
TEST_F(locks, setlkw_caught_signal)
{
	struct { int ret, err; double t; } res;
	int fd, p[2], go[2];
	double t_unlock;
	pid_t pid;
	char c;

	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	if (!pid) {
		struct sigaction sa = { .sa_handler = on_usr1 };
		int cfd = open(self->path, O_RDWR);

		if (cfd < 0 || sigaction(SIGUSR1, &sa, NULL))
			_exit(child_fail(__LINE__, "setup"));
		child_ready();
		res.ret = setlk(cfd, F_SETLKW, F_WRLCK, 0, 10);
		res.err = errno;
		res.t = now();
		if (write(p[1], &res, sizeof(res)) != sizeof(res) || read(go[0], &c, 1) != 1)
			_exit(child_fail(__LINE__, "pipe"));
		_exit(0);
	}
	ASSERT_EQ(0, wait_blocked(pid));
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	usleep(1000 * 1000);
	t_unlock = now();
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_UNLCK, 0, 0));
	ASSERT_EQ((ssize_t)sizeof(res), read(p[0], &res, sizeof(res)));
	if (res.ret) {
		TH_LOG("F_SETLKW failed: %s", strerror(res.err));
		EXPECT_EQ(EINTR, res.err);
		EXPECT_LT(res.t, t_unlock) TH_LOG("EINTR only after the unlock");
		EXPECT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 10))
			TH_LOG("a lock held after EINTR");
	} else {
		TH_LOG("F_SETLKW waited out the signal and got the lock");
		EXPECT_LE(t_unlock, res.t);
		EXPECT_EQ(-1, setlk(fd, F_SETLK, F_WRLCK, 0, 10));
		EXPECT_EQ(EAGAIN, errno);
	}
	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, reap(pid));
	EXPECT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	close(fd);
	close(p[0]);
	close(p[1]);
	close(go[0]);
	close(go[1]);
}

/* A task killed in F_SETLKW leaves no lock behind once it is gone. */
TEST_F(locks, setlkw_killed)
{
	int fd;
	pid_t pid;

	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	pid = fork();
	if (!pid) {
		int cfd = open(self->path, O_RDWR);

		if (cfd < 0)
			_exit(child_fail(__LINE__, "open"));
		child_ready();
		setlk(cfd, F_SETLKW, F_WRLCK, 0, 0);
		_exit(0);
	}
	ASSERT_EQ(0, wait_blocked(pid));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	usleep(500 * 1000);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_UNLCK, 0, 0));
	EXPECT_EQ(128 + SIGKILL, reap(pid));
	EXPECT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0)) TH_LOG("the killed waiter holds a lock");
	close(fd);
}

/* Closing any descriptor of the file drops the process's POSIX locks. */
TEST_F(locks, close_drops_posix_locks)
{
	int fd, fd2;

	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	EXPECT_EQ(0, setlk_in_child(self->path, F_RDLCK, 500, 1, EAGAIN));
	fd2 = open(self->path, O_RDONLY);
	ASSERT_LE(0, fd2);
	close(fd2);
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 0, 0));
	/* Locked again, then the locking descriptor itself is closed. */
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 0, EAGAIN));
	close(fd);
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 0, 0));
}

/*
 * Open file description locks (F_OFD_SETLK) on the host: owned by the open
 * file, they conflict with another description of the same process, and
 * go with the description's last close. C 6.12 leaves them on the host
 * (no FLUSH or RELEASE names that owner): c.xfail.
 */
TEST_F(locks, ofd_locks_go_with_the_description)
{
	int fd, fd2;

	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	fd2 = open(self->path, O_RDWR);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, setlk(fd, F_OFD_SETLK, F_WRLCK, 0, 100)) TH_LOG("F_OFD_SETLK: %s",
								     strerror(errno));
	EXPECT_EQ(-1, setlk(fd2, F_OFD_SETLK, F_WRLCK, 50, 10));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 10, EAGAIN));
	close(fd);
	EXPECT_EQ(0, setlk(fd2, F_OFD_SETLK, F_WRLCK, 50, 10)) TH_LOG("still locked after close: %s",
									strerror(errno));
	EXPECT_EQ(0, setlk(fd2, F_OFD_SETLK, F_UNLCK, 0, 0));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 10, 0));
	close(fd2);
}

/* flock(): exclusive, shared, conversion, blocking, per description, last close. */
TEST_F(locks, flock_between_processes)
{
	int fd1, fd2, fd3;
	double t0;
	pid_t pid;

	fd1 = open(self->path, O_RDWR);
	ASSERT_LE(0, fd1);
	ASSERT_EQ(0, flock(fd1, LOCK_EX)) TH_LOG("flock: %s", strerror(errno));
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, EWOULDBLOCK));
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_SH | LOCK_NB, EWOULDBLOCK));
	/* Per open file description: a second open in this process conflicts too. */
	fd2 = open(self->path, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-1, flock(fd2, LOCK_EX | LOCK_NB));
	EXPECT_EQ(EWOULDBLOCK, errno);

	ASSERT_EQ(0, flock(fd1, LOCK_SH));
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_SH | LOCK_NB, 0));
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, EWOULDBLOCK));
	EXPECT_EQ(0, flock(fd2, LOCK_SH | LOCK_NB));
	EXPECT_EQ(0, flock(fd2, LOCK_UN));
	ASSERT_EQ(0, flock(fd1, LOCK_UN));
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, 0));

	/* A blocking flock() waits for LOCK_UN. */
	ASSERT_EQ(0, flock(fd1, LOCK_EX));
	pid = fork();
	if (!pid) {
		int cfd = open(self->path, O_RDWR);
		double t;

		if (cfd < 0)
			_exit(child_fail(__LINE__, "open"));
		child_ready();
		t = now();
		if (flock(cfd, LOCK_EX))
			_exit(child_fail(__LINE__, "flock"));
		_exit(now() - t >= 0.5 ? 0 : child_fail(__LINE__, "flock did not wait"));
	}
	ASSERT_EQ(0, wait_blocked(pid));
	t0 = now();
	ASSERT_EQ(0, flock(fd1, LOCK_UN));
	EXPECT_EQ(0, reap(pid));
	TH_LOG("blocked flock granted %.3f s after LOCK_UN", now() - t0);

	/* The lock goes with the last descriptor of the description. */
	ASSERT_EQ(0, flock(fd1, LOCK_EX));
	fd3 = dup(fd1);
	ASSERT_LE(0, fd3);
	close(fd1);
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, EWOULDBLOCK));
	close(fd3);
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, 0));
	close(fd2);
}

/* flock() and POSIX locks do not conflict (as on Linux): the host keeps them apart. */
TEST_F(locks, flock_and_posix_independent)
{
	int fd;

	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, flock(fd, LOCK_EX));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 0, 0));
	ASSERT_EQ(0, flock(fd, LOCK_UN));
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, 0));
	/* Releasing the POSIX lock does not touch a flock of the same file. */
	ASSERT_EQ(0, flock(fd, LOCK_EX));
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_UNLCK, 0, 0));
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, EWOULDBLOCK));
	close(fd);
}

/*
 * Direct I/O carries its process's lock owner (FUSE_READ_LOCKOWNER and
 * FUSE_WRITE_LOCKOWNER, as C's fuse_direct_io), the one its POSIX locks
 * have, whether the caller waits (pwrite, pread) or not (aio): on plan
 * locks the host check (locks.hostcheck) wants this file's SETLK and its
 * two direct WRITEs and two direct READs to name one owner, and no other
 * READ or WRITE of it to carry one. On locks-dax the file is DAX and no
 * READ or WRITE is sent.
 */
TEST_F(locks, direct_io_carries_the_lock_owner)
{
	struct iocb cb, *ptrs[1] = { &cb };
	aio_context_t ctx = 0;
	struct io_event ev;
	char path[300];
	void *buf;
	int fd;

	snprintf(path, sizeof(path), "%s/lockowner.f", self->dir);
	/* Made first: fuse-backend-rs keeps O_DIRECT in a CREATE's host open. */
	ASSERT_EQ(0, vfs_write_pattern(path, 8192, 142));
	fd = open(path, O_RDWR | O_DIRECT);
	ASSERT_LE(0, fd) TH_LOG("open O_DIRECT: %s", strerror(errno));
	ASSERT_EQ(0, posix_memalign(&buf, 4096, 4096));
	memset(buf, 0x5a, 4096);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 8192));
	EXPECT_EQ(4096, pwrite(fd, buf, 4096, 0)) TH_LOG("pwrite: %s", strerror(errno));
	memset(buf, 0, 4096);
	EXPECT_EQ(4096, pread(fd, buf, 4096, 0)) TH_LOG("pread: %s", strerror(errno));
	EXPECT_EQ(0x5a, ((unsigned char *)buf)[4095]);

	/* The same at 4096, through aio (not extending the file). */
	ASSERT_EQ(0, syscall(__NR_io_setup, 1, &ctx));
	memset(buf, 0xa5, 4096);
	vfs_aio_prep(&cb, fd, IOCB_CMD_PWRITE, buf, 4096, 4096, 1);
	ASSERT_EQ(1, syscall(__NR_io_submit, ctx, 1, ptrs)) TH_LOG("submit: %s", strerror(errno));
	ASSERT_EQ(1, vfs_aio_reap(ctx, 1, &ev));
	EXPECT_EQ(4096, ev.res);
	memset(buf, 0, 4096);
	vfs_aio_prep(&cb, fd, IOCB_CMD_PREAD, buf, 4096, 4096, 2);
	ASSERT_EQ(1, syscall(__NR_io_submit, ctx, 1, ptrs));
	ASSERT_EQ(1, vfs_aio_reap(ctx, 1, &ev));
	EXPECT_EQ(4096, ev.res);
	EXPECT_EQ(0xa5, ((unsigned char *)buf)[0]);
	syscall(__NR_io_destroy, ctx);
	close(fd);
	free(buf);
}

/*
 * The guest's POSIX locks are host locks: a host process's F_GETLK on the
 * file sees them (l_pid -1: the host holds them as OFD locks), and no
 * longer after the unlock or the close.
 */
TEST_F(locks, remote_posix_lock_seen_by_host)
{
	char out[128];
	int fd;

	ASSERT_EQ(0, AGENT("getlk", out)) TH_LOG("the host agent never answered");
	EXPECT_STREQ("U", out);
	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 10, 90));
	ASSERT_EQ(0, AGENT("getlk", out));
	EXPECT_STREQ("W 10 90 -1", out);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_RDLCK, 10, 90));
	ASSERT_EQ(0, AGENT("getlk", out));
	EXPECT_STREQ("R 10 90 -1", out);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_UNLCK, 0, 0));
	ASSERT_EQ(0, AGENT("getlk", out));
	EXPECT_STREQ("U", out);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	ASSERT_EQ(0, AGENT("getlk", out));
	EXPECT_STREQ("W 0 0 -1", out);
	close(fd);
	ASSERT_EQ(0, AGENT("getlk", out));
	EXPECT_STREQ("U", out) TH_LOG("close left the lock on the host");
}

/* The guest's flock() is a host flock(): the host's flock -n fails while it is held. */
TEST_F(locks, remote_flock_seen_by_host)
{
	char out[128];
	int fd;

	ASSERT_EQ(0, AGENT("flock", out)) TH_LOG("the host agent never answered");
	EXPECT_STREQ("free", out);
	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, flock(fd, LOCK_EX));
	ASSERT_EQ(0, AGENT("flock", out));
	EXPECT_STREQ("locked", out);
	ASSERT_EQ(0, flock(fd, LOCK_UN));
	ASSERT_EQ(0, AGENT("flock", out));
	EXPECT_STREQ("free", out);
	ASSERT_EQ(0, flock(fd, LOCK_SH));
	close(fd);
	ASSERT_EQ(0, AGENT("flock", out));
	EXPECT_STREQ("free", out) TH_LOG("the last close left the flock on the host");
}

/*
 * A host process's lock is seen in the guest: F_GETLK reports it, F_SETLK
 * fails, F_SETLKW waits until the host process lets go.
 */
TEST_F(locks, host_lock_seen_by_guest)
{
	struct flock fl;
	char out[128];
	double t0;
	pid_t pid;
	int fd;

	ASSERT_EQ(0, AGENT("hold", out)) TH_LOG("the host agent never answered");
	ASSERT_STREQ("held", out);
	fd = open(self->path, O_RDWR);
	ASSERT_LE(0, fd);
	fl = (struct flock){ .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	ASSERT_EQ(0, fcntl(fd, F_GETLK, &fl));
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(0, fl.l_start);
	EXPECT_EQ(100, fl.l_len);
	EXPECT_EQ(-1, setlk(fd, F_SETLK, F_RDLCK, 99, 1));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 100, 1));

	pid = fork();
	if (!pid) {
		int cfd = open(self->path, O_RDWR);

		if (cfd < 0)
			_exit(child_fail(__LINE__, "open"));
		child_ready();
		if (setlk(cfd, F_SETLKW, F_WRLCK, 50, 10))
			_exit(child_fail(__LINE__, "F_SETLKW"));
		_exit(0);
	}
	ASSERT_EQ(0, wait_blocked(pid));
	t0 = now();
	ASSERT_EQ(0, AGENT("release", out));
	EXPECT_STREQ("released", out);
	EXPECT_EQ(0, reap(pid));
	TH_LOG("granted %.3f s after the host asked to let go", now() - t0);
	EXPECT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 100));
	close(fd);
}

TEST_HARNESS_MAIN
