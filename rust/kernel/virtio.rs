// SPDX-License-Identifier: GPL-2.0

//! Virtio devices, drivers and virtqueues.
//!
//! A driver implements [`Driver`] and keeps a [`Registration`] alive while it
//! wants to bind devices. Per-device data returned by [`Driver::probe`] is
//! owned by the device (`vdev->priv`) until [`Driver::remove`] takes it back;
//! queue interrupts reach [`Driver::vq_callback`] with it. (`vq->priv`
//! belongs to the transport, which keeps its notify address there.)
//! Virtqueues found with [`Device::find_vqs`] are handed out as
//! [`Virtqueue`] handles that carry a typed token per buffer: what
//! [`Virtqueue::add_sgs`] queues comes back from [`Virtqueue::get_buf`].
//!
//! C headers: [`include/linux/virtio.h`](srctree/include/linux/virtio.h),
//! [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h)

use crate::{
    alloc::Flags,
    bindings, device,
    error::{from_result, to_result},
    ffi::{c_int, c_uint, c_void},
    new_spinlock,
    prelude::*,
    str::CString,
    sync::{lock::spinlock::SpinLockBackend, lock::Guard, Arc, SpinLock},
    types::{ForeignOwnable, Opaque},
};
use core::{
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicPtr, Ordering},
};

/// `VIRTIO_DEV_ANY_ID`: matches any vendor.
const VIRTIO_DEV_ANY_ID: u32 = 0xffff_ffff;

/// A virtio device (`struct virtio_device`).
///
/// # Invariants
///
/// A `&Device` always refers to a valid, registered `struct virtio_device`
/// for the lifetime of the reference.
#[repr(transparent)]
pub struct Device(Opaque<bindings::virtio_device>);

/// A shared-memory region of a virtio device (`struct virtio_shm_region`),
/// as the transport reported it: a guest-physical range. The device is
/// untrusted: [`ShmRegion::check`] it before use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmRegion {
    /// Guest-physical start address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Why a shared-memory region is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShmError {
    /// Zero length, or `addr + len` overflows.
    Empty,
    /// Shorter than the caller's minimum.
    TooShort,
    /// Start or length not a multiple of the caller's alignment.
    Misaligned,
    /// Another resource holds part of the range (iomem claim failed).
    Busy,
}

impl ShmRegion {
    /// Checks that the region is non-empty, does not wrap, is at least
    /// `min_len` long, and that start and length are multiples of `align`
    /// (a power of two).
    pub fn check(&self, min_len: u64, align: u64) -> core::result::Result<(), ShmError> {
        if self.len == 0 || self.addr.checked_add(self.len).is_none() {
            return Err(ShmError::Empty);
        }
        if self.len < min_len {
            return Err(ShmError::TooShort);
        }
        if align == 0 || self.addr % align != 0 || self.len % align != 0 {
            return Err(ShmError::Misaligned);
        }
        Ok(())
    }
}

/// A shared-memory region its device has claimed in the iomem tree
/// ([`Device::claim_shm_region`]): the range belongs to that device alone
/// (neither RAM nor another device's) while it is bound.
///
/// # Invariants
///
/// `dev` claimed `region` with `devm_request_mem_region`.
pub struct ClaimedShmRegion {
    region: ShmRegion,
    dev: *mut bindings::virtio_device,
}

impl ClaimedShmRegion {
    /// The claimed range.
    pub fn region(&self) -> ShmRegion {
        self.region
    }

    /// Gives the region `struct page`s as fsdax memory while `dev` is
    /// bound, and returns its kernel address (valid until `dev` is
    /// unbound). `dev` must be the device that claimed it (`EINVAL`).
    pub fn memremap_fsdax(self, dev: &Device) -> Result<*mut c_void> {
        if dev.as_raw() != self.dev {
            return Err(EINVAL);
        }
        // SAFETY: `dev` is bound (a `&Device` of a bound device is all the
        // driver sees) and, by the type invariant, owns the range alone.
        unsafe { crate::dax::devm_memremap_fsdax(dev.as_dev(), self.region.addr, self.region.len) }
    }
}

impl Device {
    /// Returns a reference to the virtio device `ptr` points to.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid, registered `struct virtio_device` that
    /// stays so for the lifetime `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::virtio_device) -> &'a Self {
        // SAFETY: `Device` is a transparent wrapper of the C struct, and the
        // caller guarantees validity for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw `struct virtio_device` pointer.
    pub fn as_raw(&self) -> *mut bindings::virtio_device {
        self.0.get()
    }

    /// Returns the generic device embedded in this virtio device.
    pub fn as_dev(&self) -> &device::Device {
        // SAFETY: By the type invariant `self` is valid, so is its embedded
        // `struct device`, and it lives as long as `self`.
        unsafe { device::Device::as_ref(core::ptr::addr_of_mut!((*self.as_raw()).dev)) }
    }

