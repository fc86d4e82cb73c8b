//! The sanitizer from configuration: extra keys, patterns and a rule file
//! in gitleaks' format apply on a reload; a bad pattern or a rule whose
//! expression does not compile is rejected with its name, and the
//! sanitizer in force stays. The sanitizer is process-wide: nothing else in
//! this binary reads it.

use poolscope::config::{Config, Live};
use poolscope::sanitize::{sanitize, RuleSet, SanitizeError};

fn rule_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("poolscope-sanitize-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const ACME: &str = r#"
title = "acme rules"

[[rules]]
id = "acme-api-key"
description = "An ACME API key."
regex = '''\b(acme_[a-z0-9]{24})\b'''
entropy = 3.0
keywords = ["acme_"]

[[rules.allowlists]]
regexes = ['''^acme_0{24}$''']
"#;

#[test]
fn a_rule_file_patterns_and_keys_apply_on_reload_and_bad_ones_are_refused() {
    let line = "using acme_q8w7e6r5t4y3u2i1o9p0a8s7 card 4111111111111111 pin=9931 \
                and acme_000000000000000000000000";
    assert_eq!(sanitize(line), line, "nothing of this is a built-in secret");

    let path = rule_file("acme.toml", ACME);
    let config = Config::from_toml(&format!(
        "[sanitizer]\nextra_keys = [\"pin\"]\nextra_patterns = ['card (?P<secret>\\d{{16}})']\nrules_file = {:?}\n",
        path.display().to_string()
    ))
    .expect("a valid configuration");
    Live::new().apply(&config).expect("applied");
    assert_eq!(
        sanitize(line),
        "using [REDACTED] card [REDACTED] pin=[REDACTED] and acme_000000000000000000000000",
        "the allowlist of the file's rule lets its placeholder through"
    );

    // A rule that does not compile: refused, naming the rule; the rules in
    // force stay.
    let bad = rule_file(
        "bad.toml",
        "[[rules]]\nid = \"broken-rule\"\nregex = '''(unclosed'''\nkeywords = [\"x\"]\n",
    );
    let err = Config::from_toml(&format!(
        "[sanitizer]\nrules_file = {:?}\n",
        bad.display().to_string()
    ))
    .and_then(|c| Live::new().apply(&c))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("sanitizer.rules_file") && err.contains("broken-rule"),
        "{err}"
    );
    assert!(
        sanitize(line).starts_with("using [REDACTED]"),
        "the rules in force stay"
    );

    let err = Config::from_toml("[sanitizer]\nextra_patterns = ['(']\n")
        .and_then(|c| Live::new().apply(&c))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sanitizer.extra_patterns"), "{err}");

    let err = Config::from_toml("[sanitizer]\nrules_file = \"/nonexistent/rules.toml\"\n")
        .and_then(|c| Live::new().apply(&c))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/rules.toml"), "{err}");

    // A device that never ends is refused, not read.
    let err = Config::from_toml("[sanitizer]\nrules_file = \"/dev/zero\"\n")
        .and_then(|c| Live::new().apply(&c))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn a_rule_file_is_checked_rule_by_rule() {
    assert!(matches!(
        RuleSet::from_toml("[[rules]]\nid = \"g\"\nregex = '''a'''\nsecretGroup = 2\n"),
        Err(SanitizeError::Rule { rule, .. }) if rule == "g"
    ));
    assert!(matches!(
        RuleSet::from_toml("[[rules]]\nregex = '''a'''\n"),
        Err(SanitizeError::Rules(reason)) if reason.contains("rules[0]")
    ));
    assert!(matches!(
        RuleSet::from_toml("[[rules]]\nid = \"e\"\nregex = 5\n"),
        Err(SanitizeError::Rules(reason)) if reason.contains("rule `e`") && reason.contains("regex")
    ));
    assert!(matches!(
        RuleSet::from_toml("not toml ["),
        Err(SanitizeError::Rules(_))
    ));
    let rules = RuleSet::from_toml(ACME).unwrap();
    assert_eq!(rules.ids().collect::<Vec<_>>(), ["acme-api-key"]);
    // The vendored file itself reads as a rule file: the format is the same.
    let vendored = RuleSet::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runtime/rules/gitleaks/gitleaks.toml"
    ))
    .unwrap();
    assert!(vendored.len() >= 220, "{}", vendored.len());
}
