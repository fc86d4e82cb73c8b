//! Writing the markers: the spans the finders gave become one
//! [`REDACTED`] per run of overlapping or touching spans, and the runs are
//! kept, so the passes after a redaction know where the text changed.

use std::ops::Range;

use super::{Found, REDACTED};

/// A stretch of a text that [`rewrite`] replaced with [`REDACTED`]: where
/// it was and where the marker is in the new text.
#[derive(Clone, Debug)]
pub(super) struct Run {
    pub(super) old: Range<usize>,
    pub(super) new: Range<usize>,
}

/// `text` with `found` (unsorted, may overlap or touch) replaced by one
/// [`REDACTED`] each run, and the runs. A span that cuts into an earlier
/// `[REDACTED]` takes the whole marker, so a marker is never split.
pub(super) fn rewrite(text: &str, found: Vec<Found>) -> (String, Vec<Run>) {
    let mut spans: Vec<Range<usize>> = found.into_iter().map(|f| f.span).collect();
    // A marker starts with `[`: looking for that byte is a vector scan with
    // nothing to set up, where a substring search builds a searcher a call.
    let mut old_markers: Vec<Range<usize>> = Vec::new();
    let mut from = 0;
    while let Some(at) = memchr::memchr(b'[', &text.as_bytes()[from..]).map(|i| from + i) {
        if text[at..].starts_with(REDACTED) {
            old_markers.push(at..at + REDACTED.len());
            from = at + REDACTED.len();
        } else {
            from = at + 1;
        }
    }
    for span in &mut spans {
        // Spans from byte expressions may cut a character: widen to whole
        // characters.
        while span.start > 0 && !text.is_char_boundary(span.start) {
            span.start -= 1;
        }
        while span.end < text.len() && !text.is_char_boundary(span.end) {
            span.end += 1;
        }
        // The markers are in order: the one that could hold a position is
        // the last that starts before it.
        let holding = |at: usize| {
            let i = old_markers.partition_point(|m| m.start < at);
            i.checked_sub(1)
                .map(|i| &old_markers[i])
                .filter(|m| at > m.start && at < m.end)
        };
        if let Some(marker) = holding(span.start) {
            span.start = marker.start;
        }
        if let Some(marker) = holding(span.end) {
            span.end = marker.end;
        }
    }
    spans.sort_by_key(|s| s.start);
    let mut runs: Vec<Range<usize>> = Vec::new();
    for span in spans.into_iter().filter(|s| !s.is_empty()) {
        match runs.last_mut() {
            Some(run) if span.start <= run.end => run.end = run.end.max(span.end),
            _ => runs.push(span),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut replaced = Vec::with_capacity(runs.len());
    let mut at = 0;
    for run in runs {
        out.push_str(&text[at..run.start]);
        replaced.push(Run {
            new: out.len()..out.len() + REDACTED.len(),
            old: run.clone(),
        });
        out.push_str(REDACTED);
        at = run.end;
    }
    out.push_str(&text[at..]);
    (out, replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sanitize::By;

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn overlapping_and_touching_spans_become_one_marker() {
        let at = |spans: &[Range<usize>]| {
            spans
                .iter()
                .map(|s| Found::new(s.clone(), By::Pattern))
                .collect::<Vec<_>>()
        };
        assert_eq!(rewrite("abcdef", at(&[1..3, 2..5])).0, "a[REDACTED]f");
        assert_eq!(rewrite("abcdef", at(&[3..4, 1..3])).0, "a[REDACTED]ef");
        let spans =
            |runs: Vec<Run>| -> Vec<_> { runs.into_iter().map(|r| (r.old, r.new)).collect() };
        let (out, runs) = rewrite("abcdef", at(&[1..2, 4..5]));
        assert_eq!(out, "a[REDACTED]cd[REDACTED]f");
        assert_eq!(spans(runs), [(1..2, 1..11), (4..5, 13..23)]);
        // A span inside an old marker takes all of it, which stays as it was.
        let (out, runs) = rewrite("x=[REDACTED] y", at(&[5..9]));
        assert_eq!(out, "x=[REDACTED] y");
        assert_eq!(spans(runs), [(2..12, 2..12)]);
        assert_eq!(rewrite("é", at(&[1..2])).0, "[REDACTED]");
    }
}
