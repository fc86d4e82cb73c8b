//! Requests per second and p50/p99 latency through the flagship pool (four
//! Python workers, `echo`), measured from the caller. Built twice — with and
//! without the aspects — and run alternately by `examples/python-pool/benches/pool.sh`, which
//! reports both side by side.
//!
//! ```text
//! pool [requests] [concurrency]
//! ```

use python_pool as pool;

use std::time::{Duration, Instant};

use serde_json::json;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let requests = args.first().copied().unwrap_or(20_000);
    let concurrency = args.get(1).copied().unwrap_or(16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let mut config = pool::PoolConfig::new("bench");
        config.size = 4;
        config.queue_capacity = 256;
        let pool = pool::start(config)
            .await
            .expect("pool (is grpcio installed?)");
        // Warm up: connections, stubs, caches.
        drive(&pool, 1_000, concurrency).await;
        let started = Instant::now();
        let mut latencies = drive(&pool, requests, concurrency).await;
        let took = started.elapsed();
        latencies.sort_unstable();
        let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
        println!(
            "{} requests={} concurrency={} rps={:.0} p50_us={} p99_us={}",
            if poolscope::COMPILED_IN {
                "observe-on "
            } else {
                "observe-off"
            },
            latencies.len(),
            concurrency,
            latencies.len() as f64 / took.as_secs_f64(),
            at(0.50).as_micros(),
            at(0.99).as_micros(),
        );
        pool.shutdown();
    });
}

async fn drive(pool: &pool::PythonPool, requests: u64, concurrency: u64) -> Vec<Duration> {
    let per_task = requests / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task as usize);
                for i in 0..per_task {
                    let started = Instant::now();
                    pool.execute("echo", json!({ "t": t, "i": i }), None)
                        .await
                        .expect("echo");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all
}
