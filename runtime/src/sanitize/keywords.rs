//! The keyword pass: one Aho-Corasick automaton over every finder's
//! keywords says which finders a text needs, so text with no keyword is
//! read once. After a redaction the keywords are not searched for again:
//! they are moved past the new markers.

use std::ops::Range;

use super::lines::add_line;
use super::rewrite::Run;
use super::Sanitizer;

/// What one keyword of the prefilter sets off.
#[derive(Clone, Copy, Debug)]
pub(super) enum Trigger {
    /// A credential rule, by index.
    Rule(usize),
    /// The key-based finders.
    Pairs,
    /// URL userinfo.
    Userinfo,
    /// Private-key blocks.
    Blocks,
    /// `Bearer …` outside a key.
    Schemes,
    /// Command lines of database clients and curl.
    Clients,
}

/// Where a keyword is in a text, and which.
#[derive(Clone, Debug)]
pub(super) struct Hit {
    pub(super) at: Range<usize>,
    /// The keyword, by its index in the prefilter.
    pub(super) pattern: usize,
}

/// Keywords of the finders that are not credential rules.
pub(super) const FORM_KEYWORDS: [(&[&str], Trigger); 5] = [
    (
        &[
            "pass", "pwd", "secret", "token", "key", "auth", "cookie", "session", "cred", "dsn",
            "conn", "sig", "jwt", "access",
        ],
        Trigger::Pairs,
    ),
    (&["://"], Trigger::Userinfo),
    (&["begin "], Trigger::Blocks),
    (
        &["bearer", "basic", "digest", "negotiate"],
        Trigger::Schemes,
    ),
    (
        &["mysql", "mariadb", "sshpass", "redis-cli", "mongo", "curl"],
        Trigger::Clients,
    ),
];

impl Sanitizer {
    /// Where the keywords are in `text`, overlapping ones too, in text
    /// order.
    pub(super) fn keyword_hits(&self, text: &str) -> Vec<Hit> {
        // The plain search is the automaton's tight loop; clean text only
        // ever takes it. It skips a keyword that overlaps one it reports,
        // but such a keyword lies within `longest` bytes of it: the slower
        // overlapping search then reads just those bytes.
        let mut windows: Vec<Range<usize>> = Vec::new();
        for m in self.prefilter.find_iter(text) {
            let start = text.floor_char_boundary(m.start().saturating_sub(self.longest));
            let end = text.ceil_char_boundary(m.end() + self.longest);
            add_line(&mut windows, start..end);
        }
        let mut hits = Vec::new();
        for window in windows {
            self.hits_in(text, window, &mut hits);
        }
        // The overlapping search reports keywords by where they end.
        hits.sort_by_key(|h| (h.at.start, h.at.end, h.pattern));
        hits
    }

    /// Pushes the keywords wholly inside `window` of `text`.
    fn hits_in(&self, text: &str, window: Range<usize>, hits: &mut Vec<Hit>) {
        for m in self.prefilter.find_overlapping_iter(&text[window.clone()]) {
            hits.push(Hit {
                at: window.start + m.start()..window.start + m.end(),
                pattern: m.pattern().as_usize(),
            });
        }
    }

    /// The keywords of `after`, which is `before` with `runs` replaced,
    /// from `hits`, those of `before`: a keyword clear of every run is
    /// where it was, moved by the runs before it; one that meets a run is
    /// gone, and the text around each run is scanned again for keywords
    /// that meet its replacement (with `shortcuts`, only if one can).
    pub(super) fn moved_hits(
        &self,
        before: &str,
        after: &str,
        hits: &[Hit],
        runs: &[Run],
        shortcuts: bool,
    ) -> Vec<Hit> {
        let mut moved = Vec::with_capacity(hits.len());
        let mut next = 0;
        let mut shift: isize = 0;
        for hit in hits {
            // Hits are sorted by start; runs too and do not overlap.
            while next < runs.len() && runs[next].old.end <= hit.at.start {
                shift += runs[next].new.len() as isize - runs[next].old.len() as isize;
                next += 1;
            }
            let meets = runs[next..]
                .iter()
                .take_while(|r| r.old.start < hit.at.end)
                .any(|r| r.old.end > hit.at.start);
            if !meets {
                let at =
                    hit.at.start.wrapping_add_signed(shift)..hit.at.end.wrapping_add_signed(shift);
                debug_assert_eq!(&before[hit.at.clone()], &after[at.clone()]);
                moved.push(Hit {
                    at,
                    pattern: hit.pattern,
                });
            }
        }
        let from = moved.len();
        // When no keyword holds a bracket or is inside a marker's letters
        // (`act`, `red`), the usual case, no keyword can meet a marker: the
        // text around one needs no scan.
        let runs = if self.keyword_in_marker || !shortcuts {
            runs
        } else {
            &[]
        };
        for run in runs {
            let start = after.floor_char_boundary(run.new.start.saturating_sub(self.longest));
            let end = after.ceil_char_boundary(run.new.end + self.longest);
            let at = moved.len();
            self.hits_in(after, start..end, &mut moved);
            let mut i = at;
            while i < moved.len() {
                let h = &moved[i].at;
                if h.start < run.new.end && h.end > run.new.start {
                    i += 1;
                } else {
                    moved.swap_remove(i);
                }
            }
        }
        if moved.len() > from {
            moved.sort_by_key(|h| (h.at.start, h.at.end, h.pattern));
            moved.dedup_by(|a, b| a.at == b.at && a.pattern == b.pattern);
        }
        moved
    }
}
