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
    error::{from_result, to_result},
    ffi::{c_int, c_uint},
    iov::{IovIterDest, IovIterSource},
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

    /// The per-open data `U::open` returned for this file.
    ///
    /// # Safety
    ///
    /// The file must have been opened through `U`'s table (`f_op`), and
    /// stay open while the result is used.
    pub unsafe fn data<U: Operations + ?Sized>(&self) -> <U::Data as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: `private_data` came from `U::Data::into_foreign` in
        // `open_callback::<U>` (caller) and is released only at release.
        unsafe { U::Data::borrow((*self.as_raw()).private_data.cast_const()) }
    }

    /// The file's inode, for any lifetime the caller vouches for.
    ///
    /// # Safety
    ///
    /// The file must be an open file of an inode of `T` (set up), and the
    /// result must not be used after the file is released.
    pub unsafe fn inode<'a, T: FileSystem>(&self) -> &'a Inode<T> {
        // SAFETY: The caller vouches for the inode's type and lifetime; an
        // open file holds its inode.
        unsafe { Inode::from_raw((*self.as_raw()).f_inode) }
    }

    /// Writes back the file's dirty page cache over bytes `start..=end`,
    /// waits for it, and reports a writeback error this file has not seen
    /// yet (`file_write_and_wait_range()`: the errseq of the mapping, as
    /// fsync must).
    pub fn write_and_wait_range(&self, start: i64, end: i64) -> Result {
        // SAFETY: The file is valid.
        crate::error::to_result(unsafe {
            bindings::file_write_and_wait_range(self.as_raw(), start, end)
        })
    }

    /// Lets the file be opened with `O_DIRECT` (`FMODE_CAN_ODIRECT`), for
    /// `open` of a file system that serves direct I/O in `read_iter` and
    /// `write_iter`.
    ///
    /// # Safety
    ///
    /// Only from `open` of this file: nobody else looks at `f_mode` yet.
    pub unsafe fn allow_direct_io(&self) {
        // SAFETY: The caller is `open`: the file is not visible yet.
        unsafe { bindings::vfs_allow_direct_io(self.as_raw()) };
    }

    /// The dentry the file was opened through (`f_path.dentry`), held by
    /// the file.
    ///
    /// # Safety
    ///
    /// The file's `f_path.dentry` is of file system `T` (a file `T`
    /// opened, not a backing file another file system opened on it).
    pub unsafe fn dentry<T: FileSystem>(&self) -> &super::dentry::DEntry<T> {
        // SAFETY: An open file holds its path; its dentry is of `T` (the
        // caller).
        unsafe { super::dentry::DEntry::from_raw((*self.as_raw()).f_path.dentry) }
    }

    /// Removes set-user-ID, set-group-ID and security capabilities before a
    /// write (`file_remove_privs()`), with the inode locked.
    pub fn remove_privs<T: FileSystem>(&self, _locked: &super::inode::InodeGuard<'_, T>) -> Result {
        // SAFETY: The file is valid; the guard proves the inode lock is
        // held, as `file_remove_privs` requires.
        to_result(unsafe { bindings::file_remove_privs(self.as_raw()) })
    }

    /// Before a write or a size change through this file, with the inode
    /// locked (`file_modified()`): removes set-user-ID, set-group-ID and
    /// security capabilities, and sets the modification and change times
    /// (not for an inode with `S_NOCMTIME`).
    pub fn modified<T: FileSystem>(&self, _locked: &super::inode::InodeGuard<'_, T>) -> Result {
        // SAFETY: The file is valid; the guard proves the inode lock is
        // held, as `file_modified` requires.
        to_result(unsafe { bindings::file_modified(self.as_raw()) })
    }

    /// Whether a write through this file would have to remove the
    /// inode's set-user-ID or set-group-ID bits
    /// (`setattr_should_drop_suidgid()` for the file's mount).
    pub fn should_drop_suidgid(&self) -> bool {
        // SAFETY: The file is valid, so are its mount's idmap and inode.
        unsafe { bindings::vfs_file_should_drop_suidgid(self.as_raw()) != 0 }
    }

    /// `generic_file_llseek()`: seeks within the cached size.
    pub fn generic_llseek(&self, offset: i64, whence: u32) -> Result<i64> {
        // SAFETY: The file is valid.
        let r = unsafe { bindings::generic_file_llseek(self.as_raw(), offset, whence as c_int) };
        if r < 0 {
            Err(Error::from_errno(r as i32))
        } else {
            Ok(r)
        }
    }

    /// Sets the position after a seek to `offset`, checked against `max`
    /// (`vfs_setpos()`).
    pub fn set_pos(&self, offset: i64, max: i64) -> Result<i64> {
        // SAFETY: The file is valid; the VFS holds `f_pos_lock` if needed.
        let r = unsafe { bindings::vfs_setpos(self.as_raw(), offset, max) };
        if r < 0 {
            Err(Error::from_errno(r as i32))
        } else {
            Ok(r)
        }
    }
}

