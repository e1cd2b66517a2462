// SPDX-License-Identifier: GPL-2.0
/*
 * Signals for tasks that wait for the host. The interrupt plans have the
 * DAX host hold some replies for 3 s (LOOKUP and CREATE of names
 * starting with "slow-", every OPEN), so the request is with the host when
 * a child waiting for it is signalled; then the host answers.
 *
 * Whatever the system call returns, the server has counted a lookup of the
 * node (or opened a handle) by then: the driver must give it back with
 * FUSE_FORGET when the inode is evicted (FUSE_RELEASE when the file is
 * closed), even when the waiter is gone. Each test ends by evicting every
 * inode while the tag is still mounted (the C driver drops forgets after
 * FUSE_DESTROY at umount); the plans' host checks then balance the host's
 * accounting log (tests/guest/plans/interrupt-lib.sh).
 *
 * The C driver (6.12) sends no FUSE_INTERRUPT and waits out a request it has
 * sent: a caught signal does not end the wait (the call succeeds once the
 * host answers), SIGKILL leaves the task in D state until the reply, which
 * is then processed as if nobody had been signalled. Returning EINTR early
 * is allowed too, if the late reply is still accounted for.
 */
#include <signal.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

enum op { OP_STAT, OP_OPEN, OP_CREATE };

/* What the signalled child saw, sent back through a pipe. */
struct outcome {
	int ret;		/* 0, or -1 if the call failed */
	int err;		/* errno of a failed call */
	int caught;		/* the SIGUSR1 handler ran */
	long long t_start;	/* CLOCK_MONOTONIC ms, before the call */
	long long t_end;	/* after it */
};

static volatile sig_atomic_t caught;

static void on_usr1(int sig)
{
	caught = 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int do_op(enum op op, const char *path)
{
	struct stat st;
	int fd;

	switch (op) {
	case OP_STAT:
		return stat(path, &st);
	case OP_OPEN:
		fd = open(path, O_RDONLY);
		break;
	default:
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		break;
	}
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* The child: SIGUSR1 caught without SA_RESTART, one call, its outcome. */
static void child(enum op op, const char *path, int ready, int out)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct outcome o = { 0 };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) || write(ready, "r", 1) != 1)
		_exit(2);
	o.t_start = now_ms();
	o.ret = do_op(op, path);
	o.err = o.ret ? errno : 0;
	o.t_end = now_ms();
	o.caught = caught;
	_exit(write(out, &o, sizeof(o)) == sizeof(o) ? 0 : 3);
}

/*
 * Returns the state of @pid once it is asleep ('S' or 'D') in two polls
 * 100 ms apart, 'Z' if it has exited, or 0 after 10 s or on error.
 */
static char wait_asleep(pid_t pid)
{
	char c, prev = 0;
	int i;

	for (i = 0; i < 100; i++) {
		c = vfs_task_state(pid);
		if (!c || c == 'Z')
			return c;
		if ((c == 'S' || c == 'D') && (prev == 'S' || prev == 'D'))
			return c;
		prev = c;
		usleep(100 * 1000);
	}
	return 0;
}

struct run {
	struct outcome o;	/* valid if got_outcome */
	int got_outcome;
	int status;		/* the child's wait status */
	char state;		/* its state when signalled */
	long long t_kill;	/* when the signal was sent */
	long long t_reaped;	/* when waitpid() returned */
};

/*
 * Forks a child that calls @op on @rel (relative to @mnt), waits until the
 * child sleeps in that call, sends it @sig and collects what happened.
 */
static int run_signalled(const char *mnt, enum op op, const char *rel, int sig, struct run *r)
{
	int ready[2], out[2];
	char path[600], c;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	if (pipe(ready) || pipe(out))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		close(ready[0]);
		close(out[0]);
		child(op, path, ready[1], out[1]);
	}
	close(ready[1]);
	close(out[1]);
	if (read(ready[0], &c, 1) != 1)
		return -1;
	r->state = wait_asleep(pid);
	/* Well inside the host's delay, and well after the request left. */
	usleep(200 * 1000);
	r->t_kill = now_ms();
	kill(pid, sig);
	if (waitpid(pid, &r->status, 0) != pid)
		return -1;
	r->t_reaped = now_ms();
	r->got_outcome = read(out[0], &r->o, sizeof(r->o)) == sizeof(r->o);
	close(ready[0]);
	close(out[0]);
	return 0;
}

