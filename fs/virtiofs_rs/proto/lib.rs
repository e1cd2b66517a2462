// SPDX-License-Identifier: GPL-2.0-only

//! The pure logic of virtiofs-rs, built on the host.
//!
//! The kernel module compiles the same files as its `proto` module (see
//! `virtiofs_rs.rs`); this crate root exists so that `cargo test` and fuzzers
//! can exercise them without a kernel. Nothing here may depend on more than
//! `core`.

#![no_std]

pub mod config;
pub mod dax;
pub mod fuse;
pub mod options;
