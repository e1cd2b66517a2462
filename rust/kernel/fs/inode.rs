// SPDX-License-Identifier: GPL-2.0

//! Inodes (`struct inode`) with the file system's data embedded, and their
//! operations (`inode_operations`).
//!
//! Each inode of a file system `T` is allocated by `alloc_inode` as an
//! `INodeWithData<T>`: the C inode followed by `T::INodeData`, so the data
//! is reached without a second allocation or pointer, and is freed by
//! `free_inode` after an RCU grace period, with the inode (RCU-walk
//! callbacks may read it), as C's `fuse_inode` is.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{dentry::DEntry, file::File, sb, FileSystem, SuperBlock};
use crate::types::ForeignOwnable;
use crate::{
    bindings,
    error::from_result,
    ffi::{c_char, c_int, c_uint},
    init::PinInit,
    prelude::*,
    types::{ARef, AlwaysRefCounted, Opaque},
};
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    mem::{ManuallyDrop, MaybeUninit},
    ptr::NonNull,
};

/// The allocation behind every inode of `T`.
///
/// # Invariants
///
/// `init` is false until `data` is initialised (by [`NewInode::init`],
/// while the inode is new and locked), true afterwards until it is dropped
/// by `free_inode`.
#[repr(C)]
struct INodeWithData<T: FileSystem> {
    inode: Opaque<bindings::inode>,
    /// The file system's key of the inode (see [`SuperBlock::iget`]), set
    /// under `inode_hash_lock` before the inode is hashed.
    key: UnsafeCell<u64>,
    init: UnsafeCell<bool>,
    data: UnsafeCell<MaybeUninit<T::INodeData>>,
}

impl<T: FileSystem> INodeWithData<T> {
    /// The allocation that `inode` is part of.
    ///
    /// # Safety
    ///
    /// `inode` must be an inode of `T` (allocated by `alloc_inode_callback`).
    unsafe fn container_of(inode: *const bindings::inode) -> *mut Self {
        let off = core::mem::offset_of!(Self, inode);
        // SAFETY: The caller guarantees `inode` lies at `off` in an
        // `INodeWithData<T>`, so the subtraction stays in the allocation.
        unsafe { inode.cast::<u8>().sub(off).cast::<Self>().cast_mut() }
    }
}

/// An inode of file system `T` whose data is set up.
///
/// # Invariants
///
/// The wrapped inode belongs to `T` and its data is initialised.
#[repr(transparent)]
pub struct Inode<T: FileSystem>(Opaque<bindings::inode>, PhantomData<T>);

// SAFETY: Inodes are meant to be shared between threads; the C side
// synchronises its fields, and `T::INodeData` is `Send + Sync`.
unsafe impl<T: FileSystem> Send for Inode<T> {}
// SAFETY: See above.
unsafe impl<T: FileSystem> Sync for Inode<T> {}

// SAFETY: `ihold` and `iput` keep the inode alive while a reference is held.
unsafe impl<T: FileSystem> AlwaysRefCounted for Inode<T> {
    fn inc_ref(&self) {
        // SAFETY: `self` is a live inode we hold a reference to.
        unsafe { bindings::ihold(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference.
        unsafe { bindings::iput(obj.as_ptr().cast()) };
    }
}

/// Attributes of an inode, as the file system knows them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attrs {
    /// Inode number shown to user space (`st_ino`).
    pub ino: u64,
    /// Type and permission bits.
    pub mode: u32,
    /// Owner, in the initial user namespace.
    pub uid: u32,
    /// Group, in the initial user namespace.
    pub gid: u32,
    /// Size in bytes.
    pub size: i64,
    /// Allocated size in 512-byte blocks.
    pub blocks: u64,
    /// Link count.
    pub nlink: u32,
    /// Device number of a device node (`new_encode_dev` encoding).
    pub rdev: u32,
    /// Last access (seconds, nanoseconds).
    pub atime: (i64, u32),
    /// Last modification.
    pub mtime: (i64, u32),
    /// Last status change.
    pub ctime: (i64, u32),
}

/// `S_NOATIME`: do not update the access time.
pub const S_NOATIME: u32 = bindings::S_NOATIME;

/// `S_NOCMTIME`: the file system keeps modification and change times.
pub const S_NOCMTIME: u32 = bindings::S_NOCMTIME;
/// `S_NOSEC`: no set-id bits or security xattrs; writes skip
/// `file_remove_privs()`'s checks (set by the VFS on `SB_NOSEC`
/// superblocks).
pub const S_NOSEC: u32 = bindings::S_NOSEC;
/// `S_DAX`: the file's data is reached directly (DAX), not through the
/// page cache.
pub const S_DAX: u32 = bindings::S_DAX;

/// `S_IFMT`: the type bits of `i_mode`.
const S_IFMT: u32 = 0o170000;

impl<T: FileSystem> Inode<T> {
    /// # Safety
    ///
    /// `ptr` must be a valid inode of `T` with its data set up, for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::inode) -> &'a Self {
        // SAFETY: Transparent wrapper; validity from the caller.
        unsafe { &*ptr.cast() }
    }

    /// Gives up a reference without dropping it.
    pub(crate) fn into_raw(this: ARef<Self>) -> *mut bindings::inode {
        ARef::into_raw(this).as_ptr().cast()
    }

    /// The raw `struct inode *`.
    pub fn as_raw(&self) -> *mut bindings::inode {
        self.0.get()
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        // SAFETY: `i_ino` is set when the inode is hashed and never changes.
        unsafe { (*self.as_raw()).i_ino as u64 }
    }

    /// The type and permission bits.
    pub fn mode(&self) -> u32 {
        // SAFETY: The inode is valid; a racy read of a `u16` is what C does.
        u32::from(unsafe { core::ptr::read_volatile(&(*self.as_raw()).i_mode) })
    }

    /// The file system's data of this inode.
    pub fn data(&self) -> &T::INodeData {
        // SAFETY: By the type invariant the inode belongs to `T` and its
        // data is initialised; it lives as long as the inode.
        unsafe {
            let p = INodeWithData::<T>::container_of(self.as_raw());
            (*(*p).data.get()).assume_init_ref()
        }
    }

    /// The superblock the inode belongs to.
    pub fn super_block(&self) -> &SuperBlock<T> {
        // SAFETY: An inode's superblock outlives it and is set up.
        unsafe { SuperBlock::from_raw((*self.as_raw()).i_sb) }
    }

    /// Refreshes the attributes of a cached inode, keeping its type (the
    /// caller checks it): as C's `fuse_change_attributes_common`. Writers
    /// must be serialised by the caller; readers may see a mix, as in C.
    pub fn refresh_attrs(&self, a: &Attrs) {
        self.refresh(a, false);
    }

    /// As [`Inode::refresh_attrs`], leaving the size and the modification
    /// and change times alone: the ones a file system keeps itself (C's
    /// `fuse_get_cache_mask()` with a writeback cache), which writers
    /// update without the caller's lock, so they are never stored from a
    /// copy read earlier.
    pub fn refresh_attrs_cached(&self, a: &Attrs) {
        self.refresh(a, true);
    }

    fn refresh(&self, a: &Attrs, keep_size_times: bool) {
        let i = self.as_raw();
        let mode = (self.mode() & S_IFMT) | (a.mode & !S_IFMT);
        // SAFETY: The inode is valid. These are plain stores of fields the
        // VFS reads without locks (C writes them under `fi->lock`, which
        // readers do not take either); `set_nlink` is the VFS's setter.
        unsafe {
            core::ptr::write_volatile(&mut (*i).i_ino, a.ino as _);
            core::ptr::write_volatile(&mut (*i).i_mode, mode as _);
            (*i).i_uid =
                bindings::make_kuid(core::ptr::addr_of_mut!(bindings::init_user_ns), a.uid);
            (*i).i_gid =
                bindings::make_kgid(core::ptr::addr_of_mut!(bindings::init_user_ns), a.gid);
            (*i).i_blocks = a.blocks as _;
            bindings::set_nlink(i, a.nlink);
            if keep_size_times {
                (*i).i_atime_sec = a.atime.0;
                (*i).i_atime_nsec = a.atime.1;
            } else {
                core::ptr::write_volatile(&mut (*i).i_size, a.size);
                set_times(i, a);
            }
        }
    }

