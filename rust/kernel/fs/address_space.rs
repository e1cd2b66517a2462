// SPDX-License-Identifier: GPL-2.0

//! Page cache folios (`struct folio`) and the operations of an inode's
//! page cache (`address_space_operations`).
//!
//! A file system fills folios from its backing store in
//! [`Operations::read_folio`] and [`Operations::readahead`]; the generic
//! read path (`generic_file_read_iter`, `filemap_fault`) drives them. A
//! write path that copies into the page cache itself gets locked folios
//! from [`grab_write_folio`].
//!
//! C headers: [`include/linux/pagemap.h`](srctree/include/linux/pagemap.h),
//! [`include/linux/fs.h`](srctree/include/linux/fs.h)

use super::{file::File, FileSystem, Inode};
use crate::{
    bindings,
    error::{from_result, to_result},
    ffi::c_int,
    prelude::*,
    types::Opaque,
};
use core::{marker::PhantomData, ptr::NonNull};

/// A page cache folio.
///
/// # Invariants
///
/// The wrapped folio is valid (referenced by someone) for the lifetime of
/// the reference.
#[repr(transparent)]
pub struct Folio(Opaque<bindings::folio>);

impl Folio {
    /// The raw `struct folio *`.
    pub fn as_raw(&self) -> *mut bindings::folio {
        self.0.get()
    }

    /// The file offset of the folio's first byte (`folio_pos()`).
    pub fn pos(&self) -> i64 {
        // SAFETY: The folio is valid (type invariant).
        unsafe { bindings::folio_pos(self.as_raw()) }
    }

    /// The folio's size in bytes (`folio_size()`).
    pub fn size(&self) -> usize {
        // SAFETY: The folio is valid (type invariant).
        unsafe { bindings::folio_size(self.as_raw()) }
    }

    /// The folio's first page, for a scatter-gather segment covering
    /// [`Folio::size`] bytes.
    pub fn first_page(&self) -> *mut bindings::page {
        // SAFETY: The folio is valid; page 0 always exists.
        unsafe { bindings::folio_page(self.as_raw(), 0) }
    }

    /// Whether the folio holds the file's data (`folio_test_uptodate()`).
    pub fn test_uptodate(&self) -> bool {
        // SAFETY: The folio is valid (type invariant).
        unsafe { bindings::folio_test_uptodate(self.as_raw()) }
    }
}

/// A folio locked by the caller for the lifetime of the reference: its
/// contents and flags may be changed.
///
/// # Invariants
///
/// The folio is locked by the current task for `'a`.
#[repr(transparent)]
pub struct LockedFolio<'a>(Folio, PhantomData<&'a ()>);

impl core::ops::Deref for LockedFolio<'_> {
    type Target = Folio;

    fn deref(&self) -> &Folio {
        &self.0
    }
}

impl LockedFolio<'_> {
    /// # Safety
    ///
    /// `ptr` must be a valid folio locked by the caller for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::folio) -> &'a LockedFolio<'a> {
        // SAFETY: Transparent wrappers; validity from the caller.
        unsafe { &*ptr.cast() }
    }

    /// Zeroes bytes `start..end` of the folio (`folio_zero_segment()`),
    /// clamped to the folio.
    pub fn zero_range(&self, start: usize, end: usize) {
        let end = end.min(self.size());
        if start >= end {
            return;
        }
        // SAFETY: The folio is locked by us (type invariant) and the range
        // is inside it.
        unsafe { bindings::folio_zero_segment(self.as_raw(), start, end) };
    }

    /// Makes a CPU write into the folio visible through other mappings of
    /// it (`flush_dcache_folio()`; nothing on x86).
    pub fn flush_dcache(&self) {
        // SAFETY: The folio is valid (type invariant).
        unsafe { bindings::flush_dcache_folio(self.as_raw()) };
    }

    /// Marks the folio as holding the file's data.
    pub fn mark_uptodate(&self) {
        // SAFETY: The folio is locked by us (type invariant), as
        // `folio_mark_uptodate()` requires.
        unsafe { bindings::folio_mark_uptodate(self.as_raw()) };
    }

    /// Marks the folio as not holding the file's data (it must be read
    /// again before use).
    pub fn clear_uptodate(&self) {
        // SAFETY: The folio is locked by us (type invariant).
        unsafe { bindings::folio_clear_uptodate(self.as_raw()) };
    }

    /// Marks the folio dirty (`folio_mark_dirty()`): writeback sends it
    /// later, through the mapping's `dirty_folio`. Only an uptodate folio
    /// holds data to write back: one that is not stays clean (and this
    /// returns `false`).
    #[must_use]
    pub fn mark_dirty(&self) -> bool {
        if !self.test_uptodate() {
            return false;
        }
        // SAFETY: The folio is locked by us (type invariant), so its
        // mapping stays; `folio_mark_dirty` wants that.
        unsafe { bindings::folio_mark_dirty(self.as_raw()) };
        true
    }
}

