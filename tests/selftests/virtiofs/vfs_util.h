/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the virtiofs kselftests.
 *
 * The tests take their parameters from the environment the guest init sets:
 *   VFS_TAG         the virtio-fs tag to mount (default "vfsrs")
 *   VFS_MOUNT_OPTS  mount data, e.g. "dax=always" (default none)
 */
#ifndef VFS_UTIL_H
#define VFS_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/aio_abi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VFS_FS_TYPE "virtiofs"

/* Files the runner creates on the host before boot (scripts/run-guest.sh). */
#define VFS_HOST_HELLO "host/hello.txt"
#define VFS_HOST_HELLO_TEXT "hello from the host\n"
#define VFS_HOST_DATA "host/data.bin"
#define VFS_HOST_DATA_SIZE (1024 * 1024 + 17)
#define VFS_HOST_DATA_SEED 2

/* Files the guest leaves for the runner's host-side checks. */
#define VFS_GUEST_WRITTEN "guest/written.bin"
#define VFS_GUEST_WRITTEN_SIZE (3 * 1024 * 1024 + 123)
#define VFS_GUEST_WRITTEN_SEED 1

static inline const char *vfs_tag(void)
{
	const char *t = getenv("VFS_TAG");

	return t && *t ? t : "vfsrs";
}

static inline const char *vfs_mount_opts(void)
{
	const char *o = getenv("VFS_MOUNT_OPTS");

	return o && *o ? o : NULL;
}

/*
 * Deterministic content: byte @off of the stream for @seed. The host-side
 * tool vfs_pattern produces the same bytes, so either side can check the
 * other's writes.
 */
static inline unsigned char vfs_pattern_byte(uint64_t off, uint32_t seed)
{
	uint64_t x = (off >> 3) * 0x9E3779B97F4A7C15ull + seed;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 32;
	return (unsigned char)(x >> ((off & 7) * 8));
}

static inline void vfs_pattern_fill(unsigned char *buf, size_t len,
				    uint64_t off, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = vfs_pattern_byte(off + i, seed);
}

/* Returns the offset of the first mismatch, or -1 if @buf matches. */
static inline long long vfs_pattern_check(const unsigned char *buf, size_t len,
					  uint64_t off, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] != vfs_pattern_byte(off + i, seed))
			return (long long)i;
	return -1;
}

/* splitmix64: the random stream of the random-write model below. */
static inline uint64_t vfs_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/*
 * The random-write model: write number @i of the stream for @seed puts 1 to
 * @maxlen pattern bytes (seed @seed + @i, at their own offsets) at a random
 * offset below @span. The guest replays it with pwrite() (posix_test), the
 * host tool (vfs_pattern --model) prints the file it must give.
 */
struct vfs_model_write {
	uint64_t off;
	size_t len;
	uint32_t seed;
};

static inline void vfs_model_next(uint64_t *state, uint32_t seed, unsigned int i,
				  size_t span, size_t maxlen, struct vfs_model_write *w)
{
	w->off = vfs_rand(state) % span;
	w->len = 1 + vfs_rand(state) % maxlen;
	if (w->off + w->len > span)
		w->len = span - w->off;
	w->seed = seed + i;
}

/* Applies the first @nops writes of @seed to @buf (@span bytes, zeroed); returns the size. */
static inline size_t vfs_model_build(unsigned char *buf, uint32_t seed, unsigned int nops,
				     size_t span, size_t maxlen)
{
	struct vfs_model_write w;
	uint64_t state = seed;
	size_t size = 0;
	unsigned int i;

	for (i = 0; i < nops; i++) {
		vfs_model_next(&state, seed, i, span, maxlen, &w);
		vfs_pattern_fill(buf + w.off, w.len, w.off, w.seed);
		if (w.off + w.len > size)
			size = w.off + w.len;
	}
	return size;
}

/* Creates a fresh mount point under /tmp and mounts the tag on it. */
static inline int vfs_mount_fresh(char *mnt, size_t len)
{
	static int seq;

	snprintf(mnt, len, "/tmp/vfs-%d-%d", (int)getpid(), seq++);
	if (mkdir(mnt, 0755) && errno != EEXIST)
		return -1;
	return mount(vfs_tag(), mnt, VFS_FS_TYPE, 0, vfs_mount_opts());
}

/* Unmounts and removes @mnt; a failure is reported as a TAP comment. */
static inline void vfs_umount(const char *mnt)
{
	if (umount2(mnt, 0))
		printf("# umount %s: %s\n", mnt, strerror(errno));
	rmdir(mnt);
}

