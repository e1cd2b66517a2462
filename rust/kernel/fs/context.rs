// SPDX-License-Identifier: GPL-2.0

//! Mount contexts (`struct fs_context`) and their operations.
//!
//! C header: [`include/linux/fs_context.h`](srctree/include/linux/fs_context.h)

use super::{inode::Inode, sb, FileSystem, New, SuperBlock};
use crate::{
    bindings,
    error::from_result,
    ffi::c_int,
    prelude::*,
    types::{ARef, ForeignOwnable, Opaque},
};
use core::marker::PhantomData;

/// `SB_ACTIVE` (`BIT(30)` in include/linux/fs.h, which bindgen cannot
/// evaluate): the superblock is fully set up.
const SB_ACTIVE: usize = 1 << 30;

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
        fill: impl FnOnce(&mut SuperBlock<T, New>) -> Result<ARef<Inode<T>>>,
    ) -> Result {
        let fc = self.raw();
        let info = sb::SbInfo::<T>::new(data)?;
        // SAFETY: `fc` is valid. `s_fs_info` is ours to set; `sget_fc`
        // moves it into a new superblock (and clears it) or leaves it.
        let sb = unsafe {
            (*fc).s_fs_info = info.cast();
            bindings::sget_fc(
                fc,
                Some(test_super_callback::<T>),
                Some(bindings::set_anon_super_fc),
            )
        };
        // SAFETY: Whatever `sget_fc` did not take is still ours, unshared.
        unsafe {
            let left = (*fc).s_fs_info;
            if !left.is_null() {
                (*fc).s_fs_info = core::ptr::null_mut();
                sb::SbInfo::<T>::free(left.cast());
            }
        }
        let sb = crate::error::from_err_ptr(sb)?;
        // SAFETY: `sget_fc` returned a live superblock with `s_umount` held
        // for writing, which the VFS releases after `get_tree`.
        if unsafe { (*sb).s_root.is_null() } {
            // SAFETY: A new superblock (no root yet): locked, not active,
            // exclusively ours while we fill it, so the one
            // `&mut SuperBlock<T, New>` is unique.
            let new = unsafe { SuperBlock::<T, New>::from_raw_mut(sb) };
            // SAFETY: As above.
            unsafe { (*sb).s_op = &sb::SuperOps::<T>::TABLE };
            let root = match fill(new) {
                // SAFETY: `d_make_root` consumes the inode reference, also
                // on failure.
                Ok(inode) => unsafe { bindings::d_make_root(Inode::into_raw(inode)) },
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
                (*sb).s_flags |= SB_ACTIVE as crate::ffi::c_ulong;
            }
        }
        // SAFETY: `s_root` is set; the mount takes a reference to it.
        unsafe { (*fc).root = bindings::dget((*sb).s_root) };
        Ok(())
    }
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
/// Called only by the VFS (`file_system_type.init_fs_context`) with a new context.
pub(super) unsafe extern "C" fn init_fs_context_callback<T: FileSystem>(
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
/// Called only by the VFS through `ContextOps::TABLE`, with a context of ours.
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
            sb::SbInfo::<T>::free(d.cast());
        }
    }
}

/// # Safety
///
/// Called only by the VFS through `ContextOps::TABLE`, with a context of ours.
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
/// Called only by the VFS through `ContextOps::TABLE`, with a context of ours.
unsafe extern "C" fn get_tree_callback<T: FileSystem>(fc: *mut bindings::fs_context) -> c_int {
    from_result(|| {
        // SAFETY: The VFS calls `get_tree` once with exclusive use of `fc`.
        T::get_tree(unsafe { FsContext::from_raw(fc) })?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by `sget_fc`, from `get_tree_shared`.
unsafe extern "C" fn test_super_callback<T: FileSystem>(
    sb: *mut bindings::super_block,
    fc: *mut bindings::fs_context,
) -> c_int {
    // SAFETY: Called by `sget_fc` under `sb_lock` for a superblock of this
    // type that is not `SB_DEAD`, and the context whose `s_fs_info` we just
    // set (both `SbInfo<T>`). The superblock's data is alive: it is freed
    // only after `kill_anon_super` set `SB_DEAD` under `sb_lock`, and an RCU
    // grace period later.
    let same = unsafe {
        let existing = (*sb).s_fs_info.cast::<sb::SbInfo<T>>();
        if existing.is_null() {
            return 0;
        }
        let new = (*fc).s_fs_info.cast::<sb::SbInfo<T>>();
        T::same_super(
            T::Data::borrow((*existing).data()),
            T::Data::borrow((*new).data()),
        )
    };
    c_int::from(same)
}
