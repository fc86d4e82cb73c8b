//! Sanitizer throughput on a 1 KiB log line and a 64 KiB traceback, clean
//! and with secrets, the cost of building the sanitizer and of its first
//! line with a secret: the sanitizer on gitleaks' rules ("now") and the
//! one before them ("before", commit 5bb18b3, ~20 rules), side by side in
//! one run.
//!
//! ```text
//! cargo bench -p poolscope-benches --bench sanitize
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use poolscope::sanitize::Sanitizer;

use poolscope_benches::sanitize_before as before;
use poolscope_benches::sanitize_inputs as inputs;

use inputs::{log_line, traceback};

fn sanitize(c: &mut Criterion) {
    let now = Sanitizer::new();
    let was = before::Sanitizer::new();
    let mut group = c.benchmark_group("sanitize");
    for (name, text) in [
        ("log-line-1KiB-clean", log_line(false)),
        ("log-line-1KiB-secret", log_line(true)),
        ("traceback-64KiB-clean", traceback(false)),
        ("traceback-64KiB-secrets", traceback(true)),
    ] {
        // Both must agree that there is (or is not) something to redact,
        // or the comparison compares different work.
        assert_eq!(
            now.sanitize(&text).len() == text.len(),
            was.sanitize(&text).len() == text.len(),
            "{name}"
        );
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("now/{name}"), |b| {
            b.iter(|| now.sanitize(black_box(&text)).len())
        });
        group.bench_function(format!("before/{name}"), |b| {
            b.iter(|| was.sanitize(black_box(&text)).len())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("sanitizer-build");
    group.sample_size(20);
    group.bench_function("now", |b| b.iter(|| black_box(Sanitizer::new())));
    group.bench_function("before", |b| b.iter(|| black_box(before::Sanitizer::new())));
    group.finish();

    // A new sanitizer's first line with a secret: what it builds on first
    // use (a lazy DFA's first states; for the new one, the anchored search
    // of each rule that runs) is paid here, once a process. The sanitizer
    // is returned, so that dropping it is not timed.
    let mut group = c.benchmark_group("sanitize-first-line");
    group.sample_size(10);
    let line = log_line(true);
    group.bench_function("now/log-line-1KiB-secret", |b| {
        b.iter_batched(
            Sanitizer::new,
            |s| (s.sanitize(black_box(&line)).len(), s),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("before/log-line-1KiB-secret", |b| {
        b.iter_batched(
            before::Sanitizer::new,
            |s| (s.sanitize(black_box(&line)).len(), s),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, sanitize);
criterion_main!(benches);
