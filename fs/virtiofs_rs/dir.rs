// SPDX-License-Identifier: GPL-2.0-only

//! Directories: LOOKUP, dentry revalidation with the server's entry
//! timeouts (negative entries expire too, as a shared file system needs),
//! and listing (OPENDIR, READDIR, RELEASEDIR).

use crate::errno::enametoolong;
use crate::inode;
use crate::proto::fuse::{
    abi::{InHeader, Opcode, OpenIn, OpenOut, ReadIn, ReleaseIn, Wire, FUSE_NAME_MAX},
    dirent::Dirents,
    reply::{self, ReplySpec},
    request::{self, request_len, Header},
};
use crate::session::{expiry, jiffies64, Looked, Session};
use crate::superblock::VirtioFsType;
use crate::transport::{Orphan, Request};
use core::sync::atomic::Ordering;
use kernel::{
    bindings,
    fs::{
        dentry,
        file::{self, DirEmitter, File},
        inode::Operations,
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

    fn lookup(
        dir: &Inode<VirtioFsType>,
        dentry: &DEntry<VirtioFsType>,
    ) -> Result<Option<ARef<Inode<VirtioFsType>>>> {
        let name = dentry.name();
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
            Looked::Missing(timeout) => {
                // An ENOENT error is never cached (expires now), as C.
                dentry.set_valid_until(timeout.map_or(0, expiry));
                Ok(None)
            }
            Looked::Found(e) => {
                match inode::iget(sb, &s, e.nodeid, e.generation, &e.attr, 1) {
                    Ok(i) => {
                        dentry.set_valid_until(expiry(e.entry_valid));
                        Ok(Some(i))
                    }
                    Err(err) => {
                        // The server counted this lookup: give it back.
                        s.forget_one(e.nodeid);
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
    fn revalidate(d: &DEntry<VirtioFsType>, how: dentry::Revalidate) -> Result<bool> {
        let inode = d.inode();
        if let Some(i) = inode {
            if i.data().bad.load(Ordering::Acquire) {
                return Ok(false);
            }
        }
        if !how.force && d.valid_until() >= jiffies64() {
            return Ok(true);
        }
        let Some(inode) = inode else {
            return Ok(false);
        };
        if how.rcu {
            return Err(ECHILD);
        }
        let parent = d.parent();
        let Some(dir) = parent.inode() else {
            return Ok(false);
        };
        let sb = inode.super_block();
        let s = sb.data();
        let e = match s.lookup(dir.data().nodeid, d.name()) {
            Ok(Looked::Found(e)) => e,
            Ok(Looked::Missing(_)) => return Ok(false),
            Err(e) if e == ENOMEM || e == ERESTARTSYS || e == EINTR => return Err(e),
            Err(_) => return Ok(false),
        };
        let info = inode.data();
        if e.nodeid != info.nodeid {
            s.forget_one(e.nodeid);
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
            request::release(buf, Header::nocreds(Opcode::Releasedir, unique, nodeid), 0, flags)
                .map_err(|_| EINVAL)
        },
    )
}

/// Fills a prepared RELEASEDIR with the handle it releases.
fn fill_release(req: &mut Request, nodeid: u64, fh: u64, flags: u32) -> Result {
    let unique = req.unique();
    req.rewrite(|buf| {
        request::release(buf, Header::nocreds(Opcode::Releasedir, unique, nodeid), fh, flags)
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
        let orphan = Orphan::new(
            s.fs.conn.request_queue()?.clone(),
            prepare_releasedir(&s, nodeid, flags)?,
            release_opened,
        );
        let mut release = prepare_releasedir(&s, nodeid, flags)?;
        let reply = s.call_with(
            Opcode::Opendir,
            request_len(OpenIn::SIZE, &[]),
            OpenOut::SIZE,
            |buf, unique| {
                request::open(buf, Header::nocreds(Opcode::Opendir, unique, nodeid), flags)
            },
            Some(orphan),
        )?;
        let out = reply::decode_open(reply.payload()).map_err(|e| {
            pr_warn!("OPENDIR reply refused: {:?}\n", e);
            EIO
        })?;
        fill_release(&mut release, nodeid, out.fh, flags)?;
        Ok(KBox::new(
            DirHandle {
                fh: out.fh,
                release: Some(release),
            },
            GFP_KERNEL,
        )?)
    }

    /// RELEASEDIR goes in the background, as in C: close(2) does not wait
    /// for the host.
    fn release(inode: &Inode<VirtioFsType>, _file: &File, mut h: KBox<DirHandle>) {
        if let Some(req) = h.release.take() {
            let s = inode.super_block().data();
            if s.fs.conn.send_background(req).is_err() {
                pr_warn!("virtiofs: RELEASEDIR of handle {} not sent\n", h.fh);
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
                    Header::nocreds(Opcode::Readdir, unique, nodeid),
                    h.fh,
                    pos,
                    size,
                    0,
                )
            },
        )?;
        for d in Dirents::new(reply.payload()) {
            let d = d.map_err(|e| {
                pr_warn!("READDIR reply refused: {:?}\n", e);
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
