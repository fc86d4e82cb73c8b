use std::fmt;
use std::str::FromStr;

/// A correlation id: 128 bits, written as 32 lowercase hex digits, the same
/// shape as a W3C `traceparent` trace id, so it can travel in headers and gRPC
/// metadata and be matched against other systems' ids.
///
/// ```
/// use poolscope_runtime::correlation::CorrelationId;
/// let id: CorrelationId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// // UUIDs are accepted too.
/// let uuid: CorrelationId = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736".parse().unwrap();
/// assert_eq!(id, uuid);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CorrelationId(u128);

/// A string that is not a correlation id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a correlation id: expected 32 hex digits, optionally as a hyphenated UUID"
)]
pub struct ParseCorrelationError {
    input: String,
}

impl CorrelationId {
    /// Wraps a raw value. Zero is reserved by W3C as invalid but accepted here.
    pub const fn from_u128(value: u128) -> CorrelationId {
        CorrelationId(value)
    }

    /// The raw value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// A fresh id, unique within this process and, with overwhelming
    /// probability, across processes: the high half is random per thread, the
    /// low half counts.
    pub fn generate() -> CorrelationId {
        use std::cell::Cell;
        use std::hash::{BuildHasher, Hasher};
        thread_local! {
            static STATE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        STATE.with(|state| {
            let (mut high, count) = state.get();
            if high == 0 {
                // std's RandomState is seeded from the OS per process and
                // advanced per instance, which is all the entropy an id needs.
                let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
                hasher.write_u64(std::process::id() as u64);
                high = hasher.finish() | 1;
            }
            state.set((high, count.wrapping_add(1)));
            CorrelationId(((high as u128) << 64) | count as u128)
        })
    }
}

impl FromStr for CorrelationId {
    type Err = ParseCorrelationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseCorrelationError {
            input: s.chars().take(64).collect(),
        };
        let mut value: u128 = 0;
        let mut digits = 0;
        for (i, c) in s.chars().enumerate() {
            if c == '-' && matches!(i, 8 | 13 | 18 | 23) && s.len() == 36 {
                continue;
            }
            let d = c.to_digit(16).ok_or_else(err)?;
            digits += 1;
            if digits > 32 {
                return Err(err());
            }
            value = (value << 4) | d as u128;
        }
        if digits != 32 {
            return Err(err());
        }
        Ok(CorrelationId(value))
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrelationId({:032x})", self.0)
    }
}

/// What `#[observe(correlation = ..)]` accepts: an id, an optional id, or a
/// string such as a request header's value.
///
/// A string that is not a well-formed id still correlates: it is hashed into
/// an id, so the same header value always maps to the same id.
///
/// ```
/// use poolscope_runtime::correlation::{CorrelationId, IntoCorrelation};
/// let from_header = "req-42".into_correlation().unwrap();
/// assert_eq!(from_header, "req-42".into_correlation().unwrap());
/// assert_eq!(None::<CorrelationId>.into_correlation(), None);
/// ```
pub trait IntoCorrelation {
    /// The id to adopt, or `None` to inherit or generate one.
    fn into_correlation(self) -> Option<CorrelationId>;
}

impl IntoCorrelation for CorrelationId {
    fn into_correlation(self) -> Option<CorrelationId> {
        Some(self)
    }
}

impl IntoCorrelation for Option<CorrelationId> {
    fn into_correlation(self) -> Option<CorrelationId> {
        self
    }
}

impl IntoCorrelation for &CorrelationId {
    fn into_correlation(self) -> Option<CorrelationId> {
        Some(*self)
    }
}

impl IntoCorrelation for &str {
    fn into_correlation(self) -> Option<CorrelationId> {
        let trimmed = self.trim();
        if trimmed.is_empty() {
            return None;
        }
        Some(
            trimmed
                .parse()
                .unwrap_or_else(|_| CorrelationId(fnv1a_128(trimmed.as_bytes()))),
        )
    }
}

impl IntoCorrelation for &String {
    fn into_correlation(self) -> Option<CorrelationId> {
        self.as_str().into_correlation()
    }
}

impl IntoCorrelation for String {
    fn into_correlation(self) -> Option<CorrelationId> {
        self.as_str().into_correlation()
    }
}

impl IntoCorrelation for Option<&str> {
    fn into_correlation(self) -> Option<CorrelationId> {
        self.and_then(IntoCorrelation::into_correlation)
    }
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ *b as u128).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        let id = CorrelationId::generate();
        assert_eq!(id.to_string().parse::<CorrelationId>().unwrap(), id);
        assert_eq!(id.to_string().len(), 32);
    }

    #[test]
    fn generated_ids_differ() {
        let a = CorrelationId::generate();
        let b = CorrelationId::generate();
        assert_ne!(a, b);
        let c = std::thread::spawn(CorrelationId::generate).join().unwrap();
        assert_ne!(a.as_u128() >> 64, c.as_u128() >> 64);
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "xyz",
            "4bf92f3577b34da6a3ce929d0e0e47",
            "4bf92f3577b34da6a3ce929d0e0e47366",
            "4bf92f35-77b3-4da6-a3ce-929d0e0e473g",
        ] {
            let err = bad.parse::<CorrelationId>().unwrap_err();
            assert!(err.to_string().contains("32 hex digits"), "{err}");
        }
    }

    #[test]
    fn strings_that_are_not_ids_hash_stably() {
        let a = "req-1".into_correlation().unwrap();
        assert_eq!(a, String::from("req-1").into_correlation().unwrap());
        assert_ne!(a, "req-2".into_correlation().unwrap());
        assert_eq!("   ".into_correlation(), None);
    }
}
