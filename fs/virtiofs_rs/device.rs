// SPDX-License-Identifier: GPL-2.0-only

//! The virtio-fs device: probe, queues, the cache window, remove.
//!
//! Probe follows the C driver's order (fs/fuse/virtio_fs.c,
//! `virtio_fs_probe()`): read and check the tag, find the virtqueues (0 is
//! "hiprio", then "requests.N"), map CPUs to request queues, discover the
//! DAX cache window, mark the device ready, and list it (sysfs + tag
//! lookup). Remove undoes it in reverse, resetting the device before its
//! queues are deleted.
//!
//! Deliberate differences from C:
//! - CPUs map to request queues round-robin (`cpu % nr_request_queues`); C
//!   uses the transport's IRQ affinity when it has one.
//! - A cache window the driver cannot use (zero or too short, misaligned,
//!   overflowing, or overlapping another resource) turns DAX off with a
//!   message instead of failing the probe.

use crate::errno::enotconn;
use crate::proto::config::{self, ConfigError};
use crate::sysfs;
use crate::transport::{FsQueue, Token};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{
    bindings, c_str, dax,
    ffi::{c_char, c_uint},
    fmt,
    prelude::*,
    str::CString,
    sync::Arc,
    virtio::{self, ShmRegion},
};

/// `VIRTIO_FS_SHMCAP_ID_CACHE`: the shared-memory region id of the window.
const SHMCAP_ID_CACHE: u8 = 0;

/// DAX ranges are 2 MiB (`FUSE_DAX_SHIFT`); memremap_pages also needs the
/// window aligned to 2 MiB sections on x86-64.
const DAX_RANGE: u64 = 1 << 21;

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

impl dax::Operations for WindowOps {
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

/// Gives the window `struct page`s and a DAX device. `None` (with a
/// message) means DAX off.
fn setup_dax(dev: &virtio::Device, w: &Window) -> Option<dax::DaxDevice<WindowOps>> {
    let kaddr = match dax::devm_memremap_fsdax(dev.as_dev(), w.region.addr, w.region.len) {
        Ok(k) => k,
        Err(e) => {
            pr_warn!(
                "{}: cannot map the cache window ({:?}); DAX off\n",
                dev.name(),
                e
            );
            return None;
        }
    };
    let map = KBox::new(
        WindowMap {
            kaddr: kaddr as usize,
            phys: w.region.addr,
            len: w.region.len,
        },
        GFP_KERNEL,
    )
    .ok()?;
    match dax::DaxDevice::new(map) {
        Ok(Some(d)) => Some(d),
        Ok(None) => {
            pr_notice!("{}: the kernel has no DAX support; DAX off\n", dev.name());
            None
        }
        Err(e) => {
            pr_warn!("{}: alloc_dax failed ({:?}); DAX off\n", dev.name(), e);
            None
        }
    }
}

/// The cache window, as discovered and checked.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    /// The guest-physical range of the window.
    pub(crate) region: ShmRegion,
}

/// A bound virtio-fs device.
pub(crate) struct VirtioFs {
    /// Cleared on remove: no new request is sent after that.
    connected: AtomicBool,
    /// The next FUSE unique id (even numbers, never 0: odd ones are for
    /// FUSE_INTERRUPT).
    next_unique: AtomicU64,
    /// Round-robin request-queue choice.
    next_queue: AtomicU32,
    /// The device's tag (checked: non-empty, no newline).
    pub(crate) tag: CString,
    /// How many request queues are in use (queues 1..=nr_request_queues).
    pub(crate) nr_request_queues: u32,
    /// The virtqueues: hiprio first, then the request queues.
    pub(crate) queues: KVec<Arc<FsQueue>>,
    /// CPU -> request queue (0-based).
    pub(crate) mq_map: KVec<c_uint>,
    /// The DAX cache window, if the device has a usable one.
    pub(crate) window: Option<Window>,
}

