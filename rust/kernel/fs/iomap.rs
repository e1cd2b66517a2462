// SPDX-License-Identifier: GPL-2.0

//! File extent mappings for the iomap and DAX cores (`struct iomap`,
//! `struct iomap_ops`).
//!
//! A file system that lets the DAX core reach its data directly
//! ([`crate::dax::iomap_read`], [`crate::dax::iomap_fault`], ...) answers
//! "where does byte `pos` of this inode live, and for how long" through an
//! [`Operations`] table: `begin` fills an [`Iomap`] (mapped at an offset of
//! a DAX device, or a hole), the core copies or maps through it, and `end`
//! is told how much was done.
//!
//! C header: [`include/linux/iomap.h`](srctree/include/linux/iomap.h)

use super::{inode::Inode, FileSystem};
use crate::{
    bindings,
    error::from_result,
    ffi::{c_int, c_uint},
    prelude::*,
    types::Opaque,
};
use core::marker::PhantomData;

/// What the core asks a mapping for (`flags` of `iomap_begin`).
pub mod flags {
    use crate::bindings;
    /// `IOMAP_WRITE`: the range will be written.
    pub const WRITE: u32 = bindings::IOMAP_WRITE;
    /// `IOMAP_ZERO`: zeroing; holes may be skipped.
    pub const ZERO: u32 = bindings::IOMAP_ZERO;
    /// `IOMAP_REPORT`: only reporting extents (FIEMAP).
    pub const REPORT: u32 = bindings::IOMAP_REPORT;
    /// `IOMAP_FAULT`: for a page fault.
    pub const FAULT: u32 = bindings::IOMAP_FAULT;
    /// `IOMAP_NOWAIT`: must not block.
    pub const NOWAIT: u32 = bindings::IOMAP_NOWAIT;
    /// `IOMAP_DAX`: a DAX access.
    pub const DAX: u32 = bindings::IOMAP_DAX;
}

/// `IOMAP_F_DIRTY`: the mapping's metadata is not yet durable (a
/// synchronous fault must make it so before it returns).
pub const F_DIRTY: u16 = bindings::IOMAP_F_DIRTY as u16;

/// One extent of a file (`struct iomap`), filled by
/// [`Operations::begin`].
#[repr(transparent)]
pub struct Iomap(Opaque<bindings::iomap>);

impl Iomap {
    /// Maps file bytes `offset..offset + length` at byte `addr` of the DAX
    /// device `dax_dev` (`IOMAP_MAPPED`), with `flags` (`IOMAP_F_*`).
    ///
    /// # Safety
    ///
    /// `dax_dev` must stay alive until the core is done with this mapping
    /// (until `iomap_end` returns), and `addr..addr + length` must be
    /// memory of it the file system may let the core read and write (and
    /// map into user space, for a fault).
    pub unsafe fn set_mapped(
        &mut self,
        offset: i64,
        length: u64,
        addr: u64,
        dax_dev: *mut bindings::dax_device,
        flags: u16,
    ) {
        let m = self.0.get();
        // SAFETY: `self` is the core's iomap, ours to fill during `begin`.
        unsafe {
            (*m).offset = offset;
            (*m).length = length;
            (*m).addr = addr;
            (*m).type_ = bindings::IOMAP_MAPPED as u16;
            (*m).flags = flags;
            (*m).bdev = core::ptr::null_mut();
            (*m).dax_dev = dax_dev;
        }
    }

    /// Describes file bytes `offset..offset + length` as a hole
    /// (`IOMAP_HOLE`): reads see zeroes.
    pub fn set_hole(&mut self, offset: i64, length: u64) {
        let m = self.0.get();
        // SAFETY: As in `set_mapped`.
        unsafe {
            (*m).offset = offset;
            (*m).length = length;
            (*m).addr = bindings::IOMAP_NULL_ADDR as u64;
            (*m).type_ = bindings::IOMAP_HOLE as u16;
            (*m).flags = 0;
            (*m).bdev = core::ptr::null_mut();
        }
    }

