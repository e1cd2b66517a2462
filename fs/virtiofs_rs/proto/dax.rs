// SPDX-License-Identifier: GPL-2.0-only

//! Bookkeeping of the DAX cache window's mapping ranges.
//!
//! The window is cut into ranges of [`range_size`] bytes (2 MiB unless the
//! server asked for a larger `map_alignment`); range `i` sits at window
//! offset `i * range_size`. This module keeps what the C driver keeps in
//! `struct fuse_dax_mapping` and the `free_ranges` / `busy_ranges` lists of
//! `struct fuse_conn_dax` (fs/fuse/dax.c), without the locking and without
//! the FUSE requests, which are the caller's. Each range is in one
//! [`RangeState`]:
//!
//! ```text
//! Free       -- alloc -------------------------> Reserved
//! Reserved   -- unreserve ---------------------> Free (free list head)
//! Reserved   -- bind --------------------------> Busy (busy list tail)
//! Busy       -- begin_reclaim -----------------> Reclaiming
//! Busy       -- release -----------------------> Free (free list tail)
//! Reclaiming -- finish_reclaim(retire: false) -> Free (free list tail)
//! Reclaiming -- finish_reclaim(retire: true) --> Retired
//! Reclaiming -- abort_reclaim -----------------> Busy (busy list tail)
//! ```
//!
//! Free ranges sit on a free list, taken from its head; Busy ranges on a
//! busy list kept in least-recently-used order (bound or touched by
//! [`Ranges::get`] last at the tail), which the reclaim walks from its head.
//! A Busy range holds a reference count of the I/Os and faults using it; C
//! starts `refcnt` at 1 for the mapping itself, here the mapping is the
//! state and `refs` counts only the users, so an idle range has `refs == 0`.
//!
//! Deliberate difference from C: a range whose REMOVEMAPPING failed is
//! [`RangeState::Retired`] and never handed out again (C puts it back on
//! the free list although the host may still map it), and it no longer
//! counts as usable for the reclaim threshold.
//!
//! Nothing here allocates: the slots live in storage the caller provides,
//! and the lists are links inside the slots. Every operation is O(1) except
//! the walks [`Ranges::find_idle`], [`Ranges::idle_batch`] and
//! [`Ranges::check`], which are bounded by the number of ranges. Every
//! misuse is a [`RangeError`], never a panic.

// Parts of the state machine the driver does not use yet (abort_reclaim,
// release, range_size for larger alignments) stay host-tested.
#![cfg_attr(CONFIG_VIRTIOFS_RS, allow(dead_code))]

use core::ops::DerefMut;

use super::fuse::abi::FUSE_DAX_SZ;

/// Free ranges below this percentage of the usable ranges start the
/// background reclaim (`FUSE_DAX_RECLAIM_THRESHOLD`, fs/fuse/dax.c).
pub const RECLAIM_THRESHOLD_PERCENT: u32 = 20;

/// How many ranges one pass of the reclaim worker frees at most
/// (`FUSE_DAX_RECLAIM_CHUNK`, fs/fuse/dax.c).
pub const RECLAIM_CHUNK: usize = 10;

/// Most ranges a [`Ranges`] manages; slots past it are left unused.
pub const MAX_RANGES: u32 = u32::MAX - 1;

/// The "no slot" link.
const NIL: u32 = u32::MAX;

/// How many whole ranges of `range_size` bytes fit in a window of
/// `window_len` bytes: 0 when `range_size` is 0, at most [`MAX_RANGES`].
pub fn ranges_in_window(window_len: u64, range_size: u64) -> u32 {
    match window_len.checked_div(range_size) {
        Some(n) => u32::try_from(n).unwrap_or(MAX_RANGES).min(MAX_RANGES),
        None => 0,
    }
}

/// The size of one range: 2 MiB (`FUSE_DAX_SZ`) or `1 << map_alignment`
/// when that is larger. INIT already refuses alignments above 21; a shift
/// that does not fit in a `u64` also yields 2 MiB.
pub fn range_size(map_alignment: Option<u16>) -> u64 {
    map_alignment
        .and_then(|shift| 1u64.checked_shl(u32::from(shift)))
        .map_or(FUSE_DAX_SZ, |size| size.max(FUSE_DAX_SZ))
}

