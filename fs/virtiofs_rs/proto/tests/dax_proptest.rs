// SPDX-License-Identifier: GPL-2.0-only

//! Property and unit tests for the DAX range manager (host only): random
//! operation sequences against a reference model.

use std::collections::VecDeque;

use proptest::prelude::*;
use virtiofs_rs_proto::dax::{
    range_size, ranges_in_window, Counts, Mapping, RangeError, RangeId, RangeState, Ranges, Slot,
    MAX_RANGES, RECLAIM_CHUNK, RECLAIM_THRESHOLD_PERCENT,
};

const MIB2: u64 = 2 << 20;

/// Owners are drawn from a small set so that owner filters match.
const OWNERS: u64 = 4;

/// One range in the model.
#[derive(Debug, Clone, Copy)]
struct MSlot {
    state: RangeState,
    owner: u64,
    chunk: u64,
    writable: bool,
    refs: u32,
}

/// The reference model: states, the free list order, and the busy LRU
/// order (least recent at the front).
struct Model {
    slots: Vec<MSlot>,
    free: VecDeque<u32>,
    lru: VecDeque<u32>,
}

impl Model {
    fn new(n: u32) -> Self {
        Model {
            slots: vec![
                MSlot {
                    state: RangeState::Free,
                    owner: 0,
                    chunk: 0,
                    writable: false,
                    refs: 0,
                };
                n as usize
            ],
            free: (0..n).collect(),
            lru: VecDeque::new(),
        }
    }

    fn slot(&mut self, id: RangeId, want: &[RangeState]) -> Result<&mut MSlot, RangeError> {
        let s = self.slots.get_mut(id.0 as usize).ok_or(RangeError::BadId)?;
        if want.contains(&s.state) {
            Ok(s)
        } else {
            Err(RangeError::WrongState)
        }
    }

    fn remove(list: &mut VecDeque<u32>, id: u32) {
        let pos = list.iter().position(|&x| x == id).unwrap();
        list.remove(pos);
    }

    fn alloc(&mut self) -> Option<RangeId> {
        let i = self.free.pop_front()?;
        self.slots[i as usize].state = RangeState::Reserved;
        Some(RangeId(i))
    }

    fn unreserve(&mut self, id: RangeId) -> Result<(), RangeError> {
        self.slot(id, &[RangeState::Reserved])?.state = RangeState::Free;
        self.free.push_front(id.0);
        Ok(())
    }

    fn bind(&mut self, id: RangeId, owner: u64, chunk: u64, w: bool) -> Result<(), RangeError> {
        *self.slot(id, &[RangeState::Reserved])? = MSlot {
            state: RangeState::Busy,
            owner,
            chunk,
            writable: w,
            refs: 0,
        };
        self.lru.push_back(id.0);
        Ok(())
    }

    fn set_writable(&mut self, id: RangeId) -> Result<(), RangeError> {
        self.slot(id, &[RangeState::Busy])?.writable = true;
        Ok(())
    }

    fn get(&mut self, id: RangeId) -> Result<(), RangeError> {
        let s = self.slot(id, &[RangeState::Busy])?;
        s.refs = s.refs.checked_add(1).ok_or(RangeError::RefOverflow)?;
        Self::remove(&mut self.lru, id.0);
        self.lru.push_back(id.0);
        Ok(())
    }

    fn put(&mut self, id: RangeId) -> Result<(), RangeError> {
        let s = self.slot(id, &[RangeState::Busy, RangeState::Reclaiming])?;
        s.refs = s.refs.checked_sub(1).ok_or(RangeError::NoRef)?;
        Ok(())
    }

