//! How long `/metrics` takes to render, for 10, 1,000 and 10,000 call-site
//! series (one pool, one command label value each), side by side in one run.
//! Each label set renders as 27 exposition lines (4 outcome counters, a
//! 22-line histogram for `ok`, the in-flight gauge), so the groups hold 270,
//! 27,000 and 270,000 Prometheus series.
//!
//! ```text
//! cargo bench -p poolscope-benches --bench http_render --features observe,http
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use poolscope::{observe, Label};

#[observe(pool = "render", command = command)]
fn call(command: &Label) -> usize {
    command.as_str().len()
}

fn render(c: &mut Criterion) {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = poolscope::metrics::MetricsHandle::from_prometheus(recorder.handle());
    let mut group = c.benchmark_group("metrics-render");
    let mut made = 0;
    for series in [10usize, 1_000, 10_000] {
        // Series stay registered, so each size adds to the previous one.
        for i in made..series {
            black_box(call(&Label::new(&format!("command-{i}"))));
        }
        made = series;
        let text = handle.render();
        let lines = text.lines().filter(|l| !l.starts_with('#')).count();
        eprintln!(
            "{series} label sets: {lines} exposition lines, {} bytes",
            text.len()
        );
        group.bench_with_input(BenchmarkId::new("label-sets", series), &series, |b, _| {
            b.iter(|| handle.render())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = render
}
criterion_main!(benches);
