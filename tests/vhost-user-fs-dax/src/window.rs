// SPDX-License-Identifier: GPL-2.0-only
//! Bookkeeping of the DAX cache window: which window ranges are mapped to which file ranges.
//!
//! Pure logic with no I/O, so it is unit- and property-tested on the host. The daemon holds one
//! [`Window`] behind a mutex; every FUSE_SETUPMAPPING / FUSE_REMOVEMAPPING is checked here
//! *before* any SHMEM_MAP / SHMEM_UNMAP is sent to QEMU, and the table is only changed after
//! QEMU acknowledged the request.
//!
//! The guest is untrusted: every offset, length, flag and count is checked, and a request that
//! fails a check gets an errno, never a mapping outside the window.

use std::collections::BTreeMap;

/// Granule of every offset and length: the host page size (4 KiB on x86-64).
pub const PAGE_SIZE: u64 = 4096;

/// FUSE_SETUPMAPPING_FLAG_WRITE (include/uapi/linux/fuse.h).
pub const SETUPMAPPING_FLAG_WRITE: u64 = 1 << 0;
/// FUSE_SETUPMAPPING_FLAG_READ (include/uapi/linux/fuse.h).
pub const SETUPMAPPING_FLAG_READ: u64 = 1 << 1;
/// Every flag the protocol (7.41) defines for SETUPMAPPING.
pub const SETUPMAPPING_KNOWN_FLAGS: u64 = SETUPMAPPING_FLAG_WRITE | SETUPMAPPING_FLAG_READ;

/// Most entries accepted in one FUSE_REMOVEMAPPING. The C guest never sends more than
/// `PAGE_SIZE / sizeof(fuse_removemapping_one)` = 256 (fs/fuse/dax.c, FUSE_REMOVEMAPPING_MAX_ENTRY).
pub const REMOVEMAPPING_MAX_ENTRIES: u32 = (PAGE_SIZE / 16) as u32;

/// Identity of the file behind a mapping: `(st_dev, st_ino)` of the fd handed to QEMU.
pub type FileId = (u64, u64);

/// Why a mapping request is refused. Each maps to the errno the guest receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowError {
    /// `len` is zero.
    ZeroLength,
    /// An offset or the length is not a multiple of [`PAGE_SIZE`].
    Misaligned,
    /// Unknown bits in `flags`.
    UnknownFlags,
    /// `moffset + len` overflows or lies past the end of the window;
    /// or `foffset + len` overflows.
    OutOfWindow,
    /// The range overlaps a live mapping (and is not an identical re-map of it).
    Overlap,
    /// A REMOVEMAPPING entry covers part of a live mapping, or several.
    PartialRemove,
    /// A REMOVEMAPPING count is zero, too large, or disagrees with the message length.
    BadCount,
}

impl WindowError {
    /// The errno sent to the guest (positive).
    pub fn errno(self) -> i32 {
        match self {
            WindowError::ZeroLength
            | WindowError::Misaligned
            | WindowError::UnknownFlags
            | WindowError::PartialRemove
            | WindowError::BadCount => libc::EINVAL,
            WindowError::OutOfWindow => libc::ERANGE,
            WindowError::Overlap => libc::EBUSY,
        }
    }
}

/// A live mapping of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// Offset in the file.
    pub foffset: u64,
    /// Length the guest asked for (what it will remove later).
    pub len: u64,
    /// Length actually mapped by QEMU (`<= len`; shorter when the file ends inside the range,
    /// see README "maps past EOF").
    pub mapped_len: u64,
    /// File identity.
    pub file: FileId,
    /// Whether the guest asked for write access at least once.
    pub writable: bool,
}

/// What [`Window::check_map`] decided for a SETUPMAPPING.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapAction {
    /// Nothing is mapped there: send SHMEM_MAP.
    New,
    /// The identical range of the identical file is already mapped (the C guest's read-only to
    /// writable upgrade, or a repeat). The existing mapping is returned.
    Existing(Mapping),
}

/// The window and its live mappings, keyed by window offset.
///
/// # Invariants
/// Live ranges `[moffset, moffset + len)` are page aligned, non-empty, inside `[0, size)` and
/// pairwise disjoint.
#[derive(Debug)]
pub struct Window {
    size: u64,
    live: BTreeMap<u64, Mapping>,
}

/// `true` if `v` is a multiple of [`PAGE_SIZE`].
fn aligned(v: u64) -> bool {
    v.is_multiple_of(PAGE_SIZE)
}