    /// Clears `S_NOSEC`: the next write asks again whether privileges
    /// must be removed (`file_remove_privs()`), e.g. after attributes came
    /// from a host that another client may have changed (as C's
    /// `fuse_change_attributes_common`).
    pub fn clear_nosec(&self) {
        // SAFETY: The inode is valid; the helper clears the bit atomically
        // (`set_mask_bits`), as other bits change without a common lock.
        // As in C, a concurrent `inode_has_no_xattr` may set it again from
        // attributes it read before this refresh; the next refresh clears
        // it.
        unsafe { bindings::vfs_inode_clear_nosec(self.as_raw()) };
    }

    #[cfg(CONFIG_FS_POSIX_ACL)]
    /// Drops the cached POSIX ACLs (`forget_all_cached_acls()`): the next
    /// permission check or `getxattr` asks the file system again, e.g.
    /// after the host's attributes changed.
    pub fn forget_cached_acls(&self) {
        // SAFETY: The inode is valid; the function swaps the cache
        // pointers atomically and releases what they held.
        unsafe { bindings::forget_all_cached_acls(self.as_raw()) };
    }

    /// The last modification time (`inode_get_mtime()`): seconds and
    /// nanoseconds.
    pub fn mtime(&self) -> (i64, u32) {
        let i = self.as_raw();
        // SAFETY: The inode is valid; plain reads of fields the VFS reads
        // without locks (a torn pair is as possible as in C).
        unsafe {
            (
                core::ptr::read_volatile(&(*i).i_mtime_sec),
                core::ptr::read_volatile(&(*i).i_mtime_nsec),
            )
        }
    }

    /// The last status change time (`inode_get_ctime()`).
    pub fn ctime(&self) -> (i64, u32) {
        let i = self.as_raw();
        // SAFETY: As in `mtime`.
        unsafe {
            (
                core::ptr::read_volatile(&(*i).i_ctime_sec),
                core::ptr::read_volatile(&(*i).i_ctime_nsec),
            )
        }
    }

    /// The size (`i_size_read()`).
    pub fn size(&self) -> i64 {
        // SAFETY: The inode is valid; `i_size_read` is the racy-safe read.
        unsafe { bindings::i_size_read(self.as_raw()) }
    }

    /// Sets the size (`i_size_write()`). Writers are serialised by the
    /// caller (the inode lock, or the file system's own lock), as in C.
    pub fn set_size(&self, size: i64) {
        // SAFETY: The inode is valid.
        unsafe { bindings::i_size_write(self.as_raw(), size) };
    }

    /// One link fewer (`drop_nlink()`), after the host removed a name; a
    /// count already 0 (a careless server) stays 0.
    pub fn drop_nlink(&self) {
        // SAFETY: The inode is valid; the VFS holds the lock of the
        // directory the name was removed from, as `drop_nlink` expects.
        unsafe {
            if (*self.as_raw()).__bindgen_anon_1.i_nlink > 0 {
                bindings::drop_nlink(self.as_raw());
            }
        }
    }

    /// No link left (`clear_nlink()`), after the host removed a directory.
    pub fn clear_nlink(&self) {
        // SAFETY: The inode is valid.
        unsafe { bindings::clear_nlink(self.as_raw()) };
    }

    /// Takes the inode's lock (`i_rwsem`) exclusively (`inode_lock()`).
    pub fn lock(&self) -> InodeGuard<'_, T> {
        // SAFETY: The inode is valid; the guard unlocks.
        unsafe { bindings::inode_lock(self.as_raw()) };
        InodeGuard(self)
    }

    /// Takes the inode's lock (`i_rwsem`) shared (`inode_lock_shared()`).
    pub fn lock_shared(&self) -> InodeSharedGuard<'_, T> {
        // SAFETY: The inode is valid; the guard unlocks.
        unsafe { bindings::inode_lock_shared(self.as_raw()) };
        InodeSharedGuard(self)
    }

    /// Whether the file's data is reached directly (`IS_DAX()`).
    pub fn is_dax(&self) -> bool {
        // SAFETY: The inode is valid.
        unsafe { bindings::vfs_is_dax(self.as_raw()) }
    }

    /// Takes a reference to the inode at `ptr` unless it is being freed
    /// (`igrab()`).
    ///
    /// # Safety
    ///
    /// `ptr` must point to an inode of `T` whose data is set up and whose
    /// memory stays valid for the call (its eviction cannot complete
    /// meanwhile).
    pub unsafe fn igrab(ptr: *mut bindings::inode) -> Option<ARef<Self>> {
        // SAFETY: The caller guarantees the inode's memory is valid;
        // `igrab` refuses an inode being freed.
        let p = NonNull::new(unsafe { bindings::igrab(ptr) })?;
        // SAFETY: `igrab` took a reference for us; the caller guarantees
        // this is a set-up inode of `T`.
        Some(unsafe { ARef::from_raw(p.cast()) })
    }

    /// Takes the inode out of the inode cache (`remove_inode_hash()`), so
    /// the next lookup of its number makes a new one: for a cached inode
    /// whose server object changed type.
    pub fn unhash(&self) {
        // SAFETY: The inode is valid.
        unsafe { bindings::__remove_inode_hash(self.as_raw()) };
    }
}

/// The inode's lock (`i_rwsem`) held exclusively; dropping it unlocks.
#[must_use = "the lock is released when the guard is dropped"]
pub struct InodeGuard<'a, T: FileSystem>(&'a Inode<T>);

impl<T: FileSystem> Drop for InodeGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: We took the lock in `Inode::lock`.
        unsafe { bindings::inode_unlock(self.0.as_raw()) };
    }
}

/// The inode's lock (`i_rwsem`) held shared; dropping it unlocks.
#[must_use = "the lock is released when the guard is dropped"]
pub struct InodeSharedGuard<'a, T: FileSystem>(&'a Inode<T>);

impl<T: FileSystem> Drop for InodeSharedGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: We took the lock in `Inode::lock_shared`.
        unsafe { bindings::inode_unlock_shared(self.0.as_raw()) };
    }
}

