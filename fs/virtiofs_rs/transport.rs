// SPDX-License-Identifier: GPL-2.0-only

//! FUSE over virtio: requests, their submission, completion and drain.
//!
//! A [`Request`] owns two kmalloc'ed buffers: the device-readable one (the
//! `fuse_in_header` and arguments, built with `proto::fuse::request`) and
//! the device-writable one (room for the `fuse_out_header` and the reply
//! arguments). Its `Arc` is the virtqueue token, so the memory lives until
//! the device hands the token back or the queue is torn down.
//!
//! Lifecycle (as C's, fs/fuse/virtio_fs.c):
//! - submit: under the queue lock, add the buffers and kick. A full ring
//!   (`ENOSPC`) parks the request on the queue (still in flight); it is
//!   retried by the completion work after buffers come back. Any other
//!   failure is queued for the completion work, which ends the request:
//!   requests are never ended in the submitter's context.
//! - completion: the interrupt callback only schedules the queue's work;
//!   the work takes used buffers, validates every reply
//!   (`proto::fuse::reply::validate`: used length, `out.h.len`, unique,
//!   errno, payload size for the opcode) and wakes the waiter. A bad reply
//!   fails that request with `EIO` and a rate-limited message; the
//!   connection goes on.
//! - drain: [`FsQueue::drain`] runs after the device is reset; it takes back
//!   every token and ends the requests with `ENOTCONN`.
//!
//! Unlike C, the driver never sleeps waiting for the host to finish
//! requests on remove: the device is reset first (the virtio spec forbids
//! it to touch the buffers afterwards), so a dead host cannot hang unplug.
//!
//! Lock order: `FsQueue::inner` -> `Request::state`. Both are spinlocks and
//! nothing sleeps under them.

use crate::errno::enotconn;
use crate::proto::fuse::{
    abi::{Opcode, OutHeader, Wire},
    reply::{self, Outcome, ReplySpec},
};
use crate::ratelimit::warn_ratelimited;
use core::ptr::NonNull;
use kernel::{
    alloc::flags::GFP_ATOMIC,
    bindings, impl_has_work, new_condvar, new_work,
    prelude::*,
    sync::{new_spinlock, Arc, CondVar, SpinLock},
    virtio,
    workqueue::{self, Work, WorkItem},
};

/// A virtqueue token: the request it carries.
pub(crate) type Token = Arc<Request>;

/// How a request ended: the payload length, or a negative errno.
type Ended = core::result::Result<u32, Error>;

struct State {
    ended: Option<Ended>,
}

/// One FUSE request on its way through a virtqueue.
///
/// # Invariants
///
/// `out` points to `out_len` bytes owned by `_out_buf`. Until `state.ended`
/// is set the device may write them and the CPU does not read them; after,
/// only the CPU reads them.
#[pin_data]
pub(crate) struct Request {
    unique: u64,
    opcode: u32,
    spec: ReplySpec,
    inb: KVec<u8>,
    _out_buf: KVec<u8>,
    out: NonNull<u8>,
    out_len: usize,
    #[pin]
    state: SpinLock<State>,
    #[pin]
    done: CondVar,
}

// SAFETY: The raw `out` pointer is to heap memory owned by the request;
// access to it follows the protocol in the type invariant, and the rest is
// `Send`/`Sync` plain data or kernel locks.
unsafe impl Send for Request {}
// SAFETY: See above.
unsafe impl Sync for Request {}

