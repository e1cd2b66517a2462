// SPDX-License-Identifier: GPL-2.0-only

//! Building FUSE requests into a caller-provided buffer.
//!
//! A request on the wire is `[fuse_in_header][argument][names...][data]`.
//! [`RequestBuilder`] writes the header last, once the total length is
//! known; data that travels in separate scatter-gather entries (WRITE
//! payload pages) is counted in the header's `len` with
//! [`RequestBuilder::external`] but not written. The helpers below build the
//! requests the transport sends itself (INIT, GETATTR, STATFS, FORGET,
//! SETUPMAPPING, REMOVEMAPPING, DESTROY, ...).

use super::abi::{
    BatchForgetIn, ForgetIn, ForgetOne, GetattrIn, InHeader, InitIn, InterruptIn, Opcode, OpenIn,
    ReadIn, ReleaseIn, RemoveMappingIn, RemoveMappingOne, SetupMappingIn, Wire,
    FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FUSE_NAME_MAX, FUSE_READ_LOCKOWNER,
    FUSE_REMOVEMAPPING_MAX_ENTRY,
};

/// Longest symlink target we send (`PATH_MAX`, including the NUL).
pub const PATH_MAX: usize = 4096;

/// Why a request could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// The buffer cannot hold the request.
    BufferTooSmall,
    /// The request would be longer than `u32::MAX` bytes.
    TooLong,
    /// A name is empty, longer than `FUSE_NAME_MAX`, or contains '/' or NUL.
    BadName,
    /// A path (symlink target) is empty, too long, or contains NUL.
    BadPath,
    /// A batch has no entries or more than one message may carry.
    BadCount,
    /// The unique id is 0, which FUSE reserves for notifications.
    ZeroUnique,
}

/// The caller-supplied part of `fuse_in_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The operation.
    pub opcode: Opcode,
    /// Request id (nonzero).
    pub unique: u64,
    /// Node the request is about (0 for INIT, STATFS uses the root, ...).
    pub nodeid: u64,
    /// Caller's fsuid.
    pub uid: u32,
    /// Caller's fsgid.
    pub gid: u32,
    /// Caller's tgid.
    pub pid: u32,
}

impl Header {
    /// A header with no credentials (uid, gid and pid 0), as the C driver
    /// sends for `nocreds` requests (INIT, DESTROY, FORGET, ...).
    pub fn nocreds(opcode: Opcode, unique: u64, nodeid: u64) -> Self {
        Header {
            opcode,
            unique,
            nodeid,
            uid: 0,
            gid: 0,
            pid: 0,
        }
    }
}

/// Writes one request into a buffer, front to back.
#[derive(Debug)]
pub struct RequestBuilder<'a> {
    buf: &'a mut [u8],
    header: Header,
    pos: usize,
    external: usize,
}

impl<'a> RequestBuilder<'a> {
    /// Starts a request; space for the header is reserved at the front.
    pub fn new(buf: &'a mut [u8], header: Header) -> Result<Self, BuildError> {
        if header.unique == 0 {
            return Err(BuildError::ZeroUnique);
        }
        if buf.len() < InHeader::SIZE {
            return Err(BuildError::BufferTooSmall);
        }
        Ok(RequestBuilder {
            buf,
            header,
            pos: InHeader::SIZE,
            external: 0,
        })
    }

    /// Appends a fixed-size argument.
    pub fn arg<A: Wire>(mut self, arg: &A) -> Result<Self, BuildError> {
        let dst = self
            .buf
            .get_mut(self.pos..)
            .ok_or(BuildError::BufferTooSmall)?;
        let n = arg.encode(dst).map_err(|_| BuildError::BufferTooSmall)?;
        self.pos = self.pos.checked_add(n).ok_or(BuildError::TooLong)?;
        Ok(self)
    }

    /// Appends raw bytes (an xattr value, an ioctl buffer).
    pub fn bytes(mut self, data: &[u8]) -> Result<Self, BuildError> {
        let end = self
            .pos
            .checked_add(data.len())
            .ok_or(BuildError::TooLong)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(BuildError::BufferTooSmall)?
            .copy_from_slice(data);
        self.pos = end;
        Ok(self)
    }

