// SPDX-License-Identifier: GPL-2.0-only

//! Opcodes, constants and on-wire structures of the FUSE protocol 7.41
//! (`include/uapi/linux/fuse.h`), restricted to what virtio-fs uses.
//!
//! Each structure is a plain Rust struct with public fields named as in C,
//! a `SIZE` constant equal to the C `sizeof` (checked at compile time against
//! the sum of its fields, and in the unit tests against the numbers below),
//! and [`Wire`] methods to encode it into and decode it from a byte slice in
//! little-endian order. Unused and padding fields are kept so that a decoded
//! structure re-encodes to the same bytes.

// This module mirrors the uapi header, as the kernel's `bindings` crate
// does: its constants and structures exist whether or not the driver uses
// them yet (every struct is checked against the header in `abi_check.rs`).
#![cfg_attr(CONFIG_VIRTIOFS_RS, allow(dead_code))]

/// Major version of the protocol we speak (`FUSE_KERNEL_VERSION`).
pub const FUSE_KERNEL_VERSION: u32 = 7;
/// Minor version of the protocol we speak (`FUSE_KERNEL_MINOR_VERSION`).
pub const FUSE_KERNEL_MINOR_VERSION: u32 = 41;
/// Node id of the root directory (`FUSE_ROOT_ID`).
pub const FUSE_ROOT_ID: u64 = 1;
/// Longest name the kernel sends or accepts in a directory entry
/// (`FUSE_NAME_MAX`, fs/fuse/fuse_i.h).
pub const FUSE_NAME_MAX: usize = 1024;
/// Default `max_pages` when the server does not negotiate `FUSE_MAX_PAGES`
/// (`FUSE_DEFAULT_MAX_PAGES_PER_REQ`, fs/fuse/fuse_i.h).
pub const FUSE_DEFAULT_MAX_PAGES_PER_REQ: u16 = 32;
/// Upper bound for `max_pages` (`FUSE_MAX_MAX_PAGES`, fs/fuse/fuse_i.h).
pub const FUSE_MAX_MAX_PAGES: u16 = 256;
/// log2 of the DAX mapping range size, 2 MiB (`FUSE_DAX_SHIFT`, fs/fuse/dax.c).
pub const FUSE_DAX_SHIFT: u32 = 21;
/// DAX mapping range size in bytes (`FUSE_DAX_SZ`, fs/fuse/dax.c).
pub const FUSE_DAX_SZ: u64 = 1 << FUSE_DAX_SHIFT;
/// Page size the REMOVEMAPPING batch limit is derived from (x86-64).
pub const PAGE_SIZE: usize = 4096;
/// Most entries in one REMOVEMAPPING message
/// (`FUSE_REMOVEMAPPING_MAX_ENTRY` = `PAGE_SIZE / sizeof(fuse_removemapping_one)`).
pub const FUSE_REMOVEMAPPING_MAX_ENTRY: usize = PAGE_SIZE / RemoveMappingOne::SIZE;
/// Bit 63 of a unique id marks a resent request (`FUSE_UNIQUE_RESEND`).
pub const FUSE_UNIQUE_RESEND: u64 = 1 << 63;
/// "No id" value for uid/gid in a request header (`FUSE_INVALID_UIDGID`).
pub const FUSE_INVALID_UIDGID: u32 = u32::MAX;
/// Size of `fuse_init_out` in protocol 7.0-7.4 (`FUSE_COMPAT_INIT_OUT_SIZE`).
pub const FUSE_COMPAT_INIT_OUT_SIZE: usize = 8;
/// Size of `fuse_init_out` in protocol 7.5-7.22 (`FUSE_COMPAT_22_INIT_OUT_SIZE`).
pub const FUSE_COMPAT_22_INIT_OUT_SIZE: usize = 24;
/// Size of `fuse_entry_out` before 7.9 (`FUSE_COMPAT_ENTRY_OUT_SIZE`).
pub const FUSE_COMPAT_ENTRY_OUT_SIZE: usize = 120;
/// Size of `fuse_attr_out` before 7.9 (`FUSE_COMPAT_ATTR_OUT_SIZE`).
pub const FUSE_COMPAT_ATTR_OUT_SIZE: usize = 96;
/// Size of `fuse_statfs_out` before 7.4 (`FUSE_COMPAT_STATFS_SIZE`).
pub const FUSE_COMPAT_STATFS_SIZE: usize = 48;
/// Offset of the name in `fuse_dirent` (`FUSE_NAME_OFFSET`).
pub const FUSE_NAME_OFFSET: usize = 24;
/// Offset of the name in `fuse_direntplus` (`FUSE_NAME_OFFSET_DIRENTPLUS`).
pub const FUSE_NAME_OFFSET_DIRENTPLUS: usize = EntryOut::SIZE + FUSE_NAME_OFFSET;