/// Index of a range in the window (range `i` is at window offset
/// `i * range size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RangeId(pub u32);

impl RangeId {
    /// The window offset of this range for ranges of `range_size` bytes,
    /// `None` on overflow.
    pub fn offset(self, range_size: u64) -> Option<u64> {
        u64::from(self.0).checked_mul(range_size)
    }
}

/// Where a range is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeState {
    /// On the free list, mapping nothing.
    Free,
    /// Taken by [`Ranges::alloc`]; its SETUPMAPPING is in flight.
    Reserved,
    /// Mapped to a chunk of a file, on the busy list.
    Busy,
    /// Taken off the busy list for REMOVEMAPPING.
    Reclaiming,
    /// REMOVEMAPPING failed: never used again.
    Retired,
}

/// Why an operation was refused. The ranges are unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    /// No range has this id.
    BadId,
    /// The range is not in a state the operation applies to.
    WrongState,
    /// The range still has references.
    InUse,
    /// The reference count would overflow.
    RefOverflow,
    /// The range has no reference to drop.
    NoRef,
}

/// How many ranges are in each state (a snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// All ranges managed.
    pub total: u32,
    /// [`RangeState::Free`] ranges.
    pub free: u32,
    /// [`RangeState::Reserved`] ranges.
    pub reserved: u32,
    /// [`RangeState::Busy`] ranges.
    pub busy: u32,
    /// [`RangeState::Reclaiming`] ranges.
    pub reclaiming: u32,
    /// [`RangeState::Retired`] ranges.
    pub retired: u32,
}

impl Counts {
    /// The counter of ranges in `state`.
    fn of_mut(&mut self, state: RangeState) -> &mut u32 {
        match state {
            RangeState::Free => &mut self.free,
            RangeState::Reserved => &mut self.reserved,
            RangeState::Busy => &mut self.busy,
            RangeState::Reclaiming => &mut self.reclaiming,
            RangeState::Retired => &mut self.retired,
        }
    }
}

/// What a Busy or Reclaiming range maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// The caller's key of the owning inode.
    pub owner: u64,
    /// Index of the file chunk mapped (file offset / range size).
    pub chunk: u64,
    /// Whether the host mapped it writable.
    pub writable: bool,
    /// References held by I/Os and faults.
    pub refs: u32,
}

/// One range's bookkeeping. The caller provides the storage, filled with
/// [`Slot::EMPTY`]; [`Ranges::new`] initialises it.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// Life-cycle state.
    state: RangeState,
    /// Owner key (Busy and Reclaiming only).
    owner: u64,
    /// File chunk index (Busy and Reclaiming only).
    chunk: u64,
    /// Mapped writable (Busy and Reclaiming only).
    writable: bool,
    /// Users (Busy and Reclaiming only).
    refs: u32,
    /// Previous slot on the free or busy list, [`NIL`] if none.
    prev: u32,
    /// Next slot on the free or busy list, [`NIL`] if none.
    next: u32,
}

impl Slot {
    /// A slot to fill storage with.
    pub const EMPTY: Slot = Slot {
        state: RangeState::Free,
        owner: 0,
        chunk: 0,
        writable: false,
        refs: 0,
        prev: NIL,
        next: NIL,
    };
}

/// Which of the two lists.
#[derive(Clone, Copy)]
enum List {
    /// The Free ranges, taken from the head.
    Free,
    /// The Busy ranges, least recently used at the head.
    Busy,
}

/// Head and tail of a list, [`NIL`] when empty.
#[derive(Clone, Copy)]
struct Ends {
    /// First slot.
    head: u32,
    /// Last slot.
    tail: u32,
}

impl Ends {
    /// An empty list.
    const EMPTY: Ends = Ends {
        head: NIL,
        tail: NIL,
    };
}