    /// Returns the device index (`vdev->index`, the N of `virtioN`).
    pub fn index(&self) -> u32 {
        // SAFETY: By the type invariant `self` is valid; `index` is set at
        // registration and never changes afterwards.
        let index = unsafe { (*self.as_raw()).index };
        index as u32
    }

    /// Returns the device name (`virtioN`).
    pub fn name(&self) -> &CStr {
        // SAFETY: `dev_name` of a registered device is a valid NUL-terminated
        // string that lives as long as the device.
        unsafe {
            CStr::from_char_ptr(bindings::dev_name(core::ptr::addr_of!(
                (*self.as_raw()).dev
            )))
        }
    }

    /// Reads `buf.len()` bytes of the device-specific configuration space at
    /// `offset` (`virtio_cread_bytes()`), with the generation check that
    /// makes multi-byte reads consistent.
    ///
    /// The contents come from the device and are untrusted.
    pub fn cread_bytes(&self, offset: usize, buf: &mut [u8]) {
        // SAFETY: `self` is valid by the type invariant and `buf` is a
        // writable buffer of exactly `buf.len()` bytes.
        unsafe {
            bindings::virtio_cread_bytes(
                self.as_raw(),
                offset as c_uint,
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        }
    }

    /// Reads a little-endian `u32` of the configuration space at `offset`.
    pub fn cread_le32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.cread_bytes(offset, &mut b);
        u32::from_le_bytes(b)
    }

    /// Looks up shared-memory region `id` (`virtio_get_shm_region()`).
    ///
    /// Returns `None` if the transport has no such region or cannot report
    /// regions at all. The transport checks the region against its own
    /// resources (for PCI: the BAR); the caller must still validate the
    /// length and alignment it needs.
    pub fn get_shm_region(&self, id: u8) -> Option<ShmRegion> {
        let mut region = bindings::virtio_shm_region { addr: 0, len: 0 };
        // SAFETY: `self` is valid by the type invariant and `region` is a
        // valid out-parameter.
        let found = unsafe { bindings::virtio_get_shm_region(self.as_raw(), &mut region, id) };
        found.then_some(ShmRegion {
            addr: region.addr,
            len: region.len,
        })
    }

    /// Claims `region` in the iomem tree under the device's name until the
    /// device is unbound (`devm_request_mem_region()`). Fails with
    /// [`ShmError::Busy`] if another resource (RAM, another device) holds
    /// any of it.
    pub fn claim_shm_region(
        &self,
        region: ShmRegion,
    ) -> core::result::Result<ClaimedShmRegion, ShmError> {
        region.check(1, 1)?;
        // SAFETY: `self` is valid; the name is `dev_name()`, which lives as
        // long as the device and so outlives the devres-managed resource;
        // `iomem_resource` is the global iomem root.
        let res = unsafe {
            bindings::__devm_request_region(
                core::ptr::addr_of_mut!((*self.as_raw()).dev),
                core::ptr::addr_of_mut!(bindings::iomem_resource),
                region.addr,
                region.len,
                self.name().as_char_ptr(),
            )
        };
        if res.is_null() {
            return Err(ShmError::Busy);
        }
        // INVARIANT: Claimed just above.
        Ok(ClaimedShmRegion {
            region,
            dev: self.as_raw(),
        })
    }

    /// Marks the device ready (`virtio_device_ready()`): the driver may use
    /// its queues from now on and the device may interrupt. The abstraction
    /// does it once the driver data is published, just before
    /// [`Driver::start`], so no interrupt finds it missing.
    fn ready(&self) {
        // SAFETY: `self` is valid by the type invariant.
        unsafe { bindings::virtio_device_ready(self.as_raw()) }
    }

    /// Resets the device (`virtio_reset_device()`): it stops using all
    /// buffers and interrupts, so tokens still queued can be detached.
    /// Only the teardown of a bound device resets it.
    fn reset(&self) {
        // SAFETY: `self` is valid by the type invariant.
        unsafe { bindings::virtio_reset_device(self.as_raw()) }
    }

    /// Deletes the device's virtqueues (`vdev->config->del_vqs()`).
    ///
    /// # Safety
    ///
    /// The device must have been reset, no [`Virtqueue`] may use its ring
    /// again, and every token must have been taken back.
    unsafe fn del_vqs(&self) {
        // SAFETY: `self` is valid; the caller guarantees nobody uses the
        // queues any more.
        unsafe { bindings::virtio_del_vqs(self.as_raw()) }
    }
}

// SAFETY: `struct virtio_device` may be used from any thread; the methods
// that need exclusion take care of it themselves or document it.
unsafe impl Send for Device {}
// SAFETY: See above.
unsafe impl Sync for Device {}

