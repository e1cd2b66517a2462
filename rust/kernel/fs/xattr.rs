// SPDX-License-Identifier: GPL-2.0

//! Extended attributes: a file system's handler of every name
//! (`struct xattr_handler` with an empty prefix, as FUSE's), installed in
//! the superblock's `s_xattr`.
//!
//! C header: [`include/linux/xattr.h`](srctree/include/linux/xattr.h)

use super::{FileSystem, Inode};
use crate::{bindings, ffi::c_int, prelude::*};
use core::marker::PhantomData;

/// A handler of every extended attribute name of file system `T`.
#[vtable]
pub trait Handler {
    /// The file system of the inodes.
    type FileSystem: FileSystem;

    /// The value of `name` of `inode` into `buf` (`None`: only its size);
    /// returns the value's size.
    fn get(inode: &Inode<Self::FileSystem>, name: &CStr, buf: Option<&mut [u8]>) -> Result<usize>;

    /// Sets `name` of `inode` to `value` (`None`: removes it), with
    /// `XATTR_CREATE`/`XATTR_REPLACE` `flags`.
    fn set(
        inode: &Inode<Self::FileSystem>,
        name: &CStr,
        value: Option<&[u8]>,
        flags: u32,
    ) -> Result;
}

/// The `s_xattr` table of a file system: one handler of every name.
#[derive(Clone, Copy)]
pub struct Handlers<T: FileSystem>(&'static [*const bindings::xattr_handler; 2], PhantomData<T>);

impl<T: FileSystem> Handlers<T> {
    /// The table of `U`'s handler.
    pub const fn new<U: Handler<FileSystem = T> + ?Sized>() -> Self {
        struct Table<U: ?Sized>(PhantomData<U>);
        impl<U: Handler + ?Sized> Table<U> {
            const HANDLER: bindings::xattr_handler = bindings::xattr_handler {
                prefix: c"".as_ptr().cast(),
                get: Some(get_callback::<U>),
                set: Some(set_callback::<U>),
                // SAFETY: All-zeroes is valid for the remaining fields.
                ..unsafe { core::mem::zeroed() }
            };
            const ARRAY: [*const bindings::xattr_handler; 2] =
                [&Self::HANDLER as *const _, core::ptr::null()];
        }
        Self(&Table::<U>::ARRAY, PhantomData)
    }

    pub(crate) fn as_raw(&self) -> *const *const bindings::xattr_handler {
        self.0.as_ptr()
    }
}

/// # Safety
///
/// Called only by the VFS through a `Handlers` table, for an inode of ours
/// (set up, held by the caller) and a NUL-terminated name.
unsafe extern "C" fn get_callback<U: Handler + ?Sized>(
    _handler: *const bindings::xattr_handler,
    _dentry: *mut bindings::dentry,
    inode: *mut bindings::inode,
    name: *const crate::ffi::c_char,
    buffer: *mut core::ffi::c_void,
    size: usize,
) -> c_int {
    // SAFETY: As the function's contract; the buffer, when the size is not
    // 0, is the caller's `size` bytes, ours to write for the call.
    let r = unsafe {
        let buf = (size != 0 && !buffer.is_null())
            .then(|| core::slice::from_raw_parts_mut(buffer.cast::<u8>(), size));
        U::get(Inode::from_raw(inode), CStr::from_char_ptr(name), buf)
    };
    match r {
        Ok(n) => c_int::try_from(n).unwrap_or(c_int::MAX),
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// As `get_callback`; `buffer` is null (remove) or `size` readable bytes.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn set_callback<U: Handler + ?Sized>(
    _handler: *const bindings::xattr_handler,
    _idmap: *mut bindings::mnt_idmap,
    _dentry: *mut bindings::dentry,
    inode: *mut bindings::inode,
    name: *const crate::ffi::c_char,
    buffer: *const core::ffi::c_void,
    size: usize,
    flags: c_int,
) -> c_int {
    // SAFETY: As the function's contract.
    let r = unsafe {
        let value = (!buffer.is_null()).then(|| {
            if size == 0 {
                &[][..]
            } else {
                core::slice::from_raw_parts(buffer.cast::<u8>(), size)
            }
        });
        U::set(
            Inode::from_raw(inode),
            CStr::from_char_ptr(name),
            value,
            flags as u32,
        )
    };
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
