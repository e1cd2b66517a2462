// SPDX-License-Identifier: GPL-2.0-only

//! virtiofs-rs: a virtio-fs guest driver with DAX, in Rust.
//!
//! This is the module skeleton: it loads, runs its KUnit suite (when
//! `CONFIG_VIRTIOFS_RS_KUNIT_TEST` is set) and unloads. The virtio transport,
//! the FUSE client and the DAX manager land in their own modules here.

use kernel::prelude::*;

/// Logic with no kernel dependency, also built on the host (`proto/lib.rs`)
/// for `cargo test` and fuzzing.
#[path = "proto"]
mod proto {
    #![allow(dead_code)]
    pub(crate) mod config;
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

/// The module instance.
struct VirtioFsRs;

impl kernel::Module for VirtioFsRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded\n");
        Ok(VirtioFsRs)
    }
}

impl Drop for VirtioFsRs {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
