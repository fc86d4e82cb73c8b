//! Worker handles with every method empty; running a job still catches
//! its panic, as in the real build.

use std::time::Duration;

use crate::model::error::{CrashContext, ErrorContext, Panicked};
use crate::model::WorkerState;

/// A worker handle; with no aspect compiled in, every method is empty.
#[derive(Debug)]
pub struct Worker;

impl Worker {
    /// Does nothing.
    #[inline(always)]
    pub fn start_failed(&self, _startup: Duration, _error: ErrorContext) {}

    /// An empty id.
    #[inline(always)]
    pub fn id(&self) -> &str {
        ""
    }

    /// Always [`WorkerState::Stopped`]: nothing is tracked.
    #[inline(always)]
    pub fn state(&self) -> WorkerState {
        WorkerState::Stopped
    }

    /// Does nothing.
    #[inline(always)]
    pub fn set_state(&self, _state: WorkerState) {}

    /// Does nothing.
    #[inline(always)]
    pub fn started(&self, _pid: Option<u32>, _startup: Duration) {}

    /// Does nothing.
    #[inline(always)]
    pub fn set_pid(&self, _pid: u32) {}

    /// Does nothing.
    #[inline(always)]
    pub fn crashed(&self, _reason: &str, _crash: CrashContext) {}

    /// A guard that does nothing.
    #[inline(always)]
    pub fn busy(&self) -> BusyGuard<'_> {
        BusyGuard(std::marker::PhantomData)
    }

    /// Runs `job`; a panic inside it comes back as [`Panicked`], as in the
    /// real build.
    ///
    /// # Errors
    ///
    /// [`Panicked`] when `job` panicked.
    #[inline(always)]
    pub fn run<R>(&self, job: impl FnOnce() -> R) -> Result<R, Panicked> {
        crate::task::catch(job)
    }

    /// Drives `job`; a panic in any of its polls comes back as
    /// [`Panicked`], as in the real build.
    ///
    /// # Errors
    ///
    /// [`Panicked`] when `job` panicked.
    pub async fn run_async<F: std::future::Future>(&self, job: F) -> Result<F::Output, Panicked> {
        crate::task::catch_async(job).await
    }
}

// Empty, but present as in the real build (which takes the worker out of
// the gauges), so code that drops a worker explicitly lints the same.
impl Drop for Worker {
    #[inline(always)]
    fn drop(&mut self) {}
}

/// A guard that does nothing: nothing is tracked.
#[must_use = "the worker is available again as soon as the guard drops"]
#[derive(Debug)]
pub struct BusyGuard<'a>(std::marker::PhantomData<&'a Worker>);

// Empty, but present as in the real build, so `drop(guard)` lints the same.
impl Drop for BusyGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {}
}
