// SPDX-License-Identifier: GPL-2.0-only

//! Mount options of `mount -t virtiofs`.
//!
//! Like the C driver, only the `dax` family is accepted: `dax` alone means
//! `dax=always`; `dax=always|never|inode` select a mode; no option selects
//! the per-inode default. Every other option is refused with `EINVAL`.

/// The DAX policy of a mount (`enum fuse_dax_mode` in C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaxMode {
    /// No `dax` option: per-inode DAX, decided by the server's
    /// `FUSE_ATTR_DAX`, silently off without a cache window.
    InodeDefault,
    /// `dax=always` (or `dax`): every regular file uses DAX; the mount fails
    /// without a cache window.
    Always,
    /// `dax=never`: no file uses DAX.
    Never,
    /// `dax=inode`: per-inode DAX, as the default but shown in /proc/mounts.
    Inode,
}

impl DaxMode {
    /// The option as `/proc/mounts` shows it, if any.
    pub fn show(self) -> Option<&'static str> {
        match self {
            DaxMode::InodeDefault => None,
            DaxMode::Always => Some("dax=always"),
            DaxMode::Never => Some("dax=never"),
            DaxMode::Inode => Some("dax=inode"),
        }
    }
}

/// Why an option was refused. Every variant maps to `EINVAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionError {
    /// Not an option this filesystem knows.
    Unknown,
    /// `dax=` with a value other than always, never or inode.
    BadDaxValue,
}

/// Parses one mount option `key[=value]` and returns the DAX mode it sets.
pub fn parse_option(key: &[u8], value: Option<&[u8]>) -> Result<DaxMode, OptionError> {
    if key != b"dax" {
        return Err(OptionError::Unknown);
    }
    match value {
        None => Ok(DaxMode::Always),
        Some(b"always") => Ok(DaxMode::Always),
        Some(b"never") => Ok(DaxMode::Never),
        Some(b"inode") => Ok(DaxMode::Inode),
        Some(_) => Err(OptionError::BadDaxValue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dax_family() {
        assert_eq!(parse_option(b"dax", None), Ok(DaxMode::Always));
        assert_eq!(parse_option(b"dax", Some(b"always")), Ok(DaxMode::Always));
        assert_eq!(parse_option(b"dax", Some(b"never")), Ok(DaxMode::Never));
        assert_eq!(parse_option(b"dax", Some(b"inode")), Ok(DaxMode::Inode));
    }

    #[test]
    fn refused() {
        assert_eq!(
            parse_option(b"dax", Some(b"")),
            Err(OptionError::BadDaxValue)
        );
        assert_eq!(
            parse_option(b"dax", Some(b"ALWAYS")),
            Err(OptionError::BadDaxValue)
        );
        assert_eq!(
            parse_option(b"rootmode", Some(b"040000")),
            Err(OptionError::Unknown)
        );
        assert_eq!(parse_option(b"", None), Err(OptionError::Unknown));
    }

    #[test]
    fn shown() {
        assert_eq!(DaxMode::InodeDefault.show(), None);
        assert_eq!(DaxMode::Always.show(), Some("dax=always"));
    }
}
