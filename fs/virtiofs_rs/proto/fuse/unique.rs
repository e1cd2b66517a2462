// SPDX-License-Identifier: GPL-2.0-only

//! A table of in-flight requests keyed by generation-tagged unique ids.
//!
//! A unique id encodes a slot index and the slot's generation:
//! `gen << 32 | (index + 1) << 1`. Bit 0 stays clear (the /dev/fuse code
//! reserves it for INTERRUPT replies, `FUSE_INT_REQ_BIT`) and so does bit 63
//! (`FUSE_UNIQUE_RESEND`); an id is never 0 (reserved for notifications).
//! A slot's generation advances each time it is freed, so a duplicate or
//! late reply for a finished request is recognised as stale instead of
//! completing whatever request reuses the slot.
//!
//! The table does no locking and no allocation: the caller owns the slot
//! storage (any [`Slots`], such as an array or a heap slice) and serialises
//! access.

/// One slot of the table.
#[derive(Debug)]
pub struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Slot<T> {
    /// An empty slot.
    pub const fn new() -> Self {
        Slot {
            generation: 0,
            value: None,
        }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Storage for a [`UniqueTable`].
pub trait Slots {
    /// What each slot holds.
    type Item;

    /// The slots.
    fn slots(&self) -> &[Slot<Self::Item>];

    /// The slots, mutably.
    fn slots_mut(&mut self) -> &mut [Slot<Self::Item>];
}

impl<T, const N: usize> Slots for [Slot<T>; N] {
    type Item = T;

    fn slots(&self) -> &[Slot<T>] {
        self
    }

    fn slots_mut(&mut self) -> &mut [Slot<T>] {
        self
    }
}

impl<T> Slots for &mut [Slot<T>] {
    type Item = T;

    fn slots(&self) -> &[Slot<T>] {
        self
    }

    fn slots_mut(&mut self) -> &mut [Slot<T>] {
        self
    }
}

/// Generations use 31 bits so bit 63 of the id stays clear.
const GEN_MASK: u32 = 0x7fff_ffff;
/// Most slots: the index (plus one) must fit in bits 1..=31.
pub const MAX_SLOTS: usize = 0x7fff_fffe;

/// Why a unique id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueError {
    /// The id cannot have been issued by this table (reserved bits set,
    /// index 0, or index out of range).
    Unknown(u64),
    /// The slot has moved on: a late or duplicate reply.
    Stale(u64),
    /// The slot is free at that generation (never issued).
    NotInFlight(u64),
}

/// Why a table could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// The storage has no slot, or more than [`MAX_SLOTS`].
    BadSize,
}

/// In-flight requests, keyed by unique id.
#[derive(Debug)]
pub struct UniqueTable<S: Slots> {
    slots: S,
    next: usize,
    len: usize,
}

fn encode(index: usize, generation: u32) -> u64 {
    // index < MAX_SLOTS, checked at construction.
    (u64::from(generation & GEN_MASK) << 32) | (((index as u64) + 1) << 1)
}

impl<S: Slots> UniqueTable<S> {
    /// A table over `slots`, which must be empty (every slot as from
    /// [`Slot::new`]).
    pub fn new(slots: S) -> Result<Self, TableError> {
        let n = slots.slots().len();
        if n == 0 || n > MAX_SLOTS {
            return Err(TableError::BadSize);
        }
        let len = slots.slots().iter().filter(|s| s.value.is_some()).count();
        Ok(UniqueTable {
            slots,
            next: 0,
            len,
        })
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.slots().len()
    }

    /// Number of requests in flight.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` and returns its unique id, or gives `value` back when
    /// every slot is taken. Slots are handed out round-robin, so a freed
    /// slot is reused as late as possible.
    pub fn insert(&mut self, value: S::Item) -> Result<u64, S::Item> {
        let n = self.capacity();
        for i in 0..n {
            let idx = (self.next + i) % n;
            if let Some(slot) = self.slots.slots_mut().get_mut(idx) {
                if slot.value.is_none() {
                    slot.value = Some(value);
                    self.next = (idx + 1) % n;
                    self.len += 1;
                    return Ok(encode(idx, slot.generation));
                }
            }
        }
        Err(value)
    }

    fn lookup(&self, unique: u64) -> Result<usize, UniqueError> {
        if unique & 1 != 0 || unique >> 63 != 0 {
            return Err(UniqueError::Unknown(unique));
        }
        let low = (unique & 0xffff_ffff) >> 1;
        let idx = usize::try_from(low)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .ok_or(UniqueError::Unknown(unique))?;
        let slot = self
            .slots
            .slots()
            .get(idx)
            .ok_or(UniqueError::Unknown(unique))?;
        if u64::from(slot.generation & GEN_MASK) != unique >> 32 {
            return Err(UniqueError::Stale(unique));
        }
        if slot.value.is_none() {
            return Err(UniqueError::NotInFlight(unique));
        }
        Ok(idx)
    }

