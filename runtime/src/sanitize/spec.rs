//! A credential rule set as gitleaks' TOML describes it, before anything is
//! compiled. The build script reads the vendored file into these types (and
//! writes them out as Rust), and a user's rule file is read into them at run
//! time, so both go through one compiler.
//!
//! This file is also compiled into `build.rs`: it uses nothing of the crate.

/// Which text an allowlist's regular expressions are matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The secret the rule found (gitleaks' default).
    Secret,
    /// The whole match of the rule's expression.
    Match,
    /// The line(s) the match is on.
    Line,
}

/// An allowlist: a finding it matches is not a secret.
#[derive(Clone, Debug, PartialEq)]
pub struct AllowlistSpec {
    /// What `regexes` are matched against.
    pub target: Target,
    /// `true` when every kind of check present must allow (`condition =
    /// "AND"`); else any one does.
    pub all: bool,
    /// Expressions that allow what they match.
    pub regexes: Vec<String>,
    /// Words that allow a secret containing one of them (case-insensitive).
    pub stopwords: Vec<String>,
}

/// One rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// The rule's id (`github-pat`).
    pub id: String,
    /// The expression that finds the credential (RE2 syntax).
    pub regex: String,
    /// The capture group holding the secret; 0 means the first group that
    /// matched anything, or the whole match if there is no group.
    pub secret_group: usize,
    /// The Shannon entropy, in bits per character, a secret must exceed;
    /// 0 checks nothing.
    pub entropy: f64,
    /// Words one of which must be in the text for the rule to run; none
    /// means it always runs.
    pub keywords: Vec<String>,
    /// Findings to let through.
    pub allowlists: Vec<AllowlistSpec>,
    /// What its expression allows (`syntax::shape`), when already known;
    /// `None`: work it out when compiling.
    pub shape: Option<super::syntax::Shape>,
}

/// A rule file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleFileSpec {
    /// Its rules that can match text (path-only rules are left out).
    pub rules: Vec<RuleSpec>,
    /// Its global allowlists, applied to every rule's findings.
    pub allowlists: Vec<AllowlistSpec>,
}