/// `fuse_init_in.flags` / `fuse_init_out.flags` bits, as a 64-bit set: bits
/// 32..63 travel in the `flags2` fields (only when `FUSE_INIT_EXT` is set).
pub mod init_flags {
    /// Asynchronous read requests.
    pub const FUSE_ASYNC_READ: u64 = 1 << 0;
    /// Remote POSIX locks.
    pub const FUSE_POSIX_LOCKS: u64 = 1 << 1;
    /// Kernel sends file handles with every file operation.
    pub const FUSE_FILE_OPS: u64 = 1 << 2;
    /// Filesystem handles O_TRUNC in open.
    pub const FUSE_ATOMIC_O_TRUNC: u64 = 1 << 3;
    /// Filesystem handles lookups of "." and "..".
    pub const FUSE_EXPORT_SUPPORT: u64 = 1 << 4;
    /// Writes may be larger than 4 KiB.
    pub const FUSE_BIG_WRITES: u64 = 1 << 5;
    /// Do not apply the umask to file mode on create.
    pub const FUSE_DONT_MASK: u64 = 1 << 6;
    /// Splice to the fuse device for writes (not used by virtio-fs).
    pub const FUSE_SPLICE_WRITE: u64 = 1 << 7;
    /// Splice move (not used by virtio-fs).
    pub const FUSE_SPLICE_MOVE: u64 = 1 << 8;
    /// Splice for reads (not used by virtio-fs).
    pub const FUSE_SPLICE_READ: u64 = 1 << 9;
    /// Remote flock locks.
    pub const FUSE_FLOCK_LOCKS: u64 = 1 << 10;
    /// ioctl on directories.
    pub const FUSE_HAS_IOCTL_DIR: u64 = 1 << 11;
    /// Automatically invalidate cached pages.
    pub const FUSE_AUTO_INVAL_DATA: u64 = 1 << 12;
    /// READDIRPLUS supported.
    pub const FUSE_DO_READDIRPLUS: u64 = 1 << 13;
    /// Adaptive READDIRPLUS.
    pub const FUSE_READDIRPLUS_AUTO: u64 = 1 << 14;
    /// Asynchronous direct I/O.
    pub const FUSE_ASYNC_DIO: u64 = 1 << 15;
    /// Writeback caching.
    pub const FUSE_WRITEBACK_CACHE: u64 = 1 << 16;
    /// Zero-message opens supported.
    pub const FUSE_NO_OPEN_SUPPORT: u64 = 1 << 17;
    /// Parallel lookups and readdir in one directory.
    pub const FUSE_PARALLEL_DIROPS: u64 = 1 << 18;
    /// Filesystem kills suid/sgid/caps on write/chown/trunc.
    pub const FUSE_HANDLE_KILLPRIV: u64 = 1 << 19;
    /// POSIX ACLs supported.
    pub const FUSE_POSIX_ACL: u64 = 1 << 20;
    /// Reading the device after abort returns ECONNABORTED.
    pub const FUSE_ABORT_ERROR: u64 = 1 << 21;
    /// `max_pages` in init_out is valid.
    pub const FUSE_MAX_PAGES: u64 = 1 << 22;
    /// Cache READLINK replies.
    pub const FUSE_CACHE_SYMLINKS: u64 = 1 << 23;
    /// Zero-message opendir supported.
    pub const FUSE_NO_OPENDIR_SUPPORT: u64 = 1 << 24;
    /// Only invalidate cached pages on explicit request.
    pub const FUSE_EXPLICIT_INVAL_DATA: u64 = 1 << 25;
    /// `map_alignment` in init_out is valid (DAX).
    pub const FUSE_MAP_ALIGNMENT: u64 = 1 << 26;
    /// Filesystem supports submounts.
    pub const FUSE_SUBMOUNTS: u64 = 1 << 27;
    /// Killpriv v2 semantics.
    pub const FUSE_HANDLE_KILLPRIV_V2: u64 = 1 << 28;
    /// Extended setxattr_in.
    pub const FUSE_SETXATTR_EXT: u64 = 1 << 29;
    /// The `flags2` fields are valid.
    pub const FUSE_INIT_EXT: u64 = 1 << 30;
    /// Reserved, never set.
    pub const FUSE_INIT_RESERVED: u64 = 1 << 31;
    /// Security context extension on create requests.
    pub const FUSE_SECURITY_CTX: u64 = 1 << 32;
    /// Per-inode DAX (`FUSE_ATTR_DAX` in attributes).
    pub const FUSE_HAS_INODE_DAX: u64 = 1 << 33;
    /// Supplementary group extension on create requests.
    pub const FUSE_CREATE_SUPP_GROUP: u64 = 1 << 34;
    /// Expire-only entry invalidation.
    pub const FUSE_HAS_EXPIRE_ONLY: u64 = 1 << 35;
    /// Shared mmap with FOPEN_DIRECT_IO.
    pub const FUSE_DIRECT_IO_ALLOW_MMAP: u64 = 1 << 36;
    /// Passthrough to backing files.
    pub const FUSE_PASSTHROUGH: u64 = 1 << 37;
    /// Explicitly no export support.
    pub const FUSE_NO_EXPORT_SUPPORT: u64 = 1 << 38;
    /// Kernel supports resending pending requests.
    pub const FUSE_HAS_RESEND: u64 = 1 << 39;
    /// Idmapped mounts allowed.
    pub const FUSE_ALLOW_IDMAP: u64 = 1 << 40;
}

/// `fuse_attr.flags`: the inode is a submount root (`FUSE_ATTR_SUBMOUNT`).
pub const FUSE_ATTR_SUBMOUNT: u32 = 1 << 0;
/// `fuse_attr.flags`: use DAX for this inode (`FUSE_ATTR_DAX`).
pub const FUSE_ATTR_DAX: u32 = 1 << 1;
/// `fuse_setupmapping_in.flags`: map writable.
pub const FUSE_SETUPMAPPING_FLAG_WRITE: u64 = 1 << 0;
/// `fuse_setupmapping_in.flags`: map readable.
pub const FUSE_SETUPMAPPING_FLAG_READ: u64 = 1 << 1;
/// `fuse_getattr_in.getattr_flags`: `fh` is valid.
pub const FUSE_GETATTR_FH: u32 = 1 << 0;
/// `fuse_release_in.release_flags`: flush on release.
pub const FUSE_RELEASE_FLUSH: u32 = 1 << 0;
/// `fuse_release_in.release_flags`: unlock flock locks on release.
pub const FUSE_RELEASE_FLOCK_UNLOCK: u32 = 1 << 1;
/// `fuse_fsync_in.fsync_flags`: sync data only.
pub const FUSE_FSYNC_FDATASYNC: u32 = 1 << 0;
/// `fuse_write_in.write_flags`: delayed write from page cache.
pub const FUSE_WRITE_CACHE: u32 = 1 << 0;
/// `fuse_write_in.write_flags`: `lock_owner` is valid.
pub const FUSE_WRITE_LOCKOWNER: u32 = 1 << 1;
/// `fuse_write_in.write_flags`: kill suid and sgid bits.
pub const FUSE_WRITE_KILL_SUIDGID: u32 = 1 << 2;
/// `fuse_read_in.read_flags`: `lock_owner` is valid.
pub const FUSE_READ_LOCKOWNER: u32 = 1 << 1;
/// `fuse_open_in.open_flags`: kill suid and sgid on truncating open.
pub const FUSE_OPEN_KILL_SUIDGID: u32 = 1 << 0;

