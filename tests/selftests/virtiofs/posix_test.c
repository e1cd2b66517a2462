// SPDX-License-Identifier: GPL-2.0
/*
 * POSIX behaviour of a virtio-fs mount: data integrity, open flags, sparse
 * files, mmap and truncate, renames, links, special files, xattrs and ACLs,
 * permissions, statx, large directories, concurrency, host-side changes per
 * cache mode, fsync, and locks. The expected results are what the in-tree C
 * driver gives with virtiofsd (the plans posix, posix-never, posix-always,
 * posix-writeback). Each test mounts the tag on a fresh mount point and
 * works in guest/<test>/; what it leaves there is checked on the host by
 * posix.hostcheck.
 *
 * The plan says how its virtiofsd runs (tests/guest/plans/posix*.plan):
 *   VFS_CACHE_MODE  virtiofsd's --cache: auto (the default), never, always
 *   VFS_WRITEBACK   1: virtiofsd runs with --writeback
 *   VFS_XATTR       1: virtiofsd runs with --xattr
 *   VFS_ACL         1: virtiofsd runs with --posix-acl
 *   VFS_FORGET_BEFORE_UMOUNT  1: drop the caches before each unmount, so
 *                   the guest gives back every lookup (a host check counts)
 * Requests to the host agent (posix.hostagent) go through agent/ in the
 * mount.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>

#include "kselftest_harness.h"
#include "lock_util.h"
#include "vfs_util.h"

/* The random-write model (vfs_util.h); posix.hostcheck uses the same numbers. */
#define MODEL_SEED 7
#define MODEL_OPS 1000
#define MODEL_SPAN (1 << 20)
#define MODEL_MAXLEN 8192

/* Host files from posix.prepare. */
#define BIG_DIR "host/big"
#define BIG_COUNT 10000
#define LIVE_FILE "host/live.bin"
#define LIVE_SIZE 8192
#define LIVE_SEED 40

#define MiB (1 << 20)

enum cache_mode { CACHE_AUTO, CACHE_NEVER, CACHE_ALWAYS, CACHE_UNKNOWN };

static enum cache_mode cache_mode(void)
{
	const char *m = getenv("VFS_CACHE_MODE");

	if (!m || !*m || !strcmp(m, "auto"))
		return CACHE_AUTO;
	if (!strcmp(m, "never"))
		return CACHE_NEVER;
	if (!strcmp(m, "always"))
		return CACHE_ALWAYS;
	return CACHE_UNKNOWN;
}

static bool env_flag(const char *name)
{
	const char *v = getenv(name);

	return v && !strcmp(v, "1");
}

FIXTURE(posix) {
	char mnt[64];
	char dir[256];
};

FIXTURE_SETUP(posix)
{
	char guest[128];

	ASSERT_NE(CACHE_UNKNOWN, cache_mode())
		TH_LOG("VFS_CACHE_MODE=%s: not auto, never or always", getenv("VFS_CACHE_MODE"));
	umask(022);
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)))
		TH_LOG("mount %s: %s", vfs_tag(), strerror(errno));
	snprintf(guest, sizeof(guest), "%s/guest", self->mnt);
	ASSERT_EQ(0, mkdir(guest, 0755) && errno != EEXIST);
	snprintf(self->dir, sizeof(self->dir), "%s/%s", guest, _metadata->name);
	ASSERT_EQ(0, mkdir(self->dir, 0755) && errno != EEXIST)
		TH_LOG("mkdir %s: %s", self->dir, strerror(errno));
}

/*
 * In the parent, once the test process is gone: after a crash too, and
 * never with the test's descriptors still open (the unmount would be
 * busy) or in a child a test forked.
 */
FIXTURE_TEARDOWN_PARENT(posix)
{
	if (env_flag("VFS_FORGET_BEFORE_UMOUNT")) {
		/* The host's accounting check wants every lookup back. */
		vfs_drop_caches();
		usleep(300 * 1000);
	}
	vfs_umount(self->mnt);
}

/* Entries of directory @dir other than "." and "..", or -1. */
static int count_entries(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* @name under @dir; the last eight results stay valid. */
static const char *at(const char *dir, const char *name)
{
	static char bufs[8][768];
	static unsigned int next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* pread() until @len bytes or EOF; returns the bytes read or -1. */
static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0)
			return -1;
		if (!n)
			break;
		done += n;
	}
	return done;
}

/* pwrite() all of @buf; returns 0 or -1. */
static int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, (const char *)buf + done, len - done, off + done);
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static bool all_zero(const unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

/* Checks that @path holds exactly @size pattern bytes of @seed. */
static int file_is_pattern(const char *path, size_t size, uint32_t seed)
{
	unsigned char *buf = NULL;
	ssize_t n = vfs_read_file(path, &buf);
	int ret = 0;

	if (n != (ssize_t)size) {
		printf("# %s: %zd bytes, want %zu\n", path, n, size);
		ret = -1;
	} else if (vfs_pattern_check(buf, n, 0, seed) != -1) {
		printf("# %s: differs at byte %lld\n", path,
		       vfs_pattern_check(buf, n, 0, seed));
		ret = -1;
	}
	free(buf);
	return ret;
}

/* Drops the guest's page cache, dentries and inodes (dirty data first). */
static int drop_all_caches(void)
{
	sync();
	return vfs_write_str("/proc/sys/vm/drop_caches", "3");
}

/*
 * Asks the host agent (posix.hostagent) for @req: creates agent/@req and
 * waits for agent/@req.done, which the runner creates when the agent is done.
 */
static int host_agent(const char *mnt, const char *req)
{
	char path[300], done[310];
	struct stat st;
	int fd, i;

	snprintf(path, sizeof(path), "%s/agent/%s", mnt, req);
	snprintf(done, sizeof(done), "%s.done", path);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	for (i = 0; i < 600; i++) {
		if (!stat(done, &st))
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

static sigjmp_buf probe_env;

static void probe_handler(int sig)
{
	siglongjmp(probe_env, sig);
}

/* Reads the byte at @p: the signal that raises (SIGBUS), or 0 and the byte in *@val. */
static int probe_read(const volatile unsigned char *p, unsigned char *val)
{
	struct sigaction sa = { .sa_handler = probe_handler }, obus, osegv;
	int sig;

	sigaction(SIGBUS, &sa, &obus);
	sigaction(SIGSEGV, &sa, &osegv);
	sig = sigsetjmp(probe_env, 1);
	if (!sig)
		*val = *p;
	sigaction(SIGBUS, &obus, NULL);
	sigaction(SIGSEGV, &osegv, NULL);
	return sig;
}

/*
 * Random-offset writes of random lengths (the model in vfs_util.h, fixed
 * seed), with reads of random ranges in between, each checked against the
 * model byte for byte; then the whole file, before and after the guest's
 * caches are dropped. The host check compares the file's checksum with the
 * model's.
 */
TEST_F_TIMEOUT(posix, random_writes_match_model, 240)
{
	uint64_t state = MODEL_SEED, rstate = MODEL_SEED ^ 0x5bd1e995;
	unsigned char *model, *again, *back;
	struct vfs_model_write w;
	unsigned int i, reads = 0;
	size_t size = 0, len;
	const char *path;
	struct stat st;
	uint64_t off;
	int fd;

	model = calloc(1, MODEL_SPAN);
	again = calloc(1, MODEL_SPAN);
	back = malloc(MODEL_SPAN);
	ASSERT_TRUE(model && again && back);
	path = at(self->dir, "model.bin");
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", path, strerror(errno));
	for (i = 0; i < MODEL_OPS; i++) {
		vfs_model_next(&state, MODEL_SEED, i, MODEL_SPAN, MODEL_MAXLEN, &w);
		vfs_pattern_fill(model + w.off, w.len, w.off, w.seed);
		ASSERT_EQ(0, pwrite_full(fd, model + w.off, w.len, w.off))
			TH_LOG("write %u (%zu bytes at %llu): %s", i, w.len,
			       (unsigned long long)w.off, strerror(errno));
		if (w.off + w.len > size)
			size = w.off + w.len;
		if (vfs_rand(&rstate) % 4)
			continue;
		off = vfs_rand(&rstate) % size;
		len = 1 + vfs_rand(&rstate) % (2 * MODEL_MAXLEN);
		if (off + len > size)
			len = size - off;
		ASSERT_EQ((ssize_t)len, pread_full(fd, back, len, off));
		ASSERT_EQ(0, memcmp(back, model + off, len))
			TH_LOG("after write %u: read of %zu bytes at %llu differs", i, len,
			       (unsigned long long)off);
		reads++;
	}
	/* The host tool builds the same file. */
	ASSERT_EQ(size, vfs_model_build(again, MODEL_SEED, MODEL_OPS, MODEL_SPAN, MODEL_MAXLEN));
	ASSERT_EQ(0, memcmp(model, again, size));

	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ((off_t)size, st.st_size);
	ASSERT_EQ((ssize_t)size, pread_full(fd, back, MODEL_SPAN, 0));
	EXPECT_EQ(0, memcmp(back, model, size));
	EXPECT_EQ(0, fsync(fd));
	close(fd);

	ASSERT_EQ(0, drop_all_caches());
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)size, pread_full(fd, back, MODEL_SPAN, 0));
	EXPECT_EQ(0, memcmp(back, model, size)) TH_LOG("after dropping the caches");
	close(fd);
	TH_LOG("%u writes, %u checked reads, %zu bytes", MODEL_OPS, reads, size);
	free(model);
	free(again);
	free(back);
}

/* One O_APPEND writer: each record of 128 bytes names its writer and number. */
static int append_records(const char *path, int writer, int count, int start_fd)
{
	unsigned char rec[128];
	char go;
	int fd, seq;

	if (read(start_fd, &go, 1) < 0)
		return child_fail(__LINE__, "start");
	fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0)
		return child_fail(__LINE__, "open O_APPEND");
	for (seq = 0; seq < count; seq++) {
		rec[0] = 'A' + writer;
		rec[1] = seq >> 8;
		rec[2] = seq & 0xff;
		vfs_pattern_fill(rec + 3, sizeof(rec) - 3, 3, 1000 * writer + seq);
		if (write(fd, rec, sizeof(rec)) != sizeof(rec))
			return child_fail(__LINE__, "write record");
	}
	close(fd);
	return 0;
}

/*
 * O_APPEND: every write lands at the end, whatever the offset (pwrite(2),
 * BUGS: Linux appends even there); two processes appending at once lose
 * nothing and never interleave inside a record.
 */
TEST_F(posix, o_append_writes_at_end)
{
	const char *path = at(self->dir, "log");
	unsigned char buf[3000], *back = NULL;
	int fd, w, next[2] = { 0, 0 }, gate[2];
	pid_t pids[2];
	struct stat st;
	ssize_t n, off;

	vfs_pattern_fill(buf, sizeof(buf), 0, 50);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_APPEND, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1000, write(fd, buf, 1000));
	ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
	ASSERT_EQ(1000, write(fd, buf + 1000, 1000));
	EXPECT_EQ(2000, lseek(fd, 0, SEEK_CUR));
	ASSERT_EQ(1000, pwrite(fd, buf + 2000, 1000, 0));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(3000, st.st_size);
	close(fd);

	ASSERT_EQ(0, pipe(gate));
	for (w = 0; w < 2; w++) {
		pids[w] = fork();
		if (!pids[w]) {
			close(gate[1]);
			_exit(append_records(path, w, 200, gate[0]));
		}
	}
	close(gate[0]);
	close(gate[1]);
	EXPECT_EQ(0, reap(pids[0]));
	EXPECT_EQ(0, reap(pids[1]));

	n = vfs_read_file(path, &back);
	ASSERT_EQ(3000 + 2 * 200 * 128, n);
	EXPECT_EQ(0, memcmp(back, buf, 3000));
	for (off = 3000; off < n; off += 128) {
		unsigned char *rec = back + off;
		int seq = rec[1] << 8 | rec[2];

		w = rec[0] - 'A';
		ASSERT_TRUE(w == 0 || w == 1) TH_LOG("record at %zd: writer byte %#x", off, rec[0]);
		ASSERT_EQ(next[w], seq) TH_LOG("record at %zd: writer %d", off, w);
		ASSERT_EQ(-1, vfs_pattern_check(rec + 3, 125, 3, 1000 * w + seq))
			TH_LOG("record at %zd torn", off);
		next[w]++;
	}
	EXPECT_EQ(200, next[0]);
	EXPECT_EQ(200, next[1]);
	free(back);
}

/*
 * O_TRUNC empties the file, also for a descriptor that read it before (its
 * cached pages must not come back), and writes after it start from zero.
 */
