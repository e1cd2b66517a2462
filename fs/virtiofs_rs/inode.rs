// SPDX-License-Identifier: GPL-2.0-only

//! Inodes: what virtiofs-rs keeps per inode (embedded in the inode), the
//! attributes the server sends and their cache, C's `fuse_iget`
//! semantics, and the attribute operations every inode shares (getattr,
//! setattr; get_link for symlinks).

use crate::dax::{DaxAops, InodeDax};
use crate::dir::{DirFile, DirOps};
use crate::file::{DaxFile, FileAops, RegFile};
use crate::proto::fuse::{
    abi::{fattr, Opcode, SetattrIn, Wire, FUSE_ROOT_ID},
    reply::{self, FileType, ValidAttr},
    request::{self, request_len, RequestBuilder},
};
use crate::ratelimit::warn_ratelimited;
use crate::session::{expiry, header, jiffies64, prepare_forget, Session};
use crate::superblock::VirtioFsType;
use crate::transport::Request;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{
    bindings,
    fs::{
        acl::{AclType, MntIdmap, PosixAcl},
        address_space, file,
        inode::{self, attr, Attrs, IAttr, Iget, Operations, Ops},
        DEntry, Inode, SuperBlock,
    },
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Mutex, SpinLock},
    types::ARef,
};

/// The inode operations of directories.
pub(crate) const DIR_IOPS: Ops<VirtioFsType> = Ops::new_atomic::<DirOps>();

/// The file operations of directories.
pub(crate) const DIR_FOPS: file::Ops<VirtioFsType> = file::Ops::new::<DirFile>();

/// The inode operations of regular files and special files.
const COMMON_IOPS: Ops<VirtioFsType> = Ops::new::<CommonIops>();

/// The inode operations of symlinks.
const SYMLINK_IOPS: Ops<VirtioFsType> = Ops::new::<SymlinkIops>();

/// The file operations of regular files.
const FILE_FOPS: file::Ops<VirtioFsType> = file::Ops::new::<RegFile>();

/// The page cache operations of regular files.
const FILE_AOPS: address_space::Ops<VirtioFsType> = address_space::Ops::new::<FileAops>();

/// The file operations of DAX files.
const DAX_FOPS: file::Ops<VirtioFsType> = file::Ops::new::<DaxFile>();

/// The (DAX entry) mapping operations of DAX files.
const DAX_AOPS: address_space::Ops<VirtioFsType> = address_space::Ops::new::<DaxAops>();

/// What virtiofs-rs keeps per inode.
#[pin_data]
pub(crate) struct InodeInfo {
    /// The server's node id.
    pub(crate) nodeid: u64,
    /// The server's generation of the node.
    generation: u64,
    /// How many LOOKUP replies named this node: what FORGET gives back.
    pub(crate) nlookup: AtomicU64,
    /// The server's node changed under us (type or generation): the inode
    /// is unhashed and its dentries are dropped on revalidation.
    pub(crate) bad: AtomicBool,
    /// Until when (jiffies) the cached attributes may be trusted.
    attr_valid: AtomicU64,
    /// Size changes in flight ([`SizeUnstable`]).
    size_unstable: AtomicU32,
    /// The session's attribute version of the last change applied: a
    /// reply to a request sent before it is not applied (C's
    /// `fi->attr_version`).
    attr_version: AtomicU64,
    /// The FORGET sent at eviction, allocated with the inode (as C's
    /// `fi->forget`), so eviction, possibly in reclaim, never allocates
    /// and the host never keeps a node the guest forgot. `None` for the
    /// root. The lock also serialises attribute refreshes.
    #[pin]
    forget: SpinLock<Option<Request>>,
    /// Handles of open files with a writable shared mapping: what
    /// writeback sends its WRITEs through (C's `fi->write_files`). A
    /// handle leaves the list at release, after the file's last writeback.
    #[pin]
    pub(crate) writers: Mutex<KVec<u64>>,
    /// Held by writeback around each WRITE and by a truncation around its
    /// SETATTR and size update (C's `fuse_set_nowrite`): writeback never
    /// sends a folio past a size the host no longer has.
    #[pin]
    pub(crate) wb_gate: Mutex<()>,
    /// The mapped chunks of a DAX file (`None` for other inodes).
    pub(crate) dax: Option<Pin<KBox<InodeDax>>>,
    /// A directory whose names were looked up since its last listing: the
    /// next one asks for attributes too (C's `FUSE_I_ADVISE_RDPLUS`).
    pub(crate) rdplus_advise: AtomicBool,
}

