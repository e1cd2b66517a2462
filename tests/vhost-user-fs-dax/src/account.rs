// SPDX-License-Identifier: GPL-2.0-only
//! The accounting log: what the server hands out that the guest must give back.
//!
//! A successful entry reply makes the server count one lookup of its node, which the guest
//! returns with FUSE_FORGET (or BATCH_FORGET) when it evicts the inode; an opened handle is
//! returned with FUSE_RELEASE (RELEASEDIR). Each is logged at `info` as one line, so host
//! checks (tests/guest/plans/*.hostcheck) can balance them per node and per handle:
//!
//! ```text
//! FORGET nodeid N nlookup K             FORGET, and each entry of a BATCH_FORGET
//! ENTRY OP nodeid N name NAME           LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, CREATE and
//!                                       each READDIRPLUS entry with a node id
//! OPENED OP nodeid N fh F               OPEN, OPENDIR, CREATE
//! RELEASE OP nodeid N fh F              RELEASE, RELEASEDIR
//! GETXATTR nodeid N name NAME           GETXATTR (not a give-back: host checks count
//!                                       them, e.g. the `security.capability` lookups
//!                                       writes cost without SB_NOSEC)
//! REMOVEMAPPING count N                 REMOVEMAPPING, with the number of entries the
//!                                       request carries (batching at eviction)
//! KILL_SUIDGID OP nodeid N              a WRITE, SETATTR, OPEN or CREATE asking the
//!                                       server to remove set-id bits (FUSE_WRITE_KILL_SUIDGID,
//!                                       FATTR_KILL_SUIDGID, FUSE_OPEN_KILL_SUIDGID)
//! LOCK OP nodeid N owner 0xO            GETLK, SETLK, SETLKW of lock owner O
//! LOCKOWNER OP nodeid N owner 0xO       a READ or WRITE carrying lock owner O
//!                                       (FUSE_READ_LOCKOWNER, FUSE_WRITE_LOCKOWNER)
//! ```
//! NAME is printed with non-printable bytes escaped (`escape_ascii`) and is the last field.
//! Entry replies are logged when the server built them (it counted the lookup then), even if
//! an injected delay holds the reply back or a corruption makes the guest refuse it.

use std::fmt;

use crate::inject::{opcode_name, request_name};

/// sizeof(struct fuse_in_header).
const IN_HEADER_LEN: usize = 40;
/// sizeof(struct fuse_out_header).
const OUT_HEADER_LEN: usize = 16;
/// sizeof(struct fuse_entry_out).
const ENTRY_OUT_LEN: usize = 128;
/// sizeof(struct fuse_dirent) without the name.
const DIRENT_LEN: usize = 24;