impl Window {
    /// A window of `size` bytes (must be page aligned; checked by the CLI).
    pub fn new(size: u64) -> Self {
        Window {
            size,
            live: BTreeMap::new(),
        }
    }

    /// Window size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of live mappings.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Iterates live mappings in window order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Mapping)> {
        self.live.iter().map(|(k, v)| (*k, v))
    }

    /// Shape checks shared by map and unmap: non-empty, aligned, inside the window.
    fn check_range(&self, moffset: u64, len: u64) -> Result<(), WindowError> {
        if len == 0 {
            return Err(WindowError::ZeroLength);
        }
        if !aligned(moffset) || !aligned(len) {
            return Err(WindowError::Misaligned);
        }
        match moffset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(WindowError::OutOfWindow),
        }
    }

    /// Live mappings intersecting `[moffset, moffset + len)` (caller checked the range).
    fn overlapping(&self, moffset: u64, len: u64) -> impl Iterator<Item = (u64, &Mapping)> {
        let end = moffset + len;
        // The only mapping starting before `moffset` that can reach into the range is the
        // last one starting before it (ranges are disjoint).
        let before = self
            .live
            .range(..moffset)
            .next_back()
            .filter(move |(k, m)| **k + m.len > moffset);
        before
            .into_iter()
            .chain(self.live.range(moffset..end))
            .map(|(k, v)| (*k, v))
    }

    /// Validates a SETUPMAPPING of `file` and decides what to do. Does not change the table.
    pub fn check_map(
        &self,
        foffset: u64,
        moffset: u64,
        len: u64,
        flags: u64,
        file: FileId,
    ) -> Result<MapAction, WindowError> {
        if flags & !SETUPMAPPING_KNOWN_FLAGS != 0 {
            return Err(WindowError::UnknownFlags);
        }
        self.check_range(moffset, len)?;
        if !aligned(foffset) {
            return Err(WindowError::Misaligned);
        }
        if foffset.checked_add(len).is_none() {
            return Err(WindowError::OutOfWindow);
        }
        let mut hits = self.overlapping(moffset, len);
        match (hits.next(), hits.next()) {
            (None, _) => Ok(MapAction::New),
            (Some((k, m)), None)
                if k == moffset && m.len == len && m.foffset == foffset && m.file == file =>
            {
                Ok(MapAction::Existing(*m))
            }
            _ => Err(WindowError::Overlap),
        }
    }

    /// Records a mapping QEMU acknowledged (after [`Window::check_map`] returned
    /// [`MapAction::New`], or replaces an existing identical one).
    pub fn insert(&mut self, moffset: u64, mapping: Mapping) {
        debug_assert!(mapping.mapped_len <= mapping.len && mapping.mapped_len > 0);
        self.live.insert(moffset, mapping);
    }

    /// Validates one REMOVEMAPPING entry. `Ok(Some(m))`: exactly the live mapping `m` goes;
    /// `Ok(None)`: nothing is mapped there (a no-op, e.g. a mapping whose SHMEM_MAP failed).
    pub fn check_unmap(&self, moffset: u64, len: u64) -> Result<Option<Mapping>, WindowError> {
        self.check_range(moffset, len)?;
        let mut hits = self.overlapping(moffset, len);
        match (hits.next(), hits.next()) {
            (None, _) => Ok(None),
            (Some((k, m)), None) if k == moffset && m.len == len => Ok(Some(*m)),
            _ => Err(WindowError::PartialRemove),
        }
    }

    /// Forgets the mapping at `moffset` (after QEMU acknowledged SHMEM_UNMAP).
    pub fn remove(&mut self, moffset: u64) -> Option<Mapping> {
        self.live.remove(&moffset)
    }

    /// Forgets every mapping (device reset, disconnect).
    pub fn clear(&mut self) {
        self.live.clear();
    }
}

/// Checks a REMOVEMAPPING message body: `count` entries of 16 bytes follow the 4-byte
/// `fuse_removemapping_in`, and `body_len` is what the message really carries after the
/// `fuse_in_header`.
pub fn check_removemapping_count(count: u32, body_len: usize) -> Result<(), WindowError> {
    if count == 0 || count > REMOVEMAPPING_MAX_ENTRIES {
        return Err(WindowError::BadCount);
    }
    let need = 4 + 16 * count as usize;
    if body_len < need {
        return Err(WindowError::BadCount);
    }
    Ok(())
}

