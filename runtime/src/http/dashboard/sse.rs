//! The stream of snapshots: one ticker renders each tick once, and a feeder
//! per viewer hands it the full snapshot or the delta it can apply.
//!
//! The ticker measures its gaps on tokio's clock, so the tests below run it
//! on a paused clock: the cadence, how soon a failure is pushed, who gets a
//! full snapshot and who is dropped are decided by the code, not by how
//! fast the machine is.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::hub::Hub;
use super::snapshot::{Marks, Need, Rendered, View};
use super::{lock, MIN_GAP};

/// Pushes a snapshot every interval, and soon after the event handler rings,
/// while anyone watches. Ends (closing every stream) when aborted or when
/// the server's state is gone.
pub(super) async fn tick(hub: Arc<Hub>, view: impl Fn() -> Option<View>) {
    let Some(sender) = lock(&hub.sender).take() else {
        return;
    };
    let mut every = tokio::time::interval(hub.config.interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // tokio's clock (not std's): a paused clock in tests covers the gaps.
    let mut last = Instant::now() - MIN_GAP;
    let mut previous: Option<Marks> = None;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = hub.wake.notified() => {}
        }
        // Both ways: a tick right after a push would otherwise replace it
        // before the feeders took it, and they would need a full snapshot.
        let since = last.elapsed();
        if since < MIN_GAP {
            tokio::time::sleep(MIN_GAP - since).await;
        }
        if !hub.enabled.load(Ordering::Relaxed) {
            // Switched off: wake the feeders so they close their streams.
            sender.send_modify(|_| {});
            previous = None;
            continue;
        }
        if !hub.watched() {
            // Nobody saw the last tick's frames: the next delta would be
            // against nothing anyone holds.
            previous = None;
            continue;
        }
        let seq = previous.map_or(1, |p| p.seq + 1);
        // A bug in a snapshot must cost one tick, not the dashboard.
        let need = if hub.need_full.swap(false, Ordering::Relaxed) {
            Need::Full
        } else {
            Need::Delta
        };
        let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            view().map(|view| hub.render(&view, seq, previous.as_ref(), need))
        }));
        let Rendered { full, delta, marks } = match rendered {
            Ok(Some(rendered)) => rendered,
            Ok(None) => return,
            Err(_) => {
                tracing::error!("poolscope dashboard failed to compute a snapshot");
                previous = None;
                if need == Need::Full {
                    hub.need_full.store(true, Ordering::Relaxed);
                }
                continue;
            }
        };
        last = Instant::now();
        sender.send_replace(Arc::new(Frames {
            seq,
            previous_seq: previous.map(|p| p.seq),
            full: full.map(frame),
            delta: delta.map(frame),
        }));
        previous = Some(marks);
    }
}

/// Wraps a snapshot as one SSE `snapshot` event.
fn frame(json: Vec<u8>) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: snapshot\ndata: ");
    // serde_json's compact output has no raw newline (they are escaped in
    // strings), so the whole snapshot is one `data:` line.
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// One tick, as SSE frames: the full snapshot for viewers that just came
/// or missed a tick, the delta for those that saw the previous one.
#[derive(Default)]
pub(super) struct Frames {
    seq: u64,
    previous_seq: Option<u64>,
    /// Encoded only when a viewer needs it (`Hub::need_full`).
    full: Option<Bytes>,
    delta: Option<Bytes>,
}

/// Why a stream could not be opened.
pub(super) enum Refused {
    TooManyViewers,
}

