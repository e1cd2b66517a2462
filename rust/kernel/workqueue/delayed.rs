// SPDX-License-Identifier: GPL-2.0

//! Work run on a workqueue after a delay (`struct delayed_work`), embedded
//! in the object it works on.
//!
//! Unlike [`Work`](super::Work), which hands an owned pointer (an `Arc`)
//! to the queue, a [`DelayedWork`] lives inside its pinned owner and is
//! cancelled (and waited for) when it is dropped: the owner declares it as
//! its first field, so the work can no longer run once anything else of
//! the owner is dropped.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)

use crate::{bindings, prelude::*, types::Opaque};
use core::{
    marker::PhantomData,
    sync::atomic::{AtomicPtr, Ordering},
};

/// A work item of owner `T` that runs `T`'s function after a delay.
///
/// # Invariants
///
/// `dwork` is initialised with `run_callback::<T>`; `owner` is null or
/// points to the pinned `T` that contains this value, set by
/// [`DelayedWork::schedule`].
#[pin_data(PinnedDrop)]
pub struct DelayedWork<T: Sync> {
    #[pin]
    dwork: Opaque<bindings::delayed_work>,
    owner: AtomicPtr<T>,
    func: fn(&T),
    _p: PhantomData<T>,
}

// SAFETY: The C work item may be queued and cancelled from any thread; the
// owner is `Sync`.
unsafe impl<T: Sync> Send for DelayedWork<T> {}
// SAFETY: As above.
unsafe impl<T: Sync> Sync for DelayedWork<T> {}

impl<T: Sync> DelayedWork<T> {
    /// A work item that runs `func` on its owner.
    pub fn new(func: fn(&T)) -> impl PinInit<Self> {
        pin_init!(DelayedWork {
            // SAFETY: `INIT_DELAYED_WORK` initialises the item in place.
            dwork <- unsafe {
                Opaque::ffi_init(|p: *mut bindings::delayed_work| {
                    bindings::vfs_init_delayed_work(p, Some(run_callback::<T>))
                })
            },
            owner: AtomicPtr::new(core::ptr::null_mut()),
            func,
            _p: PhantomData,
        })
    }

    /// Queues the work to run `func(owner)` on the unbound system queue
    /// after `delay` jiffies, unless it is already pending; returns whether
    /// it was queued.
    ///
    /// # Safety
    ///
    /// `self` must be a field of `owner`, dropped before any other field
    /// of it (declared first), so that the work never runs on a partly
    /// dropped owner.
    pub unsafe fn schedule(&self, owner: Pin<&T>, delay: u64) -> bool {
        self.owner
            .store(owner.get_ref() as *const T as *mut T, Ordering::Release);
        // SAFETY: The item was initialised by `new` and is pinned; the
        // system queue always exists.
        unsafe {
            bindings::queue_delayed_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as _,
                bindings::system_unbound_wq,
                self.dwork.get(),
                delay as _,
            )
        }
    }

    /// Cancels the work and waits for a run in progress
    /// (`cancel_delayed_work_sync()`); a work that requeues itself is
    /// stopped too.
    pub fn cancel_sync(&self) {
        // SAFETY: The item was initialised by `new`.
        unsafe { bindings::cancel_delayed_work_sync(self.dwork.get()) };
    }
}

#[pinned_drop]
impl<T: Sync> PinnedDrop for DelayedWork<T> {
    fn drop(self: Pin<&mut Self>) {
        self.cancel_sync();
    }
}

/// # Safety
///
/// Called only by the workqueue for a `DelayedWork<T>` that `schedule`
/// queued.
unsafe extern "C" fn run_callback<T: Sync>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `work` field of the `delayed_work` in the
    // `dwork` field of a `DelayedWork<T>` (`Opaque` is transparent).
    let this = unsafe {
        let dw = crate::container_of!(work, bindings::delayed_work, work);
        &*crate::container_of!(dw, DelayedWork<T>, dwork)
    };
    let owner = this.owner.load(Ordering::Acquire);
    if owner.is_null() {
        return;
    }
    // SAFETY: `schedule` set `owner` to the pinned owner containing this
    // work, which its caller guaranteed drops the work (cancelling it)
    // before anything else: the owner is whole while this runs.
    (this.func)(unsafe { &*owner });
}
