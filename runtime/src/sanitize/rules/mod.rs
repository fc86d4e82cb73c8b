//! Credential rules in gitleaks' format, compiled: each rule's expression,
//! secret group, entropy threshold and allowlists, applied as gitleaks'
//! detector applies them (`detect/detect.go`, `detectRule` and
//! `checkFindingAllowed`), so a finding there is a redaction here.
//!
//! Expressions are compiled as byte expressions with Unicode off: Go's RE2
//! reads `\w`, `\d`, `\s` and `\b` as ASCII, and so does this; it also keeps
//! every rule on the regex crate's fast engines (a Unicode `\b` is not).
//!
//! A rule runs on a whole text ([`Rule::find`]) or around its keywords:
//! `near` searches there with the rule's own expression, `leading` with an
//! anchored search that reads no further than a match can reach.
//! `allowlist` holds what lets a match through.

use std::ops::Range;
use std::sync::OnceLock;

use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;

use super::lines::Lines;
use super::spec::{AllowlistSpec, RuleFileSpec, RuleSpec, Target};
use super::syntax::{from_go, shape, Shape};
use super::{By, Found, SanitizeError};

mod allowlist;
mod leading;
mod near;

pub(crate) use allowlist::Allowlist;
use leading::Leading;
pub(crate) use near::Near;

include!(concat!(env!("OUT_DIR"), "/gitleaks_rules.rs"));

/// Builds a `Vec<String>` from the generated code's literals.
fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) id: String,
    /// How far past its start a match must be looked for before a search
    /// that finds nothing is final (see [`reach`]); `None`: no bound.
    reach: Option<usize>,
    /// How far before a keyword it holds a match can start (see
    /// [`Shape`]); `None`: not known, [`LOOK_BACK`](near::LOOK_BACK) and
    /// [`LOOK_AHEAD`](near::LOOK_AHEAD) bound the search.
    keyword_within: Option<usize>,
    /// Whether a match can run over line breaks by itself (`[\s\S]`,
    /// `(?s)`, `\n`): such a rule reads the whole text, the others the
    /// lines around their keywords.
    pub(crate) crosses_lines: bool,
    regex: Regex,
    /// The expression as gitleaks wrote it, translated: what [`Leading`]
    /// is built from.
    expression: String,
    /// The search for where a match near a keyword ends, built the first
    /// time one is needed (`None`: the rule has none, see [`Leading`]).
    leading: OnceLock<Option<Leading>>,
    secret_group: usize,
    entropy: f64,
    /// Lowercased.
    pub(crate) keywords: Vec<String>,
    allowlists: Vec<Allowlist>,
    /// Whether, when its search of a text finds nothing, it finds nothing
    /// in that text with `[REDACTED]` markers put in (see [`Shape`]), but
    /// perhaps inside a marker's letters ([`Rule::steady`] asks that).
    steady: bool,
    /// Whether it matches a marker's letters (worked out when first asked).
    inside_marker: OnceLock<bool>,
}

/// Compiles `expression` as gitleaks' rules are written (RE2, ASCII
/// classes); the error names `rule`. `whole_text` says whether it is to
/// search whole texts, not just the lines around a keyword: only then is
/// a literal prefilter worth building. The regex crate builds one for
/// every expression, and for most of gitleaks' rules looks for literals
/// inside the expression too (its "reverse inner" search): a third of the
/// time it takes to compile them, for searches a few hundred bytes long.
pub(crate) fn compile(
    rule: &str,
    expression: &str,
    whole_text: bool,
) -> Result<Regex, SanitizeError> {
    meta::Builder::new()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            meta::Config::new()
                .auto_prefilter(whole_text)
                .onepass(false)
                .utf8_empty(false)
                // Several rules repeat wide classes up to 150 times; the
                // default limit is for one expression, and these stay well
                // under it.
                .nfa_size_limit(Some(32 << 20)),
        )
        .build(&from_go(expression))
        .map_err(|e| SanitizeError::Rule {
            rule: rule.to_owned(),
            reason: e.to_string(),
        })
}

