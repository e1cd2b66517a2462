// SPDX-License-Identifier: GPL-2.0-only

//! Asynchronous direct I/O (C's `fuse_direct_IO` with `io->async`, as
//! `FUSE_ASYNC_DIO` negotiates): an aio or io_uring read or write is cut
//! into READs or WRITEs of up to `max_pages` pages of the caller's pinned
//! memory, all sent in the background; the syscall returns at once, and
//! the last request to end queues the completion work, which unpins the
//! pages (dirtying those a READ filled), marks the attributes stale after
//! a WRITE and completes the kiocb.
//!
//! As C: a READ that comes back short ends the I/O there; an error fails
//! it; a short WRITE fails it with `EIO`. A write that would extend the
//! file is not queued (the size could not be updated safely from the
//! completion), nor is one the file or the call wants synced (C queues
//! those and does not sync them).

use crate::file::{build_read, build_write_pages, FileHandle};
use crate::inode;
use crate::proto::fuse::{
    abi::{Opcode, ReadIn, Wire, WriteIn, WriteOut, FUSE_WRITE_LOCKOWNER},
    request::request_len,
};
use crate::ratelimit::warn_ratelimited;
use crate::session::Session;
use crate::superblock::VirtioFsType;
use crate::transport::{Ended, OnEnd, Segments};
use kernel::{
    fs::{
        address_space,
        file::{Kiocb, QueuedKiocb},
        Inode,
    },
    impl_has_work,
    iov::{IovIterDest, IovIterSource, IterPages},
    new_spinlock, new_work,
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, SpinLock},
    types::ARef,
    virtio::Segment,
    workqueue::{self, Work, WorkItem},
};

/// What the requests of one I/O reported so far.
struct DioState {
    /// Requests not ended yet, plus one while the submitter still sends.
    left: usize,
    /// The first error a request ended with (fails the I/O).
    err: Option<Error>,
    /// The smallest end (bytes from the start) of a request that came
    /// back short.
    short: Option<usize>,
    /// Bytes sent in requests.
    total: usize,
    /// The caller's pages, pinned until every request ended.
    pages: KVec<IterPages>,
    /// The I/O to complete; `None` once completed.
    kiocb: Option<QueuedKiocb>,
    /// The file's inode, for a WRITE's attributes; given back before the
    /// kiocb is completed (its file may go right after, and the umount
    /// with it), so the last reference to this state never holds it.
    inode: Option<ARef<Inode<VirtioFsType>>>,
}

/// One asynchronous direct I/O in flight.
#[pin_data]
pub(crate) struct AsyncDio {
    #[pin]
    state: SpinLock<DioState>,
    #[pin]
    work: Work<AsyncDio>,
    write: bool,
    /// The file position of the first byte.
    start: i64,
}

impl_has_work! {
    impl HasWork<Self> for AsyncDio { self.work }
}

impl WorkItem for AsyncDio {
    type Pointer = Arc<AsyncDio>;

    /// The completion, in process context: the pages are unpinned (which
    /// may sleep) before the kiocb is completed.
    fn run(this: Arc<AsyncDio>) {
        let (res, pages, kiocb, inode, total) = {
            let mut st = this.state.lock();
            let res = match (st.err, st.short) {
                (Some(e), _) => Err(e),
                (None, Some(_)) if this.write => Err(EIO),
                (None, Some(n)) => Ok(n),
                (None, None) => Ok(st.total),
            };
            (
                res,
                core::mem::take(&mut st.pages),
                st.kiocb.take(),
                st.inode.take(),
                st.total,
            )
        };
        drop(pages);
        if let Some(inode) = inode {
            if this.write {
                // The host's times changed: ask again. The size did not
                // (the write did not reach the end of the file).
                let sb = inode.super_block();
                inode::changed_locally(&sb.data(), &inode);
                // Folios read over the range meanwhile are stale (as
                // `direct_write`), over all that was sent: a failed write
                // may have landed in part.
                if total > 0 {
                    let _ = address_space::invalidate_range(
                        &inode,
                        this.start,
                        this.start + total as i64 - 1,
                    );
                }
            }
            // Given back here, in process context, while the file (held
            // by the kiocb) still holds the inode.
            drop(inode);
        }
        if let Some(k) = kiocb {
            k.complete(res);
        }
    }
}

