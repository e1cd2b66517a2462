// SPDX-License-Identifier: GPL-2.0

//! File systems: registration, mount contexts, superblocks and inodes.
//!
//! A file system implements [`FileSystem`] and registers it with a
//! [`Registration`] over a `static` [`FsType`] (the C struct must live in
//! static storage: lockdep keys its superblock and inode locks on addresses
//! inside it). Mounting goes through the new mount API: each attempt gets a
//! [`FileSystem::Context`] (`fc->fs_private`) that sees every option, then
//! [`FileSystem::get_tree`] finds or creates the superblock with
//! [`FsContext::get_tree_shared`]. Per-superblock data lives in
//! `sb->s_fs_info` as [`FileSystem::Data`].
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/fs_context.h`](srctree/include/linux/fs_context.h)

use crate::{
    bindings,
    error::{from_result, to_result},
    ffi::c_int,
    prelude::*,
    types::{ForeignOwnable, Opaque},
};
use core::{cell::UnsafeCell, marker::PhantomData};

/// `SB_ACTIVE` (`BIT(30)` in include/linux/fs.h, which bindgen cannot
/// evaluate): the superblock is fully set up.
const SB_ACTIVE: usize = 1 << 30;

/// The statistics `statfs()` fills (`struct kstatfs`).
pub type Kstatfs = bindings::kstatfs;

/// A file system type.
pub trait FileSystem: Sized + 'static {
    /// The type's name, as `mount -t` and /proc/filesystems know it.
    const NAME: &'static CStr;

    /// `FS_*` flags of `struct file_system_type`.
    const FLAGS: i32 = 0;

    /// State of one mount attempt: the options parsed so far.
    type Context: Send;

    /// Per-superblock data (`sb->s_fs_info`).
    type Data: ForeignOwnable + Send + Sync;

    /// Per-inode data (`inode->i_private`), created with the inode by
    /// [`SuperBlock::iget`] and handed back to [`FileSystem::evict_inode`].
    type InodeData: Send + Sync;

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

    /// Fills `buf` for statfs(2).
    fn statfs(sb: &SuperBlock<Self>, buf: &mut Kstatfs) -> Result;

    /// Looks `name` up in directory `dir` (`inode_operations.lookup` of the
    /// directories set up with [`NewInode::set_lookup_dir`]). `Ok(None)`
    /// means the name does not exist.
    fn lookup(dir: &Inode<Self>, name: &[u8]) -> Result<Option<InodeRef<Self>>>;

    /// An inode is being evicted; its data comes back (none if its set-up
    /// failed).
    fn evict_inode(sb: &SuperBlock<Self>, data: Option<KBox<Self::InodeData>>);
}

/// Static storage for a `struct file_system_type`.
///
/// Declare one `static` per file system and hand it to [`Registration::new`].
pub struct FsType(UnsafeCell<bindings::file_system_type>);

// SAFETY: The struct is only written by `Registration::new` before it is
// registered, and afterwards only by the VFS under its own locks.
unsafe impl Sync for FsType {}

impl FsType {
    /// An unregistered, all-zeroes type.
    pub const fn new() -> Self {
        // SAFETY: All-zeroes is a valid `file_system_type` (no name, no
        // callbacks, zeroed lockdep keys, which live in static storage).
        FsType(UnsafeCell::new(unsafe { core::mem::zeroed() }))
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
/// `fs_type` is registered with the VFS for the lifetime of the value.
pub struct Registration<T: FileSystem> {
    fs_type: &'static FsType,
    _t: PhantomData<T>,
}

// SAFETY: The registration only holds a pointer to static data.
unsafe impl<T: FileSystem> Send for Registration<T> {}
// SAFETY: `&Registration` exposes nothing.
unsafe impl<T: FileSystem> Sync for Registration<T> {}

impl<T: FileSystem> Registration<T> {
    /// Registers `T` in `fs_type`, owned by `module`.
    ///
    /// `fs_type` must not be used by another registration at the same time;
    /// the VFS refuses a second type with the same name (`EBUSY`).
    pub fn new(fs_type: &'static FsType, module: &'static ThisModule) -> Result<Self> {
        let t = fs_type.0.get();
        // SAFETY: `t` points to static storage that is not registered (a
        // registered type has the same name and the VFS would refuse it
        // below, but we only write before registering: we rely on the
        // caller not to share `fs_type`). All fields written are plain
        // data.
        unsafe {
            (*t).name = T::NAME.as_char_ptr();
            (*t).fs_flags = T::FLAGS;
            (*t).init_fs_context = Some(init_fs_context_callback::<T>);
            (*t).kill_sb = Some(kill_sb_callback::<T>);
            (*t).owner = module.0;
        }
        // SAFETY: `t` is a fully initialised type in static storage.
        to_result(unsafe { bindings::register_filesystem(t) })?;
        // INVARIANT: Registered just above.
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
        unsafe { bindings::unregister_filesystem(self.fs_type.0.get()) };
    }
}

/// One mount attempt (`struct fs_context`).
#[repr(transparent)]
pub struct FsContext<T: FileSystem>(Opaque<bindings::fs_context>, PhantomData<T>);

impl<T: FileSystem> FsContext<T> {
    /// # Safety
    ///
    /// `ptr` must be a valid context of type `T`, used exclusively by the
    /// caller for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::fs_context) -> &'a mut Self {
        // SAFETY: `FsContext` is a transparent wrapper; the caller
        // guarantees validity and exclusivity.
        unsafe { &mut *ptr.cast() }
    }

    fn raw(&self) -> *mut bindings::fs_context {
        self.0.get()
    }

    /// The mount source (`mount SOURCE DIR`), if any.
    pub fn source(&self) -> Option<&CStr> {
        // SAFETY: The context is valid; `source` is null or a NUL-terminated
        // string owned by the context.
        let s = unsafe { (*self.raw()).source };
        if s.is_null() {
            None
        } else {
            // SAFETY: Checked non-null above; it lives as long as `self`.
            Some(unsafe { CStr::from_char_ptr(s) })
        }
    }

    /// The file system's own state of this attempt.
    pub fn context(&mut self) -> &mut T::Context {
        // SAFETY: `fs_private` was set by `init_fs_context_callback` to a
        // `KBox<T::Context>` that lives until `free`; `&mut self` is
        // exclusive.
        unsafe { &mut *(*self.raw()).fs_private.cast::<T::Context>() }
    }

    /// Finds the superblock `T::same_super` matches with `data`, or creates
    /// one, fills it with `fill` (which returns the root inode) and marks it
    /// active; then makes its root the mount's root.
    ///
    /// `data` is dropped if an existing superblock is shared.
    pub fn get_tree_shared(
        &mut self,
        data: T::Data,
        fill: impl FnOnce(&SuperBlock<T>) -> Result<InodeRef<T>>,
    ) -> Result {
        let fc = self.raw();
        // SAFETY: `fc` is valid. `s_fs_info` is ours to set; `sget_fc`
        // moves it into a new superblock (and clears it) or leaves it.
        let sb = unsafe {
            (*fc).s_fs_info = data.into_foreign().cast_mut();
            bindings::sget_fc(
                fc,
                Some(test_super_callback::<T>),
                Some(bindings::set_anon_super_fc),
            )
        };
        // SAFETY: Whatever `sget_fc` did not take is still ours.
        unsafe {
            let left = (*fc).s_fs_info;
            if !left.is_null() {
                (*fc).s_fs_info = core::ptr::null_mut();
                drop(T::Data::from_foreign(left.cast_const()));
            }
        }
        let sb = crate::error::from_err_ptr(sb)?;
        // SAFETY: `sget_fc` returned a live superblock with `s_umount` held
        // for writing, which the VFS releases after `get_tree`.
        let sbr = unsafe { SuperBlock::<T>::from_raw(sb) };
        // SAFETY: `sb` is valid and locked.
        if unsafe { (*sb).s_root.is_null() } {
            // SAFETY: New superblock, exclusively ours while locked.
            unsafe { (*sb).s_op = &SuperOps::<T>::TABLE };
            let root = match fill(sbr) {
                // SAFETY: `d_make_root` consumes the inode reference, also
                // on failure.
                Ok(inode) => unsafe { bindings::d_make_root(inode.into_raw()) },
                Err(e) => {
                    // SAFETY: Releases the lock and the half-built
                    // superblock, calling `kill_sb` (which skips `T::kill_sb`
                    // without a root).
                    unsafe { bindings::deactivate_locked_super(sb) };
                    return Err(e);
                }
            };
            if root.is_null() {
                // SAFETY: As above.
                unsafe { bindings::deactivate_locked_super(sb) };
                return Err(ENOMEM);
            }
            // SAFETY: The superblock is locked and ours.
            unsafe {
                (*sb).s_root = root;
                (*sb).s_flags |= SB_ACTIVE;
            }
        }
        // SAFETY: `s_root` is set; the mount takes a reference to it.
        unsafe { (*fc).root = bindings::dget((*sb).s_root) };
        Ok(())
    }
}

/// A superblock of file system `T`.
#[repr(transparent)]
pub struct SuperBlock<T: FileSystem>(Opaque<bindings::super_block>, PhantomData<T>);

impl<T: FileSystem> SuperBlock<T> {
    /// # Safety
    ///
    /// `ptr` must be a valid superblock of type `T` for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::super_block) -> &'a Self {
        // SAFETY: Transparent wrapper; validity from the caller.
        unsafe { &*ptr.cast() }
    }

    fn raw(&self) -> *mut bindings::super_block {
        self.0.get()
    }

    /// The file system's data of this superblock.
    pub fn data(&self) -> <T::Data as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: `s_fs_info` holds `T::Data` from `get_tree_shared` until
        // `kill_sb_callback` takes it back, after the last user.
        unsafe { T::Data::borrow((*self.raw()).s_fs_info.cast_const()) }
    }

    /// Sets the magic number (`statfs` `f_type`).
    pub fn set_magic(&self, magic: u64) {
        // SAFETY: Only called while filling a new, locked superblock.
        unsafe { (*self.raw()).s_magic = magic as _ };
    }

    /// Sets the block size (a power of two).
    pub fn set_blocksize_bits(&self, bits: u8) {
        // SAFETY: As `set_magic`.
        unsafe {
            (*self.raw()).s_blocksize_bits = bits;
            (*self.raw()).s_blocksize = 1 << bits;
        }
    }

    /// Sets the largest file size.
    pub fn set_maxbytes(&self, max: i64) {
        // SAFETY: As `set_magic`.
        unsafe { (*self.raw()).s_maxbytes = max };
    }

    /// Sets the timestamp granularity, in nanoseconds.
    pub fn set_time_gran(&self, ns: u32) {
        // SAFETY: As `set_magic`.
        unsafe { (*self.raw()).s_time_gran = ns };
    }

    /// Finds the inode numbered `ino`, or creates it: `create` sets up a
    /// new one and returns its data; `existing` sees the data of one that
    /// was already there (`iget_locked()`).
    pub fn iget(
        &self,
        ino: u64,
        create: impl FnOnce(&mut NewInode<T>) -> Result<KBox<T::InodeData>>,
        existing: impl FnOnce(&T::InodeData),
    ) -> Result<InodeRef<T>> {
        // SAFETY: The superblock is valid.
        let inode = unsafe { bindings::iget_locked(self.raw(), ino as _) };
        if inode.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `iget_locked` returned a referenced inode; `I_NEW` means
        // we set it up while it is locked and invisible to lookups.
        if unsafe { (*inode).i_state } & bindings::I_NEW != 0 {
            let mut new = NewInode::<T>(inode, PhantomData);
            match create(&mut new) {
                Ok(data) => {
                    // SAFETY: The new inode is ours until unlocked.
                    unsafe {
                        (*inode).i_private = KBox::into_raw(data).cast();
                        bindings::unlock_new_inode(inode);
                    }
                }
                Err(e) => {
                    // SAFETY: Marks the half-built inode bad, unlocks and
                    // drops our reference; without links it is evicted at
                    // once instead of staying cached as a bad inode.
                    unsafe {
                        bindings::clear_nlink(inode);
                        bindings::iget_failed(inode);
                    }
                    return Err(e);
                }
            }
        } else {
            // SAFETY: A set-up inode of ours carries its data until evicted,
            // and our reference keeps it from eviction.
            let data = unsafe { (*inode).i_private };
            if data.is_null() {
                // SAFETY: We own the reference.
                unsafe { bindings::iput(inode) };
                return Err(EIO);
            }
            // SAFETY: See above.
            existing(unsafe { &*data.cast::<T::InodeData>() });
        }
        // INVARIANT: A referenced, set-up inode.
        Ok(InodeRef(inode, PhantomData))
    }
}

/// An inode of file system `T`.
#[repr(transparent)]
pub struct Inode<T: FileSystem>(Opaque<bindings::inode>, PhantomData<T>);

impl<T: FileSystem> Inode<T> {
    /// # Safety
    ///
    /// `ptr` must be a valid, set-up inode of type `T` for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::inode) -> &'a Self {
        // SAFETY: Transparent wrapper; validity from the caller.
        unsafe { &*ptr.cast() }
    }

    /// The inode's data.
    pub fn data(&self) -> &T::InodeData {
        // SAFETY: Set-up inodes (the only ones `Inode` refers to) carry
        // their data in `i_private` until evicted.
        unsafe { &*(*self.0.get()).i_private.cast::<T::InodeData>() }
    }

    /// The superblock the inode belongs to.
    pub fn super_block(&self) -> &SuperBlock<T> {
        // SAFETY: An inode's superblock outlives it.
        unsafe { SuperBlock::from_raw((*self.0.get()).i_sb) }
    }
}

/// A reference to a set-up inode, dropped with `iput()`.
///
/// # Invariants
///
/// `self.0` is a set-up inode of type `T` whose reference we own.
pub struct InodeRef<T: FileSystem>(*mut bindings::inode, PhantomData<T>);

impl<T: FileSystem> InodeRef<T> {
    fn into_raw(self) -> *mut bindings::inode {
        let p = self.0;
        core::mem::forget(self);
        p
    }
}

impl<T: FileSystem> Drop for InodeRef<T> {
    fn drop(&mut self) {
        // SAFETY: We own the reference (type invariant).
        unsafe { bindings::iput(self.0) };
    }
}

/// A new inode being set up, not yet visible to anyone else.
///
/// # Invariants
///
/// `self.0` is a new, locked inode from `iget_locked` (`I_NEW`).
pub struct NewInode<T: FileSystem>(*mut bindings::inode, PhantomData<T>);

impl<T: FileSystem> NewInode<T> {
    /// Sets type and permission bits.
    pub fn set_mode(&mut self, mode: u32) -> &mut Self {
        // SAFETY: The inode is new and locked, still private to its creator
        // (type invariant).
        unsafe { (*self.0).i_mode = mode as _ };
        self
    }

    /// Sets owner and group, as ids in the initial user namespace.
    pub fn set_owner(&mut self, uid: u32, gid: u32) -> &mut Self {
        // SAFETY: As `set_mode`; `init_user_ns` is the global root namespace.
        unsafe {
            (*self.0).i_uid =
                bindings::make_kuid(core::ptr::addr_of_mut!(bindings::init_user_ns), uid);
            (*self.0).i_gid =
                bindings::make_kgid(core::ptr::addr_of_mut!(bindings::init_user_ns), gid);
        }
        self
    }

    /// Sets size and block count (512-byte units).
    pub fn set_size(&mut self, size: i64, blocks: u64) -> &mut Self {
        // SAFETY: As `set_mode`; no one else can see the inode, so the plain
        // stores need none of `i_size_write`'s ordering.
        unsafe {
            (*self.0).i_size = size;
            (*self.0).i_blocks = blocks as _;
        }
        self
    }

    /// Sets the link count.
    pub fn set_nlink(&mut self, nlink: u32) -> &mut Self {
        // SAFETY: As `set_mode`.
        unsafe { bindings::set_nlink(self.0, nlink) };
        self
    }

    /// Sets access, modification and change times (seconds, nanoseconds).
    pub fn set_times(&mut self, a: (i64, u32), m: (i64, u32), c: (i64, u32)) -> &mut Self {
        // SAFETY: As `set_mode`.
        unsafe {
            (*self.0).i_atime_sec = a.0;
            (*self.0).i_atime_nsec = a.1;
            (*self.0).i_mtime_sec = m.0;
            (*self.0).i_mtime_nsec = m.1;
            (*self.0).i_ctime_sec = c.0;
            (*self.0).i_ctime_nsec = c.1;
        }
        self
    }

    /// Makes it a directory whose names are found with
    /// [`FileSystem::lookup`]; listing it uses `simple_dir_operations`,
    /// which shows only what is cached.
    pub fn set_lookup_dir(&mut self) -> &mut Self {
        // SAFETY: As `set_mode`; both tables are static.
        unsafe {
            (*self.0).i_op = &DirOps::<T>::TABLE;
            (*self.0).__bindgen_anon_3.i_fop = &bindings::simple_dir_operations;
        }
        self
    }
}

/// The `inode_operations` of `T`'s directories.
struct DirOps<T>(PhantomData<T>);

impl<T: FileSystem> DirOps<T> {
    const TABLE: bindings::inode_operations = bindings::inode_operations {
        lookup: Some(lookup_callback::<T>),
        // SAFETY: All-zeroes is valid for the remaining (optional) callbacks.
        ..unsafe { core::mem::zeroed() }
    };
}

/// The `super_operations` of `T`.
struct SuperOps<T>(PhantomData<T>);

impl<T: FileSystem> SuperOps<T> {
    const TABLE: bindings::super_operations = bindings::super_operations {
        statfs: Some(statfs_callback::<T>),
        evict_inode: Some(evict_inode_callback::<T>),
        // SAFETY: All-zeroes is valid for the remaining (optional) callbacks.
        ..unsafe { core::mem::zeroed() }
    };
}

/// The `fs_context_operations` of `T`.
struct ContextOps<T>(PhantomData<T>);

impl<T: FileSystem> ContextOps<T> {
    const TABLE: bindings::fs_context_operations = bindings::fs_context_operations {
        free: Some(free_callback::<T>),
        parse_param: Some(parse_param_callback::<T>),
        get_tree: Some(get_tree_callback::<T>),
        // SAFETY: All-zeroes is valid for the remaining (optional) callbacks.
        ..unsafe { core::mem::zeroed() }
    };
}

/// # Safety
///
/// Called only by the VFS through this file system's tables, with the arguments it documents.
unsafe extern "C" fn init_fs_context_callback<T: FileSystem>(
    fc: *mut bindings::fs_context,
) -> c_int {
    from_result(|| {
        let ctx = KBox::new(T::init_context()?, GFP_KERNEL)?;
        // SAFETY: The VFS calls this with a valid, new context; `free`
        // takes the box back.
        unsafe {
            (*fc).fs_private = KBox::into_raw(ctx).cast();
            (*fc).ops = &ContextOps::<T>::TABLE;
        }
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through this file system's tables, with the arguments it documents.
unsafe extern "C" fn free_callback<T: FileSystem>(fc: *mut bindings::fs_context) {
    // SAFETY: `fc` is valid; `fs_private` is null or our box, freed once.
    unsafe {
        let p = (*fc).fs_private;
        if !p.is_null() {
            (*fc).fs_private = core::ptr::null_mut();
            drop(KBox::from_raw(p.cast::<T::Context>()));
        }
        let d = (*fc).s_fs_info;
        if !d.is_null() {
            (*fc).s_fs_info = core::ptr::null_mut();
            drop(T::Data::from_foreign(d.cast_const()));
        }
    }
}

/// # Safety
///
/// Called only by the VFS through this file system's tables, with the arguments it documents.
unsafe extern "C" fn parse_param_callback<T: FileSystem>(
    fc: *mut bindings::fs_context,
    param: *mut bindings::fs_parameter,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes a valid context of ours and a parameter
        // whose key is a NUL-terminated string.
        let (ctx, key, ty) = unsafe {
            (
                FsContext::<T>::from_raw(fc).context(),
                CStr::from_char_ptr((*param).key),
                (*param).type_(),
            )
        };
        let value = if ty == bindings::fs_value_type_fs_value_is_flag {
            None
        } else if ty == bindings::fs_value_type_fs_value_is_string {
            // SAFETY: A string parameter carries a NUL-terminated string.
            Some(unsafe { CStr::from_char_ptr((*param).__bindgen_anon_1.string) })
        } else {
            return Err(EINVAL);
        };
        T::parse_param(ctx, key, value)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through this file system's tables, with the arguments it documents.
unsafe extern "C" fn get_tree_callback<T: FileSystem>(fc: *mut bindings::fs_context) -> c_int {
    from_result(|| {
        // SAFETY: The VFS calls `get_tree` once with exclusive use of `fc`.
        T::get_tree(unsafe { FsContext::from_raw(fc) })?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through this file system's tables, with the arguments it documents.
unsafe extern "C" fn test_super_callback<T: FileSystem>(
    sb: *mut bindings::super_block,
    fc: *mut bindings::fs_context,
) -> c_int {
    // SAFETY: Called by `sget_fc` under `sb_lock` (a spinlock, so an RCU
    // read-side section) with a superblock of this type and the context
    // whose `s_fs_info` we just set. A dying superblock stays listed after
    // `kill_sb`: its data pointer is cleared first and freed only after an
    // RCU grace period (`kill_sb_callback`), so it is null or alive here.
    let same = unsafe {
        let existing = core::ptr::read_volatile(core::ptr::addr_of!((*sb).s_fs_info));
        if existing.is_null() {
            return 0;
        }
        T::same_super(
            T::Data::borrow(existing.cast_const()),
            T::Data::borrow((*fc).s_fs_info.cast_const()),
        )
    };
    c_int::from(same)
}

/// # Safety
///
/// Called only by the VFS through this file system's tables, with the arguments it documents.
unsafe extern "C" fn kill_sb_callback<T: FileSystem>(sb: *mut bindings::super_block) {
    // SAFETY: The VFS calls this once per superblock of ours.
    unsafe {
        if !(*sb).s_root.is_null() {
            T::kill_sb(SuperBlock::from_raw(sb));
        }
        bindings::kill_anon_super(sb);
        let data = (*sb).s_fs_info;
        if !data.is_null() {
            // `sget_fc` of another mount may still look at this superblock
            // (it stays listed until `kill_super_notify`): unpublish the
            // data, wait for such lookups, then free it.
            core::ptr::write_volatile(
                core::ptr::addr_of_mut!((*sb).s_fs_info),
                core::ptr::null_mut(),
            );
            bindings::synchronize_rcu();
            drop(T::Data::from_foreign(data.cast_const()));
        }
    }
}

/// # Safety
///
/// Called only by the VFS through this file system's tables, with the arguments it documents.
unsafe extern "C" fn statfs_callback<T: FileSystem>(
    dentry: *mut bindings::dentry,
    buf: *mut bindings::kstatfs,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes a dentry of a live superblock of ours and
        // a buffer to fill.
        let (sb, buf) = unsafe { (SuperBlock::<T>::from_raw((*dentry).d_sb), &mut *buf) };
        T::statfs(sb, buf)?;
        Ok(0)
    })
}

/// `FS_ALLOW_IDMAP`: the file system handles idmapped mounts.
pub const FS_ALLOW_IDMAP: i32 = bindings::FS_ALLOW_IDMAP as i32;

/// # Safety
///
/// Called only by the VFS through `DirOps::TABLE`, with a directory of
/// ours and a dentry under it.
unsafe extern "C" fn lookup_callback<T: FileSystem>(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    _flags: core::ffi::c_uint,
) -> *mut bindings::dentry {
    // SAFETY: The VFS holds `dir` (set up by us) and the dentry, whose name
    // is stable during lookup.
    let (dir, name) = unsafe {
        let q = &(*dentry).d_name;
        (
            Inode::<T>::from_raw(dir),
            core::slice::from_raw_parts(q.name, q.__bindgen_anon_1.__bindgen_anon_1.len as usize),
        )
    };
    let inode = match T::lookup(dir, name) {
        Ok(Some(i)) => i.into_raw(),
        Ok(None) => core::ptr::null_mut(),
        Err(e) => return e.to_ptr(),
    };
    // SAFETY: `d_splice_alias` takes our inode reference (null: a negative
    // dentry).
    unsafe { bindings::d_splice_alias(inode, dentry) }
}

/// # Safety
///
/// Called only by the VFS through `SuperOps::TABLE`, once per inode of ours.
unsafe extern "C" fn evict_inode_callback<T: FileSystem>(inode: *mut bindings::inode) {
    // SAFETY: The inode is being evicted: nobody else uses it.
    unsafe {
        bindings::truncate_inode_pages_final(core::ptr::addr_of_mut!((*inode).i_data));
        bindings::clear_inode(inode);
        let data = (*inode).i_private;
        (*inode).i_private = core::ptr::null_mut();
        let data = if data.is_null() {
            None
        } else {
            Some(KBox::from_raw(data.cast::<T::InodeData>()))
        };
        T::evict_inode(SuperBlock::from_raw((*inode).i_sb), data);
    }
}
