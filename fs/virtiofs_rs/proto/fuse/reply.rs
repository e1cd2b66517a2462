// SPDX-License-Identifier: GPL-2.0-only

//! Validating what the device wrote back, and checked decoding of replies.
//!
//! The C driver trusts the device: it ignores the used length the virtqueue
//! reports and never checks `out.h.len` or `out.h.unique` (fs/fuse/
//! virtio_fs.c, the TODO in `virtio_fs_request_complete()`). Here every
//! reply goes through [`validate`] first:
//!
//! 1. the used length is at least a header and at most what the driver
//!    offered (inline buffer plus pages);
//! 2. `out.h.len` is at least a header and at most the used length;
//! 3. `out.h.unique` is the one the request carried;
//! 4. `out.h.error` is 0 or a negative errno in `-511..=-1`, and an error
//!    reply is a bare header (both as the /dev/fuse path requires,
//!    fs/fuse/dev.c `fuse_dev_do_write()`: errno values of 512 and more are
//!    kernel-internal, such as `ERESTARTSYS`, and must not reach userspace);
//! 5. a success payload has a size the opcode allows ([`ReplySpec`]), as
//!    `copy_out_args()` enforces for /dev/fuse.
//!
//! Then the typed decoders check what the kernel relies on: file types and
//! sizes in attributes (`fuse_invalid_attr()`, fs/fuse/dir.c), node ids in
//! entries (`invalid_nodeid()`, fs/fuse/fuse_i.h), and the INIT reply
//! (`process_init_reply()`, fs/fuse/inode.c, and the map_alignment rule).

use super::abi::{
    init_flags, mode, Attr, AttrOut, EntryOut, InitOut, Kstatfs, Opcode, OpenOut, OutHeader, Wire,
    WireError, FUSE_COMPAT_ATTR_OUT_SIZE, FUSE_COMPAT_ENTRY_OUT_SIZE, FUSE_COMPAT_INIT_OUT_SIZE,
    FUSE_COMPAT_STATFS_SIZE, FUSE_DAX_SHIFT, FUSE_DEFAULT_MAX_PAGES_PER_REQ, FUSE_MAX_MAX_PAGES,
    FUSE_ROOT_ID,
};

/// Largest errno a server may return (`fuse_dev_do_write()` refuses
/// `error <= -512`).
pub const MAX_SERVER_ERRNO: i32 = 511;

/// `sizeof(struct fuse_lk_out)`.
const LK_OUT_SIZE: u32 = 24;
/// `sizeof(struct fuse_statx_out)`: 16 bytes of header, 16 spare, and a
/// 256-byte `fuse_statx`.
const STATX_OUT_SIZE: u32 = 288;
/// `sizeof(struct fuse_ioctl_out)`.
const IOCTL_OUT_SIZE: u32 = 16;
/// `sizeof` of `fuse_bmap_out`, `fuse_poll_out`, `fuse_lseek_out`,
/// `fuse_write_out` and `fuse_getxattr_out`.
const SMALL_OUT_SIZE: u32 = 8;
/// Size of the reply header, as a `u32`.
const HDR: u32 = OutHeader::SIZE as u32;

/// What payload (bytes after the header) a successful reply may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplySpec {
    /// The request gets no reply at all (FORGET, BATCH_FORGET).
    NoReply,
    /// The payload is `min..=max` bytes long.
    Sized {
        /// Fewest payload bytes.
        min: u32,
        /// Most payload bytes.
        max: u32,
    },
}

impl ReplySpec {
    /// A reply that is just the header.
    pub const HEADER_ONLY: Self = ReplySpec::Sized { min: 0, max: 0 };

    /// A payload of exactly `n` bytes.
    pub const fn exact(n: u32) -> Self {
        ReplySpec::Sized { min: n, max: n }
    }

    /// A payload of at most `n` bytes.
    pub const fn up_to(n: u32) -> Self {
        ReplySpec::Sized { min: 0, max: n }
    }

    /// What a reply to `op` may carry, for a session at protocol minor
    /// `minor` (use [`super::abi::FUSE_KERNEL_MINOR_VERSION`] before INIT has
    /// completed). `var_max` is the size of the variable part the request
    /// asked for: the `size` of READ, READDIR(PLUS), GETXATTR and LISTXATTR
    /// (0 for a size query), the buffer of READLINK, the `out_size` of IOCTL;
    /// other opcodes ignore it.
    ///
    /// Fixed-size replies must be exact, as `copy_out_args()` requires for
    /// /dev/fuse; the INIT reply may be as short as the 7.0 layout (8 bytes)
    /// since the C driver accepts shorter replies there (`out_argvar`) and
    /// zero-fills the rest.
    pub fn for_opcode(op: Opcode, var_max: u32, minor: u32) -> Self {
        use Opcode::*;
        let entry = if minor < 9 {
            FUSE_COMPAT_ENTRY_OUT_SIZE
        } else {
            EntryOut::SIZE
        } as u32;
        let attr = if minor < 9 {
            FUSE_COMPAT_ATTR_OUT_SIZE
        } else {
            AttrOut::SIZE
        } as u32;
        match op {
            Forget | BatchForget | NotifyReply | Interrupt => ReplySpec::NoReply,
            Init => ReplySpec::Sized {
                min: FUSE_COMPAT_INIT_OUT_SIZE as u32,
                max: InitOut::SIZE as u32,
            },
            Getattr | Setattr => Self::exact(attr),
            Lookup | Mknod | Mkdir | Symlink | Link => Self::exact(entry),
            Create | Tmpfile => Self::exact(entry + OpenOut::SIZE as u32),
            Open | Opendir => Self::exact(OpenOut::SIZE as u32),
            Read | Readdir | Readdirplus | Readlink => Self::up_to(var_max),
            Write | CopyFileRange => Self::exact(SMALL_OUT_SIZE),
            Statfs => Self::exact(if minor < 4 {
                FUSE_COMPAT_STATFS_SIZE
            } else {
                Kstatfs::SIZE
            } as u32),
            Getxattr | Listxattr => {
                if var_max == 0 {
                    Self::exact(SMALL_OUT_SIZE)
                } else {
                    Self::up_to(var_max)
                }
            }
            Getlk => Self::exact(LK_OUT_SIZE),
            Bmap | Poll | Lseek => Self::exact(SMALL_OUT_SIZE),
            Ioctl => ReplySpec::Sized {
                min: IOCTL_OUT_SIZE,
                max: IOCTL_OUT_SIZE.saturating_add(var_max),
            },
            Statx => Self::exact(STATX_OUT_SIZE),
            Release | Releasedir | Fsync | Fsyncdir | Flush | Unlink | Rmdir | Rename | Rename2
            | Setxattr | Removexattr | Access | Setlk | Setlkw | Fallocate | Setupmapping
            | Removemapping | Syncfs | Destroy => Self::HEADER_ONLY,
        }
    }
}

