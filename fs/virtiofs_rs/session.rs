// SPDX-License-Identifier: GPL-2.0-only

//! A superblock's FUSE session with its device: INIT and what it
//! negotiated, the request helpers every operation uses, LOOKUP and
//! FORGET, entry and attribute timeouts.

use crate::dax::DaxConn;
use crate::device::VirtioFs;
use crate::proto::fuse::{
    abi::{init_flags, ForgetIn, GetattrIn, InitIn, Opcode, Wire, FUSE_WRITE_KILL_SUIDGID},
    reply::{self, InitParams, ReplySpec, Timeout, ValidEntry},
    request::{self, request_len, Header},
};
use crate::proto::options::DaxMode;
use crate::ratelimit::warn_ratelimited;
use crate::transport::{Orphan, Reply, Request};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::virtio::Segment;
use kernel::{bindings, new_spinlock, prelude::*, sync::Arc, sync::SpinLock};

/// A superblock's FUSE session with one device.
#[pin_data]
pub(crate) struct Session {
    /// The DAX window's ranges, when the device has a window and the mode
    /// is not `never`. First field: its worker is stopped before the
    /// connection goes.
    dax_conn: Option<Pin<KBox<DaxConn>>>,
    pub(crate) fs: Arc<VirtioFs>,
    /// The mount's DAX mode.
    pub(crate) dax: DaxMode,
    /// What INIT negotiated (whole); `None` until INIT is answered.
    #[pin]
    params: SpinLock<Option<InitParams>>,
    /// The negotiated `init_flags` (0 until INIT is answered), read on hot
    /// paths without the lock.
    flags: AtomicU64,
    /// Set once DESTROY is sent: forgets of inodes evicted afterwards are
    /// dropped, as C drops them on a disconnected connection.
    destroyed: AtomicBool,
    /// The attribute version clock (C's `fc->attr_version`): a reply
    /// older than a local change of an inode does not overwrite it.
    attr_version: AtomicU64,
    /// Operations the server answered `ENOSYS` to ([`Session::lacks`]).
    lacks: AtomicU32,
    /// The key that hashes lock owners (file table pointers) before they
    /// go to the host (C's `fc->scramble_key`).
    scramble: bindings::siphash_key_t,
}

/// Optional operations a server may lack: after its first `ENOSYS` the
/// guest stops asking, as C's `fc->no_*` flags.
#[derive(Clone, Copy)]
pub(crate) enum Optional {
    /// FUSE_FSYNC.
    Fsync = 1 << 0,
    /// FUSE_FSYNCDIR.
    Fsyncdir = 1 << 1,
    /// FUSE_FLUSH.
    Flush = 1 << 2,
    /// FUSE_RENAME2.
    Rename2 = 1 << 3,
    /// FUSE_GETXATTR.
    Getxattr = 1 << 4,
    /// FUSE_SETXATTR.
    Setxattr = 1 << 5,
    /// FUSE_LISTXATTR.
    Listxattr = 1 << 6,
    /// FUSE_REMOVEXATTR.
    Removexattr = 1 << 7,
    /// FUSE_CREATE.
    Create = 1 << 8,
    /// FUSE_LSEEK.
    Lseek = 1 << 9,
    /// FUSE_FALLOCATE.
    Fallocate = 1 << 10,
    /// FUSE_COPY_FILE_RANGE.
    CopyFileRange = 1 << 11,
    /// FUSE_GETLK, FUSE_SETLK and FUSE_SETLKW of POSIX (`fcntl`) locks.
    PosixLocks = 1 << 12,
    /// FUSE_SETLK and FUSE_SETLKW with `FUSE_LK_FLOCK` (`flock` locks).
    FlockLocks = 1 << 13,
    /// FUSE_TMPFILE.
    Tmpfile = 1 << 14,
}

/// The bit of the `lacks` word that records a lock of `kind` granted by
/// the host ([`Session::lock_granted`]): above every [`Optional`].
fn granted_bit(kind: Optional) -> u32 {
    (kind as u32) << 16
}

