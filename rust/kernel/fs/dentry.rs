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
use core::{marker::PhantomData, ptr::NonNull};

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

    /// The dentry's name. Stable during `lookup`; elsewhere a concurrent
    /// rename may change it, as C's users of `d_name` accept.
    pub fn name(&self) -> &[u8] {
        // SAFETY: `d_name` points to `len` bytes that live as long as the
        // dentry keeps that name (C reads it the same way).
        unsafe {
            let q = &(*self.as_raw()).d_name;
            core::slice::from_raw_parts(q.name, q.__bindgen_anon_1.__bindgen_anon_1.len as usize)
        }
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
    /// entry, as set by [`DEntry::set_valid_until`] (`d_time`; 0 if never
    /// set).
    pub fn valid_until(&self) -> u64 {
        // SAFETY: `d_time` is the file system's; racy reads are benign, as
        // in C.
        unsafe { core::ptr::read_volatile(&(*self.as_raw()).d_time) as u64 }
    }

    /// Sets the time until which the entry is trusted.
    pub fn set_valid_until(&self, jiffies: u64) {
        // SAFETY: As `valid_until`.
        unsafe { core::ptr::write_volatile(&mut (*self.as_raw()).d_time, jiffies as _) };
    }
}

/// How `d_revalidate` is called.
#[derive(Clone, Copy, Debug)]
pub struct Revalidate {
    /// RCU path walk (`LOOKUP_RCU`): the callback must not sleep; return
    /// `ECHILD` to be called again in ref-walk mode.
    pub rcu: bool,
    /// The VFS wants a fresh answer (`LOOKUP_EXCL`, `LOOKUP_REVAL`,
    /// `LOOKUP_RENAME_TARGET`), whatever the timeout says.
    pub force: bool,
}

/// The operations of a file system's dentries (`dentry_operations`).
#[vtable]
pub trait Operations {
    /// The file system of the dentries.
    type FileSystem: FileSystem;

    /// Whether `dentry` is still valid (`dentry_operations.d_revalidate`):
    /// `Ok(false)` makes the VFS drop it and look the name up again.
    fn revalidate(_dentry: &DEntry<Self::FileSystem>, _how: Revalidate) -> Result<bool> {
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
    let how = Revalidate {
        rcu: flags & bindings::LOOKUP_RCU != 0,
        force: flags
            & (bindings::LOOKUP_EXCL | bindings::LOOKUP_REVAL | bindings::LOOKUP_RENAME_TARGET)
            != 0,
    };
    // SAFETY: The VFS passes a dentry of ours that stays valid during the
    // call (in RCU-walk, inside the RCU read-side section).
    match U::revalidate(unsafe { DEntry::from_raw(dentry) }, how) {
        Ok(valid) => c_int::from(valid),
        Err(e) => e.to_errno(),
    }
}
