//! gitleaks' allowlists, compiled: what lets a rule's match through
//! (an expression over the secret, the match or its line; stopwords).

use aho_corasick::AhoCorasick;
use regex_automata::meta::Regex;

use super::compile;
use crate::sanitize::spec::{AllowlistSpec, Target};
use crate::sanitize::SanitizeError;

/// A compiled allowlist.
#[derive(Debug)]
pub(crate) struct Allowlist {
    target: Target,
    all: bool,
    regexes: Vec<Regex>,
    stopwords: Option<AhoCorasick>,
}

impl Allowlist {
    /// Whether `secret` holds one of the stopwords.
    pub(crate) fn has_stopword(&self, secret: &[u8]) -> bool {
        self.stopwords.as_ref().is_some_and(|s| s.is_match(secret))
    }

    /// Whether one of the expressions matches `line`.
    pub(crate) fn line_matches(&self, line: &[u8]) -> bool {
        self.regexes.iter().any(|r| r.is_match(line))
    }

    pub(crate) fn compile(rule: &str, spec: &AllowlistSpec) -> Result<Allowlist, SanitizeError> {
        let regexes = spec
            .regexes
            .iter()
            .map(|r| compile(rule, r, false))
            .collect::<Result<Vec<_>, _>>()?;
        let stopwords = if spec.stopwords.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&spec.stopwords)
                    .map_err(|e| SanitizeError::Rule {
                        rule: rule.to_owned(),
                        reason: format!("stopwords: {e}"),
                    })?,
            )
        };
        Ok(Allowlist {
            target: spec.target,
            all: spec.all,
            regexes,
            stopwords,
        })
    }

    /// Whether this list lets the finding through, as gitleaks decides it;
    /// `line_matches` tells whether one of its expressions matches the
    /// finding's line (asked only of a list that reads lines).
    pub(crate) fn allows(
        &self,
        secret: &[u8],
        whole: &[u8],
        line_matches: impl FnOnce() -> bool,
    ) -> bool {
        let regex = || match self.target {
            Target::Secret => self.regexes.iter().any(|r| r.is_match(secret)),
            Target::Match => self.regexes.iter().any(|r| r.is_match(whole)),
            Target::Line => line_matches(),
        };
        let stopword = || self.stopwords.as_ref().is_some_and(|s| s.is_match(secret));
        if self.all {
            (self.regexes.is_empty() || regex()) && (self.stopwords.is_none() || stopword())
        } else {
            regex() || stopword()
        }
    }
}
