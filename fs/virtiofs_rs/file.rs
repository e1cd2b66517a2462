// SPDX-License-Identifier: GPL-2.0-only

//! Regular files: OPEN/RELEASE, reads through the page cache
//! (`read_folio`, `readahead`: one READ of up to `max_pages` pages),
//! write-through writes (C's `fuse_perform_write`: the data is copied into
//! page cache folios, which go to the host as the WRITE's pages) or, with
//! a writeback cache (FUSE_WRITEBACK_CACHE), buffered writes
//! (`write_begin`/`write_end`) that writeback sends (`write_folios`),
//! direct I/O (`FOPEN_DIRECT_IO` handles and `O_DIRECT`), FLUSH and FSYNC;
//! and
//! the file operations of DAX files ([`DaxFile`]), whose data goes
//! through the cache window instead (see `dax.rs`).
//!
//! Data moves between the page cache and the host without a copy: the
//! folios are the WRITE's device-readable and the READ's device-writable
//! segments. A request carrying folios is never abandoned (its waiter
//! stays, as C's), so the folios are free again when it returns.

use crate::dir::{
    fill_release, open_flags, prepare_release, release_created, release_opened, set_release_flock,
};
use crate::errno::{enosys, eopnotsupp};
use crate::inode::{self, changed_locally};
use crate::proto::fuse::{
    abi::{
        fopen, CopyFileRangeIn, CreateIn, EntryOut, FallocateIn, FileLockWire, FlushIn, FsyncIn,
        LkIn, LkOut, LseekIn, LseekOut, Opcode, OpenIn, OpenOut, ReadIn, Wire, WriteIn, WriteOut,
        FUSE_LK_FLOCK, FUSE_OPEN_KILL_SUIDGID, FUSE_WRITE_CACHE, FUSE_WRITE_LOCKOWNER,
    },
    reply,
    request::{self, request_len, RequestBuilder},
};
use crate::ratelimit::warn_ratelimited;
use crate::session::{expiry, forget_created, header, prepare_forget, Optional, Session};
use crate::superblock::VirtioFsType;
use crate::transport::{Ended, OnEnd, Orphan, Reply, Request, Segments};
use kernel::{
    bindings,
    fs::{
        address_space::{
            self, FolioRef, FolioRun, LockedFolio, Readahead, ReadaheadFolio, WriteFolio,
        },
        file::{self, lock_cmd, lock_type, File, FileLock, Kiocb, Mmap, IOCB_APPEND, IOCB_DIRECT},
        inode::Entry,
        Inode,
    },
    iov::{IovIterDest, IovIterSource},
    mm::virt::{flags as vma_flags, VmaNew},
    new_condvar, new_spinlock,
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, CondVar, SpinLock},
    types::ARef,
    virtio::Segment,
};

/// `FALLOC_FL_KEEP_SIZE` (uapi `linux/falloc.h`).
const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
/// `FALLOC_FL_PUNCH_HOLE`.
const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;
/// `FALLOC_FL_ZERO_RANGE`.
const FALLOC_FL_ZERO_RANGE: u32 = 0x10;

/// An open regular file: the server's handle, how it was opened, and its
/// RELEASE, prepared at open so that closing never allocates.
pub(crate) struct FileHandle {
    /// The server's file handle.
    pub(crate) fh: u64,
    /// The `FOPEN_*` flags the server answered.
    open_flags: u32,
    /// The `O_*` flags sent with OPEN (RELEASE repeats them).
    pub(crate) flags: u32,
    release: Option<Request>,
    /// Background READs using `fh`: RELEASE waits for them.
    inflight: Arc<Inflight>,
    /// The lock owner of the `flock` lock the host may hold through this
    /// open file (C's `ff->flock`), 0 for none: RELEASE drops it.
    flock_owner: core::sync::atomic::AtomicU64,
    /// The lock owner of open file description locks (`F_OFD_SETLK`) the
    /// host may hold for this open file, 0 for none: they are dropped
    /// before RELEASE (no FLUSH names that owner).
    ofd_owner: core::sync::atomic::AtomicU64,
}

/// The background requests using a file handle (readahead READs), which
/// RELEASE must not overtake (C holds a `fuse_file` reference in each).
#[pin_data]
pub(crate) struct Inflight {
    #[pin]
    count: SpinLock<usize>,
    #[pin]
    idle: CondVar,
}

impl Inflight {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Inflight {
                count <- new_spinlock!(0, "virtiofs_rs::Inflight::count"),
                idle <- new_condvar!("virtiofs_rs::Inflight::idle"),
            }),
            GFP_KERNEL,
        )
    }

    /// Waits until no background request uses the handle.
    fn wait_idle(&self) {
        let mut c = self.count.lock();
        while *c != 0 {
            self.idle.wait(&mut c);
        }
    }
}

/// One background request of a handle, counted while it lives (dropped
/// when the request ends, or with the request if it is never sent).
struct InflightRef(Arc<Inflight>);

impl InflightRef {
    fn new(i: &Arc<Inflight>) -> Self {
        *i.count.lock() += 1;
        InflightRef(i.clone())
    }
}

impl Drop for InflightRef {
    fn drop(&mut self) {
        let mut c = self.0.count.lock();
        *c -= 1;
        if *c == 0 {
            self.0.idle.notify_all();
        }
    }
}

impl FileHandle {
    /// Whether the server asked for direct I/O on this handle.
    fn direct_io(&self) -> bool {
        self.open_flags & fopen::DIRECT_IO != 0
    }
}

/// The file operations of regular files.
pub(crate) struct RegFile;

#[vtable]
impl file::Operations for RegFile {
    type FileSystem = VirtioFsType;
    type Data = KBox<FileHandle>;
    const MMAP: Mmap = Mmap::Shared;
    const GENERIC_SPLICE: bool = true;

    /// As C's `fuse_open`: OPEN (without `O_TRUNC`: the VFS truncates
    /// through setattr, `FUSE_ATOMIC_O_TRUNC` is not offered); the page
    /// cache is dropped unless the server says to keep it.
    fn open(inode: &Inode<VirtioFsType>, file: &File) -> Result<KBox<FileHandle>> {
        let info = inode.data();
        if info.bad.load(core::sync::atomic::Ordering::Acquire) {
            return Err(EIO);
        }
        let s = inode.super_block().data();
        let nodeid = info.nodeid;
        let flags = open_flags(file) & !bindings::O_TRUNC;
        let orphan = Orphan::new(
            s.fs.conn.request_queue()?.clone(),
            prepare_release(&s, Opcode::Release, nodeid, flags)?,
            release_opened,
        );
        let mut h = KBox::new(
            FileHandle {
                fh: 0,
                open_flags: 0,
                flags,
                release: Some(prepare_release(&s, Opcode::Release, nodeid, flags)?),
                inflight: Inflight::new()?,
                flock_owner: core::sync::atomic::AtomicU64::new(0),
                ofd_owner: core::sync::atomic::AtomicU64::new(0),
            },
            GFP_KERNEL,
        )?;
        let reply = s.call_with(
            Opcode::Open,
            request_len(OpenIn::SIZE, &[]),
            OpenOut::SIZE,
            |buf, unique| request::open(buf, header(Opcode::Open, unique, nodeid), flags),
            Some(orphan),
        )?;
        let out = reply::decode_open(reply.payload()).map_err(|e| {
            warn_ratelimited!("OPEN reply refused: {:?}\n", e);
            EIO
        })?;
        h.fh = out.fh;
        h.open_flags = out.open_flags;
        if let Some(r) = h.release.as_mut() {
            fill_release(r, Opcode::Release, nodeid, out.fh, flags)?;
        }
        if out.open_flags & fopen::KEEP_CACHE == 0 {
            let _ = address_space::invalidate(inode);
        }
        let h = link_opened(&s, inode, h)?;
        // SAFETY: This is `open`.
        unsafe { file.allow_direct_io() };
        Ok(h)
    }

    /// As C's `fuse_file_mmap`: a direct-I/O handle cannot be mapped
    /// shared (no coherency with the host to offer; `ENODEV`), and its
    /// private mappings start from a dropped page cache. Writeback through
    /// a writable shared mapping uses the file's handle until release.
    fn mmap_prepare(file: &File, h: &FileHandle, vma: &VmaNew) -> Result {
        // SAFETY: A file operation of ours, on an open file of ours.
        let inode = unsafe { file_inode(file) };
        if h.direct_io() {
            if vma.flags() & vma_flags::MAYSHARE != 0 {
                return Err(ENODEV);
            }
            let _ = address_space::invalidate(inode);
            return Ok(());
        }
        if !vma.shared_writable() {
            return Ok(());
        }
        link_writer(inode, h.fh)
    }

    /// RELEASE, waited for (as C's virtio-fs: `ctx->destroy` makes the
    /// release synchronous), so no release reaches the host after DESTROY.
    /// A handle writeback used goes after a last writeback.
    fn release(inode: &Inode<VirtioFsType>, _file: &File, h: KBox<FileHandle>) {
        release_handle(inode, h);
    }

    /// As C's `fuse_cache_read_iter`: a read reaching past the cached size
    /// refreshes the attributes (if expired) first.
    fn read_iter(kiocb: &mut Kiocb, h: &FileHandle, to: &mut IovIterDest<'_>) -> Result<usize> {
        // SAFETY: A file operation of ours, on an open file of ours.
        let inode = unsafe { file_inode(kiocb.file()) };
        check_bad(inode)?;
        if h.direct_io() || kiocb.flags() & IOCB_DIRECT != 0 {
            // As C's `fuse_direct_IO`: an O_DIRECT read the caller does
            // not wait for goes in the background.
            if kiocb.flags() & IOCB_DIRECT != 0
                && inode.super_block().data().async_dio()
                && crate::dio::may_queue(kiocb, to.is_user_backed(), to.len())
            {
                // As C's `fuse_direct_IO`: nothing is sent at or past the
                // end of the file (refreshed first, if expired).
                let pos = kiocb.pos();
                let end = pos.saturating_add(to.len() as i64);
                if end > inode.size() {
                    inode::update_attrs(inode, Some(h.fh), false)?;
                }
                if pos >= inode.size() {
                    return Ok(0);
                }
                address_space::write_and_wait_range(inode, pos, end - 1)?;
                return crate::dio::read(kiocb, h, inode, to);
            }
            return direct_read(kiocb, h, inode, to);
        }
        if kiocb.pos().saturating_add(to.len() as i64) > inode.size() {
            inode::update_attrs(inode, Some(h.fh), false)?;
        }
        kiocb.generic_read_iter(to)
    }