/// One accounting event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The guest gave back `nlookup` lookups of `nodeid`.
    Forget { nodeid: u64, nlookup: u64 },
    /// The server counted one lookup of `nodeid` (by `op`, for `name`).
    Entry {
        op: &'static str,
        nodeid: u64,
        name: Vec<u8>,
    },
    /// The server opened handle `fh` on `nodeid`.
    Opened {
        op: &'static str,
        nodeid: u64,
        fh: u64,
    },
    /// The guest released handle `fh` on `nodeid`.
    Release {
        op: &'static str,
        nodeid: u64,
        fh: u64,
    },
    /// The guest asked for extended attribute `name` of `nodeid`.
    Getxattr { nodeid: u64, name: Vec<u8> },
    /// The guest asked to remove `count` window mappings in one request.
    Removemapping { count: u32 },
    /// `op` on `nodeid` asks the server to remove set-id bits.
    KillSuidgid { op: &'static str, nodeid: u64 },
    /// A lock request `op` (GETLK, SETLK, SETLKW) of lock owner `owner` on `nodeid`.
    Lock {
        op: &'static str,
        nodeid: u64,
        owner: u64,
    },
    /// A READ or WRITE `op` on `nodeid` carrying lock owner `owner`
    /// (FUSE_READ_LOCKOWNER, FUSE_WRITE_LOCKOWNER: C's direct I/O).
    LockOwner {
        op: &'static str,
        nodeid: u64,
        owner: u64,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Forget { nodeid, nlookup } => {
                write!(f, "FORGET nodeid {nodeid} nlookup {nlookup}")
            }
            Event::Entry { op, nodeid, name } => {
                write!(f, "ENTRY {op} nodeid {nodeid} name {}", name.escape_ascii())
            }
            Event::Opened { op, nodeid, fh } => write!(f, "OPENED {op} nodeid {nodeid} fh {fh}"),
            Event::Release { op, nodeid, fh } => write!(f, "RELEASE {op} nodeid {nodeid} fh {fh}"),
            Event::Removemapping { count } => write!(f, "REMOVEMAPPING count {count}"),
            Event::KillSuidgid { op, nodeid } => write!(f, "KILL_SUIDGID {op} nodeid {nodeid}"),
            Event::Lock { op, nodeid, owner } => {
                write!(f, "LOCK {op} nodeid {nodeid} owner {owner:#x}")
            }
            Event::LockOwner { op, nodeid, owner } => {
                write!(f, "LOCKOWNER {op} nodeid {nodeid} owner {owner:#x}")
            }
            Event::Getxattr { nodeid, name } => {
                write!(f, "GETXATTR nodeid {nodeid} name {}", name.escape_ascii())
            }
        }
    }
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Events a request carries by itself (forgets and releases). `req` starts with the
/// `fuse_in_header`.
pub fn request_events(opcode: u32, req: &[u8]) -> Vec<Event> {
    let (Some(nodeid), Some(body)) = (u64_at(req, 16), req.get(IN_HEADER_LEN..)) else {
        return Vec::new();
    };
    let op = opcode_name(opcode);
    // struct fuse_read_in and struct fuse_write_in { u64 fh; u64 offset; u32 size;
    // u32 read_flags / write_flags; u64 lock_owner; ... }: FUSE_READ_LOCKOWNER and
    // FUSE_WRITE_LOCKOWNER are both 1 << 1.
    let owner = match op {
        "READ" | "WRITE" => u32_at(body, 20)
            .filter(|f| f & (1 << 1) != 0)
            .and_then(|_| u64_at(body, 24))
            .map(|owner| Event::LockOwner { op, nodeid, owner }),
        // struct fuse_lk_in { u64 fh; u64 owner; ... }
        "GETLK" | "SETLK" | "SETLKW" => {
            u64_at(body, 8).map(|owner| Event::Lock { op, nodeid, owner })
        }
        _ => None,
    };
    let mut events = request_events_of(op, nodeid, body);
    events.extend(owner);
    events
}

