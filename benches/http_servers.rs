//! Two servers for a load run with `wrk` (see `benches/http.sh`): a bare
//! hyper "hello world" and poolscope's server, each on one tokio thread, so
//! the comparison is the same machinery with and without poolscope's routing
//! and rendering.
//!
//! ```text
//! http_servers <bare|poolscope> <port>
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (Some(kind), Some(port)) = (
        args.first(),
        args.get(1).and_then(|p| p.parse::<u16>().ok()),
    ) else {
        eprintln!("usage: http_servers <bare|poolscope> <port>");
        std::process::exit(2);
    };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match kind.as_str() {
        "bare" => runtime.block_on(bare(address)),
        "poolscope" => runtime.block_on(poolscope(address)),
        other => {
            eprintln!("unknown server `{other}`: expected `bare` or `poolscope`");
            std::process::exit(2);
        }
    }
}

async fn bare(address: SocketAddr) {
    let listener = TcpListener::bind(address).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(|_: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"{\"status\":\"ok\"}\n",
                ))))
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn poolscope(address: SocketAddr) {
    // A pool with some history, so /metrics and /health/detailed have content.
    let metrics = poolscope::metrics::install().expect("recorder");
    let pool = poolscope::Pool::new("bench");
    pool.set_size(4);
    let workers: Vec<_> = (0..4).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.set_state(poolscope::WorkerState::Available);
    }
    for i in 0..1000 {
        let _ = observed(i);
    }
    let server = poolscope::http::Server::builder()
        .with_address(address)
        .with_metrics(metrics)
        .with_max_connections(1024)
        .build()
        .expect("bind");
    server
        .serve_until(std::future::pending())
        .await
        .expect("serve");
}

#[poolscope::observe(pool = "bench", command = "work")]
fn observed(i: u64) -> Result<u64, std::fmt::Error> {
    if i.is_multiple_of(10) {
        return Err(std::fmt::Error);
    }
    Ok(i)
}