    /// Write-through, as C's `fuse_cache_write_iter` without a writeback
    /// cache: under the inode lock, the generic checks (`O_APPEND` moves
    /// to the size, refreshed first if expired), privileges dropped, then
    /// the data goes to the host through the page cache (or directly for
    /// direct I/O).
    fn write_iter(
        kiocb: &mut Kiocb,
        h: &FileHandle,
        from: &mut IovIterSource<'_>,
    ) -> Result<usize> {
        // SAFETY: A file operation of ours, on an open file of ours.
        let inode = unsafe { file_inode(kiocb.file()) };
        if !h.direct_io()
            && kiocb.flags() & IOCB_DIRECT == 0
            && inode::writeback_cached(&inode.super_block().data(), inode)
        {
            // As C's `fuse_cache_write_iter` with a writeback cache: the
            // mode refreshed (if expired) for the set-id check, then
            // through the page cache (`write_begin`/`write_end`), unless
            // the host must remove set-id bits with the WRITE
            // (KILLPRIV_V2): write-through then.
            check_bad(inode)?;
            inode::update_attrs(inode, Some(h.fh), false)?;
            let s = inode.super_block().data();
            if !(s.killpriv_v2() && kiocb.file().should_drop_suidgid()) {
                // SAFETY: The mapping of a regular file that is not DAX
                // has `FileAops`, with `write_begin` and `write_end`; the
                // kiocb is not `IOCB_DIRECT` (above); no lock is held.
                return unsafe { kiocb.generic_write_iter(from) };
            }
            // Write-through clears the uptodate bit of what a failed
            // WRITE did not send: no folio it uses may be dirty then.
            address_space::write_and_wait(inode)?;
        }
        // As C: a direct-I/O handle leaves dropping set-user-ID and the like
        // to the host (`fuse_direct_write_iter`).
        locked_write(kiocb, h, from, h.direct_io(), |kiocb, inode, from| {
            if may_queue_write(kiocb, inode, from) {
                let pos = kiocb.pos();
                let last = pos.saturating_add(from.len() as i64).saturating_sub(1);
                address_space::write_and_wait_range(inode, pos, last)?;
                crate::dio::write(kiocb, h, inode, from)
            } else if h.direct_io() || kiocb.flags() & IOCB_DIRECT != 0 {
                direct_write(kiocb, h, inode, from)
            } else {
                perform_write(kiocb, h, inode, from)
            }
        })
    }

    /// As C's `fuse_file_llseek`: positions relative to the end use the
    /// size refreshed from the host (if expired).
    fn llseek(file: &File, h: &FileHandle, offset: i64, whence: u32) -> Result<i64> {
        // SAFETY: A file operation of ours, on an open file of ours.
        let inode = unsafe { file_inode(file) };
        check_bad(inode)?;
        if whence == bindings::SEEK_DATA || whence == bindings::SEEK_HOLE {
            let s = inode.super_block().data();
            if !s.lacks(Optional::Lseek) {
                // Dirty folios first: the host only knows what it has.
                address_space::write_and_wait(inode)?;
                let inarg = LseekIn {
                    fh: h.fh,
                    offset: offset as u64,
                    whence,
                    padding: 0,
                };
                let nodeid = inode.data().nodeid;
                let r = s.call(
                    Opcode::Lseek,
                    request_len(LseekIn::SIZE, &[]),
                    LseekOut::SIZE,
                    |buf, unique| {
                        request::simple(buf, header(Opcode::Lseek, unique, nodeid), &inarg)
                    },
                );
                match r {
                    Ok(reply) => {
                        let out = LseekOut::decode(reply.payload()).map_err(|_| EIO)?;
                        let to = i64::try_from(out.offset).map_err(|_| EIO)?;
                        return file.set_pos(to, i64::MAX);
                    }
                    Err(e) if e == enosys() => s.set_lacks(Optional::Lseek),
                    Err(e) => return Err(e),
                }
            }
        }
        if whence != bindings::SEEK_SET && whence != bindings::SEEK_CUR {
            inode::update_attrs(inode, Some(h.fh), false)?;
        }
        file.generic_llseek(offset, whence)
    }

    /// FSYNC of the handle (data only with `datasync`); a server without
    /// it is not asked again (C's `fc->no_fsync`).
    fn fsync(file: &File, h: &FileHandle, start: i64, end: i64, datasync: bool) -> Result {
        // SAFETY: A file operation of ours, on an open file of ours.
        let inode = unsafe { file_inode(file) };
        // The errseq-checked writeback: a failed writeback since this file
        // last looked is this fsync's error, whoever started it.
        file.write_and_wait_range(start, end)?;
        let s = inode.super_block().data();
        // As C: with a writeback cache, the times the writes set go first.
        if inode::writeback_cached(&s, inode) {
            address_space::sync_inode_metadata(inode, true)?;
        }
        fsync_common(&s, inode, Opcode::Fsync, h.fh, datasync)
    }

    /// FUSE_COPY_FILE_RANGE ([`copy_file_range`]).
    fn copy_file_range(
        file_in: &File,
        h_in: &FileHandle,
        pos_in: i64,
        file_out: &File,
        h_out: &FileHandle,
        pos_out: i64,
        len: usize,
        flags: u32,
    ) -> Result<usize> {
        copy_file_range(file_in, h_in, pos_in, file_out, h_out, pos_out, len, flags)
    }

    /// As C's `fuse_file_fallocate`: FALLOCATE with `KEEP_SIZE`,
    /// `PUNCH_HOLE` and `ZERO_RANGE` as the host allows (`EOPNOTSUPP`
    /// otherwise, and for good once it answers `ENOSYS`); the size grows
    /// with it, and the page cache over a punched or zeroed range goes.
    fn fallocate(file: &File, h: &FileHandle, mode: u32, offset: i64, len: i64) -> Result {
        // SAFETY: A file operation of ours, on an open file of ours.
        let inode = unsafe { file_inode(file) };
        check_bad(inode)?;
        let supported = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
        let eopnotsupp = Error::from_errno(-(bindings::EOPNOTSUPP as i32));
        if mode & !supported != 0 {
            return Err(eopnotsupp);
        }
        let s = inode.super_block().data();
        if s.lacks(Optional::Fallocate) {
            return Err(eopnotsupp);
        }
        let end = offset.checked_add(len).ok_or(EFBIG)?;
        let g = inode.lock();
        let punch = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) != 0;
        // As C: no DAX page stays mapped (or pinned) over a range whose
        // blocks change, and no fault maps one until this is done.
        let _layouts = if inode.is_dax() && (punch || mode & FALLOC_FL_KEEP_SIZE == 0) {
            Some(crate::dax::break_layouts(inode, offset, i64::MAX)?)
        } else {
            None
        };
        if punch {
            // Dirty folios over the range must not land after the hole.
            address_space::write_and_wait(inode)?;
        }
        file.modified(&g)?;
        let keep = mode & FALLOC_FL_KEEP_SIZE != 0;
        let _unstable = (!keep).then(|| inode::SizeUnstable::new(inode));
        let inarg = FallocateIn {
            fh: h.fh,
            offset: offset as u64,
            length: len as u64,
            mode,
            padding: 0,
        };
        let nodeid = inode.data().nodeid;
        let r = s.call(
            Opcode::Fallocate,
            request_len(FallocateIn::SIZE, &[]),
            0,
            |buf, unique| request::simple(buf, header(Opcode::Fallocate, unique, nodeid), &inarg),
        );
        match r {
            Ok(_) => {}
            Err(e) if e == enosys() => {
                s.set_lacks(Optional::Fallocate);
                return Err(eopnotsupp);
            }
            Err(e) => return Err(e),
        }
        if keep {
            inode::changed_locally(&s, inode);
        } else {
            inode::write_update_attr(&s, inode, end, (end - offset) as usize);
        }
        if punch {
            address_space::truncate_pagecache_range(inode, offset, end - 1);
        }
        drop(g);
        Ok(())
    }

    /// FLUSH on every close(2) of a descriptor, with the closing file
    /// table as the lock owner, unless the server said `FOPEN_NOFLUSH` or
    /// lacks FLUSH.
    fn flush(file: &File, h: &FileHandle, owner: usize) -> Result {
        // SAFETY: A file operation of ours, on an open file of ours.
        let inode = unsafe { file_inode(file) };
        if inode.data().bad.load(core::sync::atomic::Ordering::Acquire) {
            return Err(EIO);
        }
        // As C: dirty data goes first (its error is the close's), with a
        // writeback cache the times its writes set too.
        let s = inode.super_block().data();
        let wb = inode::writeback_cached(&s, inode);
        let written = if wb {
            address_space::write_inode_now(inode, true)
        } else {
            Ok(())
        }
        // With a writeback cache also the error of a writeback that
        // already ended (the inode is clean then, and `write_inode_now`
        // does not look).
        .and_then(|()| address_space::write_and_wait(inode));
        // C returns that error without FLUSH. Past C, FLUSH still goes
        // when the host keeps POSIX locks: it is what releases the
        // owner's locks there, and a close is not tried again. (Once the
        // host granted one, `posix_locks` stays true: `lock_granted`.)
        if written.is_err() && !s.posix_locks() {
            return written;
        }
        // As C: with a writeback cache FLUSH goes even with NOFLUSH.
        if (h.open_flags & fopen::NOFLUSH != 0 && !wb) || s.lacks(Optional::Flush) {
            return written;
        }
        let inarg = FlushIn {
            fh: h.fh,
            unused: 0,
            padding: 0,
            lock_owner: s.lock_owner(owner),
        };
        let nodeid = inode.data().nodeid;
        // Waited out whatever signal comes, as C's forced FLUSH: a close
        // is not tried again, and the locks it releases must be gone.
        let flushed = match s.call_forced(
            Opcode::Flush,
            request_len(FlushIn::SIZE, &[]),
            0,
            |buf, unique| request::simple(buf, header(Opcode::Flush, unique, nodeid), &inarg),
        ) {
            Ok(_) => Ok(()),
            Err(e) if e == enosys() => {
                s.set_lacks(Optional::Flush);
                Ok(())
            }
            Err(e) => Err(e),
        };
        written.and(flushed)
    }

    /// As C's `fuse_file_lock`: POSIX locks go to the host when it keeps
    /// them (`FUSE_POSIX_LOCKS`), to the VFS's table otherwise.
    fn lock(file: &File, h: &FileHandle, cmd: i32, fl: &FileLock) -> Result<i32> {
        posix_lock(file, h, cmd, fl)
    }

    /// As C's `fuse_file_flock`: `flock` locks go to the host when it
    /// keeps them (`FUSE_FLOCK_LOCKS`), to the VFS's table otherwise.
    fn flock(file: &File, h: &FileHandle, _cmd: i32, fl: &FileLock) -> Result {
        flock_lock(file, h, fl)
    }
}