/// [`request_events`] less the lock owners.
fn request_events_of(op: &'static str, nodeid: u64, body: &[u8]) -> Vec<Event> {
    match op {
        // struct fuse_forget_in { u64 nlookup; }
        "FORGET" => u64_at(body, 0)
            .map(|nlookup| vec![Event::Forget { nodeid, nlookup }])
            .unwrap_or_default(),
        // struct fuse_batch_forget_in { u32 count; u32 dummy; }, then count x
        // struct fuse_forget_one { u64 nodeid; u64 nlookup; }
        "BATCH_FORGET" => {
            let count = u32_at(body, 0).unwrap_or(0) as usize;
            (0..count)
                .map_while(|i| {
                    let off = 8 + 16 * i;
                    Some(Event::Forget {
                        nodeid: u64_at(body, off)?,
                        nlookup: u64_at(body, off + 8)?,
                    })
                })
                .collect()
        }
        // struct fuse_release_in { u64 fh; ... }
        "RELEASE" | "RELEASEDIR" => u64_at(body, 0)
            .map(|fh| vec![Event::Release { op, nodeid, fh }])
            .unwrap_or_default(),
        // The kill flags: fuse_write_in.write_flags (offset 20, FUSE_WRITE_KILL_SUIDGID 1 << 2),
        // fuse_setattr_in.valid (0, FATTR_KILL_SUIDGID 1 << 11), fuse_open_in.open_flags (4)
        // and fuse_create_in.open_flags (12, FUSE_OPEN_KILL_SUIDGID 1 << 0).
        "WRITE" | "SETATTR" | "OPEN" | "CREATE" => {
            let (off, bit) = match op {
                "WRITE" => (20, 1 << 2),
                "SETATTR" => (0, 1 << 11),
                "OPEN" => (4, 1),
                _ => (12, 1),
            };
            match u32_at(body, off) {
                Some(v) if v & bit != 0 => vec![Event::KillSuidgid { op, nodeid }],
                _ => Vec::new(),
            }
        }
        // struct fuse_removemapping_in { u32 count; }, then the entries.
        "REMOVEMAPPING" => u32_at(body, 0)
            .map(|count| vec![Event::Removemapping { count }])
            .unwrap_or_default(),
        // struct fuse_getxattr_in { u32 size; u32 padding; }, then the name.
        "GETXATTR" => body
            .get(8..)
            .and_then(|rest| rest.split(|&b| b == 0).next().map(|n| (rest, n)))
            .filter(|(rest, n)| n.len() < rest.len())
            .map(|(_, n)| {
                vec![Event::Getxattr {
                    nodeid,
                    name: n.to_vec(),
                }]
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The file handle a request uses, for the opcodes that must carry an open one first in their
/// argument (READ, WRITE, FLUSH, FSYNC, FALLOCATE, LSEEK: `fh` is the first field of their
/// `fuse_*_in`; SETUPMAPPING is by node, C sends `fh` -1). `req` starts with the
/// `fuse_in_header`.
pub fn handle_use(opcode: u32, req: &[u8]) -> Option<u64> {
    match opcode_name(opcode) {
        "READ" | "WRITE" | "FLUSH" | "FSYNC" | "FALLOCATE" | "LSEEK" => {
            u64_at(req.get(IN_HEADER_LEN..)?, 0)
        }
        _ => None,
    }
}

/// How much of a request [`reply_events`] needs to see, or `None` if its reply carries no
/// event: the header, and the name for entry replies.
pub fn request_bytes_needed(opcode: u32) -> Option<usize> {
    match opcode_name(opcode) {
        "OPEN" | "OPENDIR" | "READDIRPLUS" => Some(IN_HEADER_LEN),
        // The fixed argument (at most 16 bytes) and a name of up to PATH_MAX bytes.
        "LOOKUP" | "MKNOD" | "MKDIR" | "SYMLINK" | "LINK" | "CREATE" => {
            Some(IN_HEADER_LEN + 16 + 4096)
        }
        _ => None,
    }
}

/// Events of a successful reply to `req` (both start with their FUSE header).
pub fn reply_events(opcode: u32, req: &[u8], reply: &[u8]) -> Vec<Event> {
    let ok = reply.len() >= OUT_HEADER_LEN && u32_at(reply, 4) == Some(0);
    let (Some(req_nodeid), Some(body), true) = (u64_at(req, 16), req.get(IN_HEADER_LEN..), ok)
    else {
        return Vec::new();
    };
    let out = &reply[OUT_HEADER_LEN..];
    let op = opcode_name(opcode);
    let name = || request_name(opcode, body).unwrap_or_default().to_vec();
    let mut ev = Vec::new();
    match op {
        "LOOKUP" | "MKNOD" | "MKDIR" | "SYMLINK" | "LINK" | "CREATE" => {
            // struct fuse_entry_out { u64 nodeid; ... }; nodeid 0 is a negative entry.
            if let Some(nodeid) = u64_at(out, 0).filter(|&n| n != 0) {
                ev.push(Event::Entry {
                    op,
                    nodeid,
                    name: name(),
                });
                // CREATE: struct fuse_open_out { u64 fh; ... } follows the entry.
                if let Some(fh) = u64_at(out, ENTRY_OUT_LEN).filter(|_| op == "CREATE") {
                    ev.push(Event::Opened { op, nodeid, fh });
                }
            }
        }
        "OPEN" | "OPENDIR" => {
            if let Some(fh) = u64_at(out, 0) {
                ev.push(Event::Opened {
                    op,
                    nodeid: req_nodeid,
                    fh,
                });
            }
        }
        "READDIRPLUS" => {
            // struct fuse_direntplus { struct fuse_entry_out; struct fuse_dirent
            // { u64 ino; u64 off; u32 namelen; u32 type; char name[]; } }, each padded to 8.
            let mut rest = out;
            while let (Some(nodeid), Some(namelen)) =
                (u64_at(rest, 0), u32_at(rest, ENTRY_OUT_LEN + 16))
            {
                let start = ENTRY_OUT_LEN + DIRENT_LEN;
                let Some(name) = rest.get(start..start + namelen as usize) else {
                    break;
                };
                if nodeid != 0 {
                    ev.push(Event::Entry {
                        op,
                        nodeid,
                        name: name.to_vec(),
                    });
                }
                let len = (start + namelen as usize + 7) & !7;
                rest = rest.get(len..).unwrap_or_default();
            }
        }
        _ => {}
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(opcode: u32, nodeid: u64, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; IN_HEADER_LEN];
        v[0..4].copy_from_slice(&((IN_HEADER_LEN + body.len()) as u32).to_le_bytes());
        v[4..8].copy_from_slice(&opcode.to_le_bytes());
        v[16..24].copy_from_slice(&nodeid.to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn reply(error: i32, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; OUT_HEADER_LEN];
        v[0..4].copy_from_slice(&((OUT_HEADER_LEN + body.len()) as u32).to_le_bytes());
        v[4..8].copy_from_slice(&error.to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn entry(nodeid: u64) -> Vec<u8> {
        let mut e = vec![0u8; ENTRY_OUT_LEN];
        e[0..8].copy_from_slice(&nodeid.to_le_bytes());
        e
    }

    fn direntplus(nodeid: u64, name: &[u8]) -> Vec<u8> {
        let mut v = entry(nodeid);
        v.extend_from_slice(&[0u8; 16]);
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(&[0u8; 4]);
        v.extend_from_slice(name);
        v.resize((v.len() + 7) & !7, 0);
        v
    }

    #[test]
    fn forgets_and_releases() {
        let f = req(2, 7, &3u64.to_le_bytes());
        assert_eq!(
            request_events(2, &f),
            vec![Event::Forget {
                nodeid: 7,
                nlookup: 3
            }]
        );
        assert_eq!(
            request_events(2, &f).first().unwrap().to_string(),
            "FORGET nodeid 7 nlookup 3"
        );
        let mut b = Vec::new();
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        for (n, k) in [(5u64, 1u64), (6, 2)] {
            b.extend_from_slice(&n.to_le_bytes());
            b.extend_from_slice(&k.to_le_bytes());
        }
        assert_eq!(
            request_events(42, &req(42, 0, &b)),
            vec![
                Event::Forget {
                    nodeid: 5,
                    nlookup: 1
                },
                Event::Forget {
                    nodeid: 6,
                    nlookup: 2
                }
            ]
        );
        // A count larger than the message: only the entries present.
        b[0..4].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(request_events(42, &req(42, 0, &b)).len(), 2);
        let mut r = 11u64.to_le_bytes().to_vec();
        r.extend_from_slice(&[0u8; 16]);
        assert_eq!(
            request_events(18, &req(18, 9, &r))
                .first()
                .unwrap()
                .to_string(),
            "RELEASE RELEASE nodeid 9 fh 11"
        );
        let mut g = vec![0u8; 8];
        g.extend_from_slice(b"security.capability\0");
        assert_eq!(
            request_events(22, &req(22, 12, &g))[0].to_string(),
            "GETXATTR nodeid 12 name security.capability"
        );
        // A name without its terminating NUL, or no room for the argument: nothing.
        assert!(request_events(22, &req(22, 12, &g[..g.len() - 1])).is_empty());
        assert!(request_events(22, &req(22, 12, &[0u8; 4])).is_empty());
        assert_eq!(
            request_events(49, &req(49, 0, &16u32.to_le_bytes()))[0].to_string(),
            "REMOVEMAPPING count 16"
        );
        let mut w = vec![0u8; 40];
        assert!(request_events(16, &req(16, 9, &w)).is_empty());
        w[20] = 1 << 2;
        assert_eq!(
            request_events(16, &req(16, 9, &w))[0].to_string(),
            "KILL_SUIDGID WRITE nodeid 9"
        );
        // FUSE_WRITE_LOCKOWNER and FUSE_READ_LOCKOWNER: the owner after the flags.
        w[20] = 1 << 1;
        w[24..32].copy_from_slice(&0xabcdu64.to_le_bytes());
        assert_eq!(
            request_events(16, &req(16, 9, &w))[0].to_string(),
            "LOCKOWNER WRITE nodeid 9 owner 0xabcd"
        );
        assert_eq!(
            request_events(15, &req(15, 9, &w))[0].to_string(),
            "LOCKOWNER READ nodeid 9 owner 0xabcd"
        );
        assert!(request_events(15, &req(15, 9, &w[..28])).is_empty());
        // struct fuse_lk_in { fh, owner, ... }
        let mut lk = vec![0u8; 48];
        lk[8..16].copy_from_slice(&0x77u64.to_le_bytes());
        assert_eq!(
            request_events(32, &req(32, 9, &lk))[0].to_string(),
            "LOCK SETLK nodeid 9 owner 0x77"
        );
        let mut c = vec![0u8; 16];
        c.extend_from_slice(b"f\0");
        assert!(request_events(35, &req(35, 1, &c)).is_empty());
        c[12] = 1;
        assert_eq!(
            request_events(35, &req(35, 1, &c))[0].to_string(),
            "KILL_SUIDGID CREATE nodeid 1"
        );
        assert_eq!(handle_use(15, &req(15, 7, &33u64.to_le_bytes())), Some(33));
        assert_eq!(handle_use(48, &req(48, 7, &34u64.to_le_bytes())), None);
        assert_eq!(handle_use(15, &req(15, 7, &[1, 2])), None);
        assert_eq!(handle_use(1, &req(1, 7, &33u64.to_le_bytes())), None);
        assert!(request_events(2, &req(2, 7, &[1, 2])).is_empty());
        assert!(request_events(3, &req(3, 7, &[0u8; 16])).is_empty());
        assert!(request_events(2, &[0u8; 8]).is_empty());
    }

    #[test]
    fn entry_replies() {
        let lookup = req(1, 1, b"slow-a\0");
        assert_eq!(
            reply_events(1, &lookup, &reply(0, &entry(5)))
                .first()
                .unwrap()
                .to_string(),
            "ENTRY LOOKUP nodeid 5 name slow-a"
        );
        assert!(reply_events(1, &lookup, &reply(-2, &[])).is_empty());
        assert!(reply_events(1, &lookup, &reply(0, &entry(0))).is_empty());
        assert!(reply_events(1, &lookup, &reply(0, &[1, 2, 3])).is_empty());
        let odd = req(1, 1, b"a\tb\0");
        assert_eq!(
            reply_events(1, &odd, &reply(0, &entry(4)))[0].to_string(),
            "ENTRY LOOKUP nodeid 4 name a\\tb"
        );

        let mut create = vec![0u8; 16];
        create.extend_from_slice(b"new\0");
        let mut out = entry(8);
        out.extend_from_slice(&21u64.to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
        assert_eq!(
            reply_events(35, &req(35, 1, &create), &reply(0, &out)),
            vec![
                Event::Entry {
                    op: "CREATE",
                    nodeid: 8,
                    name: b"new".to_vec()
                },
                Event::Opened {
                    op: "CREATE",
                    nodeid: 8,
                    fh: 21
                }
            ]
        );

        let mut link = 3u64.to_le_bytes().to_vec();
        link.extend_from_slice(b"l\0");
        assert_eq!(
            reply_events(13, &req(13, 1, &link), &reply(0, &entry(3)))[0].to_string(),
            "ENTRY LINK nodeid 3 name l"
        );

        let mut open = vec![0u8; 16];
        open[0..8].copy_from_slice(&33u64.to_le_bytes());
        assert_eq!(
            reply_events(14, &req(14, 6, &[0u8; 8]), &reply(0, &open))[0].to_string(),
            "OPENED OPEN nodeid 6 fh 33"
        );
    }

    #[test]
    fn readdirplus_entries() {
        let mut out = direntplus(0, b".");
        out.extend(direntplus(12, b"abc"));
        out.extend(direntplus(13, &[b'n'; 255]));
        // A truncated last entry is ignored.
        out.extend(&direntplus(14, b"zz")[..ENTRY_OUT_LEN + 10]);
        let ev = reply_events(44, &req(44, 1, &[0u8; 40]), &reply(0, &out));
        assert_eq!(
            ev,
            vec![
                Event::Entry {
                    op: "READDIRPLUS",
                    nodeid: 12,
                    name: b"abc".to_vec()
                },
                Event::Entry {
                    op: "READDIRPLUS",
                    nodeid: 13,
                    name: vec![b'n'; 255]
                }
            ]
        );
    }
}
