//! One flagship pool of real Python workers, observed as an operator runs
//! it, shared by every conformance test: its HTTP server (health, metrics,
//! dashboard), JSON logs, memory sampler and error-rate alert, and every
//! event of its pool. Tests take turns (readiness, logging and the
//! recorder are process-wide); each starts from a settled pool.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use poolscope::alerts::AlertRule;
use poolscope::clock::ManualClock;
use poolscope::events::{Event, Subscription};
use poolscope::http::{Endpoint, HealthConfig, ServerControls, ServerHandle};
use poolscope::logging::{LevelControl, LogConfig, LogGuard};
use serde_json::Value;

use crate::common::{self, Buffer, PATIENCE};
use crate::pool::{self, PoolConfig, PythonPool};

/// The pool's name.
pub const POOL: &str = "conf";
/// Its workers.
pub const SIZE: usize = 2;
/// Its queue.
pub const QUEUE: usize = 8;

/// What every test works with.
pub struct Harness {
    pub pool: PythonPool,
    pub addr: SocketAddr,
    pub controls: ServerControls,
    pub levels: LevelControl,
    /// The error-rate alert's clock: it judges when a test advances it.
    pub alert_clock: ManualClock,
    logs: Buffer,
    events: Arc<Mutex<Vec<Event>>>,
    // Kept alive for the whole binary.
    _server: ServerHandle,
    _logs: LogGuard,
    _subscription: Subscription,
    _memory: poolscope::memory::MemorySampler,
    _alerts: poolscope::alerts::AlertWatcher,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
static TURN: Mutex<()> = Mutex::new(());

/// The error-rate alert's threshold.
pub const ALERT_THRESHOLD: f64 = 0.5;
/// The error-rate alert's window.
pub const ALERT_WINDOW: Duration = Duration::from_secs(5);

/// The runtime every test runs on: the pool's tasks live in it.
fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let logs = Buffer::default();
        let events = Arc::new(Mutex::new(Vec::new()));
        runtime().block_on(async {
            let metrics = poolscope::metrics::install().expect("the recorder");
            let log_guard = poolscope::logging::init(
                LogConfig::json()
                    .with_level("info")
                    .expect("a level")
                    .with_flush_timeout(PATIENCE)
                    .with_writer(logs.clone()),
            )
            .expect("logging");
            let sink = events.clone();
            let subscription = poolscope::events::subscribe(move |event| {
                let ours = event.pool().is_some_and(|p| p.as_str() == POOL);
                let alert = matches!(event, Event::AlertFired(_) | Event::AlertResolved(_));
                if ours || alert {
                    sink.lock().unwrap().push(event.clone());
                }
            });
            let memory = poolscope::memory::MemorySampler::start(Duration::from_millis(200))
                .expect("sampler");
            let alert_clock = ManualClock::new();
            let rule = poolscope::alerts::ErrorRateRule::new(ALERT_THRESHOLD)
                .expect("a rule")
                .with_window(ALERT_WINDOW)
                .with_min_requests(10)
                .with_every(Duration::from_millis(100));
            let alerts = poolscope::alerts::watch_with_clock(
                vec![AlertRule::from(&rule)],
                rule.every,
                alert_clock.clone(),
            )
            .expect("the alert");
            let server = poolscope::http::Server::builder()
                .with_address("127.0.0.1:0".parse().unwrap())
                .with_metrics(metrics.clone())
                .with_shutdown_grace(Duration::from_secs(1))
                .build()
                .expect("bind")
                .start()
                .expect("start");
            let mut config = PoolConfig::new(POOL);
            config.size = SIZE;
            config.queue_capacity = QUEUE;
            config.cleanup_every = Duration::from_millis(100);
            config.restart_backoff = Duration::from_millis(50);
            config.start_timeout = PATIENCE;
            let pool = pool::start(config)
                .await
                .expect("the Python pool starts (is grpcio installed?)");
            Harness {
                pool,
                addr: server.local_addr(),
                controls: server.controls(),
                levels: log_guard.level_control(),
                alert_clock,
                logs: logs.clone(),
                events: events.clone(),
                _server: server,
                _logs: log_guard,
                _subscription: subscription,
                _memory: memory,
                _alerts: alerts,
            }
        })
    })
}

/// Runs one conformance test on the shared pool, after the tests before it
/// and with the pool settled: every worker available, nothing queued, the
/// default health thresholds, every endpoint on, recording on, every event
/// kept, log level `info`.
pub fn run<F, Fut>(body: F)
where
    F: FnOnce(&'static Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    let harness = harness();
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        harness.settle().await;
        body(harness).await;
    });
}