// Every optional operation's bit is below the granted bits.
const _: () = assert!((Optional::Tmpfile as u32) < 1 << 16);

/// The 64-bit jiffies counter (`get_jiffies_64()`).
pub(crate) fn jiffies64() -> u64 {
    // SAFETY: Reads the counter; no requirement.
    unsafe { bindings::get_jiffies_64() }
}

/// When a cache entry given `t` expires, in jiffies: as C's
/// `fuse_time_to_jiffies`, 0 (already expired) for a zero timeout.
pub(crate) fn expiry(t: Timeout) -> u64 {
    if t.is_zero() {
        return 0;
    }
    let ns = t
        .secs
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(t.nsecs));
    // SAFETY: Pure conversion; no requirement.
    let j = unsafe { bindings::nsecs_to_jiffies64(ns) };
    jiffies64().saturating_add(j)
}

/// A request header carrying the calling task's credentials (fsuid, fsgid
/// and thread id, in the initial namespaces), as C's `fuse_fill_in_header`
/// sends for every request that is not `nocreds`.
pub(crate) fn header(opcode: Opcode, unique: u64, nodeid: u64) -> Header {
    let (mut uid, mut gid, mut pid) = (0u32, 0u32, 0u32);
    // SAFETY: Reads the current task's credentials into the three locals.
    unsafe { bindings::vfs_current_creds(&mut uid, &mut gid, &mut pid) };
    Header {
        opcode,
        unique,
        nodeid,
        uid,
        gid,
        pid,
    }
}

/// A FUSE_FORGET request with its arguments left to fill
/// ([`fill_forget`]).
pub(crate) fn prepare_forget(s: &Session) -> Result<Request> {
    let unique = s.fs.conn.new_unique();
    Request::new(
        unique,
        Opcode::Forget,
        ReplySpec::NoReply,
        request_len(ForgetIn::SIZE, &[]),
        0,
        |buf| request::forget(buf, unique, 0, 0).map_err(|_| EINVAL),
    )
}

/// Fills a prepared FORGET with what it gives back.
pub(crate) fn fill_forget(req: &mut Request, nodeid: u64, nlookup: u64) -> Result {
    let unique = req.unique();
    req.rewrite(|buf| request::forget(buf, unique, nodeid, nlookup).map_err(|_| EINVAL))
}

/// For an abandoned CREATE answered later: forget the node it made.
pub(crate) fn forget_created(req: &mut Request, payload: &[u8]) -> bool {
    match reply::decode_create(payload) {
        Ok((e, _)) => fill_forget(req, e.nodeid, 1).is_ok(),
        _ => false,
    }
}

/// For an abandoned LOOKUP answered later: forget the node it looked up.
fn forget_looked_up(req: &mut Request, payload: &[u8]) -> bool {
    match reply::decode_lookup(payload) {
        Ok(reply::Lookup::Positive(e)) => fill_forget(req, e.nodeid, 1).is_ok(),
        _ => false,
    }
}

/// For an abandoned MKNOD/MKDIR/SYMLINK/LINK answered later: forget the
/// node it made.
fn forget_made(req: &mut Request, payload: &[u8]) -> bool {
    match reply::decode_new_entry(payload, None) {
        Ok(e) => fill_forget(req, e.nodeid, 1).is_ok(),
        _ => false,
    }
}

/// What a LOOKUP found.
pub(crate) enum Looked {
    /// The name exists: the server counted one more lookup of the node.
    /// The FORGET prepared with the LOOKUP comes along, for a caller that
    /// must give the lookup back (it then never allocates one).
    Found(ValidEntry, Option<Request>),
    /// It does not; the server may say how long that stays true (`None`
    /// for an `ENOENT` error, which is never cached).
    Missing(Option<Timeout>),
}