/// `fuse_setattr_in.valid` bits (`FATTR_*`).
pub mod fattr {
    /// `mode` is valid.
    pub const MODE: u32 = 1 << 0;
    /// `uid` is valid.
    pub const UID: u32 = 1 << 1;
    /// `gid` is valid.
    pub const GID: u32 = 1 << 2;
    /// `size` is valid.
    pub const SIZE: u32 = 1 << 3;
    /// `atime` is valid.
    pub const ATIME: u32 = 1 << 4;
    /// `mtime` is valid.
    pub const MTIME: u32 = 1 << 5;
    /// `fh` is valid.
    pub const FH: u32 = 1 << 6;
    /// Set atime to now.
    pub const ATIME_NOW: u32 = 1 << 7;
    /// Set mtime to now.
    pub const MTIME_NOW: u32 = 1 << 8;
    /// `lock_owner` is valid.
    pub const LOCKOWNER: u32 = 1 << 9;
    /// `ctime` is valid.
    pub const CTIME: u32 = 1 << 10;
    /// Kill suid and sgid.
    pub const KILL_SUIDGID: u32 = 1 << 11;
}

/// `fuse_open_out.open_flags` bits (`FOPEN_*`).
pub mod fopen {
    /// Bypass the page cache.
    pub const DIRECT_IO: u32 = 1 << 0;
    /// Do not invalidate the data cache on open.
    pub const KEEP_CACHE: u32 = 1 << 1;
    /// The file is not seekable.
    pub const NONSEEKABLE: u32 = 1 << 2;
    /// Allow caching this directory.
    pub const CACHE_DIR: u32 = 1 << 3;
    /// The file is stream-like.
    pub const STREAM: u32 = 1 << 4;
    /// Do not flush on close.
    pub const NOFLUSH: u32 = 1 << 5;
    /// Parallel direct writes allowed.
    pub const PARALLEL_DIRECT_WRITES: u32 = 1 << 6;
    /// Passthrough to a backing file.
    pub const PASSTHROUGH: u32 = 1 << 7;
}

/// File type bits of a mode (`S_IFMT` and the types it selects).
pub mod mode {
    /// Mask of the file type bits.
    pub const S_IFMT: u32 = 0o170000;
    /// Socket.
    pub const S_IFSOCK: u32 = 0o140000;
    /// Symbolic link.
    pub const S_IFLNK: u32 = 0o120000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// Block device.
    pub const S_IFBLK: u32 = 0o060000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020000;
    /// FIFO.
    pub const S_IFIFO: u32 = 0o010000;
}

/// Why an encode or decode failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The input is shorter than the structure (decode).
    Short {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The output buffer is too small (encode).
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

/// The FUSE operations (`enum fuse_opcode`), CUSE excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Opcode {
    /// Look up a name in a directory.
    Lookup = 1,
    /// Drop lookup references (no reply).
    Forget = 2,
    /// Get attributes.
    Getattr = 3,
    /// Set attributes.
    Setattr = 4,
    /// Read a symbolic link.
    Readlink = 5,
    /// Create a symbolic link.
    Symlink = 6,
    /// Create a node.
    Mknod = 8,
    /// Create a directory.
    Mkdir = 9,
    /// Remove a file.
    Unlink = 10,
    /// Remove a directory.
    Rmdir = 11,
    /// Rename.
    Rename = 12,
    /// Create a hard link.
    Link = 13,
    /// Open a file.
    Open = 14,
    /// Read data.
    Read = 15,
    /// Write data.
    Write = 16,
    /// Filesystem statistics.
    Statfs = 17,
    /// Release an open file.
    Release = 18,
    /// Synchronise a file.
    Fsync = 20,
    /// Set an extended attribute.
    Setxattr = 21,
    /// Get an extended attribute.
    Getxattr = 22,
    /// List extended attributes.
    Listxattr = 23,
    /// Remove an extended attribute.
    Removexattr = 24,
    /// Flush on close.
    Flush = 25,
    /// Initialise the session.
    Init = 26,
    /// Open a directory.
    Opendir = 27,
    /// Read a directory.
    Readdir = 28,
    /// Release an open directory.
    Releasedir = 29,
    /// Synchronise a directory.
    Fsyncdir = 30,
    /// Test for a POSIX lock.
    Getlk = 31,
    /// Acquire or release a POSIX lock.
    Setlk = 32,
    /// Acquire a POSIX lock, waiting.
    Setlkw = 33,
    /// Check access permissions.
    Access = 34,
    /// Create and open a file.
    Create = 35,
    /// Interrupt a request.
    Interrupt = 36,
    /// Map a block (block-device filesystems).
    Bmap = 37,
    /// Tear down the session.
    Destroy = 38,
    /// ioctl.
    Ioctl = 39,
    /// poll.
    Poll = 40,
    /// Reply to a notification.
    NotifyReply = 41,
    /// Drop lookup references of several nodes (no reply).
    BatchForget = 42,
    /// Allocate space.
    Fallocate = 43,
    /// Read a directory with attributes.
    Readdirplus = 44,
    /// Rename with flags.
    Rename2 = 45,
    /// Find data or holes.
    Lseek = 46,
    /// Copy a range between files.
    CopyFileRange = 47,
    /// Map a file range into the DAX window.
    Setupmapping = 48,
    /// Unmap ranges of the DAX window.
    Removemapping = 49,
    /// Synchronise the filesystem.
    Syncfs = 50,
    /// Create an unnamed temporary file.
    Tmpfile = 51,
    /// Extended attributes (statx).
    Statx = 52,
}

/// The value is not a FUSE opcode we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownOpcode(pub u32);

impl TryFrom<u32> for Opcode {
    type Error = UnknownOpcode;

