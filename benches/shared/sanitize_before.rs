//! The sanitizer as it was before gitleaks' rules (commit 5bb18b3), kept
//! so the bench measures the old and the new side by side in one run.
//! Not used by anything else.
//!
//! The sanitizer: removes passwords, tokens and keys from text before it
//! reaches a log line, an event, an HTTP body or the dashboard, keeping the
//! rest of the text for debugging. One implementation, used everywhere.
//!
//! Rules are regular expressions from the `regex` crate, which runs in time
//! linear in the input (no backtracking), so hostile input cannot make
//! sanitizing slow. Text with no candidate at all is returned borrowed after
//! one scan.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, RwLock};

use regex::{Captures, Regex, RegexSet};

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Keys whose values are secrets, matched case-insensitively as a word of
/// the key (`db_password`, `X-Api-Key`, `clientSecret`, `session.token`).
pub const DEFAULT_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "api_key",
    "access_key",
    "private_key",
    "secret_key",
    "authorization",
    "auth_token",
    "cookie",
    "session_token",
    "client_secret",
    "credentials",
    "credential",
];

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
    keys: Vec<Vec<String>>,
    any: RegexSet,
    /// The shapes and extra patterns without the key rule: what can still
    /// match once a pass has redacted (the key rule sees its own
    /// `key=[REDACTED]` and leaves it).
    after_redaction: RegexSet,
    key_value: Regex,
    shapes: Vec<(Regex, Shape)>,
    extra: Vec<Regex>,
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Redact capture group 1 only.
    Group,
    /// Keep the PEM armour lines, redact the body.
    Pem,
    /// Group 1 when it looks random enough to be a secret.
    Entropic,
    /// Group 1 when it mixes kinds of characters (a credential, not a word).
    Credential,
}

/// Identifier-ish characters a key is made of.
const KEY_CHARS: &str = r"[A-Za-z0-9_.\-]";

fn shape_rules() -> Vec<(&'static str, Shape)> {
    vec![
        // Authorization schemes: keep the scheme, drop the credential.
        (
            r"(?i)\b(?:bearer|basic|token|digest)\s+([A-Za-z0-9._~+/=\-]{8,})",
            Shape::Credential,
        ),
        // JSON Web Tokens.
        (
            r"\b(eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*)",
            Shape::Group,
        ),
        // PEM private keys, whole block.
        (
            r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----)",
            Shape::Pem,
        ),
        // AWS access key ids.
        (
            r"\b((?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16})\b",
            Shape::Group,
        ),
        // GitHub tokens (classic and fine-grained).
        (
            r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,255})\b",
            Shape::Group,
        ),
        (r"\b(github_pat_[A-Za-z0-9_]{22,255})\b", Shape::Group),
        // GitLab personal, deploy and runner tokens.
        (
            r"\b((?:glpat|gldt|glrt|glptt)-[A-Za-z0-9_\-]{20,})",
            Shape::Group,
        ),
        // Slack tokens and webhooks.
        (r"\b(xox[abposre]-[A-Za-z0-9\-]{10,})", Shape::Group),
        (
            r"(?i)hooks\.slack\.com/services/([A-Za-z0-9/]{20,})",
            Shape::Group,
        ),
        // Stripe keys.
        (
            r"\b((?:sk|rk|pk|whsec)_(?:live|test)_[A-Za-z0-9]{16,})\b",
            Shape::Group,
        ),
        // A whole cookie header: every pair in it may be a session.
        (r"(?i)\b(?:set-)?cookie\s*:\s*([^\r\n]+)", Shape::Group),
        // A password inside a URL: scheme://user:password@host.
        (
            r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:([^\s@/]+)@",
            Shape::Group,
        ),
        // A long random-looking string right after a secret-like word, even
        // with no `=` or `:` (e.g. "the api key is 3fa8c0...").
        (
            r"(?i)\b(?:secret|token|key|password|passwd|credentials?|auth)\b[^A-Za-z0-9\n]{1,3}(?:is\s+|was\s+)?([A-Za-z0-9+/_=.\-]{20,})",
            Shape::Entropic,
        ),
    ]
}

