//! Which finders a text needs, worked out from its keywords: the rules to
//! run and where, and the lines each form finder reads.

use std::ops::Range;

use super::keywords::{Hit, Trigger};
use super::lines::{add_line, Lines};
use super::Sanitizer;

/// Which finders a text needs, from its keywords: the rules to run, where
/// the key words are, and for each other form finder the lines its
/// keywords are on (empty: none).
#[derive(Default)]
pub(super) struct Wanted {
    /// The text's lines, indexed.
    pub(super) lines: Option<Lines>,
    /// The rules that run, by index, and where (few run on most texts).
    pub(super) rules: Vec<(usize, RuleRun)>,
    pub(super) pairs: Vec<Range<usize>>,
    pub(super) userinfo: Vec<Range<usize>>,
    pub(super) blocks: Vec<Range<usize>>,
    pub(super) schemes: Vec<Range<usize>>,
    pub(super) clients: Vec<Range<usize>>,
}

/// Where a rule runs on a text.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) enum RuleRun {
    /// Not at all: none of its keywords is in the text.
    #[default]
    No,
    /// On the whole text.
    Text,
    /// Around these keywords (in text order).
    Hits(Vec<Range<usize>>),
}

impl Sanitizer {
    /// Which finders `text` needs; `None` when its keywords call for none.
    pub(super) fn wanted(&self, text: &str, hits: &[Hit], quiet: &[usize]) -> Option<Wanted> {
        if hits.is_empty() {
            return None;
        }
        let index = Lines::new(text.as_bytes());
        let mut wanted = Wanted {
            ..Wanted::default()
        };
        for &index in &self.always {
            wanted.rules.push((index, RuleRun::Text));
        }
        {
            for hit in hits {
                let at = hit.at.clone();
                let lines = match self.triggers[hit.pattern] {
                    // Known to find nothing: not worth a place in the list.
                    Trigger::Rule(index) if quiet.contains(&index) => continue,
                    Trigger::Rule(index) => {
                        let run = match wanted.rules.iter().position(|(i, _)| *i == index) {
                            Some(at) => &mut wanted.rules[at].1,
                            None => {
                                wanted.rules.push((index, RuleRun::No));
                                &mut wanted.rules.last_mut().expect("just pushed").1
                            }
                        };
                        if self.rules[index].crosses_lines {
                            *run = RuleRun::Text;
                        } else {
                            match run {
                                RuleRun::Text => {}
                                RuleRun::Hits(hits) => hits.push(at),
                                RuleRun::No => *run = RuleRun::Hits(vec![at]),
                            }
                        }
                        continue;
                    }
                    Trigger::Pairs => {
                        wanted.pairs.push(at);
                        continue;
                    }
                    Trigger::Userinfo => &mut wanted.userinfo,
                    Trigger::Blocks => &mut wanted.blocks,
                    Trigger::Schemes => &mut wanted.schemes,
                    Trigger::Clients => &mut wanted.clients,
                };
                add_line(lines, index.line(at.start));
            }
        }
        wanted.pairs.sort_by_key(|r| (r.start, r.end));
        wanted.rules.sort_by_key(|(index, _)| *index);
        for (_, run) in &mut wanted.rules {
            if let RuleRun::Hits(hits) = run {
                hits.sort_by_key(|r| (r.start, r.end));
            }
        }
        wanted.lines = Some(index);
        Some(wanted)
    }
}