    /// The request with id `unique`, if in flight.
    pub fn get(&self, unique: u64) -> Result<&S::Item, UniqueError> {
        let idx = self.lookup(unique)?;
        self.slots
            .slots()
            .get(idx)
            .and_then(|s| s.value.as_ref())
            .ok_or(UniqueError::NotInFlight(unique))
    }

    /// Removes and returns the request with id `unique`; the id becomes
    /// stale.
    pub fn take(&mut self, unique: u64) -> Result<S::Item, UniqueError> {
        let idx = self.lookup(unique)?;
        let slot = self
            .slots
            .slots_mut()
            .get_mut(idx)
            .ok_or(UniqueError::Unknown(unique))?;
        let v = slot.value.take().ok_or(UniqueError::NotInFlight(unique))?;
        slot.generation = slot.generation.wrapping_add(1) & GEN_MASK;
        self.len -= 1;
        Ok(v)
    }

    /// Removes and returns any one request in flight with its id (to end
    /// them all at teardown).
    pub fn take_any(&mut self) -> Option<(u64, S::Item)> {
        let slots = self.slots.slots_mut();
        for (idx, slot) in slots.iter_mut().enumerate() {
            if let Some(v) = slot.value.take() {
                let id = encode(idx, slot.generation);
                slot.generation = slot.generation.wrapping_add(1) & GEN_MASK;
                self.len -= 1;
                return Some((id, v));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table<const N: usize>() -> UniqueTable<[Slot<u32>; N]> {
        UniqueTable::new(core::array::from_fn(|_| Slot::new())).unwrap()
    }

    #[test]
    fn insert_take() {
        let mut t = table::<4>();
        let a = t.insert(10).unwrap();
        let b = t.insert(11).unwrap();
        assert_ne!(a, b);
        assert!(a != 0 && a & 1 == 0 && a >> 63 == 0);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(a), Ok(&10));
        assert_eq!(t.take(a), Ok(10));
        assert_eq!(t.take(a), Err(UniqueError::Stale(a)));
        assert_eq!(t.get(a), Err(UniqueError::Stale(a)));
        assert_eq!(t.take(b), Ok(11));
        assert!(t.is_empty());
    }

    #[test]
    fn full_and_reuse_is_stale_safe() {
        let mut t = table::<2>();
        let a = t.insert(1).unwrap();
        let _b = t.insert(2).unwrap();
        assert_eq!(t.insert(3), Err(3));
        assert_eq!(t.take(a), Ok(1));
        let c = t.insert(3).unwrap();
        // Same slot, new generation: the old id does not complete the new
        // request.
        assert_eq!(c & 0xffff_ffff, a & 0xffff_ffff);
        assert_ne!(c, a);
        assert_eq!(t.take(a), Err(UniqueError::Stale(a)));
        assert_eq!(t.take(c), Ok(3));
    }

    #[test]
    fn forged_ids() {
        let mut t = table::<4>();
        let a = t.insert(1).unwrap();
        assert_eq!(t.take(0), Err(UniqueError::Unknown(0)));
        assert_eq!(t.take(a | 1), Err(UniqueError::Unknown(a | 1)));
        assert_eq!(t.take(a | 1 << 63), Err(UniqueError::Unknown(a | 1 << 63)));
        assert_eq!(t.take(5 << 1), Err(UniqueError::Unknown(5 << 1)));
        // Slot 1 (id 4) exists, free, generation 0.
        assert_eq!(t.take(2 << 1), Err(UniqueError::NotInFlight(4)));
        assert_eq!(
            t.take(u64::MAX - 1),
            Err(UniqueError::Unknown(u64::MAX - 1))
        );
    }

    #[test]
    fn generation_wraps_within_31_bits() {
        let mut slots = [Slot {
            generation: GEN_MASK,
            value: None,
        }];
        let mut t = UniqueTable::new(&mut slots[..]).unwrap();
        let a = t.insert(7u8).unwrap();
        assert_eq!(a >> 32, u64::from(GEN_MASK));
        assert_eq!(t.take(a), Ok(7));
        let b = t.insert(8).unwrap();
        assert_eq!(b >> 32, 0);
        assert_eq!(b, 2);
    }

    #[test]
    fn take_any_drains() {
        let mut t = table::<3>();
        let ids = [t.insert(1).unwrap(), t.insert(2).unwrap()];
        let mut seen = 0;
        while let Some((id, _)) = t.take_any() {
            assert!(ids.contains(&id));
            assert_eq!(t.take(id), Err(UniqueError::Stale(id)));
            seen += 1;
        }
        assert_eq!(seen, 2);
        assert!(t.is_empty());
    }

    #[test]
    fn bad_size() {
        let mut none: [Slot<u8>; 0] = [];
        assert_eq!(
            UniqueTable::new(&mut none[..]).unwrap_err(),
            TableError::BadSize
        );
    }
}