TEST_F(posix, o_trunc_empties_file)
{
	const char *path = at(self->dir, "t");
	unsigned char buf[10000], back[10000];
	struct stat st;
	int rfd, fd;

	ASSERT_EQ(0, vfs_write_pattern(path, sizeof(buf), 51));
	rfd = open(path, O_RDONLY);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(sizeof(back), pread_full(rfd, back, sizeof(back), 0));
	EXPECT_EQ(-1, vfs_pattern_check(back, sizeof(back), 0, 51));

	fd = open(path, O_WRONLY | O_TRUNC);
	ASSERT_LE(0, fd) TH_LOG("open O_TRUNC: %s", strerror(errno));
	ASSERT_EQ(0, fstat(rfd, &st));
	EXPECT_EQ(0, st.st_size);
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(0, st.st_size);
	EXPECT_EQ(0, pread(rfd, back, sizeof(back), 0));

	vfs_pattern_fill(buf, 100, 0, 52);
	ASSERT_EQ(100, write(fd, buf, 100));
	close(fd);
	EXPECT_EQ(100, pread_full(rfd, back, sizeof(back), 0));
	EXPECT_EQ(0, memcmp(back, buf, 100));
	close(rfd);
}

/*
 * O_DIRECT with aligned and unaligned buffers, lengths and offsets; direct
 * and buffered I/O on the same file see each other's writes. The C driver
 * has no alignment rule of its own, and virtiofsd (without
 * --allow-direct-io) drops O_DIRECT when it opens an existing file
 * (FUSE_OPEN), so there unaligned I/O works. Its FUSE_CREATE keeps the
 * flag, though: a file C creates with O_DIRECT (atomic_open) is open
 * O_DIRECT on the host too, the host file system refuses unaligned I/O
 * with EINVAL, and C passes that on. So on a descriptor from O_CREAT,
 * unaligned I/O must either work or fail with EINVAL (a driver that creates
 * with MKNOD and then opens gets the former).
 */
TEST_F(posix, o_direct_aligned_and_unaligned)
{
	const char *path = at(self->dir, "direct");
	unsigned char *buf, *back, *all = NULL;
	int fd, bfd, err;
	ssize_t n;

	ASSERT_EQ(0, posix_memalign((void **)&buf, 4096, 65536 + 4096));
	ASSERT_EQ(0, posix_memalign((void **)&back, 4096, 65536 + 4096));
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_DIRECT, 0644);
	ASSERT_LE(0, fd) TH_LOG("open O_DIRECT: %s", strerror(errno));

	vfs_pattern_fill(buf, 65536, 0, 60);
	ASSERT_EQ(65536, pwrite(fd, buf, 65536, 0)) TH_LOG("aligned write: %s", strerror(errno));
	ASSERT_EQ(65536, pread(fd, back, 65536, 0)) TH_LOG("aligned read: %s", strerror(errno));
	EXPECT_EQ(0, memcmp(buf, back, 65536));

	/* Created with O_DIRECT: C gets EINVAL from the host, see above. */
	vfs_pattern_fill(buf + 1, 1000, 70001, 60);
	n = pwrite(fd, buf + 1, 1000, 70001);
	err = errno;
	TH_LOG("unaligned write after O_CREAT: %zd (%s)", n, n < 0 ? strerror(err) : "ok");
	EXPECT_TRUE(n == 1000 || (n < 0 && err == EINVAL));
	n = pread(fd, back + 3, 1000, 100);
	err = errno;
	EXPECT_TRUE(n == 1000 || (n < 0 && err == EINVAL)) TH_LOG("unaligned read: %zd", n);
	EXPECT_TRUE(n < 0 || vfs_pattern_check(back + 3, 1000, 100, 60) == -1);
	close(fd);

	/* Opened with O_DIRECT: buffer, length and offset all unaligned. */
	fd = open(path, O_RDWR | O_DIRECT);
	ASSERT_LE(0, fd) TH_LOG("open O_DIRECT: %s", strerror(errno));
	n = pwrite(fd, buf + 1, 1000, 70001);
	EXPECT_EQ(1000, n) TH_LOG("unaligned write: %s", strerror(errno));
	n = pread(fd, back + 3, 1000, 70001);
	EXPECT_EQ(1000, n) TH_LOG("unaligned read: %s", strerror(errno));
	EXPECT_EQ(-1, vfs_pattern_check(back + 3, 1000, 70001, 60));
	n = pread(fd, back + 5, 777, 101);
	EXPECT_EQ(777, n) TH_LOG("unaligned read: %s", strerror(errno));
	EXPECT_EQ(-1, vfs_pattern_check(back + 5, 777, 101, 60));

	/* A buffered descriptor sees the direct writes, holes as zeros. */
	n = vfs_read_file(path, &all);
	ASSERT_EQ(71001, n);
	EXPECT_EQ(-1, vfs_pattern_check(all, 65536, 0, 60));
	EXPECT_TRUE(all_zero(all + 65536, 70001 - 65536));
	EXPECT_EQ(-1, vfs_pattern_check(all + 70001, 1000, 70001, 60));
	free(all);

	/* Buffered write, direct read; direct write, buffered read. */
	bfd = open(path, O_RDWR);
	ASSERT_LE(0, bfd);
	vfs_pattern_fill(buf, 4096, 4096, 61);
	ASSERT_EQ(4096, pwrite(bfd, buf, 4096, 4096));
	ASSERT_EQ(4096, pread(fd, back, 4096, 4096));
	EXPECT_EQ(-1, vfs_pattern_check(back, 4096, 4096, 61))
		TH_LOG("direct read missed a buffered write");
	ASSERT_EQ(4096, pread(bfd, back, 4096, 8192));
	vfs_pattern_fill(buf, 4096, 8192, 62);
	ASSERT_EQ(4096, pwrite(fd, buf, 4096, 8192));
	ASSERT_EQ(4096, pread(bfd, back, 4096, 8192));
	EXPECT_EQ(-1, vfs_pattern_check(back, 4096, 8192, 62))
		TH_LOG("buffered read missed a direct write");
	close(bfd);
	close(fd);
	free(buf);
	free(back);
}

/* copy_file_range() until @len bytes are copied or it copies nothing. */
static ssize_t copy_all(int in, loff_t pi, int out, loff_t po, size_t len)
{
	ssize_t total = 0, n;

	while ((size_t)total < len) {
		n = copy_file_range(in, &pi, out, &po, len - total, 0);
		if (n < 0)
			return n;
		if (!n)
			break;
		total += n;
	}
	return total;
}

/*
 * copy_file_range(2) inside the mount: the destination gets the source's
 * bytes (a range inside it, then one extending it), a copy across the
 * source's end stops there, a reader that cached the destination sees the
 * new bytes, and the source is unchanged.
 */
