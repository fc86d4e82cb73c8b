//! Values under secret keys: `key=value` in every syntax a log line
//! carries, XML elements, name/value pairs, command-line flags, and a
//! random-looking run after a secret word in prose. The keyword pass says
//! where the keys are; each is read once, whatever its syntax.

use std::ops::Range;

use regex::CaptureLocations;

use super::values::{value_at, Style};
use super::{mixed, Forms};
use crate::sanitize::keys::{self, Strength};
use crate::sanitize::rules::entropy;
use crate::sanitize::{By, Found};

/// The keys after which a secret may follow in prose (`the token is
/// …`).
const PROSE_WORDS: [&str; 8] = [
    "secret",
    "token",
    "key",
    "password",
    "passwd",
    "credential",
    "credentials",
    "auth",
];

/// A key that a keyword is in, and what is around it.
struct Key<'t> {
    /// Where the key is in the text.
    span: Range<usize>,
    name: &'t str,
    /// The key's words (see `keys::words`).
    words: Vec<String>,
    strength: Strength,
    /// The character just before the key.
    before: Option<char>,
    /// The text after the key.
    after: &'t str,
    /// The first 256 bytes of `after`, which is all the forms read.
    near: &'t str,
}

impl Forms {
    /// Pushes the span of every secret under the keys that the keyword
    /// `hits` (ranges of `text`, in order) are in: `key=value` in every
    /// syntax, XML elements, name/value pairs, flags and prose.
    pub(crate) fn find_pairs(&self, text: &str, hits: &[Range<usize>], found: &mut Vec<Found>) {
        // The end of the last key read: a keyword inside it is read already.
        let mut read_to = 0;
        // Reused for every key: a search with fresh captures allocates.
        let mut groups = self.separator.capture_locations();
        // Few keys are followed by prose: made when one is.
        let mut prose_groups = None;
        for hit in hits {
            if hit.start < read_to {
                continue;
            }
            let span = key_around(text.as_bytes(), hit);
            read_to = span.end;
            let Some(key) = self.key(text, span) else {
                continue;
            };
            let separated = self.separator.captures_read(&mut groups, key.near);
            if separated.is_some() {
                // Groups 1 and 2: `close` and `sep`.
                let (Some(close), Some(sep)) = (groups.get(1), groups.get(2)) else {
                    continue;
                };
                if let Some(end) = self.key_value(text, &key, close, sep, found) {
                    // A keyword inside this value is part of it, not a key
                    // of its own: `password=password=…` is read once.
                    read_to = read_to.max(end);
                }
            }
            self.xml_element(text, &key, found);
            self.name_value(text, &key, found);
            self.flag(text, &key, found);
            self.prose(&key, &mut prose_groups, found);
        }
    }

