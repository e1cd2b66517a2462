// SPDX-License-Identifier: GPL-2.0

//! POSIX access control lists (`struct posix_acl`) and their extended
//! attribute form (`system.posix_acl_access`, `system.posix_acl_default`).
//!
//! A file system that keeps ACLs elsewhere (a FUSE server) implements
//! `get_inode_acl`, `get_acl` and `set_acl` of
//! [`super::inode::Operations`] with these: [`PosixAcl::from_xattr`] turns
//! what the server sends into an ACL the VFS caches and checks,
//! [`PosixAcl::to_xattr`] turns one the VFS hands over into what the server
//! stores.
//!
//! C headers: [`include/linux/posix_acl.h`](srctree/include/linux/posix_acl.h),
//! [`include/linux/posix_acl_xattr.h`](srctree/include/linux/posix_acl_xattr.h)

use crate::{
    bindings, c_str,
    prelude::*,
    types::{ARef, AlwaysRefCounted, Opaque},
};
use core::ptr::NonNull;

/// Which of an inode's ACLs (`ACL_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclType {
    /// The access ACL (`ACL_TYPE_ACCESS`): who may do what to the inode.
    Access,
    /// The default ACL of a directory (`ACL_TYPE_DEFAULT`): what new
    /// entries inherit.
    Default,
}

impl AclType {
    /// The type the VFS passed (`ACL_TYPE_*`), or `None` for another.
    pub fn from_raw(t: i32) -> Option<Self> {
        match t as u32 {
            bindings::ACL_TYPE_ACCESS => Some(Self::Access),
            bindings::ACL_TYPE_DEFAULT => Some(Self::Default),
            _ => None,
        }
    }

    /// The extended attribute that holds this ACL
    /// (`XATTR_NAME_POSIX_ACL_ACCESS`, `XATTR_NAME_POSIX_ACL_DEFAULT`).
    pub fn xattr_name(self) -> &'static CStr {
        match self {
            Self::Access => c_str!("system.posix_acl_access"),
            Self::Default => c_str!("system.posix_acl_default"),
        }
    }
}

/// A POSIX ACL (`struct posix_acl`).
///
/// # Invariants
///
/// The ACL is valid and reference counted (`a_refcount`); it is never
/// changed once shared (the VFS copies an ACL to change it).
#[repr(transparent)]
pub struct PosixAcl(Opaque<bindings::posix_acl>);

// SAFETY: A shared ACL is immutable; its count is atomic and the last
// reference frees it after an RCU grace period, from any thread.
unsafe impl Send for PosixAcl {}
// SAFETY: See above.
unsafe impl Sync for PosixAcl {}

// SAFETY: The reference count is `a_refcount`, taken by `refcount_inc` and
// given back by `posix_acl_release`, which frees the ACL at zero.
unsafe impl AlwaysRefCounted for PosixAcl {
    fn inc_ref(&self) {
        // SAFETY: The ACL is valid (type invariant) and we hold a
        // reference, so the count is not zero.
        unsafe { bindings::refcount_inc(core::ptr::addr_of_mut!((*self.0.get()).a_refcount)) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives back a reference it owns.
        unsafe { bindings::posix_acl_release(obj.cast().as_ptr()) };
    }
}

impl PosixAcl {
    /// The ACL at `ptr`, borrowed.
    ///
    /// # Safety
    ///
    /// `ptr` is a valid ACL that stays referenced for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::posix_acl) -> &'a Self {
        // SAFETY: `PosixAcl` is transparent over the C struct; the caller
        // guarantees validity for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// The raw pointer.
    pub fn as_raw(&self) -> *mut bindings::posix_acl {
        self.0.get()
    }

    /// Gives the caller's reference to C (a `get_acl` result).
    pub fn into_raw(this: ARef<Self>) -> *mut bindings::posix_acl {
        let p = this.as_raw();
        core::mem::forget(this);
        p
    }

    /// The number of entries.
    pub fn count(&self) -> usize {
        // SAFETY: The ACL is valid and `a_count` never changes once it is
        // shared (type invariant).
        unsafe { (*self.as_raw()).a_count as usize }
    }

    /// The size of this ACL in extended attribute form
    /// (`posix_acl_xattr_size()`).
    pub fn xattr_size(&self) -> usize {
        core::mem::size_of::<bindings::posix_acl_xattr_header>()
            + self.count() * core::mem::size_of::<bindings::posix_acl_xattr_entry>()
    }

    /// The ACL of extended attribute value `value`, its ids read in the
    /// initial user namespace (the one of a file system mounted there).
    /// `None` for an ACL of no entries; an error for a malformed value:
    /// `EOPNOTSUPP` for another version, `EINVAL` for a bad size, tag or id
    /// (`posix_acl_from_xattr()`), or entries out of the order and
    /// uniqueness `posix_acl_valid()` wants.
    pub fn from_xattr(value: &[u8]) -> Result<Option<ARef<Self>>> {
        // SAFETY: `value` is readable for its length; `init_user_ns` is
        // static. The function allocates a new ACL (one reference, ours)
        // or returns NULL or an error pointer.
        let p = unsafe {
            bindings::posix_acl_from_xattr(
                core::ptr::addr_of_mut!(bindings::init_user_ns),
                value.as_ptr().cast(),
                value.len(),
            )
        };
        let p = crate::error::from_err_ptr(p)?;
        let Some(p) = NonNull::new(p) else {
            return Ok(None);
        };
        // SAFETY: `p` is a new, valid ACL whose one reference is ours.
        let acl: ARef<Self> = unsafe { ARef::from_raw(p.cast()) };
        // SAFETY: The ACL is valid; `init_user_ns` is static.
        let r = unsafe {
            bindings::posix_acl_valid(
                core::ptr::addr_of_mut!(bindings::init_user_ns),
                acl.as_raw(),
            )
        };
        if r < 0 {
            return Err(Error::from_errno(r));
        }
        Ok(Some(acl))
    }

    /// This ACL in extended attribute form into `buf`, its ids written in
    /// the initial user namespace; returns the size (`ERANGE` if `buf` is
    /// smaller than [`Self::xattr_size`]).
    pub fn to_xattr(&self, buf: &mut [u8]) -> Result<usize> {
        // SAFETY: The ACL is valid; `buf` is writable for its length;
        // `init_user_ns` is static.
        let n = unsafe {
            bindings::posix_acl_to_xattr(
                core::ptr::addr_of_mut!(bindings::init_user_ns),
                self.as_raw(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(Error::from_errno(n));
        }
        Ok(n as usize)
    }
}

/// The idmapping of the mount a call came through (`struct mnt_idmap`).
///
/// # Invariants
///
/// Valid for the call it was passed to.
#[repr(transparent)]
pub struct MntIdmap(Opaque<bindings::mnt_idmap>);

impl MntIdmap {
    /// The idmapping at `ptr`, borrowed.
    ///
    /// # Safety
    ///
    /// `ptr` is a valid idmapping for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::mnt_idmap) -> &'a Self {
        // SAFETY: Transparent; the caller guarantees validity.
        unsafe { &*ptr.cast() }
    }

    /// Whether the current task is in `inode`'s group as seen through this
    /// idmapping, or has `CAP_FSETID` over it (`in_group_or_capable()`):
    /// whether it may keep the set-group-ID bit when it changes the file.
    pub fn in_group_or_capable<T: super::FileSystem>(&self, inode: &super::Inode<T>) -> bool {
        // SAFETY: Both are valid for the call; the helper reads the
        // inode's group and the task's credentials.
        unsafe { bindings::vfs_in_group_or_capable(self.0.get(), inode.as_raw()) }
    }
}