    fn try_from(v: u32) -> Result<Self, UnknownOpcode> {
        use Opcode::*;
        Ok(match v {
            1 => Lookup,
            2 => Forget,
            3 => Getattr,
            4 => Setattr,
            5 => Readlink,
            6 => Symlink,
            8 => Mknod,
            9 => Mkdir,
            10 => Unlink,
            11 => Rmdir,
            12 => Rename,
            13 => Link,
            14 => Open,
            15 => Read,
            16 => Write,
            17 => Statfs,
            18 => Release,
            20 => Fsync,
            21 => Setxattr,
            22 => Getxattr,
            23 => Listxattr,
            24 => Removexattr,
            25 => Flush,
            26 => Init,
            27 => Opendir,
            28 => Readdir,
            29 => Releasedir,
            30 => Fsyncdir,
            31 => Getlk,
            32 => Setlk,
            33 => Setlkw,
            34 => Access,
            35 => Create,
            36 => Interrupt,
            37 => Bmap,
            38 => Destroy,
            39 => Ioctl,
            40 => Poll,
            41 => NotifyReply,
            42 => BatchForget,
            43 => Fallocate,
            44 => Readdirplus,
            45 => Rename2,
            46 => Lseek,
            47 => CopyFileRange,
            48 => Setupmapping,
            49 => Removemapping,
            50 => Syncfs,
            51 => Tmpfile,
            52 => Statx,
            _ => return Err(UnknownOpcode(v)),
        })
    }
}

impl From<Opcode> for u32 {
    fn from(op: Opcode) -> u32 {
        op as u32
    }
}

/// Cursor over an input slice; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.pos.checked_add(N)?;
        let bytes: [u8; N] = self.buf.get(self.pos..end)?.try_into().ok()?;
        self.pos = end;
        Some(bytes)
    }
}

/// Cursor over an output slice; every write is bounds-checked.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(bytes.len())?;
        self.buf.get_mut(self.pos..end)?.copy_from_slice(bytes);
        self.pos = end;
        Some(())
    }
}

/// A value with a fixed little-endian wire representation.
pub trait Wire: Sized {
    /// Size on the wire, in bytes (the C `sizeof`).
    const SIZE: usize;

    /// Writes the fields in order; `None` if the output is too small.
    #[doc(hidden)]
    fn put_fields(&self, w: &mut WireWriter<'_>) -> Option<()>;

    /// Reads the fields in order; `None` if the input is too short.
    #[doc(hidden)]
    fn get_fields(r: &mut WireReader<'_>) -> Option<Self>;

    /// Encodes `self` into the first [`Self::SIZE`] bytes of `buf` and returns
    /// the number of bytes written.
    fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let err = WireError::BufferTooSmall {
            need: Self::SIZE,
            have: buf.len(),
        };
        let out = buf.get_mut(..Self::SIZE).ok_or(err)?;
        let mut w = WireWriter(Writer { buf: out, pos: 0 });
        self.put_fields(&mut w).ok_or(err)?;
        Ok(Self::SIZE)
    }

    /// Decodes a value from the first [`Self::SIZE`] bytes of `buf`; extra
    /// bytes are ignored.
    fn decode(buf: &[u8]) -> Result<Self, WireError> {
        let err = WireError::Short {
            need: Self::SIZE,
            have: buf.len(),
        };
        let input = buf.get(..Self::SIZE).ok_or(err)?;
        let mut r = WireReader(Reader { buf: input, pos: 0 });
        Self::get_fields(&mut r).ok_or(err)
    }
}

/// Opaque output cursor handed to [`Wire::put_fields`].
pub struct WireWriter<'a>(Writer<'a>);

/// Opaque input cursor handed to [`Wire::get_fields`].
pub struct WireReader<'a>(Reader<'a>);

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            const SIZE: usize = core::mem::size_of::<$t>();

            fn put_fields(&self, w: &mut WireWriter<'_>) -> Option<()> {
                w.0.put(&self.to_le_bytes())
            }

            fn get_fields(r: &mut WireReader<'_>) -> Option<Self> {
                Some(<$t>::from_le_bytes(r.0.take()?))
            }
        }
    )*};
}

wire_int!(u16, u32, u64, i32, i64);

impl<T: Wire + Copy + Default, const N: usize> Wire for [T; N] {
    const SIZE: usize = T::SIZE * N;

    fn put_fields(&self, w: &mut WireWriter<'_>) -> Option<()> {
        for v in self {
            v.put_fields(w)?;
        }
        Some(())
    }

    fn get_fields(r: &mut WireReader<'_>) -> Option<Self> {
        let mut out = [T::default(); N];
        for v in out.iter_mut() {
            *v = T::get_fields(r)?;
        }
        Some(out)
    }
}

