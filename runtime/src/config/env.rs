//! `POOLSCOPE_...` environment overrides. The keys they can set and the
//! type each value takes are read from the configuration types themselves:
//! [`keys`] walks `Config`'s `Deserialize` implementation with a
//! deserializer that records every field it is asked for instead of reading
//! input. A field added to a section is then settable from the environment
//! with no table to keep in step.

use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;

use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Deserialize;

use super::{Config, ConfigError};

/// What a key's value is, as TOML types it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    Integer,
    Float,
    Text,
}

/// One key the environment can set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Key {
    /// `health.window_seconds`.
    pub(super) path: String,
    pub(super) kind: Kind,
    /// A list of `kind` (comma-separated, or a TOML array).
    pub(super) list: bool,
}

/// Every key of [`Config`] that holds a value or a list of values (a list
/// of tables, `[[alerts.rules]]`, has no environment form), in the order
/// the types declare them.
pub(super) fn keys() -> &'static [Key] {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let seen = Seen::default();
        // The probe hands every field a made-up value. A type that refuses
        // it (an address that does not parse) ends the walk: the field is
        // recorded by then, so the walk starts again without it, until one
        // goes through.
        let mut whole = false;
        for _ in 0..MAX_WALKS {
            let walked = Config::deserialize(Probe {
                path: String::new(),
                seen: &seen,
            });
            match seen.failed.take() {
                Some(field) if walked.is_err() => seen.skip.borrow_mut().push(field),
                _ => {
                    whole = walked.is_ok();
                    break;
                }
            }
        }
        // A walk that never went through would leave keys out unseen.
        debug_assert!(whole, "the probe never walked all of Config");
        let mut keys = seen.found.into_inner();
        let mut paths = std::collections::HashSet::new();
        keys.retain(|k| paths.insert(k.path.clone()));
        keys
    })
}

/// More walks than `Config` has fields that refuse a made-up value.
const MAX_WALKS: usize = 64;

/// What walks of the types found.
#[derive(Default)]
struct Seen {
    found: RefCell<Vec<Key>>,
    /// Fields left out of the next walk.
    skip: RefCell<Vec<String>>,
    /// The innermost field that ended this walk.
    failed: RefCell<Option<String>>,
}

/// The keys, as [`super::env_keys`] lists them.
pub(super) fn paths() -> Vec<&'static str> {
    keys().iter().map(|k| k.path.as_str()).collect()
}

/// The environment variable that overrides `key` (`sampling.requests` →
/// `POOLSCOPE_SAMPLING_REQUESTS`).
pub fn env_name(key: &str) -> String {
    format!("POOLSCOPE_{}", key.replace('.', "_").to_uppercase())
}

/// A key the environment set: what a later error about that key names.
pub(super) struct Set {
    key: &'static str,
    variable: String,
    value: String,
}

/// Sets every key whose variable `env` holds, in `table` (values trimmed);
/// the keys it set.
pub(super) fn apply(
    table: &mut toml::Table,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Set>, ConfigError> {
    let mut set_here = Vec::new();
    for key in keys() {
        let variable = env_name(&key.path);
        if let Some(value) = env(&variable) {
            let parsed = key.value(&value).map_err(|expected| ConfigError::Env {
                key: key.path.clone(),
                variable: variable.clone(),
                value: value.clone(),
                problem: format!("expected {expected}"),
            })?;
            set(table, &key.path, parsed);
            set_here.push(Set {
                key: &key.path,
                variable,
                value,
            });
        }
    }
    Ok(set_here)
}

/// A parse error about a key the environment set names the variable, not
/// the file, which may not hold the key at all.
pub(super) fn blame(error: ConfigError, set: &[Set]) -> ConfigError {
    let ConfigError::Parse { key, source, .. } = &error else {
        return error;
    };
    let Some(by) = set.iter().find(|s| s.key == key) else {
        return error;
    };
    ConfigError::Env {
        key: key.clone(),
        variable: by.variable.clone(),
        value: by.value.clone(),
        problem: source.message().trim_end().to_owned(),
    }
}

impl Key {
    /// `text` as this key's TOML value, or what it should have been.
    fn value(&self, text: &str) -> Result<toml::Value, &'static str> {
        if !self.list {
            return scalar(self.kind, text.trim());
        }
        // A TOML array for items that hold a comma (`["a{2,5}", "b"]`); a
        // value that only starts like one (`[0-9]{16}`) is one item.
        if text.trim_start().starts_with('[') {
            if let Ok(parsed) = toml::from_str::<toml::Table>(&format!("v = {text}")) {
                return match parsed.get("v") {
                    Some(v @ toml::Value::Array(items)) if items.iter().all(|i| self.holds(i)) => {
                        Ok(v.clone())
                    }
                    _ => Err(self.list_of()),
                };
            }
        }
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| scalar(self.kind, item).map_err(|_| self.list_of()))
            .collect::<Result<Vec<_>, _>>()
            .map(toml::Value::Array)
    }

    fn holds(&self, item: &toml::Value) -> bool {
        match self.kind {
            Kind::Bool => item.is_bool(),
            Kind::Integer => item.is_integer(),
            Kind::Float => item.is_float() || item.is_integer(),
            Kind::Text => item.is_str(),
        }
    }

    fn list_of(&self) -> &'static str {
        match self.kind {
            Kind::Bool => "a list of booleans",
            Kind::Integer => "a list of whole numbers",
            Kind::Float => "a list of numbers",
            Kind::Text => "a list of strings",
        }
    }
}

