// SPDX-License-Identifier: GPL-2.0-only

//! DAX: file data read, written and mapped straight through the cache
//! window, with no guest page cache (C: fs/fuse/dax.c).
//!
//! The window is cut into 2 MiB ranges (`proto::dax` keeps their state:
//! free, busy with an owner and a chunk of its file, being reclaimed,
//! retired). A DAX inode keeps a tree of its mapped chunks. `iomap_begin`
//! finds a chunk's range, or takes a free one and asks the host to map the
//! chunk there (FUSE_SETUPMAPPING); the DAX core then copies or maps
//! through the window. A range in use by an I/O or a fault holds a
//! reference, so reclaim passes it by.
//!
//! When no range is free, a read or write reclaims one inline: an idle
//! range of its own inode first (as C), else the least recently used idle
//! range of any inode whose invalidate lock is free (past C, which waits
//! for its worker). A fault cannot reclaim under the invalidate lock it
//! holds: `iomap_begin` answers `EAGAIN`, the fault drops the lock,
//! reclaims what it can without waiting, and retries (C waits). A
//! REMOVEMAPPING that fails retires its range for the session (C reuses
//! it). Eviction gives an inode's ranges back with batched REMOVEMAPPINGs;
//! umount unmaps every range before DESTROY.
//!
//! Lock order, outermost first (lockdep checks it in the test kernel):
//!
//! 1. the inode lock (`i_rwsem`: reads shared, writes and truncation
//!    exclusive);
//! 2. the mapping's `invalidate_lock` (faults shared; reclaim, truncation,
//!    hole punching exclusive). Reclaim takes another inode's only with a
//!    trylock, so two inodes' locks are never waited for in turn;
//! 3. the inode's tree of chunks ([`InodeDax::tree`], a mutex held across
//!    SETUPMAPPING, as C's `fi->dax->sem`);
//! 4. the window's range state ([`DaxConn::ranges`], a spinlock; `igrab`
//!    of a range's owner nests `i_lock` inside it).

use crate::inode::InodeInfo;
use crate::proto::dax::{self as ranges, Counts, RangeId, Ranges, Slot};
use crate::proto::fuse::{
    abi::{Opcode, RemoveMappingOne, SetupMappingIn, Wire, FUSE_SETUPMAPPING_FLAG_WRITE},
    abi::{FUSE_DAX_SZ, FUSE_REMOVEMAPPING_MAX_ENTRY},
    request::{self, request_len},
};
use crate::ratelimit::warn_ratelimited;
use crate::session::{header, Session};
use crate::superblock::VirtioFsType;
use crate::sysfs::DaxDir;
use crate::window::WindowOps;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    bindings, dax,
    fs::{
        address_space::{self, WritebackControl},
        iomap::{self, Iomap},
        Inode,
    },
    mm::{fault, VmFault, VmFaultT, VmOperations, VmOps},
    new_condvar, new_mutex, new_spinlock,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    sync::{Arc, CondVar, CondVarTimeoutResult, Mutex, SpinLock},
    types::ARef,
    workqueue::DelayedWork,
};

/// The size of a range: `FUSE_DAX_SZ` (a `map_alignment` above it is
/// refused at INIT, so the range never needs to be larger).
const RANGE: u64 = FUSE_DAX_SZ;