impl AsyncDio {
    /// A request of `n` bytes at `off` (from the start of the I/O) ended
    /// with `got` bytes done, or failed; the last one queues the
    /// completion.
    fn ended(this: Arc<AsyncDio>, off: usize, n: usize, got: Result<usize>) {
        let last = {
            let mut st = this.state.lock();
            match got {
                Err(e) => {
                    st.err.get_or_insert(e);
                }
                Ok(g) if g < n => {
                    let end = off + g;
                    st.short = Some(st.short.map_or(end, |s| s.min(end)));
                }
                Ok(_) => {}
            }
            st.left -= 1;
            st.left == 0
        };
        if last {
            // Cannot be queued already: `left` reaches 0 once. A work
            // item, because `OnEnd` must not sleep and unpinning pages a
            // READ filled may (it locks them to dirty them).
            let _ = workqueue::system().enqueue(this);
        }
    }
}

/// Whether the I/O of `kiocb` may go asynchronously: the caller does not
/// wait for it, and its memory is user memory the host can use in place.
pub(crate) fn may_queue(kiocb: &Kiocb, user_backed: bool, len: usize) -> bool {
    user_backed && len > 0 && !kiocb.is_sync()
}

/// Starts an asynchronous direct READ of `to` at the kiocb's position and
/// returns `EIOCBQUEUED` (the kiocb is completed later), or fails before
/// anything was sent. `may_queue` said yes.
pub(crate) fn read(
    kiocb: &mut Kiocb,
    h: &FileHandle,
    inode: &Inode<VirtioFsType>,
    to: &mut IovIterDest<'_>,
) -> Result<usize> {
    let s = inode.super_block().data();
    let max = s.max_io(false);
    let nodeid = inode.data().nodeid;
    let (fh, flags) = (h.fh, h.flags);
    // As C's `fuse_direct_io`: the submitter's lock owner goes along.
    let owner = s.io_lock_owner();
    let start = kiocb.pos();
    submit(kiocb, inode, false, |dio, held| {
        let mut sent = 0usize;
        while !to.is_empty() {
            let pages = match to.get_pages(max, (max / PAGE_SIZE).max(1)) {
                Ok(p) if !p.is_empty() => p,
                Ok(_) => break,
                // As C: memory that cannot be pinned ends the I/O there
                // (fails it if nothing was sent).
                Err(e) => return (sent, (sent == 0).then_some(e)),
            };
            let n = pages.len();
            let pos = start + sent as i64;
            let r = send(&s, dio, held, pages, sent, |segs| {
                // SAFETY: The pages are in `held`, which moves into the
                // I/O's state before the submitter's count is given back;
                // the completion takes them only once every request ended
                // (or was dropped unsent). The CPU does not read them
                // before: they are the caller's read buffer.
                unsafe {
                    s.request_pages(
                        Opcode::Read,
                        request_len(ReadIn::SIZE, &[]),
                        0,
                        n,
                        |buf, unique| {
                            build_read(buf, unique, nodeid, fh, pos as u64, n as u32, flags, owner)
                        },
                        &[],
                        segs,
                    )
                }
            });
            if let Err(e) = r {
                return (sent, Some(e));
            }
            sent += n;
        }
        (sent, None)
    })
}

/// Starts an asynchronous direct WRITE of `from`, as [`read`]. The caller
/// holds the inode lock and checked the write does not extend the file.
pub(crate) fn write(
    kiocb: &mut Kiocb,
    h: &FileHandle,
    inode: &Inode<VirtioFsType>,
    from: &mut IovIterSource<'_>,
) -> Result<usize> {
    let s = inode.super_block().data();
    let max = s.max_io(true);
    let nodeid = inode.data().nodeid;
    let (fh, flags) = (h.fh, h.flags);
    let owner = s.io_lock_owner();
    let write_flags = s.direct_write_flags() | owner.map_or(0, |_| FUSE_WRITE_LOCKOWNER);
    let lock_owner = owner.unwrap_or(0);
    let start = kiocb.pos();
    submit(kiocb, inode, true, |dio, held| {
        let mut sent = 0usize;
        while !from.is_empty() {
            let pages = match from.get_pages(max, (max / PAGE_SIZE).max(1)) {
                Ok(p) if !p.is_empty() => p,
                Ok(_) => break,
                Err(e) => return (sent, (sent == 0).then_some(e)),
            };
            let c = pages.len();
            let inarg = WriteIn {
                fh,
                offset: (start + sent as i64) as u64,
                size: c as u32,
                write_flags,
                lock_owner,
                flags,
                padding: 0,
            };
            let r = send(&s, dio, held, pages, sent, |segs| {
                // SAFETY: As in `read`; the host only reads these pages.
                unsafe {
                    s.request_pages(
                        Opcode::Write,
                        request_len(WriteIn::SIZE, &[]),
                        WriteOut::SIZE,
                        c,
                        |b, unique| build_write_pages(b, unique, nodeid, &inarg, c),
                        segs,
                        &[],
                    )
                }
            });
            if let Err(e) = r {
                return (sent, Some(e));
            }
            sent += c;
        }
        (sent, None)
    })
}

