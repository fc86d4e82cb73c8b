//! The sanitizer: removes passwords, tokens and keys from text before it
//! reaches a log line, an event, an HTTP body or the dashboard, keeping the
//! rest of the text for debugging. One implementation, used everywhere.
//!
//! Three kinds of finder, each giving the byte range of a secret alone:
//! - gitleaks' default rule set (vendored, see `rules/gitleaks/`), applied
//!   as gitleaks applies it: keywords, secret group, entropy, allowlists;
//! - secrets by where they stand: a value under a secret key in any syntax
//!   a log line carries, URL userinfo, private-key blocks, command lines;
//! - the configuration's extra keys, patterns and rule file.
//!
//! One Aho-Corasick pass over every finder's keywords decides which run, so
//! text with no keyword at all comes back borrowed after that one pass. All
//! expressions are the `regex` crate's, linear in the input: no input can
//! make sanitizing slow.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, OnceLock, RwLock};

use aho_corasick::AhoCorasick;
use regex::Regex;

// A text's way through the modules: `keywords` finds the keywords,
// `wanted` picks the finders they call for, `find` runs them (`rules`,
// `forms`, the configured patterns), `rewrite` puts in the markers and
// `recheck` searches again near them until nothing changes. `builder`
// compiles it all.
mod builder;
mod find;
mod forms;
mod keys;
mod keywords;
mod lines;
mod recheck;
mod rewrite;
mod rules;
mod spec;
#[cfg(feature = "config")]
mod spec_toml;
mod syntax;
mod wanted;

pub use builder::SanitizerBuilder;
pub use keys::{check_key, DEFAULT_KEYS};
pub use rules::{GITLEAKS_COMMIT, GITLEAKS_VERSION};

use forms::Forms;
use keys::Strength;
use keywords::Trigger;
use rules::{Allowlist, Rule};
use spec::RuleFileSpec;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// A rule added by configuration: a regular expression whose matches (or,
/// if it has a capture group named `secret`, that group) are redacted.
#[derive(Clone, Debug)]
pub struct Pattern(Regex);

impl Pattern {
    /// Compiles a rule.
    ///
    /// # Errors
    ///
    /// [`SanitizeError::Pattern`] when the expression does not compile.
    pub fn new(expression: &str) -> Result<Pattern, SanitizeError> {
        Regex::new(expression)
            .map(Pattern)
            .map_err(|source| SanitizeError::Pattern {
                pattern: expression.to_owned(),
                reason: source.to_string(),
            })
    }
}

/// Credential rules in gitleaks' TOML format, read from a user's file: each
/// `[[rules]]` with `id`, `regex`, and optionally `secretGroup`, `entropy`,
/// `keywords` and `[[rules.allowlists]]`; a global `[allowlist]` applies to
/// every rule. They run beside the built-in rules; one with the id of a
/// built-in rule replaces it.
///
/// ```
/// # #[cfg(feature = "config")] {
/// use poolscope_runtime::sanitize::{RuleSet, Sanitizer};
/// let rules = RuleSet::from_toml(r#"
///     [[rules]]
///     id = "acme-key"
///     regex = "acme_([a-z0-9]{12})"
///     keywords = ["acme_"]
/// "#).unwrap();
/// let s = Sanitizer::builder().rules(rules).build().unwrap();
/// assert_eq!(s.sanitize("using acme_0a1b2c3d4e5f"), "using acme_[REDACTED]");
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    spec: RuleFileSpec,
}

impl RuleSet {
    /// Reads rules in gitleaks' TOML format and checks that every
    /// expression compiles.
    ///
    /// # Errors
    ///
    /// [`SanitizeError::Rules`] when the text is not such a rule file,
    /// [`SanitizeError::Rule`] naming the rule whose expression is bad.
    #[cfg(feature = "config")]
    pub fn from_toml(text: &str) -> Result<RuleSet, SanitizeError> {
        let spec = spec_toml::parse(text).map_err(SanitizeError::Rules)?;
        for rule in &spec.rules {
            Rule::compile(rule)?;
        }
        for list in &spec.allowlists {
            Allowlist::compile("(global allowlist)", list)?;
        }
        Ok(RuleSet { spec })
    }

