// SPDX-License-Identifier: GPL-2.0

//! Directory entries (`struct dentry`) and their operations
//! (`dentry_operations`).
//!
//! C header: [`include/linux/dcache.h`](srctree/include/linux/dcache.h)

use super::{FileSystem, Inode};
use crate::{
    bindings,
    ffi::{c_int, c_uint},
    prelude::*,
    types::{ARef, AlwaysRefCounted, Opaque},
};
use core::{marker::PhantomData, mem::MaybeUninit, ptr::NonNull};

/// A dentry of file system `T`.
///
/// # Invariants
///
/// The wrapped dentry belongs to a superblock of `T` and is valid for the
/// lifetime of the reference.
#[repr(transparent)]
pub struct DEntry<T: FileSystem>(Opaque<bindings::dentry>, PhantomData<T>);

// SAFETY: Dentries are meant to be shared between threads; the C side
// synchronises them.
unsafe impl<T: FileSystem> Send for DEntry<T> {}
// SAFETY: See above.
unsafe impl<T: FileSystem> Sync for DEntry<T> {}

// SAFETY: `dget` and `dput` keep the dentry alive while a reference is held.
unsafe impl<T: FileSystem> AlwaysRefCounted for DEntry<T> {
    fn inc_ref(&self) {
        // SAFETY: `self` is a live dentry we hold a reference to.
        unsafe { bindings::dget(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns a reference.
        unsafe { bindings::dput(obj.as_ptr().cast()) };
    }
}

impl<T: FileSystem> DEntry<T> {
    /// # Safety
    ///
    /// `ptr` must be a valid dentry of `T` for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::dentry) -> &'a Self {
        // SAFETY: Transparent wrapper; validity from the caller.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct dentry *`.
    pub fn as_raw(&self) -> *mut bindings::dentry {
        self.0.get()
    }

    /// The dentry's name, for callers that know it is stable (`lookup`, on
    /// the dentry being looked up).
    ///
    /// # Safety
    ///
    /// No rename may change the name while the slice is used.
    pub(crate) unsafe fn name_unchecked(&self) -> &[u8] {
        // SAFETY: `d_name` points to `len` bytes that live as long as the
        // dentry keeps that name, which the caller guarantees.
        unsafe {
            let q = &(*self.as_raw()).d_name;
            core::slice::from_raw_parts(q.name, q.__bindgen_anon_1.__bindgen_anon_1.len as usize)
        }
    }

    /// The superblock the dentry belongs to.
    pub fn super_block(&self) -> &super::SuperBlock<T> {
        // SAFETY: A dentry's superblock outlives it and is set up.
        unsafe { super::SuperBlock::from_raw((*self.as_raw()).d_sb) }
    }

    /// Whether this is the root of its tree (its own parent).
    pub fn is_root(&self) -> bool {
        // SAFETY: The dentry is valid; `d_parent` is read racily, as C's
        // `IS_ROOT` does.
        unsafe { core::ptr::read_volatile(&(*self.as_raw()).d_parent) == self.as_raw() }
    }

    /// The inode of a positive dentry (`d_inode()`).
    pub fn inode(&self) -> Option<&Inode<T>> {
        // SAFETY: The dentry is valid; a positive dentry holds a reference
        // to its inode, which is set up, as long as it stays positive,
        // which holding it guarantees for us (C's `d_inode` contract).
        unsafe {
            let i = core::ptr::read_volatile(&(*self.as_raw()).d_inode);
            if i.is_null() {
                None
            } else {
                Some(Inode::from_raw(i))
            }
        }
    }

    /// The parent dentry (`dget_parent()`).
    pub fn parent(&self) -> ARef<DEntry<T>> {
        // SAFETY: The dentry is valid; `dget_parent` returns a referenced
        // dentry (itself for a root) of the same superblock.
        unsafe {
            let p = bindings::dget_parent(self.as_raw());
            ARef::from_raw(NonNull::new_unchecked(p.cast()))
        }
    }

    /// The time (jiffies, 64-bit) until which the file system trusts this
    /// entry, as set by [`DEntry::set_valid_until`] or returned by
    /// [`inode::Operations::lookup`](super::inode::Operations::lookup); 0 if
    /// never set. Kept in `d_fsdata` as C's `fuse_dentry_time` does on
    /// 64-bit: `__d_alloc` zeroes it.
    pub fn valid_until(&self) -> u64 {
        // SAFETY: `d_fsdata` is the file system's; racy reads are benign,
        // as in C.
        unsafe { core::ptr::read_volatile(&(*self.as_raw()).d_fsdata) as u64 }
    }

    /// Sets the time until which the entry is trusted. (64-bit only: on
    /// 32-bit the field cannot hold 64-bit jiffies; users depend on
    /// `64BIT`.)
    pub fn set_valid_until(&self, jiffies: u64) {
        // SAFETY: As `valid_until`; the pointer-sized field holds a number
        // (`usize` is 64 bits on the 64-bit targets this builds for).
        unsafe {
            core::ptr::write_volatile(
                &mut (*self.as_raw()).d_fsdata,
                jiffies as usize as *mut core::ffi::c_void,
            )
        };
    }
}

/// An inode seen in RCU path walk (see [`RcuDEntry::inode`]).
pub struct RcuInode<'a, T: FileSystem>(&'a Inode<T>);

impl<T: FileSystem> RcuInode<'_, T> {
    /// The file system's data of the inode.
    pub fn data(&self) -> &T::INodeData {
        self.0.data()
    }

