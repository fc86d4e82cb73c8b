//! A small in-process pool of worker threads, observed with poolscope.
//!
//! ```text
//! cargo run --release --features observe --example quickstart   # prints the Prometheus text
//! cargo run --release --example quickstart                       # same program, poolscope compiled out
//!
//! # keeps the pool busy and serves /health, /health/ready, /health/detailed, /metrics
//! cargo run --release --features observe,http --example quickstart -- --serve 127.0.0.1:9464 --seconds 60
//! ```
//!
//! The poolscope parts: a constant names the pool once; `#[observe]` on the
//! functions that start the pool, start a worker and run a request; an
//! observed queue between callers and workers (depth, queue wait,
//! saturation); `Worker::run` around each job (busy while it runs, a panic
//! caught and the worker kept).

use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use poolscope::error::Panicked;
use poolscope::{observe, queue, Pool};

const POOL: &str = "quickstart";

#[derive(Debug)]
enum JobError {
    Refused(u64),
    Panicked(Panicked),
    Stopped,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Refused(input) => write!(f, "job failed: {input} is a multiple of 7"),
            JobError::Panicked(panic) => write!(f, "job failed: {panic}"),
            JobError::Stopped => f.write_str("job failed: the pool stopped"),
        }
    }
}

impl std::error::Error for JobError {}

struct Job {
    input: u64,
    reply: mpsc::Sender<Result<u64, JobError>>,
}

struct ThreadPool {
    jobs: queue::Sender<Job>,
    threads: Vec<JoinHandle<()>>,
}

#[observe(kind = worker_start, pool = POOL, worker = id, skip(pool, jobs))]
fn spawn_worker(
    id: usize,
    pool: &Pool,
    jobs: queue::Receiver<Job>,
) -> std::io::Result<JoinHandle<()>> {
    // Starting until this function returns: the attribute then makes it
    // available.
    let worker = pool.worker(id);
    std::thread::Builder::new()
        .name(format!("worker-{id}"))
        .spawn(move || {
            while let Some(job) = jobs.recv_blocking() {
                let result = worker.run(|| run(job.input));
                let _ = job
                    .reply
                    .send(result.unwrap_or_else(|p| Err(JobError::Panicked(p))));
            }
        })
}

/// The work itself: squares, slowly; refuses multiples of 7 and panics on
/// multiples of 61.
fn run(input: u64) -> Result<u64, JobError> {
    std::thread::sleep(Duration::from_micros(200 + input % 5 * 100));
    assert!(
        input == 0 || !input.is_multiple_of(61),
        "{input} is a multiple of 61"
    );
    if input.is_multiple_of(7) {
        return Err(JobError::Refused(input));
    }
    Ok(input * input)
}

#[observe(kind = pool_start, pool = POOL, size = workers)]
fn start(workers: usize, queue_capacity: usize) -> std::io::Result<ThreadPool> {
    let pool = Pool::new(POOL);
    let (jobs, work) = queue::channel(&pool, queue_capacity);
    let threads = (0..workers)
        .map(|id| spawn_worker(id, &pool, work.clone()))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(ThreadPool { jobs, threads })
}

impl ThreadPool {
    #[observe(pool = POOL, command = "square")]
    fn execute(&self, input: u64) -> Result<u64, JobError> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send_blocking(Job { input, reply })
            .map_err(|_| JobError::Stopped)?;
        answer.recv().map_err(|_| JobError::Stopped)?
    }

    fn shutdown(self) {
        self.jobs.close();
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
    if let Some(address) = options.serve {
        return serve(address, options.seconds);
    }
    let metrics = poolscope::metrics::install()?;
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
    if poolscope::COMPILED_IN {
        if let Ok(counts) = events.lock() {
            for (name, n) in counts.iter() {
                writeln!(out, "# event {name}: {n}")?;
            }
        }
    } else {
        writeln!(
            out,
            "# poolscope is compiled out: build with `--features observe` to see what it records"
        )?;
    }
    write!(out, "{}", metrics.render())?;
    Ok(())
}

/// Keeps the pool busy for `seconds` while serving the HTTP endpoints.
#[cfg(feature = "http")]
fn serve(address: std::net::SocketAddr, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    use std::time::Instant;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let server = runtime.block_on(async { poolscope::serve(address) })?;
    let addr = server.local_addr();
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
    runtime.block_on(server.shutdown());
    println!("sent {sent} requests; stopped");
    Ok(())
}

#[cfg(not(feature = "http"))]
fn serve(_: std::net::SocketAddr, _: u64) -> Result<(), Box<dyn std::error::Error>> {
    Err("`--serve` needs the HTTP server: build with `--features observe,http`".into())
}
