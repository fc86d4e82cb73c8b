//! Sanitizing until nothing changes: a redaction can make a finder match
//! that did not before, so after each pass the text near the new markers
//! is searched again, until a pass redacts nothing more.

use std::borrow::Cow;
use std::ops::Range;

use super::keywords::Hit;
use super::lines::add_line;
use super::rewrite::{rewrite, Run};
use super::{Found, Sanitizer};

/// How far either side of a new `[REDACTED]` a long text is searched again.
const RECHECK: usize = 256;

/// Up to this length, a text is searched again whole after a redaction.
const RECHECK_WHOLE: usize = 4096;

impl Sanitizer {
    /// [`Sanitizer::sanitize`], with its `shortcuts` or, for
    /// [`Sanitizer::sanitize_in_full`], without.
    pub(super) fn sanitize_with<'t>(&self, text: &'t str, shortcuts: bool) -> Cow<'t, str> {
        let mut hits = self.keyword_hits(text);
        // Rules whose search matched nothing and that a marker cannot make
        // match (`Rule::steady`): the searches after a redaction skip them.
        let mut quiet = Vec::new();
        let Some(found) = self.find(text, &hits, &mut quiet, shortcuts, shortcuts) else {
            return Cow::Borrowed(text);
        };
        let (mut changed, mut runs) = rewrite(text, found);
        if changed == text {
            return Cow::Borrowed(text);
        }
        // A redaction can make a finder match that did not before (a
        // random-looking run cut short by `[REDACTED]` may pass an entropy
        // test): look again until nothing changes, so sanitizing sanitized
        // text changes nothing. Only text near a new marker differs from
        // what was searched, so only that is searched again: as far as a
        // match can reach (gitleaks' longest single-line ones stay under
        // 256 bytes either side of what they redact). The keywords are
        // where they were, moved by the markers before them: only around a
        // marker is the text scanned for them again. Each pass only turns
        // text into `[REDACTED]`; the bound is a guard.
        let mut previous = text;
        let mut owned;
        for _ in 0..8 {
            hits = self.moved_hits(previous, &changed, &hits, &runs, shortcuts);
            let again = self.find_again(&changed, &hits, &runs, &mut quiet, shortcuts);
            if again.is_empty() {
                break;
            }
            let (next, next_runs) = rewrite(&changed, again);
            if next == changed {
                break;
            }
            owned = std::mem::replace(&mut changed, next);
            previous = &owned;
            runs = next_runs;
        }
        Cow::Owned(changed)
    }

    /// Every secret in `text`, which `runs` just changed and whose keywords
    /// are `hits`, searched for where the runs can have changed what the
    /// finders see (`quiet` and `shortcuts` as for
    /// [`Sanitizer::sanitize_with`]).
    // Inlined, as `recheck_windows` is: as calls, once out of this loop,
    // the two cost a line with a secret 0.1% more instructions (callgrind,
    // `benches/sanitize_callgrind.rs`).
    #[inline]
    fn find_again(
        &self,
        text: &str,
        hits: &[Hit],
        runs: &[Run],
        quiet: &mut Vec<usize>,
        shortcuts: bool,
    ) -> Vec<Found> {
        let whole = text.len() <= RECHECK_WHOLE;
        let record = whole && shortcuts;
        let windows = recheck_windows(text, runs, whole);
        let mut again = Vec::new();
        for window in &windows {
            let inside: Cow<'_, [Hit]> = if whole {
                Cow::Borrowed(hits)
            } else {
                hits.iter()
                    .filter(|h| h.at.start >= window.start && h.at.end <= window.end)
                    .map(|h| Hit {
                        at: h.at.start - window.start..h.at.end - window.start,
                        pattern: h.pattern,
                    })
                    .collect()
            };
            // Only a search of the whole text shows a rule quiet.
            if let Some(found) = self.find(&text[window.clone()], &inside, quiet, record, shortcuts)
            {
                again.extend(found.into_iter().map(|mut f| {
                    f.span = f.span.start + window.start..f.span.end + window.start;
                    f
                }));
            }
        }
        again
    }
}

/// The stretches of `text` searched again after `runs` were redacted: the
/// whole text if `whole`, else what lies within [`RECHECK`] bytes of a
/// marker, in text order.
#[inline]
fn recheck_windows(text: &str, runs: &[Run], whole: bool) -> Vec<Range<usize>> {
    let mut windows: Vec<Range<usize>> = Vec::new();
    if whole {
        // A short text is searched again whole: a rule that reaches
        // far (gitleaks' `curl-auth-user` takes a whole command
        // line) sees all of it.
        windows.push(0..text.len());
    } else {
        for run in runs {
            let marker = run.new.clone();
            let start = text.floor_char_boundary(marker.start.saturating_sub(RECHECK));
            let end = text.ceil_char_boundary(marker.end + RECHECK);
            add_line(&mut windows, start..end);
        }
    }
    windows
}