/* Waits for @n completions of @ctx (10 s at most each); returns how many. */
static inline int vfs_aio_reap(aio_context_t ctx, int n, struct io_event *ev)
{
	struct timespec ts = { .tv_sec = 10 };
	int got = 0;
	long r;

	while (got < n) {
		r = syscall(__NR_io_getevents, ctx, 1, n - got, ev + got, &ts);
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

static inline void vfs_aio_prep(struct iocb *cb, int fd, int op, void *buf, size_t len,
				off_t off, int data)
{
	memset(cb, 0, sizeof(*cb));
	cb->aio_fildes = fd;
	cb->aio_lio_opcode = op;
	cb->aio_buf = (uintptr_t)buf;
	cb->aio_nbytes = len;
	cb->aio_offset = off;
	cb->aio_data = data;
}

/* The state letter of task @pid (/proc/PID/stat: R, S, D, Z...), or 0. */
static inline char vfs_task_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* "PID (COMM) S ...": COMM may hold anything but ends at the last ')'. */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * Evicts unused dentries and inodes, so their FORGETs go out while the tag
 * is still mounted (at umount the C driver drops them after FUSE_DESTROY).
 * Three rounds: a dentry used more than once since it became unused is
 * DCACHE_REFERENCED, and one round only takes that flag away from it.
 */
static inline int vfs_drop_caches(void)
{
	int i, fd, ret = 0;

	sync();
	for (i = 0; i < 3 && !ret; i++) {
		fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
		if (fd < 0)
			return -1;
		ret = write(fd, "2", 1) == 1 ? 0 : -1;
		close(fd);
	}
	return ret;
}

/* Writes @val to the file @path (sysfs, debugfs, procfs knobs). */
static inline int vfs_write_str(const char *path, const char *val)
{
	ssize_t len = strlen(val);
	int fd = open(path, O_WRONLY);
	int ret;

	if (fd < 0)
		return -1;
	ret = write(fd, val, len) == len ? 0 : -1;
	close(fd);
	return ret;
}

/* Reads all of @path into a malloc'd buffer; returns its size or -1. */
static inline ssize_t vfs_read_file(const char *path, unsigned char **out)
{
	struct stat st;
	ssize_t done = 0, n;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st)) {
		close(fd);
		return -1;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	while (done < st.st_size) {
		n = read(fd, buf + done, st.st_size - done);
		if (n <= 0)
			break;
		done += n;
	}
	close(fd);
	*out = buf;
	return done;
}

/* Writes @len pattern bytes of @seed to @path (created or truncated). */
static inline int vfs_write_pattern(const char *path, size_t len, uint32_t seed)
{
	unsigned char buf[65536];
	size_t done = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return -1;
	while (done < len) {
		size_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);

		vfs_pattern_fill(buf, n, done, seed);
		if (write(fd, buf, n) != (ssize_t)n) {
			close(fd);
			return -1;
		}
		done += n;
	}
	return close(fd);
}

/* Reads a small file (sysfs, debugfs) into @buf without its newline. */
static inline int vfs_read_line(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (buf[n - 1] == '\n')
		buf[n - 1] = 0;
	return 0;
}

/* Reads /sys/fs/virtiofs/<dir>/<rel> into @buf without the newline. */
static inline int vfs_instance_attr(const char *dir, const char *rel, char *buf, size_t len)
{
	char path[400];

	snprintf(path, sizeof(path), "/sys/fs/virtiofs/%s/%s", dir, rel);
	return vfs_read_line(path, buf, len);
}

/*
 * Finds the /sys/fs/virtiofs/ entry whose tag is VFS_TAG; copies its name
 * to @dir. Returns how many entries carry that tag.
 */
static inline int vfs_find_instance(char *dir, size_t len)
{
	char buf[256];
	struct dirent *de;
	int found = 0;
	DIR *d = opendir("/sys/fs/virtiofs");

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' ||
		    vfs_instance_attr(de->d_name, "tag", buf, sizeof(buf)) ||
		    strcmp(buf, vfs_tag()))
			continue;
		if (!found++)
			snprintf(dir, len, "%s", de->d_name);
	}
	closedir(d);
	return found;
}

/* Waits for @pid; returns its exit status, 128 + signal, or -1. */
static inline int reap(pid_t pid)
{
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* In a child: reports a failed check (with errno) and gives its exit status. */
static inline int child_fail(int line, const char *what)
{
	fprintf(stderr, "child %d, line %d: %s (errno %d: %s)\n", (int)getpid(), line, what,
		errno, strerror(errno));
	return 1;
}

/*
 * Runs @fn(@dir) in a child as the unprivileged user (VFS_UID, VFS_GID, no
 * supplementary groups, umask 022; setgid()/setuid() as root set the real,
 * effective and saved ids alike); returns its exit status (0: it held).
 */
static inline int as_user(int (*fn)(const char *dir), const char *dir)
{
	const char *u = getenv("VFS_UID"), *g = getenv("VFS_GID");
	uid_t uid = u ? atoi(u) : 1000;
	gid_t gid = g ? atoi(g) : 1000;
	pid_t pid = fork();

	if (!pid) {
		if (setgroups(0, NULL) || setgid(gid) || setuid(uid))
			_exit(child_fail(__LINE__, "dropping root"));
		umask(022);
		_exit(fn(dir));
	}
	return reap(pid);
}

#endif /* VFS_UTIL_H */
