// SPDX-License-Identifier: GPL-2.0
/*
 * virtiofs mount interface: mounting by tag, refused mounts, sysfs, statfs
 * and umount. Runs against the C driver (the oracle) and virtiofs-rs.
 */
#include <dirent.h>
#include <limits.h>
#include <sys/statfs.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

#define FUSE_SUPER_MAGIC 0x65735546

/* Returns 1 if /proc/mounts has "@src @mnt virtiofs". */
static int mounted(const char *src, const char *mnt)
{
	char line[512], want[300];
	FILE *f = fopen("/proc/mounts", "r");
	int found = 0;

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "%s %s %s ", src, mnt, VFS_FS_TYPE);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want)))
			found = 1;
	fclose(f);
	return found;
}

TEST(mount_by_tag)
{
	char mnt[64];
	struct stat st, parent;

	ASSERT_EQ(0, vfs_mount_fresh(mnt, sizeof(mnt))) TH_LOG("mount: %s", strerror(errno));
	EXPECT_EQ(1, mounted(vfs_tag(), mnt));
	ASSERT_EQ(0, stat(mnt, &st));
	ASSERT_EQ(0, stat("/tmp", &parent));
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	EXPECT_NE(parent.st_dev, st.st_dev);
	vfs_umount(mnt);
}