/// Whether a request of `op` may come back with nothing written at all
/// (used length 0) and still count as answered.
///
/// Only DESTROY: virtiofsd hands its buffer back unwritten, and the session
/// is over either way. Every other opcode must get a reply header.
pub fn may_go_unanswered(op: Opcode) -> bool {
    matches!(op, Opcode::Destroy)
}

/// A positive errno the server returned, in `1..=MAX_SERVER_ERRNO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(i32);

impl Errno {
    /// The positive errno value.
    #[cfg_attr(
        CONFIG_VIRTIOFS_RS,
        expect(dead_code, reason = "for the data path; host-tested")
    )]
    pub fn get(self) -> i32 {
        self.0
    }

    /// The negative value the kernel returns (`-errno`).
    pub fn to_kernel(self) -> i32 {
        -self.0
    }
}

/// The payload of a successful reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<'a> {
    /// Payload length from the header (`out.h.len - 16`).
    pub len: u32,
    /// The part of the payload in the inline buffer (after the header); the
    /// rest, if any, was written into the pages that followed it.
    pub inline: &'a [u8],
}

/// A well-formed reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The request succeeded.
    Ok(Payload<'a>),
    /// The server returned an error.
    Err(Errno),
}

/// Why a reply was refused. The request fails (with `EIO`); the connection
/// goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// The request has no reply, yet one arrived.
    NoReplyExpected,
    /// The inline buffer cannot hold a header (a driver bug).
    InlineTooSmall,
    /// The buffers offered are larger than the address space (a driver bug).
    CapacityOverflow,
    /// The device reports writing more than the buffers offered.
    TooLong {
        /// Used length the virtqueue reported.
        used: u32,
        /// Bytes the driver offered.
        capacity: usize,
    },
    /// The device wrote less than a reply header.
    Short {
        /// Used length the virtqueue reported.
        used: u32,
    },
    /// `out.h.len` is shorter than the header or longer than what was used.
    LenMismatch {
        /// `out.h.len`.
        hdr: u32,
        /// Used length.
        used: u32,
    },
    /// `out.h.unique` is not the one the request carried.
    UniqueMismatch {
        /// The request's unique id.
        expected: u64,
        /// The reply's unique id.
        got: u64,
    },
    /// `out.h.error` is positive or below `-MAX_SERVER_ERRNO`.
    BadErrno(i32),
    /// An error reply carries a payload.
    ErrorWithPayload {
        /// `out.h.error`.
        error: i32,
        /// `out.h.len`.
        len: u32,
    },
    /// A success payload has a size the opcode does not allow.
    BadPayloadSize {
        /// Payload bytes.
        len: u32,
        /// Fewest allowed.
        min: u32,
        /// Most allowed.
        max: u32,
    },
}

/// Validates a reply.
///
/// `inline` is the device-writable buffer that holds the reply header and
/// the fixed-size reply arguments (all of it, whatever the device wrote);
/// `page_capacity` is the size of the pages that follow it in the
/// scatter-gather list (READ and READDIR data), 0 if none. `used_len` is the
/// length the virtqueue reported, `expected_unique` the request's unique id
/// and `spec` what the opcode allows ([`ReplySpec::for_opcode`]).
pub fn validate(
    inline: &[u8],
    page_capacity: usize,
    used_len: u32,
    expected_unique: u64,
    spec: ReplySpec,
) -> Result<Outcome<'_>, ReplyError> {
    let (min, max) = match spec {
        ReplySpec::NoReply => return Err(ReplyError::NoReplyExpected),
        ReplySpec::Sized { min, max } => (min, max),
    };
    let hdr = OutHeader::decode(inline).map_err(|_| ReplyError::InlineTooSmall)?;
    let capacity = inline
        .len()
        .checked_add(page_capacity)
        .ok_or(ReplyError::CapacityOverflow)?;
    let used = used_len;
    if usize::try_from(used).map_or(true, |u| u > capacity) {
        return Err(ReplyError::TooLong { used, capacity });
    }
    if used < HDR {
        return Err(ReplyError::Short { used });
    }
    if hdr.len < HDR || hdr.len > used {
        return Err(ReplyError::LenMismatch { hdr: hdr.len, used });
    }
    if hdr.unique != expected_unique {
        return Err(ReplyError::UniqueMismatch {
            expected: expected_unique,
            got: hdr.unique,
        });
    }
    if hdr.error != 0 {
        if !(-MAX_SERVER_ERRNO..=-1).contains(&hdr.error) {
            return Err(ReplyError::BadErrno(hdr.error));
        }
        if hdr.len != HDR {
            return Err(ReplyError::ErrorWithPayload {
                error: hdr.error,
                len: hdr.len,
            });
        }
        return Ok(Outcome::Err(Errno(-hdr.error)));
    }
    // hdr.len >= HDR was checked above.
    let len = hdr.len - HDR;
    if len < min || len > max {
        return Err(ReplyError::BadPayloadSize { len, min, max });
    }
    let after = inline.get(OutHeader::SIZE..).unwrap_or(&[]);
    let n = usize::try_from(len).map_or(after.len(), |l| l.min(after.len()));
    let inline = after.get(..n).unwrap_or(&[]);
    Ok(Outcome::Ok(Payload { len, inline }))
}

