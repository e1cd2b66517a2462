// SPDX-License-Identifier: GPL-2.0

#include <linux/backing-dev.h>
#include <linux/completion.h>
#include <linux/cred.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/dcache.h>
#include <linux/filelock.h>
#include <linux/jiffies.h>
#include <linux/uidgid.h>
#include <linux/pagemap.h>
#include <linux/posix_acl.h>
#include <linux/uio.h>
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

/* Static inlines without CONFIG_USER_NS (exported functions with it). */
uid_t rust_helper_from_kuid(struct user_namespace *ns, kuid_t uid)
{
	return from_kuid(ns, uid);
}

gid_t rust_helper_from_kgid(struct user_namespace *ns, kgid_t gid)
{
	return from_kgid(ns, gid);
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

/*
 * File locks: the caller's thread group id, and a pid the host gave back,
 * both in the initial pid namespace (as the request headers; C's FUSE uses
 * its connection's namespace, the mounter's).
 */
pid_t rust_helper_vfs_current_tgid(void)
{
	return pid_nr_ns(task_tgid(current), &init_pid_ns);
}

pid_t rust_helper_vfs_lock_pid(pid_t nr)
{
	pid_t ret;

	rcu_read_lock();
	ret = pid_nr_ns(find_pid_ns(nr, &init_pid_ns), &init_pid_ns);
	rcu_read_unlock();
	return ret;
}

/* Whether a lock manager (lockd) waits for an asynchronous grant. */
bool rust_helper_vfs_lock_wants_grant(const struct file_lock *fl)
{
	return fl->fl_lmops && fl->fl_lmops->lm_grant;
}

loff_t rust_helper_i_size_read(const struct inode *inode)
{
	return i_size_read(inode);
}

void rust_helper_i_size_write(struct inode *inode, loff_t i_size)
{
	i_size_write(inode, i_size);
}

void rust_helper_inode_lock(struct inode *inode)
{
	inode_lock(inode);
}

void rust_helper_inode_unlock(struct inode *inode)
{
	inode_unlock(inode);
}

int rust_helper_rwsem_is_locked(struct rw_semaphore *sem)
{
	return rwsem_is_locked(sem);
}

size_t rust_helper_iov_iter_count(const struct iov_iter *i)
{
	return iov_iter_count(i);
}

int rust_helper_iov_iter_npages_cap(struct iov_iter *i, int maxpages,
				    size_t max_bytes)
{
	return iov_iter_npages_cap(i, maxpages, max_bytes);
}

ssize_t rust_helper_generic_write_sync(struct kiocb *iocb, ssize_t count)
{
	return generic_write_sync(iocb, count);
}

void rust_helper_set_delayed_call(struct delayed_call *call,
				  void (*fn)(void *), void *arg)
{
	set_delayed_call(call, fn, arg);
}

loff_t rust_helper_folio_pos(struct folio *folio)
{
	return folio_pos(folio);
}

size_t rust_helper_folio_size(struct folio *folio)
{
	return folio_size(folio);
}

struct page *rust_helper_folio_page(struct folio *folio, unsigned long n)
{
	return folio_page(folio, n);
}

bool rust_helper_folio_test_uptodate(struct folio *folio)
{
	return folio_test_uptodate(folio);
}

void rust_helper_folio_mark_uptodate(struct folio *folio)
{
	folio_mark_uptodate(folio);
}

void rust_helper_folio_clear_uptodate(struct folio *folio)
{
	folio_clear_uptodate(folio);
}

void rust_helper_folio_zero_segment(struct folio *folio, size_t start,
				    size_t xend)
{
	folio_zero_segment(folio, start, xend);
}

void rust_helper_folio_get(struct folio *folio)
{
	folio_get(folio);
}

void rust_helper_folio_put(struct folio *folio)
{
	folio_put(folio);
}

/* A locked page cache folio for writing, as a write_begin gets one. */
struct folio *rust_helper_vfs_grab_write_folio(struct address_space *mapping,
					       pgoff_t index)
{
	return __filemap_get_folio(mapping, index, FGP_WRITEBEGIN,
				   mapping_gfp_mask(mapping));
}

loff_t rust_helper_readahead_pos(struct readahead_control *rac)
{
	return readahead_pos(rac);
}

size_t rust_helper_readahead_length(struct readahead_control *rac)
{
	return readahead_length(rac);
}

struct folio *rust_helper___readahead_folio(struct readahead_control *rac)
{
	return __readahead_folio(rac);
}

/* IOCB_APPEND is a __force cast bindgen cannot evaluate. */
static_assert(IOCB_APPEND == 0x10);
static_assert(IOCB_DSYNC == 0x2 && IOCB_SYNC == 0x4);

void rust_helper_folio_lock(struct folio *folio)
{
	folio_lock(folio);
}

/* FMODE_CAN_ODIRECT is a __force cast bindgen cannot evaluate. */
void rust_helper_vfs_allow_direct_io(struct file *file)
{
	file->f_mode |= FMODE_CAN_ODIRECT;
}

bool rust_helper_vfs_vma_shared_writable(struct vm_area_struct *vma)
{
	return (vma->vm_flags & VM_SHARED) && (vma->vm_flags & VM_MAYWRITE);
}

unsigned long rust_helper_vfs_vma_flags(const struct vm_area_struct *vma)
{
	return vma->vm_flags;
}

unsigned long rust_helper_vfs_vma_start(const struct vm_area_struct *vma)
{
	return vma->vm_start;
}

unsigned long rust_helper_vfs_vma_end(const struct vm_area_struct *vma)
{
	return vma->vm_end;
}

/* As generic_file_mmap(), with the file system's operations. */
void rust_helper_vfs_vma_set_ops(struct file *file, struct vm_area_struct *vma,
				 const struct vm_operations_struct *ops)
{
	file_accessed(file);
	vma->vm_ops = ops;
}

void rust_helper_mapping_set_error(struct address_space *mapping, int error)
{
	mapping_set_error(mapping, error);
}

/* The current task's file table, as FUSE's lock owner. */
unsigned long rust_helper_vfs_current_files(void)
{
	return (unsigned long)current->files;
}

void rust_helper_flush_dcache_folio(struct folio *folio)
{
	flush_dcache_folio(folio);
}

/*
 * S_NOSEC cleared atomically: other i_flags bits (S_DEAD, S_SWAPFILE, ...)
 * change without a common lock too (as inode_set_flags()).
 */
void rust_helper_vfs_inode_clear_nosec(struct inode *inode)
{
	if (READ_ONCE(inode->i_flags) & S_NOSEC)
		set_mask_bits(&inode->i_flags, S_NOSEC, 0);
}

/* capable() is a static inline without CONFIG_MULTIUSER. */
bool rust_helper_vfs_capable(int cap)
{
	return capable(cap);
}

/* bdi_set_max_ratio() of a superblock's backing device. */
int rust_helper_vfs_sb_bdi_max_ratio(struct super_block *sb, unsigned int ratio)
{
	return bdi_set_max_ratio(sb->s_bdi, ratio);
}

void rust_helper_vfs_sb_bdi_strictlimit(struct super_block *sb)
{
	sb->s_bdi->capabilities |= BDI_CAP_STRICTLIMIT;
}

void rust_helper_vfs_init_waitqueue_head(wait_queue_head_t *wq)
{
	init_waitqueue_head(wq);
}

/*
 * The dentry of @name (@len bytes, a valid name) in directory @parent, if
 * the dcache has it (referenced), else NULL. -EINVAL for a parent whose
 * names hash their own way (DCACHE_OP_HASH).
 */
struct dentry *rust_helper_vfs_d_lookup_name(struct dentry *parent, const unsigned char *name,
					     unsigned int len)
{
	struct qstr q = QSTR_INIT(name, len);

	if (parent->d_flags & DCACHE_OP_HASH)
		return ERR_PTR(-EINVAL);
	q.hash = full_name_hash(parent, name, len);
	return d_lookup(parent, &q);
}

/*
 * d_alloc_parallel() of @name in @parent (see above): a new dentry in
 * lookup whose waiters sleep on @wq, which must serve this dentry alone
 * and live until d_lookup_done(); or one another lookup just finished.
 */
struct dentry *rust_helper_vfs_d_alloc_parallel_name(struct dentry *parent,
						     const unsigned char *name, unsigned int len,
						     wait_queue_head_t *wq)
{
	struct qstr q = QSTR_INIT(name, len);

	if (parent->d_flags & DCACHE_OP_HASH)
		return ERR_PTR(-EINVAL);
	q.hash = full_name_hash(parent, name, len);
	return d_alloc_parallel(parent, &q, wq);
}

bool rust_helper_d_can_lookup(const struct dentry *dentry)
{
	return d_can_lookup(dentry);
}

void rust_helper_d_lookup_done(struct dentry *dentry)
{
	d_lookup_done(dentry);
}

bool rust_helper_d_in_lookup(const struct dentry *dentry)
{
	return d_in_lookup(dentry);
}

int rust_helper_vfs_file_should_drop_suidgid(struct file *file)
{
	return setattr_should_drop_suidgid(file_mnt_idmap(file), file_inode(file));
}

/* FMODE_CREATED is a __force cast bindgen cannot evaluate. */
void rust_helper_vfs_file_set_created(struct file *file)
{
	file->f_mode |= FMODE_CREATED;
}

bool rust_helper_user_backed_iter(const struct iov_iter *i)
{
	return user_backed_iter(i);
}

void rust_helper_vfs_put_page(struct page *page)
{
	put_page(page);
}

/* FMODE_OPENED is a __force cast bindgen cannot evaluate. */
bool rust_helper_vfs_file_is_opened(struct file *file)
{
	return file->f_mode & FMODE_OPENED;
}

void rust_helper_vfs_mapping_set_stable_writes(struct address_space *mapping)
{
	mapping_set_stable_writes(mapping);
}

/* FOP_MMAP_SYNC is a __force cast bindgen cannot evaluate. */
static_assert(FOP_MMAP_SYNC == (1 << 2));
/* SB_NOSEC is BIT(28), which bindgen cannot evaluate either. */
static_assert(SB_NOSEC == (1UL << 28));
/* SB_POSIXACL is BIT(16). */
static_assert(SB_POSIXACL == (1UL << 16));

#ifdef CONFIG_FS_POSIX_ACL
void rust_helper_posix_acl_release(struct posix_acl *acl)
{
	posix_acl_release(acl);
}

/*
 * Whether the current task may keep the set-group-ID bit of @inode when it
 * changes the file's ACL (in the file's group as seen through @idmap, or
 * CAP_FSETID).
 */
bool rust_helper_vfs_in_group_or_capable(struct mnt_idmap *idmap,
					 const struct inode *inode)
{
	return in_group_or_capable(idmap, inode, i_gid_into_vfsgid(idmap, inode));
}

/*
 * Neither ACL of @inode is cached: every lookup asks the file system (as
 * fuse_init_inode() does for servers without FUSE_POSIX_ACL).
 */
void rust_helper_vfs_inode_acl_dont_cache(struct inode *inode)
{
	inode->i_acl = ACL_DONT_CACHE;
	inode->i_default_acl = ACL_DONT_CACHE;
}
#endif /* CONFIG_FS_POSIX_ACL */

/* As fuse_dax_mmap(): a DAX mapping with the file system's fault handlers. */
void rust_helper_vfs_vma_set_dax_ops(struct file *file,
				     struct vm_area_struct *vma,
				     const struct vm_operations_struct *ops)
{
	file_accessed(file);
	vma->vm_ops = ops;
	vm_flags_set(vma, VM_MIXEDMAP | VM_HUGEPAGE);
}

void rust_helper_inode_lock_shared(struct inode *inode)
{
	inode_lock_shared(inode);
}

void rust_helper_inode_unlock_shared(struct inode *inode)
{
	inode_unlock_shared(inode);
}

void rust_helper_filemap_invalidate_lock(struct address_space *mapping)
{
	filemap_invalidate_lock(mapping);
}

void rust_helper_filemap_invalidate_unlock(struct address_space *mapping)
{
	filemap_invalidate_unlock(mapping);
}

void rust_helper_filemap_invalidate_lock_shared(struct address_space *mapping)
{
	filemap_invalidate_lock_shared(mapping);
}

void rust_helper_filemap_invalidate_unlock_shared(struct address_space *mapping)
{
	filemap_invalidate_unlock_shared(mapping);
}

int rust_helper_vfs_filemap_invalidate_trylock(struct address_space *mapping)
{
	return down_write_trylock(&mapping->invalidate_lock);
}

void rust_helper_sb_start_pagefault(struct super_block *sb)
{
	sb_start_pagefault(sb);
}

void rust_helper_sb_end_pagefault(struct super_block *sb)
{
	sb_end_pagefault(sb);
}

bool rust_helper_vfs_is_dax(const struct inode *inode)
{
	return IS_DAX(inode);
}

/* INIT_DELAYED_WORK is a macro (one lockdep class for every user). */
void rust_helper_vfs_init_delayed_work(struct delayed_work *dwork, work_func_t func)
{
	INIT_DELAYED_WORK(dwork, func);
}

unsigned int rust_helper_vfs_memalloc_nofs_save(void)
{
	return memalloc_nofs_save();
}

void rust_helper_vfs_memalloc_nofs_restore(unsigned int flags)
{
	memalloc_nofs_restore(flags);
}

bool rust_helper_vfs_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}
