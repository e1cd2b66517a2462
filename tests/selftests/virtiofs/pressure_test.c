// SPDX-License-Identifier: GPL-2.0
/*
 * A full request virtqueue while memory is short. The ring-pressure plan
 * shrinks the request queue to 16 entries and has the host hold each STATFS
 * reply for 50 ms, so most of 64 concurrent statfs() calls find the ring
 * full and wait in the driver. Waiting for room must not need memory: no
 * call may fail with ENOMEM.
 *
 * atomic_allocations_fail: failslab (CONFIG_FAILSLAB, debugfs) fails every
 * GFP_ATOMIC slab allocation of the 64 threads (task-filter, make-it-fail
 * per thread; ignore-gfp-wait leaves GFP_KERNEL alone), the allocations a
 * driver can make under its queue spinlock. A driver that grows a parking
 * array with GFP_ATOMIC when the ring is full fails those calls with
 * ENOMEM; intrusive lists need no allocation. The C driver fails this test
 * for another reason: it copies the arguments of every request into a
 * GFP_ATOMIC bounce buffer at submission (copy_args_to_argbuf(),
 * fs/fuse/virtio_fs.c) and ends the request with -ENOMEM when that fails,
 * ring full or not (tests/expect/c.xfail).
 *
 * memory_hog: the same with real memory pressure instead: a child fills
 * all but 48 MiB of the available memory and stays alive during the calls.
 * Small GFP_ATOMIC allocations still succeed from the reserves then, so
 * this cannot catch an atomic parking array; it catches a submission path
 * whose allocations fail under pressure (large or high-order GFP_ATOMIC or
 * GFP_NOWAIT buffers, __GFP_NORETRY).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

#define THREADS 64
#define FAILSLAB "/sys/kernel/debug/failslab"
/* The failslab budget: every failure consumes one. */
#define FAILSLAB_TIMES 1000000
#define STR_(x) #x
#define STR(x) STR_(x)
#define HOG_MARGIN (48 << 20)

struct worker {
	const char *mnt;
	pthread_barrier_t *start;
	int fail_atomic;	/* make this thread's GFP_ATOMIC slab allocations fail */
	int armed;		/* make-it-fail was set */
	int ret;
	int err;
};

static void *do_statfs(void *arg)
{
	struct worker *w = arg;
	struct statfs sf;
	int fd = -1;

	if (w->fail_atomic) {
		fd = open("/proc/thread-self/make-it-fail", O_WRONLY);
		w->armed = fd >= 0 && pwrite(fd, "1", 1, 0) == 1;
	}
	pthread_barrier_wait(w->start);
	w->ret = statfs(w->mnt, &sf);
	w->err = w->ret ? errno : 0;
	if (fd >= 0) {
		if (pwrite(fd, "0", 1, 0) != 1)
			w->armed = -1;
		close(fd);
	}
	return NULL;
}

/* Runs THREADS concurrent statfs() calls; returns how many succeeded. */
static int statfs_storm(struct __test_metadata *_metadata, const char *mnt,
			int fail_atomic, int *enomem)
{
	struct worker w[THREADS];
	pthread_t t[THREADS];
	pthread_barrier_t start;
	int i, ok = 0, armed = 0;

	*enomem = 0;
	pthread_barrier_init(&start, NULL, THREADS);
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .mnt = mnt, .start = &start, .fail_atomic = fail_atomic };
		if (pthread_create(&t[i], NULL, do_statfs, &w[i])) {
			TH_LOG("pthread_create %d failed", i);
			return -1;
		}
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		armed += w[i].armed == 1;
		if (!w[i].ret) {
			ok++;
			continue;
		}
		if (w[i].err == ENOMEM)
			(*enomem)++;
		if (i - ok < 4)
			TH_LOG("statfs %d: %s", i, strerror(w[i].err));
	}
	pthread_barrier_destroy(&start);
	if (fail_atomic && armed != THREADS)
		TH_LOG("only %d of %d threads could set make-it-fail", armed, THREADS);
	return fail_atomic && armed != THREADS ? -1 : ok;
}

