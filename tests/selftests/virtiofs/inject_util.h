/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the fault injection kselftests (inject_test,
 * lock_inject_test): an error test wants the call to fail with the host's
 * errno, a delay test wants it to return no sooner than the host answered.
 * Include after kselftest_harness.h.
 *
 * Environment, beyond vfs_util.h:
 *   VFS_INJECT_DELAY_MS  what the plan's delay rules hold a reply (1500)
 */
#ifndef VFS_INJECT_UTIL_H
#define VFS_INJECT_UTIL_H

#include <time.h>

#include "vfs_util.h"

static inline long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static inline long long delay_ms(void)
{
	const char *v = getenv("VFS_INJECT_DELAY_MS");

	return v && *v ? atoll(v) : 1500;
}

/* @call returned @ret with errno @err: it must have failed with @want. */
static inline void fails_with(struct __test_metadata *_metadata, const char *call, long ret,
			      int err, int want)
{
	ASSERT_EQ(-1, ret)
		TH_LOG("%s returned %ld: the host's %s did not reach it", call, ret,
		       strerror(want));
	ASSERT_EQ(want, err)
		TH_LOG("%s failed with %s, the host answered %s", call, strerror(err),
		       strerror(want));
}

/* @call started at @t0 (now_ms()) and has returned: not before the host did. */
static inline void took_the_delay(struct __test_metadata *_metadata, const char *call,
				  long long t0)
{
	long long took = now_ms() - t0, want = delay_ms();

	TH_LOG("%s took %lld ms (the host held its reply %lld ms)", call, took, want);
	EXPECT_GE(took, want)
		TH_LOG("%s returned before the host answered", call);
}

#endif /* VFS_INJECT_UTIL_H */
