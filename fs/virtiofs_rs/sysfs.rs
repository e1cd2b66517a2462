// SPDX-License-Identifier: GPL-2.0-only

//! The Rust view of `sysfs.c`: /sys/fs/virtiofs and its per-device
//! directories (kobjects stay in C; the tag list is `registry.rs`).
//!
//! The declarations below mirror `sysfs.h` by hand (the module's own header
//! is not part of the kernel crate's bindings).

use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi::{c_char, c_int, c_uint, c_void},
    prelude::*,
};

/// The C instance handle (`struct vfsrs_instance`), opaque to Rust.
#[repr(C)]
pub(crate) struct RawInstance {
    _private: [u8; 0],
}

extern "C" {
    fn vfsrs_sysfs_init() -> c_int;
    fn vfsrs_sysfs_exit();
    // `struct virtio_device *`, passed as `void *`: the bindgen type holds
    // zero-sized C structs that the FFI-safety lint rejects.
    fn vfsrs_instance_add(
        vdev: *mut c_void,
        tag: *const c_char,
        nvqs: c_uint,
        vq_names: *const *const c_char,
        mq_map: *const c_uint,
        nr_cpus: c_uint,
    ) -> *mut RawInstance;
    fn vfsrs_instance_del(inst: *mut RawInstance);
    fn vfsrs_dax_add(index: c_uint, ctx: *const c_void) -> *mut c_void;
    fn vfsrs_dax_del(kobj: *mut c_void);
}

/// `/sys/fs/virtiofs/<index>/dax/` of a mount's window; removed on drop.
///
/// # Invariants
///
/// `kobj` was returned by `vfsrs_dax_add` and is deleted exactly once, on
/// drop.
pub(crate) struct DaxDir {
    kobj: *mut c_void,
}

// SAFETY: The C side owns the kobject; the handle may be dropped anywhere.
unsafe impl Send for DaxDir {}
// SAFETY: `&DaxDir` exposes nothing.
unsafe impl Sync for DaxDir {}

impl DaxDir {
    /// Adds the directory of device `index`, whose files show counters of
    /// `ctx` through `vfsrs_dax_counter` (dax.rs).
    ///
    /// # Safety
    ///
    /// `ctx` must be valid for `vfsrs_dax_counter` until the returned value
    /// is dropped (removal waits for reads in progress).
    pub(crate) unsafe fn add(index: u32, ctx: *const c_void) -> Result<Self> {
        // SAFETY: The caller vouches for `ctx`; the C side keeps only it.
        let kobj = from_err_ptr(unsafe { vfsrs_dax_add(index, ctx) })?;
        // INVARIANT: Just added.
        Ok(DaxDir { kobj })
    }
}

impl Drop for DaxDir {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the kobject is live and deleted
        // only here.
        unsafe { vfsrs_dax_del(self.kobj) }
    }
}

/// The `virtiofs` kset under /sys/fs, alive while this value is.
pub(crate) struct Kset(());

impl Kset {
    /// Creates /sys/fs/virtiofs.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: Called once at module init; `Kset::drop` undoes it.
        to_result(unsafe { vfsrs_sysfs_init() })?;
        Ok(Kset(()))
    }
}

impl Drop for Kset {
    fn drop(&mut self) {
        // SAFETY: `vfsrs_sysfs_init` succeeded (we exist), and every
        // instance was deleted before the module's devices were unbound.
        unsafe { vfsrs_sysfs_exit() }
    }
}

/// A device's sysfs directory and its entry in the instance list.
///
/// # Invariants
///
/// `raw` was returned by `vfsrs_instance_add` and is deleted exactly once,
/// on drop.
pub(crate) struct Instance {
    raw: *mut RawInstance,
}

// SAFETY: The C side locks the list and owns the kobjects; the handle may be
// dropped from any thread.
unsafe impl Send for Instance {}
// SAFETY: `&Instance` exposes nothing.
unsafe impl Sync for Instance {}

impl Instance {
    /// Adds `/sys/fs/virtiofs/<index>/` for `vdev`.
    ///
    /// # Safety
    ///
    /// `vdev` must be valid and bound until the returned value is dropped.
    pub(crate) unsafe fn add(
        vdev: *mut bindings::virtio_device,
        tag: &CStr,
        vq_names: &[*const c_char],
        mq_map: &[c_uint],
    ) -> Result<Self> {
        // SAFETY: The pointers are valid for the call (the C side copies
        // what it keeps); the caller vouches for `vdev`.
        let raw = from_err_ptr(unsafe {
            vfsrs_instance_add(
                vdev.cast(),
                tag.as_char_ptr(),
                vq_names.len() as c_uint,
                vq_names.as_ptr(),
                mq_map.as_ptr(),
                mq_map.len() as c_uint,
            )
        })?;
        // INVARIANT: `raw` was just added.
        Ok(Instance { raw })
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `raw` is live and deleted only here.
        unsafe { vfsrs_instance_del(self.raw) }
    }
}
