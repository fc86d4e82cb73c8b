//! A rule searched around its keywords instead of over the whole text:
//! each search starts a little before a keyword and takes only the matches
//! that start near it, so a rule reads the lines its keywords are on, not
//! the text.

use std::ops::Range;

use regex_automata::util::captures::Captures;
use regex_automata::Input;

use super::{Allowlist, LineVerdicts, Rule};
use crate::sanitize::lines::Lines;
use crate::sanitize::Found;

/// How far before a keyword a match that holds it may start (gitleaks'
/// generic rule allows 50 identifier characters before it).
pub(super) const LOOK_BACK: usize = 128;
/// How far after a keyword a match may start (`facebook 1308742762612587|…`:
/// the keyword names the service, the token follows).
pub(super) const LOOK_AHEAD: usize = 64;

/// Where [`Rule::find_near`] searches: around `hits`, keywords in text
/// order, each within `context(hit)` (its lines); with `anchored`, by the
/// rule's [`Leading`](super::leading::Leading) search if it has one.
pub(crate) struct Near<'h, C> {
    pub(crate) hits: &'h [Range<usize>],
    pub(crate) context: C,
    pub(crate) anchored: bool,
}

impl Rule {
    /// Pushes the span of every secret this rule finds that starts near a
    /// keyword of `near`: from as far before it as a match holding it can
    /// start (or `LOOK_BACK` bytes) to the keyword (or `LOOK_AHEAD` bytes
    /// after it). Searches start just before a keyword instead of at the
    /// start of the text. `text` is the whole text. Whether its expression
    /// matched: near a keyword, or (searched unanchored) anywhere after
    /// one in its context; either way a rule that did not is sure to find
    /// nothing near its keywords, which is what [`Rule::steady`] needs.
    pub(crate) fn find_near<C: Fn(Range<usize>) -> Range<usize>>(
        &self,
        index: usize,
        text: &[u8],
        near: Near<'_, C>,
        lines: &Lines,
        global: &[Allowlist],
        found: &mut Vec<Found>,
    ) -> bool {
        if near.anchored {
            if let Some(leading) = self.leading() {
                return self.find_leading(leading, index, text, near, lines, global, found);
            }
        }
        let Near { hits, context, .. } = near;
        let mut search = Unanchored {
            rule: self,
            index,
            text,
            lines,
            global,
            verdicts: LineVerdicts::default(),
            caps: self.regex.create_captures(),
            matched: false,
            searched: 0,
            ahead: None,
        };
        for hit in hits {
            search.keyword(hit, context(hit.clone()), found);
        }
        search.matched
    }
}

/// [`Rule::find_near`]'s search without a `Leading` search: the rule's own
/// expression, unanchored, from where a match near each keyword may start;
/// and what it carries from one keyword to the next.
struct Unanchored<'s> {
    rule: &'s Rule,
    index: usize,
    text: &'s [u8],
    lines: &'s Lines,
    global: &'s [Allowlist],
    verdicts: LineVerdicts,
    caps: Captures,
    /// Whether the expression matched at all.
    matched: bool,
    /// Where a search may start at the earliest: what the searches before
    /// took or ruled out is behind it.
    searched: usize,
    /// What the last search in a context found past its keyword. No match
    /// starts between where it started and that match, so keywords in that
    /// stretch need no search of their own: a run of 20,000 keywords must
    /// not cost 20,000 searches to the end of the line.
    ahead: Option<Ahead>,
}

/// What a search found past its keyword (see [`Unanchored::ahead`]).
struct Ahead {
    /// The context searched.
    context: Range<usize>,
    /// Where the search started.
    from: usize,
    /// Where the next match starts (`None`: nowhere).
    next: Option<usize>,
}

impl Unanchored<'_> {
    /// Pushes the secrets of the matches that start near the keyword at
    /// `hit`, searched within `around`, its context.
    #[inline]
    fn keyword(&mut self, hit: &Range<usize>, around: Range<usize>, found: &mut Vec<Found>) {
        // A match that holds its keyword starts by it; one that does
        // not may start past it.
        let (back, last) = match self.rule.keyword_within {
            Some(within) => (within, hit.start),
            None => (LOOK_BACK, hit.end + LOOK_AHEAD),
        };
        let first = hit
            .start
            .saturating_sub(back)
            .max(around.start)
            .max(self.searched);
        let last = last.min(around.end);
        let Some(at) = self.start(&around, first, last) else {
            return;
        };
        let (at, took) = self.search(&around, at, last, found);
        // As gitleaks reads a line, matches do not overlap: the next
        // search starts past the last match. Else it starts past the
        // starts this search ruled out.
        self.searched = self.searched.max(if took { at } else { at.min(last + 1) });
    }

    /// Where the search for matches starting in `first..=last` of `around`
    /// begins: at `first`, or at the match an earlier search of `around`
    /// found ahead; `None` when that search showed none starts there.
    #[inline]
    fn start(&self, around: &Range<usize>, first: usize, last: usize) -> Option<usize> {
        if let Some(Ahead {
            context,
            from,
            next,
        }) = &self.ahead
        {
            if context == around && first >= *from {
                match next {
                    Some(next) if (first..=last).contains(next) => return Some(*next),
                    // That match is behind this keyword's stretch (taken
                    // since, or before it): what follows it is not
                    // known, and is searched. Skipping to it found the
                    // same match again, twice or more.
                    Some(next) if *next < first => {}
                    _ => return None,
                }
            }
        }
        Some(first)
    }

    /// Pushes the secrets of the matches in `around` that start in
    /// `at..=last`; where the search ended, and whether it took a match.
    #[inline]
    fn search(
        &mut self,
        around: &Range<usize>,
        mut at: usize,
        last: usize,
        found: &mut Vec<Found>,
    ) -> (usize, bool) {
        let mut took = false;
        // A match that starts by `last` is found within `reach` of it
        // (see `reach`). One that ends right at that cut may have been
        // cut short (`$`, `\b` hold there and not in the whole text):
        // it is searched again in the whole context.
        let mut cut = match self.rule.reach {
            Some(reach) => (last + reach + 1).min(around.end),
            None => around.end,
        };
        while at <= last {
            let hay = &self.text[around.start..cut];
            let input = Input::new(hay).range(at - around.start..);
            self.rule.regex.search_captures(&input, &mut self.caps);
            let Some(whole) = self.caps.get_match() else {
                if cut == around.end {
                    self.ahead = Some(Ahead {
                        context: around.clone(),
                        from: at,
                        next: None,
                    });
                }
                break;
            };
            self.matched = true;
            let (start, end) = (around.start + whole.start(), around.start + whole.end());
            if end == cut && cut < around.end {
                cut = around.end;
                continue;
            }
            if start > last {
                // This match belongs to a later keyword, if any.
                if cut == around.end {
                    self.ahead = Some(Ahead {
                        context: around.clone(),
                        from: at,
                        next: Some(start),
                    });
                }
                break;
            }
            self.rule.accept(
                self.index,
                self.text,
                around.start,
                &self.caps,
                self.lines,
                &mut self.verdicts,
                self.global,
                found,
            );
            at = if end == start { end + 1 } else { end };
            took = true;
        }
        (at, took)
    }
}