/// The ranges of a cache window, over caller-provided slot storage.
pub struct Ranges<S> {
    /// One slot per range (slots past [`MAX_RANGES`] are unused).
    storage: S,
    /// The Free ranges.
    free: Ends,
    /// The Busy ranges, in LRU order.
    busy: Ends,
    /// Ranges per state.
    counts: Counts,
}

impl<S: DerefMut<Target = [Slot]>> Ranges<S> {
    /// Manages `storage.len()` ranges (at most [`MAX_RANGES`]), all Free,
    /// the free list in increasing id order. The slots' previous contents
    /// do not matter.
    pub fn new(mut storage: S) -> Self {
        let total = u32::try_from(storage.len())
            .unwrap_or(MAX_RANGES)
            .min(MAX_RANGES);
        let mut prev = NIL;
        for (i, slot) in (0..total).zip(storage.iter_mut()) {
            *slot = Slot {
                prev,
                next: if i.checked_add(1) == Some(total) {
                    NIL
                } else {
                    i.saturating_add(1)
                },
                ..Slot::EMPTY
            };
            prev = i;
        }
        let free = if total == 0 {
            Ends::EMPTY
        } else {
            Ends {
                head: 0,
                tail: total.saturating_sub(1),
            }
        };
        Ranges {
            storage,
            free,
            busy: Ends::EMPTY,
            counts: Counts {
                total,
                free: total,
                ..Counts::default()
            },
        }
    }

    /// How many ranges are in each state.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The state of range `id`, `None` if there is no such range.
    pub fn state(&self, id: RangeId) -> Option<RangeState> {
        self.slot(id.0).map(|s| s.state)
    }

    /// What range `id` maps, if it is Busy or Reclaiming.
    pub fn mapping(&self, id: RangeId) -> Option<Mapping> {
        let s = self.slot(id.0)?;
        match s.state {
            RangeState::Busy | RangeState::Reclaiming => Some(Mapping {
                owner: s.owner,
                chunk: s.chunk,
                writable: s.writable,
                refs: s.refs,
            }),
            _ => None,
        }
    }

    /// Takes the range at the head of the free list: Free -> Reserved.
    /// `None` if no range is free.
    pub fn alloc(&mut self) -> Option<RangeId> {
        let i = self.free.head;
        if self.slot(i)?.state != RangeState::Free {
            return None;
        }
        self.unlink(List::Free, i);
        self.set_state(i, RangeState::Reserved);
        Some(RangeId(i))
    }

    /// Reserved -> Free, back at the head of the free list (SETUPMAPPING
    /// failed, or the caller lost a race and another range serves the
    /// chunk).
    pub fn unreserve(&mut self, id: RangeId) -> Result<(), RangeError> {
        self.expect_state(id, RangeState::Reserved)?;
        self.set_state(id.0, RangeState::Free);
        self.push_head(List::Free, id.0);
        Ok(())
    }

    /// Reserved -> Busy, mapping chunk `chunk` of `owner`, with no
    /// references, at the tail (most recent end) of the busy list.
    pub fn bind(
        &mut self,
        id: RangeId,
        owner: u64,
        chunk: u64,
        writable: bool,
    ) -> Result<(), RangeError> {
        self.expect_state(id, RangeState::Reserved)?;
        if let Some(s) = self.slot_mut(id.0) {
            s.owner = owner;
            s.chunk = chunk;
            s.writable = writable;
            s.refs = 0;
        }
        self.set_state(id.0, RangeState::Busy);
        self.push_tail(List::Busy, id.0);
        Ok(())
    }

    /// Marks a Busy range writable (a second SETUPMAPPING upgraded it).
    pub fn set_writable(&mut self, id: RangeId) -> Result<(), RangeError> {
        self.expect_state(id, RangeState::Busy)?;
        if let Some(s) = self.slot_mut(id.0) {
            s.writable = true;
        }
        Ok(())
    }

    /// Takes a reference on a Busy range for an I/O or a fault, and moves
    /// it to the tail of the busy list (most recently used).
    pub fn get(&mut self, id: RangeId) -> Result<(), RangeError> {
        let refs = self.expect_state(id, RangeState::Busy)?.refs;
        let refs = refs.checked_add(1).ok_or(RangeError::RefOverflow)?;
        if let Some(s) = self.slot_mut(id.0) {
            s.refs = refs;
        }
        self.unlink(List::Busy, id.0);
        self.push_tail(List::Busy, id.0);
        Ok(())
    }

