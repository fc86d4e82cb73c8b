//! The process's Prometheus recorder, shared by the tests of one binary. A
//! macro for the reason [`start_server!`](crate::start_server) is one: only
//! the calling test, built with `metrics`, can name `poolscope::metrics`.

use std::sync::{Mutex, MutexGuard};

/// The process's Prometheus recorder (`poolscope::metrics::install`):
/// installed by whichever test of the binary asks first; the others get
/// the same handle. Asking takes turns, so two tests cannot both find none
/// installed and both install.
///
/// # Panics
///
/// When another `metrics` recorder was installed in the process.
#[macro_export]
macro_rules! recorder {
    () => {{
        let _turn = $crate::recorder_turn();
        ::poolscope::metrics::installed()
            .unwrap_or_else(|| ::poolscope::metrics::install().expect("the Prometheus recorder"))
    }};
}

/// The turn [`recorder!`](crate::recorder) takes.
#[doc(hidden)]
pub fn recorder_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}
