// SPDX-License-Identifier: GPL-2.0-only

//! Directories: LOOKUP, dentry revalidation with the server's entry
//! timeouts (negative entries expire too, as a shared file system needs),
//! and listing (OPENDIR, READDIR or READDIRPLUS, RELEASEDIR).

use crate::errno::{enametoolong, enosys};
use crate::file::{FileHandle, RegFile};
use crate::inode;
use crate::proto::fuse::{
    abi::{
        InHeader, LinkIn, MkdirIn, MknodIn, Opcode, OpenIn, OpenOut, ReadIn, ReleaseIn, Rename2In,
        RenameIn, Wire, FUSE_NAME_MAX, FUSE_RELEASE_FLOCK_UNLOCK, FUSE_ROOT_ID,
    },
    dirent::{DirentPlus, Dirents, DirentsPlus},
    reply::{self, FileType, ReplySpec},
    request::{self, request_len, Header, RequestBuilder},
};
use crate::ratelimit::warn_ratelimited;
use crate::session::{self, expiry, header, jiffies64, Looked, Optional, Session};
use crate::superblock::VirtioFsType;
use crate::transport::{Orphan, Request};
use core::sync::atomic::Ordering;
use kernel::{
    bindings,
    fs::{
        acl::{AclType, MntIdmap, PosixAcl},
        dentry,
        dentry::{Child, LockedDEntry, RcuDEntry},
        file::{self, DirEmitter, File},
        inode::{AtomicOpen, Entry, IAttr, Operations, Rename},
        DEntry, Inode,
    },
    prelude::*,
    types::ARef,
};

/// The inode operations of directories.
pub(crate) struct DirOps;

#[vtable]
impl Operations for DirOps {
    type FileSystem = VirtioFsType;

    fn lookup(dir: &Inode<VirtioFsType>, name: &[u8]) -> Result<Entry<VirtioFsType>> {
        if !request::valid_name(name) {
            return Err(if name.len() > FUSE_NAME_MAX {
                enametoolong()
            } else {
                EINVAL
            });
        }
        let sb = dir.super_block();
        let s = sb.data();
        let version = s.attr_version();
        match s.lookup(dir.data().nodeid, name)? {
            // An ENOENT error is never cached (expires now), as C.
            Looked::Missing(timeout) => Ok(Entry {
                inode: None,
                valid_until: timeout.map_or(0, expiry),
            }),
            Looked::Found(e, forget) => {
                if e.nodeid == FUSE_ROOT_ID {
                    // As C: the root cannot be an entry of a directory.
                    s.forget_one(forget, e.nodeid);
                    return Err(EIO);
                }
                match inode::iget(
                    sb,
                    &s,
                    e.nodeid,
                    e.generation,
                    &e.attr,
                    expiry(e.attr_valid),
                    1,
                    version,
                ) {
                    Ok(i) => {
                        // A listing after lookups brings attributes along
                        // (READDIRPLUS_AUTO, C's `fuse_advise_use_readdirplus`).
                        dir.data().rdplus_advise.store(true, Ordering::Relaxed);
                        Ok(Entry {
                            inode: Some(i),
                            valid_until: expiry(e.entry_valid),
                        })
                    }
                    Err(err) => {
                        // The server counted this lookup: give it back.
                        s.forget_one(forget, e.nodeid);
                        Err(err)
                    }
                }
            }
        }
    }

    /// As C's `fuse_create` without `atomic_open`: a MKNOD of a regular
    /// file (the open that follows sends OPEN).
    fn create(
        dir: &Inode<VirtioFsType>,
        name: &[u8],
        mode: u32,
        _excl: bool,
    ) -> Result<Entry<VirtioFsType>> {
        mknod(dir, name, mode, 0)
    }

