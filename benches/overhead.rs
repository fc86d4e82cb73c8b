//! What `#[observe]` adds to a call, side by side with a plain function and
//! reference peers, in one run. Run twice (see BENCHMARKS.md):
//!
//! ```text
//! cargo bench -p poolscope-benches --bench overhead                      # aspects compiled out
//! cargo bench -p poolscope-benches --bench overhead --features observe   # aspects compiled in
//! ```

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};

use poolscope_benches::subject;

use subject::{observed, plain};

#[tracing::instrument(skip_all)]
#[inline(never)]
fn traced(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn overhead(c: &mut Criterion) {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("no other subscriber in this bench");
    let clock = quanta::Clock::new();

    let aspects = if poolscope::COMPILED_IN {
        "aspects-on"
    } else {
        "aspects-off"
    };
    let mut group = c.benchmark_group(format!("overhead/{aspects}"));
    group.bench_function("plain", |b| b.iter(|| plain(black_box(7))));
    group.bench_function("observe", |b| b.iter(|| observed(black_box(7))));
    poolscope::set_enabled(false);
    group.bench_function("observe-runtime-off", |b| b.iter(|| observed(black_box(7))));
    poolscope::set_enabled(true);
    group.bench_function("tracing-instrument-fmt-sink", |b| {
        b.iter(|| traced(black_box(7)))
    });
    group.bench_function("std-instant-pair", |b| {
        b.iter(|| {
            let start = Instant::now();
            let out = plain(black_box(7));
            (out, start.elapsed())
        })
    });
    group.bench_function("quanta-pair", |b| {
        b.iter(|| {
            let start = clock.raw();
            let out = plain(black_box(7));
            (out, clock.delta_as_nanos(start, clock.raw()))
        })
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