/// Why a reply payload was refused by a typed decoder. The request fails
/// with `EIO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The payload is too short for the structure.
    Wire(WireError),
    /// The mode has no valid file type (`fuse_valid_type()`).
    BadFileType {
        /// The mode.
        mode: u32,
    },
    /// The size exceeds `i64::MAX` (`fuse_valid_size()`).
    SizeTooLarge(u64),
    /// A nanosecond field of a timestamp is 1e9 or more.
    BadNsec(u32),
    /// The node id is 0 or the root's where a new child is expected
    /// (`invalid_nodeid()`).
    BadNodeid(u64),
    /// The new node's type is not what was created.
    TypeMismatch {
        /// The type created.
        expected: FileType,
        /// The mode the server returned.
        mode: u32,
    },
    /// INIT: the server's major version is not 7.
    BadMajor(u32),
    /// INIT: `map_alignment` exceeds the 2 MiB DAX range (`> 21`).
    MapAlignment(u16),
}

impl From<WireError> for DecodeError {
    fn from(e: WireError) -> Self {
        DecodeError::Wire(e)
    }
}

/// The file types an inode may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// Regular file.
    Regular,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDev,
    /// Block device.
    BlockDev,
    /// FIFO.
    Fifo,
    /// Socket.
    Socket,
}

impl FileType {
    /// The type encoded in `mode`'s `S_IFMT` bits, if valid.
    pub fn from_mode(m: u32) -> Option<Self> {
        Some(match m & mode::S_IFMT {
            mode::S_IFREG => FileType::Regular,
            mode::S_IFDIR => FileType::Directory,
            mode::S_IFLNK => FileType::Symlink,
            mode::S_IFCHR => FileType::CharDev,
            mode::S_IFBLK => FileType::BlockDev,
            mode::S_IFIFO => FileType::Fifo,
            mode::S_IFSOCK => FileType::Socket,
            _ => return None,
        })
    }

    /// The `S_IF*` bits of this type.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => mode::S_IFREG,
            FileType::Directory => mode::S_IFDIR,
            FileType::Symlink => mode::S_IFLNK,
            FileType::CharDev => mode::S_IFCHR,
            FileType::BlockDev => mode::S_IFBLK,
            FileType::Fifo => mode::S_IFIFO,
            FileType::Socket => mode::S_IFSOCK,
        }
    }

    /// The `DT_*` value of this type (as in a directory entry).
    #[cfg_attr(
        CONFIG_VIRTIOFS_RS,
        expect(dead_code, reason = "for the data path; host-tested")
    )]
    pub fn dt(self) -> u32 {
        self.mode_bits() >> 12
    }
}

/// A cache timeout; the nanosecond part is clamped to below one second as
/// `fuse_time_to_jiffies()` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeout {
    /// Seconds.
    pub secs: u64,
    /// Nanoseconds, `< 1_000_000_000`.
    pub nsecs: u32,
}

impl Timeout {
    fn new(secs: u64, nsecs: u32) -> Self {
        Timeout {
            secs,
            nsecs: nsecs.min(NSEC_PER_SEC - 1),
        }
    }

    /// Whether the timeout is zero (do not cache).
    pub fn is_zero(&self) -> bool {
        self.secs == 0 && self.nsecs == 0
    }
}

const NSEC_PER_SEC: u32 = 1_000_000_000;

/// Attributes that passed [`check_attr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidAttr {
    attr: Attr,
    file_type: FileType,
}

impl ValidAttr {
    /// The attributes.
    pub fn get(&self) -> &Attr {
        &self.attr
    }

    /// The file type from `mode`.
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    /// The size, known to fit in an `i64` (`loff_t`).
    pub fn size(&self) -> i64 {
        // check_attr() guarantees size <= i64::MAX.
        i64::try_from(self.attr.size).unwrap_or(i64::MAX)
    }
}

/// Checks attributes: a valid file type and a size that fits `loff_t`, as
/// `fuse_invalid_attr()` does; also that the nanosecond parts of the
/// timestamps are below one second (the C driver does not check this; an
/// unnormalised timespec in an inode breaks timestamp comparisons).
pub fn check_attr(attr: &Attr) -> Result<ValidAttr, DecodeError> {
    let file_type =
        FileType::from_mode(attr.mode).ok_or(DecodeError::BadFileType { mode: attr.mode })?;
    if attr.size > i64::MAX as u64 {
        return Err(DecodeError::SizeTooLarge(attr.size));
    }
    for ns in [attr.atimensec, attr.mtimensec, attr.ctimensec] {
        if ns >= NSEC_PER_SEC {
            return Err(DecodeError::BadNsec(ns));
        }
    }
    Ok(ValidAttr {
        attr: *attr,
        file_type,
    })
}

/// Decodes and checks a GETATTR or SETATTR reply (`fuse_attr_out`).
pub fn decode_attr_out(payload: &[u8]) -> Result<(ValidAttr, Timeout), DecodeError> {
    let out = AttrOut::decode(payload)?;
    let attr = check_attr(&out.attr)?;
    Ok((attr, Timeout::new(out.attr_valid, out.attr_valid_nsec)))
}

