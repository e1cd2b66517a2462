// SPDX-License-Identifier: GPL-2.0-only

//! The DAX cache window: the device's shared-memory region 0, checked,
//! claimed, given `struct page`s and a `dax_device`.
//!
//! Discovery, validation, the iomem claim and the fsdax memremap are the
//! generic `virtio::ShmRegion` layer; this file keeps the DAX policy.
//! Deliberate difference from C: a window the driver cannot use (zero or
//! shorter than one 2 MiB range, misaligned, overflowing, or overlapping
//! another resource) turns DAX off with a message instead of failing the
//! probe.

use kernel::{
    dax,
    prelude::*,
    sync::Arc,
    virtio::{self, ShmError, ShmRegion},
};

/// `VIRTIO_FS_SHMCAP_ID_CACHE`: the shared-memory region id of the window.
const SHMCAP_ID_CACHE: u8 = 0;

/// DAX ranges are 2 MiB (`FUSE_DAX_SHIFT`); memremap_pages also needs the
/// window aligned to 2 MiB sections on x86-64.
pub(crate) const DAX_RANGE: u64 = 1 << 21;

/// The window as the DAX device sees it.
pub(crate) struct WindowMap {
    /// Kernel address of the window (from `devm_memremap_pages`).
    kaddr: usize,
    /// Guest-physical address of the window.
    phys: u64,
    /// Length in bytes (a multiple of 2 MiB).
    len: u64,
}

impl WindowMap {
    /// A window description for tests (nothing is mapped).
    #[cfg(CONFIG_VIRTIOFS_RS_KUNIT_TEST)]
    pub(crate) fn for_test(kaddr: usize, phys: u64, len: u64) -> Self {
        WindowMap { kaddr, phys, len }
    }
}

/// The DAX operations of the cache window.
pub(crate) struct WindowOps;

// SAFETY: `direct_access` only returns pages inside the window, which
// `setup` memremapped (writable, with `struct page`s) for as long as the
// device is bound; `Window` kills the DAX device on remove, before devres
// unmaps the window.
unsafe impl dax::Operations for WindowOps {
    type Data = KBox<WindowMap>;

    /// Unlike C's `virtio_fs_direct_access()`, offsets past the window fail
    /// with `ERANGE` instead of producing an address outside it.
    fn direct_access(w: &WindowMap, pgoff: u64, nr_pages: i64) -> Result<dax::Access> {
        let page = kernel::page::PAGE_SIZE as u64;
        let pages = w.len / page;
        if pgoff >= pages || nr_pages <= 0 {
            return Err(ERANGE);
        }
        let avail = (pages - pgoff).min(nr_pages as u64);
        let offset = pgoff * page;
        Ok(dax::Access {
            kaddr: (w.kaddr + offset as usize) as *mut core::ffi::c_void,
            phys: w.phys + offset,
            nr_pages: avail as i64,
        })
    }
}

/// A usable cache window and its DAX device.
pub(crate) struct Window {
    /// The guest-physical range of the window.
    pub(crate) region: ShmRegion,
    /// The window's DAX device; killed on remove (mounts keep a reference
    /// and see it dead).
    pub(crate) dax: Arc<dax::DaxDevice<WindowOps>>,
}

/// Finds, checks and sets up the window. `None` (with a message) means
/// DAX off.
pub(crate) fn setup(dev: &virtio::Device) -> Option<Window> {
    let name = dev.name();
    let Some(region) = dev.get_shm_region(SHMCAP_ID_CACHE) else {
        pr_notice!("{}: no cache capability; DAX unavailable\n", name);
        return None;
    };
    let (a, l) = (region.addr, region.len);
    let claimed = region
        .check(DAX_RANGE, DAX_RANGE)
        .and_then(|()| dev.claim_shm_region(region));
    let claimed = match claimed {
        Ok(c) => c,
        Err(e) => {
            let why = match e {
                ShmError::Empty => "is empty or overflows",
                ShmError::TooShort => "is smaller than one 2 MiB range",
                ShmError::Misaligned => "is not 2 MiB aligned",
                ShmError::Busy => "overlaps another resource",
            };
            pr_warn!(
                "{}: cache window {:#x}+{:#x} {}; DAX off\n",
                name,
                a,
                l,
                why
            );
            return None;
        }
    };
    let kaddr = match claimed.memremap_fsdax(dev) {
        Ok(k) => k,
        Err(e) => {
            pr_warn!("{}: cannot map the cache window ({:?}); DAX off\n", name, e);
            return None;
        }
    };
    let map = KBox::new(
        WindowMap {
            kaddr: kaddr as usize,
            phys: a,
            len: l,
        },
        GFP_KERNEL,
    )
    .ok()?;
    match dax::DaxDevice::new(map) {
        Ok(Some(d)) => {
            pr_notice!("{}: cache len: {:#x} @ {:#x}\n", name, l, a);
            Some(Window { region, dax: d })
        }
        Ok(None) => {
            pr_notice!("{}: the kernel has no DAX support; DAX off\n", name);
            None
        }
        Err(e) => {
            pr_warn!("{}: alloc_dax failed ({:?}); DAX off\n", name, e);
            None
        }
    }
}
