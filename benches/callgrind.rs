//! A loop of calls for `valgrind --tool=callgrind`, which counts instructions
//! instead of timing them, so the result does not depend on what else the
//! machine is doing. `plain` and `observed` have the same body and are called
//! through the same function pointer type; with no aspect compiled in their
//! totals must be equal. See `benches/overhead.sh`.
//!
//! ```text
//! callgrind <plain|observed> [calls]
//! ```

use std::hint::black_box;

#[path = "shared/subject.rs"]
mod subject;

use subject::{observed, plain};

fn main() {
    // `cargo bench` passes `--bench`; only positional arguments count.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let function: fn(u64) -> u64 = match args.first().map(String::as_str) {
        Some("plain") | None => plain,
        Some("observed") => observed,
        Some(other) => {
            eprintln!("unknown function `{other}`: expected `plain` or `observed`");
            std::process::exit(2);
        }
    };
    let calls: u64 = match args.get(1).map(|n| n.parse()) {
        None => 1_000_000,
        Some(Ok(n)) => n,
        Some(Err(err)) => {
            eprintln!("the call count must be a number: {err}");
            std::process::exit(2);
        }
    };
    let function = black_box(function);
    let mut acc = 0u64;
    for i in 0..calls {
        acc ^= function(black_box(i));
    }
    println!("{acc}");
}