impl InodeInfo {
    fn new(
        nodeid: u64,
        generation: u64,
        nlookup: u64,
        forget: Option<Request>,
        attr_valid: u64,
        dax: bool,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(InodeInfo {
            nodeid,
            generation,
            nlookup: AtomicU64::new(nlookup),
            bad: AtomicBool::new(false),
            attr_valid: AtomicU64::new(attr_valid),
            attr_version: AtomicU64::new(0),
            size_unstable: AtomicU32::new(0),
            forget <- new_spinlock!(forget, "virtiofs_rs::InodeInfo::forget"),
            writers <- new_mutex!(KVec::new(), "virtiofs_rs::InodeInfo::writers"),
            wb_gate <- new_mutex!((), "virtiofs_rs::InodeInfo::wb_gate"),
            rdplus_advise: AtomicBool::new(false),
            dax: if dax {
                Some(KBox::pin_init(InodeDax::new(), GFP_KERNEL)?)
            } else {
                None
            },
        }? Error)
    }

    /// Takes the FORGET prepared for eviction.
    pub(crate) fn take_forget(&self) -> Option<Request> {
        self.forget.lock().take()
    }
}

/// The VFS view of what the server sent. `st_ino` is the host's inode
/// number; the inode cache finds inodes by node id (their key).
pub(crate) fn attrs(attr: &ValidAttr) -> Attrs {
    let a = attr.get();
    Attrs {
        ino: a.ino,
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        size: attr.size(),
        blocks: a.blocks,
        nlink: a.nlink,
        rdev: a.rdev,
        atime: (a.atime as i64, a.atimensec),
        mtime: (a.mtime as i64, a.mtimensec),
        ctime: (a.ctime as i64, a.ctimensec),
    }
}

/// Refreshes a cached inode's attributes from a reply to a request sent
/// at attribute version `version` (0: apply whatever came before, for a
/// reply that made the node), valid until `valid_until`. As C's
/// `fuse_change_attributes`, under the per-inode lock: a reply older than
/// the inode's last change is not applied, nor any while a size change is
/// in flight (the write or truncation sets the size itself); an applied
/// reply takes a new version, so an older one applied later loses. A
/// regular file whose size changed loses its page cache past the new
/// size, and the rest is dropped as stale (C without
/// `FUSE_EXPLICIT_INVAL_DATA`).
pub(crate) fn refresh(
    s: &Session,
    inode: &Inode<VirtioFsType>,
    attr: &ValidAttr,
    valid_until: u64,
    version: u64,
) {
    let info = inode.data();
    let old_size;
    // As C's `fuse_get_cache_mask`: with a writeback cache the guest's
    // writes set a regular file's size and times, which the host learns
    // only at writeback, so the host's are not taken.
    let cached = writeback_cached(s, inode);
    // As C: the host's ACLs may have changed, whether or not this reply's
    // attributes are applied.
    if s.posix_acl() {
        inode.forget_cached_acls();
    }
    {
        let _g = info.forget.lock();
        if (version != 0 && info.attr_version.load(Ordering::Acquire) > version)
            || info.size_unstable.load(Ordering::Acquire) != 0
        {
            return;
        }
        old_size = inode.size();
        if cached {
            // Not even stored back: a writer may be moving them.
            inode.refresh_attrs_cached(&attrs(attr));
        } else {
            inode.refresh_attrs(&attrs(attr));
        }
        // As C: another client may have set set-id bits or a
        // `security.capability`; the next write checks again.
        inode.clear_nosec();
        info.attr_valid.store(valid_until, Ordering::Release);
        info.attr_version
            .store(s.next_attr_version(), Ordering::Release);
    }
    if !cached && attr.file_type() == FileType::Regular && old_size != attr.size() {
        address_space::truncate_pagecache(inode, attr.size());
        // Busy folios (being written) stay; they are refreshed by the
        // write that holds them.
        let _ = address_space::invalidate(inode);
    }
}

