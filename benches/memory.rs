//! What the memory sampler costs: one reading (`/proc/self/status`, the
//! jemalloc epoch and six statistics, and `/proc/<pid>/status` of each
//! worker), taken once a second by `MemorySampler`.
//!
//! ```text
//! cargo bench -p poolscope-benches --bench memory --features observe,jemalloc
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use poolscope::memory::{self, Jemalloc};
use poolscope::{Pool, WorkerState};

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory");
    group.bench_function("process (/proc/self/status)", |b| {
        b.iter(|| black_box(memory::process(None)))
    });
    group.bench_function("jemalloc (epoch + 6 stats)", |b| {
        b.iter(|| black_box(memory::jemalloc()))
    });
    group.bench_function("snapshot, no pool", |b| {
        b.iter(|| black_box(memory::snapshot()))
    });
    // Four worker processes to read by pid, as in the flagship.
    let mut children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new("sleep")
                .arg("600")
                .spawn()
                .expect("sleep")
        })
        .collect();
    let pool = Pool::new("bench-memory");
    let workers: Vec<_> = children
        .iter()
        .enumerate()
        .map(|(i, child)| {
            let worker = pool.worker(i);
            worker.set_pid(child.id());
            worker.set_state(WorkerState::Available);
            worker
        })
        .collect();
    group.bench_function("snapshot, 4 worker processes", |b| {
        b.iter(|| black_box(memory::snapshot()))
    });
    group.finish();
    drop(workers);
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
