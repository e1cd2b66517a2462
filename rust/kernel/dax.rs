// SPDX-License-Identifier: GPL-2.0

//! DAX devices (`struct dax_device`) and fsdax page maps.
//!
//! A driver that owns a range of directly addressable memory (a device's
//! shared-memory window, say) gives it `struct page`s with
//! [`devm_memremap_fsdax`] and exposes it to DAX file systems through a
//! [`DaxDevice`], whose [`Operations`] translate page offsets into kernel
//! addresses and pfns. `zero_page_range` is implemented here on top of
//! [`Operations::direct_access`].
//!
//! C headers: [`include/linux/dax.h`](srctree/include/linux/dax.h),
//! [`include/linux/memremap.h`](srctree/include/linux/memremap.h)

use crate::{
    bindings, device,
    error::{from_err_ptr, to_result},
    ffi::{c_int, c_long, c_ulong, c_void},
    fs::{
        address_space::{InvalidateGuard, WritebackControl},
        file::Kiocb,
        iomap, FileSystem, Inode,
    },
    iov::{IovIterDest, IovIterSource},
    mm::{VmFault, VmFaultT},
    prelude::*,
    sync::Arc,
    types::ForeignOwnable,
};
use core::{
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
};

/// `PFN_DEV` (`1ULL << (BITS_PER_LONG_LONG - 3)`): a pfn of device memory.
const PFN_DEV: u64 = 1 << 61;
/// `PFN_MAP` (`1ULL << (BITS_PER_LONG_LONG - 4)`): the pfn has a `struct page`.
const PFN_MAP: u64 = 1 << 60;

/// Where a page offset of a DAX device lives.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    /// Kernel virtual address of the first page.
    pub kaddr: *mut c_void,
    /// Physical address of the first page.
    pub phys: u64,
    /// Contiguous pages available from there (at least 1).
    pub nr_pages: i64,
}

/// The operations of a DAX device.
///
/// # Safety
///
/// The DAX core and file systems write through the addresses
/// [`Operations::direct_access`] returns (this module also zeroes them for
/// `zero_page_range`) and map their pfns into user space. An implementer
/// guarantees that every [`Access`] it returns describes `nr_pages`
/// contiguous pages of the device's own memory, mapped writable at `kaddr`
/// with physical address `phys` (pages with `struct page`s, from
/// [`devm_memremap_fsdax`]), that stay mapped until [`DaxDevice::kill`]
/// has returned.
pub unsafe trait Operations: Sized + 'static {
    /// The device's private data (`dax_get_private()`).
    type Data: ForeignOwnable + Send + Sync;

    /// Translates `nr_pages` (> 0) pages at page offset `pgoff`. Must fail
    /// (with `ERANGE`) for offsets outside the device, and never report
    /// more pages than the device has from `pgoff` on.
    fn direct_access(
        data: <Self::Data as ForeignOwnable>::Borrowed<'_>,
        pgoff: u64,
        nr_pages: i64,
    ) -> Result<Access>;
}

/// A DAX device (`alloc_dax()`), shared by its driver and the mounts using
/// it: the driver [kills](DaxDevice::kill) it when the device goes away,
/// the last reference releases it.
///
/// # Invariants
///
/// `dev` came from `alloc_dax` with `T`'s operations and `private`, which
/// came from `T::Data::into_foreign`; both are released only on drop (the
/// pointer is kept here because `dax_get_private()` answers NULL once the
/// device is killed). Once `killed` is set, `kill_dax` has returned: no
/// operation runs any more.
pub struct DaxDevice<T: Operations> {
    dev: NonNull<bindings::dax_device>,
    private: *const crate::ffi::c_void,
    killed: AtomicBool,
    _t: PhantomData<T>,
}

// SAFETY: The DAX core synchronises its users (SRCU); the handle itself is
// only used to kill and release the device, and `private` is a `T::Data`
// (`Send + Sync`), dropped on whichever thread drops the last reference.
unsafe impl<T: Operations> Send for DaxDevice<T> {}
// SAFETY: `&DaxDevice` only exposes the raw pointer.
unsafe impl<T: Operations> Sync for DaxDevice<T> {}

struct OpsTable<T>(PhantomData<T>);

impl<T: Operations> OpsTable<T> {
    const TABLE: bindings::dax_operations = bindings::dax_operations {
        direct_access: Some(direct_access_callback::<T>),
        zero_page_range: Some(zero_page_range_callback::<T>),
        // SAFETY: All-zeroes is valid for the optional callbacks.
        ..unsafe { core::mem::zeroed() }
    };
}

