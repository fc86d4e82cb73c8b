//! Correlation scopes: new, inherited, adopted, restored.

use poolscope_testkit as common;

use common::*;
use poolscope::correlation::{bind, current, with_id, CorrelationId};
use poolscope::observe;
use poolscope_testkit::CORRELATION;

#[observe(pool = "corr")]
fn inner() -> Option<CorrelationId> {
    current()
}

#[observe(pool = "corr")]
fn outer() -> (Option<CorrelationId>, Option<CorrelationId>) {
    (current(), inner())
}

#[observe(pool = "corr", correlation = header)]
fn adopt(header: &str) -> Option<CorrelationId> {
    let _ = header; // read by the attribute only, so unused without `correlation`
    inner()
}

#[observe(pool = "corr")]
fn panics_inside() {
    panic!("inside a scope");
}

#[test]
fn nested_calls_share_the_outer_id_and_roots_get_fresh_ones() {
    let (a, a_inner) = outer();
    let (b, _) = outer();
    assert_eq!(a.is_some(), CORRELATION);
    assert_eq!(a, a_inner, "a nested observed call inherits the id");
    if CORRELATION {
        assert_ne!(a, b, "each root call gets its own id");
    }
    assert_eq!(current(), None, "restored after the call");
}

#[test]
fn an_id_given_by_the_caller_is_adopted() {
    let given = "4bf92f3577b34da6a3ce929d0e0e4736";
    let seen = adopt(given);
    assert_eq!(seen, CORRELATION.then(|| given.parse().unwrap()));
    let hashed = adopt("req-1234");
    assert_eq!(hashed.is_some(), CORRELATION);
    assert_eq!(
        adopt("req-1234"),
        hashed,
        "a non-hex header maps to a stable id"
    );
}

#[test]
fn an_enclosing_scope_is_inherited_and_restored_even_after_a_panic() {
    let id = CorrelationId::from_u128(0xfeed);
    with_id(id, || {
        // `with_id` works whenever poolscope is compiled in; the aspect only
        // decides whether observed calls open scopes of their own.
        assert_eq!(current(), ANY.then_some(id));
        assert_eq!(inner(), current());
        assert!(std::panic::catch_unwind(panics_inside).is_err());
        assert_eq!(
            current(),
            ANY.then_some(id),
            "the panic did not leak the inner scope"
        );
    });
    assert_eq!(current(), None);
}

#[observe(pool = "corr")]
async fn spawns_child() -> (Option<CorrelationId>, Option<CorrelationId>) {
    let parent = current();
    let child = tokio::spawn(bind(None, async { inner() })).await.unwrap();
    (parent, child)
}

#[tokio::test]
async fn bind_carries_the_id_into_spawned_tasks() {
    let (parent, child) = spawns_child().await;
    assert_eq!(parent.is_some(), CORRELATION);
    assert_eq!(parent, child);
}

#[test]
fn scopes_are_per_thread() {
    let id = CorrelationId::from_u128(1);
    with_id(id, || {
        let other = std::thread::spawn(inner).join().unwrap();
        assert_ne!(other, Some(id));
    });
}
