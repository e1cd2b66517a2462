// SPDX-License-Identifier: GPL-2.0
/*
 * Host errors and late replies on the FUSE lock opcodes (FUSE_GETLK,
 * FUSE_SETLK, FUSE_SETLKW), as inject_test does for the others.
 *
 * The locks-inject plan runs the DAX host with remote locks (--locks) and
 * one injection rule per test, naming the file the test locks: e.g.
 * "fail:opcode=SETLK:errno=ENOLCK:nth=1:name=setlk.f" fails the first
 * FUSE_SETLK on the node the guest was handed as setlk.f. Each test makes
 * one call that sends exactly one request matching its rule (the plan's
 * host check counts one hit per rule), then checks from another process
 * what the host holds: a failed request must leave nothing locked, a
 * delayed one must have taken its lock.
 *
 * ENOSYS is the host saying it keeps no locks after all. C 6.12 returns it
 * to every fcntl() and flock(); virtiofs-rs falls back to local locks, as
 * for a host that never offered them, so the lock still works between the
 * guest's processes (the *_nosys tests; C fails them, tests/expect/c.xfail).
 *
 * VFS_INJECT_DELAY_MS: see inject_util.h.
 */
#define _GNU_SOURCE

#include "kselftest_harness.h"
#include "inject_util.h"
#include "lock_util.h"
#include "vfs_util.h"

/* The directory the tests lock their files in. */
#define INJ_DIR "lockinject"
/* The plan's ENOSYS, by number (checkpatch keeps the name for syscalls). */
#define HOST_ENOSYS 38

FIXTURE(lockinj) {
	char mnt[64];
	char path[256];
	int fd;
	/* The process that opened fd: the test's, not the harness parent. */
	pid_t opener;
};

FIXTURE_SETUP(lockinj)
{
	char dir[128];

	self->fd = -1;
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)))
		TH_LOG("mount %s: %s", vfs_tag(), strerror(errno));
	snprintf(dir, sizeof(dir), "%s/" INJ_DIR, self->mnt);
	ASSERT_EQ(0, mkdir(dir, 0755) && errno != EEXIST);
}

FIXTURE_TEARDOWN_PARENT(lockinj)
{
	/*
	 * After an ASSERT the 6.12 harness may run this in the test process
	 * itself (its fork() result is lost in the longjmp): the file is
	 * open there, and an unmount would fail and leave the next test on
	 * this test's superblock.
	 */
	if (self->fd >= 0 && self->opener == getpid())
		close(self->fd);
	/* Forgets while mounted, for the host's accounting check. */
	vfs_drop_caches();
	usleep(300 * 1000);
	vfs_umount(self->mnt);
}

/* Creates mnt/INJ_DIR/@name (its path into @path) and opens it read-write. */
static int open_file(char *path, size_t len, const char *mnt, const char *name)
{
	snprintf(path, len, "%s/" INJ_DIR "/%s", mnt, name);
	return open(path, O_RDWR | O_CREAT, 0644);
}

#define OPEN(name) do {								\
	self->opener = getpid();						\
	self->fd = open_file(self->path, sizeof(self->path), self->mnt, name);	\
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", self->path, strerror(errno)); \
} while (0)

/* A failed F_GETLK fails the call. */
TEST_F(lockinj, getlk_error)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 100 };
	int r;

	OPEN("getlk.f");
	r = fcntl(self->fd, F_GETLK, &fl);
	fails_with(_metadata, "F_GETLK", r, errno, EIO);
}

/* A refused F_SETLK holds nothing: another process takes the range. */
TEST_F(lockinj, setlk_error)
{
	int r;

	OPEN("setlk.f");
	r = setlk(self->fd, F_SETLK, F_WRLCK, 0, 100);
	fails_with(_metadata, "F_SETLK", r, errno, ENOLCK);
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 100, 0))
		TH_LOG("the refused lock is held");
}

TEST_F(lockinj, setlkw_error)
{
	int r;

	OPEN("setlkw.f");
	r = setlk(self->fd, F_SETLKW, F_WRLCK, 0, 100);
	fails_with(_metadata, "F_SETLKW", r, errno, EDEADLK);
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 100, 0))
		TH_LOG("the refused lock is held");
}

/* flock() is sent as FUSE_SETLK (LOCK_NB) with FUSE_LK_FLOCK. */
TEST_F(lockinj, flock_error)
{
	int r;

	OPEN("flock.f");
	r = flock(self->fd, LOCK_EX | LOCK_NB);
	fails_with(_metadata, "flock", r, errno, EIO);
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, 0))
		TH_LOG("the refused flock is held");
}

