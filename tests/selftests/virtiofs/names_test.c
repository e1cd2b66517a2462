// SPDX-License-Identifier: GPL-2.0
/*
 * Names at and beyond NAME_MAX (255 bytes). The names plan's .prepare
 * makes host/names/ with a file named 255 'a's (holding "255\n") and one
 * named 254 'b's, and an empty host/created/.
 *
 * A 255-byte name must work everywhere (lookup, create, readdir); a longer
 * one fails with ENAMETOOLONG: the host's file system refuses 256..1024
 * bytes (FUSE_NAME_MAX is 1024, so the C driver sends those), the C driver
 * refuses longer ones itself. A driver that sizes its request buffers for
 * short names fails the long lookups with another error (virtiofs-rs gave
 * EINVAL above ~470 bytes) or truncates them.
 */
#include <dirent.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

/* @len bytes of @c, NUL-terminated, in @buf (which holds at least len + 1). */
static char *name_of(char *buf, char c, size_t len)
{
	memset(buf, c, len);
	buf[len] = 0;
	return buf;
}

FIXTURE(names) {
	char mnt[64];
	char path[1200];
	char name[1100];
};

FIXTURE_SETUP(names)
{
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)))
		TH_LOG("mount %s: %s", vfs_tag(), strerror(errno));
}

/*
 * In the parent: the 6.12 harness skips FIXTURE_TEARDOWN() when an ASSERT
 * fails in the test (the test process aborts), which would leave the tag
 * mounted and the next test on the same superblock.
 */
FIXTURE_TEARDOWN_PARENT(names)
{
	/* Forgets while mounted, for the host's accounting check. */
	vfs_drop_caches();
	usleep(300 * 1000);
	vfs_umount(self->mnt);
}

/* Sets self->path to mnt/@dir/@len x @c. */
#define PATH_OF(dir, c, len) \
	snprintf(self->path, sizeof(self->path), "%s/%s/%s", self->mnt, dir, \
		 name_of(self->name, c, len))

TEST_F(names, lookup_255_byte_name)
{
	struct stat st;

	PATH_OF("host/names", 'a', 255);
	ASSERT_EQ(0, stat(self->path, &st)) TH_LOG("stat: %s", strerror(errno));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(4, st.st_size);
}

TEST_F(names, lookup_256_byte_name_enametoolong)
{
	struct stat st;

	PATH_OF("host/names", 'a', 256);
	EXPECT_EQ(-1, stat(self->path, &st));
	EXPECT_EQ(ENAMETOOLONG, errno) TH_LOG("stat: %s", strerror(errno));
}

/* Longer than a small fixed request buffer, shorter than FUSE_NAME_MAX. */
TEST_F(names, lookup_600_byte_name_enametoolong)
{
	struct stat st;

	PATH_OF("host/names", 'a', 600);
	EXPECT_EQ(-1, stat(self->path, &st));
	EXPECT_EQ(ENAMETOOLONG, errno) TH_LOG("stat: %s", strerror(errno));
}

/* Longer than FUSE_NAME_MAX (1024): refused in the guest. */
TEST_F(names, lookup_1025_byte_name_enametoolong)
{
	struct stat st;

	PATH_OF("host/names", 'a', 1025);
	EXPECT_EQ(-1, stat(self->path, &st));
	EXPECT_EQ(ENAMETOOLONG, errno) TH_LOG("stat: %s", strerror(errno));
}

TEST_F(names, create_255_byte_name)
{
	struct stat st;
	int fd;

	PATH_OF("host/created", 'c', 255);
	fd = open(self->path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ASSERT_LE(0, fd) TH_LOG("open(O_CREAT): %s", strerror(errno));
	EXPECT_EQ(4, write(fd, "255\n", 4));
	EXPECT_EQ(0, close(fd));
	ASSERT_EQ(0, stat(self->path, &st)) TH_LOG("stat: %s", strerror(errno));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(4, st.st_size);
}

TEST_F(names, create_256_byte_name_enametoolong)
{
	int fd;

	PATH_OF("host/created", 'c', 256);
	fd = open(self->path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	EXPECT_EQ(-1, fd);
	EXPECT_EQ(ENAMETOOLONG, errno) TH_LOG("open(O_CREAT): %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * Nothing in host/names/ was looked up by this mount first, so a driver
 * that lists only cached dentries finds neither name.
 */
TEST_F(names, readdir_lists_255_byte_name_once)
{
	char a255[256], b254[255], dir[300];
	int na = 0, nb = 0, n = 0;
	struct dirent *de;
	DIR *d;

	name_of(a255, 'a', 255);
	name_of(b254, 'b', 254);
	snprintf(dir, sizeof(dir), "%s/host/names", self->mnt);
	d = opendir(dir);
	ASSERT_NE(NULL, d) TH_LOG("opendir: %s", strerror(errno));
	while ((errno = 0, de = readdir(d))) {
		n++;
		na += !strcmp(de->d_name, a255);
		nb += !strcmp(de->d_name, b254);
	}
	EXPECT_EQ(0, errno) TH_LOG("readdir: %s", strerror(errno));
	closedir(d);
	TH_LOG("%d entries", n);
	EXPECT_EQ(1, na);
	EXPECT_EQ(1, nb);
}

/*
 * A listing followed by a stat of every name (as "ls -l"): with
 * READDIRPLUS the listing brings each entry's attributes and seeds the
 * dcache, so the stats need no LOOKUP (the host check counts them).
 */
TEST_F(names, listing_then_stat)
{
	char dir[300], path[400];
	struct dirent *de;
	struct stat st;
	char names[64][8];
	int n = 0, i;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/host/listed", self->mnt);
	d = opendir(dir);
	ASSERT_NE(NULL, d) TH_LOG("opendir: %s", strerror(errno));
	while ((errno = 0, de = readdir(d)) && n < 64) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(names[n++], sizeof(names[0]), "%s", de->d_name);
	}
	EXPECT_EQ(0, errno) TH_LOG("readdir: %s", strerror(errno));
	closedir(d);
	ASSERT_EQ(24, n);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		ASSERT_EQ(0, stat(path, &st)) TH_LOG("stat %s: %s", path, strerror(errno));
		EXPECT_EQ(3, st.st_size);
	}
}

TEST_HARNESS_MAIN
