//! Secrets found by where they stand rather than by what they look like: a
//! value under a secret key in any syntax a log line carries (`key=value`,
//! `key: value`, `key := "value"`, JSON, YAML blocks, XML, Debug output,
//! command-line flags), URL userinfo, private-key blocks, authorization
//! schemes. Each finder returns the byte range of the secret alone, so the
//! key, quotes and separators stay for the reader.

use std::ops::Range;

use regex::Regex;

use super::keys::{Keys, Strength};
use super::rules::entropy;
use super::SanitizeError;
use super::{By, Found};

/// The compiled finders.
#[derive(Debug)]
pub(crate) struct Forms {
    keys: Keys,
    /// What follows a key that makes it `key <separator>`, anchored at
    /// the key's end: the value is read by [`value_at`].
    separator: Regex,
    /// What follows `<key` that makes it an element, anchored at the key's
    /// end: the value runs to the closing tag.
    element: Regex,
    /// `key="` / `name: '` just before a quoted key, anchored at the end.
    named_before: Regex,
    /// `" … value=` after a quoted key, anchored at the key's end.
    named_after: Regex,
    /// The random-looking run after a secret word in prose, anchored at the
    /// word's end.
    prose: Regex,
    /// `-p secret` after a database client (`curl -u user:secret` is
    /// gitleaks' `curl-auth-user`).
    client: Regex,
    userinfo: Regex,
    block: Regex,
    scheme: Regex,
    placeholder: Regex,
}

