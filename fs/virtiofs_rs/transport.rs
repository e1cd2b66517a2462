// SPDX-License-Identifier: GPL-2.0-only

//! FUSE over virtio: requests, their submission, completion and teardown.
//!
//! A [`Request`] owns one buffer: the device-readable part (the
//! `fuse_in_header` and arguments, built with `proto::fuse::request`),
//! then the device-writable part (room for the `fuse_out_header` and the
//! reply), as C's `argbuf`; plus the scatter-gather list describing them
//! (and caller pages), built with `GFP_KERNEL` when the request is made so
//! that queueing never allocates.
//!
//! Lifecycle (as C's, fs/fuse/virtio_fs.c, with the differences noted):
//! - submit: [`FsQueue::submit`] consumes the `Request` (so it can never be
//!   queued twice) and returns a [`Pending`] handle, which can only wait.
//!   Under the queue lock the buffers are added; the kick happens after the
//!   unlock. A full ring (`ENOSPC`) parks the request on an intrusive list
//!   (no allocation, so a full ring never turns into `ENOMEM`); the
//!   completion work retries parked requests in order.
//! - completion: the interrupt callback only schedules the queue's work;
//!   the work takes used buffers, validates every reply
//!   (`proto::fuse::reply::validate`: used length, `out.h.len`, unique,
//!   errno, payload size for the opcode) and wakes the waiter. A bad reply
//!   fails that request with `EIO` and a rate-limited message.
//! - interruption: as C's `request_wait_answer`, a signal sends
//!   FUSE_INTERRUPT (on the hiprio queue) and the wait goes on, killable;
//!   a fatal signal abandons the request, but for one that is waited out
//!   ([`Request::set_wait_out`]: locks), which resends the INTERRUPT every
//!   2 s (once the host gave the last one back) and waits for the host's
//!   answer whatever comes; a forced one ([`Pending::wait_forced`]:
//!   FLUSH) sends none and waits. If the host answers an abandoned
//!   request that took a reference on the host (LOOKUP, OPENDIR), the
//!   completion path sends the request that gives it back (FORGET,
//!   RELEASEDIR), prepared when the request was made. C 6.12's virtio-fs
//!   sends no INTERRUPT and waits for a sent request uninterruptibly.
//! - background: a request given an [`OnEnd`] callback
//!   ([`Request::set_on_end`]) is sent with [`Connection::send_background`]
//!   and nobody waits for it; the callback runs once when it ends, with
//!   the outcome and the inline payload (page cache readahead, as C's
//!   `fuse_readahead` background READs). A request dropped unsent drops
//!   its callback unrun, releasing what it owns.
//! - teardown: when the device goes away the virtio abstraction resets it
//!   and hands back every queued token; [`end_unused`] ends those with
//!   `ENOTCONN`. Parked requests are ended by [`FsQueue::close`] first.
//!   Unlike C, nothing sleeps waiting for the host on remove.
//!
//! Lock order: virtqueue lock (`FsQueue::vq`) -> `Shared::sg` ->
//! `Shared::state`. All are spinlocks and nothing sleeps under them.

use crate::errno::enotconn;
use crate::proto::fuse::{
    abi::{InterruptIn, Opcode, OutHeader, Wire},
    reply::{self, Outcome, ReplySpec},
    request,
};
use crate::ratelimit::warn_ratelimited;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    alloc::{
        flags::{__GFP_NOFAIL, GFP_ATOMIC},
        Flags,
    },
    bindings,
    ffi::c_uint,
    impl_has_list_links, impl_has_work, impl_list_arc_safe, impl_list_item,
    list::{AtomicTracker, List, ListArc, ListLinks, TryNewListArc},
    new_spinlock, new_work,
    prelude::*,
    sync::{Arc, SpinLock, UniqueArc},
    types::Opaque,
    virtio::{self, Segment, SgTable},
    workqueue::{self, Work, WorkItem},
};

/// A virtqueue token: the request it carries.
pub(crate) type Token = Arc<Shared>;

/// How a request ended: the payload length, or an error.
pub(crate) type Ended = core::result::Result<u32, Error>;

/// What to send if the host answers a request nobody waits for any more.
pub(crate) struct Orphan {
    /// Where to send it.
    queue: Arc<FsQueue>,
    /// The request, prepared in advance.
    req: Request,
    /// Completes `req` from the abandoned request's reply payload; false
    /// if there is nothing to give back (a negative LOOKUP, say).
    fill: fn(&mut Request, &[u8]) -> bool,
    /// A second thing to give back from the same reply (CREATE took both
    /// a lookup and a handle).
    then: Option<KBox<Orphan>>,
}

impl Orphan {
    /// Sends `req`, completed by `fill` from the reply, on `queue` if the
    /// request this is attached to is answered after being abandoned.
    pub(crate) fn new(
        queue: Arc<FsQueue>,
        req: Request,
        fill: fn(&mut Request, &[u8]) -> bool,
    ) -> Self {
        Orphan {
            queue,
            req,
            fill,
            then: None,
        }
    }

    /// Adds `next`, given back from the same reply after this one.
    pub(crate) fn then(mut self, next: Orphan) -> Result<Self> {
        self.then = Some(KBox::new(next, GFP_KERNEL)?);
        Ok(self)
    }
}

