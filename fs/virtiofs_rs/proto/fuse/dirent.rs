// SPDX-License-Identifier: GPL-2.0-only

//! Bounds-checked iterators over READDIR and READDIRPLUS reply payloads.
//!
//! A READDIR payload is a sequence of `fuse_dirent` records, a
//! READDIRPLUS payload a sequence of `fuse_direntplus` records (an entry
//! reply followed by a dirent); each record is padded to 8 bytes. The C
//! parser (`parse_dirfile()` / `parse_dirplusfile()`, fs/fuse/readdir.c)
//! refuses a name length of 0 or above `FUSE_NAME_MAX` and a name with '/',
//! and silently stops at a record that does not fit. Here, in addition, a
//! record that does not fit (trailing bytes) is an error, a name may not
//! hold NUL, the type must be a `DT_*` value, and `off` (the cookie for the
//! next READDIR) must be nonzero (0 would restart the directory: a loop)
//! and fit `loff_t`.
//!
//! The iterators yield `Err` once and then stop.

use super::abi::{
    dirent_align, DirentHeader, EntryOut, Wire, FUSE_NAME_MAX, FUSE_NAME_OFFSET,
    FUSE_NAME_OFFSET_DIRENTPLUS,
};
use super::reply::{check_new_entry, DecodeError, ValidEntry};

/// Why a directory listing was refused. The READDIR fails with `EIO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirentError {
    /// A record (or its padding) runs past the end of the payload.
    Truncated {
        /// Offset of the record in the payload.
        offset: usize,
    },
    /// The name length is 0 or above `FUSE_NAME_MAX`.
    BadNameLen {
        /// Offset of the record.
        offset: usize,
        /// The length.
        namelen: u32,
    },
    /// The name contains '/' or NUL.
    BadName {
        /// Offset of the record.
        offset: usize,
    },
    /// The type is not a `DT_*` value.
    BadType {
        /// Offset of the record.
        offset: usize,
        /// The type.
        typ: u32,
    },
    /// The next-entry cookie is 0 or above `i64::MAX`.
    BadOff {
        /// Offset of the record.
        offset: usize,
        /// The cookie.
        off: u64,
    },
}

/// One directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirent<'a> {
    /// Inode number.
    pub ino: u64,
    /// Cookie to pass as the offset of the next READDIR (nonzero).
    pub off: u64,
    /// `DT_*` type.
    pub typ: u32,
    /// The name (1 to `FUSE_NAME_MAX` bytes, no '/' or NUL).
    pub name: &'a [u8],
}

impl Dirent<'_> {
    /// Whether the name is "." or "..".
    pub fn is_dot_or_dotdot(&self) -> bool {
        self.name == b"." || self.name == b".."
    }
}

/// Whether `t` is one of `DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK,
/// DT_REG, DT_LNK, DT_SOCK, DT_WHT`.
fn valid_dt(t: u32) -> bool {
    matches!(t, 0 | 1 | 2 | 4 | 6 | 8 | 10 | 12 | 14)
}

/// Parses the dirent whose header starts at `hdr_at` in `buf`, in a record
/// starting at `rec_at` whose name is at `name_off` from the record start.
/// Returns the dirent and the record length.
fn parse_dirent(
    buf: &[u8],
    rec_at: usize,
    name_off: usize,
) -> Result<(Dirent<'_>, usize), DirentError> {
    let offset = rec_at;
    let rec = buf.get(rec_at..).ok_or(DirentError::Truncated { offset })?;
    let hdr_at = name_off - FUSE_NAME_OFFSET;
    let h = rec
        .get(hdr_at..)
        .and_then(|b| DirentHeader::decode(b).ok())
        .ok_or(DirentError::Truncated { offset })?;
    let namelen = usize::try_from(h.namelen).unwrap_or(usize::MAX);
    if namelen == 0 || namelen > FUSE_NAME_MAX {
        return Err(DirentError::BadNameLen {
            offset,
            namelen: h.namelen,
        });
    }
    // namelen <= 1024 and name_off <= 152: no overflow, but stay checked.
    let reclen = name_off
        .checked_add(namelen)
        .and_then(dirent_align)
        .ok_or(DirentError::Truncated { offset })?;
    let rec = rec.get(..reclen).ok_or(DirentError::Truncated { offset })?;
    let name = rec
        .get(name_off..name_off + namelen)
        .ok_or(DirentError::Truncated { offset })?;
    if name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(DirentError::BadName { offset });
    }
    if !valid_dt(h.typ) {
        return Err(DirentError::BadType { offset, typ: h.typ });
    }
    if h.off == 0 || h.off > i64::MAX as u64 {
        return Err(DirentError::BadOff { offset, off: h.off });
    }
    Ok((
        Dirent {
            ino: h.ino,
            off: h.off,
            typ: h.typ,
            name,
        },
        reclen,
    ))
}