/// An entry that passed the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidEntry {
    /// Node id (never 0).
    pub nodeid: u64,
    /// Generation (0 for the root).
    pub generation: u64,
    /// Name cache timeout.
    pub entry_valid: Timeout,
    /// Attribute cache timeout.
    pub attr_valid: Timeout,
    /// Attributes.
    pub attr: ValidAttr,
}

/// The result of a LOOKUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The name does not exist; the negative entry may be cached this long
    /// (a zero node id is "ENOENT with a timeout").
    Negative {
        /// Name cache timeout.
        entry_valid: Timeout,
    },
    /// The name exists.
    Positive(ValidEntry),
}

fn valid_entry(e: &EntryOut) -> Result<ValidEntry, DecodeError> {
    Ok(ValidEntry {
        nodeid: e.nodeid,
        generation: e.generation,
        entry_valid: Timeout::new(e.entry_valid, e.entry_valid_nsec),
        attr_valid: Timeout::new(e.attr_valid, e.attr_valid_nsec),
        attr: check_attr(&e.attr)?,
    })
}

/// Checks a LOOKUP reply: node id 0 is a negative entry (attributes are
/// then ignored, as in `fuse_lookup_name()`); the root may be returned (for
/// ".." through export operations) and its generation is forced to 0 as C
/// does; otherwise the attributes must be valid.
pub fn check_lookup(e: &EntryOut) -> Result<Lookup, DecodeError> {
    if e.nodeid == 0 {
        return Ok(Lookup::Negative {
            entry_valid: Timeout::new(e.entry_valid, e.entry_valid_nsec),
        });
    }
    let mut v = valid_entry(e)?;
    if v.nodeid == FUSE_ROOT_ID {
        v.generation = 0;
    }
    Ok(Lookup::Positive(v))
}

/// Checks the entry of a new child (MKNOD, MKDIR, SYMLINK, LINK, CREATE, a
/// READDIRPLUS entry): its node id can be neither 0 nor the root, its
/// attributes must be valid, and if `expected` is given its type must match
/// (`create_new_entry()` in fs/fuse/dir.c).
pub fn check_new_entry(
    e: &EntryOut,
    expected: Option<FileType>,
) -> Result<ValidEntry, DecodeError> {
    if e.nodeid == 0 || e.nodeid == FUSE_ROOT_ID {
        return Err(DecodeError::BadNodeid(e.nodeid));
    }
    let v = valid_entry(e)?;
    if let Some(t) = expected {
        if v.attr.file_type() != t {
            return Err(DecodeError::TypeMismatch {
                expected: t,
                mode: e.attr.mode,
            });
        }
    }
    Ok(v)
}

/// Decodes a LOOKUP reply payload and checks it with [`check_lookup`].
pub fn decode_lookup(payload: &[u8]) -> Result<Lookup, DecodeError> {
    check_lookup(&EntryOut::decode(payload)?)
}

/// Decodes a new-entry reply payload and checks it with
/// [`check_new_entry`].
pub fn decode_new_entry(
    payload: &[u8],
    expected: Option<FileType>,
) -> Result<ValidEntry, DecodeError> {
    check_new_entry(&EntryOut::decode(payload)?, expected)
}

/// Decodes a CREATE reply payload: an entry (which must be a regular file)
/// followed by an open reply.
pub fn decode_create(payload: &[u8]) -> Result<(ValidEntry, OpenOut), DecodeError> {
    let entry = decode_new_entry(payload, Some(FileType::Regular))?;
    let rest = payload.get(EntryOut::SIZE..).unwrap_or(&[]);
    Ok((entry, OpenOut::decode(rest)?))
}

/// Decodes an OPEN or OPENDIR reply.
pub fn decode_open(payload: &[u8]) -> Result<OpenOut, DecodeError> {
    Ok(OpenOut::decode(payload)?)
}

/// Decodes a STATFS reply payload, the 7.0-7.3 48-byte layout included
/// (the missing fields read as 0). The values are only reported to
/// userspace, so, as in C, they are not checked further.
pub fn decode_statfs(payload: &[u8]) -> Result<Kstatfs, DecodeError> {
    Ok(decode_prefix::<Kstatfs>(payload, FUSE_COMPAT_STATFS_SIZE)?)
}

/// Largest structure [`decode_prefix`] handles (`fuse_kstatfs`).
const PREFIX_MAX: usize = Kstatfs::SIZE;

/// Decodes a `T` from a payload that may be shorter than `T::SIZE` but not
/// shorter than `min`; the missing bytes read as zero.
fn decode_prefix<T: Wire>(payload: &[u8], min: usize) -> Result<T, WireError> {
    if payload.len() < min {
        return Err(WireError::Short {
            need: min,
            have: payload.len(),
        });
    }
    let mut buf = [0u8; PREFIX_MAX];
    let n = payload.len().min(T::SIZE).min(buf.len());
    let src = payload.get(..n).unwrap_or(&[]);
    if let Some(dst) = buf.get_mut(..n) {
        dst.copy_from_slice(src);
    }
    T::decode(&buf)
}

/// The session parameters from a checked INIT reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitParams {
    /// The server's minor version (the session's, since ours is 41 and the
    /// server answers with at most its own).
    pub minor: u32,
    /// Negotiated flags: what the server accepted, bits 32..63 included only
    /// with `FUSE_INIT_EXT`, masked with what we offered (the C driver does
    /// not mask; a server turning on something never offered is ignored).
    pub flags: u64,
    /// Largest readahead, bytes.
    pub max_readahead: u32,
    /// Largest write, bytes, at least 4096.
    pub max_write: u32,
    /// Largest request in pages, `1..=256` (32 without `FUSE_MAX_PAGES`).
    pub max_pages: u16,
    /// log2 of the DAX mapping alignment, `<= 21`, with
    /// `FUSE_MAP_ALIGNMENT`.
    pub map_alignment: Option<u16>,
    /// Timestamp granularity in ns, when `1..=1e9`.
    pub time_gran: Option<u32>,
    /// Background request limit, when nonzero (7.13+).
    pub max_background: Option<u16>,
    /// Congestion threshold, when nonzero (7.13+).
    pub congestion_threshold: Option<u16>,
}