impl<T: Operations> DaxDevice<T> {
    /// Allocates a DAX device with `data`. Returns `Ok(None)` when the
    /// kernel has no DAX support (`alloc_dax()` says `EOPNOTSUPP`).
    pub fn new(data: T::Data) -> Result<Option<Arc<Self>>> {
        let private = data.into_foreign();
        // SAFETY: The table is static; `private` is ours until drop.
        let dev = unsafe { bindings::alloc_dax(private.cast_mut(), &OpsTable::<T>::TABLE) };
        match from_err_ptr(dev) {
            Ok(dev) => {
                let Some(dev) = NonNull::new(dev) else {
                    // Not expected (6.12's `alloc_dax` answers
                    // `-EOPNOTSUPP` without DAX), but then `private` is
                    // still ours.
                    // SAFETY: From `into_foreign` above, not handed over.
                    drop(unsafe { T::Data::from_foreign(private) });
                    return Ok(None);
                };
                // INVARIANT: A live device with our table and private data.
                // On allocation failure the `DaxDevice` is dropped, which
                // releases both.
                let d = Arc::new(
                    DaxDevice {
                        dev,
                        private,
                        killed: AtomicBool::new(false),
                        _t: PhantomData,
                    },
                    GFP_KERNEL,
                )?;
                Ok(Some(d))
            }
            Err(e) => {
                // SAFETY: `alloc_dax` failed, so `private` is still ours.
                drop(unsafe { T::Data::from_foreign(private) });
                if e.to_errno() == -(bindings::EOPNOTSUPP as i32) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The raw `struct dax_device *`.
    pub fn as_raw(&self) -> *mut bindings::dax_device {
        self.dev.as_ptr()
    }

    /// Kills the device (`kill_dax()`): waits for every operation in
    /// progress, and no new one starts. Idempotent. Mounts that still hold
    /// the device see it dead (`dax_alive()` false).
    pub fn kill(&self) {
        // `kill_dax` is idempotent and returns only once the device is dead,
        // so every caller, not just the first, returns after that.
        // SAFETY: The device is live (type invariant).
        unsafe { bindings::kill_dax(self.dev.as_ptr()) };
        self.killed.store(true, Ordering::Release);
    }

    /// Whether [`DaxDevice::kill`] has run.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
}

impl<T: Operations> Drop for DaxDevice<T> {
    fn drop(&mut self) {
        self.kill();
        let dev = self.dev.as_ptr();
        // SAFETY: The device is live (type invariant) and killed: no
        // operation runs any more, so the private data, ours since
        // `into_foreign` (type invariant), can go; `put_dax` does not use
        // it.
        unsafe {
            bindings::put_dax(dev);
            drop(T::Data::from_foreign(self.private));
        }
    }
}

/// # Safety
///
/// Called only by the DAX core through `OpsTable::TABLE`, with the arguments it documents.
unsafe extern "C" fn direct_access_callback<T: Operations>(
    dax_dev: *mut bindings::dax_device,
    pgoff: c_ulong,
    nr_pages: c_long,
    _mode: bindings::dax_access_mode,
    kaddr: *mut *mut c_void,
    pfn: *mut bindings::pfn_t,
) -> c_long {
    if nr_pages <= 0 {
        return -(bindings::EINVAL as c_long);
    }
    // SAFETY: A device of ours.
    let private = unsafe { bindings::dax_get_private(dax_dev) };
    if private.is_null() {
        // Killed between the DAX core's `dax_alive()` check and this call
        // (`dax_get_private()` answers NULL once killed).
        return -(bindings::ENXIO as c_long);
    }
    // SAFETY: The DAX core calls this on a device of ours inside a DAX read
    // section (SRCU), which `kill_dax` waits out before the `DaxDevice`
    // can drop the data: it is alive for the call.
    let data = unsafe { T::Data::borrow(private.cast_const()) };
    match T::direct_access(data, pgoff as u64, nr_pages as i64) {
        Ok(a) if a.nr_pages > 0 && a.nr_pages <= nr_pages as i64 => {
            // SAFETY: The out-parameters are null or valid for writes.
            unsafe {
                if !kaddr.is_null() {
                    *kaddr = a.kaddr;
                }
                if !pfn.is_null() {
                    *pfn = bindings::phys_to_pfn_t(a.phys, PFN_DEV | PFN_MAP);
                }
            }
            a.nr_pages as c_long
        }
        Ok(_) => -(bindings::ERANGE as c_long),
        Err(e) => e.to_errno() as c_long,
    }
}

/// # Safety
///
/// Called only by the DAX core through `OpsTable::TABLE`, with the arguments it documents.
unsafe extern "C" fn zero_page_range_callback<T: Operations>(
    dax_dev: *mut bindings::dax_device,
    pgoff: c_ulong,
    nr_pages: usize,
) -> c_int {
    let page = crate::page::PAGE_SIZE as u64;
    let mut done: u64 = 0;
    while done < nr_pages as u64 {
        let left = (nr_pages as u64 - done) as i64;
        // SAFETY: A device of ours.
        let private = unsafe { bindings::dax_get_private(dax_dev) };
        if private.is_null() {
            // Killed meanwhile: as in `direct_access_callback`.
            return -(bindings::ENXIO as c_int);
        }
        // SAFETY: As in `direct_access_callback`.
        let data = unsafe { T::Data::borrow(private.cast_const()) };
        let a = match T::direct_access(data, pgoff as u64 + done, left) {
            Ok(a) if a.nr_pages > 0 && a.nr_pages <= left => a,
            Ok(_) => return -(bindings::EIO as c_int),
            Err(e) => return e.to_errno(),
        };
        let bytes = a.nr_pages as u64 * page;
        // SAFETY: By the safety contract of `Operations` (an unsafe trait),
        // `a` describes `nr_pages` writable pages of the device mapped at
        // `kaddr` while the device is alive, which the DAX core guarantees
        // during this call; `dax_flush` writes them back where needed.
        unsafe {
            core::ptr::write_bytes(a.kaddr.cast::<u8>(), 0, bytes as usize);
            bindings::dax_flush(dax_dev, a.kaddr, bytes as usize);
        }
        done += a.nr_pages as u64;
    }
    0
}

/// Gives `start..start + len` `struct page`s as fsdax memory for as long as
/// `dev` is bound (`devm_memremap_pages()` with `MEMORY_DEVICE_FS_DAX`), and
/// returns its kernel address. `start` and `len` must be aligned to the
/// memory section size the architecture needs (2 MiB on x86-64).
///
/// # Safety
///
/// `dev` must be bound, and `start..start + len` must be device memory
/// that `dev` alone owns (claimed in the iomem tree for as long as it is
/// bound, so neither RAM nor another device's range). The returned address
/// is valid only until `dev` is unbound.
pub unsafe fn devm_memremap_fsdax(
    dev: &device::Device,
    start: u64,
    len: u64,
) -> Result<*mut c_void> {
    let end = start
        .checked_add(len)
        .and_then(|e| e.checked_sub(1))
        .ok_or(EINVAL)?;
    let size = core::mem::size_of::<bindings::dev_pagemap>();
    // SAFETY: `dev` is a valid, bound device; the allocation is devres
    // managed and zeroed (`__GFP_ZERO`).
    let pgmap =
        unsafe { bindings::devm_kmalloc(dev.as_raw(), size, (GFP_KERNEL | __GFP_ZERO).as_raw()) }
            .cast::<bindings::dev_pagemap>();
    if pgmap.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: `pgmap` is a zeroed `dev_pagemap` we own until devres frees it
    // after `devm_memremap_pages`' own release.
    unsafe {
        (*pgmap).type_ = bindings::memory_type_MEMORY_DEVICE_FS_DAX;
        *(*pgmap).__bindgen_anon_1.range.as_mut() = bindings::range { start, end };
        (*pgmap).nr_range = 1;
    }
    // SAFETY: `pgmap` is fully set up; the caller guarantees `dev` is bound
    // and owns the range.
    let kaddr = unsafe { bindings::devm_memremap_pages(dev.as_raw(), pgmap) };
    from_err_ptr(kaddr)
}

/// Reads `to.len()` bytes at `kiocb.pos()` of a DAX file straight from
/// its device, through `ops` (`dax_iomap_rw()`), moving the position;
/// returns the bytes read. The caller holds the inode's lock shared.
///
/// # Safety
///
/// The file of `kiocb` must be open on an inode of `T` (`ops` gets it as
/// an `Inode<T>`).
pub unsafe fn iomap_read<T: FileSystem>(
    kiocb: &mut Kiocb,
    to: &mut IovIterDest<'_>,
    ops: iomap::Ops<T>,
) -> Result<usize> {
    // SAFETY: The kiocb and iterator are valid and ours for the call; the
    // table is static; the caller guarantees the inode is of `T`.
    let r = unsafe { bindings::dax_iomap_rw(kiocb.as_raw(), to.as_raw(), ops.as_raw()) };
    isize_result(r)
}

/// Writes `from` at `kiocb.pos()` of a DAX file straight to its device,
/// through `ops` (`dax_iomap_rw()`), moving the position; returns the
/// bytes written. The caller holds the inode's lock.
///
/// # Safety
///
/// As [`iomap_read`].
pub unsafe fn iomap_write<T: FileSystem>(
    kiocb: &mut Kiocb,
    from: &mut IovIterSource<'_>,
    ops: iomap::Ops<T>,
) -> Result<usize> {
    // SAFETY: As in `iomap_read`.
    let r = unsafe { bindings::dax_iomap_rw(kiocb.as_raw(), from.as_raw(), ops.as_raw()) };
    isize_result(r)
}

fn isize_result(r: isize) -> Result<usize> {
    if r < 0 {
        Err(Error::from_errno(r as i32))
    } else {
        Ok(r as usize)
    }
}

/// What [`iomap_fault`] did.
pub struct Fault {
    /// The `VM_FAULT_*` bits.
    pub ret: VmFaultT,
    /// The pfn mapped, for [`finish_sync_fault`].
    pub pfn: bindings::pfn_t,
    /// The error `iomap_begin` returned, if that is why it failed.
    pub error: Option<Error>,
}

/// Handles a fault of `PAGE_SIZE << order` bytes in a DAX mapping
/// through `ops` (`dax_iomap_fault()`). The caller holds the inode's
/// invalidate lock shared.
///
/// # Safety
///
/// The faulting mapping must map a file on an inode of `T`.
pub unsafe fn iomap_fault<T: FileSystem>(vmf: &VmFault, order: u32, ops: iomap::Ops<T>) -> Fault {
    let mut pfn = bindings::pfn_t { val: 0 };
    let mut error: c_int = 0;
    // SAFETY: The fault is valid for the call; the out-parameters are
    // locals; the table is static; the caller guarantees the inode is of
    // `T`.
    let ret = unsafe {
        bindings::dax_iomap_fault(vmf.as_raw(), order, &mut pfn, &mut error, ops.as_raw())
    };
    Fault {
        ret,
        pfn,
        error: (error < 0).then(|| Error::from_errno(error)),
    }
}

/// Makes a synchronous (`MAP_SYNC`) fault's metadata durable, then maps
/// `pfn` (`dax_finish_sync_fault()`), after [`iomap_fault`] answered
/// `VM_FAULT_NEEDDSYNC`.
pub fn finish_sync_fault(vmf: &VmFault, order: u32, pfn: bindings::pfn_t) -> VmFaultT {
    // SAFETY: The fault is valid for the call.
    unsafe { bindings::dax_finish_sync_fault(vmf.as_raw(), order, pfn) }
}

/// Writes back (flushes) the dirty DAX entries of `inode`'s mapping that
/// `wbc` asks for (`dax_writeback_mapping_range()`).
pub fn writeback_mapping_range<T: FileSystem, O: Operations>(
    inode: &Inode<T>,
    dev: &DaxDevice<O>,
    wbc: &mut WritebackControl,
) -> Result {
    // SAFETY: The inode (so its mapping), the device and the control are
    // valid for the call.
    to_result(unsafe {
        bindings::dax_writeback_mapping_range(
            (*inode.as_raw()).i_mapping,
            dev.as_raw(),
            wbc.as_raw(),
        )
    })
}

/// Unmaps file bytes `start..=end` of `guard`'s inode from every process
/// and, if `wait`, waits (interruptibly, dropping the lock while asleep)
/// until no page there is referenced by anyone else (pinned for I/O, say):
/// afterwards the range's memory may be taken away (as fuse's
/// `fuse_dax_break_layouts()`). Without `wait`, fails with `EBUSY` at the
/// first busy page.
pub fn break_layouts<T: FileSystem>(
    guard: &mut InvalidateGuard<'_, T>,
    start: i64,
    end: i64,
    wait: bool,
) -> Result {
    let inode = guard.inode().as_raw();
    loop {
        // SAFETY: The inode is valid and its invalidate lock is held
        // exclusively (the guard), as the function requires.
        let page = unsafe { bindings::dax_layout_busy_page_range((*inode).i_mapping, start, end) };
        if page.is_null() {
            return Ok(());
        }
        if !wait {
            return Err(EBUSY);
        }
        // SAFETY: `page` is a DAX page of the inode (its `struct page`
        // lives as long as the device's page map); the helper drops and
        // retakes the lock (held exclusively) around its sleeps, which the
        // guard allows.
        to_result(unsafe { bindings::vfs_dax_wait_page_idle(page, inode) })?;
    }
}