    /// Drops a reference on a Busy or Reclaiming range. The busy list
    /// order does not change.
    pub fn put(&mut self, id: RangeId) -> Result<(), RangeError> {
        let s = self.slot_mut(id.0).ok_or(RangeError::BadId)?;
        match s.state {
            RangeState::Busy | RangeState::Reclaiming => {
                s.refs = s.refs.checked_sub(1).ok_or(RangeError::NoRef)?;
                Ok(())
            }
            _ => Err(RangeError::WrongState),
        }
    }

    /// The least recently used Busy range with no references, owned by
    /// `owner` if given (C: `lookup_and_reclaim_dmap_locked()` per inode,
    /// `fuse_dax_reclaim_first_mapping()` across inodes). Changes nothing.
    pub fn find_idle(&self, owner: Option<u64>) -> Option<RangeId> {
        self.idle()
            .find(|(_, s)| match owner {
                Some(o) => s.owner == o,
                None => true,
            })
            .map(|(i, _)| RangeId(i))
    }

    /// Writes up to `out.len()` Busy ranges with no references, any owner,
    /// least recently used first, and returns how many were written (for
    /// the reclaim worker). Changes nothing.
    pub fn idle_batch(&self, out: &mut [RangeId]) -> usize {
        let mut n = 0;
        for (dst, (i, _)) in out.iter_mut().zip(self.idle()) {
            *dst = RangeId(i);
            n += 1;
        }
        n
    }

    /// Busy with no references -> Reclaiming, off the busy list; the
    /// caller then writes back, unmaps and sends REMOVEMAPPING.
    pub fn begin_reclaim(&mut self, id: RangeId) -> Result<(), RangeError> {
        if self.expect_state(id, RangeState::Busy)?.refs != 0 {
            return Err(RangeError::InUse);
        }
        self.unlink(List::Busy, id.0);
        self.set_state(id.0, RangeState::Reclaiming);
        Ok(())
    }

    /// Reclaiming with no references -> Free at the tail of the free list
    /// (REMOVEMAPPING succeeded), or -> Retired if `retire` (it failed).
    pub fn finish_reclaim(&mut self, id: RangeId, retire: bool) -> Result<(), RangeError> {
        if self.expect_state(id, RangeState::Reclaiming)?.refs != 0 {
            return Err(RangeError::InUse);
        }
        self.clear_mapping(id.0);
        if retire {
            self.set_state(id.0, RangeState::Retired);
        } else {
            self.set_state(id.0, RangeState::Free);
            self.push_tail(List::Free, id.0);
        }
        Ok(())
    }

    /// Reclaiming -> Busy again, at the tail of the busy list (the caller
    /// could not reclaim after all, e.g. writeback failed). The mapping is
    /// kept.
    pub fn abort_reclaim(&mut self, id: RangeId) -> Result<(), RangeError> {
        self.expect_state(id, RangeState::Reclaiming)?;
        self.set_state(id.0, RangeState::Busy);
        self.push_tail(List::Busy, id.0);
        Ok(())
    }

    /// Busy with no references -> Free at the tail of the free list, with
    /// no REMOVEMAPPING (its owner is gone and the host forgot the mapping,
    /// e.g. the session ended).
    pub fn release(&mut self, id: RangeId) -> Result<(), RangeError> {
        if self.expect_state(id, RangeState::Busy)?.refs != 0 {
            return Err(RangeError::InUse);
        }
        self.unlink(List::Busy, id.0);
        self.clear_mapping(id.0);
        self.set_state(id.0, RangeState::Free);
        self.push_tail(List::Free, id.0);
        Ok(())
    }