fn scalar(kind: Kind, text: &str) -> Result<toml::Value, &'static str> {
    match kind {
        Kind::Bool => text
            .parse()
            .map(toml::Value::Boolean)
            .map_err(|_| "`true` or `false`"),
        Kind::Integer => text
            .parse()
            .map(toml::Value::Integer)
            .map_err(|_| "a whole number"),
        Kind::Float => text.parse().map(toml::Value::Float).map_err(|_| "a number"),
        Kind::Text => Ok(toml::Value::String(text.to_owned())),
    }
}

/// Sets `key` (dotted) in `table`, making the tables on the way.
fn set(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut at = table;
    for part in parts {
        let entry = at
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let Some(next) = entry.as_table_mut() else {
            return;
        };
        at = next;
    }
    at.insert(last.to_owned(), value);
}

/// A deserializer that reads nothing: asked for a value, it records the
/// field's path and type and hands back a made-up one.
struct Probe<'a> {
    path: String,
    seen: &'a Seen,
}

impl Probe<'_> {
    fn record(&self, kind: Kind) {
        self.seen.found.borrow_mut().push(Key {
            path: self.path.clone(),
            kind,
            list: false,
        });
    }

    fn child(&self, field: &str) -> Probe<'_> {
        let path = if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        };
        Probe {
            path,
            seen: self.seen,
        }
    }
}

