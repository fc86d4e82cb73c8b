//! What Prometheus reads: `promtool check metrics` on an exposition that
//! touches every family, extra labels on a call site's series, and the
//! generated rules and Grafana dashboard.
//!
//! `labels` installs the process's recorder and renders everything in it;
//! `promtool` renders a local recorder (with poolscope's own series, which
//! are process-wide) and `assets` records nothing, so whatever one of them
//! adds, the others' assertions hold: every test here lints or reads its
//! own series.

#[cfg(feature = "metrics")]
mod assets;
#[cfg(feature = "metrics")]
mod labels;
#[cfg(feature = "metrics")]
mod promtool;