    /// The type and permission bits.
    pub fn mode(&self) -> u32 {
        self.0.mode()
    }
}

/// A dentry whose `d_lock` is held (`d_delete`): only its validity time.
#[repr(transparent)]
pub struct LockedDEntry<T: FileSystem>(DEntry<T>);

impl<T: FileSystem> LockedDEntry<T> {
    /// See [`DEntry::valid_until`].
    pub fn valid_until(&self) -> u64 {
        self.0.valid_until()
    }
}

/// A dentry seen in RCU path walk: only what can be read without sleeping
/// or taking references.
#[repr(transparent)]
pub struct RcuDEntry<T: FileSystem>(DEntry<T>);

impl<T: FileSystem> RcuDEntry<T> {
    /// See [`DEntry::valid_until`].
    pub fn valid_until(&self) -> u64 {
        self.0.valid_until()
    }

    /// The inode of a positive dentry, seen in RCU walk: its data and
    /// mode only (the inode may be on its way out: no references may be
    /// taken and nothing may sleep). Alive until the RCU read-side section
    /// ends (inodes are freed after a grace period).
    pub fn inode(&self) -> Option<RcuInode<'_, T>> {
        self.0.inode().map(RcuInode)
    }

    /// See [`DEntry::is_root`].
    pub fn is_root(&self) -> bool {
        self.0.is_root()
    }
}

/// The operations of a file system's dentries (`dentry_operations`).
#[vtable]
pub trait Operations {
    /// The file system of the dentries.
    type FileSystem: FileSystem;

    /// Whether `dentry`, named `name` (a stable snapshot), is still valid
    /// (`dentry_operations.d_revalidate` in ref-walk mode): `Ok(false)`
    /// makes the VFS drop it and look the name up again. `force` is set
    /// when the VFS wants a fresh answer (`LOOKUP_EXCL`, `LOOKUP_REVAL`,
    /// `LOOKUP_RENAME_TARGET`) whatever the timeout says.
    fn revalidate(_dentry: &DEntry<Self::FileSystem>, _name: &[u8], _force: bool) -> Result<bool> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// As [`Operations::revalidate`], in RCU path walk: must not sleep.
    /// Returning `ECHILD` (the default) has the VFS call
    /// [`Operations::revalidate`] in ref-walk mode.
    fn revalidate_rcu(_dentry: &RcuDEntry<Self::FileSystem>, _force: bool) -> Result<bool> {
        Err(ECHILD)
    }