/// A referenced, unlocked page cache folio; dropping it drops the
/// reference.
///
/// # Invariants
///
/// `self.0` is a folio we hold a reference to.
pub struct FolioRef(NonNull<bindings::folio>);

impl FolioRef {
    /// The folio.
    pub fn folio(&self) -> &Folio {
        // SAFETY: Referenced for as long as `self` lives; `Folio` is
        // transparent.
        unsafe { &*self.0.as_ptr().cast() }
    }

    /// Marks the folio as not holding the file's data, under its lock.
    pub fn clear_uptodate(&self) {
        // SAFETY: We hold a reference; the lock is taken and released
        // around the change.
        unsafe {
            bindings::folio_lock(self.0.as_ptr());
            bindings::folio_clear_uptodate(self.0.as_ptr());
            bindings::folio_unlock(self.0.as_ptr());
        }
    }
}

impl Drop for FolioRef {
    fn drop(&mut self) {
        // SAFETY: We hold a reference (type invariant).
        unsafe { bindings::folio_put(self.0.as_ptr()) };
    }
}

/// A page cache folio found or created for writing, locked and
/// referenced (and, for a mapping with stable writes, out of writeback);
/// dropping it unlocks it and drops the reference.
///
/// # Invariants
///
/// `self.0` is a folio we hold a reference to and have locked.
pub struct WriteFolio(NonNull<bindings::folio>);

impl WriteFolio {
    /// The locked folio.
    pub fn locked(&self) -> &LockedFolio<'_> {
        // SAFETY: Locked and referenced for as long as `self` lives.
        unsafe { LockedFolio::from_raw(self.0.as_ptr()) }
    }

    /// Gives up the lock and the reference to the caller, as a raw
    /// pointer (what a `write_begin` hands to the page cache).
    fn into_raw(self) -> *mut bindings::folio {
        let me = core::mem::ManuallyDrop::new(self);
        me.0.as_ptr()
    }
}

impl WriteFolio {
    /// Unlocks the folio, keeping the reference.
    pub fn unlock(self) -> FolioRef {
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: We hold the lock (type invariant); the reference moves
        // into the result.
        unsafe { bindings::folio_unlock(me.0.as_ptr()) };
        FolioRef(me.0)
    }
}

impl Drop for WriteFolio {
    fn drop(&mut self) {
        // SAFETY: We hold the lock and a reference (type invariant).
        unsafe {
            bindings::folio_unlock(self.0.as_ptr());
            bindings::folio_put(self.0.as_ptr());
        }
    }
}

/// The folio of `inode`'s page cache at page `index`, found or created,
/// locked and waited for writeback (`__filemap_get_folio()` with
/// `FGP_WRITEBEGIN`, as a `write_begin` does). It may be not uptodate.
pub fn grab_write_folio<T: FileSystem>(inode: &Inode<T>, index: u64) -> Result<WriteFolio> {
    // SAFETY: The inode is valid, so is its mapping.
    let f = unsafe { bindings::vfs_grab_write_folio((*inode.as_raw()).i_mapping, index as _) };
    // SAFETY: `IS_ERR`/`PTR_ERR` only look at the pointer value.
    if unsafe { bindings::IS_ERR(f.cast_const().cast()) } {
        // SAFETY: As above.
        return Err(Error::from_errno(
            unsafe { bindings::PTR_ERR(f.cast_const().cast()) } as i32,
        ));
    }
    // INVARIANT: A found or created folio comes back locked and referenced.
    NonNull::new(f).map(WriteFolio).ok_or(ENOMEM)
}

/// The folios of one readahead (`struct readahead_control`), handed out
/// locked one by one.
#[repr(transparent)]
pub struct Readahead(Opaque<bindings::readahead_control>);