/// Whether `inode` is a regular file whose writes the page cache keeps
/// until writeback (`FUSE_WRITEBACK_CACHE`; not DAX files, whose data is
/// the host's): the guest is the authority for its size and times.
pub(crate) fn writeback_cached(s: &Session, inode: &Inode<VirtioFsType>) -> bool {
    s.writeback_cache()
        && FileType::from_mode(inode.mode()) == Some(FileType::Regular)
        && !inode.is_dax()
}

/// Records a local change of `inode` (a write, a truncate): replies to
/// requests sent before it no longer overwrite the attributes, and the
/// cached ones expire (the host's times changed).
pub(crate) fn changed_locally(s: &Session, inode: &Inode<VirtioFsType>) {
    let info = inode.data();
    let _g = info.forget.lock();
    info.attr_version
        .store(s.next_attr_version(), Ordering::Release);
    info.attr_valid.store(0, Ordering::Release);
}

/// After a write of `written` bytes that reached byte `pos` (C's
/// `fuse_write_update_attr`), under the per-inode lock: a new version, the
/// size moved up to `pos` if anything was written, the cached attributes
/// expired (the host's times changed).
pub(crate) fn write_update_attr(
    s: &Session,
    inode: &Inode<VirtioFsType>,
    pos: i64,
    written: usize,
) {
    let info = inode.data();
    let _g = info.forget.lock();
    info.attr_version
        .store(s.next_attr_version(), Ordering::Release);
    if written > 0 && pos > inode.size() {
        inode.set_size(pos);
    }
    info.attr_valid.store(0, Ordering::Release);
}

/// After a name of `inode` went away on the host (C's
/// `fuse_entry_unlinked`), under the per-inode lock: one link fewer (none
/// for a directory), a new version, the attributes expired.
pub(crate) fn unlinked(s: &Session, inode: &Inode<VirtioFsType>) {
    let info = inode.data();
    let _g = info.forget.lock();
    info.attr_version
        .store(s.next_attr_version(), Ordering::Release);
    if FileType::from_mode(inode.mode()) == Some(FileType::Directory) {
        inode.clear_nlink();
    } else {
        inode.drop_nlink();
    }
    info.attr_valid.store(0, Ordering::Release);
}

/// A size change of `inode` in flight (a write, a truncation): attribute
/// replies are not applied until it is dropped (C's
/// `FUSE_I_SIZE_UNSTABLE`).
pub(crate) struct SizeUnstable<'a>(&'a Inode<VirtioFsType>);

impl<'a> SizeUnstable<'a> {
    /// Marks `inode`'s size as changing.
    pub(crate) fn new(inode: &'a Inode<VirtioFsType>) -> Self {
        inode.data().size_unstable.fetch_add(1, Ordering::AcqRel);
        SizeUnstable(inode)
    }
}

