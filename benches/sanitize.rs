//! Sanitizer throughput on a 1 KiB log line and a 64 KiB traceback, clean
//! and with secrets, and the cost of building the sanitizer: the sanitizer
//! on gitleaks' rules ("now") and the one before them ("before", commit
//! 5bb18b3, ~20 rules), side by side in one run.
//!
//! ```text
//! cargo bench --bench sanitize
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use poolscope::sanitize::Sanitizer;

#[path = "shared/sanitize_before.rs"]
mod before;

fn log_line(secret: bool) -> String {
    let mut line = String::from(
        "2026-11-28T00:00:00.000Z INFO poolscope::request: request completed pool=python command=predict \
         correlation_id=4bf92f3577b34da6a3ce929d0e0e4736 duration_ms=12.5 outcome=ok worker=3 ",
    );
    if secret {
        line.push_str(
            "args={\"user\": \"ann\", \"password\": \"hunter2\", \"model\": \"resnet\"} ",
        );
    }
    while line.len() < 1024 {
        line.push_str("queue_wait_ms=0.4 retries=0 batch=16 shape=[1, 3, 224, 224] ");
    }
    line.truncate(1024);
    line
}

fn traceback(secret: bool) -> String {
    let mut text = String::from("Traceback (most recent call last):\n");
    let mut i = 0;
    while text.len() < 64 * 1024 {
        text.push_str(&format!(
            "  File \"/srv/app/handlers/module_{i}.py\", line {}, in handle_{i}\n    result = process(batch, options, retries={})\n",
            i * 7 + 3,
            i % 5
        ));
        if secret && i % 50 == 0 {
            text.push_str(
                "    connect(\"postgres://app:hunter2@db:5432/app\", password=\"hunter2\")\n",
            );
        }
        i += 1;
    }
    text.push_str("ValueError: batch could not be processed\n");
    text
}

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
}

criterion_group!(benches, sanitize);
criterion_main!(benches);
