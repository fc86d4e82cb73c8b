//! A bounded queue that observes its pool: the glue every pool writes
//! between the callers who send work and the workers who take it.
//!
//! [`channel`] returns a multi-producer, multi-consumer queue (on
//! `async-channel`, so it serves tokio tasks, other executors and plain
//! threads alike: `send().await` or `send_blocking()`, `recv().await` or
//! `recv_blocking()`). Every worker holds a clone of the [`Receiver`]. The
//! queue reports to its [`Pool`]:
//!
//! - the queue depth (`poolscope_queue_depth`), at both ends: what waits in
//!   the queue and the senders waiting for room;
//! - the time each item waited, stamped at send and recorded when a worker
//!   takes it (`poolscope_queue_wait_duration_seconds`, the queue-wait
//!   percentiles of `/health/detailed`);
//! - saturation episodes (`pool.saturated`, `poolscope_pool_saturated_total`)
//!   when the queue is full, or when an item waits while every worker is
//!   busy, and their end when the queue runs empty;
//! - its capacity, for readiness (`HealthConfig::readiness`).
//!
//! [`Sender::try_send`] refuses an item when the queue is full; its error
//! makes an observed function that returns it record the outcome
//! `rejected`. Use one queue per pool: the pool's depth is the last one
//! reported.
//!
//! With no aspect compiled in, the queue is the same queue and records
//! nothing: its items carry no time stamp.
//!
//! ```
//! # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # runtime.block_on(async {
//! use poolscope_runtime::{queue, Pool};
//!
//! let pool = Pool::new("doc-queue");
//! let (jobs, work) = queue::channel::<u32>(&pool, 8);
//! jobs.send(7).await.unwrap();
//! assert_eq!(work.recv().await, Some(7));
//! # });
//! ```

use std::fmt;

use crate::model::error::{ErrorContext, ErrorDetails, ErrorKind};
use crate::model::Outcome;
use crate::seam::{Stamp, Ticket, Tracker};
use crate::Pool;

struct Entry<T> {
    item: T,
    stamp: Stamp,
}

/// A bounded queue of `capacity` items (at least 1) for `pool`; see the
/// module docs.
pub fn channel<T>(pool: &Pool, capacity: usize) -> (Sender<T>, Receiver<T>) {
    let capacity = capacity.max(1);
    let (tx, rx) = async_channel::bounded(capacity);
    let track = Tracker::new(pool, capacity);
    (
        Sender {
            tx,
            track: track.clone(),
        },
        Receiver { rx, track },
    )
}

/// The sending half of a [`channel`]. Cloning it adds a sender; the queue
/// closes when every sender is gone (or [`Sender::close`]).
pub struct Sender<T> {
    tx: async_channel::Sender<Entry<T>>,
    track: Tracker,
}

/// The receiving half of a [`channel`]: clone it into every worker.
pub struct Receiver<T> {
    rx: async_channel::Receiver<Entry<T>>,
    track: Tracker,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            tx: self.tx.clone(),
            track: self.track.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            rx: self.rx.clone(),
            track: self.track.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.tx.len())
            .field("capacity", &self.tx.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.rx.len())
            .field("capacity", &self.rx.capacity())
            .finish_non_exhaustive()
    }
}

/// An item [`Sender::offer`] could not queue at once.
enum Offer<'a, T> {
    /// The queue is full: the item, stamped and counted as waiting.
    Full(Ticket<'a>, Entry<T>),
    /// The queue is closed.
    Closed(T),
}

