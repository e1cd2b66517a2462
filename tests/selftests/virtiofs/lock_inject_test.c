// SPDX-License-Identifier: GPL-2.0
/*
 * Host errors and late replies on the FUSE lock opcodes (FUSE_GETLK,
 * FUSE_SETLK, FUSE_SETLKW), as inject_test does for the others.
 *
 * The locks-inject plan runs the DAX host with remote locks (--locks) and
 * one injection rule per test, naming the file the test locks: e.g.
 * "fail:opcode=SETLK:errno=ENOLCK:name=setlk.f:nth=1" fails the first
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
 * Environment, beyond vfs_util.h:
 *   VFS_INJECT_DELAY_MS  what the plan's delay rules hold a reply (1500)
 */
#define _GNU_SOURCE
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

/* The directory the tests lock their files in. */
#define INJ_DIR "lockinject"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static long long delay_ms(void)
{
	const char *v = getenv("VFS_INJECT_DELAY_MS");

	return v && *v ? atoll(v) : 1500;
}

FIXTURE(lockinj) {
	char mnt[64];
	char path[256];
	int fd;
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
	self->fd = open_file(self->path, sizeof(self->path), self->mnt, name);	\
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", self->path, strerror(errno)); \
} while (0)

static int setlk(int fd, int cmd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };

	return fcntl(fd, cmd, &fl);
}

/*
 * In a child: a non-blocking lock of @path's bytes 0..99 (@use_flock: an
 * exclusive flock() instead); its errno, 0 for taken, or -1 if the child
 * itself failed.
 */
static int try_in_child(const char *path, bool use_flock)
{
	pid_t pid = fork();
	int fd, status;

	if (!pid) {
		fd = open(path, O_RDWR);
		if (fd < 0)
			_exit(child_fail(__LINE__, "open"));
		if (use_flock)
			_exit(flock(fd, LOCK_EX | LOCK_NB) ? errno : 0);
		_exit(setlk(fd, F_SETLK, F_WRLCK) ? errno : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* @call returned @ret with errno @err: it must have failed with @want. */
static void fails_with(struct __test_metadata *_metadata, const char *call, long ret,
		       int err, int want)
{
	ASSERT_EQ(-1, ret)
		TH_LOG("%s returned %ld: the host's %s did not reach it", call, ret,
		       strerror(want));
	ASSERT_EQ(want, err)
		TH_LOG("%s failed with %s, the host answered %s", call, strerror(err),
		       strerror(want));
}

/* @call started at @t0 (now_ms()) and has returned: not before the host did. */
static void took_the_delay(struct __test_metadata *_metadata, const char *call, long long t0)
{
	long long took = now_ms() - t0, want = delay_ms();

	TH_LOG("%s took %lld ms (the host held its reply %lld ms)", call, took, want);
	EXPECT_GE(took, want)
		TH_LOG("%s returned before the host answered", call);
}

/* A failed F_GETLK reports no lock: the caller's struct is left as it was. */
TEST_F(lockinj, getlk_error)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 100 };
	int r;

	OPEN("getlk.f");
	r = fcntl(self->fd, F_GETLK, &fl);
	fails_with(_metadata, "F_GETLK", r, errno, EIO);
	EXPECT_EQ(F_WRLCK, fl.l_type);
}

/* A refused F_SETLK holds nothing: another process takes the range. */
TEST_F(lockinj, setlk_error)
{
	int r;

	OPEN("setlk.f");
	r = setlk(self->fd, F_SETLK, F_WRLCK);
	fails_with(_metadata, "F_SETLK", r, errno, ENOLCK);
	EXPECT_EQ(0, try_in_child(self->path, false))
		TH_LOG("the refused lock is held");
}

TEST_F(lockinj, setlkw_error)
{
	int r;

	OPEN("setlkw.f");
	r = setlk(self->fd, F_SETLKW, F_WRLCK);
	fails_with(_metadata, "F_SETLKW", r, errno, EDEADLK);
	EXPECT_EQ(0, try_in_child(self->path, false))
		TH_LOG("the refused lock is held");
}

/* flock() is sent as FUSE_SETLK (LOCK_NB) with FUSE_LK_FLOCK. */
TEST_F(lockinj, flock_error)
{
	int r;

	OPEN("flock.f");
	r = flock(self->fd, LOCK_EX | LOCK_NB);
	fails_with(_metadata, "flock", r, errno, EIO);
	EXPECT_EQ(0, try_in_child(self->path, true))
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
	ASSERT_EQ(0, setlk(self->fd, F_SETLKW, F_WRLCK)) TH_LOG("F_SETLKW: %s", strerror(errno));
	took_the_delay(_metadata, "F_SETLKW", t0);
	EXPECT_EQ(EAGAIN, try_in_child(self->path, false))
		TH_LOG("the granted lock is not held");
}

TEST_F(lockinj, flock_delay)
{
	long long t0;

	OPEN("flock-delay.f");
	t0 = now_ms();
	ASSERT_EQ(0, flock(self->fd, LOCK_EX | LOCK_NB)) TH_LOG("flock: %s", strerror(errno));
	took_the_delay(_metadata, "flock", t0);
	EXPECT_EQ(EWOULDBLOCK, try_in_child(self->path, true))
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
	r = setlk(self->fd, F_SETLK, F_WRLCK);
	EXPECT_EQ(0, r) TH_LOG("F_SETLK on a host without locks: %s", strerror(errno));
	if (r)
		return;
	EXPECT_EQ(EAGAIN, try_in_child(self->path, false))
		TH_LOG("the local lock does not exclude another process");
	EXPECT_EQ(0, setlk(self->fd, F_SETLK, F_UNLCK));
	EXPECT_EQ(0, try_in_child(self->path, false))
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
	ASSERT_EQ(0, setlk(self->fd, F_SETLK, F_WRLCK)) TH_LOG("F_SETLK: %s", strerror(errno));
	EXPECT_EQ(EAGAIN, try_in_child(self->path, false))
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
	EXPECT_EQ(EWOULDBLOCK, try_in_child(self->path, true))
		TH_LOG("the local flock does not exclude another open");
	EXPECT_EQ(0, flock(self->fd, LOCK_UN));
	EXPECT_EQ(0, try_in_child(self->path, true))
		TH_LOG("the local flock outlived its unlock");
}

TEST_HARNESS_MAIN