/// A callback of [`OnEnd`].
trait EndFn: Send {
    /// Runs the callback (at most once: later calls do nothing).
    fn run(&mut self, ended: Ended, payload: &[u8]);
}

/// A closure run at most once.
struct Once<F>(Option<F>);

impl<F: FnOnce(Ended, &[u8]) + Send> EndFn for Once<F> {
    fn run(&mut self, ended: Ended, payload: &[u8]) {
        if let Some(f) = self.0.take() {
            f(ended, payload);
        }
    }
}

/// What runs when a background request ends: a closure given the outcome
/// (payload length or error) and the inline payload. It runs in the
/// queue's completion work, or at teardown from whoever ends the request,
/// with no transport lock held, and must not sleep (it may run where
/// sleeping is not allowed). Dropped unrun, it drops what it captured.
pub(crate) struct OnEnd(KBox<dyn EndFn>);

impl OnEnd {
    /// Boxes `f`.
    pub(crate) fn new<F>(f: F) -> Result<Self>
    where
        F: FnOnce(Ended, &[u8]) + Send + 'static,
    {
        // The 6.12 `KBox` has no unsizing coercion: go through the raw
        // pointer, whose coercion attaches `Once<F>`'s vtable.
        let boxed: KBox<Once<F>> = KBox::new(Once(Some(f)), GFP_KERNEL)?;
        let thin: *mut Once<F> = KBox::into_raw(boxed);
        let raw: *mut dyn EndFn = thin;
        // SAFETY: `raw` comes from `KBox::into_raw` of a `KBox` with the
        // same allocator, holding a valid `Once<F>`; the unsized pointer
        // describes that same value (its vtable gives its layout), and
        // ownership passes back to the new box.
        Ok(OnEnd(unsafe { KBox::from_raw(raw) }))
    }

    fn run(mut self, ended: Ended, payload: &[u8]) {
        self.0.run(ended, payload);
    }
}

struct State {
    ended: Option<Ended>,
    /// The waiter left (signal); the reply, if any, goes to `orphan`.
    abandoned: bool,
    orphan: Option<Orphan>,
    /// Runs once when the request ends (background requests).
    on_end: Option<OnEnd>,
}

/// The shared part of a request: what the device, the waiter and the
/// completion path all reach.
///
/// # Invariants
///
/// `buf` (never resized) holds the arguments (`in_len` bytes from its
/// start) and, after them, the `out_len` bytes `out` points to. Until
/// `state.ended` is set the device may write those and the CPU does not
/// read them; after, only the CPU reads them. The arguments are written
/// only while the request is unique (before it is queued).
#[pin_data]
pub(crate) struct Shared {
    unique: u64,
    opcode: u32,
    spec: ReplySpec,
    /// The arguments, then the reply: one allocation.
    buf: KVec<u8>,
    in_len: usize,
    out: NonNull<u8>,
    out_len: usize,
    /// Bytes of caller pages after `out` the device may write (READ data).
    page_capacity: usize,
    /// The request borrows caller pages: its waiter never leaves before it
    /// ends (see [`Request::with_pages`]).
    borrows: bool,
    /// After a signal and its INTERRUPT, the waiter stays until the request
    /// ends, whatever signal comes ([`Request::set_wait_out`]).
    wait_out: bool,
    #[pin]
    sg: SpinLock<SgTable>,
    #[pin]
    state: SpinLock<State>,
    /// Completed (`complete_all`) when the request ends.
    #[pin]
    done: Opaque<bindings::completion>,
    #[pin]
    links: ListLinks<0>,
    #[pin]
    tracker: AtomicTracker<0>,
}

// SAFETY: The raw `out` pointer is to heap memory owned by the request;
// access to it follows the protocol in the type invariant, and the rest is
// `Send`/`Sync` plain data or kernel locks.
unsafe impl Send for Shared {}
// SAFETY: See above.
unsafe impl Sync for Shared {}

impl_has_list_links! {
    impl HasListLinks<0> for Shared { self.links }
}
impl_list_arc_safe! {
    impl ListArcSafe<0> for Shared { tracked_by tracker: AtomicTracker<0>; }
}
impl_list_item! {
    impl ListItem<0> for Shared { using ListLinks; }
}

/// The segments of a request's data: up to [`Segments::INLINE`] in place
/// (a page or two of I/O allocates nothing), more on the heap.
///
/// # Invariants
///
/// With an empty `heap`, the first `len` entries of `inline` are the
/// segments; otherwise `heap` holds them all.
pub(crate) struct Segments {
    inline: [Segment; Segments::INLINE],
    len: usize,
    heap: KVec<Segment>,
}

impl Segments {
    /// Segments kept in place.
    pub(crate) const INLINE: usize = 4;

    /// Room for `n` segments: allocated only beyond [`Segments::INLINE`].
    pub(crate) fn with_capacity(n: usize) -> Result<Self> {
        let heap = if n > Self::INLINE {
            KVec::with_capacity(n, GFP_KERNEL)?
        } else {
            KVec::new()
        };
        Ok(Segments {
            inline: [Segment::Buf(core::ptr::null(), 0); Self::INLINE],
            len: 0,
            heap,
        })
    }

