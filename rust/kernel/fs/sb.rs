// SPDX-License-Identifier: GPL-2.0

//! Superblocks (`struct super_block`) and their operations
//! (`super_operations`, implemented through [`FileSystem`]).
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{dentry, inode, FileSystem, Inode};
use crate::{
    bindings,
    error::from_result,
    ffi::c_int,
    prelude::*,
    types::{ForeignOwnable, Opaque},
};
use core::marker::PhantomData;

/// Typestate of a [`SuperBlock`] being filled: only its creator holds it
/// (`&mut`), so the setters may write without synchronisation.
pub struct New;

/// Typestate of a [`SuperBlock`] that is set up and shared.
pub struct Ready;

/// A superblock of file system `T`, in state `S` ([`New`] or [`Ready`]).
///
/// # Invariants
///
/// The wrapped superblock is of type `T` and valid for the lifetime of the
/// reference; a `SuperBlock<T, New>` is only reachable through the unique
/// `&mut` given to the fill function of
/// [`FsContext::get_tree_shared`](super::FsContext::get_tree_shared).
#[repr(transparent)]
pub struct SuperBlock<T: FileSystem, S = Ready>(Opaque<bindings::super_block>, PhantomData<(T, S)>);

impl<T: FileSystem> SuperBlock<T, Ready> {
    /// # Safety
    ///
    /// `ptr` must be a valid, set-up superblock of type `T` for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::super_block) -> &'a Self {
        // SAFETY: Transparent wrapper; validity from the caller.
        unsafe { &*ptr.cast() }
    }
}

impl<T: FileSystem> SuperBlock<T, Ready> {
    /// Enters a page fault that will write (`sb_start_pagefault()`): a
    /// freeze waits for it; the guard ends it.
    pub fn start_pagefault(&self) -> PagefaultGuard<'_, T> {
        // SAFETY: The superblock is valid; the guard ends the section.
        unsafe { bindings::sb_start_pagefault(self.raw()) };
        PagefaultGuard(self)
    }
}

/// A write page fault in progress on a superblock
/// ([`SuperBlock::start_pagefault`]); dropping it ends it.
#[must_use = "the section ends when the guard is dropped"]
pub struct PagefaultGuard<'a, T: FileSystem>(&'a SuperBlock<T, Ready>);

impl<T: FileSystem> Drop for PagefaultGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: The section was entered when the guard was made.
        unsafe { bindings::sb_end_pagefault(self.0.raw()) };
    }
}

impl<T: FileSystem> SuperBlock<T, New> {
    /// # Safety
    ///
    /// `ptr` must be a new superblock of type `T`, locked and used by the
    /// caller alone for `'a`.
    pub(crate) unsafe fn from_raw_mut<'a>(ptr: *mut bindings::super_block) -> &'a mut Self {
        // SAFETY: Transparent wrapper; validity and exclusivity from the
        // caller.
        unsafe { &mut *ptr.cast() }
    }

    /// Sets the magic number (`statfs` `f_type`).
    pub fn set_magic(&mut self, magic: u64) -> &mut Self {
        // SAFETY: `New`: the superblock is ours alone (`&mut`).
        unsafe { (*self.raw()).s_magic = magic as _ };
        self
    }

    /// Sets the block size (a power of two, `bits` clamped to `9..=16`).
    pub fn set_blocksize_bits(&mut self, bits: u8) -> &mut Self {
        let bits = bits.clamp(9, 16);
        // SAFETY: As `set_magic`.
        unsafe {
            (*self.raw()).s_blocksize_bits = bits;
            (*self.raw()).s_blocksize = 1 << bits;
        }
        self
    }

    /// Sets the largest file size.
    pub fn set_maxbytes(&mut self, max: i64) -> &mut Self {
        // SAFETY: As `set_magic`.
        unsafe { (*self.raw()).s_maxbytes = max };
        self
    }

    /// Sets the timestamp granularity, in nanoseconds (`1..=1_000_000_000`).
    pub fn set_time_gran(&mut self, ns: u32) -> &mut Self {
        // SAFETY: As `set_magic`.
        unsafe { (*self.raw()).s_time_gran = ns.clamp(1, 1_000_000_000) };
        self
    }

