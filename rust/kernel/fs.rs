// SPDX-License-Identifier: GPL-2.0

//! File systems: registration, mount contexts, superblocks, inodes and
//! dentries.
//!
//! A file system implements [`FileSystem`] (its `super_operations`, a
//! `#[vtable]` trait: callbacks it does not implement stay NULL in the C
//! table) and registers it with a [`Registration`] over a `static`
//! [`FsType`] (the C struct must live in static storage: lockdep keys its
//! superblock and inode locks on addresses inside it). Mounting goes
//! through the new mount API: each attempt gets a
//! [`FileSystem::Context`] (`fc->fs_private`) that sees every option, then
//! [`FileSystem::get_tree`] finds or creates the superblock with
//! [`FsContext::get_tree_shared`]. Per-superblock data lives in
//! `sb->s_fs_info` as [`FileSystem::Data`]; per-inode data is embedded in
//! the inode's allocation ([`FileSystem::INodeData`], see [`inode`]).
//!
//! One module per C object, each with its operations table as a
//! `#[vtable]` trait: [`sb`] (`super_operations`, through [`FileSystem`]),
//! [`inode`] (`inode_operations`), [`dentry`] (`dentry_operations`),
//! [`file`] (`file_operations`), [`address_space`] (folios and
//! `address_space_operations`),
//! [`context`] (`fs_context_operations`).
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/fs_context.h`](srctree/include/linux/fs_context.h)

use crate::{bindings, error::to_result, prelude::*, types::ForeignOwnable};
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    sync::atomic::{AtomicBool, AtomicPtr, Ordering},
};

#[cfg(CONFIG_FS_POSIX_ACL)]
pub mod acl;
pub mod address_space;
pub mod context;
pub mod dentry;
pub mod file;
pub mod inode;
#[cfg(CONFIG_FS_IOMAP)]
pub mod iomap;
pub mod sb;
pub mod xattr;

pub use context::FsContext;
pub use dentry::DEntry;
pub use file::File;
pub use inode::{Inode, NewInode};
pub use sb::{New, Ready, SuperBlock};

/// The statistics `statfs()` fills (`struct kstatfs`).
pub type Kstatfs = bindings::kstatfs;

/// `FS_ALLOW_IDMAP`: the file system handles idmapped mounts (superblocks
/// still refuse them with [`SB_I_NOIDMAP`]).
pub const FS_ALLOW_IDMAP: i32 = bindings::FS_ALLOW_IDMAP as i32;

/// `SB_I_NOIDMAP`: no idmapped mounts of this superblock.
pub const SB_I_NOIDMAP: u64 = bindings::SB_I_NOIDMAP as u64;

/// Whether the current task may write a file without losing its set-id
/// bits (`capable(CAP_FSETID)`), as the VFS decides in
/// `file_remove_privs()`; a file system that removes them on the host's
/// side tells the host so.
pub fn capable_fsetid() -> bool {
    // SAFETY: `capable` checks the current task's credentials (and may
    // mark it `PF_SUPERPRIV` and audit); any task context may call it.
    unsafe { bindings::vfs_capable(bindings::CAP_FSETID as _) }
}

/// `SB_NOSEC` (`s_flags`): the VFS may mark inodes without set-id bits or
/// security xattrs `S_NOSEC`, so writes skip `file_remove_privs()`'s
/// xattr lookup until the file system clears the mark (checked against
/// its C value in `rust/helpers/vfs.c`).
pub const SB_NOSEC: u64 = 1 << 28;

/// `SB_POSIXACL` (`s_flags`): permission checks consult the inodes' POSIX
/// ACLs (`get_inode_acl`), and the VFS leaves the umask of new entries to
/// the file system (checked against its C value in `rust/helpers/vfs.c`).
pub const SB_POSIXACL: u64 = 1 << 16;

/// `SB_I_IMA_UNVERIFIABLE_SIGNATURE`: IMA cannot trust file signatures
/// here (the contents can change behind the kernel's back).
pub const SB_I_IMA_UNVERIFIABLE_SIGNATURE: u64 = bindings::SB_I_IMA_UNVERIFIABLE_SIGNATURE as u64;

/// A file system type and its superblock operations (`super_operations`).
#[vtable]
pub trait FileSystem: Sized + 'static {
    /// The type's name, as `mount -t` and /proc/filesystems know it.
    const NAME: &'static CStr;

    /// `FS_*` flags of `struct file_system_type`.
    const FLAGS: i32 = 0;

    /// Whether an inode is evicted as soon as its last reference goes
    /// (`drop_inode = generic_delete_inode`) instead of staying cached
    /// while it has links: for a file system whose server holds state per
    /// cached inode (FUSE's lookup counts).
    const DROP_UNUSED_INODES: bool = false;

    /// State of one mount attempt: the options parsed so far.
    type Context: Send;

    /// Per-superblock data (`sb->s_fs_info`).
    type Data: ForeignOwnable + Send + Sync;

    /// Per-inode data, embedded in the inode's allocation and initialised
    /// by [`NewInode::init`]. It lives until the inode is freed, after an
    /// RCU grace period (so RCU-walk callbacks may read it), and is dropped
    /// from the RCU callback: its drop must not sleep.
    type INodeData: Send + Sync;

    /// Starts a mount attempt.
    fn init_context() -> Result<Self::Context>;

    /// Takes one option. Return `ENOPARAM` for keys this file system does
    /// not know: the VFS then handles `source` and the generic flags, and
    /// refuses the rest with `EINVAL`.
    fn parse_param(ctx: &mut Self::Context, key: &CStr, value: Option<&CStr>) -> Result;

    /// Finds or creates the superblock and sets the mount's root.
    fn get_tree(fc: &mut FsContext<Self>) -> Result;

    /// Whether a superblock with data `existing` is the one `new` describes
    /// (so the mount shares it instead of creating another).
    fn same_super(
        existing: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        new: <Self::Data as ForeignOwnable>::Borrowed<'_>,
    ) -> bool;

    /// Called when a fully set up superblock goes away, before the generic
    /// teardown evicts its inodes.
    fn kill_sb(sb: &SuperBlock<Self>);

    /// Fills `buf` for statfs(2) of the file system `dentry` is in
    /// (`super_operations.statfs`).
    fn statfs(_dentry: &DEntry<Self>, _buf: &mut Kstatfs) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// An inode is being evicted (`super_operations.evict_inode`), after
    /// its page cache is gone and before it is cleared; its data stays
    /// until the inode is freed.
    fn evict_inode(_inode: &Inode<Self>) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes the dirty metadata of `inode` (its times) to the backing
    /// store (`super_operations.write_inode`, from writeback and
    /// `sync_inode_metadata()`); `sync` when the caller waits for it
    /// (`WB_SYNC_ALL`).
    fn write_inode(_inode: &Inode<Self>, _sync: bool) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes the mount options to show in /proc/mounts
    /// (`super_operations.show_options`), each as `,key` or `,key=value`.
    fn show_options(_sb: &SuperBlock<Self>, _out: &mut sb::SeqFile) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// Static storage for a `struct file_system_type`.
///
/// Declare one `static` per file system and hand it to [`Registration::new`].
///
/// # Invariants
///
/// `ty` is written only by the holder of `claimed`, set by the first
/// [`Registration::new`] and never cleared (superblocks of the type may
/// outlive its registration, and the VFS reads `ty` for them; the static
/// goes away with the module, which no superblock outlives), and only
/// before the type is registered.
#[repr(C)]
pub struct FsType {
    /// First, so that `sb->s_type` is also a pointer to the `FsType`.
    ty: UnsafeCell<bindings::file_system_type>,
    claimed: AtomicBool,
    /// Where superblock data is freed after RCU (`sb::kill_sb_callback`).
    pub(crate) free_wq: AtomicPtr<bindings::workqueue_struct>,
}

// SAFETY: By the type invariant, writes to `ty` are exclusive (one claimant,
// before registration); everything else is the VFS's business.
unsafe impl Sync for FsType {}

impl FsType {
    /// An unregistered, all-zeroes type.
    pub const fn new() -> Self {
        FsType {
            // SAFETY: All-zeroes is a valid `file_system_type` (no name, no
            // callbacks, zeroed lockdep keys, which live in static storage).
            ty: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            claimed: AtomicBool::new(false),
            free_wq: AtomicPtr::new(core::ptr::null_mut()),
        }
    }
}

impl Default for FsType {
    fn default() -> Self {
        Self::new()
    }
}

/// The registration of file system `T` (`register_filesystem()`).
///
/// # Invariants
///
/// `fs_type` is registered with the VFS for the lifetime of the value, and
/// this registration took its claim.
pub struct Registration<T: FileSystem> {
    fs_type: &'static FsType,
    _t: PhantomData<T>,
}

// SAFETY: The registration only holds a pointer to static data.
unsafe impl<T: FileSystem> Send for Registration<T> {}
// SAFETY: `&Registration` exposes nothing.
unsafe impl<T: FileSystem> Sync for Registration<T> {}

impl<T: FileSystem> Registration<T> {
    /// Registers `T` in `fs_type`, owned by `module`. Fails with `EBUSY`
    /// if `fs_type` was registered before (one registration per static for
    /// the module's lifetime), or the VFS has a type of that name.
    pub fn new(fs_type: &'static FsType, module: &'static ThisModule) -> Result<Self> {
        if fs_type.claimed.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let t = fs_type.ty.get();
        // SAFETY: We hold the claim, which no one held before, so the type
        // was never registered and nobody else reads or writes it.
        // All fields written are plain data.
        unsafe {
            (*t).name = T::NAME.as_char_ptr();
            (*t).fs_flags = T::FLAGS;
            (*t).init_fs_context = Some(context::init_fs_context_callback::<T>);
            (*t).kill_sb = Some(sb::kill_sb_callback::<T>);
            (*t).owner = module.0;
        }
        // Superblock data is freed after an RCU grace period, from this
        // queue, which unregistration drains.
        // SAFETY: The name is a static string.
        let wq = unsafe { bindings::vfs_alloc_free_wq(T::NAME.as_char_ptr()) };
        if wq.is_null() {
            return Err(ENOMEM);
        }
        fs_type.free_wq.store(wq, Ordering::Release);
        // The claim stays taken on failure too: `ty` may have been seen.
        // SAFETY: `t` is a fully initialised type in static storage.
        if let Err(e) = to_result(unsafe { bindings::register_filesystem(t) }) {
            fs_type
                .free_wq
                .store(core::ptr::null_mut(), Ordering::Release);
            // SAFETY: Nothing was queued on `wq`.
            unsafe { bindings::destroy_workqueue(wq) };
            return Err(e);
        }
        // INVARIANT: Registered just above, with the claim held.
        Ok(Registration {
            fs_type,
            _t: PhantomData,
        })
    }
}

impl<T: FileSystem> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the type is registered. The module
        // cannot be unloaded while a superblock of it exists (the VFS holds
        // a module reference per superblock), so none remains.
        unsafe { bindings::unregister_filesystem(self.fs_type.ty.get()) };
        // Inodes are freed from RCU callbacks (`free_inode`), and
        // superblock data from RCU work queued by `kill_sb`, both running
        // this module's code: wait for the last ones before it can go.
        // SAFETY: Process context (module exit); the queue was created in
        // `new`, and once RCU callbacks are done nothing queues work on it.
        // The data's drop (run from that work) may itself queue RCU
        // callbacks: wait for those too.
        unsafe {
            bindings::rcu_barrier();
            bindings::destroy_workqueue(self.fs_type.free_wq.load(Ordering::Acquire));
            bindings::rcu_barrier();
        }
    }
}
