//! Text that stands for a secret without being one (`${VAR}`, `<TOKEN>`,
//! `xxxxxxxx`, `…EXAMPLE`): a finder that reads such a value leaves it.

use super::Forms;

/// Text that stands for a secret without being one: `${VAR}`, `<TOKEN>`,
/// `xxxxxxxx`, `****`, `var.db_password`, `os.environ["X"]`, `%APPDATA%`.
/// A `%name%` is a variable only when the name reads like one (one case,
/// or CamelCase): `%a0AA%` is as likely a password. Mirrors
/// gitleaks' global allowlist and adds the shapes configuration files and
/// code use for "filled in elsewhere".
pub(super) const PLACEHOLDER: &str = r#"(?x)^(?:
    (?i:true|false|null|nil|none|undefined|empty|changeme|redacted|hidden|masked|secret|password|example)
  | (?i:a+|b+|c+|d+|e+|f+|g+|h+|i+|j+|k+|l+|m+|n+|o+|p+|q+|r+|s+|t+|u+|v+|w+|x+|y+|z+|0+|1+|9+|\*+|\.+|-+|_+|\#+|•+)
  | \[REDACTED\]
  | \$[0-9]+ | \$\{[0-9]+\}
  | \$(?:[A-Z_]+|[a-z_]+) | \$\{[^{}\s]+\} | \$\([^()]*\)? | `[^`]*` | \{[^{}]*\} | \{[A-Za-z_][A-Za-z0-9_]*\(.*
  | [A-Z]+(?:_[A-Z]+)+
  | \{\{[^{}]*\}\} | \$\{\{[^{}]*\}\}
  | %(?:[A-Z_][A-Z0-9_]*|[a-z_][a-z0-9_]*|(?:[A-Z][a-z]+)+[0-9]*)% | %\([a-z_]+\)s | %[+\-\#0]?[bcdeEfFgGoOpqstTUvxX]
  | \{[0-9]{0,2}\} | \{[a-z_]+\}
  | @[A-Za-z_]+@
  | <[^<>]{1,60}> | \[[A-Za-z_ ]{1,40}\]
  | (?:/Users/|/home/|/etc/|/opt/|/tmp/|/usr/|/var/|/bin/|/srv/|/run/|/root)[A-Za-z0-9_ ./\-]*
  | (?i:(?:var|vars|local|locals|env|secrets|settings|config|data|module|self|this|params|props|process\.env|os\.environ|system)\.[A-Za-z_][A-Za-z0-9_.\[\]'"]*)
  | (?i:(?:os\.)?(?:getenv|environ(?:\.get)?|env|getpass|get_secret|System\.getenv|ENV|process\.env))[\[(].*
  | [A-Za-z_][A-Za-z0-9_.]*\(\s*\)
  | new\s+[A-Za-z_][A-Za-z0-9_.]*\(.* | [A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+\(.*
  | [A-Za-z_][A-Za-z0-9_.\-]*(?:\s+[:=]\s*|[:=]\s+)
)$"#;

impl Forms {
    /// Whether `value` stands for a secret without being one: a whole
    /// placeholder, or a real-looking prefix filled out with a run of one
    /// character (`ghp_xxxxxxxx…`, `AIzaaaaaaaa…`), elided (`ops_eyJz…`,
    /// `…[Redacted]`) or the documentation's example (`…EXAMPLE`).
    pub(crate) fn is_placeholder(&self, value: &str) -> bool {
        let value = value.trim();
        if value.is_empty() || self.placeholder.is_match(value) {
            return true;
        }
        let bytes = value.as_bytes();
        let redacted = bytes
            .windows(8)
            .any(|w| w.eq_ignore_ascii_case(b"redacted"));
        let example = bytes.len() >= 7 && bytes[bytes.len() - 7..].eq_ignore_ascii_case(b"example");
        if value.ends_with("...") || value.ends_with('…') || redacted || example {
            return true;
        }
        let (mut run, mut longest, mut prev) = (0, 0, None);
        for b in value.bytes() {
            run = if Some(b) == prev { run + 1 } else { 1 };
            prev = Some(b);
            let needed = if b"xX*#.".contains(&b) { 6 } else { 8 };
            if run >= needed {
                longest = run;
                break;
            }
        }
        longest > 0
    }
}