impl InitParams {
    /// Whether every bit of `flag` was negotiated.
    #[cfg_attr(
        CONFIG_VIRTIOFS_RS,
        expect(dead_code, reason = "for the data path; host-tested")
    )]
    pub fn has(&self, flag: u64) -> bool {
        self.flags & flag == flag
    }
}

/// Decodes and checks an INIT reply payload (8 to 64 bytes; shorter
/// layouts read as zero), following `process_init_reply()`: the major must
/// be 7; before 7.6 no flags count; before 7.5 `max_write` is 4096; and a
/// negotiated `map_alignment` above 21 is refused (the C driver marks the
/// connection failed, so every later request gets `ECONNREFUSED`).
pub fn decode_init(payload: &[u8], offered: u64) -> Result<InitParams, DecodeError> {
    let o: InitOut = decode_prefix(payload, FUSE_COMPAT_INIT_OUT_SIZE)?;
    if o.major != super::abi::FUSE_KERNEL_VERSION {
        return Err(DecodeError::BadMajor(o.major));
    }
    let mut flags = 0u64;
    if o.minor >= 6 {
        flags = u64::from(o.flags);
        if flags & init_flags::FUSE_INIT_EXT != 0 {
            flags |= u64::from(o.flags2) << 32;
        }
        flags &= offered;
    }
    let map_alignment = if flags & init_flags::FUSE_MAP_ALIGNMENT != 0 {
        if u32::from(o.map_alignment) > FUSE_DAX_SHIFT {
            return Err(DecodeError::MapAlignment(o.map_alignment));
        }
        Some(o.map_alignment)
    } else {
        None
    };
    let max_pages = if flags & init_flags::FUSE_MAX_PAGES != 0 {
        o.max_pages.clamp(1, FUSE_MAX_MAX_PAGES)
    } else {
        FUSE_DEFAULT_MAX_PAGES_PER_REQ
    };
    let max_write = if o.minor < 5 {
        4096
    } else {
        o.max_write.max(4096)
    };
    let time_gran =
        (o.minor >= 6 && (1..=NSEC_PER_SEC).contains(&o.time_gran)).then_some(o.time_gran);
    let limits = o.minor >= 13;
    Ok(InitParams {
        minor: o.minor,
        flags,
        max_readahead: o.max_readahead,
        max_write,
        max_pages,
        map_alignment,
        time_gran,
        max_background: (limits && o.max_background != 0).then_some(o.max_background),
        congestion_threshold: (limits && o.congestion_threshold != 0)
            .then_some(o.congestion_threshold),
    })
}

#[cfg(test)]
mod tests {
    use super::super::abi::{init_flags::*, FUSE_KERNEL_MINOR_VERSION as MINOR};
    use super::*;

    const U: u64 = 0x1_0000_0002;

    /// A reply buffer of `cap` bytes holding a header and `payload`.
    fn reply(cap: usize, len: u32, error: i32, unique: u64, payload: &[u8]) -> [u8; 512] {
        let mut b = [0u8; 512];
        OutHeader { len, error, unique }.encode(&mut b).unwrap();
        b[16..16 + payload.len()].copy_from_slice(payload);
        assert!(cap <= 512);
        b
    }

    fn attr_bytes(mode: u32, size: u64) -> [u8; 88] {
        let a = Attr {
            ino: 5,
            size,
            mode,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        };
        let mut b = [0u8; 88];
        a.encode(&mut b).unwrap();
        b
    }

    #[test]
    fn ok_exact() {
        let mut p = [0u8; 104];
        p[16..].copy_from_slice(&attr_bytes(mode::S_IFDIR | 0o755, 4096));
        let b = reply(120, 120, 0, U, &p);
        let spec = ReplySpec::for_opcode(Opcode::Getattr, 0, MINOR);
        let out = validate(&b[..120], 0, 120, U, spec).unwrap();
        let Outcome::Ok(pl) = out else { panic!() };
        assert_eq!(pl.len, 104);
        assert_eq!(pl.inline.len(), 104);
        let (a, t) = decode_attr_out(pl.inline).unwrap();
        assert_eq!(a.file_type(), FileType::Directory);
        assert_eq!(a.size(), 4096);
        assert!(t.is_zero());
    }

    #[test]
    fn used_longer_than_hdr_len_is_fine() {
        let b = reply(64, 16, 0, U, &[]);
        assert!(matches!(
            validate(&b[..64], 0, 64, U, ReplySpec::HEADER_ONLY),
            Ok(Outcome::Ok(Payload { len: 0, .. }))
        ));
    }

    #[test]
    fn errno_reply() {
        let b = reply(16, 16, -2, U, &[]);
        let out = validate(&b[..16], 0, 16, U, ReplySpec::exact(128)).unwrap();
        assert_eq!(out, Outcome::Err(Errno(2)));
        let Outcome::Err(e) = out else { panic!() };
        assert_eq!((e.get(), e.to_kernel()), (2, -2));
        let b = reply(16, 16, -511, U, &[]);
        assert_eq!(
            validate(&b[..16], 0, 16, U, ReplySpec::HEADER_ONLY),
            Ok(Outcome::Err(Errno(511)))
        );
    }