    /// Any state but Free -> Retired, whatever its references: the range
    /// is never handed out again and names no owner any more. For a caller
    /// that finds the bookkeeping of a range it must give up inconsistent
    /// (an inode going away whose range is still referenced, say): the
    /// range is lost for the session rather than left pointing at a freed
    /// owner. A Free range is refused (`WrongState`).
    pub fn force_retire(&mut self, id: RangeId) -> Result<(), RangeError> {
        let state = self.state(id).ok_or(RangeError::BadId)?;
        match state {
            RangeState::Free => return Err(RangeError::WrongState),
            RangeState::Retired => return Ok(()),
            RangeState::Busy => self.unlink(List::Busy, id.0),
            RangeState::Reserved | RangeState::Reclaiming => {}
        }
        self.clear_mapping(id.0);
        self.set_state(id.0, RangeState::Retired);
        Ok(())
    }

    /// Whether the free ranges are fewer than `percent` % of the usable
    /// (not Retired) ranges: `free * 100 < usable * percent`, exactly.
    /// False when no range is usable. C's `__kick_dmap_free_worker()`
    /// compares with a truncated `max(nr_ranges * 20 / 100, 1)` of all
    /// ranges instead, which agrees when none is retired and `nr_ranges`
    /// is below 5 or a multiple of 5.
    pub fn below_threshold(&self, percent: u32) -> bool {
        let usable = self.counts.total.saturating_sub(self.counts.retired);
        if usable == 0 {
            return false;
        }
        // Both products of two `u32` values fit in a `u64`.
        let free = u64::from(self.counts.free).saturating_mul(100);
        free < u64::from(usable).saturating_mul(u64::from(percent))
    }