/// `IOCB_APPEND`: write at the end of the file (`(__force int)
/// RWF_APPEND`, which bindgen cannot evaluate).
pub const IOCB_APPEND: u32 = 0x10;
/// `IOCB_DSYNC`: the write's data is synced before it returns
/// (`O_DSYNC`, `RWF_DSYNC`).
pub const IOCB_DSYNC: u32 = 0x2;
/// `IOCB_SYNC`: the write's data and metadata are synced (`O_SYNC`).
pub const IOCB_SYNC: u32 = 0x4;
/// `IOCB_DIRECT`: bypass the page cache (`O_DIRECT`).
pub const IOCB_DIRECT: u32 = bindings::IOCB_DIRECT;

/// One read or write call (`struct kiocb`): the file, the position, the
/// flags.
///
/// # Invariants
///
/// The wrapped kiocb is valid, with a valid open file, for the lifetime of
/// the reference.
#[repr(transparent)]
pub struct Kiocb(Opaque<bindings::kiocb>);

impl Kiocb {
    /// # Safety
    ///
    /// `ptr` must be a valid kiocb for `'a`, used by nobody else meanwhile.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::kiocb) -> &'a mut Self {
        // SAFETY: Transparent wrapper; validity from the caller.
        unsafe { &mut *ptr.cast() }
    }

    /// The raw `struct kiocb *`.
    pub fn as_raw(&mut self) -> *mut bindings::kiocb {
        self.0.get()
    }

    /// The file.
    pub fn file(&self) -> &File {
        // SAFETY: The kiocb and its file are valid (type invariant).
        unsafe { File::from_raw((*self.0.get()).ki_filp) }
    }

    /// The file offset of the I/O.
    pub fn pos(&self) -> i64 {
        // SAFETY: The kiocb is valid (type invariant).
        unsafe { (*self.0.get()).ki_pos }
    }

    /// Sets the file offset (after the I/O).
    pub fn set_pos(&mut self, pos: i64) {
        // SAFETY: The kiocb is ours for the call (type invariant).
        unsafe { (*self.0.get()).ki_pos = pos };
    }

    /// The `IOCB_*` flags.
    pub fn flags(&self) -> u32 {
        // SAFETY: The kiocb is valid (type invariant).
        unsafe { (*self.0.get()).ki_flags as u32 }
    }

    /// `generic_file_read_iter()`: reads through the page cache. Direct
    /// I/O (`IOCB_DIRECT`) goes to `direct_IO`, which must exist then: the
    /// caller serves it itself otherwise.
    pub fn generic_read_iter(&mut self, to: &mut IovIterDest<'_>) -> Result<usize> {
        // SAFETY: Both are valid (type invariants).
        let r = unsafe { bindings::generic_file_read_iter(self.as_raw(), to.as_raw()) };
        if r < 0 {
            Err(Error::from_errno(r as i32))
        } else {
            Ok(r as usize)
        }
    }

    /// `generic_file_write_iter()`: a buffered write through the page
    /// cache (`write_begin`/`write_end` of the mapping), taking the inode
    /// lock itself, with the generic checks, privileges removed, times
    /// updated and the write synced as the file asks.
    ///
    /// # Safety
    ///
    /// The file's mapping has `write_begin` and `write_end` (an
    /// [`address_space::Operations`] implementing both); the kiocb is not
    /// `IOCB_DIRECT` unless the mapping has a `direct_IO`; the caller does
    /// not hold the inode lock.
    ///
    /// [`address_space::Operations`]: super::address_space::Operations
    pub unsafe fn generic_write_iter(&mut self, from: &mut IovIterSource<'_>) -> Result<usize> {
        // SAFETY: Both are valid (type invariants); the mapping has what
        // the helper calls and the inode lock is free (the caller).
        let r = unsafe { bindings::generic_file_write_iter(self.as_raw(), from.as_raw()) };
        if r < 0 {
            Err(Error::from_errno(r as i32))
        } else {
            Ok(r as usize)
        }
    }

    /// `generic_write_checks()`, with the inode locked: applies
    /// `O_APPEND` (moving the position to the size) and the limits;
    /// returns the bytes that may be written (0: nothing to do).
    pub fn write_checks<T: FileSystem>(
        &mut self,
        from: &mut IovIterSource<'_>,
        _locked: &super::inode::InodeGuard<'_, T>,
    ) -> Result<usize> {
        // SAFETY: Both are valid (type invariants); the guard proves the
        // inode lock is held.
        let r = unsafe { bindings::generic_write_checks(self.as_raw(), from.as_raw()) };
        if r < 0 {
            Err(Error::from_errno(r as i32))
        } else {
            Ok(r as usize)
        }
    }

    /// Whether the caller waits for the I/O (`is_sync_kiocb()`); an
    /// asynchronous one (aio, io_uring) may be [queued](Kiocb::queue).
    pub fn is_sync(&self) -> bool {
        // SAFETY: The kiocb is valid (type invariant).
        unsafe { (*self.0.get()).ki_complete.is_none() }
    }

    /// Takes over an asynchronous I/O (`None` for a synchronous one): the
    /// returned handle completes it later, exactly once, from any context
    /// ([`QueuedKiocb::complete`], or `EIO` if dropped); the returned
    /// [`Queued`] is the only way to say so to the caller.
    ///
    /// # Safety
    ///
    /// Called at most once per call of the `read_iter`/`write_iter` this
    /// kiocb was passed to. On `Some`, that callback must return
    /// [`Queued::error`] and nothing else (any other result makes the
    /// caller complete the kiocb too), and must not use `self` once the
    /// handle may have completed it (the handle is `Send`: completion may
    /// run on another CPU as soon as the handle is given away).
    pub unsafe fn queue(&mut self) -> Option<(QueuedKiocb, Queued<'_>)> {
        if self.is_sync() {
            return None;
        }
        // INVARIANT: Asynchronous, and by the caller's contract ours to
        // complete once the callback returns `EIOCBQUEUED`; the caller
        // holds a reference to the file until then.
        Some((
            QueuedKiocb(core::ptr::NonNull::new(self.as_raw())?),
            Queued(PhantomData),
        ))
    }

    /// `generic_write_sync()`: after writing `written` bytes, syncs them
    /// if the file or call asks for it (`O_SYNC`, `O_DSYNC`).
    pub fn write_sync(&mut self, written: usize) -> Result<usize> {
        // SAFETY: The kiocb is valid (type invariant).
        let r = unsafe { bindings::generic_write_sync(self.as_raw(), written as isize) };
        if r < 0 {
            Err(Error::from_errno(r as i32))
        } else {
            Ok(r as usize)
        }
    }
}

