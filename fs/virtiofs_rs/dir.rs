// SPDX-License-Identifier: GPL-2.0-only

//! Directories: LOOKUP, dentry revalidation with the server's entry
//! timeouts (negative entries expire too, as a shared file system needs),
//! and listing (OPENDIR, READDIR, RELEASEDIR).

use crate::errno::enametoolong;
use crate::inode;
use crate::proto::fuse::{
    abi::{
        InHeader, Opcode, OpenIn, OpenOut, ReadIn, ReleaseIn, Wire, FUSE_NAME_MAX, FUSE_ROOT_ID,
    },
    dirent::Dirents,
    reply::{self, ReplySpec},
    request::{self, request_len, Header},
};
use crate::ratelimit::warn_ratelimited;
use crate::session::{expiry, header, jiffies64, Looked, Session};
use crate::superblock::VirtioFsType;
use crate::transport::{Orphan, Request};
use core::sync::atomic::Ordering;
use kernel::{
    bindings,
    fs::{
        dentry,
        dentry::{LockedDEntry, RcuDEntry},
        file::{self, DirEmitter, File},
        inode::{Entry, Operations},
        DEntry, Inode,
    },
    prelude::*,
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
                match inode::iget(sb, &s, e.nodeid, e.generation, &e.attr, 1) {
                    Ok(i) => Ok(Entry {
                        inode: Some(i),
                        valid_until: expiry(e.entry_valid),
                    }),
                    Err(err) => {
                        // The server counted this lookup: give it back.
                        s.forget_one(forget, e.nodeid);
                        Err(err)
                    }
                }
            }
        }
    }
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
        inode::refresh(inode, &e.attr);
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

/// A RELEASEDIR request of handle 0, to fill ([`fill_release`]).
fn prepare_releasedir(s: &Session, nodeid: u64, flags: u32) -> Result<Request> {
    let unique = s.fs.conn.new_unique();
    let minor = s.params().map_or(0, |p| p.minor);
    Request::new(
        unique,
        Opcode::Releasedir,
        ReplySpec::for_opcode(Opcode::Releasedir, 0, minor),
        request_len(ReleaseIn::SIZE, &[]),
        0,
        |buf| {
            request::release(
                buf,
                Header::nocreds(Opcode::Releasedir, unique, nodeid),
                0,
                flags,
            )
            .map_err(|_| EINVAL)
        },
    )
}

/// Fills a prepared RELEASEDIR with the handle it releases.
fn fill_release(req: &mut Request, nodeid: u64, fh: u64, flags: u32) -> Result {
    let unique = req.unique();
    req.rewrite(|buf| {
        request::release(
            buf,
            Header::nocreds(Opcode::Releasedir, unique, nodeid),
            fh,
            flags,
        )
        .map_err(|_| EINVAL)
    })
}

/// For an abandoned OPENDIR answered later: release the handle it opened.
/// The node id and flags were filled when the request was prepared; only
/// the handle is new.
fn release_opened(req: &mut Request, payload: &[u8]) -> bool {
    let Ok(out) = reply::decode_open(payload) else {
        return false;
    };
    req.rewrite(|buf| {
        // `fuse_release_in.fh` is the first field after the header.
        let at = InHeader::SIZE;
        let fh = buf.get_mut(at..at + 8).ok_or(EINVAL)?;
        fh.copy_from_slice(&out.fh.to_le_bytes());
        Ok(buf.len())
    })
    .is_ok()
}

/// The open flags sent with OPEN/OPENDIR (C's `fuse_do_open`: without the
/// creation flags).
fn open_flags(file: &File) -> u32 {
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
            prepare_releasedir(&s, nodeid, flags)?,
            release_opened,
        );
        let mut handle = KBox::new(
            DirHandle {
                fh: 0,
                release: Some(prepare_releasedir(&s, nodeid, flags)?),
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
            fill_release(r, nodeid, out.fh, flags)?;
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

    /// One READDIR per call, from the position the VFS gives, as C's
    /// uncached `fuse_readdir`: entries go to the caller until its buffer
    /// is full; the position is the server's cookie of the last one.
    fn iterate_shared(
        _file: &File,
        h: &DirHandle,
        inode: &Inode<VirtioFsType>,
        ctx: &mut DirEmitter,
    ) -> Result {
        let s = inode.super_block().data();
        let nodeid = inode.data().nodeid;
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