impl<T> Sender<T> {
    /// Queues `item` if there is room now. A full queue is reported as
    /// saturation and hands the item back, still counted as waiting: the
    /// caller either waits for room or refuses it.
    fn offer(&self, item: T) -> Result<(), Offer<'_, T>> {
        let ticket = self.track.enter();
        let entry = Entry {
            item,
            stamp: ticket.stamp(),
        };
        match self.tx.try_send(entry) {
            Ok(()) => {
                ticket.queued();
                Ok(())
            }
            Err(async_channel::TrySendError::Closed(entry)) => Err(Offer::Closed(entry.item)),
            Err(async_channel::TrySendError::Full(entry)) => {
                ticket.full();
                Err(Offer::Full(ticket, entry))
            }
        }
    }

    /// Sends `item`, waiting for room while the queue is full (a full queue
    /// begins a saturation episode).
    ///
    /// # Errors
    ///
    /// [`SendError`], with the item, when the queue is closed.
    pub async fn send(&self, item: T) -> Result<(), SendError<T>> {
        let (ticket, entry) = match self.offer(item) {
            Ok(()) => return Ok(()),
            Err(Offer::Closed(item)) => return Err(SendError(item)),
            Err(Offer::Full(ticket, entry)) => (ticket, entry),
        };
        // Dropped while it waits (cancelled), the ticket takes the item back
        // out of the depth.
        match self.tx.send(entry).await {
            Ok(()) => {
                ticket.queued();
                Ok(())
            }
            Err(async_channel::SendError(entry)) => Err(SendError(entry.item)),
        }
    }

    /// [`Sender::send`] for threads: blocks while the queue is full. Not
    /// for async code, where it would block the executor.
    ///
    /// # Errors
    ///
    /// [`SendError`], with the item, when the queue is closed.
    pub fn send_blocking(&self, item: T) -> Result<(), SendError<T>> {
        let (ticket, entry) = match self.offer(item) {
            Ok(()) => return Ok(()),
            Err(Offer::Closed(item)) => return Err(SendError(item)),
            Err(Offer::Full(ticket, entry)) => (ticket, entry),
        };
        match self.tx.send_blocking(entry) {
            Ok(()) => {
                ticket.queued();
                Ok(())
            }
            Err(async_channel::SendError(entry)) => Err(SendError(entry.item)),
        }
    }

    /// Sends `item` if there is room now. A full queue refuses it (and
    /// begins a saturation episode): an observed function that returns the
    /// error records the outcome `rejected`.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when the queue is full,
    /// [`TrySendError::Closed`] when it is closed; both hand the item back.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        match self.offer(item) {
            Ok(()) => Ok(()),
            // The ticket drops with it: a refused item never waited.
            Err(Offer::Full(_, entry)) => Err(TrySendError::Full(entry.item)),
            Err(Offer::Closed(item)) => Err(TrySendError::Closed(item)),
        }
    }

    /// Closes the queue: sends fail from now on, and receivers get what is
    /// left, then `None`.
    pub fn close(&self) {
        self.tx.close();
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Items in the queue now.
    pub fn len(&self) -> usize {
        self.tx.len()
    }

    /// Whether the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.tx.is_empty()
    }

    /// How many items the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.tx.capacity().unwrap_or(usize::MAX)
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting for one; `None` once the queue is closed and
    /// empty.
    pub async fn recv(&self) -> Option<T> {
        let entry = self.rx.recv().await.ok()?;
        self.track.taken(entry.stamp);
        Some(entry.item)
    }

    /// [`Receiver::recv`] for threads: blocks until an item comes. Not for
    /// async code, where it would block the executor.
    pub fn recv_blocking(&self) -> Option<T> {
        let entry = self.rx.recv_blocking().ok()?;
        self.track.taken(entry.stamp);
        Some(entry.item)
    }

    /// The next item if one waits now.
    pub fn try_recv(&self) -> Option<T> {
        let entry = self.rx.try_recv().ok()?;
        self.track.taken(entry.stamp);
        Some(entry.item)
    }

    /// Closes the queue: sends fail from now on; what is in it can still be
    /// received.
    pub fn close(&self) {
        self.rx.close();
    }

    /// Items in the queue now.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // The last receiver takes the queue's items with it: they leave the
        // depth, or the pool would report them waiting forever.
        if self.rx.receiver_count() == 1 {
            self.rx.close();
            while self.rx.try_recv().is_ok() {
                self.track.leave();
            }
        }
    }
}

/// The queue was closed; the item is handed back.
#[derive(Clone, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The item that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// An item [`Sender::try_send`] did not send, handed back.
#[derive(Clone, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue is full: the pool is saturated.
    Full(T),
    /// The queue is closed.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The item that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(item) | TrySendError::Closed(item) => item,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
}

// Like the standard library's channel errors: no `T: Debug` bound, so any
// item can travel and still be returned with `?`.
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the pool's queue is closed")
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the pool's queue is full"),
            TrySendError::Closed(_) => f.write_str("the pool's queue is closed"),
        }
    }
}

impl<T> std::error::Error for SendError<T> {}
impl<T> std::error::Error for TrySendError<T> {}

/// Refused without being run: the outcome `rejected`.
impl<T> ErrorDetails for SendError<T> {
    fn error_context(&self) -> ErrorContext {
        ErrorContext::message(ErrorKind::Error, "queue::SendError", self.to_string())
    }

    fn outcome(&self) -> Outcome {
        Outcome::Rejected
    }
}

/// Refused without being run: the outcome `rejected`.
impl<T> ErrorDetails for TrySendError<T> {
    fn error_context(&self) -> ErrorContext {
        ErrorContext::message(ErrorKind::Error, "queue::TrySendError", self.to_string())
    }

    fn outcome(&self) -> Outcome {
        Outcome::Rejected
    }
}