    /// Verifies every invariant: each range in one state, the counts
    /// matching, the free and busy lists doubly linked, consistent, and
    /// holding exactly the Free and Busy ranges, other ranges unlinked,
    /// and references only on Busy and Reclaiming ranges. Walks are
    /// bounded, so a corrupted list cannot loop.
    pub fn check(&self) -> Result<(), &'static str> {
        let total = self.counts.total;
        let fits = usize::try_from(total).is_ok_and(|t| t <= self.storage.len());
        if total > MAX_RANGES || !fits {
            return Err("dax: more ranges than slots");
        }
        let mut seen = Counts {
            total,
            ..Counts::default()
        };
        for s in self.slots() {
            let c = seen.of_mut(s.state);
            *c = c.saturating_add(1);
            match s.state {
                RangeState::Free | RangeState::Busy => {}
                RangeState::Reserved | RangeState::Retired | RangeState::Reclaiming => {
                    if s.prev != NIL || s.next != NIL {
                        return Err("dax: unlisted range has links");
                    }
                }
            }
            match s.state {
                RangeState::Busy | RangeState::Reclaiming => {}
                _ => {
                    if s.refs != 0 {
                        return Err("dax: references on an unmapped range");
                    }
                }
            }
        }
        if seen != self.counts {
            return Err("dax: counts do not match the states");
        }
        self.check_list(List::Free, RangeState::Free, self.counts.free)?;
        self.check_list(List::Busy, RangeState::Busy, self.counts.busy)
    }

    /// Walks `list`, which must hold exactly the `count` ranges in
    /// `state`, with consistent back links and tail. Visiting at most
    /// `count` slots, each linked back to its predecessor, also proves the
    /// walk met no slot twice.
    fn check_list(&self, list: List, state: RangeState, count: u32) -> Result<(), &'static str> {
        let ends = self.ends(list);
        let mut prev = NIL;
        let mut cur = ends.head;
        let mut n: u32 = 0;
        while cur != NIL {
            if n >= count {
                return Err("dax: list longer than its count");
            }
            let s = self.slot(cur).ok_or("dax: list link out of range")?;
            if s.state != state {
                return Err("dax: list holds a range in another state");
            }
            if s.prev != prev {
                return Err("dax: list back link broken");
            }
            n = n.saturating_add(1);
            prev = cur;
            cur = s.next;
        }
        if n != count {
            return Err("dax: list shorter than its count");
        }
        if ends.tail != prev {
            return Err("dax: list tail wrong");
        }
        Ok(())
    }

    /// The managed slots.
    fn slots(&self) -> &[Slot] {
        let total = usize::try_from(self.counts.total).unwrap_or(0);
        self.storage.get(..total).unwrap_or(&[])
    }

    /// Slot `i`, if managed.
    fn slot(&self, i: u32) -> Option<&Slot> {
        self.slots().get(usize::try_from(i).ok()?)
    }

    /// Slot `i`, if managed, mutably.
    fn slot_mut(&mut self, i: u32) -> Option<&mut Slot> {
        if i >= self.counts.total {
            return None;
        }
        self.storage.get_mut(usize::try_from(i).ok()?)
    }

    /// Slot `id`, if it exists and is in `state`.
    fn expect_state(&self, id: RangeId, state: RangeState) -> Result<&Slot, RangeError> {
        let s = self.slot(id.0).ok_or(RangeError::BadId)?;
        if s.state == state {
            Ok(s)
        } else {
            Err(RangeError::WrongState)
        }
    }

    /// Moves slot `i` to `state`, keeping the counts; lists are the
    /// caller's.
    fn set_state(&mut self, i: u32, state: RangeState) {
        let Some(s) = self.slot_mut(i) else {
            return;
        };
        let old = s.state;
        s.state = state;
        let c = self.counts.of_mut(old);
        *c = c.saturating_sub(1);
        let c = self.counts.of_mut(state);
        *c = c.saturating_add(1);
    }

    /// Forgets what slot `i` mapped.
    fn clear_mapping(&mut self, i: u32) {
        if let Some(s) = self.slot_mut(i) {
            s.owner = 0;
            s.chunk = 0;
            s.writable = false;
            s.refs = 0;
        }
    }

    /// The ends of `list`.
    fn ends(&self, list: List) -> Ends {
        match list {
            List::Free => self.free,
            List::Busy => self.busy,
        }
    }

    /// The ends of `list`, mutably.
    fn ends_mut(&mut self, list: List) -> &mut Ends {
        match list {
            List::Free => &mut self.free,
            List::Busy => &mut self.busy,
        }
    }

    /// Takes slot `i` off `list`, which must hold it.
    fn unlink(&mut self, list: List, i: u32) {
        let Some(s) = self.slot_mut(i) else {
            return;
        };
        let (prev, next) = (s.prev, s.next);
        s.prev = NIL;
        s.next = NIL;
        if prev == NIL {
            self.ends_mut(list).head = next;
        } else if let Some(p) = self.slot_mut(prev) {
            p.next = next;
        }
        if next == NIL {
            self.ends_mut(list).tail = prev;
        } else if let Some(n) = self.slot_mut(next) {
            n.prev = prev;
        }
    }

    /// Puts the unlinked slot `i` at the head of `list`.
    fn push_head(&mut self, list: List, i: u32) {
        let head = self.ends(list).head;
        let Some(s) = self.slot_mut(i) else {
            return;
        };
        s.prev = NIL;
        s.next = head;
        if head == NIL {
            self.ends_mut(list).tail = i;
        } else if let Some(h) = self.slot_mut(head) {
            h.prev = i;
        }
        self.ends_mut(list).head = i;
    }

    /// Puts the unlinked slot `i` at the tail of `list`.
    fn push_tail(&mut self, list: List, i: u32) {
        let tail = self.ends(list).tail;
        let Some(s) = self.slot_mut(i) else {
            return;
        };
        s.prev = tail;
        s.next = NIL;
        if tail == NIL {
            self.ends_mut(list).head = i;
        } else if let Some(t) = self.slot_mut(tail) {
            t.next = i;
        }
        self.ends_mut(list).tail = i;
    }

    /// The idle (no references) Busy ranges, least recently used first,
    /// visiting at most as many slots as there are Busy ranges.
    fn idle(&self) -> impl Iterator<Item = (u32, &Slot)> + '_ {
        let mut cur = self.busy.head;
        let mut left = self.counts.busy;
        core::iter::from_fn(move || {
            if cur == NIL || left == 0 {
                return None;
            }
            left -= 1;
            let i = cur;
            let s = self.slot(i)?;
            cur = s.next;
            Some((i, s))
        })
        .filter(|(_, s)| s.state == RangeState::Busy && s.refs == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_retire_from_every_state() {
        let mut st = [Slot::EMPTY; 4];
        let mut r = Ranges::new(&mut st[..]);
        let (a, b, c) = (r.alloc().unwrap(), r.alloc().unwrap(), r.alloc().unwrap());
        r.bind(a, 1, 0, false).unwrap();
        r.get(a).unwrap();
        r.bind(b, 2, 0, true).unwrap();
        r.begin_reclaim(b).unwrap();
        // Busy and referenced, Reclaiming, Reserved.
        for id in [a, b, c] {
            assert_eq!(r.force_retire(id), Ok(()));
            assert_eq!(r.state(id), Some(RangeState::Retired));
            assert!(r.mapping(id).is_none());
            assert_eq!(r.check(), Ok(()));
        }
        assert_eq!(r.force_retire(a), Ok(()));
        let free = r.alloc().unwrap();
        r.unreserve(free).unwrap();
        assert_eq!(r.force_retire(free), Err(RangeError::WrongState));
        assert_eq!(r.force_retire(RangeId(9)), Err(RangeError::BadId));
        assert_eq!(r.counts().retired, 3);
        assert_eq!(r.find_idle(None), None);
    }

    #[test]
    fn ref_overflow() {
        let mut st = [Slot::EMPTY; 2];
        let mut r = Ranges::new(&mut st[..]);
        let id = r.alloc().unwrap();
        r.bind(id, 1, 0, false).unwrap();
        r.storage[0].refs = u32::MAX - 1;
        assert_eq!(r.get(id), Ok(()));
        assert_eq!(r.get(id), Err(RangeError::RefOverflow));
        assert_eq!(r.mapping(id).unwrap().refs, u32::MAX);
        assert_eq!(r.check(), Ok(()));
    }

    #[test]
    fn check_catches_corruption() {
        let mut st = [Slot::EMPTY; 4];
        let mut r = Ranges::new(&mut st[..]);
        assert_eq!(r.check(), Ok(()));

        // A cycle 0 -> 1 -> 0 on the free list terminates.
        r.storage[1].next = 0;
        assert!(r.check().is_err());
        assert_eq!(r.find_idle(None), None);
        r.storage[1].next = 2;
        assert_eq!(r.check(), Ok(()));

        // A link out of range.
        r.storage[3].next = 7;
        assert!(r.check().is_err());
        r.storage[3].next = NIL;

        // A wrong count.
        r.counts.free = 3;
        assert!(r.check().is_err());
        r.counts.free = 4;

        // A Reserved range left on a list.
        r.storage[2].state = RangeState::Reserved;
        assert!(r.check().is_err());
        r.storage[2].state = RangeState::Free;

        // References on a Free range.
        r.storage[0].refs = 1;
        assert!(r.check().is_err());
        r.storage[0].refs = 0;

        // A busy list cycling through an idle range does not hang the walk.
        let a = r.alloc().unwrap();
        let b = r.alloc().unwrap();
        r.bind(a, 1, 0, false).unwrap();
        r.bind(b, 1, 1, false).unwrap();
        assert_eq!(r.check(), Ok(()));
        r.storage[1].next = 0;
        assert!(r.check().is_err());
        let mut out = [RangeId(0); 8];
        assert_eq!(r.idle_batch(&mut out), 2);
        r.storage[1].next = NIL;

        // A wrong tail.
        r.busy.tail = 0;
        assert!(r.check().is_err());
        r.busy.tail = 1;
        assert_eq!(r.check(), Ok(()));
    }

    #[test]
    fn new_overwrites_old_contents() {
        let mut st = [Slot::EMPTY; 3];
        {
            let mut r = Ranges::new(&mut st[..]);
            let id = r.alloc().unwrap();
            r.bind(id, 5, 6, true).unwrap();
            r.get(id).unwrap();
        }
        let r = Ranges::new(&mut st[..]);
        assert_eq!(r.check(), Ok(()));
        assert_eq!(r.counts().free, 3);
    }
}