FIXTURE(intr) {
	char mnt[64];
};

FIXTURE_SETUP(intr)
{
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)))
		TH_LOG("mount %s: %s", vfs_tag(), strerror(errno));
}

/*
 * In the parent: the 6.12 harness skips FIXTURE_TEARDOWN() when an ASSERT
 * fails in the test (the test process aborts), which would leave the tag
 * mounted and the next test on the same superblock.
 */
FIXTURE_TEARDOWN_PARENT(intr)
{
	struct statfs sf;

	/*
	 * One request queue, served in order by one host thread: this reply
	 * comes after the held one, so every late reply has arrived.
	 */
	if (statfs(self->mnt, &sf))
		TH_LOG("statfs: %s", strerror(errno));
	if (vfs_drop_caches())
		TH_LOG("drop_caches: %s", strerror(errno));
	usleep(500 * 1000);
	vfs_umount(self->mnt);
}

/* The child caught the signal while its call waited for the host. */
static void check_caught(struct __test_metadata *_metadata, const struct run *r,
			 const char *what)
{
	ASSERT_TRUE(WIFEXITED(r->status) && !WEXITSTATUS(r->status))
		TH_LOG("child status %#x", r->status);
	ASSERT_TRUE(r->got_outcome);
	TH_LOG("%s returned %d (%s) after %lld ms; SIGUSR1 sent at %lld ms (state %c)",
	       what, r->o.ret, r->o.ret ? strerror(r->o.err) : "ok",
	       r->o.t_end - r->o.t_start, r->t_kill - r->o.t_start, r->state ? r->state : '?');
	ASSERT_LT(r->t_kill, r->o.t_end)
		TH_LOG("%s returned before the signal: no request was held by the host", what);
	EXPECT_TRUE(r->o.caught);
	EXPECT_TRUE(r->o.ret == 0 || r->o.err == EINTR)
		TH_LOG("%s failed with %s: only success or EINTR are right", what,
		       strerror(r->o.err));
}

/* The child was killed while its call waited for the host. */
static void check_killed(struct __test_metadata *_metadata, const struct run *r,
			 const char *what)
{
	TH_LOG("%s: child killed in state %c, reaped %lld ms after SIGKILL",
	       what, r->state ? r->state : '?', r->t_reaped - r->t_kill);
	EXPECT_FALSE(r->got_outcome)
		TH_LOG("%s returned (%d, %s) before SIGKILL: no request was held by the host",
		       what, r->o.ret, strerror(r->o.err));
	EXPECT_TRUE(WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGKILL)
		TH_LOG("child status %#x", r->status);
}

TEST_F_TIMEOUT(intr, lookup_interrupted_by_caught_signal, 60)
{
	struct run r;

	ASSERT_EQ(0, run_signalled(self->mnt, OP_STAT, "host/slow-lookup-caught", SIGUSR1, &r));
	check_caught(_metadata, &r, "stat");
}

TEST_F_TIMEOUT(intr, lookup_waiter_killed, 60)
{
	struct run r;

	ASSERT_EQ(0, run_signalled(self->mnt, OP_STAT, "host/slow-lookup-killed", SIGKILL, &r));
	check_killed(_metadata, &r, "stat");
}

TEST_F_TIMEOUT(intr, open_interrupted_by_caught_signal, 60)
{
	struct run r;

	ASSERT_EQ(0, run_signalled(self->mnt, OP_OPEN, "host/open-caught", SIGUSR1, &r));
	check_caught(_metadata, &r, "open");
}

TEST_F_TIMEOUT(intr, open_waiter_killed, 60)
{
	struct run r;

	ASSERT_EQ(0, run_signalled(self->mnt, OP_OPEN, "host/open-killed", SIGKILL, &r));
	check_killed(_metadata, &r, "open");
}

TEST_F_TIMEOUT(intr, create_interrupted_by_caught_signal, 60)
{
	struct run r;

	ASSERT_EQ(0, run_signalled(self->mnt, OP_CREATE, "host/slow-create-caught", SIGUSR1, &r));
	check_caught(_metadata, &r, "open(O_CREAT)");
}

TEST_F_TIMEOUT(intr, create_waiter_killed, 60)
{
	struct run r;

	ASSERT_EQ(0, run_signalled(self->mnt, OP_CREATE, "host/slow-create-killed", SIGKILL, &r));
	check_killed(_metadata, &r, "open(O_CREAT)");
}

TEST_HARNESS_MAIN