/// Opens one viewer's stream: a feeder task copies each new snapshot into a
/// bounded channel the response body reads; when the viewer leaves the
/// channel unread for `viewer_buffer` snapshots, `kill` closes its
/// connection.
pub(super) fn open(hub: &Arc<Hub>, kill: Arc<Notify>) -> Result<SseBody, Refused> {
    let viewers = hub.viewers.fetch_add(1, Ordering::Relaxed) + 1;
    // Increments, not a set from the count: racing threads cannot leave an
    // older value behind. The guard takes it back, refused or not.
    metrics::gauge!("poolscope_dashboard_viewers").increment(1.0);
    let guard = ViewerGuard { hub: hub.clone() };
    if viewers > hub.config.max_viewers {
        return Err(Refused::TooManyViewers);
    }
    // One slot more for the `retry:` preamble.
    let (tx, rx) = mpsc::channel::<Bytes>(hub.config.viewer_buffer + 1);
    let mut frames = hub.frames.clone();
    // Ask for a fresh, full snapshot instead of handing over a stale one.
    frames.mark_unchanged();
    hub.need_full.store(true, Ordering::Relaxed);
    hub.wake.notify_one();
    let feeder_hub = hub.clone();
    // Retry after a second when the connection drops (server restart).
    let _ = tx.try_send(Bytes::from_static(b"retry: 1000\n: poolscope\n\n"));
    tokio::spawn(async move {
        let mut sent: Option<u64> = None;
        loop {
            tokio::select! {
                changed = frames.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = tx.closed() => break,
            }
            if !feeder_hub.enabled.load(Ordering::Relaxed) {
                break;
            }
            let frames_now = frames.borrow_and_update().clone();
            // The delta only when this viewer holds the tick it is against;
            // else the full snapshot, or, when this tick has none (every
            // viewer was in step when it was made), one at the next tick.
            let frame = match (&frames_now.delta, frames_now.previous_seq, &frames_now.full) {
                (Some(delta), Some(previous), _) if sent == Some(previous) => delta.clone(),
                (_, _, Some(full)) => full.clone(),
                _ => {
                    sent = None;
                    feeder_hub.need_full.store(true, Ordering::Relaxed);
                    feeder_hub.wake.notify_one();
                    continue;
                }
            };
            sent = Some(frames_now.seq);
            match tx.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    feeder_hub.dropped.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("poolscope_dashboard_viewers_dropped_total").increment(1);
                    tracing::debug!("poolscope dashboard dropped a viewer that fell behind");
                    kill.notify_one();
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
    });
    Ok(SseBody { rx, _guard: guard })
}

struct ViewerGuard {
    hub: Arc<Hub>,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.hub.viewers.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("poolscope_dashboard_viewers").decrement(1.0);
    }
}

/// The body of `/dashboard/events`: the frames the feeder hands over, until
/// the server stops.
pub(crate) struct SseBody {
    rx: mpsc::Receiver<Bytes>,
    _guard: ViewerGuard,
}