    #[test]
    fn every_error_variant() {
        let hs = ReplySpec::HEADER_ONLY;
        let b = reply(16, 16, 0, U, &[]);
        assert_eq!(
            validate(&b[..16], 0, 16, U, ReplySpec::NoReply),
            Err(ReplyError::NoReplyExpected)
        );
        assert_eq!(
            validate(&b[..15], 0, 15, U, hs),
            Err(ReplyError::InlineTooSmall)
        );
        assert_eq!(
            validate(&b[..16], usize::MAX, 16, U, hs),
            Err(ReplyError::CapacityOverflow)
        );
        assert_eq!(
            validate(&b[..16], 0, 17, U, hs),
            Err(ReplyError::TooLong {
                used: 17,
                capacity: 16
            })
        );
        assert_eq!(
            validate(&b[..16], 0, u32::MAX, U, hs),
            Err(ReplyError::TooLong {
                used: u32::MAX,
                capacity: 16
            })
        );
        assert_eq!(
            validate(&b[..16], 0, 15, U, hs),
            Err(ReplyError::Short { used: 15 })
        );
        assert_eq!(
            validate(&b[..16], 0, 0, U, hs),
            Err(ReplyError::Short { used: 0 })
        );
        let b2 = reply(32, 15, 0, U, &[]);
        assert_eq!(
            validate(&b2[..32], 0, 32, U, hs),
            Err(ReplyError::LenMismatch { hdr: 15, used: 32 })
        );
        let b2 = reply(32, 24, 0, U, &[]);
        assert_eq!(
            validate(&b2[..32], 0, 20, U, ReplySpec::up_to(8)),
            Err(ReplyError::LenMismatch { hdr: 24, used: 20 })
        );
        assert_eq!(
            validate(&b[..16], 0, 16, U + 2, hs),
            Err(ReplyError::UniqueMismatch {
                expected: U + 2,
                got: U
            })
        );
        for e in [1, -512, i32::MIN, i32::MAX] {
            let b2 = reply(16, 16, e, U, &[]);
            assert_eq!(
                validate(&b2[..16], 0, 16, U, hs),
                Err(ReplyError::BadErrno(e))
            );
        }
        let b2 = reply(32, 24, -5, U, &[0; 8]);
        assert_eq!(
            validate(&b2[..32], 0, 24, U, hs),
            Err(ReplyError::ErrorWithPayload { error: -5, len: 24 })
        );
        let b2 = reply(32, 24, 0, U, &[0; 8]);
        assert_eq!(
            validate(&b2[..32], 0, 24, U, hs),
            Err(ReplyError::BadPayloadSize {
                len: 8,
                min: 0,
                max: 0
            })
        );
        assert_eq!(
            validate(&b2[..32], 0, 24, U, ReplySpec::exact(9)),
            Err(ReplyError::BadPayloadSize {
                len: 8,
                min: 9,
                max: 9
            })
        );
    }