    /// Reads a rule file (see [`RuleSet::from_toml`]).
    ///
    /// # Errors
    ///
    /// [`SanitizeError::Rules`] naming the file when it cannot be read or
    /// parsed; [`SanitizeError::Rule`] for a bad expression.
    #[cfg(feature = "config")]
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<RuleSet, SanitizeError> {
        use std::io::Read as _;
        let path = path.as_ref();
        let failed = |why: String| SanitizeError::Rules(format!("{}: {why}", path.display()));
        // A configuration may name anything: not a device or a pipe that
        // never ends, and not a file larger than any rule set.
        let meta = std::fs::metadata(path).map_err(|e| failed(e.to_string()))?;
        if !meta.is_file() {
            return Err(failed("not a regular file".into()));
        }
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(RULE_FILE_LIMIT + 1).read_to_string(&mut text))
            .map_err(|e| failed(e.to_string()))?;
        if text.len() as u64 > RULE_FILE_LIMIT {
            return Err(failed(format!("larger than {} MiB", RULE_FILE_LIMIT >> 20)));
        }
        RuleSet::from_toml(&text).map_err(|e| match e {
            SanitizeError::Rules(reason) => {
                SanitizeError::Rules(format!("{}: {reason}", path.display()))
            }
            other => other,
        })
    }

    /// The ids of the rules, in file order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.spec.rules.iter().map(|r| r.id.as_str())
    }

    /// The number of rules that can match text.
    pub fn len(&self) -> usize {
        self.spec.rules.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spec.rules.is_empty()
    }
}

/// The largest rule file read (gitleaks' whole default set is 130 KiB).
#[cfg(feature = "config")]
const RULE_FILE_LIMIT: u64 = 16 << 20;

/// A sanitizer configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SanitizeError {
    /// An extra pattern is not a valid regular expression.
    #[error("sanitizer pattern `{pattern}` is not a valid regular expression: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// The compiler's message.
        reason: String,
    },
    /// An extra key is empty or has characters a key cannot have.
    #[error("sanitizer key `{0}` must be letters, digits, `_`, `-` or `.`, and not empty")]
    Key(String),
    /// A credential rule cannot be used (its expression does not compile,
    /// or its secret group does not exist).
    #[error("sanitizer rule `{rule}` cannot be used: {reason}")]
    Rule {
        /// The rule's id.
        rule: String,
        /// Why.
        reason: String,
    },
    /// A rule file cannot be read or is not in gitleaks' format.
    #[error("sanitizer rule file: {0}")]
    Rules(String),
}

/// One secret [`Sanitizer::findings`] reports: where it is and which
/// finder saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The credential rule's id (`github-pat`, a rule file's own), a form
    /// (`key-value`, `xml-element`, `name-value`, `flag`, `db-client`,
    /// `url-userinfo`, `private-key-block`, `auth-scheme`,
    /// `prose`) or `pattern` for a configured [`Pattern`].
    pub finder: String,
    /// The secret's byte range in the text.
    pub span: Range<usize>,
}

/// A span to redact and what found it.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub(crate) span: Range<usize>,
    pub(crate) by: By,
}

impl Found {
    pub(crate) fn new(span: Range<usize>, by: By) -> Found {
        Found { span, by }
    }
}

/// Which finder a span came from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum By {
    /// A credential rule, by index.
    Rule(usize),
    /// A form finder, by name.
    Form(&'static str),
    /// A configured pattern.
    Pattern,
}

/// A compiled set of rules. Most code uses the process-wide one through
/// [`sanitize`]; build one to test a configuration.
///
/// ```
/// use poolscope_runtime::sanitize::Sanitizer;
/// let s = Sanitizer::with_extra(&["pin"], &[]).unwrap();
/// assert_eq!(s.sanitize("user=ann pin=1234"), "user=ann pin=[REDACTED]");
/// ```
#[derive(Debug)]
pub struct Sanitizer {
    forms: Forms,
    rules: Vec<Rule>,
    /// Rules that have no keyword and so always run.
    always: Vec<usize>,
    global: Vec<Allowlist>,
    prefilter: AhoCorasick,
    triggers: Vec<Trigger>,
    /// The length of the longest keyword.
    longest: usize,
    /// Whether a keyword can meet a `[REDACTED]` marker: only then can a
    /// redaction put a keyword where there was none.
    keyword_in_marker: bool,
    extra: Vec<Regex>,
}

