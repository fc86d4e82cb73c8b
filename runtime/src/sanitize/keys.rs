//! Which names hold secrets: a field of an event, a key in `key=value`, a
//! header, a flag. A name is split into words (`db_password`, `X-Api-Key`,
//! `clientSecret`, `AWS_SECRET_ACCESS_KEY`) and read word by word, so that
//! `api_key` is a secret and `api_key_id`, `primary_key` and `tokenizer`
//! are not.

use super::SanitizeError;

/// Words that make a name a secret key wherever they stand in it, unless
/// the word after them says the value only describes the secret
/// (`password_policy`, `token_type`, `secret_name`).
pub const DEFAULT_KEYS: &[&str] = &[
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "passcode",
    "pwd",
    "pass",
    "secret",
    "secrets",
    "token",
    "credential",
    "credentials",
    "creds",
    "cookie",
    "cookies",
    "authorization",
    "dsn",
    "jwt",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "clientsecret",
    "authtoken",
    "accesstoken",
    "refreshtoken",
    "sessiontoken",
    "connectionstring",
    "connstr",
];

/// Endings that make a glued word a secret key (`dbpassword`,
/// `accesstoken`, `xapikey`).
const GLUED: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "credentials",
];

/// Words after a secret word that make the name describe the secret, not
/// hold it: `token_type`, `password_length`, `secret_name`, `api_key_id`.
const METADATA: &[&str] = &[
    "id",
    "ids",
    "name",
    "names",
    "type",
    "types",
    "kind",
    "length",
    "len",
    "size",
    "count",
    "num",
    "number",
    "url",
    "uri",
    "urls",
    "endpoint",
    "endpoints",
    "file",
    "files",
    "path",
    "paths",
    "dir",
    "location",
    "expiry",
    "expires",
    "expiration",
    "exp",
    "ttl",
    "age",
    "lifetime",
    "policy",
    "policies",
    "field",
    "fields",
    "format",
    "version",
    "prompt",
    "required",
    "enabled",
    "enable",
    "disabled",
    "changed",
    "change",
    "reset",
    "min",
    "max",
    "minimum",
    "maximum",
    "regex",
    "pattern",
    "env",
    "var",
    "label",
    "hint",
    "timeout",
    "limit",
    "limits",
    "provider",
    "source",
    "algorithm",
    "alg",
    "usage",
    "store",
    "storetype",
    "vault",
    "manager",
    "service",
    "generator",
    "rotation",
    "rotated",
    "valid",
    "validation",
    "validator",
    "strength",
    "complexity",
    "history",
    "last",
    "updated",
    "created",
    "at",
    "duration",
    "state",
    "status",
    "mode",
    "rule",
    "rules",
    "schema",
    "spec",
    "ref",
    "reference",
    "arn",
    "alias",
    "index",
    "pair",
    "ring",
    "board",
    "stone",
    "word",
    "code",
    "press",
    "pressed",
    "up",
    "down",
    "left",
    "right",
    "frame",
    "selector",
    "signature",
    "tab",
    "mesh",
    "chain",
    "hash",
    "is",
    "has",
    "set",
    "flag",
    "mask",
    "len",
    "char",
    "chars",
    "characters",
    "bytes",
    "bits",
    "error",
    "errors",
    "input",
    "output",
    "box",
    "button",
    "dialog",
    "form",
    "page",
    "link",
    "template",
    "check",
    "checker",
    "strategy",
    "holder",
    "meshing",
    "signatures",
    "selectors",
    "exchange",
    "vault",
];

/// Words before any secret word that make it something public or
/// short-lived by design: `public_token` (Plaid), `csrf_token`,
/// `next_page_token`.
const NOT_SECRET_BEFORE: &[&str] = &[
    "public",
    "pub",
    "csrf",
    "xsrf",
    "authenticity",
    "next",
    "page",
    "continuation",
    "cancellation",
];

/// Words after which the rest of a name is what the value is for, not
/// what it is: `keyVaultToStoreSecrets`, `pathToPassword`.
const PREPOSITIONS: &[&str] = &["to", "for", "of", "from", "with", "in", "by"];

/// Glued words that end like a secret word but name something else.
const NOT_GLUED: &[&str] = &["jsonwebtoken"];