/// `vdev->priv` as an atomic: the abstraction's per-device state is
/// published with release ordering once probe succeeded and read with
/// acquire ordering by queue callbacks, which may run on another CPU.
///
/// # Safety
///
/// `vdev` must be valid for `'a`.
unsafe fn priv_atomic<'a>(vdev: *mut bindings::virtio_device) -> &'a AtomicPtr<c_void> {
    // SAFETY: `AtomicPtr<c_void>` has the layout of `*mut c_void`; `priv`
    // is only accessed through this view by this module.
    unsafe { &*core::ptr::addr_of_mut!((*vdev).priv_).cast::<AtomicPtr<c_void>>() }
}

/// One segment of a buffer handed to the device.
#[derive(Clone, Copy)]
pub enum Segment {
    /// `len` bytes at `ptr`, in the kernel's linear mapping (kmalloc'ed,
    /// not vmalloc'ed or on the stack).
    Buf(*const u8, usize),
    /// `len` bytes at `offset` in `page` (a page or a folio's head page;
    /// `offset + len` may reach into the folio's later pages).
    Page(*mut bindings::page, u32, u32),
}

/// The scatter-gather list of one buffer: device-readable segments, then
/// device-writable ones (`struct scatterlist` entries, built once with
/// `GFP_KERNEL` so that queueing never allocates).
///
/// A list of up to [`SgTable::INLINE`] entries (a request's arguments and
/// reply, and a page of data) lives in the table itself, so building it
/// does not allocate; a longer one is allocated.
///
/// # Invariants
///
/// The first `len` entries of the storage (the inline array while
/// `len <= INLINE`, the allocated one otherwise) are in use; of them, `[..nout]` and `[nout..]` are each an initialised
/// scatterlist ending in an end mark (when not empty), and `len > 0`.
/// The entries hold no pointer into the table itself (none is chained),
/// so the table may move.
pub struct SgTable {
    inline: [bindings::scatterlist; SgTable::INLINE],
    heap: KVec<bindings::scatterlist>,
    len: usize,
    nout: usize,
}

// SAFETY: The table holds addresses only; what they point to is governed
// by the contract of `SgTable::new` and `Ring::add_sgs`.
unsafe impl Send for SgTable {}

impl SgTable {
    /// Entries kept in the table itself.
    pub const INLINE: usize = 4;

    /// The number of segments (descriptors without indirection).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no segment (never, by the type invariant).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in use.
    fn entries(&mut self) -> &mut [bindings::scatterlist] {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap[..]
        }
    }

    /// Builds the list for the `out` groups of segments (device-readable),
    /// then the `inb` ones (device-writable), each group in order.
    ///
    /// # Safety
    ///
    /// Every segment must describe memory that stays valid (and, for
    /// `inb`, is not accessed by the CPU) from the time a buffer built from
    /// this table is queued until its token comes back.
    pub unsafe fn new(out: &[&[Segment]], inb: &[&[Segment]], gfp: Flags) -> Result<Self> {
        let nout = out.iter().map(|g| g.len()).sum::<usize>();
        let total = nout + inb.iter().map(|g| g.len()).sum::<usize>();
        if total == 0 {
            return Err(EINVAL);
        }
        let mut t = SgTable {
            // SAFETY: All-zeroes is a valid `scatterlist` before it is set.
            inline: unsafe { core::mem::zeroed() },
            heap: KVec::new(),
            len: total,
            nout,
        };
        if total > Self::INLINE {
            // SAFETY: As above.
            t.heap = KVec::from_elem(unsafe { core::mem::zeroed() }, total, gfp)?;
        }
        let entries = t.entries();
        let segs = Iterator::chain(out.iter(), inb.iter()).flat_map(|g| g.iter());
        for (sg, seg) in entries.iter_mut().zip(segs) {
            match *seg {
                Segment::Buf(ptr, len) => {
                    let len = c_uint::try_from(len).map_err(|_| EINVAL)?;
                    // SAFETY: `sg` is a zeroed entry; the caller vouches
                    // that `ptr..ptr+len` is linear-mapped memory.
                    unsafe { bindings::sg_set_buf(sg, ptr.cast(), len) };
                }
                Segment::Page(page, len, offset) => {
                    // SAFETY: As above; the caller vouches for the page.
                    unsafe { bindings::sg_set_page(sg, page, len, offset) };
                }
            }
        }
        if nout > 0 {
            // SAFETY: `nout - 1` is in bounds.
            unsafe { bindings::sg_mark_end(&mut entries[nout - 1]) };
        }
        if total > nout {
            // SAFETY: `total - 1` is in bounds.
            unsafe { bindings::sg_mark_end(&mut entries[total - 1]) };
        }
        // INVARIANT: `total` entries, both groups set and end-marked.
        Ok(t)
    }
}

/// A virtqueue of a bound device, with the driver's per-queue state `S`
/// under the same spinlock (for instance requests waiting for room).
///
/// The ring is reached through [`Virtqueue::lock`]. When the device goes
/// away the abstraction takes the ring out of the lock, so a queue handle
/// the driver still holds (in a work item, say) finds it gone instead of
/// touching freed memory.
#[pin_data]
pub struct Virtqueue<T: ForeignOwnable, S> {
    index: u32,
    #[pin]
    inner: SpinLock<VqInner<T, S>>,
}

