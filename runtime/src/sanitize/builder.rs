//! Building a [`Sanitizer`]: the built-in rules merged with a user's rule
//! files, compiled, and one keyword prefilter over every finder's keywords.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::forms::Forms;
use super::keys::Keys;
use super::keywords::{Trigger, FORM_KEYWORDS};
use super::rules::{self, Allowlist, Rule};
use super::{spec, Pattern, RuleSet, SanitizeError, Sanitizer, REDACTED};

/// Builds a [`Sanitizer`]: the built-in rules plus extra keys, patterns and
/// rule sets.
#[derive(Clone, Debug, Default)]
pub struct SanitizerBuilder {
    keys: Vec<String>,
    patterns: Vec<Pattern>,
    rules: Vec<RuleSet>,
}

impl SanitizerBuilder {
    /// Adds keys whose values are secrets (`pin`, `ssn`).
    pub fn extra_keys<S: AsRef<str>>(mut self, keys: &[S]) -> Self {
        self.keys.extend(keys.iter().map(|k| k.as_ref().to_owned()));
        self
    }

    /// Adds patterns (see [`Pattern`]).
    pub fn extra_patterns(mut self, patterns: &[Pattern]) -> Self {
        self.patterns.extend(patterns.iter().cloned());
        self
    }

    /// Adds credential rules (see [`RuleSet`]).
    pub fn rules(mut self, rules: RuleSet) -> Self {
        self.rules.push(rules);
        self
    }

    /// Compiles everything.
    ///
    /// # Errors
    ///
    /// [`SanitizeError`] naming the key, pattern or rule that cannot be used.
    pub fn build(self) -> Result<Sanitizer, SanitizeError> {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        let keys = Keys::new(&keys)?;
        let builtin = rules::gitleaks();
        let own = rules::own();
        let mut specs: Vec<&spec::RuleSpec> = Vec::new();
        let mut global_specs: Vec<&spec::AllowlistSpec> = builtin.allowlists.iter().collect();
        // A rule with the id of one before it replaces it, in its place:
        // poolscope's own file mends gitleaks' rules, a user's file either.
        let later = own
            .rules
            .iter()
            .chain(self.rules.iter().flat_map(|s| &s.spec.rules));
        for rule in builtin.rules.iter().chain(later) {
            match specs.iter().position(|r| r.id == rule.id) {
                Some(at) => specs[at] = rule,
                None => specs.push(rule),
            }
        }
        for set in &self.rules {
            global_specs.extend(&set.spec.allowlists);
        }
        let rules = compile_rules(&specs)?;
        let global = global_specs
            .into_iter()
            .map(|a| Allowlist::compile("(global allowlist)", a))
            .collect::<Result<Vec<_>, _>>()?;

        let mut words: Vec<String> = Vec::new();
        let mut triggers = Vec::new();
        let mut always = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                always.push(index);
            }
            for keyword in &rule.keywords {
                words.push(keyword.clone());
                triggers.push(Trigger::Rule(index));
            }
        }
        for (list, trigger) in FORM_KEYWORDS {
            for word in list {
                words.push((*word).to_owned());
                triggers.push(trigger);
            }
        }
        for word in keys.extra_words() {
            words.push(word.to_owned());
            triggers.push(Trigger::Pairs);
        }
        // A DFA: a few hundred short keywords make a small one, and it
        // scans clean text several times faster than the NFA the builder
        // would pick for this many patterns.
        let prefilter = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&words)
            .map_err(|e| SanitizeError::Rules(format!("keyword prefilter: {e}")))?;
        let longest = words.iter().map(String::len).max().unwrap_or(0);
        // A keyword that meets a marker holds its `[` or `]`, or is
        // inside its letters.
        let keyword_in_marker =
            prefilter.is_match(REDACTED) || words.iter().any(|w| w.contains(['[', ']']));
        Ok(Sanitizer {
            longest,
            keyword_in_marker,
            forms: Forms::new(keys)?,
            rules,
            always,
            global,
            prefilter,
            triggers,
            extra: self.patterns.into_iter().map(|p| p.0).collect(),
        })
    }
}

/// `specs` compiled, in order; the error is the first rule's that fails.
/// Compiling gitleaks' rules is most of building a sanitizer and each
/// compiles on its own: they are shared out over up to four threads, as
/// many as the machine has cores (a thread that cannot be started leaves
/// its share to this one).
fn compile_rules(specs: &[&spec::RuleSpec]) -> Result<Vec<Rule>, SanitizeError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 4);
    // Every `threads`-th rule from `share` on: neighbours in gitleaks' file
    // are often alike in cost, so each thread gets a fair mix.
    let share = |t: usize| {
        specs
            .iter()
            .enumerate()
            .skip(t)
            .step_by(threads)
            .map(|(i, spec)| (i, Rule::compile(spec)))
            .collect::<Vec<_>>()
    };
    let mut done = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads)
            .map(|t| {
                let handle = std::thread::Builder::new()
                    .name("poolscope-rules".to_owned())
                    .spawn_scoped(scope, move || share(t));
                (t, handle.ok())
            })
            .collect();
        let mut done = share(0);
        for (t, handle) in others {
            match handle {
                Some(handle) => match handle.join() {
                    Ok(part) => done.extend(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                None => done.extend(share(t)),
            }
        }
        done
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, rule)| rule).collect()
}
