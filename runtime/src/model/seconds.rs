//! Durations as configuration files write them: a number of seconds
//! (`window_seconds = 60`, `interval_seconds = 0.25`), read into the
//! `Duration` the runtime keeps.

use std::time::Duration;

use serde::{de::Error, Deserialize, Deserializer};

/// A number of seconds, 0 or more, as a `Duration`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(seconds: D) -> Result<Duration, D::Error> {
    to_duration(f64::deserialize(seconds)?).map_err(D::Error::custom)
}

/// An optional number of seconds.
pub(crate) fn optional<'de, D: Deserializer<'de>>(
    seconds: D,
) -> Result<Option<Duration>, D::Error> {
    Option::<f64>::deserialize(seconds)?
        .map(to_duration)
        .transpose()
        .map_err(D::Error::custom)
}

/// More seconds than a `Duration` holds saturate rather than fail: the
/// range check of the setting then says what its limit is, which "too big
/// for a Duration" would not.
fn to_duration(seconds: f64) -> Result<Duration, String> {
    if seconds.is_nan() || seconds < 0.0 {
        return Err(format!("{seconds} is not a number of seconds (0 or more)"));
    }
    Ok(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_as_durations_and_saturate() {
        assert_eq!(to_duration(0.25), Ok(Duration::from_millis(250)));
        assert_eq!(to_duration(1e300), Ok(Duration::MAX));
        assert!(to_duration(-1.0).unwrap_err().contains("0 or more"));
        assert!(to_duration(f64::NAN).is_err());
    }
}