/// The locked part of a [`Virtqueue`].
///
/// # Invariants
///
/// `vq` is `Some` from `find_vqs` until teardown takes it out, and in that
/// time is a live virtqueue whose every token came from `T::into_foreign`.
struct VqInner<T: ForeignOwnable, S> {
    vq: Option<NonNull<bindings::virtqueue>>,
    state: S,
    _t: PhantomData<T>,
}

// SAFETY: The ring pointer is only used under the lock; tokens and state are
// `Send`.
unsafe impl<T: ForeignOwnable + Send, S: Send> Send for VqInner<T, S> {}

impl<T: ForeignOwnable, S> Virtqueue<T, S> {
    /// The queue's index in the device.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Locks the queue.
    pub fn lock(&self) -> VirtqueueGuard<'_, T, S> {
        VirtqueueGuard(self.inner.lock())
    }
}

/// A locked [`Virtqueue`].
pub struct VirtqueueGuard<'a, T: ForeignOwnable, S>(Guard<'a, VqInner<T, S>, SpinLockBackend>);

impl<'a, T: ForeignOwnable, S> VirtqueueGuard<'a, T, S> {
    /// The ring (`None` once the device is gone) and the driver's state.
    pub fn split(&mut self) -> (Option<Ring<'_, T>>, &mut S) {
        let inner = &mut *self.0;
        let ring = inner.vq.map(|vq| Ring {
            vq,
            _p: PhantomData,
        });
        (ring, &mut inner.state)
    }

    /// The driver's per-queue state.
    pub fn state(&mut self) -> &mut S {
        let inner = &mut *self.0;
        &mut inner.state
    }

    /// Whether the device still has this queue.
    pub fn is_live(&self) -> bool {
        let inner = &*self.0;
        inner.vq.is_some()
    }

    /// Unlocks the queue, telling the device about newly queued buffers if
    /// it asked to be told (`virtqueue_kick_prepare()` under the lock,
    /// `virtqueue_notify()` after it). Returns false if the device is
    /// broken.
    pub fn kick(self) -> bool {
        let inner = &*self.0;
        let Some(vq) = inner.vq else {
            return false;
        };
        // SAFETY: `vq` is live while the lock is held (type invariant).
        if !unsafe { bindings::virtqueue_kick_prepare(vq.as_ptr()) } {
            return true;
        }
        // SAFETY: Teardown takes the ring out under the lock and then waits
        // for an RCU grace period before deleting it, so `vq` stays live
        // until the read-side section that starts before the unlock ends.
        unsafe { bindings::rcu_read_lock() };
        drop(self);
        // SAFETY: See above.
        let ok = unsafe { bindings::virtqueue_notify(vq.as_ptr()) };
        // SAFETY: Paired with the `rcu_read_lock` above.
        unsafe { bindings::rcu_read_unlock() };
        ok
    }
}

/// The ring of a live virtqueue, borrowed from its lock.
///
/// # Invariants
///
/// `vq` is live and its lock is held for `'a`.
pub struct Ring<'a, T: ForeignOwnable> {
    vq: NonNull<bindings::virtqueue>,
    _p: PhantomData<&'a mut T>,
}