/// Splits a key into lowercase words at `_`, `-`, `.` and camel humps.
fn words(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if matches!(c, '_' | '-' | '.') {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether `key` can be an extra secret key: letters, digits, `_`, `-` and
/// `.`, with at least one word. Cheap: no rule is compiled.
///
/// # Errors
///
/// [`SanitizeError::Key`] naming the key.
pub fn check_key(key: &str) -> Result<(), SanitizeError> {
    let chars_ok = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !chars_ok || words(key).is_empty() {
        return Err(SanitizeError::Key(key.to_owned()));
    }
    Ok(())
}

/// Shannon entropy in bits per character.
fn entropy(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in text.bytes() {
        counts[b as usize] += 1;
    }
    let n = text.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| -(c as f64 / n) * (c as f64 / n).log2())
        .sum()
}

impl Sanitizer {
    /// The default rules.
    pub fn new() -> Sanitizer {
        Sanitizer::with_extra(&[], &[])
            .unwrap_or_else(|_| unreachable!("the default rules compile"))
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
        for key in extra_keys {
            check_key(key)?;
        }
        let keys: Vec<Vec<String>> = DEFAULT_KEYS
            .iter()
            .chain(extra_keys.iter())
            .map(|k| words(k))
            .filter(|w| !w.is_empty())
            .collect();
        // Candidate keys: any identifier containing one of the keys' words
        // glued together (`api_key` also matches `apikey`, `ApiKey`); the
        // word-by-word check in `redact_pair` then rejects `tokenizer`.
        let mut alternatives: Vec<String> = keys
            .iter()
            .map(|w| {
                w.iter()
                    .map(|part| regex::escape(part))
                    .collect::<Vec<_>>()
                    // `words` reads a run of separators as one boundary
                    // (`api__key`), so the pattern must take a run too.
                    .join(r"[_.\-]*")
            })
            .collect();
        alternatives.sort_by_key(|a| std::cmp::Reverse(a.len()));
        alternatives.dedup();
        let key_value = format!(
            r#"(?i)(?P<key>{KEY_CHARS}*(?:{}){KEY_CHARS}*)(?P<sep>["']?\s*[:=]\s*)(?P<value>\[REDACTED\]|(?:Some\()?[bBrRuU]{{0,2}}"(?:[^"\\]|\\.)*"\)?|[bBrRuU]{{0,2}}'(?:[^'\\]|\\.)*'|(?:bearer|basic|token|digest)\s+[^\s,;&)}}\]]+|[^\s,;&)}}\]]+)"#,
            alternatives.join("|")
        );
        let key_value = Regex::new(&key_value).map_err(|e| SanitizeError::Pattern {
            pattern: key_value.clone(),
            reason: e.to_string(),
        })?;
        let mut shapes = Vec::new();
        for (expression, shape) in shape_rules() {
            let regex = Regex::new(expression).map_err(|e| SanitizeError::Pattern {
                pattern: expression.to_owned(),
                reason: e.to_string(),
            })?;
            shapes.push((regex, shape));
        }
        let extra: Vec<Regex> = extra_patterns.iter().map(|p| p.0.clone()).collect();
        let all: Vec<&str> = std::iter::once(key_value.as_str())
            .chain(shapes.iter().map(|(r, _)| r.as_str()))
            .chain(extra.iter().map(Regex::as_str))
            .collect();
        let any = RegexSet::new(&all).map_err(|e| SanitizeError::Pattern {
            pattern: "(all rules)".into(),
            reason: e.to_string(),
        })?;
        let after_redaction = RegexSet::new(
            shapes
                .iter()
                .map(|(r, _)| r.as_str())
                .chain(extra.iter().map(Regex::as_str)),
        )
        .map_err(|e| SanitizeError::Pattern {
            pattern: "(all rules)".into(),
            reason: e.to_string(),
        })?;
        Ok(Sanitizer {
            keys,
            any,
            after_redaction,
            key_value,
            shapes,
            extra,
        })
    }

    /// `text` with every secret replaced by [`REDACTED`]; borrowed when there
    /// was nothing to replace.
    pub fn sanitize<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if !self.any.is_match(text) {
            return Cow::Borrowed(text);
        }
        let Some(mut changed) = self.pass(text) else {
            return Cow::Borrowed(text);
        };
        // A redaction can make a rule match that did not before (a
        // random-looking run cut short by `[REDACTED]` may now pass the
        // entropy test): repeat until nothing changes, so sanitizing
        // sanitized text changes nothing. Each pass only turns text into
        // `[REDACTED]`; a few passes settle it, and the bound is a guard.
        // Only a shape or an extra pattern can match anew: the key rule
        // leaves its own `key=[REDACTED]` alone, so it alone does not
        // call for another pass.
        for _ in 0..8 {
            if !self.after_redaction.is_match(&changed) {
                break;
            }
            match self.pass(&changed) {
                Some(again) => changed = again,
                None => break,
            }
        }
        Cow::Owned(changed)
    }

    /// One pass of every rule; `None` when nothing changed.
    fn pass(&self, text: &str) -> Option<String> {
        // `None` while no rule has changed anything.
        let mut out: Option<String> = None;
        fn apply(
            out: &mut Option<String>,
            input: &str,
            regex: &Regex,
            f: impl FnMut(&Captures<'_>) -> String,
        ) {
            let text = out.as_deref().unwrap_or(input);
            if let Cow::Owned(changed) = regex.replace_all(text, f) {
                *out = Some(changed);
            }
        }
        // Shapes first: a PEM block under a key must be seen whole, before
        // the key rule cuts its value at the first space.
        for (regex, shape) in &self.shapes {
            apply(&mut out, text, regex, |c| redact_shape(c, *shape));
        }
        apply(&mut out, text, &self.key_value, |c| self.redact_pair(c));
        for regex in &self.extra {
            apply(&mut out, text, regex, redact_extra);
        }
        out.filter(|changed| changed != text)
    }

    /// A named value as events and log lines carry it: the whole value
    /// when the name is a secret key (`password`, `api_key`), else the value
    /// sanitized.
    pub fn sanitize_field<'t>(&self, name: &str, value: &'t str) -> Cow<'t, str> {
        if self.is_secret_key(name) {
            Cow::Borrowed(REDACTED)
        } else {
            self.sanitize(value)
        }
    }

    /// Whether values under `key` are secrets (`db_password`, `X-Api-Key`,
    /// `clientSecret` are; `tokenizer`, `passport` are not).
    pub fn is_secret_key(&self, key: &str) -> bool {
        let words = words(key);
        let glued: Vec<String> = (0..words.len()).map(|i| words[i..].concat()).collect();
        self.keys.iter().any(|key_words| {
            // The key's words appear in a row, or glued into one word
            // (`apikey`, `ApiKey` for `api_key`).
            words
                .windows(key_words.len())
                .any(|w| w == key_words.as_slice())
                || words.iter().any(|w| *w == key_words.concat())
                || glued.iter().any(|g| *g == key_words.concat())
        })
    }

    fn redact_pair(&self, c: &Captures<'_>) -> String {
        let whole = &c[0];
        let (Some(key), Some(sep), Some(value)) = (c.name("key"), c.name("sep"), c.name("value"))
        else {
            return whole.to_owned();
        };
        if !self.is_secret_key(key.as_str()) {
            // Not a secret key, but its value may hold a pair that is
            // (`tokens:password=x`): look again inside the value.
            let inner = self
                .key_value
                .replace_all(value.as_str(), |c: &Captures<'_>| self.redact_pair(c));
            return format!("{}{}{}", key.as_str(), sep.as_str(), inner);
        }
        let value = value.as_str();
        // Already sanitized: sanitizing twice changes nothing. (A bare value
        // stops at `]`, so it may hold the marker without its end.)
        if value.contains("[REDACTED") {
            return whole.to_owned();
        }
        // A string prefix (`b'..'`) is kept, like the quotes.
        let prefix_len = value
            .find(['"', '\''])
            .filter(|&i| i <= 2 && value[..i].chars().all(|c| "bBrRuU".contains(c)))
            .unwrap_or(0);
        let (prefix, rest) = value.split_at(prefix_len);
        let redacted = match rest.chars().next() {
            Some(q @ ('"' | '\'')) if rest.len() > 1 && rest.ends_with(q) => {
                format!("{prefix}{q}{REDACTED}{q}")
            }
            Some('S') if value.starts_with("Some(\"") => format!("Some(\"{REDACTED}\")"),
            _ => {
                // Keep an authorization scheme: `Bearer [REDACTED]`.
                let scheme = value.split_whitespace().next().filter(|s| {
                    value.len() > s.len()
                        && ["bearer", "basic", "token", "digest"]
                            .contains(&s.to_ascii_lowercase().as_str())
                });
                match scheme {
                    Some(scheme) => format!("{scheme} {REDACTED}"),
                    None => REDACTED.to_owned(),
                }
            }
        };
        format!("{}{}{}", key.as_str(), sep.as_str(), redacted)
    }
}

