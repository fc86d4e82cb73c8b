//! Running one job so that its panic comes back as an error and the worker
//! that ran it lives on. Shared by both builds: catching a panic is
//! behaviour, not instrumentation, so it is the same with poolscope compiled
//! out.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Poll;

use crate::model::error::Panicked;

/// Runs `job`, catching a panic.
pub(crate) fn catch<R>(job: impl FnOnce() -> R) -> Result<R, Panicked> {
    crate::seam::panic_hook();
    catch_unwind(AssertUnwindSafe(job)).map_err(|payload| caught(&*payload))
}

/// Drives `job`, catching a panic in any of its polls. The future is not
/// used again after a panic, so a broken invariant inside it cannot be
/// observed: that is what makes `AssertUnwindSafe` sound here.
pub(crate) async fn catch_async<F: Future>(job: F) -> Result<F::Output, Panicked> {
    crate::seam::panic_hook();
    let mut job = std::pin::pin!(job);
    std::future::poll_fn(
        move |cx| match catch_unwind(AssertUnwindSafe(|| job.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(caught(&*payload))),
        },
    )
    .await
}

fn caught(payload: &(dyn std::any::Any + Send)) -> Panicked {
    let mut panicked = Panicked::from_payload(payload);
    panicked.location = crate::seam::panic_location();
    panicked
}
