// SPDX-License-Identifier: GPL-2.0
/*
 * Host errors and late replies on every FUSE opcode a user reaches.
 *
 * The inject-ops plan has the DAX host fail or hold one request per test:
 * each rule names the file or directory the test works on, e.g.
 * "fail:opcode=GETATTR:errno=EIO:name=getattr.f" fails the GETATTRs of the
 * node the guest looked up as getattr.f (tests/vhost-user-fs-dax/README.md,
 * "Fault injection"), so no rule depends on how many other requests a
 * driver sends. Each test makes one system call that sends exactly one
 * request matching its rule; the plan's host check counts the hits (one per
 * rule) and checks that a failed request changed nothing on the host.
 *
 * An error test wants the call to fail with the host's errno (the host did
 * nothing, so the call must not pretend it happened); a delay test wants the
 * call to succeed, with the right result, no sooner than the host answered.
 * None uses ENOSYS: drivers remember it as "the host lacks this operation".
 *
 * The host (fuse-backend-rs) has no FUSE_COPY_FILE_RANGE (ENOSYS), so
 * copy_file_range() is not covered here; it negotiates READDIRPLUS with
 * READDIRPLUS_AUTO, so the first getdents64() of a directory sends
 * FUSE_READDIRPLUS on both drivers.
 *
 * VFS_INJECT_DELAY_MS: see inject_util.h.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>

#include "kselftest_harness.h"
#include "inject_util.h"
#include "vfs_util.h"

/* The directory inject-ops.prepare fills on the host. */
#define INJ_DIR "inject"
/* The extended attribute it sets on getxattr.f, listxattr.f and removexattr.f. */
#define INJ_XATTR "user.inject"
#define INJ_XATTR_VALUE "host"
/* read.f holds this many bytes. */
#define INJ_FILE_SIZE 4096
/* What the delay tests write (pattern seed INJ_WRITE_SEED) and truncate to. */
#define INJ_WRITE_SEED 71
#define INJ_TRUNCATE_SIZE 12345
#define INJ_FALLOCATE_SIZE 8192

FIXTURE(inject) {
	char mnt[64];
	char path[256];
	char path2[256];
};

FIXTURE_SETUP(inject)
{
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)))
		TH_LOG("mount %s -o %s: %s", vfs_tag(), vfs_mount_opts() ?: "",
		       strerror(errno));
}

/*
 * In the parent, once the test process is gone: after a crash too, and
 * never with the test's descriptors still open (the unmount would be
 * busy), which would leave the next test on the same superblock.
 */
FIXTURE_TEARDOWN_PARENT(inject)
{
	/* Forgets while mounted, for the host's accounting check. */
	vfs_drop_caches();
	usleep(300 * 1000);
	vfs_umount(self->mnt);
}

/* mnt/inject/@name in @buf. */
static char *at(char *buf, size_t len, const char *mnt, const char *name)
{
	snprintf(buf, len, "%s/" INJ_DIR "/%s", mnt, name);
	return buf;
}

#define P(name) at(self->path, sizeof(self->path), self->mnt, name)
#define P2(name) at(self->path2, sizeof(self->path2), self->mnt, name)

/* Opens mnt/inject/@name with @flags, or fails the test. */
static int open_ok(struct __test_metadata *_metadata, const char *path, int flags)
{
	int fd = open(path, flags);

	ASSERT_LE(0, fd) TH_LOG("open %s: %s", path, strerror(errno));
	return fd;
}

TEST_F(inject, lookup_error)
{
	struct stat st;
	int ret = stat(P("lookup.f"), &st);

	fails_with(_metadata, "stat", ret, errno, EIO);
}

/* The lookup brings fresh attributes; AT_STATX_FORCE_SYNC asks again. */
TEST_F(inject, getattr_error)
{
	struct statx stx;
	int ret = statx(AT_FDCWD, P("getattr.f"), AT_STATX_FORCE_SYNC, STATX_BASIC_STATS,
			&stx);

	fails_with(_metadata, "statx(AT_STATX_FORCE_SYNC)", ret, errno, EIO);
}

