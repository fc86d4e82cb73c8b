//! Chaos: workers of the flagship pool are killed with SIGKILL every few
//! hundred milliseconds while callers keep it busy, until a number of kills
//! is reached (however long the restarts take on the machine). Asserts that
//! every crash is reported exactly once with its context (signal, uptime,
//! the worker's own stderr), that the pool recovers, that `/health/ready`
//! agrees with the pool's state whenever no worker came or went around a
//! probe, that no request holds a worker past its timeout, and that every
//! call is answered and counted once, by outcome.
//!
//! CI runs it until 40 kills (what 12 s of it made on a quick machine). A
//! longer run, with a fixed seed if wanted:
//!
//! ```text
//! POOLSCOPE_CHAOS_KILLS=440 POOLSCOPE_CHAOS_SEED=7 \
//!   cargo test --release --features full --test chaos -- --nocapture
//! ```

use poolscope_testkit as common;
use poolscope_testkit::client;
use python_pool as pool;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::get;
use hyper::StatusCode;
use pool::PoolError;
use poolscope::events::Event;
use poolscope::http::{HealthConfig, Server};
use poolscope::WorkerState;
use serde_json::json;
use tokio::sync::Semaphore;

const POOL: &str = "chaos";
const SIZE: usize = 4;
/// `/health/ready` wants this many workers up.
const MIN_READY: usize = 3;
const TIMEOUT: Duration = Duration::from_secs(2);
/// How long anything that waits on Python restarts may take: a storm of
/// them on a loaded machine takes seconds each. Every wait is for a
/// condition, so this costs nothing when the machine is quick.
const STORM: Duration = common::PATIENCE;

/// A small xorshift: the run's choices follow from the seed it prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn workers() -> Vec<poolscope::stats::WorkerInfo> {
    common::pool_state(POOL)
        .map(|s| s.worker_list)
        .unwrap_or_default()
}

/// Workers up, and every worker's (id, up?, pid): two equal readings around
/// a request mean no worker came or went while it was answered. (Available
/// and busy both count as up, and flip with every request.)
fn reading() -> (u64, Vec<(String, bool, Option<u32>)>) {
    poolscope::stats::pools()
        .into_iter()
        .find(|p| p.pool.as_str() == POOL)
        .and_then(|p| p.state)
        .map_or((0, Vec::new()), |s| {
            let list = s
                .worker_list
                .into_iter()
                .map(|w| {
                    let up = matches!(w.state, WorkerState::Available | WorkerState::Busy);
                    (w.id, up, w.pid)
                })
                .collect();
            (s.workers.up(), list)
        })
}

/// The pid a worker wrote in its own log lines (`"pid": N,`), which the
/// crash context carries in its stderr tail.
/// The process a crash names.
fn crashed_pid(crash: &poolscope::events::WorkerCrashed) -> Option<u32> {
    crash.error.crash.as_ref()?.pid
}

/// One process killed by the test.
struct Kill {
    pid: u32,
    worker: String,
}

/// SIGKILLs one worker; the kill, if the process was there to be killed.
async fn sigkill(victim: &poolscope::stats::WorkerInfo) -> Option<Kill> {
    let pid = victim.pid?;
    let killed = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await
        .expect("kill(1)")
        .success();
    killed.then(|| Kill {
        pid,
        worker: victim.id.clone(),
    })
}

/// Workers the killer may kill: up, not the hang worker, not killed yet.
fn candidates(spared: &str, kills: &[Kill]) -> Vec<poolscope::stats::WorkerInfo> {
    workers()
        .into_iter()
        .filter(|w| {
            matches!(w.state, WorkerState::Available | WorkerState::Busy)
                && w.id != spared
                && w.pid.is_some_and(|pid| !kills.iter().any(|k| k.pid == pid))
        })
        .collect()
}

/// Readiness answers the poller judged, by verdict.
#[derive(Default)]
struct Judged {
    ready: AtomicU64,
    unready: AtomicU64,
    unsettled: AtomicU64,
}