TEST_F(posix, copy_file_range)
{
	const char *src = at(self->dir, "cfr-src"), *dst = at(self->dir, "cfr-dst");
	unsigned char *buf;
	struct stat st;
	int in, out, rfd;

	ASSERT_EQ(0, vfs_write_pattern(src, 300000, 95));
	ASSERT_EQ(0, vfs_write_pattern(dst, 100000, 96));
	buf = malloc(400000);
	ASSERT_NE(NULL, buf);
	in = open(src, O_RDONLY);
	out = open(dst, O_RDWR);
	rfd = open(dst, O_RDONLY);
	ASSERT_LE(0, in);
	ASSERT_LE(0, out);
	ASSERT_LE(0, rfd);
	/* The reader caches the destination. */
	ASSERT_EQ(100000, pread(rfd, buf, 400000, 0));

	ASSERT_EQ(8192, copy_all(in, 12345, out, 50000, 8192)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(100000, pread(rfd, buf, 400000, 0));
	EXPECT_EQ(-1, vfs_pattern_check(buf, 50000, 0, 96));
	EXPECT_EQ(-1, vfs_pattern_check(buf + 50000, 8192, 12345, 95));
	EXPECT_EQ(-1, vfs_pattern_check(buf + 58192, 100000 - 58192, 58192, 96));

	/* Extending the destination. */
	ASSERT_EQ(200000, copy_all(in, 0, out, 90000, 200000)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, stat(dst, &st));
	EXPECT_EQ(290000, st.st_size);
	ASSERT_EQ(290000, pread(rfd, buf, 400000, 0));
	EXPECT_EQ(-1, vfs_pattern_check(buf + 50000, 8192, 12345, 95));
	EXPECT_EQ(-1, vfs_pattern_check(buf + 58192, 90000 - 58192, 58192, 96));
	EXPECT_EQ(-1, vfs_pattern_check(buf + 90000, 200000, 0, 95));

	/* Across the source's end: up to it. */
	EXPECT_EQ(50000, copy_all(in, 250000, out, 0, 100000));
	ASSERT_EQ(290000, pread(rfd, buf, 400000, 0));
	EXPECT_EQ(-1, vfs_pattern_check(buf, 50000, 250000, 95));

	close(in);
	close(out);
	close(rfd);
	free(buf);
	buf = NULL;
	ASSERT_EQ(300000, vfs_read_file(src, &buf));
	EXPECT_EQ(-1, vfs_pattern_check(buf, 300000, 0, 95));
	free(buf);
}

/*
 * Asynchronous O_DIRECT (aio, 16 pieces in flight at once): writes inside
 * the file and reads complete with their full size and the right data;
 * a read across the end of the file completes short, one at the end with
 * 0, one into memory that cannot be pinned with EFAULT. A buffered reader
 * sees the direct writes.
 */
TEST_F(posix, aio_direct_io)
{
	enum { N = 16, PIECE = 65536 };
	const char *path = at(self->dir, "aio");
	struct iocb cbs[N], *ptrs[N];
	struct io_event ev[N];
	aio_context_t ctx = 0;
	unsigned char *buf, *all = NULL;
	void *none;
	off_t off;
	int fd, i;

	ASSERT_EQ(0, vfs_write_pattern(path, N * PIECE, 90));
	ASSERT_EQ(0, posix_memalign((void **)&buf, 4096, N * PIECE));
	none = mmap(NULL, PIECE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	fd = open(path, O_RDWR | O_DIRECT);
	ASSERT_LE(0, fd) TH_LOG("open O_DIRECT: %s", strerror(errno));
	ASSERT_EQ(0, syscall(__NR_io_setup, N, &ctx));

	/* Writes of a new pattern, in a scattered order. */
	vfs_pattern_fill(buf, N * PIECE, 0, 91);
	for (i = 0; i < N; i++) {
		off = (off_t)(i * 7 % N) * PIECE;
		vfs_aio_prep(&cbs[i], fd, IOCB_CMD_PWRITE, buf + off, PIECE, off, i);
		ptrs[i] = &cbs[i];
	}
	ASSERT_EQ(N, syscall(__NR_io_submit, ctx, N, ptrs)) TH_LOG("submit: %s", strerror(errno));
	ASSERT_EQ(N, vfs_aio_reap(ctx, N, ev));
	for (i = 0; i < N; i++) {
		long long res = ev[i].res, data = ev[i].data;

		EXPECT_EQ(PIECE, res) TH_LOG("write %lld: %lld", data, res);
	}

	/* Read back, in another order. */
	memset(buf, 0, N * PIECE);
	for (i = 0; i < N; i++) {
		off = (off_t)(i * 5 % N) * PIECE;
		vfs_aio_prep(&cbs[i], fd, IOCB_CMD_PREAD, buf + off, PIECE, off, i);
	}
	ASSERT_EQ(N, syscall(__NR_io_submit, ctx, N, ptrs));
	ASSERT_EQ(N, vfs_aio_reap(ctx, N, ev));
	for (i = 0; i < N; i++) {
		long long res = ev[i].res, data = ev[i].data;

		EXPECT_EQ(PIECE, res) TH_LOG("read %lld: %lld", data, res);
	}
	EXPECT_EQ(-1, vfs_pattern_check(buf, N * PIECE, 0, 91));

	/* Across the end, at the end, into memory that cannot be pinned. */
	vfs_aio_prep(&cbs[0], fd, IOCB_CMD_PREAD, buf, PIECE, N * PIECE - 4096, 0);
	vfs_aio_prep(&cbs[1], fd, IOCB_CMD_PREAD, buf + PIECE, PIECE, N * PIECE, 1);
	vfs_aio_prep(&cbs[2], fd, IOCB_CMD_PREAD, none, PIECE, 0, 2);
	ASSERT_EQ(3, syscall(__NR_io_submit, ctx, 3, ptrs));
	ASSERT_EQ(3, vfs_aio_reap(ctx, 3, ev));
	for (i = 0; i < 3; i++) {
		long long res = ev[i].res, data = ev[i].data;
		long long want = data == 0 ? 4096 : data == 1 ? 0 : -EFAULT;

		EXPECT_EQ(want, res) TH_LOG("read %lld: %lld", data, res);
	}
	EXPECT_EQ(-1, vfs_pattern_check(buf, 4096, N * PIECE - 4096, 91));

	EXPECT_EQ(0, syscall(__NR_io_destroy, ctx));
	close(fd);
	ASSERT_EQ(N * PIECE, vfs_read_file(path, &all));
	EXPECT_EQ(-1, vfs_pattern_check(all, N * PIECE, 0, 91));
	free(all);
	munmap(none, PIECE);
	free(buf);
}

/*
 * A sparse file: two 4 KiB extents in 3 MiB. SEEK_DATA and SEEK_HOLE find
 * them exactly (the host file system keeps 4 KiB holes), holes read as
 * zeros, and the host allocated only the data.
 */
TEST_F(posix, sparse_seek_data_hole)
{
	const char *path = at(self->dir, "sparse");
	unsigned char buf[4096], *all = NULL;
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	vfs_pattern_fill(buf, sizeof(buf), 0, 63);
	ASSERT_EQ(4096, pwrite(fd, buf, 4096, 0));
	vfs_pattern_fill(buf, sizeof(buf), MiB, 63);
	ASSERT_EQ(4096, pwrite(fd, buf, 4096, MiB));
	ASSERT_EQ(0, ftruncate(fd, 3 * MiB));

	EXPECT_EQ(0, lseek(fd, 0, SEEK_DATA));
	EXPECT_EQ(4096, lseek(fd, 0, SEEK_HOLE));
	EXPECT_EQ(MiB, lseek(fd, 4096, SEEK_DATA));
	EXPECT_EQ(MiB, lseek(fd, 5000, SEEK_DATA));
	EXPECT_EQ(MiB + 4096, lseek(fd, MiB, SEEK_HOLE));
	EXPECT_EQ(MiB + 4096, lseek(fd, MiB + 4000, SEEK_HOLE));
	errno = 0;
	EXPECT_EQ(-1, lseek(fd, MiB + 4096, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno);
	errno = 0;
	EXPECT_EQ(-1, lseek(fd, 3 * MiB, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno);
	/* In a hole, SEEK_HOLE stays where it is; at EOF there is nothing. */
	EXPECT_EQ(2 * MiB, lseek(fd, 2 * MiB, SEEK_HOLE));
	errno = 0;
	EXPECT_EQ(-1, lseek(fd, 3 * MiB, SEEK_HOLE));
	EXPECT_EQ(ENXIO, errno);
	EXPECT_EQ(0, fsync(fd));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(3 * MiB, st.st_size);
	/*
	 * With --writeback the guest keeps the attributes it had before the
	 * data reached the host (no blocks) until they time out; the host
	 * check looks at the allocation there.
	 */
	if (!env_flag("VFS_WRITEBACK"))
		EXPECT_LE(2 * 4096 / 512, st.st_blocks);
	EXPECT_GT(64 * 1024 / 512, st.st_blocks) TH_LOG("%lld blocks: not sparse",
							 (long long)st.st_blocks);
	close(fd);

	n = vfs_read_file(path, &all);
	ASSERT_EQ(3 * MiB, n);
	EXPECT_EQ(-1, vfs_pattern_check(all, 4096, 0, 63));
	EXPECT_TRUE(all_zero(all + 4096, MiB - 4096));
	EXPECT_EQ(-1, vfs_pattern_check(all + MiB, 4096, MiB, 63));
	EXPECT_TRUE(all_zero(all + MiB + 4096, 2 * MiB - 4096));
	free(all);
}

/*
 * SEEK_DATA finds data the guest has written but may not have sent to the
 * host yet (with --writeback it sits in the page cache).
 */
TEST_F(posix, seek_data_sees_unflushed_writes)
{
	const char *path = at(self->dir, "sparse");
	unsigned char buf[4096];
	int fd;

	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 3 * MiB));
	vfs_pattern_fill(buf, sizeof(buf), 2 * MiB, 64);
	ASSERT_EQ(4096, pwrite(fd, buf, 4096, 2 * MiB));
	EXPECT_EQ(2 * MiB, lseek(fd, 0, SEEK_DATA));
	EXPECT_EQ(2 * MiB + 4096, lseek(fd, 2 * MiB, SEEK_HOLE));
	close(fd);
}

/*
 * Truncating a mapped file: pages wholly beyond the new EOF raise SIGBUS,
 * the tail of the EOF page reads as zeros, and growing the file again
 * brings zeroed pages back. With cache=never (direct I/O, no --allow-mmap)
 * shared mappings are refused with ENODEV; a private one shows the rest.
 */
TEST_F(posix, truncate_while_mmapped)
{
	const char *path = at(self->dir, "mapped");
	bool never = cache_mode() == CACHE_NEVER;
	unsigned char *p, v, back[4096];
	int fd, flags = MAP_SHARED;

	ASSERT_EQ(0, vfs_write_pattern(path, 12288, 70));
	fd = open(path, O_RDWR);
	ASSERT_LE(0, fd);
	if (never) {
		p = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		EXPECT_EQ(MAP_FAILED, p);
		EXPECT_EQ(ENODEV, errno);
		if (p != MAP_FAILED)
			munmap(p, 16384);
		flags = MAP_PRIVATE;
	}
	p = mmap(NULL, 16384, PROT_READ | PROT_WRITE, flags, fd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	EXPECT_EQ(-1, vfs_pattern_check(p, 12288, 0, 70));
	EXPECT_EQ(SIGBUS, probe_read(p + 12288, &v)) TH_LOG("page beyond EOF readable");

	ASSERT_EQ(0, ftruncate(fd, 5000));
	EXPECT_EQ(SIGBUS, probe_read(p + 8192, &v)) TH_LOG("truncated page still readable");
	EXPECT_EQ(0, probe_read(p + 4096, &v));
	EXPECT_EQ(-1, vfs_pattern_check(p, 5000, 0, 70));
	EXPECT_TRUE(all_zero(p + 5000, 8192 - 5000)) TH_LOG("EOF page tail not zeroed");

	ASSERT_EQ(0, ftruncate(fd, 16384));
	EXPECT_EQ(0, probe_read(p + 8192, &v));
	EXPECT_EQ(0, probe_read(p + 12288, &v));
	EXPECT_TRUE(all_zero(p + 5000, 16384 - 5000)) TH_LOG("grown pages not zero");
	if (!never) {
		vfs_pattern_fill(p + 12288, 4096, 12288, 71);
		EXPECT_EQ(0, msync(p, 16384, MS_SYNC));
		ASSERT_EQ(4096, pread(fd, back, 4096, 12288));
		EXPECT_EQ(-1, vfs_pattern_check(back, 4096, 12288, 71));
	}
	munmap(p, 16384);
	close(fd);
}

/*
 * A shared writable mapping, written and msync()ed: the bytes are on the
 * host before munmap (the host agent copies the file then, the guest reads
 * the copy) and after (posix.hostcheck). cache=never refuses the mapping.
 */
TEST_F(posix, mmap_shared_msync_visible_on_host)
{
	const char *path = at(self->dir, "shared.bin");
	unsigned char *p;
	int fd;

	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 40000));
	p = mmap(NULL, 40000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (cache_mode() == CACHE_NEVER) {
		EXPECT_EQ(MAP_FAILED, p);
		EXPECT_EQ(ENODEV, errno);
		close(fd);
		return;
	}
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	vfs_pattern_fill(p, 40000, 0, 100);
	ASSERT_EQ(0, msync(p, 40000, MS_SYNC)) TH_LOG("msync: %s", strerror(errno));
	ASSERT_EQ(0, host_agent(self->mnt, "snap-mapped")) TH_LOG("the host agent never answered");
	EXPECT_EQ(0, file_is_pattern(at(self->dir, "shared.bin.snap"), 40000, 100))
		TH_LOG("the host did not have the msync()ed bytes");
	munmap(p, 40000);
	close(fd);
}

/* rename() over an existing file replaces it; the directory cases. */
TEST_F(posix, rename_replaces_target)
{
	const char *a = at(self->dir, "a"), *b = at(self->dir, "b");
	struct stat sa, st;

	ASSERT_EQ(0, vfs_write_pattern(a, 2000, 64));
	ASSERT_EQ(0, vfs_write_pattern(b, 3000, 65));
	ASSERT_EQ(0, stat(a, &sa));
	ASSERT_EQ(0, rename(a, b)) TH_LOG("rename: %s", strerror(errno));
	EXPECT_EQ(-1, stat(a, &st));
	EXPECT_EQ(ENOENT, errno);
	ASSERT_EQ(0, stat(b, &st));
	EXPECT_EQ(sa.st_ino, st.st_ino);
	EXPECT_EQ(0, file_is_pattern(b, 2000, 64));
	/* Onto itself: nothing happens. */
	EXPECT_EQ(0, rename(b, b));
	EXPECT_EQ(0, file_is_pattern(b, 2000, 64));

	ASSERT_EQ(0, mkdir(at(self->dir, "d1"), 0755));
	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "d1/x"), 10, 66));
	ASSERT_EQ(0, mkdir(at(self->dir, "d2"), 0755));
	ASSERT_EQ(0, mkdir(at(self->dir, "d3"), 0755));
	ASSERT_EQ(0, mkdir(at(self->dir, "d3/y"), 0755));
	EXPECT_EQ(0, rename(at(self->dir, "d1"), at(self->dir, "d2")));
	EXPECT_EQ(0, file_is_pattern(at(self->dir, "d2/x"), 10, 66));
	EXPECT_EQ(-1, rename(at(self->dir, "d2"), at(self->dir, "d3")));
	EXPECT_EQ(ENOTEMPTY, errno);
	EXPECT_EQ(-1, rename(b, at(self->dir, "d3")));
	EXPECT_EQ(EISDIR, errno);
	EXPECT_EQ(-1, rename(at(self->dir, "d3"), b));
	EXPECT_EQ(ENOTDIR, errno);
}

/* RENAME_NOREPLACE fails with EEXIST and changes nothing; else it renames. */
TEST_F(posix, rename_noreplace)
{
	const char *a = at(self->dir, "a"), *b = at(self->dir, "b"), *c = at(self->dir, "c");

	ASSERT_EQ(0, vfs_write_pattern(a, 100, 66));
	ASSERT_EQ(0, vfs_write_pattern(b, 200, 67));
	EXPECT_EQ(-1, renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(0, file_is_pattern(a, 100, 66));
	EXPECT_EQ(0, file_is_pattern(b, 200, 67));
	EXPECT_EQ(0, renameat2(AT_FDCWD, a, AT_FDCWD, c, RENAME_NOREPLACE))
		TH_LOG("renameat2: %s", strerror(errno));
	EXPECT_EQ(-1, access(a, F_OK));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(0, file_is_pattern(c, 100, 66));
}

/* RENAME_EXCHANGE swaps two names (inodes, contents), file and directory too. */
TEST_F(posix, rename_exchange)
{
	const char *a = at(self->dir, "a"), *b = at(self->dir, "b"), *d = at(self->dir, "d");
	struct stat sa, sb, st;

	ASSERT_EQ(0, vfs_write_pattern(a, 100, 68));
	ASSERT_EQ(0, vfs_write_pattern(b, 200, 69));
	ASSERT_EQ(0, stat(a, &sa));
	ASSERT_EQ(0, stat(b, &sb));
	ASSERT_EQ(0, renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE))
		TH_LOG("renameat2: %s", strerror(errno));
	ASSERT_EQ(0, stat(a, &st));
	EXPECT_EQ(sb.st_ino, st.st_ino);
	ASSERT_EQ(0, stat(b, &st));
	EXPECT_EQ(sa.st_ino, st.st_ino);
	EXPECT_EQ(0, file_is_pattern(a, 200, 69));
	EXPECT_EQ(0, file_is_pattern(b, 100, 68));

	EXPECT_EQ(-1, renameat2(AT_FDCWD, a, AT_FDCWD, at(self->dir, "none"), RENAME_EXCHANGE));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE | RENAME_NOREPLACE));
	EXPECT_EQ(EINVAL, errno);

	ASSERT_EQ(0, mkdir(d, 0755));
	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "d/inner"), 10, 72));
	ASSERT_EQ(0, renameat2(AT_FDCWD, a, AT_FDCWD, d, RENAME_EXCHANGE));
	ASSERT_EQ(0, stat(a, &st));
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	EXPECT_EQ(0, file_is_pattern(at(self->dir, "a/inner"), 10, 72));
	EXPECT_EQ(0, file_is_pattern(d, 200, 69));
}

/*
 * RENAME_WHITEOUT (overlayfs' primitive) moves the file and leaves a
 * whiteout, a character device 0:0, at the old name.
 */
TEST_F(posix, rename_whiteout)
{
	const char *a = at(self->dir, "a"), *b = at(self->dir, "b");
	struct stat st;
	int r;

	ASSERT_EQ(0, vfs_write_pattern(a, 100, 73));
	r = renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_WHITEOUT);
	TH_LOG("RENAME_WHITEOUT: %d (%s)", r, r ? strerror(errno) : "ok");
	ASSERT_EQ(0, r);
	EXPECT_EQ(0, file_is_pattern(b, 100, 73));
	ASSERT_EQ(0, lstat(a, &st)) TH_LOG("no whiteout: %s", strerror(errno));
	EXPECT_TRUE(S_ISCHR(st.st_mode)) TH_LOG("mode %o", st.st_mode);
	EXPECT_EQ(makedev(0, 0), st.st_rdev);
}