/// Queues the kiocb, runs `send_all` (which returns the bytes sent and
/// the error that stopped it), then lets the last request complete it.
fn submit(
    kiocb: &mut Kiocb,
    inode: &Inode<VirtioFsType>,
    write: bool,
    send_all: impl FnOnce(&Arc<AsyncDio>, &mut KVec<IterPages>) -> (usize, Option<Error>),
) -> Result<usize> {
    let start = kiocb.pos();
    let dio = Arc::pin_init(
        pin_init!(AsyncDio {
            state <- new_spinlock!(
                DioState {
                    left: 1,
                    err: None,
                    short: None,
                    total: 0,
                    pages: KVec::new(),
                    kiocb: None,
                    inode: Some(inode.into()),
                },
                "virtiofs_rs::AsyncDio::state"
            ),
            work <- new_work!("virtiofs_rs::AsyncDio::work"),
            write,
            start,
        }),
        GFP_KERNEL,
    )?;
    // SAFETY: Queued once; from here on this function returns
    // `queued.error()` and nothing else, and does not use `kiocb` after the
    // last `ended` below (the first point the handle may complete it). The
    // kiocb goes to the I/O's state, whose completion completes it once.
    let Some((handle, queued)) = (unsafe { kiocb.queue() }) else {
        return Err(EINVAL);
    };
    dio.state.lock().kiocb = Some(handle);
    // The pages sent, kept here until the state takes them below: no
    // request's end can complete the I/O before (the submitter's count).
    let mut held = KVec::new();
    let (sent, err) = send_all(&dio, &mut held);
    {
        let mut st = dio.state.lock();
        st.total = sent;
        st.pages = held;
        // As C: a request that could not be sent fails the I/O.
        if let Some(e) = err {
            st.err.get_or_insert(e);
        }
    }
    // The position moves at completion (`QueuedKiocb::complete`).
    AsyncDio::ended(dio, 0, 0, Ok(0));
    Err(queued.error())
}

/// Sends one request of the I/O, for `pages` at `off` (from its start):
/// `build` makes it from the pages' segments; the pages join `held`
/// first, which the I/O's state takes before it can complete, so they
/// outlive the request.
fn send(
    s: &Session,
    dio: &Arc<AsyncDio>,
    held: &mut KVec<IterPages>,
    pages: IterPages,
    off: usize,
    build: impl FnOnce(&[Segment]) -> Result<crate::transport::Request>,
) -> Result {
    let n = pages.len();
    let mut segs = Segments::with_capacity(n / PAGE_SIZE + 2)?;
    for (p, o, len) in pages.segments() {
        segs.push(Segment::Page(p, len as u32, o as u32))?;
    }
    // Pinned until the completion drops them (moving `IterPages` moves
    // only its list, not the pages).
    held.push(pages, GFP_KERNEL)?;
    let mut req = build(&segs)?;
    let write = dio.write;
    let mine = dio.clone();
    req.set_on_end(OnEnd::new(move |ended: Ended, inline: &[u8]| {
        let got = match ended {
            Err(e) => Err(e),
            Ok(len) if !write => Ok((len as usize).min(n)),
            Ok(_) => match WriteOut::decode(inline) {
                Ok(o) if (o.size as usize) <= n => Ok(o.size as usize),
                Ok(o) => {
                    warn_ratelimited!("WRITE reply refused: {} bytes written of {}\n", o.size, n);
                    Err(EIO)
                }
                Err(_) => {
                    warn_ratelimited!("WRITE reply refused: malformed\n");
                    Err(EIO)
                }
            },
        };
        AsyncDio::ended(mine, off, n, got);
    })?);
    {
        dio.state.lock().left += 1;
    }
    if let Err(e) = s.fs.conn.send_background(req) {
        // Dropped unsent, with its `OnEnd`: count it ended here.
        let mut st = dio.state.lock();
        st.left -= 1;
        return Err(e);
    }
    Ok(())
}