/// Counters of one mount's window, shown in sysfs.
#[derive(Default)]
pub(crate) struct DaxStats {
    /// SETUPMAPPING requests sent (upgrades included).
    pub(crate) setup: AtomicU64,
    /// ... of which failed.
    pub(crate) setup_failed: AtomicU64,
    /// REMOVEMAPPING requests sent.
    pub(crate) remove: AtomicU64,
    /// ... of which failed (their ranges are retired).
    pub(crate) remove_failed: AtomicU64,
    /// Ranges reclaimed inline by a read, write or fault.
    pub(crate) reclaim_inline: AtomicU64,
    /// Ranges reclaimed by the worker.
    pub(crate) reclaim_worker: AtomicU64,
    /// Times a read, write or fault waited for a range to come back.
    pub(crate) waits: AtomicU64,
    /// Reads and writes sent as FUSE_READ/FUSE_WRITE because the host
    /// refused to map their range.
    pub(crate) fallbacks: AtomicU64,
    /// Faults answered SIGBUS because the host refused to map.
    pub(crate) fault_sigbus: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A mount's DAX window: the device, the ranges, who waits for one.
#[pin_data]
pub(crate) struct DaxConn {
    /// The reclaim worker. First field: dropping it cancels it (and waits
    /// for a run) before anything else of the window goes.
    #[pin]
    worker: DelayedWork<DaxConn>,
    /// `/sys/fs/virtiofs/<index>/dax/`, once the mount is set up; removed
    /// (waiting out readers) before the counters go.
    #[pin]
    sysfs: Mutex<Option<DaxDir>>,
    /// Set at umount: the worker stops rearming itself.
    closing: AtomicBool,
    dev: Arc<dax::DaxDevice<WindowOps>>,
    /// The state of every range.
    #[pin]
    ranges: SpinLock<Ranges<KVec<Slot>>>,
    /// Woken when a range becomes free.
    #[pin]
    freed: CondVar,
    /// What happened, for sysfs.
    pub(crate) stats: DaxStats,
}

/// What a DAX inode keeps: its mapped chunks.
#[pin_data]
pub(crate) struct InodeDax {
    /// File chunk index (offset / 2 MiB) to the range mapping it.
    #[pin]
    pub(crate) tree: Mutex<RBTree<u64, RangeId>>,
}

impl InodeDax {
    /// An empty tree.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(InodeDax {
            tree <- new_mutex!(RBTree::new(), "virtiofs_rs::InodeDax::tree"),
        })
    }
}

/// The key a range records as its owner: the inode's address, valid while
/// the range is busy (eviction takes every range of an inode back, under
/// the range lock, before the inode is freed).
fn owner_key(inode: &Inode<VirtioFsType>) -> u64 {
    inode.as_raw() as usize as u64
}

/// The window offset of range `id`.
fn moffset(id: RangeId) -> u64 {
    u64::from(id.0) * RANGE
}

impl DaxConn {
    /// The manager of `dev`'s window of `len` bytes: every whole range
    /// free.
    pub(crate) fn new(dev: Arc<dax::DaxDevice<WindowOps>>, len: u64) -> Result<Pin<KBox<Self>>> {
        let n = ranges::ranges_in_window(len, RANGE) as usize;
        let storage = KVec::from_elem(Slot::EMPTY, n, GFP_KERNEL)?;
        KBox::pin_init(
            pin_init!(DaxConn {
                worker <- DelayedWork::new(free_worker),
                sysfs <- new_mutex!(None, "virtiofs_rs::DaxConn::sysfs"),
                closing: AtomicBool::new(false),
                dev,
                ranges <- new_spinlock!(Ranges::new(storage), "virtiofs_rs::DaxConn::ranges"),
                freed <- new_condvar!("virtiofs_rs::DaxConn::freed"),
                stats: DaxStats::default(),
            }),
            GFP_KERNEL,
        )
    }

    /// The ranges' counts now.
    pub(crate) fn counts(&self) -> Counts {
        self.ranges.lock().counts()
    }

    /// FUSE_SETUPMAPPING of chunk `chunk` of `inode` at range `id`,
    /// writable if `write` (C always asks read too, for 2 MiB).
    fn setup_mapping(
        &self,
        s: &Session,
        inode: &Inode<VirtioFsType>,
        chunk: u64,
        id: RangeId,
        write: bool,
    ) -> Result {
        let nodeid = inode.data().nodeid;
        let arg = SetupMappingIn {
            fh: u64::MAX,
            foffset: chunk.checked_mul(RANGE).ok_or(EINVAL)?,
            len: RANGE,
            flags: if write { FUSE_SETUPMAPPING_FLAG_WRITE } else { 0 }
                | crate::proto::fuse::abi::FUSE_SETUPMAPPING_FLAG_READ,
            moffset: moffset(id),
        };
        inc(&self.stats.setup);
        let r = s.call(
            Opcode::Setupmapping,
            request_len(SetupMappingIn::SIZE, &[]),
            0,
            |buf, unique| {
                request::setupmapping(buf, header(Opcode::Setupmapping, unique, nodeid), &arg)
            },
        );
        if let Err(e) = r {
            inc(&self.stats.setup_failed);
            warn_ratelimited!(
                "SETUPMAPPING of node {} chunk {} failed: {:?}\n",
                nodeid,
                chunk,
                e
            );
            return Err(e);
        }
        Ok(())
    }

