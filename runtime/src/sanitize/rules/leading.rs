//! A rule searched anchored where a match that holds its keyword may
//! start, by a lazy DFA that reads no further than such a match can reach
//! (see [`Leading`]).

use std::ops::Range;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::captures::Captures;
use regex_automata::util::pool::Pool;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

use super::{Allowlist, LineVerdicts, Near, Rule};
use crate::sanitize::lines::Lines;
use crate::sanitize::Found;

/// A rule's expression behind `(?s-u:.){0,W}?`, `W` being how far before a
/// keyword a match that holds it can start, searched anchored by a lazy
/// DFA: from where a match near a keyword may first start, it tells where
/// the leftmost one that starts within `W` bytes ends, reading only as far
/// as such a match can reach.
///
/// The rule's own expression, searched unanchored from the same place,
/// tells the same but reads to the end of its context: every later byte
/// may start a match. gitleaks' generic rule, whose value has no longest
/// form, then reads a whole 1 KiB line for one `password` in it (2 µs
/// against 0.2 µs anchored). Its start and groups are then taken by the
/// expression itself, over just the match.
///
/// Built when a rule first runs near a keyword, not with the sanitizer:
/// compiling it costs about two thirds of compiling the rule (0.2 ms for
/// the generic rule), which for every rule would take building past its
/// budget, and most rules never see their keywords in a process's logs.
pub(super) struct Leading {
    dfa: DFA,
    /// How far before its keyword a match can start: the `W` above.
    within: usize,
    caches: Pool<
        Cache,
        Box<dyn Fn() -> Cache + Send + Sync + std::panic::RefUnwindSafe + std::panic::UnwindSafe>,
    >,
}

impl std::fmt::Debug for Leading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leading")
            .field("within", &self.within)
            .finish_non_exhaustive()
    }
}

/// Above this, a rule is searched unanchored near its keywords: the
/// prefix would cost more states than it saves.
const LEADING_LIMIT: usize = 256;

impl Leading {
    /// The search for a rule whose matches start at most `within` bytes
    /// before a keyword they hold; `None` when it cannot be compiled (the
    /// rule is then searched unanchored, as before).
    fn build(expression: &str, within: usize) -> Option<Leading> {
        Leading::build_with(expression, within, DFA::config())
    }

    /// [`Leading::build`] with the lazy DFA configured by `config` (tests
    /// give it a cache that keeps filling).
    fn build_with(
        expression: &str,
        within: usize,
        config: regex_automata::hybrid::dfa::Config,
    ) -> Option<Leading> {
        let dfa = DFA::builder()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .thompson(
                thompson::Config::new()
                    .which_captures(WhichCaptures::None)
                    .utf8(false)
                    .nfa_size_limit(Some(32 << 20)),
            )
            // The lazy DFA never gives up (the default): a search reads at
            // most `within` bytes and what a match may run past its keyword,
            // so a cache that fills is cleared and the search goes on. A
            // search that gave up could only go on unanchored, to the end
            // of its line, once a keyword: quadratic on a hostile line.
            .configure(config)
            .build(&format!("(?s-u:.){{0,{within}}}?(?:{expression})"))
            .ok()?;
        let made = dfa.clone();
        Some(Leading {
            dfa,
            within,
            caches: Pool::new(Box::new(move || made.create_cache())),
        })
    }

    /// Where the leftmost match that starts in `from..=from + within` of
    /// `hay` ends, if one does; `Err` when the lazy DFA cannot search
    /// (as built, never: it neither gives up nor quits on a byte).
    #[inline]
    fn end(&self, hay: &[u8], from: usize) -> Result<Option<usize>, ()> {
        let input = Input::new(hay).range(from..).anchored(Anchored::Yes);
        let mut cache = self.caches.get();
        match self.dfa.try_search_fwd(&mut cache, &input) {
            Ok(m) => Ok(m.map(|m| m.offset())),
            Err(_) => Err(()),
        }
    }
}

impl Rule {
    /// The rule's [`Leading`] search, built on first use; `None` for a rule
    /// whose matches do not hold a keyword near their start (within
    /// [`LEADING_LIMIT`] bytes), that crosses lines, or whose search does
    /// not compile (no known rule; it would then be searched unanchored).
    pub(super) fn leading(&self) -> Option<&Leading> {
        let within = self.keyword_within.filter(|w| *w <= LEADING_LIMIT)?;
        if self.crosses_lines {
            return None;
        }
        self.leading
            .get_or_init(|| Leading::build(&self.expression, within))
            .as_ref()
    }