impl Drop for SizeUnstable<'_> {
    fn drop(&mut self) {
        self.0.data().size_unstable.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks the attributes of `inode` stale (C's `fuse_invalidate_attr`):
/// the next stat asks the host.
pub(crate) fn invalidate_attrs(inode: &Inode<VirtioFsType>) {
    inode.data().attr_valid.store(0, Ordering::Release);
}

/// Brings the attributes of `inode` up to date if they expired (or
/// always with `force`), through open handle `fh` if given.
pub(crate) fn update_attrs(inode: &Inode<VirtioFsType>, fh: Option<u64>, force: bool) -> Result {
    let info = inode.data();
    if !force && info.attr_valid.load(Ordering::Acquire) >= jiffies64() {
        return Ok(());
    }
    host_mode(inode, fh).map(|_| ())
}

/// Asks the host for the attributes of `inode` (through handle `fh` if
/// given), refreshes the cached ones (as far as [`refresh`] applies them)
/// and returns the host's mode, whether or not it was applied.
fn host_mode(inode: &Inode<VirtioFsType>, fh: Option<u64>) -> Result<u32> {
    let info = inode.data();
    let s = inode.super_block().data();
    let version = s.attr_version();
    let (a, timeout) = s.getattr(info.nodeid, fh)?;
    if FileType::from_mode(inode.mode()) != Some(a.file_type()) {
        // As C: the node changed type behind us.
        info.bad.store(true, Ordering::Release);
        return Err(EIO);
    }
    refresh(&s, inode, &a, expiry(timeout), version);
    Ok(a.get().mode)
}

/// After a READ sent at attribute version `attr_ver` returned only up to
/// `size` (C's `fuse_short_read` and `fuse_read_update_size`): the file
/// ends there, unless a size change is in flight or the attributes
/// changed since the READ went out.
pub(crate) fn read_update_size(s: &Session, inode: &Inode<VirtioFsType>, attr_ver: u64, size: i64) {
    // As C: with a writeback cache a short read is a hole whose end the
    // host does not have yet (it is in the page cache).
    if writeback_cached(s, inode) {
        return;
    }
    let info = inode.data();
    let _g = info.forget.lock();
    if attr_ver >= info.attr_version.load(Ordering::Acquire)
        && size < inode.size()
        && info.size_unstable.load(Ordering::Acquire) == 0
    {
        info.attr_version
            .store(s.next_attr_version(), Ordering::Release);
        inode.set_size(size);
    }
}

/// `AT_STATX_SYNC_TYPE` bits of a getattr's flags.
const AT_STATX_FORCE_SYNC: u32 = bindings::AT_STATX_FORCE_SYNC;
/// Do not ask the host.
const AT_STATX_DONT_SYNC: u32 = bindings::AT_STATX_DONT_SYNC;

/// stat(2): as C's `fuse_update_get_attr`, the cached attributes while
/// they are valid, unless the caller forces a sync.
fn getattr(inode: &Inode<VirtioFsType>, flags: u32) -> Result {
    if inode.data().bad.load(Ordering::Acquire) {
        return Err(EIO);
    }
    if flags & AT_STATX_DONT_SYNC != 0 {
        return Ok(());
    }
    update_attrs(inode, None, flags & AT_STATX_FORCE_SYNC != 0)
}

/// Whether a setattr changes the modification time on the host (C's
/// `update_mtime`, without a writeback cache).
fn update_mtime(valid: u32) -> bool {
    if valid & attr::MTIME_SET != 0 {
        return true;
    }
    !(valid & attr::SIZE != 0 && valid & (attr::OPEN | attr::FILE) != 0)
}

/// Sends the modification and change times the guest's writes set to
/// the host (C's `fuse_flush_times`, from `write_inode`): a SETATTR of
/// both, through a writable handle if the file has one. The reply's
/// attributes are checked and not applied (the guest's are newer).
pub(crate) fn flush_times(inode: &Inode<VirtioFsType>) -> Result {
    let info = inode.data();
    if info.bad.load(Ordering::Acquire) {
        return Err(EIO);
    }
    let mut inarg = SetattrIn {
        valid: fattr::MTIME | fattr::CTIME,
        ..SetattrIn::default()
    };
    (inarg.mtime, inarg.mtimensec) = {
        let (s, ns) = inode.mtime();
        (s as u64, ns)
    };
    (inarg.ctime, inarg.ctimensec) = {
        let (s, ns) = inode.ctime();
        (s as u64, ns)
    };
    if let Some(&fh) = info.writers.lock().first() {
        inarg.valid |= fattr::FH;
        inarg.fh = fh;
    }
    let s = inode.super_block().data();
    let nodeid = info.nodeid;
    let reply = s.call(
        Opcode::Setattr,
        request_len(SetattrIn::SIZE, &[]),
        104,
        |buf, unique| request::simple(buf, header(Opcode::Setattr, unique, nodeid), &inarg),
    )?;
    let (na, _) = reply::decode_attr_out(reply.payload()).map_err(|e| {
        warn_ratelimited!("SETATTR reply refused: {:?}\n", e);
        EIO
    })?;
    if FileType::from_mode(inode.mode()) != Some(na.file_type()) {
        info.bad.store(true, Ordering::Release);
        return Err(EIO);
    }
    Ok(())
}

/// `S_ISUID`.
const S_ISUID: u32 = 0o4000;
/// `S_ISGID`.
const S_ISGID: u32 = 0o2000;

/// The SETATTR arguments for `a` (C's `iattr_to_fattr`).
fn setattr_in(a: &IAttr) -> SetattrIn {
    let v = a.valid();
    let mut s = SetattrIn::default();
    if v & attr::MODE != 0 {
        s.valid |= fattr::MODE;
        s.mode = a.mode();
    }
    if v & attr::UID != 0 {
        s.valid |= fattr::UID;
        s.uid = a.uid();
    }
    if v & attr::GID != 0 {
        s.valid |= fattr::GID;
        s.gid = a.gid();
    }
    if v & attr::SIZE != 0 {
        s.valid |= fattr::SIZE;
        s.size = a.size() as u64;
    }
    if v & attr::ATIME != 0 {
        s.valid |= fattr::ATIME;
        (s.atime, s.atimensec) = (a.atime().0 as u64, a.atime().1);
        if v & attr::ATIME_SET == 0 {
            s.valid |= fattr::ATIME_NOW;
        }
    }
    if v & attr::MTIME != 0 && update_mtime(v) {
        s.valid |= fattr::MTIME;
        (s.mtime, s.mtimensec) = (a.mtime().0 as u64, a.mtime().1);
        if v & attr::MTIME_SET == 0 {
            s.valid |= fattr::MTIME_NOW;
        }
    }
    s
}

/// setattr: as C's `fuse_do_setattr`: one SETATTR (through the open
/// file's handle for a truncation of an open file), the reply's
/// attributes applied (with a writeback cache, but for the size and times
/// the guest keeps), and for a size change the page cache cut to the new
/// size. The VFS holds the inode lock.
fn setattr(d: &DEntry<VirtioFsType>, a: &IAttr) -> Result {
    let inode = d.inode().ok_or(ENOENT)?;
    let info = inode.data();
    if info.bad.load(Ordering::Acquire) {
        return Err(EIO);
    }
    let mut inarg = setattr_in(a);
    if a.valid() & (attr::KILL_SUID | attr::KILL_SGID) != 0 {
        // As C without FUSE_HANDLE_KILLPRIV: the VFS computed the mode from
        // the cached one, which another client may have changed since;
        // refresh it and remove the set-id bits from the host's mode, so a
        // stale mode never overwrites a remote chmod. Kept with
        // KILLPRIV_V2 too (past C): a DAX write sends no FUSE_WRITE to
        // carry the removal to the host.
        // The bits to remove are the ones the VFS asked for (it decided
        // S_ISGID with `setattr_should_drop_sgid()`), from the host's mode.
        inarg.valid &= !fattr::MODE;
        let fh = a.file().filter(|_| a.valid() & attr::OPEN == 0).map(|f| {
            // SAFETY: With `ATTR_FILE` the VFS passes an open regular file
            // of ours (see the truncation case below): `RegFile` data.
            unsafe { f.data::<RegFile>() }.fh
        });
        let m = host_mode(inode, fh)?;
        let mut mode = m;
        if a.valid() & attr::KILL_SUID != 0 {
            mode &= !S_ISUID;
        }
        if a.valid() & attr::KILL_SGID != 0 {
            mode &= !S_ISGID;
        }
        if mode != m {
            inarg.valid |= fattr::MODE;
            inarg.mode = mode;
        }
        if inarg.valid == 0 {
            return Ok(());
        }
    }
    let is_truncate = a.valid() & attr::SIZE != 0;
    if is_truncate && FileType::from_mode(inode.mode()) != Some(FileType::Regular) {
        return Err(EIO);
    }
    // As C: a DAX file's pages are unmapped (and unpinned) before its
    // size changes, and stay so until the page cache is cut.
    let _layouts = if is_truncate && inode.is_dax() {
        Some(crate::dax::break_layouts(inode, 0, i64::MAX)?)
    } else {
        None
    };
    let s = inode.super_block().data();
    let cached = writeback_cached(&s, inode);
    if cached {
        // As C's `fuse_do_setattr` with a writeback cache: before a change
        // of the mode, owner or times, the data and the times the guest
        // kept reach the host. A truncation needs no writeback: the gate
        // below holds it off, and it never writes past the size.
        if a.valid() & (attr::MODE | attr::UID | attr::GID | attr::MTIME_SET | attr::TIMES_SET) != 0
        {
            address_space::write_inode_now(inode, true)?;
        }
    } else if is_truncate {
        // Dirty folios (from shared mappings) reach the host before the
        // size changes under them (C waits out writeback here too).
        address_space::write_and_wait(inode)?;
    }
    if a.valid() & attr::OPEN == 0 {
        if let Some(f) = a.file() {
            // SAFETY: With `ATTR_FILE` the VFS passes an open file of this
            // inode, a regular file of ours (only regular files are
            // truncated through a file), so it was opened through
            // `RegFile`'s or `DaxFile`'s table (the `i_fop` of every
            // regular inode), both with `RegFile`'s data type; the VFS
            // holds it for the call.
            let h = unsafe { f.data::<RegFile>() };
            inarg.valid |= fattr::FH;
            inarg.fh = h.fh;
        }
    }
    if is_truncate {
        inarg.valid |= fattr::LOCKOWNER;
    }
    if is_truncate {
        inarg.lock_owner = s.lock_owner(current_files());
    }
    // As C with FUSE_HANDLE_KILLPRIV_V2: the host removes set-id bits on a
    // chown of a non-directory, and on a truncation by a task that may not
    // keep them. The VFS's own removal (ATTR_KILL_* turned into a mode
    // change) still comes here too, so nothing depends on the host alone.
    if s.killpriv_v2() {
        let chown = a.valid() & (attr::UID | attr::GID) != 0;
        let is_dir = FileType::from_mode(inode.mode()) == Some(FileType::Directory);
        if (chown && !is_dir) || (is_truncate && !kernel::fs::capable_fsetid()) {
            inarg.valid |= fattr::KILL_SUIDGID;
        }
    }
    let nodeid = info.nodeid;
    let _unstable = is_truncate.then(|| SizeUnstable::new(inode));
    // Writeback waits for the gate with folios under writeback, which
    // reclaim may wait for: nothing allocated under it may enter it.
    let nofs = address_space::NofsScope::new();
    let gate = is_truncate.then(|| info.wb_gate.lock());
    let reply = s.call(
        Opcode::Setattr,
        request_len(SetattrIn::SIZE, &[]),
        104,
        |buf, unique| request::simple(buf, header(Opcode::Setattr, unique, nodeid), &inarg),
    );
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            if e == ERESTARTSYS || e == EINTR {
                invalidate_attrs(inode);
            }
            return Err(e);
        }
    };
    let (na, timeout) = match reply::decode_attr_out(reply.payload()) {
        Ok(x) => x,
        Err(e) => {
            warn_ratelimited!("SETATTR reply refused: {:?}\n", e);
            return Err(EIO);
        }
    };
    if FileType::from_mode(inode.mode()) != Some(na.file_type()) {
        info.bad.store(true, Ordering::Release);
        return Err(EIO);
    }
    // The reply is the host's state after our change: newer than any
    // reply to a request sent before it. With a writeback cache the guest
    // keeps its size unless this truncated (the VFS holds the inode lock,
    // so no write moves it meanwhile) and its times unless this truncated
    // or set them (the host's then are the file's: it changed them with
    // the size, or the guest's went to it first, above).
    let old_size = inode.size();
    let mut new = attrs(&na);
    let keep_times = cached && !is_truncate && a.valid() & (attr::MTIME | attr::CTIME) == 0;
    if cached && !is_truncate {
        new.size = old_size;
    }
    {
        let _g = info.forget.lock();
        if keep_times {
            // Not even stored back: a write fault may be setting them.
            inode.refresh_attrs_cached(&new);
        } else {
            inode.refresh_attrs(&new);
        }
        inode.clear_nosec();
        // As C: a mode change may have changed the host's access ACL.
        if s.posix_acl() {
            inode.forget_cached_acls();
        }
        info.attr_valid.store(expiry(timeout), Ordering::Release);
        info.attr_version
            .store(s.next_attr_version(), Ordering::Release);
    }
    // The size is the host's now: writeback may go on (no gate is held
    // while the page cache is cut, which waits for writeback).
    drop(gate);
    drop(nofs);
    if na.file_type() == FileType::Regular && old_size != new.size {
        address_space::truncate_pagecache(inode, new.size);
        if !cached {
            // Without a writeback cache the rest is stale too (as C).
            let _ = address_space::invalidate(inode);
        } else if new.size > old_size {
            // With one, folios below the size are the file's (clean: the
            // host's, dirty: the guest's), but the one the old end fell in
            // may hold bytes a shared mapping wrote past it, which must
            // read as zeros now that they are inside the file.
            address_space::truncate_pagecache_range(inode, old_size, new.size - 1);
        }
    }
    Ok(())
}

