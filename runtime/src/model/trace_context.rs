//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): the
//! `traceparent` and `tracestate` headers, parsed and written exactly as the
//! specification says. The trace id is the [`CorrelationId`]: a correlation
//! id already has its shape, so everything that reads one keeps working.

use std::fmt;
use std::str::FromStr;

use super::correlation::CorrelationId;

/// A span id (the `parent-id` of a `traceparent`): 64 bits, 16 lowercase
/// hex digits, never zero.
///
/// ```
/// use poolscope_runtime::correlation::SpanId;
/// let id: SpanId = "00f067aa0ba902b7".parse().unwrap();
/// assert_eq!(id.to_string(), "00f067aa0ba902b7");
/// assert!("0000000000000000".parse::<SpanId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(u64);

impl SpanId {
    /// The id `value`; `None` for zero, which the specification forbids.
    pub const fn from_u64(value: u64) -> Option<SpanId> {
        if value == 0 {
            None
        } else {
            Some(SpanId(value))
        }
    }

    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl FromStr for SpanId {
    type Err = TraceContextError;

    fn from_str(s: &str) -> Result<SpanId, TraceContextError> {
        let value = hex(s.as_bytes(), 16).ok_or(TraceContextError::ParentId)? as u64;
        SpanId::from_u64(value).ok_or(TraceContextError::ParentId)
    }
}

/// The `trace-flags` of a `traceparent`.
///
/// ```
/// use poolscope_runtime::correlation::TraceFlags;
/// let flags = TraceFlags::from_bits(0x03);
/// assert!(flags.sampled() && flags.random());
/// assert_eq!(TraceFlags::from_bits(0xff).bits(), 0x03); // the rest are reserved
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceFlags(u8);

impl TraceFlags {
    /// The caller may have recorded trace data.
    pub const SAMPLED: TraceFlags = TraceFlags(0x01);
    /// At least the right-most 7 bytes of the trace id are random.
    pub const RANDOM: TraceFlags = TraceFlags(0x02);

    /// The flags this specification defines, out of `bits`: the others are
    /// reserved, and a participant sets them to zero.
    pub const fn from_bits(bits: u8) -> TraceFlags {
        TraceFlags(bits & 0x03)
    }

    /// The bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the sampled flag is set.
    pub const fn sampled(self) -> bool {
        self.0 & 0x01 != 0
    }

    /// Whether the random-trace-id flag is set.
    pub const fn random(self) -> bool {
        self.0 & 0x02 != 0
    }

    /// These flags with the sampled flag set to `sampled`.
    pub const fn with_sampled(self, sampled: bool) -> TraceFlags {
        TraceFlags(if sampled {
            self.0 | 0x01
        } else {
            self.0 & !0x01
        })
    }
}

/// A `traceparent` header: the trace, the caller's span and its flags.
///
/// Parsing follows the specification's versioning rules: version `00` must
/// be exactly 55 characters; a higher version is read for its first four
/// fields and may carry more after a `-`; `ff` is invalid. Optional
/// whitespace around the value is ignored. It is always written as version
/// `00`, the highest this implementation knows.
///
/// ```
/// use poolscope_runtime::correlation::TraceParent;
/// let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
/// assert_eq!(parent.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(parent.flags.sampled());
/// assert_eq!(parent.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// assert!("00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse::<TraceParent>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace: also the correlation id of everything in it.
    pub trace_id: CorrelationId,
    /// The caller's span.
    pub parent_id: SpanId,
    /// The caller's flags.
    pub flags: TraceFlags,
}

/// A `traceparent` or `tracestate` that the specification says to ignore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceContextError {
    /// The version is not two lowercase hex digits followed by `-`, or is `ff`.
    #[error("traceparent: the version is not two lowercase hex digits other than `ff`")]
    Version,
    /// Too short, too long for version `00`, or a field not followed by `-`.
    #[error("traceparent: not `version-traceid-parentid-flags` with 2, 32, 16 and 2 hex digits")]
    Shape,
    /// The trace id is not 32 lowercase hex digits, or is all zeros.
    #[error("traceparent: the trace id is not 32 lowercase hex digits other than all zeros")]
    TraceId,
    /// The parent id is not 16 lowercase hex digits, or is all zeros.
    #[error("traceparent: the parent id is not 16 lowercase hex digits other than all zeros")]
    ParentId,
    /// The flags are not two lowercase hex digits.
    #[error("traceparent: the flags are not two lowercase hex digits")]
    Flags,
    /// A `tracestate` member's key is not a lowercase letter or digit
    /// followed by at most 255 of `a-z0-9_-*/@`.
    #[error("tracestate: a key is not a lowercase letter or digit followed by at most 255 of a-z 0-9 _ - * / @")]
    StateKey,
    /// A `tracestate` member's value is empty, longer than 256 characters,
    /// or holds a character outside printable ASCII, `,` or `=`.
    #[error("tracestate: a value is empty, over 256 characters, or holds `,`, `=` or a character outside printable ASCII")]
    StateValue,
    /// A `tracestate` member has no `=`.
    #[error("tracestate: a member is not `key=value`")]
    StateMember,
    /// More than 32 `tracestate` members.
    #[error("tracestate: more than 32 members")]
    StateTooLong,
}

