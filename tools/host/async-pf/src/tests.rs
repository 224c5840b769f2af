// SPDX-License-Identifier: GPL-2.0

//! The token table: no lost wake-up, no double wake, bounded pool.

use crate::table::{Node, Table, Wait, Wake};
use proptest::prelude::*;
use std::collections::HashMap;

type T = Table<u32, Vec<Node<u32>>>;

fn table(n: usize) -> T {
    Table::new((0..n).map(|_| Node::new()).collect())
}

#[test]
fn wait_then_wake() {
    let mut t = table(4);
    let (w, back) = t.wait(0x1001, 0, 7);
    assert_eq!(back, None);
    let Wait::Sleep(i) = w else { panic!("{w:?}") };
    assert!(!t.is_woken(i));
    let mut got = None;
    assert_eq!(t.wake(0x1001, 0, |w| got = Some(*w)), Wake::Woken);
    assert_eq!(got, Some(7));
    assert!(t.is_woken(i));
    // A second page-ready for the same token before the sleeper left: ignored.
    assert_eq!(t.wake(0x1001, 0, |_| panic!()), Wake::Duplicate);
    // The waker goes back to the sleeper.
    assert_eq!(t.done(i), Some(7));
    assert_eq!(t.used(), 0);
}

#[test]
fn take_if_woken_frees_only_a_woken_sleeper() {
    let mut t = table(2);
    let (Wait::Sleep(i), None) = t.wait(0x3001, 0, 5) else {
        panic!()
    };
    assert_eq!(t.take_if_woken(i), None);
    assert_eq!(t.used(), 1);
    assert_eq!(t.wake(0x3001, 0, |w| assert_eq!(*w, 5)), Wake::Woken);
    assert_eq!(t.take_if_woken(i), Some(5));
    assert_eq!(t.used(), 0);
    // The token is free again: a late page-ready for it is an early wake.
    assert_eq!(t.wake(0x3001, 0, |_| panic!()), Wake::Early);
}

#[test]
fn wake_before_wait() {
    let mut t = table(4);
    assert_eq!(t.wake(0x2001, 1, |_| panic!()), Wake::Early);
    assert_eq!(t.wake(0x2001, 1, |_| panic!()), Wake::Duplicate);
    assert_eq!(t.wait(0x2001, 1, 9), (Wait::Ready, Some(9)));
    assert_eq!(t.used(), 0);
}

#[test]
fn full_pool_evicts_oldest_early_then_refuses() {
    let mut t = table(2);
    assert_eq!(t.wake(1 << 12, 0, |_| panic!()), Wake::Early);
    assert_eq!(t.wake(2 << 12, 0, |_| panic!()), Wake::Early);
    // The oldest early wake goes for the new sleeper.
    let (w, _) = t.wait(3 << 12, 0, 1);
    assert!(matches!(w, Wait::Sleep(_)));
    // Token 1 lost its early wake: it sleeps, in the node of the next oldest (token 2).
    assert_eq!(t.wait(1 << 12, 0, 2).0, Wait::Sleep(1));
    // Two sleepers: nothing to evict.
    assert_eq!(t.wait(4 << 12, 0, 3), (Wait::Full, Some(3)));
    assert_eq!(t.wake(5 << 12, 0, |_| panic!()), Wake::Dropped);
}

#[test]
fn broadcast_wakes_only_its_cpu() {
    let mut t = table(8);
    let (a, _) = t.wait(0x1000, 0, 10);
    let (b, _) = t.wait(0x1001, 1, 11);
    t.wake(0x2000, 0, |_| ());
    let mut woken = vec![];
    assert_eq!(t.wake_cpu(Some(0), |w| woken.push(*w)), 1);
    assert_eq!(woken, vec![10]);
    let (Wait::Sleep(a), Wait::Sleep(b)) = (a, b) else {
        panic!()
    };
    assert!(t.is_woken(a) && !t.is_woken(b));
    // CPU 0's early wake went with the broadcast.
    assert_eq!(t.used(), 2);
    assert_eq!(t.wake_cpu(None, |w| woken.push(*w)), 1);
    assert_eq!(woken, vec![10, 11]);
}

#[derive(Clone, Debug)]
enum Op {
    Wait(u32, u32),
    Wake(u32, u32),
    Done(usize),
    WakeCpu(Option<u32>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u32..24, 0u32..3).prop_map(|(t, c)| Op::Wait(t << 12 | c, c)),
        (1u32..24, 0u32..3).prop_map(|(t, c)| Op::Wake(t << 12 | c, c)),
        (0usize..8).prop_map(Op::Done),
        prop_oneof![Just(None), (0u32..3).prop_map(Some)].prop_map(Op::WakeCpu),
    ]
}

proptest! {
    /// Every sleeper is woken at most once and only while it sleeps, every waker given to the
    /// table comes back to its task exactly once (at once, or when the sleeper leaves), a woken
    /// sleeper sees it, and the pool never holds more than its capacity.
    #[test]
    fn every_waker_comes_back_once(cap in 1usize..12, ops in prop::collection::vec(op(), 1..200)) {
        let mut t = table(cap);
        let mut next = 0u32;
        // Sleeper node -> waker; wakes per waker; wakers given back.
        let mut sleeping: Vec<(u32, u32)> = vec![];
        let mut woken: HashMap<u32, u32> = HashMap::new();
        let mut back: HashMap<u32, u32> = HashMap::new();
        for op in ops {
            match op {
                Op::Wait(token, cpu) => {
                    next += 1;
                    let (w, b) = t.wait(token, cpu, next);
                    match w {
                        Wait::Sleep(i) => {
                            prop_assert!(b.is_none());
                            prop_assert!(!sleeping.iter().any(|&(j, _)| j == i));
                            sleeping.push((i, next));
                        }
                        _ => {
                            prop_assert_eq!(b, Some(next));
                            *back.entry(next).or_default() += 1;
                        }
                    }
                }
                Op::Wake(token, cpu) => {
                    t.wake(token, cpu, |w| *woken.entry(*w).or_default() += 1);
                }
                Op::WakeCpu(cpu) => {
                    t.wake_cpu(cpu, |w| *woken.entry(*w).or_default() += 1);
                }
                Op::Done(k) => {
                    if !sleeping.is_empty() {
                        let (i, w) = sleeping.remove(k % sleeping.len());
                        let was_woken = t.is_woken(i);
                        prop_assert_eq!(was_woken, woken.contains_key(&w));
                        // A woken sleeper leaves through take_if_woken() half of the time.
                        let b = if k % 2 == 0 && was_woken {
                            t.take_if_woken(i)
                        } else {
                            if !was_woken {
                                prop_assert_eq!(t.take_if_woken(i), None);
                            }
                            t.done(i)
                        };
                        prop_assert_eq!(b, Some(w));
                        *back.entry(w).or_default() += 1;
                    }
                }
            }
            prop_assert!(t.used() as usize <= t.capacity());
            prop_assert!(woken.values().all(|&n| n == 1));
            prop_assert!(back.values().all(|&n| n == 1));
        }
        // Teardown: every sleeper still waiting is woken, then leaves with its waker.
        t.wake_cpu(None, |w| *woken.entry(*w).or_default() += 1);
        for (i, w) in sleeping.drain(..) {
            prop_assert!(t.is_woken(i));
            prop_assert_eq!(t.done(i), Some(w));
            *back.entry(w).or_default() += 1;
        }
        prop_assert_eq!(back.len() as u32, next);
        prop_assert!(woken.values().all(|&n| n == 1));
        prop_assert!(back.values().all(|&n| n == 1));
    }
}