TEST_F(inject, setattr_error)
{
	struct stat st;
	int ret = chmod(P("setattr.f"), 0600);

	fails_with(_metadata, "chmod", ret, errno, EPERM);
	ASSERT_EQ(0, stat(P("setattr.f"), &st));
	EXPECT_EQ(0644, st.st_mode & 07777) TH_LOG("mode %o after a failed chmod", st.st_mode);
}

TEST_F(inject, readlink_error)
{
	char buf[64];
	ssize_t ret = readlink(P("readlink.l"), buf, sizeof(buf));

	fails_with(_metadata, "readlink", ret, errno, EIO);
}

TEST_F(inject, symlink_error)
{
	struct stat st;
	int ret = symlink("target", P("symlink.new"));

	fails_with(_metadata, "symlink", ret, errno, ENOSPC);
	EXPECT_EQ(-1, lstat(P("symlink.new"), &st));
}

TEST_F(inject, mknod_error)
{
	struct stat st;
	int ret = mknod(P("mknod.fifo"), S_IFIFO | 0644, 0);

	fails_with(_metadata, "mknod", ret, errno, EPERM);
	EXPECT_EQ(-1, lstat(P("mknod.fifo"), &st));
}

TEST_F(inject, mkdir_error)
{
	struct stat st;
	int ret = mkdir(P("mkdir.d"), 0755);

	fails_with(_metadata, "mkdir", ret, errno, EDQUOT);
	EXPECT_EQ(-1, lstat(P("mkdir.d"), &st));
}

TEST_F(inject, unlink_error)
{
	struct stat st;
	int ret = unlink(P("unlink.f"));

	fails_with(_metadata, "unlink", ret, errno, EACCES);
	EXPECT_EQ(0, lstat(P("unlink.f"), &st)) TH_LOG("gone after a failed unlink");
}

TEST_F(inject, rmdir_error)
{
	struct stat st;
	int ret = rmdir(P("rmdir.d"));

	fails_with(_metadata, "rmdir", ret, errno, EBUSY);
	EXPECT_EQ(0, lstat(P("rmdir.d"), &st)) TH_LOG("gone after a failed rmdir");
}

TEST_F(inject, rename_error)
{
	struct stat st;
	int ret = rename(P("rename.f"), P2("rename.g"));

	fails_with(_metadata, "rename", ret, errno, EPERM);
	EXPECT_EQ(0, lstat(P("rename.f"), &st));
	EXPECT_EQ(-1, lstat(P2("rename.g"), &st));
}

/* With a flag the drivers send FUSE_RENAME2 (plain rename: FUSE_RENAME). */
TEST_F(inject, rename2_error)
{
	struct stat st;
	int ret = renameat2(AT_FDCWD, P("rename2.f"), AT_FDCWD, P2("rename2.g"),
			    RENAME_NOREPLACE);

	fails_with(_metadata, "renameat2(RENAME_NOREPLACE)", ret, errno, EIO);
	EXPECT_EQ(0, lstat(P("rename2.f"), &st));
	EXPECT_EQ(-1, lstat(P2("rename2.g"), &st));
}

TEST_F(inject, link_error)
{
	struct stat st;
	int ret = link(P("link.f"), P2("link.new"));

	fails_with(_metadata, "link", ret, errno, EMLINK);
	EXPECT_EQ(-1, lstat(P2("link.new"), &st));
	ASSERT_EQ(0, lstat(P("link.f"), &st));
	EXPECT_EQ(1, st.st_nlink);
}

TEST_F(inject, open_error)
{
	int ret = open(P("open.f"), O_RDONLY);

	fails_with(_metadata, "open", ret, errno, EACCES);
}