    fn mknod(
        dir: &Inode<VirtioFsType>,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> Result<Entry<VirtioFsType>> {
        mknod(dir, name, mode, rdev)
    }

    fn mkdir(dir: &Inode<VirtioFsType>, name: &[u8], mode: u32) -> Result<Entry<VirtioFsType>> {
        check_name(name)?;
        let umask = current_umask();
        let inarg = MkdirIn {
            mode: (mode & !dir.super_block().data().guest_umask()) & 0o7777,
            umask,
        };
        let nodeid = dir.data().nodeid;
        new_entry(
            dir,
            Opcode::Mkdir,
            request_len(MkdirIn::SIZE, &[name.len()]),
            Some(FileType::Directory),
            |buf, unique| {
                RequestBuilder::new(buf, header(Opcode::Mkdir, unique, nodeid))?
                    .arg(&inarg)?
                    .name(name)?
                    .finish()
            },
        )
    }

    fn symlink(
        dir: &Inode<VirtioFsType>,
        name: &[u8],
        target: &CStr,
    ) -> Result<Entry<VirtioFsType>> {
        check_name(name)?;
        let t = target.as_bytes();
        if t.is_empty() || t.len() >= kernel::page::PAGE_SIZE {
            return Err(enametoolong());
        }
        let nodeid = dir.data().nodeid;
        new_entry(
            dir,
            Opcode::Symlink,
            request_len(0, &[name.len(), t.len()]),
            Some(FileType::Symlink),
            |buf, unique| {
                RequestBuilder::new(buf, header(Opcode::Symlink, unique, nodeid))?
                    .name(name)?
                    .path(t)?
                    .finish()
            },
        )
    }

    /// As C's `fuse_link`: the linked inode's attributes (link count,
    /// change time) are stale afterwards.
    fn link(
        old: &DEntry<VirtioFsType>,
        dir: &Inode<VirtioFsType>,
        name: &[u8],
    ) -> Result<Entry<VirtioFsType>> {
        check_name(name)?;
        let inode = old.inode().ok_or(ENOENT)?;
        let inarg = LinkIn {
            oldnodeid: inode.data().nodeid,
        };
        let nodeid = dir.data().nodeid;
        // As C: the new entry must be of the linked inode's type, and a
        // server without LINK refuses with EPERM.
        let kind = FileType::from_mode(inode.mode()).ok_or(EIO)?;
        let e = new_entry(
            dir,
            Opcode::Link,
            request_len(LinkIn::SIZE, &[name.len()]),
            Some(kind),
            |buf, unique| {
                RequestBuilder::new(buf, header(Opcode::Link, unique, nodeid))?
                    .arg(&inarg)?
                    .name(name)?
                    .finish()
            },
        )
        .map_err(|e| if e == enosys() { EPERM } else { e })?;
        inode::invalidate_attrs(inode);
        Ok(e)
    }

    fn unlink(dir: &Inode<VirtioFsType>, victim: &DEntry<VirtioFsType>, name: &[u8]) -> Result {
        remove(dir, victim, name, Opcode::Unlink)
    }

    fn rmdir(dir: &Inode<VirtioFsType>, victim: &DEntry<VirtioFsType>, name: &[u8]) -> Result {
        remove(dir, victim, name, Opcode::Rmdir)
    }

    /// As C's `fuse_rename2`: plain renames as RENAME, flagged ones
    /// (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`, `RENAME_WHITEOUT`) as
    /// RENAME2, `EINVAL` for a server without it.
    fn rename(r: &Rename<'_, VirtioFsType>, flags: u32) -> Result {
        let supported =
            bindings::RENAME_NOREPLACE | bindings::RENAME_EXCHANGE | bindings::RENAME_WHITEOUT;
        if flags & !supported != 0 {
            return Err(EINVAL);
        }
        check_name(r.new_name)?;
        let s = r.old_dir.super_block().data();
        let olddir = r.old_dir.data().nodeid;
        let newdir = r.new_dir.data().nodeid;
        let names = [r.old_name.len(), r.new_name.len()];
        let res = if flags != 0 {
            if s.lacks(Optional::Rename2) || s.params().map_or(0, |p| p.minor) < 23 {
                return Err(EINVAL);
            }
            let inarg = Rename2In {
                newdir,
                flags,
                padding: 0,
            };
            let res = s.call(
                Opcode::Rename2,
                request_len(Rename2In::SIZE, &names),
                0,
                |buf, unique| {
                    RequestBuilder::new(buf, header(Opcode::Rename2, unique, olddir))?
                        .arg(&inarg)?
                        .name(r.old_name)?
                        .name(r.new_name)?
                        .finish()
                },
            );
            if matches!(res, Err(e) if e == enosys()) {
                s.set_lacks(Optional::Rename2);
                return Err(EINVAL);
            }
            res
        } else {
            let inarg = RenameIn { newdir };
            s.call(
                Opcode::Rename,
                request_len(RenameIn::SIZE, &names),
                0,
                |buf, unique| {
                    RequestBuilder::new(buf, header(Opcode::Rename, unique, olddir))?
                        .arg(&inarg)?
                        .name(r.old_name)?
                        .name(r.new_name)?
                        .finish()
                },
            )
        };
        if let Err(e) = res {
            if e == ENOENT || e == EINTR || e == ERESTARTSYS {
                r.old.set_valid_until(0);
                r.new.set_valid_until(0);
            }
            return Err(e);
        }
        if let Some(i) = r.old.inode() {
            inode::invalidate_attrs(i);
        }
        if flags & bindings::RENAME_EXCHANGE != 0 {
            if let Some(i) = r.new.inode() {
                inode::invalidate_attrs(i);
            }
        } else if r.new.inode().is_some() {
            entry_unlinked(&s, r.new);
        }
        inode::invalidate_attrs(r.old_dir);
        inode::invalidate_attrs(r.new_dir);
        Ok(())
    }

    fn getattr(inode: &Inode<VirtioFsType>, mask: u32, flags: u32) -> Result {
        <inode::CommonIops as Operations>::getattr(inode, mask, flags)
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
        <inode::CommonIops as Operations>::setattr(d, a)
    }
}

// SAFETY: Every inode `create_open` and `tmpfile_open` return is a regular
// file (`reply::decode_create` refuses another type) made by `inode::iget`,
// whose `i_fop` is `RegFile`'s table for regular files.
unsafe impl AtomicOpen for DirOps {
    type File = RegFile;
    const DIRECT_IO: bool = true;
    const HAS_TMPFILE: bool = true;

