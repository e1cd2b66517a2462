// SPDX-License-Identifier: GPL-2.0

//! I/O vectors (`struct iov_iter`): the user or kernel memory a read or
//! write syscall moves data to or from.
//!
//! Named and shaped as upstream's `kernel::iov` (Linux 6.18), written here
//! for 6.12: an [`IovIterSource`] is data to write (`ITER_SOURCE`), an
//! [`IovIterDest`] room to read into (`ITER_DEST`).
//!
//! C header: [`include/linux/uio.h`](srctree/include/linux/uio.h)

use crate::{alloc::KVec, bindings, page::PAGE_SIZE, prelude::*, types::Opaque};
use core::ffi::c_int;
use core::marker::PhantomData;

/// Pages of an iterator's user memory, pinned (`iov_iter_extract_pages()`):
/// `len` bytes from `offset` in the first page, on in the following ones.
/// Dropping them unpins them; pages written by a device are marked dirty
/// (for an [`IovIterDest`]).
pub struct IterPages {
    pages: KVec<*mut bindings::page>,
    offset: usize,
    len: usize,
    written: bool,
}

impl IterPages {
    /// The bytes the pages hold for the I/O.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each page with the offset and length of its part of the I/O.
    pub fn segments(&self) -> impl Iterator<Item = (*mut bindings::page, usize, usize)> + '_ {
        let mut left = self.len;
        let mut off = self.offset;
        self.pages.iter().map(move |&p| {
            let n = (PAGE_SIZE - off).min(left);
            let seg = (p, off, n);
            left -= n;
            off = 0;
            seg
        })
    }

    /// Takes `max_bytes` at most from `iter` (advancing it), in
    /// `max_pages` pages at most.
    ///
    /// # Safety
    ///
    /// `iter` must be a valid, user-backed iterator (for a bvec one
    /// `iov_iter_extract_pages` takes no pin, which `Drop` would drop).
    unsafe fn get(
        iter: *mut bindings::iov_iter,
        max_bytes: usize,
        max_pages: usize,
        written: bool,
    ) -> Result<Self> {
        let max_pages = c_int::try_from(max_pages.max(1)).unwrap_or(c_int::MAX);
        // Room for the pages these bytes span, not for `max_pages` (as C's
        // `fuse_iter_npages`): a small I/O allocates little.
        // SAFETY: The iterator is valid (caller); the count is restored.
        let want = unsafe { bindings::iov_iter_npages_cap(iter, max_pages, max_bytes) };
        let room = want.clamp(1, max_pages);
        let mut pages: KVec<*mut bindings::page> = KVec::with_capacity(room as usize, GFP_KERNEL)?;
        let mut start = 0usize;
        let mut array = pages.as_mut_ptr();
        // SAFETY: `array` has room for `room` entries (so the call does
        // not allocate another); the iterator is valid and user-backed
        // (caller), so the pages come pinned (`FOLL_PIN`, as C 6.12's
        // FUSE takes them for device I/O).
        let got = unsafe {
            bindings::iov_iter_extract_pages(iter, &mut array, max_bytes, room as _, 0, &mut start)
        };
        if got < 0 {
            return Err(Error::from_errno(got as i32));
        }
        let len = got as usize;
        let n = if len == 0 {
            0
        } else {
            (start + len).div_ceil(PAGE_SIZE)
        };
        // SAFETY: The call filled the first `n` entries (`n <= room`, the
        // capacity); raw pointers need no drop.
        unsafe { pages.set_len(n.min(room as usize)) };
        Ok(IterPages {
            pages,
            offset: start,
            len,
            written,
        })
    }
}

// SAFETY: Pinned pages may be unpinned from any thread (the unpin may
// sleep: the owner drops them in process context).
unsafe impl Send for IterPages {}

impl Drop for IterPages {
    fn drop(&mut self) {
        if self.pages.is_empty() {
            return;
        }
        // SAFETY: Each page came pinned from `iov_iter_extract_pages`; a
        // device that wrote them is done (their owner waited for it).
        unsafe {
            bindings::unpin_user_pages_dirty_lock(
                self.pages.as_mut_ptr(),
                self.pages.len() as _,
                self.written,
            )
        };
    }
}

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

    /// Whether the data is user memory (`user_backed_iter()`).
    pub fn is_user_backed(&self) -> bool {
        // SAFETY: The iterator is valid (type invariant).
        unsafe { bindings::user_backed_iter(self.0.get()) }
    }

    /// References the pages of up to `max_bytes` of the data, in
    /// `max_pages` pages at most, advancing past them (for a device to read
    /// them in place). Only user-backed iterators.
    pub fn get_pages(&mut self, max_bytes: usize, max_pages: usize) -> Result<IterPages> {
        if !self.is_user_backed() {
            return Err(EFAULT);
        }
        // SAFETY: A valid, user-backed iterator.
        unsafe { IterPages::get(self.as_raw(), max_bytes, max_pages, false) }
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

    /// Whether the room is user memory (`user_backed_iter()`).
    pub fn is_user_backed(&self) -> bool {
        // SAFETY: The iterator is valid (type invariant).
        unsafe { bindings::user_backed_iter(self.0.get()) }
    }

    /// References the pages of up to `max_bytes` of the room, in
    /// `max_pages` pages at most, advancing past them (for a device to
    /// write them in place; they are marked dirty when dropped). Only
    /// user-backed iterators.
    pub fn get_pages(&mut self, max_bytes: usize, max_pages: usize) -> Result<IterPages> {
        if !self.is_user_backed() {
            return Err(EFAULT);
        }
        // SAFETY: A valid, user-backed iterator.
        unsafe { IterPages::get(self.as_raw(), max_bytes, max_pages, true) }
    }

    /// Goes back `len` bytes (`iov_iter_revert()`), for room taken but not
    /// filled.
    ///
    /// # Safety
    ///
    /// The iterator must have advanced at least `len` bytes since it was
    /// handed to the caller.
    pub unsafe fn revert(&mut self, len: usize) {
        // SAFETY: The iterator is valid and the caller vouches for `len`.
        unsafe { bindings::iov_iter_revert(self.as_raw(), len) }
    }

    /// Copies `data` out (`copy_to_iter()`); returns how many bytes were
    /// copied (fewer on a fault or when the room runs out).
    pub fn copy_to_iter(&mut self, data: &[u8]) -> usize {
        // SAFETY: The iterator is valid (type invariant); `data` is
        // readable for its length.
        unsafe { bindings::_copy_to_iter(data.as_ptr().cast(), data.len(), self.as_raw()) }
    }
}
