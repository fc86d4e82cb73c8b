//! Private-key blocks (PEM, PGP, OpenSSH): the body between the armour
//! lines is the secret, and the armour stays for the reader.

use std::ops::Range;

use super::Forms;
use crate::sanitize::{By, Found, REDACTED};

impl Forms {
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
            let body = text[span.clone()].replace(REDACTED, "");
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