impl Readahead {
    /// The file offset of the first folio not yet handed out.
    pub fn pos(&self) -> i64 {
        // SAFETY: The control is valid while `readahead` runs.
        unsafe { bindings::readahead_pos(self.0.get()) }
    }

    /// The bytes not yet handed out.
    pub fn len(&self) -> usize {
        // SAFETY: As above.
        unsafe { bindings::readahead_length(self.0.get()) }
    }

    /// Whether every folio was handed out.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next folio, locked and referenced (`__readahead_folio()`): the
    /// caller must end it with [`ReadaheadFolio::end`] (or drop it, which
    /// fails it).
    pub fn next_folio(&mut self) -> Option<ReadaheadFolio> {
        // SAFETY: As above; `__readahead_folio` hands out the next locked
        // folio with the page cache's reference plus one for us.
        let f = unsafe { bindings::__readahead_folio(self.0.get()) };
        // INVARIANT: Locked; one reference is ours.
        NonNull::new(f).map(ReadaheadFolio)
    }
}

/// A folio of a readahead, locked, referenced, to fill.
///
/// # Invariants
///
/// `self.0` is a locked folio we hold a reference to; ending it unlocks
/// it (and drops the reference).
pub struct ReadaheadFolio(NonNull<bindings::folio>);

// SAFETY: A folio may be filled and unlocked from any thread (C ends
// readahead folios from completion contexts).
unsafe impl Send for ReadaheadFolio {}

impl ReadaheadFolio {
    /// The locked folio.
    pub fn locked(&self) -> &LockedFolio<'_> {
        // SAFETY: Locked and referenced for as long as `self` lives.
        unsafe { LockedFolio::from_raw(self.0.as_ptr()) }
    }

    /// Ends the read: marks the folio uptodate if `ok`, unlocks it
    /// (`folio_end_read()`) and drops our reference.
    pub fn end(self, ok: bool) {
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: Locked and referenced by us (type invariant), consumed;
        // `folio_end_read` may set uptodate only on a folio that is not.
        unsafe {
            let ok = ok && !bindings::folio_test_uptodate(me.0.as_ptr());
            bindings::folio_end_read(me.0.as_ptr(), ok);
            bindings::folio_put(me.0.as_ptr());
        }
    }
}

impl Drop for ReadaheadFolio {
    fn drop(&mut self) {
        // SAFETY: As `end`.
        unsafe {
            bindings::folio_end_read(self.0.as_ptr(), false);
            bindings::folio_put(self.0.as_ptr());
        }
    }
}

/// The operations of an inode's page cache (`address_space_operations`).
#[vtable]
pub trait Operations {
    /// The file system of the inodes.
    type FileSystem: FileSystem;