    fn idle(&self) -> impl Iterator<Item = RangeId> + '_ {
        self.lru
            .iter()
            .copied()
            .filter(|&i| self.slots[i as usize].refs == 0)
            .map(RangeId)
    }

    fn find_idle(&self, owner: Option<u64>) -> Option<RangeId> {
        self.idle()
            .find(|id| owner.is_none_or(|o| self.slots[id.0 as usize].owner == o))
    }

    fn begin_reclaim(&mut self, id: RangeId) -> Result<(), RangeError> {
        let s = self.slot(id, &[RangeState::Busy])?;
        if s.refs != 0 {
            return Err(RangeError::InUse);
        }
        s.state = RangeState::Reclaiming;
        Self::remove(&mut self.lru, id.0);
        Ok(())
    }

    fn finish_reclaim(&mut self, id: RangeId, retire: bool) -> Result<(), RangeError> {
        let s = self.slot(id, &[RangeState::Reclaiming])?;
        if s.refs != 0 {
            return Err(RangeError::InUse);
        }
        if retire {
            s.state = RangeState::Retired;
        } else {
            s.state = RangeState::Free;
            self.free.push_back(id.0);
        }
        Ok(())
    }

    fn abort_reclaim(&mut self, id: RangeId) -> Result<(), RangeError> {
        self.slot(id, &[RangeState::Reclaiming])?.state = RangeState::Busy;
        self.lru.push_back(id.0);
        Ok(())
    }

    fn release(&mut self, id: RangeId) -> Result<(), RangeError> {
        let s = self.slot(id, &[RangeState::Busy])?;
        if s.refs != 0 {
            return Err(RangeError::InUse);
        }
        s.state = RangeState::Free;
        Self::remove(&mut self.lru, id.0);
        self.free.push_back(id.0);
        Ok(())
    }

    fn counts(&self) -> Counts {
        let n = |st| self.slots.iter().filter(|s| s.state == st).count() as u32;
        Counts {
            total: self.slots.len() as u32,
            free: n(RangeState::Free),
            reserved: n(RangeState::Reserved),
            busy: n(RangeState::Busy),
            reclaiming: n(RangeState::Reclaiming),
            retired: n(RangeState::Retired),
        }
    }

    fn below_threshold(&self, percent: u32) -> bool {
        let c = self.counts();
        let usable = u128::from(c.total - c.retired);
        usable != 0 && u128::from(c.free) * 100 < usable * u128::from(percent)
    }

    fn mapping(&self, id: RangeId) -> Option<Mapping> {
        let s = self.slots.get(id.0 as usize)?;
        matches!(s.state, RangeState::Busy | RangeState::Reclaiming).then_some(Mapping {
            owner: s.owner,
            chunk: s.chunk,
            writable: s.writable,
            refs: s.refs,
        })
    }

    /// The `n`th (modulo) range in one of `states`, or, when there is none,
    /// an id that may not exist.
    fn pick(&self, n: usize, states: &[RangeState]) -> RangeId {
        let c: Vec<usize> = (0..self.slots.len())
            .filter(|&i| states.contains(&self.slots[i].state))
            .collect();
        if c.is_empty() {
            RangeId((n % (self.slots.len() + 3)) as u32)
        } else {
            RangeId(c[n % c.len()] as u32)
        }
    }
}

/// Which range an operation targets.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// This id, valid or not, in whatever state.
    Raw(u32),
    /// The nth range in a state the operation expects (see [`Model::pick`]).
    Pick(usize),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Alloc,
    Unreserve(Target),
    Bind(Target, u64, u64, bool),
    SetWritable(Target),
    Get(Target),
    Put(Target),
    FindIdle(Option<u64>),
    IdleBatch(usize),
    BeginReclaim(Target),
    FinishReclaim(Target, bool),
    AbortReclaim(Target),
    Release(Target),
    Threshold(u32),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        1 => prop_oneof![0u32..48, Just(u32::MAX), Just(MAX_RANGES)].prop_map(Target::Raw),
        4 => any::<usize>().prop_map(Target::Pick),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Alloc),
        1 => target().prop_map(Op::Unreserve),
        4 => (target(), 0..OWNERS, 0u64..8, any::<bool>())
            .prop_map(|(t, o, c, w)| Op::Bind(t, o, c, w)),
        1 => target().prop_map(Op::SetWritable),
        3 => target().prop_map(Op::Get),
        3 => target().prop_map(Op::Put),
        2 => proptest::option::of(0..OWNERS + 1).prop_map(Op::FindIdle),
        1 => (0usize..12).prop_map(Op::IdleBatch),
        2 => target().prop_map(Op::BeginReclaim),
        2 => (target(), any::<bool>()).prop_map(|(t, r)| Op::FinishReclaim(t, r)),
        1 => target().prop_map(Op::AbortReclaim),
        1 => target().prop_map(Op::Release),
        1 => prop_oneof![0u32..=120, any::<u32>()].prop_map(Op::Threshold),
    ]
}

