//! Secrets found by where they stand rather than by what they look like: a
//! value under a secret key in any syntax a log line carries (`key=value`,
//! `key: value`, `key := "value"`, JSON, YAML blocks, XML, Debug output,
//! command-line flags), URL userinfo, private-key blocks, authorization
//! schemes. Each finder returns the byte range of the secret alone, so the
//! key, quotes and separators stay for the reader.
//!
//! `pairs` reads the values under keys (and `values` a value wherever one
//! starts), `blocks` private-key blocks, `placeholder` what only stands for
//! a secret. URL userinfo, authorization schemes and database clients'
//! command lines, each one expression over its keywords' lines, are here.

use std::ops::Range;

use regex::Regex;

use super::keys::Keys;
use super::rules::entropy;
use super::SanitizeError;
use super::{By, Found};

mod blocks;
mod pairs;
mod placeholder;
mod values;

use values::{value_at, Style};

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
            placeholder: compile("placeholder", placeholder::PLACEHOLDER)?,
            keys,
        })
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
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