impl Sanitizer {
    /// The default rules.
    pub fn new() -> Sanitizer {
        Sanitizer::builder()
            .build()
            .unwrap_or_else(|e| unreachable!("the default rules compile: {e}"))
    }

    /// A builder starting from the default rules.
    pub fn builder() -> SanitizerBuilder {
        SanitizerBuilder::default()
    }

    /// The default rules plus extra keys and patterns.
    ///
    /// # Errors
    ///
    /// [`SanitizeError`] naming the key or pattern that cannot be used.
    pub fn with_extra(
        extra_keys: &[&str],
        extra_patterns: &[Pattern],
    ) -> Result<Sanitizer, SanitizeError> {
        Sanitizer::builder()
            .extra_keys(extra_keys)
            .extra_patterns(extra_patterns)
            .build()
    }

    /// The ids of the credential rules in force, built-in and added.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// Every secret in `text` and the finder that saw it, in text order
    /// (overlapping findings are all listed): why [`Sanitizer::sanitize`]
    /// redacts what it does in its first pass (what a redaction then
    /// uncovers is found by the passes after it).
    pub fn findings(&self, text: &str) -> Vec<Finding> {
        let hits = self.keyword_hits(text);
        let mut found = self
            .find(text, &hits, &mut Vec::new(), false, true)
            .unwrap_or_default();
        found.sort_by_key(|f| (f.span.start, f.span.end));
        found
            .into_iter()
            .map(|f| Finding {
                finder: match f.by {
                    By::Rule(index) => self.rules[index].id.clone(),
                    By::Form(name) => name.to_owned(),
                    By::Pattern => "pattern".to_owned(),
                },
                span: f.span,
            })
            .collect()
    }

    /// `text` with every secret replaced by [`REDACTED`]; borrowed when there
    /// was nothing to replace.
    pub fn sanitize<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.sanitize_with(text, true)
    }

    /// What [`Sanitizer::sanitize`] gives, worked out without its
    /// shortcuts: no rule is left out of the searches after a redaction
    /// (however sure it is to find nothing), and every rule is searched
    /// unanchored from where its matches near a keyword may start (not by
    /// its anchored search, see `rules::Leading`), and the text around
    /// every new marker is scanned for keywords that meet it (even when no
    /// keyword can). For tests that check that the shortcuts change
    /// nothing.
    #[doc(hidden)]
    pub fn sanitize_in_full<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.sanitize_with(text, false)
    }

    /// A named value as events and log lines carry it: the whole value
    /// when the name is a secret key (`password`, `api_key`); for a name
    /// that may hold one (`key`, `auth`), the whole value when it looks
    /// random; else the value sanitized.
    pub fn sanitize_field<'t>(&self, name: &str, value: &'t str) -> Cow<'t, str> {
        let secret = match self.forms.keys().classify(name) {
            Some(Strength::Strong) => !self.forms.is_placeholder(value),
            Some(Strength::Weak) => Forms::looks_random(value) && !self.forms.is_placeholder(value),
            None => false,
        };
        if secret {
            Cow::Borrowed(REDACTED)
        } else {
            self.sanitize(value)
        }
    }

    /// Whether values under `key` are secrets (`db_password`, `X-Api-Key`,
    /// `clientSecret`, `encryption_key` are; `tokenizer`, `passport`,
    /// `api_key_id`, `token_type` are not).
    pub fn is_secret_key(&self, key: &str) -> bool {
        self.forms.keys().classify(key) == Some(Strength::Strong)
    }
}

impl Default for Sanitizer {
    fn default() -> Self {
        Sanitizer::new()
    }
}

fn global() -> &'static RwLock<Arc<Sanitizer>> {
    static GLOBAL: OnceLock<RwLock<Arc<Sanitizer>>> = OnceLock::new();
    GLOBAL.get_or_init(|| RwLock::new(Arc::new(Sanitizer::new())))
}