/// What callers got back, by command and by result.
#[derive(Default)]
struct Tally {
    /// (command, outcome) → answers.
    answers: BTreeMap<(&'static str, &'static str), u64>,
    /// Failures by kind.
    kinds: BTreeMap<&'static str, u64>,
    /// Crash errors handed to callers, by the crashed worker's pid.
    crash_pids: Vec<Option<u32>>,
    slowest: Duration,
    slowest_hang: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_workers_under_load_reports_each_crash_once_and_recovers() {
    let target: usize = std::env::var("POOLSCOPE_CHAOS_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("POOLSCOPE_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("chaos: until {target} kills, seed {seed}");
    let metrics = poolscope::metrics::install().expect("recorder");
    let server = Server::builder()
        .with_address("127.0.0.1:0".parse().unwrap())
        .with_metrics(metrics.clone())
        .with_health(
            HealthConfig::default()
                .with_min_ready_workers(MIN_READY)
                // Hangs last until the request timeout: only a full queue
                // fails the capacity check here.
                .with_max_queue_wait(Duration::from_secs(3600)),
        )
        .build()
        .unwrap()
        .start()
        .unwrap();
    let addr = server.local_addr();
    let captured = common::capture(POOL);
    let mut config = pool::PoolConfig::new(POOL);
    config.size = SIZE;
    config.request_timeout = TIMEOUT;
    config.restart_backoff = Duration::from_millis(50);
    config.start_timeout = STORM;
    // Open (a crash takes one of plenty of permits) except while the
    // massacre holds every restart.
    let restarts = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    config.restart_gate = Some(restarts.clone());
    let pool = pool::start(config).await.expect("the Python pool");

    // Hanging commands go through a session, so they run on one worker
    // (the "hang worker") that the killer spares: the pool kills it itself
    // when a command times out, and says so in the crash's reason.
    let session = pool.create_session(Duration::from_secs(3600), Vec::new());
    let calling = Arc::new(AtomicBool::new(true));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let callers: Vec<_> = (0..7u64)
        .map(|caller| {
            let pool = pool.clone();
            let tally = tally.clone();
            let session = session.clone();
            let calling = calling.clone();
            tokio::spawn(async move {
                let mut i = 0u64;
                while calling.load(Ordering::Relaxed) {
                    i += 1;
                    let hang = caller == 0 && i.is_multiple_of(4);
                    let (command, args, session) = if hang {
                        ("sleep", json!({ "ms": 60_000 }), Some(session.as_str()))
                    } else if i.is_multiple_of(20) {
                        ("fail", json!({ "message": "chaos" }), None)
                    } else if i.is_multiple_of(3) {
                        ("sleep", json!({ "ms": 5 }), None)
                    } else {
                        ("echo", json!({ "caller": caller, "i": i }), None)
                    };
                    let started = Instant::now();
                    let result = pool.execute(command, args, session).await;
                    let took = started.elapsed();
                    let mut tally = tally.lock().unwrap();
                    let outcome = match &result {
                        Ok(_) => "ok",
                        Err(PoolError::Timeout(_)) => "timeout",
                        Err(_) => "error",
                    };
                    *tally.answers.entry((command, outcome)).or_default() += 1;
                    if hang {
                        tally.slowest_hang = tally.slowest_hang.max(took);
                    } else {
                        tally.slowest = tally.slowest.max(took);
                    }
                    if let Err(err) = result {
                        let kind = match &err {
                            PoolError::Python { .. } => "python",
                            PoolError::Crash(crash) => {
                                assert_eq!(
                                    crash.context.signal.as_deref(),
                                    Some("SIGKILL"),
                                    "{err}"
                                );
                                let pid = crash.context.pid;
                                tally.crash_pids.push(pid);
                                "crash"
                            }
                            PoolError::Timeout(_) => "timeout",
                            PoolError::Grpc(_) => "grpc",
                            other => panic!("a failure chaos cannot explain: {other}"),
                        };
                        *tally.kinds.entry(kind).or_default() += 1;
                    }
                }
            })
        })
        .collect();

    // Readiness, polled all along. The pool's state is read just before and
    // just after each answer; when both readings agree the answer must too.
    let stop = Arc::new(AtomicBool::new(false));
    let judged = Arc::new(Judged::default());
    let polling = {
        let (stop, judged) = (stop.clone(), judged.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let before = reading();
                let reply = get(addr, "/health/ready").await;
                let after = reading();
                let up = before.0;
                let settled = before == after;
                // The queue fills and drains with every request under this
                // load, too fast for readings around a probe to pin down:
                // a failed capacity check (a full queue) is allowed any time.
                let failed: Vec<String> = reply.json()["failed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["check"].as_str().map(str::to_owned))
                    .collect();
                match (settled, up >= MIN_READY as u64) {
                    (true, true) => {
                        assert!(
                            failed.iter().all(|check| check == "capacity"),
                            "{up} up: {}",
                            reply.body
                        );
                        assert_eq!(
                            reply.status == StatusCode::OK,
                            failed.is_empty(),
                            "{}",
                            reply.body
                        );
                        judged.ready.fetch_add(1, Ordering::SeqCst);
                    }
                    (true, false) => {
                        assert_eq!(
                            reply.status,
                            StatusCode::SERVICE_UNAVAILABLE,
                            "{up} up: {}",
                            reply.body
                        );
                        let failed = &reply.json()["failed"][0];
                        assert_eq!(
                            (failed["check"].as_str(), failed["pool"].as_str()),
                            (Some("workers"), Some(POOL)),
                            "{}",
                            reply.body
                        );
                        assert_eq!(failed["value"].as_f64(), Some(up as f64), "{}", reply.body);
                        judged.unready.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {
                        judged.unsettled.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };

    // The killer: one worker every 150–400 ms (once one is up), and once,
    // after half the kills, every worker it may kill at the same moment.
    let mut rng = Rng(seed);
    let mut kills: Vec<Kill> = Vec::new();
    let spared = pool.session_worker(&session).unwrap().to_string();
    let mut massacre_done = false;
    while kills.len() < target {
        tokio::time::sleep(Duration::from_millis(150 + rng.below(250))).await;
        let mut up = Vec::new();
        common::eventually_async("a worker back up to kill", async || {
            up = candidates(&spared, &kills);
            !up.is_empty()
        })
        .await;
        if !massacre_done && kills.len() >= target / 2 {
            massacre_done = true;
            // Restarts are held meanwhile, so fewer than MIN_READY workers
            // up is a state the pool stays in until readiness has been
            // judged in it, however slow the machine. A worker that was
            // already restarting comes up, and is killed too.
            let held = restarts.forget_permits(Semaphore::MAX_PERMITS);
            let unready = judged.unready.load(Ordering::SeqCst);
            common::eventually_async("readiness judged during the massacre", async || {
                assert!(!polling.is_finished(), "the readiness poller stopped");
                for victim in candidates(&spared, &kills) {
                    kills.extend(sigkill(&victim).await);
                }
                judged.unready.load(Ordering::SeqCst) > unready
            })
            .await;
            restarts.add_permits(held);
            continue;
        }
        let victim = &up[rng.below(up.len() as u64) as usize];
        kills.extend(sigkill(victim).await);
    }
    // The callers go on until a hang has timed out as well.
    common::eventually_async("a hang timed out", async || {
        assert!(!callers.iter().any(|c| c.is_finished()), "a caller stopped");
        tally.lock().unwrap().kinds.contains_key("timeout")
    })
    .await;
    calling.store(false, Ordering::Relaxed);
    for caller in callers {
        caller.await.expect("a caller panicked");
    }

    // Recovery: every worker back, then a burst that all succeeds.
    common::eventually_async("every worker back", async || {
        workers()
            .iter()
            .filter(|w| w.state == WorkerState::Available)
            .count()
            == SIZE
    })
    .await;
    let burst: Vec<_> = (0..100)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.execute("echo", json!({ "i": i }), None).await })
        })
        .collect();
    for call in burst {
        call.await
            .unwrap()
            .expect("after recovery every request succeeds");
    }
    tally
        .lock()
        .unwrap()
        .answers
        .entry(("echo", "ok"))
        .and_modify(|n| *n += 100)
        .or_insert(100);
    let ready = get(addr, "/health/ready").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    // Nothing comes or goes any more: the poller judges the pool ready.
    let judged_before = judged.ready.load(Ordering::SeqCst);
    common::eventually_async("readiness judged after recovery", async || {
        assert!(!polling.is_finished(), "the readiness poller stopped");
        judged.ready.load(Ordering::SeqCst) > judged_before
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    polling.await.expect("the readiness poller");
    let (judged_ready, judged_unready, unsettled) = (
        judged.ready.load(Ordering::SeqCst),
        judged.unready.load(Ordering::SeqCst),
        judged.unsettled.load(Ordering::SeqCst),
    );

    let text = metrics.render();
    common::promtool_check(&text);
    pool.shutdown();
    let events = captured.take();
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let crashes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::WorkerCrashed(c) => Some(c),
            _ => None,
        })
        .collect();
    println!(
        "answers {:?}; failures {:?}; {} kills (target {target}), {} crash events; slowest call {:?}, slowest hang {:?}; readiness judged {judged_ready} ready + {judged_unready} unready ({unsettled} while the state moved)",
        tally.answers,
        tally.kinds,
        kills.len(),
        crashes.len(),
        tally.slowest,
        tally.slowest_hang
    );

    // Each crash reported exactly once, with its context and the process
    // it names.
    let mut by_pid: HashMap<u32, usize> = HashMap::new();
    for crash in &crashes {
        let context = crash.error.crash.as_ref().expect("a crash context");
        assert_eq!(context.signal.as_deref(), Some("SIGKILL"), "{crash:?}");
        assert!(context.uptime.is_some(), "{crash:?}");
        assert!(crash.reason.contains("SIGKILL"), "{}", crash.reason);
        let pid = context
            .pid
            .unwrap_or_else(|| panic!("no pid in the crash: {crash:?}"));
        *by_pid.entry(pid).or_default() += 1;
    }
    assert!(
        by_pid.values().all(|n| *n == 1),
        "a process reported twice: {by_pid:?}"
    );
    for kill in &kills {
        let crash = crashes
            .iter()
            .find(|c| crashed_pid(c) == Some(kill.pid))
            .unwrap_or_else(|| panic!("the kill of pid {} was not reported", kill.pid));
        assert_eq!(crash.worker, kill.worker);
    }
    // The other crashes are the pool's own kills of workers stuck past the
    // timeout, which say so: one per timed-out request. (Which worker does
    // not tell them: on a machine slow enough for an ordinary call to pass
    // the timeout, the killer may hit that call's worker too.)
    let timed_out =
        |c: &&poolscope::events::WorkerCrashed| c.reason.contains(pool::KILLED_AFTER_TIMEOUT);
    let own: Vec<_> = crashes.iter().filter(|c| timed_out(c)).collect();
    let others: Vec<_> = crashes.iter().filter(|c| !timed_out(c)).collect();
    let timeouts = tally.kinds.get("timeout").copied().unwrap_or(0);
    assert!(timeouts > 0, "no hang timed out");
    assert_eq!(own.len() as u64, timeouts, "{own:?}");
    for crash in &own {
        let context = crash.error.crash.as_ref().unwrap();
        assert!(context.last_command.is_some(), "{crash:?}");
    }
    for crash in &others {
        let pid = crashed_pid(crash);
        assert!(
            kills.iter().any(|k| Some(k.pid) == pid),
            "a crash nobody caused: {crash:?}"
        );
    }
    // A request failed by a crash carries that crash's context: the pid is
    // one that crashed.
    for pid in &tally.crash_pids {
        let pid = pid.expect("a crash handed to a caller names its process");
        assert!(by_pid.contains_key(&pid), "pid {pid} never reported");
    }
    assert!(tally.crash_pids.len() <= crashes.len());
    let counted = common::expect_sample(
        &text,
        &format!("poolscope_worker_crashes_total{{pool=\"{POOL}\",kind=\"signal\"}}"),
    );
    assert_eq!(counted, crashes.len() as f64, "crashes counted once");

    // No request hangs past its timeout. The timeout bounds the time a
    // request holds a worker: no busy period of this pool reached the 10 s
    // bucket (timeout 2 s, plus the kill and the exit, against hangs of
    // 60 s). A call may also wait
    // in the queue for a worker to restart (backoff doubling per consecutive
    // crash up to 5 s, then Python starts, several at once on a loaded
    // machine), so end to end the bound only says that nothing waits
    // forever.
    let busy = |le: &str| {
        common::expect_sample(
            &text,
            &format!(
                "poolscope_worker_busy_duration_seconds_bucket{{pool=\"{POOL}\",le=\"{le}\"}}"
            ),
        )
    };
    assert_eq!(busy("10"), busy("+Inf"), "a worker stayed busy past 10 s");
    assert!(tally.slowest_hang >= TIMEOUT, "{:?}", tally.slowest_hang);
    assert!(tally.slowest_hang < STORM, "{:?}", tally.slowest_hang);
    assert!(tally.slowest < STORM, "{:?}", tally.slowest);

    // Every answer counted once, by command and outcome.
    for ((command, outcome), answers) in &tally.answers {
        let series =
            format!("poolscope_requests_total{{pool=\"{POOL}\",command=\"{command}\",outcome=\"{outcome}\"}}");
        assert_eq!(
            common::sample(&text, &series).unwrap_or(0.0),
            *answers as f64,
            "{series}"
        );
    }

    // Readiness was judged both ways, and never wrongly.
    assert!(
        judged_ready > 0 && judged_unready > 0,
        "{judged_ready} ready, {judged_unready} unready"
    );
    server.shutdown().await;
}