/// What the device owns while bound (`vdev->priv`).
///
/// # Invariants
///
/// `instance` is written only by `Driver::start` (before anything else can
/// reach it: the device is not listed yet) and taken only by
/// `Driver::remove`, which owns the `Bound`; queue callbacks, the only
/// concurrent users, never touch it.
pub(crate) struct Bound {
    /// The sysfs entry and tag listing; taken first on remove.
    instance: UnsafeCell<Option<sysfs::Instance>>,
    fs: Arc<VirtioFs>,
    /// The window's DAX device; killed on remove, before devres unmaps the
    /// window (mounted superblocks may outlive the device, this may not).
    dax: Option<dax::DaxDevice<WindowOps>>,
    /// Virtqueue names; the virtio core points at them until `del_vqs`.
    vq_names: KVec<CString>,
}

// SAFETY: See the type invariant: `instance` is never accessed
// concurrently; the other fields are `Sync`.
unsafe impl Sync for Bound {}

/// The virtio driver.
pub(crate) struct Driver;

fn read_tag(dev: &virtio::Device) -> Result<CString> {
    let mut raw = [0u8; config::TAG_SIZE];
    dev.cread_bytes(0, &mut raw);
    let tag = config::parse_tag(&raw).map_err(|e| {
        match e {
            ConfigError::EmptyTag => pr_err!("{}: refusing an empty tag\n", dev.name()),
            ConfigError::NewlineInTag => {
                pr_err!("{}: refusing a tag with a newline\n", dev.name())
            }
            ConfigError::NoRequestQueues => {}
        }
        EINVAL
    })?;
    let mut bytes = KVec::with_capacity(tag.len() + 1, GFP_KERNEL)?;
    bytes.extend_from_slice(tag, GFP_KERNEL)?;
    bytes.push(0, GFP_KERNEL)?;
    let tag = CStr::from_bytes_with_nul(&bytes).map_err(|_| EINVAL)?;
    CString::try_from_fmt(fmt!("{}", tag))
}

/// Checks the window the transport reported; `None` means DAX off.
fn check_window(dev: &virtio::Device, region: ShmRegion) -> Option<Window> {
    let name = dev.name();
    let end = region.addr.checked_add(region.len);
    if region.len == 0 || end.is_none() {
        pr_warn!(
            "{}: cache window {:#x}+{:#x} is empty or overflows; DAX off\n",
            name,
            region.addr,
            region.len
        );
        return None;
    }
    if region.len < DAX_RANGE {
        pr_warn!(
            "{}: cache window of {:#x} bytes is smaller than one 2 MiB range; DAX off\n",
            name,
            region.len
        );
        return None;
    }
    if region.addr % DAX_RANGE != 0 || region.len % DAX_RANGE != 0 {
        pr_warn!(
            "{}: cache window {:#x}+{:#x} is not 2 MiB aligned; DAX off\n",
            name,
            region.addr,
            region.len
        );
        return None;
    }
    Some(Window { region })
}

/// Claims the window in the iomem tree under the device's name, for as long
/// as the device is bound (devres). Another owner means DAX off.
fn request_window(dev: &virtio::Device, w: Window) -> Option<Window> {
    if dev
        .devm_request_mem_region(w.region.addr, w.region.len)
        .is_err()
    {
        pr_warn!(
            "{}: cache window {:#x}+{:#x} overlaps another resource; DAX off\n",
            dev.name(),
            w.region.addr,
            w.region.len
        );
        return None;
    }
    Some(w)
}

/// Puts each virtqueue in its own lock.
fn wrap_queues(vqs: KVec<virtio::Virtqueue<Token>>) -> Result<KVec<Arc<FsQueue>>> {
    let mut queues = KVec::with_capacity(vqs.len(), GFP_KERNEL)?;
    for vq in vqs {
        queues.push(FsQueue::new(vq)?, GFP_KERNEL)?;
    }
    Ok(queues)
}