    /// Adds `SB_I_*` flags (`s_iflags`), e.g. [`super::SB_I_NOIDMAP`].
    pub fn add_iflags(&mut self, flags: u64) -> &mut Self {
        // SAFETY: As `set_magic`.
        unsafe { (*self.raw()).s_iflags |= flags as crate::ffi::c_ulong };
        self
    }

    /// Marks the superblock `SB_NOSEC`: the VFS may mark inodes without
    /// set-id bits or security xattrs `S_NOSEC` (see [`super::SB_NOSEC`]).
    pub fn set_nosec(&mut self) -> &mut Self {
        // SAFETY: As `set_magic`.
        unsafe { (*self.raw()).s_flags |= super::SB_NOSEC as crate::ffi::c_ulong };
        self
    }

    #[cfg(CONFIG_FS_POSIX_ACL)]
    /// Marks the superblock `SB_POSIXACL` (see [`super::SB_POSIXACL`]):
    /// the inodes' ACLs take part in permission checks, and the file
    /// system applies the umask of the entries it creates.
    pub fn set_posixacl(&mut self) -> &mut Self {
        // SAFETY: As `set_magic`.
        unsafe { (*self.raw()).s_flags |= super::SB_POSIXACL as crate::ffi::c_ulong };
        self
    }

    /// Sets the dentry operations of every dentry of this superblock
    /// (`s_d_op`).
    pub fn set_dentry_ops(&mut self, ops: dentry::Ops<T>) -> &mut Self {
        // SAFETY: As `set_magic`; the table is static.
        unsafe { (*self.raw()).s_d_op = ops.as_raw() };
        self
    }

    /// Sets the extended attribute handlers (`s_xattr`).
    pub fn set_xattr_handlers(&mut self, h: super::xattr::Handlers<T>) -> &mut Self {
        // SAFETY: As `set_magic`; the table is static.
        unsafe { (*self.raw()).s_xattr = h.as_raw().cast() };
        self
    }

    /// Gives the superblock a backing device of its own
    /// (`super_setup_bdi()`), so its dirty page cache is written back (an
    /// anonymous superblock's default one does no writeback), with at most
    /// `max_ratio` percent of the dirty threshold (`bdi_set_max_ratio()`);
    /// with `strict`, held to that share even below the global background
    /// threshold (`BDI_CAP_STRICTLIMIT`, as C's FUSE: a stalled server
    /// cannot pin more dirty memory than that).
    pub fn setup_bdi(&mut self, max_ratio: u32, strict: bool) -> Result<&mut Self> {
        // SAFETY: As `set_magic`: the superblock is being filled.
        crate::error::to_result(unsafe { bindings::super_setup_bdi(self.raw()) })?;
        // SAFETY: `super_setup_bdi` set `s_bdi` to a live bdi of ours.
        crate::error::to_result(unsafe { bindings::vfs_sb_bdi_max_ratio(self.raw(), max_ratio) })?;
        if strict {
            // SAFETY: As above; the capability bits are the bdi owner's
            // to set while nothing writes back through it yet.
            unsafe { bindings::vfs_sb_bdi_strictlimit(self.raw()) };
        }
        Ok(self)
    }
}

impl<T: FileSystem, S> SuperBlock<T, S> {
    pub(crate) fn raw(&self) -> *mut bindings::super_block {
        self.0.get()
    }