    /// As C's `fuse_atomic_open`/`fuse_create_open`: one CREATE makes and
    /// opens the file; a server without CREATE gets MKNOD then OPEN.
    fn create_open(
        dir: &Inode<VirtioFsType>,
        name: &[u8],
        mode: u32,
        flags: u32,
    ) -> Result<Option<(Entry<VirtioFsType>, KBox<FileHandle>)>> {
        check_name(name)?;
        if FileType::from_mode(mode) != Some(FileType::Regular) {
            return Err(EINVAL);
        }
        let guest_umask = dir.super_block().data().guest_umask();
        crate::file::create_open(dir, name, mode & !guest_umask, flags, current_umask())
    }

    /// As C's `fuse_tmpfile`: one TMPFILE makes and opens a file with no
    /// name; `EOPNOTSUPP` from a server without it.
    fn tmpfile_open(
        dir: &Inode<VirtioFsType>,
        mode: u32,
        flags: u32,
    ) -> Result<(Entry<VirtioFsType>, KBox<FileHandle>)> {
        if FileType::from_mode(mode) != Some(FileType::Regular) {
            return Err(EINVAL);
        }
        let guest_umask = dir.super_block().data().guest_umask();
        crate::file::tmpfile_open(dir, mode & !guest_umask, flags, current_umask())
    }

