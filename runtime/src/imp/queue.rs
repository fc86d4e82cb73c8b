//! What an observed queue records: its depth at both ends, how long each
//! item waited, saturation. The queue itself is `crate::queue`, the same in
//! both builds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::pool::Pool;

/// When an item was sent.
pub(crate) type Stamp = Instant;

/// One queue's view of its pool. Cloned into every sender and receiver.
#[derive(Clone, Debug)]
pub(crate) struct Tracker {
    pool: Pool,
    // Items in the channel plus senders waiting for room: what waits for a
    // worker.
    depth: Arc<AtomicUsize>,
}

impl Tracker {
    pub(crate) fn new(pool: &Pool, capacity: usize) -> Tracker {
        pool.set_queue_capacity(capacity);
        Tracker {
            pool: pool.clone(),
            depth: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// An item starts to wait.
    pub(crate) fn enter(&self) -> Ticket<'_> {
        let depth = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
        self.pool.queue_depth(depth);
        Ticket {
            tracker: self,
            depth,
            at: Instant::now(),
            armed: true,
        }
    }

    /// A worker took an item sent at `stamp`. An empty queue clears a
    /// saturation episode.
    pub(crate) fn taken(&self, stamp: Stamp) {
        self.leave();
        self.pool.queue_wait(stamp.elapsed());
    }

    /// An item left without being taken (the queue was dropped with it).
    pub(crate) fn leave(&self) {
        let depth = self.depth.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        self.pool.queue_depth(depth);
    }
}

/// An item on its way into the queue. Dropped before [`Ticket::queued`]
/// (the send failed or was cancelled), it takes itself out of the depth.
pub(crate) struct Ticket<'a> {
    tracker: &'a Tracker,
    depth: usize,
    at: Instant,
    armed: bool,
}

impl Ticket<'_> {
    pub(crate) fn stamp(&self) -> Stamp {
        self.at
    }

    /// The queue is full: the pool is saturated, whatever its workers do.
    pub(crate) fn full(&self) {
        let pool = &self.tracker.pool;
        pool.saturated(self.depth, pool.available());
    }

    /// The item is in the queue. It waits with every worker busy: the pool
    /// is saturated. (A pool whose workers report no state has none busy,
    /// and only a full queue saturates it.)
    pub(crate) fn queued(mut self) {
        self.armed = false;
        let pool = &self.tracker.pool;
        if pool.available() == 0 && pool.busy() > 0 {
            pool.saturated(self.depth, 0);
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.tracker.leave();
        }
    }
}