/*
 * O_TMPFILE (FUSE_TMPFILE): an unnamed file in the directory, written and
 * read through its descriptor, with no link and no name in the directory;
 * one opened O_EXCL can never be given a name. Where the host lacks
 * FUSE_TMPFILE (virtiofsd 1.14 answers ENOSYS) it fails with EOPNOTSUPP, as
 * on a local file system without tmpfile support: the test is skipped.
 */
TEST_F(posix, o_tmpfile)
{
	unsigned char buf[5000], back[5000];
	char proc[64];
	struct stat st;
	int fd, fd2;

	fd = open(self->dir, O_TMPFILE | O_RDWR, 0640);
	if (fd < 0 && errno == EOPNOTSUPP)
		SKIP(return, "O_TMPFILE: EOPNOTSUPP (no FUSE_TMPFILE on this host)");
	ASSERT_LE(0, fd) TH_LOG("O_TMPFILE: %s", strerror(errno));
	vfs_pattern_fill(buf, sizeof(buf), 0, 170);
	ASSERT_EQ(sizeof(buf), pwrite(fd, buf, sizeof(buf), 0));
	ASSERT_EQ(sizeof(back), pread(fd, back, sizeof(back), 0));
	EXPECT_EQ(0, memcmp(buf, back, sizeof(buf)));
	ASSERT_EQ(0, fsync(fd));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(0, st.st_nlink);
	EXPECT_EQ(0640, st.st_mode & 07777);
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(sizeof(buf), st.st_size);
	EXPECT_EQ(0, count_entries(self->dir)) TH_LOG("the unnamed file has a name");

	/* O_EXCL: never linkable; gone with its descriptor. */
	fd2 = open(self->dir, O_TMPFILE | O_WRONLY | O_EXCL, 0600);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(10, write(fd2, "temporary\n", 10));
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd2);
	EXPECT_EQ(-1, linkat(AT_FDCWD, proc, AT_FDCWD, at(self->dir, "never"), AT_SYMLINK_FOLLOW));
	EXPECT_EQ(ENOENT, errno);
	close(fd2);
	close(fd);
	EXPECT_EQ(0, count_entries(self->dir));
}

/*
 * An O_TMPFILE file given a name with linkat() through /proc/self/fd: the
 * name holds what was written, and the descriptor sees its one link.
 * Skipped where the host lacks FUSE_TMPFILE, as o_tmpfile; not run on the
 * DAX host's --tmpfile, whose files the host kernel will not link: no host
 * here runs it to the end.
 */
TEST_F(posix, o_tmpfile_linkat)
{
	unsigned char buf[5000];
	char proc[64];
	struct stat st;
	int fd;

	fd = open(self->dir, O_TMPFILE | O_RDWR, 0640);
	if (fd < 0 && errno == EOPNOTSUPP)
		SKIP(return, "O_TMPFILE: EOPNOTSUPP (no FUSE_TMPFILE on this host)");
	ASSERT_LE(0, fd) TH_LOG("O_TMPFILE: %s", strerror(errno));
	vfs_pattern_fill(buf, sizeof(buf), 0, 170);
	ASSERT_EQ(sizeof(buf), pwrite(fd, buf, sizeof(buf), 0));
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ASSERT_EQ(0, linkat(AT_FDCWD, proc, AT_FDCWD, at(self->dir, "named"), AT_SYMLINK_FOLLOW))
		TH_LOG("linkat: %s", strerror(errno));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(1, st.st_nlink);
	close(fd);
	EXPECT_EQ(0, file_is_pattern(at(self->dir, "named"), sizeof(buf), 170));
}

/* Hard links share the inode; st_nlink counts them, on every name and fd. */
TEST_F(posix, hard_links_and_nlink)
{
	const char *a = at(self->dir, "a"), *b = at(self->dir, "b");
	unsigned char buf[10];
	struct stat st, sa;
	char name[16];
	int fd, i;

	ASSERT_EQ(0, vfs_write_pattern(a, 1000, 74));
	ASSERT_EQ(0, link(a, b)) TH_LOG("link: %s", strerror(errno));
	ASSERT_EQ(0, stat(a, &sa));
	ASSERT_EQ(0, stat(b, &st));
	EXPECT_EQ(sa.st_ino, st.st_ino);
	EXPECT_EQ(2, sa.st_nlink);
	EXPECT_EQ(2, st.st_nlink);
	fd = open(a, O_RDWR);
	ASSERT_LE(0, fd);
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		ASSERT_EQ(0, link(a, at(self->dir, name)));
	}
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(7, st.st_nlink);

	/* A write through one name is read through another. */
	vfs_pattern_fill(buf, sizeof(buf), 0, 75);
	ASSERT_EQ(sizeof(buf), pwrite(fd, buf, sizeof(buf), 0));
	close(fd);
	fd = open(at(self->dir, "l3"), O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(sizeof(buf), pread(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(-1, vfs_pattern_check(buf, sizeof(buf), 0, 75));
	close(fd);

	ASSERT_EQ(0, unlink(a));
	ASSERT_EQ(0, stat(b, &st));
	EXPECT_EQ(6, st.st_nlink);
	EXPECT_EQ(-1, link(b, at(self->dir, "l0")));
	EXPECT_EQ(EEXIST, errno);
	ASSERT_EQ(0, mkdir(at(self->dir, "d"), 0755));
	EXPECT_EQ(-1, link(at(self->dir, "d"), at(self->dir, "dlink")));
	EXPECT_EQ(EPERM, errno);
	for (i = 1; i < 5; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		ASSERT_EQ(0, unlink(at(self->dir, name)));
	}
	/* Left for the host check: b and l0, one inode with two links. */
	ASSERT_EQ(0, stat(at(self->dir, "l0"), &st));
	EXPECT_EQ(2, st.st_nlink);
}

/* Symbolic links: readlink() gives the exact target; lstat, stat, O_NOFOLLOW. */
TEST_F(posix, symlinks_and_readlink)
{
	const char *l = at(self->dir, "l"), *target = "target/of/link";
	char buf[4200], long_target[4096];
	struct stat st;
	int fd;

	ASSERT_EQ(0, symlink(target, l)) TH_LOG("symlink: %s", strerror(errno));
	ASSERT_EQ(0, lstat(l, &st));
	EXPECT_TRUE(S_ISLNK(st.st_mode));
	EXPECT_EQ(strlen(target), st.st_size);
	EXPECT_EQ(strlen(target), readlink(l, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, target, strlen(target)));
	EXPECT_EQ(5, readlink(l, buf, 5));
	EXPECT_EQ(0, memcmp(buf, "targe", 5));
	EXPECT_EQ(-1, stat(l, &st));
	EXPECT_EQ(ENOENT, errno);

	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "t"), 300, 76));
	ASSERT_EQ(0, symlink("t", at(self->dir, "lt")));
	ASSERT_EQ(0, stat(at(self->dir, "lt"), &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(0, file_is_pattern(at(self->dir, "lt"), 300, 76));
	fd = open(at(self->dir, "lt"), O_RDONLY | O_NOFOLLOW);
	EXPECT_EQ(-1, fd);
	EXPECT_EQ(ELOOP, errno);

	ASSERT_EQ(0, mkdir(at(self->dir, "sub"), 0755));
	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "sub/x"), 10, 77));
	ASSERT_EQ(0, symlink("sub", at(self->dir, "ld")));
	EXPECT_EQ(0, file_is_pattern(at(self->dir, "ld/x"), 10, 77));

	/* The longest target: PATH_MAX - 1 bytes. */
	memset(long_target, 'x', sizeof(long_target) - 1);
	long_target[sizeof(long_target) - 1] = 0;
	ASSERT_EQ(0, symlink(long_target, at(self->dir, "long")))
		TH_LOG("symlink of 4095 bytes: %s", strerror(errno));
	EXPECT_EQ(4095, readlink(at(self->dir, "long"), buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, long_target, 4095));
}