impl Rule {
    pub(crate) fn compile(spec: &RuleSpec) -> Result<Rule, SanitizeError> {
        let crosses_lines = [
            "\\n", "\\r", "\\s\\S", "\\S\\s", "(?s", "?s:", "\\x0a", "\\x0A",
        ]
        .iter()
        .any(|p| spec.regex.contains(p));
        // Such a rule, and one with no keyword, searches whole texts.
        let whole_text = crosses_lines || spec.keywords.is_empty();
        let regex = compile(&spec.id, &spec.regex, whole_text)?;
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
        // Worked out by the build script for the vendored rules; a user's
        // rule is read here.
        let shape: Shape = match spec.shape {
            Some(shape) => shape,
            None => shape(&from_go(&spec.regex), &spec.keywords),
        };
        Ok(Rule {
            reach: shape.reach,
            keyword_within: shape.keyword_within,
            // Searched around its keywords, a rule may find a match after a
            // marker moved it closer to one; not if the match holds it.
            steady: shape.blind && (whole_text || shape.holds_keyword),
            inside_marker: OnceLock::new(),
            crosses_lines,
            id: spec.id.clone(),
            regex,
            expression: from_go(&spec.regex).into_owned(),
            leading: OnceLock::new(),
            secret_group: spec.secret_group,
            entropy: spec.entropy,
            keywords: spec.keywords.iter().map(|k| k.to_lowercase()).collect(),
            allowlists,
        })
    }

    /// Pushes the span of every secret this rule finds in `text`; whether
    /// its expression matched at all (a match it let pass counts).
    pub(crate) fn find(
        &self,
        index: usize,
        text: &[u8],
        lines: &Lines,
        global: &[Allowlist],
        found: &mut Vec<Found>,
    ) -> bool {
        let mut verdicts = LineVerdicts::default();
        let mut matched = false;
        for caps in self.regex.captures_iter(text) {
            matched = true;
            self.accept(index, text, 0, &caps, lines, &mut verdicts, global, found);
        }
        matched
    }

    /// Whether a text in which this rule's search matched nothing still
    /// gives nothing once parts of it are `[REDACTED]`: so the search
    /// after a redaction can leave it out.
    pub(crate) fn steady(&self) -> bool {
        self.steady
            && !*self.inside_marker.get_or_init(|| {
                self.regex
                    .is_match(super::REDACTED.trim_matches(['[', ']']))
            })
    }

    /// Pushes the secret of one match (of a search in `text` from byte
    /// `base` on), unless gitleaks would let it pass (too little entropy,
    /// allowlisted).
    #[allow(clippy::too_many_arguments)]
    fn accept(
        &self,
        index: usize,
        text: &[u8],
        base: usize,
        caps: &Captures,
        lines: &Lines,
        verdicts: &mut LineVerdicts,
        global: &[Allowlist],
        found: &mut Vec<Found>,
    ) {
        let Some(whole) = caps.get_match() else {
            return;
        };
        // gitleaks trims line breaks off a match (an expression that ends
        // in `\n` would otherwise take the next line's start).
        let mut start = base + whole.start();
        let mut end = base + whole.end();
        while start < end && text[start] == b'\n' {
            start += 1;
        }
        while end > start && text[end - 1] == b'\n' {
            end -= 1;
        }
        let secret = if self.secret_group > 0 {
            caps.get_group(self.secret_group)
                .map(|m| base + m.start..base + m.end)
        } else {
            (1..caps.group_len())
                .filter_map(|i| caps.get_group(i))
                .find(|m| !m.is_empty())
                .map(|m| base + m.start..base + m.end)
                .or(Some(start..end))
        };
        let Some(secret) = secret else { return };
        if secret.is_empty() {
            return;
        }
        let value = &text[secret.clone()];
        if self.entropy > 0.0 && entropy(value) <= self.entropy {
            return;
        }
        let line = lines.around(start..end, 0);
        if verdicts.line != line {
            *verdicts = LineVerdicts {
                line: line.clone(),
                ..LineVerdicts::default()
            };
        }
        let matched = &text[start..end];
        let allowed = global
            .iter()
            .chain(&self.allowlists)
            .enumerate()
            .any(|(i, a)| {
                a.allows(value, matched, || {
                    // A line regex's verdict is the same for every match on
                    // the line: read a long line once, not once a match.
                    match verdicts.seen.get(&i) {
                        Some(verdict) => *verdict,
                        None => {
                            let verdict = a.line_matches(&text[line.clone()]);
                            verdicts.seen.insert(i, verdict);
                            verdict
                        }
                    }
                })
            });
        if !allowed {
            found.push(Found::new(secret, By::Rule(index)));
        }
    }
}

/// The verdicts of line-reading allowlists on one line, by the list's
/// position among the global and the rule's lists.
#[derive(Default)]
struct LineVerdicts {
    line: Range<usize>,
    seen: std::collections::HashMap<usize, bool>,
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
