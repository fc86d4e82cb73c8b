//! A `/dashboard/events` reader over hyper's client.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::client::Reply;

/// How long one snapshot may take to come: a bound on a hang, not a
/// latency claim (snapshots come every 100 to 500 ms).
const FRAME_WAIT: Duration = Duration::from_secs(60);

/// An open `/dashboard/events` stream, read event by event.
pub struct Events {
    body: Incoming,
    /// Bytes as they came: a chunk may end inside a multi-byte character.
    buffer: Vec<u8>,
    /// How much of `buffer` holds no event end: a large snapshot comes in
    /// many chunks, and rescanning it whole for each would make the reader
    /// slower the larger the snapshot.
    scanned: usize,
}

impl Events {
    pub async fn open(addr: SocketAddr, headers: &[(&str, &str)]) -> Result<Events, Reply> {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let mut request = Request::builder()
            .uri("/dashboard/events")
            .header("host", addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new()).unwrap())
            .await
            .expect("response");
        if response.status() != StatusCode::OK {
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            return Err(Reply {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "the stream's content type"
        );
        Ok(Events {
            body: response.into_body(),
            buffer: Vec::new(),
            scanned: 0,
        })
    }

    /// The next `snapshot` event's JSON, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let from = self.scanned.saturating_sub(1);
            let found = self.buffer[from..]
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|at| from + at);
            self.scanned = self.buffer.len();
            if let Some(end) = found {
                let bytes: Vec<u8> = self.buffer.drain(..end + 2).collect();
                self.scanned = 0;
                let event = String::from_utf8(bytes).expect("a whole event is UTF-8");
                let mut name = "message";
                let mut data = None;
                for line in event.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v;
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(v.to_owned());
                    }
                }
                if name == "snapshot" {
                    let data = data.expect("a snapshot event has data");
                    return Some(serde_json::from_str(&data).expect("snapshot JSON"));
                }
                continue;
            }
            let frame = tokio::time::timeout(FRAME_WAIT, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("no snapshot within {FRAME_WAIT:?}"))?;
            let Ok(frame) = frame else { return None };
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }
}
