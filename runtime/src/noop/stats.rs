//! No statistics: nothing is recorded.

use crate::model::stats::{PoolSnapshot, SeriesSnapshot};
use crate::model::Kind;

/// Always empty: nothing is recorded.
#[inline(always)]
pub fn pools() -> Vec<PoolSnapshot> {
    Vec::new()
}

/// Always `None`: nothing is recorded.
#[inline(always)]
pub fn snapshot(_kind: Kind, _pool: &str, _command: &str) -> Option<SeriesSnapshot> {
    None
}
