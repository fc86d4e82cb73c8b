//! Histogram bucket configuration for durations: one set of bounds for
//! every duration histogram, the call-site series' and the exporter's, in
//! every build.

use std::sync::{Arc, RwLock};

/// Default upper bounds, in seconds, of every poolscope duration histogram:
/// 50 µs to 60 s, roughly 1–2.5–5 per decade, so both a fast in-process call
/// and a slow Python command land in a bucket that says something.
pub const DEFAULT_DURATION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Most buckets a duration histogram may have (each costs a line per series
/// in every scrape).
pub const MAX_BUCKETS: usize = 64;

/// Bucket bounds that cannot make a histogram.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BucketsError {
    /// No bound was given.
    #[error("histogram buckets are empty: give at least one upper bound in seconds")]
    Empty,
    /// More than [`MAX_BUCKETS`] bounds.
    #[error("{0} histogram buckets is too many: at most {MAX_BUCKETS} are allowed")]
    TooMany(usize),
    /// A bound is zero, negative, NaN or infinite (`+Inf` is always added).
    #[error("histogram bucket {0} is not a positive finite number of seconds (`+Inf` is added by itself)")]
    NotPositive(f64),
    /// Bounds are not strictly increasing.
    #[error("histogram buckets must be strictly increasing, but {prev} is followed by {next}")]
    NotIncreasing {
        /// The earlier bound.
        prev: f64,
        /// The bound that is not above it.
        next: f64,
    },
}

static BUCKETS: RwLock<Option<Arc<[f64]>>> = RwLock::new(None);

/// Checks `bounds` and makes them the upper bounds (seconds) of every
/// duration histogram created from now on. Series that already exist keep
/// theirs, so set the buckets before the first observed call.
///
/// # Errors
///
/// Returns [`BucketsError`] when the bounds are empty, too many, not positive
/// and finite, or not strictly increasing; the buckets in force stay.
///
/// ```
/// use poolscope_runtime::buckets::{set_duration_buckets, BucketsError};
/// assert_eq!(set_duration_buckets(&[]), Err(BucketsError::Empty));
/// assert!(set_duration_buckets(&[0.1, 0.05]).is_err());
/// ```
pub fn set_duration_buckets(bounds: &[f64]) -> Result<(), BucketsError> {
    validate(bounds)?;
    *BUCKETS.write().unwrap_or_else(|e| e.into_inner()) = Some(bounds.into());
    Ok(())
}

/// Whether a latency limit of `seconds` can ever be passed: percentiles are
/// read from the buckets and cannot exceed the largest finite bound, so a
/// limit at or above it never fails. `Err(largest)` when it is not below.
/// `bounds` defaults to the buckets in force.
#[cfg(any(feature = "http", feature = "config"))]
pub(crate) fn below_largest(seconds: f64, bounds: Option<&[f64]>) -> Result<(), f64> {
    let in_force;
    let bounds = match bounds {
        Some(bounds) => bounds,
        None => {
            in_force = current();
            &in_force
        }
    };
    let largest = bounds.last().copied().unwrap_or(f64::INFINITY);
    if seconds >= largest {
        Err(largest)
    } else {
        Ok(())
    }
}

pub(crate) fn validate(bounds: &[f64]) -> Result<(), BucketsError> {
    if bounds.is_empty() {
        return Err(BucketsError::Empty);
    }
    if bounds.len() > MAX_BUCKETS {
        return Err(BucketsError::TooMany(bounds.len()));
    }
    for &b in bounds {
        if !(b.is_finite() && b > 0.0) {
            return Err(BucketsError::NotPositive(b));
        }
    }
    for pair in bounds.windows(2) {
        if pair[1] <= pair[0] {
            return Err(BucketsError::NotIncreasing {
                prev: pair[0],
                next: pair[1],
            });
        }
    }
    Ok(())
}

/// The bounds in force.
#[cfg(any(feature = "aspects", feature = "metrics"))]
pub(crate) fn current() -> Arc<[f64]> {
    BUCKETS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| DEFAULT_DURATION_BUCKETS.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_bounds_with_the_reason() {
        assert_eq!(validate(&[0.0]), Err(BucketsError::NotPositive(0.0)));
        assert!(matches!(
            validate(&[f64::NAN]),
            Err(BucketsError::NotPositive(_))
        ));
        assert_eq!(
            validate(&[1.0, 1.0]),
            Err(BucketsError::NotIncreasing {
                prev: 1.0,
                next: 1.0
            })
        );
        assert_eq!(validate(&[1.0; 65]), Err(BucketsError::TooMany(65)));
        assert!(BucketsError::NotIncreasing {
            prev: 1.0,
            next: 0.5
        }
        .to_string()
        .contains("1 is followed by 0.5"));
        assert_eq!(validate(DEFAULT_DURATION_BUCKETS), Ok(()));
    }
}
