// SPDX-License-Identifier: GPL-2.0-only

//! Extended attributes (GETXATTR, SETXATTR, LISTXATTR, REMOVEXATTR), one
//! handler of every name as C's `fuse_xattr_handler`. A server that answers
//! `ENOSYS` is not asked again (`EOPNOTSUPP` from then on, as C).

use crate::errno::enosys;
use crate::proto::fuse::{
    abi::{
        GetxattrIn, GetxattrOut, Opcode, SetxattrIn, SetxattrInCompat, Wire,
        FUSE_SETXATTR_ACL_KILL_SGID,
    },
    request::{request_len, RequestBuilder},
};
use crate::ratelimit::warn_ratelimited;
use crate::session::{header, Optional};
use crate::superblock::VirtioFsType;
use core::sync::atomic::Ordering;
use kernel::{
    fs::{
        acl::{AclType, MntIdmap, PosixAcl},
        xattr::Handler,
        DEntry, Inode,
    },
    page::PAGE_SIZE,
    prelude::*,
    types::ARef,
};

/// `XATTR_SIZE_MAX`: the largest value.
const XATTR_SIZE_MAX: usize = 65536;
/// `XATTR_LIST_MAX`: the largest list of names.
const XATTR_LIST_MAX: usize = 65536;
/// `XATTR_NAME_MAX`: the longest name.
const XATTR_NAME_MAX: usize = 255;

/// The handler of every extended attribute name.
pub(crate) struct Xattrs;

/// `EOPNOTSUPP`.
fn eopnotsupp() -> Error {
    Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32))
}

/// `ENOSYS` means the server lacks `op`: remembered, and `EOPNOTSUPP`.
fn lacking(s: &crate::session::Session, op: Optional, e: Error) -> Error {
    if e == enosys() {
        s.set_lacks(op);
        eopnotsupp()
    } else {
        e
    }
}

/// The name's bytes, checked as the VFS would have (1 to
/// `XATTR_NAME_MAX` bytes).
fn name_bytes(name: &CStr) -> Result<&[u8]> {
    let n = name.as_bytes();
    if n.is_empty() || n.len() > XATTR_NAME_MAX {
        return Err(ERANGE);
    }
    Ok(n)
}

/// `EIO` for an inode whose host node changed under it.
fn check_bad(inode: &Inode<VirtioFsType>) -> Result {
    if inode.data().bad.load(Ordering::Acquire) {
        Err(EIO)
    } else {
        Ok(())
    }
}

/// GETXATTR or LISTXATTR (`op`, `name` for GETXATTR): the size (buffer
/// `None`) or the data into the buffer, at most `max` bytes.
fn get_or_list(
    inode: &Inode<VirtioFsType>,
    op: Opcode,
    name: Option<&[u8]>,
    buf: Option<&mut [u8]>,
    max: usize,
) -> Result<usize> {
    let s = inode.super_block().data();
    let nodeid = inode.data().nodeid;
    let want = buf.as_ref().map_or(0, |b| b.len().min(max));
    let inarg = GetxattrIn {
        size: want as u32,
        padding: 0,
    };
    let names: &[usize] = match name {
        Some(n) => &[n.len()][..],
        None => &[],
    };
    let capacity = if want == 0 { GetxattrOut::SIZE } else { want };
    let reply = s.call(
        op,
        request_len(GetxattrIn::SIZE, names),
        capacity,
        |b, unique| {
            let mut r = RequestBuilder::new(b, header(op, unique, nodeid))?.arg(&inarg)?;
            if let Some(n) = name {
                r = r.bytes(n)?.bytes(&[0])?;
            }
            r.finish()
        },
    )?;
    let data = reply.payload();
    match buf {
        None => {
            let out = GetxattrOut::decode(data).map_err(|_| EIO)?;
            Ok((out.size as usize).min(max))
        }
        Some(b) => {
            // The reply was validated to at most `want` bytes.
            let n = data.len().min(want);
            b[..n].copy_from_slice(&data[..n]);
            Ok(n)
        }
    }
}

#[vtable]
impl Handler for Xattrs {
    type FileSystem = VirtioFsType;

