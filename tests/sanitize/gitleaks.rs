//! gitleaks' own rule tests as a table: every true-positive sample its rule
//! files build loses its secret; every false-positive sample comes back
//! unchanged, but for the few listed in `FP_CHANGES` with the reason.
//!
//! The table is `tests/data/gitleaks/samples.json`, generated from gitleaks'
//! `cmd/generate/config/rules/*.go` at the pinned release by
//! `scripts/gitleaks-samples` (which also vendors the rule set). A sample's
//! secret is the one its Go code passed in, or else what the rule's own
//! expression (read here from the vendored TOML, independently of the
//! sanitizer) captures, as gitleaks' detector picks it.

use std::collections::HashMap;

use poolscope::sanitize::{Sanitizer, GITLEAKS_COMMIT, GITLEAKS_VERSION};
use regex::bytes::{Regex, RegexBuilder};
use serde_json::Value;

/// False-positive samples that are changed on purpose: (rule, the sample,
/// why a log line is better off with it redacted).
///
/// Two kinds of changed sample need no entry, and are printed instead:
/// - one another gitleaks rule flags: a false positive of one rule is then
///   a true positive of the rule set (`Sanitizer::findings` names it);
/// - one gitleaks' Go code generated rather than wrote (`origin` is not
///   `literal`): a random value it puts under a secret's name
///   (`nonMatchingToken := "hh19t2dgs3sm19a6"`, `telegram_api_token =
///   "6071:Aszflp…"`) to show that one rule's *shape* rejects it. A log
///   line that says "token = <credential-like value>" loses the value.
///
/// The 3% bound is over the hand-written samples: gitleaks' maintainers'
/// own lines that hold no secret.
const FP_CHANGES: &[(&str, &str, &str)] = &[
    (
        "generic-api-key",
        ",apiKey:\"6fe4476ee5a1832882e326b506d14126\",",
        "a value under `apiKey` goes whatever it is; gitleaks lets this one through by a \
         stopword naming one public hash (yarnpkg/berry#6201), which a log line cannot know",
    ),
    (
        "mailchimp-api-key",
        "MailchimpSDK.initialize(token: 3012a5754bbd716926f99c028f7ea428-us18)",
        "a value with a Mailchimp key's shape under `token:`; gitleaks' rule only wants the \
         word `mailchimp` closer to it",
    ),
    (
        "sumologic-access-token",
        "-e SUMO_ACCESS_KEY=`etcdctl get /sumologic_secret`",
        "a shell command substitution reads as a Go raw string (`token := `…``), which must \
         go; both stand under an access key",
    ),
    (
        "sumologic-access-token",
        "SUMO_ACCESS_KEY: AbCeFG123",
        "nine characters under an access key are as long as many passwords; gitleaks' rule \
         wants Sumo Logic's own length",
    ),
];

fn samples() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/gitleaks/samples.json"
    ))
    .expect("tests/data/gitleaks/samples.json");
    serde_json::from_str(&text).expect("samples.json is JSON")
}

/// Each vendored rule's expression and secret group, read from the TOML.
fn rules() -> HashMap<String, (Regex, usize)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runtime/rules/gitleaks/gitleaks.toml"
    ))
    .expect("the vendored rule set");
    let table: toml::Table = text.parse().expect("TOML");
    let mut out = HashMap::new();
    for rule in table["rules"].as_array().expect("[[rules]]") {
        let (Some(id), Some(regex)) = (
            rule.get("id").and_then(|v| v.as_str()),
            rule.get("regex").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        // RE2 reads a brace that opens no repetition as a literal; the
        // regex crate wants it escaped (only `curl-auth-user` has one).
        let regex = regex.replace("{{", r"\{\{").replace("}}", r"\}\}");
        let regex = RegexBuilder::new(&regex)
            .unicode(false)
            .size_limit(32 << 20)
            .build()
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let group = rule
            .get("secretGroup")
            .and_then(|v| v.as_integer())
            .unwrap_or(0) as usize;
        out.insert(id.to_owned(), (regex, group));
    }
    out
}

/// The secrets gitleaks' expression for `rule` finds in `text`.
fn secrets_in(rule: &(Regex, usize), text: &str) -> Vec<String> {
    let (regex, group) = rule;
    regex
        .captures_iter(text.as_bytes())
        .filter_map(|c| {
            let m = if *group > 0 {
                c.get(*group)
            } else {
                (1..c.len())
                    .filter_map(|i| c.get(i))
                    .find(|m| !m.is_empty())
                    .or_else(|| c.get(0))
            }?;
            let s = String::from_utf8_lossy(m.as_bytes())
                .trim_matches('\n')
                .to_owned();
            (!s.is_empty()).then_some(s)
        })
        .collect()
}

