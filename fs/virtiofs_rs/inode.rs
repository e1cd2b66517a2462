// SPDX-License-Identifier: GPL-2.0-only

//! Inodes: what virtiofs-rs keeps per inode (embedded in the inode), the
//! attributes the server sends, and C's `fuse_iget` semantics.

use crate::dir::{DirFile, DirOps};
use crate::proto::fuse::{
    abi::FUSE_ROOT_ID,
    reply::{FileType, ValidAttr},
};
use crate::session::{prepare_forget, Session};
use crate::superblock::VirtioFsType;
use crate::transport::Request;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    fs::{
        file,
        inode::{self, Attrs, Iget, Ops},
        Inode, SuperBlock,
    },
    new_spinlock,
    prelude::*,
    sync::SpinLock,
    types::ARef,
};

/// The inode operations of directories.
pub(crate) const DIR_IOPS: Ops<VirtioFsType> = Ops::new::<DirOps>();

/// The file operations of directories.
pub(crate) const DIR_FOPS: file::Ops<VirtioFsType> = file::Ops::new::<DirFile>();

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
    /// The FORGET sent at eviction, allocated with the inode (as C's
    /// `fi->forget`), so eviction, possibly in reclaim, never allocates
    /// and the host never keeps a node the guest forgot. `None` for the
    /// root. The lock also serialises attribute refreshes.
    #[pin]
    forget: SpinLock<Option<Request>>,
}

impl InodeInfo {
    fn new(
        nodeid: u64,
        generation: u64,
        nlookup: u64,
        forget: Option<Request>,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(InodeInfo {
            nodeid,
            generation,
            nlookup: AtomicU64::new(nlookup),
            bad: AtomicBool::new(false),
            forget <- new_spinlock!(forget, "virtiofs_rs::InodeInfo::forget"),
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

/// Refreshes a cached inode's attributes (serialised per inode).
pub(crate) fn refresh(inode: &Inode<VirtioFsType>, attr: &ValidAttr) {
    let _g = inode.data().forget.lock();
    inode.refresh_attrs(&attrs(attr));
}

/// Whether the server's node is no longer the one `inode` stands for: its
/// generation or its type changed (C's `fuse_stale_inode`).
pub(crate) fn is_stale(inode: &Inode<VirtioFsType>, generation: u64, attr: &ValidAttr) -> bool {
    inode.data().generation != generation
        || FileType::from_mode(inode.mode()) != Some(attr.file_type())
}

/// How many times `iget` retries after unhashing a stale inode.
const IGET_RETRIES: u32 = 3;

/// The inode of node `nodeid`, which a reply just named (`nlookup` lookups
/// counted by the server, 0 for the root): a new inode, or the cached one
/// with its attributes refreshed and its lookups counted. A cached inode
/// whose type or generation differs is marked bad and unhashed, and a new
/// one made (C's `fuse_iget`).
pub(crate) fn iget(
    sb: &SuperBlock<VirtioFsType, impl Sized>,
    s: &Session,
    nodeid: u64,
    generation: u64,
    attr: &ValidAttr,
    nlookup: u64,
) -> Result<ARef<Inode<VirtioFsType>>> {
    for _ in 0..IGET_RETRIES {
        match sb.iget(nodeid)? {
            Iget::New(mut new) => {
                // As C's `fuse_init_inode`: the server keeps the times
                // (no writeback cache here).
                new.set_attrs(&attrs(attr))
                    .add_flags(inode::S_NOATIME | inode::S_NOCMTIME);
                match attr.file_type() {
                    FileType::Directory => {
                        new.set_iops(DIR_IOPS).set_fops(DIR_FOPS);
                    }
                    FileType::CharDev | FileType::BlockDev | FileType::Fifo | FileType::Socket => {
                        new.init_special(attr.get().mode, attr.get().rdev);
                    }
                    // Regular files and symlinks: the file system issue.
                    FileType::Regular | FileType::Symlink => {}
                }
                let forget = if nodeid == FUSE_ROOT_ID {
                    None
                } else {
                    Some(prepare_forget(s)?)
                };
                return new.init(InodeInfo::new(nodeid, generation, nlookup, forget));
            }
            Iget::Cached(inode) => {
                let info = inode.data();
                if !is_stale(&inode, generation, attr) {
                    info.nlookup.fetch_add(nlookup, Ordering::Relaxed);
                    refresh(&inode, attr);
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
