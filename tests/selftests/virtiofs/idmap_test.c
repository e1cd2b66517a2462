// SPDX-License-Identifier: GPL-2.0
/*
 * Idmapped mounts. A FUSE superblock keeps SB_I_NOIDMAP unless the server
 * accepts FUSE_ALLOW_IDMAP in FUSE_INIT (fs/fuse/inode.c): only then does the
 * driver send requests with the idmapped owner. The C driver offers the
 * flag; the DAX host (fuse-backend-rs 0.14) does not accept it, so on that
 * host an idmapped mount of the tag must be refused as the VFS refuses it
 * for SB_I_NOIDMAP: mount_setattr(MOUNT_ATTR_IDMAP) fails with EINVAL
 * (can_idmap_mount(), fs/namespace.c). A driver that sets FS_ALLOW_IDMAP
 * without SB_I_NOIDMAP lets it through, and files then change owners
 * behind the server's back.
 *
 * virtiofsd 1.14 accepts FUSE_ALLOW_IDMAP, and the C driver then allows the
 * idmapped mount: run this on the DAX host only (the idmap plan).
 *
 * Raw syscalls for open_tree() and mount_setattr(): the static C library
 * may lack the wrappers. Needs CONFIG_USER_NS; skipped without it.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "vfs_util.h"

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

/* struct mount_attr of include/uapi/linux/mount.h (MOUNT_ATTR_SIZE_VER0). */
struct vfs_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

/*
 * Returns an fd of a new user namespace (root mapped to 100000..165535),
 * or -1 with errno set (EINVAL: the kernel has no CONFIG_USER_NS).
 */
static int new_userns(void)
{
	int go[2], done[2], err = 0, fd = -1;
	char path[64];
	pid_t pid;

	if (pipe(go) || pipe(done))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		char c;

		err = unshare(CLONE_NEWUSER) ? errno : 0;
		if (write(go[1], &err, sizeof(err)) != sizeof(err))
			_exit(1);
		/* Stay until the parent holds the namespace. */
		_exit(read(done[0], &c, 1) == 1 ? 0 : 1);
	}
	if (read(go[0], &err, sizeof(err)) != sizeof(err))
		err = EIO;
	if (!err) {
		snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
		if (vfs_write_str(path, "0 100000 65536"))
			err = errno;
	}
	if (!err) {
		snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
		if (vfs_write_str(path, "0 100000 65536"))
			err = errno;
	}
	if (!err) {
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			err = errno;
	}
	if (write(done[1], "d", 1) != 1 && !err)
		err = EIO;
	waitpid(pid, NULL, 0);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	errno = err;
	return fd;
}

/*
 * Clones the mount at @path (open_tree(OPEN_TREE_CLONE): a detached copy,
 * which may be idmapped) and idmaps it to @userns. Returns mount_setattr()'s
 * result, -2 if open_tree() failed; errno is set.
 */
static int idmap_clone(const char *path, int userns)
{
	struct vfs_mount_attr attr = {
		.attr_set = MOUNT_ATTR_IDMAP,
		.userns_fd = userns,
	};
	int tree, ret, err;

	tree = syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return -2;
	ret = syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr));
	err = errno;
	close(tree);
	errno = err;
	return ret;
}

TEST(idmapped_mount_refused_einval)
{
	const char *ctl = "/tmp/vfs-idmap-tmpfs";
	char mnt[64];
	int ns, ret, err;

	ns = new_userns();
	if (ns < 0 && errno == EINVAL)
		SKIP(return, "no user namespaces (CONFIG_USER_NS)");
	ASSERT_LE(0, ns) TH_LOG("user namespace: %s", strerror(errno));

	/* The control: tmpfs takes idmapped mounts, so the steps are right. */
	ASSERT_EQ(0, mkdir(ctl, 0755) && errno != EEXIST);
	ASSERT_EQ(0, mount("tmpfs", ctl, "tmpfs", 0, NULL)) TH_LOG("tmpfs: %s", strerror(errno));
	ret = idmap_clone(ctl, ns);
	umount(ctl);
	rmdir(ctl);
	ASSERT_EQ(0, ret) TH_LOG("idmapping a tmpfs clone failed (%d, %s): the test is broken",
				 ret, strerror(errno));

	ASSERT_EQ(0, vfs_mount_fresh(mnt, sizeof(mnt))) TH_LOG("mount: %s", strerror(errno));
	ret = idmap_clone(mnt, ns);
	err = errno;
	if (ret == -2)
		TH_LOG("open_tree: %s", strerror(err));
	EXPECT_EQ(-1, ret) TH_LOG("the idmapped mount of %s was allowed", vfs_tag());
	EXPECT_EQ(EINVAL, err) TH_LOG("mount_setattr: %s", strerror(err));
	vfs_umount(mnt);
	close(ns);
}

TEST_HARNESS_MAIN