    /// Appends a directory entry name and its NUL. The name must be 1 to
    /// `FUSE_NAME_MAX` bytes with no '/' and no NUL.
    pub fn name(self, name: &[u8]) -> Result<Self, BuildError> {
        if !valid_name(name) {
            return Err(BuildError::BadName);
        }
        self.bytes(name)?.bytes(&[0])
    }

    /// Appends a path (a symlink target) and its NUL. It must be nonempty,
    /// shorter than `PATH_MAX` and contain no NUL.
    pub fn path(self, path: &[u8]) -> Result<Self, BuildError> {
        if path.is_empty() || path.len() >= PATH_MAX || path.contains(&0) {
            return Err(BuildError::BadPath);
        }
        self.bytes(path)?.bytes(&[0])
    }

    /// Counts `len` bytes that follow in separate buffers (the data of a
    /// WRITE) in the header's length without writing them.
    pub fn external(mut self, len: usize) -> Result<Self, BuildError> {
        self.external = self.external.checked_add(len).ok_or(BuildError::TooLong)?;
        Ok(self)
    }

    /// Writes the header and returns the number of bytes written to the
    /// buffer (the header's `len` minus any external bytes).
    pub fn finish(self) -> Result<usize, BuildError> {
        let total = self
            .pos
            .checked_add(self.external)
            .ok_or(BuildError::TooLong)?;
        let len = u32::try_from(total).map_err(|_| BuildError::TooLong)?;
        let h = InHeader {
            len,
            opcode: self.header.opcode.into(),
            unique: self.header.unique,
            nodeid: self.header.nodeid,
            uid: self.header.uid,
            gid: self.header.gid,
            pid: self.header.pid,
            total_extlen: 0,
            padding: 0,
        };
        h.encode(self.buf).map_err(|_| BuildError::BufferTooSmall)?;
        Ok(self.pos)
    }
}

/// Whether `name` is acceptable as a single path component on the wire.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= FUSE_NAME_MAX && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// Builds a request with one fixed-size argument.
pub fn simple<A: Wire>(buf: &mut [u8], header: Header, arg: &A) -> Result<usize, BuildError> {
    RequestBuilder::new(buf, header)?.arg(arg)?.finish()
}

/// Builds a request with no argument (STATFS, DESTROY, READLINK, ...).
pub fn header_only(buf: &mut [u8], header: Header) -> Result<usize, BuildError> {
    RequestBuilder::new(buf, header)?.finish()
}

/// Builds a request whose argument is a name (LOOKUP, UNLINK, RMDIR).
pub fn with_name(buf: &mut [u8], header: Header, name: &[u8]) -> Result<usize, BuildError> {
    RequestBuilder::new(buf, header)?.name(name)?.finish()
}

/// Builds FUSE_INIT (nodeid 0, no credentials) offering `flags` (bits 32..63
/// go to `flags2`; `FUSE_INIT_EXT` must be among them for those to count).
pub fn init(
    buf: &mut [u8],
    unique: u64,
    max_readahead: u32,
    flags: u64,
) -> Result<usize, BuildError> {
    let arg = InitIn {
        major: FUSE_KERNEL_VERSION,
        minor: FUSE_KERNEL_MINOR_VERSION,
        max_readahead,
        // Truncation is the point: the low and high halves.
        flags: flags as u32,
        flags2: (flags >> 32) as u32,
        unused: [0; 11],
    };
    simple(buf, Header::nocreds(Opcode::Init, unique, 0), &arg)
}

/// Builds FUSE_GETATTR for `nodeid`, with a file handle if one is given.
pub fn getattr(buf: &mut [u8], header: Header, fh: Option<u64>) -> Result<usize, BuildError> {
    let arg = GetattrIn {
        getattr_flags: if fh.is_some() {
            super::abi::FUSE_GETATTR_FH
        } else {
            0
        },
        dummy: 0,
        fh: fh.unwrap_or(0),
    };
    simple(buf, header, &arg)
}

