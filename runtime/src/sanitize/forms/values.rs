//! Reading a value where a finder says one starts: quoted (in every quoting
//! a log line carries), a YAML block, a reference read whole, or unquoted
//! up to where its syntax ends it.

use std::ops::Range;

/// The most of a line a value is read from (a longer value is cut there,
/// and the rest of it left as it is).
const MAX_VALUE: usize = 64 * 1024;

/// How far an unquoted value runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Style {
    /// `key=value`: to the next space (logfmt, query strings).
    Token,
    /// `key: value`, `key = value`: to the end of the line or the next
    /// `key=`, so `passphrase: correct horse battery` is one value.
    Line,
    /// A cookie header: every pair to the end of the line is a session.
    Header,
}

/// Where a value starting at `at` lies, inside its quotes if quoted.
pub(super) fn value_at(
    text: &str,
    at: usize,
    style: Style,
    enclosing: Option<char>,
    tuple: bool,
) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let i = past_wrappers(bytes, at);
    let quote_at = string_start(bytes, i);
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
    let line_end = line_end(text, i);
    if let Some(span) = reference(text, i, line_end) {
        return Some(span);
    }
    Unquoted {
        text,
        line_end,
        style,
        enclosing,
    }
    .span(i)
}

/// `at` past Debug wrappers: `Some("…")`, `String("…")`, `Secret("…")`.
fn past_wrappers(bytes: &[u8], at: usize) -> usize {
    let mut i = at;
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
    i
}

/// Where the quote of a string at `i` is, past a string prefix: b"…",
/// r'…', f"…", rb"…". `i` when there is none.
fn string_start(bytes: &[u8], i: usize) -> usize {
    let prefix = bytes[i..]
        .iter()
        .take(2)
        .take_while(|b| b"bBrRuUfF".contains(b))
        .count();
    if prefix > 0 && matches!(bytes.get(i + prefix), Some(b'"' | b'\'')) {
        i + prefix
    } else {
        i
    }
}

/// Where the line of a value at `i` ends. Only the value's own line is
/// read, and no more than `MAX_VALUE` of it: many keys on one long line
/// must not each read to its end.
fn line_end(text: &str, i: usize) -> usize {
    let bytes = text.as_bytes();
    let limit = (i + MAX_VALUE).min(bytes.len());
    let line_end = memchr::memchr2(b'\n', b'\r', &bytes[i..limit]).map_or(limit, |e| i + e);
    text.floor_char_boundary(line_end)
}

/// A reference at `i` (`${VAR}`, `{{ .Values.x }}`, `$(cmd)`), read whole,
/// so its closing bracket does not cut it into something that no longer
/// looks like one.
fn reference(text: &str, i: usize, line_end: usize) -> Option<Range<usize>> {
    for (open, close) in [("${", "}"), ("{{", "}}"), ("$(", ")"), ("{", "}")] {
        if text[i..line_end].starts_with(open) {
            if let Some(e) = text[i + open.len()..line_end].find(close) {
                return Some(i..i + open.len() + e + close.len());
            }
        }
    }
    None
}

/// An unquoted value: the line it is on and what ends it.
struct Unquoted<'t> {
    text: &'t str,
    /// Where the value's line ends (see [`line_end`]).
    line_end: usize,
    style: Style,
    /// The quote around the whole pair, if any.
    enclosing: Option<char>,
}

impl Unquoted<'_> {
    /// The value that starts at `i`; `None` when it is empty.
    #[inline]
    fn span(&self, i: usize) -> Option<Range<usize>> {
        let mut end = self.word_end(i);
        if end == i {
            return None;
        }
        if self.style == Style::Line {
            end = self.more_words(end);
        }
        Some(i..end)
    }

    /// Where the run of the value's bytes from `from` stops.
    #[inline]
    fn word_end(&self, from: usize) -> usize {
        let mut end = from;
        while end < self.line_end && !self.stops(end) {
            end += 1;
        }
        end
    }

    /// Whether the byte at `at` ends the value.
    #[inline]
    fn stops(&self, at: usize) -> bool {
        let bytes = self.text.as_bytes();
        let b = bytes[at];
        if self.enclosing.is_some_and(|q| b == q as u8) {
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
        match self.style {
            Style::Header => false,
            // `&` joins query parameters; in a `key: value` line it is part
            // of the value (`Tr0ub4dor&3`).
            Style::Token => b",;&)}]".contains(&b) || b.is_ascii_whitespace(),
            Style::Line => b",;)}]".contains(&b) || b.is_ascii_whitespace(),
        }
    }

    /// `end` moved past more words, while the next is not a new `key=` or
    /// `--flag`.
    #[inline]
    fn more_words(&self, mut end: usize) -> usize {
        let bytes = self.text.as_bytes();
        loop {
            let gap = bytes[end..self.line_end]
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            let word_start = end + gap;
            if gap == 0 || word_start >= self.line_end {
                break;
            }
            let word_end = self.word_end(word_start);
            let word = &self.text[word_start..word_end];
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
        end
    }
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