    /// FUSE_REMOVEMAPPING of `ids` (at most one request's worth) for node
    /// `nodeid`.
    fn remove_mappings(&self, s: &Session, nodeid: u64, ids: &[RangeId]) -> Result {
        let mut one = [RemoveMappingOne { moffset: 0, len: 0 }; 16];
        let mut big = KVec::new();
        let entries: &mut [RemoveMappingOne] = if ids.len() <= one.len() {
            &mut one[..ids.len()]
        } else {
            for _ in 0..ids.len() {
                big.push(RemoveMappingOne { moffset: 0, len: 0 }, GFP_KERNEL)?;
            }
            &mut big[..]
        };
        for (e, id) in entries.iter_mut().zip(ids) {
            *e = RemoveMappingOne {
                moffset: moffset(*id),
                len: RANGE,
            };
        }
        inc(&self.stats.remove);
        let r = s.call(
            Opcode::Removemapping,
            request_len(4 + RemoveMappingOne::SIZE * entries.len(), &[]),
            0,
            |buf, unique| {
                request::removemapping(
                    buf,
                    header(Opcode::Removemapping, unique, nodeid),
                    entries,
                )
            },
        );
        if let Err(e) = r {
            inc(&self.stats.remove_failed);
            warn_ratelimited!(
                "REMOVEMAPPING of {} range(s) of node {} failed ({:?}); retired\n",
                ids.len(),
                nodeid,
                e
            );
            return Err(e);
        }
        Ok(())
    }

    /// Shows the counters in `/sys/fs/virtiofs/<index>/dax/` until the
    /// window goes (a failure only costs the directory).
    pub(crate) fn register_sysfs(&self, index: u32) {
        // SAFETY: `self` is pinned (a `DaxConn` only exists in the box
        // `new` made) and drops its directory, waiting out readers, before
        // any counter.
        match unsafe { DaxDir::add(index, self as *const Self as *const core::ffi::c_void) } {
            Ok(dir) => *self.sysfs.lock() = Some(dir),
            Err(e) => pr_warn!("virtiofs: no dax/ in sysfs ({:?})\n", e),
        }
    }

    /// Counter `idx` of `dax/` (the order of `vfsrs_dax_names`, sysfs.c).
    fn counter(&self, idx: u32) -> u64 {
        let c = self.counts();
        let st = &self.stats;
        let atomic = |a: &AtomicU64| a.load(Ordering::Relaxed);
        match idx {
            0 => u64::from(c.total),
            1 => u64::from(c.free),
            2 => u64::from(c.busy),
            3 => u64::from(c.retired),
            4 => atomic(&st.setup),
            5 => atomic(&st.setup_failed),
            6 => atomic(&st.remove),
            7 => atomic(&st.remove_failed),
            8 => atomic(&st.reclaim_inline),
            9 => atomic(&st.reclaim_worker),
            10 => atomic(&st.fallbacks),
            11 => atomic(&st.fault_sigbus),
            12 => atomic(&st.waits),
            _ => 0,
        }
    }

    /// Starts the reclaim worker after `delay` jiffies (C's
    /// `kick_dmap_free_worker`), unless umount began.
    fn kick(&self, delay: u64) {
        if self.closing.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: A `DaxConn` only exists pinned in the box `new` made,
        // and `worker` is its first field.
        unsafe {
            self.worker
                .schedule(Pin::new_unchecked(self), delay)
        };
    }

    /// Takes a free range, if any; below 20% free the worker starts.
    fn alloc(&self) -> Option<RangeId> {
        let (id, low) = {
            let mut r = self.ranges.lock();
            let id = r.alloc();
            (id, r.below_threshold(ranges::RECLAIM_THRESHOLD_PERCENT))
        };
        if low {
            self.kick(0);
        }
        id
    }