/// Proof that a kiocb was queued ([`Kiocb::queue`]), tied to the call's
/// borrow of it: what makes the `-EIOCBQUEUED` its `read_iter`/`write_iter`
/// must return (for a kiocb nobody queued, that error would leave the
/// caller waiting forever, or hit the VFS's `BUG_ON` for a synchronous
/// one; nothing else here builds it).
pub struct Queued<'a>(PhantomData<&'a mut Kiocb>);

impl Queued<'_> {
    /// The error the callback returns (`-EIOCBQUEUED`).
    pub fn error(self) -> Error {
        Error::from_errno(-(bindings::EIOCBQUEUED as i32))
    }
}

/// An asynchronous I/O a file system took over ([`Kiocb::queue`]); it is
/// completed exactly once: by [`QueuedKiocb::complete`], or with `EIO` if
/// dropped.
///
/// # Invariants
///
/// The kiocb is valid and asynchronous (`ki_complete` set), its file held
/// by its submitter, until it is completed; nobody else completes it.
pub struct QueuedKiocb(core::ptr::NonNull<bindings::kiocb>);

// SAFETY: `ki_complete` may be called from any context and thread (block
// drivers call it from interrupts); the handle is the only user of the
// kiocb until then.
unsafe impl Send for QueuedKiocb {}

impl QueuedKiocb {
    /// Completes the I/O with `res` (bytes done, or the error); on
    /// success the kiocb's position moves past the bytes done first (as
    /// `iomap_dio_complete()`; C's FUSE moves it at submission).
    pub fn complete(self, res: Result<usize>) {
        let raw = self.0.as_ptr();
        core::mem::forget(self);
        let ret = match res {
            Ok(n) => n as crate::ffi::c_long,
            Err(e) => e.to_errno() as crate::ffi::c_long,
        };
        // SAFETY: The kiocb is valid and asynchronous until completed, and
        // this is its one completion (type invariant; `self` is consumed);
        // nobody else uses it meanwhile.
        unsafe {
            if ret > 0 {
                (*raw).ki_pos += ret as bindings::loff_t;
            }
            if let Some(f) = (*raw).ki_complete {
                f(raw, ret);
            }
        }
    }
}