impl Harness {
    async fn settle(&self) {
        poolscope::set_enabled(true);
        poolscope::events::set_sample_rate(1.0);
        self.levels.set_level("info").expect("info");
        self.controls
            .set_health(HealthConfig::default())
            .expect("the default health");
        for endpoint in Endpoint::ALL {
            self.controls.set_enabled(endpoint, true);
        }
        common::eventually_async("a settled pool", async || {
            common::pool_state(POOL)
                .is_some_and(|s| s.workers.available == SIZE as u64 && s.queue_depth == 0)
        })
        .await;
    }

    /// GET `path` on the server.
    pub async fn get(&self, path: &str) -> crate::client::Reply {
        crate::client::get(self.addr, path).await
    }

    /// How many events were seen so far: pass to [`Harness::events_since`].
    pub fn event_mark(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// The pool's events (and alerts) seen since `mark`.
    pub fn events_since(&self, mark: usize) -> Vec<Event> {
        self.events.lock().unwrap()[mark..].to_vec()
    }

    /// Every event seen since the pool was built, its start included.
    pub fn all_events(&self) -> Vec<Event> {
        self.events_since(0)
    }

    /// Waits until an event since `mark` matches, and returns it.
    pub async fn wait_event<T>(
        &self,
        mark: usize,
        what: &str,
        pick: impl Fn(&Event) -> Option<T>,
    ) -> T {
        common::until_async(what, async || {
            self.events_since(mark).iter().find_map(&pick)
        })
        .await
    }

    /// How much of the log was written so far: pass to
    /// [`Harness::lines_since`].
    pub fn log_mark(&self) -> usize {
        self.logs.text().len()
    }

    /// The JSON log lines written since `mark`, parsed.
    pub fn lines_since(&self, mark: usize) -> Vec<Value> {
        self.logs.text()[mark..]
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// The raw log text written since `mark`.
    pub fn text_since(&self, mark: usize) -> String {
        self.logs.text()[mark..].to_owned()
    }

    /// Waits until a log line since `mark` matches, and returns it.
    pub async fn wait_line(&self, mark: usize, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        common::until_async(what, async || {
            self.lines_since(mark).into_iter().find(|l| pick(l))
        })
        .await
    }

    /// The value of one series on `/metrics`, as Prometheus would read it.
    pub async fn sample(&self, series: &str) -> Option<f64> {
        common::sample(&self.get("/metrics").await.body, series)
    }

    /// Holds `n` workers busy until the returned gates open.
    pub async fn hold(&self, n: usize, name: &str) -> Held {
        let gates: Vec<common::GateFile> = (0..n)
            .map(|i| common::GateFile::new(&format!("{name}-{i}")))
            .collect();
        let calls = gates
            .iter()
            .map(|gate| {
                let (pool, args) = (self.pool.clone(), gate.args());
                tokio::spawn(async move { pool.execute("wait", args, None).await })
            })
            .collect();
        common::eventually_async("the workers held", async || {
            common::pool_state(POOL).is_some_and(|s| s.workers.busy >= n as u64)
        })
        .await;
        Held { gates, calls }
    }
}

/// Requests queued behind held workers.
pub struct Queued(Vec<tokio::task::JoinHandle<Result<Value, pool::PoolError>>>);

impl Queued {
    /// Waits until every queued request has been answered, and checks it
    /// succeeded.
    pub async fn finish(self) {
        for call in self.0 {
            call.await
                .expect("the queued call")
                .expect("the queued request");
        }
    }
}

impl Harness {
    /// Sends `n` requests that cannot start (hold the workers first), and
    /// waits until the pool's queue holds them.
    pub async fn queue(&self, n: usize) -> Queued {
        let calls = (0..n)
            .map(|i| {
                let pool = self.pool.clone();
                tokio::spawn(async move {
                    pool.execute("echo", serde_json::json!({ "queued": i }), None)
                        .await
                })
            })
            .collect();
        common::eventually_async("the requests queued", async || {
            common::pool_state(POOL).is_some_and(|s| s.queue_depth == n as u64)
        })
        .await;
        Queued(calls)
    }
}

/// Workers held busy by gated requests.
pub struct Held {
    gates: Vec<common::GateFile>,
    calls: Vec<tokio::task::JoinHandle<Result<Value, pool::PoolError>>>,
}

impl Held {
    /// Lets every held request finish, and waits for them.
    pub async fn release(self) {
        for gate in &self.gates {
            gate.open();
        }
        for call in self.calls {
            call.await
                .expect("the held call")
                .expect("the held request");
        }
    }
}