/// `new_encode_dev()`: a `dev_t` to the 32-bit encoding FUSE uses.
pub fn new_encode_dev(dev: bindings::dev_t) -> u32 {
    let major = dev >> 20;
    let minor = dev & ((1 << 20) - 1);
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// `new_decode_dev()`: a 32-bit device number to a `dev_t`.
fn new_decode_dev(dev: u32) -> bindings::dev_t {
    let major = (dev & 0xfff00) >> 8;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    (major << 20) | minor
}

/// # Safety
///
/// Called only by `iget5_locked` for inodes of the superblock of `T`, with
/// `data` pointing to the wanted key.
unsafe extern "C" fn key_test<T: FileSystem>(
    inode: *mut bindings::inode,
    data: *mut core::ffi::c_void,
) -> core::ffi::c_int {
    // SAFETY: `inode` is an inode of `T` (hashed under our superblock), its
    // key is set before it is hashed and never changes; `data` is the key
    // (caller).
    unsafe {
        core::ffi::c_int::from(
            *(*INodeWithData::<T>::container_of(inode)).key.get() == *data.cast::<u64>(),
        )
    }
}

/// # Safety
///
/// Called only by `iget5_locked` for a new inode of `T`, under
/// `inode_hash_lock`, before it is hashed.
unsafe extern "C" fn key_set<T: FileSystem>(
    inode: *mut bindings::inode,
    data: *mut core::ffi::c_void,
) -> core::ffi::c_int {
    // SAFETY: The new inode is not visible yet; `data` is the key.
    unsafe { *(*INodeWithData::<T>::container_of(inode)).key.get() = *data.cast::<u64>() };
    0
}

/// Finds or allocates the inode of `T` whose key is `key`.
///
/// # Safety
///
/// `sb` must be a live superblock of `T`.
pub(super) unsafe fn iget5<T: FileSystem>(
    sb: *mut bindings::super_block,
    key: u64,
) -> *mut bindings::inode {
    let mut k = key;
    // SAFETY: `sb` is live (caller); the callbacks match the key storage of
    // `T`'s inodes; `k` outlives the call.
    unsafe {
        bindings::iget5_locked(
            sb,
            key as _,
            Some(key_test::<T>),
            Some(key_set::<T>),
            core::ptr::addr_of_mut!(k).cast(),
        )
    }
}

/// Writes the three timestamps.
///
/// # Safety
///
/// `i` must be a valid inode the caller may write.
unsafe fn set_times(i: *mut bindings::inode, a: &Attrs) {
    // SAFETY: The caller guarantees `i` is valid and writable.
    unsafe {
        (*i).i_atime_sec = a.atime.0;
        (*i).i_atime_nsec = a.atime.1;
        (*i).i_mtime_sec = a.mtime.0;
        (*i).i_mtime_nsec = a.mtime.1;
        (*i).i_ctime_sec = a.ctime.0;
        (*i).i_ctime_nsec = a.ctime.1;
    }
}

/// What [`SuperBlock::iget`] found.
pub enum Iget<T: FileSystem> {
    /// A new inode, to set up.
    New(NewInode<T>),
    /// An inode already in the cache.
    Cached(ARef<Inode<T>>),
}

impl<T: FileSystem> Iget<T> {
    /// # Safety
    ///
    /// `raw` must be an inode of `T` returned, referenced, by
    /// `iget_locked`; the reference moves into the result.
    pub(crate) unsafe fn from_iget_locked(raw: NonNull<bindings::inode>) -> Self {
        // SAFETY: `raw` is valid (caller).
        let new = unsafe { (*raw.as_ptr()).i_state } & bindings::I_NEW != 0;
        if new {
            // INVARIANT: New and locked, ours to set up.
            Iget::New(NewInode(raw, PhantomData))
        } else {
            // SAFETY: A cached inode of ours is set up (its data was
            // initialised before `unlock_new_inode`); the reference is ours.
            Iget::Cached(unsafe { ARef::from_raw(raw.cast()) })
        }
    }
}

/// A new inode being set up, not yet visible to anyone else. Dropping it
/// without [`NewInode::init`] fails it (`iget_failed()`).
///
/// # Invariants
///
/// `self.0` is a new, locked inode of `T` from `iget_locked` (`I_NEW`)
/// whose reference we own and whose data is not initialised.
pub struct NewInode<T: FileSystem>(NonNull<bindings::inode>, PhantomData<T>);

impl<T: FileSystem> NewInode<T> {
    fn raw(&self) -> *mut bindings::inode {
        self.0.as_ptr()
    }

    /// Sets every attribute, type included.
    pub fn set_attrs(&mut self, a: &Attrs) -> &mut Self {
        let i = self.raw();
        // SAFETY: The inode is new and locked, still private to its creator
        // (type invariant); `init_user_ns` is the global root namespace.
        unsafe {
            (*i).i_ino = a.ino as _;
            (*i).i_mode = a.mode as _;
            (*i).i_uid =
                bindings::make_kuid(core::ptr::addr_of_mut!(bindings::init_user_ns), a.uid);
            (*i).i_gid =
                bindings::make_kgid(core::ptr::addr_of_mut!(bindings::init_user_ns), a.gid);
            (*i).i_size = a.size;
            (*i).i_blocks = a.blocks as _;
            bindings::set_nlink(i, a.nlink);
            set_times(i, a);
        }
        self
    }

    /// Adds `S_*` inode flags (`i_flags`), e.g. [`S_NOATIME`].
    pub fn add_flags(&mut self, flags: u32) -> &mut Self {
        // SAFETY: As `set_attrs`.
        unsafe { (*self.raw()).i_flags |= flags };
        self
    }

    #[cfg(CONFIG_FS_POSIX_ACL)]
    /// Never caches this inode's POSIX ACLs (`ACL_DONT_CACHE`): each
    /// permission check and `getxattr` calls `get_inode_acl`/`get_acl`.
    pub fn set_acl_dont_cache(&mut self) -> &mut Self {
        // SAFETY: As `set_attrs`: a new inode, not yet visible.
        unsafe { bindings::vfs_inode_acl_dont_cache(self.raw()) };
        self
    }

    /// Sets the inode operations.
    pub fn set_iops(&mut self, ops: Ops<T>) -> &mut Self {
        // SAFETY: As `set_attrs`; the table is static.
        unsafe { (*self.raw()).i_op = ops.0 };
        self
    }

    /// Sets the file operations.
    pub fn set_fops(&mut self, ops: super::file::Ops<T>) -> &mut Self {
        // SAFETY: As `set_attrs`; the table is static.
        unsafe { (*self.raw()).__bindgen_anon_3.i_fop = ops.as_raw() };
        self
    }

    /// Sets the page cache operations (`i_mapping->a_ops`).
    pub fn set_aops(&mut self, ops: super::address_space::Ops<T>) -> &mut Self {
        // SAFETY: As `set_attrs`; the table is static; a new inode's
        // mapping is its own `i_data`.
        unsafe { (*self.raw()).i_data.a_ops = ops.as_raw() };
        self
    }

    /// Folios under writeback are not changed until it ends
    /// (`mapping_set_stable_writes()`): writers and `page_mkwrite` wait,
    /// for a file system whose writeback reads the folios in place.
    pub fn set_stable_writes(&mut self) -> &mut Self {
        // SAFETY: As `set_attrs`; a new inode's mapping is its `i_data`.
        unsafe { bindings::vfs_mapping_set_stable_writes(&mut (*self.raw()).i_data) };
        self
    }

    /// Makes a symlink whose target is read by `get_link` each time
    /// (no page cache).
    pub fn init_symlink(&mut self) -> &mut Self {
        // SAFETY: As `set_attrs`.
        unsafe { bindings::inode_nohighmem(self.raw()) };
        self
    }

    /// Makes a special file (fifo, socket, device node): the VFS's own
    /// file operations for its type (`init_special_inode()`).
    pub fn init_special(&mut self, mode: u32, rdev: u32) -> &mut Self {
        // SAFETY: As `set_attrs`; `new_decode_dev` is the inverse of the
        // encoding FUSE uses for `rdev`.
        unsafe { bindings::init_special_inode(self.raw(), mode as _, new_decode_dev(rdev)) };
        self
    }

    /// Initialises the inode's data with `data` and makes the inode
    /// visible (`unlock_new_inode()`). On failure the inode is failed.
    pub fn init(self, data: impl PinInit<T::INodeData, Error>) -> Result<ARef<Inode<T>>> {
        let me = ManuallyDrop::new(self);
        let raw = me.raw();
        // SAFETY: The inode is ours (type invariant) and belongs to `T`.
        let p = unsafe { INodeWithData::<T>::container_of(raw) };
        // SAFETY: `data` is uninitialised (type invariant) and pinned: the
        // allocation never moves and is freed only by `free_inode`.
        let r = unsafe { data.__pinned_init((*(*p).data.get()).as_mut_ptr()) };
        if let Err(e) = r {
            // Fails the inode, which is dropped with its data unset.
            drop(ManuallyDrop::into_inner(me));
            return Err(e);
        }
        // SAFETY: As above.
        // INVARIANT: The data is initialised now.
        unsafe {
            *(*p).init.get() = true;
            bindings::unlock_new_inode(raw);
        }
        // SAFETY: Set up now; the reference from `iget_locked` moves into
        // the `ARef`.
        Ok(unsafe { ARef::from_raw(me.0.cast()) })
    }
}

impl<T: FileSystem> Drop for NewInode<T> {
    fn drop(&mut self) {
        // SAFETY: Marks the half-built inode bad, unlocks and drops our
        // reference; without links it is evicted at once instead of staying
        // cached as a bad inode. Its data was never set, so eviction and
        // `free_inode` leave it alone.
        unsafe {
            bindings::clear_nlink(self.raw());
            bindings::iget_failed(self.raw());
        }
    }
}

/// What a lookup found: the inode (none for a negative entry) and until
/// when the entry may be trusted (jiffies, see
/// [`DEntry::valid_until`](super::DEntry::valid_until)).
pub struct Entry<T: FileSystem> {
    /// The inode the name refers to, or `None` if it does not exist.
    pub inode: Option<ARef<Inode<T>>>,
    /// Until when the dentry is valid without asking again.
    pub valid_until: u64,
}

/// The operations of an inode (`inode_operations`).
#[vtable]
pub trait Operations {
    /// The file system of the inodes.
    type FileSystem: FileSystem;

    /// Looks `name` up in directory `dir` (`inode_operations.lookup`).
    /// The entry's validity time goes to the dentry the VFS ends up with
    /// (the one looked up, or an alias `d_splice_alias` found).
    fn lookup(_dir: &Inode<Self::FileSystem>, _name: &[u8]) -> Result<Entry<Self::FileSystem>> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Creates regular file `name` in `dir` with `mode` (type included,
    /// umask applied by the VFS) (`inode_operations.create`). The
    /// abstraction attaches the returned inode to the dentry.
    fn create(
        _dir: &Inode<Self::FileSystem>,
        _name: &[u8],
        _mode: u32,
        _excl: bool,
    ) -> Result<Entry<Self::FileSystem>> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Creates directory `name` (`inode_operations.mkdir`; `mode` has no
    /// type bits).
    fn mkdir(
        _dir: &Inode<Self::FileSystem>,
        _name: &[u8],
        _mode: u32,
    ) -> Result<Entry<Self::FileSystem>> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Creates special file `name` (`inode_operations.mknod`); `rdev` in
    /// the `new_encode_dev()` encoding.
    fn mknod(
        _dir: &Inode<Self::FileSystem>,
        _name: &[u8],
        _mode: u32,
        _rdev: u32,
    ) -> Result<Entry<Self::FileSystem>> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Creates symlink `name` to `target` (`inode_operations.symlink`).
    fn symlink(
        _dir: &Inode<Self::FileSystem>,
        _name: &[u8],
        _target: &CStr,
    ) -> Result<Entry<Self::FileSystem>> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Makes `name` in `dir` a new link to `old`'s inode
    /// (`inode_operations.link`).
    fn link(
        _old: &DEntry<Self::FileSystem>,
        _dir: &Inode<Self::FileSystem>,
        _name: &[u8],
    ) -> Result<Entry<Self::FileSystem>> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Removes non-directory `victim` (named `name`) from `dir`
    /// (`inode_operations.unlink`).
    fn unlink(
        _dir: &Inode<Self::FileSystem>,
        _victim: &DEntry<Self::FileSystem>,
        _name: &[u8],
    ) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Removes empty directory `victim` (`inode_operations.rmdir`).
    fn rmdir(
        _dir: &Inode<Self::FileSystem>,
        _victim: &DEntry<Self::FileSystem>,
        _name: &[u8],
    ) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Renames (`inode_operations.rename`, `RENAME_*` `flags`); the VFS
    /// moves the dentries afterwards.
    fn rename(_r: &Rename<'_, Self::FileSystem>, _flags: u32) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Brings `inode`'s attributes up to date for stat(2)
    /// (`inode_operations.getattr`): `mask` is the `STATX_*` wanted,
    /// `flags` the `AT_STATX_*` sync mode. The abstraction then fills the
    /// result from the inode (`generic_fillattr()`).
    fn getattr(_inode: &Inode<Self::FileSystem>, _mask: u32, _flags: u32) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Changes attributes (`inode_operations.setattr`), after the
    /// abstraction checked them (`setattr_prepare()`).
    fn setattr(_d: &DEntry<Self::FileSystem>, _attr: &IAttr) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The extended attribute names of `d`'s inode, each NUL-terminated,
    /// into `buf` (`None`: only their total size); returns that size
    /// (`inode_operations.listxattr`).
    fn listxattr(_d: &DEntry<Self::FileSystem>, _buf: Option<&mut [u8]>) -> Result<usize> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The POSIX ACL of type `ty` of `inode` for a permission check
    /// (`inode_operations.get_inode_acl`); `rcu`: called in RCU walk, must
    /// not sleep (answer `ECHILD` to be called again outside it). `None`:
    /// no ACL. The VFS caches the result until
    /// [`Inode::forget_cached_acls`].
    #[cfg(CONFIG_FS_POSIX_ACL)]
    fn get_inode_acl(
        _inode: &Inode<Self::FileSystem>,
        _ty: super::acl::AclType,
        _rcu: bool,
    ) -> Result<Option<ARef<super::acl::PosixAcl>>> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The POSIX ACL of type `ty` of `d`'s inode for `getxattr`
    /// (`inode_operations.get_acl`); as `get_inode_acl`, never in RCU walk.
    #[cfg(CONFIG_FS_POSIX_ACL)]
    fn get_acl(
        _d: &DEntry<Self::FileSystem>,
        _ty: super::acl::AclType,
    ) -> Result<Option<ARef<super::acl::PosixAcl>>> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Sets (`None`: removes) the POSIX ACL of type `ty` of `d`'s inode
    /// (`inode_operations.set_acl`); the VFS checked the caller may, and
    /// updates its cache afterwards.
    #[cfg(CONFIG_FS_POSIX_ACL)]
    fn set_acl(
        _idmap: &super::acl::MntIdmap,
        _d: &DEntry<Self::FileSystem>,
        _acl: Option<&super::acl::PosixAcl>,
        _ty: super::acl::AclType,
    ) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The target of symlink `inode` (`inode_operations.get_link`), without
    /// its NUL; never called in RCU walk (the abstraction answers
    /// `ECHILD`).
    fn get_link(
        _d: &DEntry<Self::FileSystem>,
        _inode: &Inode<Self::FileSystem>,
    ) -> Result<KVec<u8>> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// Creating and opening a file in one step (`inode_operations.atomic_open`,
/// as FUSE's CREATE), for a directory whose [`Operations`] also create the
/// usual way (`create`, the fallback).
///
/// # Safety
///
/// Every inode [`AtomicOpen::create_open`] or [`AtomicOpen::tmpfile_open`]
/// returns must be a regular file with [`AtomicOpen::File`]'s table as its
/// file operations (`i_fop`): the file the VFS opens on it is released
/// through that table, with the data returned here as its `private_data`.
pub unsafe trait AtomicOpen: Operations {
    /// The file operations of the files created.
    type File: super::file::Operations<FileSystem = Self::FileSystem>;

    /// Whether the opened file may do direct I/O (`FMODE_CAN_ODIRECT`), as
    /// its `open` would have allowed.
    const DIRECT_IO: bool = false;

    /// Whether [`AtomicOpen::tmpfile_open`] is implemented: without it the
    /// directory has no `tmpfile` and the VFS answers `O_TMPFILE` with
    /// `EOPNOTSUPP` before anything else.
    const HAS_TMPFILE: bool = false;

    /// Creates regular file `name` in `dir` (`mode` with its type, umask
    /// applied by the VFS) and opens it with `flags`, returning the entry
    /// and the open file's data; `None` if the file system cannot (then
    /// `create` makes it and the VFS opens it as usual).
    #[allow(clippy::type_complexity)]
    fn create_open(
        dir: &Inode<Self::FileSystem>,
        name: &[u8],
        mode: u32,
        flags: u32,
    ) -> Result<
        Option<(
            Entry<Self::FileSystem>,
            <Self::File as super::file::Operations>::Data,
        )>,
    >;

    /// Creates a regular file with no name in `dir` (`O_TMPFILE`,
    /// `inode_operations.tmpfile`; `mode` with its type, umask applied by
    /// the VFS) and opens it with `flags`, returning its entry and the open
    /// file's data. Called only if [`AtomicOpen::HAS_TMPFILE`].
    #[allow(clippy::type_complexity)]
    fn tmpfile_open(
        _dir: &Inode<Self::FileSystem>,
        _mode: u32,
        _flags: u32,
    ) -> Result<(
        Entry<Self::FileSystem>,
        <Self::File as super::file::Operations>::Data,
    )> {
        Err(Error::from_errno(-(bindings::EOPNOTSUPP as i32)))
    }

    /// A handle `create_open` or `tmpfile_open` returned whose open then
    /// failed in the VFS (its file is never released): give it back.
    /// `inode` is the file's (its directory's if the entry had none, or was
    /// not a regular file).
    fn release_unopened(
        inode: &Inode<Self::FileSystem>,
        data: <Self::File as super::file::Operations>::Data,
    );
}

/// The two sides of a rename, with their names (stable: both parents are
/// locked).
pub struct Rename<'a, T: FileSystem> {
    /// The source directory.
    pub old_dir: &'a Inode<T>,
    /// The source dentry (positive).
    pub old: &'a DEntry<T>,
    /// The source name.
    pub old_name: &'a [u8],
    /// The target directory.
    pub new_dir: &'a Inode<T>,
    /// The target dentry (negative unless replacing or exchanging).
    pub new: &'a DEntry<T>,
    /// The target name.
    pub new_name: &'a [u8],
}

/// `ATTR_*` bits of [`IAttr::valid`].
pub mod attr {
    use crate::bindings;
    /// `ia_mode` is set.
    pub const MODE: u32 = bindings::ATTR_MODE;
    /// `ia_uid` is set.
    pub const UID: u32 = bindings::ATTR_UID;
    /// `ia_gid` is set.
    pub const GID: u32 = bindings::ATTR_GID;
    /// `ia_size` is set.
    pub const SIZE: u32 = bindings::ATTR_SIZE;
    /// Set-user-ID is to be removed (the VFS also set `ATTR_MODE`, from
    /// the cached mode, if the bit was set).
    pub const KILL_SUID: u32 = bindings::ATTR_KILL_SUID;
    /// Set-group-ID is to be removed (as [`KILL_SUID`]).
    pub const KILL_SGID: u32 = bindings::ATTR_KILL_SGID;
    /// The access time changes.
    pub const ATIME: u32 = bindings::ATTR_ATIME;
    /// The modification time changes.
    pub const MTIME: u32 = bindings::ATTR_MTIME;
    /// The change time changes.
    pub const CTIME: u32 = bindings::ATTR_CTIME;
    /// `ia_atime` is an explicit time (not "now").
    pub const ATIME_SET: u32 = bindings::ATTR_ATIME_SET;
    /// `ia_mtime` is an explicit time (not "now").
    pub const MTIME_SET: u32 = bindings::ATTR_MTIME_SET;
    /// Times set by the caller (`ATTR_TIMES_SET`: utimes without
    /// ownership of the file).
    pub const TIMES_SET: u32 = bindings::ATTR_TIMES_SET;
    /// The truncation comes with an open file (`ia_file`).
    pub const FILE: u32 = bindings::ATTR_FILE;
    /// The truncation is open(2)'s `O_TRUNC`.
    pub const OPEN: u32 = bindings::ATTR_OPEN;
}

/// The attribute changes of a setattr (`struct iattr`).
#[repr(transparent)]
pub struct IAttr(Opaque<bindings::iattr>);

impl IAttr {
    fn raw(&self) -> &bindings::iattr {
        // SAFETY: The iattr is valid and not changed while we look at it.
        unsafe { &*self.0.get() }
    }

    /// Which attributes change ([`attr`] bits).
    pub fn valid(&self) -> u32 {
        self.raw().ia_valid
    }

    /// The new mode bits.
    pub fn mode(&self) -> u32 {
        u32::from(self.raw().ia_mode)
    }

    /// The new owner, in the initial user namespace (`u32::MAX` if it does
    /// not map).
    pub fn uid(&self) -> u32 {
        // SAFETY: Plain conversion of the `kuid_t`.
        unsafe {
            bindings::from_kuid(
                core::ptr::addr_of_mut!(bindings::init_user_ns),
                self.raw().__bindgen_anon_1.ia_uid,
            )
        }
    }

    /// The new group, in the initial user namespace.
    pub fn gid(&self) -> u32 {
        // SAFETY: Plain conversion of the `kgid_t`.
        unsafe {
            bindings::from_kgid(
                core::ptr::addr_of_mut!(bindings::init_user_ns),
                self.raw().__bindgen_anon_2.ia_gid,
            )
        }
    }

    /// The new size.
    pub fn size(&self) -> i64 {
        self.raw().ia_size
    }

    /// The new access time (seconds, nanoseconds).
    pub fn atime(&self) -> (i64, u32) {
        let t = &self.raw().ia_atime;
        (t.tv_sec, t.tv_nsec as u32)
    }

    /// The new modification time.
    pub fn mtime(&self) -> (i64, u32) {
        let t = &self.raw().ia_mtime;
        (t.tv_sec, t.tv_nsec as u32)
    }

    /// The new change time.
    pub fn ctime(&self) -> (i64, u32) {
        let t = &self.raw().ia_ctime;
        (t.tv_sec, t.tv_nsec as u32)
    }

    /// The open file a truncation goes through (`ATTR_FILE`).
    pub fn file(&self) -> Option<&File> {
        if self.valid() & attr::FILE == 0 || self.raw().ia_file.is_null() {
            return None;
        }
        // SAFETY: With `ATTR_FILE` the VFS passes an open file it holds for
        // the call.
        Some(unsafe { File::from_raw(self.raw().ia_file) })
    }
}

/// An `inode_operations` table of file system `T`.
#[derive(Clone, Copy)]
pub struct Ops<T: FileSystem>(&'static bindings::inode_operations, PhantomData<T>);

impl<T: FileSystem> Ops<T> {
    /// The table of `U`'s operations.
    pub const fn new<U: Operations<FileSystem = T> + ?Sized>() -> Self {
        struct Table<U: ?Sized>(PhantomData<U>);
        impl<U: Operations + ?Sized> Table<U> {
            const TABLE: bindings::inode_operations = bindings::inode_operations {
                lookup: if U::HAS_LOOKUP {
                    Some(lookup_callback::<U>)
                } else {
                    None
                },
                create: if U::HAS_CREATE {
                    Some(create_callback::<U>)
                } else {
                    None
                },
                mkdir: if U::HAS_MKDIR {
                    Some(mkdir_callback::<U>)
                } else {
                    None
                },
                mknod: if U::HAS_MKNOD {
                    Some(mknod_callback::<U>)
                } else {
                    None
                },
                symlink: if U::HAS_SYMLINK {
                    Some(symlink_callback::<U>)
                } else {
                    None
                },
                link: if U::HAS_LINK {
                    Some(link_callback::<U>)
                } else {
                    None
                },
                unlink: if U::HAS_UNLINK {
                    Some(unlink_callback::<U>)
                } else {
                    None
                },
                rmdir: if U::HAS_RMDIR {
                    Some(rmdir_callback::<U>)
                } else {
                    None
                },
                rename: if U::HAS_RENAME {
                    Some(rename_callback::<U>)
                } else {
                    None
                },
                getattr: if U::HAS_GETATTR {
                    Some(getattr_callback::<U>)
                } else {
                    None
                },
                setattr: if U::HAS_SETATTR {
                    Some(setattr_callback::<U>)
                } else {
                    None
                },
                listxattr: if U::HAS_LISTXATTR {
                    Some(listxattr_callback::<U>)
                } else {
                    None
                },
                get_link: if U::HAS_GET_LINK {
                    Some(get_link_callback::<U>)
                } else {
                    None
                },
                #[cfg(CONFIG_FS_POSIX_ACL)]
                get_inode_acl: if U::HAS_GET_INODE_ACL {
                    Some(get_inode_acl_callback::<U>)
                } else {
                    None
                },
                #[cfg(CONFIG_FS_POSIX_ACL)]
                get_acl: if U::HAS_GET_ACL {
                    Some(get_acl_callback::<U>)
                } else {
                    None
                },
                #[cfg(CONFIG_FS_POSIX_ACL)]
                set_acl: if U::HAS_SET_ACL {
                    Some(set_acl_callback::<U>)
                } else {
                    None
                },
                // SAFETY: All-zeroes is valid for the remaining (optional)
                // callbacks.
                ..unsafe { core::mem::zeroed() }
            };
        }
        Self(&Table::<U>::TABLE, PhantomData)
    }

    /// The table of `U`'s operations, with `atomic_open`.
    pub const fn new_atomic<U: AtomicOpen<FileSystem = T> + ?Sized>() -> Self {
        struct Table<U: ?Sized>(PhantomData<U>);
        impl<U: AtomicOpen + ?Sized> Table<U> {
            const TABLE: bindings::inode_operations = bindings::inode_operations {
                atomic_open: Some(atomic_open_callback::<U>),
                tmpfile: if U::HAS_TMPFILE {
                    Some(tmpfile_callback::<U>)
                } else {
                    None
                },
                ..*Ops::<U::FileSystem>::new::<U>().0
            };
        }
        Self(&Table::<U>::TABLE, PhantomData)
    }
}

/// The `open` of a file `atomic_open` opened: the file system opened it
/// already (its data is set after `finish_open`).
///
/// # Safety
///
/// Called only by `finish_open` from `finish_created_open::<U>`.
unsafe extern "C" fn created_open_callback<U: AtomicOpen + ?Sized>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    if U::DIRECT_IO {
        // SAFETY: The file is being opened; nobody else sees it yet.
        unsafe { bindings::vfs_allow_direct_io(file) };
    }
    0
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table from `new_atomic`: a
/// directory of ours, locked (exclusively for `O_CREAT`), a dentry under
/// it, and the file being opened.
unsafe extern "C" fn atomic_open_callback<U: AtomicOpen + ?Sized>(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    file: *mut bindings::file,
    flags: c_uint,
    mode: bindings::umode_t,
) -> c_int {
    // SAFETY: The VFS holds the directory, the dentry and the file for the
    // call; names are stable while the directory is locked; `res` is null
    // or a dentry reference we own, given to `finish_no_open` or dropped.
    unsafe {
        let mut res: *mut bindings::dentry = core::ptr::null_mut();
        let mut d = dentry;
        if bindings::d_in_lookup(dentry) {
            res = lookup_callback::<U>(dir, dentry, 0);
            if bindings::IS_ERR(res.cast_const().cast()) {
                return bindings::PTR_ERR(res.cast_const().cast()) as c_int;
            }
            if !res.is_null() {
                d = res;
            }
        }
        if flags & bindings::O_CREAT == 0 || !(*d).d_inode.is_null() {
            return bindings::finish_no_open(file, res);
        }
        bindings::vfs_file_set_created(file);
        let dir_i = Inode::<U::FileSystem>::from_raw(dir);
        let name = DEntry::<U::FileSystem>::from_raw(d).name_unchecked();
        match U::create_open(dir_i, name, u32::from(mode), flags) {
            Err(e) => {
                bindings::dput(res);
                e.to_errno()
            }
            Ok(None) => {
                match U::create(dir_i, name, u32::from(mode), flags & bindings::O_EXCL != 0) {
                    Ok(e) => {
                        let r = instantiate(d, e);
                        if r != 0 {
                            bindings::dput(res);
                            return r;
                        }
                        bindings::finish_no_open(file, res)
                    }
                    Err(e) => {
                        bindings::dput(res);
                        e.to_errno()
                    }
                }
            }
            Ok(Some((entry, data))) => {
                let Some(inode) = entry.inode.clone() else {
                    // Not an entry the VFS can open: give the handle back.
                    U::release_unopened(dir_i, data);
                    bindings::dput(res);
                    return EIO.to_errno();
                };
                let r = instantiate(d, entry);
                if r != 0 {
                    U::release_unopened(&inode, data);
                    bindings::dput(res);
                    return r;
                }
                let r = finish_created_open::<U>(file, d, &inode, data);
                bindings::dput(res);
                r
            }
        }
    }
}

/// # Safety
///
/// Called only by `vfs_tmpfile` through an `Ops` table from `new_atomic`:
/// a directory of ours and the file being opened, whose `f_path.dentry` is
/// a new negative dentry under it that nobody else sees (unhashed, named
/// "/").
unsafe extern "C" fn tmpfile_callback<U: AtomicOpen + ?Sized>(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    file: *mut bindings::file,
    mode: bindings::umode_t,
) -> c_int {
    // SAFETY: The VFS holds the directory, the dentry and the file for the
    // call. The dentry is instantiated with `d_instantiate`, not
    // `d_splice_alias`: it must stay unhashed (as C's `fuse_tmpfile`, and
    // `d_tmpfile`), and it is ours alone, so it cannot have been
    // instantiated meanwhile.
    unsafe {
        let d = (*file).f_path.dentry;
        let dir_i = Inode::<U::FileSystem>::from_raw(dir);
        let (entry, data) = match U::tmpfile_open(dir_i, u32::from(mode), (*file).f_flags) {
            Ok(v) => v,
            Err(e) => return e.to_errno(),
        };
        // Only a regular file can be opened as a file with no name (and a
        // directory must not get a second alias): else the handle goes
        // back, through the inode if there is one.
        let inode = match entry.inode {
            Some(i) if i.mode() & S_IFMT == bindings::S_IFREG => i,
            Some(i) => {
                U::release_unopened(&i, data);
                return EIO.to_errno();
            }
            None => {
                U::release_unopened(dir_i, data);
                return EIO.to_errno();
            }
        };
        // The dentry takes a reference of its own; `inode` is kept for a
        // failed open.
        bindings::d_instantiate(d, Inode::into_raw(inode.clone()));
        finish_created_open::<U>(file, d, &inode, data)
    }
}

/// Opens `file` on dentry `d` of `inode`, a file `U` just created and
/// opened (`data`), as C's `fuse_create_open` ends: the data goes in
/// first; once `finish_open` has opened the file (`FMODE_OPENED`), even a
/// failure after that is released through `U::File`'s table (the trait
/// contract), which takes the data back; a file never opened gets no
/// release, so the data is taken back here.
///
/// # Safety
///
/// `file` is being opened by `atomic_open` or `tmpfile` of a directory
/// with `U`'s table; `d` is its dentry, instantiated with `inode`.
unsafe fn finish_created_open<U: AtomicOpen + ?Sized>(
    file: *mut bindings::file,
    d: *mut bindings::dentry,
    inode: &Inode<U::FileSystem>,
    data: <U::File as super::file::Operations>::Data,
) -> c_int {
    // SAFETY: The file is being opened (caller) and nobody else sees its
    // `private_data` before `finish_open` returns; the data is taken back
    // from it only if the file never opened, so no release will use it.
    unsafe {
        (*file).private_data = data.into_foreign().cast_mut();
        let r = bindings::finish_open(file, d, Some(created_open_callback::<U>));
        if r != 0 && !bindings::vfs_file_is_opened(file) {
            let data = <<U::File as super::file::Operations>::Data as ForeignOwnable>::from_foreign(
                (*file).private_data.cast_const(),
            );
            (*file).private_data = core::ptr::null_mut();
            U::release_unopened(inode, data);
        }
        r
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, with a directory of ours
/// and a dentry under it.
unsafe extern "C" fn lookup_callback<U: Operations + ?Sized>(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    _flags: c_uint,
) -> *mut bindings::dentry {
    // SAFETY: The VFS holds `dir` (set up by us) and the dentry, whose name
    // is stable during lookup (the parent's `i_rwsem` is held and the
    // dentry is not hashed yet).
    let (dir, d, name) = unsafe {
        let d = DEntry::<U::FileSystem>::from_raw(dentry);
        (Inode::from_raw(dir), d, d.name_unchecked())
    };
    let entry = match U::lookup(dir, name) {
        Ok(e) => e,
        Err(e) => return e.to_ptr(),
    };
    let inode = entry.inode.map_or(core::ptr::null_mut(), Inode::into_raw);
    // SAFETY: `d_splice_alias` takes our inode reference (null: a negative
    // dentry).
    let alias = unsafe { bindings::d_splice_alias(inode, dentry) };
    if alias.is_null() {
        d.set_valid_until(entry.valid_until);
    // SAFETY: `IS_ERR` only looks at the pointer value.
    } else if !unsafe { bindings::IS_ERR(alias.cast_const().cast()) } {
        // SAFETY: A non-error, non-null result is a referenced dentry of
        // the same superblock.
        unsafe { DEntry::<U::FileSystem>::from_raw(alias) }.set_valid_until(entry.valid_until);
    }
    alias
}

/// Attaches a new entry's inode to `dentry` as C's `create_new_entry`:
/// drop, then splice (a directory may already have an alias); the entry's
/// validity goes to whichever dentry the VFS keeps.
///
/// # Safety
///
/// `dentry` must be a negative dentry of `T` whose parent is locked.
unsafe fn instantiate<T: FileSystem>(dentry: *mut bindings::dentry, e: Entry<T>) -> c_int {
    let Some(inode) = e.inode else {
        return EIO.to_errno();
    };
    // SAFETY: `dentry` is valid (caller); `d_splice_alias` takes our inode
    // reference.
    unsafe {
        bindings::d_drop(dentry);
        let alias = bindings::d_splice_alias(Inode::into_raw(inode), dentry);
        if bindings::IS_ERR(alias.cast_const().cast()) {
            return bindings::PTR_ERR(alias.cast_const().cast()) as c_int;
        }
        if alias.is_null() {
            DEntry::<T>::from_raw(dentry).set_valid_until(e.valid_until);
        } else {
            DEntry::<T>::from_raw(alias).set_valid_until(e.valid_until);
            bindings::dput(alias);
        }
    }
    0
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table: a directory of ours and
/// a negative dentry under it, the directory locked.
unsafe extern "C" fn create_callback<U: Operations + ?Sized>(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
    excl: bool,
) -> c_int {
    // SAFETY: The VFS holds `dir` (set up by us) and the dentry, whose name
    // is stable while the parent is locked.
    let (dir, name) = unsafe {
        (
            Inode::from_raw(dir),
            DEntry::<U::FileSystem>::from_raw(dentry).name_unchecked(),
        )
    };
    match U::create(dir, name, u32::from(mode), excl) {
        // SAFETY: As above.
        Ok(e) => unsafe { instantiate(dentry, e) },
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// As `create_callback`.
unsafe extern "C" fn mkdir_callback<U: Operations + ?Sized>(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
) -> c_int {
    // SAFETY: As in `create_callback`.
    let (dir, name) = unsafe {
        (
            Inode::from_raw(dir),
            DEntry::<U::FileSystem>::from_raw(dentry).name_unchecked(),
        )
    };
    match U::mkdir(dir, name, u32::from(mode)) {
        // SAFETY: As above.
        Ok(e) => unsafe { instantiate(dentry, e) },
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// As `create_callback`.
unsafe extern "C" fn mknod_callback<U: Operations + ?Sized>(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
    rdev: bindings::dev_t,
) -> c_int {
    // SAFETY: As in `create_callback`.
    let (dir, name) = unsafe {
        (
            Inode::from_raw(dir),
            DEntry::<U::FileSystem>::from_raw(dentry).name_unchecked(),
        )
    };
    match U::mknod(dir, name, u32::from(mode), new_encode_dev(rdev)) {
        // SAFETY: As above.
        Ok(e) => unsafe { instantiate(dentry, e) },
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// As `create_callback`; `target` is a NUL-terminated string.
unsafe extern "C" fn symlink_callback<U: Operations + ?Sized>(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    target: *const c_char,
) -> c_int {
    // SAFETY: As in `create_callback`; the VFS passes a NUL-terminated
    // target that lives for the call.
    let (dir, name, target) = unsafe {
        (
            Inode::from_raw(dir),
            DEntry::<U::FileSystem>::from_raw(dentry).name_unchecked(),
            CStr::from_char_ptr(target),
        )
    };
    match U::symlink(dir, name, target) {
        // SAFETY: As above.
        Ok(e) => unsafe { instantiate(dentry, e) },
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table: an existing dentry of
/// ours, a directory of ours (locked) and a negative dentry under it.
unsafe extern "C" fn link_callback<U: Operations + ?Sized>(
    old: *mut bindings::dentry,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> c_int {
    // SAFETY: As in `create_callback`; `old` is held by the VFS.
    let (old, dir, name) = unsafe {
        (
            DEntry::<U::FileSystem>::from_raw(old),
            Inode::from_raw(dir),
            DEntry::<U::FileSystem>::from_raw(dentry).name_unchecked(),
        )
    };
    match U::link(old, dir, name) {
        // SAFETY: As above.
        Ok(e) => unsafe { instantiate(dentry, e) },
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table: a locked directory of
/// ours and a positive dentry under it.
unsafe extern "C" fn unlink_callback<U: Operations + ?Sized>(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS holds both; the name is stable under the lock.
        let (dir, d) = unsafe {
            (
                Inode::from_raw(dir),
                DEntry::<U::FileSystem>::from_raw(dentry),
            )
        };
        // SAFETY: As above.
        U::unlink(dir, d, unsafe { d.name_unchecked() })?;
        Ok(0)
    })
}

/// # Safety
///
/// As `unlink_callback`.
unsafe extern "C" fn rmdir_callback<U: Operations + ?Sized>(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> c_int {
    from_result(|| {
        // SAFETY: As in `unlink_callback`.
        let (dir, d) = unsafe {
            (
                Inode::from_raw(dir),
                DEntry::<U::FileSystem>::from_raw(dentry),
            )
        };
        // SAFETY: As above.
        U::rmdir(dir, d, unsafe { d.name_unchecked() })?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, with both parents
/// locked (`lock_rename()`).
unsafe extern "C" fn rename_callback<U: Operations + ?Sized>(
    _idmap: *mut bindings::mnt_idmap,
    old_dir: *mut bindings::inode,
    old: *mut bindings::dentry,
    new_dir: *mut bindings::inode,
    new: *mut bindings::dentry,
    flags: c_uint,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS holds all four; names are stable while both
        // parents are locked.
        let r = unsafe {
            let old = DEntry::<U::FileSystem>::from_raw(old);
            let new = DEntry::<U::FileSystem>::from_raw(new);
            Rename {
                old_dir: Inode::from_raw(old_dir),
                old,
                old_name: old.name_unchecked(),
                new_dir: Inode::from_raw(new_dir),
                new,
                new_name: new.name_unchecked(),
            }
        };
        U::rename(&r, flags)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, with a path to an inode
/// of ours and a stat buffer.
unsafe extern "C" fn getattr_callback<U: Operations + ?Sized>(
    _idmap: *mut bindings::mnt_idmap,
    path: *const bindings::path,
    stat: *mut bindings::kstat,
    mask: u32,
    flags: c_uint,
) -> c_int {
    from_result(|| {
        // SAFETY: The path's dentry is positive and held by the VFS.
        let raw = unsafe { (*(*path).dentry).d_inode };
        // SAFETY: An inode of ours, set up.
        let inode = unsafe { Inode::<U::FileSystem>::from_raw(raw) };
        U::getattr(inode, mask, flags)?;
        // SAFETY: `stat` is the caller's buffer; we never use idmapped
        // mounts (`nop_mnt_idmap`).
        unsafe {
            bindings::generic_fillattr(
                core::ptr::addr_of_mut!(bindings::nop_mnt_idmap),
                mask,
                raw,
                stat,
            )
        };
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, with a positive dentry
/// of ours and the changes.
unsafe extern "C" fn setattr_callback<U: Operations + ?Sized>(
    idmap: *mut bindings::mnt_idmap,
    dentry: *mut bindings::dentry,
    iattr: *mut bindings::iattr,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes a valid dentry and iattr, for the call.
        crate::error::to_result(unsafe { bindings::setattr_prepare(idmap, dentry, iattr) })?;
        // SAFETY: As above; `IAttr` is transparent.
        let (d, a) = unsafe {
            (
                DEntry::<U::FileSystem>::from_raw(dentry),
                &*iattr.cast::<IAttr>(),
            )
        };
        U::setattr(d, a)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, with a positive dentry
/// of ours and a buffer of `size` bytes (or null with size 0).
unsafe extern "C" fn listxattr_callback<U: Operations + ?Sized>(
    dentry: *mut bindings::dentry,
    list: *mut c_char,
    size: usize,
) -> isize {
    // SAFETY: The VFS holds the dentry; the buffer is the caller's `size`
    // bytes, ours to write for the call.
    let r = unsafe {
        let buf = (size != 0 && !list.is_null())
            .then(|| core::slice::from_raw_parts_mut(list.cast::<u8>(), size));
        U::listxattr(DEntry::from_raw(dentry), buf)
    };
    match r {
        Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table: a symlink inode of ours,
/// its dentry (null in RCU walk), and a delayed call to free the result.
unsafe extern "C" fn get_link_callback<U: Operations + ?Sized>(
    dentry: *mut bindings::dentry,
    inode: *mut bindings::inode,
    done: *mut bindings::delayed_call,
) -> *const c_char {
    if dentry.is_null() {
        return ECHILD.to_ptr();
    }
    // SAFETY: Both are held by the VFS for the call.
    let (d, i) = unsafe {
        (
            DEntry::<U::FileSystem>::from_raw(dentry),
            Inode::from_raw(inode),
        )
    };
    let mut target = match U::get_link(d, i) {
        Ok(t) => t,
        Err(e) => return e.to_ptr(),
    };
    if target.is_empty() || target.contains(&0) {
        return EIO.to_ptr();
    }
    if let Err(e) = target.push(0, GFP_KERNEL) {
        return Error::from(e).to_ptr();
    }
    let (ptr, _len, _cap) = target.into_raw_parts();
    // SAFETY: `ptr` is a kmalloc'ed, NUL-terminated string we own;
    // `kfree_link` frees it when the VFS is done with it.
    unsafe { bindings::set_delayed_call(done, Some(bindings::kfree_link), ptr.cast()) };
    ptr.cast_const().cast()
}

#[cfg(CONFIG_FS_POSIX_ACL)]
/// An ACL result for the VFS: a referenced ACL, NULL or an error pointer.
fn acl_to_raw(r: Result<Option<ARef<super::acl::PosixAcl>>>) -> *mut bindings::posix_acl {
    match r {
        Ok(Some(acl)) => super::acl::PosixAcl::into_raw(acl),
        Ok(None) => core::ptr::null_mut(),
        Err(e) => e.to_ptr(),
    }
}

#[cfg(CONFIG_FS_POSIX_ACL)]
/// # Safety
///
/// Called only by the VFS through an `Ops` table, with an inode of ours
/// (held for the call; in RCU walk, not freed before a grace period).
unsafe extern "C" fn get_inode_acl_callback<U: Operations + ?Sized>(
    inode: *mut bindings::inode,
    ty: c_int,
    rcu: bool,
) -> *mut bindings::posix_acl {
    let Some(ty) = super::acl::AclType::from_raw(ty) else {
        return Error::from_errno(-(bindings::EOPNOTSUPP as i32)).to_ptr();
    };
    // SAFETY: An inode of ours, set up, valid for the call.
    let inode = unsafe { Inode::<U::FileSystem>::from_raw(inode) };
    match U::get_inode_acl(inode, ty, rcu) {
        // The RCU-walk caller (`get_cached_acl_rcu()`) takes no reference:
        // ask again outside it.
        Ok(Some(_)) if rcu => ECHILD.to_ptr(),
        r => acl_to_raw(r),
    }
}

#[cfg(CONFIG_FS_POSIX_ACL)]
/// # Safety
///
/// Called only by the VFS through an `Ops` table, with a positive dentry
/// of ours, held for the call.
unsafe extern "C" fn get_acl_callback<U: Operations + ?Sized>(
    _idmap: *mut bindings::mnt_idmap,
    dentry: *mut bindings::dentry,
    ty: c_int,
) -> *mut bindings::posix_acl {
    let Some(ty) = super::acl::AclType::from_raw(ty) else {
        return Error::from_errno(-(bindings::EOPNOTSUPP as i32)).to_ptr();
    };
    // SAFETY: The VFS holds the dentry for the call.
    let d = unsafe { DEntry::<U::FileSystem>::from_raw(dentry) };
    acl_to_raw(U::get_acl(d, ty))
}

#[cfg(CONFIG_FS_POSIX_ACL)]
/// # Safety
///
/// Called only by the VFS through an `Ops` table, with a positive dentry
/// of ours and the ACL (or NULL), both held for the call.
unsafe extern "C" fn set_acl_callback<U: Operations + ?Sized>(
    idmap: *mut bindings::mnt_idmap,
    dentry: *mut bindings::dentry,
    acl: *mut bindings::posix_acl,
    ty: c_int,
) -> c_int {
    from_result(|| {
        let ty = super::acl::AclType::from_raw(ty).ok_or(EINVAL)?;
        // SAFETY: The VFS holds all three for the call; an ACL it passes
        // is referenced and no longer changed.
        let (idmap, d, acl) = unsafe {
            (
                super::acl::MntIdmap::from_raw(idmap),
                DEntry::<U::FileSystem>::from_raw(dentry),
                (!acl.is_null()).then(|| super::acl::PosixAcl::from_raw(acl)),
            )
        };
        U::set_acl(idmap, d, acl, ty)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through `SuperOps::TABLE`, for a superblock of `T`.
pub(super) unsafe extern "C" fn alloc_inode_callback<T: FileSystem>(
    _sb: *mut bindings::super_block,
) -> *mut bindings::inode {
    let Ok(b) = KBox::<INodeWithData<T>>::new_uninit(GFP_KERNEL) else {
        return core::ptr::null_mut();
    };
    let p = KBox::into_raw(b).cast::<INodeWithData<T>>();
    // SAFETY: `p` is a fresh allocation for an `INodeWithData<T>`;
    // `inode_init_once` initialises the C inode (the VFS then runs
    // `inode_init_always` on it).
    // INVARIANT: No data yet.
    unsafe {
        core::ptr::addr_of_mut!((*p).init).write(UnsafeCell::new(false));
        core::ptr::addr_of_mut!((*p).key).write(UnsafeCell::new(0));
        let inode = Opaque::raw_get(core::ptr::addr_of!((*p).inode));
        bindings::inode_init_once(inode);
        inode
    }
}

/// # Safety
///
/// Called only by the VFS (`free_inode`, after an RCU grace period) for an
/// inode from `alloc_inode_callback::<T>`, once.
pub(super) unsafe extern "C" fn free_inode_callback<T: FileSystem>(inode: *mut bindings::inode) {
    // SAFETY: The inode came from `alloc_inode_callback::<T>` and nobody
    // uses it any more (RCU readers are gone).
    unsafe {
        let p = INodeWithData::<T>::container_of(inode);
        if *(*p).init.get() {
            (*(*p).data.get()).assume_init_drop();
        }
        drop(KBox::from_raw(p.cast::<MaybeUninit<INodeWithData<T>>>()));
    }
}

/// # Safety
///
/// Called only by the VFS through `SuperOps::TABLE`, once per inode of ours.
pub(super) unsafe extern "C" fn evict_inode_callback<T: FileSystem>(inode: *mut bindings::inode) {
    // SAFETY: The inode is ours and being evicted: nobody else uses it.
    unsafe {
        let p = INodeWithData::<T>::container_of(inode);
        if *(*p).init.get() {
            sb::evict::<T>(inode);
        } else {
            bindings::truncate_inode_pages_final(core::ptr::addr_of_mut!((*inode).i_data));
            bindings::clear_inode(inode);
        }
    }
}
