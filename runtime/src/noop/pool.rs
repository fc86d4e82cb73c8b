//! Pool and worker handles with every method empty.

use std::fmt::Display;
use std::time::Duration;

pub use super::worker::{BusyGuard, Worker};
use crate::interner::{AsLabel, Label};
use crate::model::events::Field;

// The derives match the real types', so code that compiles against one
// compiles, warning-free, against the other.

/// A pool handle; with no aspect compiled in, every method is empty.
#[derive(Clone, Debug)]
pub struct Pool;

/// Builds a [`Pool`].
#[must_use]
#[derive(Debug)]
pub struct PoolBuilder;

impl PoolBuilder {
    /// The pool.
    #[inline(always)]
    pub fn build(self) -> Pool {
        Pool
    }

    /// Does nothing.
    #[inline(always)]
    pub fn with_saturation_hold(self, _hold: Duration) -> PoolBuilder {
        self
    }
}

impl Pool {
    /// A pool handle.
    #[inline(always)]
    pub fn new<L: AsLabel + ?Sized>(_name: &L) -> Pool {
        Pool
    }

    /// A builder.
    #[inline(always)]
    pub fn builder<L: AsLabel + ?Sized>(_name: &L) -> PoolBuilder {
        PoolBuilder
    }

    /// An empty label.
    #[inline(always)]
    pub fn label(&self) -> Label {
        Label::from_static("")
    }

    /// Does nothing.
    #[inline(always)]
    pub fn started(&self, _size: usize, _startup: Duration, _config: Vec<Field>) {}

    /// Does nothing.
    #[inline(always)]
    pub fn retire(&self) {}

    /// Does nothing.
    #[inline(always)]
    pub fn set_size(&self, _size: usize) {}

    /// Does nothing.
    #[inline(always)]
    pub fn queue_depth(&self, _depth: usize) {}

    /// Does nothing.
    #[inline(always)]
    pub fn queue_wait(&self, _wait: Duration) {}

    /// Does nothing.
    #[inline(always)]
    pub fn set_queue_capacity(&self, _capacity: usize) {}

    /// Does nothing.
    #[inline(always)]
    pub fn saturated(&self, _queue_size: usize, _available_workers: usize) {}

    /// Does nothing.
    #[inline(always)]
    pub fn saturation_ended(&self) {}

    /// Always `false`.
    #[inline(always)]
    pub fn is_saturated(&self) -> bool {
        false
    }

    /// Always 0.
    #[inline(always)]
    pub fn available(&self) -> usize {
        0
    }

    /// Always 0.
    #[inline(always)]
    pub fn busy(&self) -> usize {
        0
    }

    /// Always 0.
    #[inline(always)]
    pub fn size(&self) -> usize {
        0
    }

    /// Always 0.
    #[inline(always)]
    pub fn queued(&self) -> usize {
        0
    }

    /// A worker handle that does nothing.
    #[inline(always)]
    pub fn worker<I: Display>(&self, _id: I) -> Worker {
        Worker
    }

    /// Does nothing.
    #[inline(always)]
    pub fn session_created(&self, _session_id: &str, _ttl: Duration, _metadata: Vec<Field>) {}

    /// Does nothing.
    #[inline(always)]
    pub fn sessions_cleaned(&self, _count: usize, _duration: Duration) {}
}

/// No worker keeps a reading.
#[cfg(any(feature = "metrics", feature = "aspects"))]
#[inline(always)]
pub(crate) fn note_resident(_pool: Label, _readings: &[(u32, u64)]) {}
