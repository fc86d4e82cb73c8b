//! Logs and sampling: structured log lines, the global subscriber, and
//! what a failure keeps when its start was sampled out.
//!
//! The sample rate is process-wide (a logger sets it, and sampling tests
//! turn it down), and once `logging_global` has installed the global
//! subscriber it takes every line a thread without a subscriber of its own
//! logs. So every test here that observes a call takes its turn with
//! `common::serial`, and none sees another's lines or sampling.

mod late_worker;
#[cfg(feature = "logging")]
mod logging;
#[cfg(feature = "logging")]
mod logging_global;
mod sampled_failures;
