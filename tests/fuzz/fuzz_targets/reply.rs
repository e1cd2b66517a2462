// SPDX-License-Identifier: GPL-2.0-only

//! Fuzz target: reply validation and every reply decoder.
//!
//! The input is a 24-byte parameter block followed by the bytes the device
//! wrote into the inline reply buffer. Nothing may panic, and any payload
//! handed back must lie within the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use virtiofs_rs_proto::fuse::{
    abi::{EntryOut, Opcode, Wire},
    dirent::{Dirents, DirentsPlus},
    reply::{self, Outcome, ReplySpec},
};

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

/// Whether `inner` lies within `outer`.
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fn decoders(p: &[u8]) {
    let offered = u64::MAX;
    let _ = reply::decode_init(p, offered);
    let _ = reply::decode_init(p, 0);
    let _ = reply::decode_attr_out(p);
    let _ = reply::decode_lookup(p);
    let _ = reply::decode_new_entry(p, None);
    let _ = reply::decode_new_entry(p, Some(reply::FileType::Directory));
    let _ = reply::decode_create(p);
    let _ = reply::decode_statfs(p);
    if let Ok(e) = EntryOut::decode(p) {
        let _ = reply::check_attr(&e.attr);
        let _ = reply::check_lookup(&e);
    }
    let mut total = 0usize;
    for d in Dirents::new(p) {
        match d {
            Ok(d) => {
                assert!(within(p, d.name));
                assert!(!d.name.is_empty() && d.name.len() <= 1024);
                total += 1;
            }
            Err(_) => break,
        }
    }
    assert!(total <= p.len() / 32 + 1);
    for d in DirentsPlus::new(p) {
        match d {
            Ok(d) => {
                assert!(within(p, d.dirent.name));
                let _ = d.check_entry();
            }
            Err(_) => break,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 24 {
        decoders(data);
        return;
    }
    let (params, inline) = data.split_at(24);
    let opcode = u32_at(params, 0) % 64;
    let used = u32_at(params, 4);
    let page_capacity = u32_at(params, 8) as usize % (1 << 20);
    let var_max = u32_at(params, 12);
    let minor = u32_at(params, 16) % 48;
    let unique_sel = u32_at(params, 20);

    // The expected unique: either what the reply carries (to get past the
    // check) or the id of a request the driver issued, so both paths are
    // exercised.
    let hdr_unique = inline
        .get(8..16)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .unwrap_or(0);
    let issued = u64::from(unique_sel) << 1;
    let expected = if unique_sel & 1 == 0 {
        hdr_unique
    } else {
        issued
    };

    // The inline buffer is the whole rest of the input; `used` is bounded
    // by the validator, not here.
    let specs = [
        Opcode::try_from(opcode)
            .ok()
            .map(|op| ReplySpec::for_opcode(op, var_max, minor)),
        Some(ReplySpec::Sized {
            min: var_max & 0xff,
            max: var_max,
        }),
    ];
    for spec in specs.into_iter().flatten() {
        match reply::validate(inline, page_capacity, used, expected, spec) {
            Ok(Outcome::Ok(p)) => {
                assert!(within(inline, p.inline));
                assert!(p.inline.len() <= p.len as usize);
                assert!(16 + p.len as usize <= used as usize);
                assert!(used as usize <= inline.len() + page_capacity);
                if let ReplySpec::Sized { min, max } = spec {
                    assert!(p.len >= min && p.len <= max);
                }
                decoders(p.inline);
            }
            Ok(Outcome::Err(e)) => {
                assert!((1..=511).contains(&e.get()));
            }
            Err(_) => {}
        }
    }
    decoders(inline);
});
