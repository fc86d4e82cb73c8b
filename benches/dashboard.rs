//! What dashboard viewers cost the pool: an observed call (ok, and failing)
//! timed with no server, with a server and no viewer, and with 100 viewers
//! streaming snapshots every 100 ms (five times the default rate), in one
//! run, side by side. The server and its viewers run on a tokio thread of
//! their own, so on this 2-core machine they compete with the measured
//! thread for CPU like they would in production.
//!
//! ```text
//! cargo bench -p poolscope-benches --bench dashboard --features observe,dashboard
//! ```

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use poolscope::http::{DashboardConfig, Server, ServerHandle};
use poolscope::observe;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

#[observe(pool = "bench-dash", command = "work")]
fn work(n: u64) -> Result<u64, std::fmt::Error> {
    Ok(black_box(n).wrapping_mul(31))
}

#[observe(pool = "bench-dash", command = "fail")]
fn fail(n: u64) -> Result<u64, std::io::Error> {
    Err(std::io::Error::other(format!("rejected {n}")))
}

/// Opens `n` event streams that read everything they are sent.
async fn viewers(addr: SocketAddr, n: usize) {
    for _ in 0..n {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let request = Request::builder()
            .uri("/dashboard/events")
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        tokio::spawn(async move {
            let mut body = response.into_body();
            while let Some(Ok(_)) = body.frame().await {}
        });
    }
}

fn server(runtime: &Runtime, viewers_open: usize) -> ServerHandle {
    runtime.block_on(async {
        let server = Server::builder()
            .with_address("127.0.0.1:0".parse().unwrap())
            .with_dashboard(
                DashboardConfig::default()
                    .with_interval(Duration::from_millis(100))
                    .with_max_viewers(200),
            )
            .build()
            .expect("bind")
            .start()
            .expect("start");
        viewers(server.local_addr(), viewers_open).await;
        // Let the streams settle into their steady state.
        tokio::time::sleep(Duration::from_millis(500)).await;
        server
    })
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("dashboard");
    for (label, viewers_open) in [
        ("no server", None),
        ("server, 0 viewers", Some(0)),
        ("server, 100 viewers", Some(100)),
    ] {
        let handle = viewers_open.map(|n| server(&runtime, n));
        group.bench_function(format!("ok call, {label}"), |b| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                work(i)
            })
        });
        group.bench_function(format!("failing call, {label}"), |b| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                fail(i)
            })
        });
        if let Some(handle) = handle {
            runtime.block_on(handle.shutdown());
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
