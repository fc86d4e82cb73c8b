//! Credential rules in gitleaks' format, compiled: each rule's expression,
//! secret group, entropy threshold and allowlists, applied as gitleaks'
//! detector applies them (`detect/detect.go`, `detectRule` and
//! `checkFindingAllowed`), so a finding there is a redaction here.
//!
//! Expressions are compiled as byte expressions with Unicode off: Go's RE2
//! reads `\w`, `\d`, `\s` and `\b` as ASCII, and so does this; it also keeps
//! every rule on the regex crate's fast engines (a Unicode `\b` is not).

use std::borrow::Cow;
use std::ops::Range;

use aho_corasick::AhoCorasick;
use regex::bytes::{Regex, RegexBuilder};

use super::spec::{AllowlistSpec, RuleFileSpec, RuleSpec, Target};
use super::{By, Found, SanitizeError};

include!(concat!(env!("OUT_DIR"), "/gitleaks_rules.rs"));

/// Builds a `Vec<String>` from the generated code's literals.
fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) id: String,
    regex: Regex,
    secret_group: usize,
    entropy: f64,
    /// Lowercased.
    pub(crate) keywords: Vec<String>,
    allowlists: Vec<Allowlist>,
}

/// A compiled allowlist.
#[derive(Debug)]
pub(crate) struct Allowlist {
    target: Target,
    all: bool,
    regexes: Vec<Regex>,
    stopwords: Option<AhoCorasick>,
}

/// Compiles `expression` as gitleaks' rules are written (RE2, ASCII
/// classes); the error names `rule`.
pub(crate) fn compile(rule: &str, expression: &str) -> Result<Regex, SanitizeError> {
    RegexBuilder::new(&from_go(expression))
        .unicode(false)
        // Several rules repeat wide classes up to 150 times; the default
        // limit is for one expression, and these stay well under it.
        .size_limit(32 << 20)
        .build()
        .map_err(|e| SanitizeError::Rule {
            rule: rule.to_owned(),
            reason: e.to_string(),
        })
}

/// `expression` in the regex crate's syntax. RE2 as Go has it reads a `{`
/// that does not open a repetition (`{{[^}]+}}`) as a literal brace; the
/// regex crate rejects it, so such a brace is escaped. Everything else in
/// the vendored rules means the same to both.
pub(crate) fn from_go(expression: &str) -> Cow<'_, str> {
    let bytes = expression.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    let mut class = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'[' if !class => {
                class = true;
                // A `]` right after `[` or `[^` is a literal.
                i += 1;
                if bytes.get(i) == Some(&b'^') {
                    i += 1;
                }
                if bytes.get(i) == Some(&b']') {
                    i += 1;
                }
                continue;
            }
            b'[' if class && bytes.get(i + 1) == Some(&b':') => {
                // `[:alpha:]` inside a class.
                if let Some(end) = expression[i + 2..].find(":]") {
                    i += end + 4;
                    continue;
                }
            }
            b']' if class => class = false,
            b'{' if !class && !opens_repetition(&expression[i..]) => {
                out.push_str(&expression[copied..i]);
                out.push_str("\\{");
                copied = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if copied == 0 {
        return Cow::Borrowed(expression);
    }
    out.push_str(&expression[copied..]);
    Cow::Owned(out)
}

/// Whether `text` starts with `{n}`, `{n,}` or `{n,m}`.
fn opens_repetition(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('{') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let rest = &rest[digits..];
    if rest.starts_with('}') {
        return true;
    }
    let Some(rest) = rest.strip_prefix(',') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[digits..].starts_with('}')
}