impl<T: ForeignOwnable> Ring<'_, T> {
    /// How many descriptors the ring holds.
    pub fn vring_size(&self) -> u32 {
        // SAFETY: `vq` is live (type invariant).
        unsafe { bindings::virtqueue_get_vring_size(self.vq.as_ptr()) }
    }

    /// Queues the buffer `sg` describes, with `token` to get back on
    /// completion (`virtqueue_add_sgs()`). Never allocates with
    /// `GFP_KERNEL`: `gfp` is passed for indirect descriptors only.
    ///
    /// On failure the token is handed back with the error: `ENOSPC` means
    /// the ring is full (retry after completions).
    ///
    /// # Safety
    ///
    /// The memory `sg` describes must stay valid, with its device-writable
    /// part not accessed by the CPU, until `token` comes back (from
    /// [`Ring::get_buf`], or at teardown); in practice the token owns it.
    pub unsafe fn add_sgs(
        &mut self,
        sg: &mut SgTable,
        token: T,
        gfp: Flags,
    ) -> core::result::Result<(), (Error, T)> {
        let nout = sg.nout;
        let total = sg.len;
        let base = sg.entries().as_mut_ptr();
        // SAFETY: `nout <= total`, so `base + nout` is in bounds of the
        // entries or one past their end (then unused: no device-writable
        // list).
        let ins = unsafe { base.add(nout) };
        let mut lists: [*mut bindings::scatterlist; 2] = match (nout > 0, total > nout) {
            (true, true) => [base, ins],
            (true, false) => [base, core::ptr::null_mut()],
            (false, _) => [ins, core::ptr::null_mut()],
        };
        let data = token.into_foreign();
        // SAFETY: `vq` is live and locked; `lists` holds one end-marked
        // scatterlist per non-empty group (invariant of `SgTable`), readable
        // ones first, then writable ones; `data` came from
        // `T::into_foreign` as the ring's invariant requires; the caller
        // vouches for the memory.
        let ret = unsafe {
            bindings::virtqueue_add_sgs(
                self.vq.as_ptr(),
                lists.as_mut_ptr(),
                c_uint::from(nout > 0),
                c_uint::from(total > nout),
                data.cast_mut(),
                gfp.as_raw(),
            )
        };
        if ret < 0 {
            // SAFETY: The ring did not take `data`, so it is still ours.
            let token = unsafe { T::from_foreign(data) };
            return Err((Error::from_errno(ret), token));
        }
        Ok(())
    }

    /// Returns the token of a buffer the device has used and the number of
    /// bytes it says it wrote (`virtqueue_get_buf()`). That length comes
    /// from the device and is untrusted.
    pub fn get_buf(&mut self) -> Option<(T, u32)> {
        let mut len: c_uint = 0;
        // SAFETY: `vq` is live and locked.
        let data = unsafe { bindings::virtqueue_get_buf(self.vq.as_ptr(), &mut len) };
        if data.is_null() {
            return None;
        }
        // SAFETY: Every token in the ring came from `T::into_foreign`, and
        // the ring hands each back exactly once.
        Some((unsafe { T::from_foreign(data.cast_const()) }, len))
    }

    /// Disables the interrupt callback (`virtqueue_disable_cb()`).
    pub fn disable_cb(&mut self) {
        // SAFETY: `vq` is live and locked.
        unsafe { bindings::virtqueue_disable_cb(self.vq.as_ptr()) }
    }

    /// Re-enables the callback (`virtqueue_enable_cb()`). Returns false if
    /// buffers were used meanwhile: the caller must poll again.
    pub fn enable_cb(&mut self) -> bool {
        // SAFETY: `vq` is live and locked.
        unsafe { bindings::virtqueue_enable_cb(self.vq.as_ptr()) }
    }
}

/// A virtio driver.
///
/// The abstraction owns the device's lifetime: it keeps the driver's data
/// and the virtqueues, and on remove (or a failed probe) it resets the
/// device, takes every token back, deletes the queues, and only then drops
/// the data. No driver code runs between those steps, so none can break
/// their order.
pub trait Driver: Sized + 'static {
    /// Per-device data, kept by the abstraction while the device is bound.
    type Data: Send + Sync;

    /// What a queued buffer carries (normally the object owning it).
    type Token: ForeignOwnable + Send;

    /// The driver's per-queue state, kept under the queue's lock.
    type QueueState: Send;

    /// The driver's name.
    const NAME: &'static CStr;

    /// The virtio device ids (`VIRTIO_ID_*`) this driver binds, any vendor.
    const DEVICE_IDS: &'static [u32];

    /// Binds `dev`: reads its configuration and finds its queues through
    /// `probe`. Queue callbacks reach the data only once probe returned;
    /// mark the device ready in [`Driver::start`].
    fn probe(dev: &Device, probe: &mut Probe<Self>) -> Result<Self::Data>;

    /// Runs once the data is published (queue callbacks reach it) and the
    /// device is marked ready: make it visible. On failure the device is
    /// torn down as on remove.
    fn start(_dev: &Device, _data: &Self::Data) -> Result {
        Ok(())
    }

    /// The device is going away: stop sending. Afterwards the abstraction
    /// resets the device, hands every token still queued to
    /// [`Driver::unused_token`], deletes the queues and drops the data.
    fn remove(_dev: &Device, _data: &Self::Data) {}

    /// A token the device never used, taken back at teardown (after the
    /// reset). The default drops it.
    fn unused_token(_data: &Self::Data, _token: Self::Token) {}

    /// Queue `index` of the device has used buffers. Runs in interrupt
    /// context: it must not sleep, and normally schedules work.
    fn vq_callback(_data: &Self::Data, _index: u32) {}

    /// Prepares for suspend. The default refuses, which blocks suspend, as
    /// a driver that cannot save its state must.
    fn freeze(_dev: &Device, _data: &Self::Data) -> Result {
        Err(Error::from_errno(-(bindings::EOPNOTSUPP as i32)))
    }

    /// Resumes after [`Driver::freeze`] succeeded.
    fn restore(_dev: &Device, _data: &Self::Data) -> Result {
        Ok(())
    }
}

/// A virtqueue of a device bound to `D`, with `D`'s tokens and state.
pub type DriverQueue<D> = Arc<Virtqueue<<D as Driver>::Token, <D as Driver>::QueueState>>;

/// The queues of a device bound to `D`, as the abstraction keeps them.
///
/// # Invariants
///
/// `raw[i]` is the ring of `queues[i]` (from `virtio_find_vqs`), and the
/// names stay alive until the rings are deleted.
struct Vqs<D: Driver> {
    queues: KVec<DriverQueue<D>>,
    raw: KVec<*mut bindings::virtqueue>,
    _names: KVec<CString>,
}