    /// The file system's own value for this mapping (`private`), given
    /// back in [`Operations::end`]; 0 if none was set.
    pub fn private(&self) -> usize {
        // SAFETY: Reads a field of the iomap we are called with.
        unsafe { (*self.0.get()).private as usize }
    }

    /// Sets the file system's own value for this mapping.
    pub fn set_private(&mut self, v: usize) {
        // SAFETY: As in `set_mapped`; the core never dereferences it.
        unsafe { (*self.0.get()).private = v as *mut core::ffi::c_void };
    }

    /// The type (`IOMAP_MAPPED`, `IOMAP_HOLE`, ...).
    pub fn kind(&self) -> u16 {
        // SAFETY: Reads a field of the iomap we are called with.
        unsafe { (*self.0.get()).type_ }
    }
}

/// The extent operations of file system `FileSystem` (`struct iomap_ops`).
#[vtable]
pub trait Operations {
    /// The file system of the inodes.
    type FileSystem: FileSystem;

    /// Describes where `inode`'s bytes from `pos` (for at most `length`)
    /// live, for an access of kind `flags` ([`flags`]), in `iomap`
    /// (`iomap_begin`). The core holds whatever locks its caller took.
    fn begin(
        inode: &Inode<Self::FileSystem>,
        pos: i64,
        length: i64,
        flags: u32,
        iomap: &mut Iomap,
    ) -> Result;

    /// The core is done with `iomap`, having processed `written` bytes of
    /// the `length` asked at `pos` (`iomap_end`).
    fn end(
        _inode: &Inode<Self::FileSystem>,
        _pos: i64,
        _length: i64,
        _written: isize,
        _flags: u32,
        _iomap: &mut Iomap,
    ) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// An `iomap_ops` table of file system `T`.
#[derive(Clone, Copy)]
pub struct Ops<T: FileSystem>(&'static bindings::iomap_ops, PhantomData<T>);

impl<T: FileSystem> Ops<T> {
    /// The table of `U`'s operations.
    pub const fn new<U: Operations<FileSystem = T> + ?Sized>() -> Self {
        struct Table<U: ?Sized>(PhantomData<U>);
        impl<U: Operations + ?Sized> Table<U> {
            const TABLE: bindings::iomap_ops = bindings::iomap_ops {
                iomap_begin: Some(begin_callback::<U>),
                iomap_end: if U::HAS_END {
                    Some(end_callback::<U>)
                } else {
                    None
                },
            };
        }
        Self(&Table::<U>::TABLE, PhantomData)
    }

    /// The raw table.
    pub fn as_raw(&self) -> *const bindings::iomap_ops {
        self.0
    }
}

/// # Safety
///
/// Called only by the iomap/DAX core through an `Ops` table, for an inode
/// of ours.
unsafe extern "C" fn begin_callback<U: Operations + ?Sized>(
    inode: *mut bindings::inode,
    pos: bindings::loff_t,
    length: bindings::loff_t,
    flags: c_uint,
    iomap: *mut bindings::iomap,
    _srcmap: *mut bindings::iomap,
) -> c_int {
    from_result(|| {
        // SAFETY: The core passes an inode of ours it keeps alive, and an
        // iomap it owns for this call. `Iomap` is transparent.
        let (i, m) = unsafe { (Inode::from_raw(inode), &mut *iomap.cast::<Iomap>()) };
        U::begin(i, pos, length, flags, m)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the iomap/DAX core through an `Ops` table, after a
/// successful `begin_callback` with the same iomap.
unsafe extern "C" fn end_callback<U: Operations + ?Sized>(
    inode: *mut bindings::inode,
    pos: bindings::loff_t,
    length: bindings::loff_t,
    written: isize,
    flags: c_uint,
    iomap: *mut bindings::iomap,
) -> c_int {
    from_result(|| {
        // SAFETY: As in `begin_callback`.
        let (i, m) = unsafe { (Inode::from_raw(inode), &mut *iomap.cast::<Iomap>()) };
        U::end(i, pos, length, written, flags, m)?;
        Ok(0)
    })
}
