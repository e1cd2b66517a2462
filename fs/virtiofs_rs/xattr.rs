// SPDX-License-Identifier: GPL-2.0-only

//! Extended attributes (GETXATTR, SETXATTR, LISTXATTR, REMOVEXATTR), one
//! handler of every name as C's `fuse_xattr_handler`. A server that answers
//! `ENOSYS` is not asked again (`EOPNOTSUPP` from then on, as C).

use crate::errno::enosys;
use crate::proto::fuse::{
    abi::{GetxattrIn, GetxattrOut, Opcode, SetxattrInCompat, Wire},
    request::{request_len, RequestBuilder},
};
use crate::ratelimit::warn_ratelimited;
use crate::session::{header, Optional};
use crate::superblock::VirtioFsType;
use core::sync::atomic::Ordering;
use kernel::{
    fs::{xattr::Handler, DEntry, Inode},
    prelude::*,
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
        let s = inode.super_block().data();
        let n = name_bytes(name)?;
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
                let inarg = SetxattrInCompat {
                    size: v.len() as u32,
                    flags,
                };
                s.call(
                    Opcode::Setxattr,
                    request_len(SetxattrInCompat::SIZE + v.len(), &[n.len()]),
                    0,
                    |b, unique| {
                        RequestBuilder::new(b, header(Opcode::Setxattr, unique, nodeid))?
                            .arg(&inarg)?
                            .bytes(n)?
                            .bytes(&[0])?
                            .bytes(v)?
                            .finish()
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
