//! Running the finders a text needs: the credential rules, where their
//! keywords are or on the whole text; the forms; the configured patterns.

use super::keywords::Hit;
use super::lines::Lines;
use super::rules;
use super::wanted::{RuleRun, Wanted};
use super::{By, Found, Sanitizer};

/// How many lines either side of its keyword a match of a rule that
/// cannot cross lines on its own may still reach: its `\s` runs may
/// (gitleaks' generic rule allows eight between a key and its value).
const RULE_CONTEXT_LINES: usize = 8;

impl Sanitizer {
    /// Every secret in `text`, or `None` when there is none. The rules in
    /// `quiet` are known to find nothing in it and are skipped; with
    /// `record`, a rule whose search matched nothing and that stays so
    /// after a redaction joins them. With `anchored`, rules near their
    /// keywords are searched anchored where they can (`rules::Leading`).
    pub(super) fn find(
        &self,
        text: &str,
        hits: &[Hit],
        quiet: &mut Vec<usize>,
        record: bool,
        anchored: bool,
    ) -> Option<Vec<Found>> {
        let wanted = self.wanted(text, hits, quiet);
        if wanted.is_none() && self.extra.is_empty() && self.always.is_empty() {
            return None;
        }
        let mut found = Vec::new();
        match &wanted {
            Some(wanted) => {
                self.find_by_rules(text, wanted, quiet, record, anchored, &mut found);
                self.find_by_forms(text, wanted, &mut found);
            }
            None if !self.always.is_empty() => self.find_always(text, quiet, record, &mut found),
            None => {}
        }
        self.find_by_patterns(text, &mut found);
        (!found.is_empty()).then_some(found)
    }

    /// Pushes what the rules `wanted` runs find (see [`Sanitizer::find`]
    /// for `quiet`, `record` and `anchored`), each span widened to whole
    /// characters and, if a private-key block's armour is in it, narrowed
    /// to the block's body.
    fn find_by_rules(
        &self,
        text: &str,
        wanted: &Wanted,
        quiet: &mut Vec<usize>,
        record: bool,
        anchored: bool,
        found: &mut Vec<Found>,
    ) {
        let bytes = text.as_bytes();
        let lines = wanted.lines.as_ref().expect("set with the keywords");
        for (index, run) in &wanted.rules {
            let (index, rule) = (*index, &self.rules[*index]);
            if quiet.contains(&index) {
                continue;
            }
            let matched = match run {
                RuleRun::No => continue,
                RuleRun::Text => rule.find(index, bytes, lines, &self.global, found),
                RuleRun::Hits(hits) => {
                    let context = |hit| lines.around(hit, RULE_CONTEXT_LINES);
                    let near = rules::Near {
                        hits,
                        context,
                        anchored,
                    };
                    rule.find_near(index, bytes, near, lines, &self.global, found)
                }
            };
            if record && !matched && rule.steady() {
                quiet.push(index);
            }
        }
        // A byte expression may end a span inside a character.
        for f in found.iter_mut() {
            f.span = text.floor_char_boundary(f.span.start)..text.ceil_char_boundary(f.span.end);
        }
        if !wanted.blocks.is_empty() {
            found.retain_mut(|f| match self.forms.block_body(text, f.span.clone()) {
                Some(span) => {
                    f.span = span;
                    true
                }
                None => false,
            });
        }
    }

    /// Pushes what the forms find where `wanted` says their keywords are.
    fn find_by_forms(&self, text: &str, wanted: &Wanted, found: &mut Vec<Found>) {
        let from = found.len();
        if let Some(first) = wanted.blocks.first() {
            // A block runs past the lines its `BEGIN` is on.
            self.forms.find_blocks(text, first.start, found);
        }
        self.forms.find_pairs(text, &wanted.pairs, found);
        self.forms.find_userinfo(text, &wanted.userinfo, found);
        self.forms.find_schemes(text, &wanted.schemes, found);
        self.forms.find_clients(text, &wanted.clients, found);
        // gitleaks' global stopwords (an alphabet, a well-known
        // example id) hold for what the forms find too; its global
        // expressions do not: `(?i)^true|false|null$` allows any
        // value that starts with "true".
        let bytes = text.as_bytes();
        let mut i = from;
        while i < found.len() {
            let value = &bytes[found[i].span.clone()];
            if self.global.iter().any(|a| a.has_stopword(value)) {
                found.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Pushes what the rules with no keyword find in a text with no
    /// keyword of any other finder (see [`Sanitizer::find`] for `quiet` and
    /// `record`).
    fn find_always(
        &self,
        text: &str,
        quiet: &mut Vec<usize>,
        record: bool,
        found: &mut Vec<Found>,
    ) {
        let bytes = text.as_bytes();
        let lines = Lines::new(bytes);
        for &index in &self.always {
            if quiet.contains(&index) {
                continue;
            }
            let rule = &self.rules[index];
            if !rule.find(index, bytes, &lines, &self.global, found) && record && rule.steady() {
                quiet.push(index);
            }
        }
    }

    /// Pushes the matches of the configured patterns (their `secret` group
    /// if they have one).
    fn find_by_patterns(&self, text: &str, found: &mut Vec<Found>) {
        for regex in &self.extra {
            for c in regex.captures_iter(text) {
                if let Some(m) = c.name("secret").or_else(|| c.get(0)) {
                    if !m.is_empty() {
                        found.push(Found::new(m.range(), By::Pattern));
                    }
                }
            }
        }
    }
}
