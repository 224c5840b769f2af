// SPDX-License-Identifier: GPL-2.0

//! The async page fault token table: who waits for which page, and which pages were ready before
//! anybody waited.
//!
//! Pure logic, with no kernel dependency, so that the host tests it too (`tools/host/async-pf`).
//! The caller serialises every call (the driver holds an interrupt-safe spinlock) and provides
//! the storage, allocated once at load: nothing here allocates, so the page-fault path and the
//! page-ready interrupt never do.
//!
//! A token has at most one node. A node is a sleeper (a task waits in the fault path; its waker
//! is used, borrowed, when the page is ready, and goes back to the sleeper when it leaves, so the
//! interrupt never drops one) or an early wake (the page-ready came before the wait). The
//! in-tree guest allocates early-wake nodes in the interrupt with `GFP_ATOMIC`; here they come
//! from the same pool, and when the pool is full the oldest early wake is given up for the new
//! node (an early wake nobody claimed for that long belongs to a wait that went another way).
//! Only a pool full of sleepers refuses: the fault path then retries the access instead of
//! sleeping, and the interrupt drops the early wake (the waiter's timeout covers it).

/// Number of hash buckets (a power of two).
pub(crate) const BUCKETS: usize = 256;

/// No node.
const NIL: u32 = u32::MAX;

/// What a node holds.
pub(crate) enum Slot<W> {
    /// On the free list.
    Free,
    /// A task waits, with its waker; `woken` once the page is ready (not yet gone).
    Sleeper { waker: W, woken: bool },
    /// The page was ready before anybody waited for it.
    Early,
}

/// One entry of the pool.
pub(crate) struct Node<W> {
    token: u32,
    cpu: u32,
    /// Next node in the bucket or on the free list.
    next: u32,
    /// When an early wake was stored, for eviction (oldest first).
    seq: u64,
    slot: Slot<W>,
}

impl<W> Node<W> {
    /// Returns a free node, to fill the storage with.
    pub(crate) const fn new() -> Self {
        Self {
            token: 0,
            cpu: 0,
            next: NIL,
            seq: 0,
            slot: Slot::Free,
        }
    }
}

/// What [`Table::wait`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Sleep until [`Table::is_woken`] for the node, then [`Table::done`].
    Sleep(u32),
    /// The page was ready already (an early wake, now consumed): retry at once.
    Ready,
    /// Another task waits for the same token: retry at once (the host halts the vCPU until the
    /// page is ready if it is still missing).
    Duplicate,
    /// The pool is full of sleepers: retry at once.
    Full,
}

/// What [`Table::wake`] did (the waker, if any, is lent to the caller's function).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woke the sleeper.
    Woken,
    /// Nobody waited yet: stored as an early wake.
    Early,
    /// The token was already woken or stored as an early wake: ignored.
    Duplicate,
    /// Nobody waited and the pool is full of sleepers: dropped.
    Dropped,
}

/// The table over the storage `S` (a slice of nodes, at most `u32::MAX - 1` of them).
pub(crate) struct Table<W, S> {
    heads: [u32; BUCKETS],
    free: u32,
    nodes: S,
    seq: u64,
    used: u32,
    _w: core::marker::PhantomData<W>,
}

/// The bucket of `token` (`hash_32()`'s multiplier).
fn bucket(token: u32) -> usize {
    (token.wrapping_mul(0x61c8_8647) >> (32 - BUCKETS.trailing_zeros())) as usize
}

impl<W, S: core::ops::DerefMut<Target = [Node<W>]>> Table<W, S> {
    /// Builds the table over `nodes`, which must all be free ([`Node::new`]).
    pub(crate) fn new(mut nodes: S) -> Self {
        let n = nodes.len();
        assert!(n < NIL as usize);
        for (i, node) in nodes.iter_mut().enumerate() {
            // CAST: `i + 1 <= n < NIL`.
            node.next = if i + 1 < n { (i + 1) as u32 } else { NIL };
            node.slot = Slot::Free;
        }
        Self {
            heads: [NIL; BUCKETS],
            free: if n > 0 { 0 } else { NIL },
            nodes,
            seq: 0,
            used: 0,
            _w: core::marker::PhantomData,
        }
    }

    /// Returns the number of nodes in use (sleepers and early wakes).
    pub(crate) fn used(&self) -> u32 {
        self.used
    }

