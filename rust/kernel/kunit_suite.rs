// SPDX-License-Identifier: GPL-2.0

//! KUnit test suites written in Rust.
//!
//! Linux 6.12 runs Rust doctests through KUnit but has no way for a Rust
//! module to declare a KUnit suite of its own. This module fills that gap the
//! way C's `kunit_test_suites()` does: it builds a `struct kunit_suite` and
//! places a pointer to it in the `.kunit_test_suites` section, which the
//! module loader hands to KUnit (`mod->kunit_suites`), so the suite runs when
//! the module is loaded (or at boot when built in).
//!
//! C header: [`include/kunit/test.h`](srctree/include/kunit/test.h)

use crate::bindings;
use crate::str::CStr;

/// Length of `kunit_suite::name`, including the terminating NUL.
const SUITE_NAME_LEN: usize = 256;

/// Returns a test case that runs `run` under the name `name`.
///
/// Use it to fill the case array passed to [`kunit_unsafe_test_suite!`].
pub const fn kunit_case(
    name: &'static CStr,
    run: unsafe extern "C" fn(*mut bindings::kunit),
) -> bindings::kunit_case {
    // SAFETY: `kunit_case` is a plain C struct for which all-zeroes is a valid
    // value (null pointers, `None` callbacks, zero enums).
    let mut case: bindings::kunit_case = unsafe { core::mem::zeroed() };
    case.run_case = Some(run);
    case.name = name.as_char_ptr();
    case
}

/// Returns the all-zeroes case that terminates a case array.
pub const fn kunit_case_null() -> bindings::kunit_case {
    // SAFETY: See `kunit_case`; KUnit stops at the first case whose
    // `run_case` is null.
    unsafe { core::mem::zeroed() }
}

/// Returns a suite named `name` whose cases start at `cases`.
///
/// Names longer than 255 bytes are truncated, as C's `strscpy` would.
///
/// # Safety
///
/// `cases` must point to an array of [`bindings::kunit_case`] terminated by
/// [`kunit_case_null`] that lives for as long as the suite may run (for a
/// module, until it is unloaded), and that nothing but KUnit mutates.
pub const unsafe fn kunit_suite(
    name: &[u8],
    cases: *mut bindings::kunit_case,
) -> bindings::kunit_suite {
    // SAFETY: `kunit_suite` is a plain C struct for which all-zeroes is a
    // valid value.
    let mut suite: bindings::kunit_suite = unsafe { core::mem::zeroed() };
    let mut i = 0;
    while i < name.len() && i < SUITE_NAME_LEN - 1 {
        suite.name[i] = name[i] as _;
        i += 1;
    }
    suite.test_cases = cases;
    suite
}

/// Declares a KUnit test suite named `$name` running the cases in the
/// `static mut` array `$cases`.
///
/// # Safety
///
/// `$cases` must be a `static mut [kernel::bindings::kunit_case; N]` ending
/// with [`kunit_case_null`], that no code other than KUnit touches.
///
/// # Examples
///
/// ```ignore
/// use kernel::kunit_suite::{kunit_case, kunit_case_null};
///
/// unsafe extern "C" fn adds(_test: *mut kernel::bindings::kunit) {
///     kernel::kunit_assert!("example", "example.rs", 0, 1 + 1 == 2);
/// }
///
/// static mut CASES: [kernel::bindings::kunit_case; 2] =
///     [kunit_case(kernel::c_str!("adds"), adds), kunit_case_null()];
/// kernel::kunit_unsafe_test_suite!(example, CASES);
/// ```
#[macro_export]
macro_rules! kunit_unsafe_test_suite {
    ($name:ident, $cases:ident) => {
        const _: () = {
            // SAFETY: The caller guarantees `$cases` is a terminated case
            // array that only KUnit uses; it is a static, so it lives as long
            // as the module.
            static mut KUNIT_TEST_SUITE: $crate::bindings::kunit_suite = unsafe {
                $crate::kunit_suite::kunit_suite(
                    ::core::stringify!($name).as_bytes(),
                    ::core::ptr::addr_of_mut!($cases) as *mut $crate::bindings::kunit_case,
                )
            };

            // The module loader collects these pointers into
            // `mod->kunit_suites`; KUnit runs the suites on module load.
            #[used]
            #[link_section = ".kunit_test_suites"]
            static mut KUNIT_TEST_SUITE_ENTRY: *const $crate::bindings::kunit_suite =
                ::core::ptr::addr_of!(KUNIT_TEST_SUITE);
        };
    };
}