/// Builds FUSE_FORGET (no reply expected; sent on the hiprio queue).
pub fn forget(buf: &mut [u8], unique: u64, nodeid: u64, nlookup: u64) -> Result<usize, BuildError> {
    simple(
        buf,
        Header::nocreds(Opcode::Forget, unique, nodeid),
        &ForgetIn { nlookup },
    )
}

/// Builds FUSE_BATCH_FORGET for `entries` (1 or more; no reply expected).
#[cfg_attr(
    CONFIG_VIRTIOFS_RS,
    expect(dead_code, reason = "for the data path; host-tested")
)]
pub fn batch_forget(
    buf: &mut [u8],
    unique: u64,
    entries: &[ForgetOne],
) -> Result<usize, BuildError> {
    let count = u32::try_from(entries.len()).map_err(|_| BuildError::BadCount)?;
    if count == 0 {
        return Err(BuildError::BadCount);
    }
    let mut b = RequestBuilder::new(buf, Header::nocreds(Opcode::BatchForget, unique, 0))?
        .arg(&BatchForgetIn { count, dummy: 0 })?;
    for e in entries {
        b = b.arg(e)?;
    }
    b.finish()
}

/// Builds FUSE_SETUPMAPPING for `nodeid`.
pub fn setupmapping(
    buf: &mut [u8],
    header: Header,
    arg: &SetupMappingIn,
) -> Result<usize, BuildError> {
    simple(buf, header, arg)
}

/// Builds FUSE_REMOVEMAPPING for `nodeid` with 1 to
/// [`FUSE_REMOVEMAPPING_MAX_ENTRY`] entries, packed after the 4-byte count
/// (so unaligned), as the C driver does.
pub fn removemapping(
    buf: &mut [u8],
    header: Header,
    entries: &[RemoveMappingOne],
) -> Result<usize, BuildError> {
    if entries.is_empty() || entries.len() > FUSE_REMOVEMAPPING_MAX_ENTRY {
        return Err(BuildError::BadCount);
    }
    let count = u32::try_from(entries.len()).map_err(|_| BuildError::BadCount)?;
    let mut b = RequestBuilder::new(buf, header)?.arg(&RemoveMappingIn { count })?;
    for e in entries {
        b = b.arg(e)?;
    }
    b.finish()
}

/// Builds FUSE_DESTROY (nodeid 0, no credentials, no argument).
pub fn destroy(buf: &mut [u8], unique: u64) -> Result<usize, BuildError> {
    header_only(buf, Header::nocreds(Opcode::Destroy, unique, 0))
}

/// Builds FUSE_OPEN or FUSE_OPENDIR (`header.opcode`) with open flags
/// `flags` (`O_*`, without `O_CREAT`, `O_EXCL`, `O_NOCTTY`, as C).
pub fn open(buf: &mut [u8], header: Header, flags: u32) -> Result<usize, BuildError> {
    simple(
        buf,
        header,
        &OpenIn {
            flags,
            open_flags: 0,
        },
    )
}

/// Builds FUSE_READ, FUSE_READDIR or FUSE_READDIRPLUS (`header.opcode`)
/// of `size` bytes at `offset` of open handle `fh`; with `lock_owner`,
/// `FUSE_READ_LOCKOWNER` (C's direct I/O).
pub fn read(
    buf: &mut [u8],
    header: Header,
    fh: u64,
    offset: u64,
    size: u32,
    flags: u32,
    lock_owner: Option<u64>,
) -> Result<usize, BuildError> {
    simple(
        buf,
        header,
        &ReadIn {
            fh,
            offset,
            size,
            read_flags: if lock_owner.is_some() {
                FUSE_READ_LOCKOWNER
            } else {
                0
            },
            lock_owner: lock_owner.unwrap_or(0),
            flags,
            padding: 0,
        },
    )
}