    /// Whether to drop the dentry as soon as its last reference goes
    /// (`dentry_operations.d_delete`, called under the dentry's `d_lock`:
    /// atomic context, and the dentry's references must not be touched).
    fn delete(_dentry: &LockedDEntry<Self::FileSystem>) -> bool {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// A `dentry_operations` table of file system `T`.
#[derive(Clone, Copy)]
pub struct Ops<T: FileSystem>(&'static bindings::dentry_operations, PhantomData<T>);

impl<T: FileSystem> Ops<T> {
    /// The table of `U`'s operations.
    pub const fn new<U: Operations<FileSystem = T> + ?Sized>() -> Self {
        struct Table<U: ?Sized>(PhantomData<U>);
        impl<U: Operations + ?Sized> Table<U> {
            const TABLE: bindings::dentry_operations = bindings::dentry_operations {
                d_revalidate: if U::HAS_REVALIDATE {
                    Some(revalidate_callback::<U>)
                } else {
                    None
                },
                d_delete: if U::HAS_DELETE {
                    Some(delete_callback::<U>)
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

    pub(crate) fn as_raw(&self) -> *const bindings::dentry_operations {
        self.0
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, with a dentry of ours.
unsafe extern "C" fn revalidate_callback<U: Operations + ?Sized>(
    dentry: *mut bindings::dentry,
    flags: c_uint,
) -> c_int {
    let force = flags
        & (bindings::LOOKUP_EXCL | bindings::LOOKUP_REVAL | bindings::LOOKUP_RENAME_TARGET)
        != 0;
    let r = if flags & bindings::LOOKUP_RCU != 0 {
        // SAFETY: In RCU walk the dentry stays valid until the read-side
        // section ends, after we return; `RcuDEntry` is transparent.
        U::revalidate_rcu(
            unsafe { &*dentry.cast::<RcuDEntry<U::FileSystem>>() },
            force,
        )
    } else {
        // A concurrent rename may change the name (and free an external
        // one) while we sleep: work on a snapshot.
        let mut snap = MaybeUninit::<bindings::name_snapshot>::uninit();
        // SAFETY: `dentry` is valid and referenced in ref-walk mode; the
        // snapshot is released below, after its last use.
        let r = unsafe {
            bindings::take_dentry_name_snapshot(snap.as_mut_ptr(), dentry);
            let q = &(*snap.as_ptr()).name;
            let name = core::slice::from_raw_parts(
                q.name,
                q.__bindgen_anon_1.__bindgen_anon_1.len as usize,
            );
            U::revalidate(DEntry::from_raw(dentry), name, force)
        };
        // SAFETY: Taken above.
        unsafe { bindings::release_dentry_name_snapshot(snap.as_mut_ptr()) };
        r
    };
    match r {
        Ok(valid) => c_int::from(valid),
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, with a dentry of ours,
/// under its `d_lock`.
unsafe extern "C" fn delete_callback<U: Operations + ?Sized>(
    dentry: *const bindings::dentry,
) -> c_int {
    // SAFETY: The VFS passes a valid dentry of ours, locked;
    // `LockedDEntry` is transparent.
    c_int::from(U::delete(unsafe {
        &*dentry.cast::<LockedDEntry<U::FileSystem>>()
    }))
}

/// A child dentry [`DEntry::child`] found or made.
pub enum Child<T: FileSystem> {
    /// In the dcache already (positive or negative), referenced.
    Cached(ARef<DEntry<T>>),
    /// New and in lookup: [`InLookup::splice`] gives it its inode.
    InLookup(InLookup<T>),
}

/// A new dentry in lookup (`d_in_lookup()`): others looking its name up
/// wait for it, on a wait queue of its own. Dropped without
/// [`InLookup::splice`], its lookup ends with no inode (the next lookup
/// asks again); leaked, it leaks the queue too (nothing dangles).
///
/// # Invariants
///
/// The dentry is referenced and in lookup, its waiters on `wq`, which
/// serves it alone and is freed only after `d_lookup_done()` (`_wq`).
pub struct InLookup<T: FileSystem> {
    dentry: ARef<DEntry<T>>,
    // Owned for the lookup: freed with the fields, after `Drop::drop`.
    _wq: KBox<Opaque<bindings::wait_queue_head>>,
}

impl<T: FileSystem> InLookup<T> {
    /// The dentry.
    pub fn dentry(&self) -> &DEntry<T> {
        &self.dentry
    }

    /// Attaches `inode` (`d_splice_alias()`: an alias of a directory moves
    /// here instead) and ends the lookup; the dentry naming the inode then
    /// is valid until `valid_until` (jiffies). `EINVAL` for an inode of
    /// another superblock.
    pub fn splice(self, inode: ARef<Inode<T>>, valid_until: u64) -> Result {
        let d = self.dentry.as_raw();
        // SAFETY: Both are valid.
        if unsafe { (*inode.as_raw()).i_sb != (*d).d_sb } {
            return Err(EINVAL);
        }
        // Valid from the moment it is visible.
        self.dentry.set_valid_until(valid_until);
        // SAFETY: The dentry is in lookup (type invariant); `d_splice_alias`
        // takes our inode reference and returns an alias (referenced),
        // NULL or an error.
        let alias = unsafe { bindings::d_splice_alias(Inode::into_raw(inode), d) };
        // SAFETY: As above.
        let r = if unsafe { bindings::IS_ERR(alias.cast_const().cast()) } {
            // SAFETY: An error pointer.
            Err(Error::from_errno(
                unsafe { bindings::PTR_ERR(alias.cast_const().cast()) } as i32,
            ))
        } else {
            if !alias.is_null() {
                // SAFETY: A referenced dentry of the same superblock, which
                // we give back.
                unsafe {
                    DEntry::<T>::from_raw(alias).set_valid_until(valid_until);
                    bindings::dput(alias);
                }
            }
            Ok(())
        };
        drop(self);
        r
    }
}

impl<T: FileSystem> Drop for InLookup<T> {
    fn drop(&mut self) {
        // SAFETY: The dentry is referenced and was put in lookup by
        // `child` (type invariant); this ends it and wakes the waiters,
        // after which nothing refers to `wq` (freed with the fields).
        unsafe { bindings::d_lookup_done(self.dentry.as_raw()) };
    }
}

impl<T: FileSystem> DEntry<T> {
    /// The dentry of `name` in this directory (`d_lookup()`, then
    /// `d_alloc_parallel()`), as a file system seeds the dcache from a
    /// listing (FUSE's READDIRPLUS). `EINVAL` for a name that is not a
    /// valid one (1 to `NAME_MAX` bytes, no `/` or NUL, not `.` or `..`),
    /// `ENOTDIR` unless this is a directory.
    ///
    /// # Safety
    ///
    /// The caller holds this directory's `i_rwsem` (shared at least) until
    /// every returned [`InLookup`] is dropped (as `iterate_shared` does).
    pub unsafe fn child(&self, name: &[u8]) -> Result<Child<T>> {
        if name.is_empty()
            || name.len() > bindings::NAME_MAX as usize
            || name.contains(&b'/')
            || name.contains(&0)
            || name == b"."
            || name == b".."
        {
            return Err(EINVAL);
        }
        // SAFETY: The dentry is valid; `d_can_lookup` reads its flags.
        if !unsafe { bindings::d_can_lookup(self.as_raw()) } {
            return Err(ENOTDIR);
        }
        // SAFETY: This positive directory dentry is held by the caller;
        // `name` is valid for the call.
        let d =
            unsafe { bindings::vfs_d_lookup_name(self.as_raw(), name.as_ptr(), name.len() as u32) };
        let d = crate::error::from_err_ptr(d)?;
        if let Some(d) = NonNull::new(d) {
            // SAFETY: A referenced child of ours, whose reference becomes
            // the `ARef`'s.
            return Ok(Child::Cached(unsafe { ARef::from_raw(d.cast()) }));
        }
        let wq = KBox::new(Opaque::<bindings::wait_queue_head>::uninit(), GFP_KERNEL)?;
        // SAFETY: `wq` is ours, uninitialised; this initialises it, and the
        // box never moves it.
        unsafe { bindings::vfs_init_waitqueue_head(wq.get()) };
        // SAFETY: As above, with the parent's `i_rwsem` held (the caller);
        // `wq` serves only the dentry this may put in lookup, and outlives
        // its lookup (`InLookup` owns it).
        let d = unsafe {
            bindings::vfs_d_alloc_parallel_name(
                self.as_raw(),
                name.as_ptr(),
                name.len() as u32,
                wq.get(),
            )
        };
        let d = crate::error::from_err_ptr(d)?;
        let Some(d) = NonNull::new(d) else {
            return Err(ENOMEM);
        };
        // SAFETY: A referenced child of ours, whose reference becomes the
        // `ARef`'s.
        let dentry: ARef<DEntry<T>> = unsafe { ARef::from_raw(d.cast()) };
        // SAFETY: The dentry is valid.
        if unsafe { bindings::d_in_lookup(dentry.as_raw()) } {
            // INVARIANT: `d_alloc_parallel` put it in lookup with `wq`.
            Ok(Child::InLookup(InLookup { dentry, _wq: wq }))
        } else {
            // Another lookup finished it: `wq` was never used.
            Ok(Child::Cached(dentry))
        }
    }
}