TEST(mount_without_source_fails_einval)
{
	ASSERT_EQ(0, mkdir("/tmp/vfs-nosrc", 0755) && errno != EEXIST);
	EXPECT_EQ(-1, mount(NULL, "/tmp/vfs-nosrc", VFS_FS_TYPE, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, mounted("none", "/tmp/vfs-nosrc"));
	rmdir("/tmp/vfs-nosrc");
}

TEST(mount_unknown_tag_fails_einval)
{
	ASSERT_EQ(0, mkdir("/tmp/vfs-badtag", 0755) && errno != EEXIST);
	EXPECT_EQ(-1, mount("no-such-tag", "/tmp/vfs-badtag", VFS_FS_TYPE, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	rmdir("/tmp/vfs-badtag");
}

TEST(mount_bad_options_fail_einval)
{
	static const char * const bad[] = { "dax=sometimes", "user_id=0", "rootmode=040000" };
	unsigned int i;

	ASSERT_EQ(0, mkdir("/tmp/vfs-badopt", 0755) && errno != EEXIST);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		errno = 0;
		EXPECT_EQ(-1, mount(vfs_tag(), "/tmp/vfs-badopt", VFS_FS_TYPE, 0, bad[i]))
			TH_LOG("option %s was accepted", bad[i]);
		EXPECT_EQ(EINVAL, errno) TH_LOG("option %s", bad[i]);
		if (!errno)
			umount("/tmp/vfs-badopt");
	}
	rmdir("/tmp/vfs-badopt");
}

TEST(sysfs_tag)
{
	char dir[256];

	EXPECT_EQ(1, vfs_find_instance(dir, sizeof(dir)))
		TH_LOG("no single /sys/fs/virtiofs/*/tag reads \"%s\\n\"", vfs_tag());
}

/*
 * /sys/fs/virtiofs/<index>/device leads to the virtio device, whose parent
 * is the transport the runner booted with (VFS_TRANSPORT=pci|mmio).
 */
TEST(device_on_expected_transport)
{
	const char *want = getenv("VFS_TRANSPORT");
	char dir[256], path[300], real[PATH_MAX];
	int on_transport;

	if (!want)
		SKIP(return, "VFS_TRANSPORT not set");
	ASSERT_EQ(1, vfs_find_instance(dir, sizeof(dir)));
	snprintf(path, sizeof(path), "/sys/fs/virtiofs/%s/device", dir);
	ASSERT_NE(NULL, realpath(path, real)) TH_LOG("%s: %s", path, strerror(errno));
	TH_LOG("device: %s", real);
	on_transport = !strcmp(want, "pci") ? !!strstr(real, "/pci") :
		       (strstr(real, "virtio-mmio") || strstr(real, "LNRO0005"));
	EXPECT_TRUE(on_transport) TH_LOG("%s is not on %s", real, want);
}

/*
 * mqs/<i>/ describes each virtqueue: 0 is "hiprio" and serves every CPU;
 * 1.. are "requests.N", and every CPU is served by exactly one of them.
 */
TEST(sysfs_mqs)
{
	char dir[256], buf[256], want[64], rel[64], all[256] = "";
	long ncpu = sysconf(_SC_NPROCESSORS_CONF), cpu;
	int nreq = 0, i, served[64] = { 0 };

	ASSERT_LE(ncpu, 64);
	ASSERT_EQ(1, vfs_find_instance(dir, sizeof(dir)));
	for (cpu = 0; cpu < ncpu; cpu++) {
		char one[16];

		snprintf(one, sizeof(one), cpu ? ", %ld" : "%ld", cpu);
		strcat(all, one);
	}
	ASSERT_EQ(0, vfs_instance_attr(dir, "mqs/0/name", buf, sizeof(buf)));
	EXPECT_STREQ("hiprio", buf);
	ASSERT_EQ(0, vfs_instance_attr(dir, "mqs/0/cpu_list", buf, sizeof(buf)));
	EXPECT_STREQ(all, buf);
	for (i = 1;; i++) {
		char *p;

		snprintf(rel, sizeof(rel), "mqs/%d/name", i);
		if (vfs_instance_attr(dir, rel, buf, sizeof(buf)))
			break;
		snprintf(want, sizeof(want), "requests.%d", i - 1);
		EXPECT_STREQ(want, buf);
		snprintf(rel, sizeof(rel), "mqs/%d/cpu_list", i);
		ASSERT_EQ(0, vfs_instance_attr(dir, rel, buf, sizeof(buf)));
		for (p = buf; *p;) {
			cpu = strtol(p, &p, 10);
			if (cpu >= 0 && cpu < 64)
				served[cpu]++;
			while (*p == ',' || *p == ' ')
				p++;
		}
		nreq++;
	}
	EXPECT_LE(1, nreq);
	for (cpu = 0; cpu < ncpu; cpu++)
		EXPECT_EQ(1, served[cpu]) TH_LOG("cpu %ld is served by %d request queues",
						 cpu, served[cpu]);
}

/*
 * With VFS_DEVICES=N the runner gave the guest N virtio-fs devices with the
 * same tag: exactly one is bound (listed in sysfs), the others are refused
 * (-EEXIST), and the tag still mounts.
 */
TEST(duplicate_tag_refused)
{
	int want = getenv("VFS_DEVICES") ? atoi(getenv("VFS_DEVICES")) : 1;
	char dir[256], mnt[64], path[300], buf[64];
	struct dirent *de;
	int fs_devices = 0;
	DIR *d;

	/* Count virtio devices of type 26 (virtio-fs), bound or not. */
	d = opendir("/sys/bus/virtio/devices");
	ASSERT_NE(NULL, d);
	while ((de = readdir(d))) {
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/device", de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		if (strtol(buf, NULL, 0) == 26)
			fs_devices++;
	}
	closedir(d);
	EXPECT_EQ(want, fs_devices);
	EXPECT_EQ(1, vfs_find_instance(dir, sizeof(dir)));
	ASSERT_EQ(0, vfs_mount_fresh(mnt, sizeof(mnt))) TH_LOG("mount: %s", strerror(errno));
	vfs_umount(mnt);
}

/*
 * dax=always needs a cache window: with none (VFS_EXPECT_WINDOW=0) the
 * mount fails with EINVAL; with one it succeeds.
 */
TEST(dax_always_needs_window)
{
	const char *w = getenv("VFS_EXPECT_WINDOW");
	int ret;

	if (!w)
		SKIP(return, "VFS_EXPECT_WINDOW not set");
	ASSERT_EQ(0, mkdir("/tmp/vfs-daxalways", 0755) && errno != EEXIST);
	ret = mount(vfs_tag(), "/tmp/vfs-daxalways", VFS_FS_TYPE, 0, "dax=always");
	if (atoi(w)) {
		EXPECT_EQ(0, ret) TH_LOG("mount -o dax=always: %s", strerror(errno));
	} else {
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EINVAL, errno);
	}
	if (!ret)
		umount("/tmp/vfs-daxalways");
	rmdir("/tmp/vfs-daxalways");
}

TEST(statfs_reports_fuse)
{
	char mnt[64];
	struct statfs sf;

	ASSERT_EQ(0, vfs_mount_fresh(mnt, sizeof(mnt)));
	ASSERT_EQ(0, statfs(mnt, &sf)) TH_LOG("statfs: %s", strerror(errno));
	EXPECT_EQ(FUSE_SUPER_MAGIC, sf.f_type);
	EXPECT_GT(sf.f_bsize, 0);
	EXPECT_GT(sf.f_blocks, 0);
	EXPECT_LE(sf.f_bfree, sf.f_blocks);
	EXPECT_LE(sf.f_bavail, sf.f_bfree);
	EXPECT_GT(sf.f_files, 0);
	EXPECT_EQ(255, sf.f_namelen);
	vfs_umount(mnt);
}

TEST(umount_detaches)
{
	char mnt[64];

	ASSERT_EQ(0, vfs_mount_fresh(mnt, sizeof(mnt)));
	ASSERT_EQ(1, mounted(vfs_tag(), mnt));
	EXPECT_EQ(0, umount(mnt)) TH_LOG("umount: %s", strerror(errno));
	EXPECT_EQ(0, mounted(vfs_tag(), mnt));
	EXPECT_EQ(-1, umount(mnt));
	EXPECT_EQ(EINVAL, errno);
	rmdir(mnt);
}

TEST_HARNESS_MAIN