/// Whether `[foffset, foffset + len)` lies inside a file of `file_size` bytes: the only
/// mappings this host makes.
///
/// QEMU refuses a mapping whose end lies past EOF ("backing store size ... is too small").
/// Mapping less than asked while answering success would leave the rest of the guest's range
/// unmapped, so a later read there (after the file grew) returns wrong data: a request that
/// reaches past EOF is refused whole, with `ENXIO` (see README, "Maps past EOF").
pub fn fits_file(foffset: u64, len: u64, file_size: u64) -> bool {
    foffset
        .checked_add(len)
        .is_some_and(|end| len > 0 && end <= file_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB2: u64 = 2 << 20;
    const F: FileId = (1, 2);
    const G: FileId = (1, 3);
    const RW: u64 = SETUPMAPPING_FLAG_READ | SETUPMAPPING_FLAG_WRITE;

    fn m(foffset: u64, len: u64, file: FileId) -> Mapping {
        Mapping {
            foffset,
            len,
            mapped_len: len,
            file,
            writable: true,
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let w = Window::new(64 << 20);
        assert_eq!(w.check_map(0, 0, 0, RW, F), Err(WindowError::ZeroLength));
        assert_eq!(w.check_map(0, 1, MIB2, RW, F), Err(WindowError::Misaligned));
        assert_eq!(w.check_map(1, 0, MIB2, RW, F), Err(WindowError::Misaligned));
        assert_eq!(w.check_map(0, 0, 100, RW, F), Err(WindowError::Misaligned));
        assert_eq!(
            w.check_map(0, 0, MIB2, 4, F),
            Err(WindowError::UnknownFlags)
        );
        assert_eq!(
            w.check_map(0, 64 << 20, MIB2, RW, F),
            Err(WindowError::OutOfWindow)
        );
        assert_eq!(
            w.check_map(0, (64 << 20) - 4096, 8192, RW, F),
            Err(WindowError::OutOfWindow)
        );
        assert_eq!(
            w.check_map(0, u64::MAX - 4095, 4096 * 2, RW, F),
            Err(WindowError::OutOfWindow)
        );
        assert_eq!(
            w.check_map(u64::MAX - 4095, 0, 8192, RW, F),
            Err(WindowError::OutOfWindow)
        );
        assert_eq!(
            w.check_map(0, (64 << 20) - MIB2, MIB2, RW, F),
            Ok(MapAction::New)
        );
        assert_eq!(w.check_map(0, 0, MIB2, 0, F), Ok(MapAction::New));
    }

    #[test]
    fn identical_remap_is_an_upgrade_anything_else_overlaps() {
        let mut w = Window::new(64 << 20);
        w.insert(MIB2, m(0, MIB2, F));
        assert_eq!(
            w.check_map(0, MIB2, MIB2, RW, F),
            Ok(MapAction::Existing(m(0, MIB2, F)))
        );
        // Other file, other file offset, other length, shifted range: overlap.
        assert_eq!(w.check_map(0, MIB2, MIB2, RW, G), Err(WindowError::Overlap));
        assert_eq!(
            w.check_map(MIB2, MIB2, MIB2, RW, F),
            Err(WindowError::Overlap)
        );
        assert_eq!(w.check_map(0, MIB2, 4096, RW, F), Err(WindowError::Overlap));
        assert_eq!(
            w.check_map(0, MIB2 - 4096, 8192, RW, F),
            Err(WindowError::Overlap)
        );
        assert_eq!(
            w.check_map(0, 0, 3 * MIB2, RW, F),
            Err(WindowError::Overlap)
        );
        // Neighbours are fine.
        assert_eq!(w.check_map(0, 0, MIB2, RW, F), Ok(MapAction::New));
        assert_eq!(w.check_map(0, 2 * MIB2, MIB2, RW, F), Ok(MapAction::New));
    }

    #[test]
    fn unmap_exact_only() {
        let mut w = Window::new(64 << 20);
        w.insert(0, m(0, MIB2, F));
        w.insert(MIB2, m(MIB2, MIB2, F));
        assert_eq!(w.check_unmap(4 * MIB2, MIB2), Ok(None));
        assert_eq!(w.check_unmap(0, 4096), Err(WindowError::PartialRemove));
        assert_eq!(w.check_unmap(0, 2 * MIB2), Err(WindowError::PartialRemove));
        assert_eq!(w.check_unmap(0, MIB2), Ok(Some(m(0, MIB2, F))));
        assert_eq!(w.check_unmap(64 << 20, MIB2), Err(WindowError::OutOfWindow));
        assert_eq!(w.check_unmap(0, 0), Err(WindowError::ZeroLength));
        assert!(w.remove(0).is_some());
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn removemapping_counts() {
        assert_eq!(check_removemapping_count(0, 4), Err(WindowError::BadCount));
        assert_eq!(check_removemapping_count(1, 4 + 16), Ok(()));
        assert_eq!(
            check_removemapping_count(2, 4 + 16),
            Err(WindowError::BadCount)
        );
        assert_eq!(check_removemapping_count(256, 4 + 16 * 256), Ok(()));
        assert_eq!(
            check_removemapping_count(257, 4 + 16 * 257),
            Err(WindowError::BadCount)
        );
        assert_eq!(
            check_removemapping_count(u32::MAX, usize::MAX),
            Err(WindowError::BadCount)
        );
    }

    #[test]
    fn past_eof_refused() {
        assert!(fits_file(0, MIB2, 4 << 20));
        assert!(fits_file(0, MIB2, MIB2));
        assert!(fits_file(MIB2, 4096, MIB2 + 4096));
        assert!(!fits_file(0, MIB2, 8192));
        assert!(!fits_file(MIB2, MIB2, MIB2 + 4096));
        assert!(!fits_file(0, MIB2, 100));
        assert!(!fits_file(0, MIB2, 0));
        assert!(!fits_file(0, 0, MIB2));
        assert!(!fits_file(u64::MAX, MIB2, u64::MAX));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Map {
                page: u64,
                pages: u64,
                fpage: u64,
                file: u8,
            },
            Unmap {
                page: u64,
                pages: u64,
            },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u64..40, 0u64..10, 0u64..8, 0u8..3).prop_map(|(page, pages, fpage, file)| {
                    Op::Map {
                        page,
                        pages,
                        fpage,
                        file,
                    }
                }),
                (0u64..40, 0u64..10).prop_map(|(page, pages)| Op::Unmap { page, pages }),
            ]
        }

        proptest! {
            /// Whatever the guest sends, live ranges stay inside the window and disjoint,
            /// and a shadow page map agrees with the table.
            #[test]
            fn live_ranges_stay_disjoint_and_inside(ops in proptest::collection::vec(op(), 1..200)) {
                const PAGES: u64 = 32;
                let mut w = Window::new(PAGES * PAGE_SIZE);
                let mut shadow = [false; PAGES as usize];
                for op in ops {
                    match op {
                        Op::Map { page, pages, fpage, file } => {
                            let (mo, len) = (page * PAGE_SIZE, pages * PAGE_SIZE);
                            let fid = (0, file as u64);
                            match w.check_map(fpage * PAGE_SIZE, mo, len, RW, fid) {
                                Ok(MapAction::New) => {
                                    for p in page..page + pages {
                                        prop_assert!(!shadow[p as usize]);
                                        shadow[p as usize] = true;
                                    }
                                    w.insert(mo, m(fpage * PAGE_SIZE, len, fid));
                                }
                                Ok(MapAction::Existing(e)) => {
                                    prop_assert_eq!(e.len, len);
                                    prop_assert!(shadow[page as usize]);
                                }
                                Err(WindowError::Overlap) => {
                                    prop_assert!((page..page + pages).any(|p| shadow[p as usize]));
                                }
                                Err(_) => {
                                    prop_assert!(pages == 0 || page + pages > PAGES);
                                }
                            }
                        }
                        Op::Unmap { page, pages } => {
                            let (mo, len) = (page * PAGE_SIZE, pages * PAGE_SIZE);
                            match w.check_unmap(mo, len) {
                                Ok(Some(_)) => {
                                    w.remove(mo);
                                    for p in page..page + pages {
                                        prop_assert!(shadow[p as usize]);
                                        shadow[p as usize] = false;
                                    }
                                }
                                Ok(None) => {
                                    prop_assert!((page..page + pages).all(|p| !shadow[p as usize]));
                                }
                                Err(_) => {}
                            }
                        }
                    }
                    let mut last_end = 0;
                    for (k, mm) in w.iter() {
                        prop_assert!(k >= last_end);
                        prop_assert!(k + mm.len <= w.size());
                        prop_assert!(mm.len > 0 && k % PAGE_SIZE == 0 && mm.len % PAGE_SIZE == 0);
                        last_end = k + mm.len;
                    }
                    let mapped: u64 = w.iter().map(|(_, mm)| mm.len / PAGE_SIZE).sum();
                    prop_assert_eq!(mapped, shadow.iter().filter(|b| **b).count() as u64);
                }
            }
        }
    }
}