    /// The file system's data of this superblock.
    pub fn data(&self) -> <T::Data as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: `s_fs_info` of a superblock of ours is an `SbInfo<T>` from
        // `get_tree_shared`, freed only after an RCU grace period following
        // `kill_sb` (so also RCU path walkers that reached the superblock
        // before see it alive), and holding `T::Data` until then.
        unsafe { T::Data::borrow((*(*self.raw()).s_fs_info.cast::<SbInfo<T>>()).data()) }
    }

    /// Finds the inode whose key (the file system's own identity of it,
    /// independent of `i_ino`) is `key` (`iget5_locked()`): a new one to
    /// set up, or the one already in the cache (whose attributes the caller
    /// may refresh, or which it may find stale and [unhash]).
    ///
    /// [unhash]: Inode::unhash
    pub fn iget(&self, key: u64) -> Result<inode::Iget<T>> {
        // SAFETY: The superblock is valid and of `T`.
        let raw = unsafe { inode::iget5::<T>(self.raw(), key) };
        let raw = core::ptr::NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: `iget_locked` returned a referenced inode of ours; `I_NEW`
        // means it is new, locked and invisible to other lookups.
        Ok(unsafe { inode::Iget::from_iget_locked(raw) })
    }
}

/// The `seq_file` that `show_options` writes to.
#[repr(transparent)]
pub struct SeqFile(Opaque<bindings::seq_file>);

impl SeqFile {
    /// Appends `s`.
    pub fn write(&mut self, s: &[u8]) {
        // SAFETY: `self` is a valid seq_file (only created from the one the
        // VFS passes), `s` is valid for reads of `s.len()` bytes.
        unsafe { bindings::seq_write(self.0.get(), s.as_ptr().cast(), s.len()) };
    }
}

/// The `super_operations` of `T`.
pub(crate) struct SuperOps<T>(PhantomData<T>);

impl<T: FileSystem> SuperOps<T> {
    pub(crate) const TABLE: bindings::super_operations = bindings::super_operations {
        alloc_inode: Some(inode::alloc_inode_callback::<T>),
        free_inode: Some(inode::free_inode_callback::<T>),
        statfs: if T::HAS_STATFS {
            Some(statfs_callback::<T>)
        } else {
            None
        },
        evict_inode: Some(inode::evict_inode_callback::<T>),
        write_inode: if T::HAS_WRITE_INODE {
            Some(write_inode_callback::<T>)
        } else {
            None
        },
        drop_inode: if T::DROP_UNUSED_INODES {
            Some(bindings::generic_delete_inode)
        } else {
            None
        },
        show_options: if T::HAS_SHOW_OPTIONS {
            Some(show_options_callback::<T>)
        } else {
            None
        },
        // SAFETY: All-zeroes is valid for the remaining (optional) callbacks.
        ..unsafe { core::mem::zeroed() }
    };
}

/// What `s_fs_info` of a superblock of `T` points to: the file system's
/// data (`T::Data`, as a foreign pointer) and the work that frees both
/// after an RCU grace period.
///
/// # Invariants
///
/// `data` came from `T::Data::into_foreign` and is taken back only by
/// [`SbInfo::free`].
#[repr(C)]
pub(crate) struct SbInfo<T: FileSystem> {
    /// First: the work item's address is the `SbInfo`'s.
    rwork: Opaque<bindings::rcu_work>,
    data: *const core::ffi::c_void,
    _t: PhantomData<T>,
}

impl<T: FileSystem> SbInfo<T> {
    /// Boxes `data` for `s_fs_info`.
    pub(crate) fn new(data: T::Data) -> Result<*mut Self> {
        // Allocated first: on failure `data` is dropped normally.
        let b = KBox::<Self>::new_uninit(GFP_KERNEL)?;
        let b = b.write(SbInfo::<T> {
            rwork: Opaque::uninit(),
            data: data.into_foreign(),
            _t: PhantomData,
        });
        Ok(KBox::into_raw(b))
    }

    /// The data's foreign pointer.
    pub(crate) fn data(&self) -> *const core::ffi::c_void {
        self.data
    }

    /// Drops the data and the box.
    ///
    /// # Safety
    ///
    /// `p` must come from [`SbInfo::new`], and nobody may use it any more.
    pub(crate) unsafe fn free(p: *mut Self) {
        // SAFETY: The caller gives us the box and its data back.
        unsafe {
            let b = KBox::from_raw(p);
            drop(T::Data::from_foreign(b.data));
        }
    }
}