impl Session {
    /// A session of `fs` with DAX mode `dax` (and its window's manager,
    /// if DAX may be used), before INIT.
    pub(crate) fn new(
        fs: Arc<VirtioFs>,
        dax: DaxMode,
        dax_conn: Option<Pin<KBox<DaxConn>>>,
    ) -> impl PinInit<Self> {
        let mut scramble = bindings::siphash_key_t { key: [0; 2] };
        // SAFETY: Fills the key's 16 bytes.
        unsafe {
            bindings::get_random_bytes(
                core::ptr::addr_of_mut!(scramble).cast(),
                core::mem::size_of::<bindings::siphash_key_t>(),
            )
        };
        pin_init!(Session {
            dax_conn,
            fs,
            dax,
            params <- new_spinlock!(None, "virtiofs_rs::Session::params"),
            flags: AtomicU64::new(0),
            destroyed: AtomicBool::new(false),
            attr_version: AtomicU64::new(1),
            lacks: AtomicU32::new(0),
            scramble,
        })
    }

    /// The DAX window's manager, if files may use DAX.
    pub(crate) fn dax_conn(&self) -> Option<&DaxConn> {
        self.dax_conn.as_deref()
    }

    /// Whether the server negotiated per-inode DAX (`FUSE_HAS_INODE_DAX`).
    pub(crate) fn inode_dax(&self) -> bool {
        self.granted(init_flags::FUSE_HAS_INODE_DAX)
    }

    /// Whether the server removes privileges on writes and truncations
    /// that ask for it (`FUSE_HANDLE_KILLPRIV_V2`).
    pub(crate) fn killpriv_v2(&self) -> bool {
        self.granted(init_flags::FUSE_HANDLE_KILLPRIV_V2)
    }

    /// Whether the server negotiated `flag` (an `init_flags` bit).
    fn granted(&self, flag: u64) -> bool {
        self.flags.load(Ordering::Acquire) & flag != 0
    }

    /// Whether the host keeps POSIX (`fcntl`) locks (`FUSE_POSIX_LOCKS`;
    /// C's `!fc->no_lock`): otherwise the VFS keeps them, per guest. A
    /// host that negotiated them but answers a lock request `ENOSYS`
    /// before it granted any no longer does ([`Session::keep_locks_locally`];
    /// past C, which returns `ENOSYS` to every `fcntl`).
    pub(crate) fn posix_locks(&self) -> bool {
        self.granted(init_flags::FUSE_POSIX_LOCKS) && !self.lacks(Optional::PosixLocks)
    }

    /// Whether the host keeps `flock` locks (`FUSE_FLOCK_LOCKS`; C's
    /// `!fc->no_flock`), sent as POSIX-style requests with
    /// `FUSE_LK_FLOCK`; as [`Session::posix_locks`], not after `ENOSYS`.
    pub(crate) fn flock_locks(&self) -> bool {
        self.granted(init_flags::FUSE_FLOCK_LOCKS) && !self.lacks(Optional::FlockLocks)
    }

    /// Whether the host keeps and enforces POSIX ACLs (`FUSE_POSIX_ACL`,
    /// C's `fc->posix_acl`).
    pub(crate) fn posix_acl(&self) -> bool {
        self.granted(init_flags::FUSE_POSIX_ACL)
    }

    /// Whether asynchronous direct I/O may be sent without waiting
    /// (`FUSE_ASYNC_DIO`, C's `fc->async_dio`).
    pub(crate) fn async_dio(&self) -> bool {
        self.granted(init_flags::FUSE_ASYNC_DIO)
    }

    /// Whether the guest caches writes and is the authority for the size
    /// and times of the regular files it caches (`FUSE_WRITEBACK_CACHE`,
    /// C's `fc->writeback_cache`).
    pub(crate) fn writeback_cache(&self) -> bool {
        self.granted(init_flags::FUSE_WRITEBACK_CACHE)
    }

    /// Whether directories may be listed with READDIRPLUS
    /// (`FUSE_DO_READDIRPLUS`, C's `fc->do_readdirplus`).
    pub(crate) fn readdirplus(&self) -> bool {
        self.granted(init_flags::FUSE_DO_READDIRPLUS)
    }

