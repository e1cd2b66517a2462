// SPDX-License-Identifier: GPL-2.0-only

//! Errno values the 6.12 kernel crate does not declare in `error::code`.

use kernel::{bindings, error::Error};

/// `ENOTCONN`: the device is gone (removed or not connected).
pub(crate) fn enotconn() -> Error {
    Error::from_errno(-(bindings::ENOTCONN as i32))
}

/// `ENAMETOOLONG`: a name longer than the protocol allows.
pub(crate) fn enametoolong() -> Error {
    Error::from_errno(-(bindings::ENAMETOOLONG as i32))
}

/// `EOPNOTSUPP`: an operation this file system cannot do here.
pub(crate) fn eopnotsupp() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// `ENOSYS`: the server does not implement an operation.
pub(crate) fn enosys() -> Error {
    Error::from_errno(-(bindings::ENOSYS as i32))
}

/// `ENOLCK`: a lock that cannot be taken as asked.
pub(crate) fn enolck() -> Error {
    Error::from_errno(-(bindings::ENOLCK as i32))
}