impl Default for Sanitizer {
    fn default() -> Self {
        Sanitizer::new()
    }
}

fn redact_shape(c: &Captures<'_>, shape: Shape) -> String {
    let whole = c.get(0).map_or("", |m| m.as_str());
    match shape {
        Shape::Pem => {
            // The armour lines are groups: the key may be on one line, with
            // its line breaks escaped (`\n` in Debug or JSON text).
            let begin = c.get(1).map_or("", |m| m.as_str());
            let end = c.get(2).map_or("", |m| m.as_str());
            if whole.contains('\n') {
                format!("{begin}\n{REDACTED}\n{end}")
            } else {
                format!("{begin} {REDACTED} {end}")
            }
        }
        Shape::Group | Shape::Entropic | Shape::Credential => {
            let (Some(all), Some(secret)) = (c.get(0), c.get(1)) else {
                return whole.to_owned();
            };
            if secret.as_str() == REDACTED {
                return whole.to_owned();
            }
            let s = secret.as_str();
            let classes = [
                s.bytes().any(|b| b.is_ascii_lowercase()),
                s.bytes().any(|b| b.is_ascii_uppercase()),
                s.bytes().any(|b| b.is_ascii_digit()),
                s.bytes().any(|b| !b.is_ascii_alphanumeric()),
            ];
            let mixed = classes.iter().filter(|c| **c).count() >= 2;
            // Words ("Basic arithmetic") and identifiers are not secrets;
            // random-looking strings are.
            let keep = match shape {
                Shape::Entropic => entropy(s) < 3.5 || !mixed,
                Shape::Credential => !mixed,
                _ => false,
            };
            if keep {
                return whole.to_owned();
            }
            let start = secret.start() - all.start();
            let end = secret.end() - all.start();
            format!("{}{REDACTED}{}", &whole[..start], &whole[end..])
        }
    }
}

fn redact_extra(c: &Captures<'_>) -> String {
    let whole = c.get(0).map_or("", |m| m.as_str());
    match (c.get(0), c.name("secret")) {
        (Some(all), Some(secret)) => {
            let start = secret.start() - all.start();
            let end = secret.end() - all.start();
            format!("{}{REDACTED}{}", &whole[..start], &whole[end..])
        }
        _ => REDACTED.to_owned(),
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
    let sanitizer = Sanitizer::with_extra(extra_keys, extra_patterns)?;
    *global().write().unwrap_or_else(|e| e.into_inner()) = Arc::new(sanitizer);
    Ok(())
}
