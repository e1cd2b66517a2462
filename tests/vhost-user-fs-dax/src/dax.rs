// SPDX-License-Identifier: GPL-2.0-only
//! FUSE_SETUPMAPPING / FUSE_REMOVEMAPPING served with vhost-user SHMEM_MAP / SHMEM_UNMAP.
//!
//! Lock order: `Dax::window` is taken first and held across the SHMEM exchange with QEMU (so
//! the table and QEMU's view never disagree), then `Dax::channel`, then the `vhost` crate's
//! own lock inside `Backend`. Nothing else in the daemon takes these locks; in particular the
//! vhost-user front-end thread (SET_MEM_TABLE, which QEMU sends while committing a mapping)
//! never waits for them, so QEMU can always finish a SHMEM request.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::RawFd;
use std::sync::{Arc, Mutex};

use fuse_backend_rs::abi::virtio_fs::RemovemappingOne;
use fuse_backend_rs::transport::FsCacheReqHandler;
use log::{debug, error, info, warn};
use vhost::vhost_user::message::{VhostUserMMap, VhostUserMMapFlags};
use vhost::vhost_user::{Backend, VhostUserFrontendReqHandler};

use crate::window::{fits_file, MapAction, Mapping, Window, SETUPMAPPING_FLAG_WRITE};

/// Shared-memory region id of the DAX window (VIRTIO_FS_SHMCAP_ID_CACHE is 0).
pub const SHMID_CACHE: u8 = 0;

/// The window bookkeeping and the backend-request channel to QEMU.
pub struct Dax {
    window: Mutex<Window>,
    channel: Mutex<Option<Backend>>,
}

