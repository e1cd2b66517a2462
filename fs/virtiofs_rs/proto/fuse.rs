// SPDX-License-Identifier: GPL-2.0-only

//! The FUSE wire protocol (7.41) as virtio-fs uses it, with no kernel
//! dependency.
//!
//! - [`abi`]: opcodes, constants and the on-wire structures of
//!   `include/uapi/linux/fuse.h`, each with its size and an encoder/decoder.
//! - [`request`]: building a request (header, argument, names) into a
//!   caller-provided buffer.
//! - [`reply`]: validating what the device wrote back (lengths, unique id,
//!   errno, payload size per opcode) and checked decoding of the replies the
//!   kernel acts on (attributes, entries, INIT).
//! - [`dirent`]: bounds-checked iterators over READDIR and READDIRPLUS
//!   payloads.
//!
//! There is no table of in-flight requests: each virtqueue token carries its
//! request, and a reply must carry that request's own unique id.
//!
//! Everything is little-endian (virtio-fs devices use the guest's byte
//! order; the targets we build for are little-endian). Nothing here panics on
//! any input: every access is bounds-checked and every length is checked
//! before arithmetic.

pub mod abi;
pub mod dirent;
pub mod reply;
pub mod request;