/// Text that stands for a secret without being one: `${VAR}`, `<TOKEN>`,
/// `xxxxxxxx`, `****`, `var.db_password`, `os.environ["X"]`, `%APPDATA%`.
/// A `%name%` is a variable only when the name reads like one (one case,
/// or CamelCase): `%a0AA%` is as likely a password. Mirrors
/// gitleaks' global allowlist and adds the shapes configuration files and
/// code use for "filled in elsewhere".
const PLACEHOLDER: &str = r#"(?x)^(?:
    (?i:true|false|null|nil|none|undefined|empty|changeme|redacted|hidden|masked|secret|password|example)
  | (?i:a+|b+|c+|d+|e+|f+|g+|h+|i+|j+|k+|l+|m+|n+|o+|p+|q+|r+|s+|t+|u+|v+|w+|x+|y+|z+|0+|1+|9+|\*+|\.+|-+|_+|\#+|•+)
  | \[REDACTED\]
  | \$[0-9]+ | \$\{[0-9]+\}
  | \$(?:[A-Z_]+|[a-z_]+) | \$\{[^{}\s]+\} | \$\([^()]*\)? | `[^`]*` | \{[^{}]*\} | \{[A-Za-z_][A-Za-z0-9_]*\(.*
  | [A-Z]+(?:_[A-Z]+)+
  | \{\{[^{}]*\}\} | \$\{\{[^{}]*\}\}
  | %(?:[A-Z_][A-Z0-9_]*|[a-z_][a-z0-9_]*|(?:[A-Z][a-z]+)+[0-9]*)% | %\([a-z_]+\)s | %[+\-\#0]?[bcdeEfFgGoOpqstTUvxX]
  | \{[0-9]{0,2}\} | \{[a-z_]+\}
  | @[A-Za-z_]+@
  | <[^<>]{1,60}> | \[[A-Za-z_ ]{1,40}\]
  | (?:/Users/|/home/|/etc/|/opt/|/tmp/|/usr/|/var/|/bin/|/srv/|/run/|/root)[A-Za-z0-9_ ./\-]*
  | (?i:(?:var|vars|local|locals|env|secrets|settings|config|data|module|self|this|params|props|process\.env|os\.environ|system)\.[A-Za-z_][A-Za-z0-9_.\[\]'"]*)
  | (?i:(?:os\.)?(?:getenv|environ(?:\.get)?|env|getpass|get_secret|System\.getenv|ENV|process\.env))[\[(].*
  | [A-Za-z_][A-Za-z0-9_.]*\(\s*\)
  | new\s+[A-Za-z_][A-Za-z0-9_.]*\(.* | [A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+\(.*
  | [A-Za-z_][A-Za-z0-9_.\-]*(?:\s+[:=]\s*|[:=]\s+)
)$"#;

impl Forms {
    pub(crate) fn new(keys: Keys) -> Result<Forms, SanitizeError> {
        let compile = |name: &str, expression: &str| {
            Regex::new(expression).map_err(|e| SanitizeError::Rule {
                rule: name.to_owned(),
                reason: e.to_string(),
            })
        };
        // Each of these runs anchored right after a key that a keyword
        // found, so it reads a few bytes, not the text. Longer separators
        // first: the leftmost alternative wins.
        Ok(Forms {
            separator: compile(
                "key=value",
                r#"^(?P<close>\\?["'`]?\]?)(?P<sep>[ \t]*(?::::=|::=|:=|\?\?=|\?=|\.=|\+=|\|\|=|=>|->|<-|==|=|:)[ \t]*|\()"#,
            )?,
            element: compile("xml element", r"^(?:[ \t][^<>\n]*)?>")?,
            named_before: compile(
                "name and value",
                r#"(?i)\b(?:key|name)["']?[ \t]*[=:][ \t]*$"#,
            )?,
            named_after: compile(
                "name and value",
                r#"(?i)^["'][^<>{}\n]{0,160}?\bvalue["']?[ \t]*[=:][ \t]*"#,
            )?,
            prose: compile(
                "secret in prose",
                r"(?i)^[ \t]+(?:is[ \t]+|was[ \t]+)?(?P<secret>[A-Za-z0-9+/_=.\-]{20,})",
            )?,
            client: compile(
                "database client -p",
                r#"(?:^|[\s/"'])(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump|sshpass|redis-cli|mongo|mongosh|mongodump|mongorestore)(?:\s+[^\s|;&]+)*?\s-[pa][ \t]*"#,
            )?,
            userinfo: compile(
                "url userinfo",
                r#"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/?#@"'<>\\]*:(?P<secret>[^\s/?#"'<>\\]*)@[^\s@/]"#,
            )?,
            block: compile(
                "private key block",
                r"-{4,5} ?BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?) ?-{4,5}",
            )?,
            scheme: compile(
                "authorization scheme",
                r"(?i)\b(?:bearer|basic|digest|negotiate)\s+(?P<secret>[A-Za-z0-9._~+/=\-]{8,})",
            )?,
            placeholder: compile("placeholder", PLACEHOLDER)?,
            keys,
        })
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Whether `value` stands for a secret without being one: a whole
    /// placeholder, or a real-looking prefix filled out with a run of one
    /// character (`ghp_xxxxxxxx…`, `AIzaaaaaaaa…`), elided (`ops_eyJz…`,
    /// `…[Redacted]`) or the documentation's example (`…EXAMPLE`).
    pub(crate) fn is_placeholder(&self, value: &str) -> bool {
        let value = value.trim();
        if value.is_empty() || self.placeholder.is_match(value) {
            return true;
        }
        let bytes = value.as_bytes();
        let redacted = bytes
            .windows(8)
            .any(|w| w.eq_ignore_ascii_case(b"redacted"));
        let example = bytes.len() >= 7 && bytes[bytes.len() - 7..].eq_ignore_ascii_case(b"example");
        if value.ends_with("...") || value.ends_with('…') || redacted || example {
            return true;
        }
        let (mut run, mut longest, mut prev) = (0, 0, None);
        for b in value.bytes() {
            run = if Some(b) == prev { run + 1 } else { 1 };
            prev = Some(b);
            let needed = if b"xX*#.".contains(&b) { 6 } else { 8 };
            if run >= needed {
                longest = run;
                break;
            }
        }
        longest > 0
    }

    /// Whether `value` looks like a credential rather than a word, a
    /// name or a version: one run of token characters, long, with letters
    /// and digits, random enough (gitleaks' generic rule asks about as
    /// much).
    pub(crate) fn looks_random(value: &str) -> bool {
        value.len() >= 16
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=_-~".contains(&b))
            && value.bytes().any(|b| b.is_ascii_digit())
            && value.bytes().any(|b| b.is_ascii_alphabetic())
            && entropy(value.as_bytes()) > 3.5
    }

    /// Pushes the span of every secret under the keys that the keyword
    /// `hits` (ranges of `text`, in order) are in: `key=value` in every
    /// syntax, XML elements, name/value pairs, flags and prose.
    pub(crate) fn find_pairs(&self, text: &str, hits: &[Range<usize>], found: &mut Vec<Found>) {
        let bytes = text.as_bytes();
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
            // The identifier the keyword is in.
            let mut start = hit.start;
            while start > 0 && hit.start - start < 256 && is_key_byte(bytes[start - 1]) {
                start -= 1;
            }
            let mut end = hit.end;
            while end < bytes.len()
                && end - hit.end < 256
                && is_key_byte(bytes[end])
                && bytes[end] != b'$'
            {
                end += 1;
            }
            read_to = end;
            let key = &text[start..end];
            let words = super::keys::words(key);
            let Some(strength) = self.keys.classify_words(&words) else {
                continue;
            };
            let before = text[..start].chars().next_back();
            let after = &text[end..];
            let near = &after[..after.floor_char_boundary(256)];
            if self.separator.captures_read(&mut groups, near).is_some() {
                // Groups 1 and 2: `close` and `sep`.
                let (Some(close), Some((_, sep_end))) = (groups.get(1), groups.get(2)) else {
                    continue;
                };
                let sep = &near[groups.get(2).map_or(0, |g| g.0)..sep_end];
                // A key inside a quoted string (`"password=x"`, `-H
                // "Authorization: …"`) ends its value at that quote.
                let enclosing = match before {
                    Some(q @ ('"' | '\'' | '`')) if close.0 == close.1 => Some(q),
                    _ => None,
                };
                let tuple = sep == "(";
                let spaced = sep.ends_with([' ', '\t']);
                let style = if words.iter().any(|w| w.contains("cookie")) {
                    Style::Header
                } else if spaced {
                    Style::Line
                } else {
                    Style::Token
                };
                if let Some(span) = value_at(text, end + sep_end, style, enclosing, tuple) {
                    // A keyword inside this value is part of it, not a key
                    // of its own: `password=password=…` is read once.
                    read_to = read_to.max(span.end);
                    // An `Authorization` header keeps its scheme, whatever it is.
                    let any_scheme = words.iter().any(|w| w.contains("authorization"));
                    let span = after_scheme(text, span, any_scheme);
                    self.push(text, span, strength, "key-value", found);
                }
            }
            if before == Some('<') {
                if let Some(m) = self.element.find(near) {
                    let content = end + m.end();
                    let rest = &text[content..];
                    // The content holds no tag: it ends at the next `<`,
                    // which must close the element.
                    let close = memchr::memchr(b'<', rest.as_bytes())
                        .filter(|&c| rest[c..].starts_with("</"));
                    if let Some(close) = close {
                        let inner = &rest[..close];
                        {
                            let from = content + (inner.len() - inner.trim_start().len());
                            let to = content + inner.trim_end().len();
                            if from < to {
                                self.push(text, from..to, strength, "xml-element", found);
                            }
                        }
                    }
                }
            }
            if let Some(q @ ('"' | '\'')) = before {
                let quote_at = start - 1;
                let lead = &text[text.ceil_char_boundary(quote_at.saturating_sub(32))..quote_at];
                // `named_before` ends in `=` or `:` and blanks: most
                // quoted keys (JSON's) are not after one, and need no search.
                let named = lead.trim_end_matches([' ', '\t']).ends_with(['=', ':']);
                if after.starts_with(q) && named && self.named_before.is_match(lead) {
                    if let Some(m) = self.named_after.find(near) {
                        if let Some(span) = value_at(text, end + m.end(), Style::Token, None, false)
                        {
                            self.push(text, span, strength, "name-value", found);
                        }
                    }
                }
            }
            let dashes = key.bytes().take_while(|b| *b == b'-').count();
            if (1..=2).contains(&dashes)
                && before.is_none_or(|b| b.is_whitespace() || b == '"' || b == '\'')
            {
                let gap = near
                    .bytes()
                    .take_while(|b| *b == b' ' || *b == b'\t')
                    .count();
                if gap > 0 && !near[gap..].starts_with('-') {
                    if let Some(span) = value_at(text, end + gap, Style::Token, None, false) {
                        self.push(text, span, strength, "flag", found);
                    }
                }
            }
            // `prose` starts with a blank: a key followed by anything else
            // needs no search.
            if near.starts_with([' ', '\t'])
                && PROSE_WORDS.iter().any(|w| key.eq_ignore_ascii_case(w))
            {
                // Group 1: `secret`.
                let groups = prose_groups.get_or_insert_with(|| self.prose.capture_locations());
                let secret = self
                    .prose
                    .captures_read(groups, near)
                    .and_then(|_| groups.get(1));
                if let Some((from, to)) = secret {
                    let secret = &near[from..to];
                    if mixed(secret) && entropy(secret.as_bytes()) >= 3.5 {
                        let span = end + from..end + to;
                        found.push(Found::new(span, By::Form("prose")));
                    }
                }
            }
        }
    }

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

    /// Command lines: a database client's `-p`/`-a`, quoted or not.
    pub(crate) fn find_clients(&self, text: &str, lines: &[Range<usize>], found: &mut Vec<Found>) {
        for line in lines {
            for m in self.client.find_iter(&text[line.clone()]) {
                let at = line.start + m.end();
                if let Some(span) = value_at(text, at, Style::Token, None, false) {
                    if !self.is_placeholder(&text[span.clone()]) {
                        found.push(Found::new(span, By::Form("db-client")));
                    }
                }
            }
        }
    }

    /// `scheme://user:secret@host`, for any scheme.
    pub(crate) fn find_userinfo(&self, text: &str, lines: &[Range<usize>], found: &mut Vec<Found>) {
        for line in lines {
            for c in self.userinfo.captures_iter(&text[line.clone()]) {
                if let Some(secret) = c.name("secret") {
                    if !secret.is_empty() && !self.is_placeholder(secret.as_str()) {
                        let span = line.start + secret.start()..line.start + secret.end();
                        found.push(Found::new(span, By::Form("url-userinfo")));
                    }
                }
            }
        }
    }

    /// `Bearer <credential>` outside any key: the credential, when it
    /// mixes kinds of characters (`Basic arithmetic` is a phrase).
    pub(crate) fn find_schemes(&self, text: &str, lines: &[Range<usize>], found: &mut Vec<Found>) {
        for line in lines {
            for c in self.scheme.captures_iter(&text[line.clone()]) {
                if let Some(secret) = c.name("secret") {
                    if mixed(secret.as_str()) {
                        let span = line.start + secret.start()..line.start + secret.end();
                        found.push(Found::new(span, By::Form("auth-scheme")));
                    }
                }
            }
        }
    }

    /// `span` narrowed to the body when it covers a whole private-key block
    /// with its armour (gitleaks' `private-key` rule takes the armour too);
    /// `None` when that body holds no key material (nothing, a word, or
    /// what was redacted already), so the armour is never redacted.
    pub(crate) fn block_body(&self, text: &str, span: Range<usize>) -> Option<Range<usize>> {
        let inner = &text[span.clone()];
        if self.block.find(inner).is_none_or(|m| m.start() != 0) {
            return Some(span);
        }
        let mut bodies = Vec::new();
        self.find_blocks(inner, 0, &mut bodies);
        bodies
            .first()
            .map(|body| span.start + body.span.start..span.start + body.span.end)
    }

    /// The body of PEM, PGP and OpenSSH private-key blocks, also with the
    /// line breaks escaped (`\n` in JSON or Debug text); a block with no
    /// end is cut to the end of the text.
    pub(crate) fn find_blocks(&self, text: &str, from: usize, found: &mut Vec<Found>) {
        let mut from = from;
        while let Some(c) = self.block.captures_at(text, from) {
            let (Some(begin), Some(label)) = (c.get(0), c.get(1)) else {
                break;
            };
            let body_start = begin.end();
            let end_marker = text[body_start..]
                .find("END ")
                .and_then(|i| {
                    let at = body_start + i;
                    // The dashes before `END`.
                    let dashes = text[..at].trim_end_matches(' ').len();
                    // Not into the dashes that close `BEGIN …` itself.
                    let dashes_start =
                        text[body_start..dashes].trim_end_matches('-').len() + body_start;
                    (dashes - dashes_start >= 4 && text[at + 4..].starts_with(label.as_str()))
                        .then_some(dashes_start)
                })
                .unwrap_or(text.len());
            let body = &text[body_start..end_marker];
            // Keep the line breaks (real or escaped) that frame the body.
            let inner = trim_breaks_start(body);
            let lead = body.len() - inner.len();
            let trail = inner.len() - trim_breaks_end(inner).len();
            let span = body_start + lead..end_marker - trail;
            // A key's body is base64 (`MII…`); a lowercase word between
            // the armour lines is an example. What was redacted already does
            // not count: its capitals would make a second sanitizing see key
            // material the first did not (found by the `sanitize` fuzzer).
            let body = text[span.clone()].replace(super::REDACTED, "");
            let material = body.bytes().filter(u8::is_ascii_alphanumeric).count() >= 8
                && body
                    .bytes()
                    .any(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if span.start < span.end && material {
                found.push(Found::new(span, By::Form("private-key-block")));
            }
            from = end_marker.max(body_start);
            if from >= text.len() {
                break;
            }
        }
    }
}