    /// [`Rule::find_near`] for a rule with a [`Leading`] search: each
    /// keyword's search is anchored where a match holding it may first
    /// start, and reads no further than such a match reaches.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn find_leading<C: Fn(Range<usize>) -> Range<usize>>(
        &self,
        leading: &Leading,
        index: usize,
        text: &[u8],
        near: Near<'_, C>,
        lines: &Lines,
        global: &[Allowlist],
        found: &mut Vec<Found>,
    ) -> bool {
        let Near { hits, context, .. } = near;
        let mut verdicts = LineVerdicts::default();
        // Made on the first match: most searches near a keyword find none.
        let mut caps: Option<Captures> = None;
        let mut matched = false;
        let mut searched = 0;
        for hit in hits {
            let around = context(hit.clone());
            let hay = &text[around.clone()];
            let first = hit
                .start
                .saturating_sub(leading.within)
                .max(around.start)
                .max(searched);
            let last = hit.start.min(around.end);
            let mut at = first;
            while at <= last {
                let from = at - around.start;
                // Only where a match ends is known: the expression itself
                // then finds it again, reading just that far, for its
                // start and groups. It finds the same one: a search that
                // stops at a match's end still sees the match, and no
                // match it did not see before (look-arounds read the whole
                // context either way).
                let input = match leading.end(hay, from) {
                    Ok(Some(end)) => Input::new(hay).range(from..end),
                    Ok(None) => break,
                    // Never, as built (see `Leading::end`); should it
                    // happen, search unanchored, as a rule without a
                    // `Leading` search does.
                    Err(()) => Input::new(hay).range(from..),
                };
                let caps = caps.get_or_insert_with(|| self.regex.create_captures());
                self.regex.search_captures(&input, caps);
                let Some(whole) = caps.get_match() else {
                    break;
                };
                matched = true;
                let (start, end) = (around.start + whole.start(), around.start + whole.end());
                if start > last {
                    // This match belongs to a later keyword, if any.
                    break;
                }
                self.accept(
                    index,
                    text,
                    around.start,
                    caps,
                    lines,
                    &mut verdicts,
                    global,
                    found,
                );
                at = if end == start { end + 1 } else { end };
            }
            // Matches do not overlap, as in gitleaks: the next search
            // starts past the last match. And every start up to this
            // keyword is ruled out: the loop ends past it, or on a search
            // that found no match starting by it.
            searched = searched.max(at.max(last + 1));
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::super::gitleaks;
    use super::*;

    /// The vendored rule `id`, compiled.
    fn vendored(id: &str) -> Rule {
        let file = gitleaks();
        let spec = file.rules.iter().find(|r| r.id == id).unwrap();
        Rule::compile(spec).unwrap()
    }

    /// Keys and values, a third of the values random enough to be secrets,
    /// on a few long lines.
    fn keys_and_values() -> String {
        let mut seed = 7u64;
        let mut random = |n: usize| -> String {
            (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let alphabet =
                        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                    char::from(alphabet[usize::try_from(seed >> 33).unwrap() % alphabet.len()])
                })
                .collect()
        };
        let mut text = String::new();
        for i in 0..600 {
            match i % 6 {
                0 => text.push_str(&format!("api_key{i}={} ", random(24))),
                1 => text.push_str("token: short "),
                2 => text.push_str(&format!("\"password\": \"{}\", ", random(18))),
                3 => text.push_str("access granted to secret_santa "),
                4 => text.push_str(&format!("auth={}\n", random(40))),
                _ => text.push_str("credential_id=1234 keykeykey "),
            }
        }
        text
    }

    /// Where `rule`'s keywords are in `text`, in text order.
    fn keyword_hits(rule: &Rule, text: &str) -> Vec<Range<usize>> {
        let lower = text.to_ascii_lowercase();
        let mut hits: Vec<Range<usize>> = rule
            .keywords
            .iter()
            .flat_map(|k| {
                lower
                    .match_indices(k.as_str())
                    .map(|(at, k)| at..at + k.len())
            })
            .collect();
        hits.sort_by_key(|h| (h.start, h.end));
        hits.dedup();
        hits
    }

    /// What `rule` finds near its keywords in `text`, searched anchored
    /// or not.
    fn found_near(rule: &Rule, text: &str, anchored: bool) -> Vec<Range<usize>> {
        let bytes = text.as_bytes();
        let lines = Lines::new(bytes);
        let hits = keyword_hits(rule, text);
        let near = Near {
            hits: &hits,
            context: |hit| lines.around(hit, 8),
            anchored,
        };
        let mut found = Vec::new();
        rule.find_near(0, bytes, near, &lines, &[], &mut found);
        let mut spans: Vec<_> = found.into_iter().map(|f| f.span).collect();
        spans.sort_by_key(|s| (s.start, s.end));
        spans
    }

    #[test]
    fn anchored_searches_find_what_unanchored_ones_find() {
        let text = keys_and_values();
        for id in ["generic-api-key", "hashicorp-tf-password"] {
            let rule = vendored(id);
            assert!(rule.leading().is_some(), "{id}");
            assert_eq!(
                found_near(&rule, &text, true),
                found_near(&rule, &text, false),
                "{id}"
            );
        }
        assert!(!found_near(&vendored("generic-api-key"), &text, true).is_empty());
    }

    #[test]
    fn a_lazy_dfa_whose_cache_keeps_filling_still_finds_every_match() {
        // The smallest cache the lazy DFA can work with: it is cleared
        // again and again, and never gives up.
        let rule = vendored("generic-api-key");
        let within = rule.keyword_within.unwrap();
        let config = DFA::config()
            .cache_capacity(0)
            .skip_cache_capacity_check(true);
        let tiny = Leading::build_with(&rule.expression, within, config).unwrap();
        rule.leading.set(Some(tiny)).unwrap();
        let text = keys_and_values();
        let anchored = found_near(&rule, &text, true);
        assert_eq!(anchored, found_near(&rule, &text, false));
        assert!(anchored.len() >= 200, "{}", anchored.len());
    }
}