/// Round-robin CPU to request-queue map.
fn map_queues(nr_request_queues: u32) -> Result<KVec<c_uint>> {
    // SAFETY: `nr_cpu_ids` is set during early boot and never changes after.
    let nr_cpus = unsafe { bindings::nr_cpu_ids };
    let mut map = KVec::with_capacity(nr_cpus as usize, GFP_KERNEL)?;
    for cpu in 0..nr_cpus {
        map.push(cpu % nr_request_queues.max(1), GFP_KERNEL)?;
    }
    Ok(map)
}

impl virtio::Driver for Driver {
    type Data = KBox<Bound>;

    const NAME: &'static CStr = c_str!("virtiofs_rs");
    const DEVICE_IDS: &'static [u32] = &[bindings::VIRTIO_ID_FS];

    fn probe(dev: &virtio::Device) -> Result<KBox<Bound>> {
        let tag = read_tag(dev)?;
        let advertised = dev.cread_le32(config::NUM_REQUEST_QUEUES_OFFSET);
        // SAFETY: See `map_queues`.
        let nr_cpus = unsafe { bindings::nr_cpu_ids };
        let nr_request_queues = config::request_queue_count(advertised, nr_cpus).map_err(|_| {
            pr_err!("{}: the device offers no request queue\n", dev.name());
            EINVAL
        })?;

        let nvqs = nr_request_queues as usize + 1;
        let mut vq_names = KVec::with_capacity(nvqs, GFP_KERNEL)?;
        vq_names.push(CString::try_from_fmt(fmt!("hiprio"))?, GFP_KERNEL)?;
        for i in 0..nr_request_queues {
            vq_names.push(CString::try_from_fmt(fmt!("requests.{}", i))?, GFP_KERNEL)?;
        }
        let mut names: KVec<&CStr> = KVec::with_capacity(nvqs, GFP_KERNEL)?;
        for n in vq_names.iter() {
            names.push(n, GFP_KERNEL)?;
        }
        // The `Bound` is allocated before the queues exist, so that nothing
        // can fail between setting it up and handing it over.
        let slot = KBox::<Bound>::new_uninit(GFP_KERNEL)?;
        // SAFETY: The names live in `Bound::vq_names`, which outlives the
        // queues: `remove` deletes them before dropping it, and the error
        // path below deletes them while `vq_names` is still here.
        let vqs = unsafe { dev.find_vqs::<Driver, Token>(&names) }?;
        drop(names);
        match setup(dev, tag, nr_request_queues, vqs) {
            Ok((fs, dax_dev)) => Ok(slot.write(Bound {
                instance: UnsafeCell::new(None),
                fs,
                dax: dax_dev,
                vq_names,
            })),
            Err(e) => {
                dev.reset();
                // SAFETY: The device is reset, never marked ready, and every
                // queue handle went with `setup`'s state; no token was
                // ever queued.
                unsafe { dev.del_vqs() };
                Err(e)
            }
        }
    }

    fn start(dev: &virtio::Device, data: &Bound) -> Result {
        let fs = &data.fs;
        let mut name_ptrs: KVec<*const c_char> =
            KVec::with_capacity(data.vq_names.len(), GFP_KERNEL)?;
        for n in data.vq_names.iter() {
            name_ptrs.push(n.as_char_ptr(), GFP_KERNEL)?;
        }
        dev.ready();
        // SAFETY: `dev` stays bound until `remove`, which drops the instance
        // first; the data pointer is the `VirtioFs` kept alive by `Bound`.
        let instance = unsafe {
            sysfs::Instance::add(
                dev.as_raw(),
                &fs.tag,
                &name_ptrs,
                &fs.mq_map,
                (&**fs as *const VirtioFs).cast_mut().cast(),
            )
        }
        .inspect_err(|e| {
            if *e == EEXIST {
                pr_err!("{}: tag <{}> is already in use\n", dev.name(), &*fs.tag);
            }
        })?;
        // SAFETY: By the type invariant nothing else touches `instance`
        // now: the device was not listed before this line.
        unsafe { *data.instance.get() = Some(instance) };
        pr_info!(
            "{}: tag <{}>, {} request queue(s), DAX window: {}\n",
            dev.name(),
            &*fs.tag,
            fs.nr_request_queues,
            if fs.window.is_some() { "yes" } else { "no" }
        );
        Ok(())
    }