/// Words before `key` that make it an identifier, not a secret:
/// `primary_key`, `public_key`, `cache_key`, `partition_key`.
const NOT_SECRET_KEY: &[&str] = &[
    "public",
    "pub",
    "primary",
    "foreign",
    "sort",
    "partition",
    "cache",
    "idempotency",
    "routing",
    "bucket",
    "natural",
    "schema",
    "sequence",
    "hot",
    "idx",
    "index",
    "row",
    "map",
    "dict",
    "hash",
    "range",
    "lookup",
    "object",
    "dedup",
    "dedupe",
    "unique",
    "composite",
    "surrogate",
    "shard",
    "group",
    "message",
    "event",
    "trace",
    "correlation",
    "registry",
    "sort",
    "foreign",
    "local",
    "global",
    "redis",
    "s3",
    "storage",
    "file",
    "config",
    "setting",
    "settings",
    "translation",
    "i18n",
    "label",
    "metric",
    "metrics",
    "label",
    "json",
    "dict",
    "hotkey",
    "short",
    "shortcut",
    "keyboard",
    "mapping",
    "record",
    "entity",
    "column",
    "field",
    "table",
    "item",
    "list",
    "the",
    "a",
    "this",
    "next",
    "prev",
    "last",
    "first",
];

/// Words that make a name a secret only when the value looks random
/// (`key=3fa8c0…`, `auth=…`, `sig=…` of a shared access signature), never
/// a plain word. A message's `signature` proves, it does not grant: not
/// listed.
const WEAK: &[&str] = &["key", "keys", "auth", "sig", "session", "access"];

/// How sure a name is to hold a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strength {
    /// Any value under it is a secret (`password`, `api_key`).
    Strong,
    /// A value under it is a secret when it looks random (`key`, `auth`).
    Weak,
}

/// The built-in secret words and a configuration's extra keys.
#[derive(Clone, Debug, Default)]
pub(crate) struct Keys {
    /// Each extra key as its words.
    extra: Vec<Vec<String>>,
}

impl Keys {
    /// The built-in words plus `extra` keys (checked with [`check_key`]).
    pub(crate) fn new(extra: &[&str]) -> Result<Keys, SanitizeError> {
        let mut words_of = Vec::new();
        for key in extra {
            check_key(key)?;
            words_of.push(words(key));
        }
        Ok(Keys { extra: words_of })
    }

    /// The last word of every extra key: what the prefilter looks for.
    pub(crate) fn extra_words(&self) -> impl Iterator<Item = &str> {
        self.extra
            .iter()
            .filter_map(|w| w.last().map(String::as_str))
    }

    /// How sure `key` is to name a secret; `None` when it is not one.
    pub(crate) fn classify(&self, key: &str) -> Option<Strength> {
        self.classify_words(&words(key))
    }

    /// [`Keys::classify`] for a key already split by [`words`].
    pub(crate) fn classify_words(&self, words: &[String]) -> Option<Strength> {
        if words.is_empty() {
            return None;
        }
        if self.extra.iter().any(|extra| matches_words(words, extra)) {
            return Some(Strength::Strong);
        }
        let mut found = None;
        for (i, word) in words.iter().enumerate() {
            let next = words.get(i + 1).map(String::as_str);
            let prev = i.checked_sub(1).map(|p| words[p].as_str());
            if PREPOSITIONS.contains(&word.as_str()) {
                break;
            }
            if next.is_some_and(|n| METADATA.contains(&n))
                || prev.is_some_and(|p| NOT_SECRET_BEFORE.contains(&p))
            {
                continue;
            }
            let word = word.as_str();
            // Two words that are one secret word glued (`connection_string`).
            let glued = |n: &str| {
                DEFAULT_KEYS.iter().any(|k| {
                    k.len() == word.len() + n.len() && k.starts_with(word) && k.ends_with(n)
                })
            };
            if next.is_some_and(glued)
                && !words
                    .get(i + 2)
                    .is_some_and(|n| METADATA.contains(&n.as_str()))
            {
                return Some(Strength::Strong);
            }
            let strong = DEFAULT_KEYS.contains(&word)
                || (GLUED.iter().any(|g| word.ends_with(g)) && !NOT_GLUED.contains(&word));
            if strong {
                return Some(Strength::Strong);
            }
            if matches!(word, "key" | "keys") {
                match prev {
                    Some(p) if NOT_SECRET_KEY.contains(&p) => continue,
                    Some(_) => return Some(Strength::Strong),
                    None => {}
                }
            }
            // `session` alone or last (`php_session`) is a session cookie;
            // `session_id` and friends were skipped above.
            if word == "session" && next.is_none() {
                return Some(Strength::Strong);
            }
            if WEAK.contains(&word) {
                found = Some(Strength::Weak);
            }
        }
        found
    }
}

