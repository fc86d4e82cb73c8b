//! What generated code names. Not a public API: it changes without notice.

pub use super::call::classify;
pub use super::call::{call_once, once, Call, Classified, Details, ErrView, Observed, Site, Start};
pub use crate::model::Kind;
