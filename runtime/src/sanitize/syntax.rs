//! Reading gitleaks' expressions: what RE2 (Go) writes differently from
//! the regex crate, and how far a match can reach. Also compiled into
//! `build.rs`, which works out the reach of the vendored rules once, at
//! build time; it uses nothing of the crate.

use std::borrow::Cow;

/// `expression` in the regex crate's syntax. RE2 as Go has it reads a `{`
/// that does not open a repetition (`{{[^}]+}}`) as a literal brace; the
/// regex crate rejects it, so such a brace is escaped. Everything else in
/// the vendored rules means the same to both.
pub fn from_go(expression: &str) -> Cow<'_, str> {
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

/// The end gitleaks' generated rules put after the secret's group: a
/// quote, a space, `;`, an escaped line break, or the end of the text.
const SECRET_SUFFIX: &str = r#"(?:[\x60'"\s;]|\\[nr]|$)"#;

/// How much text past its start a search must see to find every match of
/// `expression` that starts there, so a search around a keyword can stop
/// there when it finds nothing:
/// - the longest match, when the expression bounds it;
/// - for gitleaks' generated shape, `<bounded prefix>(<secret>)` then
///   [`SECRET_SUFFIX`], the prefix plus 256 bytes: a secret that runs on
///   past the cut still matches there (the suffix takes the end of the
///   text), which sends the search back to the whole line;
/// - else `None`: the search reads to the end of the line.
pub fn reach(expression: &str) -> Option<usize> {
    let parse = |e: &str| {
        regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(e)
            .ok()
    };
    let whole = parse(expression)?;
    if let Some(longest) = whole.properties().maximum_len() {
        return Some(longest);
    }
    let body = expression.strip_suffix(SECRET_SUFFIX)?;
    let group = last_top_level_group(body)?;
    let secret = &body[group..];
    if !secret.ends_with(')') || !ends_open(secret) {
        return None;
    }
    let prefix = parse(&body[..group])?;
    Some(prefix.properties().maximum_len()? + 256)
}

/// Whether every unbounded repetition in `group` ends its alternative
/// (`[a-z0-9+/]{11,}={0,3})`): cut anywhere in that run, the rest still
/// matches nothing and the suffix the end of the text. `\.` after a run
/// (`ey…{17,}\.ey…`, a JWT) does not.
fn ends_open(group: &str) -> bool {
    let bytes = group.as_bytes();
    let mut i = 0;
    let mut class = false;
    while i < bytes.len() {
        if class {
            match bytes[i] {
                b'\\' => i += 1,
                b']' => class = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let unbounded_end = match bytes[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'[' => {
                class = true;
                // A `]` right after `[` or `[^` is a literal.
                if bytes.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if bytes.get(i + 1) == Some(&b']') {
                    i += 1;
                }
                None
            }
            b'+' | b'*' if i > 0 && bytes[i - 1] != b'(' => Some(i + 1),
            b'{' => {
                let rest = &group[i + 1..];
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                (digits > 0 && rest[digits..].starts_with(",}")).then_some(i + digits + 3)
            }
            _ => None,
        };
        if let Some(after) = unbounded_end {
            let mut rest = &group[after..];
            // Lazy or possessive marks, then optional padding (`={0,3}`).
            rest = rest.trim_start_matches(['?', '+']);
            for pad in ["[=]", "="] {
                if let Some(r) = rest.strip_prefix(pad) {
                    if let Some(r) = r.strip_prefix("{0,") {
                        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
                        if r[digits..].starts_with('}') {
                            rest = &r[digits + 1..];
                        }
                    }
                }
            }
            if !(rest.starts_with(')') || rest.starts_with('|')) {
                return false;
            }
        }
        i += 1;
    }
    true
}

/// Where the last group at the top level of `expression` opens.
fn last_top_level_group(expression: &str) -> Option<usize> {
    let bytes = expression.as_bytes();
    let (mut depth, mut class, mut last) = (0usize, false, None);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'[' if !class => {
                class = true;
                if bytes.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if bytes.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if class => class = false,
            b'(' if !class => {
                if depth == 0 {
                    last = Some(i);
                }
                depth += 1;
            }
            b')' if !class => depth = depth.checked_sub(1)?,
            _ => {}
        }
        i += 1;
    }
    last
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_brace_that_opens_no_repetition_is_a_literal() {
        assert_eq!(from_go(r"a{2}b{1,}c{1,3}"), r"a{2}b{1,}c{1,3}");
        assert_eq!(from_go(r"\$?{{[^}]+}}"), r"\$?\{\{[^}]+}}");
        assert_eq!(from_go(r"[{]x{"), r"[{]x\{");
    }

    #[test]
    fn reach_bounds_only_what_a_cut_cannot_hide() {
        assert_eq!(reach(r"ab{2,3}"), Some(4));
        // gitleaks' generic shape: a bounded prefix, a secret whose
        // unbounded run ends it, the suffix that takes the end of the text.
        let generic =
            format!(r"(?i)[\w.-]{{0,50}}?(?:key)[=:]([a-z0-9+/]{{11,}}={{0,3}}){SECRET_SUFFIX}");
        assert_eq!(reach(&generic), Some(50 + 3 + 1 + 256));
        // A run followed by more (a JWT's first part): a cut would hide it.
        let jwt = format!(r"\b(ey[a-z0-9]{{17,}}\.ey[a-z0-9]{{17,}}){SECRET_SUFFIX}");
        assert_eq!(reach(&jwt), None);
        assert_eq!(reach(r"a+b"), None);
        // A `+` in a class is no repetition.
        let class = format!(r"x=([a-z+/]{{4,}}){SECRET_SUFFIX}");
        assert_eq!(reach(&class), Some(2 + 256));
    }
}