/* mkfifo and mknod (as root): the nodes work as the guest's own devices. */
TEST_F(posix, mkfifo_and_mknod)
{
	const char *fifo = at(self->dir, "fifo"), *null = at(self->dir, "null");
	const char *zero = at(self->dir, "zero");
	unsigned char buf[5000], back[5000];
	struct stat st;
	ssize_t n, done = 0;
	pid_t pid;
	int fd;

	ASSERT_EQ(0, mkfifo(fifo, 0640)) TH_LOG("mkfifo: %s", strerror(errno));
	ASSERT_EQ(0, stat(fifo, &st));
	EXPECT_TRUE(S_ISFIFO(st.st_mode));
	EXPECT_EQ(0640, st.st_mode & 07777);
	vfs_pattern_fill(buf, sizeof(buf), 0, 78);
	pid = fork();
	if (!pid) {
		fd = open(fifo, O_WRONLY);
		_exit(fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf));
	}
	fd = open(fifo, O_RDONLY);
	ASSERT_LE(0, fd);
	while (done < (ssize_t)sizeof(back) &&
	       (n = read(fd, back + done, sizeof(back) - done)) > 0)
		done += n;
	EXPECT_EQ(0, read(fd, back, 1));
	close(fd);
	EXPECT_EQ(0, reap(pid));
	EXPECT_EQ(sizeof(back), done);
	EXPECT_EQ(0, memcmp(buf, back, sizeof(buf)));

	ASSERT_EQ(0, mknod(null, S_IFCHR | 0600, makedev(1, 3))) TH_LOG("mknod: %s", strerror(errno));
	ASSERT_EQ(0, stat(null, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(makedev(1, 3), st.st_rdev);
	fd = open(null, O_RDWR);
	ASSERT_LE(0, fd) TH_LOG("open the device node: %s", strerror(errno));
	EXPECT_EQ(10, write(fd, buf, 10));
	EXPECT_EQ(0, read(fd, back, 10));
	close(fd);

	ASSERT_EQ(0, mknod(zero, S_IFCHR | 0644, makedev(1, 5)));
	fd = open(zero, O_RDONLY);
	ASSERT_LE(0, fd);
	memset(back, 0xaa, 100);
	EXPECT_EQ(100, read(fd, back, 100));
	EXPECT_TRUE(all_zero(back, 100));
	close(fd);

	ASSERT_EQ(0, mknod(at(self->dir, "reg"), S_IFREG | 0644, 0));
	ASSERT_EQ(0, stat(at(self->dir, "reg"), &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(0, st.st_size);
}

static int user_mknod_refused(const char *dir)
{
	if (!mknod(at(dir, "userdev"), S_IFCHR | 0600, makedev(1, 3)) || errno != EPERM)
		return child_fail(__LINE__, "mknod of a device as the user");
	if (mkfifo(at(dir, "userfifo"), 0600))
		return child_fail(__LINE__, "mkfifo as the user");
	return 0;
}

/* An unprivileged user may make a fifo but no device node. */
TEST_F(posix, mknod_device_needs_root)
{
	struct stat st;

	ASSERT_EQ(0, chmod(self->dir, 0777));
	EXPECT_EQ(0, as_user(user_mknod_refused, self->dir));
	ASSERT_EQ(0, stat(at(self->dir, "userfifo"), &st));
	EXPECT_EQ((uid_t)1000, st.st_uid);
	EXPECT_EQ(-1, stat(at(self->dir, "userdev"), &st));
}

/* Whether @list (listxattr's) holds @name exactly @times times. */
static bool listed(const char *list, ssize_t len, const char *name, int times)
{
	const char *p;
	int seen = 0;

	for (p = list; p < list + len; p += strlen(p) + 1)
		seen += !strcmp(p, name);
	return seen == times;
}

/*
 * user.* extended attributes: set, get (sizes, ERANGE), list, create and
 * replace flags, binary and empty values, remove. Without --xattr C answers
 * EOPNOTSUPP to every call (virtiofsd says ENOSYS).
 */
TEST_F(posix, xattr_user_namespace)
{
	const char *f = at(self->dir, "f"), *l = at(self->dir, "l");
	unsigned char big[4000], back[4000];
	char list[1024], buf[64];
	ssize_t n;

	ASSERT_EQ(0, vfs_write_pattern(f, 10, 79));
	ASSERT_EQ(0, symlink("f", l));
	if (!env_flag("VFS_XATTR")) {
		EXPECT_EQ(-1, setxattr(f, "user.a", "v", 1, 0));
		EXPECT_EQ(EOPNOTSUPP, errno);
		EXPECT_EQ(-1, getxattr(f, "user.a", buf, sizeof(buf)));
		EXPECT_EQ(EOPNOTSUPP, errno);
		EXPECT_EQ(-1, listxattr(f, list, sizeof(list)));
		EXPECT_EQ(EOPNOTSUPP, errno);
		EXPECT_EQ(-1, removexattr(f, "user.a"));
		EXPECT_EQ(EOPNOTSUPP, errno);
		return;
	}
	ASSERT_EQ(0, setxattr(f, "user.a", "value-a", 7, 0)) TH_LOG("setxattr: %s", strerror(errno));
	EXPECT_EQ(7, getxattr(f, "user.a", NULL, 0));
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(7, getxattr(f, "user.a", buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "value-a", 8));
	EXPECT_EQ(-1, getxattr(f, "user.a", buf, 3));
	EXPECT_EQ(ERANGE, errno);
	EXPECT_EQ(-1, setxattr(f, "user.a", "x", 1, XATTR_CREATE));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(-1, setxattr(f, "user.missing", "x", 1, XATTR_REPLACE));
	EXPECT_EQ(ENODATA, errno);
	EXPECT_EQ(0, setxattr(f, "user.a", "new-value", 9, XATTR_REPLACE));
	EXPECT_EQ(9, getxattr(f, "user.a", buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "new-value", 9));

	vfs_pattern_fill(big, sizeof(big), 0, 80);
	EXPECT_EQ(0, setxattr(f, "user.big", big, sizeof(big), 0));
	EXPECT_EQ(sizeof(back), getxattr(f, "user.big", back, sizeof(back)));
	EXPECT_EQ(0, memcmp(big, back, sizeof(big)));
	EXPECT_EQ(0, setxattr(f, "user.empty", "", 0, 0));
	EXPECT_EQ(0, getxattr(f, "user.empty", buf, sizeof(buf)));
	EXPECT_EQ(0, setxattr(f, "user.kept", "kept-value", 10, 0));

	n = listxattr(f, NULL, 0);
	ASSERT_LT(0, n);
	ASSERT_GE((ssize_t)sizeof(list), n);
	EXPECT_EQ(n, listxattr(f, list, sizeof(list)));
	EXPECT_TRUE(listed(list, n, "user.a", 1));
	EXPECT_TRUE(listed(list, n, "user.big", 1));
	EXPECT_TRUE(listed(list, n, "user.empty", 1));
	EXPECT_TRUE(listed(list, n, "user.kept", 1));
	EXPECT_EQ(-1, listxattr(f, list, 2));
	EXPECT_EQ(ERANGE, errno);

	EXPECT_EQ(0, removexattr(f, "user.a"));
	EXPECT_EQ(-1, getxattr(f, "user.a", buf, sizeof(buf)));
	EXPECT_EQ(ENODATA, errno);
	EXPECT_EQ(-1, removexattr(f, "user.a"));
	EXPECT_EQ(ENODATA, errno);
	n = listxattr(f, list, sizeof(list));
	EXPECT_TRUE(listed(list, n, "user.a", 0));
	EXPECT_TRUE(listed(list, n, "user.kept", 1));

	EXPECT_EQ(0, setxattr(self->dir, "user.dir", "on-a-dir", 8, 0));
	EXPECT_EQ(8, getxattr(self->dir, "user.dir", buf, sizeof(buf)));
	/* user.* is for files and directories only (xattr(7)). */
	EXPECT_EQ(-1, lsetxattr(l, "user.a", "v", 1, 0));
	EXPECT_EQ(EPERM, errno);
}

/* The on-disk form of a POSIX ACL (include/uapi/linux/posix_acl_xattr.h). */
struct acl_entry {
	uint16_t tag;
	uint16_t perm;
	uint32_t id;
};

struct acl_blob {
	uint32_t version;
	struct acl_entry e[5];
};

#define ACL_USER_OBJ 0x01
#define ACL_USER 0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_MASK 0x10
#define ACL_OTHER 0x20
#define ACL_NO_ID 0xffffffffu

static struct acl_blob acl_with_user(uint16_t owner, uint16_t user, uint16_t group,
				     uint16_t mask, uint16_t other)
{
	struct acl_blob b = {
		.version = 2,
		.e = {
			{ ACL_USER_OBJ, owner, ACL_NO_ID },
			{ ACL_USER, user, 1000 },
			{ ACL_GROUP_OBJ, group, ACL_NO_ID },
			{ ACL_MASK, mask, ACL_NO_ID },
			{ ACL_OTHER, other, ACL_NO_ID },
		},
	};

	return b;
}

static int user_reads_acl_file(const char *dir)
{
	int fd = open(at(dir, "f"), O_RDONLY);

	if (fd < 0)
		return child_fail(__LINE__, "read access the ACL grants");
	close(fd);
	if (open(at(dir, "f"), O_WRONLY) >= 0 || errno != EACCES)
		return child_fail(__LINE__, "write access the ACL does not grant");
	return 0;
}

static int user_denied_acl_file(const char *dir)
{
	if (open(at(dir, "f"), O_RDONLY) >= 0 || errno != EACCES)
		return child_fail(__LINE__, "read access without the ACL");
	return 0;
}

static int user_rw_inherited(const char *dir)
{
	int fd = open(at(dir, "d/new"), O_RDWR);

	if (fd < 0)
		return child_fail(__LINE__, "access the inherited ACL grants");
	close(fd);
	return 0;
}

static int user_sets_acl(const char *dir)
{
	struct acl_blob acl = acl_with_user(7, 4, 7, 7, 0);

	if (setxattr(at(dir, "sgid"), "system.posix_acl_access", &acl, sizeof(acl), 0))
		return child_fail(__LINE__, "owner sets an ACL");
	return 0;
}

/*
 * POSIX ACLs (with --posix-acl): an access ACL grants the unprivileged user
 * what the mode does not, the mode's group bits show the mask, a default
 * ACL is inherited (and the umask then ignored). Without it setting one
 * fails with EOPNOTSUPP.
 */
TEST_F(posix, posix_acl)
{
	const char *f = at(self->dir, "f"), *d = at(self->dir, "d");
	struct acl_blob acl, back;
	struct stat st;
	ssize_t n;
	int fd;

	ASSERT_EQ(0, vfs_write_pattern(f, 10, 81));
	ASSERT_EQ(0, chmod(f, 0600));
	acl = acl_with_user(6, 4, 0, 4, 0);
	if (!env_flag("VFS_ACL")) {
		EXPECT_EQ(-1, setxattr(f, "system.posix_acl_access", &acl, sizeof(acl), 0));
		EXPECT_EQ(EOPNOTSUPP, errno);
		/*
		 * Reading one gives ENODATA: C asks the host (for daemons that
		 * keep ACLs without FUSE_POSIX_ACL) and takes its "no xattrs"
		 * for "no ACL" (fs/fuse/acl.c, __fuse_get_acl()).
		 */
		EXPECT_EQ(-1, getxattr(f, "system.posix_acl_access", &back, sizeof(back)));
		EXPECT_EQ(ENODATA, errno);
		return;
	}
	EXPECT_EQ(0, as_user(user_denied_acl_file, self->dir));
	ASSERT_EQ(0, setxattr(f, "system.posix_acl_access", &acl, sizeof(acl), 0))
		TH_LOG("set ACL: %s", strerror(errno));
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ(0640, st.st_mode & 07777);
	n = getxattr(f, "system.posix_acl_access", &back, sizeof(back));
	EXPECT_EQ(sizeof(back), n);
	EXPECT_EQ(0, memcmp(&acl, &back, sizeof(acl)));
	EXPECT_EQ(0, as_user(user_reads_acl_file, self->dir));
	EXPECT_EQ(0, removexattr(f, "system.posix_acl_access"));
	EXPECT_EQ(0, as_user(user_denied_acl_file, self->dir));

	/* Inherited: the new file gets the default ACL, its mode ignores the umask. */
	ASSERT_EQ(0, mkdir(d, 0755));
	acl = acl_with_user(7, 7, 5, 7, 0);
	ASSERT_EQ(0, setxattr(d, "system.posix_acl_default", &acl, sizeof(acl), 0))
		TH_LOG("set default ACL: %s", strerror(errno));
	fd = open(at(self->dir, "d/new"), O_CREAT | O_WRONLY, 0660);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, stat(at(self->dir, "d/new"), &st));
	EXPECT_EQ(0660, st.st_mode & 07777) TH_LOG("mode %o", st.st_mode & 07777);
	n = getxattr(at(self->dir, "d/new"), "system.posix_acl_access", &back, sizeof(back));
	ASSERT_EQ(sizeof(back), n);
	EXPECT_EQ(ACL_USER, back.e[1].tag);
	EXPECT_EQ(1000, back.e[1].id);
	EXPECT_EQ(6, back.e[1].perm & back.e[3].perm);
	EXPECT_EQ(0, as_user(user_rw_inherited, self->dir));

	/* Without a default ACL the umask applies (022: 0666 gives 0644). */
	fd = open(at(self->dir, "plain"), O_CREAT | O_WRONLY, 0666);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, stat(at(self->dir, "plain"), &st));
	EXPECT_EQ(0644, st.st_mode & 07777);

	/*
	 * An owner outside the file's group who sets an ACL loses the
	 * set-group-ID bit (the host is told: FUSE_SETXATTR_ACL_KILL_SGID).
	 */
	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "sgid"), 1, 82));
	ASSERT_EQ(0, chown(at(self->dir, "sgid"), getenv("VFS_UID") ? atoi(getenv("VFS_UID")) : 1000, 0));
	ASSERT_EQ(0, chmod(at(self->dir, "sgid"), 02770));
	EXPECT_EQ(0, as_user(user_sets_acl, self->dir));
	ASSERT_EQ(0, stat(at(self->dir, "sgid"), &st));
	EXPECT_EQ(0, st.st_mode & S_ISGID) TH_LOG("mode %o", st.st_mode & 07777);
}

static int user_access_checks(const char *dir)
{
	char buf[16];
	struct stat st;
	int fd;

	if (open(at(dir, "f600"), O_RDONLY) >= 0 || errno != EACCES)
		return child_fail(__LINE__, "open of a 0600 root file");
	fd = open(at(dir, "f644"), O_RDONLY);
	if (fd < 0)
		return child_fail(__LINE__, "open of a 0644 root file");
	if (read(fd, buf, sizeof(buf)) != 8 || memcmp(buf, "readable", 8))
		return child_fail(__LINE__, "read of a 0644 root file");
	close(fd);
	if (open(at(dir, "f644"), O_WRONLY) >= 0 || errno != EACCES)
		return child_fail(__LINE__, "open for write of a 0644 root file");
	if (!truncate(at(dir, "f644"), 0) || errno != EACCES)
		return child_fail(__LINE__, "truncate of a 0644 root file");
	if (!unlink(at(dir, "f644")) || errno != EACCES)
		return child_fail(__LINE__, "unlink in a 0755 root directory");
	if (access(at(dir, "f644"), R_OK) || !access(at(dir, "f644"), W_OK) || errno != EACCES)
		return child_fail(__LINE__, "access()");
	if (!stat(at(dir, "priv/inside"), &st) || errno != EACCES)
		return child_fail(__LINE__, "stat in a 0700 root directory");
	if (opendir(at(dir, "priv")) || errno != EACCES)
		return child_fail(__LINE__, "opendir of a 0700 root directory");
	fd = open(at(dir, "pub/mine"), O_CREAT | O_WRONLY, 0666);
	if (fd < 0)
		return child_fail(__LINE__, "create in a 0777 directory");
	if (fstat(fd, &st) || st.st_uid != 1000 || st.st_gid != 1000 || (st.st_mode & 07777) != 0644)
		return child_fail(__LINE__, "owner and mode of the user's file");
	close(fd);
	if (chmod(at(dir, "pub/mine"), 0600))
		return child_fail(__LINE__, "chmod of the user's own file");
	if (!chmod(at(dir, "f644"), 0666) || errno != EPERM)
		return child_fail(__LINE__, "chmod of a root file");
	if (!chown(at(dir, "pub/mine"), 0, -1) || errno != EPERM)
		return child_fail(__LINE__, "chown to root");
	if (mkdir(at(dir, "pub/mydir"), 0750))
		return child_fail(__LINE__, "mkdir in a 0777 directory");
	return 0;
}

/*
 * The unprivileged user against root's files: read and write permission,
 * directory search, creation (the new file is the user's), chmod and chown.
 */
TEST_F(posix, permissions_as_user)
{
	struct stat st;
	int fd;

	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "f600"), 10, 82));
	ASSERT_EQ(0, chmod(at(self->dir, "f600"), 0600));
	fd = open(at(self->dir, "f644"), O_CREAT | O_WRONLY | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(8, write(fd, "readable", 8));
	close(fd);
	ASSERT_EQ(0, mkdir(at(self->dir, "priv"), 0700));
	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "priv/inside"), 10, 83));
	ASSERT_EQ(0, mkdir(at(self->dir, "pub"), 0777));
	ASSERT_EQ(0, chmod(at(self->dir, "pub"), 0777));

	EXPECT_EQ(0, as_user(user_access_checks, self->dir));

	ASSERT_EQ(0, stat(at(self->dir, "pub/mine"), &st));
	EXPECT_EQ((uid_t)1000, st.st_uid);
	EXPECT_EQ((gid_t)1000, st.st_gid);
	EXPECT_EQ(0600, st.st_mode & 07777);
	ASSERT_EQ(0, stat(at(self->dir, "f644"), &st));
	EXPECT_EQ(0644, st.st_mode & 07777);
	EXPECT_EQ(8, st.st_size);
	ASSERT_EQ(0, stat(at(self->dir, "pub/mydir"), &st));
	EXPECT_EQ((uid_t)1000, st.st_uid);
	EXPECT_EQ(0750, st.st_mode & 07777);
}