    fn release_unopened(inode: &Inode<VirtioFsType>, h: KBox<FileHandle>) {
        crate::file::release_handle(inode, h);
    }
}

/// `current_umask()`.
pub(crate) fn current_umask() -> u32 {
    // SAFETY: Reads the current task's umask; no requirement.
    unsafe { bindings::current_umask() as u32 }
}

/// A name the server may be sent, or the errno C gives for it.
fn check_name(name: &[u8]) -> Result {
    if request::valid_name(name) {
        Ok(())
    } else if name.len() > FUSE_NAME_MAX {
        Err(enametoolong())
    } else {
        Err(EINVAL)
    }
}

/// MKNOD (and C's non-atomic create): `mode` with its type, the umask
/// applied in the guest unless the host applies it (`FUSE_DONT_MASK`).
fn mknod(
    dir: &Inode<VirtioFsType>,
    name: &[u8],
    mode: u32,
    rdev: u32,
) -> Result<Entry<VirtioFsType>> {
    check_name(name)?;
    let umask = current_umask();
    let inarg = MknodIn {
        mode: mode & !dir.super_block().data().guest_umask(),
        rdev,
        umask,
        padding: 0,
    };
    let expected = FileType::from_mode(mode).ok_or(EINVAL)?;
    let nodeid = dir.data().nodeid;
    new_entry(
        dir,
        Opcode::Mknod,
        request_len(MknodIn::SIZE, &[name.len()]),
        Some(expected),
        |buf, unique| {
            RequestBuilder::new(buf, header(Opcode::Mknod, unique, nodeid))?
                .arg(&inarg)?
                .name(name)?
                .finish()
        },
    )
}

/// Sends a request that makes an entry in `dir` and returns its inode (C's
/// `create_new_entry`); the directory's attributes are stale afterwards.
fn new_entry(
    dir: &Inode<VirtioFsType>,
    opcode: Opcode,
    in_len: usize,
    expected: Option<FileType>,
    build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
) -> Result<Entry<VirtioFsType>> {
    let sb = dir.super_block();
    let s = sb.data();
    let (e, forget) = s.new_entry(opcode, in_len, expected, build)?;
    inode::invalidate_attrs(dir);
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
        Ok(i) => Ok(Entry {
            inode: Some(i),
            valid_until: expiry(e.entry_valid),
        }),
        Err(err) => {
            s.forget_one(forget, e.nodeid);
            Err(err)
        }
    }
}

/// After `d`'s name is gone on the host (C's `fuse_entry_unlinked`): one
/// link fewer (none for a directory), attributes stale, the entry expired.
fn entry_unlinked(s: &Session, d: &DEntry<VirtioFsType>) {
    if let Some(i) = d.inode() {
        inode::unlinked(s, i);
    }
    d.set_valid_until(0);
}

/// UNLINK or RMDIR (`op`) of `victim`, named `name` in `dir`.
fn remove(
    dir: &Inode<VirtioFsType>,
    victim: &DEntry<VirtioFsType>,
    name: &[u8],
    op: Opcode,
) -> Result {
    check_name(name)?;
    let s = dir.super_block().data();
    let nodeid = dir.data().nodeid;
    let r = s.call(op, request_len(0, &[name.len()]), 0, |buf, unique| {
        request::with_name(buf, header(op, unique, nodeid), name)
    });
    if let Err(e) = r {
        // As C: the name may be gone (or going) whatever we were told.
        if e == ENOENT || e == EINTR || e == ERESTARTSYS {
            victim.set_valid_until(0);
        }
        return Err(e);
    }
    entry_unlinked(&s, victim);
    inode::invalidate_attrs(dir);
    Ok(())
}

/// The dentry operations of every dentry.
pub(crate) struct DentryOps;

#[vtable]
impl dentry::Operations for DentryOps {
    type FileSystem = VirtioFsType;