/// The current task's file table, as a lock owner (C's `current->files`).
pub(crate) fn current_files() -> usize {
    // SAFETY: Reads a pointer of the current task; no requirement.
    unsafe { bindings::vfs_current_files() }
}

/// The inode operations of regular and special files.
pub(crate) struct CommonIops;

#[vtable]
impl Operations for CommonIops {
    type FileSystem = VirtioFsType;

    fn getattr(inode: &Inode<VirtioFsType>, _mask: u32, flags: u32) -> Result {
        getattr(inode, flags)
    }

    fn listxattr(d: &DEntry<VirtioFsType>, buf: Option<&mut [u8]>) -> Result<usize> {
        crate::xattr::listxattr(d, buf)
    }

    fn get_inode_acl(
        inode: &Inode<VirtioFsType>,
        ty: AclType,
        rcu: bool,
    ) -> Result<Option<ARef<PosixAcl>>> {
        crate::xattr::get_inode_acl(inode, ty, rcu)
    }

    fn get_acl(d: &DEntry<VirtioFsType>, ty: AclType) -> Result<Option<ARef<PosixAcl>>> {
        crate::xattr::get_dentry_acl(d, ty)
    }

    fn set_acl(
        idmap: &MntIdmap,
        d: &DEntry<VirtioFsType>,
        acl: Option<&PosixAcl>,
        ty: AclType,
    ) -> Result {
        crate::xattr::set_acl(idmap, d, acl, ty)
    }

