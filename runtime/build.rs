//! Turns the vendored gitleaks rule set (`rules/gitleaks/gitleaks.toml`) into
//! Rust, so a process parses no TOML to get its default sanitizer rules and
//! a malformed vendored file fails the build rather than a log line. The
//! reader is the one the crate uses for a user's rule file.

use std::fmt::Write as _;
use std::path::PathBuf;

#[path = "src/sanitize/spec.rs"]
#[allow(dead_code)]
mod spec;
#[path = "src/sanitize/spec_toml.rs"]
mod spec_toml;
#[path = "src/sanitize/syntax.rs"]
#[allow(dead_code)]
mod syntax;

use spec::{AllowlistSpec, RuleFileSpec, Target};

const SOURCE: &str = "rules/gitleaks/gitleaks.toml";
const OWN: &str = "rules/poolscope.toml";
const VERSION: &str = "rules/gitleaks/VERSION";

fn main() {
    println!("cargo::rerun-if-changed={SOURCE}");
    println!("cargo::rerun-if-changed={VERSION}");
    println!("cargo::rerun-if-changed={OWN}");
    println!("cargo::rerun-if-changed=src/sanitize/spec.rs");
    println!("cargo::rerun-if-changed=src/sanitize/spec_toml.rs");
    println!("cargo::rerun-if-changed=src/sanitize/syntax.rs");
    let text = std::fs::read_to_string(SOURCE).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let file = spec_toml::parse(&text).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let version = std::fs::read_to_string(VERSION).unwrap_or_else(|e| panic!("{VERSION}: {e}"));
    let mut lines = version.lines().map(str::trim);
    let tag = lines.next().unwrap_or_default();
    let commit = lines.next().unwrap_or_default();

    let mut out = String::new();
    writeln!(out, "/// The gitleaks release the default rules come from.").unwrap();
    writeln!(out, "pub const GITLEAKS_VERSION: &str = {tag:?};").unwrap();
    writeln!(out, "/// The commit of that release.").unwrap();
    writeln!(out, "pub const GITLEAKS_COMMIT: &str = {commit:?};").unwrap();
    writeln!(out, "/// The vendored rule set.").unwrap();
    rule_file(&mut out, "gitleaks", &file);
    let own = std::fs::read_to_string(OWN).unwrap_or_else(|e| panic!("{OWN}: {e}"));
    let own = spec_toml::parse(&own).unwrap_or_else(|e| panic!("{OWN}: {e}"));
    writeln!(out, "/// poolscope's own rules.").unwrap();
    rule_file(&mut out, "own", &own);

    let path = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("gitleaks_rules.rs");
    std::fs::write(&path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// `fn <name>() -> RuleFileSpec` returning `file`.
fn rule_file(out: &mut String, name: &str, file: &RuleFileSpec) {
    writeln!(out, "pub(crate) fn {name}() -> RuleFileSpec {{").unwrap();
    writeln!(out, "RuleFileSpec {{ allowlists: vec![").unwrap();
    for list in &file.allowlists {
        allowlist(out, list);
    }
    writeln!(out, "], rules: vec![").unwrap();
    for rule in &file.rules {
        write!(
            out,
            "RuleSpec {{ id: {:?}.into(), regex: {:?}.into(), secret_group: {}, entropy: {:?}, keywords: strings(&{:?}), shape: Some({:?}), allowlists: vec![",
            rule.id,
            rule.regex,
            rule.secret_group,
            rule.entropy,
            rule.keywords,
            // Parsing every expression once more at run time would cost
            // a tenth of the sanitizer's build; here it costs nothing.
            syntax::shape(&syntax::from_go(&rule.regex), &rule.keywords),
        )
        .unwrap();
        for list in &rule.allowlists {
            allowlist(out, list);
        }
        writeln!(out, "] }},").unwrap();
    }
    writeln!(out, "] }}\n}}").unwrap();
}

fn allowlist(out: &mut String, list: &AllowlistSpec) {
    let target = match list.target {
        Target::Secret => "Target::Secret",
        Target::Match => "Target::Match",
        Target::Line => "Target::Line",
    };
    writeln!(
        out,
        "AllowlistSpec {{ target: {target}, all: {}, regexes: strings(&{:?}), stopwords: strings(&{:?}) }},",
        list.all, list.regexes, list.stopwords
    )
    .unwrap();
}
