//! Reading gitleaks' expressions: what RE2 (Go) writes differently from
//! the regex crate, how far a match can reach, and what a `[REDACTED]`
//! can do to one. Also compiled into `build.rs`, which works this out for
//! the vendored rules once, at build time; it uses nothing of the crate.

use std::borrow::Cow;

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// What the sanitizer needs to know of a rule's expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// See [`reach`].
    pub reach: Option<usize>,
    /// No match holds a `[` or `]`, and whether a stretch of text matches
    /// depends on nothing outside it but where the text starts and ends
    /// (no `\b`, no line anchors): a text changed only by `[REDACTED]`
    /// markers has no match the text before had not, but one inside a
    /// marker's letters.
    pub blind: bool,
    /// Every match holds one of the rule's keywords, at one place in the
    /// expression (`(?:key|secret|token)`): the search around that keyword
    /// finds it, however far other text moved.
    pub holds_keyword: bool,
    /// How far before a keyword it holds a match can start, at most, when
    /// that is bounded (`[\w.-]{0,50}?(?:key|secret)`: 56 bytes): the
    /// search around a keyword starts there and takes only a match that
    /// starts by the keyword.
    pub keyword_within: Option<usize>,
}

/// The [`Shape`] of `expression` (in the regex crate's syntax), a rule
/// with `keywords`.
pub fn shape(expression: &str, keywords: &[String]) -> Shape {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(expression)
        .ok();
    let Some(hir) = hir else {
        return Shape {
            reach: None,
            blind: false,
            holds_keyword: false,
            keyword_within: None,
        };
    };
    let looks = hir.properties().look_set();
    let plain = looks.remove(Look::Start).remove(Look::End).is_empty();
    let keywords: Vec<Vec<u8>> = keywords
        .iter()
        .map(|k| k.to_ascii_lowercase().into_bytes())
        .collect();
    let holds_keyword = !keywords.is_empty() && holds(&hir, &keywords);
    let keyword_within = if holds_keyword {
        within(&hir, &keywords)
    } else {
        None
    };
    Shape {
        reach: reach(expression),
        blind: plain && !can_hold(&hir, b'[') && !can_hold(&hir, b']'),
        holds_keyword,
        keyword_within,
    }
}

/// The most bytes a match of `hir` can run before a keyword it holds at a
/// place the expression fixes: what a bounded stretch before that place
/// can take, plus the place itself.
fn within(hir: &Hir, keywords: &[Vec<u8>]) -> Option<usize> {
    let items: &[Hir] = match hir.kind() {
        HirKind::Concat(items) => items,
        _ => std::slice::from_ref(hir),
    };
    let mut best: Option<usize> = None;
    let mut keep = |bound: usize| best = Some(best.map_or(bound, |b| b.min(bound)));
    let mut before = 0usize;
    for (from, item) in items.iter().enumerate() {
        if holds(item, keywords) {
            if let Some(len) = item.properties().maximum_len() {
                keep(before + len);
            }
        }
        if let Some(len) = keyword_run(&items[from..], keywords) {
            keep(before + len);
        }
        match item.properties().maximum_len() {
            Some(len) => before += len,
            None => break,
        }
    }
    best
}

/// The longest a match of the shortest run of `items`, from the first,
/// can be, when every way to spell that run holds one of `keywords`
/// (`None`: no such run, or one with too many spellings to tell).
fn keyword_run(items: &[Hir], keywords: &[Vec<u8>]) -> Option<usize> {
    let mut words = vec![Vec::new()];
    let mut len = 0;
    for piece in items {
        // Few spellings mean a bounded length.
        let next = spellings(piece, 4096)?;
        if words.len() * next.len() > 4096 {
            return None;
        }
        words = product(&words, &next);
        len += piece.properties().maximum_len()?;
        if spelled(&words, keywords) {
            return Some(len);
        }
    }
    None
}

/// Whether each of `words` holds one of `keywords`.
fn spelled(words: &[Vec<u8>], keywords: &[Vec<u8>]) -> bool {
    words
        .iter()
        .all(|w| keywords.iter().any(|k| contains(w, k)))
}

/// Whether every match of `hir` holds one of `keywords` (lowercase).
fn holds(hir: &Hir, keywords: &[Vec<u8>]) -> bool {
    let spelled = |words: &[Vec<u8>]| spelled(words, keywords);
    match hir.kind() {
        // The parser flattens `(?i)x(?:key)y` into one run of pieces: a
        // keyword is a stretch of them.
        HirKind::Concat(items) => {
            items.iter().any(|item| holds(item, keywords))
                || (0..items.len()).any(|from| keyword_run(&items[from..], keywords).is_some())
        }
        HirKind::Capture(c) => holds(&c.sub, keywords),
        HirKind::Repetition(r) if r.min > 0 => holds(&r.sub, keywords),
        HirKind::Alternation(items) => items.iter().all(|item| holds(item, keywords)),
        _ => spellings(hir, 4096).is_some_and(|words| spelled(&words)),
    }
}

/// Each of `heads` followed by each of `tails`.
fn product(heads: &[Vec<u8>], tails: &[Vec<u8>]) -> Vec<Vec<u8>> {
    heads
        .iter()
        .flat_map(|a| {
            tails.iter().map(move |b| {
                let mut s = a.clone();
                s.extend_from_slice(b);
                s
            })
        })
        .collect()
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether a match of `hir` can hold `byte`.
fn can_hold(hir: &Hir, byte: u8) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(l) => l.0.contains(&byte),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| (r.start()..=r.end()).contains(&byte)),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .any(|r| (r.start()..=r.end()).contains(&char::from(byte))),
        HirKind::Repetition(r) => r.max != Some(0) && can_hold(&r.sub, byte),
        HirKind::Capture(c) => can_hold(&c.sub, byte),
        HirKind::Concat(items) | HirKind::Alternation(items) => {
            items.iter().any(|h| can_hold(h, byte))
        }
    }
}