    /// Gives back a range taken by [`DaxConn::alloc`] and not mapped.
    fn unreserve(&self, id: RangeId) {
        let _ = self.ranges.lock().unreserve(id);
        self.freed.notify_all();
    }

    /// Reclaims range `id` if it still maps chunk `chunk` of `inode` and
    /// nobody uses it: unmaps it from every process, flushes and drops
    /// its DAX entries, takes it out of the tree and asks the host to
    /// unmap it. `own` is true for the caller's own inode (its
    /// invalidate lock is waited for, as are pages pinned there);
    /// otherwise nothing is waited for. Returns whether a range was freed.
    fn reclaim_range(
        &self,
        s: &Session,
        inode: &Inode<VirtioFsType>,
        id: RangeId,
        chunk: u64,
        own: bool,
    ) -> Result<bool> {
        let mut g = if own {
            address_space::invalidate_lock(inode)
        } else {
            match address_space::try_invalidate_lock(inode) {
                Some(g) => g,
                None => return Ok(false),
            }
        };
        let start = (chunk * RANGE) as i64;
        let end = start + RANGE as i64 - 1;
        match dax::break_layouts(&mut g, start, end, own) {
            Ok(()) => {}
            Err(e) if e == EBUSY => return Ok(false),
            Err(e) => return Err(e),
        }
        // The DAX entries of the chunk: flushed (for the host to see the
        // data) and dropped, while no fault can make new ones.
        if address_space::write_and_wait_range(inode, start, end).is_err()
            || address_space::invalidate_range(inode, start, end).is_err()
        {
            return Ok(false);
        }
        let Some(dax) = inode.data().dax.as_ref() else {
            return Ok(false);
        };
        {
            let mut tree = dax.tree.lock();
            if tree.get(&chunk) != Some(&id) {
                return Ok(false);
            }
            if self.ranges.lock().begin_reclaim(id).is_err() {
                return Ok(false);
            }
            tree.remove(&chunk);
        }
        drop(g);
        let failed = self
            .remove_mappings(s, inode.data().nodeid, &[id])
            .is_err();
        let _ = self.ranges.lock().finish_reclaim(id, failed);
        self.freed.notify_all();
        Ok(!failed)
    }

