//! A small in-process pool of worker threads, observed with poolscope.
//!
//! ```text
//! cargo run --release --features observe --example quickstart   # prints the Prometheus text
//! cargo run --release --example quickstart                       # same program, poolscope compiled out
//!
//! # keeps the pool busy and serves /health, /health/ready, /health/detailed, /metrics
//! cargo run --release --features observe,http --example quickstart -- --serve 127.0.0.1:9464 --seconds 60
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use poolscope::{observe, WorkerState};

#[derive(Debug)]
struct JobError(String);

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job failed: {}", self.0)
    }
}

impl std::error::Error for JobError {}

struct Job {
    input: u64,
    reply: Sender<Result<u64, JobError>>,
}

struct ThreadPool {
    jobs: SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    observed: poolscope::Pool,
    threads: Vec<JoinHandle<()>>,
}

#[observe(kind = worker_start, pool = "quickstart", worker = id, skip(jobs, observed, queued))]
fn spawn_worker(
    id: usize,
    jobs: Arc<Mutex<Receiver<Job>>>,
    observed: poolscope::Pool,
    queued: Arc<AtomicUsize>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("worker-{id}"))
        .spawn(move || {
            let worker = observed.worker(id);
            worker.set_state(WorkerState::Available);
            loop {
                let job = match jobs.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok(job) = job else { break };
                observed.queue_depth(queued.fetch_sub(1, Ordering::Relaxed) - 1);
                worker.set_state(WorkerState::Busy);
                let _ = job.reply.send(run(job.input));
                worker.set_state(WorkerState::Available);
            }
            worker.set_state(WorkerState::Stopped);
        })
}

/// The work itself: squares, slowly, and refuses multiples of 7.
fn run(input: u64) -> Result<u64, JobError> {
    std::thread::sleep(Duration::from_micros(200 + input % 5 * 100));
    if input.is_multiple_of(7) {
        return Err(JobError(format!("{input} is a multiple of 7")));
    }
    Ok(input * input)
}

#[observe(kind = pool_start, pool = "quickstart", size = workers)]
fn start(workers: usize, queue_capacity: usize) -> std::io::Result<ThreadPool> {
    let (jobs, rx) = mpsc::sync_channel(queue_capacity);
    let rx = Arc::new(Mutex::new(rx));
    let observed = poolscope::Pool::new("quickstart");
    observed.set_size(workers);
    let queued = Arc::new(AtomicUsize::new(0));
    let threads = (0..workers)
        .map(|id| spawn_worker(id, rx.clone(), observed.clone(), queued.clone()))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(ThreadPool {
        jobs,
        queued,
        observed,
        threads,
    })
}

impl ThreadPool {
    #[observe(pool = "quickstart", command = "square")]
    fn execute(&self, input: u64) -> Result<u64, JobError> {
        let (reply, answer) = mpsc::channel();
        let depth = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        self.observed.queue_depth(depth);
        if let Err(mpsc::TrySendError::Full(job)) = self.jobs.try_send(Job { input, reply }) {
            // Reported once per episode, however many callers find it full.
            self.observed.saturated(depth, self.observed.available());
            self.jobs
                .send(job)
                .map_err(|_| JobError("pool stopped".into()))?;
        }
        answer.recv().map_err(|_| JobError("worker gone".into()))?
    }

    fn shutdown(self) {
        drop(self.jobs);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Runs `callers` threads that each send `per_caller` requests.
fn drive(pool: &ThreadPool, callers: u64, per_caller: u64) -> usize {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..callers)
            .map(|caller| {
                s.spawn(move || {
                    (0..per_caller)
                        .filter(|i| pool.execute(caller * per_caller + i).is_ok())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    })
}

struct Options {
    serve: Option<std::net::SocketAddr>,
    seconds: u64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        serve: None,
        seconds: 60,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("`{name}` needs a value"));
        match arg.as_str() {
            "--serve" => {
                let addr = value("--serve")?;
                options.serve = Some(addr.parse().map_err(|e| format!("`--serve {addr}`: {e}"))?);
            }
            "--seconds" => {
                let seconds = value("--seconds")?;
                options.seconds = seconds
                    .parse()
                    .map_err(|e| format!("`--seconds {seconds}`: {e}"))?;
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`: expected `--serve ADDR` and `--seconds N`"
                ))
            }
        }
    }
    Ok(options)
}

fn main() -> std::process::ExitCode {
    match quickstart() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("quickstart: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn quickstart() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let metrics = poolscope::metrics::install()?;
    if let Some(address) = options.serve {
        return serve(address, options.seconds);
    }
    let events = Arc::new(Mutex::new(
        std::collections::BTreeMap::<&'static str, usize>::new(),
    ));
    let counts = events.clone();
    let _subscription = poolscope::events::subscribe(move |event| {
        if let Ok(mut counts) = counts.lock() {
            *counts.entry(event.name()).or_default() += 1;
        }
    });

    let pool = start(4, 8)?;
    let ok = drive(&pool, 4, 50);
    pool.shutdown();

    // Written, not printed: a closed pipe (`| head`) is an error, not a panic.
    let mut out = std::io::stdout().lock();
    writeln!(out, "# 200 requests, {ok} succeeded")?;
    if !poolscope::COMPILED_IN {
        writeln!(
            out,
            "# poolscope is compiled out: build with `--features observe` to see what it records"
        )?;
        return Ok(());
    }
    if let Ok(counts) = events.lock() {
        for (name, n) in counts.iter() {
            writeln!(out, "# event {name}: {n}")?;
        }
    }
    write!(out, "{}", metrics.render())?;
    Ok(())
}

/// Keeps the pool busy for `seconds` while serving the HTTP endpoints.
#[cfg(feature = "http")]
fn serve(address: std::net::SocketAddr, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    use poolscope::http::{HealthConfig, Server};
    use std::time::{Duration, Instant};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let server = Server::builder()
        .with_address(address)
        .with_health(
            HealthConfig::default()
                .with_max_queue_depth(8)
                .with_max_error_rate(0.5),
        )
        .build()?;
    let addr = server.local_addr();
    let handle = runtime.block_on(async { server.start() })?;
    println!("serving on http://{addr} for {seconds} s; try:");
    for path in ["/health", "/health/ready", "/health/detailed", "/metrics"] {
        println!("  curl -s http://{addr}{path}");
    }
    let pool = start(4, 8)?;
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut sent = 0;
    while Instant::now() < until {
        drive(&pool, 2, 20);
        sent += 40;
        std::thread::sleep(Duration::from_millis(20));
    }
    pool.shutdown();
    runtime.block_on(handle.shutdown());
    println!("sent {sent} requests; stopped");
    Ok(())
}

#[cfg(not(feature = "http"))]
fn serve(_: std::net::SocketAddr, _: u64) -> Result<(), Box<dyn std::error::Error>> {
    Err("`--serve` needs the HTTP server: build with `--features observe,http`".into())
}