/// Probe-time access to a device bound to `D`: its virtqueues.
///
/// Only the abstraction creates it, inside `D`'s probe, so the queue
/// callbacks it installs always find `D`'s data in `vdev->priv`.
pub struct Probe<D: Driver> {
    dev: *mut bindings::virtio_device,
    vqs: Option<Vqs<D>>,
    /// `find_vqs` ran (successfully or not): the device may be reset.
    used: bool,
}

impl<D: Driver> Probe<D> {
    /// Finds one virtqueue per name (`virtio_find_vqs()`); `state(i)` gives
    /// the driver's state of queue `i`. Once per probe.
    pub fn find_vqs(
        &mut self,
        names: KVec<CString>,
        mut state: impl FnMut(u32) -> D::QueueState,
    ) -> Result<&[DriverQueue<D>]> {
        if self.used {
            return Err(EBUSY);
        }
        self.used = true;
        let n = names.len();
        let mut raw: KVec<*mut bindings::virtqueue> = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut info: KVec<bindings::virtqueue_info> = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut queues = KVec::with_capacity(n, GFP_KERNEL)?;
        for name in names.iter() {
            raw.push(core::ptr::null_mut(), GFP_KERNEL)?;
            info.push(
                bindings::virtqueue_info {
                    name: name.as_char_ptr(),
                    callback: Some(vq_callback::<D>),
                    ctx: false,
                },
                GFP_KERNEL,
            )?;
        }
        // SAFETY: `dev` is the device being probed; `raw` and `info` hold
        // `n` entries each; the names move into `self.vqs`, which outlives
        // the queues (teardown deletes them first).
        to_result(unsafe {
            bindings::virtio_find_vqs(
                self.dev,
                n as c_uint,
                raw.as_mut_ptr(),
                info.as_mut_ptr(),
                core::ptr::null_mut(),
            )
        })?;
        let mut failed = raw.iter().any(|p| p.is_null());
        for (i, p) in raw.iter().enumerate() {
            if failed {
                break;
            }
            let vq = NonNull::new(*p);
            let st = state(i as u32);
            let init = pin_init!(Virtqueue::<D::Token, D::QueueState> {
                index: i as u32,
                // INVARIANT: `vq` was just created with tokens of type `T`.
                inner <- new_spinlock!(
                    VqInner { vq, state: st, _t: PhantomData },
                    "virtio::Virtqueue::inner"
                ),
            });
            match Arc::pin_init(init, GFP_KERNEL) {
                Ok(q) => queues.push(q, GFP_KERNEL).unwrap_or_else(|_| failed = true),
                Err(_) => failed = true,
            }
        }
        // INVARIANT: `raw[i]` is the ring of `queues[i]` (or there is no
        // `queues[i]` yet: teardown below takes what exists).
        self.vqs = Some(Vqs {
            queues,
            raw,
            _names: names,
        });
        if failed {
            // SAFETY: `dev` is the device being probed and the queues were
            // never used.
            unsafe { teardown_vqs::<D>(self.dev, self.vqs.take(), None) };
            return Err(ENOMEM);
        }
        Ok(self.vqs.as_ref().map(|v| &v.queues[..]).unwrap_or(&[]))
    }
}

/// What the abstraction keeps for a bound device (`vdev->priv`).
struct Bound<D: Driver> {
    vqs: Option<Vqs<D>>,
    data: D::Data,
}

/// Resets the device, takes every ring out of its lock, waits for kickers
/// that may still use one, hands back every token, and deletes the rings.
///
/// # Safety
///
/// `vdev` must be a device being probed or removed by `D`, and `vqs` its
/// queues (or none).
unsafe fn teardown_vqs<D: Driver>(
    vdev: *mut bindings::virtio_device,
    vqs: Option<Vqs<D>>,
    data: Option<&D::Data>,
) {
    // SAFETY: The caller guarantees `vdev` is valid.
    let dev = unsafe { Device::from_raw(vdev) };
    dev.reset();
    let Some(vqs) = vqs else {
        return;
    };
    for q in vqs.queues.iter() {
        q.inner.lock().vq = None;
    }
    // Kickers notify after unlocking, inside an RCU read-side section
    // (`VirtqueueGuard::kick`); wait for them.
    // SAFETY: Called from process context (probe or remove).
    unsafe { bindings::synchronize_rcu() };
    for &vq in vqs.raw.iter() {
        if vq.is_null() {
            continue;
        }
        loop {
            // SAFETY: The device is reset and nobody else reaches the ring
            // any more (taken out of its lock above).
            let t = unsafe { bindings::virtqueue_detach_unused_buf(vq) };
            if t.is_null() {
                break;
            }
            // SAFETY: Every token in the ring came from `into_foreign`.
            let token = unsafe { D::Token::from_foreign(t.cast_const()) };
            match data {
                Some(d) => D::unused_token(d, token),
                None => drop(token),
            }
        }
    }
    // SAFETY: Reset, no ring is reachable, every token is back.
    unsafe { dev.del_vqs() };
    // The names (in `vqs`) go only now.
    drop(vqs);
}

