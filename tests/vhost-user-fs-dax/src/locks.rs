// SPDX-License-Identifier: GPL-2.0-only
//! FUSE remote locks (`--locks`): FUSE_GETLK, FUSE_SETLK, FUSE_SETLKW served with host
//! kernel locks, so host processes see what the guest holds and the other way round.
//!
//! - Every (node, lock owner, kind) gets its own host open file description of the node's
//!   file (as the C virtiofsd's `lo_inode_plock`). POSIX record locks are taken on it as
//!   open file description locks (`F_OFD_SETLK` / `F_OFD_GETLK`): an owner's locks merge,
//!   split and convert among themselves as one process's do, conflict with every other
//!   owner's and with host processes' classic and OFD locks, and go away exactly when that
//!   description is closed (nothing else the daemon opens or closes touches them).
//!   `FUSE_LK_FLOCK` requests (the guest's flock(2), sent by C as a whole-file POSIX-style
//!   request whose owner is the guest's `struct file`) take flock(2) on their own
//!   description instead: flock and POSIX locks do not interact, as on Linux.
//! - The description is opened through the node's path as the passthrough's O_PATH fd
//!   names it (`/proc/self/fd/N`, `PassthroughFs::readlinkat_proc_file`), read-write (or
//!   read-only when the file or the export refuses writing), and checked against the node's
//!   `st_dev`/`st_ino`: a file renamed or unlinked on the host in between is refused with
//!   ESTALE rather than a lock taken on another file. (fuse-backend-rs 0.14 gives no access
//!   to its O_PATH fd itself.)
//! - FUSE_FLUSH drops the POSIX locks of its `lock_owner` on the node (closes that
//!   description), FUSE_RELEASE with `FUSE_RELEASE_FLOCK_UNLOCK` its flock, FUSE_FORGET /
//!   FUSE_BATCH_FORGET everything of the node, FUSE_INIT / FUSE_DESTROY / a device reset
//!   everything.
//! - FUSE_SETLKW never holds the queue: the worker tries once; on a conflict the request is
//!   parked with a completion (the caller's: it writes the reply into the chain and adds it
//!   to the used ring later) and a waiter thread retries the non-blocking lock whenever the
//!   daemon releases a lock and every [`RETRY`] (for host processes' locks). Each try and the
//!   completion run under one mutex, so a cancellation (FUSE_INTERRUPT: -EINTR; a stopped
//!   queue or a new session: no reply) and a grant never both happen.
//! - F_OFD_GETLK reports no holder pid (-1); FUSE_GETLK answers pid 0 (the guest then
//!   reports 0: C's `convert_fuse_file_lock` finds no such pid in its namespace).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use fuse_backend_rs::api::filesystem::{Context, FileSystem};
use fuse_backend_rs::passthrough::PassthroughFs;
use log::{debug, info, warn};

/// sizeof(struct fuse_out_header).
const OUT_HEADER_LEN: usize = 16;
/// sizeof(struct fuse_lk_in).
pub const LK_IN_LEN: usize = 48;
/// `fuse_lk_in.lk_flags`: the request is a flock(2).
pub const FUSE_LK_FLOCK: u32 = 1 << 0;
/// `fuse_release_in.release_flags`: drop the flock of `lock_owner`.
pub const FUSE_RELEASE_FLOCK_UNLOCK: u32 = 1 << 1;
/// INIT flags granted with `--locks` (when offered).
pub const FUSE_POSIX_LOCKS: u32 = 1 << 1;
pub const FUSE_FLOCK_LOCKS: u32 = 1 << 10;
/// The kernel's OFFSET_MAX: a lock ending here (or beyond) reaches to EOF and past it.
const OFFSET_MAX: u64 = i64::MAX as u64;
/// How often a parked FUSE_SETLKW retries when nothing in the daemon was released.
const RETRY: Duration = Duration::from_millis(20);

/// Replies to a parked request once: gets the whole reply (header included).
pub type Completion = Box<dyn FnOnce(Vec<u8>) + Send>;

