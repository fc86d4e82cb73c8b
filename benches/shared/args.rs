//! Command-line arguments of the benches run under callgrind.

/// The positional arguments: `cargo bench` passes `--bench`, which does
/// not count.
pub fn positional() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

/// The call count in `arg`, or `default`; exits with a message when it is
/// not a number.
pub fn calls(arg: Option<&String>, default: u64) -> u64 {
    match arg.map(|n| n.parse()) {
        None => default,
        Some(Ok(n)) => n,
        Some(Err(err)) => {
            eprintln!("the call count must be a number: {err}");
            std::process::exit(2);
        }
    }
}
