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
//!    exclusive) or, for a fault, `mmap_lock` and the superblock's
//!    page-fault section;
//! 2. the mapping's `invalidate_lock` (faults shared; reclaim, truncation,
//!    hole punching exclusive). A read or write reclaiming another inode's
//!    range and a fault only try it; the worker, which holds nothing else,
//!    waits for it;
//! 3. the DAX entry lock the core holds across `iomap_begin` of a fault
//!    (so a fault never reclaims or waits for a range: `EAGAIN`, retried
//!    after the locks are dropped);
//! 4. the inode's tree of chunks ([`InodeDax::tree`], a mutex held across
//!    SETUPMAPPING and a reclaim's REMOVEMAPPING, as C's `fi->dax->sem`;
//!    the requests allocate with `memalloc_nofs` so memory reclaim never
//!    re-enters eviction, which takes tree locks, under it);
//! 5. the window's range state ([`DaxConn::ranges`], a spinlock; `igrab`
//!    of a range's owner nests `i_lock` inside it).
//!
//! SETUPMAPPING and REMOVEMAPPING are waited out whatever signal comes: a
//! range whose mapping the guest is unsure of is never handed out.

use crate::inode::InodeInfo;
use crate::proto::dax::{self as ranges, Counts, RangeId, Ranges, Slot};
use crate::proto::fuse::{
    abi::{Opcode, RemoveMappingOne, SetupMappingIn, Wire, FUSE_SETUPMAPPING_FLAG_WRITE},
    abi::{FUSE_DAX_SZ, FUSE_REMOVEMAPPING_MAX_ENTRY, FUSE_ROOT_ID},
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
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{Arc, CondVar, CondVarTimeoutResult, Mutex, SpinLock},
    types::ARef,
    workqueue::DelayedWork,
};

/// The most ranges one REMOVEMAPPING of ours names (well below
/// `FUSE_REMOVEMAPPING_MAX_ENTRY`; the entries live on the stack).
const BATCH: usize = 32;
const _: () = assert!(BATCH <= FUSE_REMOVEMAPPING_MAX_ENTRY);

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
    /// DAX faults handled.
    pub(crate) faults: AtomicU64,
    /// ... of which mapped a 2 MiB (PMD) entry.
    pub(crate) faults_pmd: AtomicU64,
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
    /// The host refused a range reaching past the end of a file (ENXIO):
    /// from then on only whole pages below the end are asked for.
    strict_eof: AtomicBool,
    dev: Arc<dax::DaxDevice<WindowOps>>,
    /// The state of every range.
    #[pin]
    ranges: SpinLock<Ranges<KVec<Slot>>>,
    /// The bytes the host mapped at each range (what REMOVEMAPPING names:
    /// the host unmaps only exactly what it mapped). Written under the
    /// owner's tree lock before the range is bound.
    lens: KVec<AtomicU64>,
    /// Woken when a range becomes free.
    #[pin]
    freed: CondVar,
    /// What happened, for sysfs.
    pub(crate) stats: DaxStats,
}

/// A mapped chunk of a file: the range holding it and how many bytes
/// from the chunk's start the host mapped (whole pages below the file's
/// end when it was mapped: the host maps nothing past EOF).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkMap {
    /// The range.
    pub(crate) id: RangeId,
    /// Bytes mapped, a page multiple in `PAGE_SIZE..=RANGE`.
    pub(crate) len: u64,
}