    #[test]
    fn payload_in_pages() {
        // READ of 8192 bytes: the inline buffer holds only the header.
        let b = reply(16, 16 + 5000, 0, U, &[]);
        let spec = ReplySpec::for_opcode(Opcode::Read, 8192, MINOR);
        let out = validate(&b[..16], 8192, 16 + 5000, U, spec).unwrap();
        assert_eq!(
            out,
            Outcome::Ok(Payload {
                len: 5000,
                inline: &[]
            })
        );
        // More than requested.
        let b = reply(16, 16 + 8193, 0, U, &[]);
        assert_eq!(
            validate(&b[..16], 8200, 16 + 8193, U, spec),
            Err(ReplyError::BadPayloadSize {
                len: 8193,
                min: 0,
                max: 8192
            })
        );
        // Partly inline.
        let b = reply(24, 16 + 100, 0, U, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let Ok(Outcome::Ok(p)) = validate(&b[..24], 100, 116, U, ReplySpec::up_to(100)) else {
            panic!()
        };
        assert_eq!((p.len, p.inline), (100, &[1u8, 2, 3, 4, 5, 6, 7, 8][..]));
    }

    #[test]
    fn specs() {
        use Opcode::*;
        let s = |op, v| ReplySpec::for_opcode(op, v, MINOR);
        assert_eq!(s(Forget, 0), ReplySpec::NoReply);
        assert_eq!(s(BatchForget, 0), ReplySpec::NoReply);
        assert_eq!(s(Init, 0), ReplySpec::Sized { min: 8, max: 64 });
        assert_eq!(s(Lookup, 0), ReplySpec::exact(128));
        assert_eq!(s(Create, 0), ReplySpec::exact(144));
        assert_eq!(s(Getattr, 0), ReplySpec::exact(104));
        assert_eq!(s(Statfs, 0), ReplySpec::exact(80));
        assert_eq!(s(Setupmapping, 0), ReplySpec::HEADER_ONLY);
        assert_eq!(s(Removemapping, 0), ReplySpec::HEADER_ONLY);
        assert_eq!(s(Destroy, 0), ReplySpec::HEADER_ONLY);
        assert!(may_go_unanswered(Destroy));
        assert!(!may_go_unanswered(Setupmapping));
        assert!(!may_go_unanswered(Getattr));
        assert_eq!(s(Readdirplus, 4096), ReplySpec::up_to(4096));
        assert_eq!(s(Getxattr, 0), ReplySpec::exact(8));
        assert_eq!(s(Listxattr, 10), ReplySpec::up_to(10));
        assert_eq!(
            s(Ioctl, u32::MAX),
            ReplySpec::Sized {
                min: 16,
                max: u32::MAX
            }
        );
        assert_eq!(s(Statx, 0), ReplySpec::exact(288));
        assert_eq!(s(Write, 0), ReplySpec::exact(8));
        assert_eq!(s(Open, 0), ReplySpec::exact(16));
        assert_eq!(s(Getlk, 0), ReplySpec::exact(24));
        // Compat layouts.
        assert_eq!(ReplySpec::for_opcode(Statfs, 0, 3), ReplySpec::exact(48));
        assert_eq!(ReplySpec::for_opcode(Lookup, 0, 8), ReplySpec::exact(120));
        assert_eq!(ReplySpec::for_opcode(Setattr, 0, 8), ReplySpec::exact(96));
        // Every opcode has a spec and none panics.
        for v in 0..64 {
            if let Ok(op) = Opcode::try_from(v) {
                let _ = s(op, u32::MAX);
            }
        }
    }

    #[test]
    fn attr_checks() {
        let ok = Attr::decode(&attr_bytes(mode::S_IFREG | 0o644, 10)).unwrap();
        assert!(check_attr(&ok).is_ok());
        for m in [0, 0o030000, 0o050000, 0o070000, 0o110000, 0o170000] {
            let a = Attr {
                mode: m | 0o644,
                ..ok
            };
            assert_eq!(
                check_attr(&a),
                Err(DecodeError::BadFileType { mode: m | 0o644 })
            );
        }
        for (m, t) in [
            (mode::S_IFSOCK, FileType::Socket),
            (mode::S_IFLNK, FileType::Symlink),
            (mode::S_IFBLK, FileType::BlockDev),
            (mode::S_IFCHR, FileType::CharDev),
            (mode::S_IFIFO, FileType::Fifo),
        ] {
            let a = check_attr(&Attr { mode: m, ..ok }).unwrap();
            assert_eq!(a.file_type(), t);
            assert_eq!(t.mode_bits(), m);
        }
        assert_eq!(FileType::Directory.dt(), 4);
        assert_eq!(FileType::Regular.dt(), 8);
        let a = Attr {
            size: i64::MAX as u64,
            ..ok
        };
        assert_eq!(check_attr(&a).unwrap().size(), i64::MAX);
        let a = Attr {
            size: 1 << 63,
            ..ok
        };
        assert_eq!(check_attr(&a), Err(DecodeError::SizeTooLarge(1 << 63)));
        let a = Attr {
            mtimensec: 999_999_999,
            ..ok
        };
        assert!(check_attr(&a).is_ok());
        let a = Attr {
            ctimensec: 1_000_000_000,
            ..ok
        };
        assert_eq!(check_attr(&a), Err(DecodeError::BadNsec(1_000_000_000)));
        assert_eq!(
            decode_attr_out(&[0u8; 103]),
            Err(DecodeError::Wire(WireError::Short {
                need: 104,
                have: 103
            }))
        );
    }

    fn entry(nodeid: u64, mode: u32) -> EntryOut {
        EntryOut {
            nodeid,
            generation: 3,
            entry_valid: 1,
            entry_valid_nsec: 2_000_000_000,
            attr_valid: 0,
            attr_valid_nsec: 5,
            attr: Attr {
                mode,
                ..Default::default()
            },
        }
    }

    #[test]
    fn lookup_checks() {
        // Negative entry: attributes ignored.
        assert_eq!(
            check_lookup(&entry(0, 0)),
            Ok(Lookup::Negative {
                entry_valid: Timeout {
                    secs: 1,
                    nsecs: 999_999_999
                }
            })
        );
        let Ok(Lookup::Positive(v)) = check_lookup(&entry(1, mode::S_IFDIR)) else {
            panic!()
        };
        assert_eq!(
            (v.nodeid, v.generation),
            (1, 0),
            "root generation forced to 0"
        );
        let Ok(Lookup::Positive(v)) = check_lookup(&entry(9, mode::S_IFREG)) else {
            panic!()
        };
        assert_eq!((v.nodeid, v.generation, v.attr_valid.nsecs), (9, 3, 5));
        assert_eq!(
            check_lookup(&entry(9, 0)),
            Err(DecodeError::BadFileType { mode: 0 })
        );
        let mut b = [0u8; 128];
        entry(0, 0).encode(&mut b).unwrap();
        assert!(matches!(decode_lookup(&b), Ok(Lookup::Negative { .. })));
        assert!(decode_lookup(&b[..127]).is_err());
    }

    #[test]
    fn new_entry_checks() {
        assert_eq!(
            check_new_entry(&entry(0, mode::S_IFDIR), None),
            Err(DecodeError::BadNodeid(0))
        );
        assert_eq!(
            check_new_entry(&entry(1, mode::S_IFDIR), None),
            Err(DecodeError::BadNodeid(1))
        );
        assert!(check_new_entry(&entry(2, mode::S_IFDIR), Some(FileType::Directory)).is_ok());
        assert_eq!(
            check_new_entry(&entry(2, mode::S_IFREG), Some(FileType::Directory)),
            Err(DecodeError::TypeMismatch {
                expected: FileType::Directory,
                mode: mode::S_IFREG
            })
        );
        let mut b = [0u8; 144];
        entry(4, mode::S_IFREG).encode(&mut b).unwrap();
        OpenOut {
            fh: 77,
            open_flags: 1,
            backing_id: 0,
        }
        .encode(&mut b[128..])
        .unwrap();
        let (e, o) = decode_create(&b).unwrap();
        assert_eq!((e.nodeid, o.fh), (4, 77));
        assert!(decode_create(&b[..143]).is_err());
        entry(4, mode::S_IFDIR).encode(&mut b).unwrap();
        assert!(matches!(
            decode_create(&b),
            Err(DecodeError::TypeMismatch { .. })
        ));
        assert!(decode_new_entry(&b, None).is_ok());
    }

    #[test]
    fn statfs_full_and_compat() {
        let st = Kstatfs {
            blocks: 100,
            bfree: 50,
            bavail: 40,
            files: 10,
            ffree: 5,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
            ..Default::default()
        };
        let mut b = [0u8; 80];
        st.encode(&mut b).unwrap();
        assert_eq!(decode_statfs(&b), Ok(st));
        let c = decode_statfs(&b[..48]).unwrap();
        assert_eq!(
            (c.blocks, c.bsize, c.namelen, c.frsize),
            (100, 4096, 255, 0)
        );
        assert!(matches!(decode_statfs(&b[..47]), Err(DecodeError::Wire(_))));
    }

    fn init_bytes(o: &InitOut) -> [u8; 64] {
        let mut b = [0u8; 64];
        o.encode(&mut b).unwrap();
        b
    }

    const OFFERED: u64 =
        FUSE_INIT_EXT | FUSE_MAX_PAGES | FUSE_MAP_ALIGNMENT | FUSE_HAS_INODE_DAX | FUSE_ASYNC_READ;

    #[test]
    fn init_full() {
        let o = InitOut {
            major: 7,
            minor: 41,
            max_readahead: 1 << 17,
            flags: (FUSE_INIT_EXT | FUSE_MAX_PAGES | FUSE_MAP_ALIGNMENT | FUSE_SPLICE_READ) as u32,
            max_background: 64,
            congestion_threshold: 48,
            max_write: 1 << 20,
            time_gran: 1,
            max_pages: 1000,
            map_alignment: 12,
            flags2: (FUSE_HAS_INODE_DAX >> 32) as u32 | 0x8000_0000,
            ..Default::default()
        };
        let p = decode_init(&init_bytes(&o), OFFERED).unwrap();
        assert_eq!(
            p.flags,
            FUSE_INIT_EXT | FUSE_MAX_PAGES | FUSE_MAP_ALIGNMENT | FUSE_HAS_INODE_DAX
        );
        assert!(p.has(FUSE_HAS_INODE_DAX) && !p.has(FUSE_SPLICE_READ));
        assert_eq!(p.max_pages, 256);
        assert_eq!(p.map_alignment, Some(12));
        assert_eq!(p.max_write, 1 << 20);
        assert_eq!(p.time_gran, Some(1));
        assert_eq!(
            (p.max_background, p.congestion_threshold),
            (Some(64), Some(48))
        );
        assert_eq!(p.minor, 41);
    }

    #[test]
    fn init_rules() {
        let base = InitOut {
            major: 7,
            minor: 41,
            ..Default::default()
        };
        // flags2 ignored without INIT_EXT.
        let o = InitOut { flags2: 2, ..base };
        assert_eq!(decode_init(&init_bytes(&o), OFFERED).unwrap().flags, 0);
        // Defaults.
        let p = decode_init(&init_bytes(&base), OFFERED).unwrap();
        assert_eq!(
            (p.max_pages, p.max_write, p.map_alignment, p.time_gran),
            (32, 4096, None, None)
        );
        assert_eq!((p.max_background, p.congestion_threshold), (None, None));
        // max_pages 0 with the flag -> 1.
        let o = InitOut {
            flags: FUSE_MAX_PAGES as u32,
            max_pages: 0,
            ..base
        };
        assert_eq!(decode_init(&init_bytes(&o), OFFERED).unwrap().max_pages, 1);
        // map_alignment: 21 ok, 22 refused, ignored when not negotiated.
        let o = InitOut {
            flags: FUSE_MAP_ALIGNMENT as u32,
            map_alignment: 21,
            ..base
        };
        assert_eq!(
            decode_init(&init_bytes(&o), OFFERED).unwrap().map_alignment,
            Some(21)
        );
        let o = InitOut {
            flags: FUSE_MAP_ALIGNMENT as u32,
            map_alignment: 22,
            ..base
        };
        assert_eq!(
            decode_init(&init_bytes(&o), OFFERED),
            Err(DecodeError::MapAlignment(22))
        );
        assert_eq!(
            decode_init(&init_bytes(&o), OFFERED & !FUSE_MAP_ALIGNMENT)
                .unwrap()
                .map_alignment,
            None
        );
        let o = InitOut {
            map_alignment: 40,
            ..base
        };
        assert!(decode_init(&init_bytes(&o), OFFERED).is_ok());
        // Major.
        let o = InitOut { major: 8, ..base };
        assert_eq!(
            decode_init(&init_bytes(&o), OFFERED),
            Err(DecodeError::BadMajor(8))
        );
        // time_gran out of range.
        let o = InitOut {
            time_gran: 1_000_000_001,
            ..base
        };
        assert_eq!(
            decode_init(&init_bytes(&o), OFFERED).unwrap().time_gran,
            None
        );
    }

    #[test]
    fn init_short_layouts() {
        let o = InitOut {
            major: 7,
            minor: 22,
            flags: FUSE_ASYNC_READ as u32,
            max_write: 65536,
            max_background: 9,
            ..Default::default()
        };
        let b = init_bytes(&o);
        let p = decode_init(&b[..24], OFFERED).unwrap();
        assert_eq!(
            (p.minor, p.flags, p.max_write, p.max_background),
            (22, FUSE_ASYNC_READ, 65536, Some(9))
        );
        let o = InitOut {
            major: 7,
            minor: 4,
            flags: 1,
            max_write: 65536,
            ..Default::default()
        };
        let b = init_bytes(&o);
        let p = decode_init(&b[..8], OFFERED).unwrap();
        assert_eq!((p.minor, p.flags, p.max_write), (4, 0, 4096));
        assert!(matches!(
            decode_init(&b[..7], OFFERED),
            Err(DecodeError::Wire(_))
        ));
        let o = InitOut {
            major: 7,
            minor: 12,
            max_background: 9,
            ..Default::default()
        };
        assert_eq!(
            decode_init(&init_bytes(&o), OFFERED)
                .unwrap()
                .max_background,
            None
        );
    }
}
