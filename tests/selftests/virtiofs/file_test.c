// SPDX-License-Identifier: GPL-2.0
/*
 * virtiofs file and directory operations. Each test mounts the tag on a
 * fresh mount point (so every test also exercises mount and umount) and
 * works in its own directory under guest/. Files named in vfs_util.h are
 * left behind on purpose: the runner checks them on the host afterwards.
 */
#include <dirent.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

FIXTURE(vfs) {
	char mnt[64];
	char dir[256];
};

FIXTURE_SETUP(vfs)
{
	char guest[128];

	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)))
		TH_LOG("mount %s: %s", vfs_tag(), strerror(errno));
	snprintf(guest, sizeof(guest), "%s/guest", self->mnt);
	ASSERT_EQ(0, mkdir(guest, 0755) && errno != EEXIST);
	snprintf(self->dir, sizeof(self->dir), "%s/%s", guest, _metadata->name);
	ASSERT_EQ(0, mkdir(self->dir, 0755) && errno != EEXIST)
		TH_LOG("mkdir %s: %s", self->dir, strerror(errno));
}

FIXTURE_TEARDOWN(vfs)
{
	vfs_umount(self->mnt);
}

static void path_in(char *out, size_t len, const char *dir, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

TEST_F(vfs, create_write_read)
{
	char path[300];
	unsigned char *buf = NULL;
	struct stat st;
	ssize_t n;

	path_in(path, sizeof(path), self->mnt, VFS_GUEST_WRITTEN);
	ASSERT_EQ(0, vfs_write_pattern(path, VFS_GUEST_WRITTEN_SIZE, VFS_GUEST_WRITTEN_SEED));
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(VFS_GUEST_WRITTEN_SIZE, st.st_size);
	EXPECT_TRUE(S_ISREG(st.st_mode));
	n = vfs_read_file(path, &buf);
	ASSERT_EQ(VFS_GUEST_WRITTEN_SIZE, n);
	EXPECT_EQ(-1, vfs_pattern_check(buf, n, 0, VFS_GUEST_WRITTEN_SEED));
	free(buf);
}

TEST_F(vfs, host_files_visible)
{
	char path[300];
	unsigned char *buf = NULL;
	int seen = 0;
	struct dirent *de;
	DIR *d;
	ssize_t n;

	path_in(path, sizeof(path), self->mnt, "host");
	d = opendir(path);
	ASSERT_NE(NULL, d) TH_LOG("opendir %s: %s", path, strerror(errno));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, "hello.txt"))
			seen |= 1;
		else if (!strcmp(de->d_name, "data.bin"))
			seen |= 2;
		else if (!strcmp(de->d_name, "subdir") && de->d_type == DT_DIR)
			seen |= 4;
	}
	closedir(d);
	EXPECT_EQ(7, seen);

	path_in(path, sizeof(path), self->mnt, VFS_HOST_HELLO);
	n = vfs_read_file(path, &buf);
	ASSERT_EQ((ssize_t)strlen(VFS_HOST_HELLO_TEXT), n);
	EXPECT_EQ(0, memcmp(buf, VFS_HOST_HELLO_TEXT, n));
	free(buf);

	path_in(path, sizeof(path), self->mnt, VFS_HOST_DATA);
	n = vfs_read_file(path, &buf);
	ASSERT_EQ(VFS_HOST_DATA_SIZE, n);
	EXPECT_EQ(-1, vfs_pattern_check(buf, n, 0, VFS_HOST_DATA_SEED));
	free(buf);
}

TEST_F(vfs, rename)
{
	char a[300], b[300], sub[300], c[300];
	struct stat st;

	path_in(a, sizeof(a), self->dir, "a");
	path_in(b, sizeof(b), self->dir, "b");
	path_in(sub, sizeof(sub), self->dir, "sub");
	path_in(c, sizeof(c), sub, "c");
	ASSERT_EQ(0, vfs_write_pattern(a, 5000, 7));
	ASSERT_EQ(0, rename(a, b)) TH_LOG("rename: %s", strerror(errno));
	EXPECT_EQ(-1, stat(a, &st));
	EXPECT_EQ(ENOENT, errno);
	ASSERT_EQ(0, stat(b, &st));
	EXPECT_EQ(5000, st.st_size);
	ASSERT_EQ(0, mkdir(sub, 0755));
	ASSERT_EQ(0, rename(b, c));
	ASSERT_EQ(0, stat(c, &st));
	EXPECT_EQ(5000, st.st_size);
	EXPECT_EQ(-1, stat(b, &st));
}