    /// As C's `fuse_dentry_revalidate`: an expired (or forced) positive
    /// entry is looked up again; the same node keeps the dentry and
    /// refreshes the inode, another node or none drops it. An expired
    /// negative entry is dropped (the VFS looks the name up afresh).
    fn revalidate(d: &DEntry<VirtioFsType>, name: &[u8], force: bool) -> Result<bool> {
        let inode = d.inode();
        let bad = inode.is_some_and(|i| i.data().bad.load(Ordering::Acquire));
        let fresh = !force && d.valid_until() >= jiffies64();
        if let Some(valid) = cached_verdict(bad, inode.is_some(), d.is_root(), fresh) {
            return Ok(valid);
        }
        let Some(inode) = inode else {
            return Ok(false);
        };
        let parent = d.parent();
        let Some(dir) = parent.inode() else {
            return Ok(false);
        };
        let sb = inode.super_block();
        let s = sb.data();
        let version = s.attr_version();
        let (e, forget) = match s.lookup(dir.data().nodeid, name) {
            Ok(Looked::Found(e, forget)) => (e, forget),
            Ok(Looked::Missing(_)) => return Ok(false),
            Err(e) if e == ENOMEM || e == ERESTARTSYS || e == EINTR => return Err(e),
            Err(_) => return Ok(false),
        };
        let info = inode.data();
        if e.nodeid != info.nodeid {
            s.forget_one(forget, e.nodeid);
            return Ok(false);
        }
        info.nlookup.fetch_add(1, Ordering::Relaxed);
        if inode::is_stale(inode, e.generation, &e.attr) {
            info.bad.store(true, Ordering::Release);
            return Ok(false);
        }
        inode::refresh(&s, inode, &e.attr, expiry(e.attr_valid), version);
        d.set_valid_until(expiry(e.entry_valid));
        Ok(true)
    }

    /// Without sleeping: a bad inode or an expired negative entry is
    /// invalid, an unexpired entry valid; anything else needs a LOOKUP.
    fn revalidate_rcu(d: &RcuDEntry<VirtioFsType>, force: bool) -> Result<bool> {
        let inode = d.inode();
        let bad = inode
            .as_ref()
            .is_some_and(|i| i.data().bad.load(Ordering::Acquire));
        let fresh = !force && d.valid_until() >= jiffies64();
        cached_verdict(bad, inode.is_some(), d.is_root(), fresh).ok_or(ECHILD)
    }

    /// As C's `fuse_dentry_delete`: an expired entry is not kept once
    /// unused.
    fn delete(d: &LockedDEntry<VirtioFsType>) -> bool {
        d.valid_until() < jiffies64()
    }
}

/// What revalidation can decide without asking the host (both walk modes):
/// a bad inode is invalid, the root or an unexpired entry valid, an
/// expired negative entry invalid (the VFS looks the name up afresh);
/// `None`: an expired positive entry needs a LOOKUP.
fn cached_verdict(bad: bool, positive: bool, root: bool, fresh: bool) -> Option<bool> {
    if bad {
        Some(false)
    } else if root || fresh {
        Some(true)
    } else if !positive {
        Some(false)
    } else {
        None
    }
}

/// An open directory: the server's handle and its RELEASEDIR, prepared at
/// open so that closing never allocates.
pub(crate) struct DirHandle {
    fh: u64,
    release: Option<Request>,
}

/// A RELEASE or RELEASEDIR (`op`) request of handle 0, to fill
/// ([`fill_release`]).
pub(crate) fn prepare_release(s: &Session, op: Opcode, nodeid: u64, flags: u32) -> Result<Request> {
    let unique = s.fs.conn.new_unique();
    let minor = s.params().map_or(0, |p| p.minor);
    Request::new(
        unique,
        op,
        ReplySpec::for_opcode(op, 0, minor),
        request_len(ReleaseIn::SIZE, &[]),
        0,
        |buf| {
            request::release(buf, Header::nocreds(op, unique, nodeid), 0, flags).map_err(|_| EINVAL)
        },
    )
}

/// Fills a prepared RELEASE/RELEASEDIR with the handle it releases.
pub(crate) fn fill_release(
    req: &mut Request,
    op: Opcode,
    nodeid: u64,
    fh: u64,
    flags: u32,
) -> Result {
    let unique = req.unique();
    req.rewrite(|buf| {
        request::release(buf, Header::nocreds(op, unique, nodeid), fh, flags).map_err(|_| EINVAL)
    })
}

