//! The sanitizer: its forms and properties, gitleaks' own rule tests, and
//! the sanitizer from configuration.
//!
//! Only `sanitize_config` changes what is process-wide: the sanitizer (and,
//! applying a configuration, the switch and the sample rate, to their
//! defaults). The others build sanitizers of their own and observe no
//! call, so the tests run in parallel. proptest keeps the seeds of past
//! failures in `tests/proptest-regressions/`.

mod gitleaks;
mod sanitize;
#[cfg(feature = "config")]
mod sanitize_config;