/// # Safety
///
/// Called only by the virtio core, for a queue of a device bound to `D`.
unsafe extern "C" fn vq_callback<D: Driver>(vq: *mut bindings::virtqueue) {
    // SAFETY: The virtio core calls this with a valid virtqueue of a device
    // bound to `D` (only `Probe<D>` installs this callback). `vdev->priv` is
    // null until `probe_callback` publishes the `Bound<D>` and again from
    // when `remove_callback` takes it back; the `Bound` is dropped only
    // after `del_vqs`, which waits for running callbacks.
    unsafe {
        let index = (*vq).index;
        let bound = priv_atomic((*vq).vdev).load(Ordering::Acquire);
        if bound.is_null() {
            return;
        }
        D::vq_callback(&(*bound.cast::<Bound<D>>()).data, index);
    }
}

/// The registration of a virtio driver (`register_virtio_driver()`).
///
/// # Invariants
///
/// If `registered` is true, `drv` is registered with the virtio bus and
/// `ids` (which `drv.id_table` points to) is not touched until it is
/// unregistered.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Driver> {
    #[pin]
    drv: Opaque<bindings::virtio_driver>,
    ids: KVec<bindings::virtio_device_id>,
    registered: bool,
    _t: PhantomData<T>,
}

// SAFETY: The registration only holds C-owned driver state that the driver
// core synchronises; it is never touched after registration except on drop.
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: See above; `&Registration` exposes nothing.
unsafe impl<T: Driver> Sync for Registration<T> {}

impl<T: Driver> Registration<T> {
    /// Registers driver `T` for `module`.
    pub fn new(module: &'static ThisModule) -> Result<Pin<KBox<Self>>> {
        let mut ids = KVec::with_capacity(T::DEVICE_IDS.len() + 1, GFP_KERNEL)?;
        for &device in T::DEVICE_IDS {
            ids.push(
                bindings::virtio_device_id {
                    device,
                    vendor: VIRTIO_DEV_ANY_ID,
                },
                GFP_KERNEL,
            )?;
        }
        // The C id table ends with an all-zeroes entry.
        ids.push(
            bindings::virtio_device_id {
                device: 0,
                vendor: 0,
            },
            GFP_KERNEL,
        )?;
        let init = try_pin_init!(Self {
            drv <- Opaque::ffi_init(|p: *mut bindings::virtio_driver| {
                // SAFETY: `p` is valid for writes; all-zeroes is a valid
                // `virtio_driver` (no callbacks, no tables).
                unsafe { core::ptr::write_bytes(p, 0, 1) };
            }),
            ids,
            registered: false,
            _t: PhantomData,
        }? Error);
        let mut reg = KBox::pin_init(init, GFP_KERNEL)?;
        let drv = reg.drv.get();
        // SAFETY: `drv` points to the zeroed driver struct pinned in `reg`;
        // it is not registered yet, so we have exclusive access. `ids` lives
        // in `reg` and is never modified again.
        unsafe {
            (*drv).driver.name = T::NAME.as_char_ptr();
            (*drv).id_table = reg.ids.as_ptr();
            (*drv).probe = Some(probe_callback::<T>);
            (*drv).remove = Some(remove_callback::<T>);
            (*drv).freeze = Some(freeze_callback::<T>);
            (*drv).restore = Some(restore_callback::<T>);
        }
        // SAFETY: `drv` is fully initialised and pinned; `module.0` is this
        // module, which outlives the registration.
        to_result(unsafe { bindings::__register_virtio_driver(drv, module.0) })?;
        // SAFETY: Only the `registered` flag changes; nothing is moved.
        // INVARIANT: The driver is registered now.
        unsafe { reg.as_mut().get_unchecked_mut().registered = true };
        Ok(reg)
    }
}

#[pinned_drop]
impl<T: Driver> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        if self.registered {
            // SAFETY: By the type invariant the driver is registered; this
            // unbinds every device (calling `remove`) before returning.
            unsafe { bindings::unregister_virtio_driver(self.drv.get()) };
        }
    }
}