/// The SHMEM_MAP / SHMEM_UNMAP message for window range `moffset..+len`
/// backed by the file at `foffset` (flags 0 for an unmap).
fn mmap_msg(moffset: u64, foffset: u64, len: u64, flags: u64) -> VhostUserMMap {
    VhostUserMMap {
        shmid: SHMID_CACHE,
        fd_offset: foffset,
        shm_offset: moffset,
        len,
        flags,
        ..Default::default()
    }
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl Dax {
    /// A window of `size` bytes, nothing mapped, no channel yet.
    pub fn new(size: u64) -> Self {
        Dax {
            window: Mutex::new(Window::new(size)),
            channel: Mutex::new(None),
        }
    }

    /// Installs the backend-request channel (VHOST_USER_SET_BACKEND_REQ_FD). A new channel
    /// means a new front-end session: QEMU's own mappings are gone, so are ours.
    pub fn set_channel(&self, backend: Backend) {
        let mut w = self.window.lock().unwrap();
        w.clear();
        *self.channel.lock().unwrap() = Some(backend);
    }

    /// Device reset: QEMU drops every mapping of the region (virtio_reset), forget ours.
    pub fn reset(&self) {
        let mut w = self.window.lock().unwrap();
        if !w.is_empty() {
            info!("device reset: forgetting {} live mappings", w.len());
        }
        w.clear();
    }

    fn send(&self, map: Option<&File>, msg: &VhostUserMMap) -> io::Result<()> {
        let ch = self.channel.lock().unwrap();
        let ch = ch.as_ref().ok_or_else(|| {
            error!("no backend-request channel: QEMU did not negotiate BACKEND_REQ");
            errno(libc::ENOSYS)
        })?;
        let r = match map {
            Some(f) => ch.shmem_map(msg, f),
            None => ch.shmem_unmap(msg),
        };
        r.map(|_| ()).map_err(|e| {
            let (shm, fd_off, len) = (msg.shm_offset, msg.fd_offset, msg.len);
            error!(
                "SHMEM_{} shm_offset {shm:#x} fd_offset {fd_off:#x} len {len:#x} failed: {e}",
                if map.is_some() { "MAP" } else { "UNMAP" }
            );
            errno(libc::EIO)
        })
    }

    /// Ends a FUSE session (FUSE_INIT of a new one, or FUSE_DESTROY): every
    /// mapping the old session left is unmapped.
    ///
    /// A guest does not have to remove its mappings before it goes: the C
    /// driver skips REMOVEMAPPING for inodes evicted at umount (after
    /// FUSE_DESTROY), and the next mount starts with an empty window at the
    /// same offsets. Without this, that mount's first SETUPMAPPING would
    /// overlap a stale mapping and be refused.
    pub fn end_session(&self, why: &str) {
        let mut w = self.window.lock().unwrap();
        if w.is_empty() {
            return;
        }
        info!(
            "{why}: unmapping {} mapping(s) left by the session",
            w.len()
        );
        let live: Vec<(u64, u64, u64)> = w
            .iter()
            .map(|(moffset, m)| (moffset, m.foffset, m.mapped_len))
            .collect();
        for (moffset, foffset, len) in live {
            let msg = mmap_msg(moffset, foffset, len, 0);
            // `send` logs a failure; the range is forgotten either way, as
            // the session that owned it is gone.
            let _ = self.send(None, &msg);
        }
        w.clear();
    }

    /// Serves one FUSE_SETUPMAPPING whose file PassthroughFs opened as `fd`.
    pub fn map(
        &self,
        foffset: u64,
        moffset: u64,
        len: u64,
        flags: u64,
        fd: RawFd,
    ) -> io::Result<()> {
        // CAVEAT (QEMU maps fds read-write): QEMU 11.1.3 creates every SHMEM_MAP RAM block
        // from the fd with a shared read-write mmap, so the O_RDONLY fd PassthroughFs opens
        // for a read mapping fails with EACCES inside QEMU. Reopen the same open file
        // read-write through /proc/self/fd. If that is refused (read-only file or mount), the
        // guest gets EACCES rather than a broken mapping.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(format!("/proc/self/fd/{fd}"))
            .inspect_err(|e| warn!("SETUPMAPPING: cannot reopen fd {fd} read-write: {e}"))?;
        let md = file.metadata()?;
        let file_id = (md.dev(), md.ino());

        let mut w = self.window.lock().unwrap();
        let action = w
            .check_map(foffset, moffset, len, flags, file_id)
            .map_err(|e| {
                warn!(
                    "SETUPMAPPING refused ({e:?}): foffset {foffset:#x} moffset {moffset:#x} \
                 len {len:#x} flags {flags:#x} window {:#x}",
                    w.size()
                );
                errno(e.errno())
            })?;

        let want_write = flags & SETUPMAPPING_FLAG_WRITE != 0;
        if let MapAction::Existing(mut m) = action {
            // CAVEAT (read-only -> writable upgrade): the C guest maps a range read-only on a
            // read and sends a second SETUPMAPPING of the identical range with WRITE set on
            // the first write. QEMU 11.1.3 refuses a SHMEM_MAP over a live mapping and
            // SHMEM_UNMAP + SHMEM_MAP is not needed: every mapping is created read-write
            // (see above), so the upgrade is a bookkeeping change only.
            debug!("SETUPMAPPING moffset {moffset:#x}: identical live mapping, upgrade/no-op");
            m.writable |= want_write;
            w.insert(moffset, m);
            return Ok(());
        }

        // CAVEAT (maps past EOF): QEMU refuses a mapping whose end lies past the end of the
        // file ("backing store size ... is too small"). This host maps exactly what is asked
        // or refuses: a request reaching past EOF gets ENXIO (the C guest always asks for
        // 2 MiB, so its tail chunks are refused; a guest that asks for whole pages below EOF
        // gets them). Mapping less while answering success would let a guest read wrong data
        // once the file grows.
        let size = md.len();
        if !fits_file(foffset, len, size) {
            warn!(
                "SETUPMAPPING foffset {foffset:#x} len {len:#x}: past the end of the file \
                 (size {size:#x}); refused (ENXIO)"
            );
            return Err(errno(libc::ENXIO));
        }
        let mapped_len = len;

        let msg = mmap_msg(
            moffset,
            foffset,
            mapped_len,
            VhostUserMMapFlags::WRITABLE.bits(),
        );
        self.send(Some(&file), &msg)?;
        w.insert(
            moffset,
            Mapping {
                foffset,
                len,
                mapped_len,
                file: file_id,
                writable: want_write,
            },
        );
        debug!(
            "mapped foffset {foffset:#x} -> moffset {moffset:#x} len {mapped_len:#x} ({} live)",
            w.len()
        );
        Ok(())
    }

    /// Serves one FUSE_REMOVEMAPPING. All entries are checked before anything is unmapped:
    /// one bad entry fails the whole request with nothing changed.
    pub fn unmap(&self, requests: &[RemovemappingOne]) -> io::Result<()> {
        let mut w = self.window.lock().unwrap();
        let mut victims = Vec::with_capacity(requests.len());
        for r in requests {
            let (moffset, len) = (r.moffset, r.len);
            match w.check_unmap(moffset, len) {
                Ok(Some(m)) => {
                    if victims.iter().any(|(mo, _)| *mo == moffset) {
                        warn!("REMOVEMAPPING lists moffset {moffset:#x} twice");
                        return Err(errno(libc::EINVAL));
                    }
                    victims.push((moffset, m));
                }
                Ok(None) => debug!("REMOVEMAPPING moffset {moffset:#x}: nothing mapped, no-op"),
                Err(e) => {
                    warn!("REMOVEMAPPING refused ({e:?}): moffset {moffset:#x} len {len:#x}");
                    return Err(errno(e.errno()));
                }
            }
        }
        let mut result = Ok(());
        for (moffset, m) in victims {
            let msg = mmap_msg(moffset, m.foffset, m.mapped_len, 0);
            match self.send(None, &msg) {
                Ok(()) => {
                    debug!("unmapped moffset {moffset:#x} (foffset {:#x})", m.foffset);
                    w.remove(moffset);
                }
                Err(e) => result = Err(e),
            }
        }
        debug!(
            "REMOVEMAPPING of {} entries done ({} live)",
            requests.len(),
            w.len()
        );
        result
    }
}

/// The per-request adapter fuse-backend-rs's `Server` calls for SETUPMAPPING/REMOVEMAPPING.
pub struct CacheReqHandler {
    /// Shared DAX state.
    pub dax: Arc<Dax>,
}

impl FsCacheReqHandler for CacheReqHandler {
    fn map(
        &mut self,
        foffset: u64,
        moffset: u64,
        len: u64,
        flags: u64,
        fd: RawFd,
    ) -> io::Result<()> {
        self.dax.map(foffset, moffset, len, flags, fd)
    }

    fn unmap(&mut self, requests: Vec<RemovemappingOne>) -> io::Result<()> {
        self.dax.unmap(&requests)
    }
}

#[cfg(test)]
mod tests {
    //! `Dax` against a fake front-end that behaves like QEMU 11.1.3: it refuses maps past
    //! EOF, maps with a read-write shared mmap (so it checks the fd is O_RDWR), refuses
    //! overlapping maps and unmaps of unknown ranges.
    use super::*;
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::net::UnixStream;
    use std::sync::Mutex as StdMutex;
    use vhost::vhost_user::{FrontendReqHandler, HandlerResult};

    const MIB2: u64 = 2 << 20;
    const RD: u64 = crate::window::SETUPMAPPING_FLAG_READ;
    const WR: u64 = crate::window::SETUPMAPPING_FLAG_WRITE | RD;

    #[derive(Default)]
    struct FakeQemu {
        maps: StdMutex<Vec<(u64, u64, u64)>>,
        log: StdMutex<Vec<String>>,
        fail_next: StdMutex<bool>,
    }

    fn err(e: i32) -> io::Error {
        io::Error::from_raw_os_error(e)
    }

    impl VhostUserFrontendReqHandler for FakeQemu {
        fn shmem_map(&self, req: &VhostUserMMap, fd: &dyn AsRawFd) -> HandlerResult<u64> {
            let (off, shm, len) = (req.fd_offset, req.shm_offset, req.len);
            self.log
                .lock()
                .unwrap()
                .push(format!("map {shm:#x} {len:#x}"));
            if std::mem::take(&mut *self.fail_next.lock().unwrap()) {
                return Err(err(libc::EFAULT));
            }
            // SAFETY: fcntl/fstat on a descriptor the channel just received.
            let (acc, size) = unsafe {
                let acc = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) & libc::O_ACCMODE;
                let mut st: libc::stat = std::mem::zeroed();
                assert_eq!(libc::fstat(fd.as_raw_fd(), &mut st), 0);
                (acc, st.st_size as u64)
            };
            if acc != libc::O_RDWR {
                return Err(err(libc::EACCES));
            }
            if size < off + len {
                return Err(err(libc::EINVAL)); // "backing store size ... is too small"
            }
            let mut maps = self.maps.lock().unwrap();
            if maps.iter().any(|(s, l, _)| shm < s + l && *s < shm + len) {
                return Err(err(libc::EEXIST));
            }
            maps.push((shm, len, off));
            Ok(0)
        }

        fn shmem_unmap(&self, req: &VhostUserMMap) -> HandlerResult<u64> {
            let (shm, len) = (req.shm_offset, req.len);
            self.log
                .lock()
                .unwrap()
                .push(format!("unmap {shm:#x} {len:#x}"));
            let mut maps = self.maps.lock().unwrap();
            let before = maps.len();
            maps.retain(|(s, l, _)| !(*s == shm && *l == len));
            if maps.len() == before {
                return Err(err(libc::EFAULT));
            }
            Ok(0)
        }
    }

    fn setup(window: u64) -> (Arc<Dax>, Arc<FakeQemu>) {
        let qemu = Arc::new(FakeQemu::default());
        let mut fe = FrontendReqHandler::new(qemu.clone()).unwrap();
        fe.set_reply_ack_flag(true);
        // SAFETY: dup() of the handler's backend-side socket; the new fd is owned here.
        let sock = unsafe { UnixStream::from_raw_fd(libc::dup(fe.get_tx_raw_fd())) };
        let backend = Backend::from_stream(sock);
        backend.set_reply_ack_flag(true);
        backend.set_shmem_flag(true);
        std::thread::spawn(move || {
            // A refused request is answered (REPLY_ACK) and reported here; keep serving.
            while let Ok(_) | Err(vhost::vhost_user::Error::ReqHandlerError(_)) =
                fe.handle_request()
            {}
        });
        let dax = Arc::new(Dax::new(window));
        dax.set_channel(backend);
        (dax, qemu)
    }

    fn file(dir: &std::path::Path, name: &str, len: usize) -> File {
        let p = dir.join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(&vec![7u8; len])
            .unwrap();
        // Read-only, like PassthroughFs's fd for a read mapping.
        File::open(p).unwrap()
    }

    fn tmpdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vufs-dax-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn one(moffset: u64, len: u64) -> RemovemappingOne {
        RemovemappingOne { moffset, len }
    }

    fn code(r: io::Result<()>) -> i32 {
        r.unwrap_err().raw_os_error().unwrap()
    }

    #[test]
    fn map_unmap_against_fake_qemu() {
        let d = tmpdir();
        let big = file(&d, "big", 4 << 20);
        let tail = file(&d, "tail", (2 << 20) + 8192);
        let small = file(&d, "small", 100);
        let (dax, qemu) = setup(8 << 20);
        let fd = |f: &File| f.as_raw_fd();

        // O_RDONLY fd from the filesystem: reopened read-write, mapped.
        dax.map(0, 0, MIB2, RD, fd(&big)).unwrap();
        // The upgrade of the identical range is a no-op (no second SHMEM_MAP).
        dax.map(0, 0, MIB2, WR, fd(&big)).unwrap();
        // Same window range, other file offset: overlap.
        assert_eq!(code(dax.map(MIB2, 0, MIB2, RD, fd(&big))), libc::EBUSY);
        // A tail chunk asked past EOF: refused whole (nothing mapped short).
        assert_eq!(code(dax.map(MIB2, MIB2, MIB2, RD, fd(&tail))), libc::ENXIO);
        // The same chunk asked up to EOF (whole pages): mapped.
        dax.map(MIB2, MIB2, 8192, RD, fd(&tail)).unwrap();
        // Partial last page: refused before QEMU sees it.
        assert_eq!(
            code(dax.map(0, 2 * MIB2, MIB2, RD, fd(&small))),
            libc::ENXIO
        );
        assert_eq!(
            code(dax.map(0, 2 * MIB2, 4096, RD, fd(&small))),
            libc::ENXIO
        );
        // Outside the window, misaligned, unknown flags, empty.
        assert_eq!(code(dax.map(0, 7 << 20, MIB2, RD, fd(&big))), libc::ERANGE);
        assert_eq!(code(dax.map(0, !4095u64, MIB2, RD, fd(&big))), libc::ERANGE);
        assert_eq!(code(dax.map(0, 4097, 4096, RD, fd(&big))), libc::EINVAL);
        assert_eq!(
            code(dax.map(0, 3 * MIB2, MIB2, 1 << 7, fd(&big))),
            libc::EINVAL
        );
        assert_eq!(code(dax.map(0, 3 * MIB2, 0, RD, fd(&big))), libc::EINVAL);
        // QEMU failing a map: EIO, nothing recorded (the range stays free).
        *qemu.fail_next.lock().unwrap() = true;
        assert_eq!(code(dax.map(MIB2, 3 * MIB2, MIB2, RD, fd(&big))), libc::EIO);
        dax.map(MIB2, 3 * MIB2, MIB2, RD, fd(&big)).unwrap();

        // Partial remove: refused with nothing unmapped; a remove names exactly what was mapped.
        assert_eq!(code(dax.unmap(&[one(0, 4096)])), libc::EINVAL);
        assert_eq!(code(dax.unmap(&[one(MIB2, MIB2)])), libc::EINVAL);
        assert_eq!(code(dax.unmap(&[one(0, MIB2), one(0, MIB2)])), libc::EINVAL);
        dax.unmap(&[one(0, MIB2), one(MIB2, 8192), one(2 * MIB2, MIB2)])
            .unwrap();
        assert_eq!(qemu.maps.lock().unwrap().len(), 1);
        dax.unmap(&[one(3 * MIB2, MIB2)]).unwrap();
        assert!(qemu.maps.lock().unwrap().is_empty());

        let log = qemu.log.lock().unwrap().clone();
        assert_eq!(
            log,
            [
                "map 0x0 0x200000",
                "map 0x200000 0x2000",
                "map 0x600000 0x200000",
                "map 0x600000 0x200000",
                "unmap 0x0 0x200000",
                "unmap 0x200000 0x2000",
                "unmap 0x600000 0x200000",
            ]
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}
