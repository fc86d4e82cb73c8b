//! What poolscope's benches share.

pub mod args;
pub mod sanitize_before;
pub mod sanitize_inputs;
pub mod subject;
