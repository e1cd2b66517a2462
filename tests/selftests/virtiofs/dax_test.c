// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-fs with a DAX cache window (the project's DAX host).
 *
 * Every data test checks content, so it means something whether DAX is on
 * or off: the plans run it with -o dax=always and -o dax=never. What only
 * holds with DAX (STATX_ATTR_DAX, injected SETUPMAPPING failures) is
 * checked against VFS_EXPECT_DAX=1|0, which the plan sets.
 *
 * Environment, beyond vfs_util.h:
 *   VFS_CACHE_SIZE  the window size the host announces, in bytes
 *   VFS_EXPECT_DAX  1 if regular files must be DAX on this mount
 *   VFS_INJECTED    1 if the host fails the first SETUPMAPPING (EIO)
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

/* Files the runner prepares for the dax plans (scripts/run-guest.sh). */
#define DAX_BIG "host/big.bin"
#define DAX_BIG_SIZE (256ull << 20)
#define DAX_BIG_SEED 3
#define DAX_INPLACE "host/inplace.bin"
#define DAX_INPLACE_SIZE (4 << 20)
#define DAX_INPLACE_SEED 4
#define DAX_MMAP "host/mmap.bin"
#define DAX_MMAP_SIZE (4 << 20)
#define DAX_LIVE "host/live.bin"
#define DAX_READ "host/read.bin"
#define DAX_READ_SIZE (3 << 20)
#define DAX_READ_SEED 6

static int env_int(const char *name)
{
	const char *v = getenv(name);

	return v ? atoi(v) : 0;
}

static unsigned long long env_ull(const char *name)
{
	const char *v = getenv(name);

	return v ? strtoull(v, NULL, 0) : 0;
}

FIXTURE(dax) {
	char mnt[64];
};

FIXTURE_SETUP(dax)
{
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)))
		TH_LOG("mount %s -o %s: %s", vfs_tag(), vfs_mount_opts() ?: "", strerror(errno));
}

FIXTURE_TEARDOWN(dax)
{
	vfs_umount(self->mnt);
}

static void in_mnt(char *out, size_t len, const char *mnt, const char *name)
{
	snprintf(out, len, "%s/%s", mnt, name);
}

static int is_dax(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &stx))
		return -1;
	return !!(stx.stx_attributes & STATX_ATTR_DAX);
}

/* The device's cache window is in /proc/iomem with the announced size. */
TEST(window_discovered)
{
	unsigned long long want = env_ull("VFS_CACHE_SIZE"), start, end;
	char line[256], name[128];
	int found = 0;
	FILE *f;

	ASSERT_NE(0, want) TH_LOG("VFS_CACHE_SIZE not set");
	f = fopen("/proc/iomem", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %llx-%llx : %127[^\n]", &start, &end, name) != 3)
			continue;
		/* The driver requests the window under the virtio device's name. */
		if (!strncmp(name, "virtio", 6) && end - start + 1 == want)
			found++;
	}
	fclose(f);
	EXPECT_EQ(1, found) TH_LOG("no virtio region of %llu bytes in /proc/iomem", want);
}

TEST_F(dax, statx_dax_attribute)
{
	char path[300];

	in_mnt(path, sizeof(path), self->mnt, DAX_INPLACE);
	EXPECT_EQ(env_int("VFS_EXPECT_DAX"), is_dax(path));
}

/*
 * The DAX host can only map whole pages of a file (QEMU refuses mappings
 * past EOF), so the DAX data files are page multiples; see
 * tests/vhost-user-fs-dax/README.md.
 */
TEST_F(dax, read_matches_host)
{
	char path[300];
	unsigned char *buf = NULL;
	ssize_t n;

	in_mnt(path, sizeof(path), self->mnt, DAX_READ);
	n = vfs_read_file(path, &buf);
	ASSERT_EQ(DAX_READ_SIZE, n);
	EXPECT_EQ(-1, vfs_pattern_check(buf, n, 0, DAX_READ_SEED));
	free(buf);
}

/* The runner checks on the host that exactly this 4 KiB changed. */
TEST_F(dax, write_in_place)
{
	unsigned char buf[4096], back[4096];
	char path[300];
	int fd;

	in_mnt(path, sizeof(path), self->mnt, DAX_INPLACE);
	fd = open(path, O_RDWR);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", path, strerror(errno));
	vfs_pattern_fill(buf, sizeof(buf), 0, 21);
	ASSERT_EQ(sizeof(buf), pwrite(fd, buf, sizeof(buf), 1 << 20));
	ASSERT_EQ(sizeof(back), pread(fd, back, sizeof(back), 1 << 20));
	EXPECT_EQ(0, memcmp(buf, back, sizeof(buf)));
	EXPECT_EQ(0, fsync(fd));
	close(fd);
}

/*
 * Ask the runner's host agent to rewrite a file on the host while we are
 * mounted, then read the new content without remounting.
 */