impl Drop for QueuedKiocb {
    fn drop(&mut self) {
        let raw = self.0.as_ptr();
        // SAFETY: As `complete`: the handle is going away uncompleted.
        unsafe {
            if let Some(f) = (*raw).ki_complete {
                f(raw, -(bindings::EIO as crate::ffi::c_long));
            }
        }
    }
}

/// How a file is memory-mapped.
#[derive(Clone, Copy)]
pub enum Mmap {
    /// It is not (`ENODEV`).
    None,
    /// `generic_file_readonly_mmap()`: page cache mappings, private or
    /// read-only shared (a writable shared mapping is refused).
    ReadOnlyShared,
    /// Page cache mappings of every kind: writes through a shared mapping
    /// dirty the page cache (`filemap_page_mkwrite`), written back by the
    /// file system's `writepages`; [`Operations::mmap_prepare`]
    /// runs first for a writable shared mapping, and closing such a
    /// mapping writes its file back and waits (as C's `fuse_vma_close`).
    Shared,
    /// DAX mappings (`VM_MIXEDMAP | VM_HUGEPAGE`): the file system's own
    /// fault handlers map its memory directly; `MAP_SYNC` is allowed
    /// (`FOP_MMAP_SYNC`) and addresses are aligned for huge entries
    /// (`thp_get_unmapped_area`). [`Operations::mmap_prepare`] runs first.
    Dax(crate::mm::VmOps),
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

/// Lock commands ([`Operations::lock`], [`Operations::flock`]).
pub mod lock_cmd {
    /// Tests for a conflicting lock (`F_GETLK`).
    pub const GETLK: i32 = crate::bindings::F_GETLK as i32;
    /// Sets or clears a lock without waiting (`F_SETLK`).
    pub const SETLK: i32 = crate::bindings::F_SETLK as i32;
    /// Sets a lock, waiting for it (`F_SETLKW`).
    pub const SETLKW: i32 = crate::bindings::F_SETLKW as i32;
    /// A lock manager gives up a blocked request (`F_CANCELLK`).
    pub const CANCELLK: i32 = crate::bindings::F_CANCELLK as i32;
}

/// What [`Operations::lock`] returns for a blocked caller that waits: the
/// VFS waits for the lock's blocker to go and asks again.
pub const FILE_LOCK_DEFERRED: i32 = bindings::FILE_LOCK_DEFERRED as i32;

/// Lock types ([`FileLock::lock_type`]).
pub mod lock_type {
    /// A shared lock (`F_RDLCK`).
    pub const RDLCK: u8 = crate::bindings::F_RDLCK as u8;
    /// An exclusive lock (`F_WRLCK`).
    pub const WRLCK: u8 = crate::bindings::F_WRLCK as u8;
    /// No lock (`F_UNLCK`).
    pub const UNLCK: u8 = crate::bindings::F_UNLCK as u8;
}

/// Lock flags ([`FileLock::flags`]).
pub mod lock_flags {
    /// A POSIX (`fcntl`) lock (`FL_POSIX`).
    pub const POSIX: u32 = crate::bindings::FL_POSIX;
    /// A `flock` lock (`FL_FLOCK`).
    pub const FLOCK: u32 = crate::bindings::FL_FLOCK;
    /// Removal when a file is closed (`FL_CLOSE`).
    pub const CLOSE: u32 = crate::bindings::FL_CLOSE;
    /// The caller waits for the lock (`FL_SLEEP`).
    pub const SLEEP: u32 = crate::bindings::FL_SLEEP;
    /// An open file description lock (`F_OFD_SETLK`; `FL_OFDLCK`): owned
    /// by the open file.
    pub const OFDLCK: u32 = crate::bindings::FL_OFDLCK;
}

/// A lock request (`struct file_lock`): what `fcntl` or `flock` asks for,
/// and where [`lock_cmd::GETLK`] puts the conflicting lock it finds.
///
/// Only shared references are handed out: once the VFS's table holds the
/// lock (a blocked [`FileLock::posix_lock_file`]), other CPUs write parts
/// of it (its blocker, its list links).
///
/// # Invariants
///
/// Wraps a valid `struct file_lock` that the VFS lends for one call, whose
/// range, type, flags and owner only the borrower writes meanwhile, and
/// whose `flc_file` is the open file the call is about (valid for it).
#[repr(transparent)]
pub struct FileLock(Opaque<bindings::file_lock>);

impl FileLock {
    /// Wraps `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is a valid `struct file_lock` for `'a`, whose range, type,
    /// flags and owner nothing else writes for `'a`, and whose `flc_file`
    /// is an open file valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::file_lock) -> &'a Self {
        // SAFETY: `FileLock` is a transparent wrapper of an `Opaque`, which
        // allows writes by others; the caller vouches for the pointer.
        unsafe { &*ptr.cast() }
    }