/// The file operations of DAX files (C's `fuse_file_operations` on a
/// `FUSE_IS_DAX` inode): data read, written and mapped through the cache
/// window (`dax_iomap_rw`, DAX faults), a write that extends the file sent
/// as FUSE_WRITE (as C: the host's size and the data change together);
/// open, release, llseek, fsync, fallocate and flush as regular files'.
/// The handle type is [`RegFile`]'s.
pub(crate) struct DaxFile;

#[vtable]
impl file::Operations for DaxFile {
    type FileSystem = VirtioFsType;
    type Data = KBox<FileHandle>;
    const MMAP: Mmap = Mmap::Dax(crate::dax::DAX_VM_OPS);
    const GENERIC_SPLICE: bool = true;

    fn open(inode: &Inode<VirtioFsType>, file: &File) -> Result<KBox<FileHandle>> {
        <RegFile as file::Operations>::open(inode, file)
    }

    fn release(inode: &Inode<VirtioFsType>, _file: &File, h: KBox<FileHandle>) {
        release_handle(inode, h);
    }

    /// As C: DAX wins over a direct-I/O handle; every mapping is shared
    /// with the host, so nothing needs preparing.
    fn mmap_prepare(_file: &File, _h: &FileHandle, _vma: &VmaNew) -> Result {
        Ok(())
    }

    /// As C's `fuse_dax_read_iter`: under the inode lock shared. Past C:
    /// where the host refuses to map the range, the read goes as
    /// FUSE_READ instead of failing (counted as a fallback).
    fn read_iter(kiocb: &mut Kiocb, h: &FileHandle, to: &mut IovIterDest<'_>) -> Result<usize> {
        // SAFETY: A file operation of ours, on an open file of ours.
        let inode = unsafe { file_inode(kiocb.file()) };
        check_bad(inode)?;
        let _g = inode.lock_shared();
        // SAFETY: A file operation of ours: the file is on an inode of ours.
        match unsafe { kernel::dax::iomap_read(kiocb, to, crate::dax::DAX_IOMAP) } {
            Err(e) if crate::dax::may_fall_back(inode, e) => direct_read(kiocb, h, inode, to),
            // Stopped short of the end of the file: at a partial last page
            // the host cannot map. The rest goes as FUSE_READ.
            Ok(n) if n > 0 && !to.is_empty() && crate::dax::unmappable_at(inode, kiocb.pos()) => {
                crate::dax::count_fallback(inode);
                Ok(n + direct_read(kiocb, h, inode, to).unwrap_or(0))
            }
            r => r,
        }
    }

    /// As C's `fuse_dax_write_iter`: under the inode lock, the generic
    /// checks and privileges dropped; a write at or past the end of the
    /// file goes as FUSE_WRITE, the others through the window (or as
    /// FUSE_WRITE where the host refuses to map, past C).
    fn write_iter(
        kiocb: &mut Kiocb,
        h: &FileHandle,
        from: &mut IovIterSource<'_>,
    ) -> Result<usize> {
        locked_write(kiocb, h, from, false, |kiocb, inode, from| {
            let size = inode.size();
            let pos = kiocb.pos();
            if pos >= size || pos.saturating_add(from.len() as i64) > size {
                return direct_write(kiocb, h, inode, from);
            }
            // SAFETY: As in `read_iter`.
            match unsafe { kernel::dax::iomap_write(kiocb, from, crate::dax::DAX_IOMAP) } {
                Err(e) if crate::dax::may_fall_back(inode, e) => {
                    direct_write(kiocb, h, inode, from)
                }
                // Stopped at a partial last page: the rest as FUSE_WRITE.
                Ok(n)
                    if n > 0
                        && !from.is_empty()
                        && crate::dax::unmappable_at(inode, kiocb.pos()) =>
                {
                    crate::dax::count_fallback(inode);
                    Ok(n + direct_write(kiocb, h, inode, from).unwrap_or(0))
                }
                r => r,
            }
        })
    }

    fn llseek(file: &File, h: &FileHandle, offset: i64, whence: u32) -> Result<i64> {
        <RegFile as file::Operations>::llseek(file, h, offset, whence)
    }

    fn fsync(file: &File, h: &FileHandle, start: i64, end: i64, datasync: bool) -> Result {
        <RegFile as file::Operations>::fsync(file, h, start, end, datasync)
    }

    fn fallocate(file: &File, h: &FileHandle, mode: u32, offset: i64, len: i64) -> Result {
        <RegFile as file::Operations>::fallocate(file, h, mode, offset, len)
    }

    fn copy_file_range(
        file_in: &File,
        h_in: &FileHandle,
        pos_in: i64,
        file_out: &File,
        h_out: &FileHandle,
        pos_out: i64,
        len: usize,
        flags: u32,
    ) -> Result<usize> {
        copy_file_range(file_in, h_in, pos_in, file_out, h_out, pos_out, len, flags)
    }

    fn flush(file: &File, h: &FileHandle, owner: usize) -> Result {
        <RegFile as file::Operations>::flush(file, h, owner)
    }

    /// As C's `fuse_file_lock`: POSIX locks go to the host when it keeps
    /// them (`FUSE_POSIX_LOCKS`), to the VFS's table otherwise.
    fn lock(file: &File, h: &FileHandle, cmd: i32, fl: &FileLock) -> Result<i32> {
        posix_lock(file, h, cmd, fl)
    }

    /// As C's `fuse_file_flock`: `flock` locks go to the host when it
    /// keeps them (`FUSE_FLOCK_LOCKS`), to the VFS's table otherwise.
    fn flock(file: &File, h: &FileHandle, _cmd: i32, fl: &FileLock) -> Result {
        flock_lock(file, h, fl)
    }
}