TEST_F(inject, create_error)
{
	struct stat st;
	int ret = open(P("create.new"), O_WRONLY | O_CREAT | O_EXCL, 0644);

	fails_with(_metadata, "open(O_CREAT)", ret, errno, EDQUOT);
	EXPECT_EQ(-1, lstat(P("create.new"), &st));
}

/*
 * O_TMPFILE in tmpfile.d, whose TMPFILE requests the host holds: the first
 * fails with the host's error; the second this host answers ENOSYS (no
 * --tmpfile), which is EOPNOTSUPP and remembered, so the third is refused
 * at once without a request.
 */
TEST_F(inject, tmpfile_error)
{
	long long t0;
	int ret, err;

	t0 = now_ms();
	ret = open(P("tmpfile.d"), O_TMPFILE | O_RDWR, 0600);
	err = errno;
	took_the_delay(_metadata, "O_TMPFILE", t0);
	fails_with(_metadata, "O_TMPFILE", ret, err, EDQUOT);
	t0 = now_ms();
	ret = open(P("tmpfile.d"), O_TMPFILE | O_RDWR, 0600);
	err = errno;
	took_the_delay(_metadata, "O_TMPFILE after the error", t0);
	fails_with(_metadata, "O_TMPFILE after the error", ret, err, EOPNOTSUPP);
	t0 = now_ms();
	ret = open(P("tmpfile.d"), O_TMPFILE | O_RDWR, 0600);
	err = errno;
	fails_with(_metadata, "O_TMPFILE after ENOSYS", ret, err, EOPNOTSUPP);
	EXPECT_GT(delay_ms(), now_ms() - t0)
		TH_LOG("O_TMPFILE after ENOSYS went to the host again");
}

/* O_DIRECT: one READ, no readahead and no retry through the page cache. */
TEST_F(inject, read_error)
{
	void *buf;
	ssize_t ret;
	int fd, err;

	ASSERT_EQ(0, posix_memalign(&buf, 4096, INJ_FILE_SIZE));
	fd = open_ok(_metadata, P("read.f"), O_RDONLY | O_DIRECT);
	ret = pread(fd, buf, INJ_FILE_SIZE, 0);
	err = errno;
	close(fd);
	free(buf);
	fails_with(_metadata, "pread(O_DIRECT)", ret, err, EIO);
}

TEST_F(inject, write_error)
{
	unsigned char buf[4096];
	struct stat st;
	ssize_t ret;
	int fd, err;

	vfs_pattern_fill(buf, sizeof(buf), 0, INJ_WRITE_SEED);
	fd = open_ok(_metadata, P("write.f"), O_WRONLY);
	ret = write(fd, buf, sizeof(buf));
	err = errno;
	ASSERT_EQ(0, fstat(fd, &st));
	close(fd);
	fails_with(_metadata, "write", ret, err, ENOSPC);
	EXPECT_EQ(0, st.st_size) TH_LOG("size %lld after a failed write", (long long)st.st_size);
}

TEST_F(inject, statfs_error)
{
	struct statfs sf;
	int ret = statfs(P("statfs.f"), &sf);

	fails_with(_metadata, "statfs", ret, errno, EIO);
}

TEST_F(inject, fsync_error)
{
	int fd = open_ok(_metadata, P("fsync.f"), O_WRONLY);
	int ret = fsync(fd), err = errno;

	close(fd);
	fails_with(_metadata, "fsync", ret, err, EIO);
}

/* close() sends FUSE_FLUSH and returns its error. */
TEST_F(inject, flush_error)
{
	int fd = open_ok(_metadata, P("flush.f"), O_RDONLY);
	int ret = close(fd);

	fails_with(_metadata, "close", ret, errno, EDQUOT);
}

TEST_F(inject, setxattr_error)
{
	char buf[64];
	int ret = setxattr(P("setxattr.f"), INJ_XATTR, "guest", 5, 0);

	fails_with(_metadata, "setxattr", ret, errno, ENOSPC);
	EXPECT_EQ(-1, getxattr(P("setxattr.f"), INJ_XATTR, buf, sizeof(buf)))
		TH_LOG("the attribute is there after a failed setxattr");
}