/// For an abandoned OPEN/OPENDIR answered later: release the handle it
/// opened. The node id and flags were filled when the request was
/// prepared; only the handle is new.
pub(crate) fn release_opened(req: &mut Request, payload: &[u8]) -> bool {
    let Ok(out) = reply::decode_open(payload) else {
        return false;
    };
    set_release_fh(req, out.fh)
}

/// For an abandoned CREATE answered later: release the handle it opened,
/// of the node it made (prepared before either was known).
pub(crate) fn release_created(req: &mut Request, payload: &[u8]) -> bool {
    let Ok((e, out)) = reply::decode_create(payload) else {
        return false;
    };
    let node = req.rewrite(|buf| {
        // `fuse_in_header.nodeid` is at byte 16.
        buf.get_mut(16..24)
            .ok_or(EINVAL)?
            .copy_from_slice(&e.nodeid.to_le_bytes());
        Ok(buf.len())
    });
    node.is_ok() && set_release_fh(req, out.fh)
}

/// Makes a prepared RELEASE drop the `flock` lock of `lock_owner` too
/// (C's `FUSE_RELEASE_FLOCK_UNLOCK` for a file with `ff->flock`).
pub(crate) fn set_release_flock(req: &mut Request, lock_owner: u64) -> Result {
    req.rewrite(|buf| {
        // `fuse_release_in`: fh, flags, release_flags at 12, lock_owner
        // at 16 (after the header).
        let at = InHeader::SIZE;
        let flags = buf.get_mut(at + 12..at + 16).ok_or(EINVAL)?;
        let old = u32::from_le_bytes([flags[0], flags[1], flags[2], flags[3]]);
        flags.copy_from_slice(&(old | FUSE_RELEASE_FLOCK_UNLOCK).to_le_bytes());
        buf.get_mut(at + 16..at + 24)
            .ok_or(EINVAL)?
            .copy_from_slice(&lock_owner.to_le_bytes());
        Ok(buf.len())
    })
}

/// Sets the handle of a prepared RELEASE/RELEASEDIR.
fn set_release_fh(req: &mut Request, fh: u64) -> bool {
    let out_fh = fh;
    req.rewrite(|buf| {
        // `fuse_release_in.fh` is the first field after the header.
        let at = InHeader::SIZE;
        let fh = buf.get_mut(at..at + 8).ok_or(EINVAL)?;
        fh.copy_from_slice(&out_fh.to_le_bytes());
        Ok(buf.len())
    })
    .is_ok()
}

/// The open flags sent with OPEN/OPENDIR (C's `fuse_do_open`: without the
/// creation flags).
pub(crate) fn open_flags(file: &File) -> u32 {
    file.flags() & !(bindings::O_CREAT | bindings::O_EXCL | bindings::O_NOCTTY)
}

/// The file operations of directories.
pub(crate) struct DirFile;

#[vtable]
impl file::Operations for DirFile {
    type FileSystem = VirtioFsType;
    type Data = KBox<DirHandle>;
    const DIRECTORY: bool = true;

    fn open(inode: &Inode<VirtioFsType>, file: &File) -> Result<KBox<DirHandle>> {
        let s = inode.super_block().data();
        let nodeid = inode.data().nodeid;
        let flags = open_flags(file);
        // Everything is allocated before OPENDIR, so nothing can fail
        // between the host opening a handle and the guest owning it.
        let orphan = Orphan::new(
            s.fs.conn.request_queue()?.clone(),
            prepare_release(&s, Opcode::Releasedir, nodeid, flags)?,
            release_opened,
        );
        let mut handle = KBox::new(
            DirHandle {
                fh: 0,
                release: Some(prepare_release(&s, Opcode::Releasedir, nodeid, flags)?),
            },
            GFP_KERNEL,
        )?;
        let reply = s.call_with(
            Opcode::Opendir,
            request_len(OpenIn::SIZE, &[]),
            OpenOut::SIZE,
            |buf, unique| request::open(buf, header(Opcode::Opendir, unique, nodeid), flags),
            Some(orphan),
        )?;
        let out = match reply::decode_open(reply.payload()) {
            Ok(out) => out,
            Err(e) => {
                warn_ratelimited!("OPENDIR reply refused: {:?}\n", e);
                return Err(EIO);
            }
        };
        handle.fh = out.fh;
        if let Some(r) = handle.release.as_mut() {
            fill_release(r, Opcode::Releasedir, nodeid, out.fh, flags)?;
        }
        Ok(handle)
    }

