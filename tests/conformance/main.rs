//! The conformance suite: one test per acceptance criterion of the
//! requirements (R1.1 to R8.6), each named by it, each driving the
//! flagship's Python workers over gRPC and asserting the criterion through
//! what an operator uses: events, `/metrics`, JSON log lines, `/health*`,
//! the dashboard in headless Chromium.
//!
//! Every test runs on one shared pool (see `harness.rs`), one at a time.

#[path = "../common/http.rs"]
mod client;
#[path = "../common/mod.rs"]
mod common;
#[path = "../../examples/python_pool/pool.rs"]
#[allow(dead_code)] // the example's pool, of which the suite uses a part
mod pool;
#[path = "../common/webdriver.rs"]
mod webdriver;

mod harness;

mod r1_events;
mod r2_health;
mod r3_metrics;
mod r4_logging;
mod r5_dashboard;
mod r6_errors;
mod r7_performance;
mod r8_configuration;