TEST_F(inject, getxattr_error)
{
	char buf[64];
	ssize_t ret = getxattr(P("getxattr.f"), INJ_XATTR, buf, sizeof(buf));

	fails_with(_metadata, "getxattr", ret, errno, EIO);
}

TEST_F(inject, listxattr_error)
{
	char buf[256];
	ssize_t ret = listxattr(P("listxattr.f"), buf, sizeof(buf));

	fails_with(_metadata, "listxattr", ret, errno, EIO);
}

TEST_F(inject, removexattr_error)
{
	char buf[64];
	ssize_t n;
	int ret = removexattr(P("removexattr.f"), INJ_XATTR);

	fails_with(_metadata, "removexattr", ret, errno, EPERM);
	n = getxattr(P("removexattr.f"), INJ_XATTR, buf, sizeof(buf));
	EXPECT_EQ(strlen(INJ_XATTR_VALUE), n)
		TH_LOG("getxattr after a failed removexattr: %zd (%s)", n, strerror(errno));
}

TEST_F(inject, opendir_error)
{
	int ret = open(P("opendir.d"), O_RDONLY | O_DIRECTORY);

	fails_with(_metadata, "open(O_DIRECTORY)", ret, errno, EACCES);
}

/* The first getdents64() of a directory: FUSE_READDIRPLUS (see the top). */
TEST_F(inject, readdirplus_error)
{
	char buf[4096];
	long ret;
	int fd, err;

	fd = open_ok(_metadata, P("readdir.d"), O_RDONLY | O_DIRECTORY);
	ret = syscall(SYS_getdents64, fd, buf, sizeof(buf));
	err = errno;
	close(fd);
	fails_with(_metadata, "getdents64", ret, err, EIO);
}

TEST_F(inject, fsyncdir_error)
{
	int fd = open_ok(_metadata, P("fsyncdir.d"), O_RDONLY | O_DIRECTORY);
	int ret = fsync(fd), err = errno;

	close(fd);
	fails_with(_metadata, "fsync(directory)", ret, err, EIO);
}

TEST_F(inject, fallocate_error)
{
	struct stat st;
	int fd = open_ok(_metadata, P("fallocate.f"), O_WRONLY);
	int ret = fallocate(fd, 0, 0, INJ_FALLOCATE_SIZE), err = errno;

	ASSERT_EQ(0, fstat(fd, &st));
	close(fd);
	fails_with(_metadata, "fallocate", ret, err, ENOSPC);
	EXPECT_EQ(0, st.st_size) TH_LOG("size %lld after a failed fallocate",
					 (long long)st.st_size);
}

TEST_F(inject, lseek_error)
{
	int fd = open_ok(_metadata, P("lseek.f"), O_RDONLY);
	off_t ret = lseek(fd, 0, SEEK_DATA);
	int err = errno;

	close(fd);
	fails_with(_metadata, "lseek(SEEK_DATA)", ret, err, EIO);
}

/* Delays: the call succeeds, with the right result, once the host answers. */

TEST_F(inject, readdirplus_delayed)
{
	static const char * const want[] = { "a", "b", "c" };
	struct dirent64 *de;
	char buf[4096];
	int fd, i, found = 0;
	long long t0;
	long n, off;

	fd = open_ok(_metadata, P("readdir-delay.d"), O_RDONLY | O_DIRECTORY);
	t0 = now_ms();
	n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
	took_the_delay(_metadata, "getdents64", t0);
	close(fd);
	ASSERT_LT(0, n) TH_LOG("getdents64: %ld (%s)", n, strerror(errno));
	for (off = 0; off < n; off += de->d_reclen) {
		de = (struct dirent64 *)(buf + off);
		for (i = 0; i < 3; i++)
			if (!strcmp(de->d_name, want[i]))
				found |= 1 << i;
	}
	EXPECT_EQ(7, found) TH_LOG("a, b and c not all listed (mask %#x)", found);
}

