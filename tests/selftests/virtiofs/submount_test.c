// SPDX-License-Identifier: GPL-2.0
/*
 * Submounts: a host file system mounted inside the shared directory. The
 * submounts plan mounts a 16 MiB tmpfs at sub/ for virtiofsd only (plan
 * line "host-mount sub") and runs virtiofsd --announce-submounts, which
 * marks sub/ with FUSE_ATTR_SUBMOUNT for a guest that offered
 * FUSE_SUBMOUNTS.
 *
 * The C driver offers it and mounts sub/ as a submount when it is entered
 * (an automount sharing the connection, fs/fuse/dir.c
 * fuse_dentry_automount()): a superblock of its own, so its own st_dev, a
 * line of its own in mountinfo, and taken along by the parent's umount.
 * Whatever the driver does, the files on the host's submount must work
 * and statfs() there must be the tmpfs's.
 */
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

#define SUB_BYTES (16 << 20)

FIXTURE(submount) {
	char mnt[64];
	char sub[128];
};

FIXTURE_SETUP(submount)
{
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)))
		TH_LOG("mount %s: %s", vfs_tag(), strerror(errno));
	snprintf(self->sub, sizeof(self->sub), "%s/sub", self->mnt);
}

FIXTURE_TEARDOWN_PARENT(submount)
{
	vfs_umount(self->mnt);
}

/* Whether a line of /proc/self/mountinfo has @dir as its mount point. */
static bool mounted_at(const char *dir)
{
	char line[1024], point[512];
	bool found = false;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %*s %*s %511s", point) == 1 &&
			!strcmp(point, dir);
	fclose(f);
	return found;
}

/* statfs() in sub/ is the host's tmpfs, outside it is not: the setup works. */
TEST_F(submount, statfs_is_the_host_submount)
{
	struct statfs in, out;

	ASSERT_EQ(0, statfs(self->sub, &in)) TH_LOG("statfs %s: %s", self->sub, strerror(errno));
	ASSERT_EQ(0, statfs(self->mnt, &out));
	EXPECT_EQ(SUB_BYTES, (long long)in.f_blocks * in.f_bsize)
		TH_LOG("%llu blocks of %ld bytes", (unsigned long long)in.f_blocks,
		       (long)in.f_bsize);
	EXPECT_NE(SUB_BYTES, (long long)out.f_blocks * out.f_bsize);
}

/* A file made on the submount is written, listed and read back. */
TEST_F(submount, files_on_the_submount)
{
	char path[192], buf[16] = "";
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/f", self->sub);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd) TH_LOG("create %s: %s", path, strerror(errno));
	ASSERT_EQ(6, write(fd, "hello\n", 6));
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(6, st.st_size);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(6, read(fd, buf, sizeof(buf)));
	EXPECT_STREQ("hello\n", buf);
	close(fd);
	EXPECT_EQ(0, unlink(path));
}

/*
 * As C: the submount is a file system of its own in the guest, with its
 * own device number (so (st_dev, st_ino) stays unique across the host's
 * file systems), shown in mountinfo once entered.
 */
TEST_F(submount, own_device_and_mount)
{
	struct stat root, sub, in;
	char path[192];

	ASSERT_EQ(0, stat(self->mnt, &root));
	ASSERT_EQ(0, stat(self->sub, &sub));
	snprintf(path, sizeof(path), "%s/.", self->sub);
	ASSERT_EQ(0, stat(path, &in));
	EXPECT_NE(root.st_dev, in.st_dev) TH_LOG("sub/ has the device of the mount (%u:%u)",
						  major(root.st_dev), minor(root.st_dev));
	EXPECT_TRUE(mounted_at(self->sub)) TH_LOG("no mount at %s in mountinfo", self->sub);
}

/* As C: the parent's umount takes an entered submount along. */
TEST_F(submount, parent_umount_takes_it)
{
	struct stat st;
	char path[192];

	snprintf(path, sizeof(path), "%s/.", self->sub);
	ASSERT_EQ(0, stat(path, &st));
	ASSERT_EQ(0, umount2(self->mnt, 0)) TH_LOG("umount %s: %s", self->mnt, strerror(errno));
	EXPECT_FALSE(mounted_at(self->sub));
	ASSERT_EQ(0, mount(vfs_tag(), self->mnt, VFS_FS_TYPE, 0, vfs_mount_opts()));
}

TEST_HARNESS_MAIN