    /// Whether READDIRPLUS is used only when it helps
    /// (`FUSE_READDIRPLUS_AUTO`, C's `fc->readdirplus_auto`).
    pub(crate) fn readdirplus_auto(&self) -> bool {
        self.granted(init_flags::FUSE_READDIRPLUS_AUTO)
    }

    /// Whether the host applies the umask itself (`FUSE_DONT_MASK`, C's
    /// `fc->dont_mask`).
    pub(crate) fn dont_mask(&self) -> bool {
        self.granted(init_flags::FUSE_DONT_MASK)
    }

    /// Whether SETXATTR carries the extended `fuse_setxattr_in`
    /// (`FUSE_SETXATTR_EXT`, C's `fc->setxattr_ext`).
    pub(crate) fn setxattr_ext(&self) -> bool {
        self.granted(init_flags::FUSE_SETXATTR_EXT)
    }

    /// The umask to apply to a new node's mode in the guest: none when the
    /// host applies it (C's `if (!fc->dont_mask) mode &= ~current_umask()`;
    /// the superblock is `SB_POSIXACL`, so the VFS leaves it to us).
    pub(crate) fn guest_umask(&self) -> u32 {
        if self.dont_mask() {
            0
        } else {
            crate::dir::current_umask()
        }
    }

    /// The `write_flags` of a FUSE_WRITE made for the current task (C's
    /// `fuse_write_args_fill` callers): with `FUSE_HANDLE_KILLPRIV_V2`,
    /// the host is asked to remove set-id bits unless the task may keep
    /// them.
    pub(crate) fn user_write_flags(&self) -> u32 {
        if self.killpriv_v2() && !kernel::fs::capable_fsetid() {
            FUSE_WRITE_KILL_SUIDGID
        } else {
            0
        }
    }

    /// The `write_flags` of a direct-I/O FUSE_WRITE for the current task
    /// (C's `fuse_direct_io`): the host is asked to remove set-id bits
    /// unless the task may keep them, negotiated or not (a host with the
    /// 7.31 flag but without KILLPRIV_V2 honours it too).
    pub(crate) fn direct_write_flags(&self) -> u32 {
        if kernel::fs::capable_fsetid() {
            0
        } else {
            FUSE_WRITE_KILL_SUIDGID
        }
    }

    /// Whether DESTROY was sent (the host dropped every mapping).
    pub(crate) fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    /// The negotiated parameters (after INIT).
    pub(crate) fn params(&self) -> Option<InitParams> {
        *self.params.lock()
    }

    /// The negotiated protocol minor version (0 before INIT).
    fn minor(&self) -> u32 {
        self.params().map_or(0, |p| p.minor)
    }

    /// A request built by `build` (`in_len` bytes at most) with a fresh
    /// unique id and room for a reply of `reply_capacity` bytes, not sent.
    fn request(
        &self,
        opcode: Opcode,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
    ) -> Result<Request> {
        self.make_request(false, opcode, in_len, reply_capacity, build)
    }

    /// [`Session::request`], allocated with `__GFP_NOFAIL` if `nofail`.
    fn make_request(
        &self,
        nofail: bool,
        opcode: Opcode,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
    ) -> Result<Request> {
        let unique = self.fs.conn.new_unique();
        let spec = ReplySpec::for_opcode(opcode, reply_capacity as u32, self.minor());
        let build = |buf: &mut [u8]| build(buf, unique).map_err(|_| EINVAL);
        if nofail {
            Request::new_nofail(unique, opcode, spec, in_len, reply_capacity, build)
        } else {
            Request::new(unique, opcode, spec, in_len, reply_capacity, build)
        }
    }