    fn raw(&self) -> *mut bindings::file_lock {
        self.0.get()
    }

    /// The first byte covered (`fl_start`).
    pub fn start(&self) -> i64 {
        // SAFETY: A valid lock (type invariant).
        unsafe { (*self.raw()).fl_start }
    }

    /// The last byte covered (`fl_end`; `OFFSET_MAX` for "to the end").
    pub fn end(&self) -> i64 {
        // SAFETY: As above.
        unsafe { (*self.raw()).fl_end }
    }

    /// The lock type ([`lock_type`]).
    pub fn lock_type(&self) -> u8 {
        // SAFETY: As above.
        unsafe { (*self.raw()).c.flc_type }
    }

    /// The lock flags ([`lock_flags`]).
    pub fn flags(&self) -> u32 {
        // SAFETY: As above.
        unsafe { (*self.raw()).c.flc_flags }
    }

    /// The owner (`flc_owner`: the file table of a POSIX lock, the open
    /// file of a `flock` lock), as a value only.
    pub fn owner(&self) -> usize {
        // SAFETY: As above.
        unsafe { (*self.raw()).c.flc_owner as usize }
    }

    /// Whether a lock manager (lockd) waits for an asynchronous grant
    /// (`fl_lmops->lm_grant`), which a file system may refuse.
    pub fn wants_grant(&self) -> bool {
        // SAFETY: As above.
        unsafe { bindings::vfs_lock_wants_grant(self.raw()) }
    }

    /// Describes a conflicting lock found by [`lock_cmd::GETLK`]: `start`
    /// to `end` of type `ty` held by `pid` (in the initial pid namespace;
    /// the VFS gives the caller its own view), or [`lock_type::UNLCK`]
    /// for none (the range is then left as asked).
    ///
    /// # Safety
    ///
    /// The lock was lent for a [`lock_cmd::GETLK`] call: the VFS puts such
    /// a request in no table, so no other CPU reads these fields while
    /// they are written (a lock [`FileLock::posix_lock_file`] deferred is
    /// read by others).
    pub unsafe fn set_conflict(&self, ty: u8, start: i64, end: i64, pid: i32) {
        let fl = self.raw();
        // SAFETY: A valid lock (type invariant), which only this call
        // reads or writes now (the caller: a GETLK request).
        unsafe {
            if ty != lock_type::UNLCK {
                (*fl).fl_start = start;
                (*fl).fl_end = end;
                (*fl).c.flc_pid = pid;
            }
            (*fl).c.flc_type = ty;
        }
    }

    /// The open file the lock is about (`flc_file`).
    fn file(&self) -> *mut bindings::file {
        // SAFETY: A valid lock (type invariant).
        unsafe { (*self.raw()).c.flc_file }
    }

    /// Applies the lock to the VFS's own table of its file's POSIX locks
    /// (`posix_lock_file()`, what the VFS does for a file system without
    /// `lock`): 0, or [`FILE_LOCK_DEFERRED`] for a caller that waits and
    /// must (the VFS then waits and asks again). The file is the lock's
    /// own, so the table is the one its close cleans.
    pub fn posix_lock_file(&self) -> Result<i32> {
        // SAFETY: The lock and its file are valid (type invariants); no
        // conflict is asked.
        let ret =
            unsafe { bindings::posix_lock_file(self.file(), self.raw(), core::ptr::null_mut()) };
        to_result(ret)?;
        Ok(ret)
    }

    /// Looks for a conflicting lock in the VFS's table of its file
    /// (`posix_test_lock()`) and describes it in place.
    ///
    /// # Safety
    ///
    /// As [`FileLock::set_conflict`] (a GETLK request), and the lock is
    /// not used after: a conflict found is copied over it, its file
    /// (`flc_file`) and owner included, which the type invariant then no
    /// longer holds for.
    pub unsafe fn posix_test_lock(&self) {
        // SAFETY: The lock and its file are valid (type invariants); the
        // caller vouches that nothing else reads it and that it is not
        // used after.
        unsafe { bindings::posix_test_lock(self.file(), self.raw()) }
    }

    /// Applies a `flock` lock in the VFS's table of its file, waiting if
    /// asked (`locks_lock_file_wait()`, what the VFS does without
    /// `flock`).
    pub fn lock_file_wait(&self) -> Result {
        // SAFETY: The lock and its file are valid (type invariants), and
        // so is an open file's inode (`locks_lock_file_wait()` is an
        // inline of this).
        to_result(unsafe { bindings::locks_lock_inode_wait((*self.file()).f_inode, self.raw()) })
    }
}

