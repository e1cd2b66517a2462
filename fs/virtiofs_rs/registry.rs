// SPDX-License-Identifier: GPL-2.0-only

//! The tag -> device list: `mount -t virtiofs TAG` finds its device here.
//!
//! The list holds an owned reference (`Arc`) to every listed device; a
//! lookup hands out another. Tags are unique: listing a second device with
//! a tag already listed fails with `EEXIST`, as in C.

use crate::device::VirtioFs;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// The registry of the loaded module.
///
/// # Invariants
///
/// Non-null exactly while the module's [`Registry`] exists (set by
/// [`Registry::new`], cleared by its drop), and then points to it. The
/// module drops the registry only after unregistering the driver and the
/// file system type, so every caller of [`with`] (probe, remove, mount)
/// runs inside that time.
static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(core::ptr::null_mut());

/// The list of bound devices.
#[pin_data(PinnedDrop)]
pub(crate) struct Registry {
    #[pin]
    list: Mutex<KVec<Arc<VirtioFs>>>,
}

impl Registry {
    /// Creates the module's registry (one at a time).
    pub(crate) fn new() -> Result<Pin<KBox<Self>>> {
        let r = KBox::pin_init(
            pin_init!(Registry {
                list <- new_mutex!(KVec::new(), "virtiofs_rs::registry"),
            }),
            GFP_KERNEL,
        )?;
        let p = (&*r as *const Registry).cast_mut();
        // INVARIANT: Published only if no other registry is.
        REGISTRY
            .compare_exchange(
                core::ptr::null_mut(),
                p,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map_err(|_| EBUSY)?;
        Ok(r)
    }
}

#[pinned_drop]
impl PinnedDrop for Registry {
    fn drop(self: Pin<&mut Self>) {
        let me = (&*self as *const Registry).cast_mut();
        // INVARIANT: Unpublished before the registry goes, if it was this
        // one (a registry that lost the race in `new` never was).
        let _ = REGISTRY.compare_exchange(
            me,
            core::ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

fn with<R>(f: impl FnOnce(&Registry) -> R) -> Result<R> {
    let p = REGISTRY.load(Ordering::Acquire);
    if p.is_null() {
        return Err(ENODEV);
    }
    // SAFETY: By the invariant of `REGISTRY`, a non-null pointer is the
    // live registry, which outlives every caller.
    Ok(f(unsafe { &*p }))
}

/// Lists `fs` under its tag; `EEXIST` if the tag is taken.
pub(crate) fn add(fs: &Arc<VirtioFs>) -> Result {
    with(|r| {
        let mut list = r.list.lock();
        if list.iter().any(|d| d.tag.as_bytes() == fs.tag.as_bytes()) {
            return Err(EEXIST);
        }
        list.push(fs.clone(), GFP_KERNEL)?;
        Ok(())
    })?
}

/// Unlists `fs` (no-op if it is not listed).
pub(crate) fn remove(fs: &VirtioFs) {
    let _ = with(|r| {
        let mut list = r.list.lock();
        if let Some(i) = list.iter().position(|d| core::ptr::eq(&**d, fs)) {
            // Order does not matter: swap the last entry in, then shorten.
            let last = list.len() - 1;
            list.swap(i, last);
            // SAFETY: `last` is in bounds; the entry is read out once and
            // the length is cut below it before anything else runs, so it
            // is neither dropped twice nor reachable afterwards.
            let gone = unsafe {
                let gone = core::ptr::read(list.as_ptr().add(last));
                list.set_len(last);
                gone
            };
            drop(gone);
        }
    });
}

/// The device listed under `tag`, if any.
pub(crate) fn find(tag: &CStr) -> Option<Arc<VirtioFs>> {
    with(|r| {
        r.list
            .lock()
            .iter()
            .find(|d| d.tag.as_bytes() == tag.as_bytes())
            .cloned()
    })
    .ok()
    .flatten()
}
