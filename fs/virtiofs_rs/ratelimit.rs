// SPDX-License-Identifier: GPL-2.0-only

//! Rate-limited logging for messages the host can trigger.
//!
//! The host is untrusted: a device that sends one bad reply per request
//! must not be able to flood the log. [`RateLimit`] lets `BURST` messages
//! through per `INTERVAL_MS`, like the kernel's `DEFAULT_RATELIMIT_*`.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use kernel::bindings;

/// Messages allowed per interval.
const BURST: u32 = 10;
/// Length of an interval.
const INTERVAL_MS: u32 = 5000;

/// A rate-limit state, usually a `static`.
pub(crate) struct RateLimit {
    /// Start of the current interval, in jiffies.
    begin: AtomicU64,
    /// Messages let through in the current interval.
    printed: AtomicU32,
}

impl RateLimit {
    /// A state whose first interval starts at the first message.
    pub(crate) const fn new() -> Self {
        RateLimit {
            begin: AtomicU64::new(0),
            printed: AtomicU32::new(0),
        }
    }

    /// Whether a message may be printed now.
    pub(crate) fn allow(&self) -> bool {
        // SAFETY: `jiffies` is a global counter the timer interrupt updates;
        // a volatile read of it is always valid.
        let now =
            unsafe { core::ptr::read_volatile(core::ptr::addr_of!(bindings::jiffies)) } as u64;
        // SAFETY: A pure conversion with no preconditions.
        let interval = unsafe { bindings::__msecs_to_jiffies(INTERVAL_MS) } as u64;
        let begin = self.begin.load(Ordering::Relaxed);
        if begin == 0 || now.wrapping_sub(begin) >= interval {
            // Racing updaters both restart the interval; at worst a couple
            // of extra messages get through.
            self.begin.store(now.max(1), Ordering::Relaxed);
            self.printed.store(0, Ordering::Relaxed);
        }
        self.printed.fetch_add(1, Ordering::Relaxed) < BURST
    }
}

/// `pr_warn!` at most `BURST` times per interval per call site.
macro_rules! warn_ratelimited {
    ($($arg:tt)*) => {{
        static RL: $crate::ratelimit::RateLimit = $crate::ratelimit::RateLimit::new();
        if RL.allow() {
            kernel::pr_warn!($($arg)*);
        }
    }};
}
pub(crate) use warn_ratelimited;