static long failslab_read(const char *knob)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), "%s/%s", FAILSLAB, knob);
	if (vfs_read_line(path, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

static int failslab_set(const char *knob, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", FAILSLAB, knob);
	return vfs_write_str(path, val);
}

FIXTURE(pressure) {
	char mnt[64];
};

FIXTURE_SETUP(pressure)
{
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)))
		TH_LOG("mount %s: %s", vfs_tag(), strerror(errno));
}

/*
 * In the parent: the 6.12 harness skips FIXTURE_TEARDOWN() when an ASSERT
 * fails in the test (the test process aborts), which would leave the tag
 * mounted and the next test on the same superblock.
 */
FIXTURE_TEARDOWN_PARENT(pressure)
{
	failslab_set("probability", "0");
	vfs_umount(self->mnt);
}

TEST_F_TIMEOUT(pressure, ring_full_no_enomem_when_atomic_allocations_fail, 120)
{
	static const struct {
		const char *knob, *val;
	} knobs[] = {
		{ "probability", "0" },		/* off while configuring */
		{ "task-filter", "Y" },		/* only make-it-fail tasks */
		{ "ignore-gfp-wait", "Y" },	/* only allocations that cannot sleep */
		{ "cache-filter", "N" },
		{ "interval", "1" },
		{ "space", "0" },
		{ "verbose", "0" },		/* no stack dumps in the log */
		{ "times", STR(FAILSLAB_TIMES) },
		{ "probability", "100" },
	};
	int ok, enomem;
	unsigned int i;
	long left;

	if (access("/sys/kernel/debug", F_OK))
		SKIP(return, "no /sys/kernel/debug (CONFIG_DEBUG_FS)");
	if (access(FAILSLAB, F_OK) &&
	    mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL) && errno != EBUSY)
		SKIP(return, "cannot mount debugfs: %s", strerror(errno));
	if (access(FAILSLAB, F_OK))
		SKIP(return, "no %s (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)", FAILSLAB);
	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		if (failslab_set(knobs[i].knob, knobs[i].val))
			break;
	}
	ASSERT_EQ(ARRAY_SIZE(knobs), i) TH_LOG("failslab: %s", strerror(errno));

	ok = statfs_storm(_metadata, self->mnt, 1, &enomem);
	failslab_set("probability", "0");
	left = failslab_read("times");
	TH_LOG("%d of %d statfs() calls succeeded, %d failed with ENOMEM; failslab failed %ld atomic allocations",
	       ok, THREADS, enomem, left < 0 ? -1 : FAILSLAB_TIMES - left);
	ASSERT_LE(0, ok);
	EXPECT_EQ(0, enomem);
	EXPECT_EQ(THREADS, ok);
}

/* MemAvailable from /proc/meminfo, in bytes (0 if unknown). */
static long long mem_available(void)
{
	char line[128];
	long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb << 10;
}

/* The hog: takes all but HOG_MARGIN of the available memory, then sleeps. */
static void hog(int ready)
{
	long long size = mem_available() - HOG_MARGIN;
	void *p;

	/* If memory runs out after all, the OOM killer takes the hog first. */
	vfs_write_str("/proc/self/oom_score_adj", "1000");
	if (size <= 0)
		_exit(2);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		_exit(3);
	if (write(ready, &size, sizeof(size)) != sizeof(size))
		_exit(4);
	for (;;)
		pause();
}

TEST_F_TIMEOUT(pressure, ring_full_no_enomem_under_memory_hog, 300)
{
	long long size = 0;
	int ready[2], ok, enomem, status = 0;
	pid_t pid;

	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(ready[0]);
		hog(ready[1]);
	}
	close(ready[1]);
	ASSERT_EQ(sizeof(size), read(ready[0], &size, sizeof(size)))
		TH_LOG("the hog could not take the memory");
	close(ready[0]);
	TH_LOG("hog holds %lld MiB; MemAvailable now %lld MiB", size >> 20, mem_available() >> 20);

	ok = statfs_storm(_metadata, self->mnt, 0, &enomem);
	EXPECT_EQ(0, waitpid(pid, &status, WNOHANG))
		TH_LOG("the hog died during the calls (status %#x): no pressure measured", status);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	TH_LOG("%d of %d statfs() calls succeeded, %d failed with ENOMEM", ok, THREADS, enomem);
	EXPECT_EQ(0, enomem);
	EXPECT_EQ(THREADS, ok);
}

TEST_HARNESS_MAIN