    /// The key at `span` of `text`, if its words make it one whose values
    /// are, or may be, secrets.
    #[inline]
    fn key<'t>(&self, text: &'t str, span: Range<usize>) -> Option<Key<'t>> {
        let name = &text[span.clone()];
        let words = keys::words(name);
        let strength = self.keys.classify_words(&words)?;
        let after = &text[span.end..];
        Some(Key {
            before: text[..span.start].chars().next_back(),
            near: &after[..after.floor_char_boundary(256)],
            after,
            span,
            name,
            words,
            strength,
        })
    }

    /// `key=value`, `key: value`, `key := "value"`, `Key("value")` and the
    /// like: pushes the value after the separator `sep`, `close` being what
    /// closed the key (a quote, a bracket; both spans in `key.near`).
    /// Where the value ends.
    #[inline]
    fn key_value(
        &self,
        text: &str,
        key: &Key<'_>,
        close: (usize, usize),
        sep: (usize, usize),
        found: &mut Vec<Found>,
    ) -> Option<usize> {
        let sep_end = sep.1;
        let sep = &key.near[sep.0..sep_end];
        // A key inside a quoted string (`"password=x"`, `-H
        // "Authorization: …"`) ends its value at that quote.
        let enclosing = match key.before {
            Some(q @ ('"' | '\'' | '`')) if close.0 == close.1 => Some(q),
            _ => None,
        };
        let tuple = sep == "(";
        let spaced = sep.ends_with([' ', '\t']);
        let style = if key.words.iter().any(|w| w.contains("cookie")) {
            Style::Header
        } else if spaced {
            Style::Line
        } else {
            Style::Token
        };
        let span = value_at(text, key.span.end + sep_end, style, enclosing, tuple)?;
        let end = span.end;
        // An `Authorization` header keeps its scheme, whatever it is.
        let any_scheme = key.words.iter().any(|w| w.contains("authorization"));
        let span = after_scheme(text, span, any_scheme);
        self.push(text, span, key.strength, "key-value", found);
        Some(end)
    }

    /// `<key>value</key>`: pushes the element's content.
    #[inline]
    fn xml_element(&self, text: &str, key: &Key<'_>, found: &mut Vec<Found>) {
        if key.before != Some('<') {
            return;
        }
        let Some(m) = self.element.find(key.near) else {
            return;
        };
        let content = key.span.end + m.end();
        let rest = &text[content..];
        // The content holds no tag: it ends at the next `<`,
        // which must close the element.
        let close = memchr::memchr(b'<', rest.as_bytes()).filter(|&c| rest[c..].starts_with("</"));
        if let Some(close) = close {
            let inner = &rest[..close];
            let from = content + (inner.len() - inner.trim_start().len());
            let to = content + inner.trim_end().len();
            if from < to {
                self.push(text, from..to, key.strength, "xml-element", found);
            }
        }
    }

    /// `key="password" value="…"`, `name: 'token', value: …`: pushes the
    /// value of a name/value pair whose name is the key.
    #[inline]
    fn name_value(&self, text: &str, key: &Key<'_>, found: &mut Vec<Found>) {
        let Some(q @ ('"' | '\'')) = key.before else {
            return;
        };
        let quote_at = key.span.start - 1;
        let lead = &text[text.ceil_char_boundary(quote_at.saturating_sub(32))..quote_at];
        // `named_before` ends in `=` or `:` and blanks: most
        // quoted keys (JSON's) are not after one, and need no search.
        let named = lead.trim_end_matches([' ', '\t']).ends_with(['=', ':']);
        if key.after.starts_with(q) && named && self.named_before.is_match(lead) {
            if let Some(m) = self.named_after.find(key.near) {
                if let Some(span) =
                    value_at(text, key.span.end + m.end(), Style::Token, None, false)
                {
                    self.push(text, span, key.strength, "name-value", found);
                }
            }
        }
    }

    /// `--password secret`, `-p secret`: pushes the flag's value.
    #[inline]
    fn flag(&self, text: &str, key: &Key<'_>, found: &mut Vec<Found>) {
        let dashes = key.name.bytes().take_while(|b| *b == b'-').count();
        if (1..=2).contains(&dashes)
            && key
                .before
                .is_none_or(|b| b.is_whitespace() || b == '"' || b == '\'')
        {
            let gap = key
                .near
                .bytes()
                .take_while(|b| *b == b' ' || *b == b'\t')
                .count();
            if gap > 0 && !key.near[gap..].starts_with('-') {
                if let Some(span) = value_at(text, key.span.end + gap, Style::Token, None, false) {
                    self.push(text, span, key.strength, "flag", found);
                }
            }
        }
    }

    /// `the token is <random run>`: pushes the run after a secret word.
    /// `groups` is made on first use.
    #[inline]
    fn prose(&self, key: &Key<'_>, groups: &mut Option<CaptureLocations>, found: &mut Vec<Found>) {
        // `prose` starts with a blank: a key followed by anything else
        // needs no search.
        if !(key.near.starts_with([' ', '\t'])
            && PROSE_WORDS.iter().any(|w| key.name.eq_ignore_ascii_case(w)))
        {
            return;
        }
        // Group 1: `secret`.
        let groups = groups.get_or_insert_with(|| self.prose.capture_locations());
        let secret = self
            .prose
            .captures_read(groups, key.near)
            .and_then(|_| groups.get(1));
        if let Some((from, to)) = secret {
            let secret = &key.near[from..to];
            if mixed(secret) && entropy(secret.as_bytes()) >= 3.5 {
                let span = key.span.end + from..key.span.end + to;
                found.push(Found::new(span, By::Form("prose")));
            }
        }
    }

    /// Pushes `span`, found by `finder` under a key of `strength`, unless
    /// its value is a placeholder or too short, or the key only may hold
    /// a secret and the value does not look random.
    fn push(
        &self,
        text: &str,
        span: Range<usize>,
        strength: Strength,
        finder: &'static str,
        found: &mut Vec<Found>,
    ) {
        let value = &text[span.clone()];
        if self.is_placeholder(value) || value.trim().chars().count() < 3 {
            return;
        }
        if strength == Strength::Weak && !Forms::looks_random(value) {
            return;
        }
        found.push(Found::new(span, By::Form(finder)));
    }
}

/// The identifier the keyword at `hit` is in (at most 256 bytes either
/// side of it; a `$` after the keyword starts something else).
#[inline]
fn key_around(bytes: &[u8], hit: &Range<usize>) -> Range<usize> {
    let mut start = hit.start;
    while start > 0 && hit.start - start < 256 && is_key_byte(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = hit.end;
    while end < bytes.len() && end - hit.end < 256 && is_key_byte(bytes[end]) && bytes[end] != b'$'
    {
        end += 1;
    }
    start..end
}

/// A byte a key can be made of.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.-$@".contains(&b)
}

/// `span` without a leading authorization scheme (`Bearer …`). With `any`
/// (an `Authorization` header) any first word of a several-word value is
/// the scheme; else only the known schemes.
// Inlined, as `Leading::end` is: as calls, once out of the functions
// they were in, the two cost a line with a secret 0.2% more instructions
// (callgrind, `benches/sanitize_callgrind.rs`).
#[inline]
fn after_scheme(text: &str, span: Range<usize>, any: bool) -> Range<usize> {
    let value = &text[span.clone()];
    let Some(space) = value.find([' ', '\t']) else {
        return span;
    };
    let scheme = &value[..space];
    let rest = value[space..].trim_start();
    if rest.is_empty() {
        return span;
    }
    let known = matches!(
        scheme.to_ascii_lowercase().as_str(),
        "bearer"
            | "basic"
            | "digest"
            | "token"
            | "negotiate"
            | "ntlm"
            | "apikey"
            | "key"
            | "dpop"
            | "mac"
            | "hoba"
            | "aws4-hmac-sha256"
            | "oauth"
            | "sso-key"
            | "ssws"
            | "splunk"
            | "vapid"
            | "gsshmac"
    );
    if known
        || (any
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)))
    {
        span.end - rest.len()..span.end
    } else {
        span
    }
}
