//! The clock of observed calls.
//!
//! quanta calibrates the TSC against the OS clock and says whether it can be
//! trusted; reading it through `quanta::Clock::raw` costs an out-of-line call
//! and a match per read, twice per observed call. When quanta settled on the
//! TSC, this module reads it inline instead (the same counter, so quanta's
//! calibration still converts the difference to nanoseconds); otherwise it
//! defers to quanta.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

const UNKNOWN: u8 = 0;
const TSC: u8 = 1;
const QUANTA: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

fn quanta() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let clock = quanta::Clock::new();
        MODE.store(
            if reads_the_tsc(&clock) { TSC } else { QUANTA },
            Ordering::Relaxed,
        );
        clock
    })
}

/// Whether `clock.raw()` is the TSC: its readings fall between TSC readings
/// taken around them (a monotonic-clock fallback counts nanoseconds, far
/// below the cycle count, and fails this at once).
#[cfg(target_arch = "x86_64")]
fn reads_the_tsc(clock: &quanta::Clock) -> bool {
    (0..16).all(|_| {
        let before = tsc();
        let raw = clock.raw();
        let after = tsc();
        before <= raw && raw <= after
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn reads_the_tsc(_: &quanta::Clock) -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn tsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 processor and has no preconditions.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

/// A raw reading; only [`nanos_between`] gives it meaning.
#[inline(always)]
pub(crate) fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if MODE.load(Ordering::Relaxed) == TSC {
        return tsc();
    }
    quanta().raw()
}

/// Nanoseconds between two raw readings (zero if the clock went backwards).
#[inline(always)]
pub(crate) fn nanos_between(start: u64, end: u64) -> u64 {
    quanta().delta_as_nanos(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_sleep() {
        // Calibrated first (the first reading may take a while), then
        // checked against the OS clock read just outside and just inside
        // the same stretch, however long the sleep really took.
        now();
        let outer = std::time::Instant::now();
        let start = now();
        let inner = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let inner = inner.elapsed().as_nanos() as u64;
        let nanos = nanos_between(start, now());
        let outer = outer.elapsed().as_nanos() as u64;
        assert!(
            inner - inner / 20 - 1_000_000 <= nanos && nanos <= outer + outer / 20 + 1_000_000,
            "{nanos} ns by the clock, {inner}..{outer} ns by the OS"
        );
        assert_ne!(MODE.load(Ordering::Relaxed), UNKNOWN);
    }

    #[test]
    fn backwards_is_zero() {
        let later = now();
        assert_eq!(nanos_between(later + 1_000, later), 0);
    }
}
