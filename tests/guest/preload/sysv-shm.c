// SPDX-License-Identifier: GPL-2.0
/*
 * System V shared memory for programs in the test guest, whose kernel has
 * none (CONFIG_SYSVIPC is off in the tinyconfig-based configs/): fio keeps
 * its job table in a private segment (shmget(IPC_PRIVATE), shmat, then
 * IPC_RMID at once, shmdt at exit) that its job processes inherit across
 * fork(). An anonymous shared mapping behaves the same for that use, so
 * this preload library (LD_PRELOAD) backs private segments with one.
 * A key other than IPC_PRIVATE fails with EINVAL: a segment others could
 * look up by its key is not emulated.
 * Not thread-safe: fio creates its segments from its main thread.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define MAX_SEGS 64

static struct seg {
	void *addr;
	size_t size;
} segs[MAX_SEGS];

static struct seg *seg_of(int id)
{
	if (id < 0 || id >= MAX_SEGS || !segs[id].addr) {
		errno = EINVAL;
		return NULL;
	}
	return &segs[id];
}

int shmget(key_t key, size_t size, int flags)
{
	void *addr;
	int id;

	(void)flags;
	if (key != IPC_PRIVATE) {
		errno = EINVAL;
		return -1;
	}
	if (!size) {
		errno = EINVAL;
		return -1;
	}
	for (id = 0; id < MAX_SEGS && segs[id].addr; id++)
		;
	if (id == MAX_SEGS) {
		errno = ENOSPC;
		return -1;
	}
	/* Zeroed, as a new segment is. */
	addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED)
		return -1;
	segs[id] = (struct seg){ .addr = addr, .size = size };
	return id;
}

void *shmat(int id, const void *want, int flags)
{
	struct seg *s = seg_of(id);

	if (!s)
		return (void *)-1;
	if (want || (flags & ~SHM_RDONLY)) {
		errno = EINVAL;
		return (void *)-1;
	}
	return s->addr;
}

int shmdt(const void *addr)
{
	int id;

	for (id = 0; id < MAX_SEGS; id++) {
		if (segs[id].addr && segs[id].addr == addr) {
			munmap(segs[id].addr, segs[id].size);
			memset(&segs[id], 0, sizeof(segs[id]));
			return 0;
		}
	}
	errno = EINVAL;
	return -1;
}

int shmctl(int id, int cmd, struct shmid_ds *buf)
{
	struct seg *s = seg_of(id);

	if (!s)
		return -1;
	switch (cmd) {
	case IPC_RMID:
		/* Private: nobody can look it up; it goes at shmdt(). */
		return 0;
	case IPC_STAT:
		if (!buf) {
			errno = EFAULT;
			return -1;
		}
		memset(buf, 0, sizeof(*buf));
		buf->shm_segsz = s->size;
		buf->shm_nattch = 1;
		return 0;
	default:
		errno = EINVAL;
		return -1;
	}
}