    /// Returns the capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.nodes.len()
    }

    #[inline]
    fn find(&self, token: u32) -> Option<u32> {
        let mut i = self.heads[bucket(token)];
        while i != NIL {
            let n = &self.nodes[i as usize];
            if n.token == token {
                return Some(i);
            }
            i = n.next;
        }
        None
    }

    /// Unlinks node `i` from its bucket and frees it.
    fn remove(&mut self, i: u32) -> Slot<W> {
        let b = bucket(self.nodes[i as usize].token);
        let next = self.nodes[i as usize].next;
        if self.heads[b] == i {
            self.heads[b] = next;
        } else {
            let mut p = self.heads[b];
            while self.nodes[p as usize].next != i {
                p = self.nodes[p as usize].next;
            }
            self.nodes[p as usize].next = next;
        }
        let n = &mut self.nodes[i as usize];
        n.next = self.free;
        self.free = i;
        self.used -= 1;
        core::mem::replace(&mut n.slot, Slot::Free)
    }

    /// Takes a free node, giving up the oldest early wake if there is none.
    fn alloc(&mut self) -> Option<u32> {
        if self.free == NIL {
            let oldest = (0..self.nodes.len())
                .filter(|&i| matches!(self.nodes[i].slot, Slot::Early))
                .min_by_key(|&i| self.nodes[i].seq)?;
            // CAST: Below `len() < NIL`.
            self.remove(oldest as u32);
        }
        let i = self.free;
        self.free = self.nodes[i as usize].next;
        self.used += 1;
        Some(i)
    }

    fn insert(&mut self, i: u32, token: u32, cpu: u32, slot: Slot<W>) {
        let b = bucket(token);
        self.seq += 1;
        let n = &mut self.nodes[i as usize];
        n.token = token;
        n.cpu = cpu;
        n.seq = self.seq;
        n.slot = slot;
        n.next = self.heads[b];
        self.heads[b] = i;
    }

    /// "Page not present" for `token` on CPU `cpu`: a sleeper node with `waker`, unless the page
    /// was ready already. Returns the waker when no sleeper node keeps it.
    pub(crate) fn wait(&mut self, token: u32, cpu: u32, waker: W) -> (Wait, Option<W>) {
        if let Some(i) = self.find(token) {
            return match self.nodes[i as usize].slot {
                Slot::Early => {
                    self.remove(i);
                    (Wait::Ready, Some(waker))
                }
                _ => (Wait::Duplicate, Some(waker)),
            };
        }
        match self.alloc() {
            Some(i) => {
                self.insert(
                    i,
                    token,
                    cpu,
                    Slot::Sleeper {
                        waker,
                        woken: false,
                    },
                );
                (Wait::Sleep(i), None)
            }
            None => (Wait::Full, Some(waker)),
        }
    }

    /// Returns `true` once sleeper node `i` was woken.
    pub(crate) fn is_woken(&self, i: u32) -> bool {
        matches!(
            self.nodes[i as usize].slot,
            Slot::Sleeper { woken: true, .. }
        )
    }

    /// If sleeper node `i` was woken, frees it and returns its waker: the sleeper is done.
    pub(crate) fn take_if_woken(&mut self, i: u32) -> Option<W> {
        if self.is_woken(i) {
            self.done(i)
        } else {
            None
        }
    }

    /// The sleeper of node `i` is done waiting (woken or not): frees the node and returns its
    /// waker (`None` only if `i` is not a sleeper node).
    pub(crate) fn done(&mut self, i: u32) -> Option<W> {
        match self.remove(i) {
            Slot::Sleeper { waker, .. } => Some(waker),
            _ => None,
        }
    }

    /// Page ready for `token` (not the broadcast `~0`) on CPU `cpu`: lends the sleeper's waker to
    /// `wake` (the sleeper gets it back), or stores an early wake.
    pub(crate) fn wake(&mut self, token: u32, cpu: u32, wake: impl FnOnce(&W)) -> Wake {
        if let Some(i) = self.find(token) {
            return match &mut self.nodes[i as usize].slot {
                Slot::Sleeper {
                    waker,
                    woken: woken @ false,
                } => {
                    *woken = true;
                    wake(waker);
                    Wake::Woken
                }
                _ => Wake::Duplicate,
            };
        }
        match self.alloc() {
            Some(i) => {
                self.insert(i, token, cpu, Slot::Early);
                Wake::Early
            }
            None => Wake::Dropped,
        }
    }

    /// Lends the waker of every sleeper not woken yet whose wait began on CPU `cpu` (any CPU if
    /// `None`) to `wake`, and drops the early wakes stored by that CPU (or all): the broadcast, a
    /// CPU that goes offline, teardown. Returns the number of sleepers woken.
    pub(crate) fn wake_cpu(&mut self, cpu: Option<u32>, mut wake: impl FnMut(&W)) -> u32 {
        let mut woken = 0;
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            if cpu.is_some_and(|c| c != n.cpu) {
                continue;
            }
            match &mut n.slot {
                Slot::Sleeper { waker, woken: w } => {
                    if !*w {
                        *w = true;
                        wake(waker);
                        woken += 1;
                    }
                }
                Slot::Early => {
                    // CAST: Below `len() < NIL`.
                    self.remove(i as u32);
                }
                Slot::Free => {}
            }
        }
        woken
    }
}