fn trim_breaks_start(s: &str) -> &str {
    let mut s = s;
    loop {
        let t = s.trim_start_matches([' ', '\t', '\r', '\n']);
        let t = t
            .strip_prefix("\\r\\n")
            .or_else(|| t.strip_prefix("\\n"))
            .unwrap_or(t);
        if t.len() == s.len() {
            return s;
        }
        s = t;
    }
}

fn trim_breaks_end(s: &str) -> &str {
    let mut s = s;
    loop {
        let t = s.trim_end_matches([' ', '\t', '\r', '\n', '"', '\'']);
        let t = t
            .strip_suffix("\\r\\n")
            .or_else(|| t.strip_suffix("\\n"))
            .unwrap_or(t);
        if t.len() == s.len() {
            return s;
        }
        s = t;
    }
}

/// A byte a key can be made of.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.-$@".contains(&b)
}

/// Whether `s` mixes at least two kinds of characters.
fn mixed(s: &str) -> bool {
    let classes = [
        s.bytes().any(|b| b.is_ascii_lowercase()),
        s.bytes().any(|b| b.is_ascii_uppercase()),
        s.bytes().any(|b| b.is_ascii_digit()),
        s.bytes().any(|b| !b.is_ascii_alphanumeric()),
    ];
    classes.iter().filter(|c| **c).count() >= 2
}

