use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::model::correlation::CorrelationId;

thread_local! {
    static CURRENT: Cell<Option<CorrelationId>> = const { Cell::new(None) };
    // The generator for fresh ids: random high half (0 until first use),
    // counting low half. Beside `CURRENT` so that entering a scope that needs
    // a fresh id is one thread-local access.
    static NEXT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Enters an observed call: picks its id (the given one, else the enclosing
/// call's, else a fresh one) and, for a sync call, makes it current.
/// Returns the id and, when it was made current, the id to restore.
#[inline(always)]
pub(crate) fn enter(
    given: Option<CorrelationId>,
    scope: bool,
) -> (CorrelationId, Option<Option<CorrelationId>>) {
    CURRENT.with(|current| {
        let previous = current.get();
        let id = match given.or(previous) {
            Some(id) => id,
            None => fresh(),
        };
        if scope {
            current.set(Some(id));
            (id, Some(previous))
        } else {
            (id, None)
        }
    })
}

#[inline]
fn fresh() -> CorrelationId {
    NEXT.with(|next| {
        let (mut high, count) = next.get();
        if high == 0 {
            high = (CorrelationId::generate().as_u128() >> 64) as u64 | 1;
        }
        next.set((high, count.wrapping_add(1)));
        CorrelationId::from_u128(((high as u128) << 64) | count as u128)
    })
}

/// The correlation id of the observed call this code runs in, if any.
///
/// ```
/// use poolscope_runtime::correlation::{current, with_id, CorrelationId};
/// assert_eq!(current(), None);
/// let id = CorrelationId::from_u128(7);
/// with_id(id, || assert_eq!(current(), Some(id)));
/// assert_eq!(current(), None);
/// ```
#[inline]
pub fn current() -> Option<CorrelationId> {
    CURRENT.with(Cell::get)
}

/// Replaces the current id, returning the previous one. Callers restore it.
#[inline(always)]
pub(crate) fn swap(id: Option<CorrelationId>) -> Option<CorrelationId> {
    CURRENT.with(|c| c.replace(id))
}

/// Restores the previous id when dropped, so a panic cannot leak a scope.
pub(crate) struct Restore(pub(crate) Option<CorrelationId>);

impl Drop for Restore {
    #[inline(always)]
    fn drop(&mut self) {
        swap(self.0);
    }
}

/// Runs `f` with `id` as the current correlation id, restoring the previous
/// id afterwards, even if `f` panics.
pub fn with_id<R>(id: CorrelationId, f: impl FnOnce() -> R) -> R {
    let _restore = Restore(swap(Some(id)));
    f()
}

/// Carries the current correlation id (or the given one) into a future that
/// runs elsewhere, e.g. one passed to `tokio::spawn`: the id is current on
/// every poll.
///
/// ```
/// use poolscope_runtime::correlation::{bind, current, CorrelationId};
/// let id = CorrelationId::from_u128(42);
/// let fut = bind(Some(id), async { current() });
/// # use std::future::Future;
/// # let waker = std::task::Waker::noop();
/// # let mut cx = std::task::Context::from_waker(&waker);
/// # let mut fut = std::pin::pin!(fut);
/// # assert_eq!(fut.as_mut().poll(&mut cx), std::task::Poll::Ready(Some(id)));
/// ```
pub fn bind<F: Future>(id: Option<CorrelationId>, future: F) -> Bound<F> {
    Bound {
        id: id.or_else(current),
        future,
    }
}

pin_project_lite::pin_project! {
    /// A future with a correlation id bound to it; see [`bind`].
    #[derive(Debug)]
    pub struct Bound<F> {
        id: Option<CorrelationId>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Bound<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _restore = Restore(swap(*this.id));
        this.future.poll(cx)
    }
}