    /// Fills `folio` (locked, not uptodate) with `inode`'s data
    /// (`read_folio`). On success the abstraction marks it uptodate; either
    /// way it unlocks it.
    fn read_folio(
        _file: Option<&File>,
        _inode: &Inode<Self::FileSystem>,
        _folio: &LockedFolio<'_>,
    ) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes back `run` (`writepages`, contiguous dirty folios gathered
    /// up to [`Operations::writeback_max_bytes`]), each under writeback;
    /// the abstraction ends their writeback after. An error is recorded in
    /// the mapping (reported by the next fsync). The folios are unlocked,
    /// but for a single one laundered before it is dropped from the page
    /// cache (`launder_folio`), which stays locked: never lock them.
    fn write_folios(_inode: &Inode<Self::FileSystem>, _run: &FolioRun<'_>) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The most bytes [`Operations::write_folios`] takes at once (a run
    /// always has at least one folio, which may be larger; and at most
    /// [`FOLIO_RUN_MAX`] folios).
    fn writeback_max_bytes(_inode: &Inode<Self::FileSystem>) -> usize {
        crate::page::PAGE_SIZE
    }

    /// Prepares a buffered write of `len` bytes at `pos` through `file`
    /// (`write_begin`, for `generic_perform_write()`): the folio of
    /// `inode`'s page cache there, locked and referenced, and uptodate
    /// unless the write covers it or it lies past the end of the file.
    fn write_begin(
        _file: Option<&File>,
        _inode: &Inode<Self::FileSystem>,
        _pos: i64,
        _len: usize,
    ) -> Result<WriteFolio> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Ends a buffered write (`write_end`): `copied` of the `len` bytes at
    /// `pos` went into `folio` (the one `write_begin` gave); returns the
    /// bytes the write keeps. The abstraction unlocks the folio and drops
    /// its reference after.
    fn write_end(
        _file: Option<&File>,
        _inode: &Inode<Self::FileSystem>,
        _pos: i64,
        _len: usize,
        _copied: usize,
        _folio: &LockedFolio<'_>,
    ) -> usize {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Reads the folios of `ra` ahead (`readahead`); folios it does not
    /// take stay not uptodate and are read on demand.
    fn readahead(_file: Option<&File>, _inode: &Inode<Self::FileSystem>, _ra: &mut Readahead) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes back what `wbc` asks of `inode`'s mapping as a whole
    /// (`writepages`), for mappings without folios of their own (DAX);
    /// a file system implements this or `write_folios`, not both.
    fn writepages(_inode: &Inode<Self::FileSystem>, _wbc: &mut WritebackControl) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The most folios of one [`FolioRun`].
pub const FOLIO_RUN_MAX: usize = 64;

/// Dirty folios of one mapping, contiguous in the file, under writeback
/// ([`Operations::write_folios`]).
///
/// # Invariants
///
/// Each pointer is a valid folio of the mapping, referenced by the run's
/// owner, under writeback (and unlocked, or locked by the caller of
/// `launder_folio`), each following the previous one in the file; there
/// is at least one.
pub struct FolioRun<'a>(&'a [*mut bindings::folio]);

impl FolioRun<'_> {
    /// The folios, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Folio> + '_ {
        // SAFETY: Valid, referenced folios (type invariant); `Folio` is
        // transparent.
        self.0.iter().map(|&f| unsafe { &*f.cast::<Folio>() })
    }

    /// The file position of the first byte.
    pub fn pos(&self) -> i64 {
        self.iter().next().map_or(0, |f| f.pos())
    }

    /// The bytes of all the folios.
    pub fn len(&self) -> usize {
        self.iter().map(|f| f.size()).sum()
    }

    /// Whether the run is empty (never, by its invariant).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a writeback asks for (`struct writeback_control`).
#[repr(transparent)]
pub struct WritebackControl(Opaque<bindings::writeback_control>);

impl WritebackControl {
    /// The raw `struct writeback_control *`.
    pub fn as_raw(&mut self) -> *mut bindings::writeback_control {
        self.0.get()
    }
}

/// An inode's `mapping->invalidate_lock` held exclusively: no page fault
/// maps its file meanwhile; dropping it unlocks.
#[must_use = "the lock is released when the guard is dropped"]
pub struct InvalidateGuard<'a, T: FileSystem>(&'a Inode<T>);

impl<'a, T: FileSystem> InvalidateGuard<'a, T> {
    /// The inode whose lock is held.
    pub fn inode(&self) -> &'a Inode<T> {
        self.0
    }
}

impl<T: FileSystem> Drop for InvalidateGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: The lock was taken when the guard was made.
        unsafe { bindings::filemap_invalidate_unlock((*self.0.as_raw()).i_mapping) };
    }
}

/// An inode's `mapping->invalidate_lock` held shared; dropping it unlocks.
#[must_use = "the lock is released when the guard is dropped"]
pub struct InvalidateSharedGuard<'a, T: FileSystem>(&'a Inode<T>);

impl<T: FileSystem> Drop for InvalidateSharedGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: The lock was taken shared when the guard was made.
        unsafe { bindings::filemap_invalidate_unlock_shared((*self.0.as_raw()).i_mapping) };
    }
}

/// Takes `inode`'s invalidate lock exclusively (`filemap_invalidate_lock()`).
pub fn invalidate_lock<T: FileSystem>(inode: &Inode<T>) -> InvalidateGuard<'_, T> {
    // SAFETY: The inode is valid, so is its mapping; the guard unlocks.
    unsafe { bindings::filemap_invalidate_lock((*inode.as_raw()).i_mapping) };
    InvalidateGuard(inode)
}

/// Takes `inode`'s invalidate lock exclusively if nobody holds it.
pub fn try_invalidate_lock<T: FileSystem>(inode: &Inode<T>) -> Option<InvalidateGuard<'_, T>> {
    // SAFETY: The inode is valid, so is its mapping; the guard unlocks.
    let got = unsafe { bindings::vfs_filemap_invalidate_trylock((*inode.as_raw()).i_mapping) };
    (got != 0).then(|| InvalidateGuard(inode))
}