    fn setattr(d: &DEntry<VirtioFsType>, a: &IAttr) -> Result {
        setattr(d, a)
    }
}

/// The inode operations of symlinks: the target is read from the host
/// each time (C without `FUSE_CACHE_SYMLINKS`, which is not offered).
pub(crate) struct SymlinkIops;

#[vtable]
impl Operations for SymlinkIops {
    type FileSystem = VirtioFsType;

    fn getattr(inode: &Inode<VirtioFsType>, _mask: u32, flags: u32) -> Result {
        getattr(inode, flags)
    }

    fn listxattr(d: &DEntry<VirtioFsType>, buf: Option<&mut [u8]>) -> Result<usize> {
        crate::xattr::listxattr(d, buf)
    }

    fn setattr(d: &DEntry<VirtioFsType>, a: &IAttr) -> Result {
        setattr(d, a)
    }

    fn get_link(_d: &DEntry<VirtioFsType>, inode: &Inode<VirtioFsType>) -> Result<KVec<u8>> {
        if inode.data().bad.load(Ordering::Acquire) {
            return Err(EIO);
        }
        let s = inode.super_block().data();
        let nodeid = inode.data().nodeid;
        // As C: at most a page, NUL included.
        let max = kernel::page::PAGE_SIZE - 1;
        let reply = s.call(Opcode::Readlink, request_len(0, &[]), max, |buf, unique| {
            RequestBuilder::new(buf, header(Opcode::Readlink, unique, nodeid))?.finish()
        })?;
        let t = reply.payload();
        if t.is_empty() || t.len() != reply.len() || t.contains(&0) {
            warn_ratelimited!("READLINK reply refused ({} bytes)\n", reply.len());
            return Err(EIO);
        }
        let mut v = KVec::with_capacity(t.len() + 1, GFP_KERNEL)?;
        v.extend_from_slice(t, GFP_KERNEL)?;
        Ok(v)
    }
}