macro_rules! probe_scalars {
    ($($method:ident => $kind:ident, $visit:ident($value:expr);)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.record(Kind::$kind);
            visitor.$visit($value)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Error;

    probe_scalars! {
        deserialize_bool => Bool, visit_bool(false);
        deserialize_i8 => Integer, visit_i8(0);
        deserialize_i16 => Integer, visit_i16(0);
        deserialize_i32 => Integer, visit_i32(0);
        deserialize_i64 => Integer, visit_i64(0);
        deserialize_u8 => Integer, visit_u8(0);
        deserialize_u16 => Integer, visit_u16(0);
        deserialize_u32 => Integer, visit_u32(0);
        deserialize_u64 => Integer, visit_u64(0);
        deserialize_f32 => Float, visit_f32(0.0);
        deserialize_f64 => Float, visit_f64(0.0);
        deserialize_char => Text, visit_char('x');
        deserialize_str => Text, visit_str("");
        deserialize_string => Text, visit_str("");
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // What one item records tells the list's type; the list itself is
        // handed back empty.
        let item = Seen::default();
        let value = visitor.visit_seq(Items {
            probe: Some(Probe {
                path: self.path.clone(),
                seen: &item,
            }),
        })?;
        if let [Key { path, kind, .. }] = &item.found.into_inner()[..] {
            if *path == self.path {
                self.seen.found.borrow_mut().push(Key {
                    path: self.path,
                    kind: *kind,
                    list: true,
                });
            }
        }
        Ok(value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(Fields {
            probe: self,
            fields: fields.iter(),
            current: "",
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // A unit variant by name: a string in the file.
        self.record(Kind::Text);
        let first: StrDeserializer<'_, Error> =
            variants.first().copied().unwrap_or("").into_deserializer();
        visitor.visit_enum(first)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom(Untyped(self.path)))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct tuple tuple_struct map identifier
    }
}

/// A field whose type reads "anything": it has no environment form.
struct Untyped(String);

impl fmt::Display for Untyped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` takes no single type", self.0)
    }
}

/// A struct's fields, each value probed at its path.
struct Fields<'a> {
    probe: Probe<'a>,
    fields: std::slice::Iter<'static, &'static str>,
    current: &'static str,
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let skip = self.probe.seen.skip.borrow();
        let Some(field) = self
            .fields
            .find(|f| !skip.contains(&self.probe.child(f).path))
        else {
            return Ok(None);
        };
        drop(skip);
        self.current = field;
        let name: StrDeserializer<'_, Error> = field.into_deserializer();
        seed.deserialize(name).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let probe = self.probe.child(self.current);
        let path = probe.path.clone();
        seed.deserialize(probe).inspect_err(|_| {
            // The innermost field fails first; the fields around it only
            // pass its error on.
            self.probe.seen.failed.borrow_mut().get_or_insert(path);
        })
    }
}

/// A list's one probed item; a list of tables fails here (its item's
/// conversion refuses the made-up values), which only ends the probe of
/// that list.
struct Items<'a> {
    probe: Option<Probe<'a>>,
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if let Some(probe) = self.probe.take() {
            let _ = seed.deserialize(probe);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_come_from_the_types() {
        let keys = keys();
        let find = |path: &str| keys.iter().find(|k| k.path == path).cloned();
        let key = |path: &str, kind, list| Key {
            path: path.to_owned(),
            kind,
            list,
        };
        assert_eq!(find("enabled"), Some(key("enabled", Kind::Bool, false)));
        assert_eq!(
            find("health.window_seconds"),
            Some(key("health.window_seconds", Kind::Float, false))
        );
        assert_eq!(
            find("health.max_queue_depth"),
            Some(key("health.max_queue_depth", Kind::Integer, false))
        );
        assert_eq!(
            find("health.readiness"),
            Some(key("health.readiness", Kind::Text, false))
        );
        assert_eq!(
            find("buckets.durations"),
            Some(key("buckets.durations", Kind::Float, true))
        );
        assert_eq!(
            find("sanitizer.extra_patterns"),
            Some(key("sanitizer.extra_patterns", Kind::Text, true))
        );
        assert_eq!(
            find("http.endpoints.dashboard"),
            Some(key("http.endpoints.dashboard", Kind::Bool, false))
        );
        // A list of tables has no environment form; nothing below it either.
        assert!(keys.iter().all(|k| !k.path.starts_with("alerts.rules")));
        // Every key once.
        let mut paths = paths();
        paths.sort_unstable();
        let count = paths.len();
        paths.dedup();
        assert_eq!(paths.len(), count);
    }

    #[test]
    fn values_take_their_key_s_type() {
        let key = |kind, list| Key {
            path: "k".into(),
            kind,
            list,
        };
        assert_eq!(
            key(Kind::Float, false).value("30"),
            Ok(toml::Value::Float(30.0))
        );
        assert_eq!(key(Kind::Float, false).value("lots"), Err("a number"));
        assert_eq!(
            key(Kind::Text, true).value("x-api-key, pin"),
            Ok(toml::Value::Array(vec!["x-api-key".into(), "pin".into()]))
        );
        assert_eq!(
            key(Kind::Text, true).value(r#"["a{2,5}", "b"]"#),
            Ok(toml::Value::Array(vec!["a{2,5}".into(), "b".into()]))
        );
        assert_eq!(
            key(Kind::Float, true).value("0.1, 1"),
            Ok(toml::Value::Array(vec![0.1.into(), 1.0.into()]))
        );
        assert_eq!(
            key(Kind::Float, true).value("0.1, x"),
            Err("a list of numbers")
        );
        assert_eq!(key(Kind::Integer, false).value("-"), Err("a whole number"));
    }
}
