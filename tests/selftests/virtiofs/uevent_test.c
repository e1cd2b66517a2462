// SPDX-License-Identifier: GPL-2.0
/*
 * Binding a virtio-fs device announces it: a KOBJ_ADD uevent for
 * /sys/fs/virtiofs/<index> carrying TAG=<tag>. The test reloads the driver
 * (VFSRS_UNLOAD / VFSRS_LOAD from the guest init) while listening on the
 * kernel's uevent netlink socket.
 */
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

/* Returns 1 if the NUL-separated uevent @msg of @len has @var. */
static int has_var(const char *msg, size_t len, const char *var)
{
	size_t off = 0;

	while (off < len) {
		if (!strcmp(msg + off, var))
			return 1;
		off += strlen(msg + off) + 1;
	}
	return 0;
}

/* Unmounts every virtiofs mount, so the driver can be unloaded. */
static void umount_all(void)
{
	char line[512], dev[256], mnt[256], type[64];
	int again = 1;

	while (again) {
		FILE *f = fopen("/proc/mounts", "r");

		again = 0;
		if (!f)
			return;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%255s %255s %63s", dev, mnt, type) == 3 &&
			    !strcmp(type, VFS_FS_TYPE) && !umount2(mnt, MNT_DETACH))
				again = 1;
		}
		fclose(f);
	}
}

TEST(bind_emits_add_uevent_with_tag)
{
	const char *load = getenv("VFSRS_LOAD"), *unload = getenv("VFSRS_UNLOAD");
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	char want[128], buf[8192];
	int fd, found = 0, waited = 0;

	if (!load || !unload)
		SKIP(return, "VFSRS_LOAD/VFSRS_UNLOAD not set");
	snprintf(want, sizeof(want), "TAG=%s", vfs_tag());
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	ASSERT_LE(0, fd) TH_LOG("netlink: %s", strerror(errno));
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&sa, sizeof(sa)));

	umount_all();
	ASSERT_EQ(0, system(unload)) TH_LOG("%s failed", unload);
	ASSERT_EQ(0, system(load)) TH_LOG("%s failed", load);

	while (!found && waited < 5000) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0) {
			waited += 100;
			continue;
		}
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = 0;
		if (strstr(buf, "add@") == buf && strstr(buf, "/fs/virtiofs/") &&
		    has_var(buf, n, want))
			found = 1;
	}
	close(fd);
	EXPECT_EQ(1, found) TH_LOG("no add uevent of /sys/fs/virtiofs/* with %s", want);
}

TEST_HARNESS_MAIN