/// The lock request of a FUSE_GETLK / FUSE_SETLK / FUSE_SETLKW, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LkIn {
    pub fh: u64,
    pub owner: u64,
    pub start: u64,
    pub end: u64,
    pub typ: i32,
    pub pid: u32,
    pub flock: bool,
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses and checks `struct fuse_lk_in` (the body after the header): errno on anything
/// this host would not do exactly as asked.
pub fn parse_lk_in(body: &[u8]) -> Result<LkIn, i32> {
    if body.len() < LK_IN_LEN {
        return Err(libc::EINVAL);
    }
    let (Some(fh), Some(owner), Some(start), Some(end), Some(typ), Some(pid), Some(flags)) = (
        u64_at(body, 0),
        u64_at(body, 8),
        u64_at(body, 16),
        u64_at(body, 24),
        u32_at(body, 32),
        u32_at(body, 36),
        u32_at(body, 40),
    ) else {
        return Err(libc::EINVAL);
    };
    if flags & !FUSE_LK_FLOCK != 0 {
        return Err(libc::EINVAL);
    }
    let typ = match typ {
        t if t == libc::F_RDLCK as u32
            || t == libc::F_WRLCK as u32
            || t == libc::F_UNLCK as u32 =>
        {
            t as i32
        }
        _ => return Err(libc::EINVAL),
    };
    // The kernel never sends past OFFSET_MAX (its "to EOF").
    if start > end || end > OFFSET_MAX {
        return Err(libc::EINVAL);
    }
    let flock = flags & FUSE_LK_FLOCK != 0;
    // flock(2) locks the whole file: a flock request for less is not one
    // this host can do as asked.
    if flock && (start != 0 || end != OFFSET_MAX) {
        return Err(libc::EINVAL);
    }
    Ok(LkIn {
        fh,
        owner,
        start,
        end,
        typ,
        pid,
        flock,
    })
}

/// `start..=end` as `struct flock`'s `l_start` / `l_len` (0: to EOF and beyond).
pub fn to_flock_range(start: u64, end: u64) -> Result<(i64, i64), i32> {
    if start > end || start > OFFSET_MAX {
        return Err(libc::EINVAL);
    }
    let len = if end >= OFFSET_MAX {
        0
    } else {
        // end < OFFSET_MAX, so end - start + 1 <= OFFSET_MAX.
        (end - start + 1) as i64
    };
    Ok((start as i64, len))
}

/// A `struct flock` from F_OFD_GETLK as FUSE's (start, end, type).
pub fn from_flock(l_type: i32, l_start: i64, l_len: i64) -> (u64, u64, u32) {
    if l_type == libc::F_UNLCK {
        return (0, 0, libc::F_UNLCK as u32);
    }
    let start = l_start.max(0) as u64;
    let end = if l_len == 0 {
        OFFSET_MAX
    } else if l_len > 0 {
        start.saturating_add(l_len as u64 - 1).min(OFFSET_MAX)
    } else {
        // Not produced by the kernel's F_*GETLK (it normalizes); kept sane anyway.
        start
    };
    (start, end, l_type as u32)
}

/// A reply with `struct fuse_lk_out`.
fn lk_reply(unique: u64, start: u64, end: u64, typ: u32, pid: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(OUT_HEADER_LEN + 24);
    v.extend_from_slice(&((OUT_HEADER_LEN + 24) as u32).to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&unique.to_le_bytes());
    v.extend_from_slice(&start.to_le_bytes());
    v.extend_from_slice(&end.to_le_bytes());
    v.extend_from_slice(&typ.to_le_bytes());
    v.extend_from_slice(&pid.to_le_bytes());
    v
}

/// A reply with no body: `errno` 0 for success.
pub fn status_reply(unique: u64, errno: i32) -> Vec<u8> {
    let mut v = Vec::with_capacity(OUT_HEADER_LEN);
    v.extend_from_slice(&(OUT_HEADER_LEN as u32).to_le_bytes());
    v.extend_from_slice(&(-errno).to_le_bytes());
    v.extend_from_slice(&unique.to_le_bytes());
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Posix,
    Flock,
}