/// Takes `inode`'s invalidate lock shared
/// (`filemap_invalidate_lock_shared()`).
pub fn invalidate_lock_shared<T: FileSystem>(inode: &Inode<T>) -> InvalidateSharedGuard<'_, T> {
    // SAFETY: The inode is valid, so is its mapping; the guard unlocks.
    unsafe { bindings::filemap_invalidate_lock_shared((*inode.as_raw()).i_mapping) };
    InvalidateSharedGuard(inode)
}

/// An `address_space_operations` table of file system `T`.
#[derive(Clone, Copy)]
pub struct Ops<T: FileSystem>(&'static bindings::address_space_operations, PhantomData<T>);

impl<T: FileSystem> Ops<T> {
    /// The table of `U`'s operations.
    pub const fn new<U: Operations<FileSystem = T> + ?Sized>() -> Self {
        struct Table<U: ?Sized>(PhantomData<U>);
        impl<U: Operations + ?Sized> Table<U> {
            const TABLE: bindings::address_space_operations = {
                // `generic_perform_write` calls both; what `write_end`
                // dirties must be written back by someone.
                // (`write_folios`: only then is `dirty_folio` the one that
                // tags folios for writeback.)
                assert!(U::HAS_WRITE_BEGIN == U::HAS_WRITE_END);
                assert!(!U::HAS_WRITE_BEGIN || U::HAS_WRITE_FOLIOS);
                bindings::address_space_operations {
                    read_folio: if U::HAS_READ_FOLIO {
                        Some(read_folio_callback::<U>)
                    } else {
                        None
                    },
                    readahead: if U::HAS_READAHEAD {
                        Some(readahead_callback::<U>)
                    } else {
                        None
                    },
                    // With `writepages`, dirty folios are tagged for it;
                    // without, folios are never dirtied behind the file
                    // system's back (no writable shared mappings), but
                    // `folio_mark_dirty()` must find a callback.
                    dirty_folio: if U::HAS_WRITE_FOLIOS {
                        Some(bindings::filemap_dirty_folio)
                    } else {
                        Some(bindings::noop_dirty_folio)
                    },
                    write_begin: if U::HAS_WRITE_BEGIN {
                        Some(write_begin_callback::<U>)
                    } else {
                        None
                    },
                    write_end: if U::HAS_WRITE_END {
                        Some(write_end_callback::<U>)
                    } else {
                        None
                    },
                    // A dirty folio dropped from the page cache
                    // (`invalidate_inode_pages2`) is written back first.
                    launder_folio: if U::HAS_WRITE_FOLIOS {
                        Some(launder_folio_callback::<U>)
                    } else {
                        None
                    },
                    writepages: if U::HAS_WRITEPAGES {
                        Some(writepages_whole_callback::<U>)
                    } else if U::HAS_WRITE_FOLIOS {
                        Some(writepages_runs_callback::<U>)
                    } else {
                        None
                    },
                    // SAFETY: All-zeroes is valid for the remaining (optional)
                    // callbacks.
                    ..unsafe { core::mem::zeroed() }
                }
            };
        }
        Self(&Table::<U>::TABLE, PhantomData)
    }

    pub(crate) fn as_raw(&self) -> *const bindings::address_space_operations {
        self.0
    }
}

/// # Safety
///
/// Called only by the page cache through an `Ops` table, with a locked
/// folio of a mapping of ours.
unsafe extern "C" fn read_folio_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    folio: *mut bindings::folio,
) -> c_int {
    // SAFETY: The folio is locked and in the page cache of an inode of
    // ours (its `mapping->host`), which the caller keeps alive; `file` is
    // null or an open file of it.
    let r = unsafe {
        let inode = Inode::<U::FileSystem>::from_raw(
            (*(*folio).__bindgen_anon_1.__bindgen_anon_1.mapping).host,
        );
        let file = (!file.is_null()).then(|| File::from_raw(file));
        U::read_folio(file, inode, LockedFolio::from_raw(folio))
    };
    // SAFETY: The folio is still locked by us; this unlocks it (and sets
    // uptodate, which `folio_end_read` may do only on a folio that is not).
    unsafe {
        let ok = r.is_ok() && !bindings::folio_test_uptodate(folio);
        bindings::folio_end_read(folio, ok)
    };
    from_result(|| r.map(|()| 0))
}

