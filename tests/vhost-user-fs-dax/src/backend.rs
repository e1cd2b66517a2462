// SPDX-License-Identifier: GPL-2.0-only
//! The vhost-user device: virtqueues in, FUSE through fuse-backend-rs, replies out.
//!
//! CAVEAT (crate versions): QEMU 11.1.3 announces VHOST_USER_PROTOCOL_F_SHMEM as bit 22,
//! which `vhost` >= 0.17 uses (0.16 used bit 21). `vhost` 0.18 / `vhost-user-backend` 0.24
//! need `vm-memory` 0.18 and `virtio-queue` 0.18, while `fuse-backend-rs` 0.14 pins
//! `vm-memory` =0.17.1 and `virtio-queue` 0.17 for its virtio-fs descriptor-chain transport.
//! This daemon therefore never hands guest memory to fuse-backend-rs: it copies the readable
//! part of each descriptor chain into a flat buffer (read through fuse-backend-rs's
//! `Reader::from_fuse_buffer`), lets the `Server` write its reply through the `fusedev`
//! transport's `FuseDevWriter` into a per-thread memfd (exactly the bytes a `/dev/fuse`
//! would receive), and copies the reply into the writable descriptors. The two vm-memory
//! versions coexist in the build and never meet; no third-party crate is patched.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::passthrough::PassthroughFs;
use fuse_backend_rs::transport::{FuseBuf, FuseDevWriter, Reader, Writer};
use log::{debug, error, info, trace, warn};
use vhost::vhost_user::message::{
    VhostUserProtocolFeatures, VhostUserShMemConfig, VhostUserVirtioFeatures,
};
use vhost::vhost_user::Backend;
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_queue::{DescriptorChain, QueueOwnedT, QueueT};
use vm_memory::{
    Bytes, GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryLoadGuard,
    GuestMemoryMmap,
};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier,
};

use crate::account;
use crate::dax::{CacheReqHandler, Dax};
use crate::inject::{opcode_name, Field, Injector, OP_REMOVEMAPPING};
use crate::locks::{self, Completion, Locks};
use crate::window::{check_removemapping_count, WindowError};

/// Descriptors in each virtqueue at most.
const QUEUE_SIZE: usize = 1024;
/// Bytes of one request or reply we accept at most (FUSE max_pages 256 = 1 MiB of data plus
/// headers); a longer chain is capped, the guest's excess is ignored.
const MAX_MSG: usize = (1 << 20) + (64 << 10);
/// sizeof(struct fuse_in_header).
const IN_HEADER_LEN: usize = 40;
/// sizeof(struct fuse_out_header).
const OUT_HEADER_LEN: usize = 16;
const FUSE_FORGET: u32 = 2;
const FUSE_BATCH_FORGET: u32 = 42;
const FUSE_INIT: u32 = 26;
const FUSE_DESTROY: u32 = 38;
const FUSE_RELEASE: u32 = 18;
const FUSE_FLUSH: u32 = 25;
const FUSE_GETLK: u32 = 31;
const FUSE_SETLK: u32 = 32;
const FUSE_SETLKW: u32 = 33;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_UNLINK: u32 = 10;
const FUSE_CREATE: u32 = 35;
const FUSE_TMPFILE: u32 = 51;
/// sizeof(struct fuse_create_in).
const CREATE_IN_LEN: usize = 16;
/// sizeof(struct fuse_entry_out).
const ENTRY_OUT_LEN: usize = 128;
/// sizeof(struct fuse_attr).
const ATTR_LEN: usize = 88;
const FUSE_GETATTR: u32 = 3;

const VIRTIO_F_VERSION_1: u64 = 1 << 32;
const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;

type GuestMem = GuestMemoryMmap<()>;
type Mem = GuestMemoryLoadGuard<GuestMem>;

/// The filesystem device.
pub struct FsBackend {
    server: Server<Arc<PassthroughFs<()>>>,
    mem: GuestMemoryAtomic<GuestMem>,
    event_idx: AtomicBool,
    num_queues: usize,
    config: [u8; 40],
    window_size: u64,
    dax: Arc<Dax>,
    inject: Injector,
    /// The file handles open in this session (OPEN/CREATE replies, less RELEASEs) and their
    /// nodes, to catch a guest using a handle after releasing it (see
    /// [`account::handle_use`]) and to refuse lock requests on a handle of another node.
    open_fhs: std::sync::Mutex<std::collections::HashMap<u64, u64>>,
    /// FUSE remote locks (`--locks`, src/locks.rs); `None`: not offered.
    locks: Option<Arc<Locks>>,
    /// `--ignore-interrupts`: FUSE_INTERRUPT is consumed and does nothing (a
    /// server may; the request then ends as it would have).
    ignore_interrupts: bool,
    /// `--tmpfile`: FUSE_TMPFILE served as a CREATE of a hidden name and an UNLINK
    /// ([`FsBackend::tmpfile_as_create`]); off: the server answers it ENOSYS.
    tmpfile: bool,
}

/// What [`FsBackend::serve_locks`] did with a request.
enum LockOp {
    /// Not a lock request (or locks are off): the server serves it.
    NotMine,
    /// Answered by the lock code.
    Reply(Vec<u8>),
    /// A FUSE_SETLKW parked until its lock is granted or it is cancelled.
    Parked,
}

thread_local! {
    /// Per worker thread: where `FuseDevWriter` writes replies (see the crate-version caveat).
    static SINK: RefCell<Option<File>> = const { RefCell::new(None) };
}