/// Whether the server's node is no longer the one `inode` stands for: its
/// generation or its type changed (C's `fuse_stale_inode`).
pub(crate) fn is_stale(inode: &Inode<VirtioFsType>, generation: u64, attr: &ValidAttr) -> bool {
    inode.data().generation != generation
        || FileType::from_mode(inode.mode()) != Some(attr.file_type())
}

/// How many times `iget` retries after unhashing a stale inode.
const IGET_RETRIES: u32 = 3;

/// The inode of node `nodeid`, which a reply to a request sent at
/// attribute version `version` just named (`nlookup` lookups counted by
/// the server, 0 for the root; version 0 for a reply that made the node):
/// a new inode, or the cached one
/// with its attributes refreshed and its lookups counted. A cached inode
/// whose type or generation differs is marked bad and unhashed, and a new
/// one made (C's `fuse_iget`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn iget(
    sb: &SuperBlock<VirtioFsType, impl Sized>,
    s: &Session,
    nodeid: u64,
    generation: u64,
    attr: &ValidAttr,
    attr_valid: u64,
    nlookup: u64,
    version: u64,
) -> Result<ARef<Inode<VirtioFsType>>> {
    for _ in 0..IGET_RETRIES {
        match sb.iget(nodeid)? {
            Iget::New(mut new) => {
                let dax_file = attr.file_type() == FileType::Regular
                    && crate::dax::enabled(s, attr.get().flags);
                // As C's `fuse_iget`: the server keeps the times, except
                // a regular file's modification times with a writeback
                // cache (the guest's writes set them; `write_inode`
                // sends them).
                let wb = s.writeback_cache() && attr.file_type() == FileType::Regular && !dax_file;
                new.set_attrs(&attrs(attr)).add_flags(if wb {
                    inode::S_NOATIME
                } else {
                    inode::S_NOATIME | inode::S_NOCMTIME
                });
                // As C: without FUSE_POSIX_ACL nothing is cached, so
                // `getxattr` of an ACL always reaches the host.
                if !s.posix_acl() {
                    new.set_acl_dont_cache();
                }
                match attr.file_type() {
                    FileType::Directory => {
                        new.set_iops(DIR_IOPS).set_fops(DIR_FOPS);
                    }
                    FileType::CharDev | FileType::BlockDev | FileType::Fifo | FileType::Socket => {
                        new.set_iops(COMMON_IOPS)
                            .init_special(attr.get().mode, attr.get().rdev);
                    }
                    FileType::Regular if dax_file => {
                        // As C's `fuse_dax_inode_init`.
                        new.set_iops(COMMON_IOPS)
                            .set_fops(DAX_FOPS)
                            .set_aops(DAX_AOPS)
                            .add_flags(inode::S_DAX);
                    }
                    FileType::Regular => {
                        new.set_iops(COMMON_IOPS)
                            .set_fops(FILE_FOPS)
                            .set_aops(FILE_AOPS)
                            .set_stable_writes();
                    }
                    FileType::Symlink => {
                        new.set_iops(SYMLINK_IOPS).init_symlink();
                    }
                }
                let forget = if nodeid == FUSE_ROOT_ID {
                    None
                } else {
                    Some(prepare_forget(s)?)
                };
                return new.init(InodeInfo::new(
                    nodeid, generation, nlookup, forget, attr_valid, dax_file,
                ));
            }
            Iget::Cached(inode) => {
                let info = inode.data();
                if !is_stale(&inode, generation, attr) {
                    info.nlookup.fetch_add(nlookup, Ordering::Relaxed);
                    refresh(s, &inode, attr, attr_valid, version);
                    return Ok(inode);
                }
                info.bad.store(true, Ordering::Release);
                if nodeid == FUSE_ROOT_ID {
                    return Err(EIO);
                }
                inode.unhash();
            }
        }
    }
    Err(EIO)
}
