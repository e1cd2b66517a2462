// SPDX-License-Identifier: GPL-2.0
/*
 * Malformed replies from the host (the DAX host's fault injection corrupts
 * the reply header of the first GETATTR: its len or its unique id).
 *
 * The driver must fail only that request, with EIO, log it, and keep the
 * mount usable. The in-tree C driver does not validate out.h.len or unique
 * (fs/fuse/virtio_fs.c, the TODO in virtio_fs_request_complete()), so these
 * tests document that gap on C: see tests/expect/c.xfail.
 */
#include <sys/statfs.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

/* Returns 1 if the kernel log holds @needle, 0 if not, -1 on error. */
static int kmsg_has(const char *needle)
{
	char buf[8192];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	int found = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		buf[n] = 0;
		if (strstr(buf, needle))
			found = 1;
	}
	close(fd);
	return found;
}

TEST(corrupted_reply_fails_only_its_request)
{
	char mnt[64];
	struct stat st;
	struct statfs sf;
	int mounted, failed = 0;

	/*
	 * The first GETATTR carries the corrupted reply: the mount sends it
	 * (virtiofs-rs reads the root's attributes at mount) or the first
	 * stat does (the C driver).
	 */
	mounted = !vfs_mount_fresh(mnt, sizeof(mnt));
	if (!mounted) {
		EXPECT_EQ(EIO, errno) TH_LOG("mount: %s", strerror(errno));
		failed = 1;
	} else if (stat(mnt, &st)) {
		EXPECT_EQ(EIO, errno) TH_LOG("stat: %s", strerror(errno));
		failed = 1;
	}
	EXPECT_EQ(1, failed) TH_LOG("the corrupted reply was accepted");
	if (mounted)
		umount(mnt);

	/* The connection goes on: the next requests work. */
	ASSERT_EQ(0, mount(vfs_tag(), mnt, VFS_FS_TYPE, 0, vfs_mount_opts()))
		TH_LOG("mount after the bad reply: %s", strerror(errno));
	ASSERT_EQ(0, stat(mnt, &st)) TH_LOG("stat: %s", strerror(errno));
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	EXPECT_EQ(0, statfs(mnt, &sf));
	vfs_umount(mnt);
}

TEST(bad_reply_is_logged)
{
	EXPECT_EQ(1, kmsg_has("bad reply"));
}

TEST_HARNESS_MAIN