/*
 * Root changes owners and modes: chown, chmod with set-id bits (chown of a
 * regular file clears them), lchown of a symlink, utimensat.
 */
TEST_F(posix, ownership_as_root)
{
	const char *f = at(self->dir, "f"), *l = at(self->dir, "l");
	struct timespec ts[2] = { { 1234567890, 123456789 }, { 1300000000, 987654321 } };
	struct stat st;

	ASSERT_EQ(0, vfs_write_pattern(f, 10, 84));
	ASSERT_EQ(0, chown(f, 1000, 1000)) TH_LOG("chown: %s", strerror(errno));
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ((uid_t)1000, st.st_uid);
	EXPECT_EQ((gid_t)1000, st.st_gid);
	ASSERT_EQ(0, chmod(f, 06755));
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ(06755, st.st_mode & 07777);
	ASSERT_EQ(0, chown(f, 0, 0));
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ((uid_t)0, st.st_uid);
	EXPECT_EQ(0755, st.st_mode & 07777) TH_LOG("mode after chown: %o", st.st_mode & 07777);
	ASSERT_EQ(0, chown(f, 1000, 1000));

	ASSERT_EQ(0, symlink("f", l));
	ASSERT_EQ(0, lchown(l, 1000, 0));
	ASSERT_EQ(0, lstat(l, &st));
	EXPECT_EQ((uid_t)1000, st.st_uid);
	EXPECT_EQ((gid_t)0, st.st_gid);

	ASSERT_EQ(0, utimensat(AT_FDCWD, f, ts, 0));
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ(ts[0].tv_sec, st.st_atim.tv_sec);
	EXPECT_EQ(ts[0].tv_nsec, st.st_atim.tv_nsec);
	EXPECT_EQ(ts[1].tv_sec, st.st_mtim.tv_sec);
	EXPECT_EQ(ts[1].tv_nsec, st.st_mtim.tv_nsec);
}

static int user_in_sticky_dir(const char *dir)
{
	int fd;

	if (!unlink(at(dir, "s/rootfile")) || errno != EPERM)
		return child_fail(__LINE__, "unlink of root's file in a sticky directory");
	if (!rename(at(dir, "s/rootfile"), at(dir, "s/moved")) || errno != EPERM)
		return child_fail(__LINE__, "rename of root's file in a sticky directory");
	fd = open(at(dir, "s/userfile"), O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		return child_fail(__LINE__, "create in a sticky directory");
	close(fd);
	if (unlink(at(dir, "s/userfile")))
		return child_fail(__LINE__, "unlink of the user's own file");
	fd = open(at(dir, "g/userfile"), O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		return child_fail(__LINE__, "create in a setgid directory");
	close(fd);
	return 0;
}

/*
 * A sticky directory protects other users' files; a setgid directory gives
 * new entries its group (and new subdirectories its setgid bit).
 */
TEST_F(posix, sticky_and_setgid_directories)
{
	struct stat st;

	ASSERT_EQ(0, mkdir(at(self->dir, "s"), 0777));
	ASSERT_EQ(0, chmod(at(self->dir, "s"), 01777));
	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "s/rootfile"), 10, 85));
	ASSERT_EQ(0, chmod(at(self->dir, "s/rootfile"), 0666));
	ASSERT_EQ(0, mkdir(at(self->dir, "g"), 0775));
	ASSERT_EQ(0, chown(at(self->dir, "g"), 0, 1000));
	ASSERT_EQ(0, chmod(at(self->dir, "g"), 02777));
	ASSERT_EQ(0, stat(at(self->dir, "g"), &st));
	EXPECT_EQ(02777, st.st_mode & 07777);

	EXPECT_EQ(0, as_user(user_in_sticky_dir, self->dir));
	EXPECT_EQ(0, stat(at(self->dir, "s/rootfile"), &st));

	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "g/rootfile"), 10, 86));
	ASSERT_EQ(0, stat(at(self->dir, "g/rootfile"), &st));
	EXPECT_EQ((gid_t)1000, st.st_gid);
	ASSERT_EQ(0, stat(at(self->dir, "g/userfile"), &st));
	EXPECT_EQ((gid_t)1000, st.st_gid);
	ASSERT_EQ(0, mkdir(at(self->dir, "g/sub"), 0755));
	ASSERT_EQ(0, stat(at(self->dir, "g/sub"), &st));
	EXPECT_EQ((gid_t)1000, st.st_gid);
	EXPECT_TRUE(st.st_mode & S_ISGID);
}

static int user_writes_setid_file(const char *dir)
{
	int fd = open(at(dir, "suid"), O_WRONLY);

	if (fd < 0)
		return child_fail(__LINE__, "open of a 06777 file");
	if (write(fd, "x", 1) != 1)
		return child_fail(__LINE__, "write to a 06777 file");
	close(fd);
	return 0;
}

/*
 * A write by another user clears the set-user-ID and set-group-ID bits: C
 * does it itself on its cached write path (file_remove_privs()). With
 * cache=never (direct I/O) it leaves it to the host instead, flagging the
 * WRITE with FUSE_WRITE_KILL_SUIDGID, and virtiofsd (without
 * --killpriv-v2) ignores the flag and writes as root: the bits stay.
 */
TEST_F(posix, write_by_user_clears_setid)
{
	int want = cache_mode() == CACHE_NEVER ? 06777 : 0777;
	unsigned char *buf = NULL;
	struct stat st;
	ssize_t n;

	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "suid"), 10, 87));
	ASSERT_EQ(0, chmod(at(self->dir, "suid"), 06777));
	EXPECT_EQ(0, as_user(user_writes_setid_file, self->dir));
	ASSERT_EQ(0, stat(at(self->dir, "suid"), &st));
	EXPECT_EQ(want, st.st_mode & 07777) TH_LOG("mode after the write: %o", st.st_mode & 07777);
	n = vfs_read_file(at(self->dir, "suid"), &buf);
	ASSERT_EQ(10, n);
	EXPECT_EQ('x', buf[0]);
	EXPECT_EQ(-1, vfs_pattern_check(buf + 1, 9, 1, 87));
	free(buf);
}

/* statx(): the basic fields, and that they agree with stat(). */
TEST_F(posix, statx_fields)
{
	const char *f = at(self->dir, "f"), *d = at(self->dir, "d");
	struct statx stx;
	struct stat st;
	char name[16];
	int fd, i;

	ASSERT_EQ(0, vfs_write_pattern(f, 10000, 88));
	ASSERT_EQ(0, chmod(f, 0640));
	fd = open(f, O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fsync(fd));
	close(fd);
	ASSERT_EQ(0, statx(AT_FDCWD, f, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx))
		TH_LOG("statx: %s", strerror(errno));
	ASSERT_EQ(0, stat(f, &st));
	EXPECT_EQ(STATX_BASIC_STATS, stx.stx_mask & STATX_BASIC_STATS)
		TH_LOG("stx_mask %#x", stx.stx_mask);
	EXPECT_EQ(st.st_ino, stx.stx_ino);
	EXPECT_EQ(10000, stx.stx_size);
	EXPECT_EQ(S_IFREG | 0640, stx.stx_mode);
	EXPECT_EQ(1, stx.stx_nlink);
	EXPECT_EQ(0, stx.stx_uid);
	EXPECT_EQ(0, stx.stx_gid);
	EXPECT_EQ(st.st_blocks, stx.stx_blocks);
	EXPECT_LE(10000 / 512 + 1, stx.stx_blocks);
	EXPECT_LT(0, stx.stx_blksize);
	EXPECT_EQ(st.st_mtim.tv_sec, stx.stx_mtime.tv_sec);
	EXPECT_EQ(st.st_mtim.tv_nsec, stx.stx_mtime.tv_nsec);
	EXPECT_EQ(major(st.st_dev), stx.stx_dev_major);
	EXPECT_EQ(minor(st.st_dev), stx.stx_dev_minor);

	ASSERT_EQ(0, link(f, at(self->dir, "f2")));
	ASSERT_EQ(0, statx(AT_FDCWD, f, 0, STATX_NLINK, &stx));
	EXPECT_EQ(2, stx.stx_nlink);

	ASSERT_EQ(0, mkdir(d, 0755));
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "d/s%d", i);
		ASSERT_EQ(0, mkdir(at(self->dir, name), 0755));
	}
	ASSERT_EQ(0, statx(AT_FDCWD, d, 0, STATX_BASIC_STATS, &stx));
	EXPECT_EQ(S_IFDIR | 0755, stx.stx_mode);
	EXPECT_EQ(5, stx.stx_nlink);

	ASSERT_EQ(0, symlink("f", at(self->dir, "l")));
	ASSERT_EQ(0, statx(AT_FDCWD, at(self->dir, "l"), AT_SYMLINK_NOFOLLOW,
			   STATX_BASIC_STATS, &stx));
	EXPECT_TRUE(S_ISLNK(stx.stx_mode));
	EXPECT_EQ(1, stx.stx_size);
}

struct big_entry {
	char name[32];
	uint64_t ino;
};

static int big_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct big_entry *)a)->name, ((const struct big_entry *)b)->name);
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Lists @dir with getdents64 (4 KiB at a time) into @out; returns the count or -1. */
static int list_dir(const char *dir, struct big_entry *out, int max)
{
	char buf[4096];
	int fd, n = 0, len, pos;

	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	while ((len = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (pos = 0; pos < len;) {
			struct linux_dirent64 *de = (struct linux_dirent64 *)(buf + pos);

			if (n == max || strlen(de->d_name) >= sizeof(out->name)) {
				close(fd);
				return -1;
			}
			snprintf(out[n].name, sizeof(out->name), "%s", de->d_name);
			out[n++].ino = de->d_ino;
			pos += de->d_reclen;
		}
	}
	close(fd);
	return len < 0 ? -1 : n;
}

/* The other process: creates churn-N and removes churn-(N-1) until told to stop. */
static int make_and_remove_names(const char *dir, int ready_fd, int stop_fd)
{
	char name[64];
	int fd, i;
	char c;

	fcntl(stop_fd, F_SETFL, O_NONBLOCK);
	for (i = 0; read(stop_fd, &c, 1) < 0 && errno == EAGAIN; i++) {
		snprintf(name, sizeof(name), "%s/churn-%d", dir, i);
		fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			return child_fail(__LINE__, "create a name");
		close(fd);
		if (i) {
			snprintf(name, sizeof(name), "%s/churn-%d", dir, i - 1);
			if (unlink(name))
				return child_fail(__LINE__, "unlink a name");
		}
		if (!i && write(ready_fd, &i, sizeof(i)) != sizeof(i))
			return child_fail(__LINE__, "ready");
	}
	if (write(ready_fd, &i, sizeof(i)) != sizeof(i))
		return child_fail(__LINE__, "count");
	return 0;
}

/* Checks one listing of the big directory; returns the number of problems. */
static int check_big_listing(struct big_entry *e, int n, const char *dir)
{
	static unsigned char seen[BIG_COUNT];
	int i, k, bad = 0, dots = 0, churns = 0;
	struct stat st;

	memset(seen, 0, sizeof(seen));
	qsort(e, n, sizeof(*e), big_entry_cmp);
	for (i = 0; i < n; i++) {
		if (i && !strcmp(e[i].name, e[i - 1].name) && bad++ < 5)
			printf("# %s listed twice\n", e[i].name);
		if (!strcmp(e[i].name, ".") || !strcmp(e[i].name, "..")) {
			dots++;
		} else if (!strncmp(e[i].name, "churn-", 6)) {
			churns++;
		} else if (sscanf(e[i].name, "f%05d", &k) == 1 && k >= 0 && k < BIG_COUNT &&
			   strlen(e[i].name) == 6) {
			seen[k]++;
			/* A sample of the inode numbers: the same as lstat's. */
			if (!(k % 997) && (lstat(at(dir, e[i].name), &st) || st.st_ino != e[i].ino) &&
			    bad++ < 5)
				printf("# %s: d_ino %llu, st_ino %llu\n", e[i].name,
				       (unsigned long long)e[i].ino, (unsigned long long)st.st_ino);
		} else if (bad++ < 5) {
			printf("# unexpected entry %s\n", e[i].name);
		}
	}
	for (k = 0; k < BIG_COUNT; k++)
		if (seen[k] != 1 && bad++ < 5)
			printf("# f%05d listed %d times\n", k, seen[k]);
	if (dots != 2 && bad++ < 5)
		printf("# . and .. listed %d times in all\n", dots);
	printf("# %d entries, %d of them the other process's\n", n, churns);
	return bad;
}

/*
 * A directory of 10,000 entries (made on the host by posix.prepare) is
 * listed completely, each name once, while another process creates and
 * removes other names in it; twice (the second listing may come from the
 * guest's cache).
 */
TEST_F_TIMEOUT(posix, big_directory_listing_with_churn, 300)
{
	int ready[2], stop[2], n, round, ops = 0, first;
	struct big_entry *e;
	char dir[300];
	double t0;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/%s", self->mnt, BIG_DIR);
	e = calloc(BIG_COUNT + 1000, sizeof(*e));
	ASSERT_NE(NULL, e);
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(stop));
	pid = fork();
	if (!pid) {
		close(ready[0]);
		close(stop[1]);
		_exit(make_and_remove_names(dir, ready[1], stop[0]));
	}
	close(ready[1]);
	close(stop[0]);
	ASSERT_EQ(sizeof(first), read(ready[0], &first, sizeof(first)));
	for (round = 0; round < 2; round++) {
		t0 = now();
		n = list_dir(dir, e, BIG_COUNT + 1000);
		TH_LOG("listing %d: %d entries in %.1f s", round, n, now() - t0);
		ASSERT_LE(0, n) TH_LOG("listing failed: %s", strerror(errno));
		EXPECT_EQ(0, check_big_listing(e, n, dir));
	}
	ASSERT_EQ(1, write(stop[1], "x", 1));
	ASSERT_EQ(sizeof(ops), read(ready[0], &ops, sizeof(ops)));
	EXPECT_EQ(0, reap(pid));
	TH_LOG("the other process made %d files meanwhile", ops);
	EXPECT_LT(1, ops) TH_LOG("no creates and unlinks during the listings");
	free(e);
}