/// What a DAX inode keeps: its mapped chunks.
#[pin_data]
pub(crate) struct InodeDax {
    /// File chunk index (offset / 2 MiB) to its mapping.
    #[pin]
    pub(crate) tree: Mutex<RBTree<u64, ChunkMap>>,
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

/// The file offset of chunk `chunk`.
fn chunk_start(chunk: u64) -> Result<i64> {
    chunk
        .checked_mul(RANGE)
        .and_then(|o| i64::try_from(o).ok())
        .ok_or(EINVAL)
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
        let mut lens = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            lens.push(AtomicU64::new(RANGE), GFP_KERNEL)?;
        }
        KBox::pin_init(
            pin_init!(DaxConn {
                worker <- DelayedWork::new(free_worker),
                sysfs <- new_mutex!(None, "virtiofs_rs::DaxConn::sysfs"),
                closing: AtomicBool::new(false),
                strict_eof: AtomicBool::new(false),
                dev,
                ranges <- new_spinlock!(Ranges::new(storage), "virtiofs_rs::DaxConn::ranges"),
                lens,
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

    /// FUSE_SETUPMAPPING of the first `len` bytes of chunk `chunk` of
    /// `inode` at range `id`, writable if `write` (C always asks 2 MiB,
    /// read too, past the end of the file as well).
    fn setup_mapping(
        &self,
        s: &Session,
        inode: &Inode<VirtioFsType>,
        chunk: u64,
        id: RangeId,
        write: bool,
        len: u64,
    ) -> Result {
        let nodeid = inode.data().nodeid;
        let arg = SetupMappingIn {
            fh: u64::MAX,
            foffset: chunk.checked_mul(RANGE).ok_or(EINVAL)?,
            len,
            flags: if write {
                FUSE_SETUPMAPPING_FLAG_WRITE
            } else {
                0
            } | crate::proto::fuse::abi::FUSE_SETUPMAPPING_FLAG_READ,
            moffset: moffset(id),
        };
        inc(&self.stats.setup);
        // Waited out whatever signal comes: a range whose mapping outcome
        // is unknown must never be handed out again. No allocation under
        // the tree lock recurses into file system reclaim (eviction takes
        // tree locks).
        // SAFETY: Paired with the restore below, on this task.
        let nofs = unsafe { bindings::vfs_memalloc_nofs_save() };
        let r = s.call_uninterruptible(
            Opcode::Setupmapping,
            request_len(SetupMappingIn::SIZE, &[]),
            |buf, unique| {
                request::setupmapping(buf, header(Opcode::Setupmapping, unique, nodeid), &arg)
            },
        );
        // SAFETY: Restores what the save above returned.
        unsafe { bindings::vfs_memalloc_nofs_restore(nofs) };
        if let Err(e) = r {
            inc(&self.stats.setup_failed);
            if e == ENXIO {
                // Past the end of the file: expected on a host that maps
                // only what lies inside the file.
                return Err(e);
            }
            warn_ratelimited!(
                "SETUPMAPPING of node {} chunk {} failed: {:?}\n",
                nodeid,
                chunk,
                e
            );
            // A host's errno that means something else locally (retry,
            // signal, bad buffer) is a plain failure here.
            if [EAGAIN, EINTR, ERESTARTSYS, ENOMEM, EFAULT].contains(&e) {
                return Err(EIO);
            }
            return Err(e);
        }
        Ok(())
    }

    /// FUSE_REMOVEMAPPING of `ids` (at most [`BATCH`] of them) for node
    /// `nodeid`, waited out whatever signal comes (a range whose unmapping
    /// is unknown is retired by the caller).
    fn remove_mappings(&self, s: &Session, nodeid: u64, ids: &[RangeId]) -> Result {
        let mut all = [RemoveMappingOne { moffset: 0, len: 0 }; BATCH];
        let Some(entries) = all.get_mut(..ids.len()) else {
            return Err(EINVAL);
        };
        for (e, id) in entries.iter_mut().zip(ids) {
            *e = RemoveMappingOne {
                moffset: moffset(*id),
                len: self.mapped_len(*id),
            };
        }
        inc(&self.stats.remove);
        // SAFETY: Paired with the restore below, on this task.
        let nofs = unsafe { bindings::vfs_memalloc_nofs_save() };
        let r = s.call_uninterruptible(
            Opcode::Removemapping,
            request_len(4 + RemoveMappingOne::SIZE * entries.len(), &[]),
            |buf, unique| {
                request::removemapping(buf, header(Opcode::Removemapping, unique, nodeid), entries)
            },
        );
        // SAFETY: Restores what the save above returned.
        unsafe { bindings::vfs_memalloc_nofs_restore(nofs) };
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
            13 => atomic(&st.faults),
            14 => atomic(&st.faults_pmd),
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
        unsafe { self.worker.schedule(Pin::new_unchecked(self), delay) };
    }

    /// The bytes the host mapped at range `id`.
    fn mapped_len(&self, id: RangeId) -> u64 {
        self.lens
            .get(id.0 as usize)
            .map_or(RANGE, |l| l.load(Ordering::Acquire))
    }

    /// Records that the host mapped `len` bytes at range `id`.
    fn set_mapped_len(&self, id: RangeId, len: u64) {
        if let Some(l) = self.lens.get(id.0 as usize) {
            l.store(len, Ordering::Release);
        }
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
    /// unmap it. With `lock_wait` the inode's invalidate lock is waited
    /// for (else only tried); with `pin_wait` pages pinned in the chunk
    /// are waited for (else the range is skipped). Returns whether a
    /// range was freed.
    fn reclaim_range(
        &self,
        s: &Session,
        inode: &Inode<VirtioFsType>,
        id: RangeId,
        chunk: u64,
        lock_wait: bool,
        pin_wait: bool,
    ) -> Result<bool> {
        let mut g = if lock_wait {
            address_space::invalidate_lock(inode)
        } else {
            match address_space::try_invalidate_lock(inode) {
                Some(g) => g,
                None => return Ok(false),
            }
        };
        let start = chunk_start(chunk)?;
        let end = start + RANGE as i64 - 1;
        match dax::break_layouts(&mut g, start, end, pin_wait) {
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
        // The tree stays locked until the host has unmapped the range (as
        // C holds `fi->dax->sem`): the chunk is never mapped at a second
        // range while the first still maps it.
        let mut tree = dax.tree.lock();
        if tree.get(&chunk).map(|c| c.id) != Some(id) {
            return Ok(false);
        }
        if self.ranges.lock().begin_reclaim(id).is_err() {
            return Ok(false);
        }
        tree.remove(&chunk);
        let failed = self.remove_mappings(s, inode.data().nodeid, &[id]).is_err();
        self.finish(id, failed);
        drop(tree);
        drop(g);
        self.freed.notify_all();
        Ok(!failed)
    }

    /// Ends the reclaim of `id` (retired if its REMOVEMAPPING `failed`);
    /// bookkeeping that does not allow it loses the range for the session
    /// rather than leave it naming an owner.
    fn finish(&self, id: RangeId, failed: bool) {
        let mut r = self.ranges.lock();
        if r.finish_reclaim(id, failed).is_err() {
            let _ = r.force_retire(id);
            drop(r);
            warn_ratelimited!("DAX range {} in an unexpected state; retired\n", id.0);
        }
    }

    /// The owner (referenced) and chunk of `id` if it is busy and idle.
    ///
    /// A busy range's owner is an inode of ours whose eviction has not
    /// taken its ranges back: eviction takes every range of the inode out
    /// of the busy state under the ranges lock (held here) before the inode
    /// is freed, retiring any it cannot reclaim. So the owner's memory is
    /// valid here, and `igrab` refuses an inode being freed.
    fn idle_owner(&self, id: RangeId) -> Option<(ARef<Inode<VirtioFsType>>, u64)> {
        let r = self.ranges.lock();
        if r.state(id) != Some(ranges::RangeState::Busy) {
            return None;
        }
        let m = r.mapping(id).filter(|m| m.refs == 0)?;
        // SAFETY: See above.
        let inode =
            unsafe { Inode::<VirtioFsType>::igrab(m.owner as usize as *mut bindings::inode) }?;
        Some((inode, m.chunk))
    }

    /// Frees one idle range for a read or write of `inode`: its own first
    /// (waiting for its locks, as C), else the least recently used idle
    /// range of another inode whose invalidate lock is free (past C).
    fn reclaim_some(&self, s: &Session, inode: &Inode<VirtioFsType>) -> Result<bool> {
        let key = owner_key(inode);
        let mine = {
            let r = self.ranges.lock();
            r.find_idle(Some(key))
                .and_then(|id| r.mapping(id).map(|m| (id, m.chunk)))
        };
        if let Some((id, chunk)) = mine {
            if self.reclaim_range(s, inode, id, chunk, true, true)? {
                inc(&self.stats.reclaim_inline);
                return Ok(true);
            }
        }
        let mut batch = [RangeId(0); ranges::RECLAIM_CHUNK];
        let n = self.ranges.lock().idle_batch(&mut batch);
        for &id in batch.iter().take(n) {
            let Some((other, chunk)) = self.idle_owner(id) else {
                continue;
            };
            let freed = self.reclaim_range(s, &other, id, chunk, false, false);
            // The reference goes (maybe evicting the inode) with no lock of
            // the window held.
            drop::<ARef<_>>(other);
            if freed? {
                inc(&self.stats.reclaim_inline);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Waits (killably, at most `ms` milliseconds) for a range to be
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

    /// Whether every range is retired (nothing can ever be mapped).
    fn exhausted(&self) -> bool {
        let c = self.counts();
        c.total == c.retired
    }

    /// For a read or write that found no free range: reclaim one, or wait
    /// a little for one.
    fn make_room(&self, s: &Session, inode: &Inode<VirtioFsType>) -> Result {
        if self.exhausted() {
            warn_ratelimited!("no usable DAX range left in the window\n");
            return Err(ENXIO);
        }
        if self.reclaim_some(s, inode)? {
            return Ok(());
        }
        self.kick(0);
        self.wait_free(10)
    }

    /// Gives back every range of `inode` (being evicted: nobody uses
    /// them), with batched REMOVEMAPPINGs unless the session is over. A
    /// range that cannot be reclaimed is retired, so no range names the
    /// inode once it is freed.
    pub(crate) fn evict(&self, s: &Session, inode: &Inode<VirtioFsType>) {
        let Some(dax) = inode.data().dax.as_ref() else {
            return;
        };
        let tree = core::mem::take(&mut *dax.tree.lock());
        let mut batch = [RangeId(0); BATCH];
        let mut n = 0;
        let nodeid = inode.data().nodeid;
        let ended = s.is_destroyed();
        for (_, &ChunkMap { id, .. }) in tree.iter() {
            let ok = {
                let mut r = self.ranges.lock();
                match r.state(id) {
                    // Unmapped at umount, before DESTROY.
                    Some(ranges::RangeState::Reclaiming) => {
                        if r.finish_reclaim(id, false).is_err() {
                            let _ = r.force_retire(id);
                        }
                        false
                    }
                    _ => {
                        let ok = r.begin_reclaim(id).is_ok();
                        if !ok {
                            let _ = r.force_retire(id);
                        }
                        ok
                    }
                }
            };
            if !ok {
                continue;
            }
            if ended {
                // The host dropped its mappings with the session.
                self.finish(id, false);
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
        if let Some(rest) = batch.get(..n).filter(|b| !b.is_empty()) {
            self.flush_batch(s, nodeid, rest);
        }
        self.freed.notify_all();
    }

    /// REMOVEMAPPING of reclaiming ranges `ids`, then frees them (retires
    /// them if it failed).
    fn flush_batch(&self, s: &Session, nodeid: u64, ids: &[RangeId]) {
        let failed = self.remove_mappings(s, nodeid, ids).is_err();
        for &id in ids {
            self.finish(id, failed);
        }
    }

    /// At umount, before DESTROY (no file is open, nothing mapped): stops
    /// the worker, removes `dax/` from sysfs, and asks the host to unmap
    /// every busy range; the ranges stay reclaiming until their inodes are
    /// evicted.
    pub(crate) fn unmap_all(&self, s: &Session) {
        self.closing.store(true, Ordering::Release);
        self.worker.cancel_sync();
        drop(self.sysfs.lock().take());
        loop {
            let mut batch = [RangeId(0); BATCH];
            let n = {
                let mut r = self.ranges.lock();
                let n = r.idle_batch(&mut batch);
                for &id in batch.iter().take(n) {
                    let _ = r.begin_reclaim(id);
                }
                n
            };
            let Some(ids) = batch.get(..n).filter(|b| !b.is_empty()) else {
                return;
            };
            let _ = self.remove_mappings(s, FUSE_ROOT_ID, ids);
        }
    }
}

/// The reclaim worker (C's `fuse_dax_free_mem_worker`): frees up to
/// `RECLAIM_CHUNK` idle ranges, least recently used first, waiting for
/// their inodes' invalidate locks (it holds none of its own) but not for
/// pinned pages (a long pin must not hold up umount, which cancels the
/// worker); runs again a jiffy later while free ranges stay below the
/// threshold and idle ones remain.
fn free_worker(d: &DaxConn) {
    let mut freed = 0;
    for _ in 0..ranges::RECLAIM_CHUNK {
        if d.closing.load(Ordering::Acquire) {
            return;
        }
        let mut batch = [RangeId(0); 1];
        let id = {
            let r = d.ranges.lock();
            if !r.below_threshold(ranges::RECLAIM_THRESHOLD_PERCENT)
                || r.idle_batch(&mut batch) == 0
            {
                break;
            }
            batch[0]
        };
        let Some((inode, chunk)) = d.idle_owner(id) else {
            break;
        };
        let s = inode.super_block().data();
        if let Ok(true) = d.reclaim_range(&s, &inode, id, chunk, true, false) {
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
unsafe extern "C" fn vfsrs_dax_counter(
    ctx: *const core::ffi::c_void,
    idx: core::ffi::c_uint,
) -> u64 {
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
    if [
        EINTR,
        ERESTARTSYS,
        EFAULT,
        EAGAIN,
        ENOMEM,
        crate::errno::enotconn(),
    ]
    .contains(&e)
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

/// Whether `pos` of `inode` lies where the host cannot map it (a partial
/// last page, on a host that maps nothing past the end of a file): where a
/// DAX read or write that stopped short goes on as FUSE_READ/FUSE_WRITE.
pub(crate) fn unmappable_at(inode: &Inode<VirtioFsType>, pos: i64) -> bool {
    let size = inode.size();
    if pos < 0 || pos >= size {
        return false;
    }
    let (chunk, offset) = (pos as u64 / RANGE, pos as u64 % RANGE);
    offset >= mappable(size, chunk)
}

/// Counts a read or write finished as FUSE_READ/FUSE_WRITE after DAX
/// stopped short (at a partial last page).
pub(crate) fn count_fallback(inode: &Inode<VirtioFsType>) {
    if let Some(d) = inode.super_block().data().dax_conn() {
        inc(&d.stats.fallbacks);
    }
}

/// The DAX window of `inode`'s mount (DAX inodes only exist with one).
fn conn<'a>(s: &'a Session) -> Result<&'a DaxConn> {
    s.dax_conn().ok_or(EIO)
}

/// The bytes of chunk `chunk` the host can map for a file of `size`
/// bytes: whole pages below the end of the file, at most a range (the
/// host maps nothing past EOF, and a partial last page not at all).
fn mappable(size: i64, chunk: u64) -> u64 {
    let start = chunk.saturating_mul(RANGE);
    let left = (size.max(0) as u64).saturating_sub(start).min(RANGE);
    left & !(PAGE_SIZE as u64 - 1)
}

/// Describes chunk `chunk`'s mapping `m` (referenced by the caller) for
/// the access at `pos` (inside what `m` maps) of `length` bytes, as C's
/// `fuse_fill_iomap`: clamped to the mapping and the file size (rounded up
/// to a page for a fault); past the size, a hole for a read and `ENXIO`
/// for a write (the reference goes).
#[allow(clippy::too_many_arguments)]
fn fill(
    d: &DaxConn,
    inode: &Inode<VirtioFsType>,
    iomap: &mut Iomap,
    pos: i64,
    length: i64,
    flags: u32,
    m: ChunkMap,
    chunk: u64,
) -> Result {
    let id = m.id;
    let offset = (pos as u64).saturating_sub(chunk.saturating_mul(RANGE));
    let mut len = (length as u64).min(m.len.saturating_sub(offset)) as i64;
    let size = inode.size();
    if pos.saturating_add(len) > size {
        len = size - pos;
    }
    if len <= 0 {
        let _ = d.ranges.lock().put(id);
        if flags & iomap::flags::WRITE != 0 {
            // The size shrank under us (a host reply): no hole for a write
            // (the DAX core warns); it goes as FUSE_WRITE instead.
            return Err(ENXIO);
        }
        iomap.set_hole(pos, length as u64);
        return Ok(());
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
    // `offset + len` stays inside what the host mapped (`len <= m.len -
    // offset`, page rounding included since `m.len` is a page multiple).
    unsafe { iomap.set_mapped(pos, len, moffset(id) + offset, d.dev.as_raw(), f) };
    iomap.set_private(id.0 as usize + 1);
    Ok(())
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
        let wait_ok = flags & (iomap::flags::FAULT | iomap::flags::NOWAIT) == 0;
        let chunk = pos as u64 / RANGE;
        let offset = pos as u64 % RANGE;
        let mut regrown = false;
        loop {
            // SAFETY: Reads the current task's signal state.
            if wait_ok && unsafe { bindings::vfs_fatal_signal_pending() } {
                return Err(EINTR);
            }
            let size = inode.size();
            // What the host can surely map of the chunk now: whole pages
            // below the end of the file.
            let want = mappable(size, chunk);
            {
                let tree = dax.tree.lock();
                if let Some(&m) = tree.get(&chunk) {
                    if offset >= m.len {
                        drop(tree);
                        if pos >= size && !write {
                            iomap.set_hole(pos, length as u64);
                            return Ok(());
                        }
                        if pos >= size || offset >= want || regrown {
                            // Past the end, or a partial last page the host
                            // cannot map: FUSE_READ/FUSE_WRITE instead.
                            return Err(ENXIO);
                        }
                        // The file grew past what is mapped (and what this
                        // access needs can be mapped now): map it again,
                        // once.
                        if !wait_ok {
                            return Err(EAGAIN);
                        }
                        if !d.reclaim_range(&s, inode, m.id, chunk, true, true)? {
                            // In use meanwhile: this I/O goes without DAX.
                            return Err(ENXIO);
                        }
                        regrown = true;
                        continue;
                    }
                    let writable = {
                        let mut r = d.ranges.lock();
                        let rm = r.mapping(m.id).ok_or(EIO)?;
                        r.get(m.id).map_err(|_| EIO)?;
                        rm.writable
                    };
                    if write && !writable {
                        // Upgrade in place, under the tree lock (C's
                        // write-locked `fi->dax->sem`).
                        if let Err(e) = d.setup_mapping(&s, inode, chunk, m.id, true, m.len) {
                            let _ = d.ranges.lock().put(m.id);
                            return Err(e);
                        }
                        let _ = d.ranges.lock().set_writable(m.id);
                    }
                    drop(tree);
                    return fill(d, inode, iomap, pos, length, flags, m, chunk);
                }
            }
            if pos >= size {
                if write {
                    // A write at or past the end goes as FUSE_WRITE.
                    return Err(ENXIO);
                }
                iomap.set_hole(pos, length as u64);
                return Ok(());
            }
            let strict = d.strict_eof.load(Ordering::Relaxed);
            if strict && want == 0 {
                // Only a partial page here: nothing to map on this host.
                return Err(ENXIO);
            }
            let Some(id) = d.alloc() else {
                if !wait_ok {
                    return Err(EAGAIN);
                }
                d.make_room(&s, inode)?;
                continue;
            };
            let reservation = match RBTreeNodeReservation::new(GFP_KERNEL) {
                Ok(n) => n,
                Err(e) => {
                    d.unreserve(id);
                    return Err(e);
                }
            };
            let mut tree = dax.tree.lock();
            if tree.get(&chunk).is_some() {
                // Mapped by another task meanwhile.
                drop(tree);
                d.unreserve(id);
                continue;
            }
            // The whole range first (a host that maps past the end of the
            // file lets the partial last page be mapped too); once the host
            // refused that (ENXIO), the whole pages below the end.
            let mut len = if strict { want.min(RANGE) } else { RANGE };
            let mut r = d.setup_mapping(&s, inode, chunk, id, write, len);
            if !strict && want < RANGE && matches!(r, Err(e) if e == ENXIO) {
                d.strict_eof.store(true, Ordering::Relaxed);
                if want > 0 {
                    len = want;
                    r = d.setup_mapping(&s, inode, chunk, id, write, len);
                }
            }
            if let Err(e) = r {
                drop(tree);
                d.unreserve(id);
                return Err(e);
            }
            let m = ChunkMap { id, len };
            d.set_mapped_len(id, len);
            tree.insert(reservation.into_node(chunk, m));
            // The access itself may lie in the partial last page: the
            // mapping stays for the pages below, this access falls back.
            let usable = offset < len;
            {
                let mut r = d.ranges.lock();
                let _ = r.bind(id, owner_key(inode), chunk, write);
                if usable {
                    let _ = r.get(id);
                }
            }
            drop(tree);
            if !usable {
                return Err(ENXIO);
            }
            return fill(d, inode, iomap, pos, length, flags, m, chunk);
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
/// the worker kicked, and the fault retried a millisecond later (SIGBUS
/// once the task is killed or every range is retired).
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
        // SAFETY: The mapping maps a file of ours (these handlers are only
        // installed by `DaxFile`'s mmap).
        let f = unsafe { dax::iomap_fault(vmf, order, DAX_IOMAP) };
        if f.ret & fault::ERROR != 0 && f.error == Some(EAGAIN) {
            drop(g);
            // The chunk may be mapped short of a grown file: map it again
            // (without waiting on anything: the fault holds `mmap_lock`).
            let chunk = vmf.pgoff().saturating_mul(PAGE_SIZE as u64) / RANGE;
            if let Some(m) = inode
                .data()
                .dax
                .as_ref()
                .and_then(|x| x.tree.lock().get(&chunk).copied())
            {
                if let Ok(true) = d.reclaim_range(&s, inode, m.id, chunk, false, false) {
                    continue;
                }
            }
            // No free range: as C, the worker frees one while the fault
            // waits (killably here; C waits uninterruptibly).
            // SAFETY: Reads the current task's signal state.
            if d.exhausted() || unsafe { bindings::vfs_fatal_signal_pending() } {
                inc(&d.stats.fault_sigbus);
                return fault::SIGBUS;
            }
            d.kick(0);
            inc(&d.stats.waits);
            // SAFETY: Sleeps a millisecond; the fault holds `mmap_lock`
            // (read) and maybe the superblock's page-fault section, which
            // the worker, reclaiming with trylocks of no such lock, never
            // waits for.
            unsafe { bindings::msleep(1) };
            continue;
        }
        inc(&d.stats.faults);
        if f.ret & fault::SIGBUS != 0 && f.error.is_some() {
            inc(&d.stats.fault_sigbus);
        }
        if order > 0 && f.ret & fault::NOPAGE != 0 {
            inc(&d.stats.faults_pmd);
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