/// The most of a line a value is read from (a longer value is cut there,
/// and the rest of it left as it is).
const MAX_VALUE: usize = 64 * 1024;

/// How far an unquoted value runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// `key=value`: to the next space (logfmt, query strings).
    Token,
    /// `key: value`, `key = value`: to the end of the line or the next
    /// `key=`, so `passphrase: correct horse battery` is one value.
    Line,
    /// A cookie header: every pair to the end of the line is a session.
    Header,
}

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

/// Where a value starting at `at` lies, inside its quotes if quoted.
fn value_at(
    text: &str,
    at: usize,
    style: Style,
    enclosing: Option<char>,
    tuple: bool,
) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut i = at;
    // Debug wrappers: `Some("…")`, `String("…")`, `Secret("…")`.
    for _ in 0..3 {
        let ident = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b':')
            .count();
        if ident > 0 && ident <= 40 && bytes.get(i + ident) == Some(&b'(') {
            i += ident + 1;
        } else {
            break;
        }
    }
    // String prefixes: b"…", r'…', f"…", rb"…".
    let prefix = bytes[i..]
        .iter()
        .take(2)
        .take_while(|b| b"bBrRuUfF".contains(b))
        .count();
    let quote_at = if prefix > 0 && matches!(bytes.get(i + prefix), Some(b'"' | b'\'')) {
        i + prefix
    } else {
        i
    };
    match bytes.get(quote_at) {
        Some(b'"' | b'\'' | b'`') => return quoted(text, quote_at),
        Some(b'\\') if matches!(bytes.get(quote_at + 1), Some(b'"' | b'\'')) => {
            return escaped_quoted(text, quote_at)
        }
        _ => {}
    }
    if tuple {
        // `Password(…)` is a tuple struct only with a string inside;
        // `check_password(user)` is a call.
        return None;
    }
    if matches!(bytes.get(i), Some(b'|' | b'>')) {
        if let Some(span) = yaml_block(text, at, i) {
            return Some(span);
        }
    }
    // Only the value's own line is read, and no more than `MAX_VALUE` of
    // it: many keys on one long line must not each read to its end.
    let limit = (i + MAX_VALUE).min(bytes.len());
    let line_end = memchr::memchr2(b'\n', b'\r', &bytes[i..limit]).map_or(limit, |e| i + e);
    let line_end = text.floor_char_boundary(line_end);
    // A reference (`${VAR}`, `{{ .Values.x }}`, `$(cmd)`) is read whole, so
    // its closing bracket does not cut it into something that no longer
    // looks like one.
    for (open, close) in [("${", "}"), ("{{", "}}"), ("$(", ")"), ("{", "}")] {
        if text[i..line_end].starts_with(open) {
            if let Some(e) = text[i + open.len()..line_end].find(close) {
                return Some(i..i + open.len() + e + close.len());
            }
        }
    }
    let stop = |at: usize, style: Style| -> bool {
        let b = bytes[at];
        if enclosing.is_some_and(|q| b == q as u8) {
            return true;
        }
        // A quote that closes something around the pair (`url="…?token=x"`):
        // one followed by the end of a token. A quote inside a value
        // (`abc"def`) does not end it.
        if matches!(b, b'"' | b'\'')
            && bytes
                .get(at + 1)
                .is_none_or(|n| n.is_ascii_whitespace() || b",;)}]>".contains(n))
        {
            return true;
        }
        match style {
            Style::Header => false,
            // `&` joins query parameters; in a `key: value` line it is part
            // of the value (`Tr0ub4dor&3`).
            Style::Token => b",;&)}]".contains(&b) || b.is_ascii_whitespace(),
            Style::Line => b",;)}]".contains(&b) || b.is_ascii_whitespace(),
        }
    };
    let mut end = i;
    while end < line_end && !stop(end, style) {
        end += 1;
    }
    if end == i {
        return None;
    }
    if style == Style::Line {
        // More words, while the next is not a new `key=` or `--flag`.
        loop {
            let gap = bytes[end..line_end]
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            let word_start = end + gap;
            if gap == 0 || word_start >= line_end {
                break;
            }
            let mut word_end = word_start;
            while word_end < line_end && !stop(word_end, style) {
                word_end += 1;
            }
            let word = &text[word_start..word_end];
            let starts_pair = word.find(['=', ':']).is_some_and(|p| {
                p > 0
                    && word[..p]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            });
            if word_end == word_start || starts_pair || word.starts_with('-') {
                break;
            }
            end = word_end;
        }
    }
    Some(i..end)
}