    /// As [`Session::call`], but allocated and waited for as C's forced
    /// requests: with `__GFP_NOFAIL`, never abandoned, the sleep
    /// uninterruptible once a signal came; and no FUSE_INTERRUPT, as from
    /// C's virtio-fs (FLUSH: a close is not tried again, and the locks it
    /// releases must be gone).
    pub(crate) fn call_forced(
        &self,
        opcode: Opcode,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
    ) -> Result<Reply> {
        let req = self.make_request(true, opcode, in_len, reply_capacity, build)?;
        self.fs.conn.send_forced(req)
    }

    /// Sends a request built by `build` (`in_len` bytes at most) and waits
    /// for its reply; `orphan` is what to send if a signal abandons it and
    /// the host answers anyway.
    pub(crate) fn call_with(
        &self,
        opcode: Opcode,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
        orphan: Option<Orphan>,
    ) -> Result<Reply> {
        let mut req = self.request(opcode, in_len, reply_capacity, build)?;
        if let Some(o) = orphan {
            req.set_orphan(o);
        }
        self.fs.conn.send(req)
    }

    /// As [`Session::call`], but after a signal (and the FUSE_INTERRUPT it
    /// sends) the wait goes on until the host answers, as C waits out a
    /// request it sent: for locks, whose state on the host must be known.
    pub(crate) fn call_interrupted_waited(
        &self,
        opcode: Opcode,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
    ) -> Result<Reply> {
        let mut req = self.request(opcode, in_len, reply_capacity, build)?;
        req.set_wait_out();
        self.fs.conn.send(req)
    }

    /// As [`Session::call`], but no signal ends the wait: for requests
    /// whose outcome the caller must know (a DAX window range mapped or
    /// not), as C waits out every request it sent.
    pub(crate) fn call_uninterruptible(
        &self,
        opcode: Opcode,
        in_len: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
    ) -> Result<Reply> {
        self.call_waited(opcode, in_len, 0, build)
    }

    /// As [`Session::call`], waited for whatever signals come: for a reply
    /// that hands out what must be given back (READDIRPLUS entries, each a
    /// counted lookup), as C waits out every request it sent.
    pub(crate) fn call_waited(
        &self,
        opcode: Opcode,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
    ) -> Result<Reply> {
        let req = self.request(opcode, in_len, reply_capacity, build)?;
        self.fs.conn.send_uninterruptible(req)
    }

    /// As [`Session::call_with`], with nothing to give back if abandoned.
    pub(crate) fn call(
        &self,
        opcode: Opcode,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
    ) -> Result<Reply> {
        self.call_with(opcode, in_len, reply_capacity, build, None)
    }

    /// FUSE_INIT: negotiates the session; the reply is kept whole.
    pub(crate) fn init(&self) -> Result {
        // FUSE_HANDLE_KILLPRIV_V2: the host removes set-id bits and
        // `security.capability` when a write, a truncation or a chown asks
        // it to, so the superblock may be `SB_NOSEC` (as C).
        // FUSE_POSIX_ACL: the host keeps POSIX ACLs and applies them, the
        // guest caches them for its permission checks; FUSE_DONT_MASK: the
        // host applies the umask sent with each creation (a default ACL
        // replaces it); FUSE_SETXATTR_EXT: SETXATTR can ask the host to
        // clear the set-group-ID bit with an ACL; FUSE_ASYNC_DIO: an
        // asynchronous O_DIRECT read or write is sent in the background;
        // FUSE_DO_READDIRPLUS with READDIRPLUS_AUTO: a listing from its
        // start, or after lookups in the directory, brings the entries'
        // attributes along (as C); FUSE_WRITEBACK_CACHE: buffered writes
        // stay in the page cache until writeback, and the guest keeps the
        // size and times of the files it caches (the host grants it with
        // virtiofsd --writeback); FUSE_POSIX_LOCKS and FUSE_FLOCK_LOCKS:
        // the host keeps the files' locks, so guests and host processes
        // see each other's (without them the VFS keeps them per guest).
        let mut offered = init_flags::FUSE_INIT_EXT
            | init_flags::FUSE_POSIX_LOCKS
            | init_flags::FUSE_FLOCK_LOCKS
            | init_flags::FUSE_MAX_PAGES
            | init_flags::FUSE_HANDLE_KILLPRIV_V2
            | init_flags::FUSE_POSIX_ACL
            | init_flags::FUSE_DONT_MASK
            | init_flags::FUSE_SETXATTR_EXT
            | init_flags::FUSE_ASYNC_DIO
            | init_flags::FUSE_DO_READDIRPLUS
            | init_flags::FUSE_READDIRPLUS_AUTO
            | init_flags::FUSE_WRITEBACK_CACHE;
        if self.fs.window.is_some() {
            offered |= init_flags::FUSE_MAP_ALIGNMENT;
        }
        if matches!(self.dax, DaxMode::InodeDefault | DaxMode::Inode) {
            offered |= init_flags::FUSE_HAS_INODE_DAX;
        }
        let reply = self.call(
            Opcode::Init,
            request_len(InitIn::SIZE, &[]),
            64,
            |buf, unique| request::init(buf, unique, 0, offered),
        )?;
        let params = reply::decode_init(reply.payload(), offered).map_err(|e| {
            pr_err!("FUSE_INIT reply refused: {:?}\n", e);
            EIO
        })?;
        self.flags.store(params.flags, Ordering::Release);
        *self.params.lock() = Some(params);
        Ok(())
    }

