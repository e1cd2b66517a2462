// SPDX-License-Identifier: GPL-2.0-only

//! Property tests for the FUSE wire codec (host only).

use proptest::prelude::*;
use virtiofs_rs_proto::fuse::{
    abi::{
        dirent_align, Attr, DirentHeader, EntryOut, InHeader, InitOut, Opcode, OutHeader,
        RemoveMappingIn, RemoveMappingOne, SetattrIn, SetupMappingIn, Wire,
        FUSE_REMOVEMAPPING_MAX_ENTRY,
    },
    dirent::{Dirents, DirentsPlus},
    reply::{self, Outcome, ReplySpec},
    request::{self, BuildError, Header},
};

fn round_trip<T: Wire + PartialEq + core::fmt::Debug>(bytes: &[u8]) {
    let v = T::decode(bytes).unwrap();
    let mut out = vec![0u8; T::SIZE];
    assert_eq!(v.encode(&mut out), Ok(T::SIZE));
    assert_eq!(&out[..], &bytes[..T::SIZE]);
}

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

/// A valid directory entry name.
fn name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no / or NUL", |b| *b != 0 && *b != b'/'),
        1..=64,
    )
}

fn dt() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![0u32, 1, 2, 4, 6, 8, 10, 12, 14])
}

proptest! {
    #[test]
    fn structs_round_trip(bytes in proptest::collection::vec(any::<u8>(), 128..160)) {
        round_trip::<InHeader>(&bytes);
        round_trip::<OutHeader>(&bytes);
        round_trip::<InitOut>(&bytes);
        round_trip::<Attr>(&bytes);
        round_trip::<EntryOut>(&bytes);
        round_trip::<SetattrIn>(&bytes);
        round_trip::<SetupMappingIn>(&bytes);
        round_trip::<DirentHeader>(&bytes);
    }

    #[test]
    fn validate_never_panics(
        inline in proptest::collection::vec(any::<u8>(), 0..300),
        pages in 0usize..70000,
        used in any::<u32>(),
        op in 0u32..60,
        var_max in any::<u32>(),
        minor in 0u32..45,
        match_unique in any::<bool>(),
        other_unique in any::<u64>(),
    ) {
        let hdr_unique = inline.get(8..16).map(|b| u64::from_le_bytes(b.try_into().unwrap())).unwrap_or(0);
        let expected = if match_unique { hdr_unique } else { other_unique };
        if let Ok(op) = Opcode::try_from(op) {
            let spec = ReplySpec::for_opcode(op, var_max, minor);
            match reply::validate(&inline, pages, used, expected, spec) {
                Ok(Outcome::Ok(p)) => {
                    prop_assert!(within(&inline, p.inline));
                    prop_assert!(16 + p.len as usize <= used as usize);
                    prop_assert!(used as usize <= inline.len() + pages);
                    let h = OutHeader::decode(&inline).unwrap();
                    prop_assert_eq!(h.error, 0);
                    prop_assert_eq!(h.unique, expected);
                    prop_assert_eq!(p.len, h.len - 16);
                }
                Ok(Outcome::Err(e)) => {
                    prop_assert!((1..=511).contains(&e.get()));
                    prop_assert_eq!(OutHeader::decode(&inline).unwrap().len, 16);
                }
                Err(_) => {}
            }
        }
    }

    /// A well-formed reply for a header-only or fixed-size op is accepted.
    #[test]
    fn validate_accepts_good_replies(
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        slack in 0usize..64,
        unique in 1u64..,
        errno in 0i32..=511,
    ) {
        let len = if errno == 0 { 16 + payload.len() } else { 16 };
        let mut buf = vec![0u8; len + slack];
        OutHeader { len: len as u32, error: -errno, unique }.encode(&mut buf).unwrap();
        if errno == 0 {
            buf[16..len].copy_from_slice(&payload);
        }
        let spec = ReplySpec::up_to(payload.len() as u32);
        let out = reply::validate(&buf, 0, (len + slack) as u32, unique, spec).unwrap();
        match out {
            Outcome::Ok(p) => {
                prop_assert_eq!(errno, 0);
                prop_assert_eq!(p.inline, &payload[..]);
            }
            Outcome::Err(e) => prop_assert_eq!(e.get(), errno),
        }
    }

    /// Random bytes through every decoder and iterator never panic, and
    /// every name lies within the input.
    #[test]
    fn decoders_never_panic(p in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = reply::decode_init(&p, u64::MAX);
        let _ = reply::decode_attr_out(&p);
        let _ = reply::decode_lookup(&p);
        let _ = reply::decode_create(&p);
        let _ = reply::decode_statfs(&p);
        for d in Dirents::new(&p) {
            match d { Ok(d) => prop_assert!(within(&p, d.name)), Err(_) => break }
        }
        for d in DirentsPlus::new(&p) {
            match d { Ok(d) => { prop_assert!(within(&p, d.dirent.name)); let _ = d.check_entry(); } Err(_) => break }
        }
    }

    /// Valid listings encode and iterate back to the same entries.
    #[test]
    fn dirents_model(entries in proptest::collection::vec((any::<u64>(), 1u64..=i64::MAX as u64, dt(), name()), 0..20)) {
        let mut buf = Vec::new();
        let mut plus = Vec::new();
        for (ino, off, typ, n) in &entries {
            let h = DirentHeader { ino: *ino, off: *off, namelen: n.len() as u32, typ: *typ };
            let mut rec = vec![0u8; dirent_align(24 + n.len()).unwrap()];
            h.encode(&mut rec).unwrap();
            rec[24..24 + n.len()].copy_from_slice(n);
            let mut e = vec![0u8; 128];
            EntryOut { nodeid: ino | 2, ..Default::default() }.encode(&mut e).unwrap();
            plus.extend_from_slice(&e);
            plus.extend_from_slice(&rec);
            buf.extend_from_slice(&rec);
        }
        let got: Vec<_> = Dirents::new(&buf).map(|d| d.unwrap()).collect();
        prop_assert_eq!(got.len(), entries.len());
        for (g, (ino, off, typ, n)) in got.iter().zip(&entries) {
            prop_assert_eq!((g.ino, g.off, g.typ, g.name), (*ino, *off, *typ, &n[..]));
        }
        let got: Vec<_> = DirentsPlus::new(&plus).map(|d| d.unwrap()).collect();
        prop_assert_eq!(got.len(), entries.len());
        for (g, (ino, _, _, n)) in got.iter().zip(&entries) {
            prop_assert_eq!(g.entry.nodeid, ino | 2);
            prop_assert_eq!(g.dirent.name, &n[..]);
        }
        // Any strict prefix that cuts a record is an error, never a panic.
        if !buf.is_empty() {
            let cut = buf.len() - 1;
            prop_assert!(Dirents::new(&buf[..cut]).any(|d| d.is_err()));
        }
    }

    /// A name is either refused or lands NUL-terminated after the header,
    /// with the header's len equal to the bytes written.
    #[test]
    fn lookup_builder(n in proptest::collection::vec(any::<u8>(), 0..1100), cap in 0usize..1200) {
        let mut buf = vec![0u8; cap];
        let h = Header { opcode: Opcode::Lookup, unique: 2, nodeid: 1, uid: 0, gid: 0, pid: 0 };
        match request::with_name(&mut buf, h, &n) {
            Ok(len) => {
                prop_assert_eq!(len, 40 + n.len() + 1);
                prop_assert_eq!(InHeader::decode(&buf).unwrap().len as usize, len);
                prop_assert_eq!(&buf[40..len - 1], &n[..]);
                prop_assert_eq!(buf[len - 1], 0);
            }
            Err(BuildError::BadName) => prop_assert!(!request::valid_name(&n)),
            Err(BuildError::BufferTooSmall) => prop_assert!(cap < 40 + n.len() + 1),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }

    #[test]
    fn removemapping_builder(count in 0usize..300) {
        let entries: Vec<_> = (0..count as u64).map(|i| RemoveMappingOne { moffset: i << 21, len: 1 << 21 }).collect();
        let mut buf = vec![0u8; request::REMOVEMAPPING_MAX_LEN];
        let h = Header { opcode: Opcode::Removemapping, unique: 4, nodeid: 9, uid: 0, gid: 0, pid: 0 };
        match request::removemapping(&mut buf, h, &entries) {
            Ok(len) => {
                prop_assert!((1..=FUSE_REMOVEMAPPING_MAX_ENTRY).contains(&count));
                prop_assert_eq!(len, 44 + 16 * count);
                prop_assert_eq!(RemoveMappingIn::decode(&buf[40..]).unwrap().count as usize, count);
                let last = RemoveMappingOne::decode(&buf[len - 16..]).unwrap();
                prop_assert_eq!(last, entries[count - 1]);
            }
            Err(e) => {
                prop_assert_eq!(e, BuildError::BadCount);
                prop_assert!(count == 0 || count > FUSE_REMOVEMAPPING_MAX_ENTRY);
            }
        }
    }

    /// INTERRUPT names the request it interrupts and carries the
    /// interrupt bit in its own id.
    #[test]
    fn interrupt_builder(u in 1u64..(u64::MAX / 2)) {
        let orig = u * 2;
        let mut buf = [0u8; 64];
        let n = request::interrupt(&mut buf, orig).unwrap();
        prop_assert_eq!(n, request::request_len(8, &[]));
        let h = InHeader::decode(&buf).unwrap();
        prop_assert_eq!(h.unique, orig | request::FUSE_INT_REQ_BIT);
        prop_assert_eq!(h.opcode, Opcode::Interrupt as u32);
        prop_assert_eq!(u64::from_le_bytes(buf[40..48].try_into().unwrap()), orig);
        prop_assert_eq!(ReplySpec::for_opcode(Opcode::Interrupt, 0, 41), ReplySpec::NoReply);
    }

    /// `request_len` is the exact size the builders use.
    #[test]
    fn request_len_exact(n in proptest::collection::vec(1u8..=255, 1..300)) {
        let name: Vec<u8> = n.into_iter().map(|b| if b == b'/' { b'a' } else { b }).collect();
        let mut buf = vec![0u8; 2048];
        let h = Header { opcode: Opcode::Lookup, unique: 2, nodeid: 1, uid: 0, gid: 0, pid: 0 };
        let used = request::with_name(&mut buf, h, &name).unwrap();
        prop_assert_eq!(used, request::request_len(0, &[name.len()]));
    }
}
