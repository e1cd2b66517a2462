// SPDX-License-Identifier: GPL-2.0

#include <linux/completion.h>
#include <linux/cred.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/dcache.h>
#include <linux/jiffies.h>
#include <linux/uidgid.h>
#include <linux/workqueue.h>

struct dentry *rust_helper_dget(struct dentry *dentry)
{
	return dget(dentry);
}

kuid_t rust_helper_make_kuid(struct user_namespace *ns, uid_t uid)
{
	return make_kuid(ns, uid);
}

kgid_t rust_helper_make_kgid(struct user_namespace *ns, gid_t gid)
{
	return make_kgid(ns, gid);
}

u64 rust_helper_get_jiffies_64(void)
{
	return get_jiffies_64();
}

void rust_helper_init_rcu_work(struct rcu_work *rwork, work_func_t func)
{
	INIT_RCU_WORK(rwork, func);
}

/* alloc_workqueue() is variadic: a fixed-argument wrapper for Rust. */
struct workqueue_struct *rust_helper_vfs_alloc_free_wq(const char *name)
{
	return alloc_workqueue("%s_free", 0, 0, name);
}

void rust_helper_init_completion(struct completion *x)
{
	init_completion(x);
}

/*
 * The caller's credentials as FUSE sends them (fuse_fill_in_header()):
 * fsuid and fsgid in the initial user namespace, the thread id in the
 * initial pid namespace (C: the mounter's pid namespace). (uid_t)-1 when
 * they do not map.
 */
void rust_helper_vfs_current_creds(u32 *uid, u32 *gid, u32 *pid)
{
	*uid = from_kuid(&init_user_ns, current_fsuid());
	*gid = from_kgid(&init_user_ns, current_fsgid());
	*pid = pid_nr_ns(task_pid(current), &init_pid_ns);
}
