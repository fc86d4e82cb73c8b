//! A dashboard viewer that stops reading is disconnected, and the others
//! keep streaming, over real sockets. Its own binary: the failure it records
//! reaches every dashboard in the process.
//!
//! Nothing here races: one failure too large for any socket buffer stalls
//! the viewer that does not read, and no more failures follow. Exactly when
//! a stalled viewer is dropped (at its `viewer_buffer` + 1-th unread
//! snapshot) is shown on a paused clock by
//! `a_viewer_that_stops_reading_is_dropped_and_the_others_keep_streaming`
//! in runtime/src/http/dashboard/sse.rs.

use poolscope_testkit as common;
use poolscope_testkit::sse;

use common::PATIENCE;
use poolscope::http::DashboardConfig;
use poolscope::observe;
use serde_json::Value;
use sse::Events;

/// Snapshots a viewer may leave unread. The reader has this many ticks
/// (half a second each) to take in the one large snapshot: about 0.1 s on a
/// quiet machine, about a second with four CPU hogs on two cores.
const BUFFER: usize = 20;

/// The size of a failure message larger than a stalled connection can
/// hold: a megabyte more than the kernel buffers on the sending side (the
/// largest `tcp_wmem`, 4 MB by default), where the receiver takes 4 KB.
fn big() -> usize {
    let most_buffered = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|text| text.split_whitespace().last()?.parse::<usize>().ok())
        .unwrap_or(4 << 20);
    most_buffered + (1 << 20)
}

#[observe(pool = "dash-slow", command = "fails_loudly")]
fn fails_loudly(size: usize) -> Result<(), std::io::Error> {
    Err(std::io::Error::other("x".repeat(size)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_reading_is_dropped_and_the_others_keep_streaming() {
    let server = common::start_server!(
        |server| server.with_dashboard(DashboardConfig::default().with_viewer_buffer(BUFFER))
    );
    let addr = server.local_addr();
    let mut reader = Events::open(addr, &[]).await.unwrap();
    reader.next().await.unwrap();
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
    // Both viewers get the failure once, in their next snapshot (a delta, or
    // the stalled one's first, full snapshot); every later snapshot is small.
    // The stalled connection cannot take it, so its snapshots pile up
    // unread until it is dropped.
    let big = big();
    tokio::task::spawn_blocking(move || fails_loudly(big).unwrap_err())
        .await
        .unwrap();
    let (got_big, dropped) = tokio::time::timeout(PATIENCE, async {
        let mut got_big = false;
        loop {
            let snapshot = reader
                .next()
                .await
                .expect("the reading viewer keeps its stream");
            got_big |= has_big_error(&snapshot, big);
            let dropped = snapshot["viewers_dropped"].as_u64().unwrap();
            assert!(dropped <= 1, "the reader was dropped too: {dropped}");
            if dropped == 1 {
                return (got_big, snapshot);
            }
        }
    })
    .await
    .expect("the stalled viewer is dropped");
    assert!(got_big, "the reader took the large snapshot first");
    // Only the stalled one went; the reader is counted until the stalled
    // connection's end lets its slot go.
    let mut viewers = dropped["viewers"].as_u64().unwrap();
    tokio::time::timeout(PATIENCE, async {
        while viewers != 1 {
            let snapshot = reader.next().await.expect("still streaming");
            assert_eq!(snapshot["viewers_dropped"], 1, "{snapshot}");
            viewers = snapshot["viewers"].as_u64().unwrap();
        }
    })
    .await
    .expect("the stalled viewer's slot is let go");
    // The stalled socket was closed by the server: reading it ends (after
    // what the kernel buffered).
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(
        PATIENCE,
        tokio::io::AsyncReadExt::read_to_end(&mut stalled, &mut sink),
    )
    .await;
    assert!(closed.is_ok(), "the stalled connection is closed");
    assert!(
        sink.len() < big,
        "the server closed it before sending it everything"
    );
    server.shutdown().await;
}

fn has_big_error(snapshot: &Value, big: usize) -> bool {
    snapshot["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["pool"] == "dash-slow" && e["message"].as_str().is_some_and(|m| m.len() >= big))
}
