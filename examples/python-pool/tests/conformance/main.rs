//! The conformance suite: one test per acceptance criterion of the
//! requirements (R1.1 to R8.6), each named by it, each driving the
//! flagship's Python workers over gRPC and asserting the criterion through
//! what an operator uses: events, `/metrics`, JSON log lines, `/health*`,
//! the dashboard in headless Chromium.
//!
//! Every test runs on one shared pool (see `harness.rs`), one at a time.

use poolscope_testkit as common;
use poolscope_testkit::client;
use poolscope_testkit::webdriver;
use python_pool as pool;

mod harness;

mod r1_events;
mod r2_health;
mod r3_metrics;
mod r4_logging;
mod r5_dashboard;
mod r6_errors;
mod r7_performance;
mod r8_configuration;