fn new_sink() -> io::Result<File> {
    // SAFETY: memfd_create with a valid NUL-terminated name; the returned fd is owned by us.
    let fd = unsafe { libc::memfd_create(c"vufs-reply".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Builds a reply carrying only an errno.
fn error_reply(unique: u64, errno: i32) -> Vec<u8> {
    let mut v = Vec::with_capacity(OUT_HEADER_LEN);
    v.extend_from_slice(&(OUT_HEADER_LEN as u32).to_le_bytes());
    v.extend_from_slice(&(-errno).to_le_bytes());
    v.extend_from_slice(&unique.to_le_bytes());
    v
}

impl FsBackend {
    /// A device serving `fs` with `num_request_queues` request queues and a `window_size`
    /// byte cache window.
    pub fn new(
        fs: PassthroughFs<()>,
        tag: &str,
        num_request_queues: u32,
        window_size: u64,
        inject: Injector,
        locks: bool,
    ) -> Self {
        let fs = Arc::new(fs);
        let mut config = [0u8; 40];
        config[..tag.len()].copy_from_slice(tag.as_bytes());
        config[36..].copy_from_slice(&num_request_queues.to_le_bytes());
        FsBackend {
            locks: locks.then(|| Locks::new(fs.clone())),
            ignore_interrupts: false,
            tmpfile: false,
            server: Server::new(fs),
            mem: GuestMemoryAtomic::new(GuestMemoryMmap::new()),
            event_idx: AtomicBool::new(false),
            num_queues: 1 + num_request_queues as usize,
            config,
            window_size,
            dax: Arc::new(Dax::new(window_size)),
            inject,
            open_fhs: Default::default(),
        }
    }

    /// `--ignore-interrupts`: every FUSE_INTERRUPT is consumed unanswered and
    /// changes nothing (FUSE lets a server ignore them).
    pub fn with_interrupts_ignored(mut self, yes: bool) -> Self {
        self.ignore_interrupts = yes;
        self
    }

    /// `--tmpfile`: serve FUSE_TMPFILE (fuse-backend-rs 0.14 has no `tmpfile`) as the
    /// CREATE of a fresh hidden name in the directory, then its UNLINK: the guest gets what
    /// it asked for, a regular file with no name, open with its flags. The host kernel will
    /// not give that file a name again (it was not made with O_TMPFILE), so a later LINK of
    /// it fails with ENOENT.
    pub fn with_tmpfile(mut self, yes: bool) -> Self {
        self.tmpfile = yes;
        self
    }

    /// The memory object to hand to `VhostUserDaemon::new` (shared with this backend).
    pub fn memory(&self) -> GuestMemoryAtomic<GuestMem> {
        self.mem.clone()
    }

    /// Runs one FUSE request (flat bytes) and returns the reply bytes (empty: no reply).
    /// A FUSE_SETLKW that has to wait is answered EAGAIN here (no completion to park).
    #[cfg(test)]
    fn serve(&self, req: Vec<u8>, reply_cap: usize) -> Vec<u8> {
        self.serve_chain(req, reply_cap, 0, None)
            .unwrap_or_default()
    }

    /// Runs one FUSE request (flat bytes) from queue `queue` and returns the reply bytes
    /// (empty: no reply), or `None` when the request is parked and `done` answers it later.
    fn serve_chain(
        &self,
        mut req: Vec<u8>,
        reply_cap: usize,
        queue: usize,
        done: Option<Completion>,
    ) -> Option<Vec<u8>> {
        if req.len() < IN_HEADER_LEN {
            warn!(
                "request of {} bytes is shorter than fuse_in_header",
                req.len()
            );
            return Some(Vec::new());
        }
        let hlen = u32::from_le_bytes(req[0..4].try_into().unwrap()) as usize;
        let mut opcode = u32::from_le_bytes(req[4..8].try_into().unwrap());
        let unique = u64::from_le_bytes(req[8..16].try_into().unwrap());
        let no_reply = opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET;
        trace!("req {} unique {unique} len {hlen}", opcode_name(opcode));
        if hlen < IN_HEADER_LEN || hlen > req.len() {
            warn!(
                "{} unique {unique}: header len {hlen} vs {} bytes in the chain",
                opcode_name(opcode),
                req.len()
            );
            return Some(if no_reply {
                Vec::new()
            } else {
                error_reply(unique, libc::EINVAL)
            });
        }
        req.truncate(hlen);
        let nodeid = u64::from_le_bytes(req[16..24].try_into().unwrap());
        if opcode == FUSE_INIT {
            self.inject.new_session();
        }
        let subject = self.inject.subject(opcode, nodeid, &req[IN_HEADER_LEN..]);
        let decision = self.inject.on_request(opcode, subject.as_deref());

        // Forgets and releases, logged at info so host checks can balance them against the
        // entries and handles handed out (src/account.rs, tests/guest/plans/*.hostcheck).
        // A request failed by injection is not served: it releases nothing (FORGET is never
        // failed).
        for ev in account::request_events(opcode, &req) {
            if decision.fail.is_some() {
                break;
            }
            info!("{ev}");
            match ev {
                account::Event::Release { fh, .. } => {
                    self.open_fhs.lock().unwrap().remove(&fh);
                }
                account::Event::Forget { nodeid, .. } => {
                    if let Some(l) = &self.locks {
                        l.forget(nodeid)
                    }
                }
                _ => {}
            }
        }
        if decision.fail.is_none() {
            self.lock_side_effects(opcode, nodeid, &req);
        }
        if let Some(fh) = account::handle_use(opcode, &req) {
            if !self.open_fhs.lock().unwrap().contains_key(&fh) {
                warn!(
                    "{} unique {unique} uses fh {fh}, which is not open (released?)",
                    opcode_name(opcode)
                );
            }
        }
        match opcode {
            FUSE_INIT => {
                self.open_fhs.lock().unwrap().clear();
                if let Some(l) = &self.locks {
                    l.end_session("FUSE_INIT")
                }
                self.dax.end_session("FUSE_INIT")
            }
            FUSE_DESTROY => {
                if let Some(l) = &self.locks {
                    l.end_session("FUSE_DESTROY")
                }
                self.dax.end_session("FUSE_DESTROY")
            }
            _ => {}
        }
        // `--tmpfile`: from here on the request is the CREATE of a hidden name, unlinked
        // below once it succeeded.
        let hidden = if opcode == FUSE_TMPFILE && self.tmpfile && decision.fail.is_none() {
            Some(self.tmpfile_as_create(&mut req).map(|name| {
                opcode = FUSE_CREATE;
                (req[..IN_HEADER_LEN].to_vec(), name)
            }))
        } else {
            None
        };
        let mut reply = if let Some(e) = decision.fail {
            error_reply(unique, e)
        } else if let Some(Err(e)) = hidden {
            error_reply(unique, e)
        } else if let Err(e) = self.precheck(opcode, &req) {
            error_reply(unique, e.errno())
        } else if let Some(r) = match self.serve_locks(opcode, nodeid, unique, &req, queue, done) {
            LockOp::Reply(r) => Some(r),
            LockOp::Parked => return None,
            LockOp::NotMine => None,
        } {
            r
        } else {
            // Only what the accounting log needs is kept past the dispatch.
            let head =
                account::request_bytes_needed(opcode).map(|n| req[..n.min(req.len())].to_vec());
            // struct fuse_init_in { major, minor, max_readahead, flags, ... }
            let offered = req
                .get(IN_HEADER_LEN + 12..IN_HEADER_LEN + 16)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                .unwrap_or(0);
            let mut reply = self.dispatch(req, reply_cap, opcode, unique, no_reply);
            if let Some(Ok((hdr, name))) = &hidden {
                reply = self.unlink_created(hdr, name, reply);
            }
            if opcode == FUSE_INIT {
                init_ext_fixup(&mut reply);
                if self.locks.is_some() {
                    init_grant_locks(offered, &mut reply);
                }
            }
            if let Some(head) = head {
                for ev in account::reply_events(opcode, &head, &reply) {
                    info!("{ev}");
                    match ev {
                        account::Event::Opened { fh, nodeid, .. } => {
                            self.open_fhs.lock().unwrap().insert(fh, nodeid);
                        }
                        account::Event::Entry { nodeid, name, .. } => {
                            self.inject.handed_out(nodeid, &name)
                        }
                        _ => {}
                    }
                }
            }
            reply
        };

        if reply.len() >= OUT_HEADER_LEN {
            for f in &decision.corrupt {
                match f {
                    Field::Len => {
                        let l = u32::from_le_bytes(reply[0..4].try_into().unwrap());
                        reply[0..4].copy_from_slice(&l.wrapping_add(4096).to_le_bytes());
                    }
                    Field::Unique => {
                        let u = u64::from_le_bytes(reply[8..16].try_into().unwrap());
                        reply[8..16].copy_from_slice(&(u ^ (1 << 63)).to_le_bytes());
                    }
                }
            }
        }
        if let Some(d) = decision.delay {
            std::thread::sleep(d);
        }
        Some(reply)
    }

    /// `--tmpfile`: rewrites FUSE_TMPFILE `req` (header, `fuse_create_in`, a name the
    /// server ignores; C sends "/") in place as the exclusive CREATE of a fresh hidden name
    /// (64 random bits) in the same directory with the same flags less O_TMPFILE's, and
    /// returns that name; or the errno to answer: EINVAL for a request too short, or with
    /// request extensions (which the rewrite would drop).
    fn tmpfile_as_create(&self, req: &mut Vec<u8>) -> Result<Vec<u8>, i32> {
        if req.len() < IN_HEADER_LEN + CREATE_IN_LEN {
            return Err(libc::EINVAL);
        }
        // struct fuse_in_header { ..., u16 total_extlen; u16 padding; }
        if req[36..38] != [0, 0] {
            warn!("TMPFILE with request extensions: refused");
            return Err(libc::EINVAL);
        }
        let mut rnd = [0u8; 8];
        // SAFETY: getrandom writes at most `rnd.len()` bytes into `rnd`.
        let got = unsafe { libc::getrandom(rnd.as_mut_ptr().cast(), rnd.len(), 0) };
        if got != rnd.len() as isize {
            return Err(libc::EIO);
        }
        let name = format!(".vufs-tmpfile.{:016x}", u64::from_le_bytes(rnd)).into_bytes();
        let at = IN_HEADER_LEN;
        let flags = u32::from_le_bytes(req[at..at + 4].try_into().unwrap());
        let flags = (flags & !(libc::O_TMPFILE as u32)) | (libc::O_CREAT | libc::O_EXCL) as u32;
        req[at..at + 4].copy_from_slice(&flags.to_le_bytes());
        req.truncate(IN_HEADER_LEN + CREATE_IN_LEN);
        req.extend_from_slice(&name);
        req.push(0);
        let len = req.len() as u32;
        req[0..4].copy_from_slice(&len.to_le_bytes());
        req[4..8].copy_from_slice(&FUSE_CREATE.to_le_bytes());
        Ok(name)
    }

    /// `--tmpfile`: after the CREATE of hidden `name` (request header `hdr`) answered
    /// `reply`, unlinks the name (as the daemon: fuse-backend-rs 0.14's UNLINK does not
    /// take the request's credentials) and returns the reply for the guest, with the
    /// file's attributes from after the unlink. Unless the file then has no link at all,
    /// the handle and the lookup CREATE took are given back and the guest gets an error:
    /// it never gets a file that has a name.
    fn unlink_created(&self, hdr: &[u8], name: &[u8], reply: Vec<u8>) -> Vec<u8> {
        let unique = u64::from_le_bytes(hdr[8..16].try_into().unwrap());
        let errno_of = |r: &[u8]| {
            r.get(4..8)
                .map_or(libc::EIO, |e| -i32::from_le_bytes(e.try_into().unwrap()))
        };
        if errno_of(&reply) != 0 {
            // CREATE made nothing.
            return reply;
        }
        let u64_at = |r: &[u8], at: usize| {
            r.get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        };
        let nodeid = u64_at(&reply, OUT_HEADER_LEN);
        let fh = u64_at(&reply, OUT_HEADER_LEN + ENTRY_OUT_LEN);
        // struct fuse_entry_out, then struct fuse_open_out { fh, open_flags, ... } (16).
        let whole = reply.len() >= OUT_HEADER_LEN + ENTRY_OUT_LEN + 16;
        let request = |opcode: u32, nodeid: u64, body: &[u8]| {
            let mut r = hdr.to_vec();
            r.extend_from_slice(body);
            let len = r.len() as u32;
            r[0..4].copy_from_slice(&len.to_le_bytes());
            r[4..8].copy_from_slice(&opcode.to_le_bytes());
            r[16..24].copy_from_slice(&nodeid.to_le_bytes());
            r
        };
        let parent = u64::from_le_bytes(hdr[16..24].try_into().unwrap());
        let mut body = name.to_vec();
        body.push(0);
        let r = self.dispatch(
            request(FUSE_UNLINK, parent, &body),
            OUT_HEADER_LEN,
            FUSE_UNLINK,
            unique,
            false,
        );
        let mut errno = errno_of(&r);
        if errno != 0 {
            error!(
                "TMPFILE unique {unique}: unlink of {} failed ({errno}): the name is left",
                name.escape_ascii()
            );
        }
        if let (0, Some(nodeid), Some(_), true) = (errno, nodeid, fh, whole) {
            // struct fuse_getattr_in is 16 bytes; struct fuse_attr_out { attr_valid,
            // attr_valid_nsec, dummy, attr }; fuse_attr.nlink is at 64.
            let r = self.dispatch(
                request(FUSE_GETATTR, nodeid, &[0; 16]),
                OUT_HEADER_LEN + 16 + ATTR_LEN,
                FUSE_GETATTR,
                unique,
                false,
            );
            let from = OUT_HEADER_LEN + 16;
            errno = match errno_of(&r) {
                0 if r.len() < from + ATTR_LEN => libc::EIO,
                // Linked again meanwhile (the hidden name was visible).
                0 if r[from + 64..from + 68] != [0; 4] => libc::EIO,
                e => e,
            };
            if errno == 0 {
                let mut reply = reply;
                let to = OUT_HEADER_LEN + 40;
                reply[to..to + ATTR_LEN].copy_from_slice(&r[from..from + ATTR_LEN]);
                info!(
                    "TMPFILE unique {unique}: nodeid {nodeid} fh {} created as {} and unlinked",
                    fh.unwrap_or_default(),
                    name.escape_ascii()
                );
                return reply;
            }
        } else if errno == 0 {
            // A reply too short for the guest's buffer: not an answer to give.
            errno = libc::EIO;
        }
        error!(
            "TMPFILE unique {unique}: {} not a nameless file ({errno}); handle and lookup given \
             back",
            name.escape_ascii()
        );
        if let Some(fh) = fh {
            // struct fuse_release_in { fh, flags, release_flags, lock_owner }
            let mut release = fh.to_le_bytes().to_vec();
            release.resize(24, 0);
            self.dispatch(
                request(FUSE_RELEASE, nodeid.unwrap_or_default(), &release),
                OUT_HEADER_LEN,
                FUSE_RELEASE,
                unique,
                false,
            );
        }
        if let Some(nodeid) = nodeid {
            // struct fuse_forget_in { nlookup }
            self.dispatch(
                request(FUSE_FORGET, nodeid, &1u64.to_le_bytes()),
                OUT_HEADER_LEN,
                FUSE_FORGET,
                unique,
                true,
            );
        }
        error_reply(unique, errno)
    }

    /// What FLUSH, RELEASE and INTERRUPT do to locks before the server serves them.
    fn lock_side_effects(&self, opcode: u32, nodeid: u64, req: &[u8]) {
        let Some(l) = &self.locks else { return };
        let body = &req[IN_HEADER_LEN..];
        let u64_at = |at: usize| {
            body.get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        };
        match opcode {
            // struct fuse_flush_in { fh, unused, padding, lock_owner }
            FUSE_FLUSH => {
                if let Some(owner) = u64_at(16) {
                    l.flush(nodeid, owner)
                }
            }
            // struct fuse_release_in { fh, flags, release_flags, lock_owner }
            FUSE_RELEASE => {
                let flags = body
                    .get(12..16)
                    .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                    .unwrap_or(0);
                if let (true, Some(owner)) =
                    (flags & locks::FUSE_RELEASE_FLOCK_UNLOCK != 0, u64_at(16))
                {
                    l.release_flock(nodeid, owner)
                }
            }
            // struct fuse_interrupt_in { unique }
            FUSE_INTERRUPT => {
                if let Some(u) = u64_at(0) {
                    if self.ignore_interrupts {
                        info!("INTERRUPT of unique {u}: ignored (--ignore-interrupts)");
                    } else if !l.interrupt(u) {
                        debug!("INTERRUPT of unique {u}: no waiting SETLKW");
                    }
                }
            }
            _ => {}
        }
    }

    /// FUSE_GETLK, FUSE_SETLK, FUSE_SETLKW with `--locks` (src/locks.rs): served here,
    /// never by fuse-backend-rs (whose server cannot tell SETLKW from SETLK and would hold
    /// the queue). The handle must be open and belong to the node.
    fn serve_locks(
        &self,
        opcode: u32,
        nodeid: u64,
        unique: u64,
        req: &[u8],
        queue: usize,
        done: Option<Completion>,
    ) -> LockOp {
        let Some(l) = &self.locks else {
            return LockOp::NotMine;
        };
        if !matches!(opcode, FUSE_GETLK | FUSE_SETLK | FUSE_SETLKW) {
            return LockOp::NotMine;
        }
        let body = &req[IN_HEADER_LEN..];
        let fh = body
            .get(0..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()));
        let owned = fh.and_then(|fh| self.open_fhs.lock().unwrap().get(&fh).copied());
        if owned != Some(nodeid) {
            warn!(
                "{} unique {unique} node {nodeid}: fh {fh:?} is not a handle of that node",
                opcode_name(opcode)
            );
            return LockOp::Reply(error_reply(unique, libc::EBADF));
        }
        match opcode {
            FUSE_GETLK => LockOp::Reply(l.getlk(nodeid, unique, body)),
            _ => match l.setlk(nodeid, unique, body, opcode == FUSE_SETLKW, queue, done) {
                Some(r) => LockOp::Reply(r),
                None => LockOp::Parked,
            },
        }
    }

    /// Checks the daemon does beyond fuse-backend-rs: REMOVEMAPPING count vs message length.
    fn precheck(&self, opcode: u32, req: &[u8]) -> Result<(), WindowError> {
        if opcode == OP_REMOVEMAPPING {
            let body = &req[IN_HEADER_LEN..];
            let count = body
                .get(0..4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                .ok_or(WindowError::BadCount)?;
            check_removemapping_count(count, body.len()).inspect_err(|_| {
                warn!("REMOVEMAPPING count {count} with {} body bytes", body.len())
            })?;
        }
        Ok(())
    }

    fn dispatch(
        &self,
        mut req: Vec<u8>,
        reply_cap: usize,
        opcode: u32,
        unique: u64,
        no_reply: bool,
    ) -> Vec<u8> {
        SINK.with(|sink| {
            let mut sink = sink.borrow_mut();
            if sink.is_none() {
                match new_sink() {
                    Ok(f) => *sink = Some(f),
                    Err(e) => {
                        error!("memfd_create: {e}");
                        return error_reply(unique, libc::ENOMEM);
                    }
                }
            }
            let sink = sink.as_mut().unwrap();
            if let Err(e) = sink.seek(SeekFrom::Start(0)) {
                error!("reply sink: {e}");
                return error_reply(unique, libc::EIO);
            }
            let mut out = vec![0u8; reply_cap];
            let reader = match Reader::<()>::from_fuse_buffer(FuseBuf::new(&mut req)) {
                Ok(r) => r,
                Err(e) => {
                    error!("reader: {e}");
                    return error_reply(unique, libc::EIO);
                }
            };
            let writer = match FuseDevWriter::<()>::new(sink.as_raw_fd(), &mut out) {
                Ok(w) => Writer::FuseDev(w),
                Err(e) => {
                    error!("writer: {e}");
                    return error_reply(unique, libc::EIO);
                }
            };
            let mut cache = CacheReqHandler {
                dax: self.dax.clone(),
            };
            let res = self
                .server
                .handle_message(reader, writer, Some(&mut cache), None);
            let written = sink.stream_position().unwrap_or(0) as usize;
            let mut reply = vec![0u8; written];
            let read_back = sink
                .seek(SeekFrom::Start(0))
                .and_then(|_| sink.read_exact(&mut reply));
            if let Err(e) = read_back {
                error!("reading back the reply: {e}");
                return error_reply(unique, libc::EIO);
            }
            if let Err(e) = res {
                debug!("{} unique {unique}: server error {e}", opcode_name(opcode));
                if reply.is_empty() && !no_reply {
                    // The server could not decode the request and wrote nothing: the guest
                    // still needs an answer.
                    return error_reply(unique, libc::EINVAL);
                }
            }
            reply
        })
    }

    /// Handles one descriptor chain; returns the bytes written to the guest, or `None` when
    /// the request is parked and its completion adds the chain to the used ring later.
    fn process_chain(
        &self,
        mem: &Mem,
        chain: DescriptorChain<Mem>,
        vring: &VringRwLock,
        queue: usize,
    ) -> Option<u32> {
        let head = chain.head_index();
        let mut req = Vec::new();
        let mut writable = Vec::new();
        let mut wcap = 0usize;
        for desc in chain {
            let len = desc.len() as usize;
            if desc.is_write_only() {
                let take = len.min(MAX_MSG - wcap);
                if take > 0 {
                    writable.push((desc.addr(), take));
                    wcap += take;
                }
            } else {
                let take = len.min(MAX_MSG - req.len());
                let start = req.len();
                req.resize(start + take, 0);
                if let Err(e) = mem.read_slice(&mut req[start..], desc.addr()) {
                    warn!("bad readable descriptor {:#x}+{len:#x}: {e}", desc.addr().0);
                    return Some(0);
                }
            }
        }
        // Only a lock request may be parked: the others need no completion.
        let completion: Option<Completion> = self.locks.as_ref().map(|_| {
            let (vring, memory, writable) = (vring.clone(), self.mem.clone(), writable.clone());
            Box::new(move |reply: Vec<u8>| complete_later(&vring, &memory, head, &writable, &reply))
                as Completion
        });
        let reply = self.serve_chain(req, wcap, queue, completion)?;
        Some(write_reply(mem, &writable, &reply))
    }

    fn process_queue(&self, vring: &VringRwLock, queue: usize) -> io::Result<()> {
        let mem = self.mem.memory();
        let chains: Vec<_> = vring
            .get_mut()
            .get_queue_mut()
            .iter(mem.clone())
            .map_err(io::Error::other)?
            .collect();
        for chain in chains {
            let head = chain.head_index();
            let Some(used) = self.process_chain(&mem, chain, vring, queue) else {
                continue;
            };
            vring.add_used(head, used).map_err(io::Error::other)?;
            if vring.needs_notification().map_err(io::Error::other)? {
                vring.signal_used_queue()?;
            }
        }
        Ok(())
    }
}

impl VhostUserBackend for FsBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        self.num_queues
    }

    fn max_queue_size(&self) -> usize {
        QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
            | VIRTIO_RING_F_INDIRECT_DESC
            | VIRTIO_RING_F_EVENT_IDX
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::BACKEND_REQ
            | VhostUserProtocolFeatures::BACKEND_SEND_FD
            | VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::SHMEM
            // CAVEAT (memory table): every live DAX mapping is a file-backed RAM section of
            // the guest address space, so QEMU puts it in the vhost-user memory table. With
            // the classic SET_MEM_TABLE (8 regions) a handful of mappings overflow it
            // ("vhost_set_mem_table failed: No buffer space available"). ADD/REM_MEM_REG
            // lifts the limit to the slot count (QEMU: 256 on x86).
            | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
    }

    fn queues_per_thread(&self) -> Vec<u64> {
        // One worker thread per queue: a request waiting for QEMU (SHMEM_MAP ack, injected
        // delay) does not hold up FORGETs on hiprio or the other request queues.
        (0..self.num_queues).map(|i| 1u64 << i).collect()
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        // Lets the library stop each worker thread when the front-end disconnects, so the
        // process exits instead of joining threads that never return.
        new_event_consumer_and_notifier(EventFlag::NONBLOCK)
            .inspect_err(|e| error!("exit eventfd: {e}"))
            .ok()
    }

    fn reset_device(&self) {
        if let Some(l) = &self.locks {
            l.end_session("device reset");
        }
        self.dax.reset();
    }

    fn stop_vring(&self, queue_index: u32) -> io::Result<()> {
        // A parked FUSE_SETLKW must never be added to a ring that stopped (or that a new
        // session set up again): it is dropped unanswered.
        if let Some(l) = &self.locks {
            l.stop_queue(queue_index as usize);
        }
        Ok(())
    }

    fn set_event_idx(&self, enabled: bool) {
        self.event_idx.store(enabled, Ordering::Relaxed);
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let start = (offset as usize).min(self.config.len());
        let end = start.saturating_add(size as usize).min(self.config.len());
        self.config[start..end].to_vec()
    }

    fn update_memory(&self, _mem: GuestMemoryAtomic<GuestMem>) -> io::Result<()> {
        // The handler replaced the memory inside the `GuestMemoryAtomic` we share with it.
        Ok(())
    }

    fn set_backend_req_fd(&self, backend: Backend) {
        debug!("backend-request channel installed");
        self.dax.set_channel(backend);
    }

    fn get_shmem_config(&self) -> io::Result<VhostUserShMemConfig> {
        debug!("GET_SHMEM_CONFIG: region 0 = {:#x} bytes", self.window_size);
        Ok(VhostUserShMemConfig::new(1, &[self.window_size]))
    }

    fn handle_event(
        &self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        if evset != EventSet::IN {
            return Err(io::Error::other(format!("unexpected event set {evset:?}")));
        }
        let vring = vrings
            .get(device_event as usize)
            .ok_or_else(|| io::Error::other(format!("no queue {device_event}")))?;
        if self.event_idx.load(Ordering::Relaxed) {
            // Drain until the guest stops adding buffers (event-idx protocol).
            loop {
                vring.disable_notification().map_err(io::Error::other)?;
                self.process_queue(vring, device_event as usize)?;
                if !vring.enable_notification().map_err(io::Error::other)? {
                    break;
                }
            }
        } else {
            self.process_queue(vring, device_event as usize)?;
        }
        Ok(())
    }
}

/// Copies `reply` into the writable descriptors; returns the bytes written.
fn write_reply(mem: &Mem, writable: &[(GuestAddress, usize)], reply: &[u8]) -> u32 {
    let wcap: usize = writable.iter().map(|w| w.1).sum();
    if reply.len() > wcap {
        warn!(
            "reply of {} bytes does not fit {wcap} writable bytes",
            reply.len()
        );
    }
    let mut done = 0usize;
    for &(addr, len) in writable {
        if done >= reply.len() {
            break;
        }
        let n = len.min(reply.len() - done);
        if let Err(e) = mem.write_slice(&reply[done..done + n], addr) {
            warn!("bad writable descriptor {:#x}: {e}", addr.0);
            break;
        }
        done += n;
    }
    done as u32
}

/// Answers a parked request from another thread: the reply into its descriptors (through
/// the current guest memory), the chain into the used ring, the guest signalled. The vring
/// lock is held throughout, so the queue cannot stop in between; a queue that is no longer
/// ready gets nothing (stop_vring() drops parked requests first, this is the backstop).
fn complete_later(
    vring: &VringRwLock,
    memory: &GuestMemoryAtomic<GuestMem>,
    head: u16,
    writable: &[(GuestAddress, usize)],
    reply: &[u8],
) {
    let mut state = vring.get_mut();
    // A stopped or disabled ring (reset, GET_VRING_BASE, SET_VRING_ENABLE
    // 0) takes no answer: the request is lost with the ring's state, as
    // every request in flight then (documented in the README).
    if !state.get_queue().ready() || !state.is_enabled() {
        warn!("parked request (head {head}) answered after its queue stopped: dropped");
        return;
    }
    let mem = memory.memory();
    let used = write_reply(&mem, writable, reply);
    if let Err(e) = state.add_used(head, used) {
        warn!("parked request (head {head}): add_used: {e}");
        return;
    }
    match state.needs_notification() {
        Ok(false) => {}
        Ok(true) | Err(_) => {
            if let Err(e) = state.signal_used_queue() {
                warn!("parked request (head {head}): signal: {e}");
            }
        }
    }
}

/// `--locks`: grants FUSE_POSIX_LOCKS and FUSE_FLOCK_LOCKS in a successful INIT reply when
/// the guest `offered` them (fuse-backend-rs's PassthroughFs never does).
fn init_grant_locks(offered: u32, reply: &mut [u8]) {
    let flags_at = OUT_HEADER_LEN + 12;
    let Some(flags) = reply.get(flags_at..flags_at + 4) else {
        return;
    };
    if i32::from_le_bytes(reply[4..8].try_into().unwrap()) != 0 {
        return;
    }
    let flags = u32::from_le_bytes(flags.try_into().unwrap());
    let grant = offered & (locks::FUSE_POSIX_LOCKS | locks::FUSE_FLOCK_LOCKS);
    info!("INIT: lock flags offered {grant:#x}, granted");
    reply[flags_at..flags_at + 4].copy_from_slice(&(flags | grant).to_le_bytes());
}

/// `FUSE_INIT_EXT` in `fuse_init_out.flags`.
const FUSE_INIT_EXT: u32 = 1 << 30;

/// fuse-backend-rs 0.14 answers INIT with the granted flags above bit 31 in `flags2` but
/// without `FUSE_INIT_EXT` in `flags`, and a client reads `flags2` only when that bit is set
/// (fs/fuse/inode.c, process_init_reply()), so `FUSE_HAS_INODE_DAX` (bit 33, `dax=inode`)
/// was never seen as granted. Sets the bit when `flags2` grants anything: the client offered
/// INIT_EXT, or the server could not have read its `flags2`.
fn init_ext_fixup(reply: &mut [u8]) {
    // struct fuse_init_out: flags at 12, flags2 at 32 (after the fuse_out_header).
    let (flags_at, flags2_at) = (OUT_HEADER_LEN + 12, OUT_HEADER_LEN + 32);
    let (Some(flags), Some(flags2)) = (
        reply.get(flags_at..flags_at + 4),
        reply.get(flags2_at..flags2_at + 4),
    ) else {
        return;
    };
    let error = i32::from_le_bytes(reply[4..8].try_into().unwrap());
    let flags = u32::from_le_bytes(flags.try_into().unwrap());
    let flags2 = u32::from_le_bytes(flags2.try_into().unwrap());
    if error == 0 && flags2 != 0 {
        reply[flags_at..flags_at + 4].copy_from_slice(&(flags | FUSE_INIT_EXT).to_le_bytes());
    }
}

#[cfg(test)]
mod init_tests {
    use super::*;

    fn init_reply(error: i32, flags: u32, flags2: u32) -> Vec<u8> {
        let mut r = vec![0u8; OUT_HEADER_LEN + 64];
        r[4..8].copy_from_slice(&error.to_le_bytes());
        r[OUT_HEADER_LEN + 12..OUT_HEADER_LEN + 16].copy_from_slice(&flags.to_le_bytes());
        r[OUT_HEADER_LEN + 32..OUT_HEADER_LEN + 36].copy_from_slice(&flags2.to_le_bytes());
        r
    }

    fn flags(r: &[u8]) -> u32 {
        u32::from_le_bytes(
            r[OUT_HEADER_LEN + 12..OUT_HEADER_LEN + 16]
                .try_into()
                .unwrap(),
        )
    }

    #[test]
    fn init_ext_set_only_when_flags2_grants() {
        let mut r = init_reply(0, 1 << 28, 1 << 1);
        init_ext_fixup(&mut r);
        assert_eq!(flags(&r), (1 << 28) | FUSE_INIT_EXT);
        let mut r = init_reply(0, 1 << 28, 0);
        init_ext_fixup(&mut r);
        assert_eq!(flags(&r), 1 << 28);
        let mut r = init_reply(-22, 0, 1);
        init_ext_fixup(&mut r);
        assert_eq!(flags(&r), 0);
        // A short (compat) reply has no flags2: left alone.
        let mut r = init_reply(0, 5, 1)[..OUT_HEADER_LEN + 24].to_vec();
        init_ext_fixup(&mut r);
        assert_eq!(flags(&r), 5);
    }
}

#[cfg(test)]
mod serve_tests {
    use super::*;
    use std::path::PathBuf;

    /// A backend serving a fresh directory holding file `f`, with `rules`.
    fn backend(tag: &str, rules: &[&str]) -> (FsBackend, PathBuf) {
        backend_with(tag, rules, false)
    }

    fn backend_with(tag: &str, rules: &[&str], locks: bool) -> (FsBackend, PathBuf) {
        let (fs, dir) = crate::testdir::fresh(tag);
        let rules = rules.iter().map(|r| r.parse().unwrap()).collect();
        let b = FsBackend::new(fs, "t", 1, 2 << 20, Injector::new(rules), locks);
        (b, dir)
    }

    /// A request: `fuse_in_header` (this process's credentials) and `body`.
    fn req(opcode: u32, unique: u64, nodeid: u64, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; IN_HEADER_LEN];
        v[0..4].copy_from_slice(&((IN_HEADER_LEN + body.len()) as u32).to_le_bytes());
        v[4..8].copy_from_slice(&opcode.to_le_bytes());
        v[8..16].copy_from_slice(&unique.to_le_bytes());
        v[16..24].copy_from_slice(&nodeid.to_le_bytes());
        // SAFETY: geteuid()/getegid() have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        v[24..28].copy_from_slice(&uid.to_le_bytes());
        v[28..32].copy_from_slice(&gid.to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn error(reply: &[u8]) -> i32 {
        i32::from_le_bytes(reply[4..8].try_into().unwrap())
    }

    fn init(b: &FsBackend) {
        init_flags(b, 0);
    }

    /// INIT offering `offered`; returns the flags granted.
    fn init_flags(b: &FsBackend, offered: u32) -> u32 {
        // struct fuse_init_in { major 7, minor 31, max_readahead, flags }
        let mut body = Vec::new();
        for v in [7u32, 31, 0, offered] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        let r = b.serve(req(FUSE_INIT, 1, 0, &body), 4096);
        assert_eq!(error(&r), 0);
        u32::from_le_bytes(
            r[OUT_HEADER_LEN + 12..OUT_HEADER_LEN + 16]
                .try_into()
                .unwrap(),
        )
    }

    fn open(b: &FsBackend, node: u64) -> u64 {
        // struct fuse_open_in { flags, open_flags }
        let r = b.serve(req(14, 4, node, &2u32.to_le_bytes().repeat(2)), 4096);
        assert_eq!(error(&r), 0);
        u64::from_le_bytes(r[OUT_HEADER_LEN..OUT_HEADER_LEN + 8].try_into().unwrap())
    }

    /// struct fuse_lk_in for a POSIX lock of `owner` on `start..=end`.
    fn lk(fh: u64, owner: u64, start: u64, end: u64, typ: i32) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [fh, owner, start, end] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        for x in [typ as u32, 1, 0, 0] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    }

    #[test]
    fn locks_only_with_the_flag() {
        let both = locks::FUSE_POSIX_LOCKS | locks::FUSE_FLOCK_LOCKS;
        let (b, dir) = backend_with("nolocks", &[], false);
        assert_eq!(init_flags(&b, both) & both, 0);
        let f = lookup(&b, "f");
        let fh = open(&b, f);
        // fuse-backend-rs answers lock requests itself (ENOSYS from PassthroughFs).
        let r = b.serve(req(FUSE_SETLK, 5, f, &lk(fh, 1, 0, 9, libc::F_WRLCK)), 4096);
        assert_eq!(error(&r), -libc::ENOSYS);
        std::fs::remove_dir_all(dir).unwrap();

        let (b, dir) = backend_with("locks", &[], true);
        assert_eq!(init_flags(&b, both | 1) & both, both);
        assert_eq!(
            init_flags(&b, locks::FUSE_POSIX_LOCKS) & both,
            locks::FUSE_POSIX_LOCKS
        );
        let f = lookup(&b, "f");
        let fh = open(&b, f);
        let set = |unique, owner, typ| {
            error(&b.serve(req(FUSE_SETLK, unique, f, &lk(fh, owner, 0, 9, typ)), 4096))
        };
        assert_eq!(set(5, 1, libc::F_WRLCK), 0);
        assert_eq!(set(6, 2, libc::F_RDLCK), -libc::EAGAIN);
        // A handle that is not open, or not of this node: EBADF.
        let r = b.serve(
            req(FUSE_SETLK, 7, f, &lk(fh + 1, 2, 0, 9, libc::F_WRLCK)),
            4096,
        );
        assert_eq!(error(&r), -libc::EBADF);
        let r = b.serve(req(FUSE_SETLK, 8, 1, &lk(fh, 2, 0, 9, libc::F_WRLCK)), 4096);
        assert_eq!(error(&r), -libc::EBADF);
        // SETLKW with nowhere to park (no chain): EAGAIN rather than a held queue.
        let r = b.serve(
            req(FUSE_SETLKW, 9, f, &lk(fh, 2, 0, 9, libc::F_WRLCK)),
            4096,
        );
        assert_eq!(error(&r), -libc::EAGAIN);
        // FLUSH of owner 1 (struct fuse_flush_in { fh, unused, padding, lock_owner }).
        let mut flush = fh.to_le_bytes().to_vec();
        flush.extend_from_slice(&[0; 8]);
        flush.extend_from_slice(&1u64.to_le_bytes());
        assert_eq!(error(&b.serve(req(FUSE_FLUSH, 10, f, &flush), 4096)), 0);
        assert_eq!(set(11, 2, libc::F_WRLCK), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tmpfile_only_with_the_flag() {
        // struct fuse_create_in { flags, mode, umask, open_flags }, then "/" as C sends.
        let mut tmp = Vec::new();
        for v in [(libc::O_RDWR | libc::O_TMPFILE) as u32, 0o100640, 0, 0] {
            tmp.extend_from_slice(&v.to_le_bytes());
        }
        tmp.extend_from_slice(b"/\0");
        let (b, dir) = backend("notmpfile", &[]);
        init(&b);
        let r = b.serve(req(FUSE_TMPFILE, 3, 1, &tmp), 4096);
        assert_eq!(error(&r), -libc::ENOSYS);
        std::fs::remove_dir_all(dir).unwrap();

        let (b, dir) = backend("tmpfile", &[]);
        let b = b.with_tmpfile(true);
        init(&b);
        let r = b.serve(req(FUSE_TMPFILE, 3, 1, &tmp), 4096);
        assert_eq!(error(&r), 0);
        assert_eq!(r.len(), OUT_HEADER_LEN + ENTRY_OUT_LEN + 16);
        let at = |o: usize| u64::from_le_bytes(r[o..o + 8].try_into().unwrap());
        let (node, fh) = (at(OUT_HEADER_LEN), at(OUT_HEADER_LEN + ENTRY_OUT_LEN));
        // struct fuse_attr { ino, size, blocks, atime, mtime, ctime, atimensec, mtimensec,
        // ctimensec, mode, nlink, ... } at offset 40 of the entry.
        let attr = OUT_HEADER_LEN + 40;
        let u32_at = |o: usize| u32::from_le_bytes(r[o..o + 4].try_into().unwrap());
        assert_eq!(u32_at(attr + 60), 0o100640);
        assert_eq!(u32_at(attr + 64), 0, "nlink of the unlinked file");
        // Nothing is left with a name, not even the hidden one.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
        // The handle is open for reading and writing: WRITE then READ through it.
        // struct fuse_write_in { fh, offset, size, write_flags, lock_owner, flags, padding }
        let mut w = fh.to_le_bytes().to_vec();
        w.extend_from_slice(&0u64.to_le_bytes());
        w.extend_from_slice(&5u32.to_le_bytes());
        w.extend_from_slice(&[0; 20]);
        w.extend_from_slice(b"hello");
        assert_eq!(error(&b.serve(req(16, 4, node, &w), 4096)), 0);
        // struct fuse_read_in { fh, offset, size, read_flags, lock_owner, flags, padding }
        let mut rd = fh.to_le_bytes().to_vec();
        rd.extend_from_slice(&0u64.to_le_bytes());
        rd.extend_from_slice(&16u32.to_le_bytes());
        rd.extend_from_slice(&[0; 20]);
        let r = b.serve(req(15, 5, node, &rd), 4096);
        assert_eq!(error(&r), 0);
        assert_eq!(&r[OUT_HEADER_LEN..], b"hello");
        // The host kernel will not name it again: LINK fails, and still nothing appears.
        // struct fuse_link_in { oldnodeid }, then the new name.
        let mut link = node.to_le_bytes().to_vec();
        link.extend_from_slice(b"named\0");
        assert_eq!(error(&b.serve(req(13, 6, 1, &link), 4096)), -libc::ENOENT);
        assert!(!dir.join("named").exists());
        // Too short to be one: refused, not served as ENOSYS.
        let r = b.serve(req(FUSE_TMPFILE, 7, 1, &tmp[..8]), 4096);
        assert_eq!(error(&r), -libc::EINVAL);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn lookup(b: &FsBackend, name: &str) -> u64 {
        let r = b.serve(req(1, 2, 1, format!("{name}\0").as_bytes()), 4096);
        assert_eq!(error(&r), 0);
        u64::from_le_bytes(r[OUT_HEADER_LEN..OUT_HEADER_LEN + 8].try_into().unwrap())
    }

    #[test]
    fn failed_request_is_not_served() {
        let (b, dir) = backend("fail", &["fail:opcode=MKDIR:errno=EDQUOT:nth=1:name=d"]);
        init(&b);
        // struct fuse_mkdir_in { mode, umask }, then the name.
        let mut mkdir = Vec::new();
        mkdir.extend_from_slice(&0o755u32.to_le_bytes());
        mkdir.extend_from_slice(&0u32.to_le_bytes());
        mkdir.extend_from_slice(b"d\0");
        let r = b.serve(req(9, 7, 1, &mkdir), 4096);
        assert_eq!(r.len(), OUT_HEADER_LEN);
        assert_eq!(error(&r), -libc::EDQUOT);
        assert_eq!(u64::from_le_bytes(r[8..16].try_into().unwrap()), 7);
        assert!(!dir.join("d").exists(), "a failed MKDIR made the directory");
        // The rule's one hit is over: the next MKDIR is served.
        assert_eq!(error(&b.serve(req(9, 8, 1, &mkdir), 4096)), 0);
        assert!(dir.join("d").is_dir());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn node_name_rules_pick_the_node() {
        let (b, dir) = backend(
            "node",
            &[
                "fail:opcode=GETATTR:errno=EIO:name=f",
                "fail:opcode=RELEASE:errno=EIO:name=f",
            ],
        );
        init(&b);
        // struct fuse_getattr_in { getattr_flags, dummy, fh }
        let getattr = |nodeid| error(&b.serve(req(3, 3, nodeid, &[0; 16]), 4096));
        assert_eq!(getattr(1), 0);
        let f = lookup(&b, "f");
        assert_eq!(getattr(f), -libc::EIO);
        assert_eq!(getattr(1), 0);
        // struct fuse_open_in { flags, open_flags }
        let r = b.serve(req(14, 4, f, &[0; 8]), 4096);
        assert_eq!(error(&r), 0);
        let fh = u64::from_le_bytes(r[OUT_HEADER_LEN..OUT_HEADER_LEN + 8].try_into().unwrap());
        // struct fuse_release_in { fh, flags, release_flags, lock_owner }: refused, so the
        // handle stays open on the host.
        let mut release = fh.to_le_bytes().to_vec();
        release.extend_from_slice(&[0; 16]);
        assert_eq!(error(&b.serve(req(18, 5, f, &release), 4096)), -libc::EIO);
        assert!(b.open_fhs.lock().unwrap().contains_key(&fh));
        // A new session forgets the node's name: the rule no longer sees `f` in node f.
        init(&b);
        assert_ne!(getattr(f), -libc::EIO);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