/* One writer: @count chunks of @chunk bytes, every @stride-th from @first. */
static int write_chunks(const char *path, int first, int stride, int count, size_t chunk,
			uint32_t seed, int gate_fd)
{
	unsigned char *buf = malloc(chunk);
	char go;
	int fd, j;

	if (!buf || read(gate_fd, &go, 1) < 0)
		return child_fail(__LINE__, "start");
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return child_fail(__LINE__, "open");
	for (j = first; j < count; j += stride) {
		vfs_pattern_fill(buf, chunk, (uint64_t)j * chunk, seed);
		if (pwrite_full(fd, buf, chunk, (off_t)j * chunk))
			return child_fail(__LINE__, "pwrite");
	}
	close(fd);
	free(buf);
	return 0;
}

/* Four processes write four files at once; each file is whole afterwards. */
TEST_F(posix, concurrent_writers_separate_files)
{
	pid_t pids[4];
	char name[16];
	int gate[2], k;

	ASSERT_EQ(0, pipe(gate));
	for (k = 0; k < 4; k++) {
		snprintf(name, sizeof(name), "w%d", k);
		pids[k] = fork();
		if (!pids[k]) {
			close(gate[1]);
			_exit(write_chunks(at(self->dir, name), 0, 1, 64, 4096, 140 + k, gate[0]));
		}
	}
	close(gate[0]);
	close(gate[1]);
	for (k = 0; k < 4; k++)
		EXPECT_EQ(0, reap(pids[k]));
	for (k = 0; k < 4; k++) {
		snprintf(name, sizeof(name), "w%d", k);
		EXPECT_EQ(0, file_is_pattern(at(self->dir, name), 64 * 4096, 140 + k));
	}
}

/*
 * Four processes write one file at once, each its own 3000-byte chunks
 * (interleaved, so they share pages); the file is whole afterwards.
 */
TEST_F(posix, concurrent_writers_one_file)
{
	const char *path = at(self->dir, "shared");
	int gate[2], k, fd;
	pid_t pids[4];

	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, pipe(gate));
	for (k = 0; k < 4; k++) {
		pids[k] = fork();
		if (!pids[k]) {
			close(gate[1]);
			_exit(write_chunks(path, k, 4, 200, 3000, 150, gate[0]));
		}
	}
	close(gate[0]);
	close(gate[1]);
	for (k = 0; k < 4; k++)
		EXPECT_EQ(0, reap(pids[k]));
	EXPECT_EQ(0, file_is_pattern(path, 200 * 3000, 150));
}

/*
 * Appends while another process keeps asking the host for the file's
 * attributes (statx with AT_STATX_FORCE_SYNC): a reply that raced with a
 * write must not move the size back, or the next O_APPEND write lands
 * over data already written (with a writeback cache the host's size lags
 * behind the guest's). The file is checked from the host after the
 * guest's caches are dropped.
 */
TEST_F(posix, appends_while_attributes_refresh)
{
	const char *path = at(self->dir, "appended");
	unsigned char buf[3000];
	struct statx stx;
	int k, fd, ok = 1;
	pid_t pid;

	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_APPEND, 0644);
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		for (k = 0; k < 3000; k++)
			if (statx(AT_FDCWD, path, AT_STATX_FORCE_SYNC, STATX_SIZE, &stx))
				_exit(1);
		_exit(0);
	}
	for (k = 0; k < 300 && ok; k++) {
		vfs_pattern_fill(buf, sizeof(buf), (off_t)k * sizeof(buf), 160);
		ok = write(fd, buf, sizeof(buf)) == sizeof(buf);
	}
	EXPECT_TRUE(ok) TH_LOG("append %d: %s", k, strerror(errno));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, drop_all_caches());
	EXPECT_EQ(0, file_is_pattern(path, 300 * sizeof(buf), 160));
}

/*
 * The host changes a file the guest has read (posix.hostagent: its first
 * 4 KiB rewritten in place, 4 KiB appended). What each cache mode promises
 * (virtiofsd's README and its timeouts): never, at once (no caching, direct
 * I/O); auto, attributes after the 1 s timeout and data at the next open
 * (close-to-open); always and writeback, nothing before the inode leaves
 * the guest's cache. In every mode a new mount sees the change.
 */
TEST_F(posix, host_change_seen_per_cache_mode)
{
	const char *path = at(self->mnt, LIVE_FILE);
	enum cache_mode mode = cache_mode();
	bool wb = env_flag("VFS_WRITEBACK");
	unsigned char *buf = NULL;
	struct stat st;
	int fd, fd2;
	ssize_t n;

	EXPECT_EQ(0, file_is_pattern(path, LIVE_SIZE, LIVE_SEED));
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(LIVE_SIZE, st.st_size);
	buf = malloc(3 * 4096 + 1);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(LIVE_SIZE, pread_full(fd, buf, LIVE_SIZE, 0));

	ASSERT_EQ(0, host_agent(self->mnt, "change-live")) TH_LOG("the host agent never answered");
	if (mode != CACHE_NEVER)
		usleep(1500 * 1000);
	ASSERT_EQ(0, stat(path, &st));
	TH_LOG("size seen %.1f s after the change: %lld (host: 12288)",
	       mode == CACHE_NEVER ? 0.0 : 1.5, (long long)st.st_size);
	if (mode == CACHE_NEVER || (mode == CACHE_AUTO && !wb))
		EXPECT_EQ(3 * 4096, st.st_size);
	/*
	 * With a writeback cache the guest is the authority for the size of
	 * the files it caches: the host's, fetched again after the timeout,
	 * is not taken (C's fuse_get_cache_mask()).
	 */
	if (wb)
		EXPECT_EQ(LIVE_SIZE, st.st_size) TH_LOG("the host's size replaced the guest's");
	if (mode == CACHE_NEVER) {
		n = pread_full(fd, buf, 3 * 4096 + 1, 0);
		EXPECT_EQ(3 * 4096, n);
		EXPECT_EQ(-1, vfs_pattern_check(buf, 4096, 0, LIVE_SEED + 1));
	}
	if (mode == CACHE_AUTO && !wb) {
		fd2 = open(path, O_RDONLY);
		ASSERT_LE(0, fd2);
		n = pread_full(fd2, buf, 3 * 4096 + 1, 0);
		EXPECT_EQ(3 * 4096, n);
		EXPECT_EQ(-1, vfs_pattern_check(buf, 4096, 0, LIVE_SEED + 1))
			TH_LOG("old data after open (close-to-open)");
		close(fd2);
	}
	close(fd);

	/* A new mount (a new superblock) sees the host's file. */
	vfs_umount(self->mnt);
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)));
	path = at(self->mnt, LIVE_FILE);
	free(buf);
	buf = NULL;
	n = vfs_read_file(path, &buf);
	ASSERT_EQ(3 * 4096, n);
	EXPECT_EQ(-1, vfs_pattern_check(buf, 4096, 0, LIVE_SEED + 1));
	EXPECT_EQ(-1, vfs_pattern_check(buf + 4096, 4096, 4096, LIVE_SEED));
	EXPECT_EQ(-1, vfs_pattern_check(buf + 8192, 4096, 8192, LIVE_SEED + 2));
	free(buf);
}

/*
 * What a write promises the host before close: without a writeback cache
 * write() sends the data (write-through), so the host has it at once; with
 * --writeback it stays in the guest's page cache until writeback, which
 * close() forces (FUSE_FLUSH follows it). The host agent copies the file
 * before and after the close.
 */
