//! What `#[observe]` costs next to other instrumentation crates, in one run:
//! the same ~1.4 ns function plain, under poolscope (on, and switched off at
//! run time), under `#[tracing::instrument]` with a formatting subscriber, and
//! under `#[fastrace::trace]` with a root span per call.
//!
//! ```text
//! cargo bench -p poolscope-benches --bench peers --features observe,metrics
//! ```
//!
//! The headline group, `peers/cpu`, times each batch in process CPU time, so
//! work a peer defers to a background thread (fastrace's collector) is
//! counted as well as work on the calling thread; `peers/wall` is the same
//! batches on the wall clock, where deferred work that keeps up runs unseen
//! on the other core (fastrace's does not keep up with a call per
//! microsecond: its batches end waiting in `fastrace::flush`). Results, and
//! what each peer records, are in BENCHMARKS.md.

use std::hint::black_box;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use fastrace::collector::{Config, Reporter, SpanContext, SpanRecord};
use fastrace::Span;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::MakeWriter;

use poolscope_benches::subject;

use subject::{observed, plain};

/// The subject's body under tracing; `skip_all` so that no argument is
/// formatted and the span's own bookkeeping and line are what is measured.
#[tracing::instrument(skip_all)]
#[inline(never)]
fn traced(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

/// The subject's body under fastrace, copied so that the attribute is the
/// only difference from `plain`.
#[fastrace::trace]
#[inline(never)]
fn fastraced(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

/// What fastrace records per request: a root span, as a request handler
/// starts one, with the traced call under it. Without a root, fastrace
/// records nothing.
fn fastrace_request(x: u64) -> u64 {
    let root = Span::root("request", SpanContext::random());
    let _parent = root.set_local_parent();
    fastraced(x)
}

/// Receives fastrace's finished spans and drops them, so the bench measures
/// recording and collection but no exporter; it counts them only to prove the
/// collector did deliver.
struct Discard(Arc<AtomicU64>);

impl Reporter for Discard {
    fn report(&mut self, spans: Vec<SpanRecord>) {
        self.0.fetch_add(spans.len() as u64, Ordering::Relaxed);
    }
}

/// A `tracing` writer that keeps what it is given, to check once that the
/// subscriber under test really formats a timed line per call.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The tracing peer's subscriber: `FmtSpan::CLOSE` makes it time every span
/// and format a line with `time.busy` / `time.idle` when it closes, so the
/// peer records a timing per call instead of filtering the span out.
fn fmt_subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_span_events(FmtSpan::CLOSE)
        .finish()
}

/// Reads one of the kernel's clocks. `CLOCK_PROCESS_CPUTIME_ID` sums every
/// thread of the process, which is what makes background collectors count.
fn read(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec and `clock` a clock id
    // Linux always has; clock_gettime writes nothing else.
    let rc = unsafe { libc::clock_gettime(clock, &mut now) };
    assert_eq!(rc, 0, "clock_gettime({clock}) failed");
    Duration::new(
        u64::try_from(now.tv_sec).expect("CPU and monotonic clocks are never negative"),
        u32::try_from(now.tv_nsec).expect("tv_nsec is below 10^9"),
    )
}

/// Runs `iters` calls and then `settle` (a peer's flush) inside one reading
/// of `clock`, so a batch is charged for everything it caused.
fn batch(
    clock: libc::clockid_t,
    iters: u64,
    call: impl Fn(u64) -> u64,
    settle: impl FnOnce(),
) -> Duration {
    let start = read(clock);
    for _ in 0..iters {
        black_box(call(black_box(7)));
    }
    settle();
    read(clock).saturating_sub(start)
}

/// Every peer on the same clock in one group, plain first, so the others
/// read as additions to it measured under the same load.
fn compare(c: &mut Criterion, name: &str, clock: libc::clockid_t) {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    peer(&mut group, "plain", clock, plain, || {});
    peer(&mut group, "poolscope-on", clock, observed, || {});
    poolscope::set_enabled(false);
    peer(&mut group, "poolscope-runtime-off", clock, observed, || {});
    poolscope::set_enabled(true);
    // Scoped: a global default can be set only once per process, and only
    // this entry should run under a subscriber.
    tracing::subscriber::with_default(fmt_subscriber(io::sink), || {
        peer(
            &mut group,
            "tracing-instrument-fmt-close",
            clock,
            traced,
            || {},
        )
    });
    peer(
        &mut group,
        "fastrace-root-and-trace",
        clock,
        fastrace_request,
        fastrace::flush,
    );
    group.finish();
}

/// One entry, through `iter_custom`: criterion's own timer would read only
/// the wall clock of the calling thread.
fn peer(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    clock: libc::clockid_t,
    call: impl Fn(u64) -> u64 + Copy,
    settle: impl FnOnce() + Copy,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| batch(clock, iters, call, settle))
    });
}

/// Checks once that every peer records what the table in BENCHMARKS.md says
/// it does (a peer that silently records nothing would look cheap), then
/// runs both groups.
fn peers(c: &mut Criterion) {
    // A real recorder, as an application would have: with it the Prometheus
    // exposition shows poolscope's counter and histogram for the subject.
    let metrics = poolscope::metrics::install().expect("no other recorder in this bench");
    observed(7);
    let exposition = metrics.render();
    assert!(
        exposition
            .contains(r#"poolscope_requests_total{pool="bench",command="work",outcome="ok"}"#)
            && exposition.contains("poolscope_request_duration_seconds_bucket"),
        "poolscope records no counter or histogram for the subject:\n{exposition}"
    );

    let lines = Capture::default();
    let seen = lines.clone();
    tracing::subscriber::with_default(fmt_subscriber(move || seen.clone()), || traced(7));
    let line = String::from_utf8_lossy(&lines.0.lock().expect("not poisoned")).into_owned();
    assert!(
        line.contains("close") && line.contains("time.busy"),
        "the tracing peer formats no timed line: {line:?}"
    );

    let reported = Arc::new(AtomicU64::new(0));
    fastrace::set_reporter(Discard(reported.clone()), Config::default());
    fastrace_request(7);
    fastrace::flush();
    assert_eq!(
        reported.load(Ordering::Relaxed),
        2,
        "fastrace delivers the root and the traced span"
    );

    compare(c, "peers/cpu", libc::CLOCK_PROCESS_CPUTIME_ID);
    compare(c, "peers/wall", libc::CLOCK_MONOTONIC);
}

criterion_group!(benches, peers);
criterion_main!(benches);