    /// FUSE_DESTROY, waited for whatever signals come (C forces it); forgets
    /// are dropped afterwards.
    pub(crate) fn destroy(&self) {
        if let Some(d) = self.dax_conn() {
            d.unmap_all(self);
        }
        let unique = self.fs.conn.new_unique();
        let spec = ReplySpec::for_opcode(Opcode::Destroy, 0, self.minor());
        let req = Request::new(
            unique,
            Opcode::Destroy,
            spec,
            request_len(0, &[]),
            0,
            |buf| request::destroy(buf, unique).map_err(|_| EINVAL),
        );
        // As C: DESTROY ends the session; its failure changes nothing here.
        if let Ok(req) = req {
            let _ = self.fs.conn.send_uninterruptible(req);
        }
        self.destroyed.store(true, Ordering::Release);
    }

    /// FUSE_FORGET of `nlookup` lookups of `nodeid`, on the hiprio queue,
    /// without waiting (no reply comes), with `req` prepared in advance.
    pub(crate) fn forget_with(&self, mut req: Request, nodeid: u64, nlookup: u64) {
        if nlookup == 0 || self.destroyed.load(Ordering::Acquire) {
            return;
        }
        let sent =
            fill_forget(&mut req, nodeid, nlookup).and_then(|()| self.fs.conn.send_hiprio(req));
        if sent.is_err() {
            warn_ratelimited!("FORGET of node {} not sent\n", nodeid);
        }
    }

    /// Gives back one lookup of `nodeid` with `req` (the FORGET prepared
    /// with the LOOKUP), if there is one.
    pub(crate) fn forget_one(&self, req: Option<Request>, nodeid: u64) {
        match req {
            Some(req) => self.forget_with(req, nodeid, 1),
            None => warn_ratelimited!("FORGET of node {} not sent\n", nodeid),
        }
    }

    /// FUSE_LOOKUP of `name` in directory `parent`. If a signal abandons
    /// it and the host answers anyway, the completion path forgets what it
    /// looked up.
    pub(crate) fn lookup(&self, parent: u64, name: &[u8]) -> Result<Looked> {
        let orphan = Orphan::new(
            self.fs.conn.hiprio()?.clone(),
            prepare_forget(self)?,
            forget_looked_up,
        );
        let reply = self.call_with(
            Opcode::Lookup,
            request_len(0, &[name.len()]),
            128,
            |buf, unique| request::with_name(buf, header(Opcode::Lookup, unique, parent), name),
            Some(orphan),
        );
        let reply = match reply {
            Ok(r) => r,
            Err(e) if e == ENOENT => return Ok(Looked::Missing(None)),
            Err(e) => return Err(e),
        };
        match reply::decode_lookup(reply.payload()) {
            Ok(reply::Lookup::Negative { entry_valid }) => Ok(Looked::Missing(Some(entry_valid))),
            Ok(reply::Lookup::Positive(e)) => Ok(Looked::Found(e, reply.take_orphan())),
            Err(e) => {
                warn_ratelimited!("LOOKUP reply refused: {:?}\n", e);
                Err(EIO)
            }
        }
    }

