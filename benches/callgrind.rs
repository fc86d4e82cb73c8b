//! A loop of calls for `valgrind --tool=callgrind`, which counts instructions
//! instead of timing them, so the result does not depend on what else the
//! machine is doing. `plain` and `observed` have the same body and are called
//! through the same function pointer type; with no aspect compiled in their
//! totals must be equal. See `benches/overhead.sh`.
//!
//! ```text
//! callgrind <plain|observed|observed_args> [calls]
//! ```

use std::hint::black_box;

use poolscope_benches::args;
use poolscope_benches::subject;

use subject::{observed, observed_args, plain};

fn main() {
    let args = args::positional();
    let function: fn(u64) -> u64 = match args.first().map(String::as_str) {
        Some("plain") | None => plain,
        Some("observed") => observed,
        Some("observed_args") => observed_args,
        Some(other) => {
            eprintln!(
                "unknown function `{other}`: expected `plain`, `observed` or `observed_args`"
            );
            std::process::exit(2);
        }
    };
    let calls = args::calls(args.get(1), 1_000_000);
    let function = black_box(function);
    let mut acc = 0u64;
    for i in 0..calls {
        acc ^= function(black_box(i));
    }
    println!("{acc}");
}
