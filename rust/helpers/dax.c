// SPDX-License-Identifier: GPL-2.0

#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/pfn_t.h>
#include <linux/sched.h>
#include <linux/wait_bit.h>

pfn_t rust_helper_phys_to_pfn_t(phys_addr_t addr, u64 flags)
{
	return phys_to_pfn_t(addr, flags);
}

/*
 * As fuse's __fuse_dax_break_layouts() wait: sleeps (interruptibly) until
 * @page, a DAX page of @inode found busy by dax_layout_busy_page_range(),
 * has no reference but the mapping's, dropping the inode's invalidate_lock
 * (held exclusively by the caller) while asleep.
 */
int rust_helper_vfs_dax_wait_page_idle(struct page *page, struct inode *inode)
{
	return ___wait_var_event(&page->_refcount,
				 atomic_read(&page->_refcount) == 1,
				 TASK_INTERRUPTIBLE, 0, 0,
				 ({ filemap_invalidate_unlock(inode->i_mapping);
				    schedule();
				    filemap_invalidate_lock(inode->i_mapping); }));
}