/// The thread group id of the current task in the initial pid namespace
/// (the pid a lock request names, as C's `task_tgid(current)`).
pub fn current_tgid() -> i32 {
    // SAFETY: Reads the current task's thread group id.
    unsafe { bindings::vfs_current_tgid() }
}

/// `nr` as a pid of the initial pid namespace if a task has it there, or
/// 0 (the holder a host reports for a lock may be gone, or never was).
pub fn lock_pid(nr: i32) -> i32 {
    // SAFETY: A lookup by value, under RCU in the helper.
    unsafe { bindings::vfs_lock_pid(nr) }
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

    /// How files are memory-mapped.
    const MMAP: Mmap = Mmap::None;

    /// Mapping `vma` of the file is being made (with [`Mmap::Shared`] or
    /// [`Mmap::Dax`]): refuse it, or prepare (remember the handle
    /// writeback will use, say). The abstraction sets its operations
    /// afterwards.
    fn mmap_prepare(
        _file: &File,
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _vma: &crate::mm::virt::VmaNew,
    ) -> Result {
        Ok(())
    }

    /// Whether `splice` goes through the page cache helpers
    /// (`filemap_splice_read()`, `iter_file_splice_write()`).
    const GENERIC_SPLICE: bool = false;

    /// Reads at `kiocb.pos()` into `to` (`file_operations.read_iter`),
    /// moving the position; returns the bytes read.
    fn read_iter(
        _kiocb: &mut Kiocb,
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _to: &mut IovIterDest<'_>,
    ) -> Result<usize> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes `from` at `kiocb.pos()` (`file_operations.write_iter`),
    /// moving the position; returns the bytes written.
    fn write_iter(
        _kiocb: &mut Kiocb,
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _from: &mut IovIterSource<'_>,
    ) -> Result<usize> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Moves the file position (`file_operations.llseek`); returns it.
    fn llseek(
        _file: &File,
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _offset: i64,
        _whence: u32,
    ) -> Result<i64> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Makes bytes `start..=end` durable (`file_operations.fsync`), only
    /// the data if `datasync`.
    fn fsync(
        _file: &File,
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _start: i64,
        _end: i64,
        _datasync: bool,
    ) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Allocates, punches or zeroes bytes `offset..offset + len`
    /// (`file_operations.fallocate`, `FALLOC_FL_*` `mode`).
    fn fallocate(
        _file: &File,
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _mode: u32,
        _offset: i64,
        _len: i64,
    ) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Copies `len` bytes at `pos_in` of `file_in` to `pos_out` of
    /// `file_out` (`file_operations.copy_file_range`), both files of this
    /// table; returns the bytes copied (at most `len`). `EOPNOTSUPP` or
    /// `EXDEV` makes the abstraction copy through the page cache instead
    /// (`splice_copy_file_range()`, as C's FUSE); so does a source of
    /// another table of the same superblock (the VFS refuses one of
    /// another file system with `EXDEV` before calling).
    #[allow(clippy::too_many_arguments)]
    fn copy_file_range(
        _file_in: &File,
        _data_in: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _pos_in: i64,
        _file_out: &File,
        _data_out: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _pos_out: i64,
        _len: usize,
        _flags: u32,
    ) -> Result<usize> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// A file descriptor of the file is closed (`file_operations.flush`);
    /// `owner` identifies the closing file table (the POSIX lock owner).
    fn flush(
        _file: &File,
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _owner: usize,
    ) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Tests, sets or clears a POSIX lock (`file_operations.lock`, for
    /// `fcntl`, and at close for an owner that has locks in the VFS's
    /// table of the file): `cmd` is a [`lock_cmd`]. With it the VFS keeps
    /// no table of the file's POSIX locks: the operation does all
    /// ([`FileLock::posix_lock_file`] keeps them in the VFS's). Returns 0,
    /// or [`FILE_LOCK_DEFERRED`] (from `posix_lock_file`).
    fn lock(
        _file: &File,
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _cmd: i32,
        _fl: &FileLock,
    ) -> Result<i32> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Sets or clears a `flock` lock (`file_operations.flock`; at the
    /// last close of an open file only if the VFS's table holds one of
    /// its locks).
    fn flock(
        _file: &File,
        _data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        _cmd: i32,
        _fl: &FileLock,
    ) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

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
                llseek: if U::HAS_LLSEEK {
                    Some(llseek_callback::<U>)
                } else if U::DIRECTORY {
                    Some(bindings::generic_file_llseek)
                } else {
                    None
                },
                read_iter: if U::HAS_READ_ITER {
                    Some(read_iter_callback::<U>)
                } else {
                    None
                },
                write_iter: if U::HAS_WRITE_ITER {
                    Some(write_iter_callback::<U>)
                } else {
                    None
                },
                fsync: if U::HAS_FSYNC {
                    Some(fsync_callback::<U>)
                } else {
                    None
                },
                fallocate: if U::HAS_FALLOCATE {
                    Some(fallocate_callback::<U>)
                } else {
                    None
                },
                flush: if U::HAS_FLUSH {
                    Some(flush_callback::<U>)
                } else {
                    None
                },
                lock: if U::HAS_LOCK {
                    Some(lock_callback::<U>)
                } else {
                    None
                },
                flock: if U::HAS_FLOCK {
                    Some(flock_callback::<U>)
                } else {
                    None
                },
                copy_file_range: if U::HAS_COPY_FILE_RANGE {
                    Some(copy_file_range_callback::<U>)
                } else {
                    None
                },
                mmap: match U::MMAP {
                    Mmap::None => None,
                    Mmap::ReadOnlyShared => Some(bindings::generic_file_readonly_mmap),
                    Mmap::Shared | Mmap::Dax(_) => Some(mmap_callback::<U>),
                },
                get_unmapped_area: match U::MMAP {
                    Mmap::Dax(_) => Some(bindings::thp_get_unmapped_area),
                    _ => None,
                },
                // `FOP_MMAP_SYNC`, checked against its C value in the
                // helpers (a cast bindgen cannot evaluate).
                fop_flags: match U::MMAP {
                    Mmap::Dax(_) => 1 << 2,
                    _ => 0,
                },
                splice_read: if U::GENERIC_SPLICE {
                    Some(bindings::filemap_splice_read)
                } else {
                    None
                },
                splice_write: if U::GENERIC_SPLICE {
                    Some(bindings::iter_file_splice_write)
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

/// The per-open data of an open file of ours.
///
/// # Safety
///
/// `file` must be a file `open_callback::<U>` opened and not yet released.
unsafe fn borrow_data<'a, U: Operations + ?Sized>(
    file: *mut bindings::file,
) -> <U::Data as ForeignOwnable>::Borrowed<'a> {
    // SAFETY: `private_data` came from `into_foreign` and is taken back
    // only by release, which cannot run while the file is in use.
    unsafe { U::Data::borrow((*file).private_data.cast_const()) }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, for an open file of ours.
unsafe extern "C" fn read_iter_callback<U: Operations + ?Sized>(
    iocb: *mut bindings::kiocb,
    to: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: The VFS passes a valid kiocb of an open file of ours and a
    // destination iterator, both ours for the call.
    let r = unsafe {
        let data = borrow_data::<U>((*iocb).ki_filp);
        U::read_iter(Kiocb::from_raw(iocb), data, IovIterDest::from_raw(to))
    };
    match r {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, for an open file of ours.
unsafe extern "C" fn write_iter_callback<U: Operations + ?Sized>(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: As `read_iter_callback`, with a source iterator.
    let r = unsafe {
        let data = borrow_data::<U>((*iocb).ki_filp);
        U::write_iter(Kiocb::from_raw(iocb), data, IovIterSource::from_raw(from))
    };
    match r {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, for an open file of ours.
unsafe extern "C" fn llseek_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    offset: bindings::loff_t,
    whence: c_int,
) -> bindings::loff_t {
    // SAFETY: The VFS passes an open file of ours.
    let r = unsafe {
        U::llseek(
            File::from_raw(file),
            borrow_data::<U>(file),
            offset,
            whence as u32,
        )
    };
    match r {
        Ok(p) => p,
        Err(e) => e.to_errno().into(),
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, for an open file of ours.
unsafe extern "C" fn fsync_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    start: bindings::loff_t,
    end: bindings::loff_t,
    datasync: c_int,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes an open file of ours.
        unsafe {
            U::fsync(
                File::from_raw(file),
                borrow_data::<U>(file),
                start,
                end,
                datasync != 0,
            )
        }?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, for an open file of ours.
unsafe extern "C" fn flush_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    id: bindings::fl_owner_t,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes an open file of ours; `id` is only a value.
        unsafe { U::flush(File::from_raw(file), borrow_data::<U>(file), id as usize) }?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, for an open file of ours
/// and a lock it lends for the call.
unsafe extern "C" fn lock_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    cmd: c_int,
    fl: *mut bindings::file_lock,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes an open file of ours and a valid lock
        // about it (`flc_file`) whose request fields only the file system
        // writes during the call (the VFS's table may link it, its other
        // fields).
        let ret = unsafe {
            U::lock(
                File::from_raw(file),
                borrow_data::<U>(file),
                cmd,
                FileLock::from_raw(fl),
            )
        }?;
        // Only 0 and `FILE_LOCK_DEFERRED` mean something to the VFS.
        Ok(if ret == FILE_LOCK_DEFERRED { ret } else { 0 })
    })
}

/// # Safety
///
/// As [`lock_callback`].
unsafe extern "C" fn flock_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    cmd: c_int,
    fl: *mut bindings::file_lock,
) -> c_int {
    from_result(|| {
        // SAFETY: As in `lock_callback`.
        unsafe {
            U::flock(
                File::from_raw(file),
                borrow_data::<U>(file),
                cmd,
                FileLock::from_raw(fl),
            )
        }?;
        Ok(0)
    })
}

/// The mapping operations of [`Mmap::Shared`] files: the generic page
/// cache fault paths, and a writeback when a writable shared mapping goes.
static SHARED_VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
    fault: Some(bindings::filemap_fault),
    map_pages: Some(bindings::filemap_map_pages),
    page_mkwrite: Some(bindings::filemap_page_mkwrite),
    close: Some(vma_close_callback),
    // SAFETY: All-zeroes is valid for the remaining (optional) callbacks.
    ..unsafe { core::mem::zeroed() }
};

/// # Safety
///
/// Called only by the VFS through an `Ops` table with [`Mmap::Shared`] or
/// [`Mmap::Dax`],
/// for an open file of ours and a new mapping of it.
unsafe extern "C" fn mmap_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    from_result(|| {
        // SAFETY: The VFS passes an open file of ours and the mapping being
        // set up, which it holds (with `mmap_lock`) for the call.
        unsafe {
            U::mmap_prepare(
                File::from_raw(file),
                borrow_data::<U>(file),
                crate::mm::virt::VmaNew::from_raw(vma),
            )?;
            match U::MMAP {
                Mmap::Dax(ops) => bindings::vfs_vma_set_dax_ops(file, vma, ops.as_raw()),
                _ => bindings::vfs_vma_set_ops(file, vma, &SHARED_VM_OPS),
            }
        }
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the MM for a mapping set up by `mmap_callback`.
unsafe extern "C" fn vma_close_callback(vma: *mut bindings::vm_area_struct) {
    // SAFETY: The mapping holds its file (and so the inode and mapping)
    // until after `close`.
    unsafe {
        if bindings::vfs_vma_shared_writable(vma) {
            let file = (*vma).vm_file;
            // As C: errors are kept in the mapping for the next fsync.
            let _ = bindings::filemap_write_and_wait_range((*file).f_mapping, 0, i64::MAX);
        }
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, with `file_out` an open
/// file of ours and `file_in` any open file (the VFS checked both ranges).
unsafe extern "C" fn copy_file_range_callback<U: Operations + ?Sized>(
    file_in: *mut bindings::file,
    pos_in: bindings::loff_t,
    file_out: *mut bindings::file,
    pos_out: bindings::loff_t,
    len: usize,
    flags: c_uint,
) -> isize {
    // SAFETY: Both files are open for the call. Only a file whose table is
    // `file_out`'s (ours, `U`'s) has `U::Data` as its private data.
    let r = unsafe {
        if (*file_in).f_op == (*file_out).f_op {
            U::copy_file_range(
                File::from_raw(file_in),
                borrow_data::<U>(file_in),
                pos_in,
                File::from_raw(file_out),
                borrow_data::<U>(file_out),
                pos_out,
                len,
                flags,
            )
        } else {
            Err(EXDEV)
        }
    };
    match r {
        Ok(n) => n.min(len) as isize,
        Err(e) if e == EXDEV || e.to_errno() == -(bindings::EOPNOTSUPP as i32) => {
            let (mut pi, mut po) = (pos_in, pos_out);
            // SAFETY: Both files are open for the call; the VFS checked both
            // ranges for `len` (`rw_verify_area`) and holds
            // `file_start_write(file_out)`, as `splice_file_range` wants; the
            // positions are ours to advance.
            unsafe { bindings::splice_file_range(file_in, &mut pi, file_out, &mut po, len) }
        }
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called only by the VFS through an `Ops` table, for an open file of ours.
unsafe extern "C" fn fallocate_callback<U: Operations + ?Sized>(
    file: *mut bindings::file,
    mode: c_int,
    offset: bindings::loff_t,
    len: bindings::loff_t,
) -> isize {
    // SAFETY: The VFS passes an open file of ours.
    let r = unsafe {
        U::fallocate(
            File::from_raw(file),
            borrow_data::<U>(file),
            mode as u32,
            offset,
            len,
        )
    };
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno() as isize,
    }
}