/// # Safety
///
/// Called only by the virtio core (`virtio_driver.probe`), with the arguments it documents.
unsafe extern "C" fn probe_callback<T: Driver>(vdev: *mut bindings::virtio_device) -> c_int {
    from_result(|| {
        // SAFETY: The virtio core calls probe with a valid device that stays
        // registered at least until `remove`.
        let dev = unsafe { Device::from_raw(vdev) };
        let mut probe = Probe::<T> {
            dev: vdev,
            vqs: None,
            used: false,
        };
        // Allocated first, so that nothing can fail between the driver
        // setting up the device and the abstraction owning it.
        let slot = match KBox::<Bound<T>>::new_uninit(GFP_KERNEL) {
            Ok(s) => s,
            Err(e) => return Err(e.into()),
        };
        let data = match T::probe(dev, &mut probe) {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: `vdev` is being probed by `T`; these are its queues.
                unsafe { teardown_vqs::<T>(vdev, probe.vqs.take(), None) };
                return Err(e);
            }
        };
        let bound = slot.write(Bound::<T> {
            vqs: probe.vqs.take(),
            data,
        });
        let ptr = KBox::into_raw(bound);
        // SAFETY: `vdev` is valid; `priv` belongs to the bound driver.
        unsafe { priv_atomic(vdev) }.store(ptr.cast(), Ordering::Release);
        dev.ready();
        // SAFETY: `ptr` is the `Bound` just published; it is freed only by
        // `remove_callback` (which cannot run before probe returns) or below.
        let started = T::start(dev, unsafe { &(*ptr).data });
        if let Err(e) = started {
            // SAFETY: As above.
            unsafe { unbind::<T>(vdev) };
            return Err(e);
        }
        Ok(0)
    })
}

/// Takes the `Bound` of `vdev` back and tears the device down in the order
/// that keeps everything sound: the driver stops, the device is reset, the
/// tokens come back, the queues are deleted, the data is dropped.
///
/// # Safety
///
/// `vdev` must be bound to `T` (its `priv` holds a `Bound<T>` from
/// `probe_callback`), and this must be the only call for this binding.
unsafe fn unbind<T: Driver>(vdev: *mut bindings::virtio_device) {
    // SAFETY: The caller guarantees `vdev` is valid and bound to `T`.
    let dev = unsafe { Device::from_raw(vdev) };
    // SAFETY: As above.
    let ptr = unsafe { priv_atomic(vdev) }.load(Ordering::Acquire);
    if ptr.is_null() {
        return;
    }
    let bound = ptr.cast::<Bound<T>>();
    // SAFETY: `ptr` is the published `Bound<T>`, freed only by this call.
    // Queue callbacks on other CPUs may hold `&data` until `del_vqs`, so
    // only shared references to `data` are formed here, and `vqs`, which
    // they never touch, is reached through its own place.
    let (data, vqs) = unsafe {
        (
            &*core::ptr::addr_of!((*bound).data),
            (*core::ptr::addr_of_mut!((*bound).vqs)).take(),
        )
    };
    T::remove(dev, data);
    // SAFETY: `vdev` is bound to `T` and these are its queues; `data` lives
    // until after `del_vqs` (in `teardown_vqs`) waited for the callbacks.
    unsafe { teardown_vqs::<T>(vdev, vqs, Some(data)) };
    // SAFETY: As above.
    unsafe { priv_atomic(vdev) }.store(core::ptr::null_mut(), Ordering::Release);
    // SAFETY: No queue callback can run any more; nothing else refers to
    // the `Bound`.
    drop(unsafe { KBox::from_raw(ptr.cast::<Bound<T>>()) });
}

/// # Safety
///
/// Called only by the virtio core (`virtio_driver.remove`), with the arguments it documents.
unsafe extern "C" fn remove_callback<T: Driver>(vdev: *mut bindings::virtio_device) {
    // SAFETY: The virtio core calls remove once for a device `T` bound.
    unsafe { unbind::<T>(vdev) };
}

/// Runs `f` on a bound device and its data, for `freeze` and `restore`.
///
/// # Safety
///
/// `vdev` must be a device bound to `T` (probe returned, remove not yet
/// called), as the virtio core guarantees for PM callbacks.
unsafe fn with_bound<T: Driver>(
    vdev: *mut bindings::virtio_device,
    f: fn(&Device, &T::Data) -> Result,
) -> c_int {
    from_result(|| {
        // SAFETY: The caller guarantees a bound device.
        let dev = unsafe { Device::from_raw(vdev) };
        // SAFETY: `priv` holds the `Bound<T>` of a bound device; the borrow
        // ends before `remove` can take it back (the driver core serialises
        // them).
        let bound = unsafe { &*priv_atomic(vdev).load(Ordering::Acquire).cast::<Bound<T>>() };
        f(dev, &bound.data)?;
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the virtio core (`virtio_driver.freeze`), with the arguments it documents.
unsafe extern "C" fn freeze_callback<T: Driver>(vdev: *mut bindings::virtio_device) -> c_int {
    // SAFETY: The virtio core calls `freeze` on bound devices only.
    unsafe { with_bound::<T>(vdev, T::freeze) }
}

/// # Safety
///
/// Called only by the virtio core (`virtio_driver.restore`), with the arguments it documents.
unsafe extern "C" fn restore_callback<T: Driver>(vdev: *mut bindings::virtio_device) -> c_int {
    // SAFETY: The virtio core calls `restore` on bound devices only.
    unsafe { with_bound::<T>(vdev, T::restore) }
}