TEST_F(inject, fallocate_delayed)
{
	struct stat st;
	long long t0;
	int fd, ret;

	fd = open_ok(_metadata, P("fallocate-delay.f"), O_WRONLY);
	t0 = now_ms();
	ret = fallocate(fd, 0, 0, INJ_FALLOCATE_SIZE);
	took_the_delay(_metadata, "fallocate", t0);
	EXPECT_EQ(0, ret) TH_LOG("fallocate: %s", strerror(errno));
	ASSERT_EQ(0, fstat(fd, &st));
	close(fd);
	EXPECT_EQ(INJ_FALLOCATE_SIZE, st.st_size);
}

/*
 * lseek-delay.f: 4 KiB of data, a hole up to 1 MiB, 4 KiB of data. The
 * host's own SEEK_DATA from 4 KiB (1 MiB where its file system keeps holes)
 * is in lseek-delay.expect.
 */
TEST_F(inject, lseek_delayed)
{
	char line[32];
	long long t0, want;
	off_t ret;
	int fd;

	ASSERT_EQ(0, vfs_read_line(P("lseek-delay.expect"), line, sizeof(line)));
	want = atoll(line);
	fd = open_ok(_metadata, P("lseek-delay.f"), O_RDONLY);
	t0 = now_ms();
	ret = lseek(fd, 4096, SEEK_DATA);
	took_the_delay(_metadata, "lseek(SEEK_DATA)", t0);
	close(fd);
	EXPECT_EQ(want, ret) TH_LOG("SEEK_DATA from 4096: %lld (%s), the host says %lld",
				    (long long)ret, strerror(errno), want);
}

TEST_F(inject, setattr_delayed)
{
	struct stat st;
	long long t0;
	int ret;

	t0 = now_ms();
	ret = truncate(P("setattr-delay.f"), INJ_TRUNCATE_SIZE);
	took_the_delay(_metadata, "truncate", t0);
	ASSERT_EQ(0, ret) TH_LOG("truncate: %s", strerror(errno));
	ASSERT_EQ(0, stat(P("setattr-delay.f"), &st));
	EXPECT_EQ(INJ_TRUNCATE_SIZE, st.st_size);
}

TEST_F(inject, write_delayed)
{
	unsigned char buf[4096], back[4096];
	long long t0;
	ssize_t ret;
	int fd;

	vfs_pattern_fill(buf, sizeof(buf), 0, INJ_WRITE_SEED);
	fd = open_ok(_metadata, P("write-delay.f"), O_RDWR);
	t0 = now_ms();
	ret = write(fd, buf, sizeof(buf));
	took_the_delay(_metadata, "write", t0);
	EXPECT_EQ(sizeof(buf), ret) TH_LOG("write: %zd (%s)", ret, strerror(errno));
	ASSERT_EQ(sizeof(back), pread(fd, back, sizeof(back), 0));
	close(fd);
	EXPECT_EQ(-1, vfs_pattern_check(back, sizeof(back), 0, INJ_WRITE_SEED));
}

TEST_F(inject, fsync_delayed)
{
	unsigned char buf[4096];
	long long t0;
	int fd, ret;

	vfs_pattern_fill(buf, sizeof(buf), 0, INJ_WRITE_SEED);
	fd = open_ok(_metadata, P("fsync-delay.f"), O_WRONLY);
	ASSERT_EQ(sizeof(buf), write(fd, buf, sizeof(buf)));
	t0 = now_ms();
	ret = fsync(fd);
	took_the_delay(_metadata, "fsync", t0);
	close(fd);
	EXPECT_EQ(0, ret) TH_LOG("fsync: %s", strerror(errno));
}

TEST_HARNESS_MAIN
