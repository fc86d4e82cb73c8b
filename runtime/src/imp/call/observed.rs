//! The async half of an observed call: the future around its body. A task
//! may move between threads from poll to poll, so what a sync call keeps on
//! its thread (the correlation id, the worker its body named) lives here and
//! is put in place around each poll.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{put_worker, swap, take_worker, Call, CORRELATION};

pin_project_lite::pin_project! {
    /// Drives an observed async call: sets its correlation id around every
    /// poll and marks the body as running, so that a drop between polls reads
    /// as a cancellation and a drop while unwinding out of a poll as a panic.
    pub struct Observed<F> {
        call: Option<Call>,
        // The worker its body named, kept between polls.
        worker: Option<String>,
        #[pin]
        future: F,
    }
}

impl<F> Observed<F> {
    /// Wraps the body of an async call.
    #[inline(always)]
    pub fn new(call: Call, future: F) -> Observed<F> {
        Observed {
            call: Some(call),
            worker: None,
            future,
        }
    }
}

impl<F: Future> Future for Observed<F> {
    type Output = (F::Output, Call);

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(call) = this.call.as_mut() else {
            panic!("an observed future was polled after it completed");
        };
        let poll = match call.active.as_mut() {
            None => this.future.poll(cx),
            Some(active) => {
                let _restore =
                    CORRELATION.then(|| crate::imp::correlation::Restore(swap(active.correlation)));
                active.in_body = true;
                // Another call's worker, named on this thread before this
                // poll, is not this call's: put back after it.
                let outer = take_worker();
                let poll = this.future.poll(cx);
                if let Some(worker) = take_worker() {
                    *this.worker = Some(worker);
                }
                if let Some(outer) = outer {
                    put_worker(outer);
                }
                active.in_body = false;
                // `finish` runs next, on this thread: it takes the worker.
                if poll.is_ready() {
                    if let Some(worker) = this.worker.take() {
                        put_worker(worker);
                    }
                }
                poll
            }
        };
        match poll {
            Poll::Ready(output) => match this.call.take() {
                Some(call) => Poll::Ready((output, call)),
                None => unreachable!("checked above"),
            },
            Poll::Pending => Poll::Pending,
        }
    }
}
