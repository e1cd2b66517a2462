// SPDX-License-Identifier: GPL-2.0
/*
 * Lookups and forgets: looking names up makes the server count lookups of
 * their nodes; when the inodes are evicted the driver must give the counts
 * back with FUSE_FORGET (on the hiprio queue). The runner's host check
 * (tests/guest/plans/forget.hostcheck) counts the forgets the host got.
 */
#include "kselftest_harness.h"
#include "vfs_util.h"

static const char * const names[] = {
	VFS_HOST_HELLO, VFS_HOST_DATA, "host/subdir",
};

TEST(lookups_then_evict_sends_forgets)
{
	char mnt[64], path[300];
	struct stat st;
	unsigned int i;
	int fd;

	ASSERT_EQ(0, vfs_mount_fresh(mnt, sizeof(mnt))) TH_LOG("mount: %s", strerror(errno));
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", mnt, names[i]);
		ASSERT_EQ(0, stat(path, &st)) TH_LOG("stat %s: %s", path, strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/host/subdir", mnt);
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	snprintf(path, sizeof(path), "%s/host/no-such-file", mnt);
	EXPECT_EQ(-1, stat(path, &st));
	EXPECT_EQ(ENOENT, errno);

	/* Evict unused dentries and inodes: the forgets go out now. */
	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, write(fd, "2", 1));
	close(fd);
	usleep(500 * 1000);
	vfs_umount(mnt);
}

TEST_HARNESS_MAIN
