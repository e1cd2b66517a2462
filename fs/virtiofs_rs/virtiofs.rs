// SPDX-License-Identifier: GPL-2.0-only

//! virtiofs-rs: a virtio-fs guest driver with DAX, in Rust.
//!
//! Module layout:
//! - `device`: the virtio driver (probe/remove, queues, cache window);
//! - `vfs`: the file system type "virtiofs" (options, session, mount);
//! - `transport`: FUSE requests over the virtqueues (submit, complete,
//!   validate, drain);
//! - `sysfs` (+ `sysfs.c`): /sys/fs/virtiofs and the tag -> device list;
//! - `ratelimit`, `errno`: rate-limited host-triggered messages; errno
//!   values the 6.12 kernel crate does not name;
//! - `proto`: logic with no kernel dependency (config checks, mount
//!   options, the FUSE wire codec), also built on the host for `cargo
//!   test` and fuzzing;
//! - `kunit_tests`: the KUnit suite run at module load.

use kernel::prelude::*;
use kernel::{fs, virtio};

mod device;
mod errno;
mod ratelimit;
mod sysfs;
mod transport;
mod vfs;

/// Logic with no kernel dependency, also built on the host (`proto/lib.rs`).
#[path = "proto"]
mod proto {
    // The host crate needs these items `pub`; inside the module some are
    // not used yet by the driver.
    #![allow(unreachable_pub, dead_code)]
    pub(crate) mod config;
    pub(crate) mod fuse;
    pub(crate) mod options;
}

#[cfg(CONFIG_VIRTIOFS_RS_KUNIT_TEST)]
mod kunit_tests;

module! {
    type: VirtioFsRs,
    name: "virtiofs_rs",
    author: "virtiofs-rs developers",
    description: "Virtio Filesystem (virtio-fs) guest driver with DAX, in Rust",
    license: "GPL",
}

/// Static storage of the file system type (lockdep keys live in it).
static VIRTIOFS_TYPE: fs::FsType = fs::FsType::new();

/// The module instance.
///
/// Field order is drop order: the file system type goes first (no mount
/// can exist then: each holds a module reference), then the driver
/// (unbinding every device, which removes their sysfs entries), then the
/// kset.
struct VirtioFsRs {
    _fs: fs::Registration<vfs::VirtioFsType>,
    _driver: Pin<KBox<virtio::Registration<device::Driver>>>,
    _kset: sysfs::Kset,
}

impl kernel::Module for VirtioFsRs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let kset = sysfs::Kset::new()?;
        let driver = virtio::Registration::new(module)?;
        let fs = fs::Registration::new(&VIRTIOFS_TYPE, module)?;
        pr_info!("loaded\n");
        Ok(VirtioFsRs {
            _fs: fs,
            _driver: driver,
            _kset: kset,
        })
    }
}

impl Drop for VirtioFsRs {
    fn drop(&mut self) {
        pr_info!("unloading\n");
    }
}
