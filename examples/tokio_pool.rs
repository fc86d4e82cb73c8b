//! Your own pool: four async tokio workers behind a bounded queue, a job's
//! panic caught so its worker lives on, and health, `/metrics` and the
//! dashboard served — observed with poolscope.
//!
//! ```text
//! cargo run --release --features full --example tokio_pool                  # 2,000 requests, then a summary
//! cargo run --release --features full --example tokio_pool -- --seconds 60  # a minute of load; open the dashboard
//! cargo run --release --features http --example tokio_pool                  # poolscope compiled out: your metrics only
//! ```
//!
//! The lines marked `// poolscope` are all the program has of poolscope,
//! apart from the queue's types in two signatures.

use std::time::Duration;

use poolscope::error::Panicked; // poolscope
use poolscope::metrics::{counter, describe_counter}; // poolscope
use poolscope::{observe, queue, Pool}; // poolscope
use tokio::sync::oneshot;

const POOL: &str = "tokio"; // poolscope

/// How a job fails: refused by the work itself, or a panic caught.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("{0} is a multiple of 7")]
    Refused(u64),
    #[error(transparent)]
    Panicked(#[from] Panicked),
    #[error("the pool is not running")]
    Stopped,
}

struct Job {
    input: u64,
    reply: oneshot::Sender<Result<u64, JobError>>,
}

/// The work: squares, slowly; refuses multiples of 7 and panics on
/// multiples of 97.
#[observe(pool = POOL, command = "square", worker = worker)] // poolscope
async fn square(worker: usize, input: u64) -> Result<u64, JobError> {
    tokio::time::sleep(Duration::from_millis(2 + input % 5)).await;
    assert!(!input.is_multiple_of(97), "{input} is a multiple of 97");
    if input.is_multiple_of(7) {
        return Err(JobError::Refused(input));
    }
    Ok(input * input)
}

#[observe(kind = worker_start, pool = POOL, worker = id, skip_all)] // poolscope
fn spawn_worker(id: usize, pool: &Pool, jobs: queue::Receiver<Job>) -> tokio::task::JoinHandle<()> {
    let worker = pool.worker(id); // poolscope
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            let result = worker.run_async(square(id, job.input)).await; // poolscope
            let _ = job
                .reply
                .send(result.unwrap_or_else(|panic| Err(panic.into())));
        }
    })
}

/// A pool of `workers` tasks taking jobs from a queue of `capacity`.
struct TaskPool {
    jobs: queue::Sender<Job>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

#[observe(kind = pool_start, pool = POOL, size = workers)] // poolscope
fn start(workers: usize, capacity: usize) -> TaskPool {
    let pool = Pool::new(POOL); // poolscope
    let (jobs, queue) = queue::channel(&pool, capacity); // poolscope
    let workers = (0..workers)
        .map(|id| spawn_worker(id, &pool, queue.clone()))
        .collect();
    TaskPool { jobs, workers }
}

impl TaskPool {
    /// Sends one job and waits for its answer.
    #[observe(pool = POOL, command = "request")] // poolscope
    async fn request(&self, input: u64) -> Result<u64, JobError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { input, reply };
        self.jobs.send(job).await.map_err(|_| JobError::Stopped)?;
        answer.await.map_err(|_| JobError::Stopped)?
    }

    /// Lets the workers finish what is queued, then waits for them.
    async fn shutdown(self) {
        self.jobs.close();
        for worker in self.workers {
            let _ = worker.await;
        }
    }
}

/// `--listen ADDR` (default `127.0.0.1:9464`; port 0 picks one),
/// `--requests N` (default 2,000) or `--seconds N` of steady load.
struct Options {
    listen: String,
    requests: u64,
    seconds: Option<u64>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:9464".into(),
        requests: 2_000,
        seconds: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("`{arg}` needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("`{arg} {value}`: {e}"))
        };
        match arg.as_str() {
            "--listen" => options.listen = value.clone(),
            "--requests" => options.requests = number()?,
            "--seconds" => options.seconds = Some(number()?),
            other => {
                return Err(format!(
                    "unknown argument `{other}`: expected `--listen ADDR`, `--requests N` or `--seconds N`"
                ))
            }
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tokio_pool: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    // The jobs that panic on purpose would each print the default hook's
    // message; the summary counts them instead.
    std::panic::set_hook(Box::new(|_| {}));
    let server = poolscope::serve(options.listen.as_str())?; // poolscope
    let addr = server.local_addr();
    let dashboard = if cfg!(feature = "dashboard") {
        format!(", the dashboard at http://{addr}/dashboard")
    } else {
        String::new()
    };
    println!("serving http://{addr}/metrics and /health/ready{dashboard}");
    describe_counter!(
        "app_requests_total",
        "Requests the application sent, by result."
    );

    let pool = std::sync::Arc::new(start(4, 16));
    let until = options
        .seconds
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let callers: Vec<_> = (0..8_u64)
        .map(|caller| {
            let pool = pool.clone();
            let per_caller = options.requests.div_ceil(8);
            tokio::spawn(async move {
                let mut counts = [0_u64; 3];
                for i in 0.. {
                    let done = match until {
                        Some(until) => tokio::time::Instant::now() >= until,
                        None => i >= per_caller,
                    };
                    if done {
                        break;
                    }
                    let result = pool.request(caller * per_caller + i + 1).await;
                    let (slot, label) = match &result {
                        Ok(_) => (0, "ok"),
                        Err(JobError::Panicked(_)) => (2, "panic"),
                        Err(_) => (1, "error"),
                    };
                    counts[slot] += 1;
                    counter!("app_requests_total", "result" => label).increment(1);
                }
                counts
            })
        })
        .collect();
    let mut totals = [0_u64; 3];
    for caller in callers {
        for (total, n) in totals.iter_mut().zip(caller.await?) {
            *total += n;
        }
    }
    if let Ok(pool) = std::sync::Arc::try_unwrap(pool) {
        pool.shutdown().await;
    }
    println!(
        "{} requests: {} ok, {} refused, {} panicked (the workers lived on)",
        totals.iter().sum::<u64>(),
        totals[0],
        totals[1],
        totals[2]
    );
    server.shutdown().await;
    Ok(())
}
