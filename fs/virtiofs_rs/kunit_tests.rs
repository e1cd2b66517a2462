// SPDX-License-Identifier: GPL-2.0-only

//! KUnit suite `virtiofs_rs`: runs in the guest when the module loads.
//!
//! The same logic is covered on the host by `cargo test` in `proto/`; running
//! it here proves the kernel build of those files behaves identically.

use crate::proto::config::{self, ConfigError};
use crate::proto::options::{self, DaxMode, OptionError};
use kernel::bindings;
use kernel::c_str;
use kernel::kunit_suite::{kunit_case, kunit_case_null};

/// Fails the running test if `$cond` is false.
macro_rules! kexpect {
    ($cond:expr) => {
        kernel::kunit_assert!("virtiofs_rs", "fs/virtiofs_rs/kunit_tests.rs", 0, $cond)
    };
}

/// # Safety
///
/// Called only by KUnit, as a case of the suite below.
unsafe extern "C" fn tag_rules(_test: *mut bindings::kunit) {
    let mut raw = [0u8; config::TAG_SIZE];
    raw[..4].copy_from_slice(b"myfs");
    kexpect!(config::parse_tag(&raw) == Ok(&b"myfs"[..]));

    kexpect!(config::parse_tag(&[0u8; config::TAG_SIZE]) == Err(ConfigError::EmptyTag));

    raw[1] = b'\n';
    kexpect!(config::parse_tag(&raw) == Err(ConfigError::NewlineInTag));

    let full = [b'x'; config::TAG_SIZE];
    kexpect!(config::parse_tag(&full).map(|t| t.len()) == Ok(config::TAG_SIZE));
}

/// # Safety
///
/// Called only by KUnit, as a case of the suite below.
unsafe extern "C" fn queue_count_rules(_test: *mut bindings::kunit) {
    kexpect!(config::request_queue_count(0, 2) == Err(ConfigError::NoRequestQueues));
    kexpect!(config::request_queue_count(8, 2) == Ok(2));
    kexpect!(config::request_queue_count(1, 2) == Ok(1));
}

/// # Safety
///
/// Called only by KUnit, as a case of the suite below.
unsafe extern "C" fn dax_option_rules(_test: *mut bindings::kunit) {
    kexpect!(options::parse_option(b"dax", None) == Ok(DaxMode::Always));
    kexpect!(options::parse_option(b"dax", Some(b"inode")) == Ok(DaxMode::Inode));
    kexpect!(options::parse_option(b"dax", Some(b"sometimes")) == Err(OptionError::BadDaxValue));
    kexpect!(options::parse_option(b"user_id", Some(b"0")) == Err(OptionError::Unknown));
}

/// The window's `direct_access` stays inside the window (C's does not check).
/// # Safety
///
/// Called only by KUnit, as a case of the suite below.
unsafe extern "C" fn window_direct_access_bounds(_test: *mut bindings::kunit) {
    use crate::window::{WindowMap, WindowOps};
    use kernel::dax::Operations;

    let page = kernel::page::PAGE_SIZE as u64;
    let w = WindowMap::for_test(0x1000_0000, 0x8000_0000, 4 << 20);
    let pages = (4 << 20) / page;

    let a = WindowOps::direct_access(&w, 0, 8);
    kexpect!(matches!(a, Ok(a) if a.nr_pages == 8 && a.phys == 0x8000_0000));
    let a = WindowOps::direct_access(&w, pages - 1, 100);
    kexpect!(matches!(a, Ok(a) if a.nr_pages == 1 && a.phys == 0x8000_0000 + (pages - 1) * page));
    kexpect!(matches!(a, Ok(a) if a.kaddr as usize == 0x1000_0000 + ((pages - 1) * page) as usize));
    kexpect!(WindowOps::direct_access(&w, pages, 1).is_err());
    kexpect!(WindowOps::direct_access(&w, u64::MAX, 1).is_err());
    kexpect!(WindowOps::direct_access(&w, 0, 0).is_err());
}

/// The range state machine, built for the kernel, over kernel storage:
/// a range cycles through alloc, bind, use, reclaim and retire with its
/// invariants (`check`) holding at every step.
/// # Safety
///
/// Called only by KUnit, as a case of the suite below.
unsafe extern "C" fn dax_range_cycle(_test: *mut bindings::kunit) {
    use crate::proto::dax::{RangeError, RangeState, Ranges, Slot};
    use kernel::prelude::*;

    let Ok(storage) = KVec::from_elem(Slot::EMPTY, 4, GFP_KERNEL) else {
        kexpect!(false);
        return;
    };
    let mut r = Ranges::new(storage);
    kexpect!(r.check().is_ok() && r.counts().free == 4);
    let Some(a) = r.alloc() else {
        kexpect!(false);
        return;
    };
    kexpect!(r.bind(a, 7, 0, false).is_ok() && r.get(a).is_ok());
    kexpect!(r.begin_reclaim(a) == Err(RangeError::InUse));
    kexpect!(r.put(a).is_ok() && r.find_idle(Some(7)) == Some(a));
    kexpect!(r.begin_reclaim(a).is_ok() && r.finish_reclaim(a, true).is_ok());
    kexpect!(r.state(a) == Some(RangeState::Retired) && r.counts().retired == 1);
    for _ in 0..3 {
        kexpect!(r.alloc().is_some());
    }
    kexpect!(r.alloc().is_none() && r.below_threshold(20));
    kexpect!(r.check().is_ok());
}

static mut CASES: [bindings::kunit_case; 6] = [
    kunit_case(c_str!("tag_rules"), tag_rules),
    kunit_case(c_str!("queue_count_rules"), queue_count_rules),
    kunit_case(c_str!("dax_option_rules"), dax_option_rules),
    kunit_case(
        c_str!("window_direct_access_bounds"),
        window_direct_access_bounds,
    ),
    kunit_case(c_str!("dax_range_cycle"), dax_range_cycle),
    kunit_case_null(),
];

kernel::kunit_unsafe_test_suite!(virtiofs_rs, CASES);