impl Request {
    /// A request of `in_len` device-readable bytes filled by `build` (which
    /// returns how many it used), with room for a reply of
    /// `reply_capacity` bytes after the header.
    pub(crate) fn new(
        unique: u64,
        opcode: u32,
        spec: ReplySpec,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8]) -> Result<usize>,
    ) -> Result<Arc<Self>> {
        let mut scratch = KVec::from_elem(0u8, in_len, GFP_KERNEL)?;
        let used = build(&mut scratch)?;
        let built = scratch
            .get(..used)
            .filter(|b| !b.is_empty())
            .ok_or(EINVAL)?;
        let mut inb = KVec::with_capacity(used, GFP_KERNEL)?;
        inb.extend_from_slice(built, GFP_KERNEL)?;
        let out_len = if matches!(spec, ReplySpec::NoReply) {
            0
        } else {
            OutHeader::SIZE + reply_capacity
        };
        let mut out_buf = KVec::from_elem(0u8, out_len.max(1), GFP_KERNEL)?;
        let out = NonNull::new(out_buf.as_mut_ptr()).ok_or(ENOMEM)?;
        Arc::pin_init(
            // INVARIANT: `out` points into `out_buf`, which the request owns
            // and never resizes; nothing has been queued yet.
            pin_init!(Request {
                unique,
                opcode,
                spec,
                inb,
                _out_buf: out_buf,
                out,
                out_len,
                state <- new_spinlock!(State { ended: None }, "virtiofs_rs::Request::state"),
                done <- new_condvar!("virtiofs_rs::Request::done"),
            }),
            GFP_KERNEL,
        )
    }

    /// Ends the request (first end wins) and wakes its waiter.
    fn end(&self, result: Ended) {
        let mut st = self.state.lock();
        if st.ended.is_none() {
            st.ended = Some(result);
        }
        drop(st);
        self.done.notify_all();
    }

    /// Validates the reply the device wrote (`used` bytes, by its account)
    /// and ends the request with it.
    fn complete(&self, used: u32) {
        if self.out_len == 0 {
            // No reply expected (FORGET): the device only consumed it.
            self.end(Ok(0));
            return;
        }
        // SAFETY: The device handed the token back, so it is done with the
        // buffer and the request has not ended yet: by the type invariant
        // the CPU may read the `out_len` bytes now.
        let out = unsafe { core::slice::from_raw_parts(self.out.as_ptr(), self.out_len) };
        if used == 0 && Opcode::try_from(self.opcode).is_ok_and(reply::may_go_unanswered) {
            self.end(Ok(0));
            return;
        }
        let result = match reply::validate(out, 0, used, self.unique, self.spec) {
            Ok(Outcome::Ok(p)) => Ok(p.len),
            Ok(Outcome::Err(e)) => Err(Error::from_errno(e.to_kernel())),
            Err(e) => {
                warn_ratelimited!(
                    "bad reply to opcode {} (unique {:#x}): {:?}; failing it with EIO\n",
                    self.opcode,
                    self.unique,
                    e
                );
                Err(EIO)
            }
        };
        self.end(result);
    }

    /// Waits until the request ends; returns the payload length.
    ///
    /// A signal ends the wait with `ERESTARTSYS` (no FUSE_INTERRUPT is sent,
    /// as in C): the request stays queued, and its buffers with it, until
    /// the host answers or the device is reset. Unlike C, whose waiters
    /// block until the host replies, a host that never answers cannot hang
    /// a killable task.
    pub(crate) fn wait(&self) -> Result<u32> {
        let mut st = self.state.lock();
        loop {
            if let Some(r) = st.ended {
                return r;
            }
            if self.done.wait_interruptible(&mut st) {
                return Err(ERESTARTSYS);
            }
        }
    }

    /// The reply payload of an ended request (at most its validated length).
    pub(crate) fn payload(&self, len: u32) -> &[u8] {
        let st = self.state.lock();
        if st.ended.is_none() {
            return &[];
        }
        drop(st);
        // SAFETY: The request ended, so by the type invariant only the CPU
        // touches the buffer now, and it is never written again.
        let out = unsafe { core::slice::from_raw_parts(self.out.as_ptr(), self.out_len) };
        let start = OutHeader::SIZE.min(out.len());
        let end = start.saturating_add(len as usize).min(out.len());
        &out[start..end]
    }
}

/// The part of a queue that the lock protects.
struct Inner {
    vq: Option<virtio::Virtqueue<Token>>,
    /// Requests queued to the device, parked or failing, not yet ended.
    in_flight: usize,
    /// Requests that found the ring full, in submission order.
    parked: KVec<Token>,
    /// Requests the ring refused, to be ended by the work.
    failed: KVec<(Token, Error)>,
}

/// One virtqueue and its requests.
#[pin_data]
pub(crate) struct FsQueue {
    #[pin]
    inner: SpinLock<Inner>,
    #[pin]
    work: Work<FsQueue>,
}

impl_has_work! {
    impl HasWork<Self> for FsQueue { self.work }
}

impl WorkItem for FsQueue {
    type Pointer = Arc<FsQueue>;

    fn run(this: Arc<FsQueue>) {
        this.process();
    }
}

