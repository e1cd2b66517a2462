// SPDX-License-Identifier: GPL-2.0
/*
 * Unbinding the device (hot unplug, driver unbind) while a request is in
 * flight. The unbind plan has the host hold every STATFS reply for 3 s, so
 * the statfs() below is queued to the device when the device goes away.
 * The waiter must come back, never hang: the C driver waits for the host
 * to answer (virtio_fs_drain_all_queues), virtiofs-rs resets the device
 * and ends the request with ENOTCONN. Afterwards the mount refuses
 * requests with ENOTCONN and still unmounts.
 */
#include <limits.h>
#include <libgen.h>
#include <signal.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

/* How long the waiter may take: the host's 3 s delay plus slack. */
#define WAIT_LIMIT_MS 20000

/* Fills @dev with the virtio device (virtioN) that carries our tag. */
static int tag_device(char *dev, size_t len)
{
	char inst[256], path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	if (vfs_find_instance(inst, sizeof(inst)) != 1)
		return -1;
	snprintf(path, sizeof(path), "/sys/fs/virtiofs/%s/device", inst);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return -1;
	link[n] = 0;
	snprintf(dev, len, "%s", basename(link));
	return 0;
}

/* Fills @drv with the name of the driver bound to @dev. */
static int device_driver(const char *dev, char *drv, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/driver", dev);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return -1;
	link[n] = 0;
	snprintf(drv, len, "%s", basename(link));
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

TEST(unbind_with_request_in_flight)
{
	char mnt[64], dev[64], drv[64], path[PATH_MAX];
	struct statfs sf;
	long long start;
	int status = 0, fd;
	pid_t pid, w = 0;

	ASSERT_EQ(0, vfs_mount_fresh(mnt, sizeof(mnt))) TH_LOG("mount: %s", strerror(errno));
	ASSERT_EQ(0, tag_device(dev, sizeof(dev)));
	ASSERT_EQ(0, device_driver(dev, drv, sizeof(drv)));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(statfs(mnt, &sf) ? errno : 0);

	/* Let the STATFS reach the device, then take the device away. */
	usleep(500 * 1000);
	snprintf(path, sizeof(path), "/sys/bus/virtio/drivers/%s/unbind", drv);
	fd = open(path, O_WRONLY);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", path, strerror(errno));
	ASSERT_EQ((ssize_t)strlen(dev), write(fd, dev, strlen(dev)))
		TH_LOG("unbind %s from %s: %s", dev, drv, strerror(errno));
	close(fd);

	start = now_ms();
	while (now_ms() - start < WAIT_LIMIT_MS) {
		w = waitpid(pid, &status, WNOHANG);
		if (w)
			break;
		usleep(50 * 1000);
	}
	if (!w) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	ASSERT_EQ(pid, w) TH_LOG("statfs in flight at unbind never came back");
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_TRUE(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == ENOTCONN)
		TH_LOG("statfs in flight at unbind: %s", strerror(WEXITSTATUS(status)));

	EXPECT_EQ(-1, statfs(mnt, &sf));
	EXPECT_EQ(ENOTCONN, errno);
	EXPECT_EQ(0, umount2(mnt, 0)) TH_LOG("umount after unbind: %s", strerror(errno));
	rmdir(mnt);
}

TEST_HARNESS_MAIN