    /// RELEASEDIR is waited for, as C's virtio-fs does (`ctx->destroy` makes
    /// `fuse_file_release` synchronous there): the host has released the
    /// handle when close(2) returns, and no release can reach it after
    /// DESTROY.
    fn release(inode: &Inode<VirtioFsType>, _file: &File, mut h: KBox<DirHandle>) {
        if let Some(req) = h.release.take() {
            let s = inode.super_block().data();
            if s.fs.conn.send_uninterruptible(req).is_err() {
                warn_ratelimited!("RELEASEDIR of handle {} failed\n", h.fh);
            }
        }
    }

    /// FSYNCDIR of the handle; a server without it is not asked again.
    fn fsync(file: &File, h: &DirHandle, _start: i64, _end: i64, datasync: bool) -> Result {
        // SAFETY: A file operation of ours, on an open directory of ours.
        let inode = unsafe { crate::file::file_inode(file) };
        let s = inode.super_block().data();
        crate::file::fsync_common(&s, inode, Opcode::Fsyncdir, h.fh, datasync)
    }

    /// One READDIR or READDIRPLUS per call, from the position the VFS
    /// gives, as C's uncached `fuse_readdir`: entries go to the caller
    /// until its buffer is full; the position is the server's cookie of
    /// the last one. READDIRPLUS when negotiated: always, or with
    /// READDIRPLUS_AUTO from the start of the listing or after lookups in
    /// the directory (C's `fuse_use_readdirplus`).
    fn iterate_shared(
        file: &File,
        h: &DirHandle,
        inode: &Inode<VirtioFsType>,
        ctx: &mut DirEmitter,
    ) -> Result {
        let s = inode.super_block().data();
        let nodeid = inode.data().nodeid;
        // As C: a directory whose host node changed is not listed.
        if inode.data().bad.load(Ordering::Acquire) {
            return Err(EIO);
        }
        // As C's `fuse_use_readdirplus`: the advice is taken (cleared) by
        // every listing.
        let advised = inode.data().rdplus_advise.swap(false, Ordering::Relaxed);
        if s.readdirplus() && (!s.readdirplus_auto() || advised || ctx.pos() == 0) {
            // SAFETY: A directory of ours is opened through `DirFile`.
            let dentry = unsafe { file.dentry::<VirtioFsType>() };
            return readdirplus(&s, h, inode, dentry, ctx);
        }
        let size = kernel::page::PAGE_SIZE as u32;
        let pos = ctx.pos() as u64;
        let reply = s.call(
            Opcode::Readdir,
            request_len(ReadIn::SIZE, &[]),
            size as usize,
            |buf, unique| {
                request::read(
                    buf,
                    header(Opcode::Readdir, unique, nodeid),
                    h.fh,
                    pos,
                    size,
                    0,
                    None,
                )
            },
        )?;
        for d in Dirents::new(reply.payload()) {
            let d = d.map_err(|e| {
                warn_ratelimited!("READDIR reply refused: {:?}\n", e);
                EIO
            })?;
            if !ctx.emit(d.name, d.ino, d.typ) {
                break;
            }
            ctx.set_pos(d.off as i64);
        }
        Ok(())
    }
}