/// The process-wide sanitizer.
pub fn current() -> Arc<Sanitizer> {
    global().read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Sanitizes `text` with the process-wide rules.
///
/// ```
/// use poolscope_runtime::sanitize::sanitize;
/// assert_eq!(
///     sanitize("connect postgres://app:hunter2@db:5432 with password=hunter2"),
///     "connect postgres://app:[REDACTED]@db:5432 with password=[REDACTED]",
/// );
/// assert_eq!(sanitize("nothing to hide"), "nothing to hide");
/// ```
pub fn sanitize(text: &str) -> Cow<'_, str> {
    let sanitizer = current();
    match sanitizer.sanitize(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(owned) => Cow::Owned(owned),
    }
}

/// Whether values under `key` are secrets, by the process-wide rules.
pub fn is_secret_key(key: &str) -> bool {
    current().is_secret_key(key)
}

/// Replaces the process-wide rules with the defaults plus `extra_keys` and
/// `extra_patterns`. On error the rules in force stay.
///
/// # Errors
///
/// [`SanitizeError`] naming the key or pattern that cannot be used.
///
/// ```
/// use poolscope_runtime::sanitize::{configure, sanitize, Pattern};
/// configure(&["pin"], &[Pattern::new(r"card (?P<secret>\d{16})").unwrap()]).unwrap();
/// assert_eq!(sanitize("pin: 1234, card 4111111111111111"), "pin: [REDACTED], card [REDACTED]");
/// # configure(&[], &[]).unwrap();
/// ```
pub fn configure(extra_keys: &[&str], extra_patterns: &[Pattern]) -> Result<(), SanitizeError> {
    install(Sanitizer::with_extra(extra_keys, extra_patterns)?);
    Ok(())
}