/// Optional whitespace as HTTP defines it: spaces and horizontal tabs.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// `digits` lowercase hex digits, exactly, as a number.
fn hex(bytes: &[u8], digits: usize) -> Option<u128> {
    if bytes.len() != digits {
        return None;
    }
    bytes.iter().try_fold(0u128, |value, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(digit))
    })
}

impl FromStr for TraceParent {
    type Err = TraceContextError;

    fn from_str(s: &str) -> Result<TraceParent, TraceContextError> {
        let s = trim_ows(s).as_bytes();
        let version = s
            .get(..2)
            .and_then(|v| hex(v, 2))
            .filter(|&v| v != 0xff)
            .ok_or(TraceContextError::Version)?;
        if s.get(2) != Some(&b'-') {
            return Err(TraceContextError::Version);
        }
        // Version 00 is exactly 55 characters; a later one at least 55, and
        // what follows them starts with a `-`.
        let fits = match (version, s.len()) {
            (_, 55) => true,
            (0, _) => false,
            (_, n) => n > 55 && s[55] == b'-',
        };
        if s.len() < 55 || !fits || s[35] != b'-' || s[52] != b'-' {
            return Err(TraceContextError::Shape);
        }
        let trace_id = hex(&s[3..35], 32)
            .filter(|&id| id != 0)
            .ok_or(TraceContextError::TraceId)?;
        let parent_id = hex(&s[36..52], 16)
            .and_then(|id| SpanId::from_u64(id as u64))
            .ok_or(TraceContextError::ParentId)?;
        let flags = hex(&s[53..55], 2).ok_or(TraceContextError::Flags)? as u8;
        Ok(TraceParent {
            trace_id: CorrelationId::from_u128(trace_id),
            parent_id,
            flags: TraceFlags::from_bits(flags),
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.parent_id,
            self.flags.bits()
        )
    }
}

/// A `tracestate` header: vendors' opaque key/value pairs, in order, at
/// most 32.
///
/// Several `tracestate` header fields are one list, joined with commas in
/// their order ([`TraceState::from_fields`]). Empty members and the optional
/// whitespace around members are ignored; an invalid member, or more than
/// 32, makes the whole header invalid, as the specification's test suite
/// expects. A key given twice keeps its first (left-most, most recent)
/// value.
///
/// ```
/// use poolscope_runtime::correlation::TraceState;
/// let state: TraceState = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE".parse().unwrap();
/// assert_eq!(state.get("congo"), Some("t61rcWkgMzE"));
/// assert_eq!(state.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
/// assert!("FOO=1".parse::<TraceState>().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceState {
    members: Vec<(String, String)>,
}

/// Most members a `tracestate` may hold.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

impl TraceState {
    /// The header fields `fields`, in the order received, as one list.
    ///
    /// # Errors
    ///
    /// As [`TraceState::from_str`], for the list they make.
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = &'a str>,
    ) -> Result<TraceState, TraceContextError> {
        fields.into_iter().collect::<Vec<_>>().join(",").parse()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The members, left-most first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// A `tracestate` key: `(lcalpha / DIGIT) 0*255(keychar)`.
fn is_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let keychar =
        |b: &u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@');
    matches!(bytes.first(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && bytes.len() <= 256
        && bytes.iter().all(keychar)
}

/// A `tracestate` value: `0*255(chr) nblk-chr`, trailing spaces already
/// trimmed as optional whitespace.
fn is_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let chr = |b: &u8| matches!(b, 0x20..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    !bytes.is_empty() && bytes.len() <= 256 && bytes.iter().all(chr) && bytes.last() != Some(&b' ')
}

impl FromStr for TraceState {
    type Err = TraceContextError;

    fn from_str(s: &str) -> Result<TraceState, TraceContextError> {
        let mut members: Vec<(String, String)> = Vec::new();
        let mut count = 0;
        for member in s.split(',') {
            // Whitespace around a member is optional whitespace; spaces at
            // the start of a value belong to it.
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            let (key, value) = member
                .split_once('=')
                .ok_or(TraceContextError::StateMember)?;
            if !is_key(key) {
                return Err(TraceContextError::StateKey);
            }
            if !is_value(value) {
                return Err(TraceContextError::StateValue);
            }
            count += 1;
            if count > MAX_TRACESTATE_MEMBERS {
                return Err(TraceContextError::StateTooLong);
            }
            if members.iter().all(|(k, _)| k != key) {
                members.push((key.to_owned(), value.to_owned()));
            }
        }
        Ok(TraceState { members })
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}
