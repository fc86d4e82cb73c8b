//! poolscope's own part of `/metrics` is empty: nothing is recorded.

/// Appends nothing: there are no call-site series.
#[inline(always)]
pub(crate) fn render_series(_out: &mut String) {}

/// Appends nothing: no pool tracks time saturated.
#[inline(always)]
pub(crate) fn render_pools(_out: &mut String) {}