/// Iterator over the entries of a READDIR payload.
#[derive(Debug, Clone)]
pub struct Dirents<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Dirents<'a> {
    /// Iterates over `payload` (the bytes after the reply header).
    pub fn new(payload: &'a [u8]) -> Self {
        Dirents {
            buf: payload,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Dirents<'a> {
    type Item = Result<Dirent<'a>, DirentError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        match parse_dirent(self.buf, self.pos, FUSE_NAME_OFFSET) {
            Ok((d, reclen)) => {
                self.pos = self.pos.saturating_add(reclen);
                Some(Ok(d))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for Dirents<'_> {}

/// One READDIRPLUS entry: the entry reply (not yet checked: see
/// [`DirentPlus::check_entry`]) and the directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirentPlus<'a> {
    /// The entry reply as the server sent it.
    pub entry: EntryOut,
    /// The directory entry.
    pub dirent: Dirent<'a>,
}

impl DirentPlus<'_> {
    /// Checks the entry part as a new child (node id neither 0 nor the
    /// root, valid attributes). The C driver skips "." and ".." before this
    /// check, and forgets the node id of an entry that fails it
    /// (`fuse_force_forget()`), so a bad entry does not stop the listing.
    pub fn check_entry(&self) -> Result<ValidEntry, DecodeError> {
        check_new_entry(&self.entry, None)
    }
}

/// Iterator over the entries of a READDIRPLUS payload.
#[derive(Debug, Clone)]
pub struct DirentsPlus<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}
impl<'a> DirentsPlus<'a> {
    /// Iterates over `payload` (the bytes after the reply header).
    pub fn new(payload: &'a [u8]) -> Self {
        DirentsPlus {
            buf: payload,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for DirentsPlus<'a> {
    type Item = Result<DirentPlus<'a>, DirentError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let res = parse_dirent(self.buf, self.pos, FUSE_NAME_OFFSET_DIRENTPLUS).and_then(
            |(dirent, reclen)| {
                let entry = self
                    .buf
                    .get(self.pos..)
                    .and_then(|b| EntryOut::decode(b).ok())
                    .ok_or(DirentError::Truncated { offset: self.pos })?;
                Ok((DirentPlus { entry, dirent }, reclen))
            },
        );
        match res {
            Ok((d, reclen)) => {
                self.pos = self.pos.saturating_add(reclen);
                Some(Ok(d))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for DirentsPlus<'_> {}

#[cfg(test)]
mod tests {
    use super::super::abi::{Attr, FUSE_NAME_MAX};
    use super::*;

    /// Appends a dirent record to `buf` at `at`; returns the new end.
    fn put(buf: &mut [u8], at: usize, ino: u64, off: u64, typ: u32, name: &[u8]) -> usize {
        let h = DirentHeader {
            ino,
            off,
            namelen: name.len() as u32,
            typ,
        };
        h.encode(&mut buf[at..]).unwrap();
        buf[at + 24..at + 24 + name.len()].copy_from_slice(name);
        at + dirent_align(24 + name.len()).unwrap()
    }

    fn put_plus(buf: &mut [u8], at: usize, nodeid: u64, mode: u32, name: &[u8], off: u64) -> usize {
        let e = EntryOut {
            nodeid,
            attr: Attr {
                mode,
                ..Default::default()
            },
            ..Default::default()
        };
        e.encode(&mut buf[at..]).unwrap();
        put(buf, at + 128, nodeid, off, 8, name)
    }

    #[test]
    fn readdir_two_entries() {
        let mut b = [0u8; 256];
        let mut n = put(&mut b, 0, 1, 1, 4, b".");
        assert_eq!(n, 32);
        n = put(&mut b, n, 7, 2, 8, b"file-name");
        assert_eq!(n, 32 + 40);
        let v: [_; 2] = {
            let mut it = Dirents::new(&b[..n]);
            let a = it.next().unwrap().unwrap();
            let c = it.next().unwrap().unwrap();
            assert!(it.next().is_none());
            assert!(it.next().is_none());
            [a, c]
        };
        assert!(v[0].is_dot_or_dotdot());
        assert_eq!(
            (v[1].ino, v[1].off, v[1].typ, v[1].name),
            (7, 2, 8, &b"file-name"[..])
        );
        assert_eq!(Dirents::new(&[]).count(), 0);
    }

    #[test]
    fn readdir_errors() {
        let mut b = [0u8; 2048];
        // Trailing bytes shorter than a header.
        let n = put(&mut b, 0, 1, 1, 8, b"a");
        let mut it = Dirents::new(&b[..n + 8]);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next(), Some(Err(DirentError::Truncated { offset: 32 })));
        assert_eq!(it.next(), None);
        // Padding cut off.
        assert_eq!(
            Dirents::new(&b[..31]).next(),
            Some(Err(DirentError::Truncated { offset: 0 }))
        );
        // Name lengths.
        put(&mut b, 0, 1, 1, 8, b"");
        assert_eq!(
            Dirents::new(&b[..32]).next(),
            Some(Err(DirentError::BadNameLen {
                offset: 0,
                namelen: 0
            }))
        );
        b[16..20].copy_from_slice(&(FUSE_NAME_MAX as u32 + 1).to_le_bytes());
        assert_eq!(
            Dirents::new(&b).next(),
            Some(Err(DirentError::BadNameLen {
                offset: 0,
                namelen: 1025
            }))
        );
        b[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Dirents::new(&b).next(),
            Some(Err(DirentError::BadNameLen { .. }))
        ));
        let max = [b'x'; FUSE_NAME_MAX];
        let n = put(&mut b, 0, 1, 1, 8, &max);
        assert_eq!(n, 24 + 1024);
        assert!(Dirents::new(&b[..n]).next().unwrap().is_ok());
        // Bad names.
        for name in [&b"a/b"[..], b"a\0b", b"/"] {
            let n = put(&mut b, 0, 1, 1, 8, name);
            assert_eq!(
                Dirents::new(&b[..n]).next(),
                Some(Err(DirentError::BadName { offset: 0 }))
            );
        }
        // Types.
        for t in [0, 1, 2, 4, 6, 8, 10, 12, 14] {
            let n = put(&mut b, 0, 1, 1, t, b"a");
            assert!(Dirents::new(&b[..n]).next().unwrap().is_ok());
        }
        for t in [3, 15, 16, 0x108] {
            let n = put(&mut b, 0, 1, 1, t, b"a");
            assert_eq!(
                Dirents::new(&b[..n]).next(),
                Some(Err(DirentError::BadType { offset: 0, typ: t }))
            );
        }
        // Offsets.
        for off in [0, 1 << 63, u64::MAX] {
            let n = put(&mut b, 0, 1, off, 8, b"a");
            assert_eq!(
                Dirents::new(&b[..n]).next(),
                Some(Err(DirentError::BadOff { offset: 0, off }))
            );
        }
        let n = put(&mut b, 0, 1, i64::MAX as u64, 8, b"a");
        assert!(Dirents::new(&b[..n]).next().unwrap().is_ok());
    }

    #[test]
    fn readdirplus() {
        let mut b = [0u8; 1024];
        let mut n = put_plus(&mut b, 0, 1, 0o040755, b"..", 1);
        assert_eq!(n, 160);
        n = put_plus(&mut b, n, 9, 0o100644, b"f", 2);
        n = put_plus(&mut b, n, 0, 0o100644, b"g", 3);
        let mut it = DirentsPlus::new(&b[..n]);
        let dd = it.next().unwrap().unwrap();
        assert!(dd.dirent.is_dot_or_dotdot());
        assert_eq!(dd.check_entry(), Err(DecodeError::BadNodeid(1)));
        let f = it.next().unwrap().unwrap();
        assert_eq!((f.dirent.name, f.entry.nodeid), (&b"f"[..], 9));
        assert_eq!(f.check_entry().unwrap().nodeid, 9);
        let g = it.next().unwrap().unwrap();
        assert_eq!(g.check_entry(), Err(DecodeError::BadNodeid(0)));
        assert!(it.next().is_none());
        // Truncated inside the entry part, inside the dirent header, and in
        // the name.
        for cut in [100, 140, 153, 159] {
            assert_eq!(
                DirentsPlus::new(&b[..cut]).next(),
                Some(Err(DirentError::Truncated { offset: 0 }))
            );
        }
        // A bad record stops the iteration.
        b[160 + 128 + 16..160 + 128 + 20].copy_from_slice(&0u32.to_le_bytes());
        let mut it = DirentsPlus::new(&b[..n]);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(
            it.next(),
            Some(Err(DirentError::BadNameLen {
                offset: 160,
                namelen: 0
            }))
        );
        assert!(it.next().is_none());
    }
}