    fn remove(dev: &virtio::Device, mut data: KBox<Bound>) {
        // Unlist first, so no new mount finds the device.
        drop(data.instance.get_mut().take());
        teardown(dev, &data.fs);
        drop(data.dax.take());
        // `data` (with the queue names) is dropped here, after the queues
        // are deleted.
    }

    fn vq_callback(data: &Bound, index: u32) {
        if let Some(q) = data.fs.queues.get(index as usize) {
            FsQueue::schedule(q.clone());
        }
    }
}

/// The part of probe after the queues exist: wrap them, map CPUs, set up
/// the cache window. On failure the caller resets the device and deletes
/// the queues.
fn setup(
    dev: &virtio::Device,
    tag: CString,
    nr_request_queues: u32,
    vqs: KVec<virtio::Virtqueue<Token>>,
) -> Result<(Arc<VirtioFs>, Option<dax::DaxDevice<WindowOps>>)> {
    let queues = wrap_queues(vqs)?;
    let mq_map = map_queues(nr_request_queues)?;
    let window = match dev.get_shm_region(SHMCAP_ID_CACHE) {
        None => {
            pr_notice!("{}: no cache capability; DAX unavailable\n", dev.name());
            None
        }
        Some(region) => check_window(dev, region),
    };
    let window = window.and_then(|w| request_window(dev, w));
    let dax_dev = window.as_ref().and_then(|w| setup_dax(dev, w));
    let window = if dax_dev.is_some() { window } else { None };
    if let Some(w) = window {
        pr_notice!(
            "{}: cache len: {:#x} @ {:#x}\n",
            dev.name(),
            w.region.len,
            w.region.addr
        );
    }
    let fs = Arc::new(
        VirtioFs {
            connected: AtomicBool::new(true),
            next_unique: AtomicU64::new(2),
            next_queue: AtomicU32::new(0),
            tag,
            nr_request_queues,
            queues,
            mq_map,
            window,
        },
        GFP_KERNEL,
    )?;
    Ok((fs, dax_dev))
}

/// Disconnects, resets the device, ends every request still queued and
/// deletes the queues.
fn teardown(dev: &virtio::Device, fs: &VirtioFs) {
    fs.connected.store(false, Ordering::Release);
    dev.reset();
    for q in fs.queues.iter() {
        q.drain();
    }
    // SAFETY: The device is reset, `drain` took every queue handle out of
    // its lock (nobody uses one again) and every token back.
    unsafe { dev.del_vqs() };
    // No interrupt can queue completion work any more (`del_vqs` freed the
    // IRQs); wait for work already queued, so none runs after the module
    // is gone.
    for q in fs.queues.iter() {
        q.flush();
    }
}

impl VirtioFs {
    /// A fresh unique id for a request.
    pub(crate) fn new_unique(&self) -> u64 {
        self.next_unique.fetch_add(2, Ordering::Relaxed)
    }

    /// Sends `req` on the hiprio queue without waiting (FORGET).
    pub(crate) fn send_hiprio(&self, req: &Token) -> Result {
        if !self.connected.load(Ordering::Acquire) {
            // As C: forgets are dropped once disconnected.
            return Ok(());
        }
        let q = self.queues.first().ok_or_else(enotconn)?;
        q.submit(req.clone())
    }

    /// Sends `req` on a request queue and waits for it to end; returns the
    /// validated payload length.
    pub(crate) fn send(&self, req: &Token) -> Result<u32> {
        if !self.connected.load(Ordering::Acquire) {
            return Err(enotconn());
        }
        let n = self.nr_request_queues.max(1);
        let qi = 1 + (self.next_queue.fetch_add(1, Ordering::Relaxed) % n) as usize;
        let q = self.queues.get(qi).ok_or_else(enotconn)?;
        q.submit(req.clone())?;
        req.wait()
    }
}
