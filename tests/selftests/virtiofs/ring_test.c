// SPDX-License-Identifier: GPL-2.0
/*
 * More requests in flight than the virtqueue has room for. The ring-full
 * plan shrinks the request queue (vq_size 16) and has the host hold every
 * STATFS reply for a while, so concurrent statfs() calls fill the ring:
 * the driver must park what does not fit and send it when completions make
 * room, never fail a request with ENOSPC or lose one.
 */
#include <pthread.h>
#include <sys/statfs.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

#define THREADS 64

struct worker {
	const char *mnt;
	int ret;
	int err;
};

static void *do_statfs(void *arg)
{
	struct worker *w = arg;
	struct statfs sf;

	w->ret = statfs(w->mnt, &sf);
	w->err = w->ret ? errno : 0;
	return NULL;
}

TEST(ring_full_requests_all_complete)
{
	struct worker w[THREADS];
	pthread_t t[THREADS];
	char mnt[64];
	int i, ok = 0;

	ASSERT_EQ(0, vfs_mount_fresh(mnt, sizeof(mnt))) TH_LOG("mount: %s", strerror(errno));
	for (i = 0; i < THREADS; i++) {
		w[i].mnt = mnt;
		ASSERT_EQ(0, pthread_create(&t[i], NULL, do_statfs, &w[i]));
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		if (!w[i].ret)
			ok++;
		else
			TH_LOG("statfs %d: %s", i, strerror(w[i].err));
	}
	EXPECT_EQ(THREADS, ok);
	vfs_umount(mnt);
}

TEST_HARNESS_MAIN