type Key = (u64, u64, Kind);

struct Pending {
    queue: usize,
    done: Completion,
}

#[derive(Default)]
struct State {
    /// One host open file description per (node, owner, kind) that holds or held locks.
    fds: HashMap<Key, File>,
    /// Parked FUSE_SETLKWs by unique.
    pending: HashMap<u64, Pending>,
    /// FUSE_INTERRUPTs that found nothing parked (they may overtake their
    /// request: another queue), newest last, at most [`EARLY_MAX`].
    early: std::collections::VecDeque<u64>,
}

/// The most FUSE_INTERRUPTs kept for requests not seen yet.
const EARLY_MAX: usize = 64;

/// The most FUSE_SETLKWs parked at once (each has a thread): ENOLCK beyond.
const PENDING_MAX: usize = 256;

/// Where the daemon's lock state lives (see the module documentation).
pub struct Locks {
    fs: Arc<PassthroughFs<()>>,
    state: Mutex<State>,
    /// Signalled whenever the daemon releases a lock or drops a parked request.
    changed: Condvar,
}

/// Outcome of one non-blocking try.
enum Try {
    Granted,
    Conflict,
    Failed(i32),
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl Locks {
    pub fn new(fs: Arc<PassthroughFs<()>>) -> Arc<Self> {
        Arc::new(Locks {
            fs,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent maps: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a new description of `node`'s file, checked to be that file.
    fn open_node(&self, node: u64) -> Result<File, i32> {
        let path = self.fs.readlinkat_proc_file(node).map_err(|e| {
            debug!("locks: node {node}: {e}");
            libc::ENOENT
        })?;
        let (st, _) = self
            .fs
            .getattr(&Context::new(), node, None)
            .map_err(|e| errno_of(&e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(libc::EINVAL);
        }
        let cpath =
            std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| libc::ESTALE)?;
        let mut fd = -1;
        for mode in [libc::O_RDWR, libc::O_RDONLY] {
            // SAFETY: `cpath` is a valid NUL-terminated string; the fd returned is owned below.
            fd = unsafe {
                libc::open(
                    cpath.as_ptr(),
                    mode | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
                )
            };
            if fd >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if !matches!(errno_of(&e), libc::EACCES | libc::EROFS | libc::ETXTBSY) {
                break;
            }
        }
        if fd < 0 {
            let e = io::Error::last_os_error();
            warn!("locks: node {node}: open {}: {e}", path.display());
            return Err(if errno_of(&e) == libc::ENOENT {
                libc::ESTALE
            } else {
                errno_of(&e)
            });
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        // SAFETY: fstat on an open fd into a zeroed stat buffer.
        let mut now: libc::stat64 = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `now` is a valid out pointer.
        if unsafe { libc::fstat64(file.as_raw_fd(), &mut now) } != 0 {
            return Err(errno_of(&io::Error::last_os_error()));
        }
        if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
            warn!(
                "locks: node {node}: {} is no longer that file (renamed or unlinked on the host)",
                path.display()
            );
            return Err(libc::ESTALE);
        }
        Ok(file)
    }

    /// The description of `key`, opened on first use.
    fn fd_of<'a>(&self, st: &'a mut State, key: Key) -> Result<&'a File, i32> {
        match st.fds.entry(key) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => Ok(e.insert(self.open_node(key.0)?)),
        }
    }

    /// One non-blocking attempt of `lk` on `node` (state locked by the caller).
    fn try_lock(&self, st: &mut State, node: u64, lk: &LkIn) -> Try {
        let kind = if lk.flock { Kind::Flock } else { Kind::Posix };
        let key = (node, lk.owner, kind);
        if lk.typ == libc::F_UNLCK && !st.fds.contains_key(&key) {
            // Nothing held through this owner: nothing to unlock.
            return Try::Granted;
        }
        let file = match self.fd_of(st, key) {
            Ok(f) => f,
            Err(e) => return Try::Failed(e),
        };
        let rc = if lk.flock {
            let op = match lk.typ {
                libc::F_RDLCK => libc::LOCK_SH,
                libc::F_WRLCK => libc::LOCK_EX,
                _ => libc::LOCK_UN,
            };
            // SAFETY: flock on an fd we own.
            unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) }
        } else {
            let (l_start, l_len) = match to_flock_range(lk.start, lk.end) {
                Ok(r) => r,
                Err(e) => return Try::Failed(e),
            };
            // SAFETY: a zeroed struct flock is valid (l_pid must be 0 for OFD locks).
            let mut fl: libc::flock = unsafe { std::mem::zeroed() };
            fl.l_type = lk.typ as libc::c_short;
            fl.l_whence = libc::SEEK_SET as libc::c_short;
            fl.l_start = l_start;
            fl.l_len = l_len;
            // SAFETY: fcntl on an fd we own with a valid struct flock.
            unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) }
        };
        if rc == 0 {
            if lk.typ == libc::F_UNLCK {
                self.changed.notify_all();
            }
            return Try::Granted;
        }
        match errno_of(&io::Error::last_os_error()) {
            libc::EAGAIN | libc::EACCES => Try::Conflict,
            e => Try::Failed(e),
        }
    }

    /// FUSE_GETLK: the first lock that conflicts with `body`'s, or F_UNLCK.
    pub fn getlk(&self, node: u64, unique: u64, body: &[u8]) -> Vec<u8> {
        let lk = match parse_lk_in(body) {
            Ok(lk) if !lk.flock && lk.typ != libc::F_UNLCK => lk,
            Ok(_) | Err(_) => return status_reply(unique, libc::EINVAL),
        };
        let (l_start, l_len) = match to_flock_range(lk.start, lk.end) {
            Ok(r) => r,
            Err(e) => return status_reply(unique, e),
        };
        let st = self.state();
        let key = (node, lk.owner, Kind::Posix);
        // The owner's own description (its locks never conflict with it), or a throwaway
        // one for an owner that holds nothing.
        let tmp;
        let file = match st.fds.get(&key) {
            Some(f) => f,
            None => match self.open_node(node) {
                Ok(f) => {
                    tmp = f;
                    &tmp
                }
                Err(e) => return status_reply(unique, e),
            },
        };
        // SAFETY: a zeroed struct flock is valid (l_pid must be 0 for OFD locks).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = lk.typ as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = l_start;
        fl.l_len = l_len;
        // SAFETY: fcntl on an open fd with a valid struct flock it may write.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) } != 0 {
            return status_reply(unique, errno_of(&io::Error::last_os_error()));
        }
        drop(st);
        let (start, end, typ) = from_flock(fl.l_type as i32, fl.l_start, fl.l_len);
        debug!(
            "locks: GETLK node {node} owner {:#x} {}..={} -> type {typ} {start}..={end}",
            lk.owner, lk.start, lk.end
        );
        lk_reply(unique, start, end, typ, 0)
    }

    /// FUSE_SETLK (`wait` false) or FUSE_SETLKW: the reply, or `None` when the request is
    /// parked and `done` will get it.
    pub fn setlk(
        self: &Arc<Self>,
        node: u64,
        unique: u64,
        body: &[u8],
        wait: bool,
        queue: usize,
        done: Option<Completion>,
    ) -> Option<Vec<u8>> {
        let lk = match parse_lk_in(body) {
            Ok(lk) => lk,
            Err(e) => return Some(status_reply(unique, e)),
        };
        debug!(
            "locks: SETLK{} node {node} owner {:#x} type {} {}..={}{}",
            if wait { "W" } else { "" },
            lk.owner,
            lk.typ,
            lk.start,
            lk.end,
            if lk.flock { " flock" } else { "" }
        );
        let mut st = self.state();
        match self.try_lock(&mut st, node, &lk) {
            Try::Granted => return Some(status_reply(unique, 0)),
            Try::Failed(e) => return Some(status_reply(unique, e)),
            Try::Conflict if !wait => return Some(status_reply(unique, libc::EAGAIN)),
            Try::Conflict => {}
        }
        let Some(done) = done else {
            return Some(status_reply(unique, libc::EAGAIN));
        };
        if let Some(i) = st.early.iter().position(|&u| u == unique) {
            // Its INTERRUPT came first: it would wait, so it is interrupted.
            st.early.remove(i);
            info!("locks: SETLKW unique {unique} interrupted before it waited");
            return Some(status_reply(unique, libc::EINTR));
        }
        if st.pending.len() >= PENDING_MAX {
            warn!("locks: {PENDING_MAX} SETLKW already waiting: ENOLCK");
            return Some(status_reply(unique, libc::ENOLCK));
        }
        if st.pending.contains_key(&unique) {
            warn!("locks: SETLKW unique {unique} is already waiting");
            return Some(status_reply(unique, libc::EINVAL));
        }
        st.pending.insert(unique, Pending { queue, done });
        drop(st);
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("setlkw".into())
            .spawn(move || me.wait_for(node, unique, lk));
        if let Err(e) = spawned {
            warn!("locks: cannot start a waiter: {e}");
            let p = self.state().pending.remove(&unique);
            return p.map(|_| status_reply(unique, libc::ENOLCK));
        }
        None
    }

    /// A parked FUSE_SETLKW's thread: retries until granted, failed or cancelled.
    fn wait_for(&self, node: u64, unique: u64, lk: LkIn) {
        let mut st = self.state();
        loop {
            if !st.pending.contains_key(&unique) {
                debug!("locks: SETLKW unique {unique} cancelled");
                return;
            }
            let reply = match self.try_lock(&mut st, node, &lk) {
                Try::Conflict => {
                    st = self
                        .changed
                        .wait_timeout(st, RETRY)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    continue;
                }
                Try::Granted => status_reply(unique, 0),
                Try::Failed(e) => status_reply(unique, e),
            };
            if let Some(p) = st.pending.remove(&unique) {
                debug!("locks: SETLKW unique {unique} answered");
                (p.done)(reply);
            }
            return;
        }
    }

    /// FUSE_INTERRUPT of `unique`: a parked FUSE_SETLKW gives up and answers -EINTR.
    pub fn interrupt(&self, unique: u64) -> bool {
        let mut st = self.state();
        let Some(p) = st.pending.remove(&unique) else {
            // Perhaps ahead of its SETLKW (INTERRUPT comes on the hiprio
            // queue): kept, so the SETLKW answers EINTR if it must wait.
            if st.early.len() == EARLY_MAX {
                st.early.pop_front();
            }
            st.early.push_back(unique);
            return false;
        };
        info!("locks: SETLKW unique {unique} interrupted");
        (p.done)(status_reply(unique, libc::EINTR));
        self.changed.notify_all();
        true
    }

    /// FUSE_FLUSH: `owner`'s POSIX locks on `node` go.
    pub fn flush(&self, node: u64, owner: u64) {
        if self
            .state()
            .fds
            .remove(&(node, owner, Kind::Posix))
            .is_some()
        {
            debug!("locks: FLUSH node {node} owner {owner:#x}: POSIX locks dropped");
            self.changed.notify_all();
        }
    }

    /// FUSE_RELEASE with FUSE_RELEASE_FLOCK_UNLOCK: `owner`'s flock on `node` goes.
    pub fn release_flock(&self, node: u64, owner: u64) {
        if self
            .state()
            .fds
            .remove(&(node, owner, Kind::Flock))
            .is_some()
        {
            debug!("locks: RELEASE node {node} owner {owner:#x}: flock dropped");
            self.changed.notify_all();
        }
    }

    /// FUSE_FORGET: every lock on `node` goes.
    pub fn forget(&self, node: u64) {
        let mut st = self.state();
        let before = st.fds.len();
        st.fds.retain(|k, _| k.0 != node);
        if st.fds.len() != before {
            debug!("locks: FORGET node {node}: locks dropped");
            self.changed.notify_all();
        }
    }

    /// Queue `queue` stopped: its parked requests are dropped unanswered (the ring is gone).
    pub fn stop_queue(&self, queue: usize) {
        let mut st = self.state();
        let before = st.pending.len();
        st.pending.retain(|_, p| p.queue != queue);
        if st.pending.len() != before {
            info!(
                "locks: queue {queue} stopped: {} waiting SETLKW dropped",
                before - st.pending.len()
            );
            self.changed.notify_all();
        }
    }

    /// A new session or a reset: every lock and parked request goes.
    pub fn end_session(&self, why: &str) {
        let mut st = self.state();
        if !st.fds.is_empty() || !st.pending.is_empty() {
            info!(
                "locks: {why}: {} lock owner(s) and {} waiting SETLKW dropped",
                st.fds.len(),
                st.pending.len()
            );
        }
        st.fds.clear();
        st.pending.clear();
        st.early.clear();
        self.changed.notify_all();
    }

    #[cfg(test)]
    fn pending(&self) -> usize {
        self.state().pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lk_in(fh: u64, owner: u64, start: u64, end: u64, typ: u32, flags: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [fh, owner, start, end] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        for x in [typ, 42, flags, 0] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    }

    const RD: u32 = libc::F_RDLCK as u32;
    const WR: u32 = libc::F_WRLCK as u32;
    const UN: u32 = libc::F_UNLCK as u32;

    #[test]
    fn parse() {
        let lk = parse_lk_in(&lk_in(3, 9, 10, 19, WR, 0)).unwrap();
        assert_eq!(
            lk,
            LkIn {
                fh: 3,
                owner: 9,
                start: 10,
                end: 19,
                typ: libc::F_WRLCK,
                pid: 42,
                flock: false
            }
        );
        assert!(
            parse_lk_in(&lk_in(3, 9, 0, OFFSET_MAX, RD, FUSE_LK_FLOCK))
                .unwrap()
                .flock
        );
        assert_eq!(
            parse_lk_in(&lk_in(3, 9, 0, 1, UN, 0)).unwrap().typ,
            libc::F_UNLCK
        );
        // Short body, bad type, bad flags, start past end, start past OFFSET_MAX.
        assert_eq!(
            parse_lk_in(&lk_in(3, 9, 0, 1, WR, 0)[..47]),
            Err(libc::EINVAL)
        );
        assert_eq!(parse_lk_in(&lk_in(3, 9, 0, 1, 7, 0)), Err(libc::EINVAL));
        assert_eq!(parse_lk_in(&lk_in(3, 9, 0, 1, WR, 2)), Err(libc::EINVAL));
        assert_eq!(parse_lk_in(&lk_in(3, 9, 5, 4, WR, 0)), Err(libc::EINVAL));
        assert_eq!(
            parse_lk_in(&lk_in(3, 9, OFFSET_MAX + 1, u64::MAX, WR, 0)),
            Err(libc::EINVAL)
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(to_flock_range(0, OFFSET_MAX), Ok((0, 0)));
        assert_eq!(to_flock_range(5, u64::MAX), Ok((5, 0)));
        assert_eq!(to_flock_range(0, 99), Ok((0, 100)));
        assert_eq!(to_flock_range(7, 7), Ok((7, 1)));
        assert_eq!(
            to_flock_range(0, OFFSET_MAX - 1),
            Ok((0, OFFSET_MAX as i64))
        );
        assert_eq!(to_flock_range(8, 7), Err(libc::EINVAL));
        assert_eq!(from_flock(libc::F_WRLCK, 0, 100), (0, 99, WR));
        assert_eq!(from_flock(libc::F_RDLCK, 50, 0), (50, OFFSET_MAX, RD));
        assert_eq!(from_flock(libc::F_UNLCK, 3, 4), (0, 0, UN));
        for (s, e) in [
            (0u64, 0u64),
            (1, 99),
            (4096, OFFSET_MAX),
            (9, OFFSET_MAX - 1),
        ] {
            let (ls, ll) = to_flock_range(s, e).unwrap();
            assert_eq!(from_flock(libc::F_WRLCK, ls, ll), (s, e, WR));
        }
    }

    fn setup(tag: &str) -> (Arc<Locks>, u64, std::path::PathBuf) {
        let (fs, dir) = crate::testdir::fresh(&format!("locks-{tag}"));
        let (entry, _) = (fs.lookup(&Context::new(), 1, c"f").unwrap(), ());
        (Locks::new(Arc::new(fs)), entry.inode, dir)
    }

    fn errno(r: &[u8]) -> i32 {
        -i32::from_le_bytes(r[4..8].try_into().unwrap())
    }

    /// A host process's view: F_GETLK on a fresh classic description.
    fn host_getlk(path: &std::path::Path, start: i64, len: i64) -> i32 {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        // SAFETY: zeroed struct flock, filled below.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_start = start;
        fl.l_len = len;
        // SAFETY: fcntl F_OFD_GETLK with a valid struct flock.
        assert_eq!(
            unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) },
            0
        );
        fl.l_type as i32
    }

    #[test]
    fn posix_locks_are_host_locks() {
        let (l, node, dir) = setup("posix");
        let f = dir.join("f");
        let r = l
            .setlk(node, 1, &lk_in(0, 0xa, 0, 99, WR, 0), false, 1, None)
            .unwrap();
        assert_eq!(errno(&r), 0);
        assert_eq!(host_getlk(&f, 50, 1), libc::F_WRLCK);
        assert_eq!(host_getlk(&f, 100, 1), libc::F_UNLCK);
        // Another owner conflicts; GETLK reports the range.
        let r = l
            .setlk(node, 2, &lk_in(0, 0xb, 10, 10, RD, 0), false, 1, None)
            .unwrap();
        assert_eq!(errno(&r), libc::EAGAIN);
        let r = l.getlk(node, 3, &lk_in(0, 0xb, 10, OFFSET_MAX, RD, 0));
        assert_eq!(errno(&r), 0);
        assert_eq!(u64_at(&r, 16), Some(0));
        assert_eq!(u64_at(&r, 24), Some(99));
        assert_eq!(u32_at(&r, 32), Some(WR));
        // The owner itself sees no conflict.
        let r = l.getlk(node, 4, &lk_in(0, 0xa, 10, 10, WR, 0));
        assert_eq!(u32_at(&r, 32), Some(UN));
        // FLUSH of the owner drops it.
        l.flush(node, 0xa);
        assert_eq!(host_getlk(&f, 50, 1), libc::F_UNLCK);
        // Strictness.
        let r = l
            .setlk(node, 5, &lk_in(0, 0xa, 10, 9, WR, 0), false, 1, None)
            .unwrap();
        assert_eq!(errno(&r), libc::EINVAL);
        let r = l.getlk(node, 6, &lk_in(0, 0xa, 0, 9, UN, 0));
        assert_eq!(errno(&r), libc::EINVAL);
        let r = l
            .setlk(999, 7, &lk_in(0, 0xa, 0, 9, WR, 0), false, 1, None)
            .unwrap();
        assert_ne!(errno(&r), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn setlkw_waits_and_interrupt_cancels() {
        let (l, node, dir) = setup("wait");
        let r = l
            .setlk(
                node,
                1,
                &lk_in(0, 0xa, 0, OFFSET_MAX, WR, 0),
                false,
                1,
                None,
            )
            .unwrap();
        assert_eq!(errno(&r), 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        let done: Completion = Box::new(move |r| tx2.send(r).unwrap());
        assert!(l
            .setlk(node, 2, &lk_in(0, 0xb, 5, 5, WR, 0), true, 1, Some(done))
            .is_none());
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        // Unlock: the waiter gets it.
        l.setlk(
            node,
            3,
            &lk_in(0, 0xa, 0, OFFSET_MAX, UN, 0),
            false,
            1,
            None,
        );
        let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!((errno(&r), u64_at(&r, 8)), (0, Some(2)));
        // Now 0xa waits on 0xb's byte 5 and is interrupted.
        let tx3 = tx.clone();
        let done: Completion = Box::new(move |r| tx3.send(r).unwrap());
        assert!(l
            .setlk(node, 4, &lk_in(0, 0xa, 0, 9, RD, 0), true, 1, Some(done))
            .is_none());
        assert!(!l.interrupt(99));
        assert!(l.interrupt(4));
        let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!((errno(&r), u64_at(&r, 8)), (libc::EINTR, Some(4)));
        assert_eq!(l.pending(), 0);
        // A stopped queue drops its waiters unanswered.
        let tx4 = tx.clone();
        let done: Completion = Box::new(move |r| tx4.send(r).unwrap());
        assert!(l
            .setlk(node, 6, &lk_in(0, 0xa, 0, 9, WR, 0), true, 1, Some(done))
            .is_none());
        l.stop_queue(1);
        assert_eq!(l.pending(), 0);
        // An INTERRUPT ahead of its SETLKW: the SETLKW answers EINTR
        // instead of waiting (99 was kept above as such an INTERRUPT).
        let r = l
            .setlk(node, 99, &lk_in(0, 0xa, 0, 9, WR, 0), true, 1, None)
            .unwrap();
        assert_eq!(errno(&r), libc::EAGAIN);
        assert!(!l.interrupt(8));
        let tx5 = tx.clone();
        let done: Completion = Box::new(move |r| tx5.send(r).unwrap());
        let r = l
            .setlk(node, 8, &lk_in(0, 0xa, 0, 9, WR, 0), true, 1, Some(done))
            .unwrap();
        assert_eq!((errno(&r), u64_at(&r, 8)), (libc::EINTR, Some(8)));
        assert_eq!(l.pending(), 0);
        l.forget(node);
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn strict_ranges() {
        // Past OFFSET_MAX, and a flock of less than the whole file.
        assert_eq!(
            parse_lk_in(&lk_in(3, 9, 0, OFFSET_MAX + 1, WR, 0)),
            Err(libc::EINVAL)
        );
        assert_eq!(
            parse_lk_in(&lk_in(3, 9, 0, 99, WR, FUSE_LK_FLOCK)),
            Err(libc::EINVAL)
        );
        assert_eq!(
            parse_lk_in(&lk_in(3, 9, 1, OFFSET_MAX, RD, FUSE_LK_FLOCK)),
            Err(libc::EINVAL)
        );
    }

    #[test]
    fn flock_is_separate_from_posix() {
        let (l, node, dir) = setup("flock");
        let r = l.setlk(
            node,
            1,
            &lk_in(0, 0xa, 0, OFFSET_MAX, WR, FUSE_LK_FLOCK),
            false,
            1,
            None,
        );
        assert_eq!(errno(&r.unwrap()), 0);
        // A POSIX lock of another owner does not conflict with a flock.
        let r = l.setlk(
            node,
            2,
            &lk_in(0, 0xb, 0, OFFSET_MAX, WR, 0),
            false,
            1,
            None,
        );
        assert_eq!(errno(&r.unwrap()), 0);
        let r = l.setlk(
            node,
            3,
            &lk_in(0, 0xb, 0, OFFSET_MAX, RD, FUSE_LK_FLOCK),
            false,
            1,
            None,
        );
        assert_eq!(errno(&r.unwrap()), libc::EAGAIN);
        // The host sees the flock.
        let f = File::open(dir.join("f")).unwrap();
        // SAFETY: flock on an fd we own.
        assert_ne!(
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) },
            0
        );
        l.release_flock(node, 0xa);
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) },
            0
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