    fn get(inode: &Inode<VirtioFsType>, name: &CStr, buf: Option<&mut [u8]>) -> Result<usize> {
        check_bad(inode)?;
        let s = inode.super_block().data();
        if s.lacks(Optional::Getxattr) {
            return Err(eopnotsupp());
        }
        let n = name_bytes(name)?;
        get_or_list(inode, Opcode::Getxattr, Some(n), buf, XATTR_SIZE_MAX)
            .map_err(|e| lacking(&s, Optional::Getxattr, e))
    }

    fn set(inode: &Inode<VirtioFsType>, name: &CStr, value: Option<&[u8]>, flags: u32) -> Result {
        check_bad(inode)?;
        set_or_remove(inode, name_bytes(name)?, value, flags, 0)
    }
}

/// SETXATTR of `name` to `value` with `XATTR_*` `flags` and
/// `setxattr_flags` (sent only with `FUSE_SETXATTR_EXT`), or REMOVEXATTR
/// (`value` `None`); the change time moved (C's `fuse_setxattr`,
/// `fuse_removexattr`).
fn set_or_remove(
    inode: &Inode<VirtioFsType>,
    n: &[u8],
    value: Option<&[u8]>,
    flags: u32,
    setxattr_flags: u32,
) -> Result {
    let s = inode.super_block().data();
    let nodeid = inode.data().nodeid;
    let r = match value {
        None => {
            if s.lacks(Optional::Removexattr) {
                return Err(eopnotsupp());
            }
            s.call(
                Opcode::Removexattr,
                request_len(0, &[n.len()]),
                0,
                |b, unique| {
                    RequestBuilder::new(b, header(Opcode::Removexattr, unique, nodeid))?
                        .bytes(n)?
                        .bytes(&[0])?
                        .finish()
                },
            )
            .map_err(|e| lacking(&s, Optional::Removexattr, e))
        }
        Some(v) => {
            if s.lacks(Optional::Setxattr) {
                return Err(eopnotsupp());
            }
            if v.len() > XATTR_SIZE_MAX {
                return Err(E2BIG);
            }
            let ext = s.setxattr_ext();
            let arg_len = if ext {
                SetxattrIn::SIZE
            } else {
                SetxattrInCompat::SIZE
            };
            s.call(
                Opcode::Setxattr,
                request_len(arg_len + v.len(), &[n.len()]),
                0,
                |b, unique| {
                    let r = RequestBuilder::new(b, header(Opcode::Setxattr, unique, nodeid))?;
                    let r = if ext {
                        r.arg(&SetxattrIn {
                            size: v.len() as u32,
                            flags,
                            setxattr_flags,
                            padding: 0,
                        })?
                    } else {
                        r.arg(&SetxattrInCompat {
                            size: v.len() as u32,
                            flags,
                        })?
                    };
                    r.bytes(n)?.bytes(&[0])?.bytes(v)?.finish()
                },
            )
            .map_err(|e| lacking(&s, Optional::Setxattr, e))
        }
    };
    r?;
    // As C: the change time moved.
    crate::inode::invalidate_attrs(inode);
    Ok(())
}

/// The POSIX ACL of type `ty` of `inode`, from the host's extended
/// attribute (C's `__fuse_get_acl`): none if the host has none or keeps no
/// extended attributes; a value of more than a page is `E2BIG`, a
/// malformed one `EIO` (C passes on `posix_acl_from_xattr()`'s error).
fn get_acl(inode: &Inode<VirtioFsType>, ty: AclType) -> Result<Option<ARef<PosixAcl>>> {
    check_bad(inode)?;
    let s = inode.super_block().data();
    if s.lacks(Optional::Getxattr) {
        return Ok(None);
    }
    let mut value = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    let name = ty.xattr_name().as_bytes();
    match get_or_list(
        inode,
        Opcode::Getxattr,
        Some(name),
        Some(&mut value),
        PAGE_SIZE,
    ) {
        Ok(0) => Ok(None),
        Ok(n) => PosixAcl::from_xattr(&value[..n]).map_err(|e| {
            warn_ratelimited!("{} from the host refused: {:?}\n", ty.xattr_name(), e);
            EIO
        }),
        Err(e) if e == Error::from_errno(-(kernel::bindings::ENODATA as i32)) => Ok(None),
        Err(e) if e == ERANGE => Err(E2BIG),
        Err(e) => match lacking(&s, Optional::Getxattr, e) {
            e if e == eopnotsupp() && s.lacks(Optional::Getxattr) => Ok(None),
            e => Err(e),
        },
    }
}