    /// Frees one idle range: `inode`'s own first (waiting for its locks),
    /// then the least recently used of any inode (without waiting). With
    /// `own_wait` false nothing is waited for at all (a fault).
    fn reclaim_some(&self, s: &Session, inode: &Inode<VirtioFsType>, own_wait: bool) -> Result<bool> {
        let key = owner_key(inode);
        let mine = {
            let r = self.ranges.lock();
            r.find_idle(Some(key))
                .and_then(|id| r.mapping(id).map(|m| (id, m.chunk)))
        };
        if let Some((id, chunk)) = mine {
            if self.reclaim_range(s, inode, id, chunk, own_wait)? {
                inc(&self.stats.reclaim_inline);
                return Ok(true);
            }
        }
        let mut batch = [RangeId(0); ranges::RECLAIM_CHUNK];
        let n = self.ranges.lock().idle_batch(&mut batch);
        for &id in batch.iter().take(n) {
            let target = {
                let r = self.ranges.lock();
                match r.mapping(id) {
                    // SAFETY: A busy range's owner is an inode of ours
                    // whose eviction has not taken its ranges back (it
                    // would have under this lock), so its memory is valid;
                    // `igrab` refuses it if it is being freed.
                    Some(m) if m.refs == 0 => unsafe {
                        Inode::<VirtioFsType>::igrab(m.owner as usize as *mut bindings::inode)
                    }
                    .map(|i| (i, m.chunk)),
                    _ => None,
                }
            };
            let Some((other, chunk)) = target else {
                continue;
            };
            let freed = self.reclaim_range(s, &other, id, chunk, false);
            // The reference goes (maybe evicting the inode) with none of
            // our locks held.
            drop::<ARef<_>>(other);
            if freed? {
                inc(&self.stats.reclaim_inline);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Waits (interruptibly, at most `ms` milliseconds) for a range to be
    /// freed, if none is.
    fn wait_free(&self, ms: u32) -> Result {
        inc(&self.stats.waits);
        let mut r = self.ranges.lock();
        if r.counts().free > 0 {
            return Ok(());
        }
        // SAFETY: Pure conversion.
        let j = unsafe { bindings::__msecs_to_jiffies(ms) };
        match self.freed.wait_interruptible_timeout(&mut r, j) {
            CondVarTimeoutResult::Signal { .. } => Err(ERESTARTSYS),
            _ => Ok(()),
        }
    }

    /// For a read or write that found no free range: reclaim one, or wait
    /// a little for one.
    fn make_room(&self, s: &Session, inode: &Inode<VirtioFsType>) -> Result {
        let c = self.counts();
        if c.total == c.retired {
            warn_ratelimited!("no usable DAX range left in the window\n");
            return Err(EIO);
        }
        if self.reclaim_some(s, inode, true)? {
            return Ok(());
        }
        self.kick(0);
        self.wait_free(10)
    }

    /// Gives back every range of `inode` (being evicted: nobody uses
    /// them), with batched REMOVEMAPPINGs unless the session is over.
    pub(crate) fn evict(&self, s: &Session, inode: &Inode<VirtioFsType>) {
        let Some(dax) = inode.data().dax.as_ref() else {
            return;
        };
        let tree = core::mem::replace(&mut *dax.tree.lock(), RBTree::new());
        let mut batch = [RangeId(0); 32];
        let mut n = 0;
        let nodeid = inode.data().nodeid;
        let ended = s.is_destroyed();
        for (_, &id) in tree.iter() {
            let ok = {
                let mut r = self.ranges.lock();
                match r.state(id) {
                    // Unmapped at umount, before DESTROY.
                    Some(ranges::RangeState::Reclaiming) => {
                        let _ = r.finish_reclaim(id, false);
                        false
                    }
                    _ => r.begin_reclaim(id).is_ok(),
                }
            };
            if !ok {
                continue;
            }
            if ended {
                // The host dropped its mappings with the session.
                let _ = self.ranges.lock().finish_reclaim(id, false);
                continue;
            }
            if let Some(slot) = batch.get_mut(n) {
                *slot = id;
                n += 1;
            }
            if n == batch.len() {
                self.flush_batch(s, nodeid, &batch[..n]);
                n = 0;
            }
        }
        if n > 0 {
            self.flush_batch(s, nodeid, &batch[..n]);
        }
        self.freed.notify_all();
    }

    /// REMOVEMAPPING of reclaiming ranges `ids`, then frees them (retires
    /// them if it failed).
    fn flush_batch(&self, s: &Session, nodeid: u64, ids: &[RangeId]) {
        let failed = ids
            .chunks(FUSE_REMOVEMAPPING_MAX_ENTRY)
            .any(|c| self.remove_mappings(s, nodeid, c).is_err());
        let mut r = self.ranges.lock();
        for &id in ids {
            let _ = r.finish_reclaim(id, failed);
        }
    }

    /// At umount, before DESTROY (no file is open, nothing mapped): asks
    /// the host to unmap every busy range; the ranges stay reclaiming
    /// until their inodes are evicted.
    pub(crate) fn unmap_all(&self, s: &Session) {
        self.closing.store(true, Ordering::Release);
        self.worker.cancel_sync();
        loop {
            let mut batch = [RangeId(0); 32];
            let n = {
                let mut r = self.ranges.lock();
                let n = r.idle_batch(&mut batch);
                for &id in batch.iter().take(n) {
                    let _ = r.begin_reclaim(id);
                }
                n
            };
            if n == 0 {
                return;
            }
            let _ = self.remove_mappings(s, 0, &batch[..n]);
        }
    }
}

/// The reclaim worker (C's `fuse_dax_free_mem_worker`): frees up to
/// `RECLAIM_CHUNK` idle ranges, least recently used first, waiting for
/// their inodes' locks (it holds none of its own); runs again a jiffy
/// later while free ranges stay below the threshold and idle ones remain.
fn free_worker(d: &DaxConn) {
    let mut freed = 0;
    for _ in 0..ranges::RECLAIM_CHUNK {
        if d.closing.load(Ordering::Acquire) {
            return;
        }
        let mut batch = [RangeId(0); 1];
        let target = {
            let r = d.ranges.lock();
            if !r.below_threshold(ranges::RECLAIM_THRESHOLD_PERCENT) || r.idle_batch(&mut batch) == 0 {
                None
            } else {
                let id = batch[0];
                match r.mapping(id) {
                    // SAFETY: As in `reclaim_some`.
                    Some(m) => unsafe {
                        Inode::<VirtioFsType>::igrab(m.owner as usize as *mut bindings::inode)
                    }
                    .map(|i| (i, id, m.chunk)),
                    None => None,
                }
            }
        };
        let Some((inode, id, chunk)) = target else {
            break;
        };
        let s = inode.super_block().data();
        if let Ok(true) = d.reclaim_range(&s, &inode, id, chunk, true) {
            inc(&d.stats.reclaim_worker);
            freed += 1;
        }
        drop::<ARef<_>>(inode);
    }
    let again = {
        let r = d.ranges.lock();
        r.below_threshold(ranges::RECLAIM_THRESHOLD_PERCENT) && r.find_idle(None).is_some()
    };
    if again && freed > 0 {
        d.kick(1);
    }
}

/// `vfsrs_dax_counter()` of sysfs.h: counter `idx` of window `ctx`.
///
/// # Safety
///
/// `ctx` is a `DaxConn` registered with [`DaxConn::register_sysfs`], valid
/// until its directory is removed (sysfs.c calls this only before).
#[no_mangle]
unsafe extern "C" fn vfsrs_dax_counter(ctx: *const core::ffi::c_void, idx: core::ffi::c_uint) -> u64 {
    // SAFETY: See above.
    let d = unsafe { &*ctx.cast::<DaxConn>() };
    d.counter(idx)
}

/// Whether a regular file with attribute flags `attr_flags` uses DAX on
/// this mount (C's `fuse_should_enable_dax`).
pub(crate) fn enabled(s: &Session, attr_flags: u32) -> bool {
    use crate::proto::options::DaxMode;
    if s.dax_conn().is_none() {
        return false;
    }
    match s.dax {
        DaxMode::Never => false,
        DaxMode::Always => true,
        DaxMode::Inode | DaxMode::InodeDefault => {
            s.inode_dax() && attr_flags & crate::proto::fuse::abi::FUSE_ATTR_DAX != 0
        }
    }
}

/// Whether a DAX read or write that failed with `e` goes to the host as
/// FUSE_READ/FUSE_WRITE instead (past C): when the host refused to map
/// the range (whatever it answered), not for a signal, a bad user buffer
/// or a dead connection. Counted.
pub(crate) fn may_fall_back(inode: &Inode<VirtioFsType>, e: Error) -> bool {
    if [EINTR, ERESTARTSYS, EFAULT, EAGAIN, ENOMEM, crate::errno::enotconn()]
        .iter()
        .any(|x| *x == e)
    {
        return false;
    }
    let s = inode.super_block().data();
    match s.dax_conn() {
        Some(d) => {
            inc(&d.stats.fallbacks);
            true
        }
        None => false,
    }
}

/// The DAX window of `inode`'s mount (DAX inodes only exist with one).
fn conn<'a>(s: &'a Session) -> Result<&'a DaxConn> {
    s.dax_conn().ok_or(EIO)
}

/// Describes range `id` (mapping chunk `chunk`, referenced by the caller)
/// for the access at `pos` of `length` bytes, as C's `fuse_fill_iomap`:
/// clamped to the range and the file size (rounded up to a page for a
/// fault); past the size, a hole (and the reference goes).
#[allow(clippy::too_many_arguments)]
fn fill(
    d: &DaxConn,
    inode: &Inode<VirtioFsType>,
    iomap: &mut Iomap,
    pos: i64,
    length: i64,
    flags: u32,
    id: RangeId,
    chunk: u64,
) {
    let offset = pos as u64 - chunk * RANGE;
    let mut len = (length as u64).min(RANGE - offset) as i64;
    let size = inode.size();
    if pos.saturating_add(len) > size {
        len = size - pos;
    }
    if len <= 0 {
        let _ = d.ranges.lock().put(id);
        iomap.set_hole(pos, length as u64);
        return;
    }
    let mut len = len as u64;
    if flags & iomap::flags::FAULT != 0 {
        len = (len + PAGE_SIZE as u64 - 1) & !(PAGE_SIZE as u64 - 1);
    }
    // A write fault of a `MAP_SYNC` mapping syncs the file first
    // (`IOMAP_F_DIRTY`; the core ignores it otherwise).
    let f = if flags & iomap::flags::WRITE != 0 {
        iomap::F_DIRTY
    } else {
        0
    };
    // SAFETY: The device lives as long as the session (which holds it),
    // beyond any I/O on a file of it; the range is ours (referenced) and
    // `offset + len` stays inside it (`len <= RANGE - offset`, page
    // rounding included since ranges are page multiples).
    unsafe { iomap.set_mapped(pos, len, moffset(id) + offset, d.dev.as_raw(), f) };
    iomap.set_private(id.0 as usize + 1);
}

/// The extent operations of DAX files.
pub(crate) struct DaxIomap;

/// The table of [`DaxIomap`].
pub(crate) const DAX_IOMAP: iomap::Ops<VirtioFsType> = iomap::Ops::new::<DaxIomap>();

#[vtable]
impl iomap::Operations for DaxIomap {
    type FileSystem = VirtioFsType;