TEST_F(vfs, unlink)
{
	char path[300];
	struct stat st;
	struct dirent *de;
	DIR *d;
	int fd;

	/* The survivor tells the host check that this test ran. */
	path_in(path, sizeof(path), self->dir, "survivor");
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ASSERT_LE(0, fd);
	close(fd);
	path_in(path, sizeof(path), self->dir, "victim");
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, unlink(path)) TH_LOG("unlink: %s", strerror(errno));
	EXPECT_EQ(-1, stat(path, &st));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, unlink(path));
	EXPECT_EQ(ENOENT, errno);
	d = opendir(self->dir);
	ASSERT_NE(NULL, d);
	while ((de = readdir(d)))
		EXPECT_NE(0, strcmp(de->d_name, "victim"));
	closedir(d);
}

TEST_F(vfs, mkdir_rmdir)
{
	char dir[300], child[300], kept[300];
	struct stat st;

	/* The kept directory tells the host check that this test ran. */
	path_in(kept, sizeof(kept), self->dir, "kept");
	ASSERT_EQ(0, mkdir(kept, 0755) && errno != EEXIST);
	path_in(dir, sizeof(dir), self->dir, "d");
	path_in(child, sizeof(child), dir, "child");
	ASSERT_EQ(0, mkdir(dir, 0750)) TH_LOG("mkdir: %s", strerror(errno));
	ASSERT_EQ(0, stat(dir, &st));
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	EXPECT_EQ(0750, st.st_mode & 0777);
	EXPECT_EQ(-1, mkdir(dir, 0755));
	EXPECT_EQ(EEXIST, errno);
	ASSERT_EQ(0, mkdir(child, 0755));
	EXPECT_EQ(-1, rmdir(dir));
	EXPECT_EQ(ENOTEMPTY, errno);
	ASSERT_EQ(0, rmdir(child));
	ASSERT_EQ(0, rmdir(dir)) TH_LOG("rmdir: %s", strerror(errno));
	EXPECT_EQ(-1, stat(dir, &st));
	EXPECT_EQ(ENOENT, errno);
}

TEST_F(vfs, truncate)
{
	char path[300];
	unsigned char *buf = NULL;
	struct stat st;
	ssize_t n;
	int fd;

	path_in(path, sizeof(path), self->dir, "t");
	ASSERT_EQ(0, vfs_write_pattern(path, 1 << 20, 9));
	fd = open(path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 4097)) TH_LOG("ftruncate: %s", strerror(errno));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(4097, st.st_size);
	ASSERT_EQ(0, ftruncate(fd, 8192));
	close(fd);

	n = vfs_read_file(path, &buf);
	ASSERT_EQ(8192, n);
	EXPECT_EQ(-1, vfs_pattern_check(buf, 4097, 0, 9));
	for (n = 4097; n < 8192; n++)
		if (buf[n])
			break;
	EXPECT_EQ(8192, n) TH_LOG("byte %zd past the old EOF is not zero", n);
	free(buf);

	ASSERT_EQ(0, truncate(path, 0));
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(0, st.st_size);
}

TEST_F(vfs, mmap_read)
{
	char path[300];
	unsigned char *p;
	int fd;

	path_in(path, sizeof(path), self->mnt, VFS_HOST_DATA);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	p = mmap(NULL, VFS_HOST_DATA_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	EXPECT_EQ(-1, vfs_pattern_check(p, VFS_HOST_DATA_SIZE, 0, VFS_HOST_DATA_SEED));
	munmap(p, VFS_HOST_DATA_SIZE);
	close(fd);
}

TEST_F(vfs, fsync)
{
	char path[300];
	unsigned char buf[4096];
	int fd, dfd;

	path_in(path, sizeof(path), self->dir, "synced");
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	vfs_pattern_fill(buf, sizeof(buf), 0, 11);
	ASSERT_EQ(sizeof(buf), write(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, fsync(fd)) TH_LOG("fsync: %s", strerror(errno));
	ASSERT_EQ(sizeof(buf), pwrite(fd, buf, sizeof(buf), 4096));
	EXPECT_EQ(0, fdatasync(fd)) TH_LOG("fdatasync: %s", strerror(errno));
	close(fd);
	dfd = open(self->dir, O_RDONLY | O_DIRECTORY);
	ASSERT_LE(0, dfd);
	EXPECT_EQ(0, fsync(dfd)) TH_LOG("fsync(dir): %s", strerror(errno));
	close(dfd);
}

TEST_HARNESS_MAIN