    /// The current attribute version (taken before a request whose reply
    /// carries attributes).
    pub(crate) fn attr_version(&self) -> u64 {
        self.attr_version.load(Ordering::Acquire)
    }

    /// A new attribute version, for a change just applied.
    pub(crate) fn next_attr_version(&self) -> u64 {
        self.attr_version.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Whether the server answered `ENOSYS` to `op` before.
    pub(crate) fn lacks(&self, op: Optional) -> bool {
        self.lacks.load(Ordering::Relaxed) & op as u32 != 0
    }

    /// Records that the server lacks `op`.
    pub(crate) fn set_lacks(&self, op: Optional) {
        self.lacks.fetch_or(op as u32, Ordering::Relaxed);
    }

    /// Records that the host granted a lock of `kind`
    /// ([`Optional::PosixLocks`] or [`Optional::FlockLocks`]); false if
    /// the guest took to keeping such locks meanwhile (another request of
    /// the kind was answered `ENOSYS` first): the caller must then give
    /// the lock back to the host and take it locally.
    ///
    /// The granted bits live in the `lacks` word, above the optional
    /// operations, so that this and [`Session::keep_locks_locally`] are
    /// ordered: of a grant and an `ENOSYS` racing, the second sees the
    /// first.
    pub(crate) fn lock_granted(&self, kind: Optional) -> bool {
        let prev = self.lacks.fetch_or(granted_bit(kind), Ordering::AcqRel);
        prev & kind as u32 == 0
    }

    /// The host answered a lock request of `kind` `ENOSYS`: whether the
    /// guest keeps such locks from now on (recorded), which it does only
    /// if the host never granted one ([`Session::lock_granted`]), so that
    /// none can be held there behind the guest's table. Otherwise the
    /// caller gets the `ENOSYS`, as with C.
    pub(crate) fn keep_locks_locally(&self, kind: Optional) -> bool {
        self.lacks
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w & granted_bit(kind) == 0).then_some(w | kind as u32)
            })
            .is_ok()
    }

    /// The lock owner id the host sees for file table `owner` (C's
    /// `fuse_lock_owner_id`): keyed, so no kernel pointer reaches it.
    pub(crate) fn lock_owner(&self, owner: usize) -> u64 {
        // SAFETY: Pure function of its arguments.
        unsafe { bindings::siphash_2u64(owner as u64, 0, &self.scramble) }
    }

    /// The lock owner direct I/O carries (C's `fuse_direct_io`: the
    /// caller's file table, `current->files`), or `None` for a task without
    /// one (C sends no owner then).
    pub(crate) fn io_lock_owner(&self) -> Option<u64> {
        let files = crate::inode::current_files();
        (files != 0).then(|| self.lock_owner(files))
    }

    /// Sends a request whose data is in caller pages (`out_pages` for the
    /// host to read after the arguments, `in_pages` for it to write after
    /// `inline` bytes of reply), `var_max` the data size the opcode's
    /// reply may carry, and waits for it: never abandoned, so the pages
    /// are free again when this returns.
    ///
    /// # Safety
    ///
    /// The pages must stay valid until this returns, and the `in_pages`
    /// must not be read by the CPU before.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn call_pages(
        &self,
        opcode: Opcode,
        in_len: usize,
        inline: usize,
        var_max: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
        out_pages: &[Segment],
        in_pages: &[Segment],
    ) -> Result<Reply> {
        // SAFETY: The caller keeps the pages until `send` returns, and
        // `send` waits a request with pages out until it ends.
        let req = unsafe {
            self.request_pages(opcode, in_len, inline, var_max, build, out_pages, in_pages)
        }?;
        self.fs.conn.send(req)
    }

    /// A request as [`Session::call_pages`] sends, not sent: for a
    /// background request ([`Request::set_on_end`]).
    ///
    /// # Safety
    ///
    /// As [`Request::with_pages`]: the pages stay valid until the request
    /// ends (or is dropped unsent), and the `in_pages` are not read by the
    /// CPU before.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn request_pages(
        &self,
        opcode: Opcode,
        in_len: usize,
        inline: usize,
        var_max: usize,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
        out_pages: &[Segment],
        in_pages: &[Segment],
    ) -> Result<Request> {
        let unique = self.fs.conn.new_unique();
        let spec = ReplySpec::for_opcode(opcode, var_max as u32, self.minor());
        // SAFETY: The caller's contract.
        unsafe {
            Request::with_pages(
                unique,
                opcode,
                spec,
                in_len,
                inline,
                |buf| build(buf, unique).map_err(|_| EINVAL),
                out_pages,
                in_pages,
            )
        }
    }

    /// The largest data payload of one READ or WRITE: `max_pages` pages,
    /// and `max_write` for writes (C's `fuse_max_write`/`max_read`), so
    /// that a request's segments (header, arguments, reply, and a page
    /// more for an unaligned start) fit the smallest ring (C's
    /// `max_pages_limit`: ring size less `FUSE_HEADER_OVERHEAD`).
    pub(crate) fn max_io(&self, write: bool) -> usize {
        let p = self.params();
        let ring = self.fs.conn.min_ring() as usize;
        let pages = p
            .map_or(32, |p| usize::from(p.max_pages))
            .min(ring.saturating_sub(4))
            .max(1);
        let bytes = pages * kernel::page::PAGE_SIZE;
        if write {
            bytes.min(p.map_or(4096, |p| p.max_write as usize))
        } else {
            bytes
        }
    }

    /// FUSE_GETATTR of `nodeid` (through open handle `fh` if given).
    pub(crate) fn getattr(
        &self,
        nodeid: u64,
        fh: Option<u64>,
    ) -> Result<(reply::ValidAttr, Timeout)> {
        let reply = self.call(
            Opcode::Getattr,
            request_len(GetattrIn::SIZE, &[]),
            104,
            |buf, unique| request::getattr(buf, header(Opcode::Getattr, unique, nodeid), fh),
        )?;
        reply::decode_attr_out(reply.payload()).map_err(|e| {
            warn_ratelimited!("GETATTR reply refused: {:?}\n", e);
            EIO
        })
    }

    /// Sends a request that makes a new entry (MKNOD, MKDIR, SYMLINK,
    /// LINK) and decodes the entry, of type `expected` if given. If a
    /// signal abandons it and the host answers anyway, the completion path
    /// forgets the node.
    pub(crate) fn new_entry(
        &self,
        opcode: Opcode,
        in_len: usize,
        expected: Option<reply::FileType>,
        build: impl FnOnce(&mut [u8], u64) -> core::result::Result<usize, request::BuildError>,
    ) -> Result<(ValidEntry, Option<Request>)> {
        let orphan = Orphan::new(
            self.fs.conn.hiprio()?.clone(),
            prepare_forget(self)?,
            forget_made,
        );
        let reply = self.call_with(opcode, in_len, 128, build, Some(orphan))?;
        match reply::decode_new_entry(reply.payload(), expected) {
            Ok(e) => Ok((e, reply.take_orphan())),
            Err(e) => {
                warn_ratelimited!("reply to opcode {} refused: {:?}\n", opcode as u32, e);
                // The host may have counted a lookup of a node we cannot
                // name: nothing safe to give back.
                Err(EIO)
            }
        }
    }
}
