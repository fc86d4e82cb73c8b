//! Label values are bounded: past `MAX_LABEL_VALUES` distinct values, new
//! ones fold into `__overflow__`, so an unbounded id used as a label cannot
//! grow memory or the scrape without end. One test: the interner is global.

use poolscope_testkit as common;

use common::*;
use poolscope::label::{MAX_LABEL_VALUES, OVERFLOW_LABEL};
use poolscope::{observe, Label};
use poolscope_testkit::TIMING;

#[observe(pool = "cardinality", command = command)]
fn run(command: &str) -> usize {
    command.len()
}

#[test]
fn label_values_past_the_cap_fold_into_overflow() {
    // Fill the interner (other tests in this binary: none).
    let mut last = Label::new("c-0");
    for i in 1..MAX_LABEL_VALUES + 10 {
        last = Label::new(&format!("c-{i}"));
    }
    assert_eq!(last.as_str(), OVERFLOW_LABEL);
    assert_eq!(
        Label::new("c-0").as_str(),
        "c-0",
        "values interned before the cap keep their label"
    );

    assert_eq!(run("c-1"), 3);
    assert_eq!(run("never-seen-before"), 17);
    assert_eq!(run("another-new-one"), 15);
    if TIMING {
        assert_eq!(outcome_counts("cardinality", "c-1"), [1, 0, 0, 0]);
        assert_eq!(
            outcome_counts("cardinality", OVERFLOW_LABEL),
            [2, 0, 0, 0],
            "new values share one series"
        );
        assert_eq!(outcome_counts("cardinality", "never-seen-before"), [0; 4]);
    }
}