/// One READDIRPLUS (C's `fuse_readdir_uncached` with `plus`): entries go
/// to the caller until its buffer is full, and every entry the host sent
/// (it counted a lookup of each) seeds the dcache with its inode and
/// attributes, or is given back (C's `parse_dirplusfile`).
fn readdirplus(
    s: &Session,
    h: &DirHandle,
    dir: &Inode<VirtioFsType>,
    dentry: &DEntry<VirtioFsType>,
    ctx: &mut DirEmitter,
) -> Result {
    let nodeid = dir.data().nodeid;
    let size = kernel::page::PAGE_SIZE as u32;
    let pos = ctx.pos() as u64;
    let version = s.attr_version();
    // Waited for whatever signals come: an abandoned reply would drop the
    // lookups it counted (C waits out every request it sent).
    let reply = s.call_waited(
        Opcode::Readdirplus,
        request_len(ReadIn::SIZE, &[]),
        size as usize,
        |buf, unique| {
            request::read(
                buf,
                header(Opcode::Readdirplus, unique, nodeid),
                h.fh,
                pos,
                size,
                0,
                None,
            )
        },
    )?;
    let mut over = false;
    for d in DirentsPlus::new(reply.payload()) {
        let d = d.map_err(|e| {
            warn_ratelimited!("READDIRPLUS reply refused: {:?}\n", e);
            EIO
        })?;
        if !over {
            over = !ctx.emit(d.dirent.name, d.dirent.ino, d.dirent.typ);
            if !over {
                ctx.set_pos(d.dirent.off as i64);
            }
        }
        // As C: node id 0 means no attributes for this one, and "." and
        // ".." name nothing new.
        if d.entry.nodeid == 0 || d.dirent.is_dot_or_dotdot() {
            continue;
        }
        if link_entry(s, dir, dentry, &d, version).is_err() {
            // The host counted a lookup the guest does not keep.
            s.forget_one(session::prepare_forget(s).ok(), d.entry.nodeid);
        }
    }
    Ok(())
}

/// Seeds the dcache with entry `d` of directory `dir` (dentry `parent`),
/// the reply to a request sent at attribute version `version` (C's
/// `fuse_direntplus_link`): a cached dentry naming the same node gets its
/// attributes refreshed and its lookup counted; a new one gets the inode.
/// A cached dentry naming nothing or another node expires now (its next
/// use looks the name up), a stale inode is marked bad (C invalidates the
/// dentry and retries); the lookup is then given back (the caller, on
/// `Err`).
fn link_entry(
    s: &Session,
    dir: &Inode<VirtioFsType>,
    parent: &DEntry<VirtioFsType>,
    d: &DirentPlus<'_>,
    version: u64,
) -> Result {
    // Rejects node id 0 and the root, and bad attributes.
    let e = d.check_entry().map_err(|err| {
        warn_ratelimited!("READDIRPLUS entry refused: {:?}\n", err);
        EIO
    })?;
    let sb = dir.super_block();
    // The entry's inode (the cached one, or a new one) with this lookup
    // counted in it and the reply's attributes.
    let counted_inode = || {
        inode::iget(
            sb,
            s,
            e.nodeid,
            e.generation,
            &e.attr,
            expiry(e.attr_valid),
            1,
            version,
        )
    };
    // SAFETY: Called from `iterate_shared` of `parent`'s directory, whose
    // `i_rwsem` the VFS holds shared until after every `InLookup` made
    // here is dropped (before this returns).
    match unsafe { parent.child(d.dirent.name) }? {
        Child::Cached(dentry) => {
            let Some(inode) = dentry.inode() else {
                dentry.set_valid_until(0);
                return Err(ENOENT);
            };
            if inode.data().nodeid != e.nodeid {
                dentry.set_valid_until(0);
                return Err(EINVAL);
            }
            if inode::is_stale(inode, e.generation, &e.attr) {
                inode.data().bad.store(true, Ordering::Release);
                dentry.set_valid_until(0);
                return Err(EINVAL);
            }
            if inode.data().bad.load(Ordering::Acquire) {
                return Err(EIO);
            }
            // The cached inode: its attributes refreshed, the lookup
            // counted.
            counted_inode()?;
            dentry.set_valid_until(expiry(e.entry_valid));
            Ok(())
        }
        Child::InLookup(new) => {
            let i = counted_inode()?;
            // On failure the lookup stays counted in the inode (its
            // reference went with the splice), given back at its eviction.
            let _ = new.splice(i, expiry(e.entry_valid));
            Ok(())
        }
    }
}