/// Builds FUSE_RELEASE or FUSE_RELEASEDIR (`header.opcode`) of handle `fh`
/// opened with `flags`.
pub fn release(buf: &mut [u8], header: Header, fh: u64, flags: u32) -> Result<usize, BuildError> {
    simple(
        buf,
        header,
        &ReleaseIn {
            fh,
            flags,
            release_flags: 0,
            lock_owner: 0,
        },
    )
}

/// `FUSE_INT_REQ_BIT`: set in the unique id of an INTERRUPT request, whose
/// argument names the request it interrupts (whose id never has it).
pub const FUSE_INT_REQ_BIT: u64 = 1;

/// Builds FUSE_INTERRUPT of the request `interrupted` (sent on the hiprio
/// queue; the server answers nothing, or EAGAIN where it can reply).
pub fn interrupt(buf: &mut [u8], interrupted: u64) -> Result<usize, BuildError> {
    simple(
        buf,
        Header::nocreds(Opcode::Interrupt, interrupted | FUSE_INT_REQ_BIT, 0),
        &InterruptIn {
            unique: interrupted,
        },
    )
}

/// The exact size of a request of fixed arguments totalling `args` bytes
/// followed by `names` NUL-terminated names of the given lengths.
pub fn request_len(args: usize, names: &[usize]) -> usize {
    names.iter().fold(InHeader::SIZE + args, |n, l| {
        n.saturating_add(l.saturating_add(1))
    })
}

/// Size of a request buffer able to hold any REMOVEMAPPING message.
#[cfg_attr(
    CONFIG_VIRTIOFS_RS,
    expect(dead_code, reason = "for the data path; host-tested")
)]
pub const REMOVEMAPPING_MAX_LEN: usize =
    InHeader::SIZE + RemoveMappingIn::SIZE + FUSE_REMOVEMAPPING_MAX_ENTRY * RemoveMappingOne::SIZE;

#[cfg(test)]
mod tests {
    use super::super::abi::{init_flags, MkdirIn, Rename2In, WriteIn, FUSE_SETUPMAPPING_FLAG_READ};
    use super::*;

    fn hdr(op: Opcode) -> Header {
        Header {
            opcode: op,
            unique: 7,
            nodeid: 42,
            uid: 1000,
            gid: 100,
            pid: 55,
        }
    }

    #[test]
    fn lookup_layout() {
        let mut b = [0xffu8; 64];
        let n = with_name(&mut b, hdr(Opcode::Lookup), b"foo").unwrap();
        assert_eq!(n, 44);
        let h = InHeader::decode(&b).unwrap();
        assert_eq!(h.len, 44);
        assert_eq!(h.opcode, 1);
        assert_eq!(h.unique, 7);
        assert_eq!(h.nodeid, 42);
        assert_eq!(
            (h.uid, h.gid, h.pid, h.total_extlen, h.padding),
            (1000, 100, 55, 0, 0)
        );
        assert_eq!(&b[40..44], b"foo\0");
        assert_eq!(b[44], 0xff, "nothing written past the request");
    }

    #[test]
    fn init_splits_flags() {
        let mut b = [0u8; 104];
        let flags = init_flags::FUSE_INIT_EXT
            | init_flags::FUSE_MAP_ALIGNMENT
            | init_flags::FUSE_HAS_INODE_DAX;
        assert_eq!(init(&mut b, 1, 1 << 20, flags), Ok(104));
        let h = InHeader::decode(&b).unwrap();
        assert_eq!((h.len, h.opcode, h.nodeid, h.uid), (104, 26, 0, 0));
        let a = InitIn::decode(&b[40..]).unwrap();
        assert_eq!((a.major, a.minor, a.max_readahead), (7, 41, 1 << 20));
        assert_eq!(a.flags, (1 << 30) | (1 << 26));
        assert_eq!(a.flags2, 1 << 1);
    }