/// Makes `sanitizer` the process-wide one (build it with
/// [`Sanitizer::builder`] to add a rule file).
pub fn install(sanitizer: Sanitizer) {
    *global().write().unwrap_or_else(|e| e.into_inner()) = Arc::new(sanitizer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizing_twice_changes_nothing() {
        // Found by the `sanitize` fuzz target: the first pass redacted the
        // value, after which the random-looking run before it, now cut
        // short by `[REDACTED]`, passed the entropy test.
        let s = Sanitizer::new();
        for text in [
            "auth +dtiazH+++secretkey=kkkkk",
            "token: abc password=hunter2 key is wJalrXUtnFEMI/K7MDENG/bPxRfiCY",
        ] {
            let once = s.sanitize(text).into_owned();
            assert_eq!(s.sanitize(&once), once.as_str(), "{text}");
        }
    }

    #[test]
    fn keys_with_runs_of_separators_are_secret_keys_in_text_too() {
        // Found by the `config` fuzz target: `words` reads `__` as one
        // boundary, the key pattern read it as two.
        let s = Sanitizer::with_extra(&["my--pin"], &[]).unwrap();
        for text in [
            "my--pin=1234",
            "api__key=1234",
            "API..KEY: 1234",
            "my.pin=1234",
        ] {
            let out = s.sanitize(text);
            assert!(!out.contains("1234"), "{text} -> {out}");
        }
        assert!(check_key("---").is_err());
        assert!(check_key("my key").is_err());
        assert!(check_key("my--pin").is_ok());
    }

    #[test]
    fn entropy_separates_random_from_words() {
        assert!(rules::entropy(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") > 4.0);
        assert!(rules::entropy(b"aaaaaaaaaaaaaaaaaaaaaaaa") < 1.0);
    }

    #[test]
    fn bad_configuration_is_rejected_with_the_reason() {
        assert!(matches!(
            Pattern::new("("),
            Err(SanitizeError::Pattern { .. })
        ));
        assert_eq!(
            Sanitizer::with_extra(&["bad key"], &[]).unwrap_err(),
            SanitizeError::Key("bad key".into())
        );
    }

    /// A rule with one keyword and nothing else.
    fn rule_spec(id: &str, regex: &str, keyword: &str) -> spec::RuleSpec {
        spec::RuleSpec {
            id: id.to_owned(),
            regex: regex.to_owned(),
            secret_group: 0,
            entropy: 0.0,
            keywords: vec![keyword.to_owned()],
            allowlists: Vec::new(),
            shape: None,
        }
    }

    /// `rules` as a rule file, unchecked.
    fn rule_set(rules: Vec<spec::RuleSpec>) -> RuleSet {
        RuleSet {
            spec: RuleFileSpec {
                rules,
                allowlists: Vec::new(),
            },
        }
    }

    /// The default rules plus `(id, expression, keyword)` rules.
    fn with_rules(rules: &[(&str, &str, &str)]) -> Sanitizer {
        let rules = rules
            .iter()
            .map(|(id, regex, keyword)| rule_spec(id, regex, keyword))
            .collect();
        let rules = rule_set(rules);
        Sanitizer::builder().rules(rules).build().unwrap()
    }

    #[test]
    fn a_rule_a_marker_can_wake_is_searched_again() {
        // Each text's second secret matches only once the first is a
        // marker: a `]` before it, a word boundary at the marker's end, or
        // a keyword now close enough. The searches after the redaction
        // must run those rules, skipping only rules no marker can wake.
        let s = with_rules(&[
            ("first", r"zork:([a-p]{4,})", "zork"),
            ("after-bracket", r"\](xq[0-9]{5})", "xq"),
            ("bounded", r"\b([0-9]{6})\b", "zork"),
            ("near-keyword", r"([0-9]{8})", "fb"),
        ]);
        // 80 letters from `a` to `p` that read as no word.
        let letters: String = (0u32..80)
            .map(|i| char::from(b'a' + u8::try_from((i * 7 + i * i) % 16).unwrap()))
            .collect();
        let far = format!("fb zork:{letters} 12345678");
        for (text, want) in [
            ("zork:abcdxq83716", "zork:[REDACTED][REDACTED]".to_owned()),
            ("zork:abcd123456", "zork:[REDACTED][REDACTED]".to_owned()),
            (far.as_str(), "fb zork:[REDACTED] [REDACTED]".to_owned()),
        ] {
            assert_eq!(s.sanitize(text), want, "{text}");
            assert_eq!(s.sanitize_in_full(text), want, "{text}");
        }
        // And rules no marker can wake are left out: the generic rules.
        let generic = s.rules.iter().find(|r| r.id == "generic-api-key").unwrap();
        assert!(generic.steady());
        for id in ["after-bracket", "bounded", "near-keyword"] {
            let rule = s.rules.iter().find(|r| r.id == id).unwrap();
            assert!(!rule.steady(), "{id}");
        }
    }

    #[test]
    fn a_keyword_a_marker_makes_is_seen() {
        // The second secret's keyword exists only once the first is a
        // marker: it holds the marker's `]`, or is inside its letters.
        for (keyword, rule) in [
            ("]xq", r"\](xq[0-9]{5})"),
            ("acted", r"ACTED\](xq[0-9]{5})"),
        ] {
            let s = with_rules(&[
                ("first", r"zork:([a-p]{4,})", "zork"),
                ("second", rule, keyword),
            ]);
            assert!(s.keyword_in_marker, "{keyword}");
            assert_eq!(
                s.sanitize("zork:abcdxq83716"),
                "zork:[REDACTED][REDACTED]",
                "{keyword}"
            );
        }
        // No default keyword can meet a marker: the text around one is not
        // scanned for keywords again.
        assert!(!Sanitizer::new().keyword_in_marker);
    }

    #[test]
    fn of_several_bad_rules_the_first_is_named() {
        // Rules compile on several threads; the error is still the first
        // bad rule's, in the file's order.
        let rules = (0..12)
            .map(|i| {
                let regex = if i == 5 || i == 9 { "(" } else { "ok[0-9]{4}" };
                rule_spec(&format!("rule-{i}"), regex, "ok")
            })
            .collect();
        let rules = rule_set(rules);
        let err = Sanitizer::builder().rules(rules).build().unwrap_err();
        assert!(
            matches!(&err, SanitizeError::Rule { rule, .. } if rule == "rule-5"),
            "{err}"
        );
    }

    #[test]
    fn every_vendored_rule_compiles() {
        let s = Sanitizer::new();
        assert!(s.rule_ids().count() >= 220, "{}", s.rule_ids().count());
    }
}
