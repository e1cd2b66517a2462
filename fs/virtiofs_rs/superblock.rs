// SPDX-License-Identifier: GPL-2.0-only

//! The file system type "virtiofs": mount options, the superblock, the
//! root inode, statfs, show_options, eviction and umount.
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

use crate::dir::DentryOps;
use crate::inode::{self, InodeInfo};
use crate::proto::fuse::{
    abi::{Opcode, FUSE_ROOT_ID},
    reply::{self, FileType},
    request::{self, request_len},
};
use crate::proto::options::{self, DaxMode, OptionError};
use crate::registry;
use crate::session::{self, Session};
use core::sync::atomic::Ordering;
use kernel::{
    c_str,
    error::code::ENOPARAM,
    fs::{
        self, dentry, sb::SeqFile, DEntry, FileSystem, FsContext, Inode, Kstatfs, New, SuperBlock,
    },
    prelude::*,
    sync::Arc,
    types::ARef,
};

/// `FUSE_SUPER_MAGIC`.
const FUSE_SUPER_MAGIC: u64 = 0x6573_5546;

/// The options of one mount attempt.
pub(crate) struct MountOptions {
    dax: DaxMode,
}

/// The file system type.
pub(crate) struct VirtioFsType;

#[vtable]
impl FileSystem for VirtioFsType {
    /// As C (`generic_delete_inode`): an unused inode is evicted at once,
    /// so its FORGET gives the host's node back while the mount lives.
    const DROP_UNUSED_INODES: bool = true;
    const NAME: &'static CStr = c_str!("virtiofs");
    const FLAGS: i32 = fs::FS_ALLOW_IDMAP;

    type Context = MountOptions;
    type Data = Pin<KBox<Session>>;
    type INodeData = InodeInfo;

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
        let Some(fs) = registry::find(tag) else {
            pr_info!("virtiofs: tag <{}> not found\n", tag);
            return Err(EINVAL);
        };
        let dax = fc.context().dax;
        if dax == DaxMode::Always && fs.window.is_none() {
            pr_err!("virtiofs: dax can't be enabled as filesystem device does not support it\n");
            return Err(EINVAL);
        }
        let dax_conn = match &fs.window {
            Some(w) if dax != DaxMode::Never => {
                Some(crate::dax::DaxConn::new(w.dax.clone(), w.region.len)?)
            }
            _ => None,
        };
        let session = KBox::pin_init(Session::new(fs, dax, dax_conn), GFP_KERNEL)?;
        fc.get_tree_shared(session, fill_super)
    }

    fn same_super(existing: Pin<&Session>, new: Pin<&Session>) -> bool {
        Arc::ptr_eq(&existing.fs, &new.fs)
    }

    fn kill_sb(sb: &SuperBlock<Self>) {
        sb.data().destroy();
    }

    fn evict_inode(inode: &Inode<Self>) {
        let info = inode.data();
        if info.dax.is_some() {
            let s = inode.super_block().data();
            if let Some(d) = s.dax_conn() {
                d.evict(&s, inode);
            }
        }
        if let Some(req) = info.take_forget() {
            inode.super_block().data().forget_with(
                req,
                info.nodeid,
                info.nlookup.load(Ordering::Relaxed),
            );
        }
    }

    /// As C's `fuse_write_inode`: a file with a writeback cache sends the
    /// times its writes set; nothing else is dirtied.
    fn write_inode(inode: &Inode<Self>, _sync: bool) -> Result {
        if inode::writeback_cached(&inode.super_block().data(), inode) {
            inode::flush_times(inode)
        } else {
            Ok(())
        }
    }

    /// As C: the statistics of the node the path is in (a host submount
    /// may differ from the root's).
    fn statfs(d: &DEntry<Self>, buf: &mut Kstatfs) -> Result {
        let nodeid = d.inode().map_or(FUSE_ROOT_ID, |i| i.data().nodeid);
        let sb = d.super_block();
        let s = sb.data();
        let reply = s.call(Opcode::Statfs, request_len(0, &[]), 80, |b, unique| {
            request::header_only(b, session::header(Opcode::Statfs, unique, nodeid))
        })?;
        let st = reply::decode_statfs(reply.payload()).map_err(|_| EIO)?;
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

    /// As C: only a DAX mode other than the default is shown.
    fn show_options(sb: &SuperBlock<Self>, out: &mut SeqFile) -> Result {
        if let Some(opt) = sb.data().dax.show() {
            out.write(b",");
            out.write(opt.as_bytes());
        }
        Ok(())
    }
}

/// The extended attribute handlers.
const XATTR_HANDLERS: kernel::fs::xattr::Handlers<VirtioFsType> =
    kernel::fs::xattr::Handlers::new::<crate::xattr::Xattrs>();

/// The dentry operations of every dentry.
const DENTRY_OPS: dentry::Ops<VirtioFsType> = dentry::Ops::new::<DentryOps>();

fn fill_super(sb: &mut SuperBlock<VirtioFsType, New>) -> Result<ARef<Inode<VirtioFsType>>> {
    let (attr, timeout) = {
        let s = sb.data();
        s.init()?;
        // As C: a failed fill sends no DESTROY (the mount may have failed
        // because the host is stuck or the task was killed).
        let (attr, timeout) = s.getattr(FUSE_ROOT_ID, None)?;
        if attr.file_type() != FileType::Directory {
            pr_err!(
                "virtiofs: the root is not a directory (mode {:#o})\n",
                attr.get().mode
            );
            return Err(EIO);
        }
        (attr, timeout)
    };
    // As C (`process_init_reply`): the host's time granularity (checked
    // by the decoder), so times the guest sets (a writeback cache's) are
    // the ones the host keeps.
    let gran = sb.data().params().and_then(|p| p.time_gran).unwrap_or(1);
    // As C (fuse_sb_defaults): no idmapped mounts unless the server
    // negotiates FUSE_ALLOW_IDMAP, which this driver does not offer.
    sb.set_magic(FUSE_SUPER_MAGIC)
        .set_blocksize_bits(kernel::page::PAGE_SHIFT as u8)
        .set_maxbytes(i64::MAX)
        .set_time_gran(gran)
        .add_iflags(fs::SB_I_NOIDMAP | fs::SB_I_IMA_UNVERIFIABLE_SIGNATURE)
        .set_dentry_ops(DENTRY_OPS)
        .set_xattr_handlers(XATTR_HANDLERS);
    // As C: with FUSE_HANDLE_KILLPRIV_V2 inodes found free of set-id bits
    // and security xattrs skip that check on every write (one GETXATTR
    // each otherwise) until their attributes are refreshed.
    if sb.data().killpriv_v2() {
        sb.set_nosec();
    }
    // As C (`fuse_fill_super_common`): always `SB_POSIXACL`, so the VFS
    // leaves the umask to the driver (applied in the guest unless the
    // host negotiated FUSE_DONT_MASK), and ACLs the host enforces
    // (FUSE_POSIX_ACL) take part in permission checks.
    sb.set_posixacl();
    // As C (`fuse_bdi_init`): a backing device of its own, so dirty folios
    // are written back, strictly held to 1% of the dirty threshold.
    sb.setup_bdi(1, true)?;
    let s = sb.data();
    if let Some(d) = s.dax_conn() {
        d.register_sysfs(s.fs.index);
    }
    inode::iget(
        &*sb,
        &s,
        FUSE_ROOT_ID,
        0,
        &attr,
        session::expiry(timeout),
        0,
        0,
    )
}