TEST_F(lockinj, getlk_delay)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 100 };
	long long t0;

	OPEN("getlk-delay.f");
	t0 = now_ms();
	ASSERT_EQ(0, fcntl(self->fd, F_GETLK, &fl)) TH_LOG("F_GETLK: %s", strerror(errno));
	took_the_delay(_metadata, "F_GETLK", t0);
	EXPECT_EQ(F_UNLCK, fl.l_type);
}

/* A late grant is a grant: the lock is held once the call returns. */
TEST_F(lockinj, setlkw_delay)
{
	long long t0;

	OPEN("setlkw-delay.f");
	t0 = now_ms();
	ASSERT_EQ(0, setlk(self->fd, F_SETLKW, F_WRLCK, 0, 100)) TH_LOG("F_SETLKW: %s", strerror(errno));
	took_the_delay(_metadata, "F_SETLKW", t0);
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 100, EAGAIN))
		TH_LOG("the granted lock is not held");
}

TEST_F(lockinj, flock_delay)
{
	long long t0;

	OPEN("flock-delay.f");
	t0 = now_ms();
	ASSERT_EQ(0, flock(self->fd, LOCK_EX | LOCK_NB)) TH_LOG("flock: %s", strerror(errno));
	took_the_delay(_metadata, "flock", t0);
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, EWOULDBLOCK))
		TH_LOG("the granted flock is not held");
}

/*
 * A host that answers ENOSYS keeps no locks: the guest keeps them (past C),
 * and they still exclude another process of the guest. The first call is
 * an EXPECT: an ASSERT's longjmp would make the harness tear down in the
 * test process, with the file still open, and leave the tag mounted.
 */
TEST_F(lockinj, setlk_nosys)
{
	int r;

	OPEN("setlk-nosys.f");
	r = setlk(self->fd, F_SETLK, F_WRLCK, 0, 100);
	EXPECT_EQ(0, r) TH_LOG("F_SETLK on a host without locks: %s", strerror(errno));
	if (r)
		return;
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 100, EAGAIN))
		TH_LOG("the local lock does not exclude another process");
	EXPECT_EQ(0, setlk(self->fd, F_SETLK, F_UNLCK, 0, 100));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 100, 0))
		TH_LOG("the local lock outlived its unlock");
}

TEST_F(lockinj, getlk_nosys)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 100 };
	int r;

	OPEN("getlk-nosys.f");
	r = fcntl(self->fd, F_GETLK, &fl);
	EXPECT_EQ(0, r) TH_LOG("F_GETLK on a host without locks: %s", strerror(errno));
	if (r)
		return;
	EXPECT_EQ(F_UNLCK, fl.l_type);
	/* From now on the guest keeps the locks: they work between processes. */
	ASSERT_EQ(0, setlk(self->fd, F_SETLK, F_WRLCK, 0, 100)) TH_LOG("F_SETLK: %s", strerror(errno));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 100, EAGAIN))
		TH_LOG("the local lock does not exclude another process");
}

TEST_F(lockinj, flock_nosys)
{
	int r;

	OPEN("flock-nosys.f");
	r = flock(self->fd, LOCK_EX | LOCK_NB);
	EXPECT_EQ(0, r) TH_LOG("flock on a host without locks: %s", strerror(errno));
	if (r)
		return;
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, EWOULDBLOCK))
		TH_LOG("the local flock does not exclude another open");
	EXPECT_EQ(0, flock(self->fd, LOCK_UN));
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, 0))
		TH_LOG("the local flock outlived its unlock");
}

/*
 * ENOSYS from a host that granted a lock already is no sign it keeps none:
 * the call fails with it (as C), and the lock the host holds is still the
 * one that counts: another process cannot take it, and the unlock frees
 * it on the host.
 */
TEST_F(lockinj, nosys_after_a_grant)
{
	char other[256];
	int fd, r;

	OPEN("mixed-a.f");
	ASSERT_EQ(0, setlk(self->fd, F_SETLK, F_WRLCK, 0, 100)) TH_LOG("F_SETLK: %s", strerror(errno));
	fd = open_file(other, sizeof(other), self->mnt, "mixed-b.f");
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", other, strerror(errno));
	r = setlk(fd, F_SETLK, F_WRLCK, 0, 100);
	close(fd);
	fails_with(_metadata, "F_SETLK", r, errno, HOST_ENOSYS);
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 100, EAGAIN))
		TH_LOG("the lock the host granted no longer excludes another process");
	EXPECT_EQ(0, setlk(self->fd, F_SETLK, F_UNLCK, 0, 100));
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 100, 0))
		TH_LOG("the unlock did not reach the host");
}

