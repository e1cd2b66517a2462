// SPDX-License-Identifier: GPL-2.0

//! Open files (`struct file`) and their operations (`file_operations`).
//!
//! Named and shaped as upstream's `kernel::fs::File` (Linux 6.13), written
//! here for 6.12. A file's per-open state lives in `file->private_data` as
//! [`Operations::Data`], created by `open` and handed back to `release`.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{FileSystem, Inode};
use crate::{
    bindings,
    error::from_result,
    ffi::{c_int, c_uint},
    prelude::*,
    types::{ForeignOwnable, Opaque},
};
use core::marker::PhantomData;

/// An open file.
///
/// # Invariants
///
/// The wrapped file is valid for the lifetime of the reference.
#[repr(transparent)]
pub struct File(Opaque<bindings::file>);

// SAFETY: Files are shared between threads; the C side synchronises them.
unsafe impl Send for File {}
// SAFETY: See above.
unsafe impl Sync for File {}

impl File {
    /// # Safety
    ///
    /// `ptr` must be a valid file for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::file) -> &'a Self {
        // SAFETY: Transparent wrapper; validity from the caller.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct file *`.
    pub fn as_raw(&self) -> *mut bindings::file {
        self.0.get()
    }

    /// The open flags (`O_*`, `f_flags`).
    pub fn flags(&self) -> u32 {
        // SAFETY: The file is valid; `f_flags` is read racily, as in C.
        unsafe { core::ptr::read_volatile(&(*self.as_raw()).f_flags) }
    }
}

/// The directory listing context of `iterate_shared` (`struct
/// dir_context`): the position to list from, and where entries go.
#[repr(transparent)]
pub struct DirEmitter(Opaque<bindings::dir_context>);

impl DirEmitter {
    /// The position (cookie) the listing continues from.
    pub fn pos(&self) -> i64 {
        // SAFETY: The context is valid while we are called with it.
        unsafe { (*self.0.get()).pos }
    }

    /// Sets the position the next call continues from.
    pub fn set_pos(&mut self, pos: i64) {
        // SAFETY: As `pos`.
        unsafe { (*self.0.get()).pos = pos };
    }

    /// Emits one entry (`dir_emit()`); false when the caller's buffer is
    /// full (stop, and do not advance the position).
    pub fn emit(&mut self, name: &[u8], ino: u64, dtype: u32) -> bool {
        let Ok(len) = c_int::try_from(name.len()) else {
            return false;
        };
        let ctx = self.0.get();
        // SAFETY: The context is valid; `actor` is the VFS's filldir for
        // it, which copies the name.
        unsafe {
            let Some(actor) = (*ctx).actor else {
                return false;
            };
            actor(
                ctx,
                name.as_ptr().cast(),
                len,
                (*ctx).pos,
                ino,
                dtype as c_uint,
            )
        }
    }
}

/// The operations of open files (`file_operations`).
#[vtable]
pub trait Operations {
    /// The file system of the files.
    type FileSystem: FileSystem;

    /// Per-open state (`file->private_data`).
    type Data: ForeignOwnable + Send + Sync;

    /// Whether these are directories: `read` gives `EISDIR` and `llseek`
    /// is `generic_file_llseek`, as C's directory tables do.
    const DIRECTORY: bool = false;

    /// Opens `inode` (`file_operations.open`).
    fn open(inode: &Inode<Self::FileSystem>, file: &File) -> Result<Self::Data>;

    /// The last reference to the open file is gone
    /// (`file_operations.release`).
    fn release(_inode: &Inode<Self::FileSystem>, _file: &File, _data: Self::Data) {}

    /// Lists a directory from `ctx.pos()` (`file_operations.iterate_shared`,
    /// with the directory's `i_rwsem` held shared).
    fn iterate_shared(
        _file: &File,
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _inode: &Inode<Self::FileSystem>,
        _ctx: &mut DirEmitter,
    ) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// A `file_operations` table of file system `T`.
#[derive(Clone, Copy)]
pub struct Ops<T: FileSystem>(&'static bindings::file_operations, PhantomData<T>);

impl<T: FileSystem> Ops<T> {
    /// The table of `U`'s operations.
    pub const fn new<U: Operations<FileSystem = T> + ?Sized>() -> Self {
        struct Table<U: ?Sized>(PhantomData<U>);
        impl<U: Operations + ?Sized> Table<U> {
            const TABLE: bindings::file_operations = bindings::file_operations {
                open: Some(open_callback::<U>),
                release: Some(release_callback::<U>),
                iterate_shared: if U::HAS_ITERATE_SHARED {
                    Some(iterate_shared_callback::<U>)
                } else {
                    None
                },
                llseek: if U::DIRECTORY {
                    Some(bindings::generic_file_llseek)
                } else {
                    None
                },
                read: if U::DIRECTORY {
                    Some(bindings::generic_read_dir)
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

    pub(crate) fn as_raw(&self) -> *const bindings::file_operations {
        self.0
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, with an inode of ours.
unsafe extern "C" fn open_callback<U: Operations + ?Sized>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes a set-up inode of ours and the new file.
        let (i, f) = unsafe { (Inode::from_raw(inode), File::from_raw(file)) };
        let data = U::open(i, f)?;
        // SAFETY: The file is being opened: `private_data` is ours; `release`
        // takes it back.
        unsafe { (*file).private_data = data.into_foreign().cast_mut() };
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, once per opened file.
unsafe extern "C" fn release_callback<U: Operations + ?Sized>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: The VFS passes the inode and the file `open_callback` opened;
    // its `private_data` came from `into_foreign` and is taken back once.
    unsafe {
        let data = U::Data::from_foreign((*file).private_data.cast_const());
        (*file).private_data = core::ptr::null_mut();
        U::release(Inode::from_raw(inode), File::from_raw(file), data);
    }
    0
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, on a file `open_callback`
/// opened.
unsafe extern "C" fn iterate_shared_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    ctx: *mut bindings::dir_context,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes an open file of ours (its `private_data`
        // is ours until release, which cannot run during this call), its
        // inode, and a valid context; `DirEmitter` is transparent.
        let (f, data, inode, ctx) = unsafe {
            (
                File::from_raw(file),
                U::Data::borrow((*file).private_data.cast_const()),
                Inode::from_raw((*file).f_inode),
                &mut *ctx.cast::<DirEmitter>(),
            )
        };
        U::iterate_shared(f, data, inode, ctx)?;
        Ok(0)
    })
}