#[test]
fn the_table_is_from_the_vendored_release() {
    let samples = samples();
    assert_eq!(samples["source"]["ref"], GITLEAKS_VERSION);
    assert_eq!(samples["source"]["commit"], GITLEAKS_COMMIT);
}

#[test]
fn no_true_positive_survives() {
    let samples = samples();
    let rules = rules();
    let sanitizer = Sanitizer::new();
    let mut checked = 0;
    let mut leaks = Vec::new();
    for sample in samples["samples"].as_array().unwrap() {
        // A rule that gitleaks runs on some files only (`nuget.config`,
        // Kubernetes YAML) runs on every text here: its samples count.
        if sample["kind"] != "tp" && sample["kind"] != "path_tp" {
            continue;
        }
        if sample["text"].as_str().is_none_or(str::is_empty) {
            continue;
        }
        let rule = sample["rule"].as_str().unwrap();
        let text = sample["text"].as_str().unwrap();
        let secrets: Vec<String> = match sample["secret"].as_str() {
            Some(secret) => vec![secret.to_owned()],
            None => rules
                .get(rule)
                .map(|r| secrets_in(r, text))
                .unwrap_or_default(),
        };
        let out = sanitizer.sanitize(text);
        checked += 1;
        if secrets.is_empty() {
            // The rule's expression (in the regex crate) finds nothing the
            // Go code says it finds: then at least something must go.
            if out == text {
                leaks.push(format!("{rule}: nothing redacted in {text:?}"));
            }
            continue;
        }
        for secret in secrets {
            // The secret's text may recur outside the secret (a key named
            // like its value); it must not survive more often than that.
            let outside = text.matches(secret.as_str()).count() - 1;
            if out.matches(secret.as_str()).count() > outside {
                leaks.push(format!("{rule}: {secret:?} survived in {out:?}"));
            }
        }
    }
    assert!(checked > 1000, "{checked} samples");
    assert!(
        leaks.is_empty(),
        "{} of {checked} true positives leak:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[test]
fn false_positives_come_back_unchanged() {
    let samples = samples();
    let sanitizer = Sanitizer::new();
    let gitleaks_ids: Vec<String> = rules().into_keys().collect();
    let mut total = 0;
    let mut by_other_rules = Vec::new();
    let mut generated = Vec::new();
    let mut changed = Vec::new();
    let mut unlisted = Vec::new();
    for sample in samples["samples"].as_array().unwrap() {
        if sample["kind"] != "fp" {
            continue;
        }
        let rule = sample["rule"].as_str().unwrap();
        let text = sample["text"].as_str().unwrap();
        let out = sanitizer.sanitize(text);
        if sample["origin"] != "literal" {
            if out != text {
                generated.push(format!("{rule}: {text:?}\n  -> {out:?}"));
            }
            continue;
        }
        total += 1;
        if out == text {
            continue;
        }
        let others: Vec<String> = sanitizer
            .findings(text)
            .into_iter()
            .map(|f| f.finder)
            .filter(|f| f != rule && gitleaks_ids.contains(f))
            .collect();
        if !others.is_empty() {
            by_other_rules.push(format!(
                "{rule}: {text:?} (gitleaks' {})",
                others.join(", ")
            ));
            continue;
        }
        changed.push(text.to_owned());
        if !FP_CHANGES.iter().any(|(r, t, _)| *r == rule && *t == text) {
            let finders: Vec<String> = sanitizer
                .findings(text)
                .into_iter()
                .map(|f| f.finder)
                .collect();
            unlisted.push(format!("{rule}: {text:?}\n  -> {out:?} by {finders:?}"));
        }
    }
    println!(
        "{total} hand-written false positives: {} changed on purpose, {} flagged by another gitleaks rule:\n{}",
        changed.len(),
        by_other_rules.len(),
        by_other_rules.join("\n")
    );
    println!(
        "{} generated false positives changed (a random value under a secret's name):\n{}",
        generated.len(),
        generated.join("\n")
    );
    assert!(total > 100, "{total} samples");
    assert!(
        unlisted.is_empty(),
        "{} of {total} false positives changed, unlisted:\n{}",
        unlisted.len(),
        unlisted.join("\n")
    );
    assert!(
        changed.len() * 100 <= total * 3,
        "{} of {total} false positives changed (at most 3%)",
        changed.len()
    );
    // Every listed change still happens: the list is not a stale excuse.
    for (rule, text, _) in FP_CHANGES {
        assert!(
            changed.iter().any(|c| c == text),
            "{rule}: {text:?} is no longer changed"
        );
    }
}

#[test]
fn sanitizing_any_sample_twice_changes_nothing() {
    let samples = samples();
    let sanitizer = Sanitizer::new();
    let mut unstable = Vec::new();
    for sample in samples["samples"].as_array().unwrap() {
        let text = sample["text"].as_str().unwrap();
        let once = sanitizer.sanitize(text).into_owned();
        let twice = sanitizer.sanitize(&once);
        if twice != once {
            unstable.push(format!("{text:?}\n  once:  {once:?}\n  twice: {twice:?}"));
        }
    }
    assert!(unstable.is_empty(), "{}", unstable.join("\n"));
}

/// The anchored searches near keywords, and the rechecks that leave out
/// rules a marker cannot wake, give on every sample, true positive or
/// false, what unanchored searches and full rechecks give.
#[test]
fn the_shortcuts_change_nothing_on_any_sample() {
    let samples = samples();
    let sanitizer = Sanitizer::new();
    let mut differ = Vec::new();
    for sample in samples["samples"].as_array().unwrap() {
        let text = sample["text"].as_str().unwrap();
        let fast = sanitizer.sanitize(text);
        let full = sanitizer.sanitize_in_full(text);
        if fast != full {
            differ.push(format!("{text:?}\n  fast: {fast:?}\n  full: {full:?}"));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

mod planted {
    //! Every credential family, planted in random surrounding text.

    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// (rule, text, secret) of every true positive whose secret is known.
    fn planted() -> &'static [(String, String, String)] {
        static PLANTED: OnceLock<Vec<(String, String, String)>> = OnceLock::new();
        PLANTED.get_or_init(|| {
            let rules = rules();
            samples()["samples"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["kind"] == "tp")
                .filter_map(|s| {
                    let rule = s["rule"].as_str()?.to_owned();
                    let text = s["text"].as_str()?.to_owned();
                    let secret = match s["secret"].as_str() {
                        Some(secret) => secret.to_owned(),
                        None => secrets_in(rules.get(&rule)?, &text).into_iter().next()?,
                    };
                    Some((rule, text, secret))
                })
                .collect()
        })
    }

    fn shared() -> &'static Sanitizer {
        static SANITIZER: OnceLock<Sanitizer> = OnceLock::new();
        SANITIZER.get_or_init(Sanitizer::new)
    }

    /// Log-like text with no secret: words, numbers, punctuation, breaks.
    fn filler() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            "(pool|worker|retry|queue|latency|ok|the|of|to|7|42|3.5ms|\\{|\\}|\\[|\\]|,|;|=|:|\"|'|\\n|\\t|-|/|#|\\(|\\))",
            0..16,
        )
        .prop_map(|w| w.join(" "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_planted_secret_of_any_family_never_survives(
            before in filler(),
            after in filler(),
            pick in any::<proptest::sample::Index>(),
            newline in any::<bool>(),
        ) {
            let planted = planted();
            let (rule, sample, secret) = &planted[pick.index(planted.len())];
            let gap = if newline { "\n" } else { " " };
            let text = format!("{before}{gap}{sample}{gap}{after}");
            let out = shared().sanitize(&text);
            let outside = text.matches(secret.as_str()).count() - sample.matches(secret.as_str()).count();
            prop_assert!(
                out.matches(secret.as_str()).count() <= outside,
                "{}: {:?} survived in {:?}", rule, secret, out
            );
            let again = shared().sanitize(&out);
            prop_assert_eq!(again.as_ref(), out.as_ref(), "not idempotent");
            // The searches after a redaction leave out the rules it cannot
            // make match: that must change nothing.
            let full = shared().sanitize_in_full(&text);
            prop_assert_eq!(out.as_ref(), full.as_ref(), "skipping quiet rules changed the result");
        }
    }

    /// Two families side by side, every sample with the next, and each
    /// sample's secret cut short: more markers near more matches than one
    /// sample makes. The rechecks that skip the rules a marker cannot make
    /// match give what rechecks of every rule give.
    #[test]
    fn leaving_out_rules_a_marker_cannot_wake_changes_nothing() {
        let planted = planted();
        let mut redacted = 0;
        for (i, (_, sample, secret)) in planted.iter().enumerate() {
            let (_, next, _) = &planted[(i + 1) % planted.len()];
            let cut = secret.get(..secret.len() / 2).unwrap_or(secret);
            for text in [
                format!("{sample} {next}"),
                format!("{sample}\n{next}"),
                sample.replacen(secret.as_str(), &format!("{cut}\t{cut}"), 1),
            ] {
                let out = shared().sanitize(&text);
                redacted += usize::from(out != text);
                assert_eq!(out, shared().sanitize_in_full(&text), "{text:?}");
            }
        }
        // Most texts hold a secret: the comparison compares redactions.
        assert!(
            redacted > planted.len() * 2,
            "{redacted} of {}",
            planted.len() * 3
        );
    }
}