impl hyper::body::Body for SseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    //! On tokio's paused clock: time moves only when every task waits, and
    //! then straight to the next timer, so each time below is exact.

    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, SystemTime};

    use http_body_util::BodyExt;
    use serde_json::Value;

    use super::*;
    use crate::http::dashboard::DashboardConfig;
    use crate::interner::Label;
    use crate::model::events::{Event, RequestCompleted};
    use crate::model::Outcome;

    const INTERVAL: Duration = Duration::from_millis(500);

    /// A hub switched on without listening to the process's events, so no
    /// other test's failures push snapshots here; its ticker runs from now,
    /// counting the snapshots it computes.
    fn started(config: DashboardConfig) -> (Arc<Hub>, Arc<AtomicUsize>, Instant) {
        let hub = Hub::new(config);
        hub.enabled.store(true, Ordering::Relaxed);
        let renders = Arc::new(AtomicUsize::new(0));
        let counted = renders.clone();
        tokio::spawn(tick(hub.clone(), move || {
            counted.fetch_add(1, Ordering::Relaxed);
            Some(View {
                at: SystemTime::now(),
                custom: Vec::new(),
                uptime_seconds: 1.0,
                window_seconds: 60.0,
                shutting_down: false,
                pools: Vec::new(),
                pool_states: Vec::new(),
                checks: Vec::new(),
            })
        }));
        (hub, renders, Instant::now())
    }

    fn viewer(hub: &Arc<Hub>) -> (SseBody, Arc<Notify>) {
        let kill = Arc::new(Notify::new());
        let Ok(body) = open(hub, kill.clone()) else {
            panic!("a viewer within the limit is refused");
        };
        (body, kill)
    }

    /// The next snapshot on a stream and when it came; `None` once the
    /// stream ended.
    async fn next(body: &mut SseBody) -> Option<(Value, Instant)> {
        loop {
            let frame = body.frame().await?.expect("infallible");
            let data = frame.into_data().expect("a data frame");
            let text = std::str::from_utf8(&data).expect("UTF-8");
            if let Some(json) = text.strip_prefix("event: snapshot\ndata: ") {
                let snapshot = serde_json::from_str(json.trim_end()).expect("JSON");
                return Some((snapshot, Instant::now()));
            }
        }
    }

    /// Lets every task run until all of them wait (the paused clock then
    /// moves a millisecond, far from any tick).
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    fn failure() -> Event {
        Event::RequestCompleted(RequestCompleted {
            at: SystemTime::now(),
            name: "fails",
            pool: Label::new("dash-unit"),
            command: Label::new("fails"),
            worker: None,
            correlation_id: None,
            duration: None,
            outcome: Outcome::Error,
            error: None,
            args: Vec::new(),
        })
    }

    /// Whether `kill` was rung: a rung `Notify` holds a permit, so a wait
    /// on it ends at its first poll.
    fn killed(kill: &Notify) -> bool {
        use std::future::Future;
        let mut waited = std::pin::pin!(kill.notified());
        waited
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
            .is_ready()
    }

    #[tokio::test(start_paused = true)]
    async fn snapshots_come_exactly_one_interval_apart_first_full_then_deltas() {
        let (hub, renders, start) = started(DashboardConfig::default().with_interval(INTERVAL));
        // The ticker's first tick passes with nobody watching.
        tokio::time::sleep(INTERVAL / 2).await;
        let opened = Instant::now();
        let (mut body, _kill) = viewer(&hub);
        let (first, at) = next(&mut body).await.unwrap();
        assert_eq!(first["kind"], "full");
        assert_eq!(first["interval_ms"], 500);
        assert_eq!(at, opened, "a new viewer's snapshot is pushed at once");
        let first = first["seq"].as_u64().unwrap();
        for tick in 1..=6u32 {
            let (snapshot, at) = next(&mut body).await.unwrap();
            assert_eq!(at - start, INTERVAL * tick, "tick {tick}");
            assert_eq!(snapshot["kind"], "delta", "{snapshot}");
            assert_eq!(snapshot["seq"], first + u64::from(tick), "no tick skipped");
        }
        assert_eq!(renders.load(Ordering::Relaxed), 7, "one snapshot a tick");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_pushed_at_once_or_min_gap_after_the_last_push_never_at_the_next_tick() {
        let (hub, _, start) = started(DashboardConfig::default().with_interval(INTERVAL));
        tokio::time::sleep(INTERVAL / 2).await;
        let (mut body, _kill) = viewer(&hub);
        next(&mut body).await.unwrap();
        let (_, ticked) = next(&mut body).await.unwrap();
        assert_eq!(ticked - start, INTERVAL);

        // Right after a tick: pushed as soon as MIN_GAP has passed.
        tokio::time::sleep(Duration::from_millis(10)).await;
        hub.hear(&failure());
        let (pushed, at) = next(&mut body).await.unwrap();
        assert_eq!(at - ticked, MIN_GAP, "{pushed}");
        let errors = pushed["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{pushed}");
        assert_eq!(errors[0]["pool"], "dash-unit");
        let id = errors[0]["id"].clone();

        // Longer after: pushed at once.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let failed = Instant::now();
        hub.hear(&failure());
        let (again, at) = next(&mut body).await.unwrap();
        assert_eq!(at, failed, "{again}");
        assert_eq!(again["kind"], "delta");
        assert_eq!(again["errors"].as_array().unwrap().len(), 1, "{again}");
        assert_ne!(again["errors"][0]["id"], id, "a delta repeats no error");

        // The regular tick still comes on time, with nothing new.
        let (regular, at) = next(&mut body).await.unwrap();
        assert_eq!(at - start, INTERVAL * 2);
        assert_eq!(regular["errors"], Value::Array(Vec::new()), "{regular}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_viewer_gets_a_full_snapshot_while_the_first_keeps_getting_deltas() {
        let (hub, renders, start) = started(DashboardConfig::default().with_interval(INTERVAL));
        tokio::time::sleep(INTERVAL / 2).await;
        let (mut first, _kill) = viewer(&hub);
        assert_eq!(next(&mut first).await.unwrap().0["kind"], "full");
        for _ in 0..2 {
            assert_eq!(next(&mut first).await.unwrap().0["kind"], "delta");
        }
        let (mut late, _late_kill) = viewer(&hub);
        // Asked for at once, computed MIN_GAP after the last tick: one
        // snapshot, full for the newcomer, delta for the first viewer.
        let (joined, at) = next(&mut late).await.unwrap();
        assert_eq!(joined["kind"], "full", "{joined}");
        assert_eq!(at - start, INTERVAL * 2 + MIN_GAP);
        let (same, _) = next(&mut first).await.unwrap();
        assert_eq!(
            (same["kind"].as_str(), &same["seq"]),
            (Some("delta"), &joined["seq"])
        );
        for _ in 0..3 {
            let (a, _) = next(&mut first).await.unwrap();
            let (b, _) = next(&mut late).await.unwrap();
            assert_eq!(
                (a["kind"].as_str(), b["kind"].as_str()),
                (Some("delta"), Some("delta"))
            );
            assert_eq!(a["seq"], b["seq"]);
        }
        assert_eq!(renders.load(Ordering::Relaxed), 7, "one snapshot a tick");
    }

    #[tokio::test(start_paused = true)]
    async fn every_viewer_gets_the_same_snapshot_computed_once_per_tick() {
        let (hub, renders, _) = started(DashboardConfig::default().with_interval(INTERVAL));
        tokio::time::sleep(INTERVAL / 2).await;
        let mut viewers: Vec<_> = (0..20).map(|_| viewer(&hub)).collect();
        for round in 1..=3u64 {
            for (body, _) in &mut viewers {
                let (snapshot, _) = next(body).await.unwrap();
                assert_eq!(snapshot["seq"], round);
                assert_eq!(snapshot["viewers"], 20);
            }
            assert_eq!(renders.load(Ordering::Relaxed) as u64, round);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_viewer_that_stops_reading_is_dropped_and_the_others_keep_streaming() {
        let buffer = 4;
        let (hub, _, _) = started(
            DashboardConfig::default()
                .with_interval(INTERVAL)
                .with_viewer_buffer(buffer),
        );
        tokio::time::sleep(INTERVAL / 2).await;
        let (mut reader, reader_kill) = viewer(&hub);
        let (stalled, stalled_kill) = viewer(&hub);
        // The stalled viewer's channel holds the `retry:` preamble and
        // `buffer` snapshots; the one after does not fit.
        for unread in 1..=buffer + 1 {
            let (snapshot, _) = next(&mut reader).await.unwrap();
            assert_eq!(snapshot["viewers_dropped"], 0, "{snapshot}");
            settle().await;
            let dropped = unread == buffer + 1;
            assert_eq!(killed(&stalled_kill), dropped, "after {unread} unread");
            assert_eq!(hub.dropped.load(Ordering::Relaxed), u64::from(dropped));
        }
        for _ in 0..3 {
            let (snapshot, _) = next(&mut reader).await.unwrap();
            assert_eq!(snapshot["viewers_dropped"], 1, "{snapshot}");
        }
        // Its connection closes, which drops the body.
        drop(stalled);
        let (snapshot, _) = next(&mut reader).await.unwrap();
        assert_eq!(snapshot["viewers"], 1, "{snapshot}");
        assert!(!killed(&reader_kill), "the reader was never dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn switching_the_dashboard_off_ends_open_streams_at_once() {
        let (hub, _, start) = started(DashboardConfig::default().with_interval(INTERVAL));
        tokio::time::sleep(INTERVAL / 2).await;
        let (mut body, _kill) = viewer(&hub);
        next(&mut body).await.unwrap();
        next(&mut body).await.unwrap();
        tokio::time::sleep(INTERVAL / 4).await;
        let switched = Instant::now();
        hub.set_enabled(false);
        assert!(next(&mut body).await.is_none(), "the stream ends");
        assert_eq!(
            Instant::now() - switched,
            Duration::ZERO,
            "at once, not at the next tick"
        );
        assert!(switched - start < INTERVAL * 2);
    }
}
