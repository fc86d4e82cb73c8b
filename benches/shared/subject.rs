//! The function both overhead benches measure: a ~1.4 ns body, plain and
//! under `#[observe]`, never inlined so that both pay the same call.

use poolscope::observe;

#[inline(never)]
pub fn plain(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

#[observe(pool = "bench", command = "work")]
#[inline(never)]
pub fn observed(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

/// The pool's name, in one place.
pub const POOL: &str = "bench";

/// `observed` with argument expressions, which the build without aspects
/// type-checks in a block that never runs: its machine code must still be
/// `plain`'s.
#[observe(pool = POOL, command = "work", worker = x, correlation = x.to_string())]
#[inline(never)]
pub fn observed_args(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}
