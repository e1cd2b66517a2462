// SPDX-License-Identifier: GPL-2.0

//! I/O vectors (`struct iov_iter`): the user or kernel memory a read or
//! write syscall moves data to or from.
//!
//! Named and shaped as upstream's `kernel::iov` (Linux 6.18), written here
//! for 6.12: an [`IovIterSource`] is data to write (`ITER_SOURCE`), an
//! [`IovIterDest`] room to read into (`ITER_DEST`).
//!
//! C header: [`include/linux/uio.h`](srctree/include/linux/uio.h)

use crate::{bindings, page::PAGE_SIZE, types::Opaque};
use core::marker::PhantomData;

/// Data to write: an `iov_iter` of direction `ITER_SOURCE`.
///
/// # Invariants
///
/// The wrapped iterator is valid and of direction `ITER_SOURCE` for `'a`,
/// and only this reference advances it.
#[repr(transparent)]
pub struct IovIterSource<'a>(Opaque<bindings::iov_iter>, PhantomData<&'a ()>);

/// Room to read into: an `iov_iter` of direction `ITER_DEST`.
///
/// # Invariants
///
/// The wrapped iterator is valid and of direction `ITER_DEST` for `'a`, and
/// only this reference advances it.
#[repr(transparent)]
pub struct IovIterDest<'a>(Opaque<bindings::iov_iter>, PhantomData<&'a ()>);

impl<'a> IovIterSource<'a> {
    /// # Safety
    ///
    /// `ptr` must be a valid `ITER_SOURCE` iterator that nothing else uses
    /// for `'a`.
    pub unsafe fn from_raw<'b>(ptr: *mut bindings::iov_iter) -> &'b mut IovIterSource<'a> {
        // SAFETY: Transparent wrapper; validity from the caller.
        unsafe { &mut *ptr.cast() }
    }

    /// The raw `struct iov_iter *`.
    pub fn as_raw(&mut self) -> *mut bindings::iov_iter {
        self.0.get()
    }

    /// Bytes left (`iov_iter_count()`).
    pub fn len(&self) -> usize {
        // SAFETY: The iterator is valid (type invariant).
        unsafe { bindings::iov_iter_count(self.0.get()) }
    }

    /// Whether no byte is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies up to `len` bytes into `page` at `offset` without sleeping
    /// (`copy_page_from_iter_atomic()`: page faults are not served, so the
    /// copy may stop short, even at 0; fault the source in with
    /// [`IovIterSource::fault_in_readable`] and try again). Returns the
    /// bytes copied; the iterator advances by as many. `offset + len` is
    /// clamped to the page.
    ///
    /// # Safety
    ///
    /// `page` must be a valid page the caller may write (a locked page
    /// cache folio's page, say).
    pub unsafe fn copy_to_page_atomic(
        &mut self,
        page: *mut bindings::page,
        offset: usize,
        len: usize,
    ) -> usize {
        if offset >= PAGE_SIZE {
            return 0;
        }
        let len = len.min(PAGE_SIZE - offset);
        // SAFETY: The iterator is valid (type invariant), `page` writable
        // (caller) and `offset + len` within it.
        unsafe { bindings::copy_page_from_iter_atomic(page, offset, len, self.as_raw()) }
    }

    /// Copies into `buf` (`copy_from_iter()`); returns how many bytes were
    /// copied (fewer on a fault or when the data runs out).
    pub fn copy_from_iter(&mut self, buf: &mut [u8]) -> usize {
        // SAFETY: The iterator is valid (type invariant); `buf` is
        // writable for its length.
        unsafe { bindings::_copy_from_iter(buf.as_mut_ptr().cast(), buf.len(), self.as_raw()) }
    }

    /// Faults in up to `len` bytes of the source (`fault_in_iov_iter_
    /// readable()`); returns how many could not be faulted in.
    pub fn fault_in_readable(&mut self, len: usize) -> usize {
        // SAFETY: The iterator is valid (type invariant).
        unsafe { bindings::fault_in_iov_iter_readable(self.as_raw(), len) }
    }

    /// Goes back `len` bytes (`iov_iter_revert()`), to give back bytes that
    /// were copied but not written.
    ///
    /// # Safety
    ///
    /// The iterator must have advanced at least `len` bytes since it was
    /// handed to the caller.
    pub unsafe fn revert(&mut self, len: usize) {
        // SAFETY: The iterator is valid and the caller vouches for `len`.
        unsafe { bindings::iov_iter_revert(self.as_raw(), len) }
    }
}

impl<'a> IovIterDest<'a> {
    /// # Safety
    ///
    /// `ptr` must be a valid `ITER_DEST` iterator that nothing else uses
    /// for `'a`.
    pub unsafe fn from_raw<'b>(ptr: *mut bindings::iov_iter) -> &'b mut IovIterDest<'a> {
        // SAFETY: Transparent wrapper; validity from the caller.
        unsafe { &mut *ptr.cast() }
    }

    /// The raw `struct iov_iter *`.
    pub fn as_raw(&mut self) -> *mut bindings::iov_iter {
        self.0.get()
    }

    /// Bytes of room left (`iov_iter_count()`).
    pub fn len(&self) -> usize {
        // SAFETY: The iterator is valid (type invariant).
        unsafe { bindings::iov_iter_count(self.0.get()) }
    }

    /// Whether no room is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `data` out (`copy_to_iter()`); returns how many bytes were
    /// copied (fewer on a fault or when the room runs out).
    pub fn copy_to_iter(&mut self, data: &[u8]) -> usize {
        // SAFETY: The iterator is valid (type invariant); `data` is
        // readable for its length.
        unsafe { bindings::_copy_to_iter(data.as_ptr().cast(), data.len(), self.as_raw()) }
    }
}
