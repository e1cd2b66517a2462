// SPDX-License-Identifier: GPL-2.0-only

//! The file system type "virtiofs": mount options, the FUSE session of a
//! superblock, the root inode, statfs and umount.
//!
//! `mount -t virtiofs [-o dax|dax=always|never|inode] TAG DIR` finds the
//! device by tag, and (as in C) a second mount of the same tag shares the
//! superblock and ignores its options.
//!
//! Deliberate differences from the C driver:
//! - FUSE_INIT is sent and answered during the mount, not in the
//!   background: a server that fails INIT (or proposes a `map_alignment`
//!   above 2 MiB) fails the mount instead of every later request.
//! - The root inode comes from FUSE_GETATTR at mount time.

use crate::device::VirtioFs;
use crate::errno::enametoolong;
use crate::proto::fuse::{
    abi::{init_flags, Opcode, FUSE_ROOT_ID},
    reply::{self, ReplySpec},
    request::{self, Header},
};
use crate::proto::options::{self, DaxMode, OptionError};
use crate::sysfs;
use crate::transport::Request;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{
    c_str,
    error::code::ENOPARAM,
    ffi::c_void,
    fs::{self, FileSystem, FsContext, Inode, InodeRef, Kstatfs, NewInode, SuperBlock},
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// `FUSE_SUPER_MAGIC`.
const FUSE_SUPER_MAGIC: u64 = 0x6573_5546;

/// Room for small requests: header, fixed arguments, a name.
const SMALL_REQUEST: usize = 512;

/// The options of one mount attempt.
pub(crate) struct MountOptions {
    dax: DaxMode,
}

/// A superblock's FUSE session with one device.
pub(crate) struct Session {
    fs: Arc<VirtioFs>,
    /// The negotiated protocol minor version (0 until INIT is answered).
    minor: AtomicU32,
    dax: DaxMode,
    /// Set once DESTROY is sent: forgets of inodes evicted afterwards are
    /// dropped, as C drops them on a disconnected connection.
    destroyed: AtomicBool,
}

/// What virtiofs-rs keeps per inode.
pub(crate) struct InodeInfo {
    /// The server's node id.
    nodeid: u64,
    /// How many LOOKUP replies named this node: what FORGET gives back.
    nlookup: AtomicU64,
}

impl Session {
    /// Sends a request built by `build` and waits for its reply; returns it
    /// with the payload length.
    fn call(
        &self,
        opcode: Opcode,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
    ) -> Result<(Arc<Request>, u32)> {
        let unique = self.fs.new_unique();
        let minor = self.minor.load(Ordering::Relaxed);
        let spec = ReplySpec::for_opcode(opcode, reply_capacity as u32, minor);
        let req = Request::new(
            unique,
            opcode as u32,
            spec,
            SMALL_REQUEST,
            reply_capacity,
            |buf| build(buf, unique).map_err(|_| EINVAL),
        )?;
        let len = self.fs.send(&req)?;
        Ok((req, len))
    }

    /// FUSE_INIT: negotiates the session.
    fn init(&self) -> Result {
        let mut offered = init_flags::FUSE_INIT_EXT;
        if self.fs.window.is_some() {
            offered |= init_flags::FUSE_MAP_ALIGNMENT;
        }
        if matches!(self.dax, DaxMode::InodeDefault | DaxMode::Inode) {
            offered |= init_flags::FUSE_HAS_INODE_DAX;
        }
        let (req, len) = self.call(Opcode::Init, 64, |buf, unique| {
            request::init(buf, unique, 0, offered)
        })?;
        let params = reply::decode_init(req.payload(len), offered).map_err(|e| {
            pr_err!("FUSE_INIT reply refused: {:?}\n", e);
            EIO
        })?;
        self.minor.store(params.minor, Ordering::Relaxed);
        Ok(())
    }

    /// FUSE_FORGET of `nlookup` lookups of `nodeid`, on the hiprio queue,
    /// without waiting (no reply comes).
    fn forget(&self, nodeid: u64, nlookup: u64) {
        if nlookup == 0 || self.destroyed.load(Ordering::Acquire) {
            return;
        }
        let unique = self.fs.new_unique();
        let req = Request::new(
            unique,
            Opcode::Forget as u32,
            ReplySpec::NoReply,
            64,
            0,
            |buf| request::forget(buf, unique, nodeid, nlookup).map_err(|_| EINVAL),
        );
        match req {
            Ok(req) => {
                if self.fs.send_hiprio(&req).is_err() {
                    pr_warn!("virtiofs: FORGET of node {} not sent\n", nodeid);
                }
            }
            Err(_) => pr_warn!("virtiofs: no memory for FORGET of node {}\n", nodeid),
        }
    }

    /// FUSE_GETATTR of `nodeid`.
    fn getattr(&self, nodeid: u64) -> Result<reply::ValidAttr> {
        let (req, len) = self.call(Opcode::Getattr, 104, |buf, unique| {
            request::getattr(buf, Header::nocreds(Opcode::Getattr, unique, nodeid), None)
        })?;
        let (attr, _timeout) = reply::decode_attr_out(req.payload(len)).map_err(|e| {
            pr_warn!("GETATTR reply refused: {:?}\n", e);
            EIO
        })?;
        Ok(attr)
    }
}

/// The file system type.
pub(crate) struct VirtioFsType;

/// Takes a reference on a device the tag lookup found.
/// # Safety
///
/// `data` must be a `VirtioFs` listed by `device.rs` (the tag lookup
/// calls this under the list lock, while it is listed).
unsafe extern "C" fn get_device(data: *mut c_void) {
    // SAFETY: `data` is a `VirtioFs` listed by `device.rs`, alive while
    // listed; the lookup calls this under the list lock.
    let b = unsafe { ArcBorrow::<VirtioFs>::from_raw(data.cast_const().cast()) };
    let a: Arc<VirtioFs> = b.into();
    // The reference is taken over by `find_device` with `Arc::from_raw`.
    let _ = a.into_raw();
}

fn find_device(tag: &CStr) -> Option<Arc<VirtioFs>> {
    // SAFETY: Every listed pointer is a `VirtioFs` (see `get_device`).
    let p = unsafe { sysfs::find(tag, get_device) };
    if p.is_null() {
        None
    } else {
        // SAFETY: `get_device` took a reference for us.
        Some(unsafe { Arc::from_raw(p.cast_const().cast()) })
    }
}

impl FileSystem for VirtioFsType {
    const NAME: &'static CStr = c_str!("virtiofs");
    const FLAGS: i32 = fs::FS_ALLOW_IDMAP;

    type Context = MountOptions;
    type Data = KBox<Session>;
    type InodeData = InodeInfo;

    fn init_context() -> Result<MountOptions> {
        Ok(MountOptions {
            dax: DaxMode::InodeDefault,
        })
    }

    fn parse_param(ctx: &mut MountOptions, key: &CStr, value: Option<&CStr>) -> Result {
        match options::parse_option(key.as_bytes(), value.map(|v| v.as_bytes())) {
            Ok(mode) => {
                ctx.dax = mode;
                Ok(())
            }
            // Let the VFS take "source" and the generic flags.
            Err(OptionError::Unknown) => Err(ENOPARAM),
            Err(OptionError::BadDaxValue) => {
                pr_err!("virtiofs: bad value for 'dax'\n");
                Err(EINVAL)
            }
        }
    }

    fn get_tree(fc: &mut FsContext<Self>) -> Result {
        let Some(tag) = fc.source() else {
            pr_err!("virtiofs: no source specified\n");
            return Err(EINVAL);
        };
        let Some(fs) = find_device(tag) else {
            pr_info!("virtiofs: tag <{}> not found\n", tag);
            return Err(EINVAL);
        };
        let dax = fc.context().dax;
        if dax == DaxMode::Always && fs.window.is_none() {
            pr_err!("virtiofs: dax can't be enabled as filesystem device does not support it\n");
            return Err(EINVAL);
        }
        let session = KBox::new(
            Session {
                fs,
                minor: AtomicU32::new(0),
                dax,
                destroyed: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?;
        fc.get_tree_shared(session, fill_super)
    }

    fn same_super(existing: &Session, new: &Session) -> bool {
        Arc::ptr_eq(&existing.fs, &new.fs)
    }

    fn kill_sb(sb: &SuperBlock<Self>) {
        let s = sb.data();
        // As C: DESTROY ends the session; its failure changes nothing here.
        let _ = s.call(Opcode::Destroy, 0, |buf, unique| {
            request::destroy(buf, unique)
        });
        s.destroyed.store(true, Ordering::Release);
    }

    fn lookup(dir: &Inode<Self>, name: &[u8]) -> Result<Option<InodeRef<Self>>> {
        if !request::valid_name(name) {
            return Err(if name.len() > 1024 {
                enametoolong()
            } else {
                EINVAL
            });
        }
        let sb = dir.super_block();
        let s = sb.data();
        let parent = dir.data().nodeid;
        let reply = s.call(Opcode::Lookup, 128, |buf, unique| {
            request::with_name(buf, Header::nocreds(Opcode::Lookup, unique, parent), name)
        });
        let (req, len) = match reply {
            Ok(r) => r,
            Err(e) if e == ENOENT => return Ok(None),
            Err(e) => return Err(e),
        };
        let entry = match reply::decode_lookup(req.payload(len)) {
            Ok(reply::Lookup::Negative { .. }) => return Ok(None),
            Ok(reply::Lookup::Positive(e)) => e,
            Err(e) => {
                pr_warn!("LOOKUP reply refused: {:?}\n", e);
                return Err(EIO);
            }
        };
        let attr = entry.attr;
        let inode = sb.iget(
            entry.nodeid,
            |new| {
                set_attrs(new, &attr);
                if attr.get().mode & 0o170000 == 0o040000 {
                    new.set_lookup_dir();
                }
                Ok(KBox::new(
                    InodeInfo {
                        nodeid: entry.nodeid,
                        nlookup: AtomicU64::new(1),
                    },
                    GFP_KERNEL,
                )?)
            },
            |info| {
                info.nlookup.fetch_add(1, Ordering::Relaxed);
            },
        );
        match inode {
            Ok(i) => Ok(Some(i)),
            Err(e) => {
                // The server counted this lookup: give it back.
                s.forget(entry.nodeid, 1);
                Err(e)
            }
        }
    }

    fn evict_inode(sb: &SuperBlock<Self>, data: Option<KBox<InodeInfo>>) {
        if let Some(info) = data {
            if info.nodeid != FUSE_ROOT_ID {
                sb.data()
                    .forget(info.nodeid, info.nlookup.load(Ordering::Relaxed));
            }
        }
    }

    fn statfs(sb: &SuperBlock<Self>, buf: &mut Kstatfs) -> Result {
        let s = sb.data();
        let (req, len) = s.call(Opcode::Statfs, 80, |b, unique| {
            request::header_only(b, Header::nocreds(Opcode::Statfs, unique, FUSE_ROOT_ID))
        })?;
        let st = reply::decode_statfs(req.payload(len)).map_err(|_| EIO)?;
        buf.f_type = FUSE_SUPER_MAGIC as _;
        buf.f_bsize = st.bsize as _;
        buf.f_frsize = st.frsize as _;
        buf.f_blocks = st.blocks;
        buf.f_bfree = st.bfree;
        buf.f_bavail = st.bavail;
        buf.f_files = st.files;
        buf.f_ffree = st.ffree;
        buf.f_namelen = st.namelen as _;
        Ok(())
    }
}

/// Sets what the VFS shows of `attr` on a new inode. `i_ino` is the node
/// id (the key the inode cache finds it by), not the host's inode number.
fn set_attrs(new: &mut NewInode<VirtioFsType>, attr: &reply::ValidAttr) {
    let a = attr.get();
    new.set_mode(a.mode)
        .set_owner(a.uid, a.gid)
        .set_size(attr.size(), a.blocks)
        .set_nlink(a.nlink)
        .set_times(
            (a.atime as i64, a.atimensec),
            (a.mtime as i64, a.mtimensec),
            (a.ctime as i64, a.ctimensec),
        );
}

fn fill_super(sb: &SuperBlock<VirtioFsType>) -> Result<InodeRef<VirtioFsType>> {
    let s = sb.data();
    s.init()?;
    let attr = s.getattr(FUSE_ROOT_ID)?;
    if attr.get().mode & 0o170000 != 0o040000 {
        pr_err!(
            "virtiofs: the root is not a directory (mode {:#o})\n",
            attr.get().mode
        );
        return Err(EIO);
    }
    sb.set_magic(FUSE_SUPER_MAGIC);
    sb.set_blocksize_bits(12);
    sb.set_maxbytes(i64::MAX);
    sb.set_time_gran(1);
    sb.iget(
        FUSE_ROOT_ID,
        |new| {
            set_attrs(new, &attr);
            new.set_lookup_dir();
            Ok(KBox::new(
                InodeInfo {
                    nodeid: FUSE_ROOT_ID,
                    nlookup: AtomicU64::new(0),
                },
                GFP_KERNEL,
            )?)
        },
        |_| {},
    )
}