/// Declares a wire structure: the struct, its [`Wire`] impl, and a
/// compile-time check that the declared size is the sum of the fields.
macro_rules! wire_struct {
    (
        $(#[$sm:meta])*
        pub struct $name:ident : $size:literal {
            $( $(#[$fm:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$sm])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl Wire for $name {
            const SIZE: usize = $size;

            fn put_fields(&self, w: &mut WireWriter<'_>) -> Option<()> {
                $( self.$field.put_fields(w)?; )*
                Some(())
            }

            fn get_fields(r: &mut WireReader<'_>) -> Option<Self> {
                Some(Self { $( $field: <$ty as Wire>::get_fields(r)?, )* })
            }
        }

        const _: () = assert!($size == 0 $( + <$ty as Wire>::SIZE )*);
    };
}

wire_struct! {
    /// `struct fuse_in_header`: starts every request (40 bytes).
    pub struct InHeader: 40 {
        /// Total request length, header and all arguments included.
        pub len: u32,
        /// The [`Opcode`].
        pub opcode: u32,
        /// Request id, echoed by the reply.
        pub unique: u64,
        /// Node the request is about.
        pub nodeid: u64,
        /// Caller's fsuid.
        pub uid: u32,
        /// Caller's fsgid.
        pub gid: u32,
        /// Caller's tgid.
        pub pid: u32,
        /// Length of extensions, in 8-byte units.
        pub total_extlen: u16,
        /// Padding.
        pub padding: u16,
    }
}

wire_struct! {
    /// `struct fuse_out_header`: starts every reply (16 bytes).
    pub struct OutHeader: 16 {
        /// Total reply length, header included.
        pub len: u32,
        /// 0 or a negative errno.
        pub error: i32,
        /// The request id this reply answers.
        pub unique: u64,
    }
}

wire_struct! {
    /// `struct fuse_init_in` (64 bytes since 7.36).
    pub struct InitIn: 64 {
        /// Protocol major version.
        pub major: u32,
        /// Protocol minor version.
        pub minor: u32,
        /// Largest readahead, bytes.
        pub max_readahead: u32,
        /// Offered flags, bits 0..31.
        pub flags: u32,
        /// Offered flags, bits 32..63.
        pub flags2: u32,
        /// Unused, zero.
        pub unused: [u32; 11],
    }
}

wire_struct! {
    /// `struct fuse_init_out` (64 bytes in 7.41; older servers send 8 or 24).
    pub struct InitOut: 64 {
        /// Protocol major version.
        pub major: u32,
        /// Protocol minor version.
        pub minor: u32,
        /// Largest readahead, bytes.
        pub max_readahead: u32,
        /// Accepted flags, bits 0..31.
        pub flags: u32,
        /// Background request limit.
        pub max_background: u16,
        /// Congestion threshold.
        pub congestion_threshold: u16,
        /// Largest write, bytes.
        pub max_write: u32,
        /// Timestamp granularity, ns.
        pub time_gran: u32,
        /// Largest request, pages (with `FUSE_MAX_PAGES`).
        pub max_pages: u16,
        /// log2 of the DAX mapping alignment (with `FUSE_MAP_ALIGNMENT`).
        pub map_alignment: u16,
        /// Accepted flags, bits 32..63 (with `FUSE_INIT_EXT`).
        pub flags2: u32,
        /// Passthrough stacking depth.
        pub max_stack_depth: u32,
        /// Unused.
        pub unused: [u32; 6],
    }
}

wire_struct! {
    /// `struct fuse_attr` (88 bytes).
    pub struct Attr: 88 {
        /// Inode number.
        pub ino: u64,
        /// Size, bytes.
        pub size: u64,
        /// Allocated 512-byte blocks.
        pub blocks: u64,
        /// Access time, s.
        pub atime: u64,
        /// Modification time, s.
        pub mtime: u64,
        /// Change time, s.
        pub ctime: u64,
        /// Access time, ns part.
        pub atimensec: u32,
        /// Modification time, ns part.
        pub mtimensec: u32,
        /// Change time, ns part.
        pub ctimensec: u32,
        /// Type and permission bits.
        pub mode: u32,
        /// Link count.
        pub nlink: u32,
        /// Owner.
        pub uid: u32,
        /// Group.
        pub gid: u32,
        /// Device number for device nodes.
        pub rdev: u32,
        /// Preferred I/O size.
        pub blksize: u32,
        /// `FUSE_ATTR_*`.
        pub flags: u32,
    }
}

wire_struct! {
    /// `struct fuse_entry_out` (128 bytes): reply to LOOKUP, MKNOD, MKDIR,
    /// SYMLINK, LINK, and first part of CREATE's reply.
    pub struct EntryOut: 128 {
        /// Node id; 0 in a LOOKUP reply means a cacheable negative entry.
        pub nodeid: u64,
        /// Generation; `nodeid:generation` is unique for the fs's lifetime.
        pub generation: u64,
        /// Name cache timeout, s.
        pub entry_valid: u64,
        /// Attribute cache timeout, s.
        pub attr_valid: u64,
        /// Name cache timeout, ns part.
        pub entry_valid_nsec: u32,
        /// Attribute cache timeout, ns part.
        pub attr_valid_nsec: u32,
        /// Attributes.
        pub attr: Attr,
    }
}

wire_struct! {
    /// `struct fuse_attr_out` (104 bytes): reply to GETATTR and SETATTR.
    pub struct AttrOut: 104 {
        /// Attribute cache timeout, s.
        pub attr_valid: u64,
        /// Attribute cache timeout, ns part.
        pub attr_valid_nsec: u32,
        /// Unused.
        pub dummy: u32,
        /// Attributes.
        pub attr: Attr,
    }
}

wire_struct! {
    /// `struct fuse_getattr_in` (16 bytes).
    pub struct GetattrIn: 16 {
        /// `FUSE_GETATTR_*`.
        pub getattr_flags: u32,
        /// Unused.
        pub dummy: u32,
        /// File handle, with `FUSE_GETATTR_FH`.
        pub fh: u64,
    }
}

wire_struct! {
    /// `struct fuse_kstatfs` (80 bytes).
    pub struct Kstatfs: 80 {
        /// Total blocks.
        pub blocks: u64,
        /// Free blocks.
        pub bfree: u64,
        /// Free blocks for unprivileged users.
        pub bavail: u64,
        /// Total inodes.
        pub files: u64,
        /// Free inodes.
        pub ffree: u64,
        /// Block size.
        pub bsize: u32,
        /// Longest name.
        pub namelen: u32,
        /// Fragment size.
        pub frsize: u32,
        /// Padding.
        pub padding: u32,
        /// Spare.
        pub spare: [u32; 6],
    }
}

wire_struct! {
    /// `struct fuse_statfs_out` (80 bytes): reply to STATFS.
    pub struct StatfsOut: 80 {
        /// The statistics.
        pub st: Kstatfs,
    }
}

wire_struct! {
    /// `struct fuse_open_in` (8 bytes): OPEN and OPENDIR.
    pub struct OpenIn: 8 {
        /// open(2) flags.
        pub flags: u32,
        /// `FUSE_OPEN_*`.
        pub open_flags: u32,
    }
}

wire_struct! {
    /// `struct fuse_open_out` (16 bytes): reply to OPEN, OPENDIR, and second
    /// part of CREATE's reply.
    pub struct OpenOut: 16 {
        /// File handle.
        pub fh: u64,
        /// `FOPEN_*`.
        pub open_flags: u32,
        /// Passthrough backing file id.
        pub backing_id: i32,
    }
}

wire_struct! {
    /// `struct fuse_release_in` (24 bytes): RELEASE and RELEASEDIR.
    pub struct ReleaseIn: 24 {
        /// File handle.
        pub fh: u64,
        /// open(2) flags.
        pub flags: u32,
        /// `FUSE_RELEASE_*`.
        pub release_flags: u32,
        /// Lock owner.
        pub lock_owner: u64,
    }
}

wire_struct! {
    /// `struct fuse_flush_in` (24 bytes).
    pub struct FlushIn: 24 {
        /// File handle.
        pub fh: u64,
        /// Unused.
        pub unused: u32,
        /// Padding.
        pub padding: u32,
        /// Lock owner.
        pub lock_owner: u64,
    }
}

wire_struct! {
    /// `struct fuse_file_lock` (24 bytes): a lock's range, type and holder.
    pub struct FileLockWire: 24 {
        /// First byte.
        pub start: u64,
        /// Last byte (`OFFSET_MAX`: to the end of the file).
        pub end: u64,
        /// `F_RDLCK`, `F_WRLCK` or `F_UNLCK`.
        pub typ: u32,
        /// Holder's thread group id (the host's view for GETLK replies).
        pub pid: u32,
    }
}

wire_struct! {
    /// `struct fuse_lk_in` (48 bytes): GETLK, SETLK, SETLKW.
    pub struct LkIn: 48 {
        /// File handle.
        pub fh: u64,
        /// Lock owner (scrambled).
        pub owner: u64,
        /// The lock asked for.
        pub lk: FileLockWire,
        /// `FUSE_LK_*`.
        pub lk_flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_lk_out` (24 bytes): the GETLK reply.
    pub struct LkOut: 24 {
        /// The conflicting lock (`F_UNLCK`: none).
        pub lk: FileLockWire,
    }
}

/// `FUSE_LK_FLOCK`: the lock is a `flock` lock (emulated with POSIX-style
/// requests, as C).
pub const FUSE_LK_FLOCK: u32 = 1 << 0;

wire_struct! {
    /// `struct fuse_read_in` (40 bytes): READ, READDIR, READDIRPLUS.
    pub struct ReadIn: 40 {
        /// File handle.
        pub fh: u64,
        /// Offset.
        pub offset: u64,
        /// Bytes wanted.
        pub size: u32,
        /// `FUSE_READ_*`.
        pub read_flags: u32,
        /// Lock owner.
        pub lock_owner: u64,
        /// open(2) flags.
        pub flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_write_in` (40 bytes); the data follows.
    pub struct WriteIn: 40 {
        /// File handle.
        pub fh: u64,
        /// Offset.
        pub offset: u64,
        /// Bytes of data following.
        pub size: u32,
        /// `FUSE_WRITE_*`.
        pub write_flags: u32,
        /// Lock owner.
        pub lock_owner: u64,
        /// open(2) flags.
        pub flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_write_out` (8 bytes): reply to WRITE and COPY_FILE_RANGE.
    pub struct WriteOut: 8 {
        /// Bytes written.
        pub size: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_forget_in` (8 bytes): FORGET.
    pub struct ForgetIn: 8 {
        /// Lookups to drop.
        pub nlookup: u64,
    }
}

wire_struct! {
    /// `struct fuse_forget_one` (16 bytes): an entry of BATCH_FORGET.
    pub struct ForgetOne: 16 {
        /// Node.
        pub nodeid: u64,
        /// Lookups to drop.
        pub nlookup: u64,
    }
}

wire_struct! {
    /// `struct fuse_batch_forget_in` (8 bytes); `count` [`ForgetOne`] follow.
    pub struct BatchForgetIn: 8 {
        /// Entries following.
        pub count: u32,
        /// Unused.
        pub dummy: u32,
    }
}

wire_struct! {
    /// `struct fuse_setupmapping_in` (40 bytes).
    pub struct SetupMappingIn: 40 {
        /// An open file handle (the C driver sends `-1`).
        pub fh: u64,
        /// File offset to map.
        pub foffset: u64,
        /// Length to map.
        pub len: u64,
        /// `FUSE_SETUPMAPPING_FLAG_*`.
        pub flags: u64,
        /// Offset in the DAX window.
        pub moffset: u64,
    }
}

wire_struct! {
    /// `struct fuse_removemapping_in` (4 bytes); `count`
    /// [`RemoveMappingOne`] follow, unaligned.
    pub struct RemoveMappingIn: 4 {
        /// Entries following.
        pub count: u32,
    }
}

wire_struct! {
    /// `struct fuse_removemapping_one` (16 bytes).
    pub struct RemoveMappingOne: 16 {
        /// Offset in the DAX window.
        pub moffset: u64,
        /// Length to unmap.
        pub len: u64,
    }
}

wire_struct! {
    /// `struct fuse_mknod_in` (16 bytes); the name follows.
    pub struct MknodIn: 16 {
        /// Type and permissions.
        pub mode: u32,
        /// Device number.
        pub rdev: u32,
        /// Caller's umask.
        pub umask: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_mkdir_in` (8 bytes); the name follows.
    pub struct MkdirIn: 8 {
        /// Permissions.
        pub mode: u32,
        /// Caller's umask.
        pub umask: u32,
    }
}

wire_struct! {
    /// `struct fuse_create_in` (16 bytes); the name follows.
    pub struct CreateIn: 16 {
        /// open(2) flags.
        pub flags: u32,
        /// Type and permissions.
        pub mode: u32,
        /// Caller's umask.
        pub umask: u32,
        /// `FUSE_OPEN_*`.
        pub open_flags: u32,
    }
}

wire_struct! {
    /// `struct fuse_rename_in` (8 bytes); old and new names follow.
    pub struct RenameIn: 8 {
        /// New parent directory.
        pub newdir: u64,
    }
}

wire_struct! {
    /// `struct fuse_rename2_in` (16 bytes); old and new names follow.
    pub struct Rename2In: 16 {
        /// New parent directory.
        pub newdir: u64,
        /// `RENAME_*` flags.
        pub flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_link_in` (8 bytes); the new name follows.
    pub struct LinkIn: 8 {
        /// Node to link.
        pub oldnodeid: u64,
    }
}

wire_struct! {
    /// `struct fuse_setattr_in` (88 bytes).
    pub struct SetattrIn: 88 {
        /// `FATTR_*` bits saying which fields are valid.
        pub valid: u32,
        /// Padding.
        pub padding: u32,
        /// File handle.
        pub fh: u64,
        /// Size.
        pub size: u64,
        /// Lock owner.
        pub lock_owner: u64,
        /// Access time, s.
        pub atime: u64,
        /// Modification time, s.
        pub mtime: u64,
        /// Change time, s.
        pub ctime: u64,
        /// Access time, ns part.
        pub atimensec: u32,
        /// Modification time, ns part.
        pub mtimensec: u32,
        /// Change time, ns part.
        pub ctimensec: u32,
        /// Mode.
        pub mode: u32,
        /// Unused.
        pub unused4: u32,
        /// Owner.
        pub uid: u32,
        /// Group.
        pub gid: u32,
        /// Unused.
        pub unused5: u32,
    }
}

wire_struct! {
    /// `struct fuse_fsync_in` (16 bytes): FSYNC and FSYNCDIR.
    pub struct FsyncIn: 16 {
        /// File handle.
        pub fh: u64,
        /// `FUSE_FSYNC_*`.
        pub fsync_flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_interrupt_in` (8 bytes).
    pub struct InterruptIn: 8 {
        /// Unique id of the request to interrupt.
        pub unique: u64,
    }
}

wire_struct! {
    /// `struct fuse_access_in` (8 bytes).
    pub struct AccessIn: 8 {
        /// `R_OK`/`W_OK`/`X_OK` mask.
        pub mask: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_getxattr_in` (8 bytes): GETXATTR and LISTXATTR; for
    /// GETXATTR the name follows.
    pub struct GetxattrIn: 8 {
        /// Buffer size; 0 asks for the size only.
        pub size: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_getxattr_out` (8 bytes): reply to a size query.
    pub struct GetxattrOut: 8 {
        /// Size of the value or list.
        pub size: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// The first 8 bytes of `struct fuse_setxattr_in`
    /// (`FUSE_COMPAT_SETXATTR_IN_SIZE`), what a session without
    /// `FUSE_SETXATTR_EXT` sends; the name and the value follow.
    pub struct SetxattrInCompat: 8 {
        /// Size of the value.
        pub size: u32,
        /// `XATTR_CREATE`, `XATTR_REPLACE`.
        pub flags: u32,
    }
}

wire_struct! {
    /// `struct fuse_setxattr_in` (16 bytes), what a session with
    /// `FUSE_SETXATTR_EXT` sends; the name and the value follow.
    pub struct SetxattrIn: 16 {
        /// Size of the value.
        pub size: u32,
        /// `XATTR_CREATE`, `XATTR_REPLACE`.
        pub flags: u32,
        /// `FUSE_SETXATTR_ACL_KILL_SGID`.
        pub setxattr_flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

/// `setxattr_flags`: the host clears the set-group-ID bit when it sets a
/// POSIX ACL (the caller is neither in the file's group nor capable).
pub const FUSE_SETXATTR_ACL_KILL_SGID: u32 = 1 << 0;

wire_struct! {
    /// `struct fuse_fallocate_in` (32 bytes).
    pub struct FallocateIn: 32 {
        /// File handle.
        pub fh: u64,
        /// Start of the range.
        pub offset: u64,
        /// Length of the range.
        pub length: u64,
        /// `FALLOC_FL_*`.
        pub mode: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_lseek_in` (24 bytes).
    pub struct LseekIn: 24 {
        /// File handle.
        pub fh: u64,
        /// Where to start looking.
        pub offset: u64,
        /// `SEEK_DATA` or `SEEK_HOLE`.
        pub whence: u32,
        /// Padding.
        pub padding: u32,
    }
}

wire_struct! {
    /// `struct fuse_lseek_out` (8 bytes).
    pub struct LseekOut: 8 {
        /// The offset found.
        pub offset: u64,
    }
}

wire_struct! {
    /// `struct fuse_copy_file_range_in` (56 bytes); the request's node is
    /// the source's.
    pub struct CopyFileRangeIn: 56 {
        /// Source file handle.
        pub fh_in: u64,
        /// Source offset.
        pub off_in: u64,
        /// Destination node.
        pub nodeid_out: u64,
        /// Destination file handle.
        pub fh_out: u64,
        /// Destination offset.
        pub off_out: u64,
        /// Bytes to copy.
        pub len: u64,
        /// `copy_file_range()` flags (none defined).
        pub flags: u64,
    }
}

wire_struct! {
    /// `struct fuse_syncfs_in` (8 bytes).
    pub struct SyncfsIn: 8 {
        /// Padding.
        pub padding: u64,
    }
}

wire_struct! {
    /// `struct fuse_dirent` header (24 bytes); `namelen` name bytes follow,
    /// padded to 8 bytes.
    pub struct DirentHeader: 24 {
        /// Inode number.
        pub ino: u64,
        /// Offset of the next entry (a cookie for the next READDIR).
        pub off: u64,
        /// Name length.
        pub namelen: u32,
        /// `DT_*` type.
        pub typ: u32,
    }
}

/// Rounds `x` up to a multiple of 8 (`FUSE_DIRENT_ALIGN`), or `None` on
/// overflow.
pub const fn dirent_align(x: usize) -> Option<usize> {
    match x.checked_add(7) {
        Some(v) => Some(v & !7),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes from include/uapi/linux/fuse.h (7.41) on x86-64: every field is
    /// naturally aligned and every struct is padded to 8 bytes, so the size
    /// is the sum of the field sizes; the numbers are also what `pahole`
    /// reports for fs/fuse built from that header.
    #[test]
    fn sizes_match_uapi() {
        assert_eq!(InHeader::SIZE, 40);
        assert_eq!(OutHeader::SIZE, 16);
        assert_eq!(InitIn::SIZE, 64);
        assert_eq!(InitOut::SIZE, 64);
        assert_eq!(Attr::SIZE, 88);
        assert_eq!(EntryOut::SIZE, 128);
        assert_eq!(EntryOut::SIZE - 8, FUSE_COMPAT_ENTRY_OUT_SIZE);
        assert_eq!(AttrOut::SIZE, 104);
        assert_eq!(AttrOut::SIZE - 8, FUSE_COMPAT_ATTR_OUT_SIZE);
        assert_eq!(GetattrIn::SIZE, 16);
        assert_eq!(Kstatfs::SIZE, 80);
        assert_eq!(StatfsOut::SIZE, 80);
        assert_eq!(OpenIn::SIZE, 8);
        assert_eq!(OpenOut::SIZE, 16);
        assert_eq!(ReleaseIn::SIZE, 24);
        assert_eq!(FlushIn::SIZE, 24);
        assert_eq!(ReadIn::SIZE, 40);
        assert_eq!(WriteIn::SIZE, 40);
        assert_eq!(WriteOut::SIZE, 8);
        assert_eq!(ForgetIn::SIZE, 8);
        assert_eq!(ForgetOne::SIZE, 16);
        assert_eq!(BatchForgetIn::SIZE, 8);
        assert_eq!(SetupMappingIn::SIZE, 40);
        assert_eq!(RemoveMappingIn::SIZE, 4);
        assert_eq!(RemoveMappingOne::SIZE, 16);
        assert_eq!(MknodIn::SIZE, 16);
        assert_eq!(MkdirIn::SIZE, 8);
        assert_eq!(CreateIn::SIZE, 16);
        assert_eq!(RenameIn::SIZE, 8);
        assert_eq!(Rename2In::SIZE, 16);
        assert_eq!(LinkIn::SIZE, 8);
        assert_eq!(SetattrIn::SIZE, 88);
        assert_eq!(FsyncIn::SIZE, 16);
        assert_eq!(InterruptIn::SIZE, 8);
        assert_eq!(AccessIn::SIZE, 8);
        assert_eq!(GetxattrIn::SIZE, 8);
        assert_eq!(GetxattrOut::SIZE, 8);
        assert_eq!(SyncfsIn::SIZE, 8);
        assert_eq!(DirentHeader::SIZE, FUSE_NAME_OFFSET);
        assert_eq!(FUSE_NAME_OFFSET_DIRENTPLUS, 152);
        assert_eq!(FUSE_REMOVEMAPPING_MAX_ENTRY, 256);
    }

    #[test]
    fn opcode_round_trip() {
        let mut known = 0;
        for v in 0..=64u32 {
            if let Ok(op) = Opcode::try_from(v) {
                assert_eq!(u32::from(op), v);
                known += 1;
            }
        }
        // 1..=52 minus the retired 7 and 19.
        assert_eq!(known, 50);
        assert_eq!(Opcode::try_from(7), Err(UnknownOpcode(7)));
        assert_eq!(Opcode::try_from(19), Err(UnknownOpcode(19)));
        assert_eq!(Opcode::try_from(4096), Err(UnknownOpcode(4096)));
        assert_eq!(Opcode::try_from(26 << 24), Err(UnknownOpcode(26 << 24)));
    }

    #[test]
    fn header_layout_is_little_endian_in_order() {
        let h = InHeader {
            len: 0x0403_0201,
            opcode: 26,
            unique: 0x1112_1314_1516_1718,
            nodeid: 1,
            uid: 2,
            gid: 3,
            pid: 4,
            total_extlen: 5,
            padding: 0,
        };
        let mut b = [0u8; 40];
        assert_eq!(h.encode(&mut b), Ok(40));
        assert_eq!(&b[0..4], &[1, 2, 3, 4]);
        assert_eq!(&b[4..8], &26u32.to_le_bytes());
        assert_eq!(&b[8..16], &0x1112_1314_1516_1718u64.to_le_bytes());
        assert_eq!(&b[36..38], &5u16.to_le_bytes());
        assert_eq!(InHeader::decode(&b), Ok(h));
    }

    #[test]
    fn init_out_field_offsets() {
        let mut b = [0u8; 64];
        b[20..24].copy_from_slice(&4096u32.to_le_bytes()); // max_write
        b[28..30].copy_from_slice(&256u16.to_le_bytes()); // max_pages
        b[30..32].copy_from_slice(&21u16.to_le_bytes()); // map_alignment
        b[32..36].copy_from_slice(&2u32.to_le_bytes()); // flags2
        let o = InitOut::decode(&b).unwrap();
        assert_eq!(o.max_write, 4096);
        assert_eq!(o.max_pages, 256);
        assert_eq!(o.map_alignment, 21);
        assert_eq!(o.flags2, 2);
    }

    #[test]
    fn round_trip_all_bytes() {
        fn rt<T: Wire + PartialEq + core::fmt::Debug>() {
            let mut src = [0u8; 256];
            for (i, b) in src.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(37).wrapping_add(11);
            }
            let v = T::decode(&src).unwrap();
            let mut out = [0u8; 256];
            assert_eq!(v.encode(&mut out), Ok(T::SIZE));
            assert_eq!(&out[..T::SIZE], &src[..T::SIZE]);
            assert_eq!(T::decode(&out), Ok(v));
        }
        rt::<InHeader>();
        rt::<OutHeader>();
        rt::<InitIn>();
        rt::<InitOut>();
        rt::<Attr>();
        rt::<EntryOut>();
        rt::<AttrOut>();
        rt::<StatfsOut>();
        rt::<SetattrIn>();
        rt::<SetupMappingIn>();
        rt::<RemoveMappingOne>();
        rt::<ReadIn>();
        rt::<WriteIn>();
        rt::<ReleaseIn>();
        rt::<DirentHeader>();
    }

    #[test]
    fn short_and_small_buffers() {
        assert_eq!(
            OutHeader::decode(&[0u8; 15]),
            Err(WireError::Short { need: 16, have: 15 })
        );
        let mut b = [0u8; 39];
        assert_eq!(
            InHeader::default().encode(&mut b),
            Err(WireError::BufferTooSmall { need: 40, have: 39 })
        );
        assert_eq!(
            RemoveMappingIn::decode(&[]),
            Err(WireError::Short { need: 4, have: 0 })
        );
    }

    #[test]
    fn align() {
        assert_eq!(dirent_align(0), Some(0));
        assert_eq!(dirent_align(25), Some(32));
        assert_eq!(dirent_align(32), Some(32));
        assert_eq!(dirent_align(usize::MAX), None);
    }
}