/// `extra`'s words appear in a row in `words`, or glued into one word
/// (`apikey`, `ApiKey` for `api_key`).
fn matches_words(words: &[String], extra: &[String]) -> bool {
    let glued = extra.concat();
    words.windows(extra.len()).any(|w| w == extra)
        || words.contains(&glued)
        || (0..words.len()).any(|i| words[i..].concat() == glued)
}

/// Splits a key into lowercase words at `_`, `-`, `.`, other punctuation
/// and camel humps.
pub(crate) fn words(key: &str) -> Vec<String> {
    if key.is_ascii() {
        ascii_words(key)
    } else {
        any_words(key)
    }
}

/// [`words`] of any key, a character at a time.
fn any_words(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
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

/// [`words`] of an ASCII key, a byte at a time: every key the key/value
/// finder reads goes through here, and most are ASCII.
fn ascii_words(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = None;
    let mut prev_lower = false;
    let mut push = |from: usize, to: usize| {
        let mut word = key[from..to].to_owned();
        word.make_ascii_lowercase();
        out.push(word);
    };
    for (i, &b) in key.as_bytes().iter().enumerate() {
        if !b.is_ascii_alphanumeric() {
            if let Some(from) = start.take() {
                push(from, i);
            }
            prev_lower = false;
            continue;
        }
        if b.is_ascii_uppercase() && prev_lower {
            if let Some(from) = start.replace(i) {
                push(from, i);
            }
        }
        start.get_or_insert(i);
        prev_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
    }
    if let Some(from) = start {
        push(from, key.len());
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

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The byte-at-a-time split is the character-at-a-time one, for
        /// every ASCII key.
        #[test]
        fn ascii_keys_split_as_any_key_does(key in "[ -~]{0,40}") {
            proptest::prop_assert_eq!(ascii_words(&key), any_words(&key));
        }
    }

    #[test]
    fn keys_split_into_words() {
        assert_eq!(words("X-Api-Key"), ["x", "api", "key"]);
        assert_eq!(words("clientSecret"), ["client", "secret"]);
        assert_eq!(words("db_password2"), ["db", "password2"]);
        assert_eq!(words("$adafruitToken"), ["adafruit", "token"]);
        assert_eq!(
            words("AWS_SECRET_ACCESS_KEY"),
            ["aws", "secret", "access", "key"]
        );
    }

    #[test]
    fn names_are_read_word_by_word() {
        let keys = Keys::new(&[]).unwrap();
        for key in [
            "password",
            "db_password",
            "dbPassword",
            "X-Api-Key",
            "apikey",
            "ApiKey",
            "clientSecret",
            "session.token",
            "Authorization",
            "set-cookie",
            "AWS_SECRET_ACCESS_KEY",
            "refresh_token",
            "encryption_key",
            "private-key",
            "GITHUB_TOKEN",
            "passwd",
            "pwd",
            "dsn",
            "connection_string",
            "credentials",
            "session",
            "adafruitToken",
            "DB_PASS",
            "signing_key",
        ] {
            assert_eq!(keys.classify(key), Some(Strength::Strong), "{key}");
        }
        for key in ["key", "auth", "sig", "access"] {
            assert_eq!(keys.classify(key), Some(Strength::Weak), "{key}");
        }
        for key in [
            "tokenizer",
            "passport",
            "secretary",
            "keyboard",
            "author",
            "cookies_enabled_count",
            "monkey",
            "passwords_policy",
            "api_key_id",
            "primary_key",
            "public_key",
            "token_type",
            "secret_name",
            "password_length",
            "session_id",
            "max_tokens",
            "cache_key",
            "keyId",
            "bypass",
            "compass",
            "keyVaultToStoreSecrets",
            "publicToken",
            "csrf_token",
            "next_page_token",
            "BlindKeySignatures",
            "jsonwebtoken",
        ] {
            assert_eq!(keys.classify(key), None, "{key}");
        }
    }
}
