//! Credential rules in gitleaks' format, compiled: each rule's expression,
//! secret group, entropy threshold and allowlists, applied as gitleaks'
//! detector applies them (`detect/detect.go`, `detectRule` and
//! `checkFindingAllowed`), so a finding there is a redaction here.
//!
//! Expressions are compiled as byte expressions with Unicode off: Go's RE2
//! reads `\w`, `\d`, `\s` and `\b` as ASCII, and so does this; it also keeps
//! every rule on the regex crate's fast engines (a Unicode `\b` is not).

use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::meta::{self, Regex};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::captures::Captures;
use regex_automata::util::pool::Pool;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

use super::lines::Lines;
use super::spec::{AllowlistSpec, RuleFileSpec, RuleSpec, Target};
use super::syntax::{from_go, shape, Shape};
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
    /// How far past its start a match must be looked for before a search
    /// that finds nothing is final (see [`reach`]); `None`: no bound.
    reach: Option<usize>,
    /// How far before a keyword it holds a match can start (see
    /// [`Shape`]); `None`: not known, [`LOOK_BACK`] and [`LOOK_AHEAD`]
    /// bound the search.
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
struct Leading {
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
    fn end(&self, hay: &[u8], from: usize) -> Result<Option<usize>, ()> {
        let input = Input::new(hay).range(from..).anchored(Anchored::Yes);
        let mut cache = self.caches.get();
        match self.dfa.try_search_fwd(&mut cache, &input) {
            Ok(m) => Ok(m.map(|m| m.offset())),
            Err(_) => Err(()),
        }
    }
}

/// Where [`Rule::find_near`] searches: around `hits`, keywords in text
/// order, each within `context(hit)` (its lines); with `anchored`, by the
/// rule's [`Leading`] search if it has one.
pub(crate) struct Near<'h, C> {
    pub(crate) hits: &'h [Range<usize>],
    pub(crate) context: C,
    pub(crate) anchored: bool,
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
        let mut verdicts = LineVerdicts::default();
        let mut caps = self.regex.create_captures();
        let mut matched = false;
        let mut searched = 0;
        // What the last search in a context found past its keyword: the
        // context, where the search started, and where the next match
        // starts (`None`: nowhere). No match starts between the two, so
        // keywords in that stretch need no search of their own: a run of
        // 20,000 keywords must not cost 20,000 searches to the end of the
        // line.
        let mut ahead: Option<(Range<usize>, usize, Option<usize>)> = None;
        for hit in hits {
            let around = context(hit.clone());
            // A match that holds its keyword starts by it; one that does
            // not may start past it.
            let (back, last) = match self.keyword_within {
                Some(within) => (within, hit.start),
                None => (LOOK_BACK, hit.end + LOOK_AHEAD),
            };
            let first = hit
                .start
                .saturating_sub(back)
                .max(around.start)
                .max(searched);
            let last = last.min(around.end);
            let mut at = first;
            let mut took = false;
            if let Some((context, from, next)) = &ahead {
                if *context == around && first >= *from {
                    match next {
                        Some(next) if (first..=last).contains(next) => at = *next,
                        // That match is behind this keyword's stretch (taken
                        // since, or before it): what follows it is not
                        // known, and is searched. Skipping to it found the
                        // same match again, twice or more.
                        Some(next) if *next < first => {}
                        _ => continue,
                    }
                }
            }
            // A match that starts by `last` is found within `reach` of it
            // (see `reach`). One that ends right at that cut may have been
            // cut short (`$`, `\b` hold there and not in the whole text):
            // it is searched again in the whole context.
            let mut cut = match self.reach {
                Some(reach) => (last + reach + 1).min(around.end),
                None => around.end,
            };
            while at <= last {
                let hay = &text[around.start..cut];
                let input = Input::new(hay).range(at - around.start..);
                self.regex.search_captures(&input, &mut caps);
                let Some(whole) = caps.get_match() else {
                    if cut == around.end {
                        ahead = Some((around.clone(), at, None));
                    }
                    break;
                };
                matched = true;
                let (start, end) = (around.start + whole.start(), around.start + whole.end());
                if end == cut && cut < around.end {
                    cut = around.end;
                    continue;
                }
                if start > last {
                    // This match belongs to a later keyword, if any.
                    if cut == around.end {
                        ahead = Some((around.clone(), at, Some(start)));
                    }
                    break;
                }
                self.accept(
                    index,
                    text,
                    around.start,
                    &caps,
                    lines,
                    &mut verdicts,
                    global,
                    found,
                );
                at = if end == start { end + 1 } else { end };
                took = true;
            }
            // As gitleaks reads a line, matches do not overlap: the next
            // search starts past the last match. Else it starts past the
            // starts this search ruled out.
            searched = searched.max(if took { at } else { at.min(last + 1) });
        }
        matched
    }
}

impl Rule {
    /// The rule's [`Leading`] search, built on first use; `None` for a rule
    /// whose matches do not hold a keyword near their start (within
    /// [`LEADING_LIMIT`] bytes), that crosses lines, or whose search does
    /// not compile (no known rule; it would then be searched unanchored).
    fn leading(&self) -> Option<&Leading> {
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
    fn find_leading<C: Fn(Range<usize>) -> Range<usize>>(
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

/// How far before a keyword a match that holds it may start (gitleaks'
/// generic rule allows 50 identifier characters before it).
const LOOK_BACK: usize = 128;
/// How far after a keyword a match may start (`facebook 1308742762612587|…`:
/// the keyword names the service, the token follows).
const LOOK_AHEAD: usize = 64;

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

#[cfg(test)]
mod tests {
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