/// Every string `hir` matches, lowercased, when they are few (at most
/// `limit`) and each letter may be either case: `(?i)pass(?:wor)?d`
/// gives `passd` and `password`. `None` for a wider class, an assertion or
/// too many.
fn spellings(hir: &Hir, limit: usize) -> Option<Vec<Vec<u8>>> {
    let one = |b: u8| Some(vec![vec![b.to_ascii_lowercase()]]);
    match hir.kind() {
        HirKind::Empty => Some(vec![Vec::new()]),
        HirKind::Look(_) => None,
        HirKind::Literal(l) => Some(vec![l.0.to_ascii_lowercase()]),
        HirKind::Class(Class::Bytes(c)) => {
            let bytes: Vec<u8> = c.iter().flat_map(|r| r.start()..=r.end()).collect();
            match bytes.as_slice() {
                [b] => one(*b),
                [a, b] if a.eq_ignore_ascii_case(b) => one(*a),
                _ => None,
            }
        }
        HirKind::Class(Class::Unicode(c)) => {
            let chars: Vec<char> = c.iter().flat_map(|r| r.start()..=r.end()).take(3).collect();
            let byte = |c: char| u8::try_from(c).ok().filter(u8::is_ascii);
            match chars.as_slice() {
                [a] => one(byte(*a)?),
                [a, b] if a.eq_ignore_ascii_case(b) => one(byte(*a)?),
                _ => None,
            }
        }
        HirKind::Capture(c) => spellings(&c.sub, limit),
        HirKind::Alternation(items) => {
            let mut all = Vec::new();
            for item in items {
                all.extend(spellings(item, limit)?);
                if all.len() > limit {
                    return None;
                }
            }
            Some(all)
        }
        HirKind::Concat(items) => {
            let mut all = vec![Vec::new()];
            for item in items {
                let next = spellings(item, limit)?;
                if all.len() * next.len() > limit {
                    return None;
                }
                all = product(&all, &next);
            }
            Some(all)
        }
        HirKind::Repetition(r) => {
            let max = r.max?;
            if max > 3 {
                return None;
            }
            let sub = spellings(&r.sub, limit)?;
            let mut all = Vec::new();
            let mut run = vec![Vec::new()];
            for n in 0..=max {
                if n >= r.min {
                    all.extend(run.iter().cloned());
                }
                if all.len() * sub.len() > limit || run.len() * sub.len() > limit {
                    return None;
                }
                run = product(&run, &sub);
            }
            Some(all)
        }
    }
}

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
    fn shape_tells_what_a_marker_can_change() {
        let keywords = |k: &[&str]| k.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        let generic = format!(
            r#"(?i)[\w.-]{{0,50}}?(?:access|(?-i:[Aa]pi|API)|passw(?:or)?d|token)[\s'"]{{0,3}}[=:]([\w.=-]{{10,150}}){SECRET_SUFFIX}"#
        );
        let s = shape(
            &generic,
            &keywords(&["access", "api", "passwd", "password", "token"]),
        );
        assert_eq!(
            s,
            Shape {
                reach: reach(&generic),
                blind: true,
                holds_keyword: true,
                // `[\w.-]{0,50}?` then `password`, the longest spelling.
                keyword_within: Some(50 + 8),
            }
        );
        // Every spelling the expression takes must hold a keyword of the
        // rule: `passwd` holds none of these.
        assert!(!shape(&generic, &keywords(&["access", "api", "token"])).holds_keyword);
        // The keyword names the service; the match is the token alone.
        assert!(!shape(r"([0-9]{15}\|[a-z0-9]{27})", &keywords(&["facebook"])).holds_keyword);
        assert!(shape(r"(?i)facebook.{0,20}([0-9]{15})", &keywords(&["facebook"])).holds_keyword);
        // Inside a group, in a run of pieces the parser flattened.
        let azure = r"(?:^|[\s>=:(,)])([a-z0-9_~.]{3}\dQ~[a-z0-9_~.-]{31,34})(?:$|[\s<),])";
        assert!(shape(azure, &keywords(&["q~"])).holds_keyword);
        // The keyword is inside the group: the group's start is at most a
        // byte in, the keyword at most the group's length.
        assert_eq!(
            shape(azure, &keywords(&["q~"])).keyword_within,
            Some(1 + 3 + 1 + 2 + 34)
        );
        // No bound before the keyword: none.
        assert_eq!(
            shape(r"[a-z]*token=([a-z]{8})", &keywords(&["token"])).keyword_within,
            None
        );
        assert!(!shape(azure, &keywords(&["dq~"])).holds_keyword);
        // Each branch of an alternation holds one.
        assert!(shape(r"(?:token=|key:)([a-z]{8})", &keywords(&["token", "key"])).holds_keyword);
        assert!(!shape(r"(?:token=|k:)([a-z]{8})", &keywords(&["token", "key"])).holds_keyword);
        // A word boundary reads the byte next to a match; a class with
        // `]` takes a marker's end.
        assert!(!shape(r"\b(ghp_[a-z0-9]{36})\b", &keywords(&["ghp_"])).blind);
        assert!(!shape(r"(?m)^token=(\S+)$", &keywords(&["token"])).blind);
        assert!(!shape(r"token=([^\s]+)", &keywords(&["token"])).blind);
        assert!(shape(r"^token=([a-z]+)$", &keywords(&["token"])).blind);
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
