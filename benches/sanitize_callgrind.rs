//! A loop of sanitizer calls for `valgrind --tool=callgrind`, which counts
//! instructions instead of timing them: the figures do not move with what
//! else the machine is doing, so the sanitizer now and before gitleaks'
//! rules compare exactly. See `benches/sanitize-instructions.sh`.
//!
//! ```text
//! sanitize_callgrind <now|before> <line-clean|line-secret|traceback-clean|traceback-secrets|build> [calls]
//! ```

use std::hint::black_box;

use poolscope::sanitize::Sanitizer;

use poolscope_benches::args;
use poolscope_benches::sanitize_before as before;
use poolscope_benches::sanitize_inputs as inputs;

fn main() {
    let args = args::positional();
    let usage = "usage: sanitize_callgrind <now|before> <line-clean|line-secret|traceback-clean|traceback-secrets|build> [calls]";
    let (Some(which), Some(input)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let calls = args::calls(args.get(2), 1000);
    let text = match input.as_str() {
        "line-clean" => inputs::log_line(false),
        "line-secret" => inputs::log_line(true),
        "traceback-clean" => inputs::traceback(false),
        "traceback-secrets" => inputs::traceback(true),
        "build" => String::new(),
        other => {
            eprintln!("unknown input `{other}`\n{usage}");
            std::process::exit(2);
        }
    };
    // One sanitizer is built either way, so a run of 0 calls measures
    // everything but the calls.
    let mut total = 0;
    match which.as_str() {
        "now" => {
            let s = Sanitizer::new();
            for _ in 0..calls {
                total += if input == "build" {
                    black_box(Sanitizer::new()).rule_ids().count()
                } else {
                    s.sanitize(black_box(&text)).len()
                };
            }
        }
        "before" => {
            let s = before::Sanitizer::new();
            for _ in 0..calls {
                total += if input == "build" {
                    drop(black_box(before::Sanitizer::new()));
                    1
                } else {
                    s.sanitize(black_box(&text)).len()
                };
            }
        }
        other => {
            eprintln!("unknown sanitizer `{other}`\n{usage}");
            std::process::exit(2);
        }
    }
    black_box(total);
}