/// # Safety
///
/// Called only by the workqueue, for the `rcu_work` of an `SbInfo<T>`
/// queued by `kill_sb_callback`.
unsafe extern "C" fn free_sb_info_work<T: FileSystem>(work: *mut bindings::work_struct) {
    let off = core::mem::offset_of!(bindings::rcu_work, work);
    // SAFETY: `work` is the `work` field of the `rcu_work` at the start of
    // an `SbInfo<T>` (`repr(C)`, first field); after the grace period the
    // queued work is its only user.
    unsafe {
        let info = work.cast::<u8>().sub(off).cast::<SbInfo<T>>();
        SbInfo::free(info);
    }
}

/// # Safety
///
/// Called only by the VFS (`file_system_type.kill_sb`), once per superblock of ours.
pub(super) unsafe extern "C" fn kill_sb_callback<T: FileSystem>(sb: *mut bindings::super_block) {
    // SAFETY: The VFS calls this once per superblock of ours.
    unsafe {
        if !(*sb).s_root.is_null() {
            T::kill_sb(SuperBlock::from_raw(sb));
        }
        bindings::kill_anon_super(sb);
        // No `sget_fc` test runs on the superblock any more (it is
        // `SB_DEAD`), but an RCU path walk may still be reading through it,
        // as in C (which frees its `fuse_mount` with `kfree_rcu`): the data
        // goes after a grace period, from process context (dropping it may
        // sleep), on the type's queue, which unregistration drains.
        let info = (*sb).s_fs_info.cast::<SbInfo<T>>();
        if !info.is_null() {
            let rwork = Opaque::raw_get(core::ptr::addr_of!((*info).rwork));
            bindings::init_rcu_work(rwork, Some(free_sb_info_work::<T>));
            let fs_type = (*sb).s_type.cast::<super::FsType>();
            let wq = (*fs_type)
                .free_wq
                .load(core::sync::atomic::Ordering::Acquire);
            bindings::queue_rcu_work(wq, rwork);
        }
    }
}

/// # Safety
///
/// Called only by the VFS through `SuperOps::TABLE`.
unsafe extern "C" fn write_inode_callback<T: FileSystem>(
    inode: *mut bindings::inode,
    wbc: *mut bindings::writeback_control,
) -> core::ffi::c_int {
    // SAFETY: Writeback holds the inode (an inode of ours, `I_SYNC` set)
    // and the control for the call.
    let sync = unsafe { (*wbc).sync_mode == bindings::writeback_sync_modes_WB_SYNC_ALL };
    crate::error::from_result(|| {
        // SAFETY: As above.
        T::write_inode(unsafe { Inode::<T>::from_raw(inode) }, sync)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through a `super_operations` table of `T`.
unsafe extern "C" fn statfs_callback<T: FileSystem>(
    dentry: *mut bindings::dentry,
    buf: *mut bindings::kstatfs,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes a referenced dentry of a live superblock of
        // ours and a buffer to fill.
        let (d, buf) = unsafe { (dentry::DEntry::<T>::from_raw(dentry), &mut *buf) };
        T::statfs(d, buf)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through `SuperOps::TABLE`.
unsafe extern "C" fn show_options_callback<T: FileSystem>(
    m: *mut bindings::seq_file,
    root: *mut bindings::dentry,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes a valid seq_file and the root of a live
        // superblock of ours; `SeqFile` is a transparent wrapper.
        let (sb, out) = unsafe {
            (
                SuperBlock::<T>::from_raw((*root).d_sb),
                &mut *m.cast::<SeqFile>(),
            )
        };
        T::show_options(sb, out)?;
        Ok(0)
    })
}

/// Evicts `inode` (shared by `evict_inode_callback`): the page cache, then
/// the file system's hook, then `clear_inode`.
///
/// # Safety
///
/// `inode` must be a set-up inode of `T` being evicted.
pub(super) unsafe fn evict<T: FileSystem>(inode: *mut bindings::inode) {
    // SAFETY: The inode is being evicted: nobody else uses it.
    unsafe {
        bindings::truncate_inode_pages_final(core::ptr::addr_of_mut!((*inode).i_data));
        if T::HAS_EVICT_INODE {
            T::evict_inode(Inode::from_raw(inode));
        }
        bindings::clear_inode(inode);
    }
}
