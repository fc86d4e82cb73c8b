//! The line formats: JSON and human. Every line — poolscope's and the
//! application's — gets the correlation id in scope and is sanitized.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::sanitize::{Sanitizer, REDACTED};

/// Fields whose value is JSON text, embedded as objects in JSON lines.
const JSON_FIELDS: [&str; 3] = ["error", "args", "extra"];

/// `2026-11-28T00:41:33.123456Z`: RFC 3339, UTC, microseconds.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use poolscope_runtime::logging::rfc3339;
/// assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_700_000_000)), "2023-11-14T22:13:20.000000Z");
/// ```
pub fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_micros()
    )
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(&'static str, Value)>,
}

impl Fields {
    fn push_text(&mut self, field: &Field, text: String) {
        if field.name() == "message" {
            self.message = text;
        } else if text.is_empty() {
            // Optional fields are passed empty when absent.
        } else if JSON_FIELDS.contains(&field.name()) {
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            self.fields.push((field.name(), value));
        } else {
            self.fields.push((field.name(), Value::String(text)));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push_text(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push_text(field, format!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push((field.name(), Value::from(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push((field.name(), Value::from(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.push((field.name(), Value::from(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), Value::from(value)));
    }
}

/// Sanitizes every string inside a JSON value; a value under a secret key
/// is redacted whole.
fn clean(sanitizer: &Sanitizer, name: &str, value: &mut Value) {
    match value {
        Value::Null => {}
        Value::String(text) => {
            let cleaned = sanitizer.sanitize_field(name, text);
            if cleaned != text.as_str() {
                *text = cleaned.into_owned();
            }
        }
        _ if sanitizer.is_secret_key(name) => *value = Value::String(REDACTED.to_owned()),
        Value::Array(items) => items.iter_mut().for_each(|item| clean(sanitizer, "", item)),
        Value::Object(map) => map
            .iter_mut()
            .for_each(|(key, item)| clean(sanitizer, key, item)),
        _ => {}
    }
}

/// The format of every line.
pub(crate) struct LineFormat {
    pub(crate) json: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        if !fields
            .fields
            .iter()
            .any(|(name, _)| *name == "correlation_id")
        {
            if let Some(id) = crate::correlation::current() {
                fields
                    .fields
                    .insert(0, ("correlation_id", Value::String(id.to_string())));
            }
        }
        // One look-up of the rules per line, not one per field.
        let sanitizer = crate::sanitize::current();
        let message = sanitizer.sanitize(&fields.message).into_owned();
        for (name, value) in &mut fields.fields {
            clean(&sanitizer, name, value);
        }
        let timestamp = rfc3339(SystemTime::now());
        if self.json {
            let mut line = Map::new();
            line.insert("timestamp".into(), Value::String(timestamp));
            line.insert(
                "level".into(),
                Value::String(meta.level().as_str().to_owned()),
            );
            line.insert("target".into(), Value::String(meta.target().to_owned()));
            line.insert("message".into(), Value::String(message));
            for (name, value) in fields.fields {
                line.insert(name.to_owned(), value);
            }
            let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
            writeln!(writer, "{text}")
        } else {
            write!(
                writer,
                "{timestamp} {:>5} {}: {message}",
                meta.level().as_str(),
                meta.target()
            )?;
            for (name, value) in fields.fields {
                match value {
                    Value::String(text) if !text.contains([' ', '"', '=']) => {
                        write!(writer, " {name}={text}")?
                    }
                    other => write!(writer, " {name}={other}")?,
                }
            }
            writeln!(writer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        let at = |secs| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000000Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59.000000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_micros(1_500_123)),
            "1970-01-01T00:00:01.500123Z"
        );
    }
}