/*
 * The state of task @pid once it is not running (R: not asleep yet, or
 * woken and not asleep again), polled every 10 ms from @from_ms after @t0
 * until the host's hold is nearly over; 0 if it never was.
 */
static char asleep_by(pid_t pid, long long t0, long long from_ms)
{
	char c = 0;

	while (now_ms() - t0 < from_ms)
		usleep(10 * 1000);
	while (now_ms() - t0 < delay_ms() - 200) {
		c = vfs_task_state(pid);
		if (c && c != 'R')
			return c;
		usleep(10 * 1000);
	}
	return c;
}

/*
 * close() is not tried again: its FLUSH, which releases the process's
 * locks on the host, is waited for even by a task killed meanwhile (C
 * forces it). The host holds the first FLUSH reply of flush-delay.f; the
 * killed task, whose close() sent it, cannot be gone before: not sooner
 * than the hold after the fork. The task closes a descriptor it
 * inherited, so its close() sends FLUSH and no RELEASE, and its exit sends
 * nothing that would wait behind the held reply on its own account. Until
 * the kill the task sleeps interruptibly (state S), as C's first wait, and
 * from the kill on uninterruptibly (D). A kill that comes after the close
 * ended (a stalled parent) proves nothing either way and is let pass.
 */
TEST_F(lockinj, killed_close_waits_for_flush)
{
	long long t0, took, t_before, t_after;
	int ready[2], status;
	char c, before, after;
	pid_t pid;

	OPEN("flush-delay.f");
	ASSERT_EQ(0, pipe(ready));
	t0 = now_ms();
	pid = fork();
	if (!pid) {
		if (setlk(self->fd, F_SETLK, F_WRLCK, 0, 100))
			_exit(child_fail(__LINE__, "F_SETLK"));
		if (write(ready[1], "r", 1) != 1)
			_exit(child_fail(__LINE__, "pipe"));
		close(self->fd);
		_exit(0);
	}
	close(ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	/* As C: the wait sleeps interruptibly until a signal comes, then on. */
	before = asleep_by(pid, t0, 300);
	t_before = now_ms() - t0;
	kill(pid, SIGKILL);
	after = asleep_by(pid, t0, t_before + 300);
	t_after = now_ms() - t0;
	status = reap(pid);
	took = now_ms() - t0;
	TH_LOG("the task, killed in close(), went %lld ms after its fork (status %d; FLUSH held %lld ms); state %c at %lld ms, %c at %lld ms",
	       took, status, delay_ms(), before ?: '-', t_before, after ?: '-', t_after);
	EXPECT_TRUE(status == 128 + SIGKILL || status == 0);
	/* Only while the host surely still holds the reply. */
	EXPECT_TRUE(t_before >= delay_ms() - 200 || before == 'S')
		TH_LOG("close() did not wait interruptibly for FLUSH");
	EXPECT_TRUE(t_after >= delay_ms() - 200 || after == 'D')
		TH_LOG("the killed task did not wait on uninterruptibly");
	if (t_before >= delay_ms() - 200 || t_after >= delay_ms() - 200)
		TH_LOG("a state read too late to tell was not checked");
	EXPECT_GE(took, delay_ms())
		TH_LOG("close() gave up on its FLUSH");
	EXPECT_EQ(0, setlk_in_child(self->path, F_WRLCK, 0, 100, 0))
		TH_LOG("the killed task's lock is still held");
	close(ready[0]);
}

/* As nosys_after_a_grant, for flock(). */
TEST_F(lockinj, flock_nosys_after_a_grant)
{
	char other[256];
	int fd, r;

	OPEN("mixed-fa.f");
	ASSERT_EQ(0, flock(self->fd, LOCK_EX | LOCK_NB)) TH_LOG("flock: %s", strerror(errno));
	fd = open_file(other, sizeof(other), self->mnt, "mixed-fb.f");
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", other, strerror(errno));
	r = flock(fd, LOCK_EX | LOCK_NB);
	close(fd);
	fails_with(_metadata, "flock", r, errno, HOST_ENOSYS);
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, EWOULDBLOCK))
		TH_LOG("the flock the host granted no longer excludes another open");
	EXPECT_EQ(0, flock(self->fd, LOCK_UN));
	EXPECT_EQ(0, flock_in_child(self->path, LOCK_EX | LOCK_NB, 0))
		TH_LOG("the unlock did not reach the host");
}

TEST_HARNESS_MAIN
