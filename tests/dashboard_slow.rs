//! A dashboard viewer that stops reading is disconnected, and the others
//! keep streaming. Its own binary: the steady stream of failures it needs
//! reaches every dashboard in the process.

#[path = "common/http.rs"]
mod client;
#[path = "common/sse.rs"]
mod sse;

use std::time::{Duration, Instant};

use poolscope::http::{DashboardConfig, Server};
use poolscope::observe;
use sse::Events;

#[observe(pool = "dash-slow", command = "fails_loudly")]
fn fails_loudly(i: usize) -> Result<(), std::io::Error> {
    Err(std::io::Error::other(format!("{i}: {}", "x".repeat(8000))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_reading_is_dropped_and_the_others_keep_streaming() {
    let server = Server::builder()
        .with_address("127.0.0.1:0".parse().unwrap())
        .with_dashboard(
            DashboardConfig::default()
                .with_interval(Duration::from_millis(100))
                .with_viewer_buffer(2)
                .with_recent_errors(100),
        )
        .build()
        .unwrap()
        .start()
        .unwrap();
    let addr = server.local_addr();
    // A steady stream of 8 KB failures makes every delta large, so a reader
    // that stops fills the kernel's buffers within a second or two.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failing = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fails_loudly(i);
                i += 1;
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
    };
    // A raw socket with a small receive buffer that never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut stalled,
        format!("GET /dashboard/events HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut reader = Events::open(addr, &[]).await.unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let snapshot = loop {
        let snapshot = reader
            .next()
            .await
            .expect("the reading viewer keeps its stream");
        if snapshot["viewers_dropped"].as_u64() >= Some(1) {
            break snapshot;
        }
        assert!(
            Instant::now() < until,
            "the stalled viewer was never dropped"
        );
    };
    // Only the stalled one went; the reader is still counted.
    assert_eq!(snapshot["viewers_dropped"], 1, "{}", snapshot["viewers"]);
    let next = reader.next().await.expect("still streaming");
    assert_eq!(next["viewers"], 1);
    // The stalled socket was closed by the server: reading it ends.
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut stalled, &mut sink),
    )
    .await;
    assert!(closed.is_ok(), "the stalled connection is closed");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    failing.join().unwrap();
    server.shutdown().await;
}