    #[test]
    fn mkdir_and_rename2() {
        let mut b = [0u8; 128];
        let n = RequestBuilder::new(&mut b, hdr(Opcode::Mkdir))
            .unwrap()
            .arg(&MkdirIn {
                mode: 0o755,
                umask: 0o22,
            })
            .unwrap()
            .name(b"d")
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(n, 40 + 8 + 2);
        let n = RequestBuilder::new(&mut b, hdr(Opcode::Rename2))
            .unwrap()
            .arg(&Rename2In {
                newdir: 3,
                flags: 1,
                padding: 0,
            })
            .unwrap()
            .name(b"a")
            .unwrap()
            .name(b"bb")
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(n, 40 + 16 + 2 + 3);
        assert_eq!(&b[56..61], b"a\0bb\0");
    }

    #[test]
    fn symlink_path() {
        let mut b = [0u8; 128];
        let n = RequestBuilder::new(&mut b, hdr(Opcode::Symlink))
            .unwrap()
            .name(b"l")
            .unwrap()
            .path(b"../t/x")
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(&b[40..n], b"l\0../t/x\0");
        let r = RequestBuilder::new(&mut b, hdr(Opcode::Symlink))
            .unwrap()
            .path(b"a\0b");
        assert_eq!(r.unwrap_err(), BuildError::BadPath);
        let r = RequestBuilder::new(&mut b, hdr(Opcode::Symlink))
            .unwrap()
            .path(b"");
        assert_eq!(r.unwrap_err(), BuildError::BadPath);
        let long = [b'a'; PATH_MAX];
        let mut big = [0u8; 2 * PATH_MAX];
        let r = RequestBuilder::new(&mut big, hdr(Opcode::Symlink))
            .unwrap()
            .path(&long);
        assert_eq!(r.unwrap_err(), BuildError::BadPath);
        assert!(RequestBuilder::new(&mut big, hdr(Opcode::Symlink))
            .unwrap()
            .path(&long[1..])
            .is_ok());
    }

    #[test]
    fn write_counts_external_data() {
        let mut b = [0u8; 80];
        let w = WriteIn {
            size: 8192,
            ..Default::default()
        };
        let n = RequestBuilder::new(&mut b, hdr(Opcode::Write))
            .unwrap()
            .arg(&w)
            .unwrap()
            .external(8192)
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(n, 80);
        assert_eq!(InHeader::decode(&b).unwrap().len, 80 + 8192);
        let r = RequestBuilder::new(&mut b, hdr(Opcode::Write))
            .unwrap()
            .external(usize::MAX)
            .unwrap()
            .external(1);
        assert_eq!(r.unwrap_err(), BuildError::TooLong);
        let r = RequestBuilder::new(&mut b, hdr(Opcode::Write))
            .unwrap()
            .external(u32::MAX as usize)
            .unwrap()
            .finish();
        assert_eq!(r, Err(BuildError::TooLong));
    }

    #[test]
    fn bad_names() {
        let mut b = [0u8; 2048];
        for bad in [&b""[..], b"a/b", b"a\0", b"/"] {
            assert_eq!(
                with_name(&mut b, hdr(Opcode::Lookup), bad),
                Err(BuildError::BadName)
            );
        }
        let max = [b'x'; FUSE_NAME_MAX];
        assert_eq!(
            with_name(&mut b, hdr(Opcode::Lookup), &max),
            Ok(40 + FUSE_NAME_MAX + 1)
        );
        let over = [b'x'; FUSE_NAME_MAX + 1];
        assert_eq!(
            with_name(&mut b, hdr(Opcode::Lookup), &over),
            Err(BuildError::BadName)
        );
        assert!(valid_name(b".") && valid_name(b".."));
    }

    #[test]
    fn small_buffers_and_zero_unique() {
        let mut b = [0u8; 39];
        assert_eq!(
            header_only(&mut b, hdr(Opcode::Statfs)).unwrap_err(),
            BuildError::BufferTooSmall
        );
        let mut b = [0u8; 43];
        assert_eq!(
            with_name(&mut b, hdr(Opcode::Lookup), b"foo"),
            Err(BuildError::BufferTooSmall)
        );
        let mut b = [0u8; 55];
        assert_eq!(
            getattr(&mut b, hdr(Opcode::Getattr), None),
            Err(BuildError::BufferTooSmall)
        );
        let mut b = [0u8; 64];
        assert_eq!(destroy(&mut b, 0), Err(BuildError::ZeroUnique));
        assert_eq!(destroy(&mut b, 9), Ok(40));
        assert_eq!(InHeader::decode(&b).unwrap().opcode, 38);
    }

