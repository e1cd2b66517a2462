// SPDX-License-Identifier: GPL-2.0-only

//! virtiofs-rs: a virtio-fs guest driver with DAX, in Rust.
//!
//! Module layout:
//! - `device`: the virtio driver (probe, start, remove);
//! - `window`: the DAX cache window (checked, claimed, `dax_device`);
//! - `dax`: the DAX ranges of a mount, the iomap and fault paths;
//! - `superblock`: the file system type "virtiofs" (options, mount,
//!   statfs, eviction, umount);
//! - `session`: a superblock's FUSE session (INIT, requests, LOOKUP,
//!   FORGET, timeouts);
//! - `inode`, `dir`: per-inode state and `fuse_iget`; directories (lookup,
//!   dentry revalidation);
//! - `transport`: the FUSE connection over the virtqueues (requests,
//!   submit, complete, validate, interrupt, teardown);
//! - `registry`: the tag -> device list;
//! - `sysfs` (+ `sysfs.c`): /sys/fs/virtiofs;
//! - `ratelimit`, `errno`: rate-limited host-triggered messages; errno
//!   values the 6.12 kernel crate does not name;
//! - `proto`: logic with no kernel dependency (config checks, mount
//!   options, the FUSE wire codec), also built on the host for `cargo
//!   test` and fuzzing;
//! - `kunit_tests`: the KUnit suite run at module load.

use kernel::prelude::*;
use kernel::{fs, virtio};

mod abi_check;
mod dax;
mod device;
mod dio;
mod dir;
mod errno;
mod file;
mod inode;
mod ratelimit;
mod registry;
mod session;
mod superblock;
mod sysfs;
mod transport;
mod window;
mod xattr;

/// Logic with no kernel dependency, also built on the host (`proto/lib.rs`,
/// where its items are public API).
#[path = "proto"]
mod proto {
    #![allow(unreachable_pub)]
    pub(crate) mod config;
    pub(crate) mod dax;
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
/// kset and the tag registry, which both outlive every user.
struct VirtioFsRs {
    _fs: fs::Registration<superblock::VirtioFsType>,
    _driver: Pin<KBox<virtio::Registration<device::Driver>>>,
    _kset: sysfs::Kset,
    _registry: Pin<KBox<registry::Registry>>,
}

impl kernel::Module for VirtioFsRs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let registry = registry::Registry::new()?;
        let kset = sysfs::Kset::new()?;
        let driver = virtio::Registration::new(module)?;
        let fs = fs::Registration::new(&VIRTIOFS_TYPE, module)?;
        pr_info!("loaded\n");
        Ok(VirtioFsRs {
            _fs: fs,
            _driver: driver,
            _kset: kset,
            _registry: registry,
        })
    }
}

impl Drop for VirtioFsRs {
    fn drop(&mut self) {
        pr_info!("unloading\n");
    }
}
