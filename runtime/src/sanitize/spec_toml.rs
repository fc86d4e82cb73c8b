//! Reads a rule file in gitleaks' TOML format into a [`RuleFileSpec`].
//! Compiled into `build.rs` (for the vendored rules) and, with the `config`
//! feature, into the crate (for `sanitizer.rules_file`); it uses nothing of
//! the crate but `spec.rs`.
//!
//! What a log line cannot be checked against is left out: rules with no
//! `regex` (they match file paths), and allowlists that can only allow
//! together with a path or a commit.

use toml::{Table, Value};

use super::spec::{AllowlistSpec, RuleFileSpec, RuleSpec, Target};

/// Parses `text`. The error names the rule and the field at fault.
pub fn parse(text: &str) -> Result<RuleFileSpec, String> {
    let table: Table = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    let mut file = RuleFileSpec::default();
    // gitleaks reads a single `[allowlist]` (older files) and a list of
    // `[[allowlists]]` (newer ones).
    for (key, what) in [("allowlist", "allowlist"), ("allowlists", "allowlists")] {
        for list in tables(&table, key, "(global)")? {
            if let Some(list) = allowlist(list, &format!("(global) {what}"))? {
                file.allowlists.push(list);
            }
        }
    }
    let rules = match table.get("rules") {
        None => &[][..],
        Some(Value::Array(rules)) => rules.as_slice(),
        Some(_) => return Err("`rules` must be an array of tables ([[rules]])".into()),
    };
    for (index, rule) in rules.iter().enumerate() {
        let Value::Table(rule) = rule else {
            return Err(format!("rules[{index}] is not a table"));
        };
        let id = match rule.get("id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => return Err(format!("rules[{index}] has no `id`")),
        };
        let name = format!("rule `{id}`");
        let Some(regex) = string(rule, "regex", &name)? else {
            continue;
        };
        let secret_group = match rule.get("secretGroup") {
            None => 0,
            Some(Value::Integer(n)) if *n >= 0 => *n as usize,
            Some(_) => return Err(format!("{name}: `secretGroup` must be a whole number >= 0")),
        };
        let entropy = match rule.get("entropy") {
            None => 0.0,
            Some(Value::Float(f)) if *f >= 0.0 => *f,
            Some(Value::Integer(n)) if *n >= 0 => *n as f64,
            Some(_) => return Err(format!("{name}: `entropy` must be a number >= 0")),
        };
        let keywords = strings(rule, "keywords", &name)?;
        let mut allowlists = Vec::new();
        for key in ["allowlist", "allowlists"] {
            for list in tables(rule, key, &name)? {
                if let Some(list) = allowlist(list, &name)? {
                    allowlists.push(list);
                }
            }
        }
        file.rules.push(RuleSpec {
            id,
            regex,
            secret_group,
            entropy,
            keywords,
            allowlists,
            shape: None,
        });
    }
    Ok(file)
}

/// An allowlist, or `None` when it can never allow a finding in a log line.
fn allowlist(list: &Table, name: &str) -> Result<Option<AllowlistSpec>, String> {
    let all = match string(list, "condition", name)?.as_deref() {
        None | Some("OR") | Some("or") => false,
        Some("AND") | Some("and") => true,
        Some(other) => {
            return Err(format!(
                "{name}: allowlist condition {other:?} is not OR or AND"
            ))
        }
    };
    let target = match string(list, "regexTarget", name)?.as_deref() {
        None | Some("secret") => Target::Secret,
        Some("match") => Target::Match,
        Some("line") => Target::Line,
        Some(other) => {
            return Err(format!(
                "{name}: regexTarget {other:?} is not secret, match or line"
            ))
        }
    };
    let needs_path_or_commit =
        !strings(list, "paths", name)?.is_empty() || !strings(list, "commits", name)?.is_empty();
    let regexes = strings(list, "regexes", name)?;
    let stopwords = strings(list, "stopwords", name)?;
    if (all && needs_path_or_commit) || (regexes.is_empty() && stopwords.is_empty()) {
        return Ok(None);
    }
    Ok(Some(AllowlistSpec {
        target,
        all,
        regexes,
        stopwords,
    }))
}

/// `key` as one table or an array of tables; absent is none.
fn tables<'t>(table: &'t Table, key: &str, name: &str) -> Result<Vec<&'t Table>, String> {
    match table.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Table(t)) => Ok(vec![t]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_table()
                    .ok_or_else(|| format!("{name}: `{key}` must hold tables"))
            })
            .collect(),
        Some(_) => Err(format!("{name}: `{key}` must be a table")),
    }
}

fn string(table: &Table, key: &str, name: &str) -> Result<Option<String>, String> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{name}: `{key}` must be a string")),
    }
}

fn strings(table: &Table, key: &str, name: &str) -> Result<Vec<String>, String> {
    match table.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{name}: `{key}` must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(format!("{name}: `{key}` must be a list of strings")),
    }
}
