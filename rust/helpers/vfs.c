// SPDX-License-Identifier: GPL-2.0

#include <linux/dcache.h>
#include <linux/jiffies.h>
#include <linux/uidgid.h>

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