    /// Appends `seg`, moving to the heap when the place is full (straight
    /// to it when it was reserved).
    pub(crate) fn push(&mut self, seg: Segment) -> Result {
        if self.heap.is_empty() && self.heap.capacity() > 0 && self.len == 0 {
            return Ok(self.heap.push(seg, GFP_KERNEL)?);
        }
        if self.heap.is_empty() && self.len < Self::INLINE {
            self.inline[self.len] = seg;
            self.len += 1;
            return Ok(());
        }
        if self.heap.is_empty() {
            self.heap
                .extend_from_slice(&self.inline[..self.len], GFP_KERNEL)?;
        }
        Ok(self.heap.push(seg, GFP_KERNEL)?)
    }
}

impl core::ops::Deref for Segments {
    type Target = [Segment];

    fn deref(&self) -> &[Segment] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

/// The arguments and reply, in bytes, of a [`Request::new_nofail`] at most.
const NOFAIL_MAX: usize = 1024;

/// A request being built: not queued yet, owned by one caller.
pub(crate) struct Request {
    shared: Pin<UniqueArc<Shared>>,
}

impl Request {
    /// A request of at most `in_len` device-readable bytes filled by
    /// `build` (which returns how many it used), with room for a reply of
    /// `reply_capacity` bytes after the header (none for `NoReply`).
    pub(crate) fn new(
        unique: u64,
        opcode: Opcode,
        spec: ReplySpec,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8]) -> Result<usize>,
    ) -> Result<Self> {
        Self::without_pages(
            GFP_KERNEL,
            unique,
            opcode,
            spec,
            in_len,
            reply_capacity,
            build,
        )
    }

    /// As [`Request::new`], but every allocation is `__GFP_NOFAIL`, as C's
    /// forced requests: for a request that must go (FLUSH, the only release
    /// of a process's POSIX locks on the host). It can still fail if
    /// `build` does, or if its arguments and reply exceed `NOFAIL_MAX`.
    pub(crate) fn new_nofail(
        unique: u64,
        opcode: Opcode,
        spec: ReplySpec,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8]) -> Result<usize>,
    ) -> Result<Self> {
        // Small, as `__GFP_NOFAIL` wants its allocations (order 0).
        if in_len.saturating_add(reply_capacity) > NOFAIL_MAX {
            return Err(EINVAL);
        }
        let gfp = GFP_KERNEL | __GFP_NOFAIL;
        Self::without_pages(gfp, unique, opcode, spec, in_len, reply_capacity, build)
    }

    /// [`Request::new`] allocating with `gfp`.
    fn without_pages(
        gfp: Flags,
        unique: u64,
        opcode: Opcode,
        spec: ReplySpec,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8]) -> Result<usize>,
    ) -> Result<Self> {
        // SAFETY: No page segments.
        unsafe {
            Self::alloc(
                gfp,
                unique,
                opcode,
                spec,
                in_len,
                reply_capacity,
                build,
                &[],
                &[],
            )
        }
    }

    /// As [`Request::new`], followed by caller pages: `out_pages` for the
    /// device to read after the arguments (WRITE data, counted by `build`
    /// with `external`), `in_pages` for it to write after the inline reply
    /// (READ data). Such a request is never abandoned: its waiter stays
    /// until it ends, whatever signal comes (as C's FUSE waits out a sent
    /// request).
    ///
    /// # Safety
    ///
    /// The pages must stay valid (and the `in_pages` unread by the CPU)
    /// until the request ends or is dropped unsent: kept by its waiter
    /// until the wait returns, or by its [`OnEnd`] (which runs, or is
    /// dropped, only then).
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn with_pages(
        unique: u64,
        opcode: Opcode,
        spec: ReplySpec,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8]) -> Result<usize>,
        out_pages: &[Segment],
        in_pages: &[Segment],
    ) -> Result<Self> {
        // SAFETY: The caller vouches for the pages.
        unsafe {
            Self::alloc(
                GFP_KERNEL,
                unique,
                opcode,
                spec,
                in_len,
                reply_capacity,
                build,
                out_pages,
                in_pages,
            )
        }
    }

    /// [`Request::with_pages`], allocating with `gfp`.
    ///
    /// # Safety
    ///
    /// As [`Request::with_pages`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn alloc(
        gfp: Flags,
        unique: u64,
        opcode: Opcode,
        spec: ReplySpec,
        in_len: usize,
        reply_capacity: usize,
        build: impl FnOnce(&mut [u8]) -> Result<usize>,
        out_pages: &[Segment],
        in_pages: &[Segment],
    ) -> Result<Self> {
        let page_capacity = in_pages.iter().try_fold(0usize, |acc, s| match *s {
            Segment::Page(_, len, _) => acc.checked_add(len as usize).ok_or(EINVAL),
            Segment::Buf(_, len) => acc.checked_add(len).ok_or(EINVAL),
        })?;
        let borrows = !out_pages.is_empty() || !in_pages.is_empty();
        let out_len = if matches!(spec, ReplySpec::NoReply) {
            0
        } else {
            OutHeader::SIZE + reply_capacity
        };
        // The reply starts 8-aligned after the arguments.
        let out_at = in_len.checked_next_multiple_of(8).ok_or(EINVAL)?;
        let total = out_at.checked_add(out_len).ok_or(EINVAL)?;
        let mut buf = KVec::from_elem(0u8, total, gfp)?;
        let used = build(&mut buf[..in_len])?;
        if used == 0 || used > in_len {
            return Err(EINVAL);
        }
        let base = buf.as_mut_ptr();
        // SAFETY: `out_at <= total`, in (or one past the end of) `buf`.
        let out = NonNull::new(unsafe { base.add(out_at) }).ok_or(ENOMEM)?;
        let args = [Segment::Buf(base.cast_const(), used)];
        let reply = [Segment::Buf(out.as_ptr().cast_const(), out_len)];
        let ins: &[&[Segment]] = if out_len == 0 {
            &[]
        } else {
            &[&reply, in_pages]
        };
        // SAFETY: `buf` is kmalloc'ed and owned by the request, never
        // resized (its heap block stays put when the vector moves), and
        // lives until the request, hence its token, is dropped; the caller
        // vouches for the pages until the request ends.
        let sg = unsafe { SgTable::new(&[&args, out_pages], ins, gfp) }?;
        let shared = UniqueArc::pin_init(
            // INVARIANT: `out` points `out_len` bytes into `buf` after the
            // `used` bytes of arguments; the request owns `buf` and never
            // resizes it; nothing has been queued yet.
            pin_init!(Shared {
                unique,
                opcode: opcode as u32,
                spec,
                buf,
                in_len: used,
                out,
                out_len,
                page_capacity,
                borrows,
                wait_out: false,
                sg <- new_spinlock!(sg, "virtiofs_rs::Request::sg"),
                state <- new_spinlock!(
                    State { ended: None, abandoned: false, orphan: None, on_end: None },
                    "virtiofs_rs::Request::state"
                ),
                // SAFETY: `init_completion` initialises the completion in
                // place; it never moves (pinned in the `UniqueArc`).
                done <- Opaque::ffi_init(|p| unsafe { bindings::init_completion(p) }),
                links <- ListLinks::new(),
                tracker <- AtomicTracker::new(),
            }),
            gfp,
        )?;
        Ok(Request { shared })
    }

    /// The request's unique id.
    pub(crate) fn unique(&self) -> u64 {
        self.shared.unique
    }

    /// Rewrites the request's arguments in place (same length), for a
    /// request prepared before its arguments were known (FORGET).
    pub(crate) fn rewrite(&mut self, build: impl FnOnce(&mut [u8]) -> Result<usize>) -> Result {
        // SAFETY: `buf` is not structurally pinned (a `KVec` is `Unpin` and
        // moving it would not move its heap block); the `UniqueArc` gives
        // exclusive access, and the request is not queued.
        let shared = unsafe { self.shared.as_mut().get_unchecked_mut() };
        let len = shared.in_len;
        // SAFETY: The first `in_len` bytes of `buf` are the arguments,
        // which nothing else reaches now (above); the slice is made from
        // the raw pointer so that `out` stays valid.
        let args = unsafe { core::slice::from_raw_parts_mut(shared.buf.as_mut_ptr(), len) };
        let used = build(args)?;
        if used != len {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Makes the waiter stay after a signal: FUSE_INTERRUPT goes (again
    /// every [`INTERRUPT_RESEND_MS`]), and the wait goes on, killable, then
    /// after a fatal signal not even that, until the host answers (as C
    /// waits out a request it sent). For requests whose effect on the host
    /// must be known, a lock taken for instance.
    pub(crate) fn set_wait_out(&mut self) {
        // SAFETY: `wait_out` is not structurally pinned (a `bool`); the
        // `UniqueArc` gives exclusive access, and the request is not
        // queued.
        unsafe { self.shared.as_mut().get_unchecked_mut() }.wait_out = true;
    }

    /// Attaches what to send if this request is answered after its waiter
    /// left.
    pub(crate) fn set_orphan(&mut self, orphan: Orphan) {
        self.shared.state.lock().orphan = Some(orphan);
    }

    /// Makes this a background request: `on_end` runs when it ends
    /// (see [`OnEnd`]); send it with [`Connection::send_background`].
    pub(crate) fn set_on_end(&mut self, on_end: OnEnd) {
        self.shared.state.lock().on_end = Some(on_end);
    }
}

/// A queued request: all one can do is wait for it.
pub(crate) struct Pending {
    shared: Arc<Shared>,
}

impl Pending {
    /// The request's unique id.
    pub(crate) fn unique(&self) -> u64 {
        self.shared.unique
    }

    /// Whether the request has ended (answered, or its buffers given back).
    fn has_ended(&self) -> bool {
        self.shared.state.lock().ended.is_some()
    }

    /// Waits until the request ends and returns its reply. A signal runs
    /// `on_signal` (which sends FUSE_INTERRUPT) and the wait goes on, as in
    /// C; only a fatal signal ends it (`ERESTARTSYS`), abandoning the
    /// request (unless it ended meanwhile): its reply then goes to its
    /// [`Orphan`], if any.
    ///
    /// A server that honours the INTERRUPT answers `EINTR`; that becomes
    /// `ERESTARTSYS`, so a handler installed with `SA_RESTART` restarts
    /// the call instead of seeing an `EINTR` C's virtio-fs never gives.
    ///
    /// A request made with [`Request::set_wait_out`] is never abandoned:
    /// after the signal it waits killably, then (a fatal signal) without
    /// any, as C waits out a request it sent; meanwhile the INTERRUPT goes
    /// again every [`INTERRUPT_RESEND_MS`], so a host that saw it before
    /// the request itself (or a request still parked for room in the ring)
    /// still gets one it can match: but only once the host gave the last
    /// one back, so at most one is out per request whatever the host does.
    /// `on_signal` returns the INTERRUPT it queued, if it could.
    pub(crate) fn wait(self, on_signal: impl Fn() -> Option<Pending>) -> Result<Reply> {
        // SAFETY: `done` is an initialised completion, alive as long as the
        // request.
        if unsafe { bindings::wait_for_completion_interruptible(self.shared.done.get()) } == 0 {
            return self.reply();
        }
        if self.shared.borrows {
            // Caller pages are in the ring: wait it out, as C does, without
            // an INTERRUPT (a page cache read or write is not interrupted:
            // an EINTR there would turn a signal into SIGBUS or a short
            // write).
            return self.wait_uninterruptible();
        }
        let sent = on_signal();
        if self.shared.wait_out {
            return self.wait_out(on_signal, sent);
        }
        drop(sent);
        // SAFETY: As above.
        if unsafe { bindings::wait_for_completion_killable(self.shared.done.get()) } != 0 {
            let mut st = self.shared.state.lock();
            if st.ended.is_none() {
                st.abandoned = true;
                return Err(ERESTARTSYS);
            }
        }
        match self.reply() {
            Err(e) if e == EINTR => Err(ERESTARTSYS),
            r => r,
        }
    }

    /// The rest of [`Pending::wait`] for a request that is waited out;
    /// `sent` is the INTERRUPT already queued.
    fn wait_out(
        self,
        on_signal: impl Fn() -> Option<Pending>,
        mut sent: Option<Pending>,
    ) -> Result<Reply> {
        let done = self.shared.done.get();
        let period = kernel::time::msecs_to_jiffies(INTERRUPT_RESEND_MS);
        let mut fatal = false;
        loop {
            // SAFETY: As in `wait`.
            let (ended, timed_out) = unsafe {
                if fatal {
                    (
                        bindings::wait_for_completion_timeout(done, period) != 0,
                        true,
                    )
                } else {
                    match bindings::wait_for_completion_killable_timeout(done, period) {
                        0 => (false, true),
                        r if r > 0 => (true, false),
                        _ => {
                            // The fatal signal: the wait goes on, with no
                            // new INTERRUPT before the period is out.
                            fatal = true;
                            (false, false)
                        }
                    }
                }
            };
            if ended {
                break;
            }
            if timed_out && sent.as_ref().map_or(true, Pending::has_ended) {
                sent = on_signal();
            }
        }
        match self.reply() {
            Err(e) if e == EINTR => Err(ERESTARTSYS),
            r => r,
        }
    }

    /// Waits until the request ends, sleeping interruptibly until a signal
    /// comes and uninterruptibly after it, never abandoning the request:
    /// C's forced requests (`request_wait_answer` with `FR_FORCE`), for
    /// those a caller cannot try again (FLUSH at close). No FUSE_INTERRUPT
    /// goes, as from C's virtio-fs, whose `send_interrupt` sends none: a
    /// host that honoured it would skip what the request must do.
    pub(crate) fn wait_forced(self) -> Result<Reply> {
        // SAFETY: As in `wait`.
        if unsafe { bindings::wait_for_completion_interruptible(self.shared.done.get()) } == 0 {
            return self.reply();
        }
        self.wait_uninterruptible()
    }

    /// Waits, not interruptible by any signal, until the request ends
    /// (DESTROY: the session ends either way, as C forces it).
    pub(crate) fn wait_uninterruptible(self) -> Result<Reply> {
        // SAFETY: As in `wait`.
        unsafe { bindings::wait_for_completion(self.shared.done.get()) };
        self.reply()
    }

    /// The reply of an ended request.
    fn reply(self) -> Result<Reply> {
        let ended = self.shared.state.lock().ended;
        // `done` is completed only after `ended` is set.
        let len = ended.ok_or(EIO)??;
        Ok(Reply {
            shared: self.shared,
            len,
        })
    }
}

/// The validated reply of an ended request.
pub(crate) struct Reply {
    shared: Arc<Shared>,
    len: u32,
}

impl Reply {
    /// The reply payload (the bytes after the header) in the inline
    /// buffer.
    pub(crate) fn payload(&self) -> &[u8] {
        payload_of(&self.shared, self.len)
    }

    /// The whole payload's length, caller pages included (validated
    /// against what the request offered and what the opcode allows).
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Takes back the request prepared to give back what this one took
    /// (see [`Orphan`]): the waiter may need it (a FORGET for a node it
    /// cannot use), so it need not allocate one.
    pub(crate) fn take_orphan(&self) -> Option<Request> {
        self.shared.state.lock().orphan.take().map(|o| o.req)
    }
}

/// The payload of ended request `s`, `len` bytes at most.
fn payload_of(s: &Shared, len: u32) -> &[u8] {
    // SAFETY: `s` ended (callers hold a `Reply` or run after `end`), so by
    // the type invariant only the CPU touches the buffer now.
    let out = unsafe { core::slice::from_raw_parts(s.out.as_ptr(), s.out_len) };
    let start = OutHeader::SIZE.min(out.len());
    let end = start.saturating_add(len as usize).min(out.len());
    &out[start..end]
}

impl Shared {
    /// Ends the request (first end wins) and wakes its waiter; if the
    /// waiter left and the host answered, returns what must be sent to give
    /// back what the reply took.
    fn end(&self, result: Ended) -> Option<Orphan> {
        let mut st = self.state.lock();
        if st.ended.is_some() {
            return None;
        }
        st.ended = Some(result);
        let orphan = if st.abandoned && result.is_ok() {
            st.orphan.take()
        } else {
            None
        };
        let on_end = st.on_end.take();
        drop(st);
        // SAFETY: `done` is an initialised completion.
        unsafe { bindings::complete_all(self.done.get()) };
        if let Some(f) = on_end {
            f.run(result, payload_of(self, result.unwrap_or(0)));
        }
        orphan
    }

    /// Wakes the waiter of a request whose `ended` was set under the
    /// queue lock, and runs its [`OnEnd`].
    fn finish_ended(&self) {
        let (result, on_end) = {
            let mut st = self.state.lock();
            (st.ended, st.on_end.take())
        };
        // SAFETY: `done` is an initialised completion.
        unsafe { bindings::complete_all(self.done.get()) };
        if let (Some(result), Some(f)) = (result, on_end) {
            f.run(result, payload_of(self, result.unwrap_or(0)));
        }
    }

    /// Validates the reply the device wrote (`used` bytes, by its account)
    /// and ends the request with it.
    fn complete(&self, used: u32) {
        if self.out_len == 0 {
            // No reply expected (FORGET, INTERRUPT): the device only
            // consumed it.
            let _ = self.end(Ok(0));
            return;
        }
        // SAFETY: The device handed the token back, so it is done with the
        // buffer and the request has not ended yet: by the type invariant
        // the CPU may read the `out_len` bytes now.
        let out = unsafe { core::slice::from_raw_parts(self.out.as_ptr(), self.out_len) };
        if used == 0 && Opcode::try_from(self.opcode).is_ok_and(reply::may_go_unanswered) {
            let _ = self.end(Ok(0));
            return;
        }
        let result = match reply::validate(out, self.page_capacity, used, self.unique, self.spec) {
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
        let mut next = self.end(result);
        while let Some(mut o) = next {
            let len = result.unwrap_or(0);
            if (o.fill)(&mut o.req, payload_of(self, len)) {
                // Nobody waits for this one either: its reply is dropped.
                if o.queue.submit(o.req).is_err() {
                    warn_ratelimited!(
                        "cannot give back what abandoned request {:#x} took\n",
                        self.unique
                    );
                }
            }
            next = o.then.map(KBox::into_inner);
        }
    }
}

/// A token the device never used, handed back at teardown.
pub(crate) fn end_unused(token: Token) {
    let _ = token.end(Err(enotconn()));
}

/// The transport's state of one virtqueue, under the queue lock.
pub(crate) struct QueueState {
    /// Requests that found the ring full, in submission order.
    parked: List<Shared>,
    /// Set when the device goes away: nothing is queued afterwards.
    closed: bool,
}

impl QueueState {
    /// The state of a new queue.
    pub(crate) fn new() -> Self {
        QueueState {
            parked: List::new(),
            closed: false,
        }
    }
}

/// A virtqueue of the device with the transport's state.
pub(crate) type Vq = virtio::Virtqueue<Token, QueueState>;

/// One virtqueue and its completion work.
#[pin_data]
pub(crate) struct FsQueue {
    vq: Arc<Vq>,
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

/// How often a request waited out after a signal sends its FUSE_INTERRUPT
/// again ([`Request::set_wait_out`]).
const INTERRUPT_RESEND_MS: u32 = 2000;

/// Used buffers [`FsQueue::process`] takes per lock hold.
const COMPLETE_BATCH: usize = 16;

/// Queues `req` on `ring`; on failure the token comes back with the error.
fn add(
    ring: &mut virtio::Ring<'_, Token>,
    req: &Arc<Shared>,
) -> core::result::Result<(), (Error, Token)> {
    let mut sg = req.sg.lock();
    // SAFETY: The table describes the request's own buffers, which its
    // `Arc` (the token) keeps alive until the token comes back, and caller
    // pages, which its waiter or its `OnEnd` keeps until it ends
    // (`Request::with_pages`); the CPU does not read the writable ones
    // before then (type invariant of `Shared`).
    unsafe { ring.add_sgs(&mut sg, req.clone(), GFP_ATOMIC) }
}

impl FsQueue {
    /// Wraps `vq` for the driver.
    pub(crate) fn new(vq: Arc<Vq>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(FsQueue {
                vq,
                work <- new_work!("virtiofs_rs::FsQueue::work"),
            }),
            GFP_KERNEL,
        )
    }

    /// The number of descriptors of the ring (0 once the device is gone).
    pub(crate) fn vring_size(&self) -> u32 {
        let mut g = self.vq.lock();
        let (ring, _) = g.split();
        ring.map_or(0, |r| r.vring_size())
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

    /// Queues `req` and kicks the device; returns the handle to wait on.
    /// A full ring parks the request (no allocation); a closed queue fails
    /// with `ENOTCONN`.
    pub(crate) fn submit(&self, req: Request) -> Result<Pending> {
        let shared: Arc<Shared> = req.shared.into();
        let mut g = self.vq.lock();
        let (ring, st) = g.split();
        let Some(mut ring) = ring.filter(|_| !st.closed) else {
            return Err(enotconn());
        };
        if shared.sg.lock().len() > ring.vring_size() as usize {
            // It would never fit without indirect descriptors, and would
            // wait parked for room that never comes.
            return Err(EINVAL);
        }
        if !st.parked.is_empty() {
            // Keep the order: behind the ones already waiting for room.
            Self::park(st, shared.clone())?;
            return Ok(Pending { shared });
        }
        match add(&mut ring, &shared) {
            Ok(()) => {
                g.kick();
                Ok(Pending { shared })
            }
            Err((e, _token)) if e == ENOSPC => {
                Self::park(st, shared.clone())?;
                Ok(Pending { shared })
            }
            Err((e, _token)) => Err(e),
        }
    }

    /// Parks a request that found the ring full.
    fn park(st: &mut QueueState, shared: Arc<Shared>) -> Result {
        // A request is parked at most once at a time (it is either in the
        // ring, parked, or being moved between them under the lock), so no
        // other `ListArc` of it exists.
        let item = ListArc::try_from_arc(shared).map_err(|_| EINVAL)?;
        st.parked.push_back(item);
        Ok(())
    }

    /// The completion work: end used requests, then retry parked ones.
    /// As C's `virtio_fs_requests_done_work`, the used buffers are taken
    /// in one go under the lock (up to [`COMPLETE_BATCH`] at a time), and
    /// ended after it is dropped.
    fn process(&self) {
        loop {
            let mut batch: [Option<(Arc<Shared>, u32)>; COMPLETE_BATCH] = Default::default();
            let mut n = 0;
            {
                let mut g = self.vq.lock();
                let (ring, _) = g.split();
                let Some(mut ring) = ring else {
                    return;
                };
                ring.disable_cb();
                loop {
                    while n < COMPLETE_BATCH {
                        let Some(x) = ring.get_buf() else {
                            break;
                        };
                        batch[n] = Some(x);
                        n += 1;
                    }
                    // A full batch leaves the callback off: the loop below
                    // comes back for the rest.
                    if n == COMPLETE_BATCH || ring.enable_cb() {
                        break;
                    }
                    // Buffers were used while enabling: take them too.
                    ring.disable_cb();
                }
            }
            for (req, used) in batch.iter_mut().filter_map(Option::take) {
                req.complete(used);
            }
            if n < COMPLETE_BATCH {
                break;
            }
        }
        self.retry_parked();
    }

    /// Moves parked requests into the ring while it has room, in order.
    fn retry_parked(&self) {
        let mut failed = List::<Shared>::new();
        let mut g = self.vq.lock();
        let (ring, st) = g.split();
        let Some(mut ring) = ring else {
            return;
        };
        let mut added = false;
        while let Some(item) = st.parked.pop_front() {
            let req = item.into_arc();
            match add(&mut ring, &req) {
                Ok(()) => added = true,
                Err((e, _token)) => {
                    let Ok(item) = ListArc::try_from_arc(req) else {
                        // Unreachable: `into_arc` above gave the list
                        // tracking back. The request cannot be held here.
                        continue;
                    };
                    if e == ENOSPC {
                        st.parked.push_front(item);
                        break;
                    }
                    // Ended after the unlock, with the error: `failed`
                    // holds only requests that no ring or list holds.
                    item.state.lock().ended.get_or_insert(Err(e));
                    failed.push_back(item);
                }
            }
        }
        if added {
            g.kick();
        } else {
            drop(g);
        }
        while let Some(item) = failed.pop_front() {
            item.into_arc().finish_ended();
        }
    }

    /// The device is going away: refuse new requests and end the parked
    /// ones with `ENOTCONN`. Queued ones come back through [`end_unused`]
    /// once the device is reset.
    pub(crate) fn close(&self) {
        let mut parked = {
            let mut g = self.vq.lock();
            let st = g.state();
            st.closed = true;
            core::mem::take(&mut st.parked)
        };
        while let Some(item) = parked.pop_front() {
            let _ = item.into_arc().end(Err(enotconn()));
        }
    }
}

/// The FUSE connection over a device's queues: queue 0 is hiprio (FORGET,
/// INTERRUPT), the others carry requests, chosen by the submitting CPU.
pub(crate) struct Connection {
    /// Cleared when the device goes away: nothing is sent afterwards.
    connected: AtomicBool,
    /// The next FUSE unique id (even numbers, never 0: `FUSE_INT_REQ_BIT`
    /// marks INTERRUPT requests).
    next_unique: AtomicU64,
    /// The virtqueues: hiprio first, then at least one request queue.
    queues: KVec<Arc<FsQueue>>,
    /// CPU -> request queue (0-based, below `queues.len() - 1`).
    mq_map: KVec<c_uint>,
}

impl Connection {
    /// A connection over `queues` (hiprio, then request queues), with
    /// `mq_map` mapping CPUs to request queues.
    pub(crate) fn new(queues: KVec<Arc<FsQueue>>, mq_map: KVec<c_uint>) -> Result<Self> {
        let nreq = queues
            .len()
            .checked_sub(1)
            .filter(|&n| n > 0)
            .ok_or(EINVAL)?;
        if mq_map.iter().any(|&q| q as usize >= nreq) {
            return Err(EINVAL);
        }
        Ok(Connection {
            connected: AtomicBool::new(true),
            next_unique: AtomicU64::new(2),
            queues,
            mq_map,
        })
    }

    /// The smallest ring of the request queues, in descriptors: a request
    /// never has more segments (C bounds `max_pages` by it).
    pub(crate) fn min_ring(&self) -> u32 {
        self.queues
            .iter()
            .skip(1)
            .map(|q| q.vring_size())
            .min()
            .unwrap_or(0)
    }

    /// How many request queues the connection uses.
    pub(crate) fn nr_request_queues(&self) -> u32 {
        (self.queues.len() - 1) as u32
    }

    /// The CPU -> request queue map.
    pub(crate) fn mq_map(&self) -> &[c_uint] {
        &self.mq_map
    }

    /// A fresh unique id for a request.
    pub(crate) fn new_unique(&self) -> u64 {
        self.next_unique.fetch_add(2, Ordering::Relaxed)
    }

    /// The hiprio queue.
    pub(crate) fn hiprio(&self) -> Result<&Arc<FsQueue>> {
        self.queues.first().ok_or_else(enotconn)
    }

    /// The request queue of the current CPU (as C's `virtio_fs_send_req`,
    /// through the CPU -> queue map).
    pub(crate) fn request_queue(&self) -> Result<&Arc<FsQueue>> {
        // SAFETY: Reading the CPU number has no requirement; a migration
        // right after only makes the choice less local.
        let cpu = unsafe { bindings::raw_smp_processor_id() } as usize;
        let q = self.mq_map.get(cpu).copied().unwrap_or(0) as usize;
        self.queues.get(1 + q).ok_or_else(enotconn)
    }

    /// Schedules the completion work of queue `index` (interrupt context).
    pub(crate) fn schedule(&self, index: u32) {
        if let Some(q) = self.queues.get(index as usize) {
            FsQueue::schedule(q.clone());
        }
    }

    /// Sends `req` on a request queue and waits for its reply. A signal
    /// sends FUSE_INTERRUPT and the wait goes on; a fatal signal abandons
    /// the request (`ERESTARTSYS`).
    pub(crate) fn send(&self, req: Request) -> Result<Reply> {
        if !self.connected.load(Ordering::Acquire) {
            return Err(enotconn());
        }
        let pending = self.request_queue()?.submit(req)?;
        let unique = pending.unique();
        pending.wait(|| self.interrupt(unique))
    }

    /// As [`Connection::send`], but waited out as C's forced requests
    /// ([`Pending::wait_forced`]).
    pub(crate) fn send_forced(&self, req: Request) -> Result<Reply> {
        if !self.connected.load(Ordering::Acquire) {
            return Err(enotconn());
        }
        self.request_queue()?.submit(req)?.wait_forced()
    }

    /// As [`Connection::send`], but no signal ends the wait.
    pub(crate) fn send_uninterruptible(&self, req: Request) -> Result<Reply> {
        if !self.connected.load(Ordering::Acquire) {
            return Err(enotconn());
        }
        self.request_queue()?.submit(req)?.wait_uninterruptible()
    }

    /// Sends background request `req` (one with an [`OnEnd`]) on a request
    /// queue without waiting: its callback gets the outcome. On failure
    /// the request is dropped unsent, its callback with it (unrun).
    pub(crate) fn send_background(&self, req: Request) -> Result {
        if !self.connected.load(Ordering::Acquire) {
            return Err(enotconn());
        }
        self.request_queue()?.submit(req).map(drop)
    }

    /// Sends `req` on the hiprio queue without waiting (FORGET, INTERRUPT).
    pub(crate) fn send_hiprio(&self, req: Request) -> Result {
        if !self.connected.load(Ordering::Acquire) {
            // As C: forgets are dropped once disconnected.
            return Ok(());
        }
        self.hiprio()?.submit(req).map(drop)
    }

    /// Sends FUSE_INTERRUPT for request `unique`, best effort: the queued
    /// INTERRUPT, if it could be queued.
    fn interrupt(&self, unique: u64) -> Option<Pending> {
        if !self.connected.load(Ordering::Acquire) {
            return None;
        }
        let req = Request::new(
            unique | request::FUSE_INT_REQ_BIT,
            Opcode::Interrupt,
            ReplySpec::NoReply,
            request::request_len(InterruptIn::SIZE, &[]),
            0,
            |b| request::interrupt(b, unique).map_err(|_| EINVAL),
        )
        .ok()?;
        self.hiprio().ok()?.submit(req).ok()
    }

    /// The device is going away: refuse new requests and end the parked
    /// ones with `ENOTCONN`.
    pub(crate) fn close(&self) {
        self.connected.store(false, Ordering::Release);
        for q in self.queues.iter() {
            q.close();
        }
    }

    /// Waits for every queue's scheduled completion work.
    pub(crate) fn flush(&self) {
        for q in self.queues.iter() {
            q.flush();
        }
    }
}