/// The inside of the quoted string at `at` (one of `"`, `'`, `` ` ``, or
/// a tripled one); to the end of the line when it never closes.
fn quoted(text: &str, at: usize) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let q = bytes[at];
    let triple = bytes.get(at..at + 3) == Some(&[q, q, q][..]);
    let (open, close): (usize, &[u8]) = if triple { (3, &[q, q, q]) } else { (1, &[q]) };
    let start = at + open;
    let mut i = start;
    while i < bytes.len() {
        if bytes[i] == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(close) {
            return (i > start).then_some(start..i);
        }
        if bytes[i] == b'\n' && !triple && q != b'`' {
            break;
        }
        i += 1;
    }
    let end = i.min(bytes.len());
    (end > start).then_some(start..end)
}

/// The inside of `\"…\"` (a string within an escaped JSON string).
fn escaped_quoted(text: &str, at: usize) -> Option<Range<usize>> {
    let q = &text[at..at + 2];
    let start = at + 2;
    let end = text[start..].find(q).map_or_else(
        || text[start..].find('\n').map_or(text.len(), |e| start + e),
        |e| start + e,
    );
    (end > start).then_some(start..end)
}

/// A YAML block scalar (`key: |` and indented lines after it).
fn yaml_block(text: &str, line_start_hint: usize, at: usize) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    // The header is `|` or `>` and a few indicator characters.
    let header_end =
        memchr::memchr(b'\n', &bytes[at..(at + 16).min(bytes.len())]).map(|e| at + e)?;
    let header = &text[at + 1..header_end];
    if !header
        .trim()
        .chars()
        .all(|c| matches!(c, '-' | '+' | '0'..='9'))
    {
        return None;
    }
    let key_line_start = text[..line_start_hint].rfind('\n').map_or(0, |p| p + 1);
    let key_indent = bytes[key_line_start..]
        .iter()
        .take_while(|b| **b == b' ')
        .count();
    let mut end = header_end + 1;
    let start = end;
    let mut last_content = None;
    let limit = (start + MAX_VALUE).min(text.len());
    while end < limit {
        let line_end = text[end..].find('\n').map_or(text.len(), |e| end + e);
        let line = &text[end..line_end];
        let indent = line.bytes().take_while(|b| *b == b' ').count();
        if !line.trim().is_empty() && indent <= key_indent {
            break;
        }
        if !line.trim().is_empty() {
            last_content = Some(line_end);
        }
        end = line_end + 1;
    }
    let end = last_content?;
    let first = start + text[start..end].len() - text[start..end].trim_start().len();
    (first < end).then_some(first..end)
}

/// `span` without a leading authorization scheme (`Bearer …`). With `any`
/// (an `Authorization` header) any first word of a several-word value is
/// the scheme; else only the known schemes.
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