    /// As C's `fuse_iomap_begin`: a mapped chunk is used as it is (a
    /// read-only one upgraded for a write); past the end of the file is a
    /// hole; otherwise a free range is mapped (reclaiming one inline for a
    /// read or write, `EAGAIN` for a fault).
    fn begin(
        inode: &Inode<VirtioFsType>,
        pos: i64,
        length: i64,
        flags: u32,
        iomap: &mut Iomap,
    ) -> Result {
        if flags & iomap::flags::REPORT != 0 || pos < 0 || length <= 0 {
            return Err(EIO);
        }
        let s = inode.super_block().data();
        let d = conn(&s)?;
        let info: &InodeInfo = inode.data();
        let dax = info.dax.as_ref().ok_or(EIO)?;
        let write = flags & iomap::flags::WRITE != 0;
        let chunk = pos as u64 / RANGE;
        loop {
            {
                let tree = dax.tree.lock();
                if let Some(&id) = tree.get(&chunk) {
                    let writable = {
                        let mut r = d.ranges.lock();
                        let m = r.mapping(id).ok_or(EIO)?;
                        r.get(id).map_err(|_| EIO)?;
                        m.writable
                    };
                    if write && !writable {
                        // Upgrade in place, under the tree lock (C's
                        // write-locked `fi->dax->sem`).
                        if let Err(e) = d.setup_mapping(&s, inode, chunk, id, true) {
                            let _ = d.ranges.lock().put(id);
                            return Err(e);
                        }
                        let _ = d.ranges.lock().set_writable(id);
                    }
                    drop(tree);
                    fill(d, inode, iomap, pos, length, flags, id, chunk);
                    return Ok(());
                }
            }
            if pos >= inode.size() {
                iomap.set_hole(pos, length as u64);
                return Ok(());
            }
            let Some(id) = d.alloc() else {
                if flags & (iomap::flags::FAULT | iomap::flags::NOWAIT) != 0 {
                    return Err(EAGAIN);
                }
                d.make_room(&s, inode)?;
                continue;
            };
            let node = match RBTreeNode::new(chunk, id, GFP_KERNEL) {
                Ok(n) => n,
                Err(e) => {
                    d.unreserve(id);
                    return Err(e.into());
                }
            };
            let mut tree = dax.tree.lock();
            if tree.get(&chunk).is_some() {
                // Mapped by another task meanwhile.
                drop(tree);
                d.unreserve(id);
                continue;
            }
            if let Err(e) = d.setup_mapping(&s, inode, chunk, id, write) {
                drop(tree);
                d.unreserve(id);
                return Err(e);
            }
            tree.insert(node);
            {
                let mut r = d.ranges.lock();
                let _ = r.bind(id, owner_key(inode), chunk, write);
                let _ = r.get(id);
            }
            drop(tree);
            fill(d, inode, iomap, pos, length, flags, id, chunk);
            return Ok(());
        }
    }