/// The shape of every write (C's `fuse_cache_write_iter` and
/// `fuse_dax_write_iter`): under the inode lock, `O_APPEND` refreshes the
/// size first (if expired), the generic checks, privileges dropped unless
/// `keep_privs`, then `write` moves the data; the write is synced after.
fn locked_write(
    kiocb: &mut Kiocb,
    h: &FileHandle,
    from: &mut IovIterSource<'_>,
    keep_privs: bool,
    write: impl FnOnce(&mut Kiocb, &Inode<VirtioFsType>, &mut IovIterSource<'_>) -> Result<usize>,
) -> Result<usize> {
    // SAFETY: A file operation of ours, on an open file of ours.
    let inode = unsafe { file_inode(kiocb.file()) };
    check_bad(inode)?;
    let written = {
        let g = inode.lock();
        if kiocb.flags() & IOCB_APPEND != 0 {
            inode::update_attrs(inode, Some(h.fh), false)?;
        }
        if kiocb.write_checks(from, &g)? == 0 {
            return Ok(0);
        }
        if !keep_privs {
            kiocb.file().modified(&g)?;
        }
        write(kiocb, inode, from)?
    };
    kiocb.write_sync(written)
}

/// Whether a write goes as asynchronous direct I/O (C's `fuse_direct_IO`
/// with `io->async` and not `io->blocking`, from `fuse_cache_write_iter`
/// and `fuse_direct_write_iter` alike): O_DIRECT, the caller not waiting,
/// inside the file (an extending write must update the size under the
/// inode lock), and no sync asked for (it follows the write).
fn may_queue_write(kiocb: &Kiocb, inode: &Inode<VirtioFsType>, from: &IovIterSource<'_>) -> bool {
    kiocb.flags() & IOCB_DIRECT != 0
        && kiocb.flags() & (file::IOCB_DSYNC | file::IOCB_SYNC) == 0
        && inode.super_block().data().async_dio()
        && crate::dio::may_queue(kiocb, from.is_user_backed(), from.len())
        && kiocb.pos().saturating_add(from.len() as i64) <= inode.size()
}

/// FUSE_COPY_FILE_RANGE (C's `__fuse_copy_file_range`): the host copies
/// between two open files of this mount. Dirty folios of both ranges go to
/// the host first; the destination's cached folios over the range are
/// dropped after, its size moved up to what was copied and its other
/// attributes marked stale. `EOPNOTSUPP` (a host without it, remembered)
/// and `EXDEV` (another mount) make the abstraction copy through the page
/// cache instead.
#[allow(clippy::too_many_arguments)]
fn copy_file_range(
    file_in: &File,
    h_in: &FileHandle,
    pos_in: i64,
    file_out: &File,
    h_out: &FileHandle,
    pos_out: i64,
    len: usize,
    flags: u32,
) -> Result<usize> {
    // SAFETY: Both files are open files of ours: `file_in` has `file_out`'s
    // table (the abstraction checked).
    let (inode_in, inode_out) = unsafe { (file_inode(file_in), file_inode(file_out)) };
    check_bad(inode_in)?;
    check_bad(inode_out)?;
    let eopnotsupp = Error::from_errno(-(bindings::EOPNOTSUPP as i32));
    let s = inode_out.super_block().data();
    if s.lacks(Optional::CopyFileRange) {
        return Err(eopnotsupp);
    }
    if !core::ptr::eq(inode_in.super_block(), inode_out.super_block()) {
        return Err(EXDEV);
    }
    // As C: at most what a `fuse_write_out` can count, whole pages.
    let len = len.min(u32::MAX as usize & !(PAGE_SIZE - 1));
    if len == 0 {
        return Ok(0);
    }
    {
        let _g = inode_in.lock();
        address_space::write_and_wait_range(inode_in, pos_in, pos_in + len as i64 - 1)?;
    }
    let g = inode_out.lock();
    file_out.modified(&g)?;
    let end = pos_out + len as i64;
    address_space::write_and_wait_range(inode_out, pos_out, end - 1)?;
    // An extending copy: replies to requests sent meanwhile do not set
    // the old size back.
    let _unstable = (end > inode_out.size()).then(|| inode::SizeUnstable::new(inode_out));
    let inarg = CopyFileRangeIn {
        fh_in: h_in.fh,
        off_in: pos_in as u64,
        nodeid_out: inode_out.data().nodeid,
        fh_out: h_out.fh,
        off_out: pos_out as u64,
        len: len as u64,
        flags: u64::from(flags),
    };
    let nodeid = inode_in.data().nodeid;
    let r = s.call(
        Opcode::CopyFileRange,
        request_len(CopyFileRangeIn::SIZE, &[]),
        WriteOut::SIZE,
        |buf, unique| request::simple(buf, header(Opcode::CopyFileRange, unique, nodeid), &inarg),
    );
    // Whatever happened after the request went out, the host may have
    // copied: what the destination caches over the range is stale.
    let stale = |n: usize| {
        if n > 0 {
            let page = PAGE_SIZE as i64;
            let start = pos_out & !(page - 1);
            let end = (pos_out + n as i64 + page - 1) & !(page - 1);
            // As C: dropped, not merely invalidated (a folio dirtied again
            // through a mapping would otherwise write the old bytes back).
            address_space::truncate_pagecache_range(inode_out, start, end - 1);
        }
    };
    let copied = match write_reply_size(r) {
        Ok(n) if n <= len => n,
        Ok(n) => {
            warn_ratelimited!("COPY_FILE_RANGE reply refused: {} bytes of {}\n", n, len);
            stale(len);
            inode::changed_locally(&s, inode_out);
            return Err(EIO);
        }
        Err(e) if e == enosys() => {
            s.set_lacks(Optional::CopyFileRange);
            return Err(eopnotsupp);
        }
        Err(e) => {
            stale(len);
            inode::changed_locally(&s, inode_out);
            return Err(e);
        }
    };
    stale(copied);
    inode::write_update_attr(&s, inode_out, pos_out + copied as i64, copied);
    Ok(copied)
}

/// Adds handle `fh` to the handles writeback may use for `inode` (C's
/// `fuse_link_write_file`): at open with a writeback cache, at the first
/// writable shared mapping otherwise. [`release_handle`] takes it out.
fn link_writer(inode: &Inode<VirtioFsType>, fh: u64) -> Result {
    // Nothing is allocated under the lock: writeback takes it, and
    // reclaim may wait for writeback. If the list grew meanwhile (other
    // opens at once), again with room for it.
    let mut room = inode.data().writers.lock().len() + 4;
    loop {
        let mut fresh = KVec::with_capacity(room, GFP_KERNEL)?;
        let mut w = inode.data().writers.lock();
        if w.contains(&fh) {
            return Ok(());
        }
        if w.len() < fresh.capacity() {
            fresh.extend_from_slice(&w, GFP_KERNEL)?;
            fresh.push(fh, GFP_KERNEL)?;
            *w = fresh;
            return Ok(());
        }
        room = w.len() + 4;
    }
}

/// Whether open flags `flags` give write access (`FMODE_WRITE`: access
/// mode 3 opens for ioctls only).
fn writable(flags: u32) -> bool {
    let acc = flags & bindings::O_ACCMODE;
    acc == bindings::O_WRONLY || acc == bindings::O_RDWR
}

/// A handle just opened (OPEN or CREATE), linked for writeback if the
/// file has a writeback cache and the handle may write (C's
/// `fuse_finish_open`: writeback may use any writable handle); released
/// if that fails.
fn link_opened(
    s: &Session,
    inode: &Inode<VirtioFsType>,
    h: KBox<FileHandle>,
) -> Result<KBox<FileHandle>> {
    if inode::writeback_cached(s, inode) && writable(h.flags) {
        if let Err(e) = link_writer(inode, h.fh) {
            release_handle(inode, h);
            return Err(e);
        }
    }
    Ok(h)
}

/// Gives an open file's handle back: a last writeback if writeback used
/// it, then RELEASE, waited for.
pub(crate) fn release_handle(inode: &Inode<VirtioFsType>, mut h: KBox<FileHandle>) {
    let registered = inode.data().writers.lock().contains(&h.fh);
    let s = inode.super_block().data();
    let wb = inode::writeback_cached(&s, inode);
    if registered || wb {
        // As C's `fuse_release`: with a writeback cache the times the
        // writes set go too, whichever handle closes.
        let r = if wb {
            address_space::write_inode_now(inode, true)
        } else {
            address_space::write_and_wait(inode)
        };
        if r.is_err() {
            warn_ratelimited!("writeback before RELEASE of handle {} failed\n", h.fh);
        }
        let mut w = inode.data().writers.lock();
        if let Some(i) = w.iter().position(|&fh| fh == h.fh) {
            let last = w.len() - 1;
            w.swap(i, last);
            // SAFETY: `last < len`; the elements stay initialised and a
            // `u64` needs no drop.
            unsafe { w.set_len(last) };
        }
        drop(w);
        // A flusher may have picked this handle before it left the list:
        // its folio is under writeback, so this waits it out before
        // RELEASE; and with a writeback cache its `write_inode` (SETATTR
        // of the times through the handle) too, which a synchronous
        // `write_inode_now` waits out (`I_SYNC`).
        if wb && address_space::write_inode_now(inode, true).is_err() {
            warn_ratelimited!("writeback before RELEASE of handle {} failed\n", h.fh);
        }
        address_space::wait_writeback(inode);
    }
    // Readahead READs still out on the handle reach the host first.
    h.inflight.wait_idle();
    let ofd_owner = h.ofd_owner.load(core::sync::atomic::Ordering::Relaxed);
    if ofd_owner != 0 {
        // Past C, which leaves them on the host until the node is
        // forgotten: no FLUSH names an open file as the owner.
        unlock_all(&s, inode, h.fh, ofd_owner);
    }
    let flock_owner = h.flock_owner.load(core::sync::atomic::Ordering::Relaxed);
    if let (Some(req), true) = (h.release.as_mut(), flock_owner != 0) {
        if set_release_flock(req, flock_owner).is_err() {
            warn_ratelimited!("RELEASE of handle {} cannot drop its flock\n", h.fh);
        }
    }
    if let Some(req) = h.release.take() {
        if s.fs.conn.send_uninterruptible(req).is_err() {
            warn_ratelimited!("RELEASE of handle {} failed\n", h.fh);
        }
    }
}

/// `OFFSET_MAX`: a lock to the end of the file.
const OFFSET_MAX: i64 = i64::MAX;

/// C's `fuse_file_lock`. Past C, a host that answers `ENOSYS` before it
/// granted any lock is taken to keep none: this request and every later
/// one go to the VFS's table, as for a host that never offered
/// `FUSE_POSIX_LOCKS` (C fails each `fcntl` with `ENOSYS`). Nothing is
/// held on such a host, so no lock is lost; after a grant the caller gets
/// the `ENOSYS`, as from C.
fn posix_lock(file: &File, h: &FileHandle, cmd: i32, fl: &FileLock) -> Result<i32> {
    // SAFETY: A file operation of ours, on an open file of ours.
    let inode = unsafe { file_inode(file) };
    let s = inode.super_block().data();
    if cmd == lock_cmd::CANCELLK {
        return Ok(0);
    }
    if s.posix_locks() {
        let r = if cmd == lock_cmd::GETLK {
            // SAFETY: The VFS lent `fl` for this GETLK.
            unsafe { getlk(&s, inode, h, fl) }
        } else {
            setlk(&s, inode, h, fl, false)
        };
        match r {
            Err(e) if e == enosys() && host_lacks_locks(&s, Optional::PosixLocks) => {}
            Err(e) => return Err(e),
            Ok(()) if cmd == lock_cmd::GETLK || fl.lock_type() == lock_type::UNLCK => return Ok(0),
            Ok(()) if !s.lock_granted(Optional::PosixLocks) => {
                // The guest keeps the locks now: this one too.
                give_back(&s, inode, h, fl, false);
            }
            Ok(()) => {
                if fl.flags() & file::lock_flags::OFDLCK != 0 {
                    // Dropped before RELEASE (`release_handle`).
                    h.ofd_owner.store(
                        s.lock_owner(fl.owner()),
                        core::sync::atomic::Ordering::Relaxed,
                    );
                }
                return Ok(0);
            }
        }
    }
    if cmd == lock_cmd::GETLK {
        // SAFETY: The VFS lent `fl` for this GETLK, the last use of it.
        unsafe { fl.posix_test_lock() };
        Ok(0)
    } else {
        // `FILE_LOCK_DEFERRED` makes the VFS wait and ask again.
        fl.posix_lock_file()
    }
}

/// C's `fuse_file_flock`: with the host keeping them, a `flock` lock is a
/// whole-file SETLK(W) with `FUSE_LK_FLOCK`, owned by the open file; its
/// RELEASE then drops what is left (`FUSE_RELEASE_FLOCK_UNLOCK`). As
/// [`posix_lock`], `ENOSYS` sends this and later ones to the VFS.
fn flock_lock(file: &File, h: &FileHandle, fl: &FileLock) -> Result {
    // SAFETY: A file operation of ours, on an open file of ours.
    let inode = unsafe { file_inode(file) };
    let s = inode.super_block().data();
    if s.flock_locks() {
        match setlk(&s, inode, h, fl, true) {
            Err(e) if e == enosys() && host_lacks_locks(&s, Optional::FlockLocks) => {}
            Err(e) => return Err(e),
            Ok(()) if fl.lock_type() == lock_type::UNLCK => return Ok(()),
            Ok(()) if !s.lock_granted(Optional::FlockLocks) => give_back(&s, inode, h, fl, true),
            Ok(()) => {
                // As C's `ff->flock`: set once the host took a lock.
                h.flock_owner.store(
                    s.lock_owner(fl.owner()),
                    core::sync::atomic::Ordering::Relaxed,
                );
                return Ok(());
            }
        }
    }
    fl.lock_file_wait()
}

/// The host, which negotiated remote locks of kind `op`, answered a lock
/// request `ENOSYS`: whether the VFS keeps them from now on (only if the
/// host never granted one, [`Session::keep_locks_locally`]).
fn host_lacks_locks(s: &Session, op: Optional) -> bool {
    let first = !s.lacks(op);
    if !s.keep_locks_locally(op) {
        warn_ratelimited!("the host answered a lock request ENOSYS after granting locks\n");
        return false;
    }
    if first {
        warn_ratelimited!("the host answered a lock request ENOSYS: locks are kept locally\n");
    }
    true
}

/// Unlocks on the host the range of `fl` its owner was just granted
/// there, after the guest took to keeping such locks (a grant that raced
/// an `ENOSYS`): waited for whatever signal comes, so that the lock taken
/// locally next is the only one.
fn give_back(s: &Session, inode: &Inode<VirtioFsType>, h: &FileHandle, fl: &FileLock, flock: bool) {
    let mut inarg = lk_in(s, h, fl, 0, flock);
    inarg.lk.typ = u32::from(lock_type::UNLCK);
    if send_unlock(s, inode, &inarg).is_err() {
        warn_ratelimited!("giving a lock back to the host of handle {} failed\n", h.fh);
    }
}

/// Sends the unlock `inarg` (a SETLK of `F_UNLCK`), waited for whatever
/// signal comes: the lock must be gone when the caller goes on.
fn send_unlock(s: &Session, inode: &Inode<VirtioFsType>, inarg: &LkIn) -> Result {
    let nodeid = inode.data().nodeid;
    s.call_waited(
        Opcode::Setlk,
        request_len(LkIn::SIZE, &[]),
        0,
        |buf, unique| request::simple(buf, header(Opcode::Setlk, unique, nodeid), inarg),
    )
    .map(drop)
}

/// The arguments of a lock request for `fl` (C's `fuse_lk_fill`).
fn lk_in(s: &Session, h: &FileHandle, fl: &FileLock, pid: i32, flock: bool) -> LkIn {
    LkIn {
        fh: h.fh,
        owner: s.lock_owner(fl.owner()),
        lk: FileLockWire {
            // The VFS hands over `0 <= start <= end <= OFFSET_MAX`.
            start: fl.start() as u64,
            end: fl.end() as u64,
            typ: u32::from(fl.lock_type()),
            pid: pid as u32,
        },
        lk_flags: if flock { FUSE_LK_FLOCK } else { 0 },
        padding: 0,
    }
}

/// C's `fuse_setlk`: SETLKW for a caller that waits, SETLK otherwise; the
/// removal at close is left to FLUSH, which names the lock owner. A signal
/// interrupts the wait (FUSE_INTERRUPT), and the call restarts if the
/// handler allows it; either way the host's answer is waited for, so the
/// lock is never left taken behind the caller's back.
fn setlk(
    s: &Session,
    inode: &Inode<VirtioFsType>,
    h: &FileHandle,
    fl: &FileLock,
    flock: bool,
) -> Result {
    if fl.wants_grant() {
        // As C: lock managers (lockd) need asynchronous grants.
        return Err(crate::errno::enolck());
    }
    // The VFS asks this at close only of an owner with locks in its own
    // table, which has none while the host keeps them; were it asked, the
    // FLUSH of the close already named the owner (C 6.12 has no such
    // check).
    let close_posix = file::lock_flags::POSIX | file::lock_flags::CLOSE;
    if fl.flags() & close_posix == close_posix {
        return Ok(());
    }
    let op = if fl.flags() & file::lock_flags::SLEEP != 0 {
        Opcode::Setlkw
    } else {
        Opcode::Setlk
    };
    let pid = if fl.lock_type() != lock_type::UNLCK {
        file::current_tgid()
    } else {
        0
    };
    let inarg = lk_in(s, h, fl, pid, flock);
    let nodeid = inode.data().nodeid;
    s.call_interrupted_waited(op, request_len(LkIn::SIZE, &[]), 0, |buf, unique| {
        request::simple(buf, header(op, unique, nodeid), &inarg)
    })?;
    Ok(())
}

/// Drops every POSIX lock `owner` holds on the host through handle `fh`
/// (SETLK of `F_UNLCK` over the whole file), waited for whatever signal
/// comes: at release, whose caller may be dying.
fn unlock_all(s: &Session, inode: &Inode<VirtioFsType>, fh: u64, owner: u64) {
    let inarg = LkIn {
        fh,
        owner,
        lk: FileLockWire {
            start: 0,
            end: OFFSET_MAX as u64,
            typ: u32::from(lock_type::UNLCK),
            pid: 0,
        },
        lk_flags: 0,
        padding: 0,
    };
    if send_unlock(s, inode, &inarg).is_err() {
        warn_ratelimited!("dropping the OFD locks of handle {} failed\n", fh);
    }
}

/// C's `fuse_getlk` and `convert_fuse_file_lock`: the conflicting lock the
/// host reports, checked (a range past `OFFSET_MAX` or backwards, or an
/// unknown type, fails with `EIO`), its holder a guest pid or 0.
///
/// # Safety
///
/// `fl` was lent for a [`lock_cmd::GETLK`] call (as
/// [`FileLock::set_conflict`]).
unsafe fn getlk(s: &Session, inode: &Inode<VirtioFsType>, h: &FileHandle, fl: &FileLock) -> Result {
    let inarg = lk_in(s, h, fl, 0, false);
    let nodeid = inode.data().nodeid;
    let reply = s.call(
        Opcode::Getlk,
        request_len(LkIn::SIZE, &[]),
        LkOut::SIZE,
        |buf, unique| request::simple(buf, header(Opcode::Getlk, unique, nodeid), &inarg),
    )?;
    let out = LkOut::decode(reply.payload()).map_err(|_| EIO)?.lk;
    let ty = u8::try_from(out.typ).unwrap_or(u8::MAX);
    match ty {
        lock_type::UNLCK => {
            // SAFETY: A GETLK request (the caller).
            unsafe { fl.set_conflict(ty, 0, 0, 0) };
            Ok(())
        }
        lock_type::RDLCK | lock_type::WRLCK
            if out.start <= OFFSET_MAX as u64
                && out.end <= OFFSET_MAX as u64
                && out.start <= out.end =>
        {
            let pid = file::lock_pid(i32::try_from(out.pid).unwrap_or(0));
            // SAFETY: As above.
            unsafe { fl.set_conflict(ty, out.start as i64, out.end as i64, pid) };
            Ok(())
        }
        _ => {
            warn_ratelimited!(
                "GETLK reply refused: type {} range {}..={}\n",
                out.typ,
                out.start,
                out.end
            );
            Err(EIO)
        }
    }
}

/// CREATE of regular file `name` in `dir` (`mode` masked, `umask` sent
/// along), opened with `flags` (C's `fuse_create_open`): the entry and the
/// open handle; `None` for a server without CREATE (remembered).
pub(crate) fn create_open(
    dir: &Inode<VirtioFsType>,
    name: &[u8],
    mode: u32,
    flags: u32,
    umask: u32,
) -> Result<Option<(Entry<VirtioFsType>, KBox<FileHandle>)>> {
    let s = dir.super_block().data();
    if s.lacks(Optional::Create) {
        return Ok(None);
    }
    match made_open(dir, Some(name), mode, flags, umask) {
        Err(e) if e == enosys() => {
            s.set_lacks(Optional::Create);
            Ok(None)
        }
        r => r.map(Some),
    }
}

/// TMPFILE (C's `fuse_tmpfile`): a regular file with no name in `dir`,
/// made and opened as [`create_open`] does; `EOPNOTSUPP` for a server
/// without TMPFILE (remembered), as a local file system without
/// `O_TMPFILE`.
pub(crate) fn tmpfile_open(
    dir: &Inode<VirtioFsType>,
    mode: u32,
    flags: u32,
    umask: u32,
) -> Result<(Entry<VirtioFsType>, KBox<FileHandle>)> {
    let s = dir.super_block().data();
    if s.lacks(Optional::Tmpfile) {
        return Err(eopnotsupp());
    }
    match made_open(dir, None, mode, flags, umask) {
        Err(e) if e == enosys() => {
            s.set_lacks(Optional::Tmpfile);
            Err(eopnotsupp())
        }
        r => r,
    }
}

/// CREATE of `name` in `dir`, or TMPFILE if `name` is `None` (sent with
/// the name "/", as C's), opened with `flags`: the entry and the open
/// handle. `ENOSYS` is returned for the callers to remember.
fn made_open(
    dir: &Inode<VirtioFsType>,
    name: Option<&[u8]>,
    mode: u32,
    flags: u32,
    umask: u32,
) -> Result<(Entry<VirtioFsType>, KBox<FileHandle>)> {
    let sb = dir.super_block();
    let s = sb.data();
    let op = if name.is_some() {
        Opcode::Create
    } else {
        Opcode::Tmpfile
    };
    let flags = flags & !bindings::O_NOCTTY;
    let nodeid = dir.data().nodeid;
    // As C: an existing file truncated by CREATE loses its set-id bits on
    // the host unless the task may keep them.
    let kill = s.killpriv_v2()
        && flags & bindings::O_TRUNC != 0
        && flags & bindings::O_EXCL == 0
        && !kernel::fs::capable_fsetid();
    let inarg = CreateIn {
        flags,
        mode,
        umask,
        open_flags: if kill { FUSE_OPEN_KILL_SUIDGID } else { 0 },
    };
    // If a signal abandons it and the host answers anyway, both the
    // lookup and the handle CREATE took are given back.
    let orphan = Orphan::new(
        s.fs.conn.hiprio()?.clone(),
        prepare_forget(&s)?,
        forget_created,
    )
    .then(Orphan::new(
        s.fs.conn.request_queue()?.clone(),
        prepare_release(&s, Opcode::Release, 0, flags)?,
        release_created,
    ))?;
    // Everything is allocated before CREATE, so nothing can fail between
    // the host opening a handle and the guest owning it.
    let mut h = KBox::new(
        FileHandle {
            fh: 0,
            open_flags: 0,
            flags,
            release: Some(prepare_release(&s, Opcode::Release, 0, flags)?),
            inflight: Inflight::new()?,
            flock_owner: core::sync::atomic::AtomicU64::new(0),
            ofd_owner: core::sync::atomic::AtomicU64::new(0),
        },
        GFP_KERNEL,
    )?;
    let reply = s.call_with(
        op,
        request_len(CreateIn::SIZE, &[name.map_or(1, <[u8]>::len)]),
        EntryOut::SIZE + OpenOut::SIZE,
        |buf, unique| {
            let b = RequestBuilder::new(buf, header(op, unique, nodeid))?.arg(&inarg)?;
            match name {
                Some(name) => b.name(name)?,
                None => b.bytes(b"/\0")?,
            }
            .finish()
        },
        Some(orphan),
    )?;
    let (e, out) = reply::decode_create(reply.payload()).map_err(|e| {
        warn_ratelimited!("{:?} reply refused: {:?}\n", op, e);
        EIO
    })?;
    let forget = reply.take_orphan();
    inode::invalidate_attrs(dir);
    h.fh = out.fh;
    h.open_flags = out.open_flags;
    if let Some(r) = h.release.as_mut() {
        fill_release(r, Opcode::Release, e.nodeid, out.fh, flags)?;
    }
    match inode::iget(
        sb,
        &s,
        e.nodeid,
        e.generation,
        &e.attr,
        expiry(e.attr_valid),
        1,
        0,
    ) {
        Ok(i) => {
            let h = link_opened(&s, &i, h)?;
            // As C's `fuse_create_open`: a node the guest already caches
            // (a host may answer with one) starts from a dropped page
            // cache unless the host keeps it.
            if out.open_flags & fopen::KEEP_CACHE == 0 {
                let _ = address_space::invalidate(&i);
            }
            Ok((
                Entry {
                    inode: Some(i),
                    valid_until: expiry(e.entry_valid),
                },
                h,
            ))
        }
        Err(err) => {
            // Give back both what CREATE took: the handle, the lookup.
            if let Some(req) = h.release.take() {
                let _ = s.fs.conn.send_uninterruptible(req);
            }
            s.forget_one(forget, e.nodeid);
            Err(err)
        }
    }
}

/// FSYNC or FSYNCDIR (`op`) of handle `fh`; `ENOSYS` is remembered and
/// taken as success, as C.
pub(crate) fn fsync_common(
    s: &Session,
    inode: &Inode<VirtioFsType>,
    op: Opcode,
    fh: u64,
    datasync: bool,
) -> Result {
    let info = inode.data();
    if info.bad.load(core::sync::atomic::Ordering::Acquire) {
        return Err(EIO);
    }
    let which = if op == Opcode::Fsyncdir {
        Optional::Fsyncdir
    } else {
        Optional::Fsync
    };
    if s.lacks(which) {
        return Ok(());
    }
    let inarg = FsyncIn {
        fh,
        fsync_flags: u32::from(datasync),
        padding: 0,
    };
    let nodeid = info.nodeid;
    match s.call(op, request_len(FsyncIn::SIZE, &[]), 0, |buf, unique| {
        request::simple(buf, header(op, unique, nodeid), &inarg)
    }) {
        Ok(_) => Ok(()),
        Err(e) if e == enosys() => {
            s.set_lacks(which);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `EIO` for an inode whose host node changed under it (C's
/// `fuse_is_bad`).
fn check_bad(inode: &Inode<VirtioFsType>) -> Result {
    if inode.data().bad.load(core::sync::atomic::Ordering::Acquire) {
        Err(EIO)
    } else {
        Ok(())
    }
}

/// The inode of an open file of ours, detached from the borrow of the
/// file (so a `Kiocb` can still be used mutably).
///
/// # Safety
///
/// `file` must be an open file of ours (opened through [`RegFile`],
/// [`DaxFile`] or `DirFile`), and the result must not be used after the file operation
/// the caller runs in returns.
pub(crate) unsafe fn file_inode<'a>(file: &File) -> &'a Inode<VirtioFsType> {
    // SAFETY: The caller passes an open file of an inode of ours
    // (`f_inode`, set up), which the file holds until its release, after
    // every file operation on it has returned.
    unsafe { file.inode::<VirtioFsType>() }
}

/// Builds a READ of `size` bytes at `pos` through handle `fh`; with
/// `lock_owner` (direct I/O), `FUSE_READ_LOCKOWNER`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_read(
    buf: &mut [u8],
    unique: u64,
    nodeid: u64,
    fh: u64,
    pos: u64,
    size: u32,
    flags: u32,
    lock_owner: Option<u64>,
) -> core::result::Result<usize, request::BuildError> {
    request::read(
        buf,
        header(Opcode::Read, unique, nodeid),
        fh,
        pos,
        size,
        flags,
        lock_owner,
    )
}

/// A WRITE of `inarg` whose `len` bytes of data follow in pages (the
/// segments the transport adds after the arguments).
pub(crate) fn build_write_pages(
    buf: &mut [u8],
    unique: u64,
    nodeid: u64,
    inarg: &WriteIn,
    len: usize,
) -> core::result::Result<usize, request::BuildError> {
    RequestBuilder::new(buf, header(Opcode::Write, unique, nodeid))?
        .arg(inarg)?
        .external(len)?
        .finish()
}

/// The bytes a WRITE's reply says the host wrote (the reply's size was
/// validated as a `fuse_write_out`; the callers check it against what was
/// sent).
fn write_reply_size(r: Result<Reply>) -> Result<usize> {
    let reply = r?;
    let out = WriteOut::decode(reply.payload()).map_err(|_| EIO)?;
    Ok(out.size as usize)
}

/// A folio of a write being sent: locked while its contents are not
/// uptodate (a reader must not see them), unlocked otherwise (C's
/// `fuse_fill_write_pages`: only the last folio of a chunk may stay
/// locked, so faulting the source in never waits on one of ours).
enum Held {
    Locked(WriteFolio),
    Unlocked(FolioRef),
}

impl Held {
    fn clear_uptodate(&self) {
        match self {
            Held::Locked(f) => f.locked().clear_uptodate(),
            Held::Unlocked(f) => f.clear_uptodate(),
        }
    }
}

/// C's `fuse_perform_write`: chunks of up to `max_write` bytes are copied
/// from `from` into page cache folios (full folios become uptodate), sent
/// as one WRITE whose data are those folios, and the size moves with the
/// host's answer. A short or failed WRITE leaves the folios it did not
/// cover not uptodate (read again from the host) and the source reverted.
/// The caller holds the inode lock.
fn perform_write(
    kiocb: &mut Kiocb,
    h: &FileHandle,
    inode: &Inode<VirtioFsType>,
    from: &mut IovIterSource<'_>,
) -> Result<usize> {
    let s = inode.super_block().data();
    let nodeid = inode.data().nodeid;
    let max = s.max_io(true).max(PAGE_SIZE);
    let npages = max / PAGE_SIZE + 1;
    let mut pos = kiocb.pos();
    let mut written = 0usize;
    let mut err = None;
    let mut misses = 0u32;
    let _unstable = inode::SizeUnstable::new(inode);
    while !from.is_empty() {
        // Room for the pages this chunk spans, not for `max_pages` (as C's
        // `fuse_wr_pages`): a small write allocates little.
        let want = (pos as usize % PAGE_SIZE + from.len().min(max))
            .div_ceil(PAGE_SIZE)
            .min(npages);
        let mut held: KVec<Held> = KVec::with_capacity(want, GFP_KERNEL)?;
        let mut segs = Segments::with_capacity(want)?;
        let mut copied = 0usize;
        while copied < max && !from.is_empty() {
            let p = pos as usize + copied;
            let off = p % PAGE_SIZE;
            let n = (PAGE_SIZE - off).min(from.len()).min(max - copied);
            // Fault the source in before locking a folio (it may be a
            // mapping of this very file).
            if from.fault_in_readable(n) == n {
                if copied == 0 && written == 0 {
                    err = Some(EFAULT);
                }
                break;
            }
            let folio = match address_space::grab_write_folio(inode, (p / PAGE_SIZE) as u64) {
                Ok(f) => f,
                Err(e) => {
                    if copied == 0 {
                        err = Some(e);
                    }
                    break;
                }
            };
            if folio.locked().size() != PAGE_SIZE {
                // The mapping never asks for large folios.
                if copied == 0 && written == 0 {
                    err = Some(EIO);
                }
                break;
            }
            // SAFETY: The folio is locked and referenced by us.
            let c = unsafe { from.copy_to_page_atomic(folio.locked().first_page(), off, n) };
            folio.locked().flush_dcache();
            if c == 0 {
                // The source went away again: retry from faulting it in,
                // once; then stop (as `generic_perform_write` would
                // shorten the copy).
                drop(folio);
                misses += 1;
                if misses > 1 {
                    if copied == 0 && written == 0 {
                        err = Some(EFAULT);
                    }
                    break;
                }
                continue;
            }
            misses = 0;
            if c == PAGE_SIZE {
                folio.locked().mark_uptodate();
            }
            segs.push(Segment::Page(
                folio.locked().first_page(),
                c as u32,
                off as u32,
            ))?;
            copied += c;
            let partial = !folio.locked().test_uptodate();
            if partial {
                held.push(Held::Locked(folio), GFP_KERNEL)?;
                break;
            }
            held.push(Held::Unlocked(folio.unlock()), GFP_KERNEL)?;
            if off + c < PAGE_SIZE {
                break;
            }
        }
        if copied == 0 {
            break;
        }
        let inarg = WriteIn {
            fh: h.fh,
            offset: pos as u64,
            size: copied as u32,
            write_flags: s.user_write_flags(),
            lock_owner: 0,
            flags: h.flags,
            padding: 0,
        };
        // SAFETY: The folios are referenced by `held` until after the call
        // returns; the host only reads them.
        let r = unsafe {
            s.call_pages(
                Opcode::Write,
                request_len(WriteIn::SIZE, &[]),
                WriteOut::SIZE,
                copied,
                |buf, unique| build_write_pages(buf, unique, nodeid, &inarg, copied),
                &segs,
                &[],
            )
        };
        let w = match write_reply_size(r) {
            Ok(w) if w <= copied && (w > 0 || written > 0) => w,
            Ok(w) => {
                // More than asked, or nothing at all (C: EIO, so a caller
                // never loops on a write that makes no progress).
                warn_ratelimited!("WRITE reply claims {} bytes of {}\n", w, copied);
                for f in held.iter() {
                    f.clear_uptodate();
                }
                // SAFETY: `copied` bytes were taken from `from` above.
                unsafe { from.revert(copied) };
                err = Some(EIO);
                break;
            }
            Err(e) => {
                for f in held.iter() {
                    f.clear_uptodate();
                }
                // SAFETY: As above.
                unsafe { from.revert(copied) };
                err = Some(e);
                break;
            }
        };
        if w < copied {
            // What the host did not write is not in the file: the folios
            // past it must be read again.
            let first = pos as usize % PAGE_SIZE;
            let mut at = 0usize;
            for (i, f) in held.iter().enumerate() {
                let start = if i == 0 { first } else { 0 };
                let len = PAGE_SIZE - start;
                if at + len > w {
                    f.clear_uptodate();
                }
                at += len;
            }
            // SAFETY: As above: `copied - w` of the bytes taken go back.
            unsafe { from.revert(copied - w) };
        }
        pos += w as i64;
        written += w;
        inode::write_update_attr(&s, inode, pos, w);
        if w < copied {
            break;
        }
    }
    kiocb.set_pos(pos);
    match err {
        Some(e) if written == 0 => Err(e),
        _ => Ok(written),
    }
}

/// Direct reads (`FOPEN_DIRECT_IO` handles, `O_DIRECT`): READs of up to
/// `max_pages` pages straight to the caller.
fn direct_read(
    kiocb: &mut Kiocb,
    h: &FileHandle,
    inode: &Inode<VirtioFsType>,
    to: &mut IovIterDest<'_>,
) -> Result<usize> {
    let s = inode.super_block().data();
    let nodeid = inode.data().nodeid;
    // As C's `fuse_direct_io`: the caller's lock owner goes along
    // (FUSE_READ_LOCKOWNER), for a host that checks I/O against locks.
    let owner = s.io_lock_owner();
    let max = s.max_io(false);
    let mut pos = kiocb.pos();
    let mut done = 0usize;
    // Dirty folios (a shared mapping of a cached handle) reach the host
    // first, so the read sees them (C's `fuse_direct_io`).
    let last = pos.saturating_add(to.len() as i64).saturating_sub(1);
    address_space::write_and_wait_range(inode, pos, last)?;
    while !to.is_empty() {
        if to.is_user_backed() {
            // The host writes the caller's pages in place (C's
            // `fuse_get_user_pages`): no copy, and the alignment the
            // caller chose is the one the host sees.
            let pages = match to.get_pages(max, (max / PAGE_SIZE).max(1)) {
                Ok(p) if !p.is_empty() => p,
                Ok(_) => break,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            let n = pages.len();
            let mut segs = Segments::with_capacity(pages.segments().count())?;
            for (p, off, len) in pages.segments() {
                segs.push(Segment::Page(p, len as u32, off as u32))?;
            }
            // SAFETY: The pages are referenced by `pages` until after the
            // call returns, and nobody reads them meanwhile (they are the
            // caller's read buffer).
            let r = unsafe {
                s.call_pages(
                    Opcode::Read,
                    request_len(ReadIn::SIZE, &[]),
                    0,
                    n,
                    |buf, unique| {
                        build_read(
                            buf, unique, nodeid, h.fh, pos as u64, n as u32, h.flags, owner,
                        )
                    },
                    &[],
                    &segs,
                )
            };
            let got = match r {
                Ok(reply) => reply.len().min(n),
                Err(e) => {
                    // SAFETY: `get_pages` advanced `to` by `n`.
                    unsafe { to.revert(n) };
                    if done == 0 {
                        return Err(e);
                    }
                    break;
                }
            };
            if got < n {
                // SAFETY: As above.
                unsafe { to.revert(n - got) };
            }
            pos += got as i64;
            done += got;
            if got < n {
                break;
            }
            continue;
        }
        let n = to.len().min(max);
        let r = s.call(
            Opcode::Read,
            request_len(ReadIn::SIZE, &[]),
            n,
            |buf, unique| {
                build_read(
                    buf, unique, nodeid, h.fh, pos as u64, n as u32, h.flags, owner,
                )
            },
        );
        let reply = match r {
            Ok(r) => r,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let data = reply.payload();
        let c = to.copy_to_iter(data);
        pos += c as i64;
        done += c;
        if c < data.len() {
            if done == 0 {
                return Err(EFAULT);
            }
            break;
        }
        if data.len() < n {
            break;
        }
    }
    kiocb.set_pos(pos);
    Ok(done)
}

/// Direct writes: WRITEs of up to `max_write` bytes from the caller, the
/// page cache over the range dropped after. The caller holds the inode
/// lock.
fn direct_write(
    kiocb: &mut Kiocb,
    h: &FileHandle,
    inode: &Inode<VirtioFsType>,
    from: &mut IovIterSource<'_>,
) -> Result<usize> {
    let s = inode.super_block().data();
    let nodeid = inode.data().nodeid;
    // As C's `fuse_direct_io`: the caller's lock owner goes along
    // (FUSE_WRITE_LOCKOWNER).
    let owner = s.io_lock_owner();
    let write_flags = s.direct_write_flags() | owner.map_or(0, |_| FUSE_WRITE_LOCKOWNER);
    let lock_owner = owner.unwrap_or(0);
    let max = s.max_io(true);
    let start = kiocb.pos();
    let mut pos = start;
    let mut done = 0usize;
    let mut err = None;
    // Dirty folios over the range go first, or their writeback would land
    // after (and over) this write.
    let last = start.saturating_add(from.len() as i64).saturating_sub(1);
    address_space::write_and_wait_range(inode, start, last)?;
    // A bounce buffer only for kernel memory (a kvec, say).
    let bounce = if from.is_user_backed() {
        0
    } else {
        from.len().min(max)
    };
    let mut buf = KVec::from_elem(0u8, bounce, GFP_KERNEL)?;
    let _unstable = inode::SizeUnstable::new(inode);
    while !from.is_empty() {
        if from.is_user_backed() {
            // The host reads the caller's pages in place.
            let pages = match from.get_pages(max, (max / PAGE_SIZE).max(1)) {
                Ok(p) if !p.is_empty() => p,
                Ok(_) => break,
                Err(e) => {
                    if done == 0 {
                        err = Some(e);
                    }
                    break;
                }
            };
            let c = pages.len();
            let mut segs = Segments::with_capacity(pages.segments().count())?;
            for (p, off, len) in pages.segments() {
                segs.push(Segment::Page(p, len as u32, off as u32))?;
            }
            let inarg = WriteIn {
                fh: h.fh,
                offset: pos as u64,
                size: c as u32,
                write_flags,
                lock_owner,
                flags: h.flags,
                padding: 0,
            };
            // SAFETY: The pages are referenced by `pages` until after the
            // call returns; the host only reads them.
            let r = unsafe {
                s.call_pages(
                    Opcode::Write,
                    request_len(WriteIn::SIZE, &[]),
                    WriteOut::SIZE,
                    c,
                    |b, unique| build_write_pages(b, unique, nodeid, &inarg, c),
                    &segs,
                    &[],
                )
            };
            let w = match write_reply_size(r) {
                Ok(w) if w <= c && (w > 0 || done > 0) => w,
                Ok(_) => {
                    // SAFETY: `get_pages` advanced `from` by `c`.
                    unsafe { from.revert(c) };
                    if done == 0 {
                        err = Some(EIO);
                    }
                    break;
                }
                Err(e) => {
                    // SAFETY: As above.
                    unsafe { from.revert(c) };
                    if done == 0 {
                        err = Some(e);
                    }
                    break;
                }
            };
            if w < c {
                // SAFETY: As above.
                unsafe { from.revert(c - w) };
            }
            pos += w as i64;
            done += w;
            if w < c {
                break;
            }
            continue;
        }
        let n = from.len().min(buf.len());
        let c = from.copy_from_iter(&mut buf[..n]);
        if c == 0 {
            if done == 0 {
                err = Some(EFAULT);
            }
            break;
        }
        let data = &buf[..c];
        let inarg = WriteIn {
            fh: h.fh,
            offset: pos as u64,
            size: c as u32,
            write_flags,
            lock_owner,
            flags: h.flags,
            padding: 0,
        };
        let r = s.call(
            Opcode::Write,
            request_len(WriteIn::SIZE + c, &[]),
            WriteOut::SIZE,
            |b, unique| {
                RequestBuilder::new(b, header(Opcode::Write, unique, nodeid))?
                    .arg(&inarg)?
                    .bytes(data)?
                    .finish()
            },
        );
        let w = match write_reply_size(r) {
            Ok(w) if w <= c && (w > 0 || done > 0) => w,
            Ok(_) | Err(_) if done > 0 => {
                // SAFETY: `c` bytes were taken from `from` above.
                unsafe { from.revert(c) };
                break;
            }
            Ok(_) => {
                // SAFETY: As above.
                unsafe { from.revert(c) };
                err = Some(EIO);
                break;
            }
            Err(e) => {
                // SAFETY: As above.
                unsafe { from.revert(c) };
                err = Some(e);
                break;
            }
        };
        if w < c {
            // SAFETY: As above.
            unsafe { from.revert(c - w) };
        }
        pos += w as i64;
        done += w;
        if w < c {
            break;
        }
    }
    if done > 0 {
        inode::write_update_attr(&s, inode, pos, done);
        // A DAX file has no page cache to drop (and its DAX entries are
        // only dropped under the invalidate lock).
        if !inode.is_dax() {
            let _ = address_space::invalidate_range(inode, start, pos - 1);
        }
    }
    kiocb.set_pos(pos);
    match err {
        Some(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

/// The page cache operations of regular files.
pub(crate) struct FileAops;

/// Sends one background READ through handle `h` for `batch` (locked,
/// referenced, contiguous folios); the request's end fills and unlocks
/// them. On failure they end failed (dropped) and nothing is sent.
fn read_ahead(
    s: &Session,
    h: &FileHandle,
    inode: &Inode<VirtioFsType>,
    batch: KVec<ReadaheadFolio>,
) -> Result {
    let nodeid = inode.data().nodeid;
    let attr_ver = s.attr_version();
    // Held until the READ ends, for the size update of a short read (the
    // open file holds the inode too: its RELEASE waits for this READ).
    let inode: ARef<Inode<VirtioFsType>> = inode.into();
    let pos = batch.first().ok_or(EINVAL)?.locked().pos();
    let mut segs = Segments::with_capacity(batch.len())?;
    let mut size = 0usize;
    for f in batch.iter() {
        let l = f.locked();
        segs.push(Segment::Page(l.first_page(), l.size() as u32, 0))?;
        size += l.size();
    }
    let (fh, flags) = (h.fh, h.flags);
    // SAFETY: The pages are the folios of `batch`, locked and referenced;
    // `batch` moves into the request's `OnEnd` below, which keeps them
    // until the request ends (or is dropped unsent), and nobody reads a
    // locked folio that is not uptodate.
    let mut req = unsafe {
        s.request_pages(
            Opcode::Read,
            request_len(ReadIn::SIZE, &[]),
            0,
            size,
            |buf, unique| {
                build_read(
                    buf,
                    unique,
                    nodeid,
                    fh,
                    pos as u64,
                    size as u32,
                    flags,
                    None,
                )
            },
            &[],
            &segs,
        )
    }?;
    let busy = InflightRef::new(&h.inflight);
    req.set_on_end(OnEnd::new(move |ended: Ended, _inline: &[u8]| {
        // Dropped last: RELEASE waits until the folios are ended and
        // the inode reference is given back, so the open file still
        // holds the inode then and this is never its last reference.
        let _busy = busy;
        let inode = inode;
        let Ok(len) = ended else {
            // Dropping a folio ends it failed: read on demand.
            drop(batch);
            return;
        };
        // What the host did not send (end of file, a short read) is
        // zeroed, and the file ends there, as C's `fuse_short_read`.
        let mut got = (len as usize).min(size);
        if got < size {
            let sb = inode.super_block();
            inode::read_update_size(&sb.data(), &inode, attr_ver, pos + got as i64);
        }
        for f in batch.iter() {
            let l = f.locked();
            let n = got.min(l.size());
            l.zero_range(n, l.size());
            got -= n;
        }
        for f in batch {
            f.end(true);
        }
    })?);
    s.fs.conn.send_background(req)
}

/// Reads `folios` (locked, referenced, contiguous from `pos`) with one
/// READ through the handle of `file`; what the host did not send (end of
/// file, a hole it reports short) is zeroed, as C's `fuse_short_read`.
fn read_folios(
    file: &File,
    inode: &Inode<VirtioFsType>,
    pos: i64,
    folios: &[&LockedFolio<'_>],
) -> Result {
    // SAFETY: Files of regular inodes of ours are opened through
    // `RegFile` (their `i_fop`); the page cache holds the file for the
    // read.
    let h = unsafe { file.data::<RegFile>() };
    let s = inode.super_block().data();
    let nodeid = inode.data().nodeid;
    let attr_ver = s.attr_version();
    let mut segs = Segments::with_capacity(folios.len())?;
    let mut size = 0usize;
    for f in folios {
        segs.push(Segment::Page(f.first_page(), f.size() as u32, 0))?;
        size += f.size();
    }
    // SAFETY: The folios are locked and referenced by the caller until
    // this returns, and nobody reads a locked, not uptodate folio.
    let reply = unsafe {
        s.call_pages(
            Opcode::Read,
            request_len(ReadIn::SIZE, &[]),
            0,
            size,
            |buf, unique| {
                build_read(
                    buf,
                    unique,
                    nodeid,
                    h.fh,
                    pos as u64,
                    size as u32,
                    h.flags,
                    None,
                )
            },
            &[],
            &segs,
        )
    }?;
    let mut got = reply.len().min(size);
    if got < size {
        inode::read_update_size(&s, inode, attr_ver, pos + got as i64);
    }
    for f in folios {
        let n = got.min(f.size());
        f.zero_range(n, f.size());
        got -= n;
    }
    Ok(())
}

#[vtable]
impl address_space::Operations for FileAops {
    type FileSystem = VirtioFsType;

    /// One WRITE of a run of contiguous dirty folios (up to `max_pages`,
    /// their bytes below the size), through a handle of a file with a
    /// writable shared mapping (C's `fuse_writepages` gathers pages the
    /// same way; without the writeback cache and, here, synchronous, with
    /// no temporary copy: the folios are under writeback meanwhile, and
    /// the mapping has stable writes, so nothing changes them).
    fn write_folios(inode: &Inode<VirtioFsType>, run: &FolioRun<'_>) -> Result {
        // A truncation in progress holds the gate from its SETATTR until
        // the size is set: no WRITE past its new end goes out meanwhile.
        let _gate = inode.data().wb_gate.lock();
        if inode.data().bad.load(core::sync::atomic::Ordering::Acquire) {
            return Err(EIO);
        }
        let pos = run.pos();
        let size = inode.size();
        if pos >= size {
            return Ok(());
        }
        let len = run.len().min((size - pos) as usize);
        let fh = {
            let w = inode.data().writers.lock();
            match w.first() {
                Some(&fh) => fh,
                None => {
                    warn_ratelimited!("dirty folio at {} with no writable handle\n", pos);
                    return Err(EIO);
                }
            }
        };
        let s = inode.super_block().data();
        let nodeid = inode.data().nodeid;
        let inarg = WriteIn {
            fh,
            offset: pos as u64,
            size: len as u32,
            write_flags: FUSE_WRITE_CACHE,
            lock_owner: 0,
            flags: 0,
            padding: 0,
        };
        let mut segs = Segments::with_capacity(run.iter().count())?;
        let mut left = len;
        for f in run.iter() {
            if left == 0 {
                break;
            }
            let n = f.size().min(left);
            segs.push(Segment::Page(f.first_page(), n as u32, 0))?;
            left -= n;
        }
        // SAFETY: The folios are under writeback and referenced until the
        // abstraction ends the writeback, after this returns; the host
        // only reads them.
        let reply = unsafe {
            s.call_pages(
                Opcode::Write,
                request_len(WriteIn::SIZE, &[]),
                WriteOut::SIZE,
                len,
                |buf, unique| build_write_pages(buf, unique, nodeid, &inarg, len),
                &segs,
                &[],
            )
        }?;
        let w = write_reply_size(Ok(reply))?;
        // With a writeback cache the guest's times and size stand (C's
        // `fuse_writepage_finish_stat`); otherwise the host's changed.
        if !inode::writeback_cached(&s, inode) {
            changed_locally(&s, inode);
        }
        if w != len {
            warn_ratelimited!("writeback WRITE wrote {} of {} bytes\n", w, len);
            return Err(EIO);
        }
        Ok(())
    }

    fn writeback_max_bytes(inode: &Inode<VirtioFsType>) -> usize {
        inode.super_block().data().max_io(true)
    }

    /// As C's `fuse_write_begin` (writeback cache only): the folio,
    /// locked and out of writeback; read from the host first unless
    /// uptodate, covered by the write, or past the end of the file (its
    /// head zeroed then).
    fn write_begin(
        file: Option<&File>,
        inode: &Inode<VirtioFsType>,
        pos: i64,
        len: usize,
    ) -> Result<WriteFolio> {
        // Only writes through an open file get here (reads need its
        // handle).
        let file = file.ok_or(EBADF)?;
        let folio =
            address_space::grab_write_folio(inode, (pos as u64) >> kernel::page::PAGE_SHIFT)?;
        let f = folio.locked();
        if f.test_uptodate() || len >= f.size() {
            return Ok(folio);
        }
        if inode.size() <= f.pos() {
            f.zero_range(0, (pos - f.pos()) as usize);
            return Ok(folio);
        }
        read_folios(file, inode, f.pos(), &[f])?;
        f.mark_uptodate();
        Ok(folio)
    }

    /// As C's `fuse_write_end`: a folio not uptodate gets its tail past
    /// the copy zeroed (its head was zeroed by `write_begin`, past the end
    /// of the file), the size moves up, the folio is dirtied for
    /// writeback. Past C: a short copy into a folio that is not uptodate
    /// keeps nothing (`generic_perform_write` faults the source in and
    /// tries again), as `block_write_end` does: C would zero file data
    /// that was never read.
    fn write_end(
        _file: Option<&File>,
        inode: &Inode<VirtioFsType>,
        pos: i64,
        len: usize,
        copied: usize,
        folio: &LockedFolio<'_>,
    ) -> usize {
        if copied == 0 {
            return 0;
        }
        let end = pos + copied as i64;
        if !folio.test_uptodate() {
            if copied < len {
                return 0;
            }
            folio.zero_range((end - folio.pos()) as usize, folio.size());
            folio.mark_uptodate();
        }
        if end > inode.size() {
            // The writer holds the inode lock (`generic_file_write_iter`),
            // and with a writeback cache attribute replies never store the
            // size (`inode::refresh`).
            inode.set_size(end);
        }
        // Uptodate here, so always dirtied.
        let dirtied = folio.mark_dirty();
        debug_assert!(dirtied);
        copied
    }

    fn read_folio(
        file: Option<&File>,
        inode: &Inode<VirtioFsType>,
        folio: &LockedFolio<'_>,
    ) -> Result {
        let file = file.ok_or(EBADF)?;
        read_folios(file, inode, folio.pos(), &[folio])
    }

    /// Background READs of up to `max_pages` folios each, as C's
    /// `fuse_readahead`: each ends its folios (uptodate, the rest past
    /// what the host sent zeroed, or failed) when its reply comes, so the
    /// reader waits only for the folio it needs.
    fn readahead(file: Option<&File>, inode: &Inode<VirtioFsType>, ra: &mut Readahead) {
        let Some(file) = file else {
            return;
        };
        if inode.data().bad.load(core::sync::atomic::Ordering::Acquire) {
            return;
        }
        // SAFETY: Files of regular inodes of ours are opened through
        // `RegFile` (their `i_fop`); the page cache holds the file for the
        // call.
        let h = unsafe { file.data::<RegFile>() };
        let s = inode.super_block().data();
        let max = s.max_io(false).max(PAGE_SIZE);
        loop {
            let Ok(mut batch) = KVec::<ReadaheadFolio>::with_capacity(max / PAGE_SIZE, GFP_KERNEL)
            else {
                return;
            };
            let mut bytes = 0usize;
            while bytes < max {
                let Some(f) = ra.next_folio() else {
                    break;
                };
                bytes += f.locked().size();
                if batch.push(f, GFP_KERNEL).is_err() {
                    // The folio was dropped, failed: read on demand.
                    break;
                }
            }
            if batch.is_empty() {
                return;
            }
            // On failure the batch's folios end failed: read on demand.
            if read_ahead(&s, h, inode, batch).is_err() {
                return;
            }
        }
    }
}