fn resolve(m: &Model, t: Target, states: &[RangeState]) -> RangeId {
    match t {
        Target::Raw(i) => RangeId(i),
        Target::Pick(n) => m.pick(n, states),
    }
}

/// Everything observable must agree with the model.
fn compare(r: &Ranges<Vec<Slot>>, m: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(r.check(), Ok(()));
    prop_assert_eq!(r.counts(), m.counts());
    for i in 0..m.slots.len() as u32 + 2 {
        let id = RangeId(i);
        prop_assert_eq!(r.state(id), m.slots.get(i as usize).map(|s| s.state));
        prop_assert_eq!(r.mapping(id), m.mapping(id));
    }
    prop_assert_eq!(r.find_idle(None), m.find_idle(None));
    for o in 0..OWNERS {
        prop_assert_eq!(r.find_idle(Some(o)), m.find_idle(Some(o)));
    }
    let mut out = vec![RangeId(u32::MAX); m.slots.len() + 1];
    let n = r.idle_batch(&mut out);
    let want: Vec<RangeId> = m.idle().collect();
    prop_assert_eq!(&out[..n], &want[..]);
    prop_assert_eq!(
        r.below_threshold(RECLAIM_THRESHOLD_PERCENT),
        m.below_threshold(RECLAIM_THRESHOLD_PERCENT)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_model(size in 0u32..40, ops in proptest::collection::vec(op(), 0..200)) {
        use RangeState::*;
        let mut r = Ranges::new(vec![Slot::EMPTY; size as usize]);
        let mut m = Model::new(size);
        compare(&r, &m)?;
        for op in ops {
            match op {
                Op::Alloc => prop_assert_eq!(r.alloc(), m.alloc()),
                Op::Unreserve(t) => {
                    let id = resolve(&m, t, &[Reserved]);
                    prop_assert_eq!(r.unreserve(id), m.unreserve(id));
                }
                Op::Bind(t, o, c, w) => {
                    let id = resolve(&m, t, &[Reserved]);
                    prop_assert_eq!(r.bind(id, o, c, w), m.bind(id, o, c, w));
                }
                Op::SetWritable(t) => {
                    let id = resolve(&m, t, &[Busy]);
                    prop_assert_eq!(r.set_writable(id), m.set_writable(id));
                }
                Op::Get(t) => {
                    let id = resolve(&m, t, &[Busy]);
                    prop_assert_eq!(r.get(id), m.get(id));
                }
                Op::Put(t) => {
                    let id = resolve(&m, t, &[Busy, Reclaiming]);
                    prop_assert_eq!(r.put(id), m.put(id));
                }
                Op::FindIdle(o) => prop_assert_eq!(r.find_idle(o), m.find_idle(o)),
                Op::IdleBatch(n) => {
                    let mut out = vec![RangeId(u32::MAX); n];
                    let k = r.idle_batch(&mut out);
                    let want: Vec<RangeId> = m.idle().take(n).collect();
                    prop_assert_eq!(&out[..k], &want[..]);
                    prop_assert!(out[k..].iter().all(|&x| x == RangeId(u32::MAX)));
                }
                Op::BeginReclaim(t) => {
                    let id = resolve(&m, t, &[Busy]);
                    prop_assert_eq!(r.begin_reclaim(id), m.begin_reclaim(id));
                }
                Op::FinishReclaim(t, retire) => {
                    let id = resolve(&m, t, &[Reclaiming]);
                    prop_assert_eq!(r.finish_reclaim(id, retire), m.finish_reclaim(id, retire));
                }
                Op::AbortReclaim(t) => {
                    let id = resolve(&m, t, &[Reclaiming]);
                    prop_assert_eq!(r.abort_reclaim(id), m.abort_reclaim(id));
                }
                Op::Release(t) => {
                    let id = resolve(&m, t, &[Busy]);
                    prop_assert_eq!(r.release(id), m.release(id));
                }
                Op::Threshold(p) => {
                    prop_assert_eq!(r.below_threshold(p), m.below_threshold(p));
                }
            }
            compare(&r, &m)?;
        }
    }

    #[test]
    fn window_split(len in any::<u64>(), align in proptest::option::of(any::<u16>())) {
        let size = range_size(align);
        prop_assert!(size >= MIB2 && size.is_power_of_two());
        let n = ranges_in_window(len, size);
        prop_assert_eq!(u64::from(n), (len / size).min(u64::from(MAX_RANGES)));
        prop_assert!(RangeId(n).offset(size).unwrap() <= len);
    }
}

/// Binds a freshly allocated range.
fn bind_new<S: std::ops::DerefMut<Target = [Slot]>>(
    r: &mut Ranges<S>,
    owner: u64,
    chunk: u64,
) -> RangeId {
    let id = r.alloc().unwrap();
    r.bind(id, owner, chunk, false).unwrap();
    id
}

#[test]
fn empty_storage() {
    let mut st: [Slot; 0] = [];
    let mut r = Ranges::new(&mut st[..]);
    assert_eq!(r.counts(), Counts::default());
    assert_eq!(r.alloc(), None);
    assert!(!r.below_threshold(RECLAIM_THRESHOLD_PERCENT));
    assert!(!r.below_threshold(u32::MAX));
    assert_eq!(r.find_idle(None), None);
    assert_eq!(r.idle_batch(&mut [RangeId(0); 4]), 0);
    assert_eq!(r.state(RangeId(0)), None);
    assert_eq!(r.mapping(RangeId(0)), None);
    assert_eq!(r.unreserve(RangeId(0)), Err(RangeError::BadId));
    assert_eq!(r.bind(RangeId(0), 1, 1, true), Err(RangeError::BadId));
    assert_eq!(r.get(RangeId(u32::MAX)), Err(RangeError::BadId));
    assert_eq!(r.put(RangeId(0)), Err(RangeError::BadId));
    assert_eq!(r.release(RangeId(0)), Err(RangeError::BadId));
    assert_eq!(r.check(), Ok(()));
}

#[test]
fn exhaust_and_refill() {
    let mut st = [Slot::EMPTY; 5];
    let mut r = Ranges::new(&mut st[..]);
    let ids: Vec<RangeId> = std::iter::from_fn(|| r.alloc()).collect();
    assert_eq!(ids, (0..5).map(RangeId).collect::<Vec<_>>());
    assert_eq!(r.counts().reserved, 5);
    assert!(r.below_threshold(RECLAIM_THRESHOLD_PERCENT));

    // Unreserved ranges come back first (free list head).
    r.unreserve(RangeId(3)).unwrap();
    r.unreserve(RangeId(1)).unwrap();
    assert_eq!(r.alloc(), Some(RangeId(1)));
    assert_eq!(r.alloc(), Some(RangeId(3)));
    assert_eq!(r.alloc(), None);

    for (c, &id) in ids.iter().enumerate() {
        r.bind(id, 7, c as u64, false).unwrap();
    }
    assert_eq!(r.counts().busy, 5);

    // Reclaimed ranges go to the free list tail, in reclaim order.
    for id in [RangeId(4), RangeId(0), RangeId(2)] {
        r.begin_reclaim(id).unwrap();
        r.finish_reclaim(id, false).unwrap();
    }
    r.release(RangeId(1)).unwrap();
    assert_eq!(r.counts().free, 4);
    let again: Vec<RangeId> = std::iter::from_fn(|| r.alloc()).collect();
    assert_eq!(again, [RangeId(4), RangeId(0), RangeId(2), RangeId(1)]);
    assert_eq!(r.check(), Ok(()));
}

#[test]
fn retire_reduces_usable() {
    let mut r = Ranges::new(vec![Slot::EMPTY; 10]);
    let ids: Vec<RangeId> = (0..10).map(|c| bind_new(&mut r, 1, c)).collect();
    for &id in &ids[..5] {
        r.begin_reclaim(id).unwrap();
        r.finish_reclaim(id, true).unwrap();
    }
    assert_eq!(r.state(ids[0]), Some(RangeState::Retired));
    assert_eq!(r.mapping(ids[0]), None);
    assert_eq!(r.counts().retired, 5);
    // Retired ranges are never allocated again.
    assert_eq!(r.alloc(), None);
    // One free of 5 usable is exactly 20%: not below.
    r.begin_reclaim(ids[5]).unwrap();
    r.finish_reclaim(ids[5], false).unwrap();
    assert!(!r.below_threshold(RECLAIM_THRESHOLD_PERCENT));
    assert_eq!(r.alloc(), Some(ids[5]));
    assert!(r.below_threshold(RECLAIM_THRESHOLD_PERCENT));
    // Retired ranges are final.
    assert_eq!(r.finish_reclaim(ids[0], false), Err(RangeError::WrongState));
    assert_eq!(r.abort_reclaim(ids[0]), Err(RangeError::WrongState));
    assert_eq!(r.unreserve(ids[0]), Err(RangeError::WrongState));
    // Everything retired: nothing usable, never below.
    let mut all = Ranges::new(vec![Slot::EMPTY; 2]);
    for c in 0..2 {
        let id = bind_new(&mut all, 1, c);
        all.begin_reclaim(id).unwrap();
        all.finish_reclaim(id, true).unwrap();
    }
    assert!(!all.below_threshold(RECLAIM_THRESHOLD_PERCENT));
    assert_eq!(all.check(), Ok(()));
}

#[test]
fn threshold_boundaries() {
    let mut r = Ranges::new(vec![Slot::EMPTY; 10]);
    assert!(!r.below_threshold(RECLAIM_THRESHOLD_PERCENT));
    assert!(!r.below_threshold(100));
    assert!(r.below_threshold(101));
    for _ in 0..8 {
        r.alloc().unwrap();
    }
    assert_eq!(r.counts().free, 2);
    assert!(!r.below_threshold(RECLAIM_THRESHOLD_PERCENT));
    assert!(r.below_threshold(21));
    r.alloc().unwrap();
    assert!(r.below_threshold(RECLAIM_THRESHOLD_PERCENT));
    assert!(!r.below_threshold(10));
    assert!(!r.below_threshold(0));
    assert!(r.below_threshold(u32::MAX));
    r.alloc().unwrap();
    assert!(!r.below_threshold(0));
    assert!(r.below_threshold(1));
}

#[test]
fn lru_order_and_owner_filter() {
    let mut r = Ranges::new(vec![Slot::EMPTY; 4]);
    let a = bind_new(&mut r, 1, 0);
    let b = bind_new(&mut r, 2, 0);
    let c = bind_new(&mut r, 1, 1);
    assert_eq!(r.find_idle(None), Some(a));
    assert_eq!(r.find_idle(Some(2)), Some(b));
    assert_eq!(r.find_idle(Some(3)), None);

    // A referenced range is not idle; touching it makes it most recent.
    r.get(a).unwrap();
    assert_eq!(r.find_idle(None), Some(b));
    assert_eq!(r.find_idle(Some(1)), Some(c));
    r.put(a).unwrap();
    let mut out = [RangeId(9); RECLAIM_CHUNK];
    assert_eq!(r.idle_batch(&mut out), 3);
    assert_eq!(out[..3], [b, c, a]);
    let mut two = [RangeId(9); 2];
    assert_eq!(r.idle_batch(&mut two), 2);
    assert_eq!(two, [b, c]);

    // An aborted reclaim returns as most recent, mapping kept.
    r.set_writable(b).unwrap();
    r.begin_reclaim(b).unwrap();
    assert_eq!(r.find_idle(Some(2)), None);
    assert_eq!(
        r.mapping(b),
        Some(Mapping {
            owner: 2,
            chunk: 0,
            writable: true,
            refs: 0
        })
    );
    r.abort_reclaim(b).unwrap();
    assert_eq!(r.find_idle(None), Some(c));
    assert_eq!(r.idle_batch(&mut out), 3);
    assert_eq!(out[..3], [c, a, b]);
    assert_eq!(r.check(), Ok(()));
}

#[test]
fn misuse_is_an_error() {
    let mut r = Ranges::new(vec![Slot::EMPTY; 3]);
    let id = r.alloc().unwrap();
    assert_eq!(r.get(id), Err(RangeError::WrongState));
    assert_eq!(r.put(id), Err(RangeError::WrongState));
    assert_eq!(r.set_writable(id), Err(RangeError::WrongState));
    assert_eq!(r.begin_reclaim(id), Err(RangeError::WrongState));
    assert_eq!(r.release(id), Err(RangeError::WrongState));
    assert_eq!(r.mapping(id), None);
    r.bind(id, 1, 2, true).unwrap();
    assert_eq!(r.bind(id, 1, 2, true), Err(RangeError::WrongState));
    assert_eq!(r.unreserve(id), Err(RangeError::WrongState));
    assert_eq!(r.put(id), Err(RangeError::NoRef));
    r.get(id).unwrap();
    r.get(id).unwrap();
    assert_eq!(r.mapping(id).map(|m| m.refs), Some(2));
    assert_eq!(r.begin_reclaim(id), Err(RangeError::InUse));
    assert_eq!(r.release(id), Err(RangeError::InUse));
    assert_eq!(r.finish_reclaim(id, false), Err(RangeError::WrongState));
    r.put(id).unwrap();
    r.put(id).unwrap();
    r.begin_reclaim(id).unwrap();
    assert_eq!(r.put(id), Err(RangeError::NoRef));
    assert_eq!(r.get(id), Err(RangeError::WrongState));
    assert_eq!(r.release(id), Err(RangeError::WrongState));
    r.finish_reclaim(id, false).unwrap();
    assert_eq!(r.state(id), Some(RangeState::Free));
    assert_eq!(r.put(id), Err(RangeError::WrongState));
    assert_eq!(r.get(RangeId(3)), Err(RangeError::BadId));
    assert_eq!(r.check(), Ok(()));
}

#[test]
fn window_helpers() {
    assert_eq!(RECLAIM_THRESHOLD_PERCENT, 20);
    assert_eq!(RECLAIM_CHUNK, 10);
    assert_eq!(range_size(None), MIB2);
    assert_eq!(range_size(Some(0)), MIB2);
    assert_eq!(range_size(Some(12)), MIB2);
    assert_eq!(range_size(Some(21)), MIB2);
    assert_eq!(range_size(Some(22)), 2 * MIB2);
    assert_eq!(range_size(Some(63)), 1 << 63);
    assert_eq!(range_size(Some(64)), MIB2);
    assert_eq!(range_size(Some(u16::MAX)), MIB2);

    assert_eq!(ranges_in_window(0, MIB2), 0);
    assert_eq!(ranges_in_window(MIB2 - 1, MIB2), 0);
    assert_eq!(ranges_in_window(MIB2, MIB2), 1);
    assert_eq!(ranges_in_window(5 * MIB2 + 1, MIB2), 5);
    assert_eq!(ranges_in_window(1 << 40, MIB2), 1 << 19);
    assert_eq!(ranges_in_window(u64::MAX, 0), 0);
    assert_eq!(ranges_in_window(u64::MAX, 1), MAX_RANGES);
    assert_eq!(ranges_in_window(u64::from(u32::MAX), 1), MAX_RANGES);
    assert_eq!(ranges_in_window(u64::from(u32::MAX) - 1, 1), MAX_RANGES);
    assert_eq!(ranges_in_window(u64::from(u32::MAX) - 2, 1), u32::MAX - 2);

    assert_eq!(RangeId(3).offset(MIB2), Some(3 * MIB2));
    assert_eq!(RangeId(u32::MAX).offset(1 << 40), None);
}