    #[test]
    fn getattr_fh_flag() {
        let mut b = [0u8; 56];
        getattr(&mut b, hdr(Opcode::Getattr), Some(9)).unwrap();
        let a = GetattrIn::decode(&b[40..]).unwrap();
        assert_eq!((a.getattr_flags, a.fh), (1, 9));
        getattr(&mut b, hdr(Opcode::Getattr), None).unwrap();
        let a = GetattrIn::decode(&b[40..]).unwrap();
        assert_eq!((a.getattr_flags, a.fh), (0, 0));
    }

    #[test]
    fn forget_is_48_bytes() {
        let mut b = [0u8; 48];
        assert_eq!(forget(&mut b, 3, 77, 2), Ok(48));
        let h = InHeader::decode(&b).unwrap();
        assert_eq!((h.opcode, h.nodeid, h.len), (2, 77, 48));
        assert_eq!(ForgetIn::decode(&b[40..]).unwrap().nlookup, 2);
    }

    #[test]
    fn batch_forget_layout() {
        let mut b = [0u8; 128];
        let e = [
            ForgetOne {
                nodeid: 5,
                nlookup: 1,
            },
            ForgetOne {
                nodeid: 6,
                nlookup: 2,
            },
        ];
        assert_eq!(batch_forget(&mut b, 3, &e), Ok(40 + 8 + 32));
        assert_eq!(BatchForgetIn::decode(&b[40..]).unwrap().count, 2);
        assert_eq!(ForgetOne::decode(&b[64..]).unwrap(), e[1]);
        assert_eq!(batch_forget(&mut b, 3, &[]), Err(BuildError::BadCount));
    }

    #[test]
    fn setupmapping_layout() {
        let mut b = [0u8; 80];
        let a = SetupMappingIn {
            fh: u64::MAX,
            foffset: 3 << 21,
            len: 1 << 21,
            flags: FUSE_SETUPMAPPING_FLAG_READ,
            moffset: 5 << 21,
        };
        assert_eq!(setupmapping(&mut b, hdr(Opcode::Setupmapping), &a), Ok(80));
        assert_eq!(SetupMappingIn::decode(&b[40..]).unwrap(), a);
    }

    #[test]
    fn removemapping_bounds() {
        let mut b = [0u8; REMOVEMAPPING_MAX_LEN + 16];
        let one = RemoveMappingOne {
            moffset: 2 << 21,
            len: 1 << 21,
        };
        let n = removemapping(&mut b, hdr(Opcode::Removemapping), &[one]).unwrap();
        assert_eq!(n, 40 + 4 + 16);
        assert_eq!(RemoveMappingIn::decode(&b[40..]).unwrap().count, 1);
        // Entries start at offset 44: unaligned, as in C.
        assert_eq!(RemoveMappingOne::decode(&b[44..]).unwrap(), one);

        let many = [one; FUSE_REMOVEMAPPING_MAX_ENTRY + 1];
        assert_eq!(
            removemapping(
                &mut b,
                hdr(Opcode::Removemapping),
                &many[..FUSE_REMOVEMAPPING_MAX_ENTRY]
            ),
            Ok(REMOVEMAPPING_MAX_LEN)
        );
        assert_eq!(
            removemapping(&mut b, hdr(Opcode::Removemapping), &many),
            Err(BuildError::BadCount)
        );
        assert_eq!(
            removemapping(&mut b, hdr(Opcode::Removemapping), &[]),
            Err(BuildError::BadCount)
        );
        let mut small = [0u8; REMOVEMAPPING_MAX_LEN - 1];
        assert_eq!(
            removemapping(
                &mut small,
                hdr(Opcode::Removemapping),
                &many[..FUSE_REMOVEMAPPING_MAX_ENTRY]
            ),
            Err(BuildError::BufferTooSmall)
        );
    }
}