TEST_F(dax, host_write_visible)
{
	char path[300], req[300], done[300];
	unsigned char *buf = NULL;
	struct stat st;
	ssize_t n;
	int fd, i;

	in_mnt(path, sizeof(path), self->mnt, DAX_LIVE);
	n = vfs_read_file(path, &buf);
	ASSERT_EQ(65536, n);
	EXPECT_EQ(-1, vfs_pattern_check(buf, n, 0, 30));
	free(buf);

	in_mnt(req, sizeof(req), self->mnt, "agent/rewrite-live");
	in_mnt(done, sizeof(done), self->mnt, "agent/rewrite-live.done");
	fd = open(req, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", req, strerror(errno));
	close(fd);
	for (i = 0; i < 600 && stat(done, &st); i++)
		usleep(100 * 1000);
	ASSERT_EQ(0, stat(done, &st)) TH_LOG("the host agent never answered");

	n = vfs_read_file(path, &buf);
	ASSERT_EQ(65536, n);
	EXPECT_EQ(-1, vfs_pattern_check(buf, n, 0, 31)) TH_LOG("still the old content");
	free(buf);
}

TEST_F(dax, mmap_shared_write_msync)
{
	char path[300];
	unsigned char *p;
	int fd;

	in_mnt(path, sizeof(path), self->mnt, DAX_MMAP);
	fd = open(path, O_RDWR);
	ASSERT_LE(0, fd);
	p = mmap(NULL, DAX_MMAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	/* One page in the first 2 MiB chunk and one in the second. */
	vfs_pattern_fill(p + 8192, 4096, 0, 22);
	vfs_pattern_fill(p + (3 << 20), 4096, 0, 23);
	EXPECT_EQ(0, msync(p, DAX_MMAP_SIZE, MS_SYNC)) TH_LOG("msync: %s", strerror(errno));
	EXPECT_EQ(-1, vfs_pattern_check(p + 8192, 4096, 0, 22));
	munmap(p, DAX_MMAP_SIZE);
	close(fd);
}

/* Reading a file four times the window's size cycles the whole window. */
TEST_F_TIMEOUT(dax, file_larger_than_window, 600)
{
	static unsigned char buf[1 << 20];
	unsigned long long off;
	char path[300];
	int fd;

	ASSERT_LT(env_ull("VFS_CACHE_SIZE"), DAX_BIG_SIZE);
	in_mnt(path, sizeof(path), self->mnt, DAX_BIG);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	for (off = 0; off < DAX_BIG_SIZE; off += sizeof(buf)) {
		ASSERT_EQ(sizeof(buf), pread(fd, buf, sizeof(buf), off));
		ASSERT_EQ(-1, vfs_pattern_check(buf, sizeof(buf), off, DAX_BIG_SEED))
			TH_LOG("mismatch in the MiB at %llu", off);
	}
	/* And back again, so early chunks must be mapped anew. */
	ASSERT_EQ(sizeof(buf), pread(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(-1, vfs_pattern_check(buf, sizeof(buf), 0, DAX_BIG_SEED));
	close(fd);
}

static sigjmp_buf sigbus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(sigbus_jmp, 1);
}

TEST_F(dax, truncate_mapped_file)
{
	char path[300];
	/* volatile: both live across sigsetjmp()/siglongjmp(). */
	volatile unsigned char *p;
	volatile int faulted = 0;
	unsigned char c;
	struct stat st;
	int fd;

	in_mnt(path, sizeof(path), self->mnt, "host/trunc.bin");
	ASSERT_EQ(0, vfs_write_pattern(path, 4 << 20, 24));
	fd = open(path, O_RDWR);
	ASSERT_LE(0, fd);
	p = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(vfs_pattern_byte(3 << 20, 24), p[3 << 20]);

	ASSERT_EQ(0, ftruncate(fd, 1 << 20)) TH_LOG("ftruncate: %s", strerror(errno));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(1 << 20, st.st_size);
	EXPECT_EQ(vfs_pattern_byte(4095, 24), p[4095]);

	signal(SIGBUS, on_sigbus);
	if (!sigsetjmp(sigbus_jmp, 1))
		c = p[3 << 20];
	else
		faulted = 1;
	signal(SIGBUS, SIG_DFL);
	(void)c;
	EXPECT_EQ(1, faulted) TH_LOG("no SIGBUS beyond the new EOF");

	ASSERT_EQ(0, ftruncate(fd, 2 << 20));
	EXPECT_EQ(0, p[(1 << 20) + 100]);
	munmap((void *)p, 4 << 20);
	close(fd);
}

/*
 * With VFS_INJECTED=1 the host fails the first SETUPMAPPING with EIO: the
 * first read must fail with EIO (on a DAX mount) and the mount stay usable.
 */
TEST_F(dax, injected_setupmapping_failure)
{
	unsigned char buf[4096];
	char path[300];
	ssize_t n;
	int fd;

	if (!env_int("VFS_INJECTED"))
		SKIP(return, "the host injects no failure in this plan");
	in_mnt(path, sizeof(path), self->mnt, DAX_READ);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	n = pread(fd, buf, sizeof(buf), 0);
	if (env_int("VFS_EXPECT_DAX")) {
		EXPECT_EQ(-1, n);
		EXPECT_EQ(EIO, errno);
	} else {
		EXPECT_EQ(sizeof(buf), n);
	}
	n = pread(fd, buf, sizeof(buf), 0);
	ASSERT_EQ(sizeof(buf), n) TH_LOG("second read: %s", strerror(errno));
	EXPECT_EQ(-1, vfs_pattern_check(buf, sizeof(buf), 0, DAX_READ_SEED));
	close(fd);
}

TEST_HARNESS_MAIN