impl Allowlist {
    pub(crate) fn compile(rule: &str, spec: &AllowlistSpec) -> Result<Allowlist, SanitizeError> {
        let regexes = spec
            .regexes
            .iter()
            .map(|r| compile(rule, r))
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

    /// Whether this list lets the finding through, as gitleaks decides it.
    pub(crate) fn allows(&self, secret: &[u8], whole: &[u8], line: &[u8]) -> bool {
        let target = match self.target {
            Target::Secret => secret,
            Target::Match => whole,
            Target::Line => line,
        };
        let regex = || self.regexes.iter().any(|r| r.is_match(target));
        let stopword = || self.stopwords.as_ref().is_some_and(|s| s.is_match(secret));
        if self.all {
            (self.regexes.is_empty() || regex()) && (self.stopwords.is_none() || stopword())
        } else {
            regex() || stopword()
        }
    }
}

impl Rule {
    pub(crate) fn compile(spec: &RuleSpec) -> Result<Rule, SanitizeError> {
        let regex = compile(&spec.id, &spec.regex)?;
        if spec.secret_group > 0 && spec.secret_group >= regex.captures_len() {
            return Err(SanitizeError::Rule {
                rule: spec.id.clone(),
                reason: format!(
                    "secretGroup {} but the expression has {} group(s)",
                    spec.secret_group,
                    regex.captures_len() - 1
                ),
            });
        }
        let allowlists = spec
            .allowlists
            .iter()
            .map(|a| Allowlist::compile(&spec.id, a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rule {
            id: spec.id.clone(),
            regex,
            secret_group: spec.secret_group,
            entropy: spec.entropy,
            keywords: spec.keywords.iter().map(|k| k.to_lowercase()).collect(),
            allowlists,
        })
    }

    /// Pushes the span of every secret this rule finds in `text`.
    pub(crate) fn find(
        &self,
        index: usize,
        text: &[u8],
        global: &[Allowlist],
        found: &mut Vec<Found>,
    ) {
        for caps in self.regex.captures_iter(text) {
            let Some(whole) = caps.get(0) else { continue };
            // gitleaks trims line breaks off a match (an expression that
            // ends in `\n` would otherwise take the next line's start).
            let mut start = whole.start();
            let mut end = whole.end();
            while start < end && text[start] == b'\n' {
                start += 1;
            }
            while end > start && text[end - 1] == b'\n' {
                end -= 1;
            }
            let secret = if self.secret_group > 0 {
                caps.get(self.secret_group).map(|m| m.range())
            } else {
                (1..caps.len())
                    .filter_map(|i| caps.get(i))
                    .find(|m| !m.is_empty())
                    .map(|m| m.range())
                    .or(Some(start..end))
            };
            let Some(secret) = secret else { continue };
            if secret.is_empty() {
                continue;
            }
            let value = &text[secret.clone()];
            if self.entropy > 0.0 && entropy(value) <= self.entropy {
                continue;
            }
            let line = line_around(text, start..end);
            let matched = &text[start..end];
            if global
                .iter()
                .chain(&self.allowlists)
                .any(|a| a.allows(value, matched, line))
            {
                continue;
            }
            found.push(Found::new(secret, By::Rule(index)));
        }
    }
}

/// The lines `span` is on.
pub(crate) fn line_around(text: &[u8], span: Range<usize>) -> &[u8] {
    let start = text[..span.start]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let end = text[span.end..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(text.len(), |i| span.end + i);
    &text[start..end]
}

/// Shannon entropy in bits per character, over the characters of `text`
/// (bytes that are not UTF-8 count one each), as gitleaks computes it.
pub(crate) fn entropy(text: &[u8]) -> f64 {
    if text.is_ascii() {
        let mut counts = [0u32; 128];
        for b in text {
            counts[usize::from(*b)] += 1;
        }
        return shannon(counts.iter().copied(), text.len());
    }
    let mut counts = std::collections::HashMap::<char, u32>::new();
    let mut n = 0;
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            *counts.entry(c).or_default() += 1;
            n += 1;
        }
        for b in chunk.invalid() {
            *counts.entry(char::from(*b)).or_default() += 1;
            n += 1;
        }
    }
    shannon(counts.into_values(), n)
}

fn shannon(counts: impl Iterator<Item = u32>, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts
        .filter(|c| *c > 0)
        .map(|c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}
