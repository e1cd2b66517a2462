// SPDX-License-Identifier: GPL-2.0-only

//! The virtio-fs device: probe, queues, the cache window, remove.
//!
//! Probe follows the C driver's order (fs/fuse/virtio_fs.c,
//! `virtio_fs_probe()`): read and check the tag, find the virtqueues (0 is
//! "hiprio", then "requests.N"), map CPUs to request queues, discover the
//! DAX cache window; start marks the device ready and lists it (tag
//! registry, sysfs). On remove the driver unlists the device, closes its
//! queues and kills the DAX device; the virtio abstraction then resets the
//! device, hands back the queued requests (ended with `ENOTCONN`), deletes
//! the queues and drops the driver data, in that order.
//!
//! Deliberate differences from C:
//! - CPUs map to request queues round-robin (`cpu % nr_request_queues`); C
//!   uses the transport's IRQ affinity when it has one.
//! - A cache window the driver cannot use turns DAX off with a message
//!   instead of failing the probe (see `window.rs`).

use crate::proto::config::{self, ConfigError};
use crate::transport::{self, Connection, FsQueue, QueueState, Token};
use crate::window::{self, Window};
use crate::{registry, sysfs};
use kernel::{
    bindings, c_str,
    ffi::{c_char, c_uint},
    fmt, new_mutex,
    prelude::*,
    str::CString,
    sync::{Arc, Mutex},
    virtio,
};

/// A virtio-fs device: its tag, its FUSE connection, its cache window.
/// Mounts hold it (`Arc`) and may outlive the binding: they then find the
/// connection closed (`ENOTCONN`) and the DAX device dead.
pub(crate) struct VirtioFs {
    /// The device's tag (checked: non-empty, no newline).
    pub(crate) tag: CString,
    /// The device's index (`/sys/fs/virtiofs/<index>/`).
    pub(crate) index: u32,
    /// The FUSE connection over the device's queues.
    pub(crate) conn: Connection,
    /// The DAX cache window, if the device has a usable one.
    pub(crate) window: Option<Window>,
}

/// What the driver keeps while the device is bound.
#[pin_data(PinnedDrop)]
pub(crate) struct Bound {
    fs: Arc<VirtioFs>,
    /// The sysfs directory; set by start, taken by remove.
    #[pin]
    instance: Mutex<Option<sysfs::Instance>>,
}

#[pinned_drop]
impl PinnedDrop for Bound {
    fn drop(self: Pin<&mut Self>) {
        // The abstraction drops the data after deleting the queues, so no
        // interrupt can schedule completion work any more; wait for work
        // already scheduled, so none runs once the module is gone.
        self.fs.conn.flush();
    }
}

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

/// The virtqueue names: "hiprio", then "requests.N".
fn queue_names(nr_request_queues: u32) -> Result<KVec<CString>> {
    let mut names = KVec::with_capacity(nr_request_queues as usize + 1, GFP_KERNEL)?;
    names.push(CString::try_from_fmt(fmt!("hiprio"))?, GFP_KERNEL)?;
    for i in 0..nr_request_queues {
        names.push(CString::try_from_fmt(fmt!("requests.{}", i))?, GFP_KERNEL)?;
    }
    Ok(names)
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
    type Data = Pin<KBox<Bound>>;
    type Token = Token;
    type QueueState = QueueState;

    const NAME: &'static CStr = c_str!("virtiofs_rs");
    const DEVICE_IDS: &'static [u32] = &[bindings::VIRTIO_ID_FS];

    fn probe(dev: &virtio::Device, probe: &mut virtio::Probe<Self>) -> Result<Pin<KBox<Bound>>> {
        let tag = read_tag(dev)?;
        let advertised = dev.cread_le32(config::NUM_REQUEST_QUEUES_OFFSET);
        // SAFETY: See `map_queues`.
        let nr_cpus = unsafe { bindings::nr_cpu_ids };
        let nr_request_queues = config::request_queue_count(advertised, nr_cpus).map_err(|_| {
            pr_err!("{}: the device offers no request queue\n", dev.name());
            EINVAL
        })?;
        let vqs = probe.find_vqs(queue_names(nr_request_queues)?, |_| QueueState::new())?;
        let mut queues = KVec::with_capacity(vqs.len(), GFP_KERNEL)?;
        for vq in vqs {
            queues.push(FsQueue::new(vq.clone())?, GFP_KERNEL)?;
        }
        let conn = Connection::new(queues, map_queues(nr_request_queues)?)?;
        let window = window::setup(dev);
        let index = dev.index();
        let fs = Arc::new(
            VirtioFs {
                tag,
                index,
                conn,
                window,
            },
            GFP_KERNEL,
        )?;
        KBox::pin_init(
            pin_init!(Bound {
                fs,
                instance <- new_mutex!(None, "virtiofs_rs::Bound::instance"),
            }),
            GFP_KERNEL,
        )
    }

    fn start(dev: &virtio::Device, data: &Pin<KBox<Bound>>) -> Result {
        let fs = &data.fs;
        registry::add(fs).inspect_err(|e| {
            if *e == EEXIST {
                pr_err!("{}: tag <{}> is already in use\n", dev.name(), &*fs.tag);
            }
        })?;
        let names = queue_names(fs.conn.nr_request_queues())?;
        let mut name_ptrs: KVec<*const c_char> = KVec::with_capacity(names.len(), GFP_KERNEL)?;
        for n in names.iter() {
            name_ptrs.push(n.as_char_ptr(), GFP_KERNEL)?;
        }
        // SAFETY: `dev` stays bound until `remove`, which drops the
        // instance first.
        let instance =
            unsafe { sysfs::Instance::add(dev.as_raw(), &fs.tag, &name_ptrs, fs.conn.mq_map()) };
        match instance {
            Ok(i) => *data.instance.lock() = Some(i),
            Err(e) => {
                registry::remove(fs);
                return Err(e);
            }
        }
        match &fs.window {
            Some(w) => pr_info!(
                "{}: tag <{}>, {} request queue(s), DAX window {:#x}+{:#x}\n",
                dev.name(),
                &*fs.tag,
                fs.conn.nr_request_queues(),
                w.region.addr,
                w.region.len
            ),
            None => pr_info!(
                "{}: tag <{}>, {} request queue(s), no DAX window\n",
                dev.name(),
                &*fs.tag,
                fs.conn.nr_request_queues()
            ),
        }
        Ok(())
    }

    fn remove(_dev: &virtio::Device, data: &Pin<KBox<Bound>>) {
        // Unlist first, so no new mount finds the device.
        registry::remove(&data.fs);
        drop(data.instance.lock().take());
        data.fs.conn.close();
        // Before devres unmaps the window: mounts see the DAX device dead.
        if let Some(w) = &data.fs.window {
            w.dax.kill();
        }
    }

    fn unused_token(_data: &Pin<KBox<Bound>>, token: Token) {
        transport::end_unused(token);
    }

    fn vq_callback(data: &Pin<KBox<Bound>>, index: u32) {
        data.fs.conn.schedule(index);
    }
}