/// `get_inode_acl` (C's `fuse_get_inode_acl`): the ACLs a permission check
/// consults are the host's only if it enforces them (`FUSE_POSIX_ACL`);
/// otherwise the mode alone decides, as for servers that check ACLs
/// themselves.
pub(crate) fn get_inode_acl(
    inode: &Inode<VirtioFsType>,
    ty: AclType,
    rcu: bool,
) -> Result<Option<ARef<PosixAcl>>> {
    if !inode.super_block().data().posix_acl() {
        return Ok(None);
    }
    if rcu {
        return Err(ECHILD);
    }
    get_acl(inode, ty)
}

/// `get_acl` (C's `fuse_get_acl`, on a mount in the initial user
/// namespace): the host's ACL, negotiated or not (a server without
/// `FUSE_POSIX_ACL` may still keep ACLs as extended attributes).
pub(crate) fn get_dentry_acl(
    d: &DEntry<VirtioFsType>,
    ty: AclType,
) -> Result<Option<ARef<PosixAcl>>> {
    get_acl(d.inode().ok_or(ENOENT)?, ty)
}

/// `set_acl` (C's `fuse_set_acl`): the ACL goes to the host as its
/// extended attribute (`None` removes it); the host updates the mode. With
/// `FUSE_POSIX_ACL` the host is asked to clear the set-group-ID bit when
/// the caller may not keep it, and the guest's cached ACLs and attributes
/// are dropped.
pub(crate) fn set_acl(
    idmap: &MntIdmap,
    d: &DEntry<VirtioFsType>,
    acl: Option<&PosixAcl>,
    ty: AclType,
) -> Result {
    let inode = d.inode().ok_or(ENOENT)?;
    check_bad(inode)?;
    let s = inode.super_block().data();
    if s.lacks(Optional::Setxattr) {
        return Err(eopnotsupp());
    }
    let name = ty.xattr_name().as_bytes();
    let r = match acl {
        Some(acl) => {
            let size = acl.xattr_size();
            if size > PAGE_SIZE {
                return Err(E2BIG);
            }
            let mut value = KVec::from_elem(0u8, size, GFP_KERNEL)?;
            let n = acl.to_xattr(&mut value)?;
            let kill = if s.posix_acl() && !idmap.in_group_or_capable(inode) {
                FUSE_SETXATTR_ACL_KILL_SGID
            } else {
                0
            };
            set_or_remove(inode, name, Some(&value[..n]), 0, kill)
        }
        None => set_or_remove(inode, name, None, 0, 0),
    };
    if s.posix_acl() {
        inode.forget_cached_acls();
        crate::inode::invalidate_attrs(inode);
    }
    r
}

/// LISTXATTR of `d`'s inode (C's `fuse_listxattr`): a list the host sends
/// must be NUL-terminated names, none empty.
pub(crate) fn listxattr(d: &DEntry<VirtioFsType>, buf: Option<&mut [u8]>) -> Result<usize> {
    let inode = d.inode().ok_or(ENOENT)?;
    check_bad(inode)?;
    let s = inode.super_block().data();
    if s.lacks(Optional::Listxattr) {
        return Err(eopnotsupp());
    }
    match buf {
        None => get_or_list(inode, Opcode::Listxattr, None, None, XATTR_LIST_MAX)
            .map_err(|e| lacking(&s, Optional::Listxattr, e)),
        Some(b) => {
            let n = get_or_list(
                inode,
                Opcode::Listxattr,
                None,
                Some(&mut *b),
                XATTR_LIST_MAX,
            )
            .map_err(|e| lacking(&s, Optional::Listxattr, e))?;
            if !valid_list(&b[..n]) {
                warn_ratelimited!("LISTXATTR reply refused: not a list of names\n");
                return Err(EIO);
            }
            Ok(n)
        }
    }
}

/// C's `fuse_verify_xattr_list`: NUL-terminated, nonempty names.
fn valid_list(mut l: &[u8]) -> bool {
    while !l.is_empty() {
        match l.iter().position(|&c| c == 0) {
            Some(0) | None => return false,
            Some(i) => l = &l[i + 1..],
        }
    }
    true
}