    /// Drops the reference `begin` took.
    fn end(
        inode: &Inode<VirtioFsType>,
        _pos: i64,
        _length: i64,
        _written: isize,
        _flags: u32,
        iomap: &mut Iomap,
    ) -> Result {
        let p = iomap.private();
        if p != 0 {
            let s = inode.super_block().data();
            let d = conn(&s)?;
            let _ = d.ranges.lock().put(RangeId((p - 1) as u32));
        }
        Ok(())
    }
}

/// The page cache operations of DAX files: writeback flushes the DAX
/// entries (C's `fuse_dax_file_aops`).
pub(crate) struct DaxAops;

#[vtable]
impl address_space::Operations for DaxAops {
    type FileSystem = VirtioFsType;

    fn writepages(inode: &Inode<VirtioFsType>, wbc: &mut WritebackControl) -> Result {
        let s = inode.super_block().data();
        let d = conn(&s)?;
        dax::writeback_mapping_range(inode, &d.dev, wbc)
    }
}

/// The fault handlers of DAX mappings.
pub(crate) struct DaxVm;

/// The table of [`DaxVm`].
pub(crate) const DAX_VM_OPS: VmOps = VmOps::new::<DaxVm>();

/// A fault of `PAGE_SIZE << order` bytes, as C's `__fuse_dax_fault`, under
/// the invalidate lock shared. With no free range, the lock is dropped,
/// a range reclaimed without waiting on anything (or a short sleep), and
/// the fault retried.
fn dax_fault(vmf: &VmFault, order: u32, write: bool) -> VmFaultT {
    // SAFETY: A mapping with these handlers maps a file of ours.
    let inode = unsafe { crate::file::file_inode(vmf.file()) };
    let sb = inode.super_block();
    let _pf = write.then(|| sb.start_pagefault());
    let s = sb.data();
    let Ok(d) = conn(&s) else {
        return fault::SIGBUS;
    };
    loop {
        let g = address_space::invalidate_lock_shared(inode);
        let f = dax::iomap_fault(vmf, order, DAX_IOMAP);
        if f.ret & fault::ERROR != 0 && f.error == Some(EAGAIN) {
            drop(g);
            match d.reclaim_some(&s, inode, false) {
                Ok(true) => {}
                Ok(false) => {
                    d.kick(0);
                    inc(&d.stats.waits);
                    // SAFETY: Sleeps; no lock of ours is held.
                    unsafe { bindings::msleep(1) };
                }
                Err(_) => return fault::SIGBUS,
            }
            continue;
        }
        if f.ret & fault::SIGBUS != 0 && f.error.is_some() {
            inc(&d.stats.fault_sigbus);
        }
        let ret = if f.ret & fault::NEEDDSYNC != 0 {
            dax::finish_sync_fault(vmf, order, f.pfn)
        } else {
            f.ret
        };
        drop(g);
        return ret;
    }
}

#[vtable]
impl VmOperations for DaxVm {
    fn fault(vmf: &VmFault) -> VmFaultT {
        dax_fault(vmf, 0, vmf.is_write())
    }

    fn huge_fault(vmf: &VmFault, order: u32) -> VmFaultT {
        dax_fault(vmf, order, vmf.is_write())
    }

    fn page_mkwrite(vmf: &VmFault) -> VmFaultT {
        dax_fault(vmf, 0, true)
    }

    fn pfn_mkwrite(vmf: &VmFault) -> VmFaultT {
        dax_fault(vmf, 0, true)
    }
}

/// Before a truncation, hole punch or zeroing of `inode` from `start` to
/// `end` (inclusive): no process maps a page there any more, and none is
/// pinned (C's `fuse_dax_break_layouts`, over the whole affected range as
/// 6.12 does after its fix). The returned guard keeps faults out until
/// the caller is done.
pub(crate) fn break_layouts(
    inode: &Inode<VirtioFsType>,
    start: i64,
    end: i64,
) -> Result<address_space::InvalidateGuard<'_, VirtioFsType>> {
    let mut g = address_space::invalidate_lock(inode);
    dax::break_layouts(&mut g, start, end, true)?;
    Ok(g)
}
