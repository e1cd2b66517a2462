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
    prelude::*,
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
/// as the transport reported it: a guest-physical range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmRegion {
    /// Guest-physical start address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
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

    /// Claims `start..start + len` of the iomem tree under the device's
    /// name until the device is unbound (`devm_request_mem_region()`).
    ///
    /// Fails with `EBUSY` if another resource holds any of the range.
    pub fn devm_request_mem_region(&self, start: u64, len: u64) -> Result {
        // SAFETY: `self` is valid; the name is `dev_name()`, which lives as
        // long as the device and so outlives the devres-managed resource;
        // `iomem_resource` is the global iomem root.
        let res = unsafe {
            bindings::__devm_request_region(
                core::ptr::addr_of_mut!((*self.as_raw()).dev),
                core::ptr::addr_of_mut!(bindings::iomem_resource),
                start,
                len,
                self.name().as_char_ptr(),
            )
        };
        if res.is_null() {
            return Err(EBUSY);
        }
        Ok(())
    }

    /// Finds `names.len()` virtqueues (`virtio_find_vqs()`); when the
    /// device uses buffers of one, `D::vq_callback` runs with the device's
    /// data (once probe has returned it).
    ///
    /// The queues are deleted with [`Device::del_vqs`].
    ///
    /// # Safety
    ///
    /// The names must stay valid until the queues are deleted: the virtio
    /// core keeps the pointers (`vq->name`).
    pub unsafe fn find_vqs<D: Driver, T: ForeignOwnable>(
        &self,
        names: &[&CStr],
    ) -> Result<KVec<Virtqueue<T>>> {
        let n = names.len();
        let mut raw: KVec<*mut bindings::virtqueue> = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut info: KVec<bindings::virtqueue_info> = KVec::with_capacity(n, GFP_KERNEL)?;
        for name in names {
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
        // SAFETY: `self` is valid; `raw` and `info` hold `n` entries each;
        // the caller guarantees the names outlive the queues.
        to_result(unsafe {
            bindings::virtio_find_vqs(
                self.as_raw(),
                n as c_uint,
                raw.as_mut_ptr(),
                info.as_mut_ptr(),
                core::ptr::null_mut(),
            )
        })?;
        let mut vqs = KVec::with_capacity(n, GFP_KERNEL).inspect_err(|_| {
            // SAFETY: The queues were just created, no buffer or handle exists.
            unsafe { self.del_vqs() }
        })?;
        if raw.iter().any(|p| p.is_null()) {
            // SAFETY: As above.
            unsafe { self.del_vqs() };
            return Err(EINVAL);
        }
        for p in raw.iter() {
            let vq = NonNull::new(*p).ok_or(EINVAL)?;
            // INVARIANT: `vq` was just created by `virtio_find_vqs` and is
            // only deleted by `del_vqs`, which requires that no handle is
            // used afterwards.
            vqs.push(
                Virtqueue {
                    vq,
                    _t: PhantomData,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(vqs)
    }

    /// Marks the device ready (`virtio_device_ready()`): the driver may use
    /// its queues from now on and the device may interrupt.
    pub fn ready(&self) {
        // SAFETY: `self` is valid by the type invariant.
        unsafe { bindings::virtio_device_ready(self.as_raw()) }
    }

    /// Resets the device (`virtio_reset_device()`): it stops using all
    /// buffers and interrupts, so tokens still queued can be detached.
    pub fn reset(&self) {
        // SAFETY: `self` is valid by the type invariant.
        unsafe { bindings::virtio_reset_device(self.as_raw()) }
    }

    /// Deletes the device's virtqueues (`vdev->config->del_vqs()`).
    ///
    /// # Safety
    ///
    /// The device must have been reset, every [`Virtqueue`] handle of this
    /// device must be dropped or never used again, and every token must have
    /// been taken back (with [`Virtqueue::detach_unused_buf`]).
    pub unsafe fn del_vqs(&self) {
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

/// `vdev->priv` as an atomic: the driver data is published with release
/// ordering in probe and read with acquire ordering by queue callbacks,
/// which may run on another CPU.
///
/// # Safety
///
/// `vdev` must be valid for `'a`.
unsafe fn priv_atomic<'a>(vdev: *mut bindings::virtio_device) -> &'a AtomicPtr<c_void> {
    // SAFETY: `AtomicPtr<c_void>` has the layout of `*mut c_void`; `priv`
    // is only accessed through this view by this module.
    unsafe { &*core::ptr::addr_of_mut!((*vdev).priv_).cast::<AtomicPtr<c_void>>() }
}

/// # Safety
///
/// Called only by the virtio core, for a queue of a device bound to `D`,
/// with the arguments it documents.
unsafe extern "C" fn vq_callback<D: Driver>(vq: *mut bindings::virtqueue) {
    // SAFETY: The virtio core calls this with a valid virtqueue of a device
    // bound to `D`. `vdev->priv` is null until `probe_callback` stores the
    // data and again once `remove_callback` took it back; in between it is
    // `D::Data`, which `Driver::remove` keeps alive until the queues are
    // deleted, and deleting them waits for running callbacks.
    unsafe {
        let index = (*vq).index;
        let data = priv_atomic((*vq).vdev).load(Ordering::Acquire);
        if data.is_null() {
            return;
        }
        D::vq_callback(D::Data::borrow(data.cast_const()), index);
    }
}

/// A virtqueue of a device, used with tokens of type `T`.
///
/// Methods that touch the ring take `&mut self`: the caller serialises them
/// (normally by keeping the handle in a lock), as C drivers do.
///
/// # Invariants
///
/// `vq` is a virtqueue created by [`Device::find_vqs`] that has not been
/// deleted; every non-null `data` pointer in its ring came from
/// `T::into_foreign`.
pub struct Virtqueue<T: ForeignOwnable> {
    vq: NonNull<bindings::virtqueue>,
    _t: PhantomData<T>,
}

// SAFETY: A virtqueue may be driven from any thread as long as calls are
// serialised, which `&mut self` guarantees; tokens are `Send`.
unsafe impl<T: ForeignOwnable + Send> Send for Virtqueue<T> {}

impl<T: ForeignOwnable> Virtqueue<T> {
    /// Returns the queue's index in the device.
    pub fn index(&self) -> u32 {
        // SAFETY: `vq` is valid by the type invariant.
        unsafe { (*self.vq.as_ptr()).index }
    }

    /// Returns how many descriptors the ring holds.
    pub fn vring_size(&self) -> u32 {
        // SAFETY: `vq` is valid by the type invariant.
        unsafe { bindings::virtqueue_get_vring_size(self.vq.as_ptr()) }
    }

    /// Queues a buffer made of `out` (device-readable) then `inb`
    /// (device-writable) segments, with `token` to get back on completion
    /// (`virtqueue_add_sgs()`).
    ///
    /// On failure the token is handed back with the error: `ENOSPC` means
    /// the ring is full (retry after completions), anything else is fatal
    /// for this buffer.
    ///
    /// # Safety
    ///
    /// Every segment must be in the kernel's linear mapping (kmalloc'ed,
    /// not vmalloc'ed or on the stack), and must stay valid, with the
    /// device-writable ones not accessed by the CPU, until `token` comes
    /// back from [`Self::get_buf`] or [`Self::detach_unused_buf`]. In
    /// practice the token owns the memory.
    pub unsafe fn add_sgs(
        &mut self,
        out: &[(*const u8, usize)],
        inb: &[(*mut u8, usize)],
        token: T,
        gfp: Flags,
    ) -> core::result::Result<(), (Error, T)> {
        let total = out.len() + inb.len();
        if total == 0 {
            return Err((EINVAL, token));
        }
        let mut sgl: KVec<bindings::scatterlist> = match KVec::with_capacity(total, gfp) {
            Ok(v) => v,
            Err(_) => return Err((ENOMEM, token)),
        };
        let mut sgp: KVec<*mut bindings::scatterlist> = match KVec::with_capacity(total, gfp) {
            Ok(v) => v,
            Err(_) => return Err((ENOMEM, token)),
        };
        let outs = out.iter().map(|&(p, l)| (p.cast::<c_void>(), l));
        let ins = inb
            .iter()
            .map(|&(p, l)| (p.cast_const().cast::<c_void>(), l));
        for (ptr, len) in Iterator::chain(outs, ins) {
            // SAFETY: All-zeroes is a valid `scatterlist` before
            // `sg_init_one` initialises it.
            let zero: bindings::scatterlist = unsafe { core::mem::zeroed() };
            if sgl.push(zero, gfp).is_err() {
                return Err((ENOMEM, token));
            }
            let last = sgl.len() - 1;
            // SAFETY: `sgl[last]` is a valid scatterlist entry; the caller
            // guarantees `ptr..ptr+len` is linear-mapped memory.
            unsafe { bindings::sg_init_one(&mut sgl[last], ptr, len as c_uint) };
        }
        for i in 0..total {
            // Capacity was reserved above, so this cannot fail; entries are
            // pointed at only after `sgl` stopped moving.
            let p: *mut bindings::scatterlist = &mut sgl[i];
            if sgp.push(p, gfp).is_err() {
                return Err((ENOMEM, token));
            }
        }
        let data = token.into_foreign();
        // SAFETY: `vq` is valid; `sgp` holds `total` one-entry scatterlists;
        // `data` is non-null (`into_foreign` of a real object) and comes from
        // `T::into_foreign`, as the invariant requires.
        let ret = unsafe {
            bindings::virtqueue_add_sgs(
                self.vq.as_ptr(),
                sgp.as_mut_ptr(),
                out.len() as c_uint,
                inb.len() as c_uint,
                data.cast_mut(),
                gfp.as_raw(),
            )
        };
        if ret < 0 {
            // SAFETY: The queue did not take `data`, so it is still ours.
            let token = unsafe { T::from_foreign(data) };
            return Err((Error::from_errno(ret), token));
        }
        Ok(())
    }

    /// Tells the device about newly queued buffers (`virtqueue_kick()`).
    /// Returns false if the device is broken.
    pub fn kick(&mut self) -> bool {
        // SAFETY: `vq` is valid by the type invariant.
        unsafe { bindings::virtqueue_kick(self.vq.as_ptr()) }
    }

    /// Returns the token of a buffer the device has used and the number of
    /// bytes it says it wrote (`virtqueue_get_buf()`). That length comes
    /// from the device and is untrusted.
    pub fn get_buf(&mut self) -> Option<(T, u32)> {
        let mut len: c_uint = 0;
        // SAFETY: `vq` is valid by the type invariant.
        let data = unsafe { bindings::virtqueue_get_buf(self.vq.as_ptr(), &mut len) };
        if data.is_null() {
            return None;
        }
        // SAFETY: Every token in the ring came from `T::into_foreign` (type
        // invariant), and the ring hands each back exactly once.
        Some((unsafe { T::from_foreign(data.cast_const()) }, len))
    }

    /// Takes back a token the device never used (`virtqueue_detach_unused_buf()`),
    /// after a reset.
    pub fn detach_unused_buf(&mut self) -> Option<T> {
        // SAFETY: `vq` is valid by the type invariant.
        let data = unsafe { bindings::virtqueue_detach_unused_buf(self.vq.as_ptr()) };
        if data.is_null() {
            return None;
        }
        // SAFETY: As in `get_buf`.
        Some(unsafe { T::from_foreign(data.cast_const()) })
    }

    /// Disables the interrupt callback (`virtqueue_disable_cb()`).
    pub fn disable_cb(&mut self) {
        // SAFETY: `vq` is valid by the type invariant.
        unsafe { bindings::virtqueue_disable_cb(self.vq.as_ptr()) }
    }

    /// Re-enables the callback (`virtqueue_enable_cb()`). Returns false if
    /// buffers were used meanwhile: the caller must poll again.
    pub fn enable_cb(&mut self) -> bool {
        // SAFETY: `vq` is valid by the type invariant.
        unsafe { bindings::virtqueue_enable_cb(self.vq.as_ptr()) }
    }
}

/// A virtio driver.
pub trait Driver {
    /// Per-device data, owned by the device while it is bound.
    type Data: ForeignOwnable + Send + Sync;

    /// The driver's name.
    const NAME: &'static CStr;

    /// The virtio device ids (`VIRTIO_ID_*`) this driver binds, any vendor.
    const DEVICE_IDS: &'static [u32];

    /// Binds `dev`. The returned data is kept until [`Driver::remove`].
    ///
    /// Queue callbacks only see the data once probe has returned, so a
    /// driver should not let the device use its queues here: it marks the
    /// device ready, and publishes it, in [`Driver::start`].
    fn probe(dev: &Device) -> Result<Self::Data>;

    /// Runs once the data is stored (queue callbacks reach it): mark the
    /// device ready and make it visible. On failure [`Driver::remove`] is
    /// called and the probe fails.
    fn start(_dev: &Device, _data: <Self::Data as ForeignOwnable>::Borrowed<'_>) -> Result {
        Ok(())
    }

    /// Unbinds `dev`, getting the data back. The driver must stop using the
    /// device, reset it and delete its queues before returning, and must
    /// not drop `data` before the queues are deleted: a queue callback that
    /// started earlier may still be borrowing it.
    fn remove(dev: &Device, data: Self::Data);

    /// A virtqueue of the device (index `index`) has used buffers. Runs in
    /// interrupt context: it must not sleep, and normally schedules work.
    fn vq_callback(_data: <Self::Data as ForeignOwnable>::Borrowed<'_>, _index: u32) {}

    /// Prepares for suspend. The default refuses, which blocks suspend, as
    /// a driver that cannot save its state must.
    fn freeze(_dev: &Device, _data: <Self::Data as ForeignOwnable>::Borrowed<'_>) -> Result {
        Err(Error::from_errno(-(bindings::EOPNOTSUPP as i32)))
    }

    /// Resumes after [`Driver::freeze`] succeeded.
    fn restore(_dev: &Device, _data: <Self::Data as ForeignOwnable>::Borrowed<'_>) -> Result {
        Ok(())
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
        let data = T::probe(dev)?;
        // SAFETY: `vdev` is valid; `priv` belongs to the bound driver.
        let slot = unsafe { priv_atomic(vdev) };
        let ptr = data.into_foreign().cast_mut();
        slot.store(ptr, Ordering::Release);
        // SAFETY: `ptr` came from `into_foreign` just above and is only taken
        // back below or by `remove_callback`, which cannot run before probe
        // returns.
        let started = T::start(dev, unsafe { T::Data::borrow(ptr.cast_const()) });
        if let Err(e) = started {
            slot.store(core::ptr::null_mut(), Ordering::Release);
            // SAFETY: As above; no borrow is left.
            T::remove(dev, unsafe { T::Data::from_foreign(ptr.cast_const()) });
            return Err(e);
        }
        Ok(0)
    })
}

/// # Safety
///
/// Called only by the virtio core (`virtio_driver.remove`), with the arguments it documents.
unsafe extern "C" fn remove_callback<T: Driver>(vdev: *mut bindings::virtio_device) {
    // SAFETY: The virtio core calls remove with the device probe bound.
    let dev = unsafe { Device::from_raw(vdev) };
    // SAFETY: `vdev` is valid.
    let ptr = unsafe { priv_atomic(vdev) }.swap(core::ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: `ptr` was stored by `probe_callback` from `into_foreign` and is
    // taken back exactly once, here.
    let data = unsafe { T::Data::from_foreign(ptr.cast_const()) };
    T::remove(dev, data);
}

/// Runs `f` on a bound device and its data, for `freeze` and `restore`.
///
/// # Safety
///
/// `vdev` must be a device bound to `T` (probe returned, remove not yet
/// called), as the virtio core guarantees for PM callbacks.
unsafe fn with_bound<T: Driver>(
    vdev: *mut bindings::virtio_device,
    f: fn(&Device, <T::Data as ForeignOwnable>::Borrowed<'_>) -> Result,
) -> c_int {
    from_result(|| {
        // SAFETY: The caller guarantees a bound device.
        let dev = unsafe { Device::from_raw(vdev) };
        // SAFETY: `priv` holds the data of a bound device; the borrow ends
        // before `remove` can take it back (the driver core serialises them).
        let data =
            unsafe { T::Data::borrow(priv_atomic(vdev).load(Ordering::Acquire).cast_const()) };
        f(dev, data)?;
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