TEST_F(posix, written_data_reaches_host_per_cache_mode)
{
	const char *path = at(self->dir, "f");
	bool wb = env_flag("VFS_WRITEBACK");
	unsigned char buf[20000];
	struct timespec mtime;
	struct stat st;
	int fd;

	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	vfs_pattern_fill(buf, sizeof(buf), 0, 112);
	ASSERT_EQ(sizeof(buf), write(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, host_agent(self->mnt, "snap-early")) TH_LOG("the host agent never answered");
	if (wb) {
		ASSERT_EQ(0, stat(at(self->dir, "f.early"), &st));
		EXPECT_EQ(0, st.st_size) TH_LOG("the host had the data before writeback");
	} else {
		EXPECT_EQ(0, file_is_pattern(at(self->dir, "f.early"), sizeof(buf), 112));
	}
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, stat(path, &st));
	mtime = st.st_mtim;
	ASSERT_EQ(0, host_agent(self->mnt, "snap-closed")) TH_LOG("the host agent never answered");
	EXPECT_EQ(0, file_is_pattern(at(self->dir, "f.closed"), sizeof(buf), 112));

	/*
	 * The modification time the guest showed is the file's: with a
	 * writeback cache the guest set it at write() and sent it after the
	 * data (write_inode), otherwise it is the host's. A new mount reads
	 * the host's.
	 */
	vfs_umount(self->mnt);
	ASSERT_EQ(0, vfs_mount_fresh(self->mnt, sizeof(self->mnt)));
	ASSERT_EQ(0, stat(at(self->mnt, "guest/written_data_reaches_host_per_cache_mode/f"), &st));
	EXPECT_EQ(mtime.tv_sec, st.st_mtim.tv_sec);
	EXPECT_EQ(mtime.tv_nsec, st.st_mtim.tv_nsec) TH_LOG("mtime %lld.%09ld before, %lld.%09ld on the host",
							     (long long)mtime.tv_sec, mtime.tv_nsec,
							     (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

/*
 * An open the host does not let keep the page cache (no FOPEN_KEEP_CACHE:
 * --cache=auto) drops it (C's fuse_open), and with a writeback cache a
 * dirty page of another open is written back first (launder_folio): the
 * host has it then, and nothing written is lost.
 */
TEST_F(posix, open_writes_back_dirty_pages)
{
	const char *path = at(self->dir, "f");
	const char *mode = getenv("VFS_CACHE_MODE");
	bool keep = mode && !strcmp(mode, "always");
	bool wb = env_flag("VFS_WRITEBACK");
	unsigned char buf[12000], back[12000];
	struct stat st;
	int fd, fd2;

	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	vfs_pattern_fill(buf, sizeof(buf), 0, 113);
	ASSERT_EQ(sizeof(buf), write(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, host_agent(self->mnt, "snap-dirty")) TH_LOG("the host agent never answered");
	if (wb) {
		ASSERT_EQ(0, stat(at(self->dir, "f.dirty"), &st));
		EXPECT_EQ(0, st.st_size) TH_LOG("the host had the data before writeback");
	}
	fd2 = open(path, O_RDONLY);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, host_agent(self->mnt, "snap-opened")) TH_LOG("the host agent never answered");
	if (!(wb && keep))
		EXPECT_EQ(0, file_is_pattern(at(self->dir, "f.opened"), sizeof(buf), 113))
			TH_LOG("the open left the dirty pages unwritten on the host");
	ASSERT_EQ(sizeof(back), pread(fd2, back, sizeof(back), 0));
	EXPECT_EQ(0, memcmp(buf, back, sizeof(buf)));
	close(fd2);
	close(fd);
}

/* fsync() puts written data on the host before close (the host agent copies it). */
TEST_F(posix, fsync_reaches_host)
{
	const char *path = at(self->dir, "f");
	unsigned char buf[20000];
	int fd;

	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	vfs_pattern_fill(buf, sizeof(buf), 0, 110);
	ASSERT_EQ(sizeof(buf), write(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, fsync(fd)) TH_LOG("fsync: %s", strerror(errno));
	ASSERT_EQ(0, host_agent(self->mnt, "snap-fsync")) TH_LOG("the host agent never answered");
	EXPECT_EQ(0, file_is_pattern(at(self->dir, "f.snap"), sizeof(buf), 110));
	close(fd);
}

/* fdatasync() too, for data written past the old end of the file. */
TEST_F(posix, fdatasync_reaches_host)
{
	const char *path = at(self->dir, "f");
	unsigned char buf[12000];
	int fd;

	ASSERT_EQ(0, vfs_write_pattern(path, 4096, 111));
	fd = open(path, O_RDWR);
	ASSERT_LE(0, fd);
	vfs_pattern_fill(buf, sizeof(buf), 4096, 111);
	ASSERT_EQ(sizeof(buf), pwrite(fd, buf, sizeof(buf), 4096));
	ASSERT_EQ(0, fdatasync(fd)) TH_LOG("fdatasync: %s", strerror(errno));
	ASSERT_EQ(0, host_agent(self->mnt, "snap-fdatasync")) TH_LOG("the host agent never answered");
	EXPECT_EQ(0, file_is_pattern(at(self->dir, "f.snap"), 4096 + sizeof(buf), 111));
	close(fd);
}

/*
 * An unlinked file stays readable and writable through an open descriptor,
 * also after the guest drops its caches (so the data comes from the host).
 */
TEST_F(posix, unlinked_open_file_readable)
{
	const char *path = at(self->dir, "victim");
	unsigned char *buf = malloc(100000 + 4096);
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	ASSERT_NE(NULL, buf);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	vfs_pattern_fill(buf, 100000, 0, 120);
	ASSERT_EQ(0, pwrite_full(fd, buf, 100000, 0));
	ASSERT_EQ(0, unlink(path));
	EXPECT_EQ(-1, stat(path, &st));
	EXPECT_EQ(ENOENT, errno);
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(0, st.st_nlink);
	EXPECT_EQ(100000, st.st_size);

	ASSERT_EQ(0, drop_all_caches());
	memset(buf, 0, 100000);
	ASSERT_EQ(100000, pread_full(fd, buf, 100000 + 4096, 0));
	EXPECT_EQ(-1, vfs_pattern_check(buf, 100000, 0, 120));
	vfs_pattern_fill(buf, 4096, 100000, 121);
	ASSERT_EQ(0, pwrite_full(fd, buf, 4096, 100000));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(104096, st.st_size);
	ASSERT_EQ(0, drop_all_caches());
	ASSERT_EQ(4096, pread_full(fd, buf, 4096, 100000));
	EXPECT_EQ(-1, vfs_pattern_check(buf, 4096, 100000, 121));

	d = opendir(self->dir);
	ASSERT_NE(NULL, d);
	while ((de = readdir(d)))
		EXPECT_NE(0, strcmp(de->d_name, "victim"));
	closedir(d);
	/* Tells the host check that this test ran. */
	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, "neighbour"), 10, 122));
	close(fd);
	free(buf);
}

/* Names of 255 bytes work for every kind of entry; 256 bytes do not. */
TEST_F(posix, names_of_255_bytes)
{
	char n255[256], m255[256], d255[256], s255[256], n256[257], buf[64];
	struct dirent *de;
	struct stat st;
	int fd, found = 0;
	DIR *d;

	memset(n255, 'n', 255);
	n255[255] = 0;
	memset(m255, 'm', 255);
	m255[255] = 0;
	memset(d255, 'd', 255);
	d255[255] = 0;
	memset(s255, 's', 255);
	s255[255] = 0;
	memset(n256, 'n', 256);
	n256[256] = 0;

	ASSERT_EQ(0, vfs_write_pattern(at(self->dir, n255), 255, 130))
		TH_LOG("create: %s", strerror(errno));
	EXPECT_EQ(0, file_is_pattern(at(self->dir, n255), 255, 130));
	d = opendir(self->dir);
	ASSERT_NE(NULL, d);
	while ((de = readdir(d)))
		found += !strcmp(de->d_name, n255);
	closedir(d);
	EXPECT_EQ(1, found);
	ASSERT_EQ(0, rename(at(self->dir, n255), at(self->dir, m255)));
	EXPECT_EQ(0, file_is_pattern(at(self->dir, m255), 255, 130));
	EXPECT_EQ(0, mkdir(at(self->dir, d255), 0755));
	EXPECT_EQ(0, symlink("target", at(self->dir, s255)));
	EXPECT_EQ(6, readlink(at(self->dir, s255), buf, sizeof(buf)));

	fd = open(at(self->dir, n256), O_CREAT | O_WRONLY, 0644);
	EXPECT_EQ(-1, fd);
	EXPECT_EQ(ENAMETOOLONG, errno);
	EXPECT_EQ(-1, stat(at(self->dir, n256), &st));
	EXPECT_EQ(ENAMETOOLONG, errno);
	EXPECT_EQ(-1, mkdir(at(self->dir, n256), 0755));
	EXPECT_EQ(ENAMETOOLONG, errno);
}

/* A child that blocks in flock(LOCK_EX) or F_SETLKW; exits 0 if it waited >= 0.3 s. */
static pid_t blocked_locker(const char *path, bool posix, int ready_fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	pid_t pid = fork();
	double t0;
	int fd, r;

	if (pid)
		return pid;
	fd = open(path, O_RDWR);
	if (fd < 0)
		_exit(child_fail(__LINE__, "open"));
	if (write(ready_fd, "r", 1) != 1)
		_exit(child_fail(__LINE__, "ready"));
	t0 = now();
	r = posix ? fcntl(fd, F_SETLKW, &fl) : flock(fd, LOCK_EX);
	if (r)
		_exit(child_fail(__LINE__, "blocking lock"));
	_exit(now() - t0 >= 0.3 ? 0 : child_fail(__LINE__, "the lock did not block"));
}

/* flock() between processes: exclusive, shared, conversion, blocking, close. */
TEST_F(posix, flock_between_processes)
{
	const char *path = at(self->dir, "lockfile");
	int fd1, fd2, ready[2];
	pid_t pid;
	char c;

	ASSERT_EQ(0, vfs_write_pattern(path, 100, 131));
	fd1 = open(path, O_RDWR);
	ASSERT_LE(0, fd1);
	ASSERT_EQ(0, flock(fd1, LOCK_EX)) TH_LOG("flock: %s", strerror(errno));
	EXPECT_EQ(0, flock_in_child(path, LOCK_EX | LOCK_NB, EWOULDBLOCK));
	EXPECT_EQ(0, flock_in_child(path, LOCK_SH | LOCK_NB, EWOULDBLOCK));
	/* Per open file description: a second open in this process conflicts too. */
	fd2 = open(path, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-1, flock(fd2, LOCK_EX | LOCK_NB));
	EXPECT_EQ(EWOULDBLOCK, errno);

	ASSERT_EQ(0, flock(fd1, LOCK_SH));
	EXPECT_EQ(0, flock_in_child(path, LOCK_SH | LOCK_NB, 0));
	EXPECT_EQ(0, flock_in_child(path, LOCK_EX | LOCK_NB, EWOULDBLOCK));
	ASSERT_EQ(0, flock(fd1, LOCK_UN));
	EXPECT_EQ(0, flock_in_child(path, LOCK_EX | LOCK_NB, 0));

	ASSERT_EQ(0, flock(fd1, LOCK_EX));
	ASSERT_EQ(0, pipe(ready));
	pid = blocked_locker(path, false, ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	usleep(500 * 1000);
	ASSERT_EQ(0, flock(fd1, LOCK_UN));
	EXPECT_EQ(0, reap(pid));

	/* Closing the last descriptor of the description releases its lock. */
	ASSERT_EQ(0, flock(fd1, LOCK_EX));
	close(fd1);
	EXPECT_EQ(0, flock_in_child(path, LOCK_EX | LOCK_NB, 0));
	close(fd2);
	close(ready[0]);
	close(ready[1]);
}

/*
 * POSIX record locks (fcntl F_SETLK, F_GETLK, F_SETLKW) between two
 * processes: ranges, the holder F_GETLK reports, read and write locks,
 * blocking, and release at the close of any descriptor of the file.
 */
TEST_F(posix, posix_locks_between_processes)
{
	const char *path = at(self->dir, "lockfile");
	struct flock fl;
	int fd, fd2, ready[2];
	pid_t pid;
	char c;

	ASSERT_EQ(0, vfs_write_pattern(path, 1000, 132));
	fd = open(path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 100)) TH_LOG("F_SETLK: %s", strerror(errno));
	ASSERT_EQ(0, getlk_in_child(path, F_WRLCK, 50, 10, &fl));
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(getpid(), fl.l_pid);
	EXPECT_EQ(0, fl.l_start);
	EXPECT_EQ(100, fl.l_len);
	EXPECT_EQ(0, setlk_in_child(path, F_WRLCK, 0, 100, EAGAIN));
	EXPECT_EQ(0, setlk_in_child(path, F_RDLCK, 99, 1, EAGAIN));
	EXPECT_EQ(0, setlk_in_child(path, F_WRLCK, 100, 100, 0));
	ASSERT_EQ(0, getlk_in_child(path, F_WRLCK, 100, 10, &fl));
	EXPECT_EQ(F_UNLCK, fl.l_type);
	/* A process's own locks never conflict with it. */
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	ASSERT_EQ(0, fcntl(fd, F_GETLK, &fl));
	EXPECT_EQ(F_UNLCK, fl.l_type);

	/* Downgraded to a read lock: readers share it, writers still wait. */
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_RDLCK, 0, 100));
	EXPECT_EQ(0, setlk_in_child(path, F_RDLCK, 0, 50, 0));
	EXPECT_EQ(0, setlk_in_child(path, F_WRLCK, 0, 50, EAGAIN));

	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	ASSERT_EQ(0, pipe(ready));
	pid = blocked_locker(path, true, ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	usleep(500 * 1000);
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_UNLCK, 0, 0));
	EXPECT_EQ(0, reap(pid));

	/* Closing any descriptor of the file drops the process's locks. */
	ASSERT_EQ(0, setlk(fd, F_SETLK, F_WRLCK, 0, 0));
	EXPECT_EQ(0, setlk_in_child(path, F_RDLCK, 500, 1, EAGAIN));
	fd2 = open(path, O_RDONLY);
	ASSERT_LE(0, fd2);
	close(fd2);
	EXPECT_EQ(0, setlk_in_child(path, F_WRLCK, 0, 0, 0));
	close(fd);
	close(ready[0]);
	close(ready[1]);
}

/*
 * Open file description locks (F_OFD_*): two opens in one process conflict,
 * F_OFD_GETLK reports l_pid -1, they conflict with classic POSIX locks,
 * and they go with the last close of their description.
 */
TEST_F(posix, ofd_locks)
{
	const char *path = at(self->dir, "lockfile");
	struct flock fl;
	int fd1, fd2;
	pid_t pid;

	ASSERT_EQ(0, vfs_write_pattern(path, 1000, 133));
	fd1 = open(path, O_RDWR);
	fd2 = open(path, O_RDWR);
	ASSERT_LE(0, fd1);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, setlk(fd1, F_OFD_SETLK, F_WRLCK, 0, 100)) TH_LOG("F_OFD_SETLK: %s", strerror(errno));
	EXPECT_EQ(-1, setlk(fd2, F_OFD_SETLK, F_WRLCK, 50, 10));
	EXPECT_EQ(EAGAIN, errno);
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10 };
	ASSERT_EQ(0, fcntl(fd2, F_OFD_GETLK, &fl));
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(-1, fl.l_pid);
	EXPECT_EQ(0, fl.l_start);
	EXPECT_EQ(100, fl.l_len);
	EXPECT_EQ(0, setlk_in_child(path, F_WRLCK, 0, 10, EAGAIN));
	EXPECT_EQ(0, setlk_in_child(path, F_WRLCK, 100, 10, 0));

	/* A child sharing the description shares the lock. */
	pid = fork();
	if (!pid)
		_exit(setlk(fd1, F_OFD_SETLK, F_WRLCK, 0, 100) ? child_fail(__LINE__, "relock") : 0);
	EXPECT_EQ(0, reap(pid));

	close(fd1);
	EXPECT_EQ(0, setlk(fd2, F_OFD_SETLK, F_WRLCK, 50, 10)) TH_LOG("lock kept after close");
	close(fd2);
}

TEST_HARNESS_MAIN