impl FsQueue {
    /// Wraps `vq` for the driver.
    pub(crate) fn new(vq: virtio::Virtqueue<Token>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(FsQueue {
                inner <- new_spinlock!(
                    Inner { vq: Some(vq), in_flight: 0, parked: KVec::new(), failed: KVec::new() },
                    "virtiofs_rs::FsQueue::inner"
                ),
                work <- new_work!("virtiofs_rs::FsQueue::work"),
            }),
            GFP_KERNEL,
        )
    }

    /// Waits until queued completion work has run (`flush_work()`).
    pub(crate) fn flush(&self) {
        // SAFETY: `work` is a live, initialised work item of this queue.
        unsafe { bindings::flush_work(Work::raw_get(&self.work)) };
    }

    /// Schedules the completion work (from the interrupt callback).
    pub(crate) fn schedule(this: Arc<FsQueue>) {
        // Already queued is fine: the pending run will see the new buffers.
        let _ = workqueue::system().enqueue(this);
    }

    /// Queues `req` and kicks the device. Fails only if the queue is gone
    /// (`ENOTCONN`); other failures end the request from the work.
    pub(crate) fn submit(self: &Arc<Self>, req: Token) -> Result {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        let Some(vq) = inner.vq.as_mut() else {
            return Err(enotconn());
        };
        if !inner.parked.is_empty() {
            // Keep the order: behind the ones already waiting for room.
            return match inner.parked.push(req, GFP_ATOMIC) {
                Ok(()) => {
                    inner.in_flight += 1;
                    Ok(())
                }
                Err(_) => Err(ENOMEM),
            };
        }
        match Self::add(vq, req) {
            Ok(()) => {
                inner.in_flight += 1;
                vq.kick();
                Ok(())
            }
            Err((e, req)) if e == ENOSPC => {
                inner.parked.push(req, GFP_ATOMIC).map_err(|_| ENOMEM)?;
                inner.in_flight += 1;
                Ok(())
            }
            Err((e, req)) => {
                inner
                    .failed
                    .push((req, e), GFP_ATOMIC)
                    .map_err(|_| ENOMEM)?;
                inner.in_flight += 1;
                drop(g);
                Self::schedule(self.clone());
                Ok(())
            }
        }
    }

    fn add(
        vq: &mut virtio::Virtqueue<Token>,
        req: Token,
    ) -> core::result::Result<(), (Error, Token)> {
        let out = [(req.inb.as_ptr(), req.inb.len())];
        let inb = [(req.out.as_ptr(), req.out_len)];
        let inb: &[(*mut u8, usize)] = if req.out_len == 0 { &[] } else { &inb };
        let token = req.clone();
        // SAFETY: Both buffers are kmalloc'ed and owned by the request,
        // whose `Arc` is the token, so they stay valid until the token comes
        // back; the CPU does not read the writable one before then (type
        // invariant of `Request`).
        unsafe { vq.add_sgs(&out, inb, token, GFP_ATOMIC) }.map_err(|(e, _t)| (e, req))
    }

    /// The completion work: end used requests, retry parked ones, end
    /// failed ones.
    fn process(&self) {
        loop {
            let item = {
                let mut g = self.inner.lock();
                let inner = &mut *g;
                let Some(vq) = inner.vq.as_mut() else {
                    return;
                };
                vq.disable_cb();
                match vq.get_buf() {
                    Some(x) => {
                        inner.in_flight = inner.in_flight.saturating_sub(1);
                        Some(x)
                    }
                    None if vq.enable_cb() => None,
                    // Buffers were used while enabling: go round again.
                    None => continue,
                }
            };
            match item {
                Some((req, used)) => req.complete(used),
                None => break,
            }
        }

        let failed = {
            let mut g = self.inner.lock();
            let inner = &mut *g;
            if let Some(vq) = inner.vq.as_mut() {
                let mut kicked = false;
                let mut full = false;
                // Rebuilt in order: what still finds the ring full stays.
                let mut still = KVec::new();
                for req in core::mem::take(&mut inner.parked) {
                    if full {
                        Self::keep(&mut still, req, &mut inner.in_flight);
                        continue;
                    }
                    match Self::add(vq, req) {
                        Ok(()) => kicked = true,
                        Err((e, req)) if e == ENOSPC => {
                            full = true;
                            Self::keep(&mut still, req, &mut inner.in_flight);
                        }
                        Err((e, req)) => {
                            if inner.failed.push((req.clone(), e), GFP_ATOMIC).is_err() {
                                // No room to defer it: end it here (lock
                                // order `inner` -> `state` allows it).
                                inner.in_flight = inner.in_flight.saturating_sub(1);
                                req.end(Err(e));
                            }
                        }
                    }
                }
                inner.parked = still;
                if kicked {
                    vq.kick();
                }
            }
            let n = inner.failed.len();
            inner.in_flight = inner.in_flight.saturating_sub(n);
            core::mem::take(&mut inner.failed)
        };
        for (req, e) in failed {
            req.end(Err(e));
        }
    }

    /// Keeps a parked request; if even that allocation fails the request is
    /// dropped from the books (its waiter is woken with `ENOMEM`).
    fn keep(parked: &mut KVec<Token>, req: Token, in_flight: &mut usize) {
        if parked.push(req.clone(), GFP_ATOMIC).is_err() {
            *in_flight = in_flight.saturating_sub(1);
            req.end(Err(ENOMEM));
        }
    }

    /// After a device reset: takes the virtqueue handle out (so nothing uses
    /// it again before the caller deletes the queues) and ends every request
    /// the queue still holds with `ENOTCONN`.
    pub(crate) fn drain(&self) {
        let (vq, parked, failed) = {
            let mut g = self.inner.lock();
            let inner = &mut *g;
            inner.in_flight = 0;
            (
                inner.vq.take(),
                core::mem::take(&mut inner.parked),
                core::mem::take(&mut inner.failed),
            )
        };
        if let Some(mut vq) = vq {
            while let Some(req) = vq.detach_unused_buf() {
                req.end(Err(enotconn()));
            }
        }
        for req in parked {
            req.end(Err(enotconn()));
        }
        for (req, _) in failed {
            req.end(Err(enotconn()));
        }
    }
}
