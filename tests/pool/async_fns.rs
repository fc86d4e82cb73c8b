//! Async functions, `impl Future` returns and async-trait methods:
//! outcomes (including cancellation) and correlation across `.await`.

use poolscope_testkit as common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use common::*;
use poolscope::correlation::{current, CorrelationId};
use poolscope::{observe, Outcome};

/// Pending on the first poll, ready on the second.
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[observe(pool = "async-outcomes", command = "work")]
async fn work(fail: bool) -> Result<Option<CorrelationId>, std::io::Error> {
    let before = current();
    YieldOnce(false).await;
    tokio::task::yield_now().await;
    assert_eq!(current(), before, "the scope survives an .await");
    if fail {
        Err(std::io::Error::other("async failure"))?;
    }
    Ok(current())
}

#[tokio::test]
async fn async_outcomes_and_correlation_across_awaits() {
    let captured = capture("async-outcomes");
    let id = work(false).await.unwrap();
    assert_eq!(id.is_some(), CORRELATION);
    assert_eq!(current(), None, "the scope ends with the call");
    assert!(work(true).await.is_err());
    assert_eq!(
        outcome_counts("async-outcomes", "work"),
        if TIMING { [1, 1, 0, 0] } else { [0; 4] }
    );
    let events = captured.take();
    let done = completions(&events);
    if !ANY {
        assert!(done.is_empty());
        return;
    }
    assert_eq!(done[0].correlation_id, id);
    assert_eq!(done[1].outcome, Outcome::Error);
    if ERRORS {
        assert_eq!(done[1].error.as_ref().unwrap().message, "async failure");
    }
}

#[observe(pool = "async-cancel", command = "slow")]
async fn slow() -> u32 {
    std::future::pending::<()>().await;
    1
}

#[tokio::test]
async fn a_dropped_future_is_cancelled() {
    let captured = capture("async-cancel");
    let result = tokio::time::timeout(std::time::Duration::from_millis(20), slow()).await;
    assert!(result.is_err());
    assert_eq!(
        outcome_counts("async-cancel", "slow"),
        if TIMING { [0, 0, 0, 1] } else { [0; 4] }
    );
    let events = captured.take();
    if ANY {
        assert_eq!(completions(&events)[0].outcome, Outcome::Cancelled);
        assert!(completions(&events)[0].error.is_none());
    }
}

#[observe(pool = "async-panic", command = "boom")]
async fn boom() -> u32 {
    tokio::task::yield_now().await;
    panic!("async boom");
}

#[tokio::test]
async fn a_panic_in_a_task_is_a_panic_not_a_cancellation() {
    let captured = capture("async-panic");
    let joined = tokio::spawn(boom()).await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(
        outcome_counts("async-panic", "boom"),
        if TIMING { [0, 0, 1, 0] } else { [0; 4] }
    );
    let events = captured.take();
    if ANY {
        let done = completions(&events);
        assert_eq!(done[0].outcome, Outcome::Panic);
        if ERRORS {
            assert_eq!(done[0].error.as_ref().unwrap().message, "async boom");
        }
    }
}

// Written as `impl Future` on purpose: that shape is what this tests.
#[allow(clippy::manual_async_fn)]
#[observe(pool = "async-impl-future", command = "later")]
fn later(value: u32) -> impl Future<Output = Result<u32, std::fmt::Error>> + Send {
    async move {
        tokio::task::yield_now().await;
        if value == 0 {
            Err(std::fmt::Error)
        } else {
            Ok(value * 2)
        }
    }
}

#[tokio::test]
async fn impl_future_returns_are_observed_when_awaited() {
    assert_eq!(later(4).await.unwrap(), 8);
    assert!(later(0).await.is_err());
    assert_eq!(
        outcome_counts("async-impl-future", "later"),
        if TIMING { [1, 1, 0, 0] } else { [0; 4] }
    );
}

#[async_trait::async_trait]
trait Handler {
    async fn handle(&self, input: u32) -> Result<(u32, Option<CorrelationId>), String>;
}

struct Doubler;

#[async_trait::async_trait]
impl Handler for Doubler {
    #[observe(pool = "async-trait", command = "handle")]
    async fn handle(&self, input: u32) -> Result<(u32, Option<CorrelationId>), String> {
        tokio::task::yield_now().await;
        if input == 0 {
            return Err("zero".to_owned());
        }
        Ok((input * 2, current()))
    }
}

#[tokio::test]
async fn async_trait_methods_are_observed_inside_their_future() {
    let captured = capture("async-trait");
    let handler: Box<dyn Handler + Send + Sync> = Box::new(Doubler);
    let (value, id) = handler.handle(5).await.unwrap();
    assert_eq!(value, 10);
    assert_eq!(
        id.is_some(),
        CORRELATION,
        "the scope is open inside the boxed future"
    );
    assert!(handler.handle(0).await.is_err());
    assert_eq!(
        outcome_counts("async-trait", "handle"),
        if TIMING { [1, 1, 0, 0] } else { [0; 4] }
    );
    if ANY {
        let events = captured.take();
        let done = completions(&events);
        assert_eq!(done[0].correlation_id, id);
        assert_eq!(done[1].outcome, Outcome::Error);
    }
}