/// # Safety
///
/// Called only by the page cache through an `Ops` table, for a mapping of
/// ours.
unsafe extern "C" fn readahead_callback<U: Operations + ?Sized>(
    ractl: *mut bindings::readahead_control,
) {
    // SAFETY: The control is valid for the call; its mapping's host is an
    // inode of ours, kept alive by the caller; `file` is null or an open
    // file of it. `Readahead` is transparent.
    unsafe {
        let inode = Inode::<U::FileSystem>::from_raw((*(*ractl).mapping).host);
        let f = (*ractl).file;
        let file = (!f.is_null()).then(|| File::from_raw(f));
        U::readahead(file, inode, &mut *ractl.cast::<Readahead>());
    }
}

/// # Safety
///
/// Called only by the page cache (`generic_perform_write()`) through an
/// `Ops` table, for an open file of a mapping of ours.
unsafe extern "C" fn write_begin_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    mapping: *mut bindings::address_space,
    pos: bindings::loff_t,
    len: core::ffi::c_uint,
    foliop: *mut *mut bindings::folio,
    _fsdata: *mut *mut core::ffi::c_void,
) -> c_int {
    from_result(|| {
        // SAFETY: The mapping's host is an inode of ours and `file` is
        // null (`page_symlink`, `generic_cont_expand_simple`) or an open
        // file of it (`generic_perform_write`'s `iocb->ki_filp`); the
        // caller keeps both alive for the call.
        let f = unsafe {
            U::write_begin(
                (!file.is_null()).then(|| File::from_raw(file)),
                Inode::<U::FileSystem>::from_raw((*mapping).host),
                pos,
                len as usize,
            )
        }?;
        // SAFETY: `foliop` is valid for writes; the page cache takes the
        // lock and the reference and gives both back to `write_end`.
        unsafe { *foliop = f.into_raw() };
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the page cache through an `Ops` table, after
/// [`write_begin_callback`] gave it `folio` (locked, referenced by us).
unsafe extern "C" fn write_end_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    mapping: *mut bindings::address_space,
    pos: bindings::loff_t,
    len: core::ffi::c_uint,
    copied: core::ffi::c_uint,
    folio: *mut bindings::folio,
    _fsdata: *mut core::ffi::c_void,
) -> c_int {
    // SAFETY: As in `write_begin_callback` (the same caller, the same
    // file); the folio is the one it returned, still locked and
    // referenced.
    let kept = unsafe {
        U::write_end(
            (!file.is_null()).then(|| File::from_raw(file)),
            Inode::<U::FileSystem>::from_raw((*mapping).host),
            pos,
            len as usize,
            copied as usize,
            LockedFolio::from_raw(folio),
        )
    };
    // SAFETY: The lock and the reference `write_begin` took end here.
    unsafe {
        bindings::folio_unlock(folio);
        bindings::folio_put(folio);
    }
    kept.min(copied as usize) as c_int
}

/// A scope whose allocations do not recurse into file system reclaim
/// (`memalloc_nofs_save()` until dropped): for code that holds what this
/// file system's writeback waits for.
pub struct NofsScope(core::ffi::c_uint, PhantomData<*mut ()>);

impl NofsScope {
    /// Enters the scope.
    pub fn new() -> Self {
        // SAFETY: Restored by `drop`, on this task (the raw pointer
        // marker keeps the scope from moving to another one).
        NofsScope(unsafe { bindings::vfs_memalloc_nofs_save() }, PhantomData)
    }
}

impl Default for NofsScope {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NofsScope {
    fn drop(&mut self) {
        // SAFETY: The flags `new` saved, on the same task.
        unsafe { bindings::vfs_memalloc_nofs_restore(self.0) };
    }
}

/// Writes back `inode`'s dirty page cache and, if the inode itself is
/// dirty, its metadata (`write_inode_now()`), waiting for both if `sync`.
pub fn write_inode_now<T: FileSystem>(inode: &Inode<T>, sync: bool) -> Result {
    // SAFETY: The inode is valid.
    to_result(unsafe { bindings::write_inode_now(inode.as_raw(), c_int::from(sync)) })
}

/// Writes the inode's dirty metadata (`sync_inode_metadata()`, through
/// `super_operations.write_inode`), waiting if `wait`.
pub fn sync_inode_metadata<T: FileSystem>(inode: &Inode<T>, wait: bool) -> Result {
    // SAFETY: The inode is valid.
    to_result(unsafe { bindings::sync_inode_metadata(inode.as_raw(), c_int::from(wait)) })
}

/// Drops `inode`'s page cache from byte `from` on (`truncate_pagecache()`),
/// after its size shrank.
pub fn truncate_pagecache<T: FileSystem>(inode: &Inode<T>, from: i64) {
    // SAFETY: The inode is valid.
    unsafe { bindings::truncate_pagecache(inode.as_raw(), from) };
}

/// Writes back the dirty page cache of `inode` and waits for it
/// (`filemap_write_and_wait()`).
pub fn write_and_wait<T: FileSystem>(inode: &Inode<T>) -> Result {
    // SAFETY: The inode is valid, so is its mapping.
    to_result(unsafe {
        bindings::filemap_write_and_wait_range((*inode.as_raw()).i_mapping, 0, i64::MAX)
    })
}

/// Writes back the dirty page cache of `inode` over bytes `start..=end`
/// and waits for it (`filemap_write_and_wait_range()`).
pub fn write_and_wait_range<T: FileSystem>(inode: &Inode<T>, start: i64, end: i64) -> Result {
    if end < start {
        return Ok(());
    }
    // SAFETY: The inode is valid, so is its mapping.
    to_result(unsafe {
        bindings::filemap_write_and_wait_range((*inode.as_raw()).i_mapping, start, end)
    })
}

/// Waits for the writeback under way in `inode`'s page cache
/// (`filemap_fdatawait_range()` over all of it), whatever error it had.
pub fn wait_writeback<T: FileSystem>(inode: &Inode<T>) {
    // SAFETY: The inode is valid, so is its mapping.
    let _ = unsafe { bindings::filemap_fdatawait_range((*inode.as_raw()).i_mapping, 0, i64::MAX) };
}

/// Drops `inode`'s page cache over bytes `start..=end`
/// (`truncate_pagecache_range()`), after the host zeroed or punched them.
pub fn truncate_pagecache_range<T: FileSystem>(inode: &Inode<T>, start: i64, end: i64) {
    // SAFETY: The inode is valid.
    unsafe { bindings::truncate_pagecache_range(inode.as_raw(), start, end) };
}

/// Drops the clean page cache of `inode` over bytes `start..=end`
/// (`invalidate_inode_pages2_range()`), after a write that bypassed it.
pub fn invalidate_range<T: FileSystem>(inode: &Inode<T>, start: i64, end: i64) -> Result {
    if start < 0 || end < start {
        return Ok(());
    }
    let shift = crate::page::PAGE_SHIFT;
    // SAFETY: The inode is valid, so is its mapping.
    to_result(unsafe {
        bindings::invalidate_inode_pages2_range(
            (*inode.as_raw()).i_mapping,
            (start >> shift) as _,
            (end >> shift) as _,
        )
    })
}

/// Drops the clean page cache of `inode` (`invalidate_inode_pages2()`),
/// after its data changed on the host; fails with `EBUSY` if a folio could
/// not be dropped.
pub fn invalidate<T: FileSystem>(inode: &Inode<T>) -> Result {
    // SAFETY: The inode is valid, so is its mapping.
    to_result(unsafe { bindings::invalidate_inode_pages2((*inode.as_raw()).i_mapping) })
}

/// # Safety
///
/// Called only by the page cache through an `Ops` table, for a mapping of
/// ours.
unsafe extern "C" fn writepages_whole_callback<U: Operations + ?Sized>(
    mapping: *mut bindings::address_space,
    wbc: *mut bindings::writeback_control,
) -> c_int {
    from_result(|| {
        // SAFETY: The mapping, its host (an inode of ours) and the control
        // are valid for the call; `WritebackControl` is transparent.
        unsafe {
            U::writepages(
                Inode::<U::FileSystem>::from_raw((*mapping).host),
                &mut *wbc.cast::<WritebackControl>(),
            )
        }?;
        Ok(0)
    })
}

/// Writes back `run` with `U::write_folios`, then ends the writeback of
/// its folios and drops their references; returns the error, recorded in
/// the mapping.
///
/// # Safety
///
/// `run` holds valid folios of `mapping` (an inode of ours), each with a
/// reference of ours, under writeback and unlocked (or one, locked by the
/// caller of `launder_folio`), contiguous.
unsafe fn write_run<U: Operations + ?Sized>(
    mapping: *mut bindings::address_space,
    run: &[*mut bindings::folio],
) -> c_int {
    if run.is_empty() {
        return 0;
    }
    // SAFETY: The mapping's host is an inode of ours; the run meets
    // `FolioRun`'s invariant (the caller).
    let r = unsafe {
        U::write_folios(
            Inode::<U::FileSystem>::from_raw((*mapping).host),
            &FolioRun(run),
        )
    };
    let err = match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    };
    if err != 0 {
        // SAFETY: The mapping is valid for the call.
        unsafe { bindings::mapping_set_error(mapping, err) };
    }
    for &f in run {
        // SAFETY: Each folio is under writeback and referenced by us.
        unsafe {
            bindings::folio_end_writeback(f);
            bindings::folio_put(f);
        }
    }
    err
}

/// As C's `fuse_launder_folio`: a dirty folio about to be dropped is
/// written back with `write_folios`, synchronously, still locked.
///
/// # Safety
///
/// Called only by the page cache through an `Ops` table, with a locked
/// folio of a mapping of ours, not under writeback
/// (`invalidate_inode_pages2_range` waits that out first).
unsafe extern "C" fn launder_folio_callback<U: Operations + ?Sized>(
    folio: *mut bindings::folio,
) -> c_int {
    // SAFETY: The folio is locked and its mapping (of ours) set (the
    // caller); once its dirty bit is cleared for I/O it is started and
    // referenced for `write_run`, which ends the writeback and drops that
    // reference: a run of one folio under writeback, locked by our caller.
    unsafe {
        if !bindings::folio_clear_dirty_for_io(folio) {
            return 0;
        }
        let _nofs = NofsScope::new();
        bindings::__folio_start_writeback(folio, false);
        bindings::folio_get(folio);
        write_run::<U>(bindings::folio_mapping(folio), &[folio])
    }
}

/// # Safety
///
/// Called only by the page cache through an `Ops` table, for a mapping of
/// ours.
unsafe extern "C" fn writepages_runs_callback<U: Operations + ?Sized>(
    mapping: *mut bindings::address_space,
    wbc: *mut bindings::writeback_control,
) -> c_int {
    let mut err: c_int = 0;
    let mut folio: *mut bindings::folio = core::ptr::null_mut();
    let mut run = [core::ptr::null_mut::<bindings::folio>(); FOLIO_RUN_MAX];
    let mut n = 0usize;
    let mut bytes = 0usize;
    let mut next = 0u64;
    // SAFETY: The mapping's host is an inode of ours.
    let max = unsafe { U::writeback_max_bytes(Inode::<U::FileSystem>::from_raw((*mapping).host)) };
    // Allocations while writing back must not recurse into this file
    // system's reclaim (C's `fuse_writepages` allocates with GFP_NOFS).
    let _nofs = NofsScope::new();
    // SAFETY: The mapping is valid for the call; `writeback_iter` hands
    // out each dirty folio locked, with its dirty bit cleared for I/O, and
    // takes the previous one back (its reference with it), so each folio
    // kept in `run` gets a reference of ours first. `run[..n]` holds
    // folios of the mapping, each started, unlocked and referenced by us,
    // each at the index after the previous one's last page (`next`): what
    // `write_run` wants.
    unsafe {
        loop {
            folio = bindings::writeback_iter(mapping, wbc, folio, &mut err);
            if folio.is_null() {
                break;
            }
            bindings::__folio_start_writeback(folio, false);
            bindings::folio_unlock(folio);
            bindings::folio_get(folio);
            let f = &*folio.cast::<Folio>();
            let index = (f.pos() as u64) >> crate::page::PAGE_SHIFT;
            if n > 0 && (n == FOLIO_RUN_MAX || index != next || bytes + f.size() > max) {
                let e = write_run::<U>(mapping, &run[..n]);
                if e != 0 {
                    err = e;
                }
                n = 0;
                bytes = 0;
            }
            run[n] = folio;
            n += 1;
            bytes += f.size();
            next = index + (f.size() >> crate::page::PAGE_SHIFT) as u64;
        }
        let e = write_run::<U>(mapping, &run[..n]);
        if e != 0 {
            err = e;
        }
    }
    err
}
